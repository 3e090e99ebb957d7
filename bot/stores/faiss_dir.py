"""The default store: a directory of immutable index versions on one disk, `CURRENT` naming the one in use.

The format, its verification and the search itself live in `bot/store.py` (`LoadedIndex` is this backend's
`PassageStore`); the build writes versions through `bot/build.py` (atomic: a staging directory renamed into
place, then `CURRENT` replaced). This module only makes the directory a `StoreSource`.
"""

from __future__ import annotations

from pathlib import Path

from bot.embedding import Embedder
from bot.store import LoadedIndex, current_version, open_index

# This backend's `PassageStore` (bot/stores/base.py).
FaissDirStore = LoadedIndex


class FaissDirSource:
    """The index directory as a `StoreSource`: its published version is the one `CURRENT` names."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def describe(self) -> str:
        return str(self.index_dir)

    def published_version(self) -> str | None:
        return current_version(self.index_dir)

    def open(self, embedder: Embedder | None = None, version: str | None = None) -> FaissDirStore:
        return open_index(self.index_dir, embedder, version)
