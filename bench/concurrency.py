"""Answers per second when many askers ask at once, with and without micro-batching of question embeddings.

The engine alone (no Telegram, no rate limiter) on an index of the seed articles answers the first 64 distinct
questions of tests/data/*_qa.jsonl (all 249 with `--questions 0`) once per level, from N threads at once (each
thread takes the next question as soon as it has answered one), for N from 1 to 64. Two embedders are
measured side by side in one run: one encoding each question alone behind the lock (`question_batch=1`, as
before issue 7), and one letting questions that arrive together share an `encode` call (`QuestionBatcher`).
The question-embedding cache is cleared before each level, so every question is embedded; word vectors for the
synonym check are warmed once beforehand, as in a bot that has been running for a while.

    .venv/bin/python bench/concurrency.py [--levels 1 4 16 64] [--questions 64] [--out bench/results] [--no-plot]
    .venv/bin/python bench/concurrency.py --levels 1 2 4 8 16 32 64 --questions 0   # every question, 7 levels

Writes bench/results/concurrency.md and concurrency.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.conversation import Conversation
from bot.embedding import MAX_QUESTION_BATCH, SentenceTransformerEmbedder
from bot.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
DEFAULT_OUT = ROOT / "bench/results"
QUESTION_FILES = ("dev_qa.jsonl", "extra_qa.jsonl", "news_qa.jsonl")
AIM = 150.0  # answers per second, the engine alone, on the 2-core machine
# Four levels of 64 questions keep `make bench` within its budget (about a minute here); every level with all 249
# questions took 5 minutes under another worker's load.
DEFAULT_LEVELS = [1, 4, 16, 64]
DEFAULT_QUESTIONS = 64
MODES = {"one question per encode (before)": 1, f"micro-batched (up to {MAX_QUESTION_BATCH})": MAX_QUESTION_BATCH}


@dataclass(frozen=True)
class Level:
    mode: str
    askers: int
    answers: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.answers / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, nargs="+", default=DEFAULT_LEVELS)
    parser.add_argument(
        "--questions",
        type=int,
        default=DEFAULT_QUESTIONS,
        help=f"ask only the first N distinct questions (default {DEFAULT_QUESTIONS}; 0: all of them)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-plot", action="store_true")
    return parser.parse_args(argv)


def questions() -> list[str]:
    found: dict[str, None] = {}
    for name in QUESTION_FILES:
        for line in (ROOT / "tests/data" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = json.loads(line).get("q")
                if isinstance(text, str) and text.strip():
                    found[text] = None
    return list(found)


def run_level(engine: Engine, embedder: SentenceTransformerEmbedder, asked: list[str], askers: int) -> Level:
    embedder._embed_one.cache_clear()
    pending = iter(asked)
    lock = threading.Lock()
    latencies: list[float] = []

    def asker() -> None:
        while True:
            with lock:
                question = next(pending, None)
            if question is None:
                return
            started = time.perf_counter()
            engine.answer(question, Conversation())
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(askers) as pool:
        for future in [pool.submit(asker) for _ in range(askers)]:
            future.result()
    return Level("", askers, len(latencies), time.perf_counter() - started, latencies)


def measure(levels: list[int], tmp: Path, limit: int) -> list[Level]:
    index_dir = tmp / "index"
    asked = questions()[:limit] if limit else questions()
    engines = {}
    for mode, batch in MODES.items():
        embedder = SentenceTransformerEmbedder(question_batch=batch)
        build_index(ROOT / "corpus", index_dir, embedder, ChunkingSettings())  # the second finds it up to date
        engine = Engine.open(index_dir, embedder)
        for question in asked:  # warm-up: word vectors of the synonym check, the model's first calls
            engine.answer(question, Conversation())
        engines[mode] = (engine, embedder)
    results = []
    for askers in levels:  # both modes at each level, one after the other, so they see the same machine
        for mode, (engine, embedder) in engines.items():
            level = run_level(engine, embedder, asked, askers)
            results.append(Level(mode, askers, level.answers, level.seconds, level.latencies_ms))
    return results


def render(results: list[Level], questions_asked: int) -> str:
    lines = [
        "# Answers per second against concurrent askers (`bench/concurrency.py`)",
        "",
        f"The engine alone (no Telegram), index of the seed articles, {questions_asked} distinct questions per level. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end. Aim: {AIM:.0f} answers a second.",
        "",
        "| askers at once | embedding | answers/s | median ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for level in results:
        lines.append(
            f"| {level.askers} | {level.mode} | {level.per_second:.0f} | "
            f"{statistics.median(level.latencies_ms):.0f} | {level.percentile(0.95):.0f} | "
            f"{level.percentile(0.99):.0f} |"
        )
    best = max(results, key=lambda level: level.per_second)
    lines += [
        "",
        f"Best: {best.per_second:.0f} answers/s ({best.mode}, {best.askers} askers): aim "
        f"**{'met' if best.per_second >= AIM else 'not met'}**.",
    ]
    return "\n".join(lines) + "\n"


def plot(results: list[Level], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in MODES:
        rows = [level for level in results if level.mode == mode]
        left.plot([r.askers for r in rows], [r.per_second for r in rows], marker="o", label=mode)
        right.plot([r.askers for r in rows], [r.percentile(0.99) for r in rows], marker="o", label=mode)
    left.axhline(AIM, color="black", linestyle="--", label=f"aim {AIM:.0f}/s")
    for axis, label in ((left, "answers per second"), (right, "p99 latency, ms")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("askers at once")
        axis.set_ylabel(label)
        axis.legend()
    left.set_title("Throughput, engine alone")
    right.set_title("p99 latency")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kazbot-concurrency-") as tmp:
        results = measure(args.levels, Path(tmp), args.questions)
    report = render(results, args.questions or len(questions()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concurrency.md").write_text(report, encoding="utf-8")
    if not args.no_plot:
        plot(results, args.out / "concurrency.png")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
