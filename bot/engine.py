"""The one way to answer a question: every transport calls `Engine.answer` and only renders the result."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from bot.answer import Question, SentenceSelector, WordVectors
from bot.conversation import Conversation, rewrite
from bot.embedding import Embedder
from bot.errors import IndexStoreError
from bot.markup import strip_markup
from bot.search import search
from bot.store import Document, LoadedIndex, current_version, open_index
from bot.text import terms

log = logging.getLogger(__name__)

# Chunks retrieved per question: their sentences are the candidates for the answer.
PASSAGES = 6


class Outcome(Enum):
    ANSWERED = "answered"
    ABSTAINED = "abstained"  # the articles do not hold the answer
    REJECTED = "rejected"  # the message was not a question we can work with


@dataclass(frozen=True)
class Citation:
    """A source the answer quotes: `n` is its marker, `passage` the text around the quoted sentences."""

    n: int
    title: str
    publisher: str | None
    published: str | None
    url: str | None
    source: str
    passage: str


@dataclass(frozen=True)
class Answer:
    """The result every transport renders. `text` carries `[n]` markers and no source list."""

    question: str
    outcome: Outcome
    text: str
    citations: tuple[Citation, ...] = ()
    quotes: tuple[tuple[str, int], ...] = field(default=())  # (sentence, citation n), in answer order

    @property
    def abstained(self) -> bool:
        return self.outcome is not Outcome.ANSWERED


@dataclass(frozen=True)
class SourceInfo:
    """An article of the corpus, for /sources and /start."""

    title: str
    publisher: str | None
    published: str | None
    url: str | None
    source: str


def abstention_text() -> str:
    return "The articles don't say. I found nothing in them that answers this question."


class Engine:
    """Answers questions from one loaded index; swaps to a newer index when a build publishes one."""

    def __init__(
        self, index_dir: Path, embedder: Embedder, index: LoadedIndex, *, max_question_chars: int = 500
    ) -> None:
        self.index_dir = index_dir
        self.embedder = embedder
        self.max_question_chars = max_question_chars
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._word_vectors = WordVectors(embedder.embed)
        self._install(index)

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder, *, max_question_chars: int = 500) -> Engine:
        return cls(index_dir, embedder, open_index(index_dir, embedder), max_question_chars=max_question_chars)

    def _install(self, index: LoadedIndex) -> None:
        selector = SentenceSelector(index.data, self._word_vectors)
        with self._lock:
            self.index, self._selector = index, selector

    @property
    def version(self) -> str:
        return self.index.version

    def update_available(self) -> bool:
        """Whether a build has published a version this engine has neither loaded nor refused (cheap)."""
        version = current_version(self.index_dir)
        return version is not None and version not in (self.index.version, self._refused)

    def reload_if_changed(self) -> bool:
        """Load the index `CURRENT` now names, if it is another one; the old one serves until then.

        Raises an `IndexStoreError` when the new version cannot be used; the old one stays in service.
        """
        version = current_version(self.index_dir)
        if version is None or version in (self.index.version, self._refused):
            return False
        try:
            index = open_index(self.index_dir, self.embedder, version)
        except IndexStoreError:
            self._refused = version  # Checked once: the next build will publish another version.
            raise
        self._install(index)
        log.info("Now serving index %s", version)
        return True

    def sources(self) -> list[SourceInfo]:
        """The articles, newest first."""
        documents = sorted(self.index.data.documents, key=lambda d: (d.published or "", d.title), reverse=True)
        return [SourceInfo(d.title, d.publisher, d.published, d.url, d.doc_id) for d in documents]

    def answer(self, question: str, conversation: Conversation | None = None) -> Answer:
        """Answer one question (blocking: embedding and search run here; call it off the event loop)."""
        cleaned = clean_question(question)
        problem = self._problem_with(question, cleaned)
        if problem:
            return Answer(question=question, outcome=Outcome.REJECTED, text=problem)
        with self._lock:
            index, selector = self.index, self._selector
        referents = conversation.referents(cleaned) if conversation else []
        context = " ".join(referents)
        parsed = Question.parse(cleaned, context)
        vector = self.embedder.embed([rewrite(cleaned, referents)])[0]
        passages = search(index, vector, terms(f"{cleaned} {context}"), k=PASSAGES)
        chosen = selector.choose(parsed, selector.score(parsed, vector, passages))
        result = self._compose(question, chosen, index) if chosen else None
        if result is None:
            result = Answer(question=question, outcome=Outcome.ABSTAINED, text=abstention_text())
        if conversation is not None:
            # Remembered with its pronoun resolved, so that a chain of follow-ups keeps its subject.
            conversation.remember(rewrite(cleaned, referents), result.text if not result.abstained else "")
        return result

    def _problem_with(self, raw: str, cleaned: str) -> str | None:
        if len(raw) > self.max_question_chars * 4 or len(cleaned) > self.max_question_chars:
            return (
                f"That message is too long for a question ({len(raw)} characters). "
                f"Please ask something shorter, up to {self.max_question_chars} characters."
            )
        if not any(ch.isalpha() for ch in cleaned):
            return "Please ask a question about the articles, for example: “Who leads the opposition party?”"
        return None

    def _compose(self, question: str, chosen: list[int], index: LoadedIndex) -> Answer:
        data = index.data
        numbers: dict[int, int] = {}
        quotes: list[tuple[str, int]] = []
        for sentence in chosen:
            document = data.sentences[sentence].document
            n = numbers.setdefault(document, len(numbers) + 1)
            quotes.append((data.sentence_text(sentence), n))
        citations = tuple(
            _citation(
                n,
                data.documents[document],
                [s for s in chosen if data.sentences[s].document == document],
                index,
            )
            for document, n in numbers.items()
        )
        text = " ".join(f"{sentence} [{n}]" for sentence, n in quotes)
        return Answer(question, Outcome.ANSWERED, text, citations, tuple(quotes))


def _citation(n: int, document: Document, sentences: list[int], index: LoadedIndex) -> Citation:
    """The passage shown with a source: each quoted sentence with one sentence of context either side."""
    rows = index.data.sentences
    windows: list[list[int]] = []
    for sentence in sorted(sentences):
        first = sentence - 1 if sentence > 0 and rows[sentence - 1].document == rows[sentence].document else sentence
        last = (
            sentence + 1
            if sentence + 1 < len(rows) and rows[sentence + 1].document == rows[sentence].document
            else sentence
        )
        if windows and first <= windows[-1][1] + 1:
            windows[-1][1] = max(windows[-1][1], last)
        else:
            windows.append([first, last])
    passage = "\n…\n".join(document.text[rows[first].start : rows[last].end] for first, last in windows)
    return Citation(n, document.title, document.publisher, document.published, document.url, document.doc_id, passage)


def clean_question(text: str) -> str:
    """The question without markup, entities, invisible characters or runs of white space (see bot/markup.py)."""
    return strip_markup(text)
