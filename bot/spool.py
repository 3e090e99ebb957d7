"""Vectors written to disk as a build makes them, so that a build's memory does not grow with the corpus.

A `VectorSpool` appends rows of float32 to a raw file and, when the build is done, hands them back as a read-only
memory map: the kernel pages them in and out as they are read, so writing the index version reads them from
disk rather than from a copy held by the process.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from bot.embedding import Vectors


class VectorSpool:
    """Rows of `dimension` float32 values appended to `path`, in the order they are given."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path = path
        self.dimension = dimension
        self.rows = 0
        self._stream: BinaryIO | None = path.open("wb")

    def append(self, vectors: Vectors) -> None:
        if self._stream is None:
            raise ValueError(f"{self.path} is closed")
        rows = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1, self.dimension)
        self._stream.write(rows.tobytes())
        self.rows += len(rows)

    def close(self) -> Vectors:
        """Every row appended, as a read-only memory map (an empty array when there are none)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self.rows == 0:
            return np.zeros((0, self.dimension), np.float32)
        vectors: Vectors = np.memmap(self.path, dtype="<f4", mode="r", shape=(self.rows, self.dimension))
        return vectors
