"""Hybrid retrieval over chunks: dense (FAISS) and lexical (BM25) ranks fused, near-duplicates collapsed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    cosines, labels = index.faiss_index.search(query_vector.reshape(1, -1), min(CANDIDATES, total))
    # FAISS pads with label -1 when it has fewer results than asked: never let that index a chunk.
    dense = [(int(label), float(cos)) for label, cos in zip(labels[0], cosines[0], strict=True) if label >= 0]
    for rank, (chunk, _) in enumerate(dense):
        fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (RRF_K + rank + 1)
    if query_terms:
        lexical = np.asarray(index.bm25.get_scores(query_terms), dtype=np.float32)
        order = np.argsort(-lexical)[:CANDIDATES]
        for rank, chunk in enumerate(int(c) for c in order if lexical[c] > 0):
            fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (RRF_K + rank + 1)
    vectors = index.data.chunk_vectors
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
