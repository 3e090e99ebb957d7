"""bot.engine: answers quote the articles verbatim with citations, or abstain, or reject the message.

The embedder is fake, so these tests check structure, abstention and grounding rather than wording.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder

from bot.conversation import Conversation
from bot.corpus import Article, load_corpus
from bot.engine import CLOSEST_PREFIX, NOT_COVERED_TEXT, Answer, Engine, Outcome, clean_question

RALLY = "2020-11-rferl-kazakh-opposition-rally.md"
CRACKDOWN = "2020-02-aljazeera-kazakhstan-crackdown.md"

OFF_TOPIC = [
    "What is the best recipe for pancakes?",
    "How tall is Mount Everest?",
    "What is the capital of France?",
    "Who painted the Mona Lisa?",
    "Tell me about quantum computing",
]

# Questions made of the words of one sentence of the corpus, with that sentence and its file.
TARGETED = [
    (
        "What does a party receive from the state once it is registered?",
        "Once a party is registered, it receives funding from the state.",
        CRACKDOWN,
    ),
    (
        "When were the last parliamentary elections held?",
        "The last parliamentary elections were held in March 2016.",
        RALLY,
    ),
    (
        "Who controls the Assembly of the People of Kazakhstan?",
        "The remaining nine seats are appointed by the Assembly of the People of Kazakhstan, an advisory body "
        "controlled by Nazarbaev.",
        RALLY,
    ),
    (
        "How many deputies does Nur-Otan have in the 107-seat Majlis?",
        "The 107-seat Majlis is currently dominated by Nazarbaev’s Nur-Otan, which has 84 deputies.",
        RALLY,
    ),
    (
        "What do international election observers say about past elections in Kazakhstan?",
        "International election observers say that past elections in Kazakhstan have been neither free nor fair, "
        "citing electoral fraud, repression of opposition candidates, and restrictions on the freedom of the press.",
        RALLY,
    ),
]

_PIECE = re.compile(r"(.+?) \[(\d+)\](?: |$)")
# "As of November 2020:" dates the quotes of an article when several are quoted.
_DATED = re.compile(r"As of [^:\[\]]{3,30}: ")


def _articles(corpus_dir: Path) -> dict[str, Article]:
    articles, skipped = load_corpus(corpus_dir)
    assert skipped == {}
    return {a.doc_id: a for a in articles}


def assert_grounded(answer: Answer, articles: dict[str, Article]) -> None:
    """An answer is its quotes, each a verbatim sentence of a cited passage, followed by its [n]."""
    assert answer.outcome is Outcome.ANSWERED
    assert answer.citations
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    # The text parses into "sentence [n]" pieces (each article's first perhaps dated) and nothing else.
    undated = _DATED.sub("", answer.text)
    pieces = _PIECE.findall(undated)
    assert "".join(f"{s} [{n}] " for s, n in pieces).strip() == undated
    assert [(s, int(n)) for s, n in pieces] == list(answer.quotes)
    used = set()
    for sentence, n in answer.quotes:
        assert 1 <= n <= len(answer.citations)
        citation = answer.citations[n - 1]
        assert sentence in citation.passage
        assert citation.source in articles
        # Separate quotes from one article are shown as separate windows, joined by an ellipsis line.
        assert all(window in articles[citation.source].text for window in citation.passage.split("\n…\n"))
        assert sentence in articles[citation.source].text
        used.add(n)
    assert used == {c.n for c in answer.citations}, "every citation is quoted"
    for citation in answer.citations:
        article = articles[citation.source]
        assert (citation.title, citation.publisher, citation.published, citation.url) == (
            article.title,
            article.publisher,
            article.published,
            article.url,
        )


def assert_abstained(answer: Answer) -> None:
    """Not covered at all: nothing is cited."""
    assert answer.outcome is Outcome.ABSTAINED
    assert answer.abstained
    assert answer.citations == ()
    assert answer.quotes == ()
    assert answer.text == NOT_COVERED_TEXT


def assert_abstained_or_closest(answer: Answer, articles: dict[str, Article]) -> None:
    """Abstained: either nothing is cited, or the closest passage is quoted verbatim after saying so."""
    if not answer.citations:
        assert_abstained(answer)
        return
    assert answer.outcome is Outcome.ABSTAINED
    assert answer.text.startswith(f"{CLOSEST_PREFIX} ")
    for sentence, n in answer.quotes:
        assert sentence in articles[answer.citations[n - 1].source].text


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_question_abstains(engine: Engine, question: str) -> None:
    answer = engine.answer(question)
    assert_abstained(answer)
    assert answer.question == question


@pytest.mark.parametrize(("question", "sentence", "source"), TARGETED)
def test_question_answered_with_its_sentence(
    engine: Engine, corpus_dir: Path, question: str, sentence: str, source: str
) -> None:
    articles = _articles(corpus_dir)
    assert sentence in articles[source].text
    answer = engine.answer(question)
    assert_grounded(answer, articles)
    first_sentence, n = answer.quotes[0]
    assert first_sentence == sentence
    assert answer.citations[n - 1].source == source
    assert answer.text.startswith(f"{sentence} [{n}]")
    assert not answer.abstained


@pytest.mark.parametrize(
    "question",
    [
        "Who leads the Democratic Party?",
        "Who is Zhanbolat Mamai?",
        "What is elbasy?",
        "How many seats does the Majlis have?",
        "Who held a single-person picket on November 6?",
        "What are the four main points of the rally?",
    ],
)
def test_answers_are_grounded(engine: Engine, corpus_dir: Path, question: str) -> None:
    answer = engine.answer(question)
    if answer.outcome is Outcome.ANSWERED:
        assert_grounded(answer, _articles(corpus_dir))
    else:
        assert_abstained_or_closest(answer, _articles(corpus_dir))


def test_citation_metadata(engine: Engine) -> None:
    answer = engine.answer("When were the last parliamentary elections held?")
    assert answer.outcome is Outcome.ANSWERED
    citation = answer.citations[0]
    assert citation.source == RALLY
    assert citation.title == "Kazakh Opposition Group Allowed To Hold Rally Challenging Upcoming Polls"
    assert citation.publisher == "RFE/RL"
    assert citation.published == "2020-11"
    assert citation.url is not None
    assert citation.url.startswith("https://www.rferl.org/")
    # The passage shows each quoted sentence with a sentence of context either side.
    assert citation.passage.split("\n…\n")[-1] == (
        "The remaining nine seats are appointed by the Assembly of the People of Kazakhstan, an advisory body "
        "controlled by Nazarbaev.\n\nThe last parliamentary elections were held in March 2016.\n\n"
        "International election observers say that past elections in Kazakhstan have been neither free nor fair, "
        "citing electoral fraud, repression of opposition candidates, and restrictions on the freedom of the press."
    )


@pytest.mark.parametrize(
    "question",
    ["", "   ", "\n\t  \n", "<b></b>", "```", "``` ```", "**", "?!?", "12345", "🤔🤔🤔", "<i> </i> ~~ __"],
)
def test_empty_or_markup_only_question_rejected(engine: Engine, fake_embedder: FakeEmbedder, question: str) -> None:
    fake_embedder.reset_counts()
    answer = engine.answer(question)
    assert answer.outcome is Outcome.REJECTED
    assert answer.abstained
    assert answer.citations == ()
    assert answer.quotes == ()
    assert "Please ask a question" in answer.text
    assert fake_embedder.calls == 0, "a rejected message is not embedded"


@pytest.mark.parametrize("question", ["x" * 10_000, "Who leads the party? " * 500, "<b>" + "a " * 300 + "</b>"])
def test_enormous_question_rejected(engine: Engine, question: str) -> None:
    answer = engine.answer(question)
    assert answer.outcome is Outcome.REJECTED
    assert answer.citations == ()
    assert "too long" in answer.text
    assert str(len(question)) in answer.text
    assert "500" in answer.text


def test_question_length_limit_is_configurable(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    engine = Engine.open(built_index, fake_embedder, max_question_chars=30, params=UNIT_TEST_PARAMS)
    assert engine.answer("When were the last parliamentary elections held?").outcome is Outcome.REJECTED
    assert engine.answer("Who is Zhanbolat Mamai?").outcome is not Outcome.REJECTED


@pytest.mark.parametrize(
    ("marked_up", "plain"),
    [
        ("<b>Who leads the Democratic Party?</b>", "Who leads the Democratic Party?"),
        ("**When** were the `last parliamentary elections` held?", "When were the last parliamentary elections held?"),
        ("<i>What is the best recipe for pancakes?</i>", "What is the best recipe for pancakes?"),
        ("  When   were the last\nparliamentary elections held?  ", "When were the last parliamentary elections held?"),
    ],
)
def test_markup_is_stripped_before_answering(engine: Engine, marked_up: str, plain: str) -> None:
    assert clean_question(marked_up) == plain
    with_markup = engine.answer(marked_up)
    without = engine.answer(plain)
    assert with_markup.question == marked_up
    assert (with_markup.outcome, with_markup.text, with_markup.citations) == (
        without.outcome,
        without.text,
        without.citations,
    )
    assert "<b>" not in with_markup.text
    assert "**" not in with_markup.text


def test_clean_question() -> None:
    assert clean_question("<b>Who</b> is <a href='https://x.example'>Mamai</a>?") == "Who is Mamai ?"
    assert clean_question("Tom &amp; Jerry") == "Tom & Jerry"
    assert clean_question("~~struck~~ __under__ `code` ```block```") == "struck under code block"
    assert clean_question("") == ""


def test_clean_question_removes_entity_escaped_markup() -> None:
    assert clean_question("&lt;b&gt;Who leads the Democratic Party?&lt;/b&gt;") == "Who leads the Democratic Party?"


def test_non_english_question_does_not_crash(engine: Engine, corpus_dir: Path) -> None:
    for question in ["Кто возглавляет Демократическую партию?", "Qui dirige le parti ?", "民主党的领导人是谁？"]:
        answer = engine.answer(question)
        assert answer.outcome in (Outcome.ANSWERED, Outcome.ABSTAINED)
        if answer.outcome is Outcome.ANSWERED:
            assert_grounded(answer, _articles(corpus_dir))


def test_sources_lists_the_corpus(engine: Engine, corpus_dir: Path) -> None:
    articles = _articles(corpus_dir)
    sources = engine.sources()
    assert sorted(s.source for s in sources) == sorted(articles)
    for source in sources:
        article = articles[source.source]
        assert (source.title, source.publisher, source.published, source.url) == (
            article.title,
            article.publisher,
            article.published,
            article.url,
        )
    # Newest first.
    assert [s.published for s in sources] == ["2020-11", "2020-02"]
    assert sources[0].url is not None
    assert sources[0].url.startswith("https://")


def test_newest_articles_come_with_their_texts(engine: Engine, corpus_dir: Path) -> None:
    articles = _articles(corpus_dir)
    newest = engine.newest_articles(5)
    assert [d.doc_id for d in newest] == [s.source for s in engine.sources()]
    assert all(d.text == articles[d.doc_id].text for d in newest)
    assert [d.doc_id for d in engine.newest_articles(1)] == [newest[0].doc_id]


def test_conversation_remembers_cleaned_questions(engine: Engine) -> None:
    conversation = Conversation(max_turns=3)
    answered = engine.answer("<b>When were the last parliamentary elections held?</b>", conversation)
    abstained = engine.answer("What is the best recipe for pancakes?", conversation)
    rejected = engine.answer("", conversation)
    assert rejected.outcome is Outcome.REJECTED
    exchanges = conversation.exchanges
    assert [e.question for e in exchanges] == [
        "When were the last parliamentary elections held?",
        "What is the best recipe for pancakes?",
    ]
    assert exchanges[0].answer_text == answered.text
    assert exchanges[1].answer_text == ""
    assert abstained.outcome is Outcome.ABSTAINED


def test_answers_are_deterministic(engine: Engine) -> None:
    first = [engine.answer(q) for q, _, _ in TARGETED]
    again = [engine.answer(q) for q, _, _ in TARGETED]
    assert first == again


def test_comparison_signs_in_a_question_are_not_taken_for_markup() -> None:
    assert clean_question("Was support <30% in Almaty and >50% elsewhere?") == (
        "Was support <30% in Almaty and >50% elsewhere?"
    )
    assert clean_question("<i>Who</i> leads the party?") == "Who leads the party?"


def test_word_vectors_stay_correct_when_the_cache_overflows(fake_embedder: FakeEmbedder) -> None:
    from bot.answer import WordVectors

    words = WordVectors(fake_embedder.embed, capacity=3)
    first = words(["ban", "forbid", "land"])
    again = words(["ban", "prohibit", "lease", "forbid", "ban"])
    expected = fake_embedder.embed(["ban", "prohibit", "lease", "forbid", "ban"])
    assert again.shape == expected.shape
    assert (abs(again - expected) < 1e-6).all()
    assert (abs(first[0] - again[0]) < 1e-6).all()


@pytest.mark.parametrize(("fitted_for", "warned"), [("weights-of-another-model", True), (None, False)])
def test_a_scorer_fitted_for_another_model_is_warned_about(
    built_index: Path,
    fake_embedder: FakeEmbedder,
    caplog: pytest.LogCaptureFixture,
    fitted_for: str | None,
    warned: bool,
) -> None:
    provenance = {"model": {"name": "x", "fingerprint": fitted_for or fake_embedder.fingerprint}}
    params = dataclasses.replace(UNIT_TEST_PARAMS, provenance=provenance)
    with caplog.at_level(logging.WARNING, logger="bot.engine"):
        Engine.open(built_index, fake_embedder, params=params)
    assert ("python -m bot fit" in caplog.text) is warned
