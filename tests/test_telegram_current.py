"""A chat that feels current, end to end through the real `Application` and `FakeTelegram`: the 👀 reaction and
"typing" only for slow answers, replies and link previews, sources in an expandable blockquote, inline mode,
and written answers streamed as drafts (private chats) or an edited message (groups), checked text only.

Every test ends with `server.errors == []`: Telegram must never refuse a request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_llm import FakeLLM, Reply, Request
from fake_telegram import FakeTelegram, SentMessage, entity_texts
from fakes import UNIT_TEST_PARAMS, FakeEmbedder
from telegram_harness import bot_settings, running_bot
from test_writer import DPK, FAITHFUL_1, FAITHFUL_2, KEY, PERMISSION, number_of

from bot.engine import Answer, Engine
from bot.telegram import handlers
from bot.writer import AnswerWriter

TIMEOUT = 10
FIRST = "Who is Zhanbolat Mamai?"  # answered from both articles
ONE_SOURCE = "How many seats does Nur-Otan have?"  # answered from the RFE/RL article alone
RFERL_URL = (
    "https://www.rferl.org/a/kazakh-opposition-group-allowed-to-hold-rally-challenging-upcoming-polls/30933581.html"
)
INVENTED = "Mamai was jailed for 9 years"


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No waiting between streamed updates, and "typing" never (the tests that want it say so)."""
    monkeypatch.setattr(handlers, "STREAM_EVERY", 0.0)
    monkeypatch.setattr(handlers, "TYPING_AFTER", 3600.0)


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def writing(built_index: Path, fake_embedder: FakeEmbedder, llm: FakeLLM) -> Engine:
    writer = AnswerWriter(llm.base_url, llm.model, fake_embedder.embed, api_key=KEY, max_retries=0, timeout=10)
    return Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS, writer=writer)


def gated(gate: threading.Event) -> Callable[[Request], Reply]:
    """A streamed reply: a faithful sentence, then (once the test opens the gate) an invented one and another
    faithful one."""

    def reply(request: Request) -> Reply:
        first = f"{FAITHFUL_1} [{number_of(request, DPK)}]. "
        rest = f"{INVENTED} [{number_of(request, DPK)}]. {FAITHFUL_2} [{number_of(request, PERMISSION)}]."
        return Reply.ok(first + rest, chunk=8, gate=gate, gate_after=len(first) + 8)

    return reply


def blockquotes(message: SentMessage) -> list[tuple[str, str]]:
    return [(kind, text) for kind, text in entity_texts(message.plain_text, message.entities) if "blockquote" in kind]


# Acknowledging, typing --------------------------------------------------------------------------------------


async def test_a_fast_answer_spends_no_reaction_and_no_typing(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(31)
            server.push_text(chat, None, FIRST)
            await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        # Answered well within TYPING_AFTER: the answer itself is the acknowledgement.
        assert server.reactions == [] and server.chat_actions == []
        assert server.errors == []


def _slowed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers take half a second from now on, and are acknowledged at once (TYPING_AFTER 0)."""
    monkeypatch.setattr(handlers, "TYPING_AFTER", 0.0)
    answer = engine.answer

    def slow(*args: Any, **kwargs: Any) -> Answer:
        time.sleep(0.5)  # in the worker thread: the answer is still being worked out when "typing" is due
        return answer(*args, **kwargs)

    monkeypatch.setattr(engine, "answer", slow)


async def test_a_slow_answer_gets_eyes_then_typing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            _slowed(engine, monkeypatch)  # after start-up: /start's examples stay fast
            chat = server.private_chat(32)
            question = server.push_text(chat, None, FIRST)["message"]["message_id"]
            await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        [reaction] = server.reactions
        assert (reaction.chat_id, reaction.message_id, reaction.emoji) == (chat.id, question, ["👀"])
        methods = [c.method for c in server.calls]
        assert methods.index("setMessageReaction") < methods.index("sendChatAction") < methods.index("sendMessage")
        assert server.errors == []


async def test_a_chat_without_reactions_still_gets_its_answer(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            _slowed(engine, monkeypatch)
            chat = server.private_chat(33)
            server.fail_next("setMessageReaction", status=400, description="Bad Request: REACTION_INVALID")
            server.push_text(chat, None, FIRST)
            [answer] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        assert "[1]" in answer.plain_text
        assert [c.method for c in server.calls].count("setMessageReaction") == 1  # tried, refused, answered
        assert server.errors == []


# Replies, previews, sources ---------------------------------------------------------------------------------


async def test_a_group_answer_replies_to_its_question_with_sources_in_an_expandable_quote(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            group = server.group_chat(-100500)
            user = server.user(34)
            question = server.push_text(group, user, f"@{server.bot_username} {FIRST}")["message"]["message_id"]
            [answer] = await server.wait_for_messages(1, chat_id=group.id, timeout=TIMEOUT)
        assert answer.params["reply_parameters"]["message_id"] == question
        assert answer.reply_to_message_id == question
        [(kind, text)] = blockquotes(answer)
        assert kind == "expandable_blockquote" and text.startswith("Sources\n[1] ") and "\n[2] " in text
        assert answer.plain_text.endswith(text)  # under the answer
        assert answer.params["link_preview_options"] == {"is_disabled": True}  # two sources: no preview
        labels = [b["text"] for row in (answer.reply_markup or {})["inline_keyboard"] for b in row]
        assert "👍" in labels and "👎" in labels and any("Passages" in label for label in labels)
        assert server.errors == []


async def test_a_private_answer_is_no_reply_and_a_single_source_gets_its_preview(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(35)
            server.push_text(chat, None, ONE_SOURCE)
            [answer] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        assert "84" in answer.plain_text and "[2]" not in answer.plain_text
        assert "reply_parameters" not in answer.params and answer.reply_to_message_id is None
        assert answer.params["link_preview_options"]["url"] == RFERL_URL
        assert not answer.params["link_preview_options"].get("is_disabled")
        [(kind, _)] = blockquotes(answer)
        assert kind == "expandable_blockquote"
        assert server.errors == []


async def test_other_messages_have_no_link_previews(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(36)
            server.push_text(chat, None, "/sources")
            [listing] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        assert listing.params["link_preview_options"] == {"is_disabled": True}
        assert server.errors == []


# Inline mode ------------------------------------------------------------------------------------------------


async def test_inline_mode_offers_the_answer_with_its_sources(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            user = server.user(37)
            empty = server.push_inline_query(user, "  ")
            asked = server.push_inline_query(user, FIRST, chat_type="supergroup")
            await server.wait_for(lambda: len(server.inline_answers) == 2, timeout=TIMEOUT, what="two inline answers")
        answers = {a.inline_query_id: a for a in server.inline_answers}
        assert answers[empty].results == []
        [result] = answers[asked].results
        [text] = answers[asked].texts
        assert result["title"] == "Answer from the articles" and result["description"]
        assert "Democratic Party" in text.text
        assert "[1]" in text.text and "Sources\n[1] " in text.text
        assert "expandable_blockquote" in {e["type"] for e in text.entities}
        assert result["input_message_content"]["link_preview_options"] == {"is_disabled": True}
        assert server.reactions == [] and server.sent_messages() == []  # nothing is sent to any chat
        assert server.errors == []


async def test_inline_mode_says_when_the_articles_do_not_answer(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            server.push_inline_query(server.user(38), "What is the capital of France?")
            [answer] = await server.wait_for(lambda: server.inline_answers, timeout=TIMEOUT, what="an inline answer")
        [result] = answer.results
        assert result["title"] == "Not in the articles"
        assert answer.texts[0].text.startswith("The articles don't")
        assert server.errors == []


@pytest.mark.parametrize(
    ("allow", "allowed"),
    [
        ({"allowed_user_ids": frozenset({99})}, False),
        ({"allowed_chat_ids": frozenset({-100500})}, False),  # no chat is known for an inline query
        ({"allowed_chat_ids": frozenset({-100500}), "admin_user_ids": frozenset({39})}, True),
        ({"allowed_user_ids": frozenset({39})}, True),
    ],
    ids=["user-not-allowed", "chat-list-set", "admin", "user-allowed"],
)
async def test_inline_mode_respects_the_allow_lists(
    engine: Engine, tmp_path: Path, allow: dict[str, frozenset[int]], allowed: bool
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path, **allow), engine):
            server.push_inline_query(server.user(39), FIRST)
            [answer] = await server.wait_for(lambda: server.inline_answers, timeout=TIMEOUT, what="an inline answer")
        if allowed:
            assert len(answer.results) == 1 and answer.button is None
        else:
            assert answer.results == [] and answer.button is not None
            assert answer.button["text"] == handlers.INLINE_PRIVATE
        assert server.errors == []


async def test_inline_answers_are_extractive_even_in_llm_mode(writing: Engine, llm: FakeLLM, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), writing):
            server.push_inline_query(server.user(40), FIRST)
            await server.wait_for(lambda: server.inline_answers, timeout=TIMEOUT, what="an inline answer")
        assert llm.requests == []
        assert server.errors == []


# Streaming written answers ----------------------------------------------------------------------------------


async def test_a_written_answer_streams_as_drafts_of_checked_text_only(
    writing: Engine, llm: FakeLLM, tmp_path: Path
) -> None:
    gate = threading.Event()
    llm.default = gated(gate)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), writing):
            chat = server.private_chat(41)
            question = server.push_text(chat, None, FIRST)["message"]["message_id"]
            await server.wait_for(lambda: server.drafts, timeout=TIMEOUT, what="a draft")
            gate.set()
            [answer] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        final = f"{FAITHFUL_1}. [1] {FAITHFUL_2}. [2]"
        assert answer.plain_text.startswith(final + "\n\nSources\n")
        assert INVENTED not in answer.plain_text
        drafts = server.drafts
        assert drafts[0].plain_text == f"{FAITHFUL_1}. [1]"  # the first checked sentence, before the rest came
        assert all(d.chat_id == chat.id and d.draft_id == question for d in drafts)
        assert all(final.startswith(d.plain_text) and INVENTED not in d.plain_text for d in drafts)
        assert server.errors == []


async def test_a_written_answer_streams_in_a_group_by_editing_one_message(
    writing: Engine, llm: FakeLLM, tmp_path: Path
) -> None:
    gate = threading.Event()
    llm.default = gated(gate)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), writing):
            group = server.group_chat(-100600)
            user = server.user(42)
            question = server.push_text(group, user, f"/ask {FIRST}")["message"]["message_id"]
            [streamed] = await server.wait_for_messages(1, chat_id=group.id, timeout=TIMEOUT)
            gate.set()
            await server.wait_for(
                lambda: [e for e in server.edits if e.reply_markup], timeout=TIMEOUT, what="the final edit"
            )
        assert streamed.plain_text == f"{FAITHFUL_1}. [1]" and streamed.reply_to_message_id == question
        assert server.drafts == []  # drafts are for private chats
        final = server.edits[-1]
        assert final.message_id == streamed.message_id
        assert final.plain_text is not None and final.plain_text.startswith(f"{FAITHFUL_1}. [1] {FAITHFUL_2}. [2]")
        assert "expandable_blockquote" in {e["type"] for e in final.entities}
        assert all(INVENTED not in (e.plain_text or "") for e in server.edits)
        assert len(server.sent_messages(group.id)) == 1
        assert server.errors == []


async def test_a_flood_limit_while_streaming_is_waited_out(writing: Engine, llm: FakeLLM, tmp_path: Path) -> None:
    gate = threading.Event()
    llm.default = gated(gate)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), writing):
            chat = server.private_chat(43)
            server.fail_next("sendMessageDraft", retry_after=1)
            server.push_text(chat, None, FIRST)
            await server.wait_for(lambda: server.drafts, timeout=TIMEOUT, what="a draft after the retry")
            gate.set()
            [answer] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        assert [c.method for c in server.injected] == ["sendMessageDraft"]
        assert server.drafts[0].plain_text == f"{FAITHFUL_1}. [1]"
        assert answer.plain_text.startswith(f"{FAITHFUL_1}. [1] {FAITHFUL_2}. [2]")
        assert server.errors == []


async def test_when_the_model_fails_the_chat_gets_the_extractive_answer_and_no_word_of_it(
    writing: Engine, llm: FakeLLM, engine: Engine, tmp_path: Path
) -> None:
    llm.default = lambda request: Reply.error(500)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), writing):
            chat = server.private_chat(44)
            server.push_text(chat, None, FIRST)
            [answer] = await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
        expected = engine.answer(FIRST).text
        assert answer.plain_text.startswith(expected + "\n\nSources\n")
        assert "error" not in answer.plain_text.lower() and "model" not in answer.plain_text.lower()
        assert server.drafts == []
        assert server.errors == []
