"""Test doubles shared by the test suite.

``FakeEmbedder`` implements the ``bot.embedding.Embedder`` protocol without any model: every word of its own
crude tokenizer (lower-case letters and digits, a few function words dropped, a plural "s" cut; it shares no
code with the product's ``bot.english``, so tests do not measure the product against itself) and, with less
weight, every character trigram of those words is hashed with a stable hash (BLAKE2b, never Python's salted
``hash()``) into a fixed number of signed buckets; the sum is L2-normalized.
Texts that share words therefore have a high cosine similarity and unrelated texts a cosine
near zero, so retrieval and answer-selection tests exercise real behaviour, deterministically and fast.

It also counts what it embedded (``calls``, ``texts``, ``texts_embedded``), so a test can check that an
incremental build embedded only the new or changed articles.

``version_dir``, ``read_manifest`` and ``write_manifest`` reach the current version of a built index directory.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bot import store
from bot.embedding import Vectors
from bot.scorer import FEATURES, ScorerParams

# Scorer weights for the fake embedder, written by hand so that unit tests check the engine's mechanics and not
# the fitted weights (those are fitted for the real model, and the integration tests check them): a sentence
# that shares the question's words and holds the kind of answer asked for is confident; one that shares a few
# is related; nothing within a cosine of 0.2 (in the fake embedder's space) is not related.
_UNIT_TEST_WEIGHTS = {"cos_sentence": 3.0, "terms": 3.0, "terms_neighbours": 1.0, "type_found": 1.0, "cos_gap": 2.0}
UNIT_TEST_PARAMS = ScorerParams(
    weights=tuple(_UNIT_TEST_WEIGHTS.get(name, 0.0) for name in FEATURES),
    bias=-4.0,
    answer_threshold=0.5,
    related_threshold=0.2,
)

FAKE_EMBEDDER_NAME = "fake-hash-embedder"
_FUNCTION_WORDS = frozenset("a an the of to in on at by for and or is are was were be it its this that with as".split())
WORD_WEIGHT = 1.0
TRIGRAM_WEIGHT = 0.25


def _fake_words(text: str) -> list[str]:
    """Deliberately simple: lower-case runs of letters and digits, function words dropped, plural "s" cut."""
    found = re.findall(r"[a-z0-9]+", text.lower())
    return [w[:-1] if len(w) > 4 and w.endswith("s") else w for w in found if w not in _FUNCTION_WORDS]


@lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value % dimension, 1.0 if (value >> 63) & 1 else -1.0


class FakeEmbedder:
    """A deterministic bag-of-stems embedder; see the module docstring."""

    def __init__(self, dimension: int = 256, name: str = FAKE_EMBEDDER_NAME) -> None:
        if dimension < 2:
            raise ValueError("dimension must be at least 2")
        self.name = name
        self.dimension = dimension
        self.fingerprint = hashlib.sha256(f"{name}:{dimension}".encode()).hexdigest()
        self.calls = 0
        self.texts: list[str] = []
        # What an empty text (or one of stopwords only) maps to: a fixed unit vector.
        self._empty = np.zeros(dimension, dtype=np.float32)
        self._empty[0] = 1.0

    @property
    def texts_embedded(self) -> int:
        """How many texts `embed` has been given since creation or the last `reset_counts`."""
        return len(self.texts)

    def reset_counts(self) -> None:
        self.calls = 0
        self.texts.clear()

    def vector(self, text: str) -> Vectors:
        """The unit vector of one text (not counted)."""
        vector = np.zeros(self.dimension, dtype=np.float64)
        for term in _fake_words(text):
            index, sign = _bucket(f"w:{term}", self.dimension)
            vector[index] += sign * WORD_WEIGHT
            padded = f"#{term}#"
            for i in range(len(padded) - 2):
                index, sign = _bucket(f"t:{padded[i : i + 3]}", self.dimension)
                vector[index] += sign * TRIGRAM_WEIGHT
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            return self._empty.copy()
        result: Vectors = (vector / norm).astype(np.float32)
        return result

    def embed(self, texts: list[str]) -> Vectors:
        self.calls += 1
        self.texts.extend(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.vstack([self.vector(text) for text in texts]), dtype=np.float32)


def write_article(
    directory: Path,
    name: str,
    body: str,
    *,
    title: str | None = None,
    publisher: str | None = None,
    published: str | None = None,
    url: str | None = None,
) -> Path:
    """Write a Markdown article with YAML front matter (only the fields given) into `directory`.

    Title, publisher and url are written as quoted YAML strings; `published` is written as given, so
    "2021-05-03" is read by YAML as a date and "'2020-11'" as a string.
    """
    fields = {"title": title, "publisher": publisher, "url": url}
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items() if value]
    if published is not None:
        lines.append(f"published: {published}")
    front = "---\n" + "".join(f"{line}\n" for line in lines) + "---\n\n" if lines else ""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(front + body.strip() + "\n", encoding="utf-8")
    return path


# ``FakeMultilingualEmbedder``: a stand-in for the multilingual model (bot/multilingual.py) that shares no code
# with it. A fixed table maps a few Russian and English word forms to shared concepts; a text's vector has 1 on
# the axis of each concept it names, and 0.3 on a "Latin words" or "Cyrillic words" axis when it has any word of
# that script outside the table (1 on a last axis for a text without words), L2-normalized. A Russian question
# and the English sentence naming the same concepts therefore have a cosine above 0.9, a question naming none of
# a sentence's concepts a cosine of 0, and one sharing a concept of three about 0.55: far on either side of the
# product's thresholds, so tests check the leg's mechanics, not e5's calibration.
MULTILINGUAL_CONCEPTS: dict[str, tuple[str, ...]] = {
    "mamai": ("mamai", "мамай", "мамая", "мамаю"),
    "detained": ("detained", "задержали", "задержан"),
    "days": ("days", "суток", "дней"),
    "elbasy": ("elbasy", "елбасы"),
    "funding": ("funding", "деньги", "финансирование"),
    "state": ("state", "государства", "государство"),
}
_CONCEPT_OF = {form: axis for axis, forms in enumerate(MULTILINGUAL_CONCEPTS.values()) for form in forms}
FAKE_MULTILINGUAL_NAME = "fake-multilingual-concepts"


class FakeMultilingualEmbedder:
    """The concept-table embedder described above; counts passages and questions embedded separately."""

    def __init__(self, name: str = FAKE_MULTILINGUAL_NAME) -> None:
        self.name = name
        self.dimension = len(MULTILINGUAL_CONCEPTS) + 3  # the concepts, Latin words, Cyrillic words, no words
        self.fingerprint = hashlib.sha256(f"multilingual:{name}".encode()).hexdigest()
        self.passages: list[str] = []
        self.queries: list[str] = []

    def vector(self, text: str) -> Vectors:
        vector = np.zeros(self.dimension, dtype=np.float64)
        for word in re.findall(r"\w+", text.lower()):
            if word in _CONCEPT_OF:
                vector[_CONCEPT_OF[word]] = 1.0
            elif re.match(r"[а-яё]", word):
                vector[-2] = 0.3
            else:
                vector[-3] = 0.3
        if not vector.any():
            vector[-1] = 1.0
        result: Vectors = (vector / np.linalg.norm(vector)).astype(np.float32)
        return result

    def _rows(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.vstack([self.vector(text) for text in texts]), dtype=np.float32)

    def embed(self, texts: list[str]) -> Vectors:
        self.passages.extend(texts)
        return self._rows(texts)

    def embed_query(self, texts: list[str]) -> Vectors:
        self.queries.extend(texts)
        return self._rows(texts)


def version_dir(index_dir: Path) -> Path:
    """The directory of the version `CURRENT` names."""
    version = store.current_version(index_dir)
    assert version is not None
    return index_dir / version


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The current version's manifest, as JSON."""
    manifest: dict[str, Any] = json.loads((version_dir(index_dir) / store.MANIFEST).read_text(encoding="utf-8"))
    return manifest


def write_manifest(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the current version's manifest (files are not hashed again: a test's way to tamper with it)."""
    (version_dir(index_dir) / store.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
