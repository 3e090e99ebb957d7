"""The one way to answer a question: every transport calls `Engine.answer` and only renders the result."""

from __future__ import annotations

import html
import logging
import re
import threading
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from bot.answer import Question, SentenceSelector, WordVectors
from bot.conversation import Conversation, rewrite
from bot.embedding import Embedder
from bot.errors import IndexStoreError
from bot.search import Passage, search
from bot.store import Document, LoadedIndex, current_version, open_index
from bot.text import terms
from bot.writer import AnswerWriter, Progress, SentenceVerdict, SourcePassage, WrittenAnswer

log = logging.getLogger(__name__)

# Chunks retrieved per question: their sentences are the candidates for the answer.
PASSAGES = 6
# HTML tags (a "<" followed by a letter or "/": "<30%" is not a tag) and Markdown emphasis or code marks.
_MARKUP = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>|```|\*\*|__|~~|`")


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
    mode: str = "extractive"  # "llm" when the text was written by a model and checked (bot/writer.py)
    audit: tuple[SentenceVerdict, ...] = ()  # the check's verdict on every sentence the model wrote

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
        self,
        index_dir: Path,
        embedder: Embedder,
        index: LoadedIndex,
        *,
        max_question_chars: int = 500,
        writer: AnswerWriter | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.writer = writer  # ANSWER_MODE=llm: answers are written by a model, then checked
        self.embedder = embedder
        self.max_question_chars = max_question_chars
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._word_vectors = WordVectors(embedder.embed)
        self._install(index)

    @classmethod
    def open(
        cls, index_dir: Path, embedder: Embedder, *, max_question_chars: int = 500, writer: AnswerWriter | None = None
    ) -> Engine:
        index = open_index(index_dir, embedder)
        return cls(index_dir, embedder, index, max_question_chars=max_question_chars, writer=writer)

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

    def answer(
        self,
        question: str,
        conversation: Conversation | None = None,
        on_progress: Progress | None = None,
        use_writer: bool = True,
    ) -> Answer:
        """Answer one question (blocking: embedding and search run here; call it off the event loop).

        With a writer (and `use_writer`), `on_progress` gets the written answer's checked text as it grows.
        """
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
        if result is not None and self.writer is not None and use_writer:
            result = written_answer(self.writer, result, index, passages, chosen, conversation, on_progress)
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


def writer_passages(index: LoadedIndex, passages: list[Passage], chosen: list[int]) -> list[SourcePassage]:
    """The retrieved chunks, numbered for the model: those holding the extractive answer's sentences first."""
    data = index.data
    chunks = [p.chunk for p in passages]
    holding = [c for s in chosen for c in chunks if data.chunks[c].first_sentence <= s <= data.chunks[c].last_sentence]
    ordered = list(dict.fromkeys(holding + chunks))
    result = []
    for n, chunk in enumerate(ordered, 1):
        document = data.documents[data.chunks[chunk].document]
        result.append(
            SourcePassage(
                n, document.doc_id, document.title, document.publisher, document.published, data.chunk_text(chunk)
            )
        )
    return result


def written_answer(
    writer: AnswerWriter,
    extractive: Answer,
    index: LoadedIndex,
    passages: list[Passage],
    chosen: list[int],
    conversation: Conversation | None,
    on_progress: Progress | None,
) -> Answer:
    """The checked written answer when the model gives one, else the extractive answer (with the audit, if any).

    Asked only when the extractive selector found an answer: its calibrated abstention decides whether the
    articles answer at all, and a model is never asked about a question they do not answer.
    """
    sources = writer_passages(index, passages, chosen)
    history = [(e.question, e.answer_text) for e in conversation.exchanges] if conversation else []
    written: WrittenAnswer | None = writer.write(extractive.question, sources, history, on_progress)
    if written is None:
        return extractive
    if not written.text:
        return replace(extractive, audit=written.verdicts)
    by_number = {p.n: p for p in sources}
    documents = {d.doc_id: d for d in index.data.documents}
    citations = []
    for k, group in enumerate(written.sources, 1):
        document = documents[by_number[group[0]].source]
        passage = "\n…\n".join(by_number[n].text for n in group)
        citations.append(
            Citation(k, document.title, document.publisher, document.published, document.url, document.doc_id, passage)
        )
    return Answer(
        extractive.question, Outcome.ANSWERED, written.text, tuple(citations), mode="llm", audit=written.verdicts
    )


def clean_question(text: str) -> str:
    """The question without markup, entities or runs of white space."""
    text = _MARKUP.sub(" ", html.unescape(text))
    return " ".join(text.split())
