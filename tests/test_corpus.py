"""bot.corpus: reading Markdown, text and HTML articles; skipping bad files with a reason."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from fakes import write_article

from bot.corpus import Article, CorpusFile, fingerprint, load_article, load_corpus, scan
from bot.errors import ArticleError

BODY = (
    "The city council of Portvale voted on Thursday to approve a new tram line linking the harbour with "
    "the university district.\n\nConstruction is expected to begin next spring, according to the council."
)


def _file(path: Path, root: Path | None = None) -> CorpusFile:
    data = path.read_bytes()
    name = path.relative_to(root).as_posix() if root else path.name
    return CorpusFile(root or path.parent, name, hashlib.sha256(data).hexdigest(), len(data))


def _load(path: Path, max_bytes: int | None = None) -> Article:
    if max_bytes is None:
        return load_article(_file(path))
    return load_article(_file(path), max_bytes=max_bytes)


def _reason(path: Path, max_bytes: int | None = None) -> str:
    with pytest.raises(ArticleError) as caught:
        _load(path, max_bytes)
    return str(caught.value)


def test_project_corpus_loads_completely(project_corpus: Path) -> None:
    articles, skipped = load_corpus(project_corpus)
    assert skipped == {}
    assert len(articles) == len(list(project_corpus.glob("*.md")))
    by_publisher = {article.publisher: article for article in articles}
    rferl = by_publisher["RFE/RL"]
    assert rferl.title == "Kazakh Opposition Group Allowed To Hold Rally Challenging Upcoming Polls"
    assert rferl.published == "2020-11"
    assert rferl.url is not None
    assert rferl.url.startswith("https://www.rferl.org/")
    aljazeera = by_publisher["Al Jazeera"]
    assert aljazeera.published == "2020-02"
    assert aljazeera.url is None
    for article in articles:
        assert not article.text.startswith("---")
        assert "title:" not in article.text
        assert article.content_hash == hashlib.sha256((project_corpus / article.doc_id).read_bytes()).hexdigest()


def test_markdown_front_matter_fields(tmp_path: Path) -> None:
    path = write_article(
        tmp_path,
        "tram.md",
        BODY,
        title="Portvale  approves\ntram line",
        publisher="Portvale Post",
        published="2021-05-03",
        url="https://post.example/tram",
    )
    article = _load(path)
    assert article.doc_id == "tram.md"
    assert article.title == "Portvale approves tram line"  # white space normalized
    assert article.publisher == "Portvale Post"
    assert article.published == "2021-05-03"
    assert article.url == "https://post.example/tram"
    assert article.text == BODY
    assert article.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ("2021-05-03", "2021-05-03"),  # a YAML date
        ("2021-05-03 14:30:00", "2021-05-03"),  # a YAML timestamp
        ("'2020-11'", "2020-11"),  # a partial date stays partial
        ("2020-11", "2020-11"),  # unquoted: YAML reads it as a string
        ("November 2020", "November 2020"),
    ],
)
def test_published_date_forms(tmp_path: Path, published: str, expected: str) -> None:
    path = write_article(tmp_path, "a.md", BODY, title="A title", published=published)
    assert _load(path).published == expected


def test_field_aliases(tmp_path: Path) -> None:
    path = tmp_path / "alias.md"
    path.write_text(
        "---\nheadline: Aliased title\nsource: Wire Service\ndate: 2019-12-31\nlink: http://wire.example/a\n---\n\n"
        + BODY,
        encoding="utf-8",
    )
    article = _load(path)
    assert (article.title, article.publisher, article.published, article.url) == (
        "Aliased title",
        "Wire Service",
        "2019-12-31",
        "http://wire.example/a",
    )


@pytest.mark.parametrize("url", ["not a url", "ftp://files.example/a", "javascript:alert(1)", "www.example.com"])
def test_invalid_url_dropped(tmp_path: Path, url: str) -> None:
    path = write_article(tmp_path, "a.md", BODY, title="A title", url=url)
    article = _load(path)
    assert article.url is None
    assert article.title == "A title"


def test_markdown_markup_removed_from_text(tmp_path: Path) -> None:
    path = write_article(
        tmp_path,
        "a.md",
        "The **council** of [Portvale](https://portvale.example) voted on _Thursday_ to approve a tram line.",
        title="T",
    )
    assert _load(path).text == "The council of Portvale voted on Thursday to approve a tram line."


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_bytes("\ufeff---\ntitle: With BOM\n---\n\n".encode() + BODY.encode())
    article = _load(path)
    assert article.title == "With BOM"
    assert article.text == BODY


def test_front_matter_with_crlf_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "windows.md"
    text = f"---\ntitle: Windows Title\npublisher: Pub\n---\n\n{BODY}\n"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    article = _load(path)
    assert article.title == "Windows Title"
    assert article.publisher == "Pub"
    assert "title:" not in article.text


def test_text_file_first_line_is_title(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("Is the election fair?\n\n" + BODY, encoding="utf-8")
    article = _load(path)
    assert article.title == "Is the election fair?"
    assert article.text == BODY
    assert (article.publisher, article.published, article.url) == (None, None, None)


def test_hard_wrapped_text_file_keeps_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.txt"
    path.write_text(
        "Council approves tram line\n\n"
        "The city council of Portvale voted on Thursday to approve\n"
        "a new tram line linking the harbour with the university\n"
        "district, ending a decade of debate among residents.\n\n"
        "Critics said the money would be better spent on buses,\n"
        "which already serve most of the planned route today.\n",
        encoding="utf-8",
    )
    article = _load(path)
    assert article.title == "Council approves tram line"
    assert article.text.split("\n\n") == [
        "The city council of Portvale voted on Thursday to approve a new tram line linking the harbour with "
        "the university district, ending a decade of debate among residents.",
        "Critics said the money would be better spent on buses, which already serve most of the planned route today.",
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("my_great-article.md", "My great article"), ("floods--in_the-valley.txt", "Floods in the valley")],
)
def test_title_from_file_name_without_metadata(tmp_path: Path, name: str, expected: str) -> None:
    path = tmp_path / name
    if name.endswith(".txt"):
        # A text file whose first line is a whole paragraph (more than 30 words) has no title line.
        long_first = " ".join(["The council met again on Thursday and talked about the tram line."] * 4)
        path.write_text(long_first + "\n", encoding="utf-8")
    else:
        path.write_text(BODY, encoding="utf-8")
    assert _load(path).title == expected


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Floods hit the northern valley | Daily Planet</title>
<meta property="og:site_name" content="Daily Planet">
<meta property="og:title" content="Floods hit the northern valley">
<meta property="og:url" content="https://dailyplanet.example/news/floods">
<meta property="article:published_time" content="2021-03-04T08:00:00Z">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World news and analysis</a></li>
<li><a href="/sport">Sport results and fixtures</a></li></ul></nav>
<header><h1>Floods hit the northern valley</h1></header>
<main><article>
<p>Heavy rain caused the river to burst its banks on Tuesday, flooding hundreds of homes in the northern
valley and forcing thousands of residents to leave their villages.</p>
<p>Emergency services said that rescue boats had reached the worst affected villages by the evening, and
that no deaths had been reported so far.</p>
<p>The regional governor promised compensation for every family whose house was damaged by the water, and
called for new flood defences along the whole river.</p>
</article></main>
<footer><p>Subscribe to our newsletter for the latest updates delivered to your inbox every morning.</p>
<p>Copyright 2021 Daily Planet. All rights reserved.</p></footer>
</body></html>
"""


@pytest.mark.filterwarnings("ignore:SOCKS support:Warning")
def test_html_page_title_publisher_and_body(tmp_path: Path) -> None:
    path = tmp_path / "floods.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    article = _load(path)
    assert "Floods hit the northern valley" in article.title
    assert article.publisher == "Daily Planet"
    assert "Heavy rain caused the river to burst its banks on Tuesday" in article.text
    assert "rescue boats had reached the worst affected villages" in article.text
    assert "promised compensation for every family" in article.text
    assert article.published == "2021-03-04"
    assert article.url == "https://dailyplanet.example/news/floods"
    assert len(article.text.split("\n\n")) == 3
    for furniture in ("Home", "World news and analysis", "Sport results", "Subscribe", "All rights reserved"):
        assert furniture not in article.text


@pytest.mark.filterwarnings("ignore:SOCKS support:Warning")
def test_html_without_article_text_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "nav-only.html"
    path.write_text(
        "<html><head><title>Menu</title></head><body><nav><a href='/'>Home</a></nav></body></html>",
        encoding="utf-8",
    )
    reason = _reason(path)
    assert "text" in reason


def test_html_reader_unavailable_skips_only_html_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # makes `import trafilatura` raise ImportError
    write_article(tmp_path, "good.md", BODY, title="Good")
    (tmp_path / "page.html").write_text(HTML_PAGE, encoding="utf-8")
    articles, skipped = load_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["good.md"]
    assert set(skipped) == {"page.html"}


BAD_FILES: dict[str, tuple[bytes, str]] = {
    # name: (content, a word the reason must contain)
    "empty.md": (b"", "empty"),
    "binary.txt": (b"GIF89a\x00\x01\x02\x00\x00binary", "binary"),
    # Not UTF-8, and no encoding fits it with confidence (legacy encodings that do fit: test_corpus_input.py).
    "undetectable.txt": (bytes(range(128, 256)) * 3, "UTF-8"),
    "bad_yaml.md": (b"---\ntitle: [unclosed\npublisher: : :\n---\n\nSome body text that is a sentence.", "YAML"),
    "list_front.md": (b"---\n- one\n- two\n---\n\nSome body text that is a sentence.", "mapping"),
    "slides.pdf": (b"%PDF-1.4 not really", "unsupported"),
    "furniture.txt": (b"Accessibility links\n\nBreaking News\n\nplease wait\n\n0:00 0:02:19", "no article text"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_raises_article_error_with_reason(tmp_path: Path, name: str) -> None:
    content, word = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    reason = _reason(path)
    assert word.lower() in reason.lower()
    assert "\n" not in reason.strip()


def test_too_large_file(tmp_path: Path) -> None:
    path = write_article(tmp_path, "big.md", BODY * 20, title="Big")
    reason = _reason(path, max_bytes=1000)
    assert "too large" in reason
    assert "limit" in reason
    # The same file is fine under the default limit.
    assert _load(path).title == "Big"


def test_bad_files_are_skipped_while_others_load(tmp_path: Path) -> None:
    for name, (content, _) in BAD_FILES.items():
        (tmp_path / name).write_bytes(content)
    write_article(tmp_path, "good-one.md", BODY, title="Good one")
    (tmp_path / "good-two.txt").write_text("Second good\n\n" + BODY, encoding="utf-8")
    articles, skipped = load_corpus(tmp_path)
    assert sorted(a.doc_id for a in articles) == ["good-one.md", "good-two.txt"]
    assert set(skipped) == set(BAD_FILES)
    for name, (_, word) in BAD_FILES.items():
        assert word.lower() in skipped[name].lower(), (name, skipped[name])


def test_scan_orders_files_as_paths_sort(tmp_path: Path) -> None:
    """Folder by folder ("a/b.md" before "a-c.md", though "/" sorts after "-" in a string): the order of the
    index, kept by every scan."""
    for name in ("a-c.md", "a/b.md", "a/z/y.md", "B.md", "a b.md", "é/x.md"):
        write_article(tmp_path, name, BODY, title=name)
    names = [f.name for f in scan(tmp_path)]
    assert names == [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*.md"))]
    assert names.index("a/b.md") < names.index("a-c.md")


def test_scan_ignores_hidden_files_and_folders(tmp_path: Path) -> None:
    write_article(tmp_path, "visible.md", BODY, title="Visible")
    write_article(tmp_path, "sub/nested.md", BODY, title="Nested")
    write_article(tmp_path, ".hidden.md", BODY, title="Hidden")
    write_article(tmp_path, ".git/objects.md", BODY, title="Git")
    write_article(tmp_path, "sub/.cache/x.md", BODY, title="Cache")
    files = scan(tmp_path)
    assert [f.name for f in files] == ["sub/nested.md", "visible.md"]
    for file in files:
        assert file.size == file.path.stat().st_size
        assert file.sha256 == hashlib.sha256(file.path.read_bytes()).hexdigest()
    articles, skipped = load_corpus(tmp_path)
    assert sorted(a.doc_id for a in articles) == ["sub/nested.md", "visible.md"]
    assert skipped == {}


def test_fingerprint_tracks_corpus_changes(tmp_path: Path) -> None:
    write_article(tmp_path, "a.md", BODY, title="A")
    b = write_article(tmp_path, "b.md", BODY, title="B")
    original = fingerprint(scan(tmp_path))
    assert fingerprint(scan(tmp_path)) == original

    # Touching a file without changing it is not a change.
    os.utime(b, (1_000_000_000, 1_000_000_000))
    assert fingerprint(scan(tmp_path)) == original

    b.write_text(b.read_text(encoding="utf-8") + "\nOne more sentence was added.\n", encoding="utf-8")
    edited = fingerprint(scan(tmp_path))
    assert edited != original

    c = write_article(tmp_path, "c.md", BODY, title="C")
    added = fingerprint(scan(tmp_path))
    assert added not in (original, edited)

    c.unlink()
    assert fingerprint(scan(tmp_path)) == edited

    # Renaming a file is a change, even with the same bytes.
    b.rename(tmp_path / "renamed.md")
    assert fingerprint(scan(tmp_path)) not in (original, edited, added)


def test_a_file_that_cannot_be_read_is_skipped_and_the_rest_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.corpus

    write_article(tmp_path, "good.md", "A sentence that is fine to read.", title="Good")
    write_article(tmp_path, "locked.md", "Nobody may read this one.", title="Locked")
    from bot.embedding import sha256_file as real

    def sha256_or_denied(path: Path) -> str:
        if path.name == "locked.md":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(bot.corpus, "sha256_file", sha256_or_denied)
    articles, skipped = load_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["good.md"]
    assert skipped == {"locked.md": "cannot be read (Permission denied)"}
