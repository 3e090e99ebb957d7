"""Assign a one-time fit/check split to the hand-written news evaluation sets.

Reads ``news_qa.jsonl``, ``news_followup.jsonl`` and ``ru_qa.jsonl`` (next to this script),
and gives every line a field ``"split"`` with value ``"fit"`` or ``"check"``.

The split is stratified by ``kind`` (for a file without kinds, ``ru_qa.jsonl``: answerable, ``must`` not
empty, or unanswerable): for each file, the ids of each kind
(taken in sorted order, kinds processed in sorted order) are shuffled with
one ``random.Random(20261201)`` generator per file; the first half of the
shuffled ids (rounded down) goes to ``"fit"`` and the rest to ``"check"``.
Any existing ``split`` field is ignored, so re-running gives the same result.

The files are rewritten in place, one JSON object per line, with keys in the
order id, kind, split, q/turns, must, src.

"fit" items may be looked at while tuning the bot; "check" items are held
out and must never be used for tuning.

Usage: python3 split_news.py
Standard library only.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

SEED = 20261201
HERE = Path(__file__).resolve().parent
FILES = ["news_qa.jsonl", "news_followup.jsonl", "ru_qa.jsonl"]
KEY_ORDER = ["id", "kind", "split", "q", "turns", "must", "src"]


def stratum(row: dict[str, Any]) -> str:
    return str(row.get("kind") or ("answerable" if row["must"] else "unanswerable"))


def split_file(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_kind: defaultdict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_kind[stratum(row)].append(row["id"])
    rng = random.Random(SEED)
    assignment: dict[str, str] = {}
    for kind in sorted(by_kind):
        ids = sorted(by_kind[kind])
        rng.shuffle(ids)
        n_fit = len(ids) // 2
        for i, row_id in enumerate(ids):
            assignment[row_id] = "fit" if i < n_fit else "check"
    lines = []
    for row in rows:
        row["split"] = assignment[row["id"]]
        ordered = {k: row[k] for k in KEY_ORDER if k in row}
        ordered.update({k: v for k, v in row.items() if k not in ordered})
        lines.append(json.dumps(ordered, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def main() -> None:
    for name in FILES:
        rows = split_file(HERE / name)
        counts: defaultdict[str, dict[str, int]] = defaultdict(lambda: {"fit": 0, "check": 0})
        for row in rows:
            counts[stratum(row)][row["split"]] += 1
        for kind in sorted(counts):
            print(f"{name}\t{kind}\tfit={counts[kind]['fit']}\tcheck={counts[kind]['check']}")


if __name__ == "__main__":
    main()
