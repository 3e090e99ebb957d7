"""Latency of answering a question after start-up, beside the time to embed the question alone (the floor).

Both are measured in one run, interleaved question by question, so that both see the same machine noise:

    .venv/bin/python bench/latency.py [--repeats N] [--out DIR] [--questions FILE ...] [--no-plot]

The embedder caches single-text embeddings (an LRU cache on `SentenceTransformerEmbedder._embed_one`); the
cache is cleared before every timed call, outside the timed region, so each measurement embeds its question
from scratch and both measurements embed exactly the same text. See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.embedding import Embedder, Vectors
    from bot.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUESTIONS = (ROOT / "tests/data/dev_qa.jsonl", ROOT / "tests/data/extra_qa.jsonl")
DEFAULT_OUT = ROOT / "bench/out"
RESULTS = ROOT / "bench/results"  # the committed summary (latency.md, latency.png)
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
AIM = 1.5  # the end-to-end median should be within this factor of the floor's median
WARMUP_QUESTIONS = 5
# 4 passes (192 samples of each; the p99 is the second-slowest) keep `make bench` within its budget: 5 took
# 106-127 s and 20 took 3.4 minutes under another worker's load. `--repeats 20` for a steadier tail.
DEFAULT_REPEATS = 4
FLOOR = "floor"
ANSWER = "answer"


@dataclass(frozen=True)
class QuestionItem:
    qid: str
    text: str


@dataclass(frozen=True)
class Sample:
    repeat: int
    position: int  # index of the question in the list
    qid: str
    measure: str  # FLOOR or ANSWER
    first: bool  # whether this measurement ran first in its pair
    ns: int
    outcome: str  # the answer's outcome (also recorded on the floor sample of the same question)
    embed_calls: int  # calls to the embedder during the measurement
    texts_embedded: int  # texts passed to those calls
    embed_ns: int  # time spent inside those calls

    @property
    def ms(self) -> float:
        return self.ns / 1e6

    @property
    def outside_embedding_ms(self) -> float:
        return (self.ns - self.embed_ns) / 1e6


class CountingEmbedder:
    """Passes calls to the real embedder and notes how many there were, of how many texts, taking how long.

    The engine is opened on this, so the benchmark can tell what inside an answer is embedding and what is
    not, without reaching into the engine. Its own cost is two clock reads per call (well under 1 µs).
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.fingerprint = inner.fingerprint
        self.dimension = inner.dimension
        self.calls: list[tuple[int, int]] = []  # (texts, ns) per call since the last reset

    def embed(self, texts: list[str]) -> Vectors:
        start = time.perf_counter_ns()
        vectors = self.inner.embed(texts)
        self.calls.append((len(texts), time.perf_counter_ns() - start))
        return vectors

    def reset(self) -> None:
        self.calls.clear()


@dataclass(frozen=True)
class OneOffCosts:
    import_ms: float
    model_ms: float
    open_engine_ms: float
    engine_open_ms: float
    rebuilt: str | None


@dataclass(frozen=True)
class Row:
    label: str
    values: list[float]
    floor_median: float | None  # median of the floor on the same questions, for the ratio column


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"passes over the question list (default {DEFAULT_REPEATS})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where latency.csv and latency.png go")
    parser.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        default=list(DEFAULT_QUESTIONS),
        help="JSONL files with a 'q' (and optional 'id') per line (default: the dev and extra QA sets)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write latency.png")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def read_questions(paths: Sequence[Path]) -> list[QuestionItem]:
    items: list[QuestionItem] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            items.append(QuestionItem(str(record.get("id", f"{path.stem}:{number}")), str(record["q"])))
    if not items:
        raise SystemExit("no questions found in " + ", ".join(str(p) for p in paths))
    return items


def elapsed_ms(start_ns: int) -> float:
    return (time.perf_counter_ns() - start_ns) / 1e6


def load(settings_dir: Path) -> tuple[Settings, Embedder, CountingEmbedder, Engine, OneOffCosts]:
    """Import the bot, load the model and open the engine, timing each step once.

    Returns the model's embedder, and the counting wrapper around it that the engine was opened with.
    """
    os.chdir(settings_dir)  # Settings() resolves corpus/ and index/ (and .env) relative to the project
    start = time.perf_counter_ns()
    from bot.config import Settings
    from bot.embedding import SentenceTransformerEmbedder
    from bot.engine import Engine
    from bot.service import load_embedder, open_engine

    import_ms = elapsed_ms(start)
    settings = Settings()
    start = time.perf_counter_ns()
    embedder = load_embedder(settings)  # hashes the weights; the model itself loads lazily, so load it here
    if isinstance(embedder, SentenceTransformerEmbedder):
        embedder.load()  # imports torch and sentence-transformers, reads the weights
    model_ms = elapsed_ms(start)
    counting = CountingEmbedder(embedder)
    rebuilt: list[str] = []
    start = time.perf_counter_ns()
    engine = open_engine(settings, counting, on_rebuild=lambda reason, _report: rebuilt.append(reason))
    open_engine_ms = elapsed_ms(start)
    start = time.perf_counter_ns()
    engine = Engine.open(settings.index_dir, counting, max_question_chars=settings.max_question_chars)
    engine_open_ms = elapsed_ms(start)
    costs = OneOffCosts(import_ms, model_ms, open_engine_ms, engine_open_ms, rebuilt[0] if rebuilt else None)
    return settings, embedder, counting, engine, costs


def cache_clearer(embedder: Embedder) -> Callable[[], None]:
    """What empties the embedder's single-question cache; a no-op for an embedder without one."""
    from bot.embedding import SentenceTransformerEmbedder

    if isinstance(embedder, SentenceTransformerEmbedder):
        return embedder._embed_one.cache_clear
    return lambda: None


@dataclass(frozen=True)
class Timing:
    ns: int
    outcome: str
    embed_calls: int
    texts_embedded: int
    embed_ns: int


def measure(
    embedder: Embedder,
    counting: CountingEmbedder,
    engine: Engine,
    questions: Sequence[QuestionItem],
    repeats: int,
) -> list[Sample]:
    """Time the floor and the answer of every question, `repeats` times, interleaved, order alternating."""
    from bot.conversation import Conversation

    clear = cache_clearer(embedder)

    def floor(text: str) -> Timing:
        clear()  # outside the timed region: every floor embeds its question from scratch
        start = time.perf_counter_ns()
        embedder.embed([text])
        ns = time.perf_counter_ns() - start
        return Timing(ns, "", 1, 1, ns)

    def answer(text: str) -> Timing:
        clear()  # ... and so does every answer
        counting.reset()
        conversation = Conversation()
        start = time.perf_counter_ns()
        result = engine.answer(text, conversation)
        ns = time.perf_counter_ns() - start
        calls = counting.calls
        return Timing(ns, result.outcome.value, len(calls), sum(n for n, _ in calls), sum(t for _, t in calls))

    for item in questions[:WARMUP_QUESTIONS]:
        floor(item.text)
        answer(item.text)

    samples: list[Sample] = []
    step = 0
    total = repeats * len(questions)
    interactive = sys.stderr.isatty()
    for repeat in range(repeats):
        for position, item in enumerate(questions):
            floor_first = step % 2 == 0
            if floor_first:
                a = floor(item.text)
                b = answer(item.text)
            else:
                b = answer(item.text)
                a = floor(item.text)
            outcome = b.outcome
            for measure_name, timing, first in ((FLOOR, a, floor_first), (ANSWER, b, not floor_first)):
                samples.append(
                    Sample(
                        repeat,
                        position,
                        item.qid,
                        measure_name,
                        first,
                        timing.ns,
                        outcome,
                        timing.embed_calls,
                        timing.texts_embedded,
                        timing.embed_ns,
                    )
                )
            step += 1
        progress = f"  measured {step}/{total} pairs"
        print(f"\r{progress}" if interactive else progress, end="" if interactive else "\n", file=sys.stderr)
    if interactive:
        print(file=sys.stderr)
    return samples


def p95(values: Sequence[float]) -> float:
    return float(np.percentile(values, 95))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def table_rows(samples: Sequence[Sample]) -> list[Row]:
    """The floor, the answer, and the answer broken down by outcome and by what it embedded.

    A breakdown row's ratio is against the floor of the same questions in the same repeats.
    """
    floors = {(s.repeat, s.position): s.ms for s in samples if s.measure == FLOOR}
    answers = [s for s in samples if s.measure == ANSWER]

    def row(label: str, group: list[Sample]) -> Row:
        questions = len({s.position for s in group})
        return Row(
            f"  {label} ({questions} q)",
            [s.ms for s in group],
            median([floors[s.repeat, s.position] for s in group]),
        )

    rows = [
        Row("embed question (floor)", list(floors.values()), None),
        Row("answer end to end", [s.ms for s in answers], median(list(floors.values()))),
    ]
    for outcome in sorted({s.outcome for s in answers}):
        rows.append(row(outcome, [s for s in answers if s.outcome == outcome]))
    single = [s for s in answers if s.embed_calls <= 1]
    extra = [s for s in answers if s.embed_calls > 1]
    if single:
        rows.append(row("1 embed call: the question", single))
    if extra:
        texts = median([float(s.texts_embedded) for s in extra])
        rows.append(row(f">1 embed call: ~{texts:.0f} texts", extra))
    rows.append(Row("  answer outside embed calls", [s.outside_embedding_ms for s in answers], None))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    header = f"{'':38} {'n':>5} {'median ms':>10} {'p95 ms':>9} {'mean ms':>9} {'× floor':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{median(row.values) / row.floor_median:7.2f}×" if row.floor_median else f"{'':8}"
        lines.append(
            f"{row.label:38} {len(row.values):5d} {median(row.values):10.2f} {p95(row.values):9.2f} "
            f"{statistics.fmean(row.values):9.2f} {ratio}".rstrip()
        )
    return "\n".join(lines)


def machine_info() -> list[str]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"date:          {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine:       {platform.platform()}, {cpu}",
        f"cpus:          {os.cpu_count()} (usable {usable}), torch threads {torch.get_num_threads()}",
        f"python:        {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}",
    ]


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def corpus_info(engine: Engine) -> str:
    counts = engine.index.manifest.counts
    articles = counts.get("articles", counts.get("documents", len(engine.index.data.documents)))
    chunks = counts.get("chunks", len(engine.index.data.chunks))
    sentences = counts.get("sentences", len(engine.index.data.sentences))
    return (
        f"corpus:        {articles} articles, {chunks} chunks, {sentences} sentences "
        f"(index {engine.version}, {engine.index.manifest.faiss_index or '?'})"
    )


def write_csv(path: Path, samples: Sequence[Sample]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            [
                "repeat",
                "position",
                "question_id",
                "measure",
                "ran_first",
                "ns",
                "ms",
                "outcome",
                "embed_calls",
                "texts_embedded",
                "embed_ns",
            ]
        )
        for s in samples:
            writer.writerow(
                [
                    s.repeat,
                    s.position,
                    s.qid,
                    s.measure,
                    int(s.first),
                    s.ns,
                    f"{s.ms:.4f}",
                    s.outcome,
                    s.embed_calls,
                    s.texts_embedded,
                    s.embed_ns,
                ]
            )


def plot(path: Path, samples: Sequence[Sample], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = np.array([s.ms for s in samples if s.measure == FLOOR])
    answer = np.array([s.ms for s in samples if s.measure == ANSWER])
    outcomes = sorted({s.outcome for s in samples})
    colours = {FLOOR: "tab:blue", ANSWER: "tab:orange"}

    figure, (left, right) = plt.subplots(1, 2, figsize=(15, 5.6), gridspec_kw={"width_ratios": [4, 3]})
    # Log scale: the distributions are narrow peaks with long tails (machine noise, extra embed calls).
    low = max(0.1, float(min(floor.min(), answer.min())) * 0.9)
    high = float(max(floor.max(), answer.max())) * 1.1
    bins = np.geomspace(low, high, 70)
    for name, values, label in (
        (FLOOR, floor, "embed question alone (floor)"),
        (ANSWER, answer, "answer end to end"),
    ):
        mid = float(np.median(values))
        tail = float(np.percentile(values, 95))
        left.hist(
            values,
            bins=bins,
            alpha=0.55,
            color=colours[name],
            label=f"{label}\nmedian {mid:.1f} ms, p95 {tail:.1f} ms",
        )
        left.axvline(mid, color=colours[name], linewidth=2)
        left.axvline(tail, color=colours[name], linewidth=1.2, linestyle="--")
    left.axvline(AIM * float(np.median(floor)), color="grey", linewidth=1, linestyle=":")
    left.set_xscale("log")
    left.set_xlabel(f"milliseconds, log scale (solid: median, dashed: p95, dotted: {AIM}× floor median)")
    left.set_ylabel("samples")
    left.legend(loc="upper right")
    left.set_title("Distributions")

    answers = [s for s in samples if s.measure == ANSWER]
    breakdown = [(f"answer:\n{outcome}", [s for s in answers if s.outcome == outcome]) for outcome in outcomes]
    breakdown += [
        ("answer:\n1 embed\ncall", [s for s in answers if s.embed_calls <= 1]),
        ("answer:\n>1 embed\ncalls", [s for s in answers if s.embed_calls > 1]),
    ]
    breakdown = [(label, group) for label, group in breakdown if group]
    groups = [floor, answer] + [np.array([s.ms for s in group]) for _, group in breakdown]
    labels = ["floor", "answer"] + [label for label, _ in breakdown]
    right.boxplot(groups, tick_labels=labels, showfliers=True, whis=(5, 95), flierprops={"markersize": 2})
    for x, values in enumerate(groups, start=1):
        mid = float(np.median(values))
        right.annotate(f"{mid:.1f}", xy=(x, mid), xytext=(18, 0), textcoords="offset points", va="center", fontsize=8)
    right.axhline(AIM * float(np.median(floor)), color="grey", linewidth=1, linestyle=":")
    right.set_xlim(0.5, len(groups) + 0.9)
    right.set_yscale("log")
    right.set_ylabel("milliseconds, log scale")
    right.set_title("Box plots (whiskers p5–p95; numbers: median ms)")

    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    question_files = [path.resolve() for path in args.questions]
    questions = read_questions(question_files)

    print("Loading …", file=sys.stderr)
    load_before = load_average()
    _settings, embedder, counting, engine, costs = load(ROOT)
    print(
        f"Measuring {len(questions)} questions × {args.repeats} repeats, floor and answer interleaved …",
        file=sys.stderr,
    )
    samples = measure(embedder, counting, engine, questions, args.repeats)
    load_after = load_average()

    rows = table_rows(samples)
    floor_values, answer_values = rows[0].values, rows[1].values
    median_ratio = median(answer_values) / median(floor_values)
    p95_ratio = p95(answer_values) / p95(floor_values)
    met = median_ratio <= AIM
    per_repeat = [
        median([s.ms for s in samples if s.repeat == r and s.measure == ANSWER])
        / median([s.ms for s in samples if s.repeat == r and s.measure == FLOOR])
        for r in range(args.repeats)
    ]

    print()
    print("\n".join(machine_info()))
    print(f"load average:  {load_before} before, {load_after} after (1/5/15 min)")
    print(corpus_info(engine))
    print(
        f"questions:     {len(questions)} from {', '.join(p.name for p in question_files)}, "
        f"{args.repeats} repeats, embedder cache cleared before every timed call"
    )
    print()
    print("One-off costs (once each):")
    rebuilt = f", rebuilt: {costs.rebuilt}" if costs.rebuilt else ""
    for label, ms in (
        ("import bot (faiss, bm25s, pydantic, …)", costs.import_ms),
        ("load model (imports torch, sentence-transformers)", costs.model_ms),
        (f"open_engine (freshness check + open{rebuilt})", costs.open_engine_ms),
        ("Engine.open on the existing index", costs.engine_open_ms),
    ):
        print(f"  {label:52} {ms:9.1f} ms")
    print()
    print(format_table(rows))
    print()
    print(f"median ratio answer/floor: {median_ratio:.2f}×   p95 ratio: {p95_ratio:.2f}×")
    print(
        f"median ratio per repeat: {min(per_repeat):.2f}× to {max(per_repeat):.2f}× (median {median(per_repeat):.2f}×)"
    )
    print(f"aim (median within {AIM}× of the floor): {'met' if met else 'NOT met'}")

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "latency.csv", samples)
    print(f"\nwrote {out / 'latency.csv'}", end="")
    if not args.no_plot:
        title = (
            f"Answer vs. embed-only latency — {len(questions)} questions × {args.repeats} repeats; "
            f"median ratio {median_ratio:.2f}×, p95 ratio {p95_ratio:.2f}× (aim ≤ {AIM}×: "
            f"{'met' if met else 'not met'})"
        )
        plot(out / "latency.png", samples, title)
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "latency.png", RESULTS / "latency.png")
        print(f" and {out / 'latency.png'}", end="")
    print()
    write_summary(RESULTS / "latency.md", floor_values, answer_values, len(questions), args.repeats, load_after)
    return 0


def write_summary(
    path: Path, floor: Sequence[float], answer: Sequence[float], questions: int, repeats: int, load: str
) -> None:
    """The headline table for bench/results: median, p95 and p99 of the answer against the floor."""

    def p99(values: Sequence[float]) -> float:
        return float(np.percentile(values, 99))

    lines = [
        "# Answer latency against the question-embedding floor (`bench/latency.py`)",
        "",
        f"{questions} questions × {repeats} repeats, interleaved; {' '.join(machine_info())}; load average "
        f"{load} at the end.",
        "",
        "| | n | median ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, values in (("embed the question alone (floor)", floor), ("answer end to end", answer)):
        lines.append(f"| {label} | {len(values)} | {median(values):.1f} | {p95(values):.1f} | {p99(values):.1f} |")
    lines += [
        f"| answer / floor | | {median(answer) / median(floor):.2f}× | {p95(answer) / p95(floor):.2f}× | "
        f"{p99(answer) / p99(floor):.2f}× |",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
