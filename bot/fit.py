"""`python -m bot fit`: fit the answer scorer's weights and choose its thresholds, keeping checking data apart.

Data (all in tests/data/):
- SQuAD 2.0 slice, two Wikipedia articles (squad2/): labelled answerable and unanswerable questions.
- News questions about the seed articles (news/): `news_qa.jsonl` split once into `fit` and `check` halves;
  the development sets `dev_qa.jsonl` and `extra_qa.jsonl` are fitting data too.

Method:
1. Every question is retrieved once; each candidate sentence gets its features (bot.scorer.FEATURES) and a
   label: it holds the answer (one alternative of every `must` group, or one of SQuAD's answer texts).
2. A logistic regression (scikit-learn) is fitted on the candidates of the fitting questions.
3. Checking, never fitted on: for SQuAD, fit on one article (plus the news fitting half) and check on the
   other, both ways; for the news, fit on both SQuAD articles plus the news fitting half and check on the
   news checking half. Each checking question gets the answer the engine would give and its confidence.
4. The answer threshold is chosen on those checking predictions, maximizing
   (answerable questions answered right) + ABSTENTION_VALUE × (unanswerable questions abstained on):
   a false "the articles don't say" is a dead end, a slightly-off quote is not, so abstaining right is worth
   half an answer. Each source of checking questions (SQuAD, news) counts as much as the other, whatever
   its size: the bot must serve both kinds of material.
5. The "nothing related" threshold, on the best sentence's cosine to the question (`Candidates.relatedness`),
   is chosen on the fitting news questions: off-topic ones against the rest.
6. How close a fact question's second sentence must score to the best one (`second_sentence_ratio`) is chosen
   on the fitting data, with the sentences the engine would quote (`SentenceScorer.choose`): the fewest that
   find as many answers as quoting two always would (within half a point).
7. The weights written are fitted on all fitting data; `scorer.json` records the checking scores.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.answer import Candidates, Choice, Decision, Question
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.embedding import Embedder
from bot.engine import Engine
from bot.evaluate import curve, holds_answer, load_questions, load_squad, plot_curves, write_corpus
from bot.scorer import FEATURES, PARAMS_FILE, Matrix, ScorerParams
from bot.store import open_index

ABSTENTION_VALUE = 0.5
# Kinds the scorer does not decide: small talk and overviews are recognised before any search.
_NOT_SCORED = {"chat", "overview"}
_NEUTRAL = ScorerParams(weights=(0.0,) * len(FEATURES), bias=0.0, answer_threshold=0.0, related_threshold=0.0)


@dataclass
class Example:
    """One question with its scored candidates and, per candidate, whether it holds the answer."""

    group: str  # which data set, for keeping fitting and checking apart
    item: dict[str, Any]
    question: Question
    candidates: Candidates
    labels: list[bool]
    engine: Engine


def temporary_engine(corpus_dir: Path, embedder: Embedder, workdir: Path, chunking: ChunkingSettings) -> Engine:
    index_dir = workdir / "index"
    index_dir.mkdir(parents=True, exist_ok=True)
    build_index(corpus_dir, index_dir, embedder, chunking)
    return Engine(index_dir, embedder, open_index(index_dir, embedder), params=_NEUTRAL)


def collect(engine: Engine, items: Iterable[dict[str, Any]], group: str) -> list[Example]:
    examples = []
    data = engine.index.data
    for item in items:
        if "q" not in item or item.get("kind") in _NOT_SCORED:
            continue
        question, candidates = engine.candidates(str(item["q"]))
        labels = [holds_answer(data.sentence_text(s), item["must"]) for s in candidates.sentences]
        examples.append(Example(group, item, question, candidates, labels, engine))
    return examples


def fit_params(examples: list[Example]) -> tuple[tuple[float, ...], float]:
    from sklearn.linear_model import LogisticRegression

    rows: list[Matrix] = [e.candidates.features for e in examples if e.candidates.sentences]
    labels = [label for e in examples for label in e.labels]
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(np.vstack(rows), np.asarray(labels, dtype=int))
    return tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0])


@dataclass(frozen=True)
class Checked:
    """A checking question under fitted weights, answered at any threshold: its confidence and whether the
    quote it would give holds the answer and cites the right article."""

    group: str
    kind: str
    should_answer: bool
    confidence: float
    relatedness: float
    quote_right: bool
    offtopic: bool


def outcomes(examples: list[Example], params: ScorerParams) -> list[Checked]:
    always = dataclasses.replace(params, answer_threshold=0.0, related_threshold=0.0)
    found = []
    for example in examples:
        candidates = example.candidates.rescored(params)
        engine = example.engine
        _, scorer = engine.live.current()
        choice: Choice = scorer.choose(example.question, candidates, always)
        data = engine.index.data
        text = " ".join(data.sentence_text(s) for s in choice.sentences)
        src = str(example.item.get("src") or "any").lower()
        sources = {
            f"{data.documents[data.sentences[s].document].title} {data.documents[data.sentences[s].document].doc_id}"
            for s in choice.sentences
        }
        cited = src == "any" or any(src in source.lower() for source in sources)
        must = example.item["must"]
        found.append(
            Checked(
                group=example.group,
                kind=str(example.item.get("kind")),
                should_answer=bool(must),
                confidence=candidates.best if choice.decision is not Decision.NOT_COVERED else 0.0,
                relatedness=candidates.relatedness,
                quote_right=holds_answer(text, must) and cited,
                offtopic=example.item.get("kind") == "offtopic",
            )
        )
    return found


SECOND_SENTENCE_RATIOS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9)


def choose_second_sentence_ratio(examples: list[Example], params: ScorerParams) -> float:
    """The highest ratio (fewest second sentences) whose hit rate (the answer among the sentences `choose`
    quotes) is within half a point of the best."""
    answerable = [e for e in examples if e.item["must"] and e.candidates.sentences]
    if not answerable:
        return max(SECOND_SENTENCE_RATIOS)

    def hit_rate(ratio: float) -> float:
        always = dataclasses.replace(params, answer_threshold=0.0, related_threshold=0.0, second_sentence_ratio=ratio)
        hits = 0
        for example in answerable:
            holding = {s for s, label in zip(example.candidates.sentences, example.labels, strict=True) if label}
            _, scorer = example.engine.live.current()
            choice = scorer.choose(example.question, example.candidates.rescored(always), always)
            hits += bool(holding & set(choice.sentences))
        return hits / len(answerable)

    rates = {ratio: hit_rate(ratio) for ratio in SECOND_SENTENCE_RATIOS}
    best = max(rates.values())
    return max(ratio for ratio, rate in rates.items() if rate >= best - 0.005)


def utility(found: list[Checked], threshold: float) -> float:
    """The value of answering at `threshold`, each source (SQuAD, news) weighing the same."""
    total = 0.0
    for source in {o.group.split(":")[0] for o in found}:
        mine = [o for o in found if o.group.split(":")[0] == source]
        right = sum(1 for o in mine if o.should_answer and o.confidence >= threshold and o.quote_right)
        abstained = sum(1 for o in mine if not o.should_answer and o.confidence < threshold)
        total += (right + ABSTENTION_VALUE * abstained) / len(mine)
    return total


def choose_answer_threshold(found: list[Checked]) -> float:
    candidates = sorted({round(o.confidence, 4) for o in found} | {0.0})
    return max(candidates, key=lambda t: (utility(found, t), -t))


def choose_related_threshold(found: list[Checked]) -> float:
    """Separate off-topic questions (nothing related: cite nothing) from on-topic ones by relatedness.

    Of the most accurate thresholds, the lowest (telling an on-topic question "not covered" is a dead end),
    moved halfway down to the next lower relatedness seen, so that a question just below the least related
    on-topic one seen is not cut off by a hair.
    """
    values = sorted({round(o.relatedness, 4) for o in found})
    if not values:
        return 0.0

    def accuracy(t: float) -> int:
        return sum(1 for o in found if (o.relatedness < t) == o.offtopic)

    best = max(values, key=lambda t: (accuracy(t), -t))
    below = [v for v in values if v < best]
    return round((below[-1] + best) / 2, 4) if below else best


def scores(found: list[Checked], threshold: float) -> dict[str, Any]:
    """Per kind: answered right, abstained right, false abstentions, wrong answers, at a threshold."""
    table: dict[str, dict[str, Any]] = {}
    for o in found:
        row = table.setdefault(o.kind, {"questions": 0, "right": 0, "false_abstentions": 0, "wrong": 0})
        row["questions"] += 1
        answered = o.confidence >= threshold
        if o.should_answer:
            row["right"] += answered and o.quote_right
            row["false_abstentions"] += not answered
            row["wrong"] += answered and not o.quote_right
        else:
            row["right"] += not answered
            row["wrong"] += answered
    for row in table.values():
        row["share_right"] = round(row["right"] / row["questions"], 3)
    return table


def run_fit(
    embedder: Embedder,
    data_dir: Path,
    chunking: ChunkingSettings,
    out: Path = PARAMS_FILE,
    plot: Path | None = None,
) -> str:
    """Fit, check, write `out` (and the checking curves to `plot`); returns a report for the terminal."""
    with tempfile.TemporaryDirectory(prefix="kazbot-fit-") as tmp:
        work = Path(tmp)
        articles, squad_questions = load_squad(data_dir / "squad2" / "squad2-normans-complexity.json")
        write_corpus(articles, work / "squad-corpus")
        squad_engine = temporary_engine(work / "squad-corpus", embedder, work / "squad", chunking)
        news_engine = temporary_engine(data_dir / "news", embedder, work / "news", chunking)
        squad: dict[str, list[Example]] = {
            title: collect(squad_engine, (q for q in squad_questions if q["article"] == title), f"squad:{title}")
            for title in articles
        }
        news_items = load_questions(data_dir / "news_qa.jsonl")
        news_fit = collect(news_engine, (q for q in news_items if q.get("split") == "fit"), "news:fit")
        news_check = collect(news_engine, (q for q in news_items if q.get("split") == "check"), "news:check")
        development = [
            e
            for name in ("dev_qa.jsonl", "extra_qa.jsonl")
            if (data_dir / name).exists()
            for e in collect(news_engine, load_questions(data_dir / name), f"news:{name}")
        ]
        fitting_news = news_fit + development

        checking: list[Checked] = []
        for title in articles:
            others = [e for other, examples in squad.items() if other != title for e in examples]
            fold_weights, fold_bias = fit_params(others + fitting_news)
            fold = ScorerParams(fold_weights, fold_bias, 0.0, 0.0)
            fold_ratio = choose_second_sentence_ratio(others + fitting_news, fold)
            checking += outcomes(squad[title], ScorerParams(fold_weights, fold_bias, 0.0, 0.0, fold_ratio))
        all_squad = [e for examples in squad.values() for e in examples]
        weights, bias = fit_params(all_squad + fitting_news)
        ratio = choose_second_sentence_ratio(all_squad + fitting_news, ScorerParams(weights, bias, 0.0, 0.0))
        final = ScorerParams(weights, bias, 0.0, 0.0, ratio)
        checking += outcomes(news_check, final)

        answer_threshold = choose_answer_threshold(checking)
        related_threshold = choose_related_threshold(outcomes(fitting_news, final))
        squad_checking = [o for o in checking if o.group.startswith("squad")]
        news_checking = [o for o in checking if o.group == "news:check"]
        params = ScorerParams(
            weights,
            bias,
            answer_threshold,
            related_threshold,
            ratio,
            provenance={
                "fitted": dt.date.today().isoformat(),
                "model": {"name": embedder.name, "fingerprint": embedder.fingerprint},
                "method": "logistic regression (scikit-learn, C=1) on candidate sentences; see bot/fit.py",
                "fitting_data": {
                    "squad": f"{len(all_squad)} questions of both SQuAD articles",
                    "news": f"{len(fitting_news)} news questions: news_qa.jsonl split 'fit', dev_qa, extra_qa",
                    "candidate_sentences": sum(len(e.labels) for e in all_squad + fitting_news),
                },
                "answer_threshold_from": (
                    f"checking predictions ({len(checking)} questions: SQuAD across articles, news 'check' "
                    f"half), maximizing right answers + {ABSTENTION_VALUE} x right abstentions, each source "
                    "weighing the same"
                ),
                "related_threshold_from": (
                    "fitting news questions: off-topic against on-topic, on the best sentence's cosine"
                ),
                "checking_scores": {
                    "squad_across_articles": scores(squad_checking, answer_threshold),
                    "news_check_half_scorer_only": scores(news_checking, answer_threshold),
                },
            },
        )
        out.write_text(params.to_json(), encoding="utf-8")
    if plot is not None:
        plot_curves(
            {
                "SQuAD 2.0, across articles": curve(
                    (o.confidence, o.should_answer and o.quote_right) for o in squad_checking
                ),
                "news questions, checking half": curve(
                    (o.confidence, o.should_answer and o.quote_right) for o in news_checking
                ),
            },
            answer_threshold,
            plot,
            "Checking data (never fitted on): precision against coverage",
        )
    return _report(params, checking)


def _report(params: ScorerParams, checking: list[Checked]) -> str:
    lines = ["weights:"]
    lines += [f"  {name:<18}{weight:+.3f}" for name, weight in zip(FEATURES, params.weights, strict=True)]
    lines.append(f"  {'bias':<18}{params.bias:+.3f}")
    lines.append(
        f"answer threshold {params.answer_threshold:.4f}, related threshold {params.related_threshold:.4f}, "
        f"second sentence at {params.second_sentence_ratio:.2f} of the best"
    )
    lines.append("checking scores (questions never fitted on), by threshold:")
    for threshold in sorted({0.0, params.answer_threshold, 0.2, 0.3, 0.4, 0.5}):
        squad = scores([o for o in checking if o.group.startswith("squad")], threshold)
        news = scores([o for o in checking if o.group == "news:check"], threshold)
        rows = {f"SQuAD {kind}": row for kind, row in squad.items()} | {
            f"news {kind}": row for kind, row in news.items()
        }
        parts = [f"{kind} {row['right']}/{row['questions']}" for kind, row in sorted(rows.items())]
        lines.append(f"  t={threshold:.3f}: " + ", ".join(parts))
    return "\n".join(lines)
