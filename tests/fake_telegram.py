"""A strict, in-process fake of the Telegram Bot API server, for tests.

``FakeTelegram`` runs a real HTTP server on 127.0.0.1 (standard library only) that speaks the Bot API
wire format closely enough for python-telegram-bot's own ``Bot`` to talk to it through its normal HTTP
stack (``Bot(token, base_url=server.base_url)``). It is deliberately *stricter* than convenient: it
rejects what the real Telegram rejects (bad HTML, over-long texts, invalid buttons, unchanged edits,
double-answered callback queries, unknown chats ...) with Telegram's own error shape and descriptions,
and records every such error in ``errors`` so an end-to-end test can assert ``server.errors == []``.

Test code drives it from the other side: create chats and users, push updates (served by long polling
through ``getUpdates``, or built for a test to POST to a webhook), inject faults (429 flood limits, 5xx
pages, dropped connections), then inspect what the bot sent (``sent_messages()``, ``edits``,
``callback_answers``, ``chat_actions``, ``reactions``, ``drafts``, ``inline_answers``, ``commands``,
``webhook``, ``calls``). Inline queries are pushed with ``push_inline_query``. All test-side methods are
thread-safe; the ``wait_for*`` coroutines poll with ``asyncio.sleep`` so they never block an event loop
that is also running the bot.

Known approximations (everything else aims to match Telegram):

* Only parse_mode=HTML is parsed. "Markdown"/"MarkdownV2" texts are accepted verbatim, without
  entities and without Telegram's escaping checks; any other parse_mode is rejected.
* The HTML rules are a port of tdlib's parser; error wording is close to Telegram's but not
  guaranteed verbatim past the exact "Bad Request: can't parse entities: " prefix. Two rules are
  stricter than Telegram on purpose: a bare "&" is an error (Telegram keeps it literally; see
  ``strict_ampersand``) and <a> requires a non-empty href. Entities nested inside code/pre are kept
  (Telegram drops them), and tg://user links stay text_link rather than text_mention.
* Trimming uses ``str.strip()``; Telegram's notion of whitespace and its control-character
  cleanup differ in corner cases.
* Error names marked approximate in the code (BOT_COMMAND_*, MESSAGE_TOO_LONG for callback
  answers, webhook URL/secret errors, type errors in parameters) may differ from Telegram's.
* Only the methods in ``FakeTelegram._methods`` plus getUpdates exist; any other method is
  404 Not Found (which PTB reports as InvalidToken). Inline messages, topics, business
  connections and message age limits are not modelled.
"""

# The wait_for* coroutines take a ``timeout`` argument on purpose (ASYNC109): they are test helpers
# whose timeout is part of the assertion message, not a cancellation scope.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "DEFAULT_TOKEN",
    "ERR_BUTTON_DATA",
    "ERR_BUTTON_URL",
    "ERR_CHAT_NOT_FOUND",
    "ERR_EDIT_NOT_FOUND",
    "ERR_NOT_MODIFIED",
    "ERR_PARSE_PREFIX",
    "ERR_QUERY_INVALID",
    "ERR_TEXT_BUTTONS",
    "ERR_TEXT_EMPTY",
    "ERR_TEXT_TOO_LONG",
    "ApiError",
    "Call",
    "CallbackAnswer",
    "ChatAction",
    "Draft",
    "Edit",
    "EntityParseError",
    "FakeChat",
    "FakeTelegram",
    "FakeUser",
    "InlineAnswer",
    "ParsedText",
    "Reaction",
    "SentMessage",
    "UploadedFile",
    "WebhookState",
    "entity_texts",
    "parse_html",
    "utf16_len",
]

_T = TypeVar("_T")

DEFAULT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz012"

MAX_MESSAGE_LENGTH = 4096  # UTF-16 code units, counted on the text left after entity parsing
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_INLINE_BUTTONS = 100
MAX_INLINE_RESULTS = 50
# Emoji a bot may react with (Telegram's fixed list; a subset here). Others: REACTION_INVALID.
_REACTION_EMOJI = frozenset(
    """👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 💯 🤣 ⚡ 🏆 💔 🤨 😐 🍓 🍾 💋
    😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡""".split()
)

# Exact descriptions the real Bot API returns; tests match on them, so keep them verbatim.
ERR_TEXT_EMPTY = "Bad Request: message text is empty"
ERR_TEXT_TOO_LONG = "Bad Request: message is too long"
ERR_PARSE_PREFIX = "Bad Request: can't parse entities: "
ERR_CHAT_NOT_FOUND = "Bad Request: chat not found"
ERR_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
ERR_EDIT_NOT_FOUND = "Bad Request: message to edit not found"
ERR_CANT_EDIT = "Bad Request: message can't be edited"
ERR_NO_TEXT_TO_EDIT = "Bad Request: there is no text in the message to edit"
ERR_DELETE_NOT_FOUND = "Bad Request: message to delete not found"
ERR_REPLY_NOT_FOUND = "Bad Request: message to be replied not found"
ERR_MESSAGE_ID_MISSING = "Bad Request: message identifier is not specified"
ERR_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
ERR_BUTTON_DATA = "Bad Request: BUTTON_DATA_INVALID"
ERR_BUTTON_URL = "Bad Request: BUTTON_URL_INVALID"
ERR_TEXT_BUTTONS = "Bad Request: text buttons are unallowed in the inline keyboard"
ERR_MARKUP_JSON = "Bad Request: can't parse reply keyboard markup JSON object"
ERR_MARKUP_TOO_LONG = "Bad Request: reply markup is too long"
ERR_UNSUPPORTED_PARSE_MODE = "Bad Request: unsupported parse_mode"
ERR_WRONG_ACTION = "Bad Request: wrong parameter action in request"
ERR_REACTION_INVALID = "Bad Request: REACTION_INVALID"
ERR_MESSAGE_NOT_FOUND = "Bad Request: message to react not found"
ERR_DRAFT_CHAT = "Bad Request: drafts can be sent only to private chats"
ERR_DRAFT_ID = "Bad Request: draft_id must be non-zero"
ERR_INLINE_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
ERR_RESULT_ID_DUPLICATE = "Bad Request: RESULT_ID_DUPLICATE"
ERR_RESULTS_TOO_MUCH = "Bad Request: RESULTS_TOO_MUCH"
ERR_RESULT_INVALID = "Bad Request: RESULT_INVALID"
ERR_BLOCKED = "Forbidden: bot was blocked by the user"
ERR_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
ERR_CONFLICT_POLLING = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Telegram's default when allowed_updates was never set (or set to []): everything except these.
_OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)

_INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


# ---------------------------------------------------------------------------------------------------
# Telegram-style HTML parsing
# ---------------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Raised by :func:`parse_html`; ``str(exc)`` is the part after "can't parse entities: "."""


@dataclass(frozen=True)
class ParsedText:
    """Visible text and MessageEntity dicts (UTF-16 offsets), as Telegram would store them."""

    text: str
    entities: list[dict[str, Any]]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the unit Telegram uses for limits and entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_TAG_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
# tdlib's is_space(): the separators it accepts inside tags.
_TAG_SPACES = frozenset(" \t\r\n\v\0")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_LINK_SCHEMES = ("http://", "https://", "tg://", "ton://", "mailto:")


def _byte_offset(text: str, index: int) -> int:
    # Telegram reports positions as byte offsets into the UTF-8 text.
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference starting at ``text[pos] == "&"`` the way tdlib does.

    Only &lt; &gt; &amp; &quot; and numeric references exist; the trailing ";" is optional (tdlib
    accepts "&lt" too). Returns (character, index after the reference) or None if it is not one.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        base = 10
        if end < n and text[end] in "xX":
            base = 16
            end += 1
        digits_start = end
        allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        while end < n and text[end] in allowed:
            end += 1
        digits = text[digits_start:end]
        if not digits or len(digits) > 8:
            return None
        code = int(digits, base)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        char = chr(code)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


def _decode_attribute(value: str) -> str:
    # Attribute values are decoded leniently by tdlib: unknown "&..." stays literal.
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            decoded = _decode_entity(value, i)
            if decoded is not None:
                out.append(decoded[0])
                i = decoded[1]
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset in the output text
    byte_pos: int


def parse_html(text: str, *, strict_ampersand: bool = True) -> ParsedText:
    """Parse ``text`` with Telegram's HTML rules (a port of tdlib's ``parse_html``).

    The standard library's ``html.parser`` is not used on purpose: it silently accepts exactly the
    mistakes (bare "<", unknown tags, unclosed tags) that Telegram rejects and that this fake exists
    to catch. Raises :class:`EntityParseError` with a tdlib-like message.

    With ``strict_ampersand`` (the default), an "&" that does not start a supported character
    reference is an error. Real Telegram keeps such an "&" literally, but its docs require escaping
    it, and a bot that forgets ``html.escape`` would otherwise only fail on "<" in production.
    """
    out: list[str] = []
    offset = 0  # UTF-16 length of ``out``
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    n = len(text)
    i = 0

    def emit(chunk: str) -> None:
        nonlocal offset
        out.append(chunk)
        offset += utf16_len(chunk)

    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                emit(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                raise EntityParseError(
                    f'Character "&" at byte offset {_byte_offset(text, i)} does not begin a supported '
                    'HTML entity; it must be escaped as "&amp;"'
                )
            emit(c)
            i += 1
            continue
        if c != "<":
            emit(c)
            i += 1
            continue

        begin = i
        begin_bytes = _byte_offset(text, begin)
        i += 1
        if i < n and text[i] == "/":
            # End tag: "</name>" or the anonymous "</>" which closes the innermost tag.
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin_bytes}")
            tag_end = text.find(">", i)
            if tag_end == -1:
                raise EntityParseError(f"Unclosed end tag at byte offset {begin_bytes}")
            end_name = text[i + 1 : tag_end].lower()
            top = stack[-1]
            if end_name and end_name != top.name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin_bytes}, expected "</{top.name}>", found "</{end_name}>"'
                )
            i = tag_end + 1
            stack.pop()
            _close_entity(top, offset, "".join(out), entities)
            continue

        # Start tag.
        tag_end = i
        while tag_end < n and text[tag_end] not in _TAG_SPACES and text[tag_end] != ">":
            tag_end += 1
        if tag_end >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {begin_bytes}")
        name = text[i:tag_end].lower()
        if name not in _TAG_ENTITY_TYPES:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {begin_bytes}')
        attrs: dict[str, str] = {}
        i = tag_end
        while True:
            while i < n and text[i] in _TAG_SPACES:
                i += 1
            if i >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {begin_bytes}')
            if text[i] == ">":
                i += 1
                break
            attr_begin = i
            while i < n and text[i] not in _TAG_SPACES and text[i] not in "=>":
                i += 1
            attr_name = text[attr_begin:i].lower()
            if not attr_name:
                raise EntityParseError(f'Empty attribute name in the tag "{name}" at byte offset {begin_bytes}')
            while i < n and text[i] in _TAG_SPACES:
                i += 1
            if i >= n or text[i] != "=":
                if name == "blockquote" and attr_name == "expandable":
                    attrs[attr_name] = ""
                    continue
                raise EntityParseError(
                    "Expected equal sign in declaration of an attribute of the tag "
                    f'"{name}" at byte offset {begin_bytes}'
                )
            i += 1
            while i < n and text[i] in _TAG_SPACES:
                i += 1
            if i >= n:
                raise EntityParseError(f'Unclosed start tag "{name}" at byte offset {begin_bytes}')
            if text[i] in "'\"":
                quote = text[i]
                value_end = text.find(quote, i + 1)
                if value_end == -1:
                    raise EntityParseError(f"Unclosed attribute value at byte offset {_byte_offset(text, attr_begin)}")
                value = _decode_attribute(text[i + 1 : value_end])
                i = value_end + 1
            else:
                # An unquoted "name token": letters, digits, periods and hyphens only.
                token_begin = i
                while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                    i += 1
                if i >= n or (text[i] not in _TAG_SPACES and text[i] != ">"):
                    raise EntityParseError(
                        f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                    )
                value = text[token_begin:i].lower()
            attrs[attr_name] = value  # unknown attributes are ignored, as Telegram does

        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_bytes}')
        if name == "a" and not attrs.get("href", "").strip():
            # Stricter than tdlib (which would link the inner text): a bare <a> is a bot bug.
            raise EntityParseError(f'Tag "a" must have a non-empty "href" at byte offset {begin_bytes}')
        if name == "tg-emoji" and not re.fullmatch(r"[0-9]{1,19}", attrs.get("emoji-id", "")):
            raise EntityParseError("Invalid custom emoji identifier specified")
        stack.append(_OpenTag(name, attrs, offset, begin_bytes))

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(out), entities)


def _close_entity(tag: _OpenTag, end: int, plain: str, entities: list[dict[str, Any]]) -> None:
    length = end - tag.start
    if length <= 0:
        return  # Telegram drops empty entities silently
    entity: dict[str, Any] = {"type": _TAG_ENTITY_TYPES[tag.name], "offset": tag.start, "length": length}
    if tag.name == "a":
        url = tag.attrs["href"].strip()
        if "://" not in url and not url.startswith("mailto:"):
            url = "http://" + url  # Telegram normalises scheme-less links this way
        if not url.lower().startswith(_LINK_SCHEMES):
            return  # Telegram drops links with unsupported schemes instead of failing
        entity["url"] = url
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif tag.name == "code":
        css = tag.attrs.get("class", "")
        if css.startswith("language-") and len(css) > len("language-"):
            entity["language"] = css[len("language-") :]
    elif tag.name == "pre":
        # <pre><code class="language-x">...</code></pre> becomes one "pre" entity with a language.
        if entities:
            last = entities[-1]
            if last["type"] == "code" and last["offset"] == tag.start and last["length"] == length:
                entities.pop()
                if "language" in last:
                    entity["language"] = last["language"]
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    entities.append(entity)


def _trim(text: str, entities: list[dict[str, Any]]) -> ParsedText:
    """Strip leading/trailing whitespace like Telegram does, shifting and clipping entities."""
    stripped = text.strip()
    if not stripped:
        return ParsedText("", [])
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    end = lead + utf16_len(stripped)
    result: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"], lead)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            result.append({**entity, "offset": start - lead, "length": stop - start})
    return ParsedText(stripped, result)


# ---------------------------------------------------------------------------------------------------
# Public record types
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user that test code sends updates as."""

    id: int
    first_name: str = "Tester"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class FakeChat:
    """A chat; for private chats ``user`` is the other party (same id as the chat)."""

    id: int
    type: Literal["private", "group", "supergroup", "channel"]
    title: str | None = None
    username: str | None = None
    user: FakeUser | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name is not None:
                data["last_name"] = self.user.last_name
            if self.user.username is not None:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or ""
            if self.username is not None:
                data["username"] = self.username
        return data


class Call(NamedTuple):
    """One request the fake received, in arrival order; ``params`` are decoded (ints, JSON objects)."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ApiError:
    """A 4xx answer the fake gave because of what the bot sent (injected faults are not listed)."""

    method: str
    status: int
    description: str
    params: dict[str, Any]


@dataclass(frozen=True)
class SentMessage:
    """A successful sendMessage, as sent (later edits are in ``FakeTelegram.edits``)."""

    chat_id: int
    message_id: int
    text: str  # the raw ``text`` parameter, markup included
    parse_mode: str | None
    reply_markup: dict[str, Any] | None  # parsed JSON, any keyboard kind
    reply_to_message_id: int | None
    plain_text: str  # what the user sees: tags removed, entities decoded, trimmed
    entities: list[dict[str, Any]]
    params: dict[str, Any]


@dataclass(frozen=True)
class Edit:
    """A successful editMessageText / editMessageReplyMarkup."""

    method: str
    chat_id: int
    message_id: int
    text: str | None  # raw text parameter (None for editMessageReplyMarkup)
    parse_mode: str | None
    plain_text: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True)
class ChatAction:
    chat_id: int
    action: str


@dataclass(frozen=True)
class Reaction:
    """A successful setMessageReaction: the emoji now set on a message ([] removes the bot's reaction)."""

    chat_id: int
    message_id: int
    emoji: list[str]


@dataclass(frozen=True)
class Draft:
    """A successful sendMessageDraft (a streamed preview in a private chat)."""

    chat_id: int
    draft_id: int
    text: str
    parse_mode: str | None
    plain_text: str


@dataclass(frozen=True)
class InlineAnswer:
    """A successful answerInlineQuery; ``results`` as sent, ``texts`` the visible text of each result's message."""

    inline_query_id: str
    results: list[dict[str, Any]]
    texts: list[ParsedText]
    cache_time: int | None
    is_personal: bool
    button: dict[str, Any] | None


@dataclass(frozen=True)
class WebhookState:
    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int | None = None
    ip_address: str | None = None
    drop_pending_updates: bool = False  # as passed on the last setWebhook/deleteWebhook


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart/form-data request."""

    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class _InjectedFault:
    method: str
    kind: Literal["respond", "close", "hang"]
    status: int
    retry_after: int | None
    description: str | None
    hang_seconds: float


# ---------------------------------------------------------------------------------------------------
# Internal state
# ---------------------------------------------------------------------------------------------------


class _ApiFailure(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class _ClientGone(Exception):
    """The client closed the connection while we were holding a long poll."""


@dataclass
class _StoredMessage:
    chat: FakeChat
    message_id: int
    date: int
    sender: dict[str, Any]
    from_bot: bool
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  # inline keyboards only: the only kind echoed back
    content: dict[str, Any] = field(default_factory=dict)  # sticker / photo / voice / document ...
    reply_to: int | None = None
    edit_date: int | None = None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


_INT_FIELDS = frozenset(
    {"offset", "limit", "message_id", "reply_to_message_id", "cache_time", "max_connections", "user_id", "draft_id"}
)
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "is_personal",
        "is_big",
    }
)
_JSON_FIELDS = {
    "reply_markup": ERR_MARKUP_JSON,
    "results": "Bad Request: can't parse inline query results JSON object",
    "button": "Bad Request: can't parse inline query results button JSON object",
    "entities": "Bad Request: can't parse entities JSON object",
    "caption_entities": "Bad Request: can't parse entities JSON object",
    "commands": "Bad Request: can't parse commands JSON object",
    "scope": "Bad Request: can't parse BotCommandScope JSON object",
    "allowed_updates": "Bad Request: can't parse allowed_updates JSON object",
    "reply_parameters": "Bad Request: can't parse reply parameters JSON object",
    "link_preview_options": "Bad Request: can't parse link preview options JSON object",
    "reaction": "Bad Request: can't parse reaction JSON object",
}


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _normalize_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Decode form values the way the Bot API does: every field arrives as a string in form bodies."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, UploadedFile) or value is None:
            out[key] = value
        elif key in _JSON_FIELDS:
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _ApiFailure(400, _JSON_FIELDS[key]) from None
            out[key] = value
        elif key in _INT_FIELDS or key in _FLOAT_FIELDS:
            try:
                number = float(value) if key in _FLOAT_FIELDS else int(value)
            except (TypeError, ValueError):
                raise _ApiFailure(400, f'Bad Request: field "{key}" must be a number') from None
            out[key] = number
        elif key in _BOOL_FIELDS:
            out[key] = _as_bool(value)
        elif key == "chat_id":
            if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
                value = int(value)
            out[key] = value
        else:
            out[key] = value
    return out


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    # A small binary-safe splitter; email.parser would mangle line endings inside file parts.
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise _ApiFailure(400, "Bad Request: multipart boundary is missing")
    delimiter = b"--" + match.group(1).encode("latin-1")
    result: dict[str, Any] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, data = part.partition(b"\r\n\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', headers)
        if name is None:
            continue
        filename = re.search(r'filename="([^"]*)"', headers)
        ctype = re.search(r"(?im)^content-type:\s*(\S+)", headers)
        if filename is not None:
            result[name.group(1)] = UploadedFile(filename.group(1), ctype.group(1) if ctype else None, data)
        else:
            result[name.group(1)] = data.decode("utf-8")
    return result


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    kind = content_type.partition(";")[0].strip().lower()
    if not body:
        return {}
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body)
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    # application/json, or no content type at all: the Bot API tries JSON.
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _ApiFailure(400, "Bad Request: can't parse JSON request body") from None
    if not isinstance(parsed, dict):
        raise _ApiFailure(400, "Bad Request: JSON request body must be an object")
    return parsed


def _error_page(status: int) -> bytes:
    # What an nginx in front of the Bot API serves when the backend is down.
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


# ---------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeTelegram, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping keep-alive connections (or stop() shutting them) is normal in tests;
        # only print real bugs in the fake.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so httpx can keep connections alive, as it does against the real API.
    protocol_version = "HTTP/1.1"

    def _fake(self) -> FakeTelegram:
        server = self.server
        assert isinstance(server, _Server)
        return server.fake

    def setup(self) -> None:
        super().setup()
        self._fake()._track_connection(self.connection, add=True)

    def finish(self) -> None:
        self._fake()._track_connection(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_POST(self) -> None:
        self._fake()._handle(self)

    def do_GET(self) -> None:
        self._fake()._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; ``calls`` and ``errors`` carry the information


def _client_gone(sock: socket.socket) -> bool:
    """True if the peer closed the connection (readable with EOF) while we hold a long poll."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


# ---------------------------------------------------------------------------------------------------
# The fake server
# ---------------------------------------------------------------------------------------------------


class FakeTelegram:
    """Strict fake of the Bot API. Use as ``with FakeTelegram() as server:`` or start()/stop()."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_id: int = 999001,
        bot_username: str = "kazbot_test_bot",
        bot_first_name: str = "Kazbot",
        port: int = 0,
        strict_ampersand: bool = True,
        group_privacy: bool = True,
        strict_webhook_url: bool = False,
        inline_mode: bool = True,
    ) -> None:
        """
        Args:
            token: the only token accepted; anything else gets 401 Unauthorized.
            strict_ampersand: reject "&" that is not a character reference (see :func:`parse_html`).
            group_privacy: privacy mode, Telegram's default and what getMe reports
                (can_read_all_group_messages=false): group messages that contain no command for this
                bot, do not mention it and do not reply to it are not delivered (they land in
                ``dropped_updates``). Pass False to receive every group message.
            strict_webhook_url: require https on ports 443/80/88/8443 like Telegram; off by default
                because tests run the bot's webhook on http://127.0.0.1:<random port>.
            inline_mode: inline mode enabled with @BotFather (getMe's supports_inline_queries); without it
                ``push_inline_query`` refuses, since Telegram would never send the bot one.
        """
        self.token = token
        self._bot_id = bot_id
        self._bot_username = bot_username
        self._bot_first_name = bot_first_name
        self._port = port
        self.strict_ampersand = strict_ampersand
        self.group_privacy = group_privacy
        self.strict_webhook_url = strict_webhook_url
        self.inline_mode = inline_mode

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, FakeChat] = {}
        self._seen_chats: set[int] = set()
        self._blocked_chats: set[int] = set()
        self._messages: dict[tuple[int, int], _StoredMessage] = {}
        self._next_message_id: dict[int, int] = {}
        self._next_update_id = 100_000_001
        self._queue: list[dict[str, Any]] = []
        self._delivered_ids: set[int] = set()
        self._built_updates: list[dict[str, Any]] = []
        self._dropped_updates: list[dict[str, Any]] = []
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._callbacks: dict[str, FakeChat] = {}
        self._answered_callbacks: set[str] = set()
        self._next_callback = 1
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._webhook = WebhookState()
        self._faults: list[_InjectedFault] = []

        self._calls: list[Call] = []
        self._errors: list[ApiError] = []
        self._injected: list[Call] = []
        self._sent: list[SentMessage] = []
        self._edits: list[Edit] = []
        self._callback_answers: list[CallbackAnswer] = []
        self._inline_queries: set[str] = set()
        self._chat_actions: list[ChatAction] = []
        self._deleted: list[tuple[int, int]] = []
        self._reactions: list[Reaction] = []
        self._drafts: list[Draft] = []
        self._answered_inline: set[str] = set()
        self._inline_answers: list[InlineAnswer] = []
        self.closed = False
        self.logged_out = False

        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self._m_get_me,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "deleteMessage": self._m_delete_message,
            "answerCallbackQuery": self._m_answer_callback_query,
            "sendChatAction": self._m_send_chat_action,
            "setMessageReaction": self._m_set_message_reaction,
            "sendMessageDraft": self._m_send_message_draft,
            "answerInlineQuery": self._m_answer_inline_query,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "getChat": self._m_get_chat,
            "getFile": self._m_get_file,
            "close": self._m_close,
            "logOut": self._m_log_out,
        }
        # Bot API method names are case-insensitive; getUpdates is special-cased (it blocks).
        self._method_names = {name.lower(): name for name in [*self._methods, "getUpdates"]}

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("FakeTelegram already started")
        self._stopping.clear()
        self._server = _Server(self, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-telegram",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()  # release long polls
        server.shutdown()
        server.server_close()
        # Idle keep-alive connections would otherwise keep handler threads blocked in recv().
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeTelegram is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """For ``Bot(token, base_url=...)``: PTB appends the token and then "/method"."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- bot identity -------------------------------------------------------------------------------

    @property
    def bot_id(self) -> int:
        return self._bot_id

    @property
    def bot_username(self) -> str:
        return self._bot_username

    @property
    def bot_user(self) -> dict[str, Any]:
        """The getMe result."""
        return {
            "id": self._bot_id,
            "is_bot": True,
            "first_name": self._bot_first_name,
            "username": self._bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.group_privacy,
            "supports_inline_queries": self.inline_mode,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    # -- users and chats ----------------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Tester",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        new = FakeUser(user_id, first_name, last_name, username, language_code)
        with self._lock:
            self._users[user_id] = new
        return new

    def private_chat(
        self,
        user_id: int,
        first_name: str = "Tester",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
    ) -> FakeChat:
        """A private chat with a new user; ``chat.user`` is that user. Known once an update uses it."""
        new_user = self.user(user_id, first_name, last_name=last_name, username=username, language_code=language_code)
        chat = FakeChat(user_id, "private", user=new_user)
        with self._lock:
            self._chats[chat.id] = chat
        return chat

    def group_chat(
        self,
        chat_id: int,
        title: str = "Test group",
        type: Literal["group", "supergroup"] = "supergroup",
        *,
        username: str | None = None,
    ) -> FakeChat:
        chat = FakeChat(chat_id, type, title=title, username=username)
        with self._lock:
            self._chats[chat.id] = chat
        return chat

    def block_bot(self, chat: FakeChat, blocked: bool = True) -> None:
        """Make sends to ``chat`` fail with 403 "Forbidden: bot was blocked by the user"."""
        with self._lock:
            if blocked:
                self._blocked_chats.add(chat.id)
            else:
                self._blocked_chats.discard(chat.id)

    # -- injecting updates --------------------------------------------------------------------------

    def push_text(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        text: str,
        *,
        reply_to_message_id: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """A user's text message. Returns the Update dict (``["message"]["message_id"]`` is its id).

        ``user=None`` means the private chat's own user. Commands ("/start", "/ask@bot") and
        "@username" mentions get their entities computed unless ``entities`` is given.
        ``deliver=False`` only builds the update (to POST it to a webhook yourself).
        """
        sender = self._sender(chat, user)
        with self._lock:
            msg = self._new_user_message(chat, sender, reply_to_message_id)
            msg.text = text
            msg.entities = entities if entities is not None else self._auto_entities(text)
            return self._emit("message", self._message_dict(msg), deliver)

    def push_edited_text(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        message_id: int,
        text: str,
        *,
        entities: list[dict[str, Any]] | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """The user edited their earlier text message ``message_id``."""
        self._sender(chat, user)
        with self._lock:
            msg = self._messages.get((chat.id, message_id))
            if msg is None or msg.from_bot or msg.text is None:
                raise ValueError(f"no user text message {message_id} in chat {chat.id}")
            msg.text = text
            msg.entities = entities if entities is not None else self._auto_entities(text)
            msg.edit_date = int(time.time())
            return self._emit("edited_message", self._message_dict(msg), deliver)

    def push_sticker(
        self, chat: FakeChat, user: FakeUser | None, *, emoji: str = "👍", deliver: bool = True
    ) -> dict[str, Any]:
        sender = self._sender(chat, user)
        with self._lock:
            stored = self._new_file(b"RIFF-webp", "stickers/file_{n}.webp")
            msg = self._new_user_message(chat, sender, None)
            msg.content = {
                "sticker": {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": emoji,
                    "file_size": len(stored.data),
                }
            }
            return self._emit("message", self._message_dict(msg), deliver)

    def push_photo(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        *,
        caption: str | None = None,
        data: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        deliver: bool = True,
    ) -> dict[str, Any]:
        sender = self._sender(chat, user)
        with self._lock:
            small = self._new_file(data, "photos/file_{n}.jpg")
            large = self._new_file(data, "photos/file_{n}.jpg")
            msg = self._new_user_message(chat, sender, None)
            msg.content = {
                "photo": [
                    {
                        "file_id": small.file_id,
                        "file_unique_id": small.file_unique_id,
                        "width": 90,
                        "height": 67,
                        "file_size": len(data),
                    },
                    {
                        "file_id": large.file_id,
                        "file_unique_id": large.file_unique_id,
                        "width": 1280,
                        "height": 960,
                        "file_size": len(data),
                    },
                ]
            }
            if caption is not None:
                msg.content["caption"] = caption
            return self._emit("message", self._message_dict(msg), deliver)

    def push_voice(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        *,
        duration: int = 3,
        data: bytes = b"OggS-fake-voice",
        deliver: bool = True,
    ) -> dict[str, Any]:
        sender = self._sender(chat, user)
        with self._lock:
            stored = self._new_file(data, "voice/file_{n}.oga")
            msg = self._new_user_message(chat, sender, None)
            msg.content = {
                "voice": {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "duration": duration,
                    "mime_type": "audio/ogg",
                    "file_size": len(data),
                }
            }
            return self._emit("message", self._message_dict(msg), deliver)

    def push_document(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        *,
        file_name: str = "notes.txt",
        mime_type: str = "text/plain",
        data: bytes = b"hello\n",
        caption: str | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        sender = self._sender(chat, user)
        with self._lock:
            stored = self._new_file(data, "documents/file_{n}")
            msg = self._new_user_message(chat, sender, None)
            msg.content = {
                "document": {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_name": file_name,
                    "mime_type": mime_type,
                    "file_size": len(data),
                }
            }
            if caption is not None:
                msg.content["caption"] = caption
            return self._emit("message", self._message_dict(msg), deliver)

    def push_callback(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        message_id: int,
        data: str,
        *,
        deliver: bool = True,
    ) -> str:
        """The user pressed an inline button under ``message_id``; returns the callback_query id.

        The update itself is then ``server.last_update``.
        """
        sender = self._sender(chat, user)
        with self._lock:
            query_id = f"{4_000_000_000_000_000 + self._next_callback}"
            self._next_callback += 1
            self._callbacks[query_id] = chat
            msg = self._messages.get((chat.id, message_id))
            # A message the fake never saw is what Telegram calls inaccessible: date 0.
            message = (
                self._message_dict(msg)
                if msg is not None
                else {"chat": chat.to_dict(), "message_id": message_id, "date": 0}
            )
            payload = {
                "id": query_id,
                "from": sender.to_dict(),
                "message": message,
                "chat_instance": f"{abs(chat.id) * 7919 % 10**18}",
                "data": data,
            }
            self._emit("callback_query", payload, deliver)
            return query_id

    def push_inline_query(
        self,
        user: FakeUser,
        query: str,
        *,
        chat_type: str | None = "private",
        offset: str = "",
        deliver: bool = True,
    ) -> str:
        """The user typed "@bot <query>" in a chat of ``chat_type``; returns the inline query id."""
        if not self.inline_mode:
            raise ValueError("inline mode is off for this bot: Telegram would not send it inline queries")
        with self._lock:
            self._users.setdefault(user.id, user)
            query_id = f"{5_000_000_000_000_000 + self._next_callback}"
            self._next_callback += 1
            self._inline_queries.add(query_id)
            payload: dict[str, Any] = {"id": query_id, "from": user.to_dict(), "query": query, "offset": offset}
            if chat_type is not None:
                payload["chat_type"] = chat_type
            self._emit("inline_query", payload, deliver)
            return query_id

    def push_my_chat_member(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        *,
        old_status: str = "left",
        new_status: str = "member",
        deliver: bool = True,
    ) -> dict[str, Any]:
        """The bot's membership changed (added to a group, or a private chat blocked = "kicked")."""
        sender = self._sender(chat, user)
        bot = {k: v for k, v in self.bot_user.items() if k in ("id", "is_bot", "first_name", "username")}

        def member(status: str) -> dict[str, Any]:
            if status == "kicked":
                return {"status": status, "user": bot, "until_date": 0}
            return {"status": status, "user": bot}

        with self._lock:
            payload = {
                "chat": chat.to_dict(),
                "from": sender.to_dict(),
                "date": int(time.time()),
                "old_chat_member": member(old_status),
                "new_chat_member": member(new_status),
            }
            return self._emit("my_chat_member", payload, deliver)

    def push_raw(self, update: dict[str, Any], *, deliver: bool = True) -> dict[str, Any]:
        """Queue an arbitrary update; ``update_id`` is assigned if missing. Chats in it become known."""
        with self._lock:
            update = copy.deepcopy(update)
            if "update_id" not in update:
                update = {"update_id": self._take_update_id(), **update}
            self._mark_chats_seen(update)
            query = update.get("callback_query")
            if isinstance(query, dict) and isinstance(query.get("id"), str):
                self._callbacks[query["id"]] = FakeChat(0, "private")  # answerable, like a pushed one
            self._built_updates.append(update)
            if deliver:
                self._enqueue(update)
            return copy.deepcopy(update)

    def build_update(self, update_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """An update with a fresh update_id and not queued: for tests that POST to a webhook.

        Every ``push_*`` also accepts ``deliver=False`` to build a realistic update the same way.
        """
        with self._lock:
            return self._emit(update_type, copy.deepcopy(payload), deliver=False)

    @property
    def last_update(self) -> dict[str, Any]:
        with self._lock:
            if not self._built_updates:
                raise LookupError("no update was built yet")
            return copy.deepcopy(self._built_updates[-1])

    # -- fault injection ----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        retry_after: int | None = None,
        status: int = 429,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` ("*" = any) fail before reaching any logic.

        429 answers "Too Many Requests: retry after N" with parameters.retry_after = N (default 1);
        5xx answers an nginx HTML error page (PTB raises NetworkError); other statuses answer the
        JSON error shape with ``description``.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = _InjectedFault(method, "respond", status, retry_after, description, 0.0)
        with self._lock:
            self._faults.extend([fault] * times)

    def drop_next(
        self,
        method: str = "getUpdates",
        *,
        mode: Literal["close", "hang"] = "close",
        times: int = 1,
        hang_seconds: float = 3.0,
    ) -> None:
        """Simulate a network failure on the next ``times`` calls of ``method``.

        "close": the connection is closed without any response (PTB raises NetworkError).
        "hang": nothing is sent for ``hang_seconds`` (a client read timeout fires first if it is
        shorter: PTB raises TimedOut), then the connection is closed.
        """
        fault = _InjectedFault(method, mode, 0, None, None, hang_seconds)
        with self._lock:
            self._faults.extend([fault] * times)

    # -- inspection ---------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request, in order, including failed and injected-fault ones."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self._calls if call.method == method]

    @property
    def errors(self) -> list[ApiError]:
        """4xx answers caused by the bot's requests (injected faults are in ``injected`` instead)."""
        with self._lock:
            return list(self._errors)

    @property
    def injected(self) -> list[Call]:
        """Calls that were answered by ``fail_next`` / ``drop_next``."""
        with self._lock:
            return list(self._injected)

    def sent_messages(self, chat_id: int | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self._sent if chat_id is None or m.chat_id == chat_id]

    @property
    def edits(self) -> list[Edit]:
        with self._lock:
            return list(self._edits)

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        with self._lock:
            return list(self._callback_answers)

    @property
    def chat_actions(self) -> list[ChatAction]:
        with self._lock:
            return list(self._chat_actions)

    @property
    def reactions(self) -> list[Reaction]:
        with self._lock:
            return list(self._reactions)

    @property
    def drafts(self) -> list[Draft]:
        with self._lock:
            return list(self._drafts)

    @property
    def inline_answers(self) -> list[InlineAnswer]:
        with self._lock:
            return list(self._inline_answers)

    @property
    def deleted_messages(self) -> list[tuple[int, int]]:
        """(chat_id, message_id) of successful deleteMessage calls."""
        with self._lock:
            return list(self._deleted)

    @property
    def commands(self) -> list[dict[str, str]]:
        """Commands for the default scope and no language (what most bots set)."""
        return self.commands_for()

    def commands_for(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        with self._lock:
            return copy.deepcopy(self._commands.get(self._command_key(scope, language_code), []))

    @property
    def webhook(self) -> WebhookState:
        with self._lock:
            return self._webhook

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for getUpdates and not yet confirmed by an offset."""
        with self._lock:
            return copy.deepcopy(self._queue)

    @property
    def dropped_updates(self) -> list[dict[str, Any]]:
        """Updates not queued because of allowed_updates or privacy mode."""
        with self._lock:
            return copy.deepcopy(self._dropped_updates)

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current state of a message, as a Bot API Message dict (after edits), or None."""
        with self._lock:
            msg = self._messages.get((chat_id, message_id))
            return None if msg is None else self._message_dict(msg)

    def clear_log(self) -> None:
        """Forget recorded calls, errors, sends, edits ... (chats, messages and queue stay)."""
        with self._lock:
            for log in (
                self._calls,
                self._errors,
                self._injected,
                self._sent,
                self._edits,
                self._callback_answers,
                self._chat_actions,
                self._deleted,
                self._reactions,
                self._drafts,
                self._inline_answers,
            ):
                log.clear()

    def forget_history(self) -> None:
        """``clear_log`` plus the stored messages, built updates and delivered ids: for long load tests, so that
        the fake's own records do not count as the bot's memory. Chats, users and the queue stay."""
        with self._lock:
            self.clear_log()
            self._messages.clear()
            self._built_updates.clear()
            self._delivered_ids.clear()
            self._dropped_updates.clear()

    # -- waiting (async variants poll, so the bot's event loop keeps running) ------------------------

    async def wait_for(
        self, predicate: Callable[[], _T], *, timeout: float = 5.0, interval: float = 0.01, what: str = ""
    ) -> _T:
        """Poll ``predicate`` until it returns something truthy and return that value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if loop.time() >= deadline:
                raise TimeoutError(self._timeout_message(what or repr(predicate), timeout))
            await asyncio.sleep(interval)

    def wait_for_sync(self, predicate: Callable[[], _T], *, timeout: float = 5.0, what: str = "") -> _T:
        """Blocking variant of :meth:`wait_for` for synchronous tests."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(what or repr(predicate), timeout))
                self._cond.wait(min(remaining, 0.05))

    async def wait_for_messages(
        self, count: int = 1, *, chat_id: int | None = None, timeout: float = 5.0
    ) -> list[SentMessage]:
        """Wait until at least ``count`` messages were sent (to ``chat_id``); returns all of them."""
        return await self.wait_for(
            lambda: sent if len(sent := self.sent_messages(chat_id)) >= count else [],
            timeout=timeout,
            what=f"{count} sent message(s) to chat {chat_id}",
        )

    async def wait_for_call(self, method: str, *, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until ``method`` was called ``count`` times; returns those calls."""
        return await self.wait_for(
            lambda: calls if len(calls := self.calls_to(method)) >= count else [],
            timeout=timeout,
            what=f"{count} call(s) to {method}",
        )

    async def wait_for_updates_delivered(self, *, timeout: float = 5.0) -> None:
        """Wait until every queued update was handed out by getUpdates at least once."""

        def delivered() -> bool:
            with self._lock:
                return all(u["update_id"] in self._delivered_ids for u in self._queue)

        await self.wait_for(delivered, timeout=timeout, what="all queued updates delivered")

    def _timeout_message(self, what: str, timeout: float) -> str:
        with self._lock:
            recent = [c.method for c in self._calls[-15:]]
            errors = [(e.method, e.description) for e in self._errors]
        return f"timed out after {timeout}s waiting for {what}; recent calls: {recent}; errors: {errors}"

    # -- update building internals (lock held) ------------------------------------------------------

    def _sender(self, chat: FakeChat, user: FakeUser | None) -> FakeUser:
        if user is not None:
            return user
        if chat.user is None:
            raise ValueError("user is required outside private chats")
        return chat.user

    def _take_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    def _take_message_id(self, chat_id: int) -> int:
        # One counter per chat shared by the user's and the bot's messages, as in private chats
        # and supergroups on the real Telegram.
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _new_user_message(self, chat: FakeChat, sender: FakeUser, reply_to: int | None) -> _StoredMessage:
        self._chats.setdefault(chat.id, chat)
        self._users.setdefault(sender.id, sender)
        if reply_to is not None and (chat.id, reply_to) not in self._messages:
            raise ValueError(f"reply_to_message_id {reply_to} is not a message in chat {chat.id}")
        msg = _StoredMessage(
            chat=chat,
            message_id=self._take_message_id(chat.id),
            date=int(time.time()),
            sender=sender.to_dict(),
            from_bot=False,
            reply_to=reply_to,
        )
        self._messages[(chat.id, msg.message_id)] = msg
        return msg

    def _new_file(self, data: bytes, path_template: str) -> _StoredFile:
        n = len(self._files) + 1
        stored = _StoredFile(
            file_id=f"FAKE-FILE-{n:06d}-AgACAgIAAxkBAAIB",
            file_unique_id=f"AQAD{n:06d}",
            data=data,
            file_path=path_template.format(n=n),
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _auto_entities(self, text: str) -> list[dict[str, Any]]:
        entities: list[dict[str, Any]] = []
        for match in re.finditer(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?", text):
            entities.append(
                {
                    "type": "bot_command",
                    "offset": utf16_len(text[: match.start()]),
                    "length": utf16_len(match.group()),
                }
            )
        for match in re.finditer(r"(?<![\w@/])@[A-Za-z0-9_]{5,32}\b", text):
            entities.append(
                {"type": "mention", "offset": utf16_len(text[: match.start()]), "length": len(match.group())}
            )
        entities.sort(key=lambda e: e["offset"])
        return entities

    def _emit(self, update_type: str, payload: dict[str, Any], deliver: bool) -> dict[str, Any]:
        update = {"update_id": self._take_update_id(), update_type: payload}
        self._mark_chats_seen(update)
        self._built_updates.append(update)
        if deliver:
            self._enqueue(update)
        return copy.deepcopy(update)

    def _mark_chats_seen(self, update: dict[str, Any]) -> None:
        def walk(node: Any) -> None:
            if isinstance(node, dict):
                chat = node.get("chat")
                if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                    self._seen_chats.add(chat["id"])
                    if chat["id"] not in self._chats and chat.get("type") in ("group", "supergroup"):
                        self._chats[chat["id"]] = FakeChat(chat["id"], chat["type"], chat.get("title"))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(update)

    def _enqueue(self, update: dict[str, Any]) -> None:
        kind = _update_type(update)
        allowed = self._allowed_updates
        permitted = kind in allowed if allowed else kind not in _OPT_IN_UPDATE_TYPES
        if permitted and self.group_privacy and kind in ("message", "edited_message"):
            permitted = self._visible_in_privacy_mode(update[kind])
        if not permitted:
            self._dropped_updates.append(update)
            return
        self._queue.append(update)
        self._cond.notify_all()

    def _visible_in_privacy_mode(self, message: dict[str, Any]) -> bool:
        if message.get("chat", {}).get("type") not in ("group", "supergroup"):
            return True
        text = message.get("text") or message.get("caption") or ""
        if f"@{self._bot_username}".lower() in text.lower():
            return True
        # Commands count only when not addressed to another bot ("/start@other_bot").
        for command in re.findall(r"(?<!\S)/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text):
            if not command or command[1:].lower() == self._bot_username.lower():
                return True
        reply = message.get("reply_to_message")
        return bool(reply and reply.get("from", {}).get("id") == self._bot_id)

    def _message_dict(self, msg: _StoredMessage, *, with_reply: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": copy.deepcopy(msg.sender),
            "chat": msg.chat.to_dict(),
            "date": msg.date,
        }
        if msg.edit_date is not None:
            data["edit_date"] = msg.edit_date
        if with_reply and msg.reply_to is not None:
            target = self._messages.get((msg.chat.id, msg.reply_to))
            if target is not None:
                data["reply_to_message"] = self._message_dict(target, with_reply=False)
        if msg.text is not None:
            data["text"] = msg.text
            if msg.entities:
                data["entities"] = copy.deepcopy(msg.entities)
        data.update(copy.deepcopy(msg.content))
        if msg.reply_markup is not None:
            data["reply_markup"] = copy.deepcopy(msg.reply_markup)
        return data

    # -- request handling ---------------------------------------------------------------------------

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""

        file_match = re.fullmatch(r"/file/bot([^/]*)/(.+)", split.path)
        if file_match is not None:
            self._serve_file(handler, unquote(file_match.group(1)), unquote(file_match.group(2)))
            return
        match = re.fullmatch(r"/bot([^/]*)/([^/]+)", split.path)
        if match is None:
            self._respond_json(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, requested = unquote(match.group(1)), match.group(2)
        method = self._method_names.get(requested.lower(), requested)

        raw: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            raw.update(_parse_body(handler.headers.get("Content-Type", ""), body))
            params = _normalize_params(raw)
            failure: _ApiFailure | None = None
        except _ApiFailure as exc:
            params, failure = raw, exc

        with self._lock:
            self._calls.append(Call(method, params))
            fault = self._take_fault(method)
            if fault is not None:
                self._injected.append(Call(method, params))
            self._cond.notify_all()

        if fault is not None:
            self._apply_fault(handler, fault)
            return
        if token != self.token:
            failure = _ApiFailure(401, "Unauthorized")
        elif method not in self._method_names.values():
            failure = _ApiFailure(404, "Not Found")

        description: str | None = None
        try:
            if failure is not None:
                raise failure
            if method == "getUpdates":
                result: Any = self._get_updates(params, handler.connection)
            else:
                with self._lock:
                    result = self._methods[method](params)
                    if isinstance(result, tuple):
                        result, description = result
        except _ClientGone:
            handler.close_connection = True
            return
        except _ApiFailure as exc:
            payload: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                payload["parameters"] = exc.parameters
            with self._lock:
                self._errors.append(ApiError(method, exc.status, exc.description, params))
                self._cond.notify_all()
            self._respond_json(handler, exc.status, payload)
            return
        response: dict[str, Any] = {"ok": True, "result": result}
        if description is not None:
            response["description"] = description
        self._respond_json(handler, 200, response)

    def _take_fault(self, method: str) -> _InjectedFault | None:
        for index, fault in enumerate(self._faults):
            if fault.method == "*" or fault.method.lower() == method.lower():
                return self._faults.pop(index)
        return None

    def _apply_fault(self, handler: _Handler, fault: _InjectedFault) -> None:
        if fault.kind == "close":
            handler.close_connection = True
            return
        if fault.kind == "hang":
            self._stopping.wait(fault.hang_seconds)
            handler.close_connection = True
            return
        if fault.status >= 500:
            self._respond(handler, fault.status, _error_page(fault.status), "text/html")
            return
        if fault.status == 429:
            description = fault.description or f"Too Many Requests: retry after {fault.retry_after}"
        else:
            description = fault.description or f"{HTTPStatus(fault.status).phrase}"
        payload: dict[str, Any] = {"ok": False, "error_code": fault.status, "description": description}
        if fault.retry_after is not None:
            payload["parameters"] = {"retry_after": fault.retry_after}
        self._respond_json(handler, fault.status, payload)

    def _respond_json(self, handler: _Handler, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._respond(handler, status, body, "application/json")

    def _respond(self, handler: _Handler, status: int, body: bytes, content_type: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client went away; nothing to report to

    def _serve_file(self, handler: _Handler, token: str, path: str) -> None:
        with self._lock:
            stored = self._files_by_path.get(path) if token == self.token else None
        if stored is None:
            self._respond_json(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        self._respond(handler, 200, stored.data, "application/octet-stream")

    # -- getUpdates ---------------------------------------------------------------------------------

    def _get_updates(self, params: dict[str, Any], conn: socket.socket) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        with self._cond:
            if self._webhook.url:
                raise _ApiFailure(409, ERR_CONFLICT_WEBHOOK)
            if allowed is not None:
                if not isinstance(allowed, list):
                    raise _ApiFailure(400, "Bad Request: allowed_updates must be an Array")
                self._allowed_updates = [str(kind) for kind in allowed]
            # A newer getUpdates terminates an older one still waiting, as on the real server.
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            if offset > 0:
                self._queue = [u for u in self._queue if u["update_id"] >= offset]
            elif offset < 0:
                self._queue = self._queue[offset:]
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    if _client_gone(conn):
                        raise _ClientGone
                    raise _ApiFailure(409, ERR_CONFLICT_POLLING)
                ready = self._queue[:limit]
                if ready or self._stopping.is_set():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.1))
                # A client that gave up (task cancelled at shutdown) must not later be answered
                # with a 409 that would pollute ``errors``.
                if _client_gone(conn):
                    raise _ClientGone
            self._delivered_ids.update(u["update_id"] for u in ready)
            self._cond.notify_all()
            return copy.deepcopy(ready)

    # -- method implementations (called with the lock held) -----------------------------------------

    def _chat_for(self, params: dict[str, Any]) -> FakeChat:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiFailure(400, "Bad Request: chat_id is empty")
        chat: FakeChat | None = None
        if isinstance(chat_id, int):
            chat = self._chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            wanted = chat_id[1:].lower()
            chat = next((c for c in self._chats.values() if c.username and c.username.lower() == wanted), None)
        if chat is None or chat.id not in self._seen_chats:
            raise _ApiFailure(400, ERR_CHAT_NOT_FOUND)
        return chat

    def _check_not_blocked(self, chat: FakeChat) -> None:
        if chat.id in self._blocked_chats:
            raise _ApiFailure(403, ERR_BLOCKED)

    def _formatted_text(self, params: dict[str, Any]) -> tuple[str, str | None, ParsedText]:
        raw_text = params.get("text")
        text = "" if raw_text is None else str(raw_text)
        parse_mode = params.get("parse_mode") or None
        entities = params.get("entities")
        if entities:
            if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
                raise _ApiFailure(400, "Bad Request: can't parse entities JSON object")
            parsed = ParsedText(text, [dict(e) for e in entities])
        elif parse_mode is None:
            parsed = ParsedText(text, [])
        elif str(parse_mode).lower() == "html":
            try:
                parsed = parse_html(text, strict_ampersand=self.strict_ampersand)
            except EntityParseError as exc:
                raise _ApiFailure(400, ERR_PARSE_PREFIX + str(exc)) from None
        elif str(parse_mode).lower() in ("markdown", "markdownv2"):
            parsed = ParsedText(text, [])  # not parsed by this fake; see module notes
        else:
            raise _ApiFailure(400, ERR_UNSUPPORTED_PARSE_MODE)
        parsed = _trim(parsed.text, parsed.entities)
        if not parsed.text:
            raise _ApiFailure(400, ERR_TEXT_EMPTY)
        if utf16_len(parsed.text) > MAX_MESSAGE_LENGTH:
            raise _ApiFailure(400, ERR_TEXT_TOO_LONG)
        return text, parse_mode, parsed

    def _reply_markup(self, params: dict[str, Any], *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _ApiFailure(400, ERR_MARKUP_JSON)
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _ApiFailure(400, 'Bad Request: field "inline_keyboard" must be an Array of Arrays')
            if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
                raise _ApiFailure(400, ERR_MARKUP_TOO_LONG)
            for row in rows:
                for button in row:
                    self._check_inline_button(button)
            return {"inline_keyboard": copy.deepcopy(rows)}
        if inline_only:
            raise _ApiFailure(400, "Bad Request: inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _ApiFailure(400, 'Bad Request: field "keyboard" must be an Array of Arrays')
            for row in rows:
                for button in row:
                    label = button.get("text") if isinstance(button, dict) else button
                    if not isinstance(label, str) or not label.strip():
                        raise _ApiFailure(400, "Bad Request: keyboard button text is empty")
            return copy.deepcopy(markup)
        if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
            return copy.deepcopy(markup)
        raise _ApiFailure(400, ERR_MARKUP_JSON)

    def _check_inline_button(self, button: Any) -> None:
        if not isinstance(button, dict):
            raise _ApiFailure(400, "Bad Request: can't parse inline keyboard button: Object expected")
        text = button.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiFailure(400, ERR_TEXT_BUTTONS)
        if not any(key in button for key in _INLINE_BUTTON_ACTIONS):
            raise _ApiFailure(400, ERR_TEXT_BUTTONS)
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                raise _ApiFailure(400, ERR_BUTTON_DATA)
        if "url" in button:
            url = button["url"]
            if not isinstance(url, str) or not re.fullmatch(r"(?i)(https?://[^\s/?#]+\S*|tg://\S+)", url):
                raise _ApiFailure(400, ERR_BUTTON_URL)

    def _m_get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    def _m_send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for(params)
        text, parse_mode, parsed = self._formatted_text(params)
        markup = self._reply_markup(params)
        reply_to = params.get("reply_to_message_id")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        reply_parameters = params.get("reply_parameters")
        if isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
            allow_missing = _as_bool(reply_parameters.get("allow_sending_without_reply", False))
            if reply_parameters.get("chat_id") not in (None, chat.id):
                raise _ApiFailure(400, "Bad Request: cross-chat replies are not supported by the fake")
        if reply_to is not None:
            if not isinstance(reply_to, int):
                raise _ApiFailure(400, ERR_REPLY_NOT_FOUND)
            if (chat.id, reply_to) not in self._messages:
                if not allow_missing:
                    raise _ApiFailure(400, ERR_REPLY_NOT_FOUND)
                reply_to = None
        self._check_not_blocked(chat)
        msg = _StoredMessage(
            chat=chat,
            message_id=self._take_message_id(chat.id),
            date=int(time.time()),
            sender=self._bot_sender(),
            from_bot=True,
            text=parsed.text,
            entities=parsed.entities,
            reply_markup=markup if markup is not None and "inline_keyboard" in markup else None,
            reply_to=reply_to,
        )
        self._messages[(chat.id, msg.message_id)] = msg
        self._sent.append(
            SentMessage(
                chat_id=chat.id,
                message_id=msg.message_id,
                text=text,
                parse_mode=parse_mode,
                reply_markup=markup,
                reply_to_message_id=reply_to,
                plain_text=parsed.text,
                entities=copy.deepcopy(parsed.entities),
                params=params,
            )
        )
        self._cond.notify_all()
        return self._message_dict(msg)

    def _bot_sender(self) -> dict[str, Any]:
        return {
            "id": self._bot_id,
            "is_bot": True,
            "first_name": self._bot_first_name,
            "username": self._bot_username,
        }

    def _message_to_edit(self, params: dict[str, Any]) -> _StoredMessage:
        if params.get("inline_message_id"):
            raise _ApiFailure(400, ERR_EDIT_NOT_FOUND)  # inline messages are not modelled
        if params.get("message_id") is None:
            raise _ApiFailure(400, ERR_MESSAGE_ID_MISSING)
        chat = self._chat_for(params)
        msg = self._messages.get((chat.id, int(params["message_id"])))
        if msg is None:
            raise _ApiFailure(400, ERR_EDIT_NOT_FOUND)
        if not msg.from_bot:
            raise _ApiFailure(400, ERR_CANT_EDIT)
        return msg

    def _m_edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        text, parse_mode, parsed = self._formatted_text(params)
        msg = self._message_to_edit(params)
        if msg.text is None:
            raise _ApiFailure(400, ERR_NO_TEXT_TO_EDIT)
        # Omitting reply_markup removes the inline keyboard, exactly as on Telegram.
        markup = self._reply_markup(params, inline_only=True)
        if (parsed.text, parsed.entities, markup) == (msg.text, msg.entities, msg.reply_markup):
            raise _ApiFailure(400, ERR_NOT_MODIFIED)
        msg.text, msg.entities, msg.reply_markup = parsed.text, parsed.entities, markup
        msg.edit_date = int(time.time())
        self._edits.append(
            Edit(
                "editMessageText",
                msg.chat.id,
                msg.message_id,
                text,
                parse_mode,
                parsed.text,
                copy.deepcopy(parsed.entities),
                copy.deepcopy(markup),
            )
        )
        self._cond.notify_all()
        return self._message_dict(msg)

    def _m_edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._message_to_edit(params)
        markup = self._reply_markup(params, inline_only=True)
        if markup == msg.reply_markup:
            raise _ApiFailure(400, ERR_NOT_MODIFIED)
        msg.reply_markup = markup
        msg.edit_date = int(time.time())
        self._edits.append(
            Edit(
                "editMessageReplyMarkup",
                msg.chat.id,
                msg.message_id,
                None,
                None,
                None,
                [],
                copy.deepcopy(markup),
            )
        )
        self._cond.notify_all()
        return self._message_dict(msg)

    def _m_delete_message(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for(params)
        if params.get("message_id") is None:
            raise _ApiFailure(400, ERR_MESSAGE_ID_MISSING)
        key = (chat.id, int(params["message_id"]))
        if key not in self._messages:
            raise _ApiFailure(400, ERR_DELETE_NOT_FOUND)
        del self._messages[key]
        self._deleted.append(key)
        self._cond.notify_all()
        return True

    def _m_answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callbacks or query_id in self._answered_callbacks:
            raise _ApiFailure(400, ERR_QUERY_INVALID)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _ApiFailure(400, "Bad Request: MESSAGE_TOO_LONG")
        self._answered_callbacks.add(query_id)
        cache_time = params.get("cache_time")
        self._callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                text=None if text is None else str(text),
                show_alert=bool(params.get("show_alert", False)),
                url=params.get("url"),
                cache_time=None if cache_time is None else int(cache_time),
            )
        )
        self._cond.notify_all()
        return True

    def _m_send_chat_action(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for(params)
        action = params.get("action")
        if action not in _CHAT_ACTIONS:
            raise _ApiFailure(400, ERR_WRONG_ACTION)
        self._check_not_blocked(chat)
        self._chat_actions.append(ChatAction(chat.id, str(action)))
        self._cond.notify_all()
        return True

    def _m_set_message_reaction(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for(params)
        if params.get("message_id") is None:
            raise _ApiFailure(400, ERR_MESSAGE_ID_MISSING)
        if (chat.id, int(params["message_id"])) not in self._messages:
            raise _ApiFailure(400, ERR_MESSAGE_NOT_FOUND)
        reaction = params.get("reaction") or []
        if not isinstance(reaction, list):
            raise _ApiFailure(400, "Bad Request: can't parse reaction JSON object")
        if len(reaction) > 1:
            raise _ApiFailure(400, "Bad Request: REACTIONS_TOO_MANY")  # bots may set one reaction
        emoji = []
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") != "emoji" or item.get("emoji") not in _REACTION_EMOJI:
                raise _ApiFailure(400, ERR_REACTION_INVALID)
            emoji.append(str(item["emoji"]))
        self._reactions.append(Reaction(chat.id, int(params["message_id"]), emoji))
        self._cond.notify_all()
        return True

    def _m_send_message_draft(self, params: dict[str, Any]) -> bool:
        chat = self._chat_for(params)
        if chat.type != "private":
            raise _ApiFailure(400, ERR_DRAFT_CHAT)
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise _ApiFailure(400, ERR_DRAFT_ID)
        self._check_not_blocked(chat)
        if params.get("text") in (None, ""):
            parsed, text, parse_mode = ParsedText("", []), "", params.get("parse_mode") or None
        else:
            text, parse_mode, parsed = self._formatted_text(params)
        self._drafts.append(Draft(chat.id, draft_id, text, parse_mode, parsed.text))
        self._cond.notify_all()
        return True

    def _m_answer_inline_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("inline_query_id") or "")
        if query_id not in self._inline_queries or query_id in self._answered_inline:
            raise _ApiFailure(400, ERR_INLINE_QUERY_INVALID)
        results = params.get("results")
        if not isinstance(results, list):
            raise _ApiFailure(400, "Bad Request: can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise _ApiFailure(400, ERR_RESULTS_TOO_MUCH)
        ids: set[str] = set()
        texts: list[ParsedText] = []
        for result in results:
            if not isinstance(result, dict) or result.get("type") != "article":
                raise _ApiFailure(400, ERR_RESULT_INVALID)  # the fake models article results only
            result_id = result.get("id")
            if not isinstance(result_id, str) or not 1 <= len(result_id.encode()) <= 64:
                raise _ApiFailure(400, "Bad Request: RESULT_ID_INVALID")
            if result_id in ids:
                raise _ApiFailure(400, ERR_RESULT_ID_DUPLICATE)
            ids.add(result_id)
            if not isinstance(result.get("title"), str) or not result["title"].strip():
                raise _ApiFailure(400, "Bad Request: RESULT_TITLE_EMPTY")
            content = result.get("input_message_content")
            if not isinstance(content, dict) or "message_text" not in content:
                raise _ApiFailure(400, "Bad Request: MESSAGE_EMPTY")
            _, _, parsed = self._formatted_text({"text": content["message_text"], **content})
            texts.append(parsed)
            if result.get("reply_markup") is not None:
                self._reply_markup({"reply_markup": result["reply_markup"]}, inline_only=True)
        button = params.get("button")
        if button is not None and (not isinstance(button, dict) or not str(button.get("text", "")).strip()):
            raise _ApiFailure(400, "Bad Request: BUTTON_TEXT_INVALID")
        if button is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(button.get("start_parameter") or "")):
            raise _ApiFailure(400, "Bad Request: BUTTON_START_PARAM_INVALID")
        self._answered_inline.add(query_id)
        cache_time = params.get("cache_time")
        self._inline_answers.append(
            InlineAnswer(
                query_id,
                copy.deepcopy(results),
                texts,
                None if cache_time is None else int(cache_time),
                bool(params.get("is_personal", False)),
                copy.deepcopy(button),
            )
        )
        self._cond.notify_all()
        return True

    # commands

    def _command_key(self, scope: Any, language_code: Any) -> tuple[str, str]:
        scope_dict = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope_dict, sort_keys=True), str(language_code or "")

    def _checked_command_key(self, params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope")
        if scope is not None:
            if not isinstance(scope, dict) or scope.get("type") not in _COMMAND_SCOPES:
                raise _ApiFailure(400, "Bad Request: unsupported bot command scope")
            if scope["type"] in ("chat", "chat_administrators", "chat_member"):
                self._chat_for({"chat_id": scope.get("chat_id")})
        language_code = params.get("language_code") or ""
        if language_code and not re.fullmatch(r"[a-z]{2}", str(language_code)):
            raise _ApiFailure(400, "Bad Request: invalid language code specified")
        return self._command_key(scope, language_code)

    def _m_set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiFailure(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise _ApiFailure(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        cleaned: list[dict[str, str]] = []
        for entry in commands:
            if not isinstance(entry, dict):
                raise _ApiFailure(400, "Bad Request: can't parse commands JSON object")
            command, description = entry.get("command"), entry.get("description")
            if not isinstance(command, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _ApiFailure(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _ApiFailure(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        key = self._checked_command_key(params)
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        self._cond.notify_all()
        return True

    def _m_get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return copy.deepcopy(self._commands.get(self._checked_command_key(params), []))

    def _m_delete_my_commands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._checked_command_key(params), None)
        self._cond.notify_all()
        return True

    # webhook

    def _m_set_webhook(self, params: dict[str, Any]) -> tuple[bool, str]:
        url = str(params.get("url") or "")
        drop = bool(params.get("drop_pending_updates", False))
        if not url:
            return self._m_delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _ApiFailure(400, "Bad Request: bad webhook: invalid URL specified")
        if self.strict_webhook_url:
            if parts.scheme != "https":
                raise _ApiFailure(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
            if (parts.port or 443) not in (443, 80, 88, 8443):
                raise _ApiFailure(
                    400, "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
                )
        secret = params.get("secret_token")
        if secret is not None:
            secret = str(secret)
            if len(secret) > 256:
                raise _ApiFailure(400, "Bad Request: secret token is too long")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
                raise _ApiFailure(400, "Bad Request: secret token contains unallowed characters")
        max_connections = params.get("max_connections")
        if max_connections is not None and not 1 <= int(max_connections) <= 100:
            raise _ApiFailure(400, "Bad Request: bad webhook: max_connections must be between 1 and 100")
        allowed = params.get("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise _ApiFailure(400, "Bad Request: allowed_updates must be an Array")
            self._allowed_updates = [str(kind) for kind in allowed]
        if drop:
            self._queue.clear()
        already = self._webhook.url == url
        self._webhook = WebhookState(
            url=url,
            secret_token=secret,
            allowed_updates=None if allowed is None else list(self._allowed_updates or []),
            max_connections=None if max_connections is None else int(max_connections),
            ip_address=params.get("ip_address"),
            drop_pending_updates=drop,
        )
        self._poll_generation += 1  # a webhook terminates a waiting getUpdates
        self._cond.notify_all()
        return True, "Webhook is already set" if already else "Webhook was set"

    def _m_delete_webhook(self, params: dict[str, Any]) -> tuple[bool, str]:
        drop = bool(params.get("drop_pending_updates", False))
        if drop:
            self._queue.clear()
        had = bool(self._webhook.url)
        self._webhook = replace(WebhookState(), drop_pending_updates=drop)
        self._cond.notify_all()
        return True, "Webhook was deleted" if had else "Webhook is already deleted"

    def _m_get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self._webhook.url:
            info["max_connections"] = self._webhook.max_connections or 40
            info["ip_address"] = self._webhook.ip_address or "127.0.0.1"
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        return info

    # misc

    def _m_get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat_for(params)
        info = chat.to_dict()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return info

    def _m_get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _ApiFailure(400, "Bad Request: invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _m_close(self, params: dict[str, Any]) -> bool:
        self.closed = True
        return True

    def _m_log_out(self, params: dict[str, Any]) -> bool:
        self.logged_out = True
        return True


def entity_texts(text: str, entities: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(entity type, covered text) pairs, e.g. ``[("bold", "Sources")]``: handy in assertions."""
    encoded = text.encode("utf-16-le", "surrogatepass")
    pairs: list[tuple[str, str]] = []
    for entity in entities:
        start, stop = entity["offset"] * 2, (entity["offset"] + entity["length"]) * 2
        pairs.append((entity["type"], encoded[start:stop].decode("utf-16-le", "surrogatepass")))
    return pairs
