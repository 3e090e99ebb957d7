"""The one way to answer a question: every transport calls `Engine.answer` and only renders the result."""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from bot import english, russian
from bot.answer import Candidates, Choice, Decision, Question, SentenceScorer, WordVectors
from bot.conversation import Conversation, rewrite
from bot.embedding import Embedder, Vectors
from bot.live_index import LiveIndex
from bot.markup import strip_markup
from bot.multilingual import MultilingualModel, is_english, not_covered_note, quotes_note
from bot.scorer import ScorerParams
from bot.search import Passage, search
from bot.store import Document
from bot.stores.base import PassageStore, StoreSource
from bot.stores.faiss_dir import FaissDirSource
from bot.writer import AnswerWriter, Progress, SentenceVerdict, SourcePassage, WrittenAnswer

# Chunks retrieved per question: their sentences are the candidates for the answer.
PASSAGES = 8
# Sentences ranked per chunk wanted when a question not in English looks for its closest chunks.
CLOSEST_SENTENCES_PER_CHUNK = 8

# Questions not in English (the second retrieval leg, bot/multilingual.py): the best sentence by cosine with the
# question (multilingual-e5-small) is quoted when its cosine is at least MULTILINGUAL_ANSWER_COSINE, shown as
# the closest passage when at least MULTILINGUAL_RELATED_COSINE, and below that the articles don't cover it.
# e5's cosines are compressed (0.74-0.87 on tests/data/ru_qa.jsonl), hence values unlike the English ones.
# Both were chosen by bench/russian_threshold.py on the fitting half of tests/data/ru_qa.jsonl only (31
# questions; the split was drawn once, seed 20261201, before any result was seen): the answer threshold gets
# the most fitting questions right (21/31; the middle of the widest run of best thresholds, 0.780-0.783); the
# closest passage never paid there (it held the answer of no more answerable questions than it was shown to
# unanswerable ones), so the related threshold equals it and a question below it is not covered. The checking
# half scores 18/31 at these values (bench/results/russian-threshold.md; README, "Questions in Russian").
MULTILINGUAL_ANSWER_COSINE = 0.782
MULTILINGUAL_RELATED_COSINE = 0.782

log = logging.getLogger(__name__)


class Outcome(Enum):
    ANSWERED = "answered"
    ABSTAINED = "abstained"  # the articles do not hold the answer (the closest passage may be shown)
    REJECTED = "rejected"  # the message was not a question we can work with
    CHAT = "chat"  # a greeting, thanks or "what can you do?": answered kindly, nothing searched


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
    confidence: float | None = None  # the scorer's probability that the best sentence answers the question
    mode: str = "extractive"  # "llm" when the text was written by a model and checked (bot/writer.py)
    audit: tuple[SentenceVerdict, ...] = ()  # the check's verdict on every sentence the model wrote
    # The question as it was answered when it leaned on the conversation ("how long was Jane Doe detained?" for
    # "how long was she detained?", the subject of a "tell me more"); None when it was answered as asked.
    understood: str | None = None

    @property
    def abstained(self) -> bool:
        """No answer from the articles: they do not hold it, or the message was not a question for them."""
        return self.outcome in (Outcome.ABSTAINED, Outcome.REJECTED)


@dataclass(frozen=True)
class SourceInfo:
    """An article of the corpus, for /sources and /start."""

    title: str
    publisher: str | None
    published: str | None
    url: str | None
    source: str


NOT_COVERED_TEXT = "The articles don't cover this: I found nothing in them about it."
CLOSEST_PREFIX = "The articles don't say exactly; the closest passage:"
NO_MORE_TEXT = "That is all the articles say about it that I have not quoted yet."
NOTHING_BEFORE_TEXT = "Ask me something about the articles first; then I can tell you more."
NO_HISTORY_TEXT = "I don't keep our conversation here, so I can't tell what to go on with: ask your question in full."
MORE_OF_WHAT_TEXT = "More about what? Ask me about a person, an event or an article, and I'll tell you more."
# An overview quotes the lead sentence of at most this many articles, the newest first.
OVERVIEW_ARTICLES = 5


class Engine:
    """Answers questions from the index in service (see `LiveIndex` for how a rebuilt one is swapped in)."""

    def __init__(
        self,
        source: StoreSource | Path,
        embedder: Embedder,
        index: PassageStore,
        *,
        max_question_chars: int = 500,
        params: ScorerParams | None = None,
        writer: AnswerWriter | None = None,
        multilingual: MultilingualModel | None = None,
    ) -> None:
        self.writer = writer  # ANSWER_MODE=llm: answers are written by a model, then checked
        # The second retrieval leg, for questions not in English; used with an index that holds its vectors.
        self.multilingual = multilingual
        self.embedder = embedder
        self.max_question_chars = max_question_chars
        scorer_params = params or ScorerParams.load()
        fitted_for = scorer_params.provenance.get("model", {}).get("fingerprint")
        if fitted_for not in (None, embedder.fingerprint):
            log.warning(
                "The answer scorer was fitted with another embedding model than %s: its thresholds may not fit "
                "this model's similarities; run 'python -m bot fit' to fit it for this one",
                embedder.name,
            )
        word_vectors = WordVectors(embedder.embed)
        # A path is the default store, an index directory (bot/stores/faiss_dir.py).
        source = FaissDirSource(source) if isinstance(source, Path) else source
        self.live = LiveIndex(
            source, embedder, index, lambda loaded: SentenceScorer(loaded.data, scorer_params, word_vectors)
        )

    @classmethod
    def open(
        cls,
        source: StoreSource | Path,
        embedder: Embedder,
        *,
        max_question_chars: int = 500,
        params: ScorerParams | None = None,
        writer: AnswerWriter | None = None,
        multilingual: MultilingualModel | None = None,
    ) -> Engine:
        """An engine on the newest state of `source` (a store, or an index directory)."""
        source = FaissDirSource(source) if isinstance(source, Path) else source
        index = source.open(embedder)
        return cls(
            source,
            embedder,
            index,
            max_question_chars=max_question_chars,
            params=params,
            writer=writer,
            multilingual=multilingual,
        )

    @property
    def index(self) -> PassageStore:
        return self.live.current()[0]

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def multilingual_ready(self) -> bool:
        """Whether questions not in English are answered by the multilingual leg (with the index in service)."""
        return self._multilingual_vectors(self.index) is not None

    def _multilingual_vectors(self, index: PassageStore) -> Vectors | None:
        """The index's multilingual sentence vectors, when they were made by this engine's multilingual model."""
        vectors = index.data.multilingual_vectors
        if self.multilingual is None or vectors is None or not index.manifest.has_multilingual(self.multilingual):
            return None
        return vectors

    def newest_articles(self, count: int) -> list[Document]:
        """The `count` newest articles, with their texts."""
        index = self.index
        return [index.data.documents[n] for n in _newest_first(index)[:count]]

    def update_available(self) -> bool:
        return self.live.update_available()

    def reload_if_changed(self) -> bool:
        return self.live.reload_if_changed()

    def sources(self) -> list[SourceInfo]:
        """The articles, newest first."""
        index = self.index  # one state throughout, though a rebuilt one may be swapped in meanwhile
        return [
            SourceInfo(d.title, d.publisher, d.published, d.url, d.doc_id)
            for d in map(index.data.document_metadata, _newest_first(index))
        ]

    def answer(
        self,
        question: str,
        conversation: Conversation | None = None,
        on_progress: Progress | None = None,
        use_writer: bool = True,
    ) -> Answer:
        """Answer one message (blocking: embedding and search run here; call it off the event loop).

        With a writer (and `use_writer`), `on_progress` gets the written answer's checked text as it grows.
        """
        cleaned = clean_question(question)
        problem = self._problem_with(question, cleaned)
        if problem:
            return Answer(question=question, outcome=Outcome.REJECTED, text=problem)
        index, scorer = self.live.current()
        talk = english.small_talk(cleaned)
        if talk is not None:
            return Answer(question=question, outcome=Outcome.CHAT, text=_small_talk_reply(talk, index))
        if english.asks_overview(cleaned):
            result = _overview(question, index)
            if conversation is not None:
                conversation.remember(cleaned, result.text, [sentence for sentence, _ in result.quotes])
            return result
        if english.asks_more(cleaned):
            return self._more(question, conversation, index, scorer, use_writer=use_writer, on_progress=on_progress)
        vectors = None if is_english(cleaned) else self._multilingual_vectors(index)
        if vectors is not None:
            return self._answer_other_language(
                question, cleaned, index, scorer, vectors, conversation, use_writer=use_writer, on_progress=on_progress
            )
        typed = cleaned
        expanded = conversation.expand(cleaned) if conversation else None
        if expanded is not None:
            cleaned = expanded  # an ellipsis is answered, and remembered, as the question it stands for
        referents = conversation.referents(cleaned) if conversation else []
        resolved = rewrite(cleaned, referents)
        parsed, passages, candidates = self._retrieve(cleaned, resolved, referents, index, scorer)
        choice = scorer.choose(parsed, candidates)
        if choice.decision is Decision.NOT_COVERED:
            result = Answer(question=question, outcome=Outcome.ABSTAINED, text=NOT_COVERED_TEXT)
        else:
            result = _compose(question, choice, index, dated=parsed.latest)
        if result.outcome is Outcome.ANSWERED and self.writer is not None and use_writer:
            result = written_answer(self.writer, result, index, passages, choice.sentences, conversation, on_progress)
        result = dataclasses.replace(
            _with_quotes_note(result, cleaned),
            confidence=candidates.best,
            understood=resolved if resolved != typed else None,
        )
        if conversation is not None:
            # Remembered with its pronoun resolved, so that a chain of follow-ups keeps its subject.
            shown = [index.data.sentence_text(s) for s in choice.sentences]
            conversation.remember(resolved, result.text if not result.abstained else "", shown)
        return result

    def _more(
        self,
        question: str,
        conversation: Conversation | None,
        index: PassageStore,
        scorer: SentenceScorer,
        *,
        use_writer: bool = True,
        on_progress: Progress | None = None,
    ) -> Answer:
        """ "Tell me more": a passage on the last question's subject that this chat was not shown yet."""
        if conversation is None or not conversation.remembers:
            return Answer(question=question, outcome=Outcome.CHAT, text=NO_HISTORY_TEXT)
        if not conversation.exchanges:
            return Answer(question=question, outcome=Outcome.CHAT, text=NOTHING_BEFORE_TEXT)
        subject = conversation.exchanges[-1].question
        if english.asks_overview(subject) or not is_english(subject):
            # After an overview there is no one subject to go on with; another language needs its own words.
            return Answer(question=question, outcome=Outcome.CHAT, text=MORE_OF_WHAT_TEXT)
        parsed, passages, candidates = self._retrieve(subject, subject, [], index, scorer)
        text = index.data.sentence_text
        fresh = candidates.without({s for s in candidates.sentences if conversation.quoted(text(s))})
        # A passage, as for "tell me about": more of the subject, not another answer to the question.
        choice = scorer.choose(dataclasses.replace(parsed, explain=True), fresh)
        quoted = _not_yet_shown(choice.sentences, lambda s: conversation.quoted(text(s)), index)
        if choice.decision is Decision.NOT_COVERED or not quoted:
            result = Answer(question=question, outcome=Outcome.ABSTAINED, text=NO_MORE_TEXT)
        else:
            # Below the answer threshold, it is shown as the closest passage and says so, as any answer would.
            result = _compose(question, Choice(choice.decision, quoted), index)
            if result.outcome is Outcome.ANSWERED and self.writer is not None and use_writer:
                # The model is asked about the subject, not about "tell me more".
                written = written_answer(
                    self.writer,
                    dataclasses.replace(result, question=subject),
                    index,
                    passages,
                    quoted,
                    conversation,
                    on_progress,
                )
                result = dataclasses.replace(written, question=question)
        result = dataclasses.replace(result, confidence=fresh.best, understood=subject)
        # Remembered under the same subject, so that another "more" goes on from here.
        conversation.remember(subject, result.text if not result.abstained else "", [text(s) for s in quoted])
        return result

    def _answer_other_language(
        self,
        question: str,
        cleaned: str,
        index: PassageStore,
        scorer: SentenceScorer,
        vectors: Vectors,
        conversation: Conversation | None,
        *,
        use_writer: bool = True,
        on_progress: Progress | None = None,
    ) -> Answer:
        """A question not in English, answered from the multilingual sentence vectors: the sentence closest in
        meaning is quoted (with the one before it when it opens with a pronoun) when its cosine clears
        `MULTILINGUAL_ANSWER_COSINE`. With a writer that has a cross-lingual model, a Russian question then gets
        a written Russian answer from the chunks holding the closest sentences, each sentence checked against
        the English passages it cites (bot/writer.py); the extractive answer stays the fallback. Other
        languages (Kazakh among them) stay extractive: the check cannot read them."""
        assert self.multilingual is not None
        meant = cleaned
        if conversation is not None and conversation.exchanges and russian.points_back(cleaned):
            # "На сколько суток его задержали?" means what it says with the last question's subject: the model
            # reads both together (it was trained on passages, not on pronoun resolution).
            meant = f"{conversation.exchanges[-1].question} {cleaned}"
        query = self.multilingual.embed_query([meant])[0]
        # Exact search, one dot product per sentence: a few thousand sentences take well under a millisecond.
        # At scale (hundreds of thousands of sentences) a FAISS index over these vectors would take over, as it
        # does for chunks (bot/ann.py).
        cosines = vectors @ query
        best = int(np.argmax(cosines)) if len(cosines) else -1
        cosine = float(cosines[best]) if best >= 0 else 0.0
        if best < 0 or cosine < MULTILINGUAL_RELATED_COSINE:
            # Said in the question's language first, then in the articles'.
            note = not_covered_note(cleaned)
            text = f"{note}\n{NOT_COVERED_TEXT}" if note else NOT_COVERED_TEXT
            result = Answer(question=question, outcome=Outcome.ABSTAINED, text=text)
        else:
            decision = Decision.ANSWER if cosine >= MULTILINGUAL_ANSWER_COSINE else Decision.CLOSEST
            choice = Choice(decision, scorer.with_antecedents(best))
            result = _with_quotes_note(_compose(question, choice, index), cleaned)
            writer = self.writer
            if (
                result.outcome is Outcome.ANSWERED
                and writer is not None
                and writer.cross_lingual is not None
                and use_writer
                and russian.is_russian(cleaned)
            ):
                passages = closest_chunks(index, cosines, PASSAGES)
                result = written_answer(writer, result, index, passages, choice.sentences, conversation, on_progress)
        if meant != cleaned:
            result = dataclasses.replace(result, understood=meant)
        if conversation is not None:
            # Remembered with the subject it leaned on, so that a chain of follow-ups keeps it.
            shown = [sentence for sentence, _ in result.quotes]
            conversation.remember(meant, result.text if not result.abstained else "", shown)
        return result

    def candidates(self, question: str, referents: list[str] | None = None) -> tuple[Question, Candidates]:
        """The question as parsed and its scored candidate sentences: what `answer` decides on (and what
        `python -m bot fit` fits the scorer on)."""
        index, scorer = self.live.current()
        referents = referents or []
        parsed, _, candidates = self._retrieve(question, rewrite(question, referents), referents, index, scorer)
        return parsed, candidates

    def _retrieve(
        self, question: str, resolved: str, referents: list[str], index: PassageStore, scorer: SentenceScorer
    ) -> tuple[Question, list[Passage], Candidates]:
        """Search by the question with its pronouns `resolved` (its meaning) and its words with the referents'."""
        context = " ".join(referents)
        parsed = Question.parse(question, context)
        vector = self.embedder.embed([resolved])[0]
        passages = search(index, vector, english.terms(f"{question} {context}"), k=PASSAGES)
        return parsed, passages, scorer.candidates(parsed, vector, passages)

    def _problem_with(self, raw: str, cleaned: str) -> str | None:
        if len(raw) > self.max_question_chars * 4 or len(cleaned) > self.max_question_chars:
            return (
                f"That message is too long for a question ({len(raw)} characters). "
                f"Please ask something shorter, up to {self.max_question_chars} characters."
            )
        if not any(ch.isalpha() for ch in cleaned):
            return "Please ask a question about the articles in words, or ask “What are the articles about?”"
        return None


def _not_yet_shown(sentences: list[int], shown: Callable[[int], bool], index: PassageStore) -> list[int]:
    """The sentences not shown yet, with any shown one that an unshown one points back to: a pronoun at the
    start of a quote never dangles, even when what it points to was quoted before."""
    kept: set[int] = set()
    for sentence in reversed(sentences):
        follows = sentence + 1 in kept and english.points_back(index.data.sentence_text(sentence + 1))
        if not shown(sentence) or follows:
            kept.add(sentence)
    return [s for s in sentences if s in kept]


def _with_quotes_note(answer: Answer, question: str) -> Answer:
    """An answer quoting the articles to a question not in English opens with a note, in the question's
    language, that the quotes are in English (after `CLOSEST_PREFIX` for the closest passage); the quotes
    themselves stay verbatim."""
    note = quotes_note(question) if answer.quotes else None
    if not note:
        return answer
    if answer.text.startswith(CLOSEST_PREFIX):  # the closest passage still says so first
        return dataclasses.replace(
            answer, text=f"{CLOSEST_PREFIX}\n{note}\n{answer.text[len(CLOSEST_PREFIX) :].lstrip()}"
        )
    return dataclasses.replace(answer, text=f"{note}\n{answer.text}")


def _newest_first(index: PassageStore) -> list[int]:
    """The document numbers, the newest article first."""
    data = index.data

    def newest(number: int) -> tuple[str, str]:
        metadata = data.document_metadata(number)
        return english.date_sort_key(metadata.published), metadata.title

    return sorted(range(len(data.documents)), key=newest, reverse=True)


def _small_talk_reply(kind: english.SmallTalk, index: PassageStore) -> str:
    count = len(index.data.documents)
    articles = f"{count} news article{'s' if count != 1 else ''}"
    if kind is english.SmallTalk.THANKS:
        return "You're welcome! Ask me anything else about the articles."
    if kind is english.SmallTalk.GOODBYE:
        return "Goodbye! Come back any time with more questions about the articles."
    if kind is english.SmallTalk.ACKNOWLEDGEMENT:
        return "Ask me anything about the articles, or “What are the articles about?” for an overview."
    titles = "; ".join(f"“{index.data.document_metadata(n).title}”" for n in _newest_first(index)[:3])
    newest = f" The newest: {titles}." if titles else ""
    if kind is english.SmallTalk.GREETING:
        return f"Hello! I answer questions about {articles}, quoting them with their sources.{newest}"
    return (
        f"I answer questions about {articles} by quoting the sentences that answer them, with their sources, "
        f"and I say so when the articles don't hold the answer. Ask “What are the articles about?” for an "
        f"overview, or ask about a person, a place or an event; “tell me more” goes on from my last answer.{newest}"
    )


def _overview(question: str, index: PassageStore) -> Answer:
    """The lead sentence of each article, the newest first: what the collection is about."""
    data = index.data
    leads: list[int] = []
    for number in _newest_first(index)[:OVERVIEW_ARTICLES]:
        sentences = data.document_sentences(number)
        if sentences:
            leads.append(sentences[0])
    if not leads:
        return Answer(question=question, outcome=Outcome.ABSTAINED, text=NOT_COVERED_TEXT)
    answer = _compose(question, Choice(Decision.ANSWER, leads), index, dated=True)
    total = len(data.documents)
    shown = f"the newest {len(leads)} of {total}" if total > len(leads) else f"{total}"
    return dataclasses.replace(answer, text=f"The articles ({shown}), newest first:\n{answer.text}")


def _compose(question: str, choice: Choice, index: PassageStore, *, dated: bool = False) -> Answer:
    """The answer text: each quoted sentence followed by its source's `[n]`; "As of <date>:" before the
    quotes of each article when several articles are quoted or the question asks what is current."""
    data = index.data
    numbers: dict[int, int] = {}
    quotes: list[tuple[str, int]] = []
    for sentence in choice.sentences:
        document = data.sentences[sentence].document
        n = numbers.setdefault(document, len(numbers) + 1)
        quotes.append((data.sentence_text(sentence), n))
    citations = tuple(
        _citation(
            n, data.documents[document], [s for s in choice.sentences if data.sentences[s].document == document], index
        )
        for document, n in numbers.items()
    )
    dated = dated or len(numbers) > 1
    parts: list[str] = []
    previous: int | None = None
    for quote, n in quotes:
        published = english.human_date(citations[n - 1].published)
        if dated and published and n != previous:
            parts.append(f"As of {published}:")
        parts.append(f"{quote} [{n}]")
        previous = n
    text = " ".join(parts)
    if choice.decision is Decision.CLOSEST:
        return Answer(question, Outcome.ABSTAINED, f"{CLOSEST_PREFIX} {text}", citations, tuple(quotes))
    return Answer(question, Outcome.ANSWERED, text, citations, tuple(quotes))


def _citation(n: int, document: Document, sentences: list[int], index: PassageStore) -> Citation:
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


def closest_chunks(index: PassageStore, sentence_cosines: Vectors, k: int) -> list[Passage]:
    """The `k` chunks holding the sentences closest to a question (by the multilingual leg's cosines), best
    first: what the model is given for a question not in English, as `search` gives it for an English one.

    Only the best sentences are sorted, and each is found in the chunk list by bisection (chunks are in sentence
    order), so the cost does not grow with the archive beyond one pass of `argpartition`.
    """
    chunks = index.data.chunks
    passages: dict[int, Passage] = {}
    for sentence in _best_first(sentence_cosines, CLOSEST_SENTENCES_PER_CHUNK * k):
        # The first chunk that holds the sentence (chunks overlap: the earlier one, as a build numbers them).
        chunk = bisect.bisect_left(chunks, sentence, key=lambda row: row.last_sentence)
        if chunk < len(chunks) and chunks[chunk].first_sentence <= sentence and chunk not in passages:
            cosine = float(sentence_cosines[sentence])
            passages[chunk] = Passage(chunk=chunk, score=cosine, cosine=cosine)
            if len(passages) == k:
                break
    return list(passages.values())


def _best_first(scores: Vectors, count: int) -> Iterator[int]:
    """Positions by falling score: the best `count` sorted first, then (rarely needed) all the others."""
    if len(scores) <= count:
        yield from (int(i) for i in np.argsort(-scores, kind="stable"))
        return
    best = np.argpartition(-scores, count)[:count]
    best = best[np.argsort(-scores[best], kind="stable")]
    yield from (int(i) for i in best)
    rest = np.setdiff1d(np.arange(len(scores)), best)
    yield from (int(i) for i in rest[np.argsort(-scores[rest], kind="stable")])


def writer_passages(index: PassageStore, passages: list[Passage], chosen: list[int]) -> list[SourcePassage]:
    """The retrieved chunks, numbered for the model: those holding the extractive answer's sentences first."""
    data = index.data
    chunks = [p.chunk for p in passages]
    holding = [c for s in chosen for c in chunks if data.chunks[c].first_sentence <= s <= data.chunks[c].last_sentence]
    ordered = list(dict.fromkeys(holding + chunks))
    result = []
    for n, chunk in enumerate(ordered, 1):
        document = data.document_metadata(data.chunks[chunk].document)
        result.append(
            SourcePassage(
                n, document.doc_id, document.title, document.publisher, document.published, data.chunk_text(chunk)
            )
        )
    return result


def written_answer(
    writer: AnswerWriter,
    extractive: Answer,
    index: PassageStore,
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
        return dataclasses.replace(extractive, audit=written.verdicts)
    by_number = {p.n: p for p in sources}
    data = index.data
    # The retrieved passages' articles only: an archive's other texts are never decoded for an answer.
    documents = {d.doc_id: d for d in (data.document_metadata(data.chunks[p.chunk].document) for p in passages)}
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
    """The question without markup, entities, invisible characters or runs of white space (see bot/markup.py)."""
    return strip_markup(text)
