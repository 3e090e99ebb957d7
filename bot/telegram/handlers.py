"""Telegram update handlers: each turns an update into an engine call and renders the result."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, MessageEntityType, ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.config import Settings
from bot.console import coverage
from bot.engine import Answer, Engine, Outcome
from bot.feedback import FeedbackStore
from bot.telegram.examples import example_questions
from bot.telegram.render import (
    MAX_MESSAGE,
    TAG,
    answer_messages,
    escape,
    passages_messages,
    preview_url,
    sources_messages,
    visible_length,
)
from bot.telegram.state import AnswerStore, BoundedCache, ChatMemory, RateLimiter, SeenUpdates, Stats

log = logging.getLogger(__name__)

HELP = (
    "I answer questions about a collection of news articles, quoting them with sources.\n\n"
    "Just send a question about the articles, or ask “What are the articles about?”. Follow-up questions "
    "such as “When did she say that?” use our recent conversation.\n\n"
    "/sources: the articles I know, with dates and links\n"
    "/new: forget our conversation\n"
    "/help: this message\n\n"
    "In groups, mention me, reply to one of my messages, or use /ask followed by a question."
)
NOT_TEXT = "I can only read text. Send me a question about the articles, or /help to see what I can do."
NOT_ALLOWED = "Sorry, this bot is private. Ask its owner to add you if you need access."
ADMIN_ONLY = "Sorry, that command is for the bot's administrators."
OWN_COMMANDS = frozenset({"start", "help", "sources", "new", "ask", "stats", "reload"})
TYPING_EVERY = 4.5  # seconds; Telegram shows "typing" for about five
# The kinds of update the bot serves; every other kind (channel posts, polls, reactions, business messages,
# payments, member changes, ...) is stopped at the first gate, before any other work.
SERVED_UPDATES = ("message", "edited_message", "callback_query", "inline_query")
# A reply that fails on the network (5xx, a dropped connection, a timeout) is sent again this many times in all,
# after 1, 2, 4 ... seconds: an accepted question is answered, at the price of a rare duplicate after a timeout.
SEND_ATTEMPTS = 4
CONFLICT = (
    "Telegram refused to deliver updates (409 Conflict): another instance is polling with this bot token, or a "
    "webhook is set. Stopping; run only one instance per token."
)
# A question whose answer takes longer than this (seconds) is acknowledged with a reaction, then "typing" is shown.
# A fast answer gets neither: each is a request against Telegram's 30 a second, and at that ceiling a reaction to
# every question halved the answers a bot could send (bench/results/bot-throughput.md).
TYPING_AFTER = 1.0
# The reaction that tells the asker a slow question has arrived.
ACKNOWLEDGE = "👀"
# A written answer being streamed is shown again at most this often (seconds): drafts, or edits in groups.
STREAM_EVERY = 1.0
INLINE_CACHE_SECONDS = 300
INLINE_PRIVATE = "This bot is private"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass
class Services:
    """Everything the handlers share, created once in post_init."""

    settings: Settings
    engine: Engine
    memory: ChatMemory
    limiter: RateLimiter
    feedback: FeedbackStore
    inline_limiter: RateLimiter
    examples: list[str]
    answers: AnswerStore = field(default_factory=AnswerStore)
    votes: BoundedCache[tuple[str, int], bool] = field(default_factory=lambda: BoundedCache(50_000))
    warned: BoundedCache[int, bool] = field(default_factory=lambda: BoundedCache(100_000, ttl=60))
    seen: SeenUpdates = field(default_factory=SeenUpdates)
    stats: Stats = field(default_factory=Stats)
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    found = context.bot_data.get("services")
    if not isinstance(found, Services):
        raise RuntimeError("the bot's services are not loaded yet (post_init did not run)")
    return found


# Gates, run before the handlers (negative groups) ---------------------------------------------------------


async def ignore_unserved(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop every kind of update the bot does not serve, quietly (a membership change is logged)."""
    member = update.my_chat_member
    if member is not None:
        log.info(
            "The bot's status in %s chat %s changed from %s to %s",
            member.chat.type,
            member.chat.id,
            member.old_chat_member.status,
            member.new_chat_member.status,
        )
    if not any(getattr(update, kind) is not None for kind in SERVED_UPDATES):
        raise ApplicationHandlerStop


async def drop_duplicates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop an update Telegram delivered a second time (same update_id)."""
    if not services(context).seen.first_time(update.update_id):
        log.info("Ignoring update %s: already handled", update.update_id)
        raise ApplicationHandlerStop


async def check_access(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Refuse politely, and do no retrieval work, for users and chats outside the allow-lists."""
    settings = services(context).settings
    user, chat = update.effective_user, update.effective_chat
    user_ok = not settings.allowed_user_ids or (user is not None and user.id in settings.allowed_user_ids)
    chat_ok = not settings.allowed_chat_ids or (chat is not None and chat.id in settings.allowed_chat_ids)
    is_admin = user is not None and user.id in settings.admin_user_ids
    if (user_ok and chat_ok) or is_admin:
        return
    if update.callback_query:
        await _answer_query(update, NOT_ALLOWED, show_alert=True)
    elif update.inline_query:
        # No chat is known for an inline query: with a chat allow-list, only admins may use inline mode.
        button = InlineQueryResultsButton(INLINE_PRIVATE, start_parameter="private")
        await update.inline_query.answer([], button=button, cache_time=0, is_personal=True)
    elif update.effective_message and chat is not None and (chat.type == ChatType.PRIVATE or _addressed(update)):
        await update.effective_message.reply_text(NOT_ALLOWED)
    raise ApplicationHandlerStop


# Commands ---------------------------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet, say what the bot knows, and offer example questions as buttons."""
    found = services(context)
    text = (
        f"Hello! I answer questions about {escape(coverage(found.engine))}, quoting them with sources.\n\n"
        "Ask me anything about them, or try one of these:"
    )
    buttons = [[InlineKeyboardButton(q, callback_data=f"ask:{i}")] for i, q in enumerate(found.examples)]
    await _reply(update, text, InlineKeyboardMarkup(buttons) if buttons else None)


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain what the bot does and list the commands."""
    await _reply(update, escape(HELP))


async def sources_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List the indexed articles with dates and links."""
    for message in sources_messages(services(context).engine.sources()):
        await _reply(update, message)


async def new_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Forget this chat's conversation."""
    if update.effective_chat:
        services(context).memory.forget(update.effective_chat.id)
    await _reply(update, "Done: I've forgotten our conversation. Ask me anything.")


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`/ask <question>`: the way to ask in a group."""
    question = " ".join(context.args or [])
    if not question.strip():
        await _reply(update, "Put the question after the command, like: /ask What are the articles about?")
        return
    await answer_question(update, context, question)


async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins only: what is indexed and what has been served."""
    if not await _require_admin(update, context):
        return
    found = services(context)
    manifest = found.engine.index.manifest
    counts = manifest.counts
    votes = await asyncio.to_thread(found.feedback.counts)
    s = found.stats
    lines = [
        "<b>Index</b>",
        f"version {escape(found.engine.version)}, built {escape(manifest.built_at or '?')}",
        f"{counts.get('documents', 0)} articles, {counts.get('chunks', 0)} chunks, "
        f"{counts.get('sentences', 0)} sentences",
        "",
        "<b>Served since start</b>",
        f"{s.questions} questions: {s.answered} answered, {s.abstained} not in the articles, "
        f"{s.rejected} not questions, {s.rate_limited} rate-limited",
        f"feedback: {votes.get('up', 0)} 👍, {votes.get('down', 0)} 👎",
    ]
    await _reply(update, "\n".join(lines))


async def reload_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins only: switch to the newest built index now."""
    if not await _require_admin(update, context):
        return
    found = services(context)
    try:
        changed = await _reload(found)
    except Exception as exc:  # The old index keeps serving; tell the admin why the new one was refused.
        log.error("Reload failed: %s", exc)
        await _reply(update, f"Reload failed, still serving {escape(found.engine.version)}: {escape(str(exc))}")
        return
    state = "now serving" if changed else "already serving"
    await _reply(update, f"Index reloaded: {state} {escape(found.engine.version)}.")


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have."""
    if update.effective_chat and update.effective_chat.type != ChatType.PRIVATE and not _addressed(update):
        return  # In a group, another bot's command.
    await _reply(update, "I don't know that command. /help lists what I can do.")


# Messages ---------------------------------------------------------------------------------------------------


async def private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message in a private chat is a question."""
    message = update.effective_message
    if message and message.text:
        await answer_question(update, context, message.text)


async def edited_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edited question gets a fresh answer, as if it had been asked anew."""
    message = update.edited_message
    if message and message.text and not message.text.startswith("/"):
        await answer_question(update, context, message.text)


async def group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups, answer only when mentioned or replied to; otherwise stay silent."""
    message = update.effective_message
    if message is None or not message.text or not _addressed(update):
        return
    question = _without_mention(message, context.bot.username)
    if not question:
        await _reply(update, "Yes? Ask me a question about the articles, or /help.")
        return
    await answer_question(update, context, question)


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice and files: say what the bot does."""
    await _reply(update, escape(NOT_TEXT))


# Buttons ----------------------------------------------------------------------------------------------------


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Inline buttons: example questions, cited passages, and feedback. Always answers the callback query."""
    query = update.callback_query
    if query is None:
        return
    found = services(context)
    kind, _, rest = (query.data or "").partition(":")
    if kind == "ask" and re.fullmatch(r"[0-9]{1,3}", rest) and int(rest) < len(found.examples):
        await _answer_query(update)
        await answer_question(update, context, found.examples[int(rest)])
        return
    answer_id, _, vote = rest.partition(":")
    answer = found.answers.get(answer_id)
    if answer is None:
        await _answer_query(update, "That answer is too old; please ask again.")
        return
    if kind == "src":
        await _answer_query(update)
        for text in passages_messages(answer):
            await _send(update, context, text)
    elif kind == "vote" and vote in ("up", "down"):
        voter = (answer_id, query.from_user.id)
        if found.votes.get(voter) is not None:
            await _answer_query(update, "You already voted on this answer. Thanks!")
            return
        found.votes.put(voter, True)
        chat_type = update.effective_chat.type if update.effective_chat else None
        await asyncio.to_thread(found.feedback.record, answer, vote, chat_type=chat_type)
        await _answer_query(update, "Thanks for the feedback!")
    else:
        await _answer_query(update)


async def _answer_query(update: Update, text: str | None = None, *, show_alert: bool = False) -> None:
    """Answer a button press; one Telegram no longer accepts an answer for (too old) is let go quietly."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text, show_alert=show_alert)
    except BadRequest as exc:
        if "query is too old" not in exc.message and "query id is invalid" not in exc.message.lower():
            raise
        log.info("A button press was too old to answer (%s)", exc.message)


# Inline mode ------------------------------------------------------------------------------------------------


# Answering --------------------------------------------------------------------------------------------------


async def answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
    """Rate-limit, answer off the event loop while showing "typing", and reply with the rendered answer."""
    found = services(context)
    chat, user = update.effective_chat, update.effective_user
    if chat is None:
        return
    asker = user.id if user else chat.id
    wait = found.limiter.retry_after(asker)
    if wait:
        found.stats.rate_limited += 1
        if found.warned.get(asker) is None:  # Say it once per spell: a flood should not double our own calls.
            found.warned.put(asker, True)
            await _reply(update, f"You're asking faster than I can read. Please wait {max(1, round(wait))} seconds.")
        return
    if found.settings.log_questions:
        log.info("Question in chat %s: %r", chat.id, question)
    conversation = found.memory.for_chat(chat.id)
    if found.engine.update_available() and not found.reload_lock.locked():
        # A newer index was built: load it in the background; this question is answered from the current one.
        context.application.create_task(_reload_quietly(found))
    stream = _Stream(update, context) if found.engine.writer is not None else None
    async with _while_slow(update, context, chat.id):
        if stream is None:
            answer = await asyncio.to_thread(found.engine.answer, question, conversation)
        else:
            async with stream:
                answer = await asyncio.to_thread(found.engine.answer, question, conversation, stream.progress)
    _count(found.stats, answer)
    markup = None
    if answer.outcome is Outcome.ANSWERED:
        answer_id = found.answers.add(answer)
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("📄 Passages", callback_data=f"src:{answer_id}"),
                    InlineKeyboardButton("👍", callback_data=f"vote:{answer_id}:up"),
                    InlineKeyboardButton("👎", callback_data=f"vote:{answer_id}:down"),
                ]
            ]
        )
    messages = answer_messages(answer)
    url = preview_url(answer)
    for number, text in enumerate(messages):
        last = number == len(messages) - 1
        preview = LinkPreviewOptions(is_disabled=False, url=url, prefer_small_media=True) if last and url else None
        if number == 0 and stream is not None and stream.message is not None:
            # In a group the streamed message becomes the answer: only checked text stays in the chat.
            await _edit(stream.message, text, markup if last else None, preview)
        else:
            await _reply(update, text, markup if last else None, preview)


def _count(stats: Stats, answer: Answer) -> None:
    stats.questions += 1
    if answer.outcome is Outcome.ANSWERED:
        stats.answered += 1
    elif answer.outcome is Outcome.ABSTAINED:
        stats.abstained += 1
    else:
        stats.rejected += 1


async def _reload(found: Services) -> bool:
    async with found.reload_lock:
        changed = await asyncio.to_thread(found.engine.reload_if_changed)
        if changed:
            found.examples = await asyncio.to_thread(example_questions, found.engine)
        return changed


async def _reload_quietly(found: Services) -> None:
    """Pick up a newly built index; a bad one is logged and the current one kept."""
    try:
        await _reload(found)
    except Exception as exc:  # Serving the previous index beats failing the question.
        log.error("A new index was published but cannot be used; still serving %s: %s", found.engine.version, exc)


@contextlib.asynccontextmanager
async def _while_slow(update: Update, context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> AsyncIterator[None]:
    """Once the block has run for `TYPING_AFTER` seconds: react 👀 to the question, then show "typing…" until it
    ends."""

    done = asyncio.Event()

    async def keep_typing() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), TYPING_AFTER)  # a fast answer spends no request on either
        if not done.is_set():
            await _acknowledge(update, context)
        while not done.is_set():
            with contextlib.suppress(TelegramError):  # Cosmetic: never fail an answer over it.
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_EVERY)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        # Let a chat action already on its way finish: cancelling it would cut the request in half.
        done.set()
        await task


async def _require_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    if user is not None and user.id in services(context).settings.admin_user_ids:
        return True
    await _reply(update, ADMIN_ONLY)
    return False


def _addressed(update: Update) -> bool:
    """Whether a group message is meant for this bot: a mention, a reply to it, or a command to it."""
    message = update.effective_message
    if message is None or message.get_bot() is None:
        return False
    bot = message.get_bot()
    replied_to = message.reply_to_message.from_user if message.reply_to_message else None
    if replied_to is not None and replied_to.id == bot.id:
        return True
    mention = f"@{bot.username}".lower()
    for entity, text in message.parse_entities([MessageEntityType.MENTION, MessageEntityType.BOT_COMMAND]).items():
        if entity.type == MessageEntityType.MENTION and text.lower() == mention:
            return True
        if entity.type == MessageEntityType.BOT_COMMAND:
            command, _, target = text.lower().lstrip("/").partition("@")
            if f"@{target}" == mention or (not target and entity.offset == 0 and command in OWN_COMMANDS):
                return True
    return False


def _without_mention(message: Message, username: str | None) -> str:
    text = message.text or ""
    if username:
        text = re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split()).strip(" ,:")


async def _reply(
    update: Update,
    text: str,
    markup: InlineKeyboardMarkup | None = None,
    preview: LinkPreviewOptions | None = None,
) -> None:
    """Reply in the update's chat; in groups as a reply to the message (link previews are off by default)."""
    message = update.effective_message
    if message is None:
        return
    try:
        await _with_retries(
            lambda: message.reply_html(
                text,
                reply_markup=markup,
                reply_parameters=_reply_to(message),
                link_preview_options=preview or NO_PREVIEW,
            )
        )
    except BadRequest as exc:
        # Our HTML is escaped by construction; if Telegram still refuses it, send it as plain text.
        log.error("Telegram refused a reply (%s); sending it as plain text", exc.message)
        await _with_retries(
            lambda: message.reply_text(html.unescape(TAG.sub("", text)), reply_markup=markup, do_quote=False)
        )


def _reply_to(message: Message) -> ReplyParameters | None:
    """In groups an answer replies to its question (sent anyway if the question was deleted meanwhile)."""
    if message.chat.type == ChatType.PRIVATE:
        return None
    return ReplyParameters(message.message_id, allow_sending_without_reply=True)


async def _edit(
    message: Message, text: str, markup: InlineKeyboardMarkup | None, preview: LinkPreviewOptions | None
) -> None:
    try:
        await message.edit_text(
            text, parse_mode=ParseMode.HTML, reply_markup=markup, link_preview_options=preview or NO_PREVIEW
        )
    except BadRequest as exc:
        log.error("Telegram refused an edit (%s); sending the answer as plain text", exc.message)
        await message.edit_text(html.unescape(TAG.sub("", text)), reply_markup=markup)


async def _acknowledge(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """React 👀 to the question, so the asker of a slow one knows it arrived (not to a button press)."""
    message = update.message or update.edited_message
    if message is None or update.callback_query is not None:
        return
    with contextlib.suppress(TelegramError):  # Reactions may be off in the chat: cosmetic, never fatal.
        await context.bot.set_message_reaction(message.chat_id, message.message_id, ReactionTypeEmoji(ACKNOWLEDGE))


class _Stream:
    """Shows a written answer while it is written: each sentence that passes the check, never unchecked text.

    In a private chat as a draft (sendMessageDraft), elsewhere as one message that is edited; either at most
    once per `STREAM_EVERY` seconds, waiting out a 429's retry_after. The final answer replaces it.
    `progress` is called from the worker thread that runs the engine.
    """

    def __init__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self._update = update
        self._context = context
        self._loop = asyncio.get_running_loop()
        self._latest = ""
        self._changed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.message: Message | None = None  # the message being edited (outside private chats)
        chat = update.effective_chat
        self._private = chat is not None and chat.type == ChatType.PRIVATE
        question = update.effective_message
        self._draft_id = question.message_id if question is not None and question.message_id else 1

    def progress(self, text: str) -> None:
        self._loop.call_soon_threadsafe(self._set, text)

    def _set(self, text: str) -> None:
        self._latest = text
        self._changed.set()

    async def __aenter__(self) -> _Stream:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._changed.set()
        if self._task is not None:
            await self._task  # an update already on its way finishes: the final answer must come after it

    async def _run(self) -> None:
        shown = ""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._stopped.is_set():
                return
            text = self._latest
            if text and text != shown and visible_length(escape(text)) <= MAX_MESSAGE:
                try:
                    await self._show(text)
                    shown = text
                except RetryAfter as exc:
                    pause = exc.retry_after
                    await self._pause(pause if isinstance(pause, int | float) else pause.total_seconds())
                    self._changed.set()  # show the latest text once allowed
                    continue
                except TelegramError as exc:  # Streaming is a nicety: the final answer still comes.
                    log.warning("Stopped streaming a written answer: %s", exc)
                    return
            await self._pause(STREAM_EVERY)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def _show(self, text: str) -> None:
        chat = self._update.effective_chat
        question = self._update.effective_message
        if chat is None or question is None:
            return
        if self._private:
            await self._context.bot.send_message_draft(chat.id, self._draft_id, escape(text), parse_mode=ParseMode.HTML)
        elif self.message is None:
            self.message = await question.reply_html(escape(text), reply_parameters=_reply_to(question))
        else:
            await self.message.edit_text(escape(text), parse_mode=ParseMode.HTML)


async def _send(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Send to the update's chat (and forum topic), without quoting."""
    message = update.effective_message
    chat = update.effective_chat
    if chat:
        thread = message.message_thread_id if message is not None and message.is_topic_message else None
        await _with_retries(
            lambda: context.bot.send_message(chat.id, text, parse_mode=ParseMode.HTML, message_thread_id=thread)
        )


async def _with_retries(send: Callable[[], Awaitable[object]]) -> None:
    """Send, and send again after a network failure (not after Telegram refused the message itself)."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            await send()
            return
        except BadRequest:
            raise
        except NetworkError as exc:  # 5xx, a dropped connection, a timeout
            if attempt == SEND_ATTEMPTS - 1:
                raise
            delay = 2.0**attempt
            log.warning("Sending to Telegram failed (%s); trying again in %.0f s", exc.message[:100], delay)
            await asyncio.sleep(delay)


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`@bot question` in any chat: the answer, with its sources, offered as an inline result."""
    query = update.inline_query
    if query is None:
        return
    found = services(context)
    question = query.query.strip()
    if not question:
        await query.answer([], cache_time=INLINE_CACHE_SECONDS)
        return
    if found.inline_limiter.retry_after(query.from_user.id):
        await query.answer([], cache_time=0, is_personal=True)
        return
    if found.settings.log_questions:
        log.info("Inline question from user %s: %r", query.from_user.id, question)
    # Extractive: inline queries come as the user types, and a result is wanted within seconds.
    answer = await asyncio.to_thread(found.engine.answer, question, None, None, False)
    _count(found.stats, answer)
    text = answer_messages(answer)[0]
    if len(answer_messages(answer)) > 1:
        text = escape(answer.text[: MAX_MESSAGE - 200].rsplit(" ", 1)[0] + " …")
    url = preview_url(answer)
    content = InputTextMessageContent(
        text,
        parse_mode=ParseMode.HTML,
        link_preview_options=(
            LinkPreviewOptions(is_disabled=False, url=url, prefer_small_media=True) if url else NO_PREVIEW
        ),
    )
    title = "Not in the articles" if answer.abstained else "Answer from the articles"
    description = answer.text if len(answer.text) <= 200 else answer.text[:199] + "…"
    result = InlineQueryResultArticle(
        id=hashlib.sha256(f"{found.engine.version}:{question}".encode()).hexdigest()[:32],
        title=title,
        input_message_content=content,
        description=description,
    )
    await query.answer([result], cache_time=INLINE_CACHE_SECONDS)


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log every error first, then tell the user something went wrong (never a Telegram error text).

    Errors while fetching updates (update None) are the network's or Telegram's: a short warning, and the
    polling goes on, except for a 409 Conflict (another instance) or a revoked token, which stop the bot.
    """
    error = context.error
    if update is None and isinstance(error, Conflict | InvalidToken):
        if not context.bot_data.get("stopping"):
            context.bot_data["stopping"] = CONFLICT if isinstance(error, Conflict) else "Telegram refused the token"
            log.error("%s", context.bot_data["stopping"])
            context.application.stop_running()
        return
    if update is None and isinstance(error, NetworkError | RetryAfter):
        log.warning("Fetching updates from Telegram failed (%s); trying again", error)
        return
    if isinstance(error, Forbidden):
        chat = update.effective_chat if isinstance(update, Update) else None
        log.info("Not answered: the bot may not write to chat %s (%s)", chat.id if chat else "?", error.message)
        return
    log.error("Error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.callback_query:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer("Sorry, something went wrong.")
    elif isinstance(update, Update) and update.effective_message:
        with contextlib.suppress(TelegramError):
            await update.effective_message.reply_text("Sorry, something went wrong on my side. Please try again.")
