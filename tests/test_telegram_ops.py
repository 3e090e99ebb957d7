"""Operating the Telegram bot, end to end: the real `Application` and PTB's own HTTP stack against `FakeTelegram`.

Covered: webhook mode (registration, secret token, duplicate deliveries), flood limits (429) and network faults
while polling, 100 chats at once and per-chat ordering, the per-user rate limit, graceful shutdown (in process
and through the real CLI on SIGTERM), hot index swaps (and a corrupt new index), secrets and question texts in
logs, and configuration errors reported by the CLI.

Everything runs on the fake embedder except the one test marked `model`, which starts `python -m bot telegram`
with the real model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_telegram import DEFAULT_TOKEN, FakeChat, FakeTelegram, FakeUser, SentMessage
from fakes import FakeEmbedder, write_article
from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application
from telegram_harness import bot_settings, running_bot

from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.config import Settings
from bot.conversation import Conversation
from bot.engine import Answer, Engine
from bot.errors import ConfigError
from bot.telegram.app import RedactSecrets, build_application, install_redaction

App = Application[Any, Any, Any, Any, Any, Any]

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
PYTHON = sys.executable

QUESTION = "Who is Zhanbolat Mamai?"
SECRET = "webhook_S3cret-token"
WEBHOOK_PATH = "tg"
RATE_LIMITED = "You're asking faster than I can read"
SOMETHING_WRONG = "Sorry, something went wrong"
ABSTAINED = "The articles don't"


# Helpers -----------------------------------------------------------------------------------------------------


class AnswerSpy:
    """Stands in for `engine.answer`: records every question, and may sleep or fail in the worker thread."""

    def __init__(
        self,
        answer: Callable[..., Answer],
        *,
        delay: float | Callable[[str], float] = 0.0,
        fail_on: str | None = None,
        error: str = "engine failure",
    ) -> None:
        self._answer = answer
        self._lock = threading.Lock()
        self._inflight = 0
        self.delay = delay
        self.fail_on = fail_on
        self.error = error
        self.questions: list[str] = []
        self.max_inflight = 0

    def __call__(self, question: str, conversation: Conversation | None = None, *args: Any, **kwargs: Any) -> Answer:
        with self._lock:
            self.questions.append(question)
            self._inflight += 1
            self.max_inflight = max(self.max_inflight, self._inflight)
        try:
            delay = self.delay(question) if callable(self.delay) else self.delay
            if delay:
                time.sleep(delay)  # in the worker thread, like a slow embedding would
            if self.fail_on is not None and self.fail_on in question:
                raise RuntimeError(self.error)
            return self._answer(question, conversation, *args, **kwargs)
        finally:
            with self._lock:
                self._inflight -= 1


def spy_on(engine: Engine, monkeypatch: pytest.MonkeyPatch, **options: Any) -> AnswerSpy:
    """Replace `engine.answer` by a spy; install it after start-up so that /start's examples are not counted."""
    spy = AnswerSpy(engine.answer, **options)
    monkeypatch.setattr(engine, "answer", spy)
    return spy


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def started_bot(settings: Settings, engine: Engine, *, webhook_port: int | None = None) -> AsyncIterator[App]:
    """Like `telegram_harness.running_bot`, with a webhook server instead of polling when `webhook_port` is given,
    and tolerant of a test that stops the application itself (as `run_polling` does on SIGTERM)."""
    application = build_application(settings, lambda: engine)
    async with application:
        assert application.post_init is not None
        await application.post_init(application)
        updater = application.updater
        assert updater is not None
        if webhook_port is None:
            await updater.start_polling(poll_interval=0.0, timeout=1, allowed_updates=Update.ALL_TYPES)
        else:
            await updater.start_webhook(
                listen="127.0.0.1",
                port=webhook_port,
                url_path=WEBHOOK_PATH,
                webhook_url=f"http://127.0.0.1:{webhook_port}/{WEBHOOK_PATH}",
                secret_token=SECRET,
                allowed_updates=Update.ALL_TYPES,
            )
        await application.start()
        try:
            yield application
        finally:
            if updater.running:
                await updater.stop()
            if application.running:
                await application.stop()


async def post_update(port: int, update: dict[str, Any], secret: str | None) -> int:
    """POST an update to the bot's webhook the way Telegram does; returns the HTTP status."""
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"http://127.0.0.1:{port}/{WEBHOOK_PATH}", json=update, headers=headers)
    return response.status_code


async def ask(
    server: FakeTelegram, chat: FakeChat, text: str, user: FakeUser | None = None, wait: float = 10.0
) -> SentMessage:
    """Push a question and return the bot's next message in that chat."""
    before = len(server.sent_messages(chat.id))
    server.push_text(chat, user, text)
    messages = await server.wait_for_messages(before + 1, chat_id=chat.id, timeout=wait)
    return messages[before]


def settings_env_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def cli_env(**overrides: str) -> dict[str, str]:
    """The environment for a CLI subprocess: no bot setting inherited from ours, the project importable."""
    names = settings_env_names()
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    env["PYTHONPATH"] = str(PROJECT_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No bot setting from the environment of whoever runs the tests."""
    for key in list(os.environ):
        if key.upper() in settings_env_names():
            monkeypatch.delenv(key)


# 1. Webhook mode ---------------------------------------------------------------------------------------------


async def test_webhook_registers_url_and_secret_and_answers_an_authentic_post(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with FakeTelegram() as server:
        async with started_bot(bot_settings(server, tmp_path), engine, webhook_port=port):
            spy = spy_on(engine, monkeypatch)
            assert server.webhook.url == f"http://127.0.0.1:{port}/{WEBHOOK_PATH}"
            assert server.webhook.secret_token == SECRET
            chat = server.private_chat(701)
            update = server.push_text(chat, None, QUESTION, deliver=False)
            assert await post_update(port, update, SECRET) == 200
            [message] = await server.wait_for_messages(1, chat_id=chat.id, timeout=10)
        assert "Sources" in message.plain_text and "[1]" in message.plain_text
        assert spy.questions == [QUESTION]
        assert server.calls_to("getUpdates") == []  # webhook mode never polls
        assert server.errors == []


@pytest.mark.parametrize("secret", [None, "wrong_secret", SECRET[:-1]], ids=["missing", "wrong", "truncated"])
async def test_webhook_refuses_a_post_without_the_right_secret(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    port = free_port()
    with FakeTelegram() as server:
        async with started_bot(bot_settings(server, tmp_path), engine, webhook_port=port):
            spy = spy_on(engine, monkeypatch)
            chat = server.private_chat(702)
            forged = server.push_text(chat, None, QUESTION, deliver=False)
            assert await post_update(port, forged, secret) == 403
            # A barrier: an authentic update in the same chat is handled after anything accepted before it.
            genuine = server.push_text(chat, None, "/help", deliver=False)
            assert await post_update(port, genuine, SECRET) == 200
            [message] = await server.wait_for_messages(1, chat_id=chat.id, timeout=10)
            await asyncio.sleep(0.2)
        assert "I answer questions" in message.plain_text
        assert len(server.sent_messages()) == 1
        assert spy.questions == []  # the forged question did no retrieval work
        assert server.errors == []


async def test_webhook_answers_a_redelivered_update_once(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with FakeTelegram() as server:
        async with started_bot(bot_settings(server, tmp_path), engine, webhook_port=port):
            spy = spy_on(engine, monkeypatch)
            chat = server.private_chat(703)
            update = server.push_text(chat, None, QUESTION, deliver=False)
            assert await post_update(port, update, SECRET) == 200
            assert await post_update(port, update, SECRET) == 200  # Telegram retrying the same update_id
            barrier = server.push_text(chat, None, "/help", deliver=False)
            assert await post_update(port, barrier, SECRET) == 200
            await server.wait_for_messages(2, chat_id=chat.id, timeout=10)
            await asyncio.sleep(0.2)
        messages = server.sent_messages(chat.id)
        assert len(messages) == 2, [m.plain_text[:60] for m in messages]
        assert "Sources" in messages[0].plain_text and "I answer questions" in messages[1].plain_text
        assert spy.questions == [QUESTION]
        assert server.errors == []


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        ("https://bot.example.com/tg", None, "WEBHOOK_SECRET .*required"),
        ("https://bot.example.com/tg", "", "WEBHOOK_SECRET .*required"),
        ("https://bot.example.com/tg", "has space", "WEBHOOK_SECRET"),
        ("https://bot.example.com/tg", "semi;colon", "WEBHOOK_SECRET"),
        ("https://bot.example.com/tg", "ünïcode", "WEBHOOK_SECRET"),
        ("https://bot.example.com/tg", "x" * 257, "WEBHOOK_SECRET"),
        ("bot.example.com/tg", SECRET, "WEBHOOK_URL"),
        ("ftp://bot.example.com/tg", SECRET, "WEBHOOK_URL"),
    ],
)
def test_settings_webhook_refuses_an_incomplete_or_invalid_configuration(
    url: str, secret: str | None, message: str
) -> None:
    values: dict[str, Any] = {"webhook_url": url}
    if secret is not None:
        values["webhook_secret"] = secret
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=message) as caught:
        settings.webhook()
    if secret:
        assert secret not in str(caught.value)  # the secret itself is never echoed


@pytest.mark.usefixtures("clean_env")
def test_settings_webhook_accepts_a_complete_configuration() -> None:
    assert Settings(_env_file=None).webhook() is None  # type: ignore[call-arg]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        webhook_url="https://bot.example.com/hooks/tg",
        webhook_secret=SecretStr("A-z_0-9" * 36 + "abcd"),  # 256 characters: the most Telegram allows
    )
    assert settings.webhook() == ("https://bot.example.com/hooks/tg", "hooks/tg", "A-z_0-9" * 36 + "abcd")


# 2. A flood limit in the middle of an answer -------------------------------------------------------------------


async def test_answer_arrives_once_after_a_429(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch)
            chat = server.private_chat(801)
            server.fail_next("sendMessage", retry_after=1)
            started = time.monotonic()
            server.push_text(chat, None, QUESTION)
            await server.wait_for_messages(1, chat_id=chat.id, timeout=15)
            waited = time.monotonic() - started
            await asyncio.sleep(0.3)
        [message] = server.sent_messages(chat.id)
        assert "Sources" in message.plain_text
        assert waited >= 1.0  # AIORateLimiter waited the retry_after Telegram asked for
        assert [call.method for call in server.injected] == ["sendMessage"]
        assert len(server.calls_to("sendMessage")) == 2  # the refused one, then the retry
        assert spy.questions == [QUESTION]  # the retry resent the reply; it did not answer again
        assert server.errors == []


# 3. Network errors while polling -----------------------------------------------------------------------------


async def test_polling_survives_a_dropped_connection_and_a_502(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch)
            await server.wait_for_call("getUpdates", timeout=5)
            server.drop_next("getUpdates", mode="close")
            server.fail_next("getUpdates", status=502)
            await server.wait_for(lambda: len(server.injected) == 2, timeout=10, what="both faults served")
            chat = server.private_chat(802)
            message = await ask(server, chat, QUESTION, wait=15)
        assert "Sources" in message.plain_text
        assert [call.method for call in server.injected] == ["getUpdates", "getUpdates"]
        assert spy.questions == [QUESTION]
        assert server.errors == []


# 4. Many chats at once, and the order within one chat --------------------------------------------------------


async def test_hundred_chats_asking_at_once_each_get_one_answer(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chats_count = 100
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch, delay=0.05)
            chats = [server.private_chat(10_000 + n) for n in range(chats_count)]
            started = time.monotonic()
            for chat in chats:
                server.push_text(chat, None, QUESTION)
            await server.wait_for_messages(chats_count, timeout=30)
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.5)  # room for a duplicate to show up
        per_chat = Counter(message.chat_id for message in server.sent_messages())
        assert per_chat == Counter({chat.id: 1 for chat in chats})
        assert all("Sources" in message.plain_text for message in server.sent_messages())
        assert len(spy.questions) == chats_count
        assert spy.max_inflight > 1  # chats were answered concurrently, not one after another
        assert elapsed < 20
        assert server.errors == []


def slower_when_earlier(question: str) -> float:
    """ "Question 1: ..." takes 0.5 s, "Question 5: ..." 0.1 s; anything else 0.1 s."""
    match = re.match(r"Question (\d+):", question)
    return 0.1 * (6 - int(match.group(1))) if match else 0.1


async def test_one_chat_is_answered_in_order_while_another_is_served(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            # Earlier questions take longer, so that answering them concurrently would reorder the replies.
            spy = spy_on(engine, monkeypatch, delay=slower_when_earlier)
            group = server.group_chat(-100_555, "Order test")
            member = server.user(901, "Asker")
            other = server.private_chat(902)
            questions = [f"/ask Question {n}: who is Zhanbolat Mamai?" for n in range(1, 6)]
            asked = [server.push_text(group, member, text)["message"]["message_id"] for text in questions]
            server.push_text(other, None, QUESTION)
            await server.wait_for_messages(5, chat_id=group.id, timeout=15)
            await server.wait_for_messages(1, chat_id=other.id, timeout=15)
            await asyncio.sleep(0.3)
        in_group = server.sent_messages(group.id)
        assert [m.reply_to_message_id for m in in_group] == asked  # one reply each, in the order asked
        group_questions = [q for q in spy.questions if q.startswith("Question")]
        assert group_questions == [q.removeprefix("/ask ") for q in questions]
        everything = server.sent_messages()
        other_reply = next(i for i, m in enumerate(everything) if m.chat_id == other.id)
        last_group_reply = max(i for i, m in enumerate(everything) if m.chat_id == group.id)
        assert other_reply < last_group_reply  # the other chat did not wait behind the group's queue
        assert server.errors == []


async def test_a_busy_chat_does_not_hold_up_other_chats(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same as 256 slots and a chat with 260 updates queued, at a size a test can afford.
    monkeypatch.setattr("bot.telegram.app.MAX_CONCURRENT_UPDATES", 4)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch, delay=lambda q: 0.5 if q.startswith("Busy") else 0.0)
            busy, other = server.private_chat(951), server.private_chat(952)
            for n in range(1, 8):
                server.push_text(busy, None, f"Busy question {n}: who is Zhanbolat Mamai?")
            await server.wait_for_updates_delivered(timeout=5)
            await asyncio.sleep(0.1)
            started = time.monotonic()
            await ask(server, other, QUESTION, wait=15)
            waited = time.monotonic() - started
            busy_answers_before = len(server.sent_messages(busy.id))
            spy.delay = 0.0  # let the backlog drain quickly
        assert waited < 1.0, f"the other chat waited {waited:.1f} s for {busy_answers_before} busy answers"


# 5. The per-user rate limit ----------------------------------------------------------------------------------


async def test_rate_limited_question_gets_a_polite_reply_and_no_retrieval(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path, questions_per_minute=3), engine):
            spy = spy_on(engine, monkeypatch)
            chat = server.private_chat(1001)
            for n in range(1, 5):
                server.push_text(chat, None, f"{QUESTION} ({n})")
            messages = await server.wait_for_messages(4, chat_id=chat.id, timeout=10)
            await asyncio.sleep(0.3)
            assert len(spy.questions) == 3
            # Someone else is not affected by this user's limit.
            neighbour = await ask(server, server.private_chat(1002), QUESTION)
        assert len(server.sent_messages(chat.id)) == 4
        assert all(RATE_LIMITED not in m.plain_text for m in messages[:3])
        assert messages[3].plain_text.startswith(RATE_LIMITED)
        assert "Please wait" in messages[3].plain_text and "seconds" in messages[3].plain_text
        assert spy.questions == [f"{QUESTION} ({n})" for n in range(1, 4)] + [QUESTION]
        assert "Sources" in neighbour.plain_text
        assert server.errors == []


# 6. Graceful shutdown ----------------------------------------------------------------------------------------


async def test_stopping_finishes_every_accepted_question(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTelegram() as server:
        async with started_bot(bot_settings(server, tmp_path), engine) as application:
            spy = spy_on(engine, monkeypatch, delay=1.5)
            chats = [server.private_chat(1100 + n) for n in range(3)]
            for chat in chats:
                server.push_text(chat, None, QUESTION)
            server.push_text(chats[0], None, "Who leads the Democratic Party?")  # queued behind the first
            await server.wait_for_updates_delivered(timeout=5)
            await server.wait_for(
                lambda: {a.chat_id for a in server.chat_actions if a.action == "typing"} >= {c.id for c in chats},
                timeout=5,
                what="typing in the three chats",
            )
            assert server.sent_messages() == []  # still answering when the stop comes
            assert application.updater is not None
            await application.updater.stop()  # what run_polling does on SIGTERM
            await application.stop()
            sent_by_stop = server.sent_messages()
        assert Counter(m.chat_id for m in sent_by_stop) == Counter({chats[0].id: 2, chats[1].id: 1, chats[2].id: 1})
        assert len(spy.questions) == 4
        assert server.pending_updates == []  # confirmed to Telegram: a restart would not answer them again
        assert server.errors == []


# The real CLI, on the fake embedder: `bot.service.load_embedder` is replaced before the command runs.
CLI_ON_FAKE_EMBEDDER = """
import os, sys, time
sys.path.insert(0, {tests!r})
import fakes
import bot.service
from bot.engine import Engine

bot.service.load_embedder = lambda settings: fakes.FakeEmbedder()
_answer = Engine.answer

def slow_answer(self, question, *args, **kwargs):
    if "[slow]" in question:
        time.sleep(float(os.environ.get("TEST_SLOW_SECONDS", "1")))
    return _answer(self, question, *args, **kwargs)

Engine.answer = slow_answer
from bot.cli import cli
cli(["telegram"], prog_name="python -m bot")
"""


@dataclass
class CliRun:
    returncode: int
    stderr: str
    answers: list[SentMessage]
    token: str
    question_marker: str
    stop_seconds: float


@contextmanager
def cli_process(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A CLI subprocess writing its stderr to `log`; killed (by its own pid) if a test leaves it running."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def copy_corpus(target: Path) -> Path:
    target.mkdir()
    for path in sorted((PROJECT_DIR / "tests" / "data" / "news").glob("*.md")):
        shutil.copy2(path, target / path.name)
    return target


def fake_cli(root: Path, server: FakeTelegram, **settings: str) -> tuple[list[str], dict[str, str], Path]:
    """Command, environment and working directory for `python -m bot telegram` on the fake embedder, with a
    corpus copy and its index (built with the fake embedder) under `root`."""
    corpus = copy_corpus(root / "corpus")
    build_index(corpus, root / "index", FakeEmbedder(), ChunkingSettings())
    workdir = root / "cwd"
    workdir.mkdir()
    env = cli_env(
        TELEGRAM_BOT_TOKEN=server.token,
        TELEGRAM_BASE_URL=server.base_url,
        CORPUS_DIR=str(corpus),
        INDEX_DIR=str(root / "index"),
        FEEDBACK_FILE=str(root / "feedback.sqlite"),
        **settings,
    )
    return [PYTHON, "-c", CLI_ON_FAKE_EMBEDDER.format(tests=str(TESTS_DIR))], env, workdir


@pytest.fixture(scope="module")
def cli_sigterm_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """`python -m bot telegram` (fake embedder, LOG_LEVEL=DEBUG): three slow questions, then SIGTERM."""
    root = tmp_path_factory.mktemp("cli-fake")
    marker = "quokka-7319"
    with FakeTelegram() as server:
        args, env, workdir = fake_cli(root, server, LOG_LEVEL="DEBUG", LOG_QUESTIONS="false", TEST_SLOW_SECONDS="2")
        log = root / "stderr.log"
        with cli_process(args, env, workdir, log) as process:
            server.wait_for_sync(lambda: server.calls_to("getUpdates") or process.poll() is not None, timeout=60)
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            chats = [server.private_chat(1200 + n) for n in range(3)]
            for chat in chats:
                server.push_text(chat, None, f"[slow] {QUESTION} {marker}")
            server.wait_for_sync(
                lambda: {a.chat_id for a in server.chat_actions} >= {c.id for c in chats},
                timeout=20,
                what="typing in the three chats",
            )
            assert server.sent_messages() == [], "the answers should still be in progress at SIGTERM"
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=30)
            stop_seconds = time.monotonic() - stopped
        answers = server.sent_messages()
    return CliRun(
        returncode=returncode,
        stderr=log.read_text(encoding="utf-8", errors="replace"),
        answers=answers,
        token=server.token,
        question_marker=marker,
        stop_seconds=stop_seconds,
    )


def test_cli_on_sigterm_finishes_the_answers_and_exits_cleanly(cli_sigterm_run: CliRun) -> None:
    run = cli_sigterm_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stop_seconds < 30
    assert len(run.answers) == 3 and len({m.chat_id for m in run.answers}) == 3
    assert "Traceback" not in run.stderr
    assert " DEBUG httpcore." in run.stderr  # debug logging was on (PTB's own is raised to INFO: it logs updates)
    assert run.token not in run.stderr


def test_cli_at_debug_level_does_not_log_question_texts(cli_sigterm_run: CliRun) -> None:
    assert cli_sigterm_run.question_marker not in cli_sigterm_run.stderr


def test_cli_in_webhook_mode_registers_the_secret_and_refuses_forged_posts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/{WEBHOOK_PATH}"
    with FakeTelegram() as server:
        args, env, workdir = fake_cli(
            tmp_path, server, WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET, WEBHOOK_LISTEN="127.0.0.1", WEBHOOK_PORT=str(port)
        )
        log = tmp_path / "stderr.log"
        with cli_process(args, env, workdir, log) as process:
            server.wait_for_sync(lambda: server.webhook.url or process.poll() is not None, timeout=60)
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            assert server.webhook.url == url
            assert server.webhook.secret_token == SECRET
            chat = server.private_chat(1250)
            forged = server.push_text(chat, None, "Who leads the Democratic Party?", deliver=False)
            genuine = server.push_text(chat, None, QUESTION, deliver=False)
            with httpx.Client(timeout=10) as client:
                # The webhook server may come up a moment after setWebhook.
                deadline = time.monotonic() + 20
                while True:
                    try:
                        refused = client.post(url, json=forged)
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                wrong = client.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
                accepted = client.post(url, json=genuine, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
            server.wait_for_sync(lambda: server.sent_messages(chat.id), timeout=20, what="the answer")
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=30)
        stderr = log.read_text(encoding="utf-8", errors="replace")
        assert (refused.status_code, wrong.status_code, accepted.status_code) == (403, 403, 200)
        [answer] = server.sent_messages(chat.id)
        assert "Sources" in answer.plain_text
        assert server.calls_to("getUpdates") == []
        assert server.errors == []
    assert returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert server.token not in stderr and SECRET not in stderr


@pytest.mark.slow  # minutes of the real model in a subprocess; `make test-slow`
@pytest.mark.model
def test_real_cli_answers_then_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path / "corpus")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with FakeTelegram() as server:
        env = cli_env(
            TELEGRAM_BOT_TOKEN=server.token,
            TELEGRAM_BASE_URL=server.base_url,
            CORPUS_DIR=str(corpus),
            INDEX_DIR=str(tmp_path / "index"),
            FEEDBACK_FILE=str(tmp_path / "feedback.sqlite"),
        )
        built = subprocess.run(
            [PYTHON, "-m", "bot", "build", "--quiet"], env=env, cwd=workdir, capture_output=True, text=True, timeout=300
        )
        assert built.returncode == 0, built.stderr[-3000:]
        log = tmp_path / "stderr.log"
        with cli_process([PYTHON, "-m", "bot", "telegram"], env, workdir, log) as process:
            server.wait_for_sync(lambda: server.calls_to("getUpdates") or process.poll() is not None, timeout=180)
            assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            chat = server.private_chat(1300)
            server.push_text(chat, None, QUESTION)
            server.wait_for_sync(lambda: server.sent_messages(chat.id), timeout=60, what="the answer")
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=30)
            stop_seconds = time.monotonic() - stopped
        stderr = log.read_text(encoding="utf-8", errors="replace")
        [answer] = server.sent_messages(chat.id)
        assert server.errors == []
    assert returncode == 0, stderr[-3000:]
    assert stop_seconds < 30
    assert "Sources" in answer.plain_text
    assert "Rebuilt the index" not in stderr  # the prebuilt index was served
    assert "Traceback" not in stderr
    assert server.token not in stderr


# 7. Hot index swap -------------------------------------------------------------------------------------------

BEES = (
    "Yerlan Ospanov, the chairman of the Shymkent Beekeepers Union, said honey exports tripled in 2020. "
    "Ospanov told reporters that the union now counts four thousand members across southern Kazakhstan. "
    "The union plans a honey festival in Turkestan in September."
)
CHESS = (
    "Gulnara Temirkhanova, the director of the Pavlodar Chess Academy, said the academy will host a youth "
    "tournament in October. Temirkhanova told reporters that two hundred players from nine regions have "
    "registered. The academy opened a second hall last spring."
)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def rebuild(corpus: Path, index: Path) -> str:
    report = build_index(corpus, index, FakeEmbedder(), ChunkingSettings())
    assert report.version is not None and not report.up_to_date
    return report.version


async def picked_up(server: FakeTelegram, chat: FakeChat, engine: Engine) -> None:
    """Ask once, which starts loading a newly built index in the background, and wait until it is loaded or refused.

    The question that starts the reload is answered from the index in use, so that no chat waits on a reload.
    """
    await ask(server, chat, "Who is Zhanbolat Mamai?")
    await server.wait_for(
        lambda: not engine.update_available(), timeout=10, what="the new index to be loaded or refused"
    )


async def test_a_rebuilt_index_is_served_and_a_corrupt_one_is_refused(
    engine: Engine,
    tmp_path: Path,
    corpus_dir: Path,
    built_index: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy_on(engine, monkeypatch)
            chat = server.private_chat(1400)
            first_version = engine.version
            before = await ask(server, chat, "Who is Yerlan Ospanov?")
            assert before.plain_text.startswith(ABSTAINED)

            write_article(corpus_dir, "2021-03-bees.md", BEES, title="Shymkent beekeepers triple honey exports")
            good_version = await asyncio.to_thread(rebuild, corpus_dir, built_index)
            await picked_up(server, chat, engine)
            after = await ask(server, chat, "Who is Yerlan Ospanov?")
            assert "chairman of the Shymkent Beekeepers Union" in after.plain_text
            assert "Shymkent beekeepers triple honey exports" in after.plain_text
            assert engine.version == good_version != first_version

            write_article(corpus_dir, "2021-04-chess.md", CHESS, title="Pavlodar academy to host youth chess")
            bad_version = await asyncio.to_thread(rebuild, corpus_dir, built_index)
            await asyncio.to_thread(flip_a_byte, built_index / bad_version / "store.sqlite")
            await picked_up(server, chat, engine)
            refused = await ask(server, chat, "Who is Gulnara Temirkhanova?")
            still = await ask(server, chat, "Who is Yerlan Ospanov?")
            assert engine.version == good_version
            assert refused.plain_text.startswith(ABSTAINED)  # the corrupt version's article is not served
            assert "chairman of the Shymkent Beekeepers Union" in still.plain_text

            # A fresh build replaces the corrupt version, and it is picked up again.
            fixed_version = await asyncio.to_thread(rebuild, corpus_dir, built_index)
            await picked_up(server, chat, engine)
            fixed = await ask(server, chat, "Who is Gulnara Temirkhanova?")
            assert engine.version == fixed_version
            assert "director of the Pavlodar Chess Academy" in fixed.plain_text
        # Five asked here and three that set off the reloads, each answered (example questions for /start are
        # recomputed on the engine after a reload, so the spy sees more calls than that).
        assert len(server.sent_messages(chat_id=chat.id)) == 8
        assert not any(SOMETHING_WRONG in m.plain_text for m in server.sent_messages())
        assert server.errors == []
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR and "cannot be used" in r.getMessage()]
    assert (refusals and bad_version in refusals[0].getMessage()) or "altered" in refusals[0].getMessage()


# 8. Secrets and question texts in logs -----------------------------------------------------------------------

TOKEN = DEFAULT_TOKEN


def _record(msg: str, args: tuple[Any, ...] = (), error: str | None = None) -> logging.LogRecord:
    exc_info = None
    if error is not None:
        try:
            raise RuntimeError(error)
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("telegram.test", logging.ERROR, __file__, 1, msg, args, exc_info)


def _rendered(record: logging.LogRecord) -> str:
    return logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)


@pytest.mark.parametrize(
    ("msg", "args", "error"),
    [
        (f"HTTP Request: POST http://127.0.0.1/bot{TOKEN}/getMe", (), None),
        ("HTTP Request: %s %s", ("POST", f"http://127.0.0.1/bot{TOKEN}/getMe"), None),
        ("Set Bot API URL: %s", (f"http://127.0.0.1/bot{TOKEN}",), f"failed at /bot{TOKEN}/getMe"),
        ("Error while handling an update", (), f"cannot reach http://127.0.0.1/bot{TOKEN}/sendMessage"),
        ("Two secrets: %s and %s", (TOKEN, SECRET), None),
    ],
    ids=["message", "args", "args-and-exception", "exception", "both-secrets"],
)
def test_redact_secrets_takes_the_token_out_of_messages_and_tracebacks(
    msg: str, args: tuple[Any, ...], error: str | None
) -> None:
    record = _record(msg, args, error)
    assert RedactSecrets(TOKEN, SECRET, "").filter(record) is True  # redacts, never drops
    text = _rendered(record)
    assert TOKEN not in text and SECRET not in text
    assert "[REDACTED]" in text
    if error is not None:
        assert "RuntimeError" in text  # the traceback is kept, only redacted


def test_redact_secrets_leaves_other_records_alone() -> None:
    record = _record("Serving index %s as @%s", ("v-1", "kazbot"), "unrelated failure")
    RedactSecrets(TOKEN).filter(record)
    assert record.getMessage() == "Serving index v-1 as @kazbot"
    assert record.exc_info is not None  # formatted as usual by the handler


def test_redact_secrets_with_format_args_and_a_secret_only_in_the_traceback() -> None:
    record = _record("%s Failed run number %s of %s. Aborting.", ("Polling Updates:", 3, 3), f"GET /bot{TOKEN}/x")
    RedactSecrets(TOKEN).filter(record)
    text = _rendered(record)
    assert "Polling Updates: Failed run number 3 of 3. Aborting." in text
    assert TOKEN not in text


@contextmanager
def redaction_installed(*secrets: str) -> Iterator[None]:
    """`install_redaction` on the root handlers (caplog's among them), removed again afterwards."""
    install_redaction(*secrets)
    try:
        yield
    finally:
        for handler in logging.getLogger().handlers:
            for found in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
                handler.removeFilter(found)


def capture_everything(caplog: pytest.LogCaptureFixture, level: int) -> None:
    caplog.set_level(level)
    for name in ("httpx", "httpcore", "telegram", "telegram.ext", "bot", "tornado", "asyncio"):
        caplog.set_level(level, logger=name)


async def test_token_never_reaches_logs_or_users(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capture_everything(caplog, logging.DEBUG)
    with FakeTelegram() as server, redaction_installed(server.token):
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(
                engine, monkeypatch, fail_on="explode", error=f"cannot reach {server.base_url}{server.token}/getMe"
            )
            chat = server.private_chat(1500)
            answered = await ask(server, chat, QUESTION)
            failed = await ask(server, chat, "Please explode now?")
            server.fail_next("getUpdates", status=502)
            server.drop_next("getUpdates", mode="close")
            server.fail_next("sendMessage", retry_after=1)
            after_faults = await ask(server, chat, "Who leads the Democratic Party?", wait=15)
        sent = server.sent_messages()
        assert server.errors == []
    assert "Sources" in answered.plain_text
    assert failed.plain_text.startswith(SOMETHING_WRONG)
    assert after_faults.plain_text
    assert len(spy.questions) == 3
    assert all(server.token not in m.text for m in sent)
    lines = [_rendered(record) for record in caplog.records]
    assert not [line for line in lines if server.token in line]
    assert server.token not in caplog.text
    assert any("[REDACTED]" in line and "HTTP Request" in line for line in lines)  # httpx logged the URLs
    assert any("cannot reach" in line and "[REDACTED]" in line for line in lines)  # the traceback, redacted
    captured = capsys.readouterr()
    assert server.token not in captured.err and server.token not in captured.out
    assert "Logging error" not in captured.err


@pytest.mark.parametrize("log_questions", [False, True])
async def test_question_text_is_logged_only_when_allowed(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture, log_questions: bool
) -> None:
    capture_everything(caplog, logging.INFO)  # the default LOG_LEVEL
    marker = "Who is Zhanbolat Mamai, the wombat-4471?"
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path, log_questions=log_questions), engine):
            await ask(server, server.private_chat(1600), marker)
    assert any(record.name == "httpx" for record in caplog.records)  # INFO records were captured at all
    assert ("wombat-4471" in caplog.text) is log_questions


# 9. Configuration errors through the CLI ---------------------------------------------------------------------

MALFORMED_TOKEN = "12345-not-a-token-KVXQ9"
CONFIG_CASES: dict[str, tuple[dict[str, str], str]] = {
    "missing-token": ({}, "TELEGRAM_BOT_TOKEN"),
    "blank-token": ({"TELEGRAM_BOT_TOKEN": "   "}, "TELEGRAM_BOT_TOKEN"),
    "malformed-token": ({"TELEGRAM_BOT_TOKEN": MALFORMED_TOKEN}, "TELEGRAM_BOT_TOKEN"),
    "webhook-without-secret": (
        {"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://bot.example.com/tg"},
        "WEBHOOK_SECRET",
    ),
    "webhook-bad-secret": (
        {"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://bot.example.com/tg", "WEBHOOK_SECRET": "bad secret!"},
        "WEBHOOK_SECRET",
    ),
    "bad-port": ({"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_PORT": "99999"}, "WEBHOOK_PORT"),
}


@dataclass
class ConfigRun:
    returncode: int
    stderr: str
    workdir: Path
    seconds: float


@pytest.fixture(scope="module")
def config_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ConfigRun]:
    """`python -m bot telegram` once per case, all at the same time, each in an empty working directory."""
    started: dict[str, tuple[subprocess.Popen[str], Path, float]] = {}
    for name, (overrides, _) in CONFIG_CASES.items():
        workdir = tmp_path_factory.mktemp(f"config-{name}")
        process = subprocess.Popen(
            [PYTHON, "-m", "bot", "telegram"],
            env=cli_env(**overrides),
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (process, workdir, time.monotonic())
    runs: dict[str, ConfigRun] = {}
    for name, (process, workdir, began) in started.items():
        try:
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        runs[name] = ConfigRun(process.returncode, stderr, workdir, time.monotonic() - began)
    return runs


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_cli_reports_a_configuration_error_cleanly(config_runs: dict[str, ConfigRun], case: str) -> None:
    run = config_runs[case]
    overrides, named = CONFIG_CASES[case]
    assert run.returncode == 1, run.stderr
    assert named in run.stderr
    assert run.stderr.startswith("Error:") or "\nError:" in run.stderr
    assert "Traceback" not in run.stderr
    for key in ("TELEGRAM_BOT_TOKEN", "WEBHOOK_SECRET"):
        value = overrides.get(key, "").strip()
        if value:
            assert value not in run.stderr  # neither the token nor the secret is echoed
    assert not (run.workdir / "index").exists()  # refused before any model or index was touched
    assert not (run.workdir / "data").exists()
