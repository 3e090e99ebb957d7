"""Split an article into sentences and group them into overlapping chunks.

Sentences are the unit an answer quotes, chunks the unit retrieval ranks: every chunk is a run of whole
sentences, so any sentence of a retrieved chunk can be quoted exactly by its character span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.english import ABBREVIATIONS, NUMBER_ABBREVIATIONS

# A candidate boundary: terminal punctuation, closing quotes or brackets, then white space.
_BOUNDARY = re.compile(r"""[.!?…]+["'”’»)\]]*\s+""")
_NEXT_STARTS_SENTENCE = re.compile(r"""["'“‘«(\[]*[A-Z0-9]""")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]*$")
_PARAGRAPH = re.compile(r"[^\n]+")
# A "sentence" longer than this (a list without full stops, a table) is cut at word boundaries.
MAX_SENTENCE_CHARS = 600


# Long sentences are also embedded clause by clause, so that one item of a list can match a question.
_CLAUSE_BREAK = re.compile(r"\s*(?:[;:]|\s[-–—]{1,2}\s)\s*")
CLAUSE_MIN_SENTENCE_WORDS = 20
CLAUSE_MIN_WORDS = 4


# Bump when splitting or chunking changes: the manifest records it, so every article is cut again.
CHUNKER_VERSION = 3


@dataclass(frozen=True)
class ChunkingSettings:
    """How articles are cut; recorded in the index manifest, since changing it invalidates every chunk."""

    max_words: int = 110
    overlap_sentences: int = 1


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive sentences of one article, by index into that article's sentence list."""

    position: int
    first_sentence: int
    last_sentence: int


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences in `text`; a sentence never crosses a paragraph (line) break."""
    spans: list[tuple[int, int]] = []
    for paragraph in _PARAGRAPH.finditer(text):
        start = paragraph.start()
        while start < paragraph.end() and text[start].isspace():
            start += 1
        for boundary in _BOUNDARY.finditer(paragraph.group()):
            end = paragraph.start() + boundary.end()
            if _is_sentence_end(text, start, paragraph.start() + boundary.start(), end):
                spans.extend(_limit_length(text, start, end))
                start = end
        spans.extend(_limit_length(text, start, paragraph.end()))
    return [(start, _rstrip(text, start, end)) for start, end in spans if text[start:end].strip()]


def split_clauses(sentence: str) -> list[str]:
    """The clauses of a long sentence (split at semicolons, colons and dashes); [] for a short one."""
    if len(sentence.split()) < CLAUSE_MIN_SENTENCE_WORDS:
        return []
    clauses = [c for c in _CLAUSE_BREAK.split(sentence) if len(c.split()) >= CLAUSE_MIN_WORDS]
    return clauses if len(clauses) > 1 else []


def _is_sentence_end(text: str, start: int, punctuation: int, next_start: int) -> bool:
    if not _NEXT_STARTS_SENTENCE.match(text, next_start):
        return False
    if text[punctuation] != ".":
        return True
    word = _WORD_BEFORE.search(text, start, punctuation + 1)
    token = word.group(1).lower().rstrip(".") if word else ""
    if token in NUMBER_ABBREVIATIONS:  # "No. 5" abbreviates; "The answer was no." ends a sentence.
        return not text[next_start].isdigit()
    is_initial = len(token) == 1 and token.isalpha()
    return token not in ABBREVIATIONS and not is_initial


def _limit_length(text: str, start: int, end: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", start, start + MAX_SENTENCE_CHARS)
        cut = cut if cut > start else start + MAX_SENTENCE_CHARS
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    pieces.append((start, end))
    return pieces


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def chunk_sentences(sentences: list[tuple[int, int]], text: str, settings: ChunkingSettings) -> list[Chunk]:
    """Group sentences into chunks of at most `max_words` words, each sharing `overlap_sentences` with the last.

    A sentence longer than the limit is a chunk on its own.
    """
    words = [len(text[start:end].split()) for start, end in sentences]
    chunks: list[Chunk] = []
    first = 0
    while first < len(sentences):
        last, total = first, words[first]
        while last + 1 < len(sentences) and total + words[last + 1] <= settings.max_words:
            last += 1
            total += words[last]
        chunks.append(Chunk(position=len(chunks), first_sentence=first, last_sentence=last))
        if last + 1 >= len(sentences):
            break
        # Step back for the overlap, but always move forward, and only as far as still leaves the next chunk
        # room for a sentence of its own (otherwise it would lie inside this one).
        overlap_start = max(last + 1 - settings.overlap_sentences, first + 1)
        fits = sum(words[overlap_start : last + 2]) <= settings.max_words
        first = overlap_start if fits else last + 1
    return chunks
