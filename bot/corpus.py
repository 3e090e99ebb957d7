"""Read the articles in `corpus/`: Markdown with front matter, plain text, or HTML pages.

Every file becomes an `Article` (clean text plus what is known of title, publisher, date and link) or is
skipped with a reason a person can act on; one bad file never stops the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from charset_normalizer import CharsetMatch, from_bytes

from bot.cleaning import clean_text, looks_hard_wrapped, markdown_to_text, unwrap
from bot.embedding import sha256_file
from bot.errors import ArticleError, ArticleGoneError

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html"}
MAX_ARTICLE_BYTES = 5 * 1024 * 1024  # the default of the setting MAX_ARTICLE_BYTES
# A legacy encoding is trusted only when charset-normalizer finds the decoded text this clean (mess ratio) and
# this much like a known language (coherence); anything less is skipped rather than indexed as mojibake.
MAX_ENCODING_CHAOS = 0.1
MIN_ENCODING_COHERENCE = 0.2
# Most used first, in charset-normalizer's names: the tie-break between encodings that fit a text equally well.
_COMMON_ENCODINGS = ("utf_8", "cp1252", "latin_1", "iso8859_15", "cp1251", "koi8_r", "cp1250", "iso8859_2", "cp1254")
_SYMLINK = "a symbolic link; links are not followed, copy the article into the corpus folder"
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]{1,40})""", re.IGNORECASE)
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

    folder: Path  # the corpus folder
    name: str  # the path below it, with "/" between folders
    sha256: str
    size: int
    unreadable: str | None = None  # why the file could not be read, if it could not
    mtime_ns: int = 0

    @property
    def path(self) -> Path:
        # Made when asked for: building a Path per file was half of the staleness check at every launch (1.3 s
        # of 2.9 s at 100,000 files), and only the files a build reads need one.
        return self.folder / self.name


# What a previous scan knew of a file: (size, mtime in ns, SHA-256), by name relative to the corpus folder.
KnownFiles = Mapping[str, tuple[int, int, str]]


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


def scan(corpus_dir: Path, known: KnownFiles | None = None) -> list[CorpusFile]:
    """Every candidate file below `corpus_dir`, sorted by name; hidden files and folders are ignored.

    A file whose size and modification time match what `known` (a previous scan, see `known_files`) recorded
    keeps its recorded hash: reading every byte of a large unchanged corpus is what made a no-op rebuild slow.
    Only files whose size or time differ are hashed.

    Symbolic links are never followed (a link could point anywhere on the machine): a linked file is listed
    as unreadable with its reason, and linked folders are not entered. Only regular files are read, so a
    named pipe or a device in the folder cannot block or feed the build.
    """
    files = []
    # os.scandir rather than Path.rglob: it tells links and folders apart without a system call per file, which
    # made the staleness check at every launch take seconds on an archive of 100,000 files.
    for parts, entry in sorted(_entries(corpus_dir, ()), key=lambda found: found[0]):
        name = "/".join(parts)
        if entry.is_symlink():
            if entry.is_file():
                files.append(CorpusFile(corpus_dir, name, "", 0, _SYMLINK))
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            status = entry.stat(follow_symlinks=False)
            recorded = known.get(name) if known else None
            if recorded is not None and recorded[:2] == (status.st_size, status.st_mtime_ns):
                digest = recorded[2]
            else:
                digest = sha256_file(Path(entry.path))
        except OSError as exc:  # No permission, or deleted while we looked: skip it, build the rest.
            files.append(CorpusFile(corpus_dir, name, "", 0, f"cannot be read ({exc.strerror or exc})"))
            continue
        files.append(CorpusFile(corpus_dir, name, digest, status.st_size, mtime_ns=status.st_mtime_ns))
    return files


def _entries(directory: Path | str, parts: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], os.DirEntry[str]]]:
    """Every entry below `directory` but hidden ones and what is inside linked folders, with its path's parts
    (sorting by them orders files as paths sort: "a/b" before "a-c")."""
    try:
        with os.scandir(directory) as entries:
            found = list(entries)
    except OSError:
        return  # A folder we may not read holds nothing we can index.
    for entry in found:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _entries(entry.path, (*parts, entry.name))
        else:
            yield (*parts, entry.name), entry


def known_files(files: list[CorpusFile]) -> dict[str, list[Any]]:
    """What `scan` may trust next time, as JSON for the manifest: [size, mtime in ns, SHA-256] by name."""
    return {file.name: [file.size, file.mtime_ns, file.sha256] for file in files if not file.unreadable}


def parse_known_files(raw: object) -> dict[str, tuple[int, int, str]]:
    """`known_files` read back from a manifest; anything malformed is left out (that file is simply hashed)."""
    known: dict[str, tuple[int, int, str]] = {}
    if isinstance(raw, dict):
        for name, entry in raw.items():
            if (
                isinstance(name, str)
                and isinstance(entry, list)
                and len(entry) == 3
                and all(type(value) is int for value in entry[:2])
                and isinstance(entry[2], str)
            ):
                known[name] = (entry[0], entry[1], entry[2])
    return known


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
        raise _too_large(file.size, max_bytes)
    data = _read_limited(file.path, max_bytes)
    if not data:
        raise ArticleError("empty file")
    if b"\0" in data[:8192]:
        raise ArticleError("binary file, not text")
    # The bytes read are what is indexed: if the file was rewritten since the scan, its hash follows them.
    content_hash = hashlib.sha256(data).hexdigest()
    if kind == "html":
        meta, headline, body = _read_html(data)
    else:
        text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
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
        content_hash=content_hash,
    )


def load_corpus(corpus_dir: Path, max_bytes: int = MAX_ARTICLE_BYTES) -> tuple[list[Article], dict[str, str]]:
    """All readable articles, and the reason for every file that was skipped."""
    articles: list[Article] = []
    skipped: dict[str, str] = {}
    for file in scan(corpus_dir):
        try:
            articles.append(load_article(file, max_bytes))
        except ArticleError as exc:
            skipped[file.name] = str(exc)
    return articles, skipped


def text_key(text: str) -> str:
    """What makes two articles the same article: their cleaned text, white space aside."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8", "surrogatepass")).hexdigest()


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), else a legacy encoding charset-normalizer is confident of.

    Raises `ArticleError` when the encoding cannot be told with confidence: mojibake is worse than a skip.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start

    matches = from_bytes(data)
    best = matches.best()
    if best is not None:
        # Single-byte encodings often fit equally well (é in cp1252 is ŕ in cp1250): among equals, prefer the
        # ones news sites used most.
        tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        best = min(tied, key=_preference)
    if best is None or best.chaos > MAX_ENCODING_CHAOS or best.coherence < MIN_ENCODING_COHERENCE:
        raise ArticleError(
            f"not UTF-8 text (invalid byte at offset {offset}) and its encoding could not be detected with "
            "confidence; save it as UTF-8"
        )
    return str(best)


def _preference(match: CharsetMatch) -> int:
    names = {match.encoding, *match.could_be_from_charset}
    return min((i for i, name in enumerate(_COMMON_ENCODINGS) if name in names), default=len(_COMMON_ENCODINGS))


def _decode_html(data: bytes) -> bytes | str:
    """HTML as trafilatura should get it: UTF-8 bytes as they are, anything else decoded here."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return data
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            return _without_xml_declaration(data.decode(declared.group(1).decode("ascii")))
        except (LookupError, UnicodeDecodeError):
            pass
    return _without_xml_declaration(decode_text(data))


def _without_xml_declaration(text: str) -> str:
    # lxml refuses a str that still declares its encoding.
    return re.sub(r"\A\s*<\?xml[^>]*\?>", "", text)


def _read_limited(path: Path, max_bytes: int) -> bytes:
    """At most `max_bytes` of a regular file, never through a symbolic link (the file may have changed since
    the scan: deleted, grown, or replaced by a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ArticleGoneError("deleted while the build was reading the corpus") from None
    except OSError as exc:
        if path.is_symlink():
            raise ArticleError(_SYMLINK) from None
        raise ArticleError(f"cannot be read ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArticleError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise ArticleError(f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    return data


def _too_large(size: int, max_bytes: int) -> ArticleError:
    return ArticleError(
        f"too large ({size:,} bytes or more; the limit is {max_bytes:,} bytes, setting MAX_ARTICLE_BYTES)"
    )


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
    html_text = _decode_html(data)
    try:
        document = trafilatura.bare_extraction(
            html_text, include_comments=False, include_tables=False, favor_precision=True, with_metadata=True
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
