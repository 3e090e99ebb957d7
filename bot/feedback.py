"""👍/👎 on answers, appended to a JSON Lines file that `python -m bot eval` can read back."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bot.engine import Answer

VOTES = ("up", "down")


class FeedbackStore:
    """Appends one JSON object per vote: question, answer, citations, vote and time (UTC)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, answer: Answer, vote: str, *, chat_type: str | None = None) -> None:
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, not {vote!r}")
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "vote": vote,
            "question": answer.question,
            "answer": answer.text,
            "abstained": answer.abstained,
            "citations": [{"n": c.n, "title": c.title, "source": c.source, "url": c.url} for c in answer.citations],
            "chat_type": chat_type,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as stream:
                # After a crash mid-write the last line is partial: start a fresh line rather than lose two.
                stream.seek(0, 2)
                if stream.tell():
                    stream.seek(-1, 2)
                    if stream.read(1) != b"\n":
                        stream.write(b"\n")
                stream.write(line.encode())
                stream.flush()
                os.fsync(stream.fileno())

    def counts(self) -> Counter[str]:
        return Counter(entry["vote"] for entry in read_feedback(self.path))


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """Every readable vote in the file; a damaged line (a crash mid-write) is skipped, not fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
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
