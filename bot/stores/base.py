"""The interface every passage store implements, and what the engine may assume of it.

A store is read as *published states*: a build prepares a whole new state and publishes it at once, and a
reader opens one state and answers from it alone, however long it serves and whatever is published meanwhile.

    StoreSource      where states are published: names the newest one (cheaply), opens one
    PassageStore     one opened state: its manifest, the rows the engine reads (`data`), dense and lexical search
    PassageWriter    a rebuild's changes, staged and then published in one step: put (add or replace) and
                     delete a document's passages

The engine reads `data` (documents, sentence rows, chunk rows, sentence and clause vectors) to choose the
sentences that answer; the store's own work is finding the chunks, by meaning and by words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from bot.embedding import Embedder, Vectors
from bot.manifest import Manifest
from bot.store import IndexData

if TYPE_CHECKING:
    from bot.store import ArticleParts


class PassageStore(Protocol):
    """One published state of the passages, opened and verified; it never changes under its reader."""

    @property
    def version(self) -> str:
        """The state's name: it changes with every publish."""
        ...

    @property
    def manifest(self) -> Manifest:
        """What the state was built from: model, chunking, documents, counts."""
        ...

    @property
    def data(self) -> IndexData:
        """The rows and vectors of this state; chunk and sentence numbers are positions in its lists."""
        ...

    def dense_search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """Up to `k` chunks nearest the unit vector `query` by inner product: (chunk, score), best first."""
        ...

    def lexical_search(self, terms: list[str], k: int) -> list[int]:
        """Up to `k` chunks holding any of the (stemmed) `terms`, best first; none that holds none of them."""
        ...


class StoreSource(Protocol):
    """Where published states are found: a directory with `CURRENT`, or a database."""

    def describe(self) -> str:
        """Where it is, fit for a log line (a database's password never appears)."""
        ...

    def published_version(self) -> str | None:
        """The name of the newest published state, or None before the first build (cheap: called per question)."""
        ...

    def open(self, embedder: Embedder | None = None, version: str | None = None) -> PassageStore:
        """Open and verify a state (the newest by default); refuse one built for another model than `embedder`.

        Raises `IndexMissingError`, `IndexCorruptError` or `IndexMismatchError` (bot/errors.py).
        """
        ...


class PassageWriter(Protocol):
    """The changes of one rebuild: nothing is visible to readers until `publish`, then all of it at once."""

    def stored_documents(self) -> dict[str, str]:
        """The documents of the newest published state: content hash by document id."""
        ...

    def put(self, parts: ArticleParts) -> None:
        """Add a document's passages (rows and vectors, as the build made them), or replace those it had."""
        ...

    def delete(self, doc_id: str) -> None:
        """Remove a document and every passage of it."""
        ...

    def publish(self, manifest: dict[str, Any]) -> str:
        """Make every change visible at once, with the manifest of the new state; returns the state's name."""
        ...
