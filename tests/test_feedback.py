"""Votes are appended as JSON lines and read back; a line cut short by a crash costs only itself."""

from __future__ import annotations

from pathlib import Path

from bot.engine import Answer, Citation, Outcome
from bot.feedback import FeedbackStore, read_feedback

ANSWER = Answer(
    question="Who leads the party?",
    outcome=Outcome.ANSWERED,
    text="Mamai leads it. [1]",
    citations=(Citation(1, "Title", "Publisher", "2020-11", None, "a.md", "Mamai leads it."),),
)


def test_votes_are_stored_with_question_answer_citations_and_time(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "data" / "feedback.jsonl")
    store.record(ANSWER, "up", chat_type="private")
    store.record(ANSWER, "down")
    entries = read_feedback(store.path)
    assert [e["vote"] for e in entries] == ["up", "down"]
    assert entries[0]["question"] == ANSWER.question and entries[0]["answer"] == ANSWER.text
    assert entries[0]["citations"] == [{"n": 1, "title": "Title", "source": "a.md", "url": None}]
    assert entries[0]["time"].endswith("+00:00")
    assert store.counts() == {"up": 1, "down": 1}


def test_a_partial_last_line_loses_only_itself(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.jsonl")
    store.record(ANSWER, "up")
    with store.path.open("a", encoding="utf-8") as stream:
        stream.write('{"vote": "down", "quest')  # a crash in the middle of a write
    store.record(ANSWER, "down")
    assert [e["vote"] for e in read_feedback(store.path)] == ["up", "down"]


def test_an_unreadable_file_reads_as_no_votes(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(b"\xff\xfe not utf-8")
    assert read_feedback(path) == []
    assert read_feedback(tmp_path / "missing.jsonl") == []
