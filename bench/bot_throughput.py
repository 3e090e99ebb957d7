"""Messages per second and latency through the real bot, against the test Bot API server, at Telegram's limits.

The real `Application` (bot/telegram/app.py: its handlers, its `ChatOrderedProcessor`, and python-telegram-bot's
`AIORateLimiter` as the app configures it: 30 requests a second overall for requests that name a chat) long-polls
`FakeTelegram` (tests/fake_telegram.py, the test Bot API server) on 127.0.0.1, through PTB's own HTTP stack, and
answers with the real model (all-MiniLM-L6-v2) on an index of the seed articles. The fake server answers at once
and enforces no limit of its own: the rate limiter in the bot is the only brake, as Telegram's limits would be.

Two phases:

- **bursts**: 200 private chats each send a question at the same moment; when every chat has its answer, the next
  round (`--rounds`, each round other questions). A burst of 200 cannot be answered within 2 s under a ceiling of
  30 requests a second: its answers alone take 200 / 30 = 6.7 s to send, and a question still waiting after a
  second also gets its 👀 reaction.
- **paced**: questions arrive at a steady `--paced-rate` a second for `--paced-seconds`, from the same 200 chats in
  turn: the latency a question gets when the bot runs near the ceiling without a backlog.

Questions are the distinct ones of tests/data/{dev,extra,news}_qa.jsonl (facts, small talk, overviews, questions
the articles do not answer). The question-embedding cache is cleared before each phase, so every question is
embedded; word vectors are warmed beforehand, as in a bot that has been running for a while.

A watcher thread timestamps every request the server receives (polling its log every 2 ms). Latency runs from
pushing a question to the server to the bot's first `sendMessage` in that chat after it. Requests that name a
chat (the answer; the 👀 reaction and "typing" when an answer takes over a second) are what the rate limiter counts;
their rate over a phase is set against the 30 a second ceiling.

    .venv/bin/python bench/bot_throughput.py [--chats 200] [--rounds 3] [--paced-rate 27] [--paced-seconds 20]
        [--without-limiter] [--out bench/results] [--no-plot]

Writes bench/results/bot-throughput.md and bot-throughput.png. With `--without-limiter` the application gets an
`AIORateLimiter` with both limits off (what the bot could send if Telegram let it), written to
bot-throughput-unlimited.md and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test Bot API server and the harness the end-to-end tests use
sys.path.insert(0, str(ROOT / "bench"))

from concurrency import questions  # noqa: E402  the same distinct questions the engine-alone bench asks
from fake_telegram import Call, FakeChat, FakeTelegram  # noqa: E402
from telegram.ext import AIORateLimiter  # noqa: E402
from telegram_harness import bot_settings, running_bot  # noqa: E402

from bot.build import build_index  # noqa: E402
from bot.chunking import ChunkingSettings  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.embedding import SentenceTransformerEmbedder  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.telegram import app  # noqa: E402

IN_MAKE_BENCH = False  # about 2 minutes at its defaults (model, build, 3 bursts, 20 s paced): run it alone
DEFAULT_OUT = ROOT / "bench/results"
CEILING = 30.0  # requests a second that name a chat: AIORateLimiter's overall limit, Telegram's broadcast limit
AIM_SHARE = 0.9
AIM_P99_S = 2.0
FIRST_CHAT = 700_000


@dataclass
class Phase:
    name: str
    pushed: dict[int, float] = field(default_factory=dict)  # question number -> when it was pushed
    answered: dict[int, float] = field(default_factory=dict)  # question number -> when its answer arrived
    started: float = 0.0
    ended: float = 0.0

    @property
    def latencies_s(self) -> list[float]:
        return [self.answered[q] - self.pushed[q] for q in self.pushed if q in self.answered]

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Watcher:
    """Timestamps every request the server receives, from a thread of its own."""

    def __init__(self, server: FakeTelegram) -> None:
        self._server = server
        self.calls: list[tuple[float, Call]] = []
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._collect()

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self._collect()

    def _collect(self) -> None:
        calls = self._server.calls
        now = time.perf_counter()
        self.calls.extend((now, call) for call in calls[self._seen :])
        self._seen = len(calls)

    def chat_calls(self, start: float, end: float) -> list[tuple[float, Call]]:
        """Requests that name a chat (what the rate limiter counts) received between `start` and `end`."""
        return [(t, c) for t, c in list(self.calls) if start <= t <= end and "chat_id" in c.params]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="bursts of one question from every chat")
    # 90% of the ceiling: a fast answer is one request (no reaction, no "typing").
    parser.add_argument("--paced-rate", type=float, default=27.0, help="questions a second in the paced phase")
    parser.add_argument("--paced-seconds", type=float, default=20.0, help="0 skips the paced phase")
    parser.add_argument("--without-limiter", action="store_true", help="both of AIORateLimiter's limits off")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-plot", action="store_true")
    return parser.parse_args(argv)


async def answers_arrive(watcher: Watcher, phase: Phase, asked: dict[int, tuple[int, int]], limit_s: float) -> None:
    """Record, for every question of the phase, when the first `sendMessage` to its chat after it arrived.

    `asked` maps a question number to (chat id, position of the question in that chat's sequence)."""
    deadline = time.perf_counter() + limit_s
    while len(phase.answered) < len(asked):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{phase.name}: {len(asked) - len(phase.answered)} questions unanswered")
        await asyncio.sleep(0.02)
        by_chat: dict[int, list[float]] = {}
        for when, call in list(watcher.calls):
            if call.method == "sendMessage":
                by_chat.setdefault(int(call.params["chat_id"]), []).append(when)
        for question, (chat, position) in asked.items():
            sent = by_chat.get(chat, [])
            if question not in phase.answered and len(sent) > position:
                phase.answered[question] = sent[position]


async def run_phases(
    args: argparse.Namespace, engine: Engine, embedder: SentenceTransformerEmbedder, tmp: Path
) -> tuple[list[Phase], Watcher]:
    pool = questions()
    phases: list[Phase] = []
    with FakeTelegram() as server:
        settings = bot_settings(
            server, tmp, questions_per_minute=1000, index_dir=tmp / "index", corpus_dir=ROOT / "corpus"
        )
        async with running_bot(settings, engine):
            chats: list[FakeChat] = [server.private_chat(FIRST_CHAT + n) for n in range(args.chats)]
            with Watcher(server) as watcher:
                asked_in_chat = dict.fromkeys((chat.id for chat in chats), 0)  # answers each chat is owed so far
                number = 0

                def push(phase: Phase, chat: FakeChat, asked: dict[int, tuple[int, int]]) -> None:
                    nonlocal number
                    asked[number] = (chat.id, asked_in_chat[chat.id])
                    asked_in_chat[chat.id] += 1
                    phase.pushed[number] = time.perf_counter()
                    server.push_text(chat, None, pool[number % len(pool)])
                    number += 1

                for round_number in range(args.rounds):
                    embedder._embed_one.cache_clear()
                    phase = Phase(f"burst {round_number + 1}")
                    asked: dict[int, tuple[int, int]] = {}
                    phase.started = time.perf_counter()
                    for chat in chats:
                        push(phase, chat, asked)
                    await answers_arrive(watcher, phase, asked, limit_s=300)
                    phase.ended = max(phase.answered.values())
                    phases.append(phase)
                    await asyncio.sleep(1.0)  # the rate limiter's bucket refills between rounds
                if args.paced_seconds > 0:
                    embedder._embed_one.cache_clear()
                    phase = Phase(f"paced {args.paced_rate:g}/s")
                    asked = {}
                    phase.started = time.perf_counter()
                    total = round(args.paced_rate * args.paced_seconds)
                    for n in range(total):
                        delay = phase.started + n / args.paced_rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        push(phase, chats[n % len(chats)], asked)
                    await answers_arrive(watcher, phase, asked, limit_s=300)
                    phase.ended = max(phase.answered.values())
                    phases.append(phase)
                errors = server.errors
    if errors:
        raise RuntimeError(f"the server refused {len(errors)} requests, the first: {errors[0]}")
    return phases, watcher


def measure(args: argparse.Namespace, tmp: Path) -> tuple[list[Phase], Watcher, Engine]:
    embedder = SentenceTransformerEmbedder()
    build_index(ROOT / "corpus", tmp / "index", embedder, ChunkingSettings())
    engine = Engine.open(tmp / "index", embedder)
    for question in questions():  # warm-up: word vectors of the synonym check, the model's first calls
        engine.answer(question, Conversation())
    phases, watcher = asyncio.run(run_phases(args, engine, embedder, tmp))
    return phases, watcher, engine


def rate(watcher: Watcher, phase: Phase) -> tuple[float, float, dict[str, int]]:
    """Requests naming a chat per second over the phase, answers per second, and the requests by method."""
    calls = watcher.chat_calls(phase.started, phase.ended)
    seconds = phase.ended - phase.started
    methods: dict[str, int] = {}
    for _, call in calls:
        methods[call.method] = methods.get(call.method, 0) + 1
    return len(calls) / seconds, len(phase.answered) / seconds, methods


def render(phases: list[Phase], watcher: Watcher, args: argparse.Namespace, load: tuple[float, float]) -> str:
    lines = [
        "# Messages per second through the real bot (`bench/bot_throughput.py`)",
        "",
        f"The real `Application` with python-telegram-bot's `AIORateLimiter` "
        f"{'with both its limits off' if args.without_limiter else 'as the app configures it'}, long-polling "
        f"the test Bot API server (tests/fake_telegram.py) on 127.0.0.1; the real model (all-MiniLM-L6-v2) on an "
        f"index of the seed articles; {args.chats} private chats. Machine: {platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}; load average {load[0]:.1f} before, {load[1]:.1f} after. "
        f"Ceiling: {CEILING:.0f} requests naming a chat a second (the 👀 reaction and 'typing' are sent only for "
        f"questions still unanswered after a second). Aim: at least {AIM_SHARE:.0%} of the ceiling with "
        f"p99 latency under {AIM_P99_S:.0f} s.",
        "",
        "| phase | questions | seconds | requests/s (share of ceiling) | answers/s | p50 s | p95 s | p99 s | max s "
        "| requests by method |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for phase in phases:
        requests, answers, methods = rate(watcher, phase)
        latencies = phase.latencies_s
        by_method = ", ".join(f"{name} {count}" for name, count in sorted(methods.items()))
        lines.append(
            f"| {phase.name} | {len(phase.pushed)} | {phase.ended - phase.started:.1f} | {requests:.1f} "
            f"({requests / CEILING:.0%}) | {answers:.1f} | {statistics.median(latencies):.2f} | "
            f"{phase.percentile(0.95):.2f} | {phase.percentile(0.99):.2f} | {max(latencies):.2f} | {by_method} |"
        )
    if args.without_limiter:  # no ceiling to be measured against: what the bot alone could send
        return "\n".join(lines) + "\n"
    bursts = [p for p in phases if p.name.startswith("burst")]
    if bursts:
        sustained = statistics.median(rate(watcher, p)[0] for p in bursts)
        lines += [
            "",
            f"Bursts: {sustained:.1f} requests a second sustained (median over rounds), "
            f"{sustained / CEILING:.0%} of the ceiling: throughput aim "
            f"**{'met' if round(sustained, 1) >= AIM_SHARE * CEILING else 'not met'}**. The p99 of a burst is bound "
            f"below by the ceiling itself: {args.chats} answers take at least "
            f"{(args.chats - CEILING) / CEILING:.1f} s to send (the limiter lets its first {CEILING:.0f} through "
            f"at once, then {CEILING:.0f} a second), more with the reactions of questions kept waiting.",
        ]
    for phase in phases:
        if phase.name.startswith("paced"):
            requests = rate(watcher, phase)[0]
            p99 = phase.percentile(0.99)
            lines += [
                "",
                f"Paced at {args.paced_rate:g} questions a second: {requests:.1f} requests a second "
                f"({requests / CEILING:.0%} of the ceiling), p99 {p99:.2f} s: aim "
                f"**{'met' if round(requests, 1) >= AIM_SHARE * CEILING and p99 < AIM_P99_S else 'not met'}**.",
            ]
    return "\n".join(lines) + "\n"


def plot(phases: list[Phase], watcher: Watcher, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    origin = phases[0].started
    stamps = [t - origin for t, call in watcher.calls if "chat_id" in call.params and t >= origin]
    if stamps:
        seconds = int(max(stamps)) + 1
        counts = [0] * seconds
        for stamp in stamps:
            counts[int(stamp)] += 1
        left.step(range(seconds), counts, where="post", label="requests naming a chat")
    left.axhline(CEILING, color="black", linestyle="--", label=f"ceiling {CEILING:.0f}/s")
    left.axhline(AIM_SHARE * CEILING, color="grey", linestyle=":", label=f"aim {AIM_SHARE:.0%}")
    for phase in phases:
        left.axvspan(phase.started - origin, phase.ended - origin, alpha=0.08)
    left.set_xlabel("seconds")
    left.set_ylabel("requests per second")
    left.set_title("Requests the bot sent, per second")
    left.legend(loc="lower right")
    for phase in phases:
        ordered = sorted(phase.latencies_s)
        right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=phase.name)
    right.axvline(AIM_P99_S, color="black", linestyle="--", label=f"{AIM_P99_S:.0f} s")
    right.axhline(0.99, color="grey", linestyle=":")
    right.set_xlabel("seconds from question to answer")
    right.set_ylabel("share of questions answered")
    right.set_title("Latency (cumulative)")
    right.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def unlimited(max_retries: int) -> AIORateLimiter:
    """The app's limiter with both limits off (0 means off in python-telegram-bot), its retries kept."""
    return AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=max_retries)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    if args.without_limiter:
        setattr(app, "AIORateLimiter", unlimited)  # noqa: B010  (the name the app builds its limiter by)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kazbot-bot-throughput-") as tmp:
        phases, watcher, _ = measure(args, Path(tmp))
    report = render(phases, watcher, args, (before, os.getloadavg()[0]))
    args.out.mkdir(parents=True, exist_ok=True)
    name = "bot-throughput-unlimited" if args.without_limiter else "bot-throughput"
    (args.out / f"{name}.md").write_text(report, encoding="utf-8")
    if not args.no_plot:
        plot(phases, watcher, args.out / f"{name}.png")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
