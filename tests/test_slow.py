"""The slow tests (`make test-slow`; `make test` skips them): SIGKILL at 50 points of `python -m bot build`, and
2,000 questions from 200 chats through the real `Application` and the fake Bot API.

Both run on the fake embedder; they are slow because of their size, not because of a model.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import FakeTelegram
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, write_article
from telegram_harness import bot_settings, running_bot

from bot import store
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.conversation import Conversation
from bot.engine import Answer, Engine, Outcome

pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
BOT_DIR = str(PROJECT_DIR / "bot")

# 1. SIGKILL during builds ------------------------------------------------------------------------------------

KILLS = 50
# `python -m bot build --quiet --full` on the fake embedder. While `build_index` runs, every call of a function
# in bot/ and every call of a C function of os, io or sqlite3 is counted (sys.setprofile); at call number
# KILL_AT the process sends itself SIGKILL. With KILL_AT=0 it only writes the count to COUNT_FILE.
CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import fakes
import bot.build
import bot.service

bot.service.load_embedder = lambda settings: fakes.FakeEmbedder()
KILL_AT = int(os.environ["KILL_AT"])
COUNTED = ("posix", "os", "_io", "io", "sqlite3", "_sqlite3", "shutil")
calls = 0

def profile(frame, event, arg):
    global calls
    if (event == "call" and frame.f_code.co_filename.startswith({bot_dir!r})) or (
        event == "c_call" and getattr(arg, "__module__", None) in COUNTED
    ):
        calls += 1
        if calls == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)

real_build = bot.build.build_index

def counted_build(*args, **kwargs):
    sys.setprofile(profile)
    try:
        return real_build(*args, **kwargs)
    finally:
        sys.setprofile(None)
        with open(os.environ["COUNT_FILE"], "w") as stream:
            stream.write(str(calls))

bot.build.build_index = counted_build
bot.service.build_index = counted_build  # the CLI builds through bot.service.build_store
from bot.cli import cli
cli(["build", "--quiet", "--full"], prog_name="python -m bot")
"""
QUESTIONS = ["Who is Zhanbolat Mamai?", "When did the bridge over the Ural River reopen to traffic?"]
BRIDGE = (
    "The new bridge over the Ural River in Oral reopened to traffic on May 3 after two years of repairs.\n\n"
    "Engineers from Astana replaced the steel girders and widened the roadway to four lanes."
)


def _answers(index_dir: Path) -> list[tuple[Outcome, str, tuple[Any, ...]]]:
    engine = Engine.open(index_dir, FakeEmbedder(), params=UNIT_TEST_PARAMS)
    return [(a.outcome, a.text, a.citations) for a in map(engine.answer, QUESTIONS)]


def _run_child(root: Path, kill_at: int) -> tuple[int, int]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("CORPUS_", "INDEX_", "MAX_", "CHUNK_"))}
    env |= {
        "PYTHONPATH": str(PROJECT_DIR),
        "CORPUS_DIR": str(root / "corpus"),
        "INDEX_DIR": str(root / "index"),
        "KILL_AT": str(kill_at),
        "COUNT_FILE": str(root / "count"),
    }
    (root / "count").unlink(missing_ok=True)
    code = CHILD.format(tests=str(TESTS_DIR), bot_dir=BOT_DIR)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, timeout=300)
    count = int((root / "count").read_text()) if (root / "count").exists() else -1
    return done.returncode, count


def test_sigkill_at_fifty_points_of_a_build_never_loses_the_index(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(PROJECT_DIR / "corpus", corpus)
    index = tmp_path / "index"
    build_index(corpus, index, FakeEmbedder(), ChunkingSettings())

    # How many calls a whole build makes, with the bridge article and without it: the kills are spread over
    # the shorter build, so that every one of them happens whichever corpus that build has.
    returncode, without_bridge = _run_child(tmp_path, kill_at=0)
    assert returncode == 0, returncode
    write_article(corpus, "2021-05-bridge.md", BRIDGE, title="Bridge over the Ural River reopens")
    returncode, with_bridge = _run_child(tmp_path, kill_at=0)
    total = min(without_bridge, with_bridge)
    assert returncode == 0 and total > 10 * KILLS, (returncode, total)
    build_index(corpus, index, FakeEmbedder(), ChunkingSettings())

    points = [max(1, total * (2 * n + 1) // (2 * KILLS)) for n in range(KILLS)]
    before_swap = 0
    for number, kill_at in enumerate(points):
        # Each build has something to change: the bridge article comes and goes.
        if number % 2:
            write_article(corpus, "2021-05-bridge.md", BRIDGE, title="Bridge over the Ural River reopens")
        else:
            (corpus / "2021-05-bridge.md").unlink()
        previous = store.current_version(index)
        expected = _answers(index)

        returncode, _ = _run_child(tmp_path, kill_at)
        assert returncode == -signal.SIGKILL, f"kill {number} at call {kill_at}/{total} did not happen"

        current = store.current_version(index)
        store.open_index(index, FakeEmbedder())  # loads, and its files match its manifest
        if current == previous:
            before_swap += 1
            assert _answers(index) == expected, f"kill {number} at call {kill_at}/{total} changed the answers"
        else:  # Killed after the new version was published: it is complete and serves the new corpus.
            assert _answers(index)[1][0] is (Outcome.ANSWERED if number % 2 else Outcome.ABSTAINED)

        report = build_index(corpus, index, FakeEmbedder(), ChunkingSettings())
        assert report.version == store.current_version(index)
        assert [p.name for p in index.glob(".build-*")] == [], f"staging left after kill {number}"
        assert _answers(index)[1][0] is (Outcome.ANSWERED if number % 2 else Outcome.ABSTAINED)
    assert before_swap >= KILLS // 2  # most kills landed before the swap, where the old index must hold


# 2. 2,000 questions from 200 chats ---------------------------------------------------------------------------

CHATS = 200
PER_CHAT = 10
POOL = [
    "Who is Zhanbolat Mamai?",
    "Who leads the Democratic Party of Kazakhstan?",
    "What did the Ministry of Justice do?",
    "When were the parliamentary elections held?",
    "What is the capital of France?",
    "How long was he detained?",
    "Who is Kassym-Jomart Tokayev?",
    "What happened in Almaty?",
    "Who organised the rally?",
    "What did the police do?",
]


def rss_bytes() -> int:
    gc.collect()
    with Path("/proc/self/statm").open(encoding="ascii") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_two_thousand_questions_from_two_hundred_chats(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each question of the pool gets a different answer (a marker the spy adds), so that a reply names its question.
    real_answer = engine.answer
    asked: dict[int, list[str]] = defaultdict(list)

    def answer(question: str, conversation: Conversation | None = None) -> Answer:
        result = real_answer(question, conversation)
        return Answer(question, result.outcome, f"{result.text} (#{POOL.index(question)})", result.citations)

    with FakeTelegram() as server:
        settings = bot_settings(server, tmp_path, questions_per_minute=1000)
        async with running_bot(settings, engine):
            monkeypatch.setattr(engine, "answer", answer)
            chats = [server.private_chat(600_000 + n) for n in range(CHATS)]
            replies: dict[int, list[int]] = defaultdict(list)
            harvested = 0

            async def harvest(total: int) -> None:
                nonlocal harvested
                await server.wait_for(lambda: len(server.sent_messages()) >= total - harvested, timeout=600)
                for message in server.sent_messages():
                    replies[message.chat_id].append(int(message.plain_text.rsplit("(#", 1)[1].split(")")[0]))
                harvested += len(server.sent_messages())
                server.forget_history()

            def push(chat_number: int, position: int) -> None:
                chat = chats[chat_number]
                question = POOL[(chat_number + 3 * position) % len(POOL)]
                asked[chat.id].append(question)
                server.push_text(chat, None, question)

            # Round one: one question from every chat; a quarter of them send all ten at once.
            bursts = set(range(0, CHATS, 4))
            for n in range(CHATS):
                for position in range(PER_CHAT if n in bursts else 1):
                    push(n, position)
            pushed = sum(len(q) for q in asked.values())
            first = CHATS
            await harvest(first)  # the first 200 answers (at least)
            rss_first = rss_bytes()
            await harvest(pushed)
            for position in range(1, PER_CHAT):
                for n in range(CHATS):
                    if n not in bursts:
                        push(n, position)
                pushed = sum(len(q) for q in asked.values())
                await harvest(pushed)
            await asyncio.sleep(1.0)  # room for a duplicate to arrive
            await harvest(pushed)
            rss_last = rss_bytes()
            assert server.errors == []
    assert pushed == CHATS * PER_CHAT
    for chat in chats:
        expected = [POOL.index(q) for q in asked[chat.id]]
        assert replies[chat.id] == expected, f"chat {chat.id}: answered {replies[chat.id]}, asked {expected}"
    growth = rss_last / rss_first
    assert growth <= 1.10, f"resident memory grew from {rss_first / 1e6:.0f} MB to {rss_last / 1e6:.0f} MB"
