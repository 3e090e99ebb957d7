"""Arrays written to disk as a build makes them, and read back in blocks, so that a build's memory does not grow
with the corpus.

An `ArraySpool` appends rows to a `.npy` file whose header is reserved at the start and filled in when the spool
is closed: the file a build writes is the file the index version keeps, with no copy. `NpyRows` reads rows of
such a file (or any `.npy` file) with ordinary reads: they pass through the kernel's page cache without being
mapped into the process, so a build that reads every vector once does not keep them resident (a memory map
would count every page it touched as the process's own until the map is dropped).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

# The .npy header written by a spool: magic, version 1.0, a 2-byte length, then the header text padded with spaces
# to this many bytes in all (a multiple of 64, as numpy aligns it), room for any shape a build can reach.
HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"
# Rows read per block when a whole file is read in order: a few megabytes of vectors.
BLOCK_ROWS = 4096


class ArraySpool:
    """Rows of `dtype` with `columns` values each (or single values when `columns` is None) appended to the
    `.npy` file `path`, in the order they are given."""

    def __init__(self, path: Path, dtype: str, columns: int | None = None) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.columns = columns
        self.rows = 0
        self._stream: BinaryIO | None = path.open("wb")
        self._stream.write(b" " * HEADER_BYTES)

    def append(self, rows: npt.ArrayLike) -> None:
        if self._stream is None:
            raise ValueError(f"{self.path} is closed")
        shape = (-1,) if self.columns is None else (-1, self.columns)
        block = np.ascontiguousarray(rows, dtype=self.dtype).reshape(shape)
        self._stream.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> None:
        """Write the header for the rows appended; the file is then a complete `.npy` file."""
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        with stream:
            stream.seek(0)
            stream.write(_header(self.dtype, (self.rows,) if self.columns is None else (self.rows, self.columns)))

    def abandon(self) -> None:
        """Close without finishing (the build failed; its directory is removed)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _header(dtype: np.dtype[np.generic], shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '{dtype.str}', 'fortran_order': False, 'shape': {shape!r}, }}"
    room = HEADER_BYTES - len(_MAGIC) - 2 - 1
    if len(text) > room:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    return _MAGIC + (room + 1).to_bytes(2, "little") + text.ljust(room).encode("latin1") + b"\n"


class NpyRows:
    """The rows of a 2-D `.npy` file, read with ordinary reads (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(stream)
            self._offset = stream.tell()
        if fortran_order or len(shape) != 2:
            raise ValueError(f"{path} is not a table of rows")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._row_bytes = self.shape[1] * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int, fd: int | None = None) -> npt.NDArray[np.generic]:
        """Rows `start` to `stop` (a copy); from `fd` when given, a descriptor of the file held open by the
        caller (so that the file may be removed meanwhile), else from the file opened anew."""
        stop = min(stop, self.shape[0])
        count = max(0, stop - start)
        if fd is not None:
            raw = os.pread(fd, count * self._row_bytes, self._offset + start * self._row_bytes)
        else:
            with self.path.open("rb") as stream:
                stream.seek(self._offset + start * self._row_bytes)
                raw = stream.read(count * self._row_bytes)
        if len(raw) != count * self._row_bytes:
            raise ValueError(f"{self.path} ends before row {stop}")
        return np.frombuffer(raw, dtype=self.dtype).reshape(count, self.shape[1]).copy()

    def blocks(self, rows: int = BLOCK_ROWS) -> Iterator[npt.NDArray[np.generic]]:
        """Every row, in order, `rows` at a time."""
        for start in range(0, self.shape[0], rows):
            yield self.read(start, start + rows)

    def take(self, numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.generic]:
        """The rows numbered `numbers` (in that order)."""
        taken = np.empty((len(numbers), self.shape[1]), dtype=self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for i, number in enumerate(numbers.tolist()):
                raw = os.pread(fd, self._row_bytes, self._offset + number * self._row_bytes)
                taken[i] = np.frombuffer(raw, dtype=self.dtype)
        finally:
            os.close(fd)
        return taken
