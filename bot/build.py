"""Rebuild the index from `corpus/`: incrementally, atomically, and without losing the index in use.

Only new or changed articles are embedded; unchanged ones keep their vectors from the version in use (the
multilingual sentence vectors, when a multilingual model is given, likewise: see bot/multilingual.py). The
new version is written to a temporary directory, fsynced, renamed into place, and only then named by
`CURRENT` (written to a temporary file and `os.replace`d), so a crash at any point leaves the previous
version serving. Builds are serialized by a lock file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot import store
from bot.chunking import ChunkingSettings, chunk_sentences, split_clauses, split_sentences
from bot.corpus import MAX_ARTICLE_BYTES, Article, CorpusFile, fingerprint, load_article, scan, text_key
from bot.embedding import Embedder, Vectors
from bot.english import terms
from bot.errors import ArticleError, ArticleGoneError, BuildError, IndexStoreError
from bot.manifest import chunking_manifest
from bot.multilingual import MultilingualModel

_BUILD_PREFIX = ".build-"


@dataclass
class BuildReport:
    """What a build did, for the summary line and for tests."""

    version: str | None = None
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)  # file → the file with the same article, indexed
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    embedded_texts: int = 0
    multilingual_texts: int = 0  # sentences embedded by the multilingual model
    seconds: float = 0.0
    up_to_date: bool = False
    full_reason: str | None = None

    def summary(self) -> str:
        head = f"Index {self.version} is up to date" if self.up_to_date else f"Built index {self.version}"
        counts = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped, {len(self.duplicates)} duplicates; "
            f"{self.documents} articles, {self.chunks} chunks, {self.sentences} sentences; {self.seconds:.1f} s"
        )
        lines = [f"{head}: {counts}"]
        if self.full_reason:
            lines.append(f"Full rebuild: {self.full_reason}")
        if self.multilingual_texts:
            lines.append(f"Embedded {self.multilingual_texts} sentences for questions not in English")
        lines += [f"  skipped {name}: {reason}" for name, reason in sorted(self.skipped.items())]
        lines += [
            f"  duplicate {name}: the same article as {original}, indexed once"
            for name, original in sorted(self.duplicates.items())
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class _ArticleParts:
    """One article's rows and vectors, indexed locally (sentence 0 is its first sentence)."""

    document: store.Document
    sentence_spans: list[tuple[int, int]]
    chunk_bounds: list[tuple[int, int]]
    chunk_vectors: Vectors
    sentence_vectors: Vectors
    clause_sentences: list[int]
    clause_vectors: Vectors
    multilingual_vectors: Vectors | None = None  # one per sentence, when made by the multilingual model in use


ProgressFactory = Callable[[int], Any]


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    chunking: ChunkingSettings,
    *,
    full: bool = False,
    progress: ProgressFactory | None = None,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
    strict: bool = False,
    multilingual: MultilingualModel | None = None,
) -> BuildReport:
    """Bring the index up to date with `corpus_dir`; see the module docstring for the guarantees.

    A file that cannot be used is skipped and named in the report; with `strict`, any skip fails the build
    (`BuildError`) and nothing is published. The same article under two names is indexed once, under the
    first name in sorted order, and the other is named in `report.duplicates`. With a `multilingual` model,
    every sentence is also embedded by it (passage side) for questions not in English; without one, the new
    version holds no such vectors.
    """
    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(index_dir):
        _remove_abandoned_builds(index_dir)
        report = BuildReport()
        files = scan(corpus_dir)
        previous, report.full_reason = _reusable_previous(index_dir, embedder, chunking, full)
        if (
            previous is not None
            and previous.manifest.corpus_fingerprint == fingerprint(files)
            and (multilingual is None or previous.manifest.has_multilingual(multilingual))
        ):
            report.version = previous.version
            report.up_to_date = True
            report.unchanged = sorted(previous.manifest.documents)
            report.skipped = {name: entry["reason"] for name, entry in previous.manifest.skipped.items()}
            report.duplicates = dict(previous.manifest.raw.get("duplicates", {}))
            _count(report, previous.data)
            report.seconds = time.perf_counter() - started
            _refuse_skips(report, strict)
            return report

        reusable = _previous_parts(previous, multilingual)
        previous_hashes = _current_documents(index_dir)
        parts: list[_ArticleParts] = []
        to_embed: list[Article] = []
        seen: dict[str, str] = {}  # text key → the file indexed with that text
        gone: set[str] = set()
        for number, file in enumerate(files):
            old = reusable.get(file.name)
            if old is not None and old.document.content_hash == file.sha256:
                if _is_duplicate(report, seen, file.name, old.document.text):
                    continue
                parts.append(old)
                report.unchanged.append(file.name)
                continue
            try:
                article = load_article(file, max_article_bytes)
            except ArticleGoneError:  # Deleted since the scan: the corpus no longer has it.
                gone.add(file.name)
                continue
            except ArticleError as exc:
                report.skipped[file.name] = str(exc)
                continue
            if article.content_hash != file.sha256:  # Rewritten since the scan: what was read is what counts.
                files[number] = dataclasses.replace(file, sha256=article.content_hash)
            if not _is_duplicate(report, seen, file.name, article.text):
                to_embed.append(article)
        files = [file for file in files if file.name not in gone]
        _refuse_skips(report, strict)
        embedded = _embed_articles(to_embed, embedder, chunking, progress, report)
        for part in embedded:
            previous_hash = previous_hashes.get(part.document.doc_id)
            if previous_hash is None:
                report.added.append(part.document.doc_id)
            elif previous_hash != part.document.content_hash:
                report.changed.append(part.document.doc_id)
            else:  # Re-embedded only because the model or the chunking changed.
                report.unchanged.append(part.document.doc_id)
        parts += embedded
        if multilingual is not None:
            parts = _embed_multilingual(parts, multilingual, progress, report)
        present = {part.document.doc_id for part in parts} | set(report.skipped) | set(report.duplicates)
        report.removed = sorted(previous_hashes.keys() - present)

        if not parts:
            raise BuildError(
                f"no article in {corpus_dir} could be read, so there is nothing to index"
                + "".join(f"\n  {name}: {reason}" for name, reason in sorted(report.skipped.items()))
            )
        parts.sort(key=lambda part: part.document.doc_id)
        data = _assemble(parts, embedder.dimension, multilingual)
        _refuse_skips(report, strict)
        manifest = _manifest(embedder, chunking, files, parts, report.skipped, multilingual)
        manifest["duplicates"] = dict(sorted(report.duplicates.items()))
        report.version = _publish(index_dir, data, manifest)
        _count(report, data)
        report.seconds = time.perf_counter() - started
        return report


def _is_duplicate(report: BuildReport, seen: dict[str, str], name: str, text: str) -> bool:
    """Whether `name` holds an article already taken under another name (and then record it as a duplicate)."""
    key = text_key(text)
    original = seen.setdefault(key, name)
    if original == name:
        return False
    report.duplicates[name] = original
    return True


def _refuse_skips(report: BuildReport, strict: bool) -> None:
    if strict and report.skipped:
        raise BuildError(
            f"{len(report.skipped)} file(s) could not be used and --strict forbids skipping them; nothing was "
            "published, the previous index is still in use"
            + "".join(f"\n  {name}: {reason}" for name, reason in sorted(report.skipped.items()))
        )


def _count(report: BuildReport, data: store.IndexData) -> None:
    report.documents, report.chunks, report.sentences = (
        len(data.documents),
        len(data.chunks),
        len(data.sentences),
    )


def _reusable_previous(
    index_dir: Path, embedder: Embedder, chunking: ChunkingSettings, full: bool
) -> tuple[store.LoadedIndex | None, str | None]:
    """The version in use, if its vectors can be reused; otherwise None and why."""
    if full:
        return None, "requested (--full)" if store.current_version(index_dir) else None
    try:
        previous = store.open_index(index_dir, embedder)
    except IndexStoreError as exc:
        return None, None if store.current_version(index_dir) is None else f"the previous index is unusable: {exc}"
    if previous.manifest.chunking != chunking_manifest(chunking):
        return None, "chunking or cleaning settings changed"
    return previous, None


def _current_documents(index_dir: Path) -> dict[str, str]:
    """The articles of the version in use and their content hashes, even when its vectors cannot be reused."""
    version = store.current_version(index_dir)
    if version is None:
        return {}
    try:
        documents = store.read_manifest(index_dir / version).documents
    except IndexStoreError:
        return {}
    return {name: str(entry.get("content_hash")) for name, entry in documents.items()}


def _previous_parts(
    previous: store.LoadedIndex | None, multilingual: MultilingualModel | None
) -> dict[str, _ArticleParts]:
    if previous is None:
        return {}
    data = previous.data
    # Multilingual vectors are reused only when made by the same multilingual model.
    multilingual_vectors = (
        data.multilingual_vectors
        if multilingual is not None and previous.manifest.has_multilingual(multilingual)
        else None
    )
    sentence_ids: dict[int, list[int]] = {}
    chunk_ids: dict[int, list[int]] = {}
    clause_ids: dict[int, list[int]] = {}
    for sentence_id, sentence in enumerate(data.sentences):
        sentence_ids.setdefault(sentence.document, []).append(sentence_id)
    for chunk_id, chunk in enumerate(data.chunks):
        chunk_ids.setdefault(chunk.document, []).append(chunk_id)
    for clause_id, sentence_id in enumerate(data.clause_sentences):
        clause_ids.setdefault(data.sentences[sentence_id].document, []).append(clause_id)
    parts = {}
    for number, document in enumerate(data.documents):
        sentences, chunks = sentence_ids.get(number, []), chunk_ids.get(number, [])
        clauses = clause_ids.get(number, [])
        first = sentences[0] if sentences else 0
        parts[document.doc_id] = _ArticleParts(
            document=document,
            sentence_spans=[(data.sentences[i].start, data.sentences[i].end) for i in sentences],
            chunk_bounds=[
                (data.chunks[c].first_sentence - first, data.chunks[c].last_sentence - first) for c in chunks
            ],
            chunk_vectors=data.chunk_vectors[chunks],
            sentence_vectors=data.sentence_vectors[sentences],
            clause_sentences=[data.clause_sentences[c] - first for c in clauses],
            clause_vectors=data.clause_vectors[clauses],
            multilingual_vectors=None if multilingual_vectors is None else multilingual_vectors[sentences],
        )
    return parts


def _embed_articles(
    articles: list[Article],
    embedder: Embedder,
    chunking: ChunkingSettings,
    progress: ProgressFactory | None,
    report: BuildReport,
) -> list[_ArticleParts]:
    parts = []
    bar = progress(len(articles)) if progress and articles else None
    for article in articles:
        spans = split_sentences(article.text)
        if not spans:
            report.skipped[article.doc_id] = "no sentences found in the article text"
            continue
        chunks = chunk_sentences(spans, article.text, chunking)
        document = store.Document(
            article.doc_id,
            article.title,
            article.publisher,
            article.published,
            article.url,
            article.content_hash,
            article.text,
        )
        sentence_texts = [article.text[start:end] for start, end in spans]
        chunk_texts = [
            store.search_text(article.title, article.text[spans[c.first_sentence][0] : spans[c.last_sentence][1]])
            for c in chunks
        ]
        clauses = [(number, clause) for number, text in enumerate(sentence_texts) for clause in split_clauses(text)]
        vectors = embedder.embed(chunk_texts + sentence_texts + [clause for _, clause in clauses])
        report.embedded_texts += len(vectors)
        sentences_end = len(chunks) + len(sentence_texts)
        parts.append(
            _ArticleParts(
                document=document,
                sentence_spans=spans,
                chunk_bounds=[(c.first_sentence, c.last_sentence) for c in chunks],
                chunk_vectors=vectors[: len(chunks)],
                sentence_vectors=vectors[len(chunks) : sentences_end],
                clause_sentences=[number for number, _ in clauses],
                clause_vectors=vectors[sentences_end:],
            )
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return parts


def _embed_multilingual(
    parts: list[_ArticleParts],
    model: MultilingualModel,
    progress: ProgressFactory | None,
    report: BuildReport,
) -> list[_ArticleParts]:
    """Every part with multilingual sentence vectors: those reused from the previous version are kept, the
    others' sentences are embedded now (as passages)."""
    missing = [part for part in parts if part.multilingual_vectors is None]
    bar = progress(len(missing)) if progress and missing else None
    done: dict[str, _ArticleParts] = {}
    for part in missing:
        texts = [part.document.text[start:end] for start, end in part.sentence_spans]
        vectors = model.embed(texts)
        report.multilingual_texts += len(texts)
        done[part.document.doc_id] = dataclasses.replace(part, multilingual_vectors=vectors)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return [done.get(part.document.doc_id, part) for part in parts]


def _assemble(
    parts: list[_ArticleParts], dimension: int, multilingual: MultilingualModel | None = None
) -> store.IndexData:
    documents: list[store.Document] = []
    sentences: list[store.SentenceRow] = []
    chunks: list[store.ChunkRow] = []
    clause_sentences: list[int] = []
    for number, part in enumerate(parts):
        offset = len(sentences)
        documents.append(part.document)
        clause_sentences += [offset + sentence for sentence in part.clause_sentences]
        sentences += [store.SentenceRow(number, start, end) for start, end in part.sentence_spans]
        chunks += [
            store.ChunkRow(number, position, offset + first, offset + last)
            for position, (first, last) in enumerate(part.chunk_bounds)
        ]

    def stack(arrays: list[Vectors]) -> Vectors:
        return np.vstack(arrays).astype(np.float32) if arrays else np.zeros((0, dimension), np.float32)

    return store.IndexData(
        documents=documents,
        sentences=sentences,
        chunks=chunks,
        chunk_vectors=stack([part.chunk_vectors for part in parts]),
        sentence_vectors=stack([part.sentence_vectors for part in parts]),
        clause_sentences=clause_sentences,
        clause_vectors=stack([part.clause_vectors for part in parts]),
        multilingual_vectors=None
        if multilingual is None
        else np.vstack(
            [part.multilingual_vectors for part in parts if part.multilingual_vectors is not None]
            or [np.zeros((0, multilingual.dimension), np.float32)]
        ).astype(np.float32),
    )


def _manifest(
    embedder: Embedder,
    chunking: ChunkingSettings,
    files: list[CorpusFile],
    parts: list[_ArticleParts],
    skipped: dict[str, str],
    multilingual: MultilingualModel | None = None,
) -> dict[str, Any]:
    hashes = {file.name: file.sha256 for file in files}
    manifest: dict[str, Any] = {
        "format_version": store.FORMAT_VERSION,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "name": embedder.name,
            "fingerprint": embedder.fingerprint,
            "dimension": embedder.dimension,
        },
        "chunking": chunking_manifest(chunking),
        "corpus_fingerprint": fingerprint(files),
        "documents": {
            part.document.doc_id: {
                "content_hash": part.document.content_hash,
                "title": part.document.title,
                "sentences": len(part.sentence_spans),
                "chunks": len(part.chunk_bounds),
            }
            for part in parts
        },
        "skipped": {name: {"reason": reason, "content_hash": hashes.get(name)} for name, reason in skipped.items()},
        "counts": {
            "documents": len(parts),
            "chunks": sum(len(part.chunk_bounds) for part in parts),
            "sentences": sum(len(part.sentence_spans) for part in parts),
        },
    }
    if multilingual is not None:
        manifest["multilingual"] = {
            "name": multilingual.name,
            "fingerprint": multilingual.fingerprint,
            "dimension": multilingual.dimension,
        }
    return manifest


def _publish(index_dir: Path, data: store.IndexData, manifest: dict[str, Any]) -> str:
    """Write the version beside the current one, then swap `CURRENT` to it; returns the version name."""
    version = f"v-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    staging = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=index_dir))
    try:
        bm25_tokens = [terms(data.chunk_search_text(i)) for i in range(len(data.chunks))]
        store.write_version(staging, data, bm25_tokens, {**manifest, "version": version})
        staging.chmod(0o755)
        staging.rename(index_dir / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    store.fsync_path(index_dir)
    previous = store.current_version(index_dir)
    pointer = index_dir / f"{store.CURRENT}.tmp"
    with pointer.open("w", encoding="utf-8") as stream:
        stream.write(version + "\n")
        stream.flush()
        os.fsync(stream.fileno())
    pointer.replace(index_dir / store.CURRENT)  # atomic: readers see the old name or the new one
    store.fsync_path(index_dir)
    _remove_old_versions(index_dir, keep={version, previous})
    return version


def _remove_old_versions(index_dir: Path, keep: set[str | None]) -> None:
    """Every version but the new one and the one it replaced (readers may still be opening that one)."""
    for path in index_dir.glob("v-*"):
        if path.is_dir() and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _remove_abandoned_builds(index_dir: Path) -> None:
    """Staging directories left by a build that crashed (we hold the lock, so none is in progress)."""
    for path in index_dir.glob(f"{_BUILD_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    with (index_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# The narrow seam through which another store builds (bot/stores/pgvector.py): articles chunked and embedded
# exactly as a build does it, and a state assembled from their parts, so both stores hold the same vectors.
ArticleParts = _ArticleParts


def embed_articles(
    articles: list[Article],
    embedder: Embedder,
    chunking: ChunkingSettings,
    *,
    multilingual: MultilingualModel | None = None,
    progress: ProgressFactory | None = None,
) -> tuple[list[ArticleParts], dict[str, str]]:
    """Each article's rows and vectors (with multilingual sentence vectors when a model is given), and the
    articles left out with their reasons (no sentences found)."""
    report = BuildReport()
    parts = _embed_articles(articles, embedder, chunking, progress, report)
    if multilingual is not None:
        parts = _embed_multilingual(parts, multilingual, progress, report)
    return parts, report.skipped


def assemble(parts: list[ArticleParts], dimension: int, multilingual_dimension: int | None) -> store.IndexData:
    """One state's rows and vectors from its documents' parts, in the order given; with multilingual sentence
    vectors when `multilingual_dimension` is given (every part must then hold them)."""
    data = _assemble(parts, dimension)
    if multilingual_dimension is not None:
        data.multilingual_vectors = np.vstack(
            [part.multilingual_vectors for part in parts if part.multilingual_vectors is not None]
            or [np.zeros((0, multilingual_dimension), np.float32)]
        ).astype(np.float32)
    return data
