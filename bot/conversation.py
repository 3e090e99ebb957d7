"""What a chat remembers between questions, so that "How long was he detained?" can be understood."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from bot.text import STOPWORDS, terms

# Words that point back to something said before.
_ANAPHORA = re.compile(
    r"\b(?:he|she|him|her|his|hers|they|them|their|theirs|it|its|this|these|those|the same)\b",
    re.IGNORECASE,
)
_PERSONAL = re.compile(r"\b(?:he|she|him|they|them|it)\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"\b(?:his|its|their)\b", re.IGNORECASE)
# "And the other party?", "What about Almaty?", or a bare "Why?".
_ELLIPSIS = re.compile(r"^(?:(?:and|what about|how about)\b|(?:why|when|where|how|how so|really)\W*$)", re.IGNORECASE)
_QUESTION_WORDS = frozenset("who whom whose what which when where why how is are was were do does did can".split())
# Capitalized words in a row ("Assembly of the People of Kazakhstan"); a possessive ends a name.
_NAME = re.compile(r"[A-Z][\w-]+(?:\s+(?:of\s+the\s+|of\s+|the\s+)?[A-Z][\w-]+)*")
_CALENDAR = frozenset(
    """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split()
)


@dataclass(frozen=True)
class Exchange:
    """One question and what was said back: the quoted sentences, if any."""

    question: str
    answer_text: str


def names(text: str) -> list[str]:
    """Capitalized names in `text`, skipping a capitalized first word that is only a question word."""
    found = []
    for match in _NAME.finditer(text):
        name = match.group()
        first, _, rest = name.partition(" ")
        if first.lower() in _QUESTION_WORDS | STOPWORDS:
            name = rest
        if name and name.lower() not in STOPWORDS | _CALENDAR and name not in found:
            found.append(name)
    return found


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
    asked_about_someone = re.match(r"^\s*(?:who|whom)\b", last.question, re.IGNORECASE)
    defining = re.match(r"^\s*(?:who|what)\s+(?:is|are|was|were)\b", last.question, re.IGNORECASE)
    if _PERSONAL.search(question) and asked_about_someone and not (defining and asked):
        # After "Who held the protest?", "she" is the person the answer named, not the protest.
        return answered[:1] or asked
    return asked or answered[:1]


def rewrite(question: str, referents: list[str]) -> str:
    """The question with its first pronoun replaced by what it refers to, for embedding.

    "What did she say?" after a question about Aruzhan Duisebaeva becomes "What did Aruzhan Duisebaeva say?".
    """
    if not referents:
        return question
    name = referents[0]
    possessive = f"{name}’s" if not name.endswith("s") else f"{name}’"
    replaced, count = _POSSESSIVE.subn(possessive, question, count=1)
    if not count:
        replaced, count = _PERSONAL.subn(name, question, count=1)
    return replaced if count else f"{question} ({', '.join(referents)})"


def is_follow_up(question: str) -> bool:
    """A question that leans on the one before: a pronoun, an ellipsis, or too few words (and no name) of its own."""
    if _ANAPHORA.search(question) or _ELLIPSIS.match(question.strip()):
        return True
    return len(terms(question)) <= 1 and not names(question)
