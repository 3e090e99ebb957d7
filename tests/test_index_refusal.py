"""A damaged or foreign index is refused before use, always with the way out (`python -m bot build --full`), and
that way out works. Garbled manifests are generated with hypothesis: whatever they hold, opening the index
raises an `IndexStoreError`, never anything else."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, version_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import store
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.engine import Engine, Outcome
from bot.errors import IndexCorruptError, IndexMismatchError, IndexStoreError

WAY_OUT = "python -m bot build --full"
QUESTION = "Who is Zhanbolat Mamai?"


def _manifest_path(index_dir: Path) -> Path:
    return version_dir(index_dir) / store.MANIFEST


def _set(manifest: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _other_model(index_dir: Path) -> None:
    manifest = json.loads(_manifest_path(index_dir).read_text(encoding="utf-8"))
    manifest["model"] = {"name": "another/model", "fingerprint": "0" * 64, "dimension": 256}
    _manifest_path(index_dir).write_text(json.dumps(manifest), encoding="utf-8")


def _other_dimension(index_dir: Path) -> None:
    manifest = json.loads(_manifest_path(index_dir).read_text(encoding="utf-8"))
    manifest["model"]["dimension"] = 384
    _manifest_path(index_dir).write_text(json.dumps(manifest), encoding="utf-8")


def _foreign_file(index_dir: Path) -> None:
    (version_dir(index_dir) / "notes.txt").write_text("left here by hand", encoding="utf-8")


def _foreign_folder(index_dir: Path) -> None:
    (version_dir(index_dir) / "extra").mkdir()


def _foreign_link(index_dir: Path) -> None:
    (version_dir(index_dir) / "passwd").symlink_to("/etc/passwd")


def _current_outside(index_dir: Path) -> None:
    (index_dir / store.CURRENT).write_text("../../etc\n", encoding="utf-8")


def _garbled_manifest(index_dir: Path) -> None:
    path = _manifest_path(index_dir)
    path.write_bytes(path.read_bytes()[:200] + b"\x00\xff garbage")


def _manifest_of_another_version(index_dir: Path) -> None:
    manifest = json.loads(_manifest_path(index_dir).read_text(encoding="utf-8"))
    manifest["version"] = "v-20200101T000000000000-abcdef"
    _manifest_path(index_dir).write_text(json.dumps(manifest), encoding="utf-8")


DAMAGE: dict[str, tuple[Callable[[Path], None], type[IndexStoreError]]] = {
    "other-model": (_other_model, IndexMismatchError),
    "other-dimension": (_other_dimension, IndexMismatchError),
    "foreign-file": (_foreign_file, IndexCorruptError),
    "foreign-folder": (_foreign_folder, IndexCorruptError),
    "foreign-link": (_foreign_link, IndexCorruptError),
    "current-points-outside": (_current_outside, IndexCorruptError),
    "garbled-manifest": (_garbled_manifest, IndexCorruptError),
    "manifest-of-another-version": (_manifest_of_another_version, IndexCorruptError),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_or_foreign_index_is_refused_with_the_way_out_and_the_way_out_works(
    built_index: Path, corpus_dir: Path, fake_embedder: FakeEmbedder, damage: str
) -> None:
    damage_index, error = DAMAGE[damage]
    damage_index(built_index)
    with pytest.raises(error) as refused:
        store.open_index(built_index, fake_embedder)
    assert WAY_OUT in str(refused.value)
    with pytest.raises(IndexStoreError):
        Engine.open(
            built_index, fake_embedder, params=UNIT_TEST_PARAMS
        )  # no engine, so no answer and no citation from it
    build_index(corpus_dir, built_index, fake_embedder, ChunkingSettings(), full=True)
    engine = Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)
    assert engine.answer(QUESTION).outcome is Outcome.ANSWERED


def test_a_damaged_new_version_is_refused_by_a_serving_engine(
    built_index: Path, corpus_dir: Path, fake_embedder: FakeEmbedder
) -> None:
    engine = Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)
    before = engine.answer(QUESTION)
    (corpus_dir / "extra.md").write_text("The ferry to Aktau sails twice a week.\n", encoding="utf-8")
    build_index(corpus_dir, built_index, fake_embedder, ChunkingSettings())
    _foreign_file(built_index)
    with pytest.raises(IndexCorruptError, match="build --full"):
        engine.reload_if_changed()
    assert engine.answer(QUESTION) == before


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
KEYS: list[tuple[str, ...]] = [
    ("format_version",),
    ("model",),
    ("model", "name"),
    ("model", "fingerprint"),
    ("model", "dimension"),
    ("files",),
    ("documents",),
    ("skipped",),
    ("duplicates",),
    ("chunking",),
    ("counts",),
    ("corpus_fingerprint",),
    ("version",),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    corpus = root / "corpus"
    shutil.copytree(Path(__file__).resolve().parent.parent / "corpus", corpus)
    build_index(corpus, root / "index", FakeEmbedder(), ChunkingSettings())
    return root / "index"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=JSON)
def test_a_garbled_manifest_raises_only_an_index_error(pristine: Path, key: tuple[str, ...], value: object) -> None:
    path = _manifest_path(pristine)
    original = path.read_bytes()
    manifest = json.loads(original)
    try:
        _set(manifest, key, value)
        path.write_text(json.dumps(manifest), encoding="utf-8")
        try:
            loaded = store.open_index(pristine, FakeEmbedder())
        except IndexStoreError as exc:
            assert WAY_OUT in str(exc)
        else:  # Only a value that changes nothing that matters may pass.
            assert loaded.manifest.model.dimension == 256
            assert loaded.manifest.files == json.loads(original)["files"]
    finally:
        path.write_bytes(original)
        os.utime(path)
