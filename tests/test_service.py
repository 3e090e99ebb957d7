"""Start-up: a missing or stale index is built and reported; a mismatched or damaged one is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeEmbedder, write_article

from bot.build import BuildReport
from bot.cli import log_level
from bot.config import Settings
from bot.errors import IndexCorruptError, IndexMismatchError
from bot.service import open_engine
from bot.store import current_version


def _settings(corpus_dir: Path, index_dir: Path, chunk_max_words: int = 110) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, corpus_dir=corpus_dir, index_dir=index_dir, chunk_max_words=chunk_max_words
    )


def _open(settings: Settings, embedder: FakeEmbedder) -> list[str]:
    reasons: list[str] = []

    def report(reason: str, build: BuildReport) -> None:
        reasons.append(reason)

    open_engine(settings, embedder, on_rebuild=report)
    return reasons


def test_missing_index_is_built_and_reported(corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> None:
    assert _open(_settings(corpus_dir, index_dir), fake_embedder) == ["no index has been built yet"]
    assert current_version(index_dir) is not None


def test_fresh_index_is_used_as_it_is(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    version = current_version(built_index)
    assert _open(_settings(corpus_dir, built_index), fake_embedder) == []
    assert current_version(built_index) == version
    assert fake_embedder.texts_embedded == 0


def test_index_of_an_earlier_format_is_rebuilt_and_reported(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    version = current_version(built_index)
    assert version is not None
    manifest_path = built_index / version / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["format_version"] -= 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    reasons = _open(_settings(corpus_dir, built_index), fake_embedder)
    assert reasons == ["the index was written by another version of the bot"]
    assert current_version(built_index) != version
    assert _open(_settings(corpus_dir, built_index), fake_embedder) == []


def test_changed_corpus_is_rebuilt_and_reported(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    write_article(corpus_dir, "new.md", "The new article says something entirely new.", title="A New Article")
    reasons = _open(_settings(corpus_dir, built_index), fake_embedder)
    assert reasons == ["the corpus changed since the last build"]


def test_changed_chunking_is_rebuilt_and_reported(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    reasons = _open(_settings(corpus_dir, built_index, chunk_max_words=60), fake_embedder)
    assert reasons == ["the chunking settings or the article cleaner changed since the last build"]
    assert _open(_settings(corpus_dir, built_index, chunk_max_words=60), fake_embedder) == []


def test_index_of_another_model_is_refused(corpus_dir: Path, built_index: Path) -> None:
    with pytest.raises(IndexMismatchError, match="build --full"):
        _open(_settings(corpus_dir, built_index), FakeEmbedder(dimension=128))


def test_damaged_index_is_refused(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    version = current_version(built_index)
    assert version is not None
    vectors = built_index / version / "sentence_vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match=r"sentence_vectors\.npy"):
        _open(_settings(corpus_dir, built_index), fake_embedder)


@pytest.mark.parametrize(
    ("environment", "unless_set", "expected"),
    [
        ({}, "INFO", "INFO"),
        ({}, "WARNING", "WARNING"),  # the console, LOG_LEVEL unset
        ({"LOG_LEVEL": "info"}, "WARNING", "INFO"),  # set: it wins everywhere
        ({"LOG_LEVEL": "DEBUG"}, "INFO", "DEBUG"),
    ],
)
def test_log_level_is_the_setting_when_set_else_the_commands_own(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], unless_set: str, expected: str
) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert log_level(Settings(_env_file=None), unless_set) == expected  # type: ignore[call-arg]
