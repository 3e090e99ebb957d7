"""bot.chunking: sentence spans, clauses and overlapping chunks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.chunking import (
    CLAUSE_MIN_WORDS,
    MAX_SENTENCE_CHARS,
    Chunk,
    ChunkingSettings,
    chunk_sentences,
    split_clauses,
    split_sentences,
)
from bot.corpus import load_corpus


def sentences(text: str) -> list[str]:
    spans = split_sentences(text)
    _assert_valid_spans(text, spans)
    return [text[start:end] for start, end in spans]


def _assert_valid_spans(text: str, spans: list[tuple[int, int]]) -> None:
    """Spans are in order, non-overlapping, non-empty, trimmed, within one line, and cover every word."""
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip(), f"span {piece!r} has surrounding white space"
        assert "\n" not in piece, f"span {piece!r} crosses a paragraph break"
        assert text[previous_end:start].strip() == "", f"text {text[previous_end:start]!r} is in no sentence"
        previous_end = end
    assert text[previous_end:].strip() == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith met Dr. Jones in the U.S. Senate on Jan. 5. They talked for an hour.",
            ["Mr. Smith met Dr. Jones in the U.S. Senate on Jan. 5.", "They talked for an hour."],
        ),
        (
            "Mrs. Brown and Prof. White arrived. Gen. Black did not.",
            ["Mrs. Brown and Prof. White arrived.", "Gen. Black did not."],
        ),
        ("J. K. Rowling wrote it. Then she left.", ["J. K. Rowling wrote it.", "Then she left."]),
        (
            'He said "Stop." Then he left! Why? Because it rained.',
            ['He said "Stop."', "Then he left!", "Why?", "Because it rained."],
        ),
        (
            "“Is it over?” she asked. “No,” he said.",
            ["“Is it over?” she asked.", "“No,” he said."],
        ),
        ("Really?! Yes. Wait… Then it happened.", ["Really?!", "Yes.", "Wait…", "Then it happened."]),
        (
            "Growth was 1.5 percent. Inflation rose to 2.3% in the U.K. last year.",
            ["Growth was 1.5 percent.", "Inflation rose to 2.3% in the U.K. last year."],
        ),
        (
            "It ended at 5 p.m. on Monday. The next day was calm.",
            ["It ended at 5 p.m. on Monday.", "The next day was calm."],
        ),
        ("He cited e.g. fines and bans. Others agreed.", ["He cited e.g. fines and bans.", "Others agreed."]),
        ("The vote (held in March.) Was it fair?", ["The vote (held in March.)", "Was it fair?"]),
        ("Prices rose by 10. 20 shops closed.", ["Prices rose by 10.", "20 shops closed."]),
        ("the cat sat. the dog ran.", ["the cat sat. the dog ran."]),  # no capital: not a new sentence
        ("No full stop at the end", ["No full stop at the end"]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_no_at_end_of_sentence_ends_it() -> None:
    assert sentences("The answer was no. Then he left.") == ["The answer was no.", "Then he left."]


def test_paragraphs_are_never_crossed() -> None:
    text = "First paragraph without a full stop\nSecond paragraph starts here. It has two sentences.\n\nThird."
    assert sentences(text) == [
        "First paragraph without a full stop",
        "Second paragraph starts here.",
        "It has two sentences.",
        "Third.",
    ]


def test_spans_are_exact_slices_with_odd_spacing() -> None:
    text = "One sentence.   Two sentence!  \n\n\nThree?\t Four.  "
    assert sentences(text) == ["One sentence.", "Two sentence!", "Three?", "Four."]


def test_spans_have_no_leading_white_space() -> None:
    text = "  Indented paragraph here. Another one.\n   Next line."
    assert sentences(text) == ["Indented paragraph here.", "Another one.", "Next line."]


def test_empty_and_blank_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n \t ") == []


def test_overlong_sentence_is_cut_at_word_boundaries() -> None:
    words = [f"Word{i}" for i in range(400)]
    text = "Start. " + " ".join(words) + " end. After."
    spans = split_sentences(text)
    _assert_valid_spans(text, spans)
    pieces = [text[start:end] for start, end in spans]
    assert pieces[0] == "Start."
    assert pieces[-1] == "After."
    assert len(pieces) > 3
    assert all(len(piece) <= MAX_SENTENCE_CHARS for piece in pieces)
    # Cut between words: no word is split, and all words are there in order.
    assert " ".join(pieces[1:-1]).split() == [*words, "end."]


def test_overlong_word_without_spaces_is_cut_hard() -> None:
    text = "x" * (MAX_SENTENCE_CHARS * 2 + 10)
    spans = split_sentences(text)
    _assert_valid_spans(text, spans)
    assert [end - start for start, end in spans] == [MAX_SENTENCE_CHARS, MAX_SENTENCE_CHARS, 10]


def test_corpus_sentences_are_valid(project_corpus: Path) -> None:
    articles, _ = load_corpus(project_corpus)
    for article in articles:
        spans = split_sentences(article.text)
        _assert_valid_spans(article.text, spans)
        texts = [article.text[start:end] for start, end in spans]
        assert all(t[-1] in '.!?”"’' for t in texts), texts
    rally = next(a for a in articles if a.publisher == "RFE/RL")
    texts = [rally.text[s:e] for s, e in split_sentences(rally.text)]
    assert "The last parliamentary elections were held in March 2016." in texts
    assert (
        "Nazarbaev still maintains key positions of power, including head of the country’s powerful Security "
        "Council and ruling Nur-Otan party." in texts
    )


def test_split_clauses() -> None:
    long_sentence = (
        "Four main points will be announced at the rally: the release of all political prisoners; the boycott "
        "of the January 10 parliamentary election; a fiscal amnesty; and a ban on land leasing to foreigners."
    )
    clauses = split_clauses(long_sentence)
    assert clauses == [
        "Four main points will be announced at the rally",
        "the release of all political prisoners",
        "the boycott of the January 10 parliamentary election",
        "and a ban on land leasing to foreigners.",
    ]  # "a fiscal amnesty" has fewer than CLAUSE_MIN_WORDS words
    assert all(len(c.split()) >= CLAUSE_MIN_WORDS for c in clauses)
    assert all(c in long_sentence for c in clauses)


def test_split_clauses_at_dashes() -> None:
    sentence = (
        "The parties include the ruling Nur-Otan party of the president -- four pro-government parties that "
        "always vote with it -- and one more party that describes itself as an opposition group."
    )
    clauses = split_clauses(sentence)
    assert len(clauses) == 3
    assert clauses[0].startswith("The parties include the ruling Nur-Otan")  # hyphens inside words stay


def test_split_clauses_short_or_unsplittable() -> None:
    assert split_clauses("A short sentence: with a colon; and a semicolon.") == []
    unsplittable = " ".join(["word"] * 30) + "."
    assert split_clauses(unsplittable) == []


def _text_of(word_counts: list[int]) -> tuple[str, list[tuple[int, int]]]:
    text = " ".join(" ".join(["Start", *["word"] * (n - 2), "end."]) if n > 1 else "End." for n in word_counts)
    return text, split_sentences(text)


def _words(text: str, spans: list[tuple[int, int]], chunk: Chunk) -> int:
    return sum(len(text[s:e].split()) for s, e in spans[chunk.first_sentence : chunk.last_sentence + 1])


def _check_chunks(chunks: list[Chunk], text: str, spans: list[tuple[int, int]], settings: ChunkingSettings) -> None:
    assert chunks, "every non-empty text has a chunk"
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert chunks[0].first_sentence == 0
    assert chunks[-1].last_sentence == len(spans) - 1
    covered = set()
    for chunk in chunks:
        assert 0 <= chunk.first_sentence <= chunk.last_sentence < len(spans)
        covered |= set(range(chunk.first_sentence, chunk.last_sentence + 1))
        size = chunk.last_sentence - chunk.first_sentence + 1
        assert _words(text, spans, chunk) <= settings.max_words or size == 1
    assert covered == set(range(len(spans)))
    for before, after in itertools.pairwise(chunks):
        assert after.first_sentence > before.first_sentence  # always progresses
        assert after.first_sentence <= before.last_sentence + 1  # no gap
        shared = before.last_sentence - after.first_sentence + 1
        expected = min(settings.overlap_sentences, before.last_sentence - before.first_sentence)
        if shared != expected:
            # The overlap is dropped only when it would leave the next chunk no room for a sentence of its own
            # (the next chunk would then lie inside this one).
            squeezed = Chunk(after.position, before.last_sentence + 1 - expected, after.first_sentence)
            assert shared == 0 and _words(text, spans, squeezed) > settings.max_words


@pytest.mark.parametrize(
    ("counts", "settings"),
    [
        ([10] * 30, ChunkingSettings(max_words=110, overlap_sentences=1)),
        ([10] * 30, ChunkingSettings(max_words=35, overlap_sentences=2)),
        ([10] * 30, ChunkingSettings(max_words=20, overlap_sentences=0)),
        ([5, 30, 7, 80, 12, 3, 3, 3, 40, 9], ChunkingSettings(max_words=50, overlap_sentences=1)),
        ([60, 10, 10, 90, 5], ChunkingSettings(max_words=50, overlap_sentences=1)),
        ([10] * 12, ChunkingSettings(max_words=30, overlap_sentences=5)),  # overlap >= chunk size
        ([10] * 12, ChunkingSettings(max_words=10, overlap_sentences=3)),  # one sentence per chunk
        ([40] * 6, ChunkingSettings(max_words=20, overlap_sentences=1)),  # every sentence too long
    ],
)
def test_chunk_invariants(counts: list[int], settings: ChunkingSettings) -> None:
    text, spans = _text_of(counts)
    assert len(spans) == len(counts)
    chunks = chunk_sentences(spans, text, settings)
    _check_chunks(chunks, text, spans, settings)
    assert len(chunks) <= len(spans)


def test_chunks_fill_up_to_max_words() -> None:
    text, spans = _text_of([10] * 30)
    chunks = chunk_sentences(spans, text, ChunkingSettings(max_words=35, overlap_sentences=0))
    assert [(c.first_sentence, c.last_sentence) for c in chunks][:3] == [(0, 2), (3, 5), (6, 8)]


def test_single_sentence_and_no_sentences() -> None:
    text, spans = _text_of([7])
    assert chunk_sentences(spans, text, ChunkingSettings()) == [Chunk(0, 0, 0)]
    assert chunk_sentences([], "", ChunkingSettings()) == []


def test_every_chunk_adds_a_sentence_the_previous_lacked() -> None:
    text, spans = _text_of([50, 50, 100])
    chunks = chunk_sentences(spans, text, ChunkingSettings(max_words=110, overlap_sentences=1))
    for before, after in itertools.pairwise(chunks):
        assert after.last_sentence > before.last_sentence, chunks


def test_corpus_chunks(project_corpus: Path) -> None:
    settings = ChunkingSettings()
    articles, _ = load_corpus(project_corpus)
    for article in articles:
        spans = split_sentences(article.text)
        chunks = chunk_sentences(spans, article.text, settings)
        _check_chunks(chunks, article.text, spans, settings)
        assert len(chunks) > 1
