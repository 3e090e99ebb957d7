"""Small text helpers that every renderer uses the same way."""

from __future__ import annotations

from bot.engine import Citation, SourceInfo
from bot.english import human_date

__all__ = ["human_date", "source_line"]


def source_line(item: Citation | SourceInfo) -> str:
    """ "Title — Publisher, November 2020": the link is left to the renderer."""
    details = ", ".join(part for part in (item.publisher, human_date(item.published)) if part)
    return f"{item.title} — {details}" if details else item.title
