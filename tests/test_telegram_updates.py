"""Every kind of update python-telegram-bot can deliver, through the real `Application` and `FakeTelegram`: each
is handled or ignored, with no error in the log and no request Telegram would refuse; and the allow-lists and
admin list hold for every kind of update (messages, commands, callback queries, inline queries) before any
retrieval work."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import ERR_QUERY_INVALID, FakeChat, FakeTelegram, FakeUser, parse_html
from fakes import FakeEmbedder
from telegram import Update
from telegram_harness import bot_settings, running_bot

from bot.engine import Engine
from bot.telegram.app import UPDATES
from bot.telegram.handlers import ADMIN_ONLY, INLINE_PRIVATE, NOT_ALLOWED

QUESTION = "Who is Zhanbolat Mamai?"
TIMEOUT = 15


class Counting:
    """Counts `engine.answer` calls: the measure of retrieval work."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.questions: list[str] = []
        real = engine.answer

        def answer(question: str, conversation: Any = None) -> Any:
            self.questions.append(question)
            return real(question, conversation)

        monkeypatch.setattr(engine, "answer", answer)


def _user(user: FakeUser) -> dict[str, Any]:
    return user.to_dict()


def _member(user: dict[str, Any], status: str) -> dict[str, Any]:
    return {"status": status, "user": user, **({"until_date": 0} if status == "kicked" else {})}


def every_other_update(server: FakeTelegram) -> dict[str, dict[str, Any]]:
    """One realistic update of every kind the bot does not answer (and some it answers with silence)."""
    now = int(time.time())
    user = server.user(3001, "Alice")
    other = server.user(3002, "Bob")
    private = server.private_chat(3001)
    group = server.group_chat(-100_3000, "A group")
    channel = {"id": -100_3999, "type": "channel", "title": "A channel"}
    bot = {"id": server.bot_id, "is_bot": True, "first_name": "Kazbot", "username": server.bot_username}
    u, o = _user(user), _user(other)
    chat = group.to_dict()
    post = {"message_id": 7, "chat": channel, "date": now, "sender_chat": channel, "text": "/start " + QUESTION}
    business = {
        "message_id": 8,
        "from": u,
        "chat": private.to_dict(),
        "date": now,
        "business_connection_id": "bc-1",
        "text": "/help " + QUESTION,
    }
    poll = {
        "id": "poll-1",
        "question": "Who leads?",
        "options": [
            {"persistent_id": "o1", "text": "A", "voter_count": 1},
            {"persistent_id": "o2", "text": "B", "voter_count": 0},
        ],
        "total_voter_count": 1,
        "is_closed": False,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
        "allows_revoting": False,
        "members_only": False,
    }
    return {
        "channel_post": {"channel_post": post},
        "edited_channel_post": {"edited_channel_post": {**post, "edit_date": now}},
        "group_message_from_a_channel": {
            "message": {"message_id": 9, "chat": chat, "date": now, "sender_chat": channel, "text": QUESTION}
        },
        "member_joined_message": {
            "message": {"message_id": 10, "from": u, "chat": chat, "date": now, "new_chat_members": [o]}
        },
        "member_left_message": {
            "message": {"message_id": 11, "from": u, "chat": chat, "date": now, "left_chat_member": o}
        },
        "bot_joined_message": {
            "message": {"message_id": 12, "from": u, "chat": chat, "date": now, "new_chat_members": [bot]}
        },
        "pinned_in_private": {
            "message": {
                "message_id": 13,
                "from": u,
                "chat": private.to_dict(),
                "date": now,
                "pinned_message": {"message_id": 1, "chat": private.to_dict(), "date": 0},
            }
        },
        "edited_group_message": {
            "edited_message": {"message_id": 14, "from": u, "chat": chat, "date": now, "edit_date": now, "text": "x"}
        },
        "chosen_inline_result": {"chosen_inline_result": {"result_id": "r1", "from": u, "query": QUESTION}},
        "shipping_query": {
            "shipping_query": {
                "id": "s1",
                "from": u,
                "invoice_payload": "p",
                "shipping_address": {
                    "country_code": "KZ",
                    "state": "",
                    "city": "Almaty",
                    "street_line1": "1",
                    "street_line2": "",
                    "post_code": "050000",
                },
            }
        },
        "pre_checkout_query": {
            "pre_checkout_query": {
                "id": "pc1",
                "from": u,
                "currency": "XTR",
                "total_amount": 1,
                "invoice_payload": "p",
            }
        },
        "poll": {"poll": poll},
        "poll_answer": {
            "poll_answer": {"poll_id": "poll-1", "user": u, "option_ids": [0], "option_persistent_ids": ["o1"]}
        },
        "bot_added_to_group": {
            "my_chat_member": {
                "chat": chat,
                "from": u,
                "date": now,
                "old_chat_member": _member(bot, "left"),
                "new_chat_member": _member(bot, "member"),
            }
        },
        "bot_removed_from_group": {
            "my_chat_member": {
                "chat": chat,
                "from": u,
                "date": now,
                "old_chat_member": _member(bot, "member"),
                "new_chat_member": _member(bot, "kicked"),
            }
        },
        "bot_blocked_in_private": {
            "my_chat_member": {
                "chat": private.to_dict(),
                "from": u,
                "date": now,
                "old_chat_member": _member(bot, "member"),
                "new_chat_member": _member(bot, "kicked"),
            }
        },
        "member_joined": {
            "chat_member": {
                "chat": chat,
                "from": o,
                "date": now,
                "old_chat_member": _member(o, "left"),
                "new_chat_member": _member(o, "member"),
            }
        },
        "member_left": {
            "chat_member": {
                "chat": chat,
                "from": o,
                "date": now,
                "old_chat_member": _member(o, "member"),
                "new_chat_member": _member(o, "left"),
            }
        },
        "chat_join_request": {"chat_join_request": {"chat": chat, "from": o, "user_chat_id": o["id"], "date": now}},
        "message_reaction": {
            "message_reaction": {
                "chat": chat,
                "message_id": 1,
                "user": u,
                "date": now,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            }
        },
        "message_reaction_count": {
            "message_reaction_count": {
                "chat": chat,
                "message_id": 1,
                "date": now,
                "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 2}],
            }
        },
        "chat_boost": {
            "chat_boost": {
                "chat": channel,
                "boost": {
                    "boost_id": "b1",
                    "add_date": now,
                    "expiration_date": now + 86400,
                    "source": {"source": "premium", "user": u},
                },
            }
        },
        "removed_chat_boost": {
            "removed_chat_boost": {
                "chat": channel,
                "boost_id": "b1",
                "remove_date": now,
                "source": {"source": "premium", "user": u},
            }
        },
        "business_connection": {
            "business_connection": {
                "id": "bc-1",
                "user": u,
                "user_chat_id": u["id"],
                "date": now,
                "can_reply": True,
                "is_enabled": True,
            }
        },
        "business_message": {"business_message": business},
        "edited_business_message": {"edited_business_message": {**business, "edit_date": now}},
        "deleted_business_messages": {
            "deleted_business_messages": {
                "business_connection_id": "bc-1",
                "chat": private.to_dict(),
                "message_ids": [8],
            }
        },
        "purchased_paid_media": {"purchased_paid_media": {"from": u, "paid_media_payload": "x"}},
        "managed_bot": {"managed_bot": {"user": u, "bot": {**bot, "id": 4242, "username": "other_bot"}}},
        "guest_message": {"guest_message": {**business, "message_id": 15, "text": "/start"}},
    }


FORGED_CALLBACK_DATA = [
    "",
    "ask:²",  # str.isdigit() says yes, int() says no
    "ask:٣",
    "ask:99999999999999999999999",
    "ask:-1",
    "ask:",
    "src:",
    "src:nope",
    "vote:nope:up",
    "vote::sideways",
    "vote:x:y:z",
    ":::",
    "<b>&amp;</b>",
    "x" * 64,
    "🙂" * 16,
]


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]


async def test_every_kind_of_update_is_handled_or_ignored_without_an_error(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram(group_privacy=False) as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            counting = Counting(engine, monkeypatch)
            await server.wait_for_call("getUpdates")  # allowed_updates (all of them) is known to the server
            kinds = every_other_update(server)
            for update in kinds.values():
                server.push_raw(update)
            private = server.private_chat(3001)
            answered = await ask_and_wait(server, private)  # a barrier: everything before it was handled
            assert "Sources" in answered

            # Callback queries with forged or stale data, on a real message, an unknown one, and none at all.
            [message] = server.sent_messages(private.id)
            queries = [server.push_callback(private, None, message.message_id, data) for data in FORGED_CALLBACK_DATA]
            queries.append(server.push_callback(private, None, 987_654, "src:stale"))  # an inaccessible message
            asker = server.user(3001).to_dict()
            server.push_raw(
                {
                    "callback_query": {
                        "id": "4999",
                        "from": asker,
                        "chat_instance": "1",
                        "game_short_name": "g",
                    }
                }
            )
            server.push_raw(
                {
                    "callback_query": {
                        "id": "4998",
                        "from": asker,
                        "chat_instance": "1",
                        "inline_message_id": "AAAA",
                        "data": "src:whatever",
                    }
                }
            )
            queries += ["4999", "4998"]
            await server.wait_for(
                lambda: {a.callback_query_id for a in server.callback_answers} >= set(queries),
                timeout=TIMEOUT,
                what="an answer to every forged callback query",
            )
            await ask_and_wait(server, private)
    assert problems(caplog) == []
    assert server.errors == []
    assert counting.questions == [QUESTION, QUESTION]  # nothing but the two real questions reached the engine
    assert len(server.sent_messages()) == 2  # no reply to any of the others
    assert len(server.callback_answers) == len(queries)  # each answered once, none twice
    # Membership changes of the bot are logged for the operator.
    assert any("changed from member to kicked" in r.getMessage() for r in caplog.records)
    assert set(kinds) and not server.dropped_updates


async def ask_and_wait(server: FakeTelegram, chat: FakeChat, text: str = QUESTION) -> str:
    before = len(server.sent_messages(chat.id))
    server.push_text(chat, None, text)
    messages = await server.wait_for_messages(before + 1, chat_id=chat.id, timeout=TIMEOUT)
    return messages[before].plain_text


async def test_a_button_press_too_old_to_answer_is_not_an_error(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(3050)
            await ask_and_wait(server, chat)
            [message] = server.sent_messages(chat.id)
            stale = server.push_callback(chat, None, message.message_id, "src:gone", deliver=False)
            server._answered_callbacks.add(stale)  # Telegram no longer takes an answer to it
            server.push_raw(server.last_update)
            await server.wait_for(lambda: server.errors, timeout=TIMEOUT, what="the refused answer")
            await ask_and_wait(server, chat)  # and the bot goes on
    assert [e.description for e in server.errors] == [ERR_QUERY_INVALID]
    assert problems(caplog) == []
    assert any("too old to answer" in r.getMessage() for r in caplog.records)


def test_the_bot_asks_telegram_only_for_the_updates_it_serves() -> None:
    assert set(UPDATES) == {Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY}


# Inline mode ------------------------------------------------------------------------------------------------


async def test_an_inline_question_is_answered_with_one_valid_result(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            user = server.user(3101, "Inline")
            empty = server.push_inline_query(user, "   ")
            finished = server.push_inline_query(user, QUESTION)
            await server.wait_for(lambda: len(server.inline_answers) == 2, timeout=TIMEOUT, what="two answers")
    answers = {a.inline_query_id: a for a in server.inline_answers}
    assert answers[empty].results == []
    [result] = answers[finished].results
    message = result["input_message_content"]["message_text"]
    assert "[1]" in parse_html(message).text and "Sources" in parse_html(message).text
    assert server.errors == []


# Access -----------------------------------------------------------------------------------------------------


async def test_every_kind_of_update_from_outside_the_user_allow_list_is_refused_before_retrieval(
    engine: Engine, fake_embedder: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path, allowed_user_ids=frozenset({3201}), admin_user_ids=frozenset({3209}))
        async with running_bot(settings, engine):
            counting = Counting(engine, monkeypatch)
            member, stranger, admin = server.private_chat(3201), server.private_chat(3202), server.private_chat(3209)
            await ask_and_wait(server, member)
            [answer] = server.sent_messages(member.id)
            fake_embedder.reset_counts()

            stranger_user = server.user(3202)
            asked = server.push_text(stranger, None, QUESTION)["message"]["message_id"]
            server.push_text(stranger, None, "/sources")
            server.push_text(stranger, None, "/stats")
            server.push_text(stranger, None, "/reload")
            server.push_edited_text(stranger, None, asked, "Who leads the Democratic Party?")
            pressed = [server.push_callback(stranger, None, answer.message_id, data) for data in ("ask:0", "src:x")]
            inline = server.push_inline_query(stranger_user, QUESTION)
            await server.wait_for_messages(5, chat_id=stranger.id, timeout=TIMEOUT)
            await server.wait_for(lambda: len(server.inline_answers) == 1, timeout=TIMEOUT, what="inline refusal")
            await server.wait_for(
                lambda: {a.callback_query_id for a in server.callback_answers} >= set(pressed), timeout=TIMEOUT
            )
            assert counting.questions == [QUESTION] and fake_embedder.calls == 0  # no retrieval for the stranger

            server.push_text(member, None, "/stats")  # a member, but not an admin
            refused_admin = (await server.wait_for_messages(2, chat_id=member.id, timeout=TIMEOUT))[1]
            admin_answer = await ask_and_wait(server, admin)  # the admin passes the allow-list
    to_stranger = [m.plain_text for m in server.sent_messages(stranger.id)]
    assert to_stranger == [NOT_ALLOWED] * 5  # the question, /sources, /stats, /reload and the edited question
    assert [a.text for a in server.callback_answers if a.callback_query_id in pressed] == [NOT_ALLOWED] * 2
    [refusal] = server.inline_answers
    assert refusal.inline_query_id == inline and refusal.results == []
    assert refusal.button is not None and refusal.button["text"] == INLINE_PRIVATE
    assert refused_admin.plain_text == ADMIN_ONLY
    assert "Sources" in admin_answer
    assert server.errors == []


async def test_every_kind_of_update_from_outside_the_chat_allow_list_is_refused_before_retrieval(
    engine: Engine, fake_embedder: FakeEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path, allowed_chat_ids=frozenset({3301}))
        async with running_bot(settings, engine):
            counting = Counting(engine, monkeypatch)
            allowed, other = server.private_chat(3301), server.private_chat(3302)
            await ask_and_wait(server, allowed)
            [answer] = server.sent_messages(allowed.id)
            fake_embedder.reset_counts()
            server.push_text(other, None, QUESTION)
            server.push_text(other, None, "/start")
            # A member of the allowed chat pressing a button in another chat, and an inline query (no chat).
            pressed = server.push_callback(other, server.user(3301), answer.message_id, "ask:0")
            inline = server.push_inline_query(server.user(3301), QUESTION)
            await server.wait_for_messages(2, chat_id=other.id, timeout=TIMEOUT)
            await server.wait_for(
                lambda: (
                    len(server.inline_answers) == 1
                    and pressed in {a.callback_query_id for a in server.callback_answers}
                ),
                timeout=TIMEOUT,
            )
    assert counting.questions == [QUESTION] and fake_embedder.calls == 0
    assert [m.plain_text for m in server.sent_messages(other.id)] == [NOT_ALLOWED] * 2
    assert [a.text for a in server.callback_answers if a.callback_query_id == pressed] == [NOT_ALLOWED]
    assert server.inline_answers[0].inline_query_id == inline and server.inline_answers[0].results == []
    assert server.errors == []
