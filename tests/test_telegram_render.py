"""Rendering answers as Telegram HTML: escaping, and splitting under Telegram's 4096-unit limit.

Every message produced is checked the way Telegram checks it: `fake_telegram.parse_html` (a port of
Telegram's parser) must accept it, and its visible text must be at most 4096 UTF-16 code units.
"""

from __future__ import annotations

from fake_telegram import ParsedText, entity_texts, parse_html, utf16_len

from bot.engine import Answer, Citation, Outcome, SourceInfo
from bot.telegram.render import (
    MAX_MESSAGE,
    answer_messages,
    escape,
    link,
    pack,
    passages_messages,
    sources_messages,
    visible_length,
)

EMOJI = "😀"  # outside the BMP: two UTF-16 code units
NASTY = "<b>bold</b> & <i>not</i> <script>x</script> a<b & c>d &amp; &lt; \"q\" 'a'"


def check(messages: list[str]) -> list[ParsedText]:
    """Parse every message as Telegram would; each must be valid, non-empty and within the limit."""
    assert messages, "at least one message"
    parsed = []
    for message in messages:
        result = parse_html(message)  # raises on a broken tag or an unescaped "<" or "&"
        text = result.text.strip()
        assert text, f"empty message: {message!r}"
        assert utf16_len(text) <= MAX_MESSAGE, utf16_len(text)
        parsed.append(result)
    return parsed


def words(texts: list[str]) -> list[str]:
    return " ".join(texts).split()


def url_links(parsed: list[ParsedText]) -> list[tuple[str, str]]:
    """(url, linked text) of every text_link, in order, across messages."""
    found: list[tuple[str, str]] = []
    for item in parsed:
        texts = [text for kind, text in entity_texts(item.text, item.entities) if kind == "text_link"]
        urls = [e["url"] for e in item.entities if e["type"] == "text_link"]
        found.extend(zip(urls, texts, strict=True))
    return found


def long_title(n: int) -> str:
    return (f"Title {n}: " + f"{NASTY} — a long headline about the news of day {n} " * 3).strip()


def long_url(n: int) -> str:
    return f"https://example.com/news/{n}/" + "section-" * 40 + f"?a=1&b=<{n}>&c=\"q\"&d='x'"


def citation(n: int, title: str | None = None, passage: str | None = None) -> Citation:
    return Citation(
        n=n,
        title=title or long_title(n),
        publisher="Q&A <News>",
        published="2020-11-06",
        url=long_url(n),
        source=f"article-{n}.md",
        passage=passage or (f"Passage {n}: {NASTY} " * 20).strip(),
    )


def answer_with(text: str, citations: tuple[Citation, ...]) -> Answer:
    return Answer("A question?", Outcome.ANSWERED, text, citations)


# visible_length, escape and link ---------------------------------------------------------------------------


def test_visible_length_counts_what_telegram_shows_in_utf16_units() -> None:
    assert visible_length("<b>a &amp; b</b>") == 5
    assert visible_length(escape("<b>")) == 3
    assert visible_length(EMOJI) == 2
    assert visible_length(f'<a href="https://x.y/{"z" * 100}">{EMOJI}é</a>') == 3


def test_escape_and_link_keep_every_character_literal() -> None:
    url = "https://example.com/a?x=1&y=<2>&q=\"quoted\"&s='single'"
    [parsed] = check([f"{escape(NASTY)} {link(url, NASTY)}"])
    assert parsed.text == f"{NASTY} {NASTY}"
    assert url_links([parsed]) == [(url, NASTY)]


# pack -------------------------------------------------------------------------------------------------------


def test_pack_joins_short_paragraphs_into_one_message() -> None:
    assert pack(["<b>one</b>", "two"]) == ["<b>one</b>\n\ntwo"]
    assert pack(["one", "two"], separator="\n") == ["one\ntwo"]
    assert pack([]) == []


def test_pack_splits_between_paragraphs_exactly_at_the_limit() -> None:
    half = "x" * 2047
    assert pack([half, half]) == [f"{half}\n\n{half}"]  # 2047 + 2 + 2047 = 4096
    assert pack([half + "y", half]) == [half + "y", half]  # 4097: two messages


def test_pack_measures_length_after_parsing_not_the_markup() -> None:
    escaped = escape("&" * MAX_MESSAGE)  # 5 characters of HTML for each visible one
    assert pack([escaped]) == [escaped]
    assert pack([f"<b>{'x' * MAX_MESSAGE}</b>"]) == [f"<b>{'x' * MAX_MESSAGE}</b>"]
    [parsed] = check(pack([escaped]))
    assert parsed.text == "&" * MAX_MESSAGE


def test_pack_counts_emoji_as_two_utf16_units() -> None:
    exact = EMOJI * (MAX_MESSAGE // 2)
    assert pack([exact]) == [exact]
    quarter = EMOJI * (MAX_MESSAGE // 4)  # 2048 units each: with the separator, 4098 together
    messages = pack([quarter, quarter])
    assert messages == [quarter, quarter]
    check(messages)


def test_an_oversized_emoji_paragraph_is_split_without_breaking_a_character() -> None:
    text = EMOJI * (MAX_MESSAGE // 2 + 1)  # 4098 units, no space to cut at
    messages = pack([text])
    parsed = check(messages)
    assert len(messages) >= 2
    assert "".join(p.text for p in parsed) == text


def test_a_single_enormous_paragraph_is_split_at_spaces_and_loses_nothing() -> None:
    sentence = f"Sentence with {NASTY} and {EMOJI} in it."
    text = " ".join(f"{sentence} [{n % 3 + 1}]" for n in range(400))  # about 30,000 units
    answer = answer_with(text, (citation(1), citation(2), citation(3)))
    messages = answer_messages(answer)
    parsed = check(messages)
    assert len(messages) >= 7
    assert words([p.text for p in parsed[:-1]]) + words([parsed[-1].text.partition("\n\nSources\n")[0]]) == (
        text.split()
    )
    # The sources still come last, bold, with their links.
    last = parsed[-1]
    assert ("bold", "Sources") in entity_texts(last.text, last.entities)
    assert url_links(parsed) == [(long_url(n), long_title(n)) for n in (1, 2, 3)]


def test_a_paragraph_without_spaces_is_still_split_under_the_limit() -> None:
    text = "x" * (3 * MAX_MESSAGE + 17)
    parsed = check(pack([escape(text)]))
    assert "".join(p.text for p in parsed) == text


def test_a_split_paragraph_does_not_swallow_its_neighbours() -> None:
    messages = pack(["<b>before</b>", escape("word " * 2000), "<i>after</i>"])
    parsed = check(messages)
    assert parsed[0].text.startswith("before")
    assert ("bold", "before") in entity_texts(parsed[0].text, parsed[0].entities)
    assert ("italic", "after") in entity_texts(parsed[-1].text, parsed[-1].entities)
    assert words([p.text for p in parsed]) == ["before", *["word"] * 2000, "after"]


# answer_messages --------------------------------------------------------------------------------------------


def test_an_answer_is_escaped_html_with_markers_then_sources_with_links() -> None:
    answer = answer_with(f"{NASTY} [1] Second & last sentence. [2]", (citation(1, "One <b>"), citation(2, "Two & co")))
    [parsed] = check(answer_messages(answer))
    body, _, sources = parsed.text.partition("\n\nSources\n")
    assert body == f"{NASTY} [1] Second & last sentence. [2]"
    assert sources.splitlines() == [
        "[1] One <b> — Q&A <News>, 6 November 2020",
        "[2] Two & co — Q&A <News>, 6 November 2020",
    ]
    assert url_links([parsed]) == [(long_url(1), "One <b>"), (long_url(2), "Two & co")]
    assert ("bold", "Sources") in entity_texts(parsed.text, parsed.entities)


def test_an_abstention_is_a_single_plain_message() -> None:
    answer = Answer("Q?", Outcome.ABSTAINED, "The articles don't say. <none> & nothing")
    [parsed] = check(answer_messages(answer))
    assert parsed.text == "The articles don't say. <none> & nothing"
    assert parsed.entities == []


def test_a_source_without_url_or_details_is_plain_text() -> None:
    bare = Citation(1, "No <link>", None, None, None, "a.md", "p")
    [parsed] = check(answer_messages(answer_with("Quote. [1]", (bare,))))
    assert parsed.text.endswith("Sources\n[1] No <link>")
    assert url_links([parsed]) == []


def test_an_answer_with_sixty_long_sources_is_split_into_valid_messages() -> None:
    answer = answer_with("A quoted sentence. [1]", tuple(citation(n) for n in range(1, 61)))
    parsed = check(answer_messages(answer))
    assert len(parsed) >= 3
    assert words([p.text for p in parsed]) == words(
        ["A quoted sentence. [1]", "Sources"]
        + [f"[{n}] {long_title(n)} — Q&A <News>, 6 November 2020" for n in range(1, 61)]
    )


def test_an_answer_with_sixty_long_sources_keeps_every_link() -> None:
    answer = answer_with("A quoted sentence. [1]", tuple(citation(n) for n in range(1, 61)))
    parsed = check(answer_messages(answer))
    assert url_links(parsed) == [(long_url(n), long_title(n)) for n in range(1, 61)]
    assert any(("bold", "Sources") in entity_texts(p.text, p.entities) for p in parsed)


# passages_messages ------------------------------------------------------------------------------------------


def test_passages_are_blockquotes_under_their_linked_source() -> None:
    answer = answer_with("Quote. [1] Quote. [2]", (citation(1, passage=NASTY), citation(2, passage="Second\n…\nthird")))
    [parsed] = check(passages_messages(answer))
    pairs = entity_texts(parsed.text, parsed.entities)
    assert [text for kind, text in pairs if kind == "blockquote"] == [NASTY, "Second\n…\nthird"]
    assert ("bold", "[1]") in pairs and ("bold", "[2]") in pairs
    assert url_links([parsed]) == [(long_url(1), long_title(1)), (long_url(2), long_title(2))]


def test_sixty_long_passages_are_split_between_citations() -> None:
    answer = answer_with("Quote. [1]", tuple(citation(n) for n in range(1, 61)))
    messages = passages_messages(answer)
    parsed = check(messages)
    assert len(parsed) >= 3
    quotes = [text for p in parsed for kind, text in entity_texts(p.text, p.entities) if kind == "blockquote"]
    assert quotes == [citation(n).passage for n in range(1, 61)]
    assert url_links(parsed) == [(long_url(n), long_title(n)) for n in range(1, 61)]
    # Each message starts with a citation: none begins in the middle of one.
    assert all(p.text.startswith("[") for p in parsed)


def test_an_enormous_passage_is_split_under_the_limit_and_keeps_its_text() -> None:
    passage = " ".join(f"Word{n} & <{n}> {EMOJI}" for n in range(3000))
    answer = answer_with("Quote. [1]", (citation(1, "Short title", passage),))
    parsed = check(passages_messages(answer))
    assert len(parsed) >= 4
    heading = "[1] Short title — Q&A <News>, 6 November 2020"
    assert words([p.text for p in parsed]) == [*heading.split(), *passage.split()]


def test_an_answer_without_citations_says_so_in_passages() -> None:
    answer = Answer("Q?", Outcome.ABSTAINED, "The articles don't say.")
    [parsed] = check(passages_messages(answer))
    assert parsed.text == "This answer cites no passages."


# sources_messages -------------------------------------------------------------------------------------------


def source(n: int) -> SourceInfo:
    return SourceInfo(long_title(n), "Q&A <News>", f"2020-{n % 12 + 1:02d}", long_url(n), f"article-{n}.md")


def test_sixty_sources_with_long_titles_and_urls_are_split_at_line_boundaries() -> None:
    sources = [source(n) for n in range(60)]
    messages = sources_messages(sources)
    parsed = check(messages)
    assert len(parsed) >= 3
    expected_lines = ["60 articles"] + [f"{n + 1}. {long_title(n)} — Q&A <News>, {_month(n)}" for n in range(60)]
    # Nothing is lost but the line breaks where one message ends and the next begins.
    assert "\n".join(p.text for p in parsed) == "\n".join(expected_lines)
    assert url_links(parsed) == [(long_url(n), long_title(n)) for n in range(60)]
    assert ("bold", "60 articles") in entity_texts(parsed[0].text, parsed[0].entities)
    for item in parsed[1:]:
        assert item.text.split(". ", 1)[0].isdigit()  # each later message starts with a numbered line


def _month(n: int) -> str:
    months = "January February March April May June July August September October November December".split()
    return f"{months[n % 12]} 2020"


def test_no_sources_is_a_polite_message() -> None:
    [parsed] = check(sources_messages([]))
    assert parsed.text == "No articles are indexed yet."


def test_a_single_source_is_counted_in_the_singular() -> None:
    [parsed] = check(sources_messages([source(1)]))
    assert parsed.text.startswith("1 article\n")
