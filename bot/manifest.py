"""An index version's manifest as a typed object: what it was built from, and whether that still holds.

`build.py` writes it (`manifest.json`, see `bot.store`); `Manifest.parse` reads it back, refusing a garbled one;
`Manifest.stale_reason` is the one place that decides whether an index must be rebuilt for a corpus folder and
chunking settings; `Manifest.check_model` refuses an index made with other embedding weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.chunking import CHUNKER_VERSION, ChunkingSettings
from bot.cleaning import CLEANER_VERSION
from bot.corpus import fingerprint, parse_known_files, scan
from bot.embedding import Embedder
from bot.errors import IndexCorruptError, IndexMismatchError
from bot.multilingual import MultilingualModel


def model_manifest(model: Embedder | MultilingualModel) -> dict[str, Any]:
    """Which model made a store's vectors, as its manifest records it (the embedding or the multilingual one)."""
    return {"name": model.name, "fingerprint": model.fingerprint, "dimension": model.dimension}


def chunking_manifest(chunking: ChunkingSettings) -> dict[str, Any]:
    """How articles were cut and cleaned: changing any of it invalidates every chunk."""
    return {**dataclasses.asdict(chunking), "cleaner_version": CLEANER_VERSION, "chunker_version": CHUNKER_VERSION}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    fingerprint: str
    dimension: int


@dataclass(frozen=True)
class Manifest:
    """The typed fields every reader needs; `raw` keeps the whole JSON object (per-document details)."""

    format_version: int
    version: str
    built_at: str
    model: ModelInfo
    chunking: dict[str, Any]
    corpus_fingerprint: str
    documents: dict[str, dict[str, Any]]
    skipped: dict[str, dict[str, Any]]
    counts: dict[str, int]
    faiss_index: str
    files: dict[str, str]
    raw: dict[str, Any]
    # The multilingual model whose sentence vectors the index holds (bot/multilingual.py), or None.
    multilingual: ModelInfo | None = None

    @classmethod
    def parse(cls, raw: object, where: str = "manifest.json", version: str | None = None) -> Manifest:
        """The manifest in `raw` (of the version directory `version`, when known); `IndexCorruptError`
        naming the way out when its shape is wrong."""
        if not isinstance(raw, dict):
            raise IndexCorruptError(f"{where} is not a JSON object; rebuild with 'python -m bot build --full'")
        problem = shape_problem(raw, version)
        if problem:
            raise IndexCorruptError(f"{where} is garbled: {problem}; rebuild with 'python -m bot build --full'")
        try:
            model = raw["model"]
            multilingual = raw.get("multilingual")
            manifest = cls(
                format_version=_typed(raw["format_version"], int),
                version=_typed(raw["version"], str),
                built_at=_typed(raw.get("built_at", ""), str),
                model=ModelInfo(
                    _typed(model["name"], str), _typed(model["fingerprint"], str), _typed(model["dimension"], int)
                ),
                chunking=_typed(raw["chunking"], dict),
                corpus_fingerprint=_typed(raw["corpus_fingerprint"], str),
                documents=_typed(raw["documents"], dict),
                skipped=_typed(raw.get("skipped", {}), dict),
                counts=_typed(raw.get("counts", {}), dict),
                faiss_index=_typed(raw.get("faiss_index", ""), str),
                files=_typed(raw["files"], dict),
                raw=raw,
                multilingual=None
                if multilingual is None
                else ModelInfo(
                    _typed(multilingual["name"], str),
                    _typed(multilingual["fingerprint"], str),
                    _typed(multilingual["dimension"], int),
                ),
            )
        except (KeyError, TypeError) as exc:
            raise IndexCorruptError(
                f"{where} is garbled ({type(exc).__name__}: {exc}); rebuild with 'python -m bot build --full'"
            ) from None
        return manifest

    def stale_reason(
        self, corpus_dir: Path, chunking: ChunkingSettings, multilingual: Embedder | None = None
    ) -> str | None:
        """Why this index no longer matches the corpus folder, chunking settings and multilingual model (when
        one is in use; without one, the multilingual vectors an index may hold are simply not used), or None
        when it does."""
        if self.corpus_fingerprint != fingerprint(scan(corpus_dir, self.known_files)):
            return "the corpus changed since the last build"
        if self.chunking != chunking_manifest(chunking):
            return "the chunking settings or the article cleaner changed since the last build"
        if multilingual is not None and not self.has_multilingual(multilingual):
            if self.multilingual is None:
                return "it holds no vectors for questions not in English yet"
            return "the multilingual model changed since the last build"
        return None

    @property
    def known_files(self) -> dict[str, tuple[int, int, str]]:
        """Size, modification time and hash of every corpus file at the build, so that an unchanged file need
        not be read again to tell it is unchanged (empty for an index built before they were recorded)."""
        return parse_known_files(self.raw.get("corpus_files"))

    def has_multilingual(self, model: Embedder) -> bool:
        """Whether the index holds sentence vectors made by exactly this multilingual model."""
        info = self.multilingual
        return info is not None and info.fingerprint == model.fingerprint and info.dimension == model.dimension

    def check_model(self, embedder: Embedder | None) -> None:
        """Vectors from one model mean nothing to another: refuse an index built with different weights."""
        if embedder is None:
            return
        if self.model.fingerprint != embedder.fingerprint or self.model.dimension != embedder.dimension:
            raise IndexMismatchError(
                f"the index was built with {self.model.name!r} ({self.model.dimension} dimensions), but the "
                f"configured model is {embedder.name!r} ({embedder.dimension} dimensions); rebuild it with "
                "'python -m bot build --full'"
            )


def shape_problem(manifest: dict[str, Any], version: str | None) -> str | None:
    """What is wrong with the shape of a manifest that parsed as JSON, or None."""

    def strings(value: object) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())

    model = manifest.get("model")
    if not isinstance(model, dict) or not all(isinstance(model.get(key), str) for key in ("name", "fingerprint")):
        return "the model is not described"
    dimension = model.get("dimension")
    if type(dimension) is not int or dimension <= 0:
        return f"the model dimension {dimension!r} is not a positive whole number"
    multilingual = manifest.get("multilingual")
    if multilingual is not None and (
        not isinstance(multilingual, dict)
        or not all(isinstance(multilingual.get(key), str) for key in ("name", "fingerprint"))
        or type(multilingual.get("dimension")) is not int
        or multilingual["dimension"] <= 0
    ):
        return "the multilingual model is not described"
    if "files" not in manifest:
        return "it lists no files"
    if not strings(manifest["files"]):
        return "the file list is not a mapping of names to hashes"
    if version is not None and manifest.get("version", version) != version:
        return f"it describes version {manifest.get('version')!r}, not {version!r}"
    documents = manifest.get("documents")
    if not isinstance(documents, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("content_hash"), str) for entry in documents.values()
    ):
        return "the document list is not a mapping of names to content hashes"
    skipped = manifest.get("skipped", {})
    if not isinstance(skipped, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("reason"), str) for entry in skipped.values()
    ):
        return "the list of skipped files is not a mapping of names to reasons"
    if not strings(manifest.get("duplicates", {})):
        return "the list of duplicates is not a mapping of names"
    for key in ("chunking", "counts"):
        if not isinstance(manifest.get(key, {}), dict):
            return f"{key!r} is not a mapping"
    if not isinstance(manifest.get("corpus_fingerprint", ""), str):
        return "the corpus fingerprint is not text"
    return None


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{value!r} is not {kind.__name__}")
    return value
