"""Tests of the fake Bot API server itself, driven by python-telegram-bot's real ``Bot`` over HTTP.

These pin down that the fake (a) speaks the wire format PTB expects and (b) is as strict as Telegram,
so end-to-end tests of the bot can trust both a pass and ``server.errors == []``.

Note: PTB's ``TelegramError`` strips "Bad Request: " and runs ``str.capitalize()`` on the rest, which
lower-cases it; hence the case-insensitive matches on ``exc.message``. ``server.errors`` keeps the exact
Telegram description.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fake_telegram import (
    DEFAULT_TOKEN,
    ERR_NOT_MODIFIED,
    ERR_PARSE_PREFIX,
    EntityParseError,
    FakeChat,
    FakeTelegram,
    entity_texts,
    parse_html,
)
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    ReactionTypeEmoji,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes, MessageHandler, filters

TOKEN = DEFAULT_TOKEN


@pytest.fixture
def server() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as srv:
        yield srv


@pytest.fixture
async def bot(server: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as b:
        yield b


@pytest.fixture
def chat(server: FakeTelegram) -> FakeChat:
    """A private chat the bot may write to: a user message in it has been seen."""
    c = server.private_chat(4242, "Ann", username="ann_reader")
    server.push_text(c, None, "hello")
    return c


def _lower(exc: pytest.ExceptionInfo[BadRequest]) -> str:
    return exc.value.message.lower()


# -- basics ---------------------------------------------------------------------------------------


async def test_get_me(server: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == server.bot_id == 999001
    assert me.username == server.bot_username == "kazbot_test_bot"
    assert me.is_bot and me.can_join_groups and not me.can_read_all_group_messages
    assert bot.username == "kazbot_test_bot"  # populated by initialize() through getMe
    assert server.errors == []


async def test_wrong_token_is_unauthorized(server: FakeTelegram) -> None:
    wrong = Bot("123456:WRONG-token_abcdefghijklmnopqrstuvwxyz01", base_url=server.base_url)
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    assert [(e.method, e.status, e.description) for e in server.errors] == [("getMe", 401, "Unauthorized")]


async def test_unknown_method_is_404(server: FakeTelegram) -> None:
    url = f"{server.base_url}{TOKEN}/sendTelepathy"
    async with httpx.AsyncClient() as client:
        response = await client.post(url, data={"chat_id": "1"})
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_json_and_multipart_bodies_are_parsed(server: FakeTelegram, chat: FakeChat) -> None:
    url = f"{server.base_url}{TOKEN}/sendMessage"
    async with httpx.AsyncClient() as client:
        as_json = await client.post(url, json={"chat_id": chat.id, "text": "via json"})
        as_multipart = await client.post(
            url,
            data={"chat_id": str(chat.id), "text": "via multipart"},
            files={"thumbnail": ("t.jpg", b"\xff\xd8\r\n\r\nbinary", "image/jpeg")},
        )
    assert as_json.json()["ok"] and as_multipart.json()["ok"]
    assert [m.text for m in server.sent_messages(chat.id)] == ["via json", "via multipart"]
    upload = server.calls_to("sendMessage")[-1].params["thumbnail"]
    assert upload.data == b"\xff\xd8\r\n\r\nbinary" and upload.filename == "t.jpg"


# -- sending and HTML ------------------------------------------------------------------------------


async def test_send_valid_html(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])
    message = await bot.send_message(
        chat.id,
        '<b>Answer</b> &amp; <a href="https://example.org/a?x=1&amp;y=2">source</a> &lt;3 &#128512;',
        parse_mode="HTML",
        reply_markup=keyboard,
        reply_to_message_id=1,
    )
    assert message.message_id == 2  # the user's "hello" was 1: one counter per chat
    assert message.text == "Answer & source <3 😀"
    assert message.from_user is not None and message.from_user.id == server.bot_id
    assert message.reply_markup == keyboard
    assert message.reply_to_message is not None and message.reply_to_message.text == "hello"

    [sent] = server.sent_messages(chat.id)
    assert sent.plain_text == "Answer & source <3 😀"
    assert sent.parse_mode == "HTML"
    assert sent.reply_to_message_id == 1
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "More", "callback_data": "more:1"}]]}
    assert entity_texts(sent.plain_text, sent.entities) == [("bold", "Answer"), ("text_link", "source")]
    assert sent.entities[1]["url"] == "https://example.org/a?x=1&y=2"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bold", 0, 6), ("text_link", 9, 6)]
    assert server.errors == []


def test_parse_html_entities() -> None:
    parsed = parse_html(
        '<pre><code class="language-python">x = 1</code></pre>\n'
        '<blockquote expandable>q</blockquote> <span class="tg-spoiler">s</span> 😀<i>i</i>'
    )
    assert parsed.text == "x = 1\nq s 😀i"
    assert parsed.entities == [
        {"type": "pre", "offset": 0, "length": 5, "language": "python"},
        {"type": "expandable_blockquote", "offset": 6, "length": 1},
        {"type": "spoiler", "offset": 8, "length": 1},
        {"type": "italic", "offset": 12, "length": 1},  # the emoji is 2 UTF-16 units
    ]
    with pytest.raises(EntityParseError, match='Unsupported start tag "br" at byte offset 1'):
        parse_html("a<br>b")
    assert parse_html("AT&T", strict_ampersand=False).text == "AT&T"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("<xyz>hi</xyz>", 'unsupported start tag "xyz" at byte offset 0'),
        ("Ünï <b>ok</b> <xyz>", 'unsupported start tag "xyz" at byte offset 16'),
        ("AT&T", 'character "&" at byte offset 2'),
        ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "unexpected end tag at byte offset 1"),
        ('<span class="x">s</span>', 'tag "span" must have class "tg-spoiler"'),
        ("<a>link</a>", 'tag "a" must have a non-empty "href"'),
        ("<b", "unclosed start tag at byte offset 0"),
    ],
)
async def test_invalid_html_is_rejected(
    server: FakeTelegram, bot: Bot, chat: FakeChat, text: str, expected: str
) -> None:
    with pytest.raises(BadRequest) as exc:
        await bot.send_message(chat.id, text, parse_mode="HTML")
    assert _lower(exc).startswith(("can't parse entities: " + expected).lower())
    [error] = server.errors
    assert error.status == 400 and error.description.startswith(ERR_PARSE_PREFIX)
    assert server.sent_messages() == []


async def test_length_is_counted_after_parsing(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    await bot.send_message(chat.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_message(chat.id, "&lt;" * 4096, parse_mode="HTML")
    with pytest.raises(BadRequest) as exc:
        await bot.send_message(chat.id, "<i>" + "x" * 4097 + "</i>", parse_mode="HTML")
    assert _lower(exc) == "message is too long"
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(chat.id, "😀" * 2049)  # 4098 UTF-16 code units
    assert [e.description for e in server.errors] == ["Bad Request: message is too long"] * 2
    assert len(server.sent_messages()[1].plain_text) == 4096


@pytest.mark.parametrize(("text", "parse_mode"), [(" \n\t ", None), ("<b> </b>\n", "HTML")])
async def test_empty_text_is_rejected(bot: Bot, chat: FakeChat, text: str, parse_mode: str | None) -> None:
    with pytest.raises(BadRequest) as exc:
        await bot.send_message(chat.id, text, parse_mode=parse_mode)
    assert _lower(exc) == "message text is empty"


async def test_surrounding_whitespace_is_trimmed(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    message = await bot.send_message(chat.id, "\n  <b>hi</b> there \n", parse_mode="HTML")
    assert message.text == "hi there"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bold", 0, 2)]


async def test_unknown_chat_and_blocked_chat(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    server.private_chat(777, "Never wrote")  # created but no update mentioned it
    with pytest.raises(BadRequest, match=r"(?i)^chat not found$"):
        await bot.send_message(777, "hi")
    server.block_bot(chat)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(chat.id, "hi")


# -- keyboards and callbacks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("button", "expected"),
    [
        (InlineKeyboardButton("Go", callback_data="x" * 65), "button_data_invalid"),
        (InlineKeyboardButton("Go", callback_data="é" * 33), "button_data_invalid"),  # 66 bytes
        (InlineKeyboardButton("Go", url="ftp://example.org"), "button_url_invalid"),
        (InlineKeyboardButton("", callback_data="x"), "text buttons are unallowed in the inline keyboard"),
    ],
)
async def test_invalid_inline_buttons(bot: Bot, chat: FakeChat, button: InlineKeyboardButton, expected: str) -> None:
    with pytest.raises(BadRequest) as exc:
        await bot.send_message(chat.id, "pick", reply_markup=InlineKeyboardMarkup([[button]]))
    assert _lower(exc) == expected


async def test_valid_inline_buttons(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Go", callback_data="x" * 64)],
            [
                InlineKeyboardButton("Site", url="https://example.org"),
                InlineKeyboardButton("Me", url="tg://resolve"),
            ],
        ]
    )
    message = await bot.send_message(chat.id, "pick", reply_markup=markup)
    assert message.reply_markup == markup
    assert server.errors == []


async def test_edit_rules(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="m")]])
    sent = await bot.send_message(chat.id, "<b>v1</b>", parse_mode="HTML", reply_markup=markup)

    with pytest.raises(BadRequest) as exc:
        await bot.edit_message_text("<b>v1</b>", chat.id, sent.message_id, parse_mode="HTML", reply_markup=markup)
    assert _lower(exc) == ERR_NOT_MODIFIED.removeprefix("Bad Request: ").lower()

    # Same text but different formatting is a modification.
    edited = await bot.edit_message_text("v1", chat.id, sent.message_id, reply_markup=markup)
    assert isinstance(edited, type(sent)) and edited.text == "v1" and edited.edit_date is not None
    # Omitting reply_markup removes the keyboard, as on Telegram; doing it twice is "not modified".
    await bot.edit_message_reply_markup(chat.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(chat.id, sent.message_id)

    with pytest.raises(BadRequest, match=r"(?i)^message to edit not found$"):
        await bot.edit_message_text("x", chat.id, 999)
    with pytest.raises(BadRequest, match=r"(?i)^message can't be edited$"):
        await bot.edit_message_text("x", chat.id, 1)  # the user's own message

    assert [(e.method, e.plain_text, e.reply_markup is None) for e in server.edits] == [
        ("editMessageText", "v1", False),
        ("editMessageReplyMarkup", None, True),
    ]
    current = server.message(chat.id, sent.message_id)
    assert current is not None and current["text"] == "v1" and "reply_markup" not in current


async def test_callback_answers(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    sent = await bot.send_message(
        chat.id, "pick", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    )
    query_id = server.push_callback(chat, None, sent.message_id, "a")
    [update] = await bot.get_updates(offset=server.last_update["update_id"])
    assert update.callback_query is not None
    assert update.callback_query.id == query_id and update.callback_query.data == "a"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == sent.message_id

    with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
        await bot.answer_callback_query(query_id, text="x" * 201)
    assert await bot.answer_callback_query(query_id, text="Done")
    with pytest.raises(BadRequest) as exc:
        await bot.answer_callback_query(query_id)
    assert _lower(exc) == "query is too old and response timeout expired or query id is invalid"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query("12345")
    assert [(a.callback_query_id, a.text) for a in server.callback_answers] == [(query_id, "Done")]


# -- other methods ---------------------------------------------------------------------------------


async def test_commands(server: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("ask", "Ask about the news")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "ask"]
    assert server.commands == [
        {"command": "start", "description": "Start"},
        {"command": "ask", "description": "Ask about the news"},
    ]
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Ask-Me", "x")])
    with pytest.raises(BadRequest, match=r"(?i)bot_command_description_invalid"):
        await bot.set_my_commands([BotCommand("ask", "x" * 257)])
    await bot.delete_my_commands()
    assert server.commands == [] and await bot.get_my_commands() == ()


async def test_chat_action_and_get_chat(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    assert await bot.send_chat_action(chat.id, "typing")
    with pytest.raises(BadRequest, match=r"(?i)wrong parameter action"):
        await bot.send_chat_action(chat.id, "dancing")
    info = await bot.get_chat(chat.id)
    assert info.id == chat.id and info.type == "private" and info.first_name == "Ann"
    assert [(a.chat_id, a.action) for a in server.chat_actions] == [(chat.id, "typing")]


async def test_message_reactions(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    question = server.push_text(chat, None, "Who leads the party?")["message"]["message_id"]
    assert await bot.set_message_reaction(chat.id, question, ReactionTypeEmoji("👀"))
    with pytest.raises(BadRequest, match=r"(?i)reaction_invalid"):
        await bot.set_message_reaction(chat.id, question, ReactionTypeEmoji("🦖"))  # not in Telegram's list
    with pytest.raises(BadRequest, match=r"(?i)message to react not found"):
        await bot.set_message_reaction(chat.id, 9999, ReactionTypeEmoji("👀"))
    with pytest.raises(BadRequest, match=r"(?i)reactions_too_many"):
        await bot.set_message_reaction(chat.id, question, [ReactionTypeEmoji("👀"), ReactionTypeEmoji("👍")])
    assert await bot.set_message_reaction(chat.id, question, [])  # removes the bot's reaction
    assert [(r.message_id, r.emoji) for r in server.reactions] == [(question, ["👀"]), (question, [])]


async def test_message_drafts(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    assert await bot.send_message_draft(chat.id, 7, "Half an <b>answer</b>", parse_mode="HTML")
    assert await bot.send_message_draft(chat.id, 7)  # empty: the "Thinking…" placeholder
    with pytest.raises(BadRequest, match=r"(?i)draft_id must be non-zero"):
        await bot.send_message_draft(chat.id, 0, "x")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message_draft(chat.id, 7, "<b>unclosed", parse_mode="HTML")
    group = server.group_chat(-1001)
    server.push_text(group, server.user(5), "/start")
    with pytest.raises(BadRequest, match=r"(?i)only to private chats"):
        await bot.send_message_draft(group.id, 7, "x")
    assert [(d.draft_id, d.plain_text) for d in server.drafts] == [(7, "Half an answer"), (7, "")]
    assert server.sent_messages(chat.id) == []  # a draft is not a message


async def test_inline_queries(server: FakeTelegram, bot: Bot) -> None:
    user = server.user(77, "Iris")
    query_id = server.push_inline_query(user, "who leads", chat_type="group")
    [update] = await bot.get_updates(offset=server.last_update["update_id"])
    assert update.inline_query is not None
    assert (update.inline_query.id, update.inline_query.query, update.inline_query.chat_type) == (
        query_id,
        "who leads",
        "group",
    )

    def article(result_id: str, text: str) -> InlineQueryResultArticle:
        return InlineQueryResultArticle(result_id, "Answer", InputTextMessageContent(text, parse_mode="HTML"))

    with pytest.raises(BadRequest, match=r"(?i)result_id_duplicate"):
        await bot.answer_inline_query(query_id, [article("a", "one"), article("a", "two")])
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.answer_inline_query(query_id, [article("a", "<b>one")])
    assert await bot.answer_inline_query(
        query_id, [article("a", "<blockquote expandable>Sources</blockquote>")], cache_time=5
    )
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_inline_query(query_id, [])  # answered already
    [answer] = server.inline_answers
    assert answer.cache_time == 5 and answer.texts[0].entities[0]["type"] == "expandable_blockquote"

    private = server.push_inline_query(user, "x")
    assert await bot.answer_inline_query(private, [], button=InlineQueryResultsButton("Private", start_parameter="p"))
    assert server.inline_answers[-1].button == {"text": "Private", "start_parameter": "p"}

    with FakeTelegram(inline_mode=False) as without, pytest.raises(ValueError, match="inline mode is off"):
        without.push_inline_query(user, "x")


async def test_webhook_state(server: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
        await bot.set_webhook("https://bot.example/hook", secret_token="bad token!")
    assert await bot.set_webhook(
        "http://127.0.0.1:8443/hook", secret_token="s3cret_-X", allowed_updates=["message"], max_connections=5
    )
    state = server.webhook
    assert (state.url, state.secret_token, state.allowed_updates) == (
        "http://127.0.0.1:8443/hook",
        "s3cret_-X",
        ["message"],
    )
    info = await bot.get_webhook_info()
    assert info.url == state.url and info.allowed_updates == ("message",) and info.max_connections == 5
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()

    # A webhook test builds the update without queueing it and POSTs it itself.
    update = server.push_text(server.private_chat(5, "W"), None, "/start", deliver=False)
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert server.pending_updates == []

    assert await bot.delete_webhook(drop_pending_updates=True)
    assert server.webhook.url == "" and server.webhook.drop_pending_updates
    assert await bot.get_updates() == ()
    assert [e.method for e in server.errors] == ["setWebhook", "getUpdates"]


async def test_close_and_log_out(server: FakeTelegram, bot: Bot) -> None:
    assert await bot.close() and await bot.log_out()
    assert server.closed and server.logged_out


# -- updates and long polling ----------------------------------------------------------------------


async def test_get_updates_and_offset_confirmation(server: FakeTelegram, bot: Bot) -> None:
    ann = server.private_chat(1, "Ann")
    group = server.group_chat(-100123, "News fans")
    bob = server.user(2, "Bob")
    server.push_text(ann, None, "/ask@kazbot_test_bot what happened?")
    server.push_text(group, bob, "hey @kazbot_test_bot", reply_to_message_id=None)
    server.push_photo(ann, None, caption="look")
    server.push_voice(ann, None)

    updates = await bot.get_updates(timeout=0, limit=3)
    assert len(updates) == 3
    first, second, third = updates
    assert first.message is not None and first.message.text == "/ask@kazbot_test_bot what happened?"
    assert [(e.type, e.length) for e in first.message.entities] == [("bot_command", 20)]
    assert second.message is not None and second.message.chat.title == "News fans"
    assert [(e.type, e.offset) for e in second.message.entities] == [("mention", 4)]
    assert third.message is not None and third.message.photo and third.message.caption == "look"
    assert second.update_id == first.update_id + 1

    # Without an offset nothing is confirmed: the same updates come back.
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [u.update_id for u in updates] + [updates[-1].update_id + 1]
    # An offset confirms everything below it.
    rest = await bot.get_updates(offset=third.update_id + 1, timeout=0)
    assert len(rest) == 1 and rest[0].message is not None and rest[0].message.voice is not None
    assert await bot.get_updates(offset=rest[0].update_id + 1, timeout=0) == ()
    assert server.pending_updates == []
    assert server.errors == []


async def test_allowed_updates_filters_new_updates(server: FakeTelegram, bot: Bot) -> None:
    ann = server.private_chat(1, "Ann")
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    server.push_text(ann, None, "ignored")
    assert await bot.get_updates(timeout=0) == ()
    assert len(server.dropped_updates) == 1


async def test_group_privacy_mode(server: FakeTelegram, bot: Bot) -> None:
    group = server.group_chat(-100555, "Readers")
    bob = server.user(7, "Bob")
    server.push_text(group, bob, "just chatting")
    server.push_text(group, bob, "/start@other_bot")
    delivered = [
        server.push_text(group, bob, "/ask what happened")["update_id"],
        server.push_text(group, bob, "/ask@KazBot_Test_Bot what happened")["update_id"],
        server.push_text(group, bob, "hi @kazbot_test_bot")["update_id"],
    ]
    reply = await bot.send_message(group.id, "answer")
    thanks = server.push_text(group, bob, "thanks", reply_to_message_id=reply.message_id)
    delivered.append(thanks["update_id"])
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == delivered
    assert [u["message"]["text"] for u in server.dropped_updates] == ["just chatting", "/start@other_bot"]
    assert (await bot.get_me()).can_read_all_group_messages is False


async def test_files_can_be_downloaded(server: FakeTelegram, bot: Bot) -> None:
    ann = server.private_chat(1, "Ann")
    server.push_document(ann, None, file_name="a.txt", data=b"article text")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.document is not None
    tg_file = await update.message.document.get_file()
    assert bytes(await tg_file.download_as_bytearray()) == b"article text"


async def test_long_poll_returns_when_update_arrives(server: FakeTelegram, bot: Bot) -> None:
    ann = server.private_chat(1, "Ann")
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.3)
    assert not poll.done()  # really waiting
    server.push_text(ann, None, "wake up")
    updates = await asyncio.wait_for(poll, timeout=3)
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["wake up"]


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_newer_get_updates_terminates_older(server: FakeTelegram, bot: Bot) -> None:
    async with Bot(TOKEN, base_url=server.base_url) as other:
        first = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(other.get_updates(timeout=1))
        with pytest.raises(Conflict, match=r"(?i)terminated by other getupdates request"):
            await first
        assert await second == ()


# -- fault injection -------------------------------------------------------------------------------


# Reading RetryAfter.retry_after warns about its future timedelta type; both types are handled.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_fail_next_retry_after(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    server.fail_next("sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as exc:
        await bot.send_message(chat.id, "hi")
    retry = exc.value.retry_after
    assert (retry.total_seconds() if isinstance(retry, dtm.timedelta) else retry) == 7
    await bot.send_message(chat.id, "hi")  # only the next call failed
    assert server.errors == []  # injected faults are not the bot's errors
    assert [c.method for c in server.injected] == ["sendMessage"]


async def test_fail_next_bad_gateway_and_dropped_connections(server: FakeTelegram, bot: Bot, chat: FakeChat) -> None:
    server.fail_next("sendMessage", status=502, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(chat.id, "hi")
    server.drop_next("getUpdates")
    with pytest.raises(NetworkError):
        await bot.get_updates(timeout=0)
    server.drop_next("getUpdates", mode="hang", hang_seconds=2)
    with pytest.raises(TimedOut):
        await bot.get_updates(timeout=0, read_timeout=0.3)
    assert len(await bot.get_updates(timeout=0)) == 1  # the chat fixture's "hello"
    assert server.errors == []


# -- a whole PTB Application polling the fake --------------------------------------------------------


async def test_application_polling_round_trip(server: FakeTelegram) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text is not None
        await update.effective_message.reply_html(f"<i>{update.effective_message.text}</i>", do_quote=True)

    app = Application.builder().token(TOKEN).base_url(server.base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    ann = server.private_chat(1, "Ann")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=2))
        server.push_text(ann, None, "ping")
        [reply] = await server.wait_for_messages(1, chat_id=ann.id)
        assert reply.plain_text == "ping" and reply.reply_to_message_id == 1
        await app.updater.stop()
        await app.stop()
    # Stopping abandons a long poll mid-wait; the fake must not count that as an error.
    assert server.errors == []
    assert server.pending_updates == []  # the cleanup getUpdates confirmed the update
