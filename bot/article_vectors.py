"""Cutting an article into the rows an index keeps, and embedding the articles a build must embed: batched
across articles, streamed.

New articles are cut into sentences and chunks as they are read, and queued; when the queue holds
`EMBED_BATCH_TEXTS` texts, all of them go to the embedder in one call (sentence-transformers sorts a call's texts
by length, so its batches carry little padding). One small call per article made a build 8 times slower than
encoding the same texts (issue 7). Each article leaves the pipeline with its vectors, in the order the articles
came (reused ones among them), to be written at once (`store.VersionWriter`): the build never holds them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from bot import store
from bot.chunking import ChunkingSettings, chunk_sentences, split_clauses, split_sentences
from bot.corpus import Article
from bot.embedding import Embedder, Vectors
from bot.multilingual import MultilingualModel
from bot.store import ArticleParts

# Texts per embedding call during a build: large enough that per-call overhead and padding vanish (see
# bench/build_speed.py), small enough that a batch's texts and vectors take a few megabytes.
EMBED_BATCH_TEXTS = 2048


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
    batches across articles, and hands each article with its vectors to `sink`, in the order they were given
    (a build's `store.VersionWriter.add`); `finish` embeds and hands over what is still queued.

    `on_article` is called once per article embedded (by either model), for a progress bar.
    """

    def __init__(
        self,
        sink: Callable[[ArticleParts], Any],
        embedder: Embedder,
        multilingual: MultilingualModel | None = None,
        on_article: Callable[[], Any] | None = None,
        batch_texts: int = EMBED_BATCH_TEXTS,
    ) -> None:
        self._sink = sink
        self._embedder = embedder
        self._multilingual = multilingual
        self._on_article = on_article
        self._batch_texts = batch_texts
        self._queue: list[tuple[ArticleParts, list[str] | None]] = []  # texts None: vectors already held
        self._queued_texts = 0
        self._held_rows = 0  # vectors held by reused articles in the queue
        self.embedded_texts = 0
        self.multilingual_texts = 0

    def add_reused(self, parts: ArticleParts) -> None:
        needs_multilingual = self._multilingual is not None and parts.multilingual_vectors is None
        if not self._queue and not needs_multilingual:
            self._sink(parts)  # nothing to embed and nothing before it: written at once, never held
            return
        self._queue.append((parts, None))
        if needs_multilingual:
            self._queued_texts += len(parts.sentence_spans)
        # The vectors it holds count toward the batch too, or a long run of reused articles behind one new
        # article would all be held until the end.
        self._held_rows += len(parts.chunk_bounds) + len(parts.sentence_spans) + len(parts.clause_sentences)
        self._flush_if_full()

    def add_new(self, parts: ArticleParts, texts: list[str]) -> None:
        self._queue.append((parts, texts))
        self._queued_texts += len(texts)
        self._flush_if_full()

    def finish(self) -> None:
        self._flush()

    def _flush_if_full(self) -> None:
        if self._queued_texts + self._held_rows >= self._batch_texts:
            self._flush()

    def _flush(self) -> None:
        queue, self._queue, self._queued_texts, self._held_rows = self._queue, [], 0, 0
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
            self._sink(parts)

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
