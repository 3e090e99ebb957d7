"""👍/👎 on answers, kept in SQLite (WAL mode) and bounded; `python -m bot eval FILE` reads them back.

SQLite commits atomically, so a crash (even SIGKILL or a power cut, with `synchronous=FULL`) in the middle of a
vote loses at most that vote and never damages the earlier ones. The table keeps the newest `max_votes` votes
and, when `retention_days` is set, none older than that: old votes are deleted as new ones arrive, and SQLite
reuses their pages, so the file does not grow past what `max_votes` votes need. Files written by earlier
versions (JSON Lines) can still be read by `read_feedback`.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bot.engine import Answer
from bot.errors import ConfigError

VOTES = ("up", "down")
MAX_VOTES = 100_000  # the default of the setting FEEDBACK_MAX_VOTES
_SQLITE_HEADER = b"SQLite format 3\x00"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    citations TEXT NOT NULL,
    chat_type TEXT
);
CREATE INDEX IF NOT EXISTS votes_time ON votes (time);
"""


class FeedbackStore:
    """Records one row per vote: time (UTC), vote, question, answer, citations and chat type; no user ids."""

    def __init__(self, path: Path, *, max_votes: int = MAX_VOTES, retention_days: int = 0) -> None:
        self.path = path
        self.max_votes = max_votes
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._connection = _open(path)

    def record(self, answer: Answer, vote: str, *, chat_type: str | None = None) -> None:
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
        citations = [{"n": c.n, "title": c.title, "source": c.source, "url": c.url} for c in answer.citations]
        now = dt.datetime.now(dt.UTC)
        row = (
            now.isoformat(timespec="seconds"),
            vote,
            # A follow-up as it was understood: "tell me more" or "and her?" alone could not be asked again.
            answer.understood or answer.question,
            answer.text,
            int(answer.abstained),
            json.dumps(citations, ensure_ascii=False),
            chat_type,
        )
        with self._lock, self._connection as connection:  # one transaction: the vote and the trimming
            connection.execute(
                "INSERT INTO votes (time, vote, question, answer, abstained, citations, chat_type) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            connection.execute(
                "DELETE FROM votes WHERE id <= (SELECT MAX(id) FROM votes) - ?",
                (self.max_votes,),
            )
            if self.retention_days:
                oldest = (now - dt.timedelta(days=self.retention_days)).isoformat(timespec="seconds")
                connection.execute("DELETE FROM votes WHERE time < ?", (oldest,))

    def counts(self) -> Counter[str]:
        with self._lock:
            rows = self._connection.execute("SELECT vote, COUNT(*) FROM votes GROUP BY vote").fetchall()
        return Counter({vote: count for vote, count in rows})

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _open(path: Path) -> sqlite3.Connection:
    if path.is_file() and path.stat().st_size and not _is_sqlite(path):
        raise ConfigError(
            f"FEEDBACK_FILE {path} is not a SQLite database (an older version wrote JSON Lines there); move it "
            "away or point FEEDBACK_FILE at another file. 'python -m bot eval' still reads the old file."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        # Checkpoint the write-ahead log every 100 pages and cut it back to 1 MiB: it stays small too.
        connection.execute("PRAGMA wal_autocheckpoint=100")
        connection.execute(f"PRAGMA journal_size_limit={1 << 20}")
        connection.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise ConfigError(f"FEEDBACK_FILE {path} cannot be used as a database: {exc}") from None
    return connection


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            return stream.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """Every readable vote, oldest first, from the bot's SQLite file or from an older JSON Lines file.

    A damaged JSON line (a crash mid-write in an older version) is skipped, not fatal; anything else that is
    not a feedback file reads as no votes, so that `python -m bot eval` can tell it from a question file.
    """
    if _is_sqlite(path):
        return _read_sqlite(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("vote") in VOTES and isinstance(entry.get("question"), str):
            entries.append(entry)
    return entries


def _read_sqlite(path: Path) -> list[dict[str, Any]]:
    try:
        connection = sqlite3.connect(path)
    except sqlite3.Error:
        return []
    try:
        rows = connection.execute(
            "SELECT time, vote, question, answer, abstained, citations, chat_type FROM votes ORDER BY id"
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        connection.close()
    entries = []
    for time, vote, question, answer, abstained, citations, chat_type in rows:
        try:
            cited = json.loads(citations)
        except (TypeError, json.JSONDecodeError):
            cited = []
        entries.append(
            {
                "time": time,
                "vote": vote,
                "question": question,
                "answer": answer,
                "abstained": bool(abstained),
                "citations": cited,
                "chat_type": chat_type,
            }
        )
    return entries
