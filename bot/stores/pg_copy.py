"""A bot's local copy of the state it serves from the PostgreSQL store: the state's rows, texts and vectors in
the index directory's format (bot/store.py), memory-mapped, while the database does the searching.

    <INDEX_DIR>/postgres/pg-<generation>/   one state's copy, written beside and renamed into place whole:
        the files `VersionWriter` writes, but the FAISS and lexical indexes (the database searches), and
        pg_documents.npy                    the database row of each document, in the copy's order
        pg_chunks.npy                       the database row of each chunk, in the copy's order

Why a copy: the engine reads the sentences and vectors of every retrieved chunk, and statistics of the whole
collection, for each question. Read from the database into memory at every start, they cost each bot the whole
archive in RAM and a start that grows with it. A copy is written once per state: a restarted bot opens it as
fast as an index directory (its pages shared by the bots of one machine), and a bot that moves to a newer state
fetches only the documents whose rows changed, taking the rest from its previous copy. A document's rows are
replaced whenever its passages are, so a row number names one version of a document's passages.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from bot.errors import IndexStoreError
from bot.manifest import Manifest
from bot.spool import ArraySpool
from bot.store import (
    ArticleParts,
    Document,
    IndexData,
    Rows,
    VersionFiles,
    VersionWriter,
    damaged_files,
    read_data,
    read_manifest,
)

log = logging.getLogger(__name__)

# Where a bot keeps its copies, inside INDEX_DIR (which holds no index of its own while DATABASE_URL is set).
COPIES_FOLDER = "postgres"
DOCUMENT_ROWS = "pg_documents.npy"
CHUNK_ROWS = "pg_chunks.npy"
# Copies kept: the one in use and the one before, which another bot of this machine may still be serving.
KEPT_COPIES = 2
# The rows of a table alias that the state being read holds (bot/stores/pgvector.py), under %(generation)s.
Visible = Callable[[str], sql.Composable]
# Documents fetched from the database per round trip while a copy is written.
FETCH_ROWS = 256
_STAGING_PREFIX = ".writing-"
# The copy's manifest names the tables it was copied from (see `_tables`).
COPIED_FROM = "copied_from"


@dataclass
class StateCopy:
    """One state's copy, opened: its data, and the database rows its documents and chunks were copied from."""

    directory: Path
    data: IndexData
    document_rows: Rows
    chunk_rows: Rows


class StateCopies:
    """The folder of a bot's copies of database states (`<INDEX_DIR>/postgres`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(
        self, connection: psycopg.Connection[Any], generation: int, manifest: Manifest, visible: Visible
    ) -> StateCopy:
        """The copy of state `generation` (named `manifest.version`), written first when this folder has none or
        a damaged one; `connection` is in that state's snapshot."""
        name = manifest.version
        tables = _tables(connection)
        found = self._open(self.directory / name, manifest, tables)
        if found is not None:
            return found
        self.directory.mkdir(parents=True, exist_ok=True)
        previous = self._newest_reusable(manifest, tables)
        staging = self.directory / f"{_STAGING_PREFIX}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            _write(connection, staging, manifest, (generation, visible, tables), previous)
            try:
                staging.rename(self.directory / name)
            except OSError:  # another bot of this machine wrote the same state meanwhile: use its copy
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        copy = self._open(self.directory / name, manifest, tables)
        if copy is None:
            raise IndexStoreError(f"the local copy of {name} in {self.directory} could not be read back")
        self._prune(keep={name} | ({previous.directory.name} if previous is not None else set()))
        return copy

    def _open(self, directory: Path, manifest: Manifest, tables: str) -> StateCopy | None:
        """The copy in `directory` when it holds exactly the state `manifest` describes, copied from `tables`,
        else None."""
        if not directory.is_dir():
            return None
        try:
            copied = read_manifest(directory)
            if (
                copied.raw.get(COPIED_FROM) != tables
                or _without_files(copied.raw) != _without_files(manifest.raw)
                or damaged_files(directory, copied)
            ):
                log.warning("The local copy %s does not match its state; writing it again", directory)
                shutil.rmtree(directory, ignore_errors=True)
                return None
            data = read_data(directory, copied)
            document_rows = np.load(directory / DOCUMENT_ROWS, mmap_mode="r", allow_pickle=False)
            chunk_rows = np.load(directory / CHUNK_ROWS, mmap_mode="r", allow_pickle=False)
        except (IndexStoreError, OSError, ValueError, sqlite3.Error) as exc:
            log.warning("The local copy %s cannot be read (%s); writing it again", directory, exc)
            shutil.rmtree(directory, ignore_errors=True)
            return None
        if document_rows.shape != (len(data.documents),) or chunk_rows.shape != (len(data.chunks),):
            shutil.rmtree(directory, ignore_errors=True)
            return None
        return StateCopy(directory, data, np.asarray(document_rows), np.asarray(chunk_rows))

    def _newest_reusable(self, manifest: Manifest, tables: str) -> StateCopy | None:
        """The newest copy of the same tables whose passages were made as `manifest`'s are (model, chunking,
        multilingual model): row numbers mean the same passages only within one set of tables."""
        for directory in sorted(self._copies(), key=_generation, reverse=True):
            try:
                copied = read_manifest(directory)
            except IndexStoreError:
                continue
            if copied.raw.get(COPIED_FROM) == tables and _passage_settings(copied.raw) == _passage_settings(
                manifest.raw
            ):
                found = self._open(directory, copied, tables)
                if found is not None:
                    return found
        return None

    def _copies(self) -> list[Path]:
        return [path for path in self.directory.glob("pg-*") if path.is_dir() and _generation(path) >= 0]

    def _prune(self, keep: set[str]) -> None:
        """Remove all copies but the newest `KEPT_COPIES` and `keep`, and staging folders of bots that are gone.
        (A bot serving a removed copy keeps reading it: its files stay open and mapped until it lets them go.)"""
        newest = sorted(self._copies(), key=_generation, reverse=True)[:KEPT_COPIES]
        for path in self._copies():
            if path not in newest and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
        for path in self.directory.glob(f"{_STAGING_PREFIX}*"):
            pid = path.name.rsplit("-", 2)[-2]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(path, ignore_errors=True)


def _write(
    connection: psycopg.Connection[Any],
    directory: Path,
    manifest: Manifest,
    state: tuple[int, Visible, str],
    previous: StateCopy | None,
) -> None:
    """Write the copy of the state `connection` sees into `directory`: documents whose rows `previous` holds are
    taken from it, the others fetched, all in the database's order (by document id)."""
    generation, visible, tables = state
    listing = connection.execute(
        sql.SQL("SELECT d.id, d.doc_id, d.content_hash FROM kazbot_documents d WHERE {} ORDER BY d.doc_id").format(
            visible("d")
        ),
        {"generation": generation},
    ).fetchall()
    held: dict[int, int] = {}
    previous_files = None
    if previous is not None:
        copied = {int(row): number for number, row in enumerate(previous.document_rows)}
        for row, doc_id, content_hash in listing:
            number = copied.get(int(row))
            # Taken from the previous copy only when its row, its id and its content all match.
            if number is not None:
                metadata = previous.data.document_metadata(number)
                if (metadata.doc_id, metadata.content_hash) == (doc_id, content_hash):
                    held[int(row)] = number
        previous_files = VersionFiles(previous.directory, previous.data)
    fetched = [int(row) for row, _, _ in listing if int(row) not in held]
    multilingual = manifest.multilingual.dimension if manifest.multilingual is not None else None
    writer = VersionWriter(directory, manifest.model.dimension, multilingual, searchable=False)
    document_rows = ArraySpool(directory / DOCUMENT_ROWS, "<i8")
    chunk_rows = ArraySpool(directory / CHUNK_ROWS, "<i8")
    try:
        arriving = _fetch(connection, fetched, state, manifest)
        for row, doc_id, _ in listing:
            entry = manifest.documents.get(doc_id, {})
            number = held.get(int(row))
            if number is not None and previous is not None:
                parts = previous.data.article_parts(number, multilingual=multilingual is not None, files=previous_files)
                chunks = previous.data.document_chunks(number)
                ids: Rows = previous.chunk_rows[chunks.start : chunks.stop]
            else:
                parts, ids = next(arriving)
                if parts.document.doc_id != doc_id:
                    raise IndexStoreError(f"the database returned {parts.document.doc_id!r} where {doc_id!r} was due")
            if (len(parts.sentence_spans), len(parts.chunk_bounds)) != (entry.get("sentences"), entry.get("chunks")):
                raise IndexStoreError(f"{doc_id} in the database does not match its state's manifest")
            writer.add(parts)
            document_rows.append([int(row)])
            chunk_rows.append(ids)
        if next(arriving, None) is not None:
            raise IndexStoreError("the database returned more documents than it listed")
        document_rows.close()
        chunk_rows.close()
        writer.finish({**manifest.raw, "files": {}, COPIED_FROM: tables})
    except BaseException:
        document_rows.abandon()
        chunk_rows.abandon()
        writer.abandon()
        raise
    finally:
        if previous_files is not None:
            previous_files.close()
    log.info("Copied %s: %d documents, %d fetched from the database", manifest.version, len(listing), len(fetched))


def _fetch(
    connection: psycopg.Connection[Any], rows: list[int], state: tuple[int, Visible, str], manifest: Manifest
) -> Iterator[tuple[ArticleParts, Rows]]:
    """The documents of database rows `rows`, with their chunks' rows, in the order of their document ids,
    read a few at a time (server-side cursors, in the caller's snapshot)."""
    generation, visible, _ = state
    dimension = manifest.model.dimension
    multilingual = manifest.multilingual.dimension if manifest.multilingual is not None else None
    # Closed however the caller stops reading (the snapshot's transaction outlives them).
    with (
        connection.cursor(name="kazbot_copy_documents") as documents,
        connection.cursor(name="kazbot_copy_chunks") as chunks,
    ):
        documents.itersize = FETCH_ROWS
        documents.execute(
            "SELECT id, doc_id, title, publisher, published, url, content_hash, text, sentence_spans, "
            "sentence_vectors, clause_sentences, clause_vectors, multilingual_vectors FROM kazbot_documents d "
            "WHERE id = ANY(%(rows)s) ORDER BY doc_id",
            {"rows": rows},
        )
        chunks.itersize = FETCH_ROWS * 8
        chunks.execute(
            sql.SQL(
                "SELECT c.document, c.id, c.first_sentence, c.last_sentence, c.embedding FROM kazbot_chunks c "
                "JOIN kazbot_documents d ON d.id = c.document WHERE c.document = ANY(%(rows)s) AND {} "
                "ORDER BY d.doc_id, c.position"
            ).format(visible("c")),
            {"rows": rows, "generation": generation},
        )
        pending = next(chunks, None)
        for row in documents:
            number, doc_id, title, publisher, published, url, content_hash, text, spans = row[:9]
            sentence_vectors, clause_sentences, clause_vectors, multilingual_vectors = row[9:]
            bounds: list[tuple[int, int]] = []
            ids: list[int] = []
            vectors: list[Any] = []
            while pending is not None and int(pending[0]) == int(number):
                bounds.append((int(pending[2]), int(pending[3])))
                ids.append(int(pending[1]))
                vectors.append(pending[4].to_numpy())
                pending = next(chunks, None)
            if multilingual is not None and multilingual_vectors is None:
                raise IndexStoreError(f"{doc_id} lacks the multilingual vectors its state's manifest lists")
            parts = ArticleParts(
                document=Document(doc_id, title, publisher, published, url, content_hash, text),
                sentence_spans=[(spans[i], spans[i + 1]) for i in range(0, len(spans), 2)],
                chunk_bounds=bounds,
                clause_sentences=list(clause_sentences),
                chunk_vectors=np.vstack(vectors).astype(np.float32) if vectors else _array(b"", dimension),
                sentence_vectors=_array(sentence_vectors, dimension),
                clause_vectors=_array(clause_vectors, dimension),
                multilingual_vectors=None if multilingual is None else _array(multilingual_vectors, multilingual),
            )
            yield parts, np.asarray(ids, dtype=np.int64)
        if pending is not None:
            raise IndexStoreError("the database returned chunks of a document it did not list")


def _array(data: bytes, dimension: int) -> Any:
    return np.frombuffer(data, dtype="<f4").reshape(-1, dimension).astype(np.float32)


def _without_files(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key not in ("files", "file_stats", COPIED_FROM)}


def _tables(connection: psycopg.Connection[Any]) -> str:
    """Which tables a state is read from: their database and the documents table's own number, which changes
    when a build makes the tables anew (row numbers start again there, so they name other passages)."""
    row = connection.execute("SELECT current_database(), 'kazbot_documents'::regclass::oid").fetchone()
    assert row is not None
    return f"{row[0]}:{row[1]}"


def _passage_settings(raw: dict[str, Any]) -> tuple[Any, ...]:
    """What a document's stored passages depend on besides its text: copies that agree can share documents."""
    return raw.get("model"), raw.get("chunking"), raw.get("multilingual")


def _generation(path: Path) -> int:
    number = path.name.removeprefix("pg-")
    return int(number) if number.isdigit() else -1


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
