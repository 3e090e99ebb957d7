"""An article's rows and vectors, and the batched, streaming embedding of the articles a build must embed.

New articles are cut into sentences and chunks as they are read, and queued; when the queue holds
`EMBED_BATCH_TEXTS` texts, all of them go to the embedder in one call (sentence-transformers sorts a call's texts
by length, so its batches carry little padding). One small call per article made a build 8 times slower than
encoding the same texts (issue 7). The vectors are appended to spool files in the order of the articles, reused
articles' vectors among them, so the spool files are the finished arrays and the process never holds them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot import store
from bot.chunking import ChunkingSettings, chunk_sentences, split_clauses, split_sentences
from bot.corpus import Article
from bot.embedding import Embedder, Vectors
from bot.multilingual import MultilingualModel
from bot.spool import VectorSpool

# Texts per embedding call during a build: large enough that per-call overhead and padding vanish (see
# bench/build_speed.py), small enough that a batch's texts and vectors take a few megabytes.
EMBED_BATCH_TEXTS = 2048


@dataclass(frozen=True)
class ArticleParts:
    """One article's rows, indexed locally (sentence 0 is its first sentence), and its vectors when held in
    memory (a reused article's, or a new one's between embedding and spooling)."""

    document: store.Document
    sentence_spans: list[tuple[int, int]]
    chunk_bounds: list[tuple[int, int]]
    clause_sentences: list[int]
    chunk_vectors: Vectors | None = None
    sentence_vectors: Vectors | None = None
    clause_vectors: Vectors | None = None
    multilingual_vectors: Vectors | None = None  # one per sentence, when made by the multilingual model in use

    def without_vectors(self) -> ArticleParts:
        """The rows only: what the build keeps of an article once its vectors are on disk."""
        return dataclasses.replace(
            self, chunk_vectors=None, sentence_vectors=None, clause_vectors=None, multilingual_vectors=None
        )


@dataclass(frozen=True)
class SpooledVectors:
    """Every vector of a build, in article order, as read-only memory maps of the spool files."""

    chunks: Vectors
    sentences: Vectors
    clauses: Vectors
    multilingual: Vectors | None


def cut_article(article: Article, chunking: ChunkingSettings) -> tuple[ArticleParts, list[str]] | None:
    """An article's rows and the texts to embed for them (chunks, then sentences, then clauses of long
    sentences), or None when no sentence is found in it."""
    spans = split_sentences(article.text)
    if not spans:
        return None
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
    parts = ArticleParts(
        document=document,
        sentence_spans=spans,
        chunk_bounds=[(c.first_sentence, c.last_sentence) for c in chunks],
        clause_sentences=[number for number, _ in clauses],
    )
    return parts, chunk_texts + sentence_texts + [clause for _, clause in clauses]


class EmbeddingPipeline:
    """Takes articles in index order (reused ones with their vectors, new ones to embed), embeds the new ones in
    batches across articles, and spools every vector in that order; `finish` returns the rows and the vectors.

    `on_article` is called once per article embedded (by either model), for a progress bar.
    """

    def __init__(
        self,
        spool_dir: Path,
        embedder: Embedder,
        multilingual: MultilingualModel | None = None,
        on_article: Callable[[], Any] | None = None,
        batch_texts: int = EMBED_BATCH_TEXTS,
    ) -> None:
        self._embedder = embedder
        self._multilingual = multilingual
        self._on_article = on_article
        self._batch_texts = batch_texts
        self._chunks = VectorSpool(spool_dir / "chunks.f32", embedder.dimension)
        self._sentences = VectorSpool(spool_dir / "sentences.f32", embedder.dimension)
        self._clauses = VectorSpool(spool_dir / "clauses.f32", embedder.dimension)
        self._multilingual_spool = (
            None if multilingual is None else VectorSpool(spool_dir / "multilingual.f32", multilingual.dimension)
        )
        self._queue: list[tuple[ArticleParts, list[str] | None]] = []  # texts None: vectors already held
        self._queued_texts = 0
        self._done: list[ArticleParts] = []
        self.embedded_texts = 0
        self.multilingual_texts = 0

    def add_reused(self, parts: ArticleParts) -> None:
        self._queue.append((parts, None))
        if self._multilingual is not None and parts.multilingual_vectors is None:
            self._queued_texts += len(parts.sentence_spans)
        self._flush_if_full()

    def add_new(self, parts: ArticleParts, texts: list[str]) -> None:
        self._queue.append((parts, texts))
        self._queued_texts += len(texts)
        self._flush_if_full()

    def finish(self) -> tuple[list[ArticleParts], SpooledVectors]:
        self._flush()
        spool = self._multilingual_spool
        vectors = SpooledVectors(
            chunks=self._chunks.close(),
            sentences=self._sentences.close(),
            clauses=self._clauses.close(),
            multilingual=None if spool is None else spool.close(),
        )
        return self._done, vectors

    def _flush_if_full(self) -> None:
        if self._queued_texts >= self._batch_texts:
            self._flush()

    def _flush(self) -> None:
        queue, self._queue, self._queued_texts = self._queue, [], 0
        texts = [text for _, article_texts in queue for text in article_texts or ()]
        vectors = self._embedder.embed(texts) if texts else np.zeros((0, self._embedder.dimension), np.float32)
        self.embedded_texts += len(texts)
        finished: list[ArticleParts] = []
        offset = 0
        for parts, article_texts in queue:
            if article_texts is None:
                finished.append(parts)
                continue
            chunks, sentences = len(parts.chunk_bounds), len(parts.sentence_spans)
            own = vectors[offset : offset + len(article_texts)]
            offset += len(article_texts)
            finished.append(
                dataclasses.replace(
                    parts,
                    chunk_vectors=own[:chunks],
                    sentence_vectors=own[chunks : chunks + sentences],
                    clause_vectors=own[chunks + sentences :],
                )
            )
            if self._on_article is not None and self._multilingual is None:
                self._on_article()
        if self._multilingual is not None:
            finished = self._embed_multilingual(finished)
        for parts in finished:
            assert parts.chunk_vectors is not None and parts.sentence_vectors is not None
            assert parts.clause_vectors is not None
            self._chunks.append(parts.chunk_vectors)
            self._sentences.append(parts.sentence_vectors)
            self._clauses.append(parts.clause_vectors)
            if self._multilingual_spool is not None and parts.multilingual_vectors is not None:
                self._multilingual_spool.append(parts.multilingual_vectors)
            self._done.append(parts.without_vectors())

    def _embed_multilingual(self, batch: list[ArticleParts]) -> list[ArticleParts]:
        """The batch with multilingual sentence vectors: reused ones kept, the others made now (as passages)."""
        assert self._multilingual is not None
        missing = [parts for parts in batch if parts.multilingual_vectors is None]
        texts = [parts.document.text[start:end] for parts in missing for start, end in parts.sentence_spans]
        if not texts:
            return batch
        vectors = self._multilingual.embed(texts)
        self.multilingual_texts += len(texts)
        made: dict[str, Vectors] = {}
        offset = 0
        for parts in missing:
            made[parts.document.doc_id] = vectors[offset : offset + len(parts.sentence_spans)]
            offset += len(parts.sentence_spans)
            if self._on_article is not None:
                self._on_article()
        return [
            dataclasses.replace(parts, multilingual_vectors=made[parts.document.doc_id])
            if parts.document.doc_id in made
            else parts
            for parts in batch
        ]
