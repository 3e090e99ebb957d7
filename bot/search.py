"""Hybrid retrieval over chunks: the store's dense and lexical ranks fused, near-duplicates collapsed."""

from __future__ import annotations

from dataclasses import dataclass

from bot.embedding import Vectors
from bot.stores.base import PassageStore

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


def search(index: PassageStore, query_vector: Vectors, query_terms: list[str], k: int) -> list[Passage]:
    """The `k` best chunks for a query, best first: the store's dense and lexical ranks fused (RRF)."""
    if not index.data.chunks:
        return []
    fused: dict[int, float] = {}
    for rank, (chunk, _) in enumerate(index.dense_search(query_vector, CANDIDATES)):
        fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (RRF_K + rank + 1)
    if query_terms:
        for rank, chunk in enumerate(index.lexical_search(query_terms, CANDIDATES)):
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
