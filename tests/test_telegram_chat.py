"""Conversation behaviour of the Telegram bot, end to end: the real `Application` and PTB's HTTP stack
talking to `FakeTelegram`, with engines on the deterministic `FakeEmbedder`.

Every end-to-end test ends with `server.errors == []`: the bot must never make Telegram refuse a request.
Silence is asserted without sleeping: the silent message is followed by one the bot must answer in the same
chat (updates of one chat are processed in order), and only that answer may have been sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import FakeChat, FakeTelegram, FakeUser, SentMessage, entity_texts, utf16_len
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, write_article
from telegram_harness import bot_settings, running_bot

from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.conversation import Conversation
from bot.engine import Answer, Engine, clean_question
from bot.feedback import read_feedback
from bot.store import current_version, open_index
from bot.telegram import handlers
from bot.telegram.handlers import ADMIN_ONLY, NOT_ALLOWED, NOT_TEXT
from bot.telegram.render import sources_messages
from bot.telegram.state import BoundedCache, ChatMemory
from bot.writer import Progress

TIMEOUT = 10
RFERL_URL = (
    "https://www.rferl.org/a/kazakh-opposition-group-allowed-to-hold-rally-challenging-upcoming-polls/30933581.html"
)
ALJAZEERA_TITLE = "Kazakhstan’s crackdown on opposition dashes hopes for fair polls"
RFERL_TITLE = "Kazakh Opposition Group Allowed To Hold Rally Challenging Upcoming Polls"
ABSTAINED = "The articles don't"
# With the fake embedder, this follow-up is answered ("three days") only when "his" resolves to Mamai; asked
# without that context it abstains. ("How long was he detained?" needs the real model to be answered.)
FIRST = "Who is Zhanbolat Mamai?"
FOLLOW_UP = "Was his wife detained?"
CALLBACK_ID = re.compile(r"^(?:src:[0-9a-z]{1,12}|vote:[0-9a-z]{1,12}:(?:up|down))$")


class InstrumentedEngine(Engine):
    """An engine that records every question it works on, and can be made slow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.questions: list[str] = []
        self.referents: list[list[str]] = []  # what each question's pronouns were resolved to
        self.delay = 0.0

    def answer(
        self,
        question: str,
        conversation: Conversation | None = None,
        on_progress: Progress | None = None,
        use_writer: bool = True,
    ) -> Answer:
        self.questions.append(question)
        self.referents.append(conversation.referents(clean_question(question)) if conversation else [])
        if self.delay:
            time.sleep(self.delay)  # runs off the event loop, in the handler's worker thread
        return super().answer(question, conversation, on_progress, use_writer)


@pytest.fixture
def instrumented(built_index: Path, fake_embedder: FakeEmbedder) -> InstrumentedEngine:
    """Like the `engine` fixture, instrumented."""
    return InstrumentedEngine(
        built_index, fake_embedder, open_index(built_index, fake_embedder), params=UNIT_TEST_PARAMS
    )


def engine_for(corpus: Path, index: Path) -> Engine:
    build_index(corpus, index, FakeEmbedder(), ChunkingSettings())
    return Engine.open(index, FakeEmbedder(), params=UNIT_TEST_PARAMS)


# Helpers ---------------------------------------------------------------------------------------------------


def message_id(update: dict[str, Any]) -> int:
    found = update.get("message") or update.get("edited_message") or {}
    return int(found["message_id"])


async def send(
    server: FakeTelegram,
    chat: FakeChat,
    text: str,
    *,
    user: FakeUser | None = None,
    expect: int = 1,
    reply_to: int | None = None,
) -> list[SentMessage]:
    """Push a text message and return the `expect` messages the bot sends to the chat in response."""
    before = len(server.sent_messages(chat.id))
    server.push_text(chat, user, text, reply_to_message_id=reply_to)
    sent = await server.wait_for_messages(before + expect, chat_id=chat.id, timeout=TIMEOUT)
    return sent[before:]


async def press(
    server: FakeTelegram, chat: FakeChat, message: SentMessage, data: str, *, user: FakeUser | None = None
) -> str:
    """Press an inline button and wait until its callback query is answered; returns the query id."""
    query_id = server.push_callback(chat, user, message.message_id, data)
    await wait_answered(server, query_id)
    return query_id


async def wait_answered(server: FakeTelegram, query_id: str) -> None:
    await server.wait_for(
        lambda: [a for a in server.callback_answers if a.callback_query_id == query_id],
        timeout=TIMEOUT,
        what=f"an answer to callback query {query_id}",
    )


def buttons(message: SentMessage) -> list[dict[str, Any]]:
    markup = message.reply_markup or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def button_data(message: SentMessage, label: str) -> str:
    [data] = [str(b["callback_data"]) for b in buttons(message) if label in b["text"]]
    return data


def links(message: SentMessage) -> dict[str, str]:
    """{url: linked text} of the message's text_link entities."""
    pairs = entity_texts(message.plain_text, message.entities)
    urls = [e["url"] for e in message.entities if e["type"] == "text_link"]
    texts = [text for kind, text in pairs if kind == "text_link"]
    return dict(zip(urls, texts, strict=True))


def assert_answered_once(server: FakeTelegram, query_ids: list[str]) -> None:
    answered = [a.callback_query_id for a in server.callback_answers]
    for query_id in query_ids:
        assert answered.count(query_id) == 1, (query_id, answered)


# Commands ---------------------------------------------------------------------------------------------------


async def test_start_registers_commands_greets_with_coverage_and_example_buttons(
    instrumented: InstrumentedEngine, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), instrumented):
            assert {c["command"] for c in server.commands} >= {"start", "help", "sources", "new", "ask"}
            assert all(c["description"] for c in server.commands)
            chat = server.private_chat(11)
            [greeting] = await send(server, chat, "/start")
            assert "2 articles, February 2020 to November 2020" in greeting.plain_text
            examples = buttons(greeting)
            assert examples, "the greeting offers example questions as buttons"
            assert all(len(str(b["callback_data"]).encode()) <= 64 for b in examples)
            first = examples[0]
            assert first["text"].endswith("?")

            before = len(server.sent_messages(chat.id))
            instrumented.questions.clear()
            query_id = await press(server, chat, greeting, str(first["callback_data"]))
            [answer] = (await server.wait_for_messages(before + 1, chat_id=chat.id, timeout=TIMEOUT))[before:]
        assert_answered_once(server, [query_id])
        assert instrumented.questions == [first["text"]]
        assert "[1]" in answer.plain_text and "Sources" in answer.plain_text
        assert not answer.plain_text.startswith(ABSTAINED)
        assert buttons(answer), "an answer to an example question has its own buttons"
        assert server.errors == []


async def test_help_explains_how_to_ask_and_lists_the_commands(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(12)
            [message] = await send(server, chat, "/help")
        assert message.parse_mode == "HTML"
        for command in ("/sources", "/new", "/help", "/ask"):
            assert command in message.plain_text
        assert "question" in message.plain_text.lower()
        assert server.errors == []


async def test_sources_lists_the_articles_with_dates_and_links(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(13)
            [message] = await send(server, chat, "/sources")
        text = message.plain_text
        assert ALJAZEERA_TITLE in text and RFERL_TITLE in text
        assert "November 2020" in text and "February 2020" in text
        assert "RFE/RL" in text and "Al Jazeera" in text
        assert links(message) == {RFERL_URL: RFERL_TITLE}
        assert ("bold", "2 articles") in entity_texts(text, message.entities)
        assert server.errors == []


async def test_sources_for_a_large_corpus_is_split_into_several_valid_messages(tmp_path: Path) -> None:
    corpus = tmp_path / "many"
    for n in range(70):
        write_article(
            corpus,
            f"article-{n:03d}.md",
            f"Reporter number {n} wrote this article about the harvest in region {n}. "
            f"The harvest in region {n} was larger than last year, officials said on Monday.",
            title=f"Article {n:03d}: a rather long headline about harvests, weather & <markets> in region {n}",
            publisher="Example News",
            published=f"2021-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
            url=f"https://example.com/news/{n:03d}/a-rather-long-path-about-harvests?ref=bot&n={n}",
        )
    engine = engine_for(corpus, tmp_path / "many-index")
    expected = sources_messages(engine.sources())
    assert len(expected) >= 3
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(14)
            messages = await send(server, chat, "/sources", expect=len(expected))
        assert len(server.sent_messages(chat.id)) == len(expected)
        assert all(utf16_len(m.plain_text) <= 4096 for m in messages)
        assert messages[0].plain_text.startswith("70 articles")
        everything = "\n".join(m.plain_text for m in messages)
        for n in range(70):
            assert f"Article {n:03d}: a rather long headline about harvests, weather & <markets> in region {n}" in (
                everything
            )
        urls = {url for m in messages for url in links(m)}
        assert urls == {
            f"https://example.com/news/{n:03d}/a-rather-long-path-about-harvests?ref=bot&n={n}" for n in range(70)
        }
        assert server.errors == []


async def test_new_forgets_the_conversation(instrumented: InstrumentedEngine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), instrumented):
            chat = server.private_chat(15)
            instrumented.referents.clear()
            await send(server, chat, FIRST)
            [follow_up] = await send(server, chat, FOLLOW_UP)
            assert "three days" in follow_up.plain_text
            [done] = await send(server, chat, "/new")
            assert "forgotten" in done.plain_text
            await send(server, chat, FOLLOW_UP)
        # The follow-up pointed back to Mamai; after /new, "his" points to nothing.
        assert instrumented.referents == [[], ["Zhanbolat Mamai"], []]
        assert server.errors == []


# Answers ----------------------------------------------------------------------------------------------------


async def test_a_private_text_is_answered_with_quotes_markers_sources_and_buttons(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(16)
            [answer] = await send(server, chat, FIRST)
        assert answer.parse_mode == "HTML"
        body, _, sources = answer.plain_text.partition("\n\nSources\n")
        assert sources, answer.plain_text
        assert "Zhanbolat Mamai" in body and "[1]" in body and "[2]" in body
        assert sources.startswith("[1] ")
        assert ALJAZEERA_TITLE in sources and RFERL_TITLE in sources
        assert ("bold", "Sources") in entity_texts(answer.plain_text, answer.entities)
        assert links(answer) == {RFERL_URL: RFERL_TITLE}
        labels = [b["text"] for b in buttons(answer)]
        assert any("Passages" in label for label in labels) and "👍" in labels and "👎" in labels
        for button in buttons(answer):
            data = str(button["callback_data"])
            assert len(data.encode()) < 64 and CALLBACK_ID.match(data), data
        assert server.errors == []


async def test_dynamic_text_is_escaped_everywhere(tmp_path: Path) -> None:
    corpus = tmp_path / "tags"
    title = "Bread <b>prices</b> & the <script> tag > all"
    write_article(
        corpus,
        "tags.md",
        "The <b>Tengri & Sons</b> bakery in Almaty sells bread where price < 5 tenge and quality > average, "
        "said owner Nurlan Abenov.\n\n"
        "Nurlan Abenov told reporters that the <i>bakery</i> opened in 2019 with three ovens & ten workers. "
        "He said demand for bread had grown every month since the opening of the shop.",
        title=title,
        publisher="Q&A <News>",
        published="2021-05-03",
        url="https://example.com/a?x=1&y=<2>",
    )
    engine = engine_for(corpus, tmp_path / "tags-index")
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(17)
            [greeting] = await send(server, chat, "/start")
            [answer] = await send(server, chat, "What does the <b>Tengri</b> & Sons bakery sell?")
            before = len(server.sent_messages(chat.id))
            query_id = await press(server, chat, answer, button_data(answer, "Passages"))
            [passages] = (await server.wait_for_messages(before + 1, chat_id=chat.id, timeout=TIMEOUT))[before:]
            [listing] = await send(server, chat, "/sources")
        assert "1 article, 3 May 2021" in greeting.plain_text
        assert "The <b>Tengri & Sons</b> bakery" in answer.plain_text
        assert "price < 5 tenge and quality > average" in answer.plain_text
        assert f"{title} — Q&A <News>, 3 May 2021" in answer.plain_text
        assert links(answer) == {"https://example.com/a?x=1&y=<2>": title}
        assert any(
            kind == "blockquote" and "<b>Tengri & Sons</b>" in text
            for kind, text in entity_texts(passages.plain_text, passages.entities)
        )
        assert links(passages) == {"https://example.com/a?x=1&y=<2>": title}
        assert f"{title} — Q&A <News>, 3 May 2021" in listing.plain_text
        assert links(listing) == {"https://example.com/a?x=1&y=<2>": title}
        assert_answered_once(server, [query_id])
        assert all(m.parse_mode == "HTML" for m in server.sent_messages(chat.id))
        assert server.errors == []


async def test_passages_button_sends_the_cited_passages_and_answers_the_query(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(18)
            [answer] = await send(server, chat, FIRST)
            before = len(server.sent_messages(chat.id))
            query_id = await press(server, chat, answer, button_data(answer, "Passages"))
            [passages] = (await server.wait_for_messages(before + 1, chat_id=chat.id, timeout=TIMEOUT))[before:]
        assert_answered_once(server, [query_id])
        quotes = [text for kind, text in entity_texts(passages.plain_text, passages.entities) if kind == "blockquote"]
        assert len(quotes) == 2
        assert "led by former journalist Zhanbolat Mamai" in quotes[0]
        assert "Democratic Party leader Zhanbolat Mamai told RFE/RL" in quotes[1]
        assert passages.plain_text.startswith("[1] ")
        assert RFERL_URL in links(passages)
        assert server.errors == []


async def test_votes_are_stored_with_question_answer_citations_and_time(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path)
        async with running_bot(settings, engine):
            chat = server.private_chat(19)
            [answer] = await send(server, chat, FIRST)
            up = await press(server, chat, answer, button_data(answer, "👍"))
            [second] = await send(server, chat, "What is the Ministry of Justice?")
            down = await press(server, chat, second, button_data(second, "👎"))
        assert_answered_once(server, [up, down])
        assert [a.text for a in server.callback_answers] == ["Thanks for the feedback!"] * 2
        entries = read_feedback(settings.feedback_file)
        assert [(e["question"], e["vote"]) for e in entries] == [
            (FIRST, "up"),
            ("What is the Ministry of Justice?", "down"),
        ]
        first = entries[0]
        assert answer.plain_text.startswith(first["answer"])
        assert "[1]" in first["answer"]
        assert [c["title"] for c in first["citations"]] == [ALJAZEERA_TITLE, RFERL_TITLE]
        assert first["citations"][1]["url"] == RFERL_URL
        voted_at = dt.datetime.fromisoformat(first["time"])
        assert abs((dt.datetime.now(dt.UTC) - voted_at).total_seconds()) < 120
        assert server.errors == []


async def test_a_second_vote_on_the_same_answer_is_not_counted(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path)
        async with running_bot(settings, engine):
            chat = server.private_chat(31)
            [answer] = await send(server, chat, FIRST)
            first = await press(server, chat, answer, button_data(answer, "👎"))
            again = await press(server, chat, answer, button_data(answer, "👎"))
        assert_answered_once(server, [first, again])
        assert [a.text for a in server.callback_answers] == [
            "Thanks for the feedback!",
            "You already voted on this answer. Thanks!",
        ]
        assert [e["vote"] for e in read_feedback(settings.feedback_file)] == ["down"]
        assert server.errors == []


async def test_buttons_of_forgotten_answers_still_answer_the_query_politely(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path)
        async with running_bot(settings, engine):
            chat = server.private_chat(20)
            [answer] = await send(server, chat, FIRST)
            ids = [
                await press(server, chat, answer, data)
                for data in ("src:zzz", "vote:zzz:up", "vote:1:sideways", "nonsense")
            ]
            # The bot still works afterwards.
            [again] = await send(server, chat, "What is the Ministry of Justice?")
        assert_answered_once(server, ids)
        texts = [a.text for a in server.callback_answers]
        assert "too old" in (texts[0] or "") and "too old" in (texts[1] or "")
        assert not any(a.show_alert for a in server.callback_answers)
        assert read_feedback(settings.feedback_file) == []
        assert len(server.sent_messages(chat.id)) == 2 and "[1]" in again.plain_text
        assert server.errors == []


async def test_an_example_button_on_an_old_greeting_still_gets_an_answer(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(21)
            # A greeting the fake never saw is sent as an inaccessible message (date 0), as Telegram does for
            # messages too old to show the bot.
            query_id = server.push_callback(chat, None, 999, "ask:0")
            [answer] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        assert_answered_once(server, [query_id])
        assert "[1]" in answer.plain_text
        assert server.errors == []


async def test_typing_is_shown_while_a_slow_answer_is_worked_out(
    instrumented: InstrumentedEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "TYPING_AFTER", 0.0)  # every answer counts as slow
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), instrumented):
            instrumented.delay = 0.4
            chat = server.private_chat(22)
            await send(server, chat, FIRST)
        calls = [(c.method, c.params.get("chat_id")) for c in server.calls]
        typing = calls.index(("sendChatAction", chat.id))
        assert server.calls[typing].params["action"] == "typing"
        assert typing < calls.index(("sendMessage", chat.id))
        assert server.errors == []


# Conversation memory ----------------------------------------------------------------------------------------


async def test_follow_up_questions_use_the_chats_recent_exchanges(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(23)
            [first] = await send(server, chat, FIRST)
            [follow_up] = await send(server, chat, FOLLOW_UP)
        assert "was also detained for three days" in follow_up.plain_text
        assert "Mamai" in follow_up.plain_text
        # It cites an article of the first answer.
        assert ALJAZEERA_TITLE in follow_up.plain_text and ALJAZEERA_TITLE in first.plain_text
        assert server.errors == []


async def test_the_brief_follow_up_is_resolved_to_the_earlier_subject(
    instrumented: InstrumentedEngine, tmp_path: Path
) -> None:
    """ "How long was he detained?" reaches the engine with the chat's exchanges, which resolve "he" to Mamai.

    (Answering it with "three days" takes the real model: see tests/test_integration.py.)
    """
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), instrumented):
            chat = server.private_chat(26)
            instrumented.referents.clear()
            await send(server, chat, FIRST)
            await send(server, chat, "How long was he detained?")
        assert instrumented.referents == [[], ["Zhanbolat Mamai"]]
        assert server.errors == []


async def test_a_follow_up_sent_before_the_first_answer_arrives_is_still_resolved(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(27)
            server.push_text(chat, None, FIRST)
            server.push_text(chat, None, FOLLOW_UP)  # sent before the first answer arrives
            answers = await server.wait_for_messages(2, chat_id=chat.id, timeout=TIMEOUT)
        assert "Zhanbolat Mamai" in answers[0].plain_text
        assert "three days" in answers[1].plain_text
        assert server.errors == []


async def test_memory_is_per_chat(instrumented: InstrumentedEngine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), instrumented):
            alice, bob = server.private_chat(24), server.private_chat(25)
            instrumented.referents.clear()
            await send(server, alice, FIRST)
            [bobs] = await send(server, bob, FOLLOW_UP)
            [alices] = await send(server, alice, FOLLOW_UP)
        assert instrumented.referents == [[], [], ["Zhanbolat Mamai"]]
        assert "three days" in alices.plain_text
        assert bobs.text
        assert server.errors == []


def test_chat_memory_forgets_a_chat_after_its_quiet_spell() -> None:
    now = [1000.0]
    memory = ChatMemory(turns=3, chats=10, ttl_seconds=60, clock=lambda: now[0])
    memory.for_chat(1).remember(FIRST, "Zhanbolat Mamai leads the party.")
    now[0] += 50
    assert len(memory.for_chat(1).exchanges) == 1  # still remembered, and its clock restarted
    now[0] += 50
    assert len(memory.for_chat(1).exchanges) == 1  # 50 s after the last use: within the TTL again
    now[0] += 61
    assert memory.for_chat(1).exchanges == ()  # quiet for longer than the TTL: forgotten


def test_chat_memory_keeps_only_the_most_recently_used_chats() -> None:
    now = [0.0]
    memory = ChatMemory(turns=3, chats=2, ttl_seconds=3600, clock=lambda: now[0])
    for chat in (1, 2):
        memory.for_chat(chat).remember(f"question {chat}", f"answer {chat}")
    memory.for_chat(1)  # chat 1 is now the most recently used
    memory.for_chat(3).remember("question 3", "answer 3")  # evicts chat 2, the least recently used
    assert [e.question for e in memory.for_chat(1).exchanges] == ["question 1"]
    assert memory.for_chat(2).exchanges == ()


def test_bounded_cache_expires_after_the_ttl_and_evicts_the_least_recently_used() -> None:
    now = [0.0]
    cache: BoundedCache[str, int] = BoundedCache(capacity=2, ttl=10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2
    now[0] = 10
    assert cache.get("a") == 1  # exactly the TTL: still there
    now[0] = 10.5
    assert cache.get("a") is None and len(cache) == 1
    cache.touch("c")  # restarts "c"'s TTL
    now[0] = 20
    assert cache.get("c") == 3
    now[0] = 30.5
    assert cache.get("c") is None and len(cache) == 0


def test_the_bots_memory_is_bounded_by_the_settings() -> None:
    memory = ChatMemory(turns=2, chats=3, ttl_seconds=60)
    conversation = memory.for_chat(1)
    for n in range(5):
        conversation.remember(f"q{n}", f"a{n}")
    assert [e.question for e in conversation.exchanges] == ["q3", "q4"]
    for chat in range(2, 10):
        memory.for_chat(chat)
    assert memory.for_chat(1).exchanges == ()


# Groups -----------------------------------------------------------------------------------------------------


@pytest.fixture
def group_server() -> Iterator[FakeTelegram]:
    with FakeTelegram(group_privacy=False) as server:
        yield server


@pytest.mark.parametrize("kind", ["group", "supergroup"])
async def test_groups_stay_silent_unless_addressed(
    kind: str, instrumented: InstrumentedEngine, group_server: FakeTelegram, tmp_path: Path
) -> None:
    server = group_server
    async with running_bot(bot_settings(server, tmp_path), instrumented):
        group = server.group_chat(-100500, type="group" if kind == "group" else "supergroup")
        user = server.user(31, "Member")
        instrumented.questions.clear()
        silent = [
            FIRST,  # an ordinary message, even one that is a question
            "/ask@otherbot Who is Zhanbolat Mamai?",  # another bot's command
            "/frobnicate",  # a command nobody here has
            "@someotherbot Who is Zhanbolat Mamai?",  # a mention of someone else
        ]
        for text in silent:
            server.push_text(group, user, text)
        # A reply to another member's message is not addressed to the bot either.
        hello = server.push_text(group, server.user(34, "Other"), "Hello everyone")
        server.push_text(group, user, "Who is Zhanbolat Mamai?", reply_to_message_id=message_id(hello))
        mention = server.push_text(group, user, f"@{server.bot_username} Who is Zhanbolat Mamai?")
        [answer] = await server.wait_for_messages(1, chat_id=group.id, timeout=TIMEOUT)
        assert answer.reply_to_message_id == message_id(mention)
        assert "[1]" in answer.plain_text and "Zhanbolat Mamai" in answer.plain_text
        assert buttons(answer)

        # A reply to one of the bot's messages is addressed to it.
        [reply] = await send(server, group, FOLLOW_UP, user=user, reply_to=answer.message_id)
        assert "three days" in reply.plain_text
        # /ask with a question, and /ask addressed to this bot by name.
        [asked] = await send(server, group, "/ask What is the Ministry of Justice?", user=user)
        assert "[1]" in asked.plain_text
        [named] = await send(server, group, f"/ask@{server.bot_username} Who is Zhanbolat Mamai?", user=user)
        assert "[1]" in named.plain_text
        # /ask alone gets a short hint; a command addressed to this bot that it lacks gets the polite reply.
        [hint] = await send(server, group, "/ask", user=user)
        assert "/ask" in hint.plain_text and len(hint.plain_text) < 200
        [unknown] = await send(server, group, f"/frobnicate@{server.bot_username}", user=user)
        assert "don't know that command" in unknown.plain_text
        [bare] = await send(server, group, f"@{server.bot_username}", user=user)
        assert "question" in bare.plain_text.lower()
    assert len(server.sent_messages(group.id)) == 7
    assert instrumented.questions == [
        "Who is Zhanbolat Mamai?",
        FOLLOW_UP,
        "What is the Ministry of Justice?",
        "Who is Zhanbolat Mamai?",
    ]
    assert not server.dropped_updates
    assert server.errors == []


async def test_group_buttons_work_for_every_member(engine: Engine, group_server: FakeTelegram, tmp_path: Path) -> None:
    server = group_server
    async with running_bot(bot_settings(server, tmp_path), engine):
        group = server.group_chat(-100600)
        asker, other = server.user(32, "Asker"), server.user(33, "Other")
        [answer] = await send(server, group, f"/ask {FIRST}", user=asker)
        query_id = await press(server, group, answer, button_data(answer, "Passages"), user=other)
        [passages] = (await server.wait_for_messages(2, chat_id=group.id, timeout=TIMEOUT))[1:]
    assert_answered_once(server, [query_id])
    assert "blockquote" in {e["type"] for e in passages.entities}
    assert "Zhanbolat Mamai" in passages.plain_text
    assert server.errors == []


# Private chat: anything else --------------------------------------------------------------------------------


async def test_private_chat_handles_media_edits_and_unknown_commands(
    instrumented: InstrumentedEngine, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), instrumented):
            chat = server.private_chat(41)
            instrumented.questions.clear()
            for push in (
                server.push_sticker,
                partial(server.push_photo, caption="Who is Zhanbolat Mamai?"),
                server.push_voice,
                server.push_document,
            ):
                before = len(server.sent_messages(chat.id))
                push(chat, None)
                [reply] = (await server.wait_for_messages(before + 1, chat_id=chat.id, timeout=TIMEOUT))[before:]
                assert reply.plain_text == NOT_TEXT
            [unknown] = await send(server, chat, "/frobnicate")
            assert "I don't know that command" in unknown.plain_text and "/help" in unknown.plain_text

            asked = server.push_text(chat, None, "What is the Ministry of Justice?")
            [first] = (await server.wait_for_messages(6, chat_id=chat.id, timeout=TIMEOUT))[5:]
            server.push_edited_text(chat, None, message_id(asked), FIRST)
            [edited] = (await server.wait_for_messages(7, chat_id=chat.id, timeout=TIMEOUT))[6:]
            [too_long] = await send(server, chat, "Who is Zhanbolat Mamai? " * 150)
            assert "too long" in too_long.plain_text and not buttons(too_long)
            [no_words] = await send(server, chat, "?!? 123")
            assert "ask a question" in no_words.plain_text.lower() and not buttons(no_words)
            [normal] = await send(server, chat, "What is the Democratic Party of Kazakhstan?")
        assert "Ministry of Justice" in first.plain_text
        assert edited.message_id != first.message_id and "Zhanbolat Mamai" in edited.plain_text
        assert "[1]" in normal.plain_text
        assert instrumented.questions[:2] == ["What is the Ministry of Justice?", FIRST]
        assert instrumented.questions[-1] == "What is the Democratic Party of Kazakhstan?"
        assert server.errors == []


# Access control and administration --------------------------------------------------------------------------


async def test_users_outside_the_allow_list_are_refused_without_retrieval(
    instrumented: InstrumentedEngine, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path, allowed_user_ids=frozenset({51}), admin_user_ids=frozenset({59}))
        async with running_bot(settings, instrumented):
            instrumented.questions.clear()
            fake_embedder.reset_counts()
            allowed, stranger, admin = server.private_chat(51), server.private_chat(52), server.private_chat(59)
            [answer] = await send(server, allowed, FIRST)
            questions, embedded = list(instrumented.questions), fake_embedder.calls

            [refusal] = await send(server, stranger, FIRST)
            [refused_start] = await send(server, stranger, "/start")
            query_id = await press(server, stranger, answer, "src:1")
            assert instrumented.questions == questions and fake_embedder.calls == embedded

            [admins] = await send(server, admin, FIRST)
        assert "[1]" in answer.plain_text and "[1]" in admins.plain_text
        assert refusal.plain_text == NOT_ALLOWED and refused_start.plain_text == NOT_ALLOWED
        assert [a.text for a in server.callback_answers if a.callback_query_id == query_id] == [NOT_ALLOWED]
        assert len(server.sent_messages(stranger.id)) == 2
        assert_answered_once(server, [query_id])
        assert server.errors == []


async def test_chats_outside_the_allow_list_are_refused_without_retrieval(
    instrumented: InstrumentedEngine, group_server: FakeTelegram, tmp_path: Path
) -> None:
    server = group_server
    settings = bot_settings(server, tmp_path, allowed_chat_ids=frozenset({-100700}))
    async with running_bot(settings, instrumented):
        instrumented.questions.clear()
        allowed, other = server.group_chat(-100700), server.group_chat(-100800)
        user = server.user(61)
        server.push_text(other, user, FIRST)  # not addressed to the bot: silence, not a refusal
        [refusal] = await send(server, other, f"@{server.bot_username} {FIRST}", user=user)
        assert refusal.plain_text == NOT_ALLOWED
        assert instrumented.questions == []
        [answer] = await send(server, allowed, f"/ask {FIRST}", user=user)
    assert "[1]" in answer.plain_text
    assert instrumented.questions == [FIRST]
    assert len(server.sent_messages(other.id)) == 1
    assert server.errors == []


async def test_ask_in_a_group_outside_the_allow_list_gets_a_polite_refusal(
    instrumented: InstrumentedEngine, group_server: FakeTelegram, tmp_path: Path
) -> None:
    server = group_server
    settings = bot_settings(server, tmp_path, allowed_chat_ids=frozenset({-100700}))
    async with running_bot(settings, instrumented):
        instrumented.questions.clear()
        other = server.group_chat(-100800)
        user = server.user(61)
        ask = server.push_text(other, user, f"/ask {FIRST}")
        # A mention is refused (see above); waiting for that refusal means the /ask was handled before it.
        mention = server.push_text(other, user, f"@{server.bot_username} {FIRST}")
        await server.wait_for(
            lambda: [m for m in server.sent_messages(other.id) if m.reply_to_message_id == message_id(mention)],
            timeout=TIMEOUT,
        )
    refusals = server.sent_messages(other.id)
    assert [m.reply_to_message_id for m in refusals] == [message_id(ask), message_id(mention)]
    assert all(m.plain_text == NOT_ALLOWED for m in refusals)
    assert instrumented.questions == []
    assert server.errors == []


async def test_stats_is_for_admins_and_counts_what_was_served(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path, admin_user_ids=frozenset({71}))
        async with running_bot(settings, engine):
            admin, user = server.private_chat(71), server.private_chat(72)
            [refused] = await send(server, user, "/stats")
            [answer] = await send(server, user, FIRST)
            await press(server, user, answer, button_data(answer, "👍"))
            await send(server, user, "What is the capital of France?")
            [stats] = await send(server, admin, "/stats")
        assert refused.plain_text == ADMIN_ONLY
        text = stats.plain_text
        manifest = engine.index.manifest
        assert engine.version in text and manifest.built_at in text
        assert "2 articles, 12 chunks" in text
        assert "2 questions: 1 answered, 1 not in the articles" in text
        assert "feedback: 1 👍, 0 👎" in text
        assert server.errors == []


async def test_reload_is_for_admins_and_switches_to_a_newly_built_index(
    instrumented: InstrumentedEngine, corpus_dir: Path, built_index: Path, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path, admin_user_ids=frozenset({81}))
        async with running_bot(settings, instrumented):
            admin, user = server.private_chat(81), server.private_chat(82)
            old = instrumented.version
            [unchanged] = await send(server, admin, "/reload")
            assert "already serving" in unchanged.plain_text and old in unchanged.plain_text

            write_article(
                corpus_dir,
                "2021-05-bakery.md",
                "The Tengri bakery in Almaty sells rye bread and honey cakes, said owner Nurlan Abenov. "
                "Nurlan Abenov told reporters that the bakery opened in 2019 with three ovens and ten workers.",
                title="An Almaty bakery thrives",
                publisher="Example News",
                published="2021-05-03",
                url="https://example.com/bakery",
            )
            await asyncio.to_thread(build_index, corpus_dir, built_index, FakeEmbedder(), ChunkingSettings())
            new = current_version(built_index)
            assert new is not None and new != old

            [refused] = await send(server, user, "/reload")
            assert refused.plain_text == ADMIN_ONLY
            assert instrumented.version == old
            [reloaded] = await send(server, admin, "/reload")
            assert "now serving" in reloaded.plain_text and new in reloaded.plain_text
            assert instrumented.version == new
            [answer] = await send(server, user, "What does the Tengri bakery in Almaty sell?")
            [listing] = await send(server, user, "/sources")
        assert "rye bread and honey cakes" in answer.plain_text
        assert links(answer) == {"https://example.com/bakery": "An Almaty bakery thrives"}
        assert listing.plain_text.startswith("3 articles")
        assert server.errors == []
