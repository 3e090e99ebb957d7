"""Do clause vectors, and chunk vectors of their own, pay for themselves in answer quality?

A build embeds every chunk, every sentence, and the clauses of long sentences. Sentence vectors are what the
answer scorer reads for every candidate (its first feature), so they stay. This script answers the checking
questions with the same built index in four variants, side by side in one run, and counts what each variant
costs to embed:

- as built: chunk, sentence and clause vectors;
- no clauses: a long sentence is judged by its own vector only;
- chunk = mean of its sentences: no chunk text is embedded; a chunk's vector is the normalized mean of its
  sentences' vectors (FAISS searches those);
- both of the above.

    .venv/bin/python bench/embedding_value.py [--out bench/results/embedding-value.md] [--no-squad]

The news checking half (`tests/data/news_qa.jsonl --split check`) and SQuAD 2.0 (`tests/data/squad2/`, all 626
questions, judged as `python -m bot eval` judges) are answered through `Engine.answer`. Nothing here is
timed except the encode cost of each kind of text, measured on the same texts in one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.build import build_index
from bot.chunking import split_clauses
from bot.config import Settings
from bot.embedding import Embedder, SentenceTransformerEmbedder
from bot.engine import Engine
from bot.evaluate import evaluate, load_questions, load_squad, write_corpus
from bot.store import LoadedIndex, open_index

ROOT = Path(__file__).resolve().parent.parent
NEWS_QUESTIONS = ROOT / "tests/data/news_qa.jsonl"
SQUAD = ROOT / "tests/data/squad2/squad2-normans-complexity.json"
DEFAULT_OUT = ROOT / "bench/results/embedding-value.md"
VARIANTS = ("as built", "no clauses", "chunk = mean of its sentences", "both")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-squad", action="store_true", help="only the news checking half (quicker)")
    return parser.parse_args(argv)


def variant(index: LoadedIndex, name: str) -> LoadedIndex:
    """The index with clause vectors left out and/or chunk vectors derived from sentence vectors."""
    data = index.data
    faiss_index = index.faiss_index
    if name in ("no clauses", "both"):
        data = dataclasses.replace(
            data, clause_sentences=[], clause_vectors=np.zeros((0, data.sentence_vectors.shape[1]), np.float32)
        )
    if name in ("chunk = mean of its sentences", "both"):
        derived = np.stack(
            [data.sentence_vectors[c.first_sentence : c.last_sentence + 1].mean(axis=0) for c in data.chunks]
        ).astype(np.float32)
        derived /= np.linalg.norm(derived, axis=1, keepdims=True)
        data = dataclasses.replace(data, chunk_vectors=derived)
        faiss_index = faiss.IndexFlatIP(derived.shape[1])
        faiss_index.add(derived)
    return dataclasses.replace(index, data=data, faiss_index=faiss_index)


def right_per_variant(
    index_dir: Path, index: LoadedIndex, embedder: Embedder, questions: list[dict[str, Any]]
) -> dict[str, int]:
    scores = {}
    for name in VARIANTS:
        engine = Engine(index_dir, embedder, variant(index, name))
        scores[name] = evaluate(engine, questions).right
    return scores


def encode_seconds(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    if texts:
        embedder.embed(texts)
    return time.perf_counter() - started


def text_costs(index: LoadedIndex, embedder: Embedder) -> dict[str, tuple[int, float]]:
    """Texts of each kind in the index and the seconds to encode them (one call per kind, same run)."""
    data = index.data
    chunks = [data.chunk_search_text(i) for i in range(len(data.chunks))]
    sentences = [data.sentence_text(i) for i in range(len(data.sentences))]
    clauses = [clause for text in sentences for clause in split_clauses(text)]
    encode_seconds(embedder, sentences[:64])  # warm-up
    return {
        kind: (len(texts), encode_seconds(embedder, texts))
        for kind, texts in (("chunks", chunks), ("sentences", sentences), ("clauses", clauses))
    }


def build_and_open(corpus_dir: Path, index_dir: Path, embedder: Embedder) -> LoadedIndex:
    build_index(corpus_dir, index_dir, embedder, Settings().chunking)
    return open_index(index_dir, embedder)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    embedder = SentenceTransformerEmbedder(Settings().embedding_model)
    rows: dict[str, dict[str, int]] = {}
    costs: dict[str, dict[str, tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="kazbot-embedding-value-") as tmp:
        news_index = build_and_open(ROOT / "corpus", Path(tmp) / "news-index", embedder)
        news = [q for q in load_questions(NEWS_QUESTIONS) if q.get("split") == "check"]
        rows[f"news checking half ({len(news)} questions)"] = right_per_variant(
            Path(tmp) / "news-index", news_index, embedder, news
        )
        costs["news corpus"] = text_costs(news_index, embedder)
        if not args.no_squad:
            articles, squad = load_squad(SQUAD)
            write_corpus(articles, Path(tmp) / "squad-corpus")
            squad_index = build_and_open(Path(tmp) / "squad-corpus", Path(tmp) / "squad-index", embedder)
            rows[f"SQuAD 2.0, both articles ({len(squad)} questions)"] = right_per_variant(
                Path(tmp) / "squad-index", squad_index, embedder, squad
            )
            costs["SQuAD corpus"] = text_costs(squad_index, embedder)
    report = render(rows, costs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    return 0


def render(rows: dict[str, dict[str, int]], costs: dict[str, dict[str, tuple[int, float]]]) -> str:
    lines = [
        "# Which vectors pay for themselves (`bench/embedding_value.py`)",
        "",
        "Questions right (judged as `python -m bot eval` judges), the same index answered four ways:",
        "",
        "| questions | " + " | ".join(VARIANTS) + " |",
        "| --- |" + " --- |" * len(VARIANTS),
    ]
    for label, scores in rows.items():
        lines.append(f"| {label} | " + " | ".join(str(scores[name]) for name in VARIANTS) + " |")
    lines += [
        "",
        "What each kind of text costs to embed (one `encode` call per kind, same run; seconds are machine-bound,",
        "compare the shares):",
        "",
        "| corpus | kind | texts | seconds | share of the build's encoding |",
        "| --- | --- | --- | --- | --- |",
    ]
    for corpus, kinds in costs.items():
        total = sum(seconds for _, seconds in kinds.values()) or 1.0
        for kind, (count, seconds) in kinds.items():
            lines.append(f"| {corpus} | {kind} | {count} | {seconds:.2f} | {100 * seconds / total:.0f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
