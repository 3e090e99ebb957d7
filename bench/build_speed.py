"""Build throughput against the model's raw `encode`, incremental and no-change rebuilds against a full build.

Everything is measured in one run, on the same synthetic articles (bench/synthetic.py), with the real model:

1. the texts a build embeds (every chunk, sentence and clause of long sentences) are collected, and the model
   encodes them in one `encode` call: the raw throughput, measured before and after the build (their mean);
2. the same texts encoded one call per article (what builds did before issue 7);
3. a full build (`build_index`, multilingual leg off: it is another model, measured in bench/results/russian.md);
4. one article rewritten, then an incremental build; then a build that finds nothing changed;
5. a no-change `build_index` in a fresh process with a fresh (lazily loading) embedder: its time and whether
   the model was loaded.

    .venv/bin/python bench/build_speed.py [--articles 100] [--out bench/results] [--no-plot]

Writes bench/results/build-speed.md and build-speed.png (throughput bars; rebuild times on a log scale).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import rewrite_article, write_articles

from bot.article_vectors import cut_article
from bot.build import BuildReport, build_index
from bot.chunking import ChunkingSettings
from bot.corpus import load_article, scan
from bot.embedding import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parent.parent
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
DEFAULT_OUT = ROOT / "bench/results"
AIM_THROUGHPUT = 0.9  # build throughput / raw encode throughput
AIM_INCREMENTAL = 0.05  # one changed article / full build

NO_CHANGE_CHILD = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.embedding import SentenceTransformerEmbedder
embedder = SentenceTransformerEmbedder()
report = build_index(Path(sys.argv[1]), Path(sys.argv[2]), embedder, ChunkingSettings())
print(json.dumps({"seconds": time.perf_counter() - started, "build_seconds": report.seconds,
                  "up_to_date": report.up_to_date, "model_loaded": embedder.loaded,
                  "torch_imported": "torch" in sys.modules}))
"""


@dataclass
class Results:
    articles: int
    texts: int
    load_seconds: float
    raw_seconds: list[float]
    per_article_seconds: float
    full: BuildReport
    incremental: BuildReport
    no_change: BuildReport
    fresh_seconds: float  # the whole fresh process, imports included
    fresh_build_seconds: float  # `build_index` in it
    fresh_model_loaded: bool
    fresh_torch_imported: bool

    @property
    def raw(self) -> float:
        return sum(self.raw_seconds) / len(self.raw_seconds)

    def throughput(self, seconds: float) -> float:
        return self.texts / seconds


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=100, help="synthetic articles (default 100)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-plot", action="store_true")
    return parser.parse_args(argv)


def measure(articles: int, tmp: Path) -> Results:
    corpus, index = tmp / "corpus", tmp / "index"
    paths = write_articles(corpus, articles)
    chunking = ChunkingSettings()
    per_article: list[list[str]] = []
    for file in scan(corpus):
        cut = cut_article(load_article(file), chunking)
        if cut is not None:
            per_article.append(cut[1])
    texts = [text for article_texts in per_article for text in article_texts]
    embedder = SentenceTransformerEmbedder()
    started = time.perf_counter()
    embedder.load()
    load_seconds = time.perf_counter() - started
    embedder.embed(texts[:128])  # warm-up: the first calls are slower

    def raw() -> float:
        started = time.perf_counter()
        embedder.embed(texts)
        return time.perf_counter() - started

    raw_seconds = [raw()]
    started = time.perf_counter()
    for article_texts in per_article:
        embedder.embed(article_texts)
    per_article_seconds = time.perf_counter() - started
    full = build_index(corpus, index, embedder, chunking)
    raw_seconds.append(raw())
    rewrite_article(paths[len(paths) // 2], seed=1)
    incremental = build_index(corpus, index, embedder, chunking)
    no_change = build_index(corpus, index, embedder, chunking)
    child = subprocess.run(
        [sys.executable, "-c", NO_CHANGE_CHILD, str(corpus), str(index)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "MULTILINGUAL": "off"},
    )
    fresh = json.loads(child.stdout.strip().splitlines()[-1])
    return Results(
        articles,
        len(texts),
        load_seconds,
        raw_seconds,
        per_article_seconds,
        full,
        incremental,
        no_change,
        float(fresh["seconds"]),
        float(fresh["build_seconds"]),
        bool(fresh["model_loaded"]),
        bool(fresh["torch_imported"]),
    )


def render(results: Results) -> str:
    r = results
    full_ratio = r.raw / r.full.seconds
    incremental_ratio = r.incremental.seconds / r.full.seconds
    rows = [
        ("raw `encode`, one call (mean of before and after the build)", r.raw, r.throughput(r.raw), 1.0),
        (
            "one `encode` call per article (builds before issue 7)",
            r.per_article_seconds,
            r.throughput(r.per_article_seconds),
            r.raw / r.per_article_seconds,
        ),
        (
            "full build (`build_index`: read, clean, cut, embed, write, publish)",
            r.full.seconds,
            r.throughput(r.full.seconds),
            full_ratio,
        ),
    ]
    lines = [
        "# Build speed (`bench/build_speed.py`)",
        "",
        f"{r.articles} synthetic articles (bench/synthetic.py), {r.full.chunks} chunks, {r.full.sentences} sentences; "
        f"{r.texts} texts embedded (chunks, sentences, clauses). all-MiniLM-L6-v2 on the CPU, multilingual leg off. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end. Model load: {r.load_seconds:.1f} s (not in any row).",
        "",
        "| what | seconds | texts/s | × raw encode throughput |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {label} | {seconds:.1f} | {speed:.0f} | {ratio:.2f} |" for label, seconds, speed, ratio in rows]
    lines += [
        "",
        f"Raw encode runs: {', '.join(f'{s:.1f} s' for s in r.raw_seconds)}. "
        f"Aim: build ≥ {AIM_THROUGHPUT}× raw encode throughput: "
        f"**{'met' if full_ratio >= AIM_THROUGHPUT else 'not met'}** ({full_ratio:.2f}×).",
        "",
        "| rebuild | seconds | × full build | texts embedded | model loaded |",
        "| --- | --- | --- | --- | --- |",
        f"| full | {r.full.seconds:.2f} | 1 | {r.full.embedded_texts} | yes |",
        f"| one article of {r.articles} rewritten | {r.incremental.seconds:.2f} | {incremental_ratio:.3f} | "
        f"{r.incremental.embedded_texts} | yes |",
        f"| nothing changed (same process) | {r.no_change.seconds:.3f} | {r.no_change.seconds / r.full.seconds:.4f} | "
        f"{r.no_change.embedded_texts} | — |",
        f"| nothing changed, fresh process (`build_index` only) | {r.fresh_build_seconds:.3f} | "
        f"{r.fresh_build_seconds / r.full.seconds:.4f} | 0 | {'yes' if r.fresh_model_loaded else 'no'} "
        f"(torch imported: {'yes' if r.fresh_torch_imported else 'no'}) |",
        "",
        f"Fresh process in all, imports included: {r.fresh_seconds:.2f} s. "
        f"Aim: one changed article < {AIM_INCREMENTAL:.0%} of a full build: "
        f"**{'met' if incremental_ratio < AIM_INCREMENTAL else 'not met'}** at this size ({incremental_ratio:.1%}; "
        "its cost is mostly rewriting the version's files, which grows with the corpus like the full build does).",
    ]
    return "\n".join(lines) + "\n"


def plot(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = results
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = ["raw encode", "per-article\nencode", "full build"]
    speeds = [r.throughput(r.raw), r.throughput(r.per_article_seconds), r.throughput(r.full.seconds)]
    left.bar(labels, speeds, color=["#777777", "#bb5555", "#3366aa"])
    left.axhline(AIM_THROUGHPUT * speeds[0], color="black", linestyle="--", label=f"{AIM_THROUGHPUT}× raw")
    left.set_ylabel("texts embedded per second")
    left.set_title(f"Build throughput, {r.articles} articles ({r.texts} texts)")
    left.legend()
    seconds = [
        r.full.seconds,
        r.incremental.seconds,
        r.no_change.seconds,
        r.fresh_build_seconds,
    ]
    right.bar(
        ["full", "1 article\nchanged", "nothing\nchanged", "nothing changed\n(fresh process)"],
        seconds,
        color=["#3366aa", "#55aa55", "#aaaa33", "#aa8833"],
    )
    right.set_yscale("log")
    right.set_ylabel("seconds (log)")
    right.set_title("Incremental and no-change rebuilds")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kazbot-build-speed-") as tmp:
        results = measure(args.articles, Path(tmp))
    report = render(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "build-speed.md").write_text(report, encoding="utf-8")
    if not args.no_plot:
        plot(results, args.out / "build-speed.png")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
