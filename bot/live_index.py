"""The index a running bot answers from, and the swap to a newer one when a build publishes it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from bot.embedding import Embedder
from bot.errors import IndexStoreError
from bot.store import LoadedIndex, current_version, open_index

log = logging.getLogger(__name__)

Prepared = TypeVar("Prepared")


class LiveIndex(Generic[Prepared]):
    """One loaded index version, with what `prepare` derives from it, swapped as a pair under a lock.

    A version that fails verification is refused once and remembered: the one in service keeps serving.
    """

    def __init__(
        self, index_dir: Path, embedder: Embedder, index: LoadedIndex, prepare: Callable[[LoadedIndex], Prepared]
    ) -> None:
        self.index_dir = index_dir
        self._embedder = embedder
        self._prepare = prepare
        self._lock = threading.Lock()
        self._refused: str | None = None
        self._install(index)

    def _install(self, index: LoadedIndex) -> None:
        prepared = self._prepare(index)
        with self._lock:
            self._current = (index, prepared)

    def current(self) -> tuple[LoadedIndex, Prepared]:
        """The index in service and what was prepared from it: one consistent pair for a whole answer."""
        with self._lock:
            return self._current

    def update_available(self) -> bool:
        """Whether a build has published a version neither loaded nor refused (cheap: one small file read)."""
        version = current_version(self.index_dir)
        return version is not None and version not in (self._current[0].version, self._refused)

    def reload_if_changed(self) -> bool:
        """Load the index `CURRENT` now names, if it is another one; the old one serves until then.

        Raises an `IndexStoreError` when the new version cannot be used; the old one stays in service.
        """
        if not self.update_available():
            return False
        version = current_version(self.index_dir)
        try:
            index = open_index(self.index_dir, self._embedder, version)
        except IndexStoreError:
            self._refused = version  # Checked once: the next build will publish another version.
            raise
        self._install(index)
        log.info("Now serving index %s", version)
        return True
