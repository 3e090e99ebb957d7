"""Votes are kept in SQLite (WAL), bounded by count and age, read back by `read_feedback` (and so by
`python -m bot eval`), and survive a process killed in the middle of writing them."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import bot.service
from bot.cli import cli
from bot.engine import Answer, Citation, Engine, Outcome
from bot.errors import ConfigError
from bot.feedback import FeedbackStore, read_feedback

ANSWER = Answer(
    question="Who leads the party?",
    outcome=Outcome.ANSWERED,
    text="Mamai leads it. [1]",
    citations=(Citation(1, "Title", "Publisher", "2020-11", None, "a.md", "Mamai leads it."),),
)
PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_votes_are_stored_with_question_answer_citations_and_time(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "data" / "feedback.sqlite")
    store.record(ANSWER, "up", chat_type="private")
    store.record(ANSWER, "down")
    entries = read_feedback(store.path)
    assert [e["vote"] for e in entries] == ["up", "down"]
    assert entries[0]["question"] == ANSWER.question and entries[0]["answer"] == ANSWER.text
    assert entries[0]["citations"] == [{"n": 1, "title": "Title", "source": "a.md", "url": None}]
    assert entries[0]["time"].endswith("+00:00") and entries[0]["chat_type"] == "private"
    assert store.counts() == {"up": 1, "down": 1}
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_follow_up_is_stored_as_it_was_understood(tmp_path: Path) -> None:
    # "tell me more" alone could not be asked again by `python -m bot eval`.
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.record(dataclasses.replace(ANSWER, question="tell me more", understood="Who leads the party?"), "down")
    assert read_feedback(store.path)[0]["question"] == "Who leads the party?"


def test_a_vote_that_is_not_up_or_down_is_refused(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    with pytest.raises(ValueError, match="vote"):
        store.record(ANSWER, "sideways")
    assert read_feedback(store.path) == []


def test_the_newest_votes_are_kept_and_the_file_stops_growing(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite", max_votes=50)
    long_answer = Answer(ANSWER.question, ANSWER.outcome, "x" * 8000, ANSWER.citations)

    def size() -> int:
        return sum(p.stat().st_size for p in tmp_path.glob("feedback.sqlite*"))

    largest = 0
    for _ in range(500):  # 4 MB of answers written
        store.record(long_answer, "up")
        largest = max(largest, size())
    store.record(ANSWER, "down")
    entries = read_feedback(store.path)
    assert len(entries) == 50
    assert entries[-1]["vote"] == "down" and entries[-2]["answer"] == "x" * 8000
    # 50 votes of 8 KB and a write-ahead log of at most about 100 pages: far below what was written.
    assert largest < 1_000_000, largest


def test_votes_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite", retention_days=30)
    store.record(ANSWER, "up")
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE votes SET time = '2000-01-01T00:00:00+00:00'")
    store.record(ANSWER, "down")
    assert [e["vote"] for e in read_feedback(store.path)] == ["down"]


def test_a_json_lines_file_from_an_older_version_is_refused_for_writing_but_still_read(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_text(
        '{"vote": "up", "question": "Who leads the party?"}\n{"vote": "down", "quest', encoding="utf-8"
    )  # the last line cut short by a crash
    with pytest.raises(ConfigError, match="FEEDBACK_FILE"):
        FeedbackStore(path)
    assert [e["vote"] for e in read_feedback(path)] == ["up"]


def test_a_file_that_is_no_feedback_reads_as_no_votes(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(b"\xff\xfe not utf-8")
    assert read_feedback(path) == []
    assert read_feedback(tmp_path / "missing.sqlite") == []
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert read_feedback(other) == []


WRITER = """
import sys
sys.path.insert(0, {project!r})
from pathlib import Path
from bot.engine import Answer, Citation, Outcome
from bot.feedback import FeedbackStore
store = FeedbackStore(Path({path!r}), max_votes=300)
answer = Answer("Who leads the party?", Outcome.ANSWERED, "Mamai leads it. [1]" * 50,
                (Citation(1, "Title", None, None, None, "a.md", "p"),))
print("ready", flush=True)
while True:
    store.record(answer, "up")
"""


def test_votes_survive_the_process_being_killed_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    counts = []
    for kill in range(4):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER.format(project=str(PROJECT_DIR), path=str(path))],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
            time.sleep(0.05 + 0.1 * kill)  # somewhere in the middle of the stream of writes
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.wait(timeout=10)
        assert writer.returncode == -signal.SIGKILL
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        entries = read_feedback(path)
        assert all(e["vote"] == "up" and e["answer"].startswith("Mamai") for e in entries)
        assert len(entries) <= 300
        counts.append(len(entries))
    assert counts[-1] > 0
    store = FeedbackStore(path)  # and it takes new votes after the crashes
    store.record(ANSWER, "down")
    assert read_feedback(path)[-1]["vote"] == "down"


def test_eval_reads_the_bots_feedback_back(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.record(engine.answer("Who is Zhanbolat Mamai?"), "up")
    store.record(engine.answer("What is the capital of France?"), "down")
    monkeypatch.setattr(bot.service, "open_engine", lambda *args, **kwargs: engine)
    monkeypatch.setattr(bot.service, "load_embedder", lambda settings: None)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["eval", str(store.path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "feedback: 2 votes, 1 up, 1 down" in result.output
    assert "What is the capital of France?" in result.output and "same answer" in result.output
