"""Read the articles in `corpus/`: Markdown with front matter, plain text, or HTML pages.

Every file becomes an `Article` (clean text plus what is known of title, publisher, date and link) or is
skipped with a reason a person can act on; one bad file never stops the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.cleaning import clean_text, looks_hard_wrapped, markdown_to_text, unwrap
from bot.embedding import sha256_file
from bot.errors import ArticleError

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html"}
MAX_ARTICLE_BYTES = 5 * 1024 * 1024
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)
_FIELD_ALIASES = {
    "title": ("title", "headline"),
    "publisher": ("publisher", "source", "site", "site_name"),
    "published": ("published", "date", "published_at", "pubdate"),
    "url": ("url", "link", "canonical_url"),
}


@dataclass(frozen=True)
class CorpusFile:
    """A file in the corpus folder, identified by its path relative to the folder and its bytes' hash."""

    path: Path
    name: str
    sha256: str
    size: int
    unreadable: str | None = None  # why the file could not be read, if it could not


@dataclass(frozen=True)
class Article:
    """One article: its clean body and what is known about where it comes from."""

    doc_id: str
    title: str
    publisher: str | None
    published: str | None
    url: str | None
    text: str
    content_hash: str


def scan(corpus_dir: Path) -> list[CorpusFile]:
    """Every candidate file below `corpus_dir`, sorted by name; hidden files and folders are ignored."""
    files = []
    for path in sorted(corpus_dir.rglob("*")):
        relative = path.relative_to(corpus_dir)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        try:
            size, digest = path.stat().st_size, sha256_file(path)
        except OSError as exc:  # No permission, or deleted while we looked: skip it, build the rest.
            files.append(CorpusFile(path, relative.as_posix(), "", 0, f"cannot be read ({exc.strerror or exc})"))
            continue
        files.append(CorpusFile(path, relative.as_posix(), digest, size))
    return files


def fingerprint(files: list[CorpusFile]) -> str:
    """One hash for the corpus as a whole: changes when any file is added, removed or edited."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file.sha256}\n".encode())
    return digest.hexdigest()


def load_article(file: CorpusFile, max_bytes: int = MAX_ARTICLE_BYTES) -> Article:
    """Read and clean one file; raises `ArticleError` with the reason when it cannot be used."""
    if file.unreadable:
        raise ArticleError(file.unreadable)
    kind = SUFFIXES.get(file.path.suffix.lower())
    if kind is None:
        raise ArticleError(f"unsupported file type {file.path.suffix or '(none)'!r}; use .md, .txt or .html")
    if file.size == 0:
        raise ArticleError("empty file")
    if file.size > max_bytes:
        raise ArticleError(f"too large ({file.size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB)")
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        raise ArticleError(f"cannot be read ({exc.strerror or exc})") from None
    if b"\0" in data[:8192]:
        raise ArticleError("binary file, not text")
    if kind == "html":
        meta, headline, body = _read_html(data)
    else:
        try:
            text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError as exc:
            raise ArticleError(f"not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8") from None
        meta, headline, body = _read_markdown(text) if kind == "markdown" else _read_plain(text)
    if not body.strip():
        raise ArticleError("no article text left after removing page furniture")
    title = _str_field(meta, "title") or headline or _title_from_name(file.path)
    return Article(
        doc_id=file.name,
        title=title,
        publisher=_str_field(meta, "publisher"),
        published=_date_field(meta),
        url=_url_field(meta),
        text=body,
        content_hash=file.sha256,
    )


def load_corpus(corpus_dir: Path) -> tuple[list[Article], dict[str, str]]:
    """All readable articles, and the reason for every file that was skipped."""
    articles: list[Article] = []
    skipped: dict[str, str] = {}
    for file in scan(corpus_dir):
        try:
            articles.append(load_article(file))
        except ArticleError as exc:
            skipped[file.name] = str(exc)
    return articles, skipped


def _read_markdown(text: str) -> tuple[dict[str, Any], str | None, str]:
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1) or "") or {}
        except yaml.YAMLError as exc:
            raise ArticleError(f"front matter is not valid YAML: {_first_line(exc)}") from None
        if not isinstance(loaded, dict):
            raise ArticleError("front matter must be a mapping of fields such as 'title: ...'")
        meta = loaded
        text = text[match.end() :]
    cleaned = clean_text(markdown_to_text(text))
    return meta, cleaned.headline, cleaned.body


def _read_plain(text: str) -> tuple[dict[str, Any], str | None, str]:
    cleaned = clean_text(unwrap(text) if looks_hard_wrapped(text) else text, first_line_is_title=True)
    return {}, cleaned.headline, cleaned.body


def _read_html(data: bytes) -> tuple[dict[str, Any], str | None, str]:
    try:
        import trafilatura  # Imported here: it is slow to import and only HTML articles need it.
    except ImportError as exc:
        raise ArticleError(f"HTML articles need trafilatura, which cannot be imported: {exc}") from None
    try:
        document = trafilatura.bare_extraction(
            data, include_comments=False, include_tables=False, favor_precision=True, with_metadata=True
        )
    except Exception as exc:  # trafilatura raises many kinds on broken markup; any of them means "skip".
        raise ArticleError(f"HTML could not be parsed: {_first_line(exc)}") from None
    if document is None:
        raise ArticleError("no article text found in the HTML page")
    fields = document if isinstance(document, dict) else document.as_dict()
    meta = {
        "title": fields.get("title"),
        "publisher": fields.get("sitename"),
        "published": fields.get("date"),
        "url": fields.get("url"),
    }
    cleaned = clean_text(str(fields.get("text") or ""))
    return meta, cleaned.headline, cleaned.body


def _field(meta: dict[str, Any], name: str) -> Any:
    return next((meta[key] for key in _FIELD_ALIASES[name] if meta.get(key) not in (None, "")), None)


def _str_field(meta: dict[str, Any], name: str) -> str | None:
    value = _field(meta, name)
    return " ".join(str(value).split()) or None if value is not None else None


def _date_field(meta: dict[str, Any]) -> str | None:
    """The publication date as ISO text; a partial date ("2020-11") stays partial, never invented."""
    value = _field(meta, "published")
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip() or None if value is not None else None


def _url_field(meta: dict[str, Any]) -> str | None:
    url = _str_field(meta, "url")
    return url if url and re.match(r"^https?://\S+$", url) else None


def _title_from_name(path: Path) -> str:
    words = re.sub(r"[_-]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0] or type(exc).__name__
