"""What a chat remembers between questions, so that "When did she say that?" can be understood."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
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
        self._quoted: deque[frozenset[str]] = deque(maxlen=max(max_turns, QUOTED_ANSWERS_KEPT))
        self._enabled = max_turns > 0

    @property
    def remembers(self) -> bool:
        """Whether this chat keeps its exchanges at all (`HISTORY_TURNS` above 0)."""
        return self._enabled

    def reset(self) -> None:
        self._exchanges.clear()
        self._quoted.clear()

    def remember(self, question: str, answer_text: str, quoted: Iterable[str] = ()) -> None:
        """Keep one exchange; `quoted`: the article sentences it showed (in a closest passage too, and under an
        answer a model wrote), which "tell me more" does not show again."""
        if self._enabled:
            self._exchanges.append(Exchange(question, answer_text))
            self._quoted.append(frozenset(quoted))

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return tuple(self._exchanges)

    def quoted(self, sentence: str) -> bool:
        """Whether one of the remembered answers showed this sentence."""
        return any(sentence in shown for shown in self._quoted)

    def expand(self, question: str) -> str | None:
        """The question an ellipsis stands for, or None when it is not one or the last exchange gives it no sense.

        A new subject replaces the last question's ("how many seats does the Green Alliance hold?", then "and
        the Liberals?" → "how many seats does the Liberals hold?"); a time or a circumstance is added to it
        ("and in 2016?" → "how many seats does the Green Alliance hold in 2016").
        """
        found = english.ellipsis(question)
        if found is None or not self._exchanges:
            return None
        last = self._exchanges[-1]
        if not found.replaces_subject:
            return f"{last.question.rstrip(' ?!.')} {found.text}"
        for name in asked_names(last.question, last.answer_text):
            span = english.find_name(last.question, name)
            if span is not None:
                start, end = span
                return f"{last.question[:start]}{found.text}{last.question[end:]}"
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
    """The names a question asked about, however it was typed: its own capitalized names and the names of its
    answer that it writes in any case or spelling ("what is the democratic party" asked about "Democratic
    Party"), in the order the question names them, a name inside a longer one left out ("Freedonia" in "the
    Democratic Party of Freedonia")."""
    own = names(question)
    candidates = own + [part for span in names(answer_text) for part in english.name_parts(span)]
    found: list[tuple[int, int, str]] = []
    for name in dict.fromkeys(candidates):
        span = english.find_name(question, name)
        if span is not None:
            found.append((span[0], -span[1], name))
    asked: list[str] = []
    covered: list[tuple[int, int]] = []
    for start, negative_end, name in sorted(found):
        end = -negative_end
        if not any(first <= start and end <= last for first, last in covered):
            covered.append((start, end))
            asked.append(name)
    return asked + [name for name in own if name not in asked]


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
