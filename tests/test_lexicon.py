"""bot.lexicon and the rows of an opened index: what the build counts once is what counting at open would give."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from fakes import FakeEmbedder

from bot import english, store
from bot.answer import SentenceScorer, WordVectors
from bot.errors import IndexCorruptError
from bot.lexicon import TermCounter, TermStatistics
from bot.scorer import ScorerParams


def sentence_statistics(texts: Iterable[str]) -> TermStatistics:
    """The term statistics of these sentences, counted one by one."""
    counter = TermCounter()
    for text in texts:
        counter.add(text)
    return counter.statistics()


def _opened(index_dir: Path, embedder: FakeEmbedder) -> store.IndexData:
    return store.open_index(index_dir, embedder).data


def test_stored_statistics_are_those_of_the_sentences(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    data = _opened(built_index, fake_embedder)
    counted = sentence_statistics(data.sentence_text(i) for i in range(len(data.sentences)))
    assert data.term_statistics.sentences == counted.sentences == len(data.sentences)
    assert data.term_statistics.document_frequency == counted.document_frequency
    assert {k: sorted(v) for k, v in data.term_statistics.stems_by_key.items()} == {
        k: sorted(v) for k, v in counted.stems_by_key.items()
    }


def test_document_frequency_counts_sentences_not_repeats() -> None:
    statistics = sentence_statistics(["Rivers and rivers flow.", "The river is long.", "Nothing here."])
    assert statistics.sentences == 3
    assert statistics.document_frequency[english.stem("rivers")] == 2
    assert statistics.idf()[english.stem("long")] == pytest.approx(math.log(1 + 3 / 1))
    assert english.stem("rivers") in statistics.stems_by_key[english.spelling_key("rivers")]


def test_spellings_of_one_sound_share_a_key() -> None:
    statistics = sentence_statistics(["Zhanbolat spoke first.", "Aq Zhol agreed."])
    assert english.stem("zhanbolat") in statistics.stems_by_key[english.spelling_key("Janbolat")]
    assert "17" not in {s for stems in statistics.stems_by_key.values() for s in stems}


def test_chunk_tokens_are_the_terms_of_the_chunk_with_its_title(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    data = _opened(built_index, fake_embedder)
    counter = TermCounter()
    tokens = []
    for document in range(len(data.documents)):
        sentences, chunks = data.document_sentences(document), data.document_chunks(document)
        tokens += counter.add_document(
            data.document_metadata(document).title,
            [data.sentence_text(s) for s in sentences],
            [
                (data.chunks[c].first_sentence - sentences.start, data.chunks[c].last_sentence - sentences.start)
                for c in chunks
            ],
        )
    assert len(tokens) == len(data.chunks)
    for chunk, chunk_tokens in enumerate(tokens):
        assert chunk_tokens == english.terms(data.chunk_search_text(chunk))
    assert counter.statistics() == data.term_statistics


def test_the_scorer_uses_the_stored_statistics(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    data = _opened(built_index, fake_embedder)
    rare = min(data.term_statistics.document_frequency, key=data.term_statistics.document_frequency.__getitem__)
    doctored = TermStatistics(
        data.term_statistics.sentences,
        {**data.term_statistics.document_frequency, rare: data.term_statistics.sentences},
        data.term_statistics.stems_by_key,
    )
    params = ScorerParams.load()
    words = WordVectors(fake_embedder.embed)
    as_built = SentenceScorer(data, params, words)
    data.term_statistics = doctored
    as_doctored = SentenceScorer(data, params, words)
    counted = sentence_statistics(data.sentence_text(i) for i in range(len(data.sentences)))
    assert as_built.idf(rare) == pytest.approx(math.log(1 + counted.sentences / counted.document_frequency[rare]))
    assert as_built.idf(rare) > as_doctored.idf(rare) == pytest.approx(math.log(2))


def test_a_garbled_statistics_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "terms.json"
    path.write_text('{"format": 1, "sentences": "many"}', encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="term statistics"):
        TermStatistics.read(path)
    TermStatistics(2, {"a": 1}, {"a": ["a"]}).write(path)
    assert TermStatistics.read(path) == TermStatistics(2, {"a": 1}, {"a": ["a"]})


def test_opened_rows_match_the_built_lists(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    data = _opened(built_index, fake_embedder)
    assert isinstance(data.documents, store.StoredDocuments)
    documents = list(data.documents)
    assert data.documents[-1] == documents[-1]
    assert data.documents[0:2] == documents[0:2]
    for number, document in enumerate(documents):
        assert data.document_metadata(number).title == document.title
        sentences = data.document_sentences(number)
        assert [i for i, row in enumerate(data.sentences) if row.document == number] == list(sentences)
        assert [i for i, row in enumerate(data.chunks) if row.document == number] == list(data.document_chunks(number))
        for sentence in sentences:
            owned = [c for c, owner in enumerate(data.clause_sentences) if owner == sentence]
            assert list(data.clauses_of(sentence)) == owned
    assert data.sentences[1:3] == [data.sentences[1], data.sentences[2]]
    assert isinstance(data.sentences[0].start, int)


def test_rows_naming_a_missing_sentence_are_refused(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    version = store.current_version(built_index)
    assert version is not None
    directory = built_index / version
    chunks = np.load(directory / store.CHUNK_ROWS)
    chunks[-1, 3] = 10**6
    np.save(directory / store.CHUNK_ROWS, chunks)
    with pytest.raises(IndexCorruptError):
        store.open_index(built_index, fake_embedder)
    with pytest.raises(ValueError, match="names a document or sentence"):
        store._read_rows(directory)


@pytest.mark.parametrize(
    ("table", "damage"),
    [
        (store.SENTENCE_ROWS, lambda rows: rows.__setitem__((0, 0), -1)),  # a document before the first
        (store.SENTENCE_ROWS, lambda rows: rows.__setitem__((0, 1), rows[0, 2] + 1)),  # ends before it starts
        (store.CHUNK_ROWS, lambda rows: rows.__setitem__((0, 2), rows[0, 3] + 1)),  # last sentence before first
        (store.CLAUSE_ROWS, lambda rows: rows.__setitem__(slice(None), rows[::-1].copy())),  # out of order
    ],
)
def test_rows_out_of_order_or_negative_are_refused(
    built_index: Path, table: str, damage: Callable[[npt.NDArray[np.int64]], None]
) -> None:
    version = store.current_version(built_index)
    assert version is not None
    directory = built_index / version
    rows = np.load(directory / table)
    assert len(np.unique(rows)) > 1, "the damage must change something"
    damage(rows)
    np.save(directory / table, rows)
    with pytest.raises(ValueError, match="out of order"):
        store._read_rows(directory)


def test_text_offsets_that_go_back_are_refused() -> None:
    metadata = [store.DocumentMetadata(f"d{i}", "t", None, None, None, "h") for i in range(2)]
    texts = np.frombuffer(b"abcdef", dtype=np.uint8)
    store.StoredDocuments(metadata, texts, np.array([0, 3, 6]))
    for offsets in ([0, 4, 3], [1, 3, 6], [0, 3, 7]):
        with pytest.raises(ValueError, match="offsets"):
            store.StoredDocuments(metadata, texts, np.array(offsets))
