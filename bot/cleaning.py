"""Turn text copied from a news page into the article's own paragraphs.

Pages copied as text carry furniture: navigation, media-player residue, captions, share buttons, "related"
lists and the publisher's boilerplate about itself. The rules here are about news pages in general, never
about particular files: lines that are UI labels, lines that are not prose, repeated captions, and the tail
that starts at an end-of-article marker.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.english import function_word_share

# Bump when the rules change: the manifest records it, so a changed cleaner re-reads every article.
CLEANER_VERSION = 4

_UI_LABEL = re.compile(
    r"""^(?:
        accessibility\ links | skip\ to\ (?:main\ )?content | skip\ navigation | main\ menu | menu | search
      | breaking\ news | live | watch(?:\ live)? | listen(?:\ to\ this\ article)?
      | please\ wait | loading(?:\.\.\.|…)? | no\ media\ source\ currently\ available
      | play(?:\ video)? | pause | mute | unmute | replay | full\ screen | captions?
      | share(?:\ this)?(?:\ (?:article|story|page|on\ \w+))? | print | e-?mail | copy\ link | save
      | advertisement | sponsored(?:\ content)? | subscribe(?:\ now)? | sign\ (?:up|in) | log\ ?in
      | follow\ us(?:\ on\ \w+)? | image(?:\ source)? | photo | video | audio | gallery
      | \d+x\d+\ image | image\ \d+\ of\ \d+ | getty\ images | afp | reuters | ap\ photo
      | (?:all\ rights\ reserved.*) | ©.* | copyright\ .*
      | (?:read|see|watch|listen)\ (?:more|next|also)\b.+
    )[.:]?$""",
    re.IGNORECASE | re.VERBOSE,
)

# A line made only of media timestamps, e.g. "0:00 0:02:19 0:00".
_MEDIA_TIMES = re.compile(r"^(?:\d{1,2}:\d{2}(?::\d{2})?\s*)+$")

# Markers after which a page holds no more of the article: everything from them on is dropped.
_END_OF_ARTICLE = re.compile(
    r"""^(?:
        related(?:\ (?:articles?|stories|content|coverage|topics|news|reading))?
      | back\ to\ top(?:\ button)?
      | more\ (?:from|on|stories|in)\b.* | read\ (?:more|next|also) | see\ also
      | you\ (?:may|might)\ also\ (?:like|be\ interested\ in).* | recommended(?:\ for\ you)?
      | most\ (?:read|popular|viewed|shared) | trending(?:\ now)?
      | comments? | leave\ a\ (?:comment|reply) | tags?: .* | topics?:? | filed\ under.*
      | \d+x\d+\ image | about\ the\ authors? | about\ us
    )[.:]?$""",
    re.IGNORECASE | re.VERBOSE,
)

# UI instructions that can appear inside otherwise normal sentences.
_UI_PHRASE = re.compile(r"\bclick here\b|\bcookies?\b.*\b(?:accept|consent|policy)\b", re.IGNORECASE)

_SENTENCE_END = re.compile(r"""[.!?…:;]["'”’»)\]]*$""")
_BULLET = re.compile(r"^(?:[•·▪►◦‣∙*]|-(?=\s))\s*")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)

# Lines this long are prose even without a full stop (a list item, a caption-less paragraph).
_PROSE_MIN_WORDS = 12
# A long capitalized line with at least this share of function words ("of", "the", "was") reads as prose.
_PROSE_FUNCTION_SHARE = 0.3
# A bulleted furniture item (an image label, "Share", "Related") in the last part of a page (past this share of
# its lines), after the article's paragraphs, starts the page's footer: link lists, the publisher's notes about
# itself. Furniture that is not a list item ("Advertisement" between paragraphs) is only skipped.
_FOOTER_START = 0.6


@dataclass(frozen=True)
class CleanedText:
    """An article's headline (the first headline-like line, if any) and its paragraphs."""

    headline: str | None
    paragraphs: tuple[str, ...]

    @property
    def body(self) -> str:
        """The paragraphs joined by blank lines: the text that chunks and citations refer to."""
        return "\n\n".join(self.paragraphs)


def normalize(text: str) -> str:
    """Unicode-normalize, drop invisible characters, unify line ends and spaces."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ").replace("\t", " ")
    return "\n".join(re.sub(r" {2,}", " ", line).strip() for line in text.split("\n"))


def _is_headline_like(line: str) -> bool:
    """A short line that is not a sentence: a title, a section heading, a teaser or a label."""
    if _SENTENCE_END.search(line):
        return False
    words = line.split()
    capitalized = sum(1 for word in words if word[:1].isupper())
    # Headlines are capitalized word by word and drop most function words; prose keeps them.
    title_case = (
        len(words) >= 3 and capitalized / len(words) >= 0.6 and function_word_share(line) < _PROSE_FUNCTION_SHARE
    )
    return len(words) < _PROSE_MIN_WORDS or title_case


def clean_text(raw: str, *, first_line_is_title: bool = False) -> CleanedText:
    """Strip page furniture from raw page text, keeping the article's paragraphs in order.

    With `first_line_is_title` (plain-text articles), the first line that is not furniture is the headline
    even when it reads like a sentence ("Is the election fair?").
    """
    raw_lines = [line for line in normalize(raw).split("\n") if line]
    # Which lines were list items: a bulleted label near the end starts the footer (related links, sharing).
    bulleted = [bool(_BULLET.match(line)) for line in raw_lines]
    lines = [_BULLET.sub("", line) for line in raw_lines]
    keep = [i for i, line in enumerate(lines) if line]
    lines, bulleted = [lines[i] for i in keep], [bulleted[i] for i in keep]

    # Images are often captioned twice (alt text, then caption): a line repeated at once is a caption.
    repeated = {i for i in range(1, len(lines)) if lines[i] == lines[i - 1]}
    repeated |= {i - 1 for i in repeated}

    headline: str | None = None
    paragraphs: list[str] = []
    for i, line in enumerate(lines):
        # Markers and labels are short: a long line that merely starts like one ("More from the opposition
        # is expected ...", "Copyright law was changed ...") is prose.
        short = len(line.split()) <= _PROSE_MIN_WORDS and _is_headline_like(line)
        if paragraphs and short and _END_OF_ARTICLE.match(line):
            break
        furniture = (short and _UI_LABEL.match(line)) or _MEDIA_TIMES.match(line)
        if furniture and bulleted[i] and paragraphs and i >= _FOOTER_START * len(lines):
            break
        if i in repeated or furniture:
            continue
        if _UI_PHRASE.search(line):
            # Keep the paragraph's real sentences; drop only the ones that are instructions to click.
            line = " ".join(s for s in re.split(r"(?<=[.!?])\s+", line) if not _UI_PHRASE.search(s))
            if not line:
                continue
        if not any(ch.isalpha() for ch in line):
            continue
        if first_line_is_title and headline is None and not paragraphs and len(line.split()) <= 30:
            headline = line
            continue
        if _is_headline_like(line):
            if headline is None and not paragraphs:
                headline = line
            continue
        paragraphs.append(line)
    return CleanedText(headline=headline, paragraphs=tuple(paragraphs))


_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$", re.MULTILINE)
_MD_QUOTE = re.compile(r"^>\s?", re.MULTILINE)
_MD_CODE = re.compile(r"`([^`]*)`")
# Lines that start a block of their own even without a blank line before them.
_BLOCK_START = re.compile(r"^(?:#{1,6}\s|[-*+•]\s|\d+[.)]\s|>)")


def unwrap(text: str) -> str:
    """Join hard-wrapped lines: within a blank-line separated block, each line continues the last."""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines: list[str] = []
        for line in block.split("\n"):
            quoted = line.strip().startswith(">") and bool(lines) and lines[-1].startswith(">")
            if quoted:  # A wrapped blockquote continues on the next ">" line.
                lines[-1] = f"{lines[-1].rstrip()} {line.strip().lstrip('>').strip()}"
            elif lines and line.strip() and not _BLOCK_START.match(line.strip()):
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
            elif line.strip():
                lines.append(line.strip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def looks_hard_wrapped(text: str) -> bool:
    """Plain text whose lines were wrapped at a fixed width, as opposed to one paragraph per line."""
    lengths = [len(line) for line in text.split("\n") if line.strip()]
    if len(lengths) < 4 or max(lengths) > 100:
        return False
    return sum(1 for n in lengths if n >= 50) / len(lengths) >= 0.6


def markdown_to_text(markdown: str) -> str:
    """Reduce Markdown to one plain-text paragraph per line: quoted text must not show markup."""
    text = unwrap(markdown)
    text = _MD_IMAGE.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_HEADING.sub(r"\1", text)
    text = _MD_QUOTE.sub("", text)
    text = _MD_CODE.sub(r"\1", text)
    return _MD_EMPHASIS.sub(r"\2", text)
