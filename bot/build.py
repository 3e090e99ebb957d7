"""Rebuild the index from `corpus/`: incrementally, atomically, and without losing the index in use.

Only new or changed articles are embedded; unchanged ones keep their vectors from the version in use (the
multilingual sentence vectors, when a multilingual model is given, likewise: see bot/multilingual.py). The
new version is written to a temporary directory, fsynced, renamed into place, and only then named by
`CURRENT` (written to a temporary file and `os.replace`d), so a crash at any point leaves the previous
version serving. Builds are serialized by a lock file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import store
from bot.article_vectors import EmbeddingPipeline, cut_article
from bot.chunking import ChunkingSettings
from bot.corpus import MAX_ARTICLE_BYTES, Article, CorpusFile, fingerprint, known_files, load_article, scan, text_key
from bot.embedding import Embedder
from bot.errors import ArticleError, ArticleGoneError, BuildError, IndexStoreError
from bot.manifest import Manifest, chunking_manifest, model_manifest
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

    def is_duplicate(self, seen: dict[str, str], name: str, key: str) -> bool:
        """Whether `name` holds an article already taken under another name, by its text key (`seen`: key →
        the name taken); if so, it is recorded as a duplicate of that one."""
        original = seen.setdefault(key, name)
        if original == name:
            return False
        self.duplicates[name] = original
        return True

    def refuse_skips(self, strict: bool) -> None:
        """With `strict`, any skipped file fails the build before anything is published."""
        if strict and self.skipped:
            raise BuildError(
                f"{len(self.skipped)} file(s) could not be used and --strict forbids skipping them; nothing was "
                "published, what was in use is still in use"
                + "".join(f"\n  {name}: {reason}" for name, reason in sorted(self.skipped.items()))
            )

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

    When nothing changed, only the manifest is read and the corpus files' sizes and times compared (a file is
    hashed only when they differ): the embedder is never asked to embed, so a lazily loaded model stays unloaded.
    """
    started = time.perf_counter()
    index_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(index_dir):
        _remove_abandoned_builds(index_dir)
        report = BuildReport()
        current = _current_manifest(index_dir)
        files = scan(corpus_dir, None if full or current is None else current.known_files)
        if (
            not full
            and current is not None
            and _nothing_changed(index_dir, current, files, embedder, chunking)
            and (multilingual is None or current.has_multilingual(multilingual))
        ):
            return _up_to_date(report, current, started, strict)
        previous, report.full_reason = _reusable_previous(index_dir, embedder, chunking, full)
        if (
            previous is not None
            and previous.manifest.corpus_fingerprint == fingerprint(files)
            and (multilingual is None or previous.manifest.has_multilingual(multilingual))
        ):
            return _up_to_date(report, previous.manifest, started, strict)
        staging = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=index_dir))
        writer: store.VersionWriter | None = None
        try:
            writer = store.VersionWriter(
                staging, embedder.dimension, None if multilingual is None else multilingual.dimension
            )
            with contextlib.closing(_PreviousArticles(index_dir, previous, multilingual)) as reusable:
                documents, files = _embed_corpus(
                    files,
                    reusable,
                    current,
                    embedder,
                    chunking,
                    writer,
                    report,
                    progress,
                    max_article_bytes,
                    strict,
                    multilingual,
                )
            previous = None  # Its vectors were copied into the new version: let its maps go before it is finished.
            if not documents:
                raise BuildError(
                    f"no article in {corpus_dir} could be read, so there is nothing to index"
                    + "".join(f"\n  {name}: {reason}" for name, reason in sorted(report.skipped.items()))
                )
            report.refuse_skips(strict)
            report.documents, report.chunks, report.sentences = writer.documents, writer.chunks, writer.sentences
            manifest = _manifest(embedder, chunking, files, documents, report, multilingual)
            report.version = _publish(index_dir, staging, writer, manifest)
        except BaseException:
            if writer is not None:
                writer.abandon()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        report.seconds = time.perf_counter() - started
        return report


def _embed_corpus(
    files: list[CorpusFile],
    reusable: _PreviousArticles,
    current: Manifest | None,
    embedder: Embedder,
    chunking: ChunkingSettings,
    writer: store.VersionWriter,
    report: BuildReport,
    progress: ProgressFactory | None,
    max_article_bytes: int,
    strict: bool,
    multilingual: MultilingualModel | None,
) -> tuple[dict[str, dict[str, Any]], list[CorpusFile]]:
    """Read, cut and embed the corpus in one pass, in name order, writing each article as its vectors are made;
    returns the manifest's entry of every article written, and the files as read (a file rewritten since the
    scan keeps what was read)."""
    previous_hashes = {} if current is None else {n: str(e.get("content_hash")) for n, e in current.documents.items()}
    to_embed = sum(
        1
        for file in files
        if reusable.content_hash(file.name) != file.sha256
        or (multilingual is not None and not reusable.reuses_multilingual)
    )
    bar = progress(to_embed) if progress and to_embed else None
    documents: dict[str, dict[str, Any]] = {}

    def write(parts: store.ArticleParts) -> None:
        writer.add(parts)
        documents[parts.document.doc_id] = {
            "content_hash": parts.document.content_hash,
            "title": parts.document.title,
            "sentences": len(parts.sentence_spans),
            "chunks": len(parts.chunk_bounds),
        }

    pipeline = EmbeddingPipeline(write, embedder, multilingual, None if bar is None else lambda: bar.update(1))
    seen: dict[str, str] = {}  # text key → the file indexed with that text
    gone: set[str] = set()
    for number, file in enumerate(files):
        if reusable.content_hash(file.name) == file.sha256:
            old = reusable.take(file.name)
            if not report.is_duplicate(seen, file.name, text_key(old.document.text)):
                pipeline.add_reused(old)
                report.unchanged.append(file.name)
            continue
        try:
            article = load_article(file, max_article_bytes)
        except ArticleGoneError:  # Deleted since the scan: the corpus no longer has it.
            gone.add(file.name)
            continue
        except ArticleError as exc:
            report.skipped[file.name] = str(exc)
            report.refuse_skips(strict)  # before embedding more for a build that cannot be published
            continue
        if article.content_hash != file.sha256:  # Rewritten since the scan: what was read is what counts.
            # Its size and time were taken before the rewrite: never trust them to skip hashing next time.
            files[number] = dataclasses.replace(file, sha256=article.content_hash, mtime_ns=0)
        if report.is_duplicate(seen, file.name, text_key(article.text)):
            continue
        cut = cut_article(article, chunking)
        if cut is None:
            report.skipped[article.doc_id] = "no sentences found in the article text"
            report.refuse_skips(strict)
            continue
        previous_hash = previous_hashes.get(article.doc_id)
        if previous_hash is None:
            report.added.append(article.doc_id)
        elif previous_hash != article.content_hash:
            report.changed.append(article.doc_id)
        else:  # Re-embedded only because the model or the chunking changed.
            report.unchanged.append(article.doc_id)
        pipeline.add_new(*cut)
    pipeline.finish()
    if bar is not None:
        bar.close()
    report.embedded_texts = pipeline.embedded_texts
    report.multilingual_texts = pipeline.multilingual_texts
    files = [file for file in files if file.name not in gone]
    present = set(documents) | set(report.skipped) | set(report.duplicates)
    report.removed = sorted(previous_hashes.keys() - present)
    report.unchanged.sort()
    return documents, files


def _up_to_date(report: BuildReport, manifest: Manifest, started: float, strict: bool) -> BuildReport:
    report.version = manifest.version
    report.up_to_date = True
    report.unchanged = sorted(manifest.documents)
    report.skipped = {name: entry["reason"] for name, entry in manifest.skipped.items()}
    report.duplicates = dict(manifest.raw.get("duplicates", {}))
    report.documents = int(manifest.counts.get("documents", len(manifest.documents)))
    report.chunks = int(manifest.counts.get("chunks", 0))
    report.sentences = int(manifest.counts.get("sentences", 0))
    report.seconds = time.perf_counter() - started
    report.refuse_skips(strict)
    return report


def _current_manifest(index_dir: Path) -> Manifest | None:
    """The manifest of the version in use, or None when there is none or it cannot be read."""
    version = store.current_version(index_dir)
    if version is None:
        return None
    try:
        return store.read_manifest(index_dir / version)
    except (IndexStoreError, OSError):
        return None


def _nothing_changed(
    index_dir: Path, manifest: Manifest, files: list[CorpusFile], embedder: Embedder, chunking: ChunkingSettings
) -> bool:
    """Whether the version in use was built from exactly these files, with this model and these settings, and its
    own files are still those it was written with (by size and time: hashes are checked when it is opened)."""
    return (
        manifest.corpus_fingerprint == fingerprint(files)
        and manifest.model.fingerprint == embedder.fingerprint
        and manifest.model.dimension == embedder.dimension
        and manifest.chunking == chunking_manifest(chunking)
        and store.looks_intact(index_dir / manifest.version, manifest)
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


class _PreviousArticles:
    """The articles of the version in use, whose rows and vectors a build reuses when their content is unchanged:
    each is read when it is taken, so a build never holds them all."""

    def __init__(
        self, index_dir: Path, previous: store.LoadedIndex | None, multilingual: MultilingualModel | None
    ) -> None:
        self._data = None if previous is None else previous.data
        data = self._data
        # Read with ordinary reads: a build that takes most articles would otherwise hold the version's pages.
        self._files = None if previous is None else store.VersionFiles(index_dir / previous.version, previous.data)
        self._numbers = (
            {} if data is None else {data.document_metadata(n).doc_id: n for n in range(len(data.documents))}
        )
        # Multilingual vectors are reused only when made by the same multilingual model.
        self.reuses_multilingual = (
            previous is not None and multilingual is not None and previous.manifest.has_multilingual(multilingual)
        )

    def content_hash(self, name: str) -> str | None:
        number = self._numbers.get(name)
        return None if number is None or self._data is None else self._data.document_metadata(number).content_hash

    def close(self) -> None:
        if self._files is not None:
            self._files.close()

    def take(self, name: str) -> store.ArticleParts:
        """The rows and vectors (copies) of the article `name`, which must be in the version."""
        data = self._data
        assert data is not None
        return data.article_parts(self._numbers[name], multilingual=self.reuses_multilingual, files=self._files)


def _manifest(
    embedder: Embedder,
    chunking: ChunkingSettings,
    files: list[CorpusFile],
    documents: dict[str, dict[str, Any]],
    report: BuildReport,
    multilingual: MultilingualModel | None = None,
) -> dict[str, Any]:
    hashes = {file.name: file.sha256 for file in files}
    manifest: dict[str, Any] = {
        "format_version": store.FORMAT_VERSION,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": model_manifest(embedder),
        "chunking": chunking_manifest(chunking),
        "corpus_fingerprint": fingerprint(files),
        "corpus_files": known_files(files),
        "documents": documents,
        "skipped": {
            name: {"reason": reason, "content_hash": hashes.get(name)} for name, reason in report.skipped.items()
        },
        "duplicates": dict(sorted(report.duplicates.items())),
        "counts": {"documents": report.documents, "chunks": report.chunks, "sentences": report.sentences},
    }
    if multilingual is not None:
        manifest["multilingual"] = model_manifest(multilingual)
    return manifest


def _publish(index_dir: Path, staging: Path, writer: store.VersionWriter, manifest: dict[str, Any]) -> str:
    """Finish the version written into `staging`, rename it into place, then swap `CURRENT` to it; returns the
    version name."""
    version = f"v-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    writer.finish({**manifest, "version": version})
    staging.chmod(0o755)
    staging.rename(index_dir / version)
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


# The narrow seam through which another store builds (bot/stores/pg_build.py): articles chunked and embedded
# exactly as a build does it, so both stores hold the same vectors.


def embed_articles(
    articles: Iterable[Article],
    count: int,
    sink: Callable[[store.ArticleParts], Any],
    embedder: Embedder,
    chunking: ChunkingSettings,
    *,
    multilingual: MultilingualModel | None = None,
    progress: ProgressFactory | None = None,
) -> dict[str, str]:
    """Hand `sink` each article's rows with its vectors in memory (with multilingual sentence vectors when a
    model is given), embedded in batches across articles, as each batch is done; `count` (at most) articles
    are expected, for the progress bar. Returns the articles left out with their reasons (no sentences found)."""
    skipped: dict[str, str] = {}
    bar = progress(count) if progress and count else None
    pipeline = EmbeddingPipeline(sink, embedder, multilingual, None if bar is None else lambda: bar.update(1))
    for article in articles:
        cut = cut_article(article, chunking)
        if cut is None:
            skipped[article.doc_id] = "no sentences found in the article text"
            continue
        pipeline.add_new(*cut)
    pipeline.finish()
    if bar is not None:
        bar.close()
    return skipped
