"""Synthetic news articles for measuring builds at sizes the real corpus does not reach.

Each article is Markdown with front matter, 4-9 paragraphs of 2-5 sentences of 6-38 words drawn from a fixed
vocabulary (the words of the seed articles, so tokenization looks like news), deterministic for a seed. The
text means nothing: these articles measure speed and memory, never answer quality.

    from synthetic import write_articles
    write_articles(Path("/tmp/corpus"), 1000)
"""

from __future__ import annotations

import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_FALLBACK_WORDS = "the party said on monday that its members would hold a rally in the city ahead of elections".split()


def vocabulary() -> list[str]:
    """The distinct words of the seed articles (corpus/), or a short fallback list."""
    words: set[str] = set()
    for path in sorted((ROOT / "corpus").glob("*.md")):
        words.update(re.findall(r"[A-Za-z][A-Za-z'-]{1,20}", path.read_text(encoding="utf-8")))
    return sorted(words) or _FALLBACK_WORDS


def article_text(rng: random.Random, words: list[str], number: int) -> str:
    paragraphs = []
    for _ in range(rng.randint(4, 9)):
        sentences = []
        for _ in range(rng.randint(2, 5)):
            chosen = rng.choices(words, k=rng.randint(6, 38))
            sentences.append(" ".join(chosen).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    title = " ".join(rng.choices(words, k=6)).capitalize()
    day = 1 + number % 28
    return (
        f"---\ntitle: {title}\npublisher: Synthetic Wire\npublished: 2021-01-{day:02d}\n"
        f"url: https://example.org/{number}\n---\n\n" + "\n\n".join(paragraphs) + "\n"
    )


def write_articles(corpus_dir: Path, count: int, seed: int = 7, start: int = 0) -> list[Path]:
    """Write articles number `start` .. `start + count - 1` into `corpus_dir` (created if missing)."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    words = vocabulary()
    paths = []
    for number in range(start, start + count):
        rng = random.Random(f"{seed}:{number}")
        path = corpus_dir / f"synthetic-{number:06d}.md"
        path.write_text(article_text(rng, words, number), encoding="utf-8")
        paths.append(path)
    return paths


def rewrite_article(path: Path, seed: int) -> None:
    """Give one article new text (as an editor's correction would), keeping its name."""
    number = int(path.stem.rsplit("-", 1)[-1])
    path.write_text(article_text(random.Random(f"edit:{seed}:{number}"), vocabulary(), number), encoding="utf-8")
