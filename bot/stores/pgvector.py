"""The shared store: passages in PostgreSQL with pgvector, so several bot processes answer from one database.

    kazbot_meta       schema version and the embedding model the vectors were made with
    kazbot_states     one row per published state ("generation"): its manifest; the newest is the one in use
    kazbot_documents  one row per document and generation range: metadata, text, sentence spans and the
                      sentence, clause and multilingual vectors (float32 bytes: read whole, never searched)
    kazbot_chunks     one row per chunk: its vector (`vector(n)`, HNSW index, inner product) and its terms
                      (`tsvector`, GIN index) for the two retrieval legs

Consistency. Every document and chunk row carries the generation that added it and the one that removed it.
A rebuild stages its changes and publishes them in ONE transaction: it marks the rows of replaced and deleted
documents removed in generation n+1, inserts the new rows as added in n+1, records state n+1 and purges only
rows that no state since n can see. A reader opens one generation g in a REPEATABLE READ snapshot and filters
every search by "added in or before g, not removed by g", so it sees state g whole, however long it serves,
and never a mix of two states; readers keep working on the previous state until they reload, as with the
FAISS directory's previous version. Builds are serialized by a PostgreSQL advisory lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bot.config import redacted_database_url
from bot.embedding import Embedder, Vectors
from bot.english import terms
from bot.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexStoreError
from bot.manifest import Manifest, model_manifest
from bot.store import REBUILD_HINT, ArticleParts, IndexData, Rows, search_text
from bot.stores.pg_copy import StateCopies

log = logging.getLogger(__name__)

# The layout of the tables below; a database of another layout is refused (rebuilt by `build --full`).
SCHEMA_VERSION = 1
# What a state's name looks like: the generation number after this prefix.
VERSION_PREFIX = "pg-"
# Every build takes this advisory lock (an arbitrary constant: "kazbot" in ASCII), so builds never interleave.
BUILD_LOCK = 0x6B617A626F74
# HNSW graph parameters: pgvector's defaults, which give recall@10 above 0.95 at the sizes benched
# (bench/results/store_search-10000-40000.md); ef_search is raised to the number of candidates asked for when larger.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 40
# A bot asks for the newest state before every question: at most once per this many seconds, it asks the database.
POLL_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 5
# How long a bot's query waits for a lock: a build that makes new tables holds the old ones until it commits, and
# a bot must not hang on them meanwhile (its poll then keeps the state it has; a search fails cleanly).
READ_LOCK_TIMEOUT = "2s"
# Chunk terms are the product's own stemmed terms (bot/english.py), as for BM25 in the FAISS store; the
# 'simple' configuration only lower-cases them, so PostgreSQL adds no stemming or stop list of its own.
TEXT_SEARCH_CONFIG = "simple"


def redacted(url: str) -> str:
    """The database URL without its password, for logs and messages."""
    return redacted_database_url(url)


def _version(generation: int) -> str:
    return f"{VERSION_PREFIX}{generation}"


def _generation(version: str) -> int:
    if not version.startswith(VERSION_PREFIX) or not version[len(VERSION_PREFIX) :].isdigit():
        raise IndexMissingError(f"{version!r} is not a state of the PostgreSQL store")
    return int(version[len(VERSION_PREFIX) :])


def _visible(table: str) -> sql.Composed:
    """The rows of `table` (a name or an alias) that state %(generation)s holds."""
    return sql.SQL(
        "{t}.added_in <= %(generation)s AND ({t}.removed_in IS NULL OR {t}.removed_in > %(generation)s)"
    ).format(t=sql.Identifier(table))


def _bytes(vectors: Vectors) -> bytes:
    return np.ascontiguousarray(vectors, dtype="<f4").tobytes()


class PgSource:
    """A PostgreSQL database as a `StoreSource` (and the way to a `PgWriter` for builds).

    `copies` is the folder where this bot keeps its local copy of the state it serves (bot/stores/pg_copy.py);
    a source that only builds needs none.
    """

    def __init__(self, url: str, *, copies: Path | None = None, poll_seconds: float = POLL_SECONDS) -> None:
        self._url = url
        self._copies = None if copies is None else StateCopies(copies)
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._polled: tuple[float, str | None] | None = None  # when the newest state was last asked, and it
        self._unreachable = False

    def describe(self) -> str:
        return f"PostgreSQL at {redacted(self._url)}"

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection, with the vector type registered when the extension exists."""
        try:
            connection = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as exc:
            raise IndexStoreError(f"cannot connect to {self.describe()}: {type(exc).__name__}") from None
        connection.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(READ_LOCK_TIMEOUT)))
        if connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            register_vector(connection)
        return connection

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Connection[Any]]:
        """The source's own connection for its cheap reads, opened again after it breaks."""
        with self._lock:
            if self._connection is None or self._connection.closed or self._connection.broken:
                self._connection = self.connect()
            try:
                yield self._connection
            except psycopg.OperationalError:
                self._connection.close()
                raise

    def published_version(self) -> str | None:
        """The newest state's name, asked of the database at most once per `poll_seconds` (a bot asks before
        every question). While the database cannot be reached, the last answer stands, and it is logged once."""
        now = time.monotonic()
        if self._polled is not None and now - self._polled[0] < self._poll_seconds:
            return self._polled[1]
        try:
            with self._cursor() as connection:
                row = None
                if _has_schema(connection):
                    row = connection.execute("SELECT max(generation) FROM kazbot_states").fetchone()
        except (psycopg.Error, IndexStoreError) as exc:
            if self._polled is None:
                raise IndexStoreError(f"cannot read {self.describe()}: {type(exc).__name__}") from None
            if not self._unreachable:
                log.warning("Cannot ask %s for a newer state (%s); serving on", self.describe(), type(exc).__name__)
            self._unreachable = True
            return self._polled[1]
        self._unreachable = False
        version = None if row is None or row[0] is None else _version(int(row[0]))
        self._polled = (now, version)
        return version

    def open(self, embedder: Embedder | None = None, version: str | None = None) -> PgStore:
        if self._copies is None:
            raise ValueError("a PgSource opens states only with a folder for its copies")
        connection = self.connect()
        try:
            return _open_state(self.connect, connection, self.describe(), self._copies, embedder, version)
        except IndexStoreError as exc:
            connection.close()
            if "build --full" in str(exc) or isinstance(exc, IndexMissingError):
                raise
            raise type(exc)(f"{exc}; {REBUILD_HINT}") from None
        except psycopg.Error as exc:
            connection.close()
            raise IndexStoreError(f"cannot read {self.describe()}: {type(exc).__name__}: {exc}") from None
        except (OSError, ValueError, sqlite3.Error) as exc:  # the local copy (bot/stores/pg_copy.py)
            connection.close()
            raise IndexStoreError(f"cannot keep a local copy of {self.describe()}'s state: {exc}") from None

    @contextmanager
    def writer(self, embedder: Embedder, *, full: bool = False) -> Iterator[PgWriter]:
        """A writer holding the build lock: the schema is created on first use; a database made with another
        model is refused unless `full` (which then replaces every table)."""
        connection = self.connect()
        try:
            connection.execute("SET lock_timeout = 0")  # a build waits its turn
            connection.execute("SELECT pg_advisory_lock(%s)", (BUILD_LOCK,))
            # From here on, one transaction: `PgWriter.publish` commits it; closing without that rolls it back.
            connection.autocommit = False
            yield PgWriter(connection, self.describe(), embedder, full=full)
        finally:
            connection.close()  # also releases the advisory lock
            self._polled = None  # what this source publishes, it sees at once


def _has_schema(connection: psycopg.Connection[Any]) -> bool:
    row = connection.execute("SELECT to_regclass('kazbot_meta') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _meta(connection: psycopg.Connection[Any]) -> dict[str, Any]:
    return {key: value for key, value in connection.execute("SELECT key, value FROM kazbot_meta").fetchall()}


def _same_tables(meta: dict[str, Any], embedder: Embedder) -> bool:
    """Whether tables made with `meta` hold this schema and `embedder`'s vectors (same model, same size)."""
    model = meta.get("model")
    return (
        meta.get("schema_version") == SCHEMA_VERSION
        and isinstance(model, dict)
        and model.get("fingerprint") == embedder.fingerprint
        and model.get("dimension") == embedder.dimension
    )


def _check_schema(meta: dict[str, Any], where: str) -> None:
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise IndexMismatchError(
            f"{where} holds the store schema {meta.get('schema_version')!r}, this version reads {SCHEMA_VERSION}; "
            "rebuild it with 'python -m bot build --full'"
        )


def _open_state(
    connect: Callable[[], psycopg.Connection[Any]],
    connection: psycopg.Connection[Any],
    where: str,
    copies: StateCopies,
    embedder: Embedder | None,
    version: str | None,
) -> PgStore:
    """Open one state in one snapshot: its manifest from the database, its rows and vectors from the local copy
    (written first when there is none, bot/stores/pg_copy.py)."""
    if not _has_schema(connection):
        raise IndexMissingError(f"no passages in {where}: build them with 'python -m bot build'")
    with connection.transaction():
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        meta = _meta(connection)
        _check_schema(meta, where)
        if version is None:
            row = connection.execute("SELECT max(generation) FROM kazbot_states").fetchone()
            if row is None or row[0] is None:
                raise IndexMissingError(f"no passages in {where}: build them with 'python -m bot build'")
            generation = int(row[0])
        else:
            generation = _generation(version)
        row = connection.execute("SELECT manifest FROM kazbot_states WHERE generation = %s", (generation,)).fetchone()
        if row is None:
            raise IndexMissingError(f"state {_version(generation)} is no longer in {where}")
        manifest = Manifest.parse(row[0], f"the manifest of {_version(generation)} in {where}", _version(generation))
        manifest.check_model(embedder)
        copy = copies.load(connection, generation, manifest, _visible)
    data = copy.data
    if (
        len(data.documents) != len(manifest.documents)
        or manifest.counts.get("chunks", len(data.chunks)) != len(data.chunks)
        or data.sentence_vectors.shape[1:] != (manifest.model.dimension,)
    ):
        name = _version(generation)
        raise IndexCorruptError(f"state {name} in {where} does not hold the documents its manifest lists")
    configure_search(connection)
    return PgStore(connect, connection, _version(generation), generation, manifest, data, copy.chunk_rows)


def configure_search(connection: psycopg.Connection[Any]) -> None:
    """The session settings every dense search runs under (the store's and the benchmark's)."""
    connection.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(HNSW_EF_SEARCH)))
    # Filtered HNSW scans go on until they find enough visible rows (pgvector 0.8), in roughly best-first order.
    connection.execute("SET hnsw.iterative_scan = relaxed_order")


# The dense leg: the chunks of state %(generation)s nearest %(query)s by inner product (`<#>` is its negative).
DENSE_SEARCH = sql.SQL(
    "SELECT id, (embedding <#> %(query)s) * -1 FROM kazbot_chunks WHERE {} ORDER BY embedding <#> %(query)s LIMIT %(k)s"
).format(_visible("kazbot_chunks"))
# The lexical leg: chunks holding any of the terms, by PostgreSQL's term-frequency rank.
LEXICAL_SEARCH = sql.SQL(
    "SELECT id FROM kazbot_chunks, websearch_to_tsquery({config}, %(query)s) AS query "
    "WHERE terms @@ query AND {} ORDER BY ts_rank(terms, query) DESC, id LIMIT %(k)s"
).format(_visible("kazbot_chunks"), config=sql.Literal(TEXT_SEARCH_CONFIG))
# The vector index, made with the tables (and by the benchmark after loading its vectors).
HNSW_INDEX = sql.SQL(
    "CREATE INDEX kazbot_chunks_embedding ON kazbot_chunks USING hnsw (embedding vector_ip_ops) "
    "WITH (m = {m}, ef_construction = {ef})"
).format(m=sql.Literal(HNSW_M), ef=sql.Literal(HNSW_EF_CONSTRUCTION))


class PgStore:
    """One published state of the database, opened whole: this backend's `PassageStore`."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        connection: psycopg.Connection[Any],
        version: str,
        generation: int,
        manifest: Manifest,
        data: IndexData,
        chunk_rows: Rows,
    ) -> None:
        self._connect = connect
        self._connection = connection
        self._lock = threading.Lock()
        self.version = version
        self.generation = generation
        self.manifest = manifest
        self.data = data
        # The database row of each chunk position, sorted, to turn a search's rows into positions without a
        # dictionary of every chunk (tens of megabytes at a million chunks).
        self._by_row = np.argsort(chunk_rows, kind="stable")
        self._sorted_rows = np.asarray(chunk_rows)[self._by_row]

    def close(self) -> None:
        self._connection.close()

    def _rows(self, query: sql.Composed, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        # One connection per opened state (psycopg serializes its use), opened again once when it broke: a
        # restarted or failed-over database serves this state again, since its generation pins its rows.
        with self._lock:
            try:
                try:
                    return self._execute(query, parameters)
                except psycopg.OperationalError:
                    self._connection.close()
                return self._execute(query, parameters)
            except (psycopg.Error, IndexStoreError) as exc:
                raise IndexStoreError(f"the PostgreSQL store cannot be searched: {type(exc).__name__}") from None

    def _execute(self, query: sql.Composed, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self._connection.closed or self._connection.broken:
            self._connection = self._connect()
            configure_search(self._connection)
        return self._connection.execute(query, parameters).fetchall()

    def _positions(self, rows: list[int]) -> list[int | None]:
        """The chunk position of each database row, None for a row this state does not hold."""
        found = np.searchsorted(self._sorted_rows, rows)
        return [
            int(self._by_row[i]) if i < len(self._sorted_rows) and self._sorted_rows[i] == row else None
            for i, row in zip(found.tolist(), rows, strict=True)
        ]

    def dense_search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        if k <= 0 or not len(self._sorted_rows):
            return []
        rows = self._rows(
            DENSE_SEARCH,
            {"query": np.asarray(query, np.float32).reshape(-1), "k": k, "generation": self.generation},
        )
        # The relaxed iterative scan may return a near neighbour slightly out of order: sort it back.
        found = sorted(((float(score), int(chunk_id)) for chunk_id, score in rows), key=lambda r: (-r[0], r[1]))
        positions = self._positions([chunk_id for _, chunk_id in found])
        return [(at, score) for at, (score, _) in zip(positions, found, strict=True) if at is not None]

    def lexical_search(self, terms: list[str], k: int) -> list[int]:
        if not terms or k <= 0 or not len(self._sorted_rows):
            return []
        rows = self._rows(
            LEXICAL_SEARCH,
            # Terms joined by "or": any of them matches, as in BM25 (websearch syntax never fails to parse).
            {"query": " or ".join(terms), "k": k, "generation": self.generation},
        )
        return [at for at in self._positions([int(chunk_id) for (chunk_id,) in rows]) if at is not None]


class PgWriter:
    """A rebuild's changes, written as they come in one transaction that `publish` commits: readers see none of
    them before, all of them after, and a build that fails rolls them back whole. Memory stays that of one
    document at a time, whatever the archive's size.

    One cost of writing as it goes: a build that must make new tables (the first, or one for another model)
    holds their predecessors locked until it commits; bots still on them get an error for a search meanwhile,
    after `READ_LOCK_TIMEOUT`, and keep the state they have (they must be restarted for the new model anyway).
    """

    def __init__(self, connection: psycopg.Connection[Any], where: str, embedder: Embedder, *, full: bool) -> None:
        self._connection = connection
        self._where = where
        self._embedder = embedder
        self._full = full
        self._state: _NewState | None = None
        if _has_schema(connection):
            meta = _meta(connection)
            if not full:
                _check_schema(meta, where)
                model = meta.get("model", {})
                if model.get("fingerprint") != embedder.fingerprint or model.get("dimension") != embedder.dimension:
                    raise IndexMismatchError(
                        f"{where} was built with {model.get('name')!r} ({model.get('dimension')} dimensions), but "
                        f"the configured model is {embedder.name!r} ({embedder.dimension} dimensions); "
                        "rebuild it with 'python -m bot build --full'"
                    )

    def previous_manifest(self) -> Manifest | None:
        """The manifest of the newest state, or None (no state yet, or a full rebuild that ignores it)."""
        if self._full or not _has_schema(self._connection):
            return None
        row = self._connection.execute(
            "SELECT generation, manifest FROM kazbot_states ORDER BY generation DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Manifest.parse(row[1], f"the manifest in {self._where}", _version(int(row[0])))

    def stored_documents(self) -> dict[str, str]:
        return {name: str(entry["content_hash"]) for name, entry in self._stored().items()}

    def stored_text_keys(self) -> dict[str, str]:
        """The documents of the newest state: the key that tells duplicates (bot.corpus.text_key) by id."""
        return {name: str(entry["text_key"]) for name, entry in self._stored().items()}

    def _stored(self) -> dict[str, dict[str, str]]:
        if not _has_schema(self._connection):
            return {}
        rows = self._connection.execute(
            "SELECT doc_id, content_hash, text_key FROM kazbot_documents WHERE removed_in IS NULL"
        ).fetchall()
        return {doc_id: {"content_hash": content_hash, "text_key": key} for doc_id, content_hash, key in rows}

    def _new_state(self) -> _NewState:
        """The state being written, begun at the first change: new tables when the old ones cannot hold it (none
        yet, another schema, another model), and for a full rebuild every document marked as replaced."""
        if self._state is not None:
            return self._state
        connection = self._connection
        previous = 0
        if _has_schema(connection):
            row = connection.execute("SELECT coalesce(max(generation), 0) FROM kazbot_states").fetchone()
            previous = int(row[0]) if row else 0
        # Dropping the tables would leave a reader of the old state nothing, so a full rebuild for the same model
        # replaces every document in place instead, and readers keep their state whole.
        fresh = not _has_schema(connection) or not _same_tables(_meta(connection), self._embedder)
        if fresh:
            # Numbering goes on across the new tables: a reader still on an old state never sees new rows.
            create_schema(connection, self._embedder)
        register_vector(connection)
        live = {
            str(doc_id)
            for (doc_id,) in connection.execute("SELECT doc_id FROM kazbot_documents WHERE removed_in IS NULL")
        }
        self._state = _NewState(previous + 1, previous, fresh, live)
        if self._full:
            self._remove(sorted(live))
        return self._state

    def _remove(self, names: list[str]) -> None:
        """Mark the live rows of documents `names` (and their chunks) removed in the state being written."""
        state = self._new_state()
        names = [name for name in names if name in state.live]
        if not names:
            return
        for table in ("kazbot_chunks", "kazbot_documents"):
            self._connection.execute(
                sql.SQL("UPDATE {table} SET removed_in = %(generation)s WHERE removed_in IS NULL AND {where}").format(
                    table=sql.Identifier(table),
                    where=sql.SQL(
                        "document IN (SELECT id FROM kazbot_documents WHERE doc_id = ANY(%(names)s) "
                        "AND removed_in IS NULL)"
                        if table == "kazbot_chunks"
                        else "doc_id = ANY(%(names)s)"
                    ),
                ),
                {"generation": state.generation, "names": names},
            )
        state.live.difference_update(names)

    def put(self, parts: ArticleParts) -> None:
        self._remove([parts.document.doc_id])
        state = self._new_state()
        _insert(self._connection, parts, state.generation)
        state.live.add(parts.document.doc_id)

    def delete(self, doc_id: str) -> None:
        self._remove([doc_id])

    def publish(self, manifest: dict[str, Any]) -> str:
        """Record the new state with its manifest, drop the rows no state from the previous one on can see, and
        commit: every change becomes visible at once."""
        connection = self._connection
        state = self._new_state()
        if state.fresh:
            connection.execute(HNSW_INDEX)
        # Rows no state from `previous` on can see; the previous state stays whole for readers still on it.
        connection.execute("DELETE FROM kazbot_documents WHERE removed_in <= %s", (state.previous,))
        connection.execute("DELETE FROM kazbot_states WHERE generation < %s", (state.previous,))
        version = _version(state.generation)
        connection.execute(
            "INSERT INTO kazbot_states (generation, manifest) VALUES (%s, %s)",
            (state.generation, json.dumps({**manifest, "version": version, "files": {}}, ensure_ascii=False)),
        )
        connection.commit()
        self._state = None
        log.info("Published %s to %s", version, self._where)
        return version


@dataclass
class _NewState:
    """The state a writer is writing: its generation, the one before, whether its tables are new, and the
    documents live in it so far."""

    generation: int
    previous: int
    fresh: bool
    live: set[str]


def create_schema(connection: psycopg.Connection[Any], embedder: Embedder) -> None:
    """Every table, made afresh for `embedder`'s dimension (in the caller's transaction). The HNSW index on the
    chunk vectors is left to the caller, `HNSW_INDEX` after loading the rows: built once over every row, it is
    made much faster than grown row by row."""
    connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(connection)
    connection.execute("DROP TABLE IF EXISTS kazbot_chunks, kazbot_documents, kazbot_states, kazbot_meta")
    connection.execute("CREATE TABLE kazbot_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
    connection.execute(
        "CREATE TABLE kazbot_states (generation bigint PRIMARY KEY, manifest jsonb NOT NULL, "
        "published_at timestamptz NOT NULL DEFAULT now())"
    )
    connection.execute(
        """CREATE TABLE kazbot_documents (
            id bigserial PRIMARY KEY, doc_id text NOT NULL, title text NOT NULL, publisher text, published text,
            url text, content_hash text NOT NULL, text_key text NOT NULL, text text NOT NULL,
            sentence_spans integer[] NOT NULL, sentence_vectors bytea NOT NULL, clause_sentences integer[] NOT NULL,
            clause_vectors bytea NOT NULL, multilingual_vectors bytea,
            added_in bigint NOT NULL, removed_in bigint)"""
    )
    connection.execute(
        "CREATE UNIQUE INDEX kazbot_documents_live ON kazbot_documents (doc_id) WHERE removed_in IS NULL"
    )
    connection.execute(
        sql.SQL(
            """CREATE TABLE kazbot_chunks (
            id bigserial PRIMARY KEY, document bigint NOT NULL REFERENCES kazbot_documents ON DELETE CASCADE,
            position integer NOT NULL, first_sentence integer NOT NULL, last_sentence integer NOT NULL,
            embedding vector({dimension}) NOT NULL, terms tsvector NOT NULL,
            added_in bigint NOT NULL, removed_in bigint)"""
        ).format(dimension=sql.Literal(embedder.dimension))
    )
    connection.execute("CREATE INDEX kazbot_chunks_document ON kazbot_chunks (document)")
    connection.execute("CREATE INDEX kazbot_chunks_terms ON kazbot_chunks USING gin (terms)")
    model = model_manifest(embedder)
    connection.execute(
        "INSERT INTO kazbot_meta VALUES ('schema_version', %s), ('model', %s)",
        (json.dumps(SCHEMA_VERSION), json.dumps(model)),
    )


def _insert(connection: psycopg.Connection[Any], parts: ArticleParts, generation: int) -> None:
    from bot.corpus import text_key

    document = parts.document
    # The build hands over every part with its vectors in memory (bot.build.embed_articles).
    assert parts.chunk_vectors is not None and parts.sentence_vectors is not None
    assert parts.clause_vectors is not None
    chunk_vectors = parts.chunk_vectors
    row = connection.execute(
        """INSERT INTO kazbot_documents (doc_id, title, publisher, published, url, content_hash, text_key, text,
            sentence_spans, sentence_vectors, clause_sentences, clause_vectors, multilingual_vectors, added_in)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            document.doc_id,
            document.title,
            document.publisher,
            document.published,
            document.url,
            document.content_hash,
            text_key(document.text),
            document.text,
            [offset for span in parts.sentence_spans for offset in span],
            _bytes(parts.sentence_vectors),
            parts.clause_sentences,
            _bytes(parts.clause_vectors),
            None if parts.multilingual_vectors is None else _bytes(parts.multilingual_vectors),
            generation,
        ),
    ).fetchone()
    assert row is not None
    spans = parts.sentence_spans
    with connection.cursor() as cursor:
        cursor.executemany(
            sql.SQL(
                "INSERT INTO kazbot_chunks (document, position, first_sentence, last_sentence, embedding, terms, "
                "added_in) VALUES (%s, %s, %s, %s, %s, to_tsvector({config}, %s), %s)"
            ).format(config=sql.Literal(TEXT_SEARCH_CONFIG)),
            [
                (
                    row[0],
                    position,
                    first,
                    last,
                    np.asarray(chunk_vectors[position], np.float32),
                    " ".join(terms(search_text(document.title, document.text[spans[first][0] : spans[last][1]]))),
                    generation,
                )
                for position, (first, last) in enumerate(parts.chunk_bounds)
            ],
        )
