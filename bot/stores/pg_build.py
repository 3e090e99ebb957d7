"""Rebuild the PostgreSQL store from `corpus/`: embed only new and changed articles, publish in one transaction.

The corpus is read as `bot/build.py` reads it (the same scan, loading, skipping and duplicate rules), and
articles are chunked and embedded by its `embed_articles`, so both stores hold the same vectors. Unchanged
articles stay in the database untouched; changed ones are replaced, removed ones deleted, and readers see the
whole change at once or none of it (see bot/stores/pgvector.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.build import BuildReport, ProgressFactory, embed_articles
from bot.chunking import ChunkingSettings
from bot.corpus import MAX_ARTICLE_BYTES, Article, fingerprint, load_article, scan, text_key
from bot.embedding import Embedder
from bot.errors import ArticleError, ArticleGoneError, BuildError
from bot.manifest import Manifest, chunking_manifest, model_manifest
from bot.multilingual import MultilingualModel
from bot.store import FORMAT_VERSION, ArticleParts
from bot.stores.pgvector import PgSource


def build_postgres(
    corpus_dir: Path,
    source: PgSource,
    embedder: Embedder,
    chunking: ChunkingSettings,
    *,
    full: bool = False,
    progress: ProgressFactory | None = None,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
    strict: bool = False,
    multilingual: MultilingualModel | None = None,
) -> BuildReport:
    """Bring the database up to date with `corpus_dir`, like `bot.build.build_index` does an index directory.

    `full` re-embeds everything (and replaces a database built for another model, which is otherwise refused).
    """
    started = time.perf_counter()
    with source.writer(embedder, full=full) as writer:
        report = BuildReport()
        files = scan(corpus_dir)
        previous = writer.previous_manifest()
        reusable, report.full_reason = _reusable(previous, chunking, multilingual, full)
        if reusable and previous is not None and previous.corpus_fingerprint == fingerprint(files):
            report.version, report.up_to_date = previous.version, True
            report.unchanged = sorted(previous.documents)
            report.skipped = {name: entry["reason"] for name, entry in previous.skipped.items()}
            report.duplicates = dict(previous.raw.get("duplicates", {}))
            _count(report, previous.raw)
            report.seconds = time.perf_counter() - started
            report.refuse_skips(strict)
            return report

        stored = writer.stored_documents()
        keys = writer.stored_text_keys()
        kept: list[str] = []
        seen: dict[str, str] = {}  # text key → the file indexed with that text
        gone: set[str] = set()
        unchanged = {file.name for file in files if reusable and stored.get(file.name) == file.sha256}

        def articles() -> Iterator[Article]:
            """The articles to embed, read one at a time in corpus order (which decides duplicates)."""
            for number, file in enumerate(files):
                if file.name in unchanged:
                    if not report.is_duplicate(seen, file.name, keys[file.name]):
                        kept.append(file.name)
                        report.unchanged.append(file.name)
                    continue
                try:
                    article = load_article(file, max_article_bytes)
                except ArticleGoneError:
                    gone.add(file.name)
                    continue
                except ArticleError as exc:
                    report.skipped[file.name] = str(exc)
                    report.refuse_skips(strict)  # before embedding any more
                    continue
                if article.content_hash != file.sha256:  # Rewritten since the scan: what was read is what counts.
                    files[number] = dataclasses.replace(file, sha256=article.content_hash)
                if not report.is_duplicate(seen, file.name, text_key(article.text)):
                    yield article

        entries: dict[str, dict[str, Any]] = {}

        def put(part: ArticleParts) -> None:
            """Classify an embedded article, write it into the state being built and note its manifest entry."""
            name, content_hash = part.document.doc_id, part.document.content_hash
            old = stored.get(name)
            if old is None:
                report.added.append(name)
            elif old != content_hash:
                report.changed.append(name)
            else:  # Re-embedded only because the model, the chunking or the multilingual model changed.
                report.unchanged.append(name)
            report.embedded_texts += len(part.chunk_bounds) + len(part.sentence_spans) + len(part.clause_sentences)
            if multilingual is not None:
                report.multilingual_texts += len(part.sentence_spans)
            writer.put(part)
            entries[name] = {
                "content_hash": content_hash,
                "title": part.document.title,
                "sentences": len(part.sentence_spans),
                "chunks": len(part.chunk_bounds),
            }

        to_read = len(files) - len(unchanged)
        unusable = embed_articles(
            articles(), to_read, put, embedder, chunking, multilingual=multilingual, progress=progress
        )
        report.skipped.update(unusable)
        files = [file for file in files if file.name not in gone]
        present = set(kept) | set(entries)
        report.removed = sorted(stored.keys() - present - set(report.skipped) - set(report.duplicates))
        if not present:
            raise BuildError(
                f"no article in {corpus_dir} could be read, so there is nothing to index"
                + "".join(f"\n  {name}: {reason}" for name, reason in sorted(report.skipped.items()))
            )
        report.refuse_skips(strict)
        for doc_id in sorted(stored.keys() - present):
            writer.delete(doc_id)
        manifest = _manifest(embedder, chunking, files, kept, entries, previous, report, multilingual)
        report.version = writer.publish(manifest)
        _count(report, manifest)
        report.seconds = time.perf_counter() - started
        return report


def _reusable(
    previous: Manifest | None, chunking: ChunkingSettings, multilingual: MultilingualModel | None, full: bool
) -> tuple[bool, str | None]:
    """Whether the stored vectors can be kept, and if not, why everything is embedded again."""
    if full:
        return False, "requested (--full)"
    if previous is None:
        return False, None
    if previous.chunking != chunking_manifest(chunking):
        return False, "chunking or cleaning settings changed"
    if multilingual is not None and not previous.has_multilingual(multilingual):
        return False, "the stored passages lack this multilingual model's vectors"
    return True, None


def _count(report: BuildReport, manifest: dict[str, Any]) -> None:
    counts = manifest.get("counts", {})
    report.documents, report.chunks, report.sentences = (
        int(counts.get("documents", 0)),
        int(counts.get("chunks", 0)),
        int(counts.get("sentences", 0)),
    )


def _manifest(
    embedder: Embedder,
    chunking: ChunkingSettings,
    files: list[Any],
    kept: list[str],
    embedded: dict[str, dict[str, Any]],
    previous: Manifest | None,
    report: BuildReport,
    multilingual: MultilingualModel | None,
) -> dict[str, Any]:
    """The new state's manifest, in the FAISS directory's format (bot/manifest.py): kept documents keep their
    entries from the previous state's, embedded ones have theirs in `embedded`."""
    hashes = {file.name: file.sha256 for file in files}
    documents = {name: previous.documents[name] for name in kept} if previous is not None else {}
    documents = dict(sorted({**documents, **embedded}.items()))
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": model_manifest(embedder),
        "chunking": chunking_manifest(chunking),
        "corpus_fingerprint": fingerprint(files),
        "documents": documents,
        "skipped": {
            name: {"reason": reason, "content_hash": hashes.get(name)} for name, reason in report.skipped.items()
        },
        "duplicates": dict(sorted(report.duplicates.items())),
        "counts": {
            "documents": len(documents),
            "chunks": sum(int(entry["chunks"]) for entry in documents.values()),
            "sentences": sum(int(entry["sentences"]) for entry in documents.values()),
        },
        "faiss_index": "none: PostgreSQL, pgvector HNSW (inner product) and full-text search",
    }
    if multilingual is not None:
        manifest["multilingual"] = model_manifest(multilingual)
    return manifest
