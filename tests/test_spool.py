"""Arrays written as a build makes them (`ArraySpool`) and read back in blocks (`NpyRows`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bot import ann
from bot.spool import HEADER_BYTES, ArraySpool, NpyRows


@pytest.mark.parametrize(
    ("dtype", "columns", "batches"),
    [
        ("<f4", 3, [np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((0, 3)), np.ones((5, 3))]),
        ("<i8", 4, [[(1, 2, 3, 4)], [(5, 6, 7, 8), (9, 10, 11, 12)]]),
        ("<i8", None, [[0], [7, 8, 9], []]),
        ("<f4", 384, []),
    ],
)
def test_a_spool_is_the_npy_file_of_its_rows(
    tmp_path: Path, dtype: str, columns: int | None, batches: list[npt.ArrayLike]
) -> None:
    path = tmp_path / "rows.npy"
    spool = ArraySpool(path, dtype, columns)
    for batch in batches:
        spool.append(batch)
    spool.close()
    shape = (-1,) if columns is None else (-1, columns)
    expected = (
        np.concatenate([np.asarray(b, dtype=dtype).reshape(shape) for b in batches])
        if batches
        else np.zeros((0,) if columns is None else (0, columns), dtype=dtype)
    )
    for loaded in (np.load(path), np.load(path, mmap_mode="r")):
        assert loaded.dtype == np.dtype(dtype)
        assert loaded.shape == expected.shape
        assert np.array_equal(loaded, expected)
    assert path.stat().st_size == HEADER_BYTES + expected.nbytes


def test_a_closed_spool_takes_no_more_rows(tmp_path: Path) -> None:
    spool = ArraySpool(tmp_path / "rows.npy", "<i8")
    spool.close()
    with pytest.raises(ValueError, match="closed"):
        spool.append([1])


def test_rows_read_in_blocks_and_by_number_are_the_file_s_rows(tmp_path: Path) -> None:
    table = np.random.default_rng(1).standard_normal((1000, 7)).astype(np.float32)
    for path in (tmp_path / "saved.npy", tmp_path / "spooled.npy"):
        if path.name == "saved.npy":
            np.save(path, table)  # numpy's own header, shorter than a spool's
        else:
            spool = ArraySpool(path, "<f4", 7)
            spool.append(table)
            spool.close()
        rows = NpyRows(path)
        assert len(rows) == 1000 and rows.shape == (1000, 7)
        assert np.array_equal(np.concatenate(list(rows.blocks(64))), table)
        numbers = np.array([999, 0, 500, 500, 3])
        assert np.array_equal(rows.take(numbers), table[numbers])
        assert np.array_equal(rows.read(990, 2000), table[990:])


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.npy"
    np.save(path, np.ones((10, 4), dtype=np.float32))
    with path.open("r+b") as stream:
        stream.truncate(path.stat().st_size - 8)
    with pytest.raises(ValueError, match="ends before"):
        NpyRows(path).read(0, 10)


@pytest.mark.parametrize(
    "policy",
    [ann.AnnPolicy(10**6, 10**6, 10**6), ann.AnnPolicy(0, 10**6, 10**6), ann.AnnPolicy(0, 0, 10**6)],
    ids=["flat", "hnsw", "ivf-sq8"],
)
def test_an_index_built_from_a_file_is_the_index_built_from_memory(tmp_path: Path, policy: ann.AnnPolicy) -> None:
    vectors = np.random.default_rng(2).standard_normal((3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path / "vectors.npy"
    spool = ArraySpool(path, "<f4", 16)
    spool.append(vectors)
    spool.close()
    spec = ann.choose(len(vectors), 16, policy)
    from_memory, from_file = ann.build(vectors, spec), ann.build(NpyRows(path), spec)
    queries = vectors[:50]
    assert from_file.ntotal == from_memory.ntotal == len(vectors)
    for left, right in zip(from_memory.search(queries, 10), from_file.search(queries, 10), strict=True):
        assert np.array_equal(left, right)
