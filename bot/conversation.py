"""What a chat remembers between questions, so that "When did she say that?" can be understood."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from bot import english

# How many answers a chat remembers the quotes of, whatever its history length.
QUOTED_ANSWERS_KEPT = 20


@dataclass(frozen=True)
class Exchange:
    """One question and what was said back: the quoted sentences, if any."""

    question: str
    answer_text: str


def names(text: str) -> list[str]:
    """Capitalized names in `text` (see `english.name_spans`)."""
    return english.name_spans(text)


class Conversation:
    """The last few exchanges of one chat; `reset` forgets them."""

    def __init__(self, max_turns: int = 3) -> None:
        self._exchanges: deque[Exchange] = deque(maxlen=max(1, max_turns))
        # What was quoted is kept longer than the exchanges a pronoun may point to: a "tell me more" several
        # answers on should still not repeat the first.
        self._answers: deque[str] = deque(maxlen=max(1, max_turns, QUOTED_ANSWERS_KEPT))
        self._enabled = max_turns > 0

    def reset(self) -> None:
        self._exchanges.clear()
        self._answers.clear()

    def remember(self, question: str, answer_text: str) -> None:
        if self._enabled:
            self._exchanges.append(Exchange(question, answer_text))
            self._answers.append(answer_text)

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return tuple(self._exchanges)

    def quoted(self, sentence: str) -> bool:
        """Whether a remembered answer quoted this sentence (for "tell me more", which skips them)."""
        return any(sentence in answer for answer in self._answers)

    def expand(self, question: str) -> str | None:
        """The question an ellipsis stands for: the last question with its subject replaced ("how many seats
        does Aq Zhol have?", then "and the Communists?" → "how many seats does the Communists have?"); None when
        the question is not an ellipsis or the last question named no subject to replace."""
        subject = english.ellipsis_subject(question)
        if subject is None or not self._exchanges:
            return None
        last = self._exchanges[-1]
        for name in asked_names(last.question, last.answer_text):
            found = english.find_name(last.question, name)
            if found is not None:
                start, end = found
                return f"{last.question[:start]}{subject}{last.question[end:]}"
        return None

    def referents(self, question: str) -> list[str]:
        """Names from the latest exchange that has any, that a follow-up question points back to; [] for a
        standalone question."""
        if not is_follow_up(question):
            return []
        for exchange in reversed(self._exchanges):
            found = _referents(question, exchange)
            if found:
                return found
        return []


def asked_names(question: str, answer_text: str) -> list[str]:
    """The names a question asked about, however it was typed: its own capitalized names, then the names of its
    answer that it holds in any case or spelling ("what is the democratic party" asked about "Democratic Party")."""
    asked = names(question)
    for span in names(answer_text):
        for name in english.possessive_parts(span):
            if name not in asked and english.spells_name(question, name):
                asked.append(name)
    return asked


def _referents(question: str, last: Exchange) -> list[str]:
    """What `question`'s pronoun most likely means in the light of one earlier exchange."""
    asked = asked_names(last.question, last.answer_text)
    answered = [name for name in names(last.answer_text) if name not in asked]
    asked_about_someone = english.asks_about_person(last.question)
    defining = english.is_definition(last.question)
    if english.PERSONAL_PRONOUN.search(question) and asked_about_someone and not (defining and asked):
        # After "Who held the protest?", "she" is the person the answer named, not the protest.
        return answered[:1] or asked
    return asked or answered[:1]


def rewrite(question: str, referents: list[str]) -> str:
    """The question with its first pronoun replaced by what it refers to, for embedding.

    "What did she say?" after a question about Jane Doe becomes "What did Jane Doe say?".
    """
    if not referents:
        return question
    name = referents[0]
    possessive = f"{name}’s" if not name.endswith("s") else f"{name}’"
    replaced, count = english.POSSESSIVE_PRONOUN.subn(possessive, question, count=1)
    if not count:
        replaced, count = english.PERSONAL_PRONOUN.subn(name, question, count=1)
    return replaced if count else f"{question} ({', '.join(referents)})"


def is_follow_up(question: str) -> bool:
    """A question that leans on the one before: a pronoun, an ellipsis, or too few words (and no name) of its own."""
    if english.ANAPHORA.search(question) or english.ELLIPSIS.match(question.strip()):
        return True
    return len(english.terms(question)) <= 1 and not names(question)
