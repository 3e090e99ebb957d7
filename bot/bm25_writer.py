"""A BM25 index written passage by passage, in bounded memory, in the files bm25s 0.3.16 writes.

`bm25s.BM25().index(tokens)` wants every passage's tokens at once and then holds several arrays of the corpus's
total number of tokens (ids, scores, document and vocabulary indices, a sort permutation): at 100,000 articles
that is gigabytes. `BM25Writer` takes the passages one at a time, keeps only per-token and per-passage counters,
spills each passage's (token, term frequency) pairs to a scratch file, and at `write` assembles the CSC postings a
block of tokens at a time. What it writes is what `BM25().index(tokens); .save(directory)` writes for the same
passages with bm25s's defaults (method "lucene", k1 1.5, b 0.75), byte for byte: the same vocabulary in the same
order, the same float32 scores (computed with bm25s's formula, dtypes and order of operations), the same .npy
headers and JSON. `bm25s.BM25.load(directory, mmap=True, allow_pickle=False)` reads it.

Measured (peak RSS of a fresh process, a script not kept; 2-core VM) on passages of 120 tokens drawn from
50,000 words with Zipf frequencies; the interpreter and the generator of the passages take 141 MB alone:
- 300,000 passages (28 million postings): bm25s `index` + `save` 26 s, 1.67 GB peak (425 MB of it the token lists
  it needs); this writer `add` + `write` 16 s, 0.23 GB peak (passages generated as added).
- 1,000,000 passages (93 million postings): bm25s 138 s, 5.4 GB; this writer 60 s, 0.26 GB.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s.utils import json_functions
from numpy.lib import format as npy_format

# Postings assembled per block at `write`: the block's two output arrays (float32 score, int32 passage) take 8
# bytes a posting, 64 MB at this budget, and each block costs one sequential read of the spill file (8 bytes a
# posting). 8 million keeps the memory a small fixed amount while a corpus of 100,000 articles (some 40 million
# postings) is still read only about five times.
BLOCK_POSTINGS = 8_000_000
# Postings buffered before they are appended to the spill file, and read from it at a time at `write` (never
# more than the block budget): the temporaries of one piece take some 40 bytes a posting, 40 MB here.
PIECE_POSTINGS = 1 << 20

# bm25s's defaults, which the project uses (`bm25s.BM25()`), and the names `BM25.save` gives its files.
K1 = 1.5
B = 0.75
DELTA = 0.5
METHOD = "lucene"
DATA_FILE = "data.csc.index.npy"
INDICES_FILE = "indices.csc.index.npy"
INDPTR_FILE = "indptr.csc.index.npy"
VOCAB_FILE = "vocab.index.json"
PARAMS_FILE = "params.index.json"
# The dtype bm25s's term-frequency component is computed in: its float32 term frequencies meet a numpy float64
# scalar (the length normalisation), which numpy 2 promotes to float64 and numpy 1's value-based casting kept in
# float32.
_TFC_DTYPE = (np.ones(1, dtype=np.float32) + np.float64(1.5)).dtype
# bm25s adds this token to the vocabulary after indexing, with the id after every other: it is in no passage.
EMPTY_TOKEN = ""


class BM25Writer:
    """Builds a bm25s index ("lucene" BM25, k1 1.5, b 0.75) from passages given one at a time, in bounded memory.

    Use: `writer = BM25Writer(work_dir)`, `writer.add(tokens)` for each passage in index order, then
    `writer.write(directory)` once. The scratch file it keeps in `work_dir` is removed by `write` or `close` (the
    writer is also a context manager).

    Memory, whatever the number of passages or tokens:
    - per distinct token: its string, held by the token→id dict and the set that reproduces bm25s's vocabulary
      order, a document frequency (8 bytes), and at `write` its final id, idf and block
      position (some 20 bytes) and the vocabulary's JSON;
    - per passage: its length and number of distinct tokens (8 bytes), at `write` another 16 (where its postings
      end and its length normalisation);
    - fixed: the postings of one block, 8 bytes each (`block_postings`, 64 MB by default), and one piece of the
      spill file and its temporaries (`PIECE_POSTINGS`, about 40 MB).
    The only excess: a token found in more passages than `block_postings` is assembled alone, its postings at
    once (at most one per passage).

    The spill file takes 8 bytes a posting (a passage's distinct token), on disk.
    """

    def __init__(self, work_dir: Path, block_postings: int = BLOCK_POSTINGS) -> None:
        if block_postings < 1:
            raise ValueError(f"block_postings must be at least 1, not {block_postings}")
        self._block_postings = block_postings
        self._piece_postings = min(PIECE_POSTINGS, block_postings)
        # Ids in order of first appearance; bm25s numbers its vocabulary in the iteration order of the set of
        # every token, built by `set.update` passage by passage. The same updates in the same process give the
        # same set, and so the same order (string hashes are per process: bm25s's order is too).
        self._ids: dict[str, int] = {}
        self._unique_tokens: set[str] = set()
        self._frequencies: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._lengths = array("i")  # tokens per passage, repeats included
        self._distinct = array("i")  # postings per passage
        self._pending_ids = array("i")
        self._pending_tfs = array("i")
        descriptor, name = tempfile.mkstemp(prefix="bm25-postings-", suffix=".bin", dir=work_dir)
        self._spill_path = Path(name)
        self._spill: BinaryIO | None = os.fdopen(descriptor, "w+b")
        self._postings = 0

    def __enter__(self) -> BM25Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch file; the writer takes no more passages."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None
            self._spill_path.unlink(missing_ok=True)

    def add(self, tokens: list[str]) -> None:
        """The next passage's tokens, repeats included (none is a passage no query finds)."""
        if self._spill is None:
            raise ValueError("BM25Writer: add after write or close")
        counts = Counter(tokens)
        self._unique_tokens.update(tokens)
        ids = self._ids
        self._pending_ids.extend([ids.setdefault(token, len(ids)) for token in counts])
        self._pending_tfs.extend(counts.values())
        self._lengths.append(len(tokens))
        self._distinct.append(len(counts))
        if len(self._pending_ids) >= self._piece_postings:
            self._flush()

    def _flush(self) -> None:
        assert self._spill is not None
        ids = np.frombuffer(self._pending_ids, dtype=np.intc)
        if len(ids) == 0:
            return
        pairs = np.empty((len(ids), 2), dtype=np.int32)
        pairs[:, 0] = ids
        pairs[:, 1] = np.frombuffer(self._pending_tfs, dtype=np.intc)
        self._spill.write(pairs.tobytes())
        if len(self._frequencies) < len(self._ids):
            grown = np.zeros(len(self._ids), dtype=np.int64)
            grown[: len(self._frequencies)] = self._frequencies
            self._frequencies = grown
        self._frequencies += np.bincount(ids, minlength=len(self._frequencies))
        self._postings += len(ids)
        del ids
        self._pending_ids = array("i")
        self._pending_tfs = array("i")

    def write(self, directory: Path) -> None:
        """Write the index of every passage added into `directory` (created if missing), as `BM25.save` would,
        and remove the scratch file.

        Raises ValueError when no passage holds a token (none at all, or all empty): bm25s's `index` raises
        ValueError there too (its empty token's id is one past the largest id, and there is none).
        """
        if self._spill is None:
            raise ValueError("BM25Writer: write after write or close")
        try:
            self._flush()
            if not self._ids:
                raise ValueError(
                    f"BM25Writer: no passage of the {len(self._lengths)} added holds a token; bm25s cannot index that"
                )
            self._write(directory)
        finally:
            self.close()

    def _write(self, directory: Path) -> None:
        assert self._spill is not None
        passages = len(self._lengths)
        vocabulary = {token: i for i, token in enumerate(self._unique_tokens)}
        final = np.empty(len(self._ids), dtype=np.int32)  # final id by id of first appearance
        for token, first in self._ids.items():
            final[first] = vocabulary[token]
        frequencies = np.zeros(len(vocabulary), dtype=np.int64)
        frequencies[final] = self._frequencies
        self._ids.clear()
        indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(frequencies, out=indptr[1:])
        idf = _lucene_idf(frequencies, passages)

        lengths = np.frombuffer(self._lengths, dtype=np.intc)
        # As bm25s: the mean of an int64 array (float64), then per passage k1 * ((1 - b) + b * l_d / l_avg),
        # evaluated left to right in float64.
        average = np.array(lengths, dtype=np.int64).mean()
        normalisation = K1 * ((1 - B) + B * lengths.astype(np.float64) / average)
        ends = np.cumsum(np.frombuffer(self._distinct, dtype=np.intc), dtype=np.int64)

        directory.mkdir(parents=True, exist_ok=True)
        total = int(indptr[-1])
        assert total == self._postings
        data = np.empty(min(self._block_postings, total), dtype=np.float32)
        rows = np.empty(len(data), dtype=np.int32)
        with (
            _npy_file(directory / DATA_FILE, np.dtype(np.float32), total) as data_file,
            _npy_file(directory / INDICES_FILE, np.dtype(np.int32), total) as indices_file,
        ):
            for first, last in _blocks(indptr, self._block_postings):
                start = int(indptr[first])
                size = int(indptr[last]) - start
                if size > len(data):  # a token in more passages than the budget
                    data = np.empty(size, dtype=np.float32)
                    rows = np.empty(size, dtype=np.int32)
                # Where the next posting of each of the block's tokens goes: a counting sort by token, stable, so
                # that each token's passages stay ascending as they are read.
                heads = indptr[first:last] - start
                for offset, pairs in self._pieces():
                    tokens = final[pairs[:, 0]]
                    chosen = np.flatnonzero((tokens >= first) & (tokens < last))
                    if len(chosen) == 0:
                        continue
                    local = tokens[chosen] - first
                    passage = np.searchsorted(ends, chosen + offset, side="right")
                    # bm25s: tf as float32, tfc = tf / (norm + tf) and idf (float32) * tfc in _TFC_DTYPE, stored
                    # as float32.
                    tf = pairs[chosen, 1].astype(np.float32).astype(_TFC_DTYPE)
                    tfc = tf / (normalisation[passage].astype(_TFC_DTYPE) + tf)
                    score = (idf[local + first].astype(_TFC_DTYPE) * tfc).astype(np.float32)
                    order = np.argsort(local, kind="stable")
                    local = local[order]
                    counts = np.bincount(local, minlength=last - first)
                    piece_starts = np.cumsum(counts) - counts
                    places = heads[local] + (np.arange(len(local)) - piece_starts[local])
                    data[places] = score[order]
                    rows[places] = passage[order]
                    heads += counts
                assert np.array_equal(heads, indptr[first + 1 : last + 1] - start)
                data_file.write(data[:size].tobytes())
                indices_file.write(rows[:size].tobytes())
        np.save(directory / INDPTR_FILE, indptr, allow_pickle=False)

        if EMPTY_TOKEN not in vocabulary:
            vocabulary[EMPTY_TOKEN] = len(vocabulary)
        with (directory / VOCAB_FILE).open("w", encoding="utf-8") as stream:
            stream.write(json_functions.dumps(vocabulary, ensure_ascii=False))
        params = {
            "k1": K1,
            "b": B,
            "delta": DELTA,
            "method": METHOD,
            "idf_method": METHOD,
            "dtype": "float32",
            "int_dtype": "int32",
            "num_docs": passages,
            "version": bm25s.__version__,
            "backend": "numpy",
        }
        with (directory / PARAMS_FILE).open("w", encoding="utf-8") as stream:
            json.dump(params, stream, indent=4)

    def _pieces(self) -> Iterator[tuple[int, npt.NDArray[np.int32]]]:
        """The spill file's (id, term frequency) pairs from its start, a piece at a time, each with the number
        of its first posting."""
        assert self._spill is not None
        self._spill.seek(0)
        offset = 0
        while offset < self._postings:
            count = min(self._piece_postings, self._postings - offset)
            yield offset, np.frombuffer(self._spill.read(count * 8), dtype=np.int32).reshape(count, 2)
            offset += count


def _lucene_idf(frequencies: npt.NDArray[np.int64], passages: int) -> npt.NDArray[np.float32]:
    """bm25s's "lucene" idf, log(1 + (N - df + 0.5) / (df + 0.5)), with `math.log` on Python floats as it computes
    it (numpy's log may differ in the last bit), stored as float32; once per distinct document frequency."""
    distinct, where = np.unique(frequencies, return_inverse=True)
    values = np.array([math.log(1 + (passages - df + 0.5) / (df + 0.5)) for df in distinct.tolist()], dtype=np.float32)
    return values[where]


def _blocks(indptr: npt.NDArray[np.int64], budget: int) -> list[tuple[int, int]]:
    """Consecutive ranges of tokens [first, last) whose postings add up to at most `budget`, or one token each
    where a single token has more."""
    blocks = []
    first = 0
    tokens = len(indptr) - 1
    while first < tokens:
        # The last token whose postings still end within the budget from the first's start.
        last = int(np.searchsorted(indptr, indptr[first] + budget, side="right")) - 1
        last = min(max(last, first + 1), tokens)
        blocks.append((first, last))
        first = last
    return blocks


@contextmanager
def _npy_file(path: Path, dtype: np.dtype[np.generic], length: int) -> Iterator[BinaryIO]:
    """A .npy file of a 1-D array of `dtype` and `length` elements: the header that `np.save` writes, then the
    data, appended by the caller in order (checked at the end)."""
    with path.open("wb") as stream:
        header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
        npy_format.write_array_header_1_0(stream, header)
        start = stream.tell()
        yield stream
        written = stream.tell() - start
    if written != length * dtype.itemsize:
        raise AssertionError(f"{path}: {written} bytes of data written for {length} elements of {dtype}")
