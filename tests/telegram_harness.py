"""Run the real Telegram `Application` against `FakeTelegram`, the way `run_polling` does, for end-to-end tests.

`running_bot(server, engine, **settings)` yields the started application: initialize → post_init → polling →
start, and on exit the same shutdown `run_polling` performs (updater stopped, accepted updates finished).
The engine comes ready-made (usually on the fake embedder), so no test loads a real model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fake_telegram import DEFAULT_TOKEN, FakeTelegram
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.config import Settings
from bot.engine import Engine
from bot.telegram.app import build_application


def bot_settings(server: FakeTelegram, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a bot talking to `server`, with its feedback file under `tmp_path`."""
    values: dict[str, Any] = {
        "telegram_bot_token": server.token,
        "telegram_base_url": server.base_url,
        "feedback_file": tmp_path / "feedback.sqlite",
        "index_dir": tmp_path / "index",
        "corpus_dir": tmp_path / "corpus",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def forward_polling_errors(application: Application) -> Callable[[TelegramError], None]:  # type: ignore[type-arg]
    """What `run_polling` does with errors while fetching updates: hand them to the error handlers."""

    def forward(error: TelegramError) -> None:
        application.create_task(application.process_error(error=error, update=None))

    return forward


@asynccontextmanager
async def running_bot(settings: Settings, engine: Engine, *, poll: bool = True) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """The application, started with long polling (or, with `poll=False`, started without fetching updates)."""
    application = build_application(settings, lambda: engine)
    async with application:
        assert application.post_init is not None
        await application.post_init(application)
        if poll and application.updater is not None:
            await application.updater.start_polling(
                poll_interval=0.0,
                timeout=1,
                allowed_updates=Update.ALL_TYPES,
                error_callback=forward_polling_errors(application),
            )
        await application.start()
        try:
            yield application
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            await application.stop()


__all__ = ["DEFAULT_TOKEN", "bot_settings", "forward_polling_errors", "running_bot"]
