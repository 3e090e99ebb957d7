"""A stand-in embedder for measuring builds at sizes the real model would take hours to embed.

Each text gets a unit vector drawn from a generator seeded by the text's CRC-32: deterministic, about a
microsecond a text, and meaningless. Memory and no-change timings do not depend on what the vectors mean; the
real model adds a constant (its weights) to memory and is measured on its own in `build_speed.py`.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np

from bot.embedding import Vectors


class HashEmbedder:
    name = "bench-hash-embedder"
    dimension = 384
    fingerprint = hashlib.sha256(b"bench-hash-embedder:384").hexdigest()

    def embed(self, texts: list[str]) -> Vectors:
        vectors = np.empty((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(text.encode("utf-8", "surrogatepass")))
            vectors[row] = rng.standard_normal(self.dimension, dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors
