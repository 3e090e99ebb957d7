"""The words of an index: the lexical index's tokens and the answer scorer's term statistics, made in one pass.

The scorer weighs a question's words by how rare they are among the articles' sentences and finds the
articles' other spellings of a name ("Chaikovskiy" for "Tchaikovsky"). Counting that over every sentence took
minutes at open on a large archive, so the build counts it once, in the same pass that tokenizes the chunks
for BM25, and the version keeps it (`terms.json`, read in well under a second).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import english
from bot.errors import IndexCorruptError

if TYPE_CHECKING:
    from bot.store import IndexData

TERMS_FORMAT = 1


@dataclass(frozen=True)
class TermStatistics:
    """How many sentences hold each stemmed term, and the stems the articles spell each sound with."""

    sentences: int
    document_frequency: dict[str, int]
    stems_by_key: dict[str, list[str]]  # `english.spelling_key` of a content word → the stems written so

    def idf(self) -> dict[str, float]:
        total = max(1, self.sentences)
        return {term: math.log(1 + total / df) for term, df in self.document_frequency.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TERMS_FORMAT,
            "sentences": self.sentences,
            "document_frequency": self.document_frequency,
            "stems_by_key": self.stems_by_key,
        }

    @classmethod
    def read(cls, path: Path) -> TermStatistics:
        """Read what `write` wrote; anything else raises `IndexCorruptError`."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw["format"] != TERMS_FORMAT:
                raise ValueError(f"format {raw['format']!r}")
            statistics = cls(int(raw["sentences"]), dict(raw["document_frequency"]), dict(raw["stems_by_key"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{path} is not the term statistics of an index ({exc})") from None
        return statistics

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


class _Counter:
    """Term statistics of sentences as they pass, one at a time."""

    def __init__(self) -> None:
        self.sentences = 0
        self.document_frequency: dict[str, int] = {}
        self.stems_by_key: dict[str, dict[str, None]] = {}

    def add(self, sentence: str) -> list[str]:
        """Count one sentence; returns its terms, in order, with repeats."""
        found = english.words(sentence)
        sentence_terms = []
        for word in found:
            if word in english.STOPWORDS:
                continue
            stemmed = english.stem(word)
            sentence_terms.append(stemmed)
            if not word.isdigit():
                self.stems_by_key.setdefault(english.spelling_key(word), {})[stemmed] = None
        for term in set(sentence_terms):
            self.document_frequency[term] = self.document_frequency.get(term, 0) + 1
        self.sentences += 1
        return sentence_terms

    def statistics(self) -> TermStatistics:
        return TermStatistics(
            self.sentences, self.document_frequency, {key: list(stems) for key, stems in self.stems_by_key.items()}
        )


def sentence_statistics(texts: Iterable[str]) -> TermStatistics:
    """The term statistics of these sentences (a store that keeps none counts them at open)."""
    counter = _Counter()
    for text in texts:
        counter.add(text)
    return counter.statistics()


def analyse(data: IndexData) -> tuple[list[list[str]], TermStatistics]:
    """The BM25 tokens of every chunk (its title's terms, then its sentences'), and the statistics of every
    sentence of a document with chunks (as every built document has).

    A chunk's tokens are the terms of its text, but where the chunker cut a run of hundreds of characters without
    a space in the middle of a word: there the two halves count as two terms.
    """
    counter = _Counter()
    chunk_tokens = []
    counted: dict[int, list[str]] = {}  # the terms of the sentences of the chunks' current document
    for i in range(len(data.chunks)):
        chunk = data.chunks[i]
        if chunk.first_sentence not in counted:
            counted.clear()
            for sentence in data.document_sentences(chunk.document):
                counted[sentence] = counter.add(data.sentence_text(sentence))
        tokens = english.terms(data.document_metadata(chunk.document).title)
        for sentence in range(chunk.first_sentence, chunk.last_sentence + 1):
            tokens.extend(counted[sentence])
        # Interned: the same few thousand words recur across every chunk, and a list of a million chunks'
        # tokens as separate strings was the largest thing a big build held (bench/build_scale.py).
        chunk_tokens.append([sys.intern(t) for t in tokens])
    return chunk_tokens, counter.statistics()
