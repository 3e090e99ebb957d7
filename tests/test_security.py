"""Nothing a user or a corpus file writes is ever unpickled or executed, and a model's own code never runs.

The path checks (links and `..` out of the corpus) are in test_corpus_input.py; the token in logs in
test_telegram_ops.py and test_telegram_faults.py; access control in test_telegram_updates.py.
"""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import FakeEmbedder

from bot import store
from bot.corpus import CorpusFile, load_article
from bot.embedding import SentenceTransformerEmbedder
from bot.errors import ArticleError, IndexCorruptError

BOT_DIR = Path(__file__).resolve().parent.parent / "bot"


class _Payload:
    """Unpickling this creates `marker`: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


@pytest.mark.parametrize("path", sorted(BOT_DIR.rglob("*.py")), ids=lambda p: p.relative_to(BOT_DIR).as_posix())
def test_no_module_unpickles_evaluates_or_trusts_remote_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    forbidden_calls = {"eval", "exec", "compile", "__import__", "yaml.load", "yaml.unsafe_load", "torch.load"}
    imports = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imports & {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}
    for call in _calls(tree):
        name = _name(call.func)
        assert name not in forbidden_calls and not name.startswith("pickle."), f"{path}:{call.lineno} calls {name}"
        for keyword in call.keywords:
            if keyword.arg in ("trust_remote_code", "allow_pickle"):
                assert isinstance(keyword.value, ast.Constant) and keyword.value.value is False, (
                    f"{path}:{call.lineno} passes {keyword.arg}={ast.unparse(keyword.value)}"
                )


def test_the_model_is_loaded_with_remote_code_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real loader, with sentence-transformers replaced by a recorder (no model is loaded)."""
    seen: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen.append(kwargs)

        def get_embedding_dimension(self) -> int:
            return 8

    fake_st = types.ModuleType("sentence_transformers")
    fake_st.SentenceTransformer = Recorder  # type: ignore[attr-defined]
    fake_logging = types.ModuleType("transformers.utils.logging")
    fake_logging.disable_progress_bar = lambda: None  # type: ignore[attr-defined]
    fake_utils = types.ModuleType("transformers.utils")
    fake_utils.logging = fake_logging  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake_st)
    monkeypatch.setitem(sys.modules, "transformers", types.ModuleType("transformers"))
    monkeypatch.setitem(sys.modules, "transformers.utils", fake_utils)
    model = tmp_path / "some-model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    embedder = SentenceTransformerEmbedder(str(model))
    assert embedder.dimension == 8
    assert seen and all(kwargs.get("trust_remote_code") is False for kwargs in seen)
    assert all(kwargs.get("local_files_only") is True for kwargs in seen)


def _swap_behind_the_checksum(version_dir: Path, name: str, content: bytes) -> None:
    (version_dir / name).write_bytes(content)
    manifest_path = version_dir / store.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"][name] = hashlib.sha256(content).hexdigest()
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("target", ["sentence_vectors.npy", "clause_vectors.npy", "bm25"])
def test_a_pickle_planted_in_the_index_is_never_unpickled(
    built_index: Path, fake_embedder: FakeEmbedder, tmp_path: Path, target: str
) -> None:
    marker = tmp_path / "unpickled"
    planted = tmp_path / "planted.npy"
    np.save(planted, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    version_dir = built_index / str(store.current_version(built_index))
    name = (
        target
        if target.endswith(".npy")
        else next(p.relative_to(version_dir).as_posix() for p in sorted((version_dir / target).glob("*.npy")))
    )
    _swap_behind_the_checksum(version_dir, name, planted.read_bytes())
    with pytest.raises(IndexCorruptError):
        store.open_index(built_index, fake_embedder)
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(_Payload(marker))) is None and marker.exists()  # the payload works


def test_yaml_front_matter_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.md"
    path.write_text(
        f"---\ntitle: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n"
        "---\n\nThe council met on Thursday.\n",
        encoding="utf-8",
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ArticleError, match="YAML"):
        load_article(CorpusFile(path.parent, path.name, digest, path.stat().st_size))
    assert not marker.exists()
