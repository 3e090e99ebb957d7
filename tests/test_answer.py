"""bot.answer and the engine's answer shapes, on small articles written here (not the seed articles).

The embedder is fake and the scorer's weights are `UNIT_TEST_PARAMS`: these tests check the mechanics (what
is quoted, what a pronoun needs, what a misspelling costs, how an abstention looks), not the fitted weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, write_article

from bot.answer import MAX_PASSAGE_CHARS, Candidates, Decision, Question
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.engine import CLOSEST_PREFIX, NOT_COVERED_TEXT, Engine, Outcome
from bot.scorer import FEATURES

TAPESTRY = (
    "The museum in the old town keeps an embroidered cloth nearly seventy metres long.\n\n"
    "The Bayeux Tapestry shows the events leading up to the Norman conquest of England. "
    "It was commissioned by Bishop Odo in the 1070s. "
    "Its panels were stitched in wool on linen.\n\n"
    "Visitors queue for hours in the summer. The museum opens at nine every morning."
)
RIVER_OLD = (
    "The ferry across the Ural river carries about two hundred passengers a day. "
    "The ferry operator Zhanbolat Seitkali said the crossing would stay open all winter."
)
RIVER_NEW = (
    "The new bridge over the Ural river opened to traffic on Monday. "
    "The ferry operator Zhanbolat Seitkali said the ferry would now close for good."
)
WHY = (
    "The city council closed the central market last spring. "
    "Officials said the roof had become unsafe after a storm damaged its beams. "
    "Traders protested because they lost their income for months. "
    "A temporary market opened in a car park in June. "
    "The council promised to reopen the old hall within two years."
)


@pytest.fixture
def small_engine(tmp_path: Path) -> Engine:
    corpus = tmp_path / "corpus"
    write_article(corpus, "tapestry.md", TAPESTRY, title="The tapestry museum", published="'2021-03'")
    write_article(corpus, "ferry-2019.md", RIVER_OLD, title="Ferry keeps running", published="2019-12-01")
    write_article(corpus, "bridge-2022.md", RIVER_NEW, title="Bridge opens on the Ural", published="2022-06-06")
    write_article(corpus, "market.md", WHY, title="Central market closed", published="'2020-05'")
    embedder = FakeEmbedder()
    build_index(corpus, tmp_path / "index", embedder, ChunkingSettings())
    return Engine.open(tmp_path / "index", embedder, params=UNIT_TEST_PARAMS)


def test_a_quote_that_opens_with_a_pronoun_brings_the_sentence_it_points_to(small_engine: Engine) -> None:
    answer = small_engine.answer("Who commissioned it, the Bishop Odo tapestry commission?")
    quoted = [sentence for sentence, _ in answer.quotes]
    assert "It was commissioned by Bishop Odo in the 1070s." in quoted
    at = quoted.index("It was commissioned by Bishop Odo in the 1070s.")
    assert at > 0 and quoted[at - 1].startswith("The Bayeux Tapestry shows")
    assert not any(q.startswith(("It ", "Its ")) and i == 0 for i, q in enumerate(quoted))


@pytest.mark.parametrize(
    "question",
    [
        "when was the bayeux tapestry comissioned by bishop odo",  # a typo
        "When was the Bayeux Tapestry commissioned by bishop Odo",
        "when was the bayeux tapestery commissioned by bishop odo",  # another
    ],
)
def test_a_misspelled_word_weighs_less_but_does_not_end_the_answer(small_engine: Engine, question: str) -> None:
    answer = small_engine.answer(question)
    assert answer.outcome is Outcome.ANSWERED, answer.text
    assert "commissioned by Bishop Odo" in answer.text


def test_names_match_across_transliterations(small_engine: Engine) -> None:
    _, scorer = small_engine.live.current()
    assert "zhanbolat" in scorer.match_word("janbolat")
    assert scorer.match_word("janbolat")["zhanbolat"] == 1.0
    assert "tapestri" in scorer.match_word("tapestery")
    assert scorer.match_word("tapestery")["tapestri"] < 1.0
    assert scorer.match_word("xylophone") == {}


def test_why_questions_get_a_short_passage_of_verbatim_sentences(small_engine: Engine) -> None:
    answer = small_engine.answer("Why did the city council close the central market?")
    assert answer.outcome is Outcome.ANSWERED
    assert len(answer.quotes) >= 2
    assert sum(len(sentence) for sentence, _ in answer.quotes) <= MAX_PASSAGE_CHARS
    for sentence, n in answer.quotes:
        assert sentence in WHY
        assert answer.citations[n - 1].title == "Central market closed"


def test_a_fact_question_gets_at_most_two_sentences_and_what_they_point_to(small_engine: Engine) -> None:
    answer = small_engine.answer("How many passengers does the Ural river ferry carry a day?")
    assert answer.outcome is Outcome.ANSWERED
    assert "two hundred passengers" in answer.text
    assert 1 <= len(answer.quotes) <= 4


def _sentence_starting(engine: Engine, start: str) -> int:
    data = engine.index.data
    return next(i for i in range(len(data.sentences)) if data.sentence_text(i).startswith(start))


@pytest.mark.parametrize(
    ("lead", "next_one_joins"),
    [
        ("The Bayeux Tapestry shows", True),  # "It was commissioned by ..." continues it
        ("The museum in the old town", False),  # the next sentence starts a subject of its own
    ],
)
def test_the_sentence_after_the_best_joins_it_when_it_points_back(
    small_engine: Engine, lead: str, next_one_joins: bool
) -> None:
    _, scorer = small_engine.live.current()
    best = _sentence_starting(small_engine, lead)
    other = _sentence_starting(small_engine, "Traders protested")
    # The next sentence scores far below the second-best: only pointing back can bring it in.
    sentences = [best, other, best + 1]
    features = np.zeros((3, len(FEATURES)))
    features[:, FEATURES.index("cos_sentence")] = 0.9
    choice = scorer.choose(Question.parse("What is shown?"), Candidates(sentences, features, [0.9, 0.8, 0.01]))
    assert choice.decision is Decision.ANSWER
    assert choice.sentences == ([best, best + 1] if next_one_joins else [best, other])


def test_low_confidence_shows_the_closest_passage_and_says_so(small_engine: Engine) -> None:
    answer = small_engine.answer("What colour is the museum roof?")
    assert answer.outcome is Outcome.ABSTAINED and answer.abstained
    assert answer.text.startswith(CLOSEST_PREFIX)
    assert answer.citations and answer.quotes


def test_nothing_related_cites_nothing(small_engine: Engine) -> None:
    answer = small_engine.answer("What is a good recipe for pancakes with blueberries?")
    assert answer.outcome is Outcome.ABSTAINED
    assert answer.text == NOT_COVERED_TEXT
    assert answer.citations == () and answer.quotes == ()


def test_questions_about_now_prefer_the_newest_article_and_say_when(small_engine: Engine) -> None:
    answer = small_engine.answer("What did ferry operator Zhanbolat Seitkali say about the ferry now?")
    assert answer.outcome is Outcome.ANSWERED
    first_sentence, n = answer.quotes[0]
    assert first_sentence in RIVER_NEW
    assert answer.citations[n - 1].published == "2022-06-06"
    assert answer.text.startswith("As of 6 June 2022: ")


@pytest.mark.parametrize("message", ["hi", "Thanks!", "what can you do?", "bye", "ok"])
def test_small_talk_is_answered_kindly_without_searching(small_engine: Engine, message: str) -> None:
    embedder = small_engine.embedder
    assert isinstance(embedder, FakeEmbedder)
    embedder.reset_counts()
    answer = small_engine.answer(message)
    assert answer.outcome is Outcome.CHAT
    assert not answer.abstained and answer.citations == ()
    assert embedder.calls == 0
    assert "articles" in answer.text


def test_capabilities_name_what_the_bot_knows(small_engine: Engine) -> None:
    answer = small_engine.answer("what can you do?")
    assert "4 news articles" in answer.text
    assert "Bridge opens on the Ural" in answer.text  # the newest article


@pytest.mark.parametrize("message", ["What are the articles about?", "summarize", "brief me on the news"])
def test_an_overview_quotes_each_article_lead_newest_first(small_engine: Engine, message: str) -> None:
    answer = small_engine.answer(message)
    assert answer.outcome is Outcome.ANSWERED
    assert [c.published for c in answer.citations] == ["2022-06-06", "2021-03", "2020-05", "2019-12-01"]
    leads = [sentence for sentence, _ in answer.quotes]
    assert leads[0] == "The new bridge over the Ural river opened to traffic on Monday."
    assert "As of June 2022" not in answer.text and "As of 6 June 2022:" in answer.text


def test_json_line_reports_outcome_and_confidence(small_engine: Engine) -> None:
    from bot.console import answer_json

    line = answer_json(small_engine.answer("How many passengers does the Ural river ferry carry a day?"))
    assert line["outcome"] == "answered" and line["abstained"] is False
    assert 0.5 <= line["confidence"] <= 1.0
    chat = answer_json(small_engine.answer("hello"))
    assert chat["outcome"] == "chat" and chat["confidence"] is None


def test_sentence_facts_are_read_once_and_stay_right_past_the_cache_size() -> None:
    from bot.answer import _SentenceFactsCache

    texts = ["In 1990 the council had 107 seats.", "Jane Doe leads the party.", "It rained.", "Nobody came."]
    read: list[int] = []

    def text(sentence: int) -> str:
        read.append(sentence)
        return texts[sentence]

    facts = _SentenceFactsCache(text, capacity=2)
    first = facts([0, 1, 2, 3])
    assert [first[s].text for s in range(4)] == texts
    assert first[2].points_back and not first[3].points_back
    assert first[1].names and first[0].numbers
    again = facts([2, 3, 0])
    assert read == [0, 1, 2, 3, 0]  # 2 and 3 were kept; 0 was dropped (two at most) and read again
    assert again[0] == first[0]


def test_candidates_are_the_same_when_the_sentence_cache_holds_every_sentence_or_almost_none(
    small_engine: Engine,
) -> None:
    from bot.answer import _SentenceFactsCache

    questions = ["Who commissioned the tapestry?", "How long is the cloth?", "When did the bridge open?"]
    roomy = [small_engine.candidates(q)[1] for q in questions]
    _, scorer = small_engine.live.current()
    scorer.__dict__["_facts"] = _SentenceFactsCache(scorer._data.sentence_text, capacity=1)
    tight = [small_engine.candidates(q)[1] for q in questions]
    for a, b in zip(roomy, tight, strict=True):
        assert a.sentences == b.sentences
        assert (a.features == b.features).all()
