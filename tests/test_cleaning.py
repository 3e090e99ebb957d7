"""bot.cleaning: page furniture is removed by generic rules, real paragraphs are all kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.cleaning import CleanedText, clean_text, looks_hard_wrapped, markdown_to_text, normalize, unwrap

SEEDS = sorted((Path(__file__).parent / "data" / "seeds").glob("*.txt"))
CORPUS = sorted((Path(__file__).parent / "data" / "news").glob("*.md"))

# Page furniture found in the raw seeds: none of it may survive cleaning.
FURNITURE = [
    "Accessibility links",
    "Breaking News",
    "please wait",
    "No media source currently available",
    "0:00 0:02:19",
    "Back to top button",
    "Related Articles",
    "16x9 Image",
    "undesirable organization",
    "click here",
    "RFE/RL's Kazakh Service offers",
    "Russian passport",
    # The photo caption, given twice in a row (alt text, then caption).
    "A Democratic Party supporter holds a single-person protest",
    # The title of an embedded video, and a section heading.
    "Kazakh Women Shave Heads",
    "Doomed to failure",
]

# Sentences of each article (by title) that must survive, from the start, middle and end of the article.
SPOT_CHECKS = {
    "Kazakh Opposition Group Allowed To Hold Rally Challenging Upcoming Polls": [
        "ALMATY, Kazakhstan -- Authorities in Kazakhstan’s largest city, Almaty, have given an unregistered party",
        "Democratic Party leader Zhanbolat Mamai told RFE/RL on November 5",
        "Aruzhan Duisebaeva, one of the party activists who held a single-person picket on November 6",
        "The 107-seat Majlis is currently dominated by Nazarbaev’s Nur-Otan, which has 84 deputies.",
        "The last parliamentary elections were held in March 2016.",
        "citing electoral fraud, repression of opposition candidates, and restrictions on the freedom of the press.",
    ],
    "Kazakhstan’s crackdown on opposition dashes hopes for fair polls": [
        "Leaders and would-be delegates of the founding congress of an opposition party have been arrested",
        "Mamai, who cancelled the event scheduled for February 22 over the arrests",
        "Dimash Alzhanov, a prominent member of the Oyan, Qazaqstan (Wake Up, Kazakhstan) civic movement",
        "Once a party is registered, it receives funding from the state.",
        "They are registered by the authorities to have some sort of multi-party system.”",
    ],
}


def _corpus_articles() -> dict[str, tuple[str, ...]]:
    """The hand-cleaned corpus: title → paragraphs."""
    articles = {}
    for path in CORPUS:
        _, front, body = path.read_text(encoding="utf-8").split("---\n", 2)
        meta = yaml.safe_load(front)
        articles[meta["title"]] = tuple(p.strip() for p in body.strip().split("\n\n"))
    return articles


def _clean_seed(path: Path) -> CleanedText:
    return clean_text(path.read_text(encoding="utf-8"), first_line_is_title=True)


def test_seeds_exist() -> None:
    assert len(SEEDS) >= 2
    assert len(CORPUS) >= 2


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_seed_loses_all_furniture(seed: Path) -> None:
    raw = seed.read_text(encoding="utf-8")
    cleaned = _clean_seed(seed)
    body = cleaned.body
    present_in_raw = [item for item in FURNITURE if item.lower() in raw.lower()]
    assert present_in_raw, "the seed should contain some furniture to remove"
    for item in present_in_raw:
        assert item.lower() not in body.lower(), f"furniture {item!r} survived cleaning"
    assert not re.search(r"^\d{1,2}:\d{2}", body, re.MULTILINE)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_seed_headline_is_article_title(seed: Path) -> None:
    cleaned = _clean_seed(seed)
    assert cleaned.headline in _corpus_articles()


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_seed_keeps_every_real_paragraph(seed: Path) -> None:
    cleaned = _clean_seed(seed)
    assert cleaned.headline is not None
    expected = _corpus_articles()[cleaned.headline]
    # Same paragraphs, same order, nothing added or lost.
    assert cleaned.paragraphs == expected
    for sentence in SPOT_CHECKS[cleaned.headline]:
        assert sentence in cleaned.body


@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_seed_cleaning_is_idempotent(seed: Path) -> None:
    once = _clean_seed(seed)
    again = clean_text(once.body)
    assert again.paragraphs == once.paragraphs


def test_repeated_caption_dropped_but_single_occurrence_kept() -> None:
    caption = "Protesters gather outside the parliament building in the capital on Monday."
    raw = f"Title Of The Story\n\n{caption}\n{caption}\n\nThe first real paragraph of the story is here.\n"
    cleaned = clean_text(raw)
    assert caption not in cleaned.body
    assert "The first real paragraph of the story is here." in cleaned.paragraphs
    once = clean_text(f"Title Of The Story\n\n{caption}\n\nThe first real paragraph of the story is here.\n")
    assert caption in once.paragraphs


def test_body_joins_paragraphs_with_blank_lines() -> None:
    cleaned = CleanedText(headline=None, paragraphs=("One sentence here.", "Another one there."))
    assert cleaned.body == "One sentence here.\n\nAnother one there."


def test_normalize_unifies_spaces_and_line_ends() -> None:
    text = "Caf\u0065\u0301 \u00a0 opens\u200b\r\n\tagain\u00ad  today \rnow"
    assert normalize(text) == "Café opens\nagain today\nnow"


# A made-up page with the furniture of news sites in general (not of the seeds).
SYNTHETIC_PAGE = """Skip to main content
Menu
Search
Share this article
Harbour City Approves Plan For New Tram Line
By Jane Doe
Advertisement
The city council of Portvale voted on Thursday to approve a new tram line linking the harbour with the \
university district, ending a decade of debate.
A tram waits at the harbour station in Portvale.
A tram waits at the harbour station in Portvale.
Construction is expected to begin next spring and to cost about 1.2 billion euros, according to the \
council's own estimate.
To see the route map, click here.
Advertisement
Image source: Getty Images
Critics said the money would be better spent on buses, which already serve most of the route.
• Share on Facebook
Copy link
0:00 1:45
Read more: Portvale mayor wins second term
Related stories
Portvale mayor wins second term in a close race against the former harbour master of the city council.
Bus drivers strike over pay as talks with the council break down for the third time this year.
"""


def test_synthetic_page_cleaned_by_generic_rules() -> None:
    cleaned = clean_text(SYNTHETIC_PAGE)
    assert cleaned.headline == "Harbour City Approves Plan For New Tram Line"
    assert cleaned.paragraphs == (
        "The city council of Portvale voted on Thursday to approve a new tram line linking the harbour with the "
        "university district, ending a decade of debate.",
        "Construction is expected to begin next spring and to cost about 1.2 billion euros, according to the "
        "council's own estimate.",
        "Critics said the money would be better spent on buses, which already serve most of the route.",
    )
    for furniture in (
        "Skip to main content",
        "Share",
        "Advertisement",
        "Jane Doe",
        "tram waits",
        "Getty",
        "click here",
        "Read more",
        "Related stories",
        "mayor wins",
        "Bus drivers",
    ):
        assert furniture not in cleaned.body


def test_ui_phrase_drops_only_its_line() -> None:
    raw = (
        "The first paragraph says something about the vote in parliament today.\n"
        "We use cookies to improve your experience; by continuing you accept our cookie policy.\n"
        "The second paragraph says something else about the vote in parliament today."
    )
    cleaned = clean_text(raw)
    assert len(cleaned.paragraphs) == 2
    assert all("cookie" not in p for p in cleaned.paragraphs)


def test_click_here_inside_paragraph_keeps_the_prose_sentence() -> None:
    raw = (
        "The council published the full budget on Friday, showing a deficit of 3 million euros. "
        "To read the budget, click here.\n"
        "Another paragraph follows with more details about the budget and the deficit."
    )
    cleaned = clean_text(raw)
    assert "click here" not in cleaned.body
    assert "showing a deficit of 3 million euros." in cleaned.body


def test_end_marker_before_any_paragraph_does_not_end_article() -> None:
    raw = "Related\nA Headline About Something\nThe real article text begins here and goes on for a while."
    cleaned = clean_text(raw)
    assert cleaned.paragraphs == ("The real article text begins here and goes on for a while.",)


def test_mid_article_read_more_teaser_does_not_truncate_article() -> None:
    raw = (
        "The council voted on Thursday to approve a new tram line linking the harbour with the university.\n"
        "Read more: Portvale mayor wins second term\n"
        "Critics said the money would be better spent on buses, which already serve most of the route.\n"
    )
    cleaned = clean_text(raw)
    assert "Read more" not in cleaned.body
    assert "Critics said the money would be better spent on buses" in cleaned.body


def test_first_line_is_title_for_plain_text() -> None:
    raw = "Is the election fair?\n\nObservers said the vote was neither free nor fair, citing fraud."
    assert clean_text(raw).headline is None
    titled = clean_text(raw, first_line_is_title=True)
    assert titled.headline == "Is the election fair?"
    assert titled.paragraphs == ("Observers said the vote was neither free nor fair, citing fraud.",)


def test_markdown_to_text_strips_markup() -> None:
    markdown = (
        "# The Heading\n\n"
        "Some **bold** and *italic* and __strong__ text with a [link](https://example.com/x),\n"
        "an image ![alt text](img.png) and a `code span`, wrapped\n"
        "over three lines.\n\n"
        "## Second heading ##\n\n"
        "> A quotation on one line.\n"
    )
    text = markdown_to_text(markdown)
    for markup in ("#", "**", "__", "*", "[", "](", "!", "`", ">", "https://example.com", "img.png"):
        assert markup not in text, markup
    lines = [line for line in text.split("\n") if line.strip()]
    assert lines[0] == "The Heading"
    assert " ".join(lines[1].split()) == (
        "Some bold and italic and strong text with a link, an image and a code span, wrapped over three lines."
    )
    assert "Second heading" in lines
    assert "A quotation on one line." in lines


def test_markdown_to_text_unwraps_hard_wrapped_blockquote() -> None:
    text = markdown_to_text("> The minister said the reform would\n> take effect next year.\n")
    assert text.strip() == "The minister said the reform would take effect next year."


def test_unwrap_joins_lines_within_blocks_only() -> None:
    text = "one\ntwo\n\n\nthree\n  four\n- item a\n- item b\n1. first\n2) second"
    assert unwrap(text) == "one two\n\nthree four\n- item a\n- item b\n1. first\n2) second"


def test_unwrap_keeps_markdown_headings_apart() -> None:
    assert unwrap("Some text\n# Heading\nmore") == "Some text\n# Heading more"


WRAPPED_ARTICLE = """Council approves tram line

The city council of Portvale voted on Thursday to approve
a new tram line linking the harbour with the university
district, ending a decade of debate among residents.

Construction is expected to begin next spring and to cost
about 1.2 billion euros, according to the council's own
estimate published last week.

Critics said the money would be better spent on buses,
which already serve most of the planned route today.
"""


def test_looks_hard_wrapped() -> None:
    assert looks_hard_wrapped(WRAPPED_ARTICLE)
    one_per_line = "\n\n".join(" ".join(block.split("\n")) for block in WRAPPED_ARTICLE.split("\n\n"))
    assert not looks_hard_wrapped(one_per_line)
    assert not looks_hard_wrapped("short\nlines\nonly\nhere")


def test_hard_wrapped_plain_text_keeps_its_paragraphs() -> None:
    cleaned = clean_text(unwrap(WRAPPED_ARTICLE), first_line_is_title=True)
    assert cleaned.headline == "Council approves tram line"
    expected = tuple(" ".join(block.split()) for block in WRAPPED_ARTICLE.strip().split("\n\n")[1:])
    assert cleaned.paragraphs == expected
    assert len(cleaned.paragraphs) == 3


def test_prose_that_starts_like_a_label_or_marker_is_kept() -> None:
    raw = (
        "Opposition plans protest\n\n"
        "The party said it would hold a rally in the capital next month, officials confirmed.\n\n"
        "More from the opposition is expected before the vote, according to several of its leaders.\n\n"
        "Copyright law was changed in 2019 to punish sharing of banned material online, critics say.\n\n"
        "The rally is the first since the election was called, the organisers added.\n\n"
        "More from Kazakhstan\n\n"
        "Some other headline that is not part of the article\n"
    )
    cleaned = clean_text(raw)
    assert len(cleaned.paragraphs) == 4
    assert cleaned.paragraphs[1].startswith("More from the opposition")
    assert cleaned.paragraphs[2].startswith("Copyright law")
    assert "Some other headline" not in cleaned.body


def test_furniture_between_paragraphs_near_the_end_does_not_cut_the_article() -> None:
    paragraphs = [
        f"Paragraph {i} tells the reader what happened in the town on the day of the vote." for i in range(10)
    ]
    page = "\n\n".join([*paragraphs[:7], "Advertisement", *paragraphs[7:]])
    assert clean_text(page).paragraphs == tuple(paragraphs)


def test_a_bulleted_label_near_the_end_starts_the_footer() -> None:
    paragraphs = [
        f"Paragraph {i} tells the reader what happened in the town on the day of the vote." for i in range(10)
    ]
    page = "\n\n".join(
        [*paragraphs, "• 4x3 Image", "The publisher offers news in eleven languages to readers in many countries."]
    )
    assert clean_text(page).paragraphs == tuple(paragraphs)
