"""Example questions for /start, drawn from whatever the articles are about."""

from __future__ import annotations

from collections import Counter

from bot import english
from bot.engine import Engine

# Examples are drawn from the newest articles only: they are what people ask about, and reading every text of a
# large archive at each start (and index reload) would take minutes.
EXAMPLE_ARTICLES = 50


def example_questions(engine: Engine, count: int = 3) -> list[str]:
    """Questions the articles answer, about the people quoted and the organisations named most often in the newest
    articles."""
    speakers: Counter[str] = Counter()
    organisations: Counter[str] = Counter()
    for document in engine.newest_articles(EXAMPLE_ARTICLES):
        speakers.update(english.quoted_speakers(document.text))
        organisations.update(name for name in english.name_spans(document.text) if english.is_organisation(name))
    candidates = [f"Who is {name}?" for name, _ in speakers.most_common(count)]
    candidates += [f"What is the {name.removeprefix('The ')}?" for name, _ in organisations.most_common(count)]
    examples: list[str] = []
    for question in candidates:
        # Only whether the articles answer matters here: no model is asked to write anything.
        if len(examples) < count and not engine.answer(question, use_writer=False).abstained:
            examples.append(question)
    return examples
