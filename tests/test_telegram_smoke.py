"""The Telegram bot answers a question end to end: the harness the other Telegram tests build on."""

from __future__ import annotations

from pathlib import Path

from fake_telegram import FakeTelegram
from telegram_harness import bot_settings, running_bot

from bot.engine import Engine


async def test_private_question_gets_a_cited_html_answer(engine: Engine, tmp_path: Path) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            chat = server.private_chat(42)
            server.push_text(chat, None, "Who is Zhanbolat Mamai?")
            [message] = await server.wait_for_messages(1, chat_id=chat.id, timeout=10)
        assert message.parse_mode == "HTML"
        assert "[1]" in message.plain_text and "Sources" in message.plain_text
        assert message.reply_markup is not None
        assert server.reactions == []  # a fast answer is its own acknowledgement (👀 and "typing" only if slow)
        assert server.errors == []
