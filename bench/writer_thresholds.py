"""Scores of the written-answer check on hand-made faithful and unfaithful sentences, to choose its thresholds.

    .venv/bin/python bench/writer_thresholds.py [--model NAME]

`tests/data/writer_calibration.jsonl` holds sentences written about the seed articles (corpus/), each with the
passage it cites (the chunk of article `src` holding the text `at`), marked faithful (paraphrases of that
passage) or not: invented claims on the same topic, contradictions that reuse the passage's words, true
sentences cited to the wrong passage, and invented numbers. For each, this prints the first missing fact
(number, date, name), the lexical overlap and the embedding similarity, then how many of each kind a grid of
thresholds keeps. See README, "Written answers".
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bot.chunking import ChunkingSettings, chunk_sentences, split_sentences  # noqa: E402
from bot.corpus import load_corpus  # noqa: E402
from bot.embedding import Vectors  # noqa: E402
from bot.writer import Embed, SentenceChecker, SourcePassage  # noqa: E402

CALIBRATION = PROJECT / "tests" / "data" / "writer_calibration.jsonl"


@dataclass(frozen=True)
class Row:
    kind: str
    faithful: bool
    sentence: str
    missing: str | None
    overlap: float
    similarity: float

    def kept(self, min_overlap: float, min_similarity: float) -> bool:
        return self.missing is None and self.overlap >= min_overlap and self.similarity >= min_similarity


def passages(corpus: Path) -> dict[str, list[SourcePassage]]:
    """Every chunk of every article, as the writer would see it, by article file name."""
    articles, _ = load_corpus(corpus)
    found: dict[str, list[SourcePassage]] = {}
    for article in articles:
        spans = split_sentences(article.text)
        chunks = chunk_sentences(spans, article.text, ChunkingSettings())
        found[article.doc_id] = [
            SourcePassage(
                1,
                article.doc_id,
                article.title,
                article.publisher,
                article.published,
                article.text[spans[c.first_sentence][0] : spans[c.last_sentence][1]],
            )
            for c in chunks
        ]
    return found


def scores(embed: Embed, corpus: Path = PROJECT / "corpus", data: Path = CALIBRATION) -> list[Row]:
    chunks = passages(corpus)
    vectors: dict[str, Vectors] = {}

    def cached(texts: list[str]) -> Vectors:
        missing = [t for t in dict.fromkeys(texts) if t not in vectors]
        if missing:
            vectors.update(zip(missing, embed([*missing, "."])[: len(missing)], strict=True))
        return np.stack([vectors[t] for t in texts])

    rows = []
    for line in data.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        article = next(name for name in chunks if item["src"] in name)
        # The text may lie in two overlapping chunks: the sentence cites the one that suits it best.
        candidates = [p for p in chunks[article] if item["at"] in p.text]
        results = [
            SentenceChecker([p], cached, min_overlap=0.0, min_similarity=0.0).scores(item["sentence"], [1])
            for p in candidates
        ]
        missing, overlap, similarity = max(results, key=lambda r: (r[0] is None, r[2]))
        rows.append(Row(item["kind"], bool(item["faithful"]), item["sentence"], missing, overlap, similarity))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    args = parser.parse_args()
    from bot.embedding import SentenceTransformerEmbedder

    rows = scores(SentenceTransformerEmbedder(args.model).embed)
    for row in sorted(rows, key=lambda r: (r.faithful, r.kind, r.similarity)):
        print(
            f"{'faithful' if row.faithful else row.kind:<15} overlap {row.overlap:.2f}  similarity "
            f"{row.similarity:.2f}  {row.missing or '':<14} {row.sentence[:70]}"
        )
    faithful = [r for r in rows if r.faithful]
    unfaithful = [r for r in rows if not r.faithful]
    print(f"\n{len(faithful)} faithful, {len(unfaithful)} unfaithful; kept at each threshold pair:")
    print(f"{'overlap':>8}{'similarity':>11}{'faithful kept':>15}{'unfaithful kept':>17}")
    for min_overlap in (0.5, 0.6, 0.7, 0.8):
        for min_similarity in (0.5, 0.55, 0.6, 0.65, 0.7):
            kept = sum(r.kept(min_overlap, min_similarity) for r in faithful)
            wrong = sum(r.kept(min_overlap, min_similarity) for r in unfaithful)
            print(f"{min_overlap:>8}{min_similarity:>11}{kept:>15}{wrong:>17}")


if __name__ == "__main__":
    main()
