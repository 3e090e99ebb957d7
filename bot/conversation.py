"""What a chat remembers between questions, so that "When did she say that?" can be understood."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from bot import english


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
        self._enabled = max_turns > 0

    def reset(self) -> None:
        self._exchanges.clear()

    def remember(self, question: str, answer_text: str) -> None:
        if self._enabled:
            self._exchanges.append(Exchange(question, answer_text))

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return tuple(self._exchanges)

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


def _referents(question: str, last: Exchange) -> list[str]:
    """What `question`'s pronoun most likely means in the light of one earlier exchange."""
    asked = names(last.question)
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
