"""bot.search: hybrid dense + lexical retrieval, padding labels, near-duplicate collapse."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt
import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, write_article

from bot import search as search_module
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.engine import Engine, Outcome
from bot.english import terms
from bot.search import Passage, search
from bot.store import LoadedIndex, bm25_top, open_index, top_positions

PROJECT_CORPUS = Path(__file__).resolve().parent / "data" / "news"
TINY_TEXT = "The footbridge in Oral reopened on Monday after repairs."
QUESTIONS = [
    "When did the footbridge reopen?",
    "Who repaired the footbridge in Oral?",
    "What is the best recipe for pancakes?",
    "How many people crossed it?",
    "footbridge",
    "Why?",
]


class PaddingIndex:
    """Wraps a FAISS index and asks it for more results than it holds, as HNSW or IVF indexes return:
    FAISS pads the missing results with label -1."""

    def __init__(self, inner: Any, extra: int = 5) -> None:
        self._inner = inner
        self._extra = extra
        self.ntotal: int = inner.ntotal

    def search(self, query: npt.NDArray[np.float32], k: int) -> tuple[Any, Any]:
        scores, labels = self._inner.search(query, k + self._extra)
        assert (labels == -1).any(), "the wrapped index should pad with -1"
        return scores[:, : k + self._extra], labels[:, : k + self._extra]


# The indexes below are module-scoped (builds fsync, so they are slow on a busy disk): tests must only read
# them. They are built with a FakeEmbedder(), which equals the `fake_embedder` fixture's.


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of one article of one sentence: a single chunk."""
    root = tmp_path_factory.mktemp("tiny")
    write_article(root / "corpus", "tiny.md", TINY_TEXT, title="Footbridge reopens", publisher="Oral News")
    report = build_index(root / "corpus", root / "index", FakeEmbedder(), ChunkingSettings())
    assert report.chunks == 1
    return root / "index"


def _corpus_copy(root: Path, project_corpus: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir()
    for path in sorted(project_corpus.glob("*.md")):
        shutil.copy(path, corpus / path.name)
    return corpus


def _query(embedder: FakeEmbedder, text: str) -> tuple[npt.NDArray[np.float32], list[str]]:
    return embedder.embed([text])[0], terms(text)


def _assert_valid(passages: list[Passage], index: LoadedIndex, k: int) -> None:
    assert len(passages) <= k
    chunks = [p.chunk for p in passages]
    assert len(set(chunks)) == len(chunks)
    assert all(0 <= c < len(index.data.chunks) for c in chunks)
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0001 <= p.cosine <= 1.0001 for p in passages)


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("k", [1, 6, 50])
def test_single_chunk_index_search_stays_in_range(
    tiny_index: Path, fake_embedder: FakeEmbedder, question: str, k: int
) -> None:
    index = open_index(tiny_index, fake_embedder)
    vector, query_terms = _query(fake_embedder, question)
    passages = search(index, vector, query_terms, k=k)
    _assert_valid(passages, index, k)
    assert [p.chunk for p in passages] == [0]  # the one chunk always comes back from dense search


@pytest.mark.parametrize("question", QUESTIONS)
def test_padding_labels_never_index_a_chunk(tiny_index: Path, fake_embedder: FakeEmbedder, question: str) -> None:
    index = open_index(tiny_index, fake_embedder)
    index.faiss_index = PaddingIndex(index.faiss_index)
    vector, query_terms = _query(fake_embedder, question)
    passages = search(index, vector, query_terms, k=6)
    _assert_valid(passages, index, 6)
    assert [p.chunk for p in passages] == [0]


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("padded", [False, True])
def test_single_chunk_engine_answers_or_abstains(
    tiny_index: Path, fake_embedder: FakeEmbedder, question: str, padded: bool
) -> None:
    engine = Engine.open(tiny_index, fake_embedder, params=UNIT_TEST_PARAMS)
    if padded:
        index = engine.index
        assert isinstance(index, LoadedIndex)  # the FAISS directory's store
        index.faiss_index = PaddingIndex(index.faiss_index)
    answer = engine.answer(question)
    assert answer.outcome in (Outcome.ANSWERED, Outcome.ABSTAINED)
    if answer.outcome is Outcome.ANSWERED:
        assert answer.text == f"{TINY_TEXT} [1]"
        assert [c.source for c in answer.citations] == ["tiny.md"]
    else:
        assert answer.citations == ()


def test_tiny_index_answers_its_own_sentence(tiny_index: Path, fake_embedder: FakeEmbedder) -> None:
    answer = Engine.open(tiny_index, fake_embedder, params=UNIT_TEST_PARAMS).answer(
        "When did the footbridge in Oral reopen after repairs?"
    )
    assert answer.outcome is Outcome.ANSWERED
    assert answer.text == f"{TINY_TEXT} [1]"


def test_empty_faiss_index_returns_nothing(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    index = open_index(built_index, fake_embedder)

    class Empty:
        ntotal = 0

    index.faiss_index = Empty()
    vector, query_terms = _query(fake_embedder, "Nazarbaev")
    assert search(index, vector, query_terms, k=6) == []


def test_search_results_are_valid(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    index = open_index(built_index, fake_embedder)
    for question in ["Who leads the Democratic Party?", "What is elbasy?", "pancakes", ""]:
        vector, query_terms = _query(fake_embedder, question)
        for k in (1, 3, 6, 100):
            _assert_valid(search(index, vector, query_terms, k=k), index, k)


def test_search_without_terms_is_dense_only(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    index = open_index(built_index, fake_embedder)
    vector, _ = _query(fake_embedder, "The 107-seat Majlis is currently dominated by Nazarbaev’s Nur-Otan")
    passages = search(index, vector, [], k=3)
    assert "107-seat Majlis" in index.data.chunk_text(passages[0].chunk)
    assert passages[0].cosine == max(float(index.data.chunk_vectors[c] @ vector) for c in range(len(index.data.chunks)))


def test_lexical_match_found_when_dense_is_uninformative(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    index = open_index(built_index, fake_embedder)
    holding = [i for i in range(len(index.data.chunks)) if "elbasy" in index.data.chunk_text(i)]
    assert holding, "the corpus mentions 'elbasy'"
    # A query vector that says nothing: the embedding of an empty text (a fixed unit vector).
    uninformative = fake_embedder.embed([""])[0]
    passages = search(index, uninformative, terms("elbasy"), k=3)
    assert passages[0].chunk in holding
    # Without the lexical terms, dense search alone does not rank those chunks first.
    dense_only = search(index, uninformative, [], k=len(index.data.chunks))
    assert dense_only[0].chunk not in holding or len(holding) == len(index.data.chunks)


def test_fusion_rewards_agreement(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    index = open_index(built_index, fake_embedder)
    question = "Who appoints the remaining nine seats of the Assembly of the People of Kazakhstan?"
    vector, query_terms = _query(fake_embedder, question)
    passages = search(index, vector, query_terms, k=6)
    assert "remaining nine seats are appointed" in index.data.chunk_text(passages[0].chunk)
    # A passage found by both rankings scores more than one rank-1 hit alone could.
    assert passages[0].score > 1.0 / (search_module.RRF_K + 1)


@pytest.fixture(scope="module")
def duplicated_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project corpus plus a byte-for-byte copy of the rally article under another name."""
    root = tmp_path_factory.mktemp("duplicated")
    corpus = _corpus_copy(root, PROJECT_CORPUS)
    shutil.copy(corpus / "2020-11-rferl-kazakh-opposition-rally.md", corpus / "zz-copy-of-rally.md")
    build_index(corpus, root / "index", FakeEmbedder(), ChunkingSettings())
    return root / "index"


DUPLICATE_QUESTIONS = [
    "Who appoints the remaining nine seats of the Majlis?",
    "When were the last parliamentary elections held?",
    "What did Aruzhan Duisebaeva say about Toqaev's promises?",
    "What are the four main points of the rally?",
]


@pytest.mark.parametrize("question", DUPLICATE_QUESTIONS)
def test_near_duplicates_are_collapsed_in_search(
    duplicated_index: Path, fake_embedder: FakeEmbedder, question: str
) -> None:
    index = open_index(duplicated_index, fake_embedder)
    assert len(index.data.documents) == 2, "a byte-for-byte copy is indexed once"
    vector, query_terms = _query(fake_embedder, question)
    passages = search(index, vector, query_terms, k=6)
    texts = [index.data.chunk_text(p.chunk) for p in passages]
    assert len(texts) == len(set(texts)), "the same text came back twice, once per file"
    for a in passages:
        for b in passages:
            if a.chunk != b.chunk:
                cosine = float(index.data.chunk_vectors[a.chunk] @ index.data.chunk_vectors[b.chunk])
                assert cosine < search_module.NEAR_DUPLICATE_COSINE


@pytest.mark.parametrize("question", DUPLICATE_QUESTIONS)
def test_duplicated_text_is_cited_once(duplicated_index: Path, fake_embedder: FakeEmbedder, question: str) -> None:
    answer = Engine.open(duplicated_index, fake_embedder, params=UNIT_TEST_PARAMS).answer(question)
    assert answer.outcome is Outcome.ANSWERED
    sources = [c.source for c in answer.citations]
    copies = {"2020-11-rferl-kazakh-opposition-rally.md", "zz-copy-of-rally.md"}
    assert len(copies & set(sources)) == 1, sources
    quoted = [sentence for sentence, _ in answer.quotes]
    assert len(quoted) == len(set(quoted)), "a sentence was quoted twice"


@pytest.fixture(scope="module")
def syndicated_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project corpus plus the rally article's body republished under another headline and publisher."""
    root = tmp_path_factory.mktemp("syndicated")
    corpus = _corpus_copy(root, PROJECT_CORPUS)
    original = (corpus / "2020-11-rferl-kazakh-opposition-rally.md").read_text(encoding="utf-8")
    body = original.split("---\n", 2)[2]
    write_article(corpus, "wire-copy.md", body, title="Kazakhstan opposition to rally in Almaty", publisher="Wire")
    build_index(corpus, root / "index", FakeEmbedder(), ChunkingSettings())
    return root / "index"


@pytest.mark.parametrize("question", DUPLICATE_QUESTIONS)
def test_syndicated_copy_is_cited_once(syndicated_index: Path, fake_embedder: FakeEmbedder, question: str) -> None:
    answer = Engine.open(syndicated_index, fake_embedder, params=UNIT_TEST_PARAMS).answer(question)
    assert answer.outcome is Outcome.ANSWERED
    sources = {c.source for c in answer.citations}
    assert len(sources & {"2020-11-rferl-kazakh-opposition-rally.md", "wire-copy.md"}) == 1, sources
    quoted = [sentence for sentence, _ in answer.quotes]
    assert len(quoted) == len(set(quoted))


def test_syndicated_copy_is_collapsed_in_search(syndicated_index: Path, fake_embedder: FakeEmbedder) -> None:
    index = open_index(syndicated_index, fake_embedder)
    question = "Who appoints the remaining nine seats of the Majlis?"
    vector, query_terms = _query(fake_embedder, question)
    texts = [index.data.chunk_text(p.chunk) for p in search(index, vector, query_terms, k=6)]
    assert len(texts) == len(set(texts)), "the same text came back twice, once per file"


def test_top_positions_of_nothing_is_nothing() -> None:
    assert top_positions(np.array([0.5, 0.2], dtype=np.float32), 0) == []


def test_top_positions_match_a_full_stable_sort() -> None:
    rng = np.random.default_rng(11)
    for scores in (
        rng.random(500).astype(np.float32),
        np.round(rng.random(500), 1).astype(np.float32),  # many ties, cut through by the partition
        np.zeros(500, dtype=np.float32),
        rng.random(7).astype(np.float32),
    ):
        # Passages scoring 0 share no term with the question and are never used, so their order is free.
        expected = [int(i) for i in np.argsort(-scores, kind="stable")[:30] if scores[i] > 0]
        assert [i for i in top_positions(scores, 30) if scores[i] > 0] == expected


def test_bm25_top_ranks_as_scoring_every_passage_does() -> None:
    """Summing only the postings of the question's terms gives bm25s's own ranking (ties: lower position)."""
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    # Few words per passage, some passages alike: ties and passages holding none of the terms both occur.
    passages = [list(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(300)]
    passages += [["w1", "w2"]] * 5
    retriever = bm25s.BM25()
    retriever.index(passages, show_progress=False)
    for _ in range(200):
        terms = list(rng.choice([*words, "unknown"], size=int(rng.integers(1, 5))))
        k = int(rng.integers(1, 40))
        scores = np.asarray(retriever.get_scores(terms), dtype=np.float32)
        expected = [p for p in top_positions(scores, k) if scores[p] > 0]
        assert bm25_top(retriever, terms, k) == expected
    assert bm25_top(retriever, ["unknown"], 5) == []
    assert bm25_top(retriever, [""], 5) == []  # bm25s's own empty token: in its vocabulary, in no passage
