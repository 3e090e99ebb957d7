"""Search at size: every FAISS index kind of `bot/ann.py`, and bm25s, on synthetic passages of 10k to 1M.

    .venv/bin/python bench/search_scale.py                 # 10k and 100k (a few minutes)
    .venv/bin/python bench/search_scale.py --sizes 1000000 # 1M (about half an hour on 2 shared cores)

Vectors are unit-length, 384 dimensions, drawn from a hierarchical Gaussian mixture (100 topics, 30 sub-topics
each, 30 stories each; a passage is its story's centre plus noise), so that passages have neighbourhoods as
news passages do; uniform noise has none and would make clustered indexes (IVF) look worse than they are on
real text. At 100k passages the nearest neighbour's cosine is about 0.56 and IVF needs 1-2% of its lists for
recall 0.95 (a setting with one cluster level only was either trivial or hopeless for IVF). Queries are
fresh draws from the same mixture. For each index kind, at each size, side by side in one run:

- build time (training included), median and p95 latency of single-query searches (FAISS on one OpenMP
  thread, as `bot/ann.py` sets it: see there why), recall@10 against exact search (`Flat`), bytes per passage
  held in memory (the serialized index) and, for the compressed kinds, the exact vectors on disk they re-rank
  from;
- the search settings swept (efSearch, nprobe), with the one `bot/ann.py` records marked;
- bm25s over synthetic token lists (Zipf-distributed vocabulary, 60 terms a passage), searched the way
  `bot/search.py` searches it (`bot.store.bm25_top`: the postings of the question's terms summed, then the top
  30).

Writes `bench/results/search_scale.md` (or `search_scale-<sizes>.md` for other sizes) and a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
import numpy.typing as npt

from bot import ann
from bot.embedding import Vectors
from bot.store import bm25_top, top_positions

ROOT = Path(__file__).resolve().parent.parent
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
RESULTS = ROOT / "bench/results"
DIMENSION = 384
TOPICS = 100
SUBTOPICS = 30
STORIES = 30  # per sub-topic: 90,000 stories
STORY_SPREAD = 0.8
PASSAGE_SPREAD = (0.6, 1.0)
QUERIES = 200
K = 10
CANDIDATES = 30  # what bot/search.py asks FAISS and BM25 for
VOCABULARY = 200_000
TERMS_PER_PASSAGE = 60
TERMS_PER_QUESTION = 5
HNSW_EF_SWEEP = (16, 32, 64, 128)
PROBE_SWEEP = (4, 8, 16, 32, 64)
TARGET_RECALL = 0.95
SEED = 7
ALL_KINDS = (ann.HNSW, ann.IVF_SQ8, ann.IVF_PQ)
# 10k (exact search recorded) and 50k (HNSW recorded) keep `make bench` within its budget; 100k took 8 minutes
# alone (HNSW's build 230 s), 1M about 40 (`--sizes`).
DEFAULT_SIZES = [10_000, 50_000]

Labels = npt.NDArray[np.int64]


@dataclass
class Row:
    size: int
    kind: str
    setting: str
    recorded: bool  # the setting bot/ann.py records for this size
    build_s: float
    median_ms: float
    p95_ms: float
    recall: float | None
    memory_bytes: float  # per passage, held in memory
    disk_bytes: float  # per passage, memory-mapped from disk on demand (exact vectors to re-rank from)


class Mixture:
    """News-like neighbourhoods: topics, sub-topics within them, stories within those, and passages of a story
    (its centre plus noise, normalized). The more passages, the more share a story, as in a growing archive."""

    def __init__(self, rng: np.random.Generator) -> None:
        topics = _unit(rng.standard_normal((TOPICS, DIMENSION)))
        subtopics = _unit(
            (topics[:, None, :] + rng.standard_normal((TOPICS, SUBTOPICS, DIMENSION)) / np.sqrt(DIMENSION)).reshape(
                -1, DIMENSION
            )
        )
        stories = subtopics[:, None, :] + rng.standard_normal((len(subtopics), STORIES, DIMENSION)) * (
            STORY_SPREAD / np.sqrt(DIMENSION)
        )
        self.centres = _unit(stories.reshape(-1, DIMENSION)).astype(np.float32)

    def draw(self, count: int, rng: np.random.Generator) -> Vectors:
        out = np.empty((count, DIMENSION), dtype=np.float32)
        for start in range(0, count, 100_000):
            n = min(100_000, count - start)
            centres = self.centres[rng.integers(0, len(self.centres), n)]
            # Passages vary in how typical of their story they are.
            spread = rng.uniform(*PASSAGE_SPREAD, (n, 1)) / np.sqrt(DIMENSION)
            out[start : start + n] = _unit(centres + rng.standard_normal((n, DIMENSION)) * spread)
        return out


def _unit(rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
    result: npt.NDArray[Any] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return result


def _timed_single_queries(search: Any, queries: Vectors) -> tuple[list[float], Labels]:
    """Latency of each query alone (ms) and the labels found."""
    times = []
    labels = np.empty((len(queries), K), dtype=np.int64)
    for i in range(len(queries)):
        start = time.perf_counter()
        _, found = search(queries[i : i + 1])
        times.append((time.perf_counter() - start) * 1000)
        labels[i] = found[0][:K]
    return times, labels


def _recall(found: Labels, exact: Labels) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


def _p95(times: list[float]) -> float:
    return float(np.percentile(times, 95))


def _index_bytes(index: Any) -> int:
    return len(faiss.serialize_index(index))


def measure_faiss(size: int, vectors: Vectors, queries: Vectors, workdir: Path, kinds: set[str]) -> list[Row]:
    rows: list[Row] = []
    start = time.perf_counter()
    flat = ann.build(vectors, ann.AnnSpec(ann.FLAT, "Flat"))
    flat_build = time.perf_counter() - start
    _, exact = flat.search(queries, K)  # batched
    times, found = _timed_single_queries(lambda q, flat=flat: flat.search(q, K), queries)
    recorded = ann.choose(size, DIMENSION)
    rows.append(
        Row(
            size,
            ann.FLAT,
            "exact",
            recorded.kind == ann.FLAT,
            flat_build,
            statistics.median(times),
            _p95(times),
            _recall(found, exact),
            _index_bytes(flat) / size,
            0.0,
        )
    )
    print(_format_row(rows[-1]), flush=True)
    del flat
    gc.collect()

    vector_file = workdir / "chunk_vectors.npy"
    np.save(vector_file, vectors)
    on_disk: Vectors = np.load(vector_file, mmap_mode="r")
    policy = ann.AnnPolicy(exact_max=0, graph_max=size, sq8_max=size)
    specs = {
        ann.HNSW: ann.choose(size, DIMENSION, policy),
        ann.IVF_SQ8: ann.choose(size, DIMENSION, ann.AnnPolicy(exact_max=0, graph_max=0, sq8_max=size)),
        ann.IVF_PQ: ann.choose(size, DIMENSION, ann.AnnPolicy(exact_max=0, graph_max=0, sq8_max=0)),
    }
    for kind, spec in specs.items():
        if kind not in kinds:
            continue
        start = time.perf_counter()
        index = ann.build(vectors, spec)
        build_s = time.perf_counter() - start
        memory = _index_bytes(index) / size
        disk = float(vectors.shape[1] * 4) if spec.compressed else 0.0
        name, sweep = ("efSearch", HNSW_EF_SWEEP) if kind == ann.HNSW else ("nprobe", PROBE_SWEEP)
        values = sorted({*sweep, spec.search[name]})
        for value in values:
            if kind != ann.HNSW and value > spec.build["nlist"]:
                continue
            trial = ann.AnnSpec(spec.kind, spec.factory, spec.build, {**spec.search, name: value})
            ann.configure(index, trial)
            search_vectors = on_disk if spec.compressed else vectors

            def run(q: Vectors, index: Any = index, trial: ann.AnnSpec = trial, v: Vectors = search_vectors) -> Any:
                return ann.search(index, v, q, K, trial)

            times, found = _timed_single_queries(run, queries)
            setting = f"{name}={value}" + (f", rerank={spec.rerank}" if spec.compressed else "")
            rows.append(
                Row(
                    size,
                    kind,
                    setting,
                    recorded.kind == kind and value == spec.search[name],
                    build_s,
                    statistics.median(times),
                    _p95(times),
                    _recall(found, exact),
                    memory,
                    disk,
                )
            )
            print(_format_row(rows[-1]), flush=True)
        del index
        gc.collect()
    del on_disk
    vector_file.unlink()
    return rows


def measure_bm25(size: int, rng: np.random.Generator) -> list[Row]:
    """bm25s over `size` synthetic passages: Zipf-distributed term ids, searched as bot/search.py does and, side
    by side, the way it did before (every passage scored, then the top of them all)."""
    ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
    weights = 1.0 / ranks**1.05
    weights /= weights.sum()
    vocab = {f"t{i}": i for i in range(VOCABULARY)}
    ids = rng.choice(VOCABULARY, size=(size, TERMS_PER_PASSAGE), p=weights)
    corpus = bm25s.tokenization.Tokenized(ids=ids.tolist(), vocab=vocab)
    del ids
    start = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    build_s = time.perf_counter() - start
    del corpus
    gc.collect()
    memory = sum(array.nbytes for array in retriever.scores.values() if isinstance(array, np.ndarray))
    # Questions use the middle of the vocabulary: content words, not the most common ones.
    questions = [[f"t{i}" for i in row] for row in rng.integers(100, 20_000, size=(QUERIES, TERMS_PER_QUESTION))]

    def every_passage_scored(terms: list[str]) -> list[int]:
        scores = np.asarray(retriever.get_scores(terms), dtype=np.float32)
        return top_positions(scores, CANDIDATES)

    rows = []
    for setting, search, now in (
        ("postings of the question's terms (now)", lambda terms: bm25_top(retriever, terms, CANDIDATES), True),
        ("every passage scored (before)", every_passage_scored, False),
    ):
        times = []
        for terms in questions:
            start = time.perf_counter()
            search(terms)
            times.append((time.perf_counter() - start) * 1000)
        rows.append(
            Row(
                size,
                "bm25s",
                f"{setting}, {TERMS_PER_PASSAGE} terms/passage",
                now,  # the plot draws what the bot does
                build_s,
                statistics.median(times),
                _p95(times),
                None,
                memory / size + 0.0,
                0.0,
            )
        )
    return rows


def _format_row(row: Row) -> str:
    recall = "—" if row.recall is None else f"{row.recall:.3f}"
    mark = " **(recorded)**" if row.recorded and row.kind != "bm25s" else ""
    disk = f"{row.disk_bytes:.0f}" if row.disk_bytes else "—"
    return (
        f"| {row.size:,} | {row.kind} | {row.setting}{mark} | {row.build_s:.1f} | {row.median_ms:.3f} | "
        f"{row.p95_ms:.3f} | {recall} | {row.memory_bytes:.0f} | {disk} |"
    )


HEADER = (
    "| passages | kind | setting | build (s) | median (ms) | p95 (ms) | recall@10 | bytes/passage in memory "
    "| bytes/passage on disk, mapped |\n| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"


def write_report(rows: list[Row], out: Path, seconds: float) -> None:
    lines = [
        "# Search at size: FAISS index kinds and bm25s",
        "",
        f"`bench/search_scale.py`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine()}, faiss {faiss.__version__}, "
        f"bm25s {bm25s.__version__}; {seconds / 60:.1f} min in all. Other workers shared the machine: absolute times "
        "are noisy, compare rows of one size.",
        "",
        f"Synthetic unit vectors ({DIMENSION} dims; {TOPICS} topics × {SUBTOPICS} sub-topics × {STORIES} stories, "
        f"Gaussian), {QUERIES} "
        "fresh queries from the same mixture, searched one at a time on one thread. Recall@10 is against exact "
        "search. Memory is the serialized index (vectors or codes, graph, ids) per passage; the compressed kinds "
        "also read the few exact vectors they re-rank from a memory-mapped file (last column). The setting "
        "`bot/ann.py` records for that size is marked; the others are the sweep.",
        "",
        HEADER,
        *(_format_row(row) for row in rows),
        "",
    ]
    out.write_text("\n".join(lines), encoding="utf-8")


def plot(rows: list[Row], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [row for row in rows if row.recorded]
    kinds = sorted({row.kind for row in chosen}) or ["flat"]
    best = {}
    for row in rows:
        # Per kind and size: the setting that bot/ann.py records, else the fastest reaching the target recall.
        key = (row.kind, row.size)
        if row.recorded or (key not in best and (row.recall is None or row.recall >= TARGET_RECALL)):
            best[key] = row
    kinds = sorted({kind for kind, _ in best})
    figure, (latency, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in kinds:
        points = sorted((size, row) for (k, size), row in best.items() if k == kind)
        sizes = [size for size, _ in points]
        latency.plot(sizes, [row.median_ms for _, row in points], marker="o", label=kind)
        memory.plot(sizes, [row.memory_bytes for _, row in points], marker="o", label=kind)
    for axes, title in ((latency, "median single-query search (ms)"), (memory, "bytes per passage in memory")):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("passages")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
    latency.axhline(5, color="grey", linestyle="--", linewidth=0.8)
    latency.legend()
    figure.suptitle(f"Search at size (recall@10 ≥ {TARGET_RECALL} settings; {_machine()})", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=list(ALL_KINDS),
        help="approximate kinds to build (exact search always runs: it is the reference)",
    )
    parser.add_argument("--lexical-only", action="store_true", help="measure bm25s only (no vectors at all)")
    parser.add_argument("--no-lexical", action="store_true", help="skip bm25s (it takes minutes at 500k and up)")
    args = parser.parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    mixture = Mixture(rng)
    queries = mixture.draw(QUERIES, rng)
    rows: list[Row] = []
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes:
            if not args.lexical_only:
                vectors = mixture.draw(size, rng)
                rows += measure_faiss(size, vectors, queries, Path(workdir), set(args.kinds))
                del vectors
                gc.collect()
            if not args.no_lexical:
                lexical = measure_bm25(size, rng)
                rows += lexical
                for row in lexical:
                    print(_format_row(row), flush=True)
    default = args.sizes == DEFAULT_SIZES
    stem = "search_scale" if default else "search_scale-" + "-".join(str(size) for size in args.sizes)
    # A run of some kinds only gets its own file, so it does not overwrite a run of them all.
    if not args.lexical_only and set(args.kinds) != set(ALL_KINDS):
        stem += "-" + "-".join(args.kinds)
    stem += "-lexical" if args.lexical_only else ""
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(rows, args.out / f"{stem}.md", time.perf_counter() - started)
    plot(rows, args.out / f"{stem}.png")
    print(f"wrote {args.out / f'{stem}.md'} and {stem}.png")


if __name__ == "__main__":
    main()
