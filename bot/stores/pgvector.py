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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bot.build import assemble
from bot.config import redacted_database_url
from bot.embedding import Embedder, Vectors
from bot.english import terms
from bot.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexStoreError
from bot.manifest import Manifest, model_manifest
from bot.store import REBUILD_HINT, ArticleParts, Document, IndexData, search_text

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


def _array(data: bytes, dimension: int) -> Vectors:
    return np.frombuffer(data, dtype="<f4").reshape(-1, dimension).astype(np.float32)


class PgSource:
    """A PostgreSQL database as a `StoreSource` (and the way to a `PgWriter` for builds)."""

    def __init__(self, url: str, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._url = url
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
        connection = self.connect()
        try:
            return _open_state(self.connect, connection, self.describe(), embedder, version)
        except IndexStoreError as exc:
            connection.close()
            if "build --full" in str(exc) or isinstance(exc, IndexMissingError):
                raise
            raise type(exc)(f"{exc}; {REBUILD_HINT}") from None
        except psycopg.Error as exc:
            connection.close()
            raise IndexStoreError(f"cannot read {self.describe()}: {type(exc).__name__}: {exc}") from None

    @contextmanager
    def writer(self, embedder: Embedder, *, full: bool = False) -> Iterator[PgWriter]:
        """A writer holding the build lock: the schema is created on first use; a database made with another
        model is refused unless `full` (which then replaces every table)."""
        connection = self.connect()
        try:
            connection.execute("SELECT pg_advisory_lock(%s)", (BUILD_LOCK,))
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
    embedder: Embedder | None,
    version: str | None,
) -> PgStore:
    """Read one state whole, in one snapshot: its manifest, documents, chunks and vectors."""
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
        data = _read_data(connection, generation, manifest)
        chunk_ids = [
            int(chunk_id)
            for (chunk_id,) in connection.execute(
                sql.SQL(
                    "SELECT c.id FROM kazbot_chunks c JOIN kazbot_documents d ON d.id = c.document "
                    "WHERE {} ORDER BY d.doc_id, c.position"
                ).format(_visible("c")),
                {"generation": generation},
            )
        ]
    if len(chunk_ids) != len(data.chunks) or manifest.counts.get("chunks", len(chunk_ids)) != len(chunk_ids):
        raise IndexCorruptError(f"state {_version(generation)} in {where} does not hold the chunks its manifest lists")
    configure_search(connection)
    return PgStore(connect, connection, _version(generation), generation, manifest, data, chunk_ids)


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


def _read_data(connection: psycopg.Connection[Any], generation: int, manifest: Manifest) -> IndexData:
    dimension = manifest.model.dimension
    multilingual = manifest.multilingual.dimension if manifest.multilingual is not None else None
    parts: list[ArticleParts] = []
    chunks: dict[int, list[tuple[int, int, Vectors]]] = {}
    for document, first, last, vector in connection.execute(
        sql.SQL(
            "SELECT c.document, c.first_sentence, c.last_sentence, c.embedding FROM kazbot_chunks c "
            "WHERE {} ORDER BY c.document, c.position"
        ).format(_visible("c")),
        {"generation": generation},
    ):
        chunks.setdefault(int(document), []).append((int(first), int(last), vector.to_numpy().astype(np.float32)))
    rows = connection.execute(
        sql.SQL(
            "SELECT id, doc_id, title, publisher, published, url, content_hash, text, sentence_spans, "
            "sentence_vectors, clause_sentences, clause_vectors, multilingual_vectors FROM kazbot_documents "
            "WHERE {} ORDER BY doc_id"
        ).format(_visible("kazbot_documents")),
        {"generation": generation},
    )
    for row in rows:
        (number, doc_id, title, publisher, published, url, content_hash, text, spans, sentence_vectors) = row[:10]
        clause_sentences, clause_vectors, multilingual_vectors = row[10:]
        own = chunks.get(int(number), [])
        parts.append(
            ArticleParts(
                document=Document(doc_id, title, publisher, published, url, content_hash, text),
                sentence_spans=[(spans[i], spans[i + 1]) for i in range(0, len(spans), 2)],
                chunk_bounds=[(first, last) for first, last, _ in own],
                chunk_vectors=np.vstack([v for _, _, v in own]) if own else np.zeros((0, dimension), np.float32),
                sentence_vectors=_array(sentence_vectors, dimension),
                clause_sentences=list(clause_sentences),
                clause_vectors=_array(clause_vectors, dimension),
                multilingual_vectors=None
                if multilingual is None or multilingual_vectors is None
                else _array(multilingual_vectors, multilingual),
            )
        )
    if multilingual is not None and any(part.multilingual_vectors is None for part in parts):
        raise IndexCorruptError(f"state {_version(generation)} lacks multilingual vectors its manifest lists")
    data = assemble(parts, dimension, multilingual)
    if data.sentence_vectors.shape[1:] != (dimension,) or len(data.documents) != len(manifest.documents):
        raise IndexCorruptError(f"state {_version(generation)} does not hold the documents its manifest lists")
    return data


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
        chunk_ids: list[int],
    ) -> None:
        self._connect = connect
        self._connection = connection
        self._lock = threading.Lock()
        self.version = version
        self.generation = generation
        self.manifest = manifest
        self.data = data
        self._positions = {chunk_id: position for position, chunk_id in enumerate(chunk_ids)}

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

    def dense_search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        if k <= 0 or not self._positions:
            return []
        rows = self._rows(
            DENSE_SEARCH,
            {"query": np.asarray(query, np.float32).reshape(-1), "k": k, "generation": self.generation},
        )
        # The relaxed iterative scan may return a near neighbour slightly out of order: sort it back.
        found = sorted(((float(score), int(chunk_id)) for chunk_id, score in rows), key=lambda r: (-r[0], r[1]))
        return [(self._positions[chunk_id], score) for score, chunk_id in found if chunk_id in self._positions]

    def lexical_search(self, terms: list[str], k: int) -> list[int]:
        if not terms or k <= 0 or not self._positions:
            return []
        rows = self._rows(
            LEXICAL_SEARCH,
            # Terms joined by "or": any of them matches, as in BM25 (websearch syntax never fails to parse).
            {"query": " or ".join(terms), "k": k, "generation": self.generation},
        )
        return [self._positions[int(chunk_id)] for (chunk_id,) in rows if int(chunk_id) in self._positions]


class PgWriter:
    """A rebuild's changes to the database, staged in memory and published in one transaction."""

    def __init__(self, connection: psycopg.Connection[Any], where: str, embedder: Embedder, *, full: bool) -> None:
        self._connection = connection
        self._where = where
        self._embedder = embedder
        self._full = full
        self._puts: dict[str, ArticleParts] = {}
        self._deletes: set[str] = set()
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

    def put(self, parts: ArticleParts) -> None:
        self._deletes.discard(parts.document.doc_id)
        self._puts[parts.document.doc_id] = parts

    def delete(self, doc_id: str) -> None:
        self._puts.pop(doc_id, None)
        self._deletes.add(doc_id)

    def publish(self, manifest: dict[str, Any]) -> str:
        """Apply every staged change and record the new state, all in one transaction."""
        connection = self._connection
        with connection.transaction():
            previous = 0
            if _has_schema(connection):
                row = connection.execute("SELECT coalesce(max(generation), 0) FROM kazbot_states").fetchone()
                previous = int(row[0]) if row else 0
            # New tables only when the old ones cannot hold this build (none yet, another schema, another model):
            # dropping them leaves a reader of the old state nothing, so a full rebuild for the same model
            # replaces every document in place instead, and readers keep their state whole.
            fresh = not _has_schema(connection) or not _same_tables(_meta(connection), self._embedder)
            if fresh:
                # Numbering goes on across the new tables: a reader still on an old state never sees new rows.
                create_schema(connection, self._embedder)
            register_vector(connection)
            generation = previous + 1
            replaced = set(self._deletes | self._puts.keys())
            if self._full and not fresh:
                replaced |= {
                    str(doc_id)
                    for (doc_id,) in connection.execute(
                        "SELECT doc_id FROM kazbot_documents WHERE removed_in IS NULL"
                    ).fetchall()
                }
            for table in ("kazbot_chunks", "kazbot_documents"):
                connection.execute(
                    sql.SQL(
                        "UPDATE {table} SET removed_in = %(generation)s WHERE removed_in IS NULL AND {where}"
                    ).format(
                        table=sql.Identifier(table),
                        where=sql.SQL(
                            "document IN (SELECT id FROM kazbot_documents WHERE doc_id = ANY(%(names)s) "
                            "AND removed_in IS NULL)"
                            if table == "kazbot_chunks"
                            else "doc_id = ANY(%(names)s)"
                        ),
                    ),
                    {"generation": generation, "names": sorted(replaced)},
                )
            for parts in self._puts.values():
                _insert(connection, parts, generation)
            if fresh:
                connection.execute(HNSW_INDEX)
            # Rows no state from `previous` on can see; the previous state stays whole for readers still on it.
            connection.execute("DELETE FROM kazbot_documents WHERE removed_in <= %s", (previous,))
            connection.execute("DELETE FROM kazbot_states WHERE generation < %s", (previous,))
            version = _version(generation)
            connection.execute(
                "INSERT INTO kazbot_states (generation, manifest) VALUES (%s, %s)",
                (generation, json.dumps({**manifest, "version": version, "files": {}}, ensure_ascii=False)),
            )
        self._puts.clear()
        self._deletes.clear()
        log.info("Published %s to %s", version, self._where)
        return version


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
