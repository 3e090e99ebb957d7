"""Choose the sentences that answer a question, or decide that the articles do not say.

Answers are extractive: the bot quotes sentences of the articles verbatim and never writes facts of its own.
Every sentence of the retrieved passages is a candidate; `SentenceScorer` measures it on the features named
in `bot.scorer.FEATURES` (meaning, key terms in any spelling, the kind of answer asked for, its neighbours),
and the fitted logistic model in `bot/scorer.json` turns them into the probability that it holds the answer.
`choose` then decides: quote it (with what it needs to be understood), show it as the closest passage, or say
that the articles do not cover the question.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot import english
from bot.embedding import Vectors
from bot.english import AnswerType
from bot.scorer import FEATURES, Matrix, ScorerParams
from bot.search import Passage
from bot.store import IndexData

# A fact question gets at most this many sentences (plus what they point back to); how close the second must
# score to the best is fitted (`ScorerParams.second_sentence_ratio`).
MAX_FACT_SENTENCES = 2
# "Why", "how" and "tell me about" questions get a passage of up to this many characters.
MAX_PASSAGE_CHARS = 600
# Sentences this close in meaning say the same thing: quote only one.
SAME_SENTENCE_COSINE = 0.95
# A candidate from a newer article may replace the best one for "now"/"latest" questions when it scores
# at least this share of the best.
NEWER_ARTICLE_RATIO = 0.8
# How far back to go for the sentence a pronoun points to.
MAX_POINT_BACK = 2
# A spelling of a question word that is only close (a typo), not the same sound, counts for this much.
CLOSE_SPELLING_CREDIT = 0.8
# Single words are embedded once and kept; past this many, the least recently used are dropped.
WORD_CACHE_SIZE = 200_000
# What a candidate sentence says is read once and kept for the next questions it is a candidate for; past this
# many sentences (about 2 kB each), the least recently used are dropped.
SENTENCE_CACHE_SIZE = 20_000
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
_SPECIFIC_TYPES = (AnswerType.DATE, AnswerType.QUANTITY, AnswerType.PERSON, AnswerType.PLACE)


@dataclass(frozen=True)
class Question:
    """A question as the scorer sees it: its words, the kind of answer it wants, how long an answer it wants.

    `context` holds what a follow-up points back to (its words count for half).
    """

    text: str
    words: tuple[str, ...]
    context_words: tuple[str, ...]
    answer_type: AnswerType
    measured: frozenset[str]
    explain: bool
    latest: bool

    @classmethod
    def parse(cls, text: str, context: str = "") -> Question:
        kind, measured = english.answer_type(text)
        frame = english.QUESTION_FRAME | english.QUESTION_WORDS
        if kind is AnswerType.QUANTITY:
            # "long" in "how long", "many" in "how many": the words of the question's form are not its subject.
            frame = frame | {"long", "old", "far", "tall", "high", "big", "large", "wide", "deep", "often"}
        own = tuple(w for w in english.content_words(text, numbers=True) if w not in frame)
        context_words = tuple(
            w for w in english.content_words(context, numbers=True) if w not in frame and w not in own
        )
        return cls(
            text=text,
            words=own,
            context_words=context_words,
            answer_type=kind,
            measured=measured,
            explain=english.wants_explanation(text),
            latest=english.asks_latest(text),
        )


@dataclass(frozen=True)
class Candidates:
    """The candidate sentences of one question: ids, feature rows and fitted probabilities, best first."""

    sentences: list[int]
    features: Matrix
    probabilities: list[float]

    @property
    def best(self) -> float:
        return self.probabilities[0] if self.probabilities else 0.0

    @property
    def relatedness(self) -> float:
        """How close in meaning the articles come to the question: the best sentence's (or clause's) cosine.

        Whether anything is related is a question of topic, not of whether a sentence answers: an on-topic
        question phrased apart from the articles has no likely answer sentence, yet its closest passage helps.
        """
        return float(self.features[:, _FEATURE_INDEX["cos_sentence"]].max()) if self.sentences else -1.0

    def without(self, sentences: Collection[int]) -> Candidates:
        """The same candidates less `sentences` (those already quoted), in the same order."""
        keep = [i for i, sentence in enumerate(self.sentences) if sentence not in sentences]
        return Candidates([self.sentences[i] for i in keep], self.features[keep], [self.probabilities[i] for i in keep])

    def rescored(self, params: ScorerParams) -> Candidates:
        """The same candidates under other parameters (what fitting compares)."""
        probabilities = params.probabilities(self.features)
        order = sorted(range(len(self.sentences)), key=lambda i: (-probabilities[i], self.sentences[i]))
        return Candidates(
            [self.sentences[i] for i in order], self.features[order], [float(probabilities[i]) for i in order]
        )


class Decision(Enum):
    ANSWER = "answer"
    CLOSEST = "closest"  # not confident: show the closest passage, and say the articles don't say exactly
    NOT_COVERED = "not covered"  # nothing related


@dataclass(frozen=True)
class Choice:
    decision: Decision
    sentences: list[int]  # in the order to quote them; [] when not covered


@dataclass(frozen=True)
class _TermMatch:
    """A question word, what it weighs, and the stems (with credit) that count as finding it."""

    weight: float
    stems: dict[str, float]


class WordVectors:
    """Vectors of single words, each embedded once and kept (least recently used dropped past `capacity`).

    Shared by the worker threads that answer questions, and kept across index reloads: words recur. The vectors
    are rows of one matrix (grown as needed), so that the few hundred words of a question's candidates are read
    with one indexing operation, not gathered one array at a time.
    """

    def __init__(self, embed: Callable[[list[str]], Vectors], capacity: int = WORD_CACHE_SIZE) -> None:
        self._embed = embed
        self._capacity = capacity
        self._rows: OrderedDict[str, int] = OrderedDict()  # word -> its row of `_matrix`, least recently used first
        self._matrix: Vectors | None = None
        self._lock = threading.Lock()

    def __call__(self, words_to_embed: list[str]) -> Vectors:
        with self._lock:
            rows = [self._rows.get(w, -1) for w in words_to_embed]
            # A copy, taken under the lock: rows are reused for other words once theirs are dropped.
            known = self._matrix[rows] if self._matrix is not None else None
            for word, row in zip(words_to_embed, rows, strict=True):
                if row >= 0:
                    self._rows.move_to_end(word)
        missing = list(dict.fromkeys(w for w, row in zip(words_to_embed, rows, strict=True) if row < 0))
        if not missing:
            return known if known is not None else np.zeros((0, 0), dtype=np.float32)
        # A batch of at least two texts: a single one would pass through (and evict) the question cache.
        fresh = dict(zip(missing, self._embed([*missing, "."])[: len(missing)], strict=True))
        with self._lock:
            self._keep(fresh)
        if known is None:
            known = np.empty((len(words_to_embed), len(next(iter(fresh.values())))), dtype=np.float32)
        for i, (word, row) in enumerate(zip(words_to_embed, rows, strict=True)):
            if row < 0:
                known[i] = fresh[word]
        return known

    def _keep(self, fresh: dict[str, Vectors]) -> None:
        """Store new words (under the lock), each in a free row or in the row of the least recently used."""
        for word, vector in fresh.items():
            if word in self._rows:
                continue  # another thread embedded it meanwhile
            if len(self._rows) >= self._capacity:
                _, row = self._rows.popitem(last=False)
            else:
                row = len(self._rows)  # rows stay dense: one is reused only once the matrix is full
            if self._matrix is None or row >= len(self._matrix):
                grown = np.empty((min(self._capacity, max(1024, 2 * row)), len(vector)), dtype=np.float32)
                if self._matrix is not None:
                    grown[: len(self._matrix)] = self._matrix
                self._matrix = grown
            self._matrix[row] = vector
            self._rows[word] = row


@dataclass(frozen=True)
class _SentenceFacts:
    """What one sentence says whatever the question: what the scorer would otherwise read again from its text
    for every question it is a candidate for."""

    text: str
    terms: frozenset[str]
    content_words: tuple[str, ...]
    numbers: tuple[english.NumberMention, ...]
    dated: bool
    names: tuple[frozenset[str], ...]
    person_nouns: frozenset[str]
    reason: bool
    points_back: bool

    @classmethod
    def read(cls, text: str) -> _SentenceFacts:
        return cls(
            text=text,
            terms=frozenset(english.terms(text)),
            content_words=tuple(english.content_words(text)),
            numbers=english.number_mentions(text),
            dated=english.mentions_date(text),
            names=english.name_stems(text),
            person_nouns=english.person_nouns(text),
            reason=english.mentions_reason(text),
            points_back=english.points_back(text),
        )


class _SentenceFactsCache:
    """`_SentenceFacts` by sentence number, least recently used dropped past `capacity`; shared by the threads
    that answer, and dropped with the scorer (sentence numbers belong to one index version)."""

    def __init__(self, text: Callable[[int], str], capacity: int = SENTENCE_CACHE_SIZE) -> None:
        self._text = text
        self._capacity = capacity
        self._facts: OrderedDict[int, _SentenceFacts] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, sentences: Sequence[int]) -> dict[int, _SentenceFacts]:
        with self._lock:
            found = {s: self._facts[s] for s in sentences if s in self._facts}
            for sentence in found:
                self._facts.move_to_end(sentence)
        missing = {s: _SentenceFacts.read(self._text(s)) for s in sentences if s not in found}
        if missing:
            with self._lock:
                self._facts.update(missing)
                while len(self._facts) > self._capacity:
                    self._facts.popitem(last=False)
            found.update(missing)
        return found


class SentenceScorer:
    """Measures candidate sentences against a question; holds one index's term statistics and vocabulary.

    `word_vectors` compares single words by meaning ("spouse" and "wife"), for the `terms_soft` feature.
    """

    def __init__(self, data: IndexData, params: ScorerParams, word_vectors: WordVectors) -> None:
        self._data = data
        self.params = params
        self._word_vectors = word_vectors
        statistics = data.term_statistics
        self._idf = statistics.idf()
        # A word the articles never use is as telling as the rarest word they do.
        self._unseen_idf = math.log(1 + max(1, statistics.sentences))
        self._stems_by_key = statistics.stems_by_key
        self._keys = list(statistics.stems_by_key)

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._unseen_idf)

    def match_word(self, word: str) -> dict[str, float]:
        """The stems of the articles that count as this word, with their credit: itself, its other
        spellings (same sound: full credit), and, for a word the articles never use, close misspellings."""
        own = english.stem(word)
        if own in self._idf:
            return {own: 1.0}  # A word the articles use means itself ("later" is not "latter").
        found: dict[str, float] = {}
        key = english.spelling_key(word)
        for variant in self._stems_by_key.get(key, ()):
            found.setdefault(variant, 1.0)
        tolerance = english.spelling_tolerance(key)
        if not found and tolerance:
            for near, _, _ in process.extract(key, self._keys, scorer=OSA.distance, score_cutoff=tolerance, limit=8):
                # Misspellings keep their first letter far more often than not; this avoids "rive" → "drive".
                if near[:1] == key[:1]:
                    for variant in self._stems_by_key[near]:
                        found.setdefault(variant, CLOSE_SPELLING_CREDIT)
        return found

    def _question_terms(self, question: Question) -> list[_TermMatch]:
        matches = []
        for words, share in ((question.words, 1.0), (question.context_words, 0.5)):
            for word in words:
                stems = self.match_word(word)
                weight = max((self.idf(s) for s in stems), default=self._unseen_idf)
                matches.append(_TermMatch(share * weight, stems))
        return matches

    @cached_property
    def _facts(self) -> _SentenceFactsCache:
        # Made on first use: a scorer whose index only serves searches never holds one.
        return _SentenceFactsCache(self._data.sentence_text)

    def candidates(self, question: Question, query_vector: Vectors, passages: Sequence[Passage]) -> Candidates:
        """Every sentence of the retrieved passages, scored, best first."""
        chunk_cosine: dict[int, float] = {}
        chunk_rank: dict[int, int] = {}
        for rank, passage in enumerate(passages):
            chunk = self._data.chunks[passage.chunk]
            for sentence in range(chunk.first_sentence, chunk.last_sentence + 1):
                chunk_cosine[sentence] = max(chunk_cosine.get(sentence, -1.0), passage.cosine)
                chunk_rank.setdefault(sentence, rank)
        if not chunk_cosine:
            return Candidates([], np.zeros((0, len(FEATURES))), [])
        ids = sorted(chunk_cosine)
        query = query_vector.reshape(-1)
        meanings = self._meanings(ids, query)
        question_terms = self._question_terms(question)
        total = sum(t.weight for t in question_terms) or 1.0
        unmatched = sum(t.weight for t in question_terms if not t.stems) / total
        asked_stems = frozenset(s for t in question_terms for s in t.stems) | {
            english.stem(w) for w in question.words + question.context_words
        }
        neighbours = {sentence: self._neighbours(sentence) for sentence in ids}
        facts = self._facts(sorted({*ids, *(n for near in neighbours.values() for n in near)}))
        # The neighbours' rows read in one go, not one memory-mapped row at a time; each row's own dot product
        # (not one matrix product) keeps every cosine to the last bit what it was.
        near_ids = sorted({n for near in neighbours.values() for n in near})
        near_rows = np.asarray(self._data.sentence_vectors[near_ids])
        near_cosine = {n: float(vector @ query) for n, vector in zip(near_ids, near_rows, strict=True)}
        soft = self._soft_matches(question, [facts[s] for s in ids])
        typed = question.answer_type in _SPECIFIC_TYPES
        definition = typed and english.is_definition(question.text)
        rows = np.zeros((len(ids), len(FEATURES)))
        column = _FEATURE_INDEX
        for row, (sentence, meaning) in enumerate(zip(ids, meanings, strict=True)):
            near = neighbours[sentence]
            own = facts[sentence]
            own_terms = own.terms
            near_terms = own_terms.union(*(facts[n].terms for n in near))
            values = rows[row]
            values[column["cos_sentence"]] = meaning
            values[column["cos_chunk"]] = chunk_cosine[sentence]
            values[column["cos_neighbour"]] = max((near_cosine[n] for n in near), default=0.0)
            values[column["retrieval_rank"]] = 1.0 / (1 + chunk_rank[sentence])
            values[column["terms"]] = _share(question_terms, own_terms, total)
            values[column["terms_neighbours"]] = _share(question_terms, near_terms, total)
            values[column["terms_soft"]] = soft[row]
            values[column["unmatched"]] = unmatched
            if typed:
                values[column["type_asked"]] = 1.0
                if self._holds_type(question, own, asked_stems, definition):
                    values[column["type_found"]] = 1.0
                elif any(self._holds_type(question, facts[n], asked_stems, definition) for n in near):
                    values[column["type_near"]] = 1.0
            if question.answer_type is AnswerType.QUANTITY and question.measured:
                values[column["measure_found"]] = float(english.quantity_among(own.numbers, question.measured)[1])
            if question.answer_type is AnswerType.REASON:
                values[column["reason_found"]] = float(own.reason)
            values[column["new_words"]] = math.log1p(len(own_terms - asked_stems)) / math.log(32)
            values[column["points_back"]] = float(own.points_back)
        cosines = rows[:, column["cos_sentence"]]
        rows[:, column["cos_gap"]] = cosines - cosines.max()
        rows[:, column["cos_rank"]] = 1.0 / (1 + np.argsort(np.argsort(-cosines, kind="stable"), kind="stable"))
        rows[:, column["cos_few_terms"]] = cosines * (1.0 - rows[:, column["terms"]].max())
        rows[:, column["terms_gap"]] = rows[:, column["terms"]] - rows[:, column["terms"]].max()
        probabilities = self.params.probabilities(rows)
        order = sorted(range(len(ids)), key=lambda i: (-probabilities[i], ids[i]))
        return Candidates(
            sentences=[ids[i] for i in order],
            features=rows[order],
            probabilities=[float(probabilities[i]) for i in order],
        )

    def _soft_matches(self, question: Question, sentences: list[_SentenceFacts]) -> list[float]:
        """Per sentence, the IDF-weighted mean over the question's words of the closest word in meaning that
        the sentence holds (1 for the word itself): "spouse" finds "wife", "pledges" finds "promises"."""
        asked = [w for w in question.words if not w.isdigit()]
        if not asked:
            return [0.0] * len(sentences)
        vocabulary = list(dict.fromkeys(w for found in sentences for w in found.content_words))
        if not vocabulary:
            return [0.0] * len(sentences)
        vectors = self._word_vectors(asked + vocabulary)
        similarity = vectors[: len(asked)] @ vectors[len(asked) :].T
        column = {w: i for i, w in enumerate(vocabulary)}
        weights = np.array([self.idf(english.stem(w)) for w in asked])
        holding = [i for i, found in enumerate(sentences) if found.content_words]
        # Every sentence's words side by side, then the best of each sentence's run: one reduction for all.
        columns = [column[w] for i in holding for w in sentences[i].content_words]
        starts = np.cumsum([0] + [len(sentences[i].content_words) for i in holding[:-1]])
        best = np.ascontiguousarray(np.clip(np.maximum.reduceat(similarity[:, columns], starts, axis=1), 0.0, 1.0).T)
        result = [0.0] * len(sentences)
        total = weights.sum()
        for i, closest in zip(holding, best, strict=True):
            result[i] = float(closest @ weights / total)
        return result

    def _holds_type(self, question: Question, facts: _SentenceFacts, asked: frozenset[str], definition: bool) -> bool:
        """Whether the sentence holds the kind of answer asked for; `definition`: the question asks what or who
        something is (`english.is_definition`), which any sentence about it answers."""
        kind = question.answer_type
        if kind is AnswerType.DATE:
            return facts.dated
        if kind is AnswerType.QUANTITY:
            return english.quantity_among(facts.numbers, question.measured)[0]
        if definition or english.new_name_among(facts.names, asked):
            return True
        return kind is AnswerType.PERSON and bool(facts.person_nouns - asked)

    def _meanings(self, ids: list[int], query: Vectors) -> Vectors:
        meanings: Vectors = self._data.sentence_vectors[ids] @ query
        clause_ids = [c for s in ids for c in self._data.clauses_of(s)]
        if clause_ids:
            # A long sentence means what its best-matching clause means ("...; and a ban on land leasing").
            best_clause = dict.fromkeys(ids, -1.0)
            for clause, cos in zip(clause_ids, self._data.clause_vectors[clause_ids] @ query, strict=True):
                owner = int(self._data.clause_sentences[clause])
                best_clause[owner] = max(best_clause[owner], float(cos))
            meanings = np.maximum(meanings, np.array([best_clause[s] for s in ids], dtype=np.float32))
        return meanings

    # --- Choosing ---------------------------------------------------------------------------------------------

    def choose(self, question: Question, candidates: Candidates, params: ScorerParams | None = None) -> Choice:
        """What to quote for the question, and whether it answers it (under `params`, by default this
        scorer's own)."""
        params = params or self.params
        if not candidates.sentences or candidates.relatedness < params.related_threshold:
            return Choice(Decision.NOT_COVERED, [])
        best = self._preferred(question, candidates)
        if candidates.probabilities[best] < params.answer_threshold:
            return Choice(Decision.CLOSEST, self.with_antecedents(candidates.sentences[best]))
        lead = candidates.sentences[best]
        if question.explain:
            return Choice(Decision.ANSWER, self._passage(lead))
        chosen = [lead]
        follower = lead + 1
        if (
            follower in candidates.sentences
            and self._same_document(lead, follower)
            and english.points_back(self._data.sentence_text(follower))
        ):
            # "This hypothesis is called ...": the sentence after the best continues it, and often holds the
            # answer to a question that restates the best one; it is quoted in place of the second-best.
            chosen.append(follower)
        floor = max(params.answer_threshold, params.second_sentence_ratio * candidates.probabilities[best])
        for sentence, probability in zip(candidates.sentences, candidates.probabilities, strict=True):
            if len(chosen) == MAX_FACT_SENTENCES or probability < floor:
                break
            if sentence not in chosen and not self._repeats(sentence, chosen):
                chosen.append(sentence)
        quoted: list[int] = []
        for sentence in chosen:
            quoted.extend(s for s in self.with_antecedents(sentence) if s not in quoted)
        return Choice(Decision.ANSWER, quoted)

    def _preferred(self, question: Question, candidates: Candidates) -> int:
        """The best candidate; for a question about "now" or "latest", the newest article's good candidate."""
        if not question.latest:
            return 0
        bar = NEWER_ARTICLE_RATIO * candidates.best
        good = [i for i, p in enumerate(candidates.probabilities) if p >= bar]
        data = self._data

        def published(i: int) -> str | None:
            return data.document_metadata(data.sentences[candidates.sentences[i]].document).published

        return max(good, key=lambda i: (english.date_sort_key(published(i)), -i))

    def with_antecedents(self, sentence: int) -> list[int]:
        """The sentence, preceded by those it points back to ("It was commissioned by ..."), in order."""
        quoted = [sentence]
        while (
            len(quoted) <= MAX_POINT_BACK
            and english.points_back(self._data.sentence_text(quoted[0]))
            and self._same_document(quoted[0] - 1, quoted[0])
        ):
            quoted.insert(0, quoted[0] - 1)
        return quoted

    def _passage(self, lead: int) -> list[int]:
        """The lead sentence with what it points back to, then the rest of its paragraph, within the limit."""
        quoted = self.with_antecedents(lead)
        length = sum(len(self._data.sentence_text(s)) + 1 for s in quoted)
        following = quoted[-1] + 1
        while self._same_paragraph(following - 1, following):
            length += len(self._data.sentence_text(following)) + 1
            if length > MAX_PASSAGE_CHARS:
                break
            quoted.append(following)
            following += 1
        return quoted

    def _repeats(self, candidate: int, chosen: list[int]) -> bool:
        vectors = self._data.sentence_vectors
        return any(float(vectors[candidate] @ vectors[c]) >= SAME_SENTENCE_COSINE for c in chosen)

    def _neighbours(self, sentence: int) -> list[int]:
        return [s for s in (sentence - 1, sentence + 1) if self._same_document(s, sentence)]

    def _same_document(self, a: int, b: int) -> bool:
        rows = self._data.sentences
        return 0 <= a < len(rows) and 0 <= b < len(rows) and rows[a].document == rows[b].document

    def _same_paragraph(self, a: int, b: int) -> bool:
        if not self._same_document(a, b):
            return False
        rows = self._data.sentences
        text = self._data.document_text(rows[a].document)
        return "\n" not in text[rows[a].end : rows[b].start]


def _share(question_terms: list[_TermMatch], sentence_terms: frozenset[str], total: float) -> float:
    """The weight of the question's terms a sentence holds (in any counted spelling), over their total."""
    found = 0.0
    for term in question_terms:
        credit = 0.0
        for stem, c in term.stems.items():
            if c > credit and stem in sentence_terms:
                credit = c
        found += term.weight * credit
    return found / total
