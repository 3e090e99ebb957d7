"""Hybrid retrieval over chunks: dense (FAISS) and lexical (BM25) ranks fused, near-duplicates collapsed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot import ann
from bot.embedding import Vectors
from bot.store import LoadedIndex

# Reciprocal-rank fusion constant: 60 is the value from Cormack et al. and works without tuning.
RRF_K = 60
CANDIDATES = 30
# Chunks whose vectors are this close say the same thing (the same wire story in two files, say).
NEAR_DUPLICATE_COSINE = 0.95


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score and its cosine similarity to the query."""

    chunk: int
    score: float
    cosine: float


def search(index: LoadedIndex, query_vector: Vectors, query_terms: list[str], k: int) -> list[Passage]:
    """The `k` best chunks for a query, best first."""
    total = index.faiss_index.ntotal
    if total == 0:
        return []
    fused: dict[int, float] = {}
    vectors = index.data.chunk_vectors
    cosines, labels = ann.search(
        index.faiss_index, vectors, query_vector.reshape(1, -1), min(CANDIDATES, total), index.ann_spec
    )
    # FAISS pads with label -1 when it has fewer results than asked: never let that index a chunk.
    dense = [(int(label), float(cos)) for label, cos in zip(labels[0], cosines[0], strict=True) if label >= 0]
    for rank, (chunk, _) in enumerate(dense):
        fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (RRF_K + rank + 1)
    if query_terms:
        lexical = np.asarray(index.bm25.get_scores(query_terms), dtype=np.float32)
        for rank, chunk in enumerate(int(c) for c in top_positions(lexical, CANDIDATES) if lexical[c] > 0):
            fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (RRF_K + rank + 1)
    query = query_vector.reshape(-1)
    passages: list[Passage] = []
    texts: set[str] = set()
    for chunk in sorted(fused, key=lambda c: (-fused[c], c)):
        # The same story may be filed twice, under another headline: compare the text as well as the vector.
        text = " ".join(index.data.chunk_text(chunk).split())
        if text in texts or any(
            float(vectors[chunk] @ vectors[kept.chunk]) >= NEAR_DUPLICATE_COSINE for kept in passages
        ):
            continue
        texts.add(text)
        passages.append(Passage(chunk=chunk, score=fused[chunk], cosine=float(vectors[chunk] @ query)))
        if len(passages) == k:
            break
    return passages


def top_positions(scores: Vectors, count: int) -> list[int]:
    """The positions of the `count` highest scores, highest first (ties: lower position first), without sorting
    every score: at a million passages a full sort costs more than the search itself."""
    if len(scores) <= count:
        top = np.arange(len(scores))
    else:
        top = np.argpartition(-scores, count - 1)[:count]
        floor = scores[top].min()
        if floor > 0:
            # The partition may cut through a run of equal scores: the lower positions of the run go first.
            top = np.union1d(top, np.flatnonzero(scores == floor))
    return sorted((int(i) for i in top), key=lambda i: (-scores[i], i))[:count]
