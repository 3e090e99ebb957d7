"""Property-based tests (hypothesis) of what users can send: arbitrary Unicode, control, zero-width and
right-to-left characters, markup of every syntax, very long text.

- `Engine.answer` never raises, and keeps its contract (an answer cites what its markers name).
- Markup around a real question does not change its answer.
- Every message the Telegram renderer makes is valid Telegram HTML within 4,096 characters after parsing
  (checked with `fake_telegram.parse_html`, a port of Telegram's parser).

All on the fake embedder, over one index built per module, so the examples are quick.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fake_telegram import parse_html, utf16_len
from fakes import UNIT_TEST_PARAMS, FakeEmbedder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.engine import CLOSEST_PREFIX, Answer, Citation, Engine, Outcome, SourceInfo
from bot.markup import strip_markup
from bot.telegram.render import MAX_MESSAGE, answer_messages, passages_messages, sources_messages

PROJECT_CORPUS = Path(__file__).resolve().parent.parent / "corpus"
# Questions the articles answer (with the fake embedder too): markup around them must not change that.
QUESTIONS = [
    "Who is Zhanbolat Mamai?",
    "Who leads the Democratic Party of Kazakhstan?",
    "What did the Ministry of Justice do?",
    "When were the parliamentary elections held?",
]
INVISIBLE = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
)
CONTROL = "".join(chr(c) for c in [*range(0, 32), 127, *range(0x80, 0xA0)])
NASTY_TEXT = st.lists(
    st.one_of(
        st.characters(codec=None),  # any code point, lone surrogates included
        st.sampled_from(INVISIBLE + CONTROL + "<>&\"'*_~`|[]()\\#+-=.!{} "),
        st.sampled_from(
            "Who what Mamai party Kazakhstan detained Алматы مرحبا 😀 👍🏽 e\u0301 &amp; &lt;b&gt;".split()
        ),
    ),
    max_size=120,
).map("".join)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("properties")
    shutil.copytree(PROJECT_CORPUS, root / "corpus")
    embedder = FakeEmbedder()
    build_index(root / "corpus", root / "index", embedder, ChunkingSettings())
    return Engine.open(root / "index", embedder, params=UNIT_TEST_PARAMS)


def assert_valid_telegram_html(messages: list[str]) -> None:
    assert messages
    for message in messages:
        parsed = parse_html(message)  # raises on anything Telegram would refuse
        text = parsed.text.strip()
        assert text, f"an empty message: {message!r}"
        assert utf16_len(text) <= MAX_MESSAGE


def assert_contract(answer: Answer, question: str) -> None:
    assert answer.question == question
    assert isinstance(answer.outcome, Outcome) and answer.text.strip()
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    quotes_something = answer.outcome is Outcome.ANSWERED or answer.text.startswith(CLOSEST_PREFIX)
    if quotes_something:
        assert answer.citations and markers == {c.n for c in answer.citations}
    else:
        assert answer.citations == ()


# The engine never raises ----------------------------------------------------------------------------------------


@SETTINGS
@given(question=NASTY_TEXT)
def test_the_engine_answers_anything_without_raising(shared_engine: Engine, question: str) -> None:
    answer = shared_engine.answer(question)
    assert_contract(answer, question)
    assert_valid_telegram_html(answer_messages(answer))
    assert_valid_telegram_html(passages_messages(answer))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    question=st.sampled_from(QUESTIONS),
    filler=st.text(alphabet=st.sampled_from("ab <>*_&\u200b\n"), min_size=1, max_size=5),
    repeat=st.integers(min_value=100, max_value=5000),
)
def test_very_long_text_is_refused_politely(shared_engine: Engine, question: str, filler: str, repeat: int) -> None:
    text = question + filler * repeat
    answer = shared_engine.answer(text)
    assert_contract(answer, text)
    if len(strip_markup(text)) > shared_engine.max_question_chars:
        assert answer.outcome is Outcome.REJECTED and "too long" in answer.text


def test_a_question_among_invisible_characters_is_answered_as_without_them(shared_engine: Engine) -> None:
    question = QUESTIONS[0]
    noisy = "\u202e\ufeff" + question.replace(" ", " \u200b\u200f") + "\u0000\u2066"
    plain, answer = shared_engine.answer(question), shared_engine.answer(noisy)
    assert plain.outcome is Outcome.ANSWERED
    assert (answer.outcome, answer.text, answer.citations) == (plain.outcome, plain.text, plain.citations)


# Markup around a real question -------------------------------------------------------------------------------

URL = "https://example.com/a_b?c=1&d=*x*"
WRAPPERS = [
    # HTML, as clients and copy-paste produce it
    "<b>{}</b>",
    "<strong>{}</strong>",
    "<i>{}</i>",
    "<u>{}</u>",
    "<s>{}</s>",
    "<code>{}</code>",
    "<pre>{}</pre>",
    '<a href="' + URL + '">{}</a>',
    '<span class="tg-spoiler">{}</span>',
    "<tg-spoiler>{}</tg-spoiler>",
    "<blockquote>{}</blockquote>",
    "<p>{}</p>",
    "<br/>{}<br>",
    # Markdown
    "**{}**",
    "__{}__",
    "*{}*",
    "_{}_",
    "~~{}~~",
    "`{}`",
    "```{}```",
    "```\n{}\n```",
    "[{}](" + URL + ")",
    "> {}",
    # MarkdownV2
    "~{}~",
    "||{}||",
    "**>{}",
    ">{}",
]


@st.composite
def marked_up(draw: st.DrawFn) -> tuple[str, str]:
    """A real question and the same question with markup around some of its words, possibly nested."""
    question = draw(st.sampled_from(QUESTIONS))
    words = question.split(" ")
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        start = draw(st.integers(min_value=0, max_value=len(words) - 1))
        end = draw(st.integers(min_value=start + 1, max_value=len(words)))
        wrapper = draw(st.sampled_from(WRAPPERS))
        if wrapper.lstrip("*").startswith(">") and start != 0:
            wrapper = wrapper.replace(">", "\n>", 1)  # a quote starts a line
        words[start:end] = [wrapper.format(" ".join(words[start:end]))]
    text = " ".join(words)
    if draw(st.booleans()):  # HTML-escaped, as a client that sends entities would
        text = text.replace("&", "&amp;")
    return question, text


@SETTINGS
@given(pair=marked_up())
def test_markup_around_a_question_does_not_change_its_answer(shared_engine: Engine, pair: tuple[str, str]) -> None:
    question, text = pair
    plain, answer = shared_engine.answer(question), shared_engine.answer(text)
    assert plain.outcome is Outcome.ANSWERED
    assert (answer.outcome, answer.text, answer.citations) == (plain.outcome, plain.text, plain.citations), text


def test_markup_exposed_by_taking_other_markup_out_goes_too() -> None:
    # Found by hypothesis: a ">" opens the line, or stars stand alone, only once the tag is gone.
    assert strip_markup("<b>> Who</b> is Zhanbolat Mamai?") == "Who is Zhanbolat Mamai?"
    assert strip_markup("<i>**>Who</i> is he?") == "Who is he?"
    assert strip_markup("*<b>Who</b>* is he?") == "Who is he?"
    assert strip_markup("*<b>> Who</b>* is he?") == "Who is he?"
    assert strip_markup("*> Who* is he?") == "Who is he?"


def test_markdown_v2_escapes_are_taken_out() -> None:
    assert strip_markup(r"Who leads the party\? \*really\* \(now\)") == "Who leads the party? really (now)"


# The renderer, on arbitrary answers ----------------------------------------------------------------------------

OPTIONAL = st.none() | NASTY_TEXT
URLS = st.none() | st.builds(lambda path: "https://example.com/" + path, NASTY_TEXT)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    count = draw(st.integers(min_value=0, max_value=8))
    citations = tuple(
        Citation(
            n=n,
            title=draw(NASTY_TEXT.filter(str.strip)),
            publisher=draw(OPTIONAL),
            published=draw(st.none() | st.sampled_from(["2020-11-06", "2020-11", "2020-13", "soon", ""])),
            url=draw(URLS),
            source=draw(NASTY_TEXT),
            passage=draw(st.text(max_size=20) | NASTY_TEXT | st.builds(lambda t: t * 300, NASTY_TEXT)),
        )
        for n in range(1, count + 1)
    )
    body = draw(NASTY_TEXT.filter(str.strip) | st.builds(lambda t: t * 200, NASTY_TEXT.filter(str.strip)))
    text = " ".join([body, *(f"[{c.n}]" for c in citations)])
    outcome = Outcome.ANSWERED if citations else draw(st.sampled_from([Outcome.ABSTAINED, Outcome.REJECTED]))
    return Answer(question="?", outcome=outcome, text=text, citations=citations)


@SETTINGS
@given(answer=answers())
def test_every_rendered_message_is_valid_telegram_html_within_the_limit(answer: Answer) -> None:
    assert_valid_telegram_html(answer_messages(answer))
    assert_valid_telegram_html(passages_messages(answer))


@settings(max_examples=40, deadline=None)
@given(
    sources=st.lists(
        st.builds(SourceInfo, NASTY_TEXT.filter(str.strip), OPTIONAL, OPTIONAL, URLS, NASTY_TEXT), max_size=60
    )
)
def test_every_sources_message_is_valid_telegram_html_within_the_limit(sources: list[SourceInfo]) -> None:
    assert_valid_telegram_html(sources_messages(sources))
