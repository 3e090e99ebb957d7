"""Choose the thresholds of the Russian retrieval leg on the fitting half of the Russian questions.

    .venv/bin/python bench/russian_threshold.py [--out FILE]

Builds a temporary index of the seed articles (tests/data/news) with the product's model and the multilingual
one (the [multilingual] extra), then answers the fitting half of tests/data/ru_qa.jsonl (`"split": "fit"`)
through `Engine.answer` at every candidate threshold, judged as `python -m bot eval` judges
(`bot.evaluate.judge`):

- the answer threshold (`MULTILINGUAL_ANSWER_COSINE`) is the one that gets the most fitting questions right;
  among equals, the midpoint of the widest run of equal best thresholds, so that it is not chosen on the edge
  of one question;
- the related threshold (`MULTILINGUAL_RELATED_COSINE`, below the answer threshold: the closest passage is shown
  between the two) cannot change that score (an abstention is an abstention); it is chosen for the use of the
  closest passage: +1 for each answerable question shown a passage that holds its answer, -1 for each
  unanswerable question shown any passage; among equals, the highest (fewer passages shown for the same use).

Only then is the checking half answered, at the chosen thresholds, and its score printed beside the fitting
half's. Nothing here is timed. Writes bench/results/russian-threshold.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `bot` is importable without installing

import bot.engine  # noqa: E402
from bot.build import build_index  # noqa: E402
from bot.chunking import ChunkingSettings  # noqa: E402
from bot.conversation import Conversation  # noqa: E402
from bot.embedding import SentenceTransformerEmbedder  # noqa: E402
from bot.engine import Engine, Outcome  # noqa: E402
from bot.evaluate import EvalResult, evaluate, judge, load_questions  # noqa: E402
from bot.multilingual import MultilingualEmbedder  # noqa: E402

QUESTIONS = ROOT / "tests/data/ru_qa.jsonl"
CORPUS = ROOT / "tests/data/news"
DEFAULT_OUT = ROOT / "bench/results/russian-threshold.md"


def best_cosine(engine: Engine, question: str) -> float:
    assert engine.multilingual is not None and engine.index.data.multilingual_vectors is not None
    query = engine.multilingual.embed_query([question])[0]
    return float((engine.index.data.multilingual_vectors @ query).max())


def score_at(engine: Engine, questions: list[dict[str, Any]], answer: float, related: float) -> EvalResult:
    bot.engine.MULTILINGUAL_ANSWER_COSINE = answer
    bot.engine.MULTILINGUAL_RELATED_COSINE = related
    return evaluate(engine, questions)


def closest_use(engine: Engine, questions: list[dict[str, Any]], answer: float, related: float) -> int:
    """+1 per answerable question shown a closest passage holding its answer, -1 per unanswerable one shown any."""
    bot.engine.MULTILINGUAL_ANSWER_COSINE = answer
    bot.engine.MULTILINGUAL_RELATED_COSINE = related
    total = 0
    for item in questions:
        result = engine.answer(item["q"], Conversation(0))
        if result.outcome is not Outcome.ABSTAINED or not result.citations:
            continue
        if not item["must"]:
            total -= 1
            continue
        # Judged as if it had been answered: does the shown passage hold the answer, from the right article?
        right, _ = judge(engine, item, dataclasses.replace(result, outcome=Outcome.ANSWERED))
        total += right
    return total


def widest_middle(candidates: list[float], scores: list[int]) -> float:
    """The middle of the widest run of consecutive candidates sharing the best score."""
    best = max(scores)
    runs: list[list[float]] = []
    previous_best = False
    for value, score in zip(candidates, scores, strict=True):
        if score == best:
            if previous_best:
                runs[-1].append(value)
            else:
                runs.append([value])
        previous_best = score == best
    run = max(runs, key=len)
    return round((run[0] + run[-1]) / 2, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    questions = load_questions(QUESTIONS)
    fitting = [q for q in questions if q.get("split") == "fit"]
    checking = [q for q in questions if q.get("split") == "check"]
    embedder = SentenceTransformerEmbedder()
    multilingual = MultilingualEmbedder()
    with tempfile.TemporaryDirectory(prefix="kazbot-ru-") as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(CORPUS, corpus)
        build_index(corpus, Path(tmp) / "index", embedder, ChunkingSettings(), multilingual=multilingual)
        engine = Engine.open(Path(tmp) / "index", embedder, multilingual=multilingual)

        # Candidate thresholds: a grid over the range the fitting questions' best cosines span (never the
        # checking questions').
        cosines = sorted(best_cosine(engine, q["q"]) for q in fitting)
        low, high = int(cosines[0] * 1000) - 1, int(cosines[-1] * 1000) + 2
        grid = [value / 1000 for value in range(low, high)]
        answer_scores = [score_at(engine, fitting, value, 0.0).right for value in grid]
        answer = widest_middle(grid, answer_scores)
        below = [value for value in grid if value <= answer]
        related_scores = [closest_use(engine, fitting, answer, value) for value in below]
        # Among equals, the highest: a passage is shown only where showing passages pays.
        related = max(v for v, score in zip(below, related_scores, strict=True) if score == max(related_scores))

        fit_result = score_at(engine, fitting, answer, related)
        check_result = score_at(engine, checking, answer, related)

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Thresholds of the Russian retrieval leg",
        "",
        f"Written by `bench/russian_threshold.py` ({stamp}): {len(fitting)} fitting and {len(checking)} checking",
        "questions of tests/data/ru_qa.jsonl over the seed articles; the thresholds were chosen on the fitting",
        "half only.",
        "",
        f"- best cosines of the fitting questions: {cosines[0]:.3f}–{cosines[-1]:.3f}",
        f"- answer threshold (`MULTILINGUAL_ANSWER_COSINE`): **{answer:.3f}** "
        f"({max(answer_scores)} of {len(fitting)} fitting questions right at best; grid {grid[0]:.3f}–{grid[-1]:.3f})",
        f"- related threshold (`MULTILINGUAL_RELATED_COSINE`): **{related:.3f}** (closest-passage use "
        f"{max(related_scores)} at best)",
        "",
        "## Fitting half",
        "",
        "```",
        fit_result.table(),
        "```",
        "",
        "## Checking half (never used for choosing)",
        "",
        "```",
        check_result.table(),
        "```",
        "",
        "Wrong on the checking half:",
        "",
        *[f"- {failure}" for failure in check_result.failures],
        "",
        "## Closest-passage use on the fitting half by related threshold (at the chosen answer threshold)",
        "",
        "| related threshold | use |",
        "|---|---|",
        *[f"| {value:.3f} | {score} |" for value, score in zip(below, related_scores, strict=True)],
        "",
        "## Score of the fitting half by answer threshold",
        "",
        "| answer threshold | right |",
        "|---|---|",
        *[f"| {value:.3f} | {score} |" for value, score in zip(grid, answer_scores, strict=True)],
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines[:12]))
    print(f"fit: {fit_result.right}/{fit_result.total}, check: {check_result.right}/{check_result.total}")


if __name__ == "__main__":
    main()
