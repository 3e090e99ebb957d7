"""Questions as plain text: markup of every syntax a chat client sends, and invisible characters, taken out.

People paste questions with HTML (`<b>who</b>`), Markdown (`**who**`, `_who_`, `[who](url)`), Telegram's
MarkdownV2 (`||spoiler||`, `\\.` escapes, `>` quotes) and entities (`&amp;`), and with characters nobody sees:
zero-width spaces and joiners, right-to-left marks, byte-order marks, soft hyphens, control characters, and
lone surrogates (which no encoder accepts). Taking all of that out first means markup around a question never
changes its answer.
"""

from __future__ import annotations

import html
import re
import unicodedata

# HTML tags (a "<" followed by a letter or "/": "<30%" is not a tag), Markdown emphasis and code marks, and
# MarkdownV2's spoiler bars.
_TAGS_AND_MARKS = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>|```|\*\*|__|~~|\|\||`")
# [text](url) and ![alt](url): the text stays, the address goes.
_LINK = re.compile(r"!?\[([^\[\]]{0,300})\]\([^()\s]{0,500}\)")
# MarkdownV2 escapes: "\." is a literal "." (any ASCII punctuation may be escaped).
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# Single *, _ or ~ that open or close emphasis: next to a word on one side and not on the other.
_EMPHASIS = re.compile(r"(?<![\w*_~])[*_~]+(?=[^\W_])|(?<=[^\W_])[*_~]+(?![\w*_~])")
# A run of *, _ or ~ standing alone, as a mark left once a tag inside it is gone ("*<b>Who</b>*").
_LONE_MARKS = re.compile(r"(?<!\S)[*_~]+(?!\S)")
# ">" quoting a line (Markdown and MarkdownV2 block quotes, "**>" expandable ones, "*> ...*" in emphasis).
_QUOTE = re.compile(r"^[ \t]*(?:[*_~]{1,2})?>+", re.MULTILINE)


def strip_markup(text: str) -> str:
    """The question without markup, entities, invisible characters or runs of white space."""
    text = _visible(html.unescape(_visible(text)))
    # Until nothing changes: taking one kind out may expose another ("*<b>> Who</b>*": the tag hides the quote
    # marker, and the tag's space leaves the stars standing alone).
    for _ in range(5):
        before = text
        text = _QUOTE.sub(" ", text)
        text = _TAGS_AND_MARKS.sub(" ", text)
        for _ in range(5):  # links inside links, innermost first
            text, found = _LINK.subn(r"\1", text)
            if not found:
                break
        text = _ESCAPE.sub(r"\1", text)
        text = _EMPHASIS.sub("", text)
        text = _LONE_MARKS.sub(" ", text)
        if text == before:
            break
    return " ".join(text.split())


def _visible(text: str) -> str:
    """Control characters become spaces; format characters (zero-width, direction marks) and surrogates go."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            out.append("\n" if char == "\n" else " ")
        elif category not in ("Cf", "Cs", "Co", "Cn"):
            out.append(char)
    return "".join(out)
