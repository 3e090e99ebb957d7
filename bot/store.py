"""The index on disk: a directory per version, the one in use named by the file `CURRENT`.

    index/CURRENT                 the name of the version in use, replaced atomically
    index/v-<time>-<id>/          one complete, immutable version:
        manifest.json             format, model and weights hash, dimension, chunking, documents, file hashes
        chunks.faiss              chunk vectors (FAISS; the kind chosen by size, see bot/ann.py)
        chunk_vectors.npy         only beside a compressed FAISS index (IVF-SQ8/PQ): the exact chunk vectors,
                                  memory-mapped, to re-rank its candidates and compare chunks
        sentence_vectors.npy      one vector per sentence, for choosing the sentences that answer
        clause_vectors.npy        one vector per clause of a long sentence (which sentence: store.sqlite)
        sentence_vectors_e5.npy   optional: one multilingual vector per sentence, for questions not in English
                                  (bot/multilingual.py; the manifest's "multilingual" names the model)
        store.sqlite              the documents: id, title, publisher, date, link, content hash
        texts.bin                 the documents' texts, UTF-8, one after another (text_offsets.npy: where each
                                  starts, in bytes), memory-mapped and decoded one document at a time
        sentences.npy             per sentence: document, start, end (characters into its document's text)
        chunks.npy                per chunk: document, position, first and last sentence
        clauses.npy               per clause of a long sentence: its sentence
        terms.json                the sentences' term statistics, for the answer scorer (bot/lexicon.py)
        bm25/                     the lexical index over chunks (bm25s, saved without pickle)

Everything but the documents' metadata and the term statistics is memory-mapped at open, so an index of a
hundred thousand articles opens in seconds and its pages are shared by every process serving it.

A reader resolves `CURRENT` once and reads only that directory, so it never sees a half-written index, and
a writer (see build.py) only ever adds directories and swaps `CURRENT`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import bm25s
import faiss
import numpy as np
import numpy.typing as npt

from bot import ann
from bot.bm25_writer import BM25Writer
from bot.embedding import Embedder, Vectors, sha256_file
from bot.errors import IndexCorruptError, IndexFormatError, IndexMismatchError, IndexMissingError, IndexStoreError
from bot.lexicon import TermCounter, TermStatistics
from bot.manifest import Manifest
from bot.spool import ArraySpool, NpyRows

# 2: rows and texts memory-mapped, term statistics precomputed (format 1 kept them all in store.sqlite).
FORMAT_VERSION = 2
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
FAISS_FILE = "chunks.faiss"
CHUNK_VECTORS = "chunk_vectors.npy"
SENTENCE_VECTORS = "sentence_vectors.npy"
CLAUSE_VECTORS = "clause_vectors.npy"
MULTILINGUAL_VECTORS = "sentence_vectors_e5.npy"
SQLITE_FILE = "store.sqlite"
TEXTS_FILE = "texts.bin"
TEXT_OFFSETS = "text_offsets.npy"
SENTENCE_ROWS = "sentences.npy"
CHUNK_ROWS = "chunks.npy"
CLAUSE_ROWS = "clauses.npy"
TERMS_FILE = "terms.json"
# Decoded document texts kept per opened version: a question reads the sentences of a few documents many times.
TEXT_CACHE_DOCUMENTS = 256
BM25_DIR = "bm25"
# Where a version being written keeps its lexical postings until they are sorted (removed before it is hashed).
_SCRATCH_DIR = ".scratch"
# What `CURRENT` may name: a version directory right inside the index folder, never a path elsewhere.
_VERSION_NAME = re.compile(r"^v-[A-Za-z0-9_-]{1,100}$")
# The way out of every damaged or mismatched index, named in every refusal.
REBUILD_HINT = "rebuild it with 'python -m bot build --full'"
# Files up to this size are hashed at every open (a few milliseconds in all); larger ones (vectors, texts, the
# lexical index: gigabytes at 100k articles) only when their size or modification time differs from what the
# manifest recorded at build time, and always by `python -m bot verify`. See README, "The index".
HASH_AT_OPEN_MAX_BYTES = 1 << 20

Rows = npt.NDArray[np.int64]
_Item = TypeVar("_Item")


@dataclass(frozen=True)
class DocumentMetadata:
    """A document's fields but its text: what listing and sorting the articles needs."""

    doc_id: str
    title: str
    publisher: str | None
    published: str | None
    url: str | None
    content_hash: str


@dataclass(frozen=True)
class Document(DocumentMetadata):
    text: str


@dataclass(frozen=True)
class SentenceRow:
    document: int
    start: int
    end: int


@dataclass(frozen=True)
class ChunkRow:
    document: int
    position: int
    first_sentence: int
    last_sentence: int


@dataclass(frozen=True)
class ArticleParts:
    """One article's rows, indexed locally (sentence 0 is its first sentence), and its vectors when held in
    memory (a reused article's, or a new one's between embedding and writing)."""

    document: Document
    sentence_spans: list[tuple[int, int]]
    chunk_bounds: list[tuple[int, int]]
    clause_sentences: list[int]
    chunk_vectors: Vectors | None = None
    sentence_vectors: Vectors | None = None
    clause_vectors: Vectors | None = None
    multilingual_vectors: Vectors | None = None  # one per sentence, when made by the multilingual model in use


def search_text(title: str, chunk_text: str) -> str:
    """What is embedded and lexically indexed for a chunk: the article title gives it context."""
    return f"{title}\n{chunk_text}"


class _Stored(Sequence[_Item]):
    """A read-only sequence whose items are made when asked for (from memory-mapped files)."""

    def __init__(self, length: int) -> None:
        self._length = length

    def _item(self, number: int) -> _Item:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, number: int) -> _Item: ...

    @overload
    def __getitem__(self, numbers: slice) -> list[_Item]: ...

    def __getitem__(self, number: int | slice) -> _Item | list[_Item]:
        if isinstance(number, slice):
            return [self._item(n) for n in range(*number.indices(self._length))]
        if not -self._length <= number < self._length:
            raise IndexError(f"item {number} of {self._length}")
        return self._item(number % self._length)


class StoredDocuments(_Stored[Document]):
    """The documents of an opened version: their metadata in memory, each text decoded from the memory-mapped
    texts file when asked for (a few recent ones kept decoded)."""

    def __init__(self, metadata: list[DocumentMetadata], texts: npt.NDArray[np.uint8], offsets: Rows) -> None:
        if (
            len(offsets) != len(metadata) + 1
            or int(offsets[0]) != 0
            or int(offsets[-1]) > len(texts)
            or (np.diff(offsets) < 0).any()
        ):
            raise ValueError("the text offsets do not match the documents")
        super().__init__(len(metadata))
        self.metadata = metadata
        self._texts = texts
        self._offsets = offsets
        # Decoded texts by document number, least recently used dropped (not functools.lru_cache on a method:
        # that would tie the cache to this object in a cycle and keep a replaced version's maps open).
        self._recent: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def text(self, number: int) -> str:
        """The text of document `number`."""
        with self._lock:
            found = self._recent.get(number)
            if found is not None:
                self._recent.move_to_end(number)
                return found
        start, end = self.span(number)
        decoded = bytes(self._texts[start:end]).decode("utf-8")
        with self._lock:
            self._recent[number] = decoded
            if len(self._recent) > TEXT_CACHE_DOCUMENTS:
                self._recent.popitem(last=False)
        return decoded

    def span(self, number: int) -> tuple[int, int]:
        """Where the text of document `number` is in the texts file: its first byte and the byte after it."""
        return int(self._offsets[number]), int(self._offsets[number + 1])

    def _item(self, number: int) -> Document:
        d = self.metadata[number]
        return Document(d.doc_id, d.title, d.publisher, d.published, d.url, d.content_hash, self.text(number))


class _StoredRows(_Stored[_Item]):
    """Rows of a memory-mapped integer table, one `make(*columns)` per row asked for."""

    def __init__(self, table: Rows, make: Callable[..., _Item]) -> None:
        super().__init__(len(table))
        self.table = table
        self._make = make

    def _item(self, number: int) -> _Item:
        return self._make(*self.table[number].tolist())


@dataclass
class IndexData:
    """Everything an index version holds: what build.py writes (in lists) and the engine reads (an opened
    version's rows, texts and vectors memory-mapped)."""

    documents: Sequence[Document]
    sentences: Sequence[SentenceRow]
    chunks: Sequence[ChunkRow]
    chunk_vectors: Vectors
    sentence_vectors: Vectors
    clause_sentences: Sequence[int] | Rows
    clause_vectors: Vectors
    # The sentences' term statistics, counted when the version was written (bot/lexicon.py).
    term_statistics: TermStatistics
    # One multilingual-model vector per sentence (passage side), or None when the index was built without them.
    multilingual_vectors: Vectors | None = None

    def document_metadata(self, document: int) -> DocumentMetadata:
        if isinstance(self.documents, StoredDocuments):
            return self.documents.metadata[document]
        return self.documents[document]

    def document_text(self, document: int) -> str:
        if isinstance(self.documents, StoredDocuments):
            return self.documents.text(document)
        return self.documents[document].text

    def sentence_text(self, sentence: int) -> str:
        row = self.sentences[sentence]
        return self.document_text(row.document)[row.start : row.end]

    def chunk_text(self, chunk: int) -> str:
        row = self.chunks[chunk]
        text = self.document_text(row.document)
        return text[self.sentences[row.first_sentence].start : self.sentences[row.last_sentence].end]

    def chunk_search_text(self, chunk: int) -> str:
        return search_text(self.document_metadata(self.chunks[chunk].document).title, self.chunk_text(chunk))

    def document_sentences(self, document: int) -> range:
        """The sentence numbers of a document (builds write each document's rows together, in order)."""
        starts = self._sentence_starts
        return range(int(starts[document]), int(starts[document + 1]))

    def document_chunks(self, document: int) -> range:
        starts = self._chunk_starts
        return range(int(starts[document]), int(starts[document + 1]))

    def clauses_of(self, sentence: int) -> range:
        """The clause numbers of a sentence (written in the order of their sentences)."""
        owners = self._clause_owners
        return range(
            int(np.searchsorted(owners, sentence, side="left")), int(np.searchsorted(owners, sentence, side="right"))
        )

    def article_parts(
        self, document: int, *, multilingual: bool = True, files: VersionFiles | None = None
    ) -> ArticleParts:
        """A document as a build hands it to `VersionWriter`: its rows numbered within it, and copies of its
        vectors (with its multilingual ones when the index holds them and `multilingual` asks for them). With
        `files`, its text and vectors are read from them rather than through this version's maps."""
        sentences, chunks = self.document_sentences(document), self.document_chunks(document)
        first = sentences.start
        clauses = range(self.clauses_of(first).start, self.clauses_of(sentences[-1]).stop) if sentences else range(0)
        others = self.multilingual_vectors if multilingual else None

        def copied(held: Vectors, name: str, rows: range) -> Vectors:
            if files is not None and files.has(name):
                return files.vectors(name, rows)
            return np.array(held[rows.start : rows.stop])

        return ArticleParts(
            document=self.documents[document] if files is None else files.document(document),
            sentence_spans=[(row.start, row.end) for row in self.sentences[sentences.start : sentences.stop]],
            chunk_bounds=[
                (row.first_sentence - first, row.last_sentence - first)
                for row in self.chunks[chunks.start : chunks.stop]
            ],
            clause_sentences=[int(self.clause_sentences[c]) - first for c in clauses],
            chunk_vectors=copied(self.chunk_vectors, CHUNK_VECTORS, chunks),
            sentence_vectors=copied(self.sentence_vectors, SENTENCE_VECTORS, sentences),
            clause_vectors=copied(self.clause_vectors, CLAUSE_VECTORS, clauses),
            multilingual_vectors=None if others is None else copied(others, MULTILINGUAL_VECTORS, sentences),
        )

    @functools.cached_property
    def _sentence_starts(self) -> Rows:
        return _starts(self.sentences, len(self.documents))

    @functools.cached_property
    def _chunk_starts(self) -> Rows:
        return _starts(self.chunks, len(self.documents))

    @functools.cached_property
    def _clause_owners(self) -> Rows:
        return np.asarray(self.clause_sentences, dtype=np.int64)


class VersionFiles:
    """An opened version's texts and vectors read with ordinary reads (bot/spool.py), not through its maps: a
    build or copy that reads every article of a version once then keeps none of them resident (a map counts
    every page it touched as the process's own until it is dropped). Vectors the version keeps in no file of
    their own (chunk vectors inside a Flat or HNSW index) are not here: `has` tells."""

    def __init__(self, directory: Path, data: IndexData) -> None:
        if not isinstance(data.documents, StoredDocuments):
            raise ValueError("only a version opened from its directory has files to read")
        self._documents = data.documents
        names = [CHUNK_VECTORS, SENTENCE_VECTORS, CLAUSE_VECTORS, MULTILINGUAL_VECTORS]
        self._vectors = {name: NpyRows(directory / name) for name in names if (directory / name).exists()}
        # Held open until `close`: another process may remove the version (an old copy) while it is read.
        self._fds = {name: os.open(directory / name, os.O_RDONLY) for name in [*self._vectors, TEXTS_FILE]}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def has(self, name: str) -> bool:
        return name in self._vectors

    def vectors(self, name: str, rows: range) -> Vectors:
        """Rows `rows` of the vector file `name` (a copy)."""
        return self._vectors[name].read(rows.start, rows.stop, self._fds[name]).astype(np.float32, copy=False)

    def document(self, number: int) -> Document:
        """Document `number` with its text."""
        start, end = self._documents.span(number)
        text = os.pread(self._fds[TEXTS_FILE], end - start, start).decode("utf-8")
        d = self._documents.metadata[number]
        return Document(d.doc_id, d.title, d.publisher, d.published, d.url, d.content_hash, text)


def _starts(rows: Sequence[SentenceRow] | Sequence[ChunkRow], documents: int) -> Rows:
    """Where each document's rows start (and, last, where the rows end): rows are in document order."""
    if isinstance(rows, _StoredRows):
        owners = rows.table[:, 0]
    else:
        owners = np.fromiter((row.document for row in rows), dtype=np.int64, count=len(rows))
    return np.searchsorted(owners, np.arange(documents + 1), side="left")


@dataclass
class LoadedIndex:
    """An index version read from disk and verified against its manifest: the FAISS directory's
    `PassageStore` (bot/stores/base.py)."""

    version: str
    manifest: Manifest
    data: IndexData
    faiss_index: Any
    bm25: Any
    # The FAISS index's kind and search parameters as the manifest records them (bot/ann.py).
    ann_spec: ann.AnnSpec

    def dense_search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """Up to `k` chunks nearest `query` by inner product (FAISS), best first."""
        total = self.faiss_index.ntotal
        if total == 0 or k <= 0:
            return []
        scores, labels = ann.search(
            self.faiss_index, self.data.chunk_vectors, query.reshape(1, -1), min(k, total), self.ann_spec
        )
        # FAISS pads with label -1 when it has fewer results than asked: never let that index a chunk.
        return [(int(label), float(score)) for label, score in zip(labels[0], scores[0], strict=True) if label >= 0]

    def lexical_search(self, terms: list[str], k: int) -> list[int]:
        """Up to `k` chunks by BM25 score over `terms`, best first; chunks holding none of them are left out."""
        if not terms or k <= 0 or self.faiss_index.ntotal == 0:
            return []
        return bm25_top(self.bm25, terms, k)


def bm25_top(retriever: Any, terms: list[str], k: int) -> list[int]:
    """The `k` best passages of a bm25s index for `terms` (best first; ties: lower position first), each holding
    at least one of them.

    Only the postings of the question's terms are read and summed, as bm25s sums them (float32, in the order of
    the terms): scoring every passage and then choosing among a million scores cost ten times the search.
    """
    token_ids = retriever.get_tokens_ids(terms)
    postings = retriever.scores
    data, indices, pointers = postings["data"], postings["indices"], postings["indptr"]
    # bm25s's own empty token has an id past the postings: it matches nothing.
    spans = [(int(pointers[token]), int(pointers[token + 1])) for token in token_ids if token + 1 < len(pointers)]
    spans = [(start, end) for start, end in spans if end > start]
    if not spans:
        return []
    passages = np.concatenate([indices[start:end] for start, end in spans])
    found, position = np.unique(passages, return_inverse=True)
    scores = np.zeros(len(found), dtype=np.float32)
    np.add.at(scores, position, np.concatenate([data[start:end] for start, end in spans]).astype(np.float32))
    return [int(found[i]) for i in top_positions(scores, k) if scores[i] > 0]


def top_positions(scores: Vectors, count: int) -> list[int]:
    """The positions of the `count` highest scores, highest first (ties: lower position first), without sorting
    every score: at a million passages a full sort costs more than the search itself."""
    if count <= 0:
        return []
    if len(scores) <= count:
        top = np.arange(len(scores))
    else:
        top = np.argpartition(-scores, count - 1)[:count]
        floor = scores[top].min()
        if floor > 0:
            # The partition may cut through a run of equal scores: the lower positions of the run go first.
            top = np.union1d(top, np.flatnonzero(scores == floor))
    return sorted((int(i) for i in top), key=lambda i: (-scores[i], i))[:count]


def current_version(index_dir: Path) -> str | None:
    """The version `CURRENT` names, or None when no index has been built."""
    try:
        return (index_dir / CURRENT).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _listing(directory: Path) -> dict[str, Path | None]:
    """Every file of a version directory except the manifest, by relative path; anything else found there (a
    folder of its own, a link, a pipe) maps to None, so that it never matches a manifest."""
    files: dict[str, Path | None] = {}
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            files[name] = None
        elif path.is_file() and name != MANIFEST:
            files[name] = path
        elif path.is_dir() and name != BM25_DIR:
            files[name] = None
    return files


def file_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file in a version directory except the manifest, by relative path ("foreign" for
    anything that is not a plain file)."""
    return {name: "foreign" if path is None else sha256_file(path) for name, path in _listing(directory).items()}


def file_stats(directory: Path) -> dict[str, list[int]]:
    """Size and modification time (ns) of every file of a version directory, as the manifest records them."""
    stats = {}
    for name, path in _listing(directory).items():
        if path is not None:
            status = path.stat()
            stats[name] = [status.st_size, status.st_mtime_ns]
    return stats


def looks_intact(directory: Path, manifest: Manifest) -> bool:
    """A cheap check that a version's files are those it was built with (same names, sizes and times), for
    deciding that a rebuild has nothing to do without hashing every file; `open_index` still verifies them."""
    recorded = manifest.raw.get("file_stats")
    listing = _listing(directory)
    # Anything foreign (a folder, a link) is left out of the stats but makes the version refused at open.
    if None in listing.values() or listing.keys() != manifest.files.keys():
        return False
    return isinstance(recorded, dict) and recorded == file_stats(directory)


def damaged_files(
    directory: Path, manifest: Manifest, *, full: bool = False, hash_at_open_max_bytes: int = HASH_AT_OPEN_MAX_BYTES
) -> list[str]:
    """The files of a version that are missing, foreign or altered since its build.

    Without `full`, a file larger than `hash_at_open_max_bytes` whose size and modification time are those the
    manifest recorded is taken as unaltered without reading it; any other file is hashed. (An edit that keeps
    the size and restores the time is found only by `full`, as `python -m bot verify` runs it.)
    """
    expected = manifest.files
    recorded = manifest.raw.get("file_stats")
    stats = recorded if isinstance(recorded, dict) else {}
    present = _listing(directory)
    damaged = []
    for name in sorted(expected.keys() | present.keys()):
        path = present.get(name)
        if path is None or name not in expected:
            damaged.append(name)
            continue
        status = path.stat()
        if (
            not full
            and status.st_size > hash_at_open_max_bytes
            and stats.get(name) == [status.st_size, status.st_mtime_ns]
        ):
            continue
        if sha256_file(path) != expected[name]:
            damaged.append(name)
    return damaged


class VersionWriter:
    """Writes one index version into a new directory as its documents arrive, each with its vectors, in memory
    that does not grow with the corpus: rows, texts and vectors go straight to their files (bot/spool.py), the
    documents' metadata to SQLite, the lexical index's postings to a scratch file (bot/bm25_writer.py). What
    grows is what is per word (term statistics, the lexical vocabulary) and, at `finish`, the FAISS index's
    own memory (bot/ann.py). `finish` writes the rest, manifest last, all fsynced; `abandon` closes what is
    open when the build fails (the caller removes the directory).

    Without `searchable`, it writes neither the FAISS index nor the lexical index (and keeps the chunk vectors'
    file): a copy of a state that another store searches (bot/stores/pg_copy.py).
    """

    def __init__(
        self, directory: Path, dimension: int, multilingual_dimension: int | None = None, *, searchable: bool = True
    ) -> None:
        self.directory = directory
        self.dimension = dimension
        self.documents = self.sentences = self.chunks = self.clauses = 0
        self._chunk_vectors = ArraySpool(directory / CHUNK_VECTORS, "<f4", dimension)
        self._sentence_vectors = ArraySpool(directory / SENTENCE_VECTORS, "<f4", dimension)
        self._clause_vectors = ArraySpool(directory / CLAUSE_VECTORS, "<f4", dimension)
        self._multilingual_vectors = (
            None
            if multilingual_dimension is None
            else ArraySpool(directory / MULTILINGUAL_VECTORS, "<f4", multilingual_dimension)
        )
        self._sentence_rows = ArraySpool(directory / SENTENCE_ROWS, "<i8", 3)
        self._chunk_rows = ArraySpool(directory / CHUNK_ROWS, "<i8", 4)
        self._clause_rows = ArraySpool(directory / CLAUSE_ROWS, "<i8")
        self._text_offsets = ArraySpool(directory / TEXT_OFFSETS, "<i8")
        self._text_offsets.append([0])
        self._text_bytes = 0
        self._texts = (directory / TEXTS_FILE).open("wb")
        self._sqlite = sqlite3.connect(directory / SQLITE_FILE)
        self._sqlite.execute(
            """
            CREATE TABLE documents (id INTEGER PRIMARY KEY, doc_id TEXT UNIQUE NOT NULL, title TEXT NOT NULL,
                publisher TEXT, published TEXT, url TEXT, content_hash TEXT NOT NULL)
            """
        )
        self._terms = TermCounter()
        self._lexical: BM25Writer | None = None
        if searchable:
            scratch = directory / _SCRATCH_DIR
            scratch.mkdir()
            self._lexical = BM25Writer(scratch)

    def add(self, parts: ArticleParts) -> None:
        """One document with its rows and vectors, after those already added."""
        document = parts.document
        vectors = self._checked_vectors(parts)
        number, first = self.documents, self.sentences
        self._sqlite.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                document.doc_id,
                document.title,
                document.publisher,
                document.published,
                document.url,
                document.content_hash,
            ),
        )
        self._text_bytes += self._texts.write(document.text.encode("utf-8"))
        self._text_offsets.append([self._text_bytes])
        spans = parts.sentence_spans
        self._sentence_rows.append([(number, start, end) for start, end in spans] or np.zeros((0, 3)))
        self._chunk_rows.append(
            [(number, position, first + a, first + b) for position, (a, b) in enumerate(parts.chunk_bounds)]
            or np.zeros((0, 4))
        )
        self._clause_rows.append([first + sentence for sentence in parts.clause_sentences])
        for spool, rows in zip(self._vector_spools(), vectors, strict=True):
            spool.append(rows)
        sentence_texts = [document.text[start:end] for start, end in spans]
        for tokens in self._terms.add_document(document.title, sentence_texts, parts.chunk_bounds):
            if self._lexical is not None:
                self._lexical.add(tokens)
        self.documents += 1
        self.sentences += len(spans)
        self.chunks += len(parts.chunk_bounds)
        self.clauses += len(parts.clause_sentences)

    def _vector_spools(self) -> list[ArraySpool]:
        spools = [self._chunk_vectors, self._sentence_vectors, self._clause_vectors]
        return spools if self._multilingual_vectors is None else [*spools, self._multilingual_vectors]

    def _checked_vectors(self, parts: ArticleParts) -> list[Vectors]:
        """The article's vectors in the order of `_vector_spools`, each checked to hold one row per row of the
        article, of the width written (a mismatch would otherwise only show when the version is opened)."""
        name = parts.document.doc_id
        if self._multilingual_vectors is None and parts.multilingual_vectors is not None:
            raise ValueError(f"{name}: multilingual vectors given to a version written without them")
        given = [parts.chunk_vectors, parts.sentence_vectors, parts.clause_vectors, parts.multilingual_vectors]
        rows = [
            len(parts.chunk_bounds),
            len(parts.sentence_spans),
            len(parts.clause_sentences),
            len(parts.sentence_spans),
        ]
        checked = []
        # Without a multilingual spool the last of `given` (None, checked above) has nothing to pair with.
        for spool, vectors, count in zip(self._vector_spools(), given, rows, strict=False):
            if vectors is None or vectors.shape != (count, spool.columns):
                found = "none" if vectors is None else f"shape {vectors.shape}"
                raise ValueError(
                    f"{name}: {count} vectors of width {spool.columns} expected in {spool.path.name}, {found} given"
                )
            checked.append(vectors)
        return checked

    def finish(self, manifest: dict[str, Any], ann_policy: ann.AnnPolicy = ann.DEFAULT_POLICY) -> None:
        """Write the FAISS index (its kind chosen by `ann_policy` for the number of chunks), the term statistics
        and the lexical index, then the manifest; fsync everything."""
        directory = self.directory
        self._close()
        searched: dict[str, Any] = {}
        if self._lexical is not None:
            spec = ann.choose(self.chunks, self.dimension, ann_policy)
            index = ann.build(NpyRows(directory / CHUNK_VECTORS), spec)
            faiss.write_index(index, str(directory / FAISS_FILE))
            searched = {"faiss_index": ann.faiss_type(index), "ann": spec.to_json()}
            del index
            if not spec.compressed:  # Flat and HNSW hold the vectors themselves (bot/ann.py: held once)
                (directory / CHUNK_VECTORS).unlink()
            self._lexical.write(directory / BM25_DIR)
            shutil.rmtree(directory / _SCRATCH_DIR)
        self._terms.statistics().write(directory / TERMS_FILE)
        for path in directory.rglob("*"):
            if path.is_file():
                fsync_path(path)
        manifest = {**manifest, **searched, "files": file_hashes(directory), "file_stats": file_stats(directory)}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        fsync_path(directory / MANIFEST)
        if self._lexical is not None:
            fsync_path(directory / BM25_DIR)
        fsync_path(directory)

    def abandon(self) -> None:
        """Close every open file (the build failed: the caller removes the directory)."""
        for spool in self._spools():
            spool.abandon()
        self._texts.close()
        self._sqlite.close()
        if self._lexical is not None:
            self._lexical.close()

    def _spools(self) -> list[ArraySpool]:
        return [*self._vector_spools(), self._sentence_rows, self._chunk_rows, self._clause_rows, self._text_offsets]

    def _close(self) -> None:
        for spool in self._spools():
            spool.close()
        self._texts.close()
        with self._sqlite:
            pass  # commits the inserts
        self._sqlite.close()


def fsync_path(path: Path) -> None:
    """Flush a file or directory entry to disk, so a crash after it cannot leave it half-written."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of a version directory: a garbled one raises `IndexCorruptError`, one of another format
    `IndexMismatchError`."""
    try:
        raw: Any = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{directory} has no {MANIFEST}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{directory / MANIFEST} is not valid JSON ({exc})") from None
    if isinstance(raw, dict) and raw.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"the index has format {raw.get('format_version')!r}, this version reads {FORMAT_VERSION}"
        )
    return Manifest.parse(raw, str(directory / MANIFEST), version=directory.name)


def open_index(index_dir: Path, embedder: Embedder | None = None, version: str | None = None) -> LoadedIndex:
    """Read and verify the index `CURRENT` names (or `version`); large files are checked by size and time (see
    `damaged_files`), the vectors memory-mapped or viewed in FAISS's storage, never copied.

    Raises `IndexMissingError` when there is none, `IndexCorruptError` when a file is missing or altered, and
    `IndexMismatchError` when it was built for another format or for a model other than `embedder`. Every
    message but the first ends with the way out, `python -m bot build --full`.
    """
    version = version or current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in {index_dir}: build it with 'python -m bot build'")
    try:
        return _open_version(index_dir, version, embedder)
    except IndexStoreError as exc:
        if "build --full" in str(exc):
            raise
        raise type(exc)(f"{exc}; {REBUILD_HINT}") from None


def verify_version(index_dir: Path, version: str | None = None) -> str:
    """Hash every file of the version `CURRENT` names (or `version`) against its manifest; returns the version.

    `open_index` takes a large file whose size and modification time are unchanged on trust; this reads every
    byte (`python -m bot verify`). Raises `IndexCorruptError` naming the damaged files.
    """
    version = version or current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in {index_dir}: build it with 'python -m bot build'")
    directory = _version_directory(index_dir, version)
    damaged = damaged_files(directory, read_manifest(directory), full=True)
    if damaged:
        raise IndexCorruptError(f"index files missing or altered since the build: {', '.join(damaged)}; {REBUILD_HINT}")
    return version


def _version_directory(index_dir: Path, version: str) -> Path:
    if not _VERSION_NAME.match(version):
        raise IndexCorruptError(f"{index_dir / CURRENT} names {version[:120]!r}, which is not an index version")
    directory = index_dir / version
    if directory.is_symlink() or not directory.is_dir():
        raise IndexCorruptError(f"{index_dir / CURRENT} names {version!r}, which does not exist")
    return directory


def _open_version(index_dir: Path, version: str, embedder: Embedder | None) -> LoadedIndex:
    directory = _version_directory(index_dir, version)
    manifest = read_manifest(directory)
    manifest.check_model(embedder)
    spec = ann.spec_from_manifest(manifest.raw)
    if spec is None:
        raise IndexMismatchError(f"index {version} records a FAISS index this version does not know how to search")
    damaged = damaged_files(directory, manifest)
    if damaged:
        raise IndexCorruptError(f"index files missing or altered since the build: {', '.join(damaged)}")
    dimension = manifest.model.dimension
    try:
        faiss_index = ann.read(directory / FAISS_FILE, spec)
        if faiss_index.d != dimension or (embedder is not None and dimension != embedder.dimension):
            raise IndexMismatchError(f"index {version} holds vectors of {faiss_index.d} dimensions, not {dimension}")
        data = read_data(directory, manifest, _chunk_vectors(directory, faiss_index, spec, dimension))
        bm25 = bm25s.BM25.load(str(directory / BM25_DIR), mmap=True, allow_pickle=False, show_progress=False)
    except (OSError, RuntimeError, ValueError, IndexError, sqlite3.Error) as exc:
        raise IndexCorruptError(f"index {version} cannot be read: {exc}") from None
    if faiss_index.ntotal != len(data.chunks):
        raise IndexCorruptError(f"index {version} has vector counts that do not match its chunks and sentences")
    return LoadedIndex(version=version, manifest=manifest, data=data, faiss_index=faiss_index, bm25=bm25, ann_spec=spec)


def read_data(directory: Path, manifest: Manifest, chunk_vectors: Vectors | None = None) -> IndexData:
    """A version's rows, texts, term statistics and vectors, memory-mapped: pages are read when a question
    touches them, and shared by every process serving them. The chunk vectors are `chunk_vectors` when given
    (FAISS's own storage), else their file's.

    Raises `ValueError` (or `OSError`, `sqlite3.Error`) when a file is unreadable or its rows do not match.
    """
    data = _read_rows(directory)
    dimension = manifest.model.dimension
    if chunk_vectors is None:
        chunk_vectors = np.load(directory / CHUNK_VECTORS, mmap_mode="r", allow_pickle=False)
    data.chunk_vectors = chunk_vectors
    data.sentence_vectors = np.load(directory / SENTENCE_VECTORS, mmap_mode="r", allow_pickle=False)
    data.clause_vectors = np.load(directory / CLAUSE_VECTORS, mmap_mode="r", allow_pickle=False)
    if manifest.multilingual is not None:
        data.multilingual_vectors = np.load(directory / MULTILINGUAL_VECTORS, mmap_mode="r", allow_pickle=False)
    if (
        data.chunk_vectors.shape != (len(data.chunks), dimension)
        or data.sentence_vectors.shape != (len(data.sentences), dimension)
        or data.clause_vectors.shape != (len(data.clause_sentences), dimension)
        or (
            manifest.multilingual is not None
            and data.multilingual_vectors is not None
            and data.multilingual_vectors.shape != (len(data.sentences), manifest.multilingual.dimension)
        )
    ):
        raise ValueError("vector counts do not match the chunks and sentences")
    return data


def _chunk_vectors(directory: Path, faiss_index: Any, spec: ann.AnnSpec, dimension: int) -> Vectors:
    """The exact chunk vectors, held once: FAISS's own storage, or the memory-mapped file beside a compressed
    index."""
    if spec.compressed:
        vectors: Vectors = np.load(directory / CHUNK_VECTORS, mmap_mode="r", allow_pickle=False)
        return vectors
    stored = ann.stored_vectors(faiss_index)
    return np.zeros((0, dimension), dtype=np.float32) if stored is None else stored


def _read_rows(directory: Path) -> IndexData:
    """The documents' metadata, their texts and rows memory-mapped, and the term statistics; the vectors are
    the caller's."""
    connection = sqlite3.connect(f"file:{directory / SQLITE_FILE}?mode=ro", uri=True)
    try:
        metadata = [
            DocumentMetadata(*row)
            for row in connection.execute(
                "SELECT doc_id, title, publisher, published, url, content_hash FROM documents ORDER BY id"
            )
        ]
    finally:
        connection.close()
    texts_path = directory / TEXTS_FILE
    # A memory map of an empty file is refused, and an index of no documents has one.
    texts = np.memmap(texts_path, dtype=np.uint8, mode="r") if texts_path.stat().st_size else np.zeros(0, np.uint8)
    sentences = _load_rows(directory / SENTENCE_ROWS, 3)
    chunks = _load_rows(directory / CHUNK_ROWS, 4)
    clauses = _load_rows(directory / CLAUSE_ROWS, None)
    # Checked once here, so that a damaged table is refused at open rather than failing a question later.
    # Rows are written in document order (sentences, chunks) and sentence order (clauses): the ranges read by
    # `IndexData.document_sentences` and `clauses_of` rely on it.
    if (
        (sentences[:, 0] >= len(metadata)).any()
        or (chunks[:, 0] >= len(metadata)).any()
        or (chunks[:, 2:] >= len(sentences)).any()
        or (clauses >= len(sentences)).any()
        or min(sentences.min(initial=0), chunks.min(initial=0), clauses.min(initial=0)) < 0
        or (sentences[:, 1] > sentences[:, 2]).any()
        or (chunks[:, 2] > chunks[:, 3]).any()
        or any((np.diff(column) < 0).any() for column in (sentences[:, 0], chunks[:, 0], clauses))
    ):
        raise ValueError("a row names a document or sentence the index does not hold, or rows are out of order")
    empty = np.zeros((0, 0), dtype=np.float32)
    return IndexData(
        documents=StoredDocuments(metadata, texts, _load_rows(directory / TEXT_OFFSETS, None)),
        sentences=_StoredRows(sentences, SentenceRow),
        chunks=_StoredRows(chunks, ChunkRow),
        chunk_vectors=empty,
        sentence_vectors=empty,
        clause_sentences=clauses,
        clause_vectors=empty,
        term_statistics=TermStatistics.read(directory / TERMS_FILE),
    )


def _load_rows(path: Path, columns: int | None) -> Rows:
    """A memory-mapped integer table (a plain array view: a memmap's own indexing costs microseconds a row)."""
    table = np.load(path, mmap_mode="r", allow_pickle=False)
    shape_ok = table.ndim == 1 if columns is None else table.ndim == 2 and table.shape[1] == columns
    if table.dtype != np.int64 or not shape_ok:
        raise ValueError(f"{path.name} holds {table.dtype} {table.shape}, not the rows of an index")
    rows: Rows = table.view(np.ndarray)
    return rows
