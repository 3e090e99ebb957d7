"""bot.bm25_writer: the index it writes passage by passage is the one bm25s builds in memory, file for file.

bm25s numbers its vocabulary in the iteration order of a set of strings, which depends on the process's string
hashes: the writer reproduces it within a process, so each test compares with bm25s run in the same process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.bm25_writer import BM25Writer
from bot.store import bm25_top

FILES = ["data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "params.index.json", "vocab.index.json"]


def _by_bm25s(directory: Path, passages: list[list[str]]) -> Path:
    retriever = bm25s.BM25()
    retriever.index(passages, show_progress=False)
    retriever.save(str(directory), show_progress=False)
    return directory


def _by_writer(directory: Path, work_dir: Path, passages: list[list[str]], **options: int) -> Path:
    with BM25Writer(work_dir, **options) as writer:
        for tokens in passages:
            writer.add(tokens)
        writer.write(directory)
    return directory


def _load(directory: Path) -> bm25s.BM25:
    return bm25s.BM25.load(str(directory), mmap=True, allow_pickle=False, show_progress=False)


def _assert_same_files(expected: Path, written: Path) -> None:
    assert sorted(p.name for p in expected.iterdir()) == sorted(p.name for p in written.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (written / name).read_bytes() == (expected / name).read_bytes(), name


def _zipf_corpus(seed: int, passages: int, words: int) -> list[list[str]]:
    """Passages of 0 to 60 tokens drawn from `words` words with Zipf-like frequencies: some passages empty, the
    common words repeated within a passage."""
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" for i in range(words)]
    weights = 1 / np.arange(1, words + 1)
    weights /= weights.sum()
    corpus = [
        [str(t) for t in rng.choice(vocabulary, size=int(rng.integers(0, 61)), p=weights)] for _ in range(passages)
    ]
    for i in rng.choice(passages, size=passages // 20, replace=False):
        corpus[int(i)] = []
    return corpus


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    return _zipf_corpus(seed=7, passages=3000, words=400)


@pytest.mark.parametrize("block_postings", [8_000_000, 5_000, 997])
def test_same_files_as_bm25s(tmp_path: Path, corpus: list[list[str]], block_postings: int) -> None:
    """Byte for byte: the same vocabulary in the same order, the same float32 scores, the same headers; one block
    or many (the common words' postings alone exceed the smallest budget)."""
    expected = _by_bm25s(tmp_path / "bm25s", corpus)
    written = _by_writer(tmp_path / "writer", tmp_path, corpus, block_postings=block_postings)
    _assert_same_files(expected, written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25s", "writer"]  # the scratch file is gone


def test_loaded_index_searches_as_bm25s(tmp_path: Path, corpus: list[list[str]]) -> None:
    expected = _load(_by_bm25s(tmp_path / "bm25s", corpus))
    written = _load(_by_writer(tmp_path / "writer", tmp_path, corpus))
    assert written.vocab_dict == expected.vocab_dict
    assert list(written.vocab_dict) == list(expected.vocab_dict)
    for name in ["data", "indices", "indptr"]:
        assert written.scores[name].dtype == expected.scores[name].dtype, name
        assert np.array_equal(written.scores[name], expected.scores[name]), name
    assert written.scores["num_docs"] == expected.scores["num_docs"] == len(corpus)
    rng = np.random.default_rng(11)
    # Not bm25s's empty token: `get_scores` refuses it (it has no postings), `bm25_top` finds nothing for it.
    words = [*(token for token in expected.vocab_dict if token), "unknown"]
    for _ in range(200):
        terms = [str(t) for t in rng.choice(words, size=int(rng.integers(1, 6)))]
        k = int(rng.integers(1, 50))
        assert bm25_top(written, terms, k) == bm25_top(expected, terms, k)
        assert np.array_equal(written.get_scores(terms), expected.get_scores(terms))
    assert bm25_top(written, [""], 5) == bm25_top(expected, [""], 5) == []


@pytest.mark.parametrize(
    ("passages", "block_postings"),
    [
        ([["alone"]], 8_000_000),
        ([["a", "b", "a"]], 8_000_000),
        ([["all", "x"], ["all"], ["y", "all", "all"], ["all", "x", "z"]], 8_000_000),
        ([["all", "x"], ["all"], ["y", "all", "all"], ["all", "x", "z"]], 1),  # one token a block, larger than it
        ([[], ["a"], [], ["a", "b"], []], 8_000_000),  # empty passages between others
        ([["", "a"], ["a"]], 8_000_000),  # the empty string as a token: bm25s adds no empty token of its own
    ],
)
def test_corner_cases(tmp_path: Path, passages: list[list[str]], block_postings: int) -> None:
    expected = _by_bm25s(tmp_path / "bm25s", passages)
    written = _by_writer(tmp_path / "writer", tmp_path, passages, block_postings=block_postings)
    _assert_same_files(expected, written)


# bm25s warns of the mean of no passages' lengths before it fails.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("passages", [[], [[]], [[], [], []]])
def test_no_token_at_all_is_refused_as_by_bm25s(tmp_path: Path, passages: list[list[str]]) -> None:
    """bm25s's `index` raises ValueError when no passage holds a token (its empty token has no id to follow)."""
    with pytest.raises(ValueError):
        bm25s.BM25().index(passages, show_progress=False)
    writer = BM25Writer(tmp_path)
    for tokens in passages:
        writer.add(tokens)
    with pytest.raises(ValueError, match="holds a token"):
        writer.write(tmp_path / "writer")
    assert list(tmp_path.iterdir()) == []  # nor is the scratch file left


def test_a_written_writer_takes_nothing_more(tmp_path: Path) -> None:
    writer = BM25Writer(tmp_path)
    writer.add(["a"])
    writer.write(tmp_path / "index")
    with pytest.raises(ValueError, match="after write"):
        writer.add(["b"])
    with pytest.raises(ValueError, match="after write"):
        writer.write(tmp_path / "again")


def test_close_removes_the_scratch_file(tmp_path: Path) -> None:
    with BM25Writer(tmp_path) as writer:
        writer.add(["a", "b"])
        assert len(list(tmp_path.iterdir())) == 1
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=60, deadline=None)
@given(
    passages=st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "é", "e f", ""]), max_size=8), max_size=12),
    block_postings=st.integers(min_value=1, max_value=20),
)
def test_any_small_corpus_as_bm25s(passages: list[list[str]], block_postings: int) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        if not any(passages):
            with pytest.raises(ValueError):
                _by_writer(root / "writer", root, passages, block_postings=block_postings)
            return
        expected = _by_bm25s(root / "bm25s", passages)
        written = _by_writer(root / "writer", root, passages, block_postings=block_postings)
        _assert_same_files(expected, written)
