"""Answers as Telegram HTML: every piece of dynamic text escaped, messages split under Telegram's limit."""

from __future__ import annotations

import html
import re

from bot.engine import Answer, Citation, SourceInfo
from bot.formatting import human_date

# Telegram counts a message's length after parsing entities, in UTF-16 code units.
MAX_MESSAGE = 4096
TAG = re.compile(r"<[^>]*>")


def visible_length(fragment: str) -> int:
    """The length Telegram measures for an HTML fragment we produced (well-formed by construction)."""
    return len(html.unescape(TAG.sub("", fragment)).encode("utf-16-le", "surrogatepass")) // 2


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def link(url: str, text: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{escape(text)}</a>'


def _source_html(item: Citation | SourceInfo) -> str:
    title = link(item.url, item.title) if item.url else escape(item.title)
    details = ", ".join(part for part in (item.publisher, human_date(item.published)) if part)
    return f"{title} — {escape(details)}" if details else title


# Sources go in expandable blockquotes of at most this many visible characters (a blockquote cannot be split).
SOURCES_BLOCK = 3000


def answer_messages(answer: Answer) -> list[str]:
    """The answer, then its sources with links in an expandable blockquote; one or more messages."""
    pieces = [("", escape(answer.text))]
    lines = ["<b>Sources</b>"] + [f"[{c.n}] {_source_html(c)}" for c in answer.citations]
    if answer.citations:
        blocks: list[list[str]] = [[]]
        for line in lines:
            if blocks[-1] and visible_length("\n".join([*blocks[-1], line])) > SOURCES_BLOCK:
                blocks.append([])
            blocks[-1].append(line)
        pieces += [("\n\n", f"<blockquote expandable>{chr(10).join(block)}</blockquote>") for block in blocks]
    return pack_pieces(pieces)


def preview_url(answer: Answer) -> str | None:
    """The link to preview under an answer: only an answer with a single source gets one."""
    if len(answer.citations) == 1 and answer.citations[0].url:
        return answer.citations[0].url
    return None


def passages_messages(answer: Answer) -> list[str]:
    """The cited passages in full, each under its source."""
    if not answer.citations:
        return pack(["This answer cites no passages."])
    return pack(
        [f"<b>[{c.n}]</b> {_source_html(c)}\n<blockquote>{escape(c.passage)}</blockquote>" for c in answer.citations]
    )


def sources_messages(sources: list[SourceInfo]) -> list[str]:
    if not sources:
        return pack(["No articles are indexed yet."])
    lines = [f"{number}. {_source_html(source)}" for number, source in enumerate(sources, 1)]
    plural = "" if len(sources) == 1 else "s"
    return pack([f"<b>{len(sources)} article{plural}</b>", *lines], separator="\n")


def pack(paragraphs: list[str], separator: str = "\n\n") -> list[str]:
    """Join HTML paragraphs into messages of at most `MAX_MESSAGE` visible characters (see `pack_pieces`)."""
    return pack_pieces([(separator, paragraph) for paragraph in paragraphs])


def pack_pieces(pieces: list[tuple[str, str]]) -> list[str]:
    """Join (separator, HTML paragraph) pieces into messages of at most `MAX_MESSAGE` visible characters.

    Messages break only between pieces, so never inside a tag; a piece's separator joins it to the one before
    it in the same message. A piece too long on its own is sent as plain text cut at spaces (its markup
    dropped), since its tags cannot be split safely.
    """
    messages: list[str] = []
    current = ""
    for separator, paragraph in pieces:
        parts = [paragraph] if visible_length(paragraph) <= MAX_MESSAGE else _split_plain(paragraph)
        for piece in parts:
            candidate = f"{current}{separator}{piece}" if current else piece
            if visible_length(candidate) <= MAX_MESSAGE:
                current = candidate
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def _split_plain(fragment: str) -> list[str]:
    text = html.unescape(TAG.sub("", fragment))
    pieces = []
    while text:
        cut = len(text)
        while len(text[:cut].encode("utf-16-le", "surrogatepass")) // 2 > MAX_MESSAGE:
            cut = (
                text.rfind(" ", 0, min(cut - 1, MAX_MESSAGE)) if " " in text[: min(cut - 1, MAX_MESSAGE)] else cut // 2
            )
        pieces.append(escape(text[:cut].strip()))
        text = text[cut:].strip()
    return [piece for piece in pieces if piece]
