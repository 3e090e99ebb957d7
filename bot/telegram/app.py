"""The Telegram `Application`: handlers wired, resources loaded once in post_init, polling or webhook."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import NoReturn

import tornado.web
from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    ExtBot,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.ext._utils import webhookhandler

from bot.config import Settings
from bot.engine import Engine
from bot.errors import BotError
from bot.feedback import FeedbackStore
from bot.logs import RedactSecrets, install_redaction
from bot.telegram import handlers
from bot.telegram.examples import example_questions
from bot.telegram.state import ChatMemory, ChatOrderedProcessor, RateLimiter

log = logging.getLogger(__name__)
__all__ = ["RedactSecrets", "build_application", "install_redaction", "run"]

COMMANDS = [
    BotCommand("start", "What I know, with example questions"),
    BotCommand("help", "How to ask, and the commands"),
    BotCommand("sources", "The articles, with dates and links"),
    BotCommand("new", "Forget our conversation"),
    BotCommand("ask", "Ask a question (in groups)"),
]
MAX_CONCURRENT_UPDATES = 256
# Only the updates some handler uses: reactions, member changes and the like would just pass the gates
# (any other kind that arrives all the same is stopped by `handlers.ignore_unserved`).
UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
INLINE_QUERIES_PER_QUESTION = 5
# Outgoing calls that hit Telegram's flood limit (429) are retried after the time Telegram asks for.
FLOOD_RETRIES = 5


class CheckedTelegramHandler(webhookhandler.TelegramHandler):
    """python-telegram-bot's webhook endpoint, refusing a body that is not JSON or not an update with a 400 and
    a one-line warning, where the original answers 500 or logs the body with a traceback."""

    async def post(self) -> None:
        self._validate_post()  # content type and secret token, as before (403)
        try:
            data = json.loads(self.request.body.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is one too
            self._refuse("the body is not JSON")
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            self._refuse("the body is not a Telegram update")
        try:
            update = Update.de_json(data, self.bot)
        except Exception as exc:  # Whatever PTB cannot read is refused, never half-processed.
            self._refuse(f"the update cannot be read ({type(exc).__name__})")
        self.set_status(HTTPStatus.OK)
        if isinstance(self.bot, ExtBot):
            self.bot.insert_callback_data(update)
        await self.update_queue.put(update)

    def _refuse(self, why: str) -> NoReturn:
        log.warning("Webhook: refused a request from %s: %s", self.request.remote_ip, why)
        raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST, reason="Not a Telegram update")

    def log_exception(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Refusals are logged by `_refuse`; only unexpected errors get a traceback."""
        if not isinstance(value, tornado.web.HTTPError):
            log.error("Webhook: error while receiving an update", exc_info=value)


def install_webhook_checks() -> None:
    """Make PTB's webhook server use `CheckedTelegramHandler` (it looks the class up when it starts)."""
    webhookhandler.TelegramHandler = CheckedTelegramHandler  # type: ignore[misc]


def file_url(base_url: str) -> str:
    """The file-download base URL that goes with a Bot API base URL ("…/bot" → "…/file/bot")."""
    root = base_url.rstrip("/")
    return f"{root.removesuffix('/bot')}/file/bot" if root.endswith("/bot") else f"{root}/file"


def build_application(settings: Settings, load_engine: Callable[[], Engine]) -> Application:  # type: ignore[type-arg]
    """The bot, ready to run; `load_engine` runs once, off the event loop, when the application starts."""
    token = settings.telegram_token()

    def load() -> tuple[Engine, list[str]]:
        engine = load_engine()
        return engine, example_questions(engine)

    async def post_init(application: Application) -> None:  # type: ignore[type-arg]
        engine, examples = await asyncio.to_thread(load)
        application.bot_data["services"] = handlers.Services(
            settings=settings,
            engine=engine,
            memory=ChatMemory(settings.history_turns, settings.chats_remembered, settings.chat_memory_minutes * 60),
            limiter=RateLimiter(settings.questions_per_minute),
            feedback=FeedbackStore(
                settings.feedback_file,
                max_votes=settings.feedback_max_votes,
                retention_days=settings.feedback_retention_days,
            ),
            # Inline queries arrive as the user types: a looser bound, for the same flood protection.
            inline_limiter=RateLimiter(settings.questions_per_minute * INLINE_QUERIES_PER_QUESTION),
            examples=examples,
        )
        await application.bot.set_my_commands(COMMANDS)
        log.info("Serving index %s as @%s", engine.version, application.bot.username)

    install_webhook_checks()
    application = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .base_file_url(file_url(settings.telegram_base_url))
        .rate_limiter(AIORateLimiter(max_retries=FLOOD_RETRIES))
        # A reply to a message the user has since deleted is still sent (as a plain message). Link previews are
        # off unless a message asks for one (an answer with a single source).
        .defaults(Defaults(allow_sending_without_reply=True, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .concurrent_updates(ChatOrderedProcessor(MAX_CONCURRENT_UPDATES))
        .post_init(post_init)
        .build()
    )
    add_handlers(application)
    return application


def add_handlers(application: Application) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    application.add_handler(TypeHandler(Update, handlers.ignore_unserved), group=-3)
    application.add_handler(TypeHandler(Update, handlers.drop_duplicates), group=-2)
    application.add_handler(TypeHandler(Update, handlers.check_access), group=-1)
    application.add_handlers(
        [
            CommandHandler("start", handlers.start),
            CommandHandler("help", handlers.help_command),
            CommandHandler("sources", handlers.sources_command),
            CommandHandler("new", handlers.new_command),
            CommandHandler("ask", handlers.ask_command),
            CommandHandler("stats", handlers.stats_command),
            CommandHandler("reload", handlers.reload_command),
            MessageHandler(filters.COMMAND, handlers.unknown_command),
            MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.TEXT & private, handlers.edited_text),
            MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & private, handlers.private_text),
            MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & groups, handlers.group_text),
            MessageHandler(
                filters.UpdateType.MESSAGE & private & ~filters.TEXT & ~filters.StatusUpdate.ALL, handlers.not_text
            ),
            CallbackQueryHandler(handlers.button),
            InlineQueryHandler(handlers.inline_query),
        ]
    )
    application.add_error_handler(handlers.error_handler)


def run(settings: Settings, load_engine: Callable[[], Engine]) -> None:
    """Run until SIGINT/SIGTERM; updates already accepted are finished before it stops."""
    webhook = settings.webhook()
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    install_redaction(settings.telegram_token(), webhook[2] if webhook else "", key)
    application = build_application(settings, load_engine)
    if webhook is None:
        log.info("Starting with long polling")
        application.run_polling(allowed_updates=UPDATES, bootstrap_retries=-1)
        _check_stopped_cleanly(application)
        return
    url, path, secret = webhook
    log.info("Starting the webhook on %s:%s", settings.webhook_listen, settings.webhook_port)
    application.run_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=path,
        webhook_url=url,
        secret_token=secret,
        allowed_updates=UPDATES,
        bootstrap_retries=-1,
    )
    _check_stopped_cleanly(application)


def _check_stopped_cleanly(application: Application) -> None:  # type: ignore[type-arg]
    """A bot stopped by an error it cannot get past (see `handlers.error_handler`) exits with that error."""
    reason = application.bot_data.get("stopping")
    if reason:
        raise BotError(str(reason))
