"""What start-up costs at size: opening an index and starting the engine, step by step, on synthetic archives.

    .venv/bin/python bench/startup.py                    # 300 and 1,200 articles (a few minutes)
    .venv/bin/python bench/startup.py --articles 1000 4000
    .venv/bin/python bench/startup.py --articles 100000 --compare-beside   # about 10 minutes

Each archive is built once (synthetic articles of about 500 words; a hashing embedder stands in for the model,
which start-up does not run). Then, side by side in one process, each step from launch to the first answer is
timed: verifying the files the way `open_index` does now (small files hashed, large ones by size and time) and
the way it did (every file hashed), opening the index (metadata from SQLite, rows, texts, vectors, FAISS and
the lexical index memory-mapped, term statistics read), checking it against the corpus folder, preparing the
answer scorer, and answering one question. A cost that grows with the archive is extrapolated linearly to
100,000 articles; importing torch and loading the real model, which does not grow, is timed in a fresh process.
Then whole launches are timed in fresh processes, as `open_engine` launches (the model, then the index opened
and checked, then one answer); `--compare-beside` also times launches that load the model in a thread beside
the index steps.
Writes `bench/results/startup.md` (`startup-<sizes>.md` for other sizes).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot import store
from bot.answer import SentenceScorer, WordVectors
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.embedding import Vectors
from bot.engine import Engine
from bot.scorer import ScorerParams

ROOT = Path(__file__).resolve().parent.parent
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
RESULTS = ROOT / "bench/results"
TARGET_ARTICLES = 100_000
DEFAULT_ARTICLES = [300, 1_200]
LAUNCH_RUNS = 2
WORDS = [
    f"{stem}{suffix}"
    for stem in ("alm", "kaz", "part", "vot", "elect", "court", "mine", "oil", "bank", "grain")
    for suffix in ("a", "on", "ist", "ure", "ing", "ed", "ity", "er", "ment", "ism")
]
NAMES = ["Mamai", "Tokayev", "Almaty", "Astana", "Nazarbayev", "Zhanaozen", "Karaganda", "Aktau"]


class HashingEmbedder:
    """A stand-in for the model: a unit vector seeded by each text's hash (start-up never runs the model)."""

    name = "hashing-embedder"
    fingerprint = "hashing-embedder-1"
    dimension = 384

    def embed(self, texts: list[str]) -> Vectors:
        rows = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            row = np.random.default_rng(seed).standard_normal(self.dimension)
            rows[i] = row / np.linalg.norm(row)
        return rows


def write_corpus(directory: Path, articles: int) -> None:
    rng = np.random.default_rng(articles)
    directory.mkdir(parents=True)
    for number in range(articles):
        sentences = []
        for _ in range(25):
            words = [str(w) for w in rng.choice(WORDS, 18)]
            words.insert(int(rng.integers(0, 18)), str(rng.choice(NAMES)))
            sentences.append(" ".join(words).capitalize() + f" in {1990 + number % 35}.")
        (directory / f"article-{number:06d}.txt").write_text(
            f"Report {number}\n\n" + " ".join(sentences) + "\n", encoding="utf-8"
        )


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def fixed_launch_cost() -> float:
    """Seconds to import the bot with torch and load the real model, in a fresh process (as at every launch)."""
    program = (
        "import time; start = time.perf_counter()\n"
        "from bot import service\n"
        "from bot.config import Settings\n"
        "service.load_embedder(Settings(_env_file=None)).load()\n"
        "print(time.perf_counter() - start)"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(finished.stdout.strip().splitlines()[-1])


def launch(corpus: Path, index_dir: Path, *, beside: bool) -> float:
    """Seconds from a fresh process's start to its first answer: the real model loaded first, then the index
    opened and checked against the corpus (`beside` False), or the model loading in a thread while the index is
    opened and checked (`beside` True). (The index was built with the stand-in embedder, which the engine uses
    for the question: the model's own encode of one question is about 10 ms.)"""
    program = (
        "import time; start = time.perf_counter()\n"
        "import sys; from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
        "from bot import service, store\n"
        "from bot.chunking import ChunkingSettings\n"
        "from bot.config import Settings\n"
        "from bot.engine import Engine\n"
        "from startup import HashingEmbedder\n"
        "model = service.load_embedder(Settings(_env_file=None))\n"
        + (
            "import threading; loading = threading.Thread(target=model.load); loading.start()\n"
            if beside
            else "model.load()\n"
        )
        + f"corpus, index_dir = Path({str(corpus)!r}), Path({str(index_dir)!r})\n"
        "embedder = HashingEmbedder()\n"
        "index = store.open_index(index_dir, embedder)\n"
        "assert index.manifest.stale_reason(corpus, ChunkingSettings(), None) is None\n"
        "engine = Engine(index_dir, embedder, index)\n"
        + ("loading.join()\n" if beside else "")
        + "engine.answer('Who is Mamai in Almaty?')\n"
        "print(time.perf_counter() - start)"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(finished.stdout.strip().splitlines()[-1])


def measure(articles: int, workdir: Path, compare_beside: bool = False) -> dict[str, float]:
    corpus, index_dir = workdir / f"corpus-{articles}", workdir / f"index-{articles}"
    write_corpus(corpus, articles)
    embedder = HashingEmbedder()
    build_s, _ = timed(lambda: build_index(corpus, index_dir, embedder, ChunkingSettings()))
    version = store.current_version(index_dir)
    assert version is not None
    directory = index_dir / version
    manifest = store.read_manifest(directory)
    steps: dict[str, float] = {"(build, not start-up)": build_s}
    steps["verify: small files hashed, large by size+time (now)"], _ = timed(
        lambda: store.damaged_files(directory, manifest)
    )
    steps["verify: every file hashed (before; `bot verify`)"], _ = timed(
        lambda: store.damaged_files(directory, manifest, full=True)
    )
    steps["open_index (all of it, as now)"], index = timed(lambda: store.open_index(index_dir, embedder))
    steps["  of which: rows, texts and term statistics"], _ = timed(lambda: store._read_rows(directory))
    steps["is the index current? (every corpus file's size and time)"], _ = timed(
        lambda: index.manifest.stale_reason(corpus, ChunkingSettings(), None)
    )
    params = ScorerParams.load()
    steps["answer scorer (term statistics read with the rows)"], _ = timed(
        lambda: SentenceScorer(index.data, params, WordVectors(embedder.embed))
    )
    steps["Engine (scorer included)"], engine = timed(lambda: Engine(index_dir, embedder, index))
    steps["first answer"], _ = timed(lambda: engine.answer("Who is Mamai in Almaty?"))
    # Best of LAUNCH_RUNS: the machine is shared. With `compare_beside`, side by side and alternating with a launch
    # that loads the model in a thread while the index is opened and checked (slower here: 11.9 s against 10.7 s
    # at 100,000 articles, results/startup-100000-beside.md; the import holds the interpreter's lock).
    kinds = (False, True) if compare_beside else (False,)
    runs: dict[bool, list[float]] = {kind: [] for kind in kinds}
    for _ in range(LAUNCH_RUNS):
        for beside in kinds:
            runs[beside].append(launch(corpus, index_dir, beside=beside))
    steps["launch to first answer, fresh process: model, then index steps"] = min(runs[False])
    if compare_beside:
        steps["launch to first answer, fresh process: model loading beside the index steps"] = min(runs[True])
    steps["bytes on disk"] = float(sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, nargs="+", default=DEFAULT_ARTICLES)
    parser.add_argument("--out", type=Path, default=None, help="default: results/startup.md, or startup-<sizes>.md")
    parser.add_argument(
        "--compare-beside",
        action="store_true",
        help="also time launches that load the model in a thread beside the index steps",
    )
    args = parser.parse_args()
    if args.out is None:  # a run at other sizes gets its own file, so `make bench` does not overwrite it
        named = "" if args.articles == DEFAULT_ARTICLES else "-" + "-".join(map(str, args.articles))
        args.out = RESULTS / f"startup{named}.md"
    workdir = Path(tempfile.mkdtemp(prefix="kazbot-startup-"))
    try:
        results = {articles: measure(articles, workdir, args.compare_beside) for articles in args.articles}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    model_load = fixed_launch_cost()
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    header = " | ".join(f"{n:,} articles" for n in sizes)
    lines = [
        "# Start-up at size",
        "",
        f"`bench/startup.py`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end. Seconds (bytes for the last row); the last column extrapolates "
        f"linearly from the smallest and largest sizes to {TARGET_ARTICLES:,} articles.",
        "",
        f"| step | {header} | at {TARGET_ARTICLES:,} (linear) |",
        "| --- |" + " ---: |" * (len(sizes) + 1),
    ]
    for step in results[small]:
        values = [results[n][step] for n in sizes]
        slope = (values[-1] - values[0]) / (large - small) if large > small else values[-1] / large
        # A step that did not grow (noise can make the slope negative) is projected at its largest measurement.
        projected = max(values[-1] + slope * (TARGET_ARTICLES - large), *values)
        # A whole launch is mostly the model's fixed cost plus the steps above: its own slope would be noise.
        shown = "—" if step.startswith("launch") and large < TARGET_ARTICLES else f"{projected:,.1f}"
        lines.append(f"| {step} | " + " | ".join(f"{v:,.2f}" for v in values) + f" | {shown} |")
    projected_total = sum(
        float(line.rsplit("|", 2)[1].replace(",", ""))
        for line in lines
        if line.startswith(("| open_index", "| is the index", "| Engine", "| first answer"))
    )
    lines += [
        "",
        f"What does not grow with the archive, in a fresh process: importing the bot and torch and loading the model "
        f"took {model_load:.1f} s. Launch to first answer at {TARGET_ARTICLES:,} articles, projected: "
        f"{model_load + projected_total:.1f} s (that, plus opening the index, the staleness check, the engine and "
        'the first answer). The "launch to first answer" rows measure whole launches in fresh processes, '
        f"best of {LAUNCH_RUNS}.",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
