"""Telegram faults the operator of a public bot meets, beyond those in test_telegram_ops.py: 5xx pages, dropped
connections and timeouts while sending, a flood limit and timeouts while polling, a getUpdates conflict (another
instance), a revoked token and a network that is down; webhook bodies that are not updates and a graceful stop
in webhook mode. No accepted question is lost, nothing spins, and the token appears in no output."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fake_telegram import ERR_CONFLICT_POLLING, FakeTelegram
from telegram_harness import bot_settings, running_bot
from test_telegram_ops import (
    QUESTION,
    SECRET,
    WEBHOOK_PATH,
    ask,
    cli_process,
    fake_cli,
    free_port,
    post_update,
    spy_on,
    started_bot,
)

from bot.engine import Engine

TIMEOUT = 30


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors and tracebacks logged by the bot or by PTB's application (PTB's HTTP layer logs a 5xx page on its
    own, which is its business)."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith(("bot", "telegram.ext"))
        and (r.exc_info or r.exc_text or "Traceback" in r.getMessage() or r.levelno >= logging.ERROR)
    ]


# Sending ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["502", "dropped"])
async def test_an_answer_is_sent_again_after_a_failure_on_the_way(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch)
            chat = server.private_chat(4001)
            if fault == "502":
                server.fail_next("sendMessage", status=502, times=2)
            else:
                server.drop_next("sendMessage", mode="close")
            message = await ask(server, chat, QUESTION, wait=TIMEOUT)
            await server.wait_for_call("sendMessage", count=len(server.injected) + 1)
    assert "Sources" in message.plain_text
    assert len(server.sent_messages(chat.id)) == 1  # delivered once
    assert spy.questions == [QUESTION]  # answered once: only the sending was repeated
    assert [c.method for c in server.injected] == ["sendMessage"] * (2 if fault == "502" else 1)
    assert any("trying again" in r.getMessage() for r in caplog.records)
    assert tracebacks(caplog) == []
    assert server.errors == []


async def test_polling_survives_a_flood_limit_and_errors_without_tracebacks(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch)
            await server.wait_for_call("getUpdates")
            server.fail_next("getUpdates", retry_after=1)
            server.fail_next("getUpdates", status=500)
            server.drop_next("getUpdates", mode="close")
            await server.wait_for(lambda: len(server.injected) == 3, timeout=TIMEOUT, what="the faults served")
            chats = [server.private_chat(4100 + n) for n in range(3)]
            for chat in chats:
                server.push_text(chat, None, QUESTION)
            await server.wait_for_messages(3, timeout=TIMEOUT)
            await asyncio.sleep(0.2)
    assert Counter(m.chat_id for m in server.sent_messages()) == Counter({c.id: 1 for c in chats})
    assert len(spy.questions) == 3
    assert tracebacks(caplog) == []
    assert server.errors == []


@pytest.mark.slow
async def test_timeouts_while_polling_and_sending_lose_no_question(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with FakeTelegram() as server:
        async with running_bot(bot_settings(server, tmp_path), engine):
            spy = spy_on(engine, monkeypatch)
            await server.wait_for_call("getUpdates")
            # Longer than python-telegram-bot's read timeouts (5 s, and the long-poll timeout on top): TimedOut.
            server.drop_next("getUpdates", mode="hang", hang_seconds=12)
            server.drop_next("sendMessage", mode="hang", hang_seconds=12)
            chat = server.private_chat(4200)
            server.push_text(chat, None, QUESTION)
            await server.wait_for_messages(1, chat_id=chat.id, timeout=60)
            await asyncio.sleep(0.5)
    assert len(server.sent_messages(chat.id)) == 1
    assert spy.questions == [QUESTION]
    assert {c.method for c in server.injected} == {"getUpdates", "sendMessage"}
    assert tracebacks(caplog) == []
    assert server.errors == []


# The CLI: another instance, a revoked token, no network -----------------------------------------------------


@dataclass
class Run:
    returncode: int
    stderr: str
    get_updates: int
    token: str


def _run_cli(root: Path, server: FakeTelegram, case: str, **settings: str) -> Run:
    args, env, workdir = fake_cli(root, server, LOG_LEVEL="DEBUG")
    env.update(settings)
    log = root / "stderr.log"
    with cli_process(args, env, workdir, log) as process:
        if case == "conflict":
            server.fail_next("getUpdates", status=409, description=ERR_CONFLICT_POLLING, times=1000)
        if case == "network-down":
            # It keeps trying to reach Telegram (a bot started before the network is up waits for it)...
            server.wait_for_sync(
                lambda: log.read_text(errors="replace").count("connect_tcp.failed") >= 3 or process.poll() is not None,
                timeout=60,
                what="three attempts to connect",
            )
            process.send_signal(signal.SIGTERM)  # ... until it is told to stop.
        try:
            returncode = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            returncode = -999  # still running: spinning
    return Run(returncode, log.read_text(encoding="utf-8", errors="replace"), len(server.calls_to("getUpdates")), "")


@pytest.fixture(scope="module")
def cli_faults(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """`python -m bot telegram` (fake embedder, LOG_LEVEL=DEBUG) against three broken Telegrams, at once."""
    import concurrent.futures

    cases = ["conflict", "revoked-token", "network-down"]
    servers = {
        "conflict": FakeTelegram(),
        # A server that knows another token: ours gets 401 Unauthorized, as a revoked token does.
        "revoked-token": FakeTelegram(token="654321:ANOTHER-token_abcdefghijklmnopqrstuvwxyz01"),
        "network-down": FakeTelegram(),
    }
    for server in servers.values():
        server.start()
    try:

        def one(case: str) -> Run:
            server = servers[case]
            root = tmp_path_factory.mktemp(case)
            extra: dict[str, str] = {}
            if case == "revoked-token":
                extra["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz012"
            if case == "network-down":
                extra["TELEGRAM_BASE_URL"] = f"http://127.0.0.1:{free_port()}/bot"  # nobody listens there
            run = _run_cli(root, server, case, **extra)
            run.token = extra.get("TELEGRAM_BOT_TOKEN", server.token)
            return run

        with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
            return dict(zip(cases, pool.map(one, cases), strict=True))
    finally:
        for server in servers.values():
            server.stop()


def test_a_getupdates_conflict_is_logged_clearly_and_stops_the_bot(cli_faults: dict[str, Run]) -> None:
    run = cli_faults["conflict"]
    assert run.returncode == 1, run.stderr[-3000:]
    assert "ERROR bot.telegram.handlers: Telegram refused to deliver updates (409 Conflict)" in run.stderr
    assert "Error: Telegram refused to deliver updates (409 Conflict)" in run.stderr
    assert run.get_updates <= 5  # it stopped; it did not spin
    assert run.token not in run.stderr


def test_a_revoked_token_stops_the_bot_and_is_never_printed(cli_faults: dict[str, Run]) -> None:
    run = cli_faults["revoked-token"]
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Error: Telegram refused TELEGRAM_BOT_TOKEN" in run.stderr
    assert " DEBUG " in run.stderr  # logging was at DEBUG: every library's records were written
    assert run.token not in run.stderr and run.token.split(":")[1] not in run.stderr


def test_with_the_network_down_the_bot_waits_without_printing_the_token(cli_faults: dict[str, Run]) -> None:
    run = cli_faults["network-down"]
    assert run.returncode == 0, run.stderr[-3000:]  # stopped by SIGTERM, cleanly
    assert run.stderr.count("connect_tcp.failed") >= 3
    assert " DEBUG " in run.stderr
    assert run.token not in run.stderr and run.token.split(":")[1] not in run.stderr


# Webhook ----------------------------------------------------------------------------------------------------

NOT_UPDATES = [
    b"this is not json",
    b"\xff\xfe\x00binary",
    b"",
    b"[]",
    b'"update"',
    b"{}",
    b'{"update_id": "12"}',
    b'{"update_id": 12, "message": {"text": "no chat, no id, no date"}}',
    b'{"update_id": 13, "callback_query": "nonsense"}',
]


async def test_webhook_refuses_what_is_not_an_update_without_a_traceback(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = f"http://127.0.0.1:{port}/{WEBHOOK_PATH}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    with FakeTelegram() as server:
        async with started_bot(bot_settings(server, tmp_path), engine, webhook_port=port):
            spy = spy_on(engine, monkeypatch)
            async with httpx.AsyncClient(timeout=10) as client:
                statuses = [(await client.post(url, content=body, headers=headers)).status_code for body in NOT_UPDATES]
                future = {"update_id": 900_001, "a_kind_from_the_future": {"something": [1, 2]}}
                future_status = (await client.post(url, json=future, headers=headers)).status_code
            chat = server.private_chat(4300)
            genuine = server.push_text(chat, None, QUESTION, deliver=False)
            assert await post_update(port, genuine, SECRET) == 200
            await server.wait_for_messages(1, chat_id=chat.id, timeout=TIMEOUT)
    assert statuses == [400] * len(NOT_UPDATES)
    assert future_status == 200  # a kind this version does not know is accepted and ignored
    assert spy.questions == [QUESTION]
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    assert sum("Webhook: refused" in r.getMessage() for r in caplog.records) == len(NOT_UPDATES)
    assert server.errors == []


async def test_webhook_graceful_stop_answers_every_accepted_update(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with FakeTelegram() as server:
        async with started_bot(bot_settings(server, tmp_path), engine, webhook_port=port) as application:
            spy = spy_on(engine, monkeypatch, delay=1.0)
            chats = [server.private_chat(4400 + n) for n in range(3)]
            updates = [server.push_text(chat, None, QUESTION, deliver=False) for chat in chats]
            updates.append(server.push_text(chats[0], None, "Who leads the Democratic Party?", deliver=False))
            for update in updates:
                assert await post_update(port, update, SECRET) == 200  # accepted
            assert application.updater is not None
            await application.updater.stop()  # what run_webhook does on SIGTERM
            await application.stop()
            sent_by_stop = server.sent_messages()
    assert Counter(m.chat_id for m in sent_by_stop) == Counter({chats[0].id: 2, chats[1].id: 1, chats[2].id: 1})
    assert len(spy.questions) == 4
    assert server.errors == []
