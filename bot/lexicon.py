"""The words of an index: the lexical index's tokens and the answer scorer's term statistics, made in one pass.

The scorer weighs a question's words by how rare they are among the articles' sentences and finds the
articles' other spellings of a name ("Chaikovskiy" for "Tchaikovsky"). Counting that over every sentence took
minutes at open on a large archive, so the build counts it once, in the same pass that tokenizes the chunks
for BM25, and the version keeps it (`terms.json`, read in well under a second).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import english
from bot.errors import IndexCorruptError

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


class TermCounter:
    """Term statistics of sentences as they pass, and the BM25 tokens of chunks, a document at a time."""

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

    def add_document(self, title: str, sentences: Sequence[str], chunks: Sequence[tuple[int, int]]) -> list[list[str]]:
        """Count a document's sentences; returns the BM25 tokens of each of its chunks (first and last sentence,
        numbered within the document): the terms of its title, then its sentences'.

        A chunk's tokens are the terms of its text, but where the chunker cut a run of hundreds of characters
        without a space in the middle of a word: there the two halves count as two terms.
        """
        counted = [self.add(sentence) for sentence in sentences]
        title_terms = english.terms(title)
        return [
            [*title_terms, *(term for sentence in counted[first : last + 1] for term in sentence)]
            for first, last in chunks
        ]

    def statistics(self) -> TermStatistics:
        return TermStatistics(
            self.sentences, self.document_frequency, {key: list(stems) for key, stems in self.stems_by_key.items()}
        )
