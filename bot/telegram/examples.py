"""Example questions for /start, drawn from whatever the articles are about."""

from __future__ import annotations

import re
from collections import Counter

from bot.conversation import names
from bot.engine import Engine

_SPEAKER = re.compile(r"([A-Z][\w-]+(?: [A-Z][\w-]+)+)(?:,[^,.]{0,80},)? (?:told|said|says)\b")
_ORGANISATION = re.compile(r"\b(?:Party|Commission|Assembly|Council|Movement|Ministry|Parliament|Court|Union)\b")


def example_questions(engine: Engine, count: int = 3) -> list[str]:
    """Questions the articles answer, about the people quoted and the organisations named most often."""
    speakers: Counter[str] = Counter()
    organisations: Counter[str] = Counter()
    for document in engine.index.data.documents:
        speakers.update(
            match.group(1)
            for match in _SPEAKER.finditer(document.text)
            if not match.group(1).startswith("The ") and not _ORGANISATION.search(match.group(1))
        )
        organisations.update(name for name in names(document.text) if _ORGANISATION.search(name))
    candidates = [f"Who is {name}?" for name, _ in speakers.most_common(count)]
    candidates += [f"What is the {name}?" for name, _ in organisations.most_common(count)]
    examples: list[str] = []
    for question in candidates:
        # Only whether the articles answer matters here: no model is asked to write anything.
        if len(examples) < count and not engine.answer(question, use_writer=False).abstained:
            examples.append(question)
    return examples
