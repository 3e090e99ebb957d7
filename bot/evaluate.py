"""Score the engine on a question file: our JSON Lines (tests/data/*.jsonl) or SQuAD 2.0's JSON.

A question is right when:
- it should be answered (`must` not empty): the engine answered (did not abstain), the answer holds one
  alternative of every `must` group (case-insensitive) and its citations include the article named by `src`;
- it should not be answered (`must` empty, `src` "none"): the engine abstained; for `offtopic` questions it
  must also cite nothing (showing "the closest passage" is right only for on-topic questions);
- `kind` "chat" (greetings, thanks): the engine replied as to small talk, searching nothing;
- `src` "all" (an overview): the answer cites every article.

`src` names an article by a word of its title or file name ("rally", "crackdown"); "any" accepts any citation.
A SQuAD file becomes a temporary corpus (one file per article, its paragraphs separated by blank lines) and
its questions `answerable` (right when the answer holds one of SQuAD's answer texts and cites the article) or
`unanswerable` (right when the engine abstains).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.conversation import Conversation
from bot.engine import Answer, Engine, Outcome
from bot.errors import BotError

SQUAD_KINDS = ("answerable", "unanswerable")


class EvalFileError(BotError):
    """The question file cannot be read."""


@dataclass
class KindScore:
    questions: int = 0
    answered_right: int = 0
    source_right: int = 0
    abstained_right: int = 0
    false_abstentions: int = 0
    wrong_answers: int = 0
    right: int = 0


@dataclass(frozen=True)
class Judged:
    """One question's answer and whether it was right (the answer's `confidence` is the abstention score)."""

    item: dict[str, Any]
    answer: Answer
    right: bool
    should_answer: bool


@dataclass
class CitationScore:
    """Citation quality of written answers in the ALCE sense (Gao et al., 2023), judged by the writer's own
    support check (bot/writer.py) instead of an NLI model: recall is the share of sentences their citations
    support, precision the share of citations that are needed. `raw` counts every sentence the model wrote,
    `shown` only those the check kept."""

    answers: int = 0
    written: int = 0
    raw_sentences: int = 0
    raw_supported: int = 0
    raw_citations: int = 0
    raw_precise: int = 0
    shown_sentences: int = 0
    shown_supported: int = 0
    shown_citations: int = 0
    shown_precise: int = 0

    def add(self, answer: Answer) -> None:
        self.answers += 1
        if not answer.audit:
            return
        self.written += answer.mode == "llm"
        for verdict in answer.audit:
            self.raw_sentences += 1
            self.raw_supported += verdict.supported
            self.raw_citations += len(verdict.cited)
            self.raw_precise += verdict.precise
            if verdict.kept:
                self.shown_sentences += 1
                self.shown_supported += verdict.supported
                self.shown_citations += len(verdict.cited)
                self.shown_precise += verdict.precise

    def table(self) -> str:
        def share(part: int, whole: int) -> str:
            return f"{100 * part / whole:.0f}%" if whole else "n/a"

        return "\n".join(
            [
                f"written answers: {self.written} of {self.answers} questions (the rest fell back to extractive)",
                f"as the model wrote them: {self.raw_sentences} sentences, citation recall "
                f"{share(self.raw_supported, self.raw_sentences)}, precision "
                f"{share(self.raw_precise, self.raw_citations)}",
                f"as shown after the check: {self.shown_sentences} sentences, citation recall "
                f"{share(self.shown_supported, self.shown_sentences)}, precision "
                f"{share(self.shown_precise, self.shown_citations)}",
            ]
        )


@dataclass
class EvalResult:
    by_kind: dict[str, KindScore] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    judged: list[Judged] = field(default_factory=list)
    citations: CitationScore = field(default_factory=CitationScore)

    @property
    def right(self) -> int:
        return sum(score.right for score in self.by_kind.values())

    @property
    def total(self) -> int:
        return sum(score.questions for score in self.by_kind.values())

    def table(self) -> str:
        columns = ("questions", "right", "answered right", "right source", "abstained right", "false abst.", "wrong")
        header = f"{'kind':<14}" + "".join(f"{c:>16}" for c in columns)
        lines = [header, "-" * len(header)]
        for kind, s in sorted(self.by_kind.items()):
            values = (
                s.questions,
                f"{s.right} ({100 * s.right / max(1, s.questions):.0f}%)",
                s.answered_right,
                s.source_right,
                s.abstained_right,
                s.false_abstentions,
                s.wrong_answers,
            )
            lines.append(f"{kind:<14}" + "".join(f"{v!s:>16}" for v in values))
        lines.append("-" * len(header))
        lines.append(f"right: {self.right}/{self.total} ({100 * self.right / max(1, self.total):.1f}%)")
        if self.citations.raw_sentences:
            lines.append(self.citations.table())
        return "\n".join(lines)


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Questions from our JSON Lines format."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"cannot read {path}: {exc}") from None
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalFileError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not ("q" in item or "turns" in item) or "must" not in item:
            raise EvalFileError(f"{path}:{number}: needs 'q' (or 'turns') and 'must'")
        questions.append(item)
    return questions


def is_squad(path: Path) -> bool:
    """Whether a file is in SQuAD's JSON format rather than our JSON Lines."""
    try:
        with path.open(encoding="utf-8") as stream:
            head = stream.read(200).lstrip()
    except (OSError, UnicodeDecodeError):
        return False
    return (head.startswith("{") and '"data"' in head) or '"version"' in head


def load_squad(path: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A SQuAD 2.0 file as (article title → text with paragraphs separated by blank lines, questions)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        articles: dict[str, str] = {}
        questions: list[dict[str, Any]] = []
        for article in payload["data"]:
            title = str(article["title"]).replace("_", " ")
            articles[title] = "\n\n".join(p["context"].strip() for p in article["paragraphs"])
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    impossible = bool(qa.get("is_impossible"))
                    questions.append(
                        {
                            "id": qa["id"],
                            "kind": SQUAD_KINDS[impossible],
                            "q": qa["question"],
                            "must": [] if impossible else [sorted({a["text"] for a in qa["answers"]})],
                            "src": "none" if impossible else title,
                            "article": title,
                        }
                    )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvalFileError(f"{path} is not a SQuAD 2.0 file: {exc}") from None
    return articles, questions


def write_corpus(articles: dict[str, str], corpus_dir: Path) -> None:
    """One plain-text article per file: the title on the first line, then the paragraphs."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for title, text in articles.items():
        name = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")
        (corpus_dir / f"{name}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")


def cites(answer: Answer, label: str) -> bool:
    if label == "any":
        return bool(answer.citations)
    label = label.lower()
    return any(label in c.title.lower() or label in c.source.lower() for c in answer.citations)


def ask(engine: Engine, item: dict[str, Any], history_turns: int = 3) -> Answer:
    """The answer to a question's last turn, the earlier turns asked first in one conversation."""
    turns = item.get("turns") or [item["q"]]
    conversation = Conversation(history_turns)
    answer = None
    for turn in turns:
        answer = engine.answer(str(turn), conversation)
    assert answer is not None
    return answer


def holds_answer(text: str, must: list[list[str]]) -> bool:
    """Whether `text` holds one alternative of every `must` group (case and runs of white space aside)."""
    flat = " ".join(text.lower().split())
    return bool(must) and all(any(" ".join(alt.lower().split()) in flat for alt in group) for group in must)


def judge(engine: Engine, item: dict[str, Any], answer: Answer) -> tuple[bool, bool]:
    """(right, should it have been answered) for one question and its answer; see the module docstring."""
    must: list[list[str]] = item["must"]
    src = str(item.get("src") or "any")
    kind = str(item.get("kind") or "")
    if kind == "chat":
        return answer.outcome is Outcome.CHAT, False
    if src == "all":
        titles = {d.title for d in engine.index.data.documents}
        return not answer.abstained and {c.title for c in answer.citations} >= titles, True
    if not must:
        return answer.abstained and (kind != "offtopic" or not answer.citations), False
    return not answer.abstained and holds_answer(answer.text, must) and cites(answer, src), True


def evaluate(engine: Engine, questions: list[dict[str, Any]], history_turns: int = 3) -> EvalResult:
    result = EvalResult()
    for item in questions:
        answer = ask(engine, item, history_turns)
        right, should_answer = judge(engine, item, answer)
        result.citations.add(answer)
        kind = str(item.get("kind") or ("followup" if "turns" in item else "question"))
        score = result.by_kind.setdefault(kind, KindScore())
        score.questions += 1
        score.right += right
        if should_answer:
            score.answered_right += right
            score.source_right += bool(item.get("src") in ("all", None) or cites(answer, str(item.get("src"))))
            score.false_abstentions += answer.abstained
            score.wrong_answers += not right and not answer.abstained
        elif kind != "chat":
            score.abstained_right += right
            score.wrong_answers += not right
        result.judged.append(Judged(item, answer, right, should_answer))
        if not right:
            last = (item.get("turns") or [item.get("q")])[-1]
            result.failures.append(f"{item.get('id', '?')} [{kind}]: {last!r} -> {answer.text[:160]!r}")
    return result


def precision_coverage(judged: list[Judged]) -> Curve:
    """The curve of the engine's answers to `judged`.

    Only questions the engine answered or showed a closest passage for count (they have a confidence); an
    answer counts right when it answers an answerable question right, wrong when it answers anything else.
    """
    return curve(
        (j.answer.confidence, j.should_answer and holds_answer(j.answer.text, j.item["must"]))
        for j in judged
        if j.answer.confidence is not None and j.item.get("kind") != "chat"
    )


Curve = list[tuple[float, float, float]]  # (threshold, coverage, precision)


def curve(scored: Iterable[tuple[float, bool]]) -> Curve:
    """(threshold, coverage, precision) at each confidence seen: answering only the questions at or above the
    threshold, the share of questions answered and the share of those answered right.

    `scored` holds, per question, the confidence of the answer it would get and whether that answer is right.
    """
    points = list(scored)
    found = []
    for threshold in sorted({confidence for confidence, _ in points}):
        answered = [right for confidence, right in points if confidence >= threshold]
        found.append((threshold, len(answered) / len(points), sum(answered) / len(answered)))
    return found


def plot_curves(series: dict[str, Curve], threshold: float, path: Path, title: str) -> None:
    """Draw precision-coverage curves of the abstention score, marking the threshold in use on each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for label, points in series.items():
        line = axes.plot([c for _, c, _ in points], [p for _, _, p in points], label=label)[0]
        at = min(points, key=lambda point: abs(point[0] - threshold), default=None)
        if at is not None:
            axes.scatter([at[1]], [at[2]], color=line.get_color(), edgecolor="black", zorder=3)
    axes.set_xlabel("coverage (share of questions answered)")
    axes.set_ylabel("precision (share of answers right)")
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    axes.set_title(f"{title}\n(dots: the threshold in use, {threshold:.3f})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def feedback_report(engine: Engine, entries: list[dict[str, Any]]) -> str:
    """Votes from the Telegram bot: counts, and every 👎 question asked again to see whether it improved."""
    up = sum(1 for entry in entries if entry["vote"] == "up")
    down = [entry for entry in entries if entry["vote"] == "down"]
    lines = [f"feedback: {len(entries)} votes, {up} up, {len(down)} down"]
    for entry in down:
        now = engine.answer(entry["question"])
        status = "same answer" if now.text == entry.get("answer") else "answer changed"
        lines.append(f"  down ({entry.get('time', '?')}): {entry['question']!r}: {status}")
        lines.append(f"    then: {str(entry.get('answer', ''))[:160]!r}")
        if now.text != entry.get("answer"):
            lines.append(f"    now:  {now.text[:160]!r}")
    return "\n".join(lines)
