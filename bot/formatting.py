"""Small text helpers that every renderer uses the same way."""

from __future__ import annotations

import datetime as dt
import re

from bot.engine import Citation, SourceInfo


def human_date(published: str | None) -> str | None:
    """ "2020-11-06" → "6 November 2020", "2020-11" → "November 2020"; anything else unchanged."""
    if not published:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", published):
        try:
            date = dt.date.fromisoformat(published)
        except ValueError:
            return published
        return f"{date.day} {date:%B %Y}"
    if re.fullmatch(r"\d{4}-\d{2}", published):
        year, month = published.split("-")
        if 1 <= int(month) <= 12:
            return f"{dt.date(int(year), int(month), 1):%B %Y}"
    return published


def source_line(item: Citation | SourceInfo) -> str:
    """ "Title — Publisher, November 2020": the link is left to the renderer."""
    details = ", ".join(part for part in (item.publisher, human_date(item.published)) if part)
    return f"{item.title} — {details}" if details else item.title
