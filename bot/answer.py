"""Choose the sentences that answer a question, or decide that the articles do not say.

Answers are extractive: the bot quotes sentences of the articles verbatim and never writes facts of its own.
A sentence is scored on four signals, each in [0, 1]:

- meaning: cosine similarity of the question and the sentence (and, less, of the question and its chunk);
- key terms: the share of the question's content words, weighted by rarity (IDF), that the sentence holds;
- answer type: a "who" question wants a name, "when" a date, "how many" a count, "where" a place;
- context: the same key-term share over the sentence and its neighbours, for quotes split across sentences.

The thresholds were calibrated on the development questions and a held-out set (README, "Abstaining").
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from bot.embedding import Vectors
from bot.search import Passage
from bot.store import IndexData
from bot.text import QUESTION_FRAME, STOPWORDS, content_words, stem, terms, words


class AnswerType(Enum):
    PERSON = "person or organisation"
    DATE = "date or time"
    COUNT = "number"
    PLACE = "place"
    OTHER = "anything"


# Weights of the signals and the bar a best sentence must clear (see the module docstring and README).
W_MEANING, W_CHUNK, W_TERMS, W_CONTEXT, W_TYPE = 0.45, 0.10, 0.30, 0.05, 0.10
MIN_CONFIDENCE = 0.42
MIN_MEANING = 0.30
# A further sentence joins the answer only when it scores nearly as well as the best one.
SECOND_SENTENCE_RATIO = 0.9
MAX_SENTENCES = 2
# How far down the ranking to look for a sentence that passes every check before abstaining.
CANDIDATES_TO_CHECK = 3
SAME_SENTENCE_COSINE = 0.97

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
    "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
# Case-sensitive on purpose: "May" is a month, "may" is not.
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\.?(?:\s+\d{{1,2}})?|\d{{1,2}}\s+(?:{_MONTHS})|(?:{_WEEKDAYS})|(?:1[89]|20)\d\d"
    r"|(?:[Ll]ast|[Nn]ext|[Tt]his)\s+(?:week|month|year)|[Yy]esterday|[Tt]oday|[Tt]omorrow|years?\s+ago)\b"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    "|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|hundreds"
    "|thousand|thousands|million|millions|billion|billions|dozen|dozens|several|half|two-thirds|a third"
)
_COUNT = re.compile(rf"(?:\$\s?)?\b(?:\d[\d,.]*(?:m|bn|k)?|{_NUMBER_WORDS})\b(?:-\w+)?", re.IGNORECASE)
_CAPITALIZED = re.compile(r"\b[A-Z][\w’'-]*(?:\s+(?:of|the|and|for)?\s*[A-Z][\w’'-]*)*")
_PERSON_NOUNS = frozenset(
    stem(w)
    for w in """leader president minister journalist activist member chairman head founder spokesman spokeswoman
    official officials authorities government party commission court police opposition movement council""".split()
)
# The words that ask for a kind of answer ("how long", "what share") say nothing about the subject.
_WH_PHRASE = re.compile(
    r"^\s*(?:how\s+\w+|(?:what|which)\s+(?:number|percentage|share|amount|proportion|year|date|day|month|time))\b",
    re.IGNORECASE,
)
_FRAME_STEMS = frozenset(stem(word) for word in QUESTION_FRAME)
# A question word the articles never use must have a close synonym in the answer ("forbid" ~ "ban").
SYNONYM_COSINE = 0.58
WORD_CACHE_SIZE = 100_000
_PRONOUN_START = re.compile(r"^(?:he|she|they|it|this|these|those|his|her|their|its)\b", re.IGNORECASE)


# "How long", "how old", "how far": a number with one of these units answers them.
_MEASURE_UNITS = {
    "long": "second minute hour day week month year decade century",
    "old": "year old aged age",
    "far": "metre meter kilometre kilometer km mile",
    "tall": "metre meter cm foot feet",
    "big": "square km hectare acre people member",
    "often": "time times daily weekly monthly yearly annually",
}


@dataclass(frozen=True)
class Question:
    """A question as the selector sees it: its key terms and the kind of answer it wants.

    `context_terms` come from earlier exchanges (a follow-up's "he"); they count for half.
    """

    text: str
    terms: frozenset[str]
    context_terms: frozenset[str]
    answer_type: AnswerType
    count_focus: frozenset[str]  # "seats" in "how many seats ...", units for "how long"

    @classmethod
    def parse(cls, text: str, context: str = "") -> Question:
        lowered = text.lower().strip()
        focus: frozenset[str] = frozenset()
        measure = re.match(r"^how (long|old|far|tall|big|often)\b", lowered)
        if measure:
            answer_type = AnswerType.COUNT
            focus = frozenset(stem(unit) for unit in _MEASURE_UNITS[measure.group(1)].split())
        elif re.match(r"^(?:what|which) (?:percentage|share|proportion|per ?cent)\b", lowered):
            answer_type = AnswerType.COUNT
            focus = frozenset({"percent"})
        elif re.match(r"^(?:how (?:many|much)|what (?:number|amount))\b", lowered):
            answer_type = AnswerType.COUNT
            counted = re.match(r"^how many\s+([\w-]+)", lowered)
            focus = frozenset({stem(counted.group(1))}) if counted else frozenset()
        elif re.match(r"^(?:when|what (?:year|date|day|month|time)|since when)\b", lowered):
            answer_type = AnswerType.DATE
        elif re.match(r"^(?:where|in which (?:city|country|place|region)|which (?:city|country|region))\b", lowered):
            answer_type = AnswerType.PLACE
        elif re.match(r"^(?:who|whom|whose|which (?:person|people|group|party|organi[sz]ation))\b", lowered):
            answer_type = AnswerType.PERSON
        else:
            answer_type = AnswerType.OTHER
        own = frozenset(t for t in terms(text) if t not in _FRAME_STEMS)
        return cls(text, own, frozenset(terms(context)) - own, answer_type, focus)

    def is_definition(self) -> bool:
        """ "Who is X?" / "What is X?": any sentence that describes X answers it."""
        return bool(re.match(r"^(?:who|what)\s+(?:is|are|was|were)\s+(?:the\s+)?[A-Z]", self.text.strip()))


@dataclass(frozen=True)
class ScoredSentence:
    sentence: int
    score: float
    meaning: float
    term_share: float
    type_ok: bool


WordEmbedder = Callable[[list[str]], Vectors]


class WordVectors:
    """Vectors of single words, each embedded once and kept (least recently used dropped past `capacity`).

    Shared by the worker threads that answer questions, and kept across index reloads: words recur.
    """

    def __init__(self, embed: WordEmbedder, capacity: int = WORD_CACHE_SIZE) -> None:
        self._embed = embed
        self._capacity = capacity
        self._vectors: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, words_to_embed: list[str]) -> Vectors:
        with self._lock:
            found = {w: self._vectors[w] for w in words_to_embed if w in self._vectors}
        missing = [w for w in dict.fromkeys(words_to_embed) if w not in found]
        if missing:
            # A batch of at least two texts: a single one would pass through (and evict) the question cache.
            embedded = self._embed([*missing, "."])[: len(missing)]
            found.update(zip(missing, embedded, strict=True))
        with self._lock:
            for word, vector in found.items():
                self._vectors[word] = vector
                self._vectors.move_to_end(word)
            while len(self._vectors) > self._capacity:
                self._vectors.popitem(last=False)
        return np.stack([found[w] for w in words_to_embed])


class SentenceSelector:
    """Scores the sentences of retrieved passages against a question; holds per-index term statistics.

    `word_vectors` compares single words by meaning, for question words the articles never use.
    """

    def __init__(self, data: IndexData, word_vectors: WordVectors) -> None:
        self._data = data
        self._word_vectors = word_vectors
        self._sentence_terms = [frozenset(terms(data.sentence_text(i))) for i in range(len(data.sentences))]
        document_frequency: dict[str, int] = {}
        for sentence_terms in self._sentence_terms:
            for term in sentence_terms:
                document_frequency[term] = document_frequency.get(term, 0) + 1
        total = max(1, len(self._sentence_terms))
        self._idf = {term: math.log(1 + total / df) for term, df in document_frequency.items()}
        # A word the articles never use is as telling as the rarest word they do.
        self._unseen_idf = math.log(1 + total)
        self._clauses: dict[int, list[int]] = {}
        for clause, sentence in enumerate(data.clause_sentences):
            self._clauses.setdefault(sentence, []).append(clause)

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._unseen_idf)

    def candidates(self, passages: Sequence[Passage]) -> dict[int, float]:
        """Sentence ids of the passages, each with its best chunk cosine."""
        best: dict[int, float] = {}
        for passage in passages:
            chunk = self._data.chunks[passage.chunk]
            for sentence in range(chunk.first_sentence, chunk.last_sentence + 1):
                best[sentence] = max(best.get(sentence, -1.0), passage.cosine)
        return best

    def score(self, question: Question, query_vector: Vectors, passages: Sequence[Passage]) -> list[ScoredSentence]:
        """All candidate sentences, best first."""
        chunk_cosines = self.candidates(passages)
        if not chunk_cosines:
            return []
        ids = sorted(chunk_cosines)
        meanings = self._meanings(ids, query_vector.reshape(-1))
        weights = {t: self.idf(t) for t in question.terms}
        weights |= {t: 0.5 * self.idf(t) for t in question.context_terms}
        total = sum(weights.values()) or 1.0
        scored = []
        for sentence, meaning in zip(ids, meanings, strict=True):
            share = sum(weights[t] for t in weights.keys() & self._sentence_terms[sentence]) / total
            context = sum(weights[t] for t in weights.keys() & self._context_terms(sentence)) / total
            type_ok = self._type_ok(question, sentence)
            score = (
                W_MEANING * float(meaning)
                + W_CHUNK * chunk_cosines[sentence]
                + W_TERMS * share
                + W_CONTEXT * context
                + W_TYPE * (1.0 if type_ok else 0.0)
            )
            scored.append(ScoredSentence(sentence, score, float(meaning), share, type_ok))
        scored.sort(key=lambda s: (-s.score, s.sentence))
        return scored

    def _meanings(self, ids: list[int], query: Vectors) -> Vectors:
        meanings: Vectors = self._data.sentence_vectors[ids] @ query
        clause_ids = [c for s in ids for c in self._clauses.get(s, [])]
        if clause_ids:
            # A long sentence means what its best-matching clause means ("...; and a ban on land leasing").
            best_clause = dict.fromkeys(ids, -1.0)
            for clause, cos in zip(clause_ids, self._data.clause_vectors[clause_ids] @ query, strict=True):
                owner = self._data.clause_sentences[clause]
                best_clause[owner] = max(best_clause[owner], float(cos))
            meanings = np.maximum(meanings, np.array([best_clause[s] for s in ids], dtype=np.float32))
        return meanings

    def choose(self, question: Question, scored: list[ScoredSentence]) -> list[int]:
        """The sentences to quote, best first (preceded by the sentence before it when it opens with a
        pronoun), or [] when the articles do not answer."""
        rank = next((i for i, s in enumerate(scored[:CANDIDATES_TO_CHECK]) if self._answers(question, s)), None)
        if rank is None:
            return []
        best = scored[rank]
        chosen = [best.sentence]
        for other in scored[rank + 1 :]:
            if len(chosen) == MAX_SENTENCES or other.score < SECOND_SENTENCE_RATIO * best.score:
                break
            if self._repeats(other, chosen) or not self._answers(question, other):
                continue
            # A further sentence must match the question's words or its meaning better than the best one does.
            better_somehow = other.term_share >= best.term_share or other.meaning >= best.meaning
            if (question.answer_type is AnswerType.OTHER or other.type_ok) and better_somehow:
                chosen.append(other.sentence)
        # A sentence that opens with a pronoun ("He", "They", "Its") needs the one before it to be understood.
        if _PRONOUN_START.match(self._data.sentence_text(best.sentence)) and self._same_document(
            best.sentence - 1, best.sentence
        ):
            chosen.insert(0, best.sentence - 1)
        return list(dict.fromkeys(chosen))

    def _answers(self, question: Question, candidate: ScoredSentence) -> bool:
        """Whether a sentence is good enough to quote as the answer."""
        if candidate.score < MIN_CONFIDENCE or candidate.meaning < MIN_MEANING:
            return False
        if question.answer_type is not AnswerType.OTHER and not candidate.type_ok:
            return False
        asked = content_words(_WH_PHRASE.sub("", question.text))
        unseen = [w for w in asked if stem(w) not in self._idf and stem(w) not in _FRAME_STEMS]
        return not unseen or self._has_synonyms(unseen, candidate.sentence)

    def _has_synonyms(self, question_words: list[str], sentence: int) -> bool:
        """Every question word has a word of close meaning in the sentence or its neighbours."""
        neighbours = [s for s in (sentence - 1, sentence, sentence + 1) if self._same_document(s, sentence)]
        candidates = content_words(" ".join(self._data.sentence_text(s) for s in neighbours))
        if not candidates:
            return False
        vectors = self._word_vectors(question_words + candidates)
        similarity = vectors[: len(question_words)] @ vectors[len(question_words) :].T
        return bool((similarity.max(axis=1) >= SYNONYM_COSINE).all())

    def _repeats(self, candidate: ScoredSentence, chosen: list[int]) -> bool:
        vectors = self._data.sentence_vectors
        return any(float(vectors[candidate.sentence] @ vectors[c]) >= SAME_SENTENCE_COSINE for c in chosen)

    def _same_document(self, a: int, b: int) -> bool:
        rows = self._data.sentences
        return 0 <= a < len(rows) and 0 <= b < len(rows) and rows[a].document == rows[b].document

    def _context_terms(self, sentence: int) -> frozenset[str]:
        neighbours = [s for s in (sentence - 1, sentence + 1) if self._same_document(s, sentence)]
        return self._sentence_terms[sentence].union(*(self._sentence_terms[s] for s in neighbours))

    def _type_ok(self, question: Question, sentence: int) -> bool:
        text = self._data.sentence_text(sentence)
        kind = question.answer_type
        if kind is AnswerType.DATE:
            return bool(_DATE.search(text))
        if kind is AnswerType.COUNT:
            return _has_count(question, text)
        if kind in (AnswerType.PERSON, AnswerType.PLACE):
            if question.is_definition():
                return True
            asked = {stem(w) for w in words(question.text)}
            for match in _CAPITALIZED.finditer(text):
                if match.start() == 0 and " " not in match.group():
                    continue  # A capital that only opens the sentence names nothing.
                if any(stem(w) not in asked for w in words(match.group()) if w not in STOPWORDS):
                    return True
            return kind is AnswerType.PERSON and bool(_PERSON_NOUNS & (self._sentence_terms[sentence] - question.terms))
        return True


def _has_count(question: Question, text: str) -> bool:
    """A number that is not part of a date, with the thing counted ("seven seats", "107-seat") when named."""
    undated = _DATE.sub(" ", text) if not question.count_focus & {"year", "day", "month", "week"} else text
    undated = re.sub(r"(?<=\d)\s*(?:%|per cent\b)", " percent", undated)
    counts = list(_COUNT.finditer(undated))
    if not question.count_focus:
        return bool(counts)
    # The number itself, then up to three words after it.
    return any(question.count_focus & set(terms(undated[m.start() : m.end() + 40])[:4]) for m in counts)
