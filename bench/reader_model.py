"""Could a reading model be fitted here, from the bundled MiniLM and the labelled questions we have?

Issue 6 asks for half of SQuAD's unanswerable questions abstained while 85% of its answerable ones stay right.
The shipped scorer cannot tell them apart (its best probability ranks unanswerable questions *above* answerable
ones). A score that reads the question and the sentence together, a cross-encoder, is what usually tells them
apart; none with trained weights can be installed here, so this script fine-tunes one from the only weights the
project has: the bundled all-MiniLM-L6-v2 encoder, with a one-logit head, trained on (question, candidate
sentence with what it points back to) → "holds the answer".

The folds are those of `python -m bot fit`: train on one SQuAD article plus the news fitting data (the fitting
half of `news_qa.jsonl`, `dev_qa.jsonl`, `extra_qa.jsonl`), check on the other article, both ways. Training pairs
are each question's best candidates under the scorer fitted on the same fold (hard negatives); checking reads
each question's best candidates the same way. On the checking folds it prints, for the shipped scorer (refitted
per fold) and for the cross-encoder:

- the area under the ROC curve of answerable against unanswerable questions, on each one's question score
  (the scorer: its best probability; the cross-encoder: its best probability over the candidates);
- how many unanswerable questions each abstains on while keeping 85%, 90% or 95% of the answerable ones;
- how often its best candidate holds the answer (answerable questions);
- the time to cross-encode one question's candidates against the time to embed the question (the latency aim is
  1.5x of the latter for the whole answer), side by side in one run.

    .venv/bin/python bench/reader_model.py [--epochs 2] [--out bench/results/reader-model.md]

About 25 minutes on 2 CPU cores (training dominates). Nothing is downloaded: the weights are the bundled ones.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from bot.config import Settings
from bot.embedding import SentenceTransformerEmbedder, bundled_model_dir
from bot.evaluate import load_questions, load_squad, write_corpus
from bot.fit import Example, collect, fit_params, temporary_engine
from bot.scorer import ScorerParams

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests/data"
DEFAULT_OUT = ROOT / "bench/results/reader-model.md"
IN_MAKE_BENCH = False  # about 25 minutes: it trains two models
TRAIN_CANDIDATES = 6  # per question, best first under the fold's scorer
CHECK_CANDIDATES = 5
MAX_TOKENS = 128
BATCH = 16
LEARNING_RATE = 4e-5
KEEP_ANSWERABLE = (0.85, 0.90, 0.95)
TIMED_QUESTIONS = 60


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    holds_answer: bool
    scorer_probability: float


@dataclass(frozen=True)
class Asked:
    """A question's best candidates, and whether SQuAD (or our label) says the articles answer it."""

    answerable: bool
    pairs: list[Pair]


@dataclass(frozen=True)
class Scored:
    """One checking question: whether it is answerable, and each method's question score and top pick."""

    answerable: bool
    scorer_score: float
    scorer_top_right: bool
    reader_score: float
    reader_top_right: bool


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def candidates(example: Example, params: ScorerParams, count: int) -> Asked:
    """The question's best `count` candidates under `params`, each with the sentences it points back to."""
    scored = example.candidates.rescored(params)
    holds = dict(zip(example.candidates.sentences, example.labels, strict=True))
    data = example.engine.index.data
    _, scorer = example.engine.live.current()
    pairs = [
        Pair(
            str(example.item["q"]),
            " ".join(data.sentence_text(s) for s in scorer.with_antecedents(sentence)),
            holds[sentence],
            probability,
        )
        for sentence, probability in list(zip(scored.sentences, scored.probabilities, strict=True))[:count]
    ]
    return Asked(bool(example.item["must"]), pairs)


def train(pairs: list[Pair], epochs: int, seed: int) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The bundled MiniLM with a one-logit head, fine-tuned on `pairs` (positives weighted up to balance)."""
    random.seed(seed)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_dir())
    model = AutoModelForSequenceClassification.from_pretrained(bundled_model_dir(), num_labels=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * -(-len(pairs) // BATCH)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / warmup) * (1 - i / steps))
    positives = sum(p.holds_answer for p in pairs)
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(pairs) - positives) / max(1, positives)))
    model.train()
    order = list(pairs)
    for _ in range(epochs):
        random.shuffle(order)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            logits = model(**encode(tokenizer, batch)).logits.squeeze(-1)
            loss = loss_of(logits, torch.tensor([float(p.holds_answer) for p in batch]))
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    model.eval()
    return tokenizer, model


def encode(tokenizer: PreTrainedTokenizerBase, pairs: list[Pair]) -> dict[str, torch.Tensor]:
    return dict(
        tokenizer(
            [p.question for p in pairs],
            [p.sentence for p in pairs],
            truncation=True,
            max_length=MAX_TOKENS,
            padding=True,
            return_tensors="pt",
        )
    )


def read(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, pairs: list[Pair]) -> list[float]:
    with torch.no_grad():
        return [float(p) for p in torch.sigmoid(model(**encode(tokenizer, pairs)).logits.squeeze(-1)).reshape(-1)]


def check(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel, questions: list[Asked]) -> list[Scored]:
    found = []
    for question in questions:
        if not question.pairs:
            continue
        pairs = question.pairs
        reader = read(tokenizer, model, pairs)
        top = int(np.argmax(reader))
        found.append(
            Scored(
                answerable=question.answerable,
                scorer_score=pairs[0].scorer_probability,
                scorer_top_right=pairs[0].holds_answer,
                reader_score=max(reader),
                reader_top_right=pairs[top].holds_answer,
            )
        )
    return found


def abstained_keeping(scores: list[float], answerable: list[bool], keep: float) -> int:
    """Unanswerable questions below the threshold that keeps `keep` of the answerable questions."""
    kept = sorted(s for s, a in zip(scores, answerable, strict=True) if a)
    threshold = kept[int((1 - keep) * len(kept))]
    return sum(1 for s, a in zip(scores, answerable, strict=True) if not a and s < threshold)


def timing(
    embedder: SentenceTransformerEmbedder,
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel,
    questions: list[Asked],
) -> tuple[float, float]:
    """Median seconds to embed a question and to cross-encode its candidates, interleaved question by question.

    The embedder's single-question cache is cleared outside the timed region, as `bench/latency.py` does."""
    embedding, reading = [], []
    for question in [q for q in questions if q.pairs][:TIMED_QUESTIONS]:
        embedder._embed_one.cache_clear()
        started = time.perf_counter()
        embedder.embed([question.pairs[0].question])
        embedding.append(time.perf_counter() - started)
        started = time.perf_counter()
        read(tokenizer, model, question.pairs)
        reading.append(time.perf_counter() - started)
    return statistics.median(embedding), statistics.median(reading)


def report(checked: list[Scored], embed_seconds: float, read_seconds: float, epochs: int) -> str:
    answerable = [c.answerable for c in checked]
    unanswerable = answerable.count(False)
    lines = [
        "# Could a reading model be fitted here? (`bench/reader_model.py`)",
        "",
        "SQuAD 2.0 across articles (trained on one article plus the news fitting data, checked on the other, both "
        f"ways): {answerable.count(True)} answerable and {unanswerable} unanswerable checking questions. The "
        f"cross-encoder is the bundled all-MiniLM-L6-v2 fine-tuned for {epochs} epochs on each fold's "
        f"(question, candidate) pairs, {TRAIN_CANDIDATES} best candidates per question; both methods read each "
        f"checking question's {CHECK_CANDIDATES} best candidates under the fold's scorer.",
        "",
        "| | shipped scorer (refitted per fold) | fine-tuned MiniLM cross-encoder |",
        "| --- | --- | --- |",
    ]
    scorer = [c.scorer_score for c in checked]
    reader = [c.reader_score for c in checked]
    lines.append(
        "| ROC AUC, answerable against unanswerable | "
        f"{roc_auc_score(answerable, scorer):.3f} | {roc_auc_score(answerable, reader):.3f} |"
    )
    for keep in KEEP_ANSWERABLE:
        lines.append(
            f"| unanswerable abstained, keeping {keep:.0%} of answerable | "
            f"{abstained_keeping(scorer, answerable, keep)}/{unanswerable} | "
            f"{abstained_keeping(reader, answerable, keep)}/{unanswerable} |"
        )
    lines.append(
        "| best candidate holds the answer (answerable) | "
        f"{sum(c.scorer_top_right for c in checked if c.answerable)} | "
        f"{sum(c.reader_top_right for c in checked if c.answerable)} |"
    )
    lines += [
        "",
        f"Time, medians over {TIMED_QUESTIONS} checking questions interleaved in one run: embedding the question "
        f"{embed_seconds * 1000:.1f} ms; cross-encoding its {CHECK_CANDIDATES} candidates {read_seconds * 1000:.1f} ms "
        f"({read_seconds / embed_seconds:.1f}x the embedding; the whole answer's aim is 1.5x).",
        "",
        f"Run on {datetime.now():%Y-%m-%d} on the 2-core VM (CPU only).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(2)
    settings = Settings()
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    with tempfile.TemporaryDirectory(prefix="kazbot-reader-") as tmp:
        work = Path(tmp)
        articles, squad_questions = load_squad(DATA / "squad2" / "squad2-normans-complexity.json")
        write_corpus(articles, work / "squad-corpus")
        squad_engine = temporary_engine(work / "squad-corpus", embedder, work / "squad", settings.chunking)
        news_engine = temporary_engine(DATA / "news", embedder, work / "news", settings.chunking)
        squad = {
            title: collect(squad_engine, (q for q in squad_questions if q["article"] == title), f"squad:{title}")
            for title in articles
        }
        news_items = [q for q in load_questions(DATA / "news_qa.jsonl") if q.get("split") == "fit"]
        news = collect(news_engine, news_items, "news:fit")
        for name in ("dev_qa.jsonl", "extra_qa.jsonl"):
            news += collect(news_engine, load_questions(DATA / name), f"news:{name}")
        checked: list[Scored] = []
        timed: tuple[float, float] | None = None
        for fold, title in enumerate(articles):
            training = [e for other, examples in squad.items() if other != title for e in examples] + news
            weights, bias = fit_params(training)
            params = ScorerParams(weights, bias, 0.0, 0.0)
            pairs = [p for e in training for p in candidates(e, params, TRAIN_CANDIDATES).pairs]
            print(f"fold {fold + 1}/{len(articles)}: training on {len(pairs)} pairs", flush=True)
            tokenizer, model = train(pairs, args.epochs, seed=fold)
            checking = [candidates(e, params, CHECK_CANDIDATES) for e in squad[title]]
            checked += check(tokenizer, model, checking)
            timed = timed or timing(embedder, tokenizer, model, checking)
    assert timed is not None
    text = report(checked, *timed, epochs=args.epochs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
