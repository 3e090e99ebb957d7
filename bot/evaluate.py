"""Score the engine on a question file (the format of tests/data/dev_qa.jsonl and dev_followup.jsonl).

A question is right when:
- it should be answered (`must` not empty): the answer holds one alternative of every `must` group
  (case-insensitive) and its citations include the article named by `src`;
- it should not (`must` empty, `src` "none"): the engine abstained and cited nothing.

`src` names an article by a word of its title or file name ("rally", "crackdown"); "any" accepts any citation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.conversation import Conversation
from bot.engine import Answer, Engine
from bot.errors import BotError


class EvalFileError(BotError):
    """The question file cannot be read."""


@dataclass
class KindScore:
    questions: int = 0
    answered_right: int = 0
    source_right: int = 0
    abstained_right: int = 0
    right: int = 0


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
    citations: CitationScore = field(default_factory=CitationScore)

    @property
    def right(self) -> int:
        return sum(score.right for score in self.by_kind.values())

    @property
    def total(self) -> int:
        return sum(score.questions for score in self.by_kind.values())

    def table(self) -> str:
        header = f"{'kind':<14}{'questions':>10}{'answered right':>16}{'right source':>14}{'abstained right':>17}"
        lines = [header, "-" * len(header)]
        for kind, s in sorted(self.by_kind.items()):
            lines.append(
                f"{kind:<14}{s.questions:>10}{s.answered_right:>16}{s.source_right:>14}{s.abstained_right:>17}"
            )
        lines.append("-" * len(header))
        lines.append(f"right: {self.right}/{self.total}")
        if self.citations.raw_sentences:
            lines.append(self.citations.table())
        return "\n".join(lines)


def load_questions(path: Path) -> list[dict[str, Any]]:
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


def cites(answer: Answer, label: str) -> bool:
    if label == "any":
        return bool(answer.citations)
    label = label.lower()
    return any(label in c.title.lower() or label in c.source.lower() for c in answer.citations)


def evaluate(engine: Engine, questions: list[dict[str, Any]], history_turns: int = 3) -> EvalResult:
    result = EvalResult()
    for item in questions:
        turns = item.get("turns") or [item["q"]]
        conversation = Conversation(history_turns)
        answer = None
        for turn in turns:
            answer = engine.answer(str(turn), conversation)
        assert answer is not None
        result.citations.add(answer)
        kind = str(item.get("kind") or ("followup" if "turns" in item else "question"))
        score = result.by_kind.setdefault(kind, KindScore())
        score.questions += 1
        must: list[list[str]] = item["must"]
        src = str(item.get("src") or "any")
        if must:
            text = answer.text.lower()
            content_right = not answer.abstained and all(any(alt.lower() in text for alt in group) for group in must)
            source_right = cites(answer, src)
            score.answered_right += content_right
            score.source_right += source_right
            right = content_right and source_right
        else:
            right = answer.abstained and not answer.citations
            score.abstained_right += right
        score.right += right
        if not right:
            result.failures.append(f"{item.get('id', '?')}: {turns[-1]!r} -> {answer.text[:160]!r}")
    return result


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
