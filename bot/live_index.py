"""The index a running bot answers from, and the swap to a newer one when a build publishes it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from bot.embedding import Embedder
from bot.errors import IndexStoreError
from bot.stores.base import PassageStore, StoreSource

log = logging.getLogger(__name__)

Prepared = TypeVar("Prepared")


class LiveIndex(Generic[Prepared]):
    """One opened store state, with what `prepare` derives from it, swapped as a pair under a lock.

    The state is whatever `source` publishes (a FAISS directory's version, a PostgreSQL store's generation).
    A version that fails verification is refused once and remembered: the one in service keeps serving.
    """

    def __init__(
        self,
        source: StoreSource,
        embedder: Embedder,
        index: PassageStore,
        prepare: Callable[[PassageStore], Prepared],
    ) -> None:
        self.source = source
        self._embedder = embedder
        self._prepare = prepare
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._install(index)

    def _install(self, index: PassageStore) -> None:
        prepared = self._prepare(index)
        with self._lock:
            self._current = (index, prepared)

    def current(self) -> tuple[PassageStore, Prepared]:
        """The index in service and what was prepared from it: one consistent pair for a whole answer."""
        with self._lock:
            return self._current

    def update_available(self) -> bool:
        """Whether a build has published a version neither loaded nor refused (cheap: one small read)."""
        version = self.source.published_version()
        return version is not None and version not in (self._current[0].version, self._refused)

    def reload_if_changed(self) -> bool:
        """Load the version the source now publishes, if it is another one; the old one serves until then.

        Raises an `IndexStoreError` when the new version cannot be used; the old one stays in service.
        """
        if not self.update_available():
            return False
        version = self.source.published_version()
        try:
            index = self.source.open(self._embedder, version)
        except IndexStoreError:
            self._refused = version  # Checked once: the next build will publish another version.
            raise
        self._install(index)
        log.info("Now serving index %s", version)
        return True
