"""The PostgreSQL store (bot/stores/pgvector.py) on a real server: what it holds, incremental rebuilds, the
consistency readers are promised while a rebuild publishes, and refusals."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, write_article
from pydantic import SecretStr

from bot.article_vectors import EMBED_BATCH_TEXTS
from bot.chunking import ChunkingSettings
from bot.config import Settings, database_password
from bot.embedding import Vectors
from bot.engine import Engine, Outcome
from bot.errors import ConfigError, IndexCorruptError, IndexMismatchError, IndexMissingError, IndexStoreError
from bot.service import open_engine
from bot.store import open_index
from bot.stores.base import PassageStore, PassageWriter, StoreSource
from bot.stores.pg_build import build_postgres
from bot.stores.pgvector import PgSource, PgStore, redacted

RALLY = "2020-11-rferl-kazakh-opposition-rally.md"
CRACKDOWN = "2020-02-aljazeera-kazakhstan-crackdown.md"
EXTRA = "2021-03-extra-steppe-bridge.md"
EXTRA_BODY = (
    "A new bridge over the Ural river opened in Oral on Monday. It was built by a consortium of local firms. "
    "The bridge carries four lanes of traffic and a footpath."
)


def _build(corpus: Path, url: str, embedder: FakeEmbedder | None = None, *, full: bool = False) -> str:
    report = build_postgres(corpus, PgSource(url), embedder or FakeEmbedder(), ChunkingSettings(), full=full)
    assert report.version is not None
    return report.version


def _state(store: PgStore) -> dict[str, str]:
    return {d.doc_id: d.content_hash for d in store.data.documents}


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """Where a bot of the test keeps its copies of the database's states."""
    return tmp_path / "copies"


def _count(url: str, query: str, name: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(query, (name,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_database_holds_what_the_index_directory_holds(
    corpus_dir: Path, built_index: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    _build(corpus_dir, database_url)
    stored = PgSource(database_url, copies=copies).open(fake_embedder)
    index = open_index(built_index, fake_embedder)
    for rows in ("documents", "sentences", "chunks", "clause_sentences"):
        assert list(getattr(stored.data, rows)) == list(getattr(index.data, rows)), rows
    for name in ("chunk_vectors", "sentence_vectors", "clause_vectors"):
        assert np.array_equal(getattr(stored.data, name), getattr(index.data, name)), name
    assert stored.manifest.documents == index.manifest.documents
    assert stored.manifest.corpus_fingerprint == index.manifest.corpus_fingerprint
    with psycopg.connect(database_url) as connection:
        indexes: dict[str, str] = dict(
            connection.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kazbot_chunks'")
        )
    assert "USING hnsw (embedding vector_ip_ops)" in indexes["kazbot_chunks_embedding"]
    assert "USING gin (terms)" in indexes["kazbot_chunks_terms"]


def test_dense_and_lexical_search_find_the_chunk_of_a_sentence(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    _build(corpus_dir, database_url)
    source: StoreSource = PgSource(database_url, copies=copies)  # the interface's types (mypy checks that they are)
    store: PassageStore = source.open(fake_embedder)
    data = store.data
    for chunk in (0, len(data.chunks) // 2, len(data.chunks) - 1):
        text = data.chunk_search_text(chunk)
        dense = store.dense_search(fake_embedder.embed([text])[0], 5)
        assert dense[0][0] == chunk
        assert dense[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [score for _, score in dense] == sorted((score for _, score in dense), reverse=True)
    lexical = store.lexical_search(["mamai"], 30)
    assert lexical and all("mamai" in data.chunk_text(c).lower() for c in lexical)
    assert store.lexical_search(["pancake"], 30) == []
    assert store.lexical_search([], 30) == []


def test_a_rebuild_embeds_only_what_changed_and_deletes_what_was_removed(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    source = PgSource(database_url, copies=copies)
    first = _build(corpus_dir, database_url)
    again = build_postgres(corpus_dir, source, fake_embedder, ChunkingSettings())
    assert again.up_to_date and again.version == first
    assert fake_embedder.texts_embedded == 0

    write_article(corpus_dir, EXTRA, EXTRA_BODY, title="A bridge in Oral")
    (corpus_dir / CRACKDOWN).unlink()
    report = build_postgres(corpus_dir, source, fake_embedder, ChunkingSettings())
    assert report.added == [EXTRA] and report.removed == [CRACKDOWN] and report.unchanged == [RALLY]
    # Only the new article was embedded: its chunks (title first), sentences and clauses.
    assert fake_embedder.texts
    assert all(t in EXTRA_BODY or t.startswith("A bridge in Oral") for t in fake_embedder.texts)
    store = source.open(fake_embedder)
    assert sorted(_state(store)) == [RALLY, EXTRA]
    mamai = fake_embedder.embed(["Zhanbolat Mamai detained crackdown congress"])[0]
    found = {store.data.documents[store.data.chunks[c].document].doc_id for c, _ in store.dense_search(mamai, 30)}
    assert CRACKDOWN not in found
    assert all(
        store.data.documents[store.data.chunks[c].document].doc_id != CRACKDOWN
        for c in store.lexical_search(["mamai", "crackdown"], 30)
    )
    # The removed article's rows stay for readers still on the previous state, and go with the next build.
    documents = "SELECT count(*) FROM kazbot_documents WHERE doc_id = %s"
    chunks = "SELECT count(*) FROM kazbot_chunks c JOIN kazbot_documents d ON d.id = c.document WHERE d.doc_id = %s"
    assert _count(database_url, documents, CRACKDOWN) == 1
    assert _count(database_url, chunks, CRACKDOWN) > 0
    write_article(corpus_dir, EXTRA, EXTRA_BODY + " Tolls were waived for its first month.", title="A bridge")
    changed = build_postgres(corpus_dir, source, fake_embedder, ChunkingSettings())
    assert changed.changed == [EXTRA]
    assert _count(database_url, documents, CRACKDOWN) == 0
    assert _count(database_url, chunks, CRACKDOWN) == 0


def test_a_reader_sees_the_old_state_or_the_new_one_never_a_mix(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    source = PgSource(database_url, copies=copies)
    _build(corpus_dir, database_url)
    before = source.open(fake_embedder)
    old = _state(before)
    # A rebuild that adds one article, changes one and removes one, staged and published in one transaction.
    write_article(corpus_dir, EXTRA, EXTRA_BODY, title="A bridge in Oral")
    (corpus_dir / CRACKDOWN).unlink()
    rally = corpus_dir / RALLY
    rally.write_text(rally.read_text(encoding="utf-8") + "\nThe rally ended peacefully by nightfall.\n", "utf-8")

    states: list[dict[str, str]] = []
    mixes: list[str] = []
    stop = threading.Event()

    def read() -> None:
        # Opens and searches over and over while the rebuild runs: every state opened is whole.
        while not stop.is_set():
            store = source.open(fake_embedder)
            states.append(_state(store))
            names = set(_state(store))
            query = fake_embedder.embed(["bridge rally Mamai arrested"])[0]
            for chunk, _ in store.dense_search(query, 30):
                if store.data.documents[store.data.chunks[chunk].document].doc_id not in names:
                    mixes.append(store.version)
            store.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        build_postgres(corpus_dir, source, fake_embedder, ChunkingSettings())
    finally:
        stop.set()
        reader.join()
    after = source.open(fake_embedder)
    new = _state(after)
    assert new != old and sorted(new) == [RALLY, EXTRA]
    assert states and all(state in (old, new) for state in states)
    assert not mixes
    # A reader opened before the rebuild still answers from the old state alone, chunk for chunk.
    query = fake_embedder.embed(["Mamai was detained"])[0]
    for chunk, score in before.dense_search(query, 30):
        assert before.data.documents[before.data.chunks[chunk].document].doc_id in old
        assert score == pytest.approx(float(before.data.chunk_vectors[chunk] @ query), abs=1e-5)
    assert {
        before.data.documents[before.data.chunks[c].document].doc_id for c, _ in before.dense_search(query, 30)
    } == set(old)


def test_nothing_is_visible_before_the_rebuild_publishes(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    source = PgSource(database_url, copies=copies)
    first = _build(corpus_dir, database_url)
    manifest = json.loads(json.dumps(source.open(fake_embedder).manifest.raw))
    gone = manifest["documents"].pop(CRACKDOWN)
    manifest["counts"] = {key: manifest["counts"][key] - (gone.get(key, 1)) for key in manifest["counts"]}
    with source.writer(fake_embedder) as pg_writer:
        writer: PassageWriter = pg_writer  # the interface's writer (mypy checks that it is one)
        writer.delete(CRACKDOWN)
        assert source.published_version() == first
        assert CRACKDOWN in _state(source.open(fake_embedder))
        version = writer.publish(manifest)
    assert source.published_version() == version != first
    assert sorted(_state(source.open(fake_embedder))) == [RALLY]


def test_a_state_that_does_not_match_its_manifest_is_refused(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    source = PgSource(database_url, copies=copies)
    _build(corpus_dir, database_url)
    with source.writer(fake_embedder) as writer:
        writer.delete(CRACKDOWN)
        writer.publish(dict(source.open(fake_embedder).manifest.raw))  # still lists the deleted article
    with pytest.raises(IndexCorruptError, match="does not hold the documents its manifest lists"):
        source.open(fake_embedder)


def test_the_engine_answers_from_the_database_and_serves_a_rebuild(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    _build(corpus_dir, database_url)
    engine = Engine.open(PgSource(database_url, copies=copies), fake_embedder, params=UNIT_TEST_PARAMS)
    question = "When did the new bridge over the Ural river open in Oral?"
    assert engine.answer(question).outcome is not Outcome.ANSWERED
    write_article(corpus_dir, EXTRA, EXTRA_BODY, title="A bridge in Oral")
    _build(corpus_dir, database_url)
    assert engine.update_available()
    assert engine.reload_if_changed()
    answer = engine.answer(question)
    assert answer.outcome is Outcome.ANSWERED
    assert [c.source for c in answer.citations] == [EXTRA]


def test_a_database_built_for_another_model_is_refused(corpus_dir: Path, database_url: str, copies: Path) -> None:
    _build(corpus_dir, database_url, FakeEmbedder(name="another-model"))
    source = PgSource(database_url, copies=copies)
    with pytest.raises(IndexMismatchError, match=r"another-model.*build --full"):
        source.open(FakeEmbedder())
    with pytest.raises(IndexMismatchError, match=r"another-model.*build --full"):
        build_postgres(corpus_dir, source, FakeEmbedder(dimension=128), ChunkingSettings())
    # --full replaces it, for the new model's dimension.
    _build(corpus_dir, database_url, FakeEmbedder(dimension=128), full=True)
    assert source.open(FakeEmbedder(dimension=128)).manifest.model.dimension == 128


def test_another_schema_version_is_refused(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    _build(corpus_dir, database_url)
    with psycopg.connect(database_url) as connection:
        connection.execute("UPDATE kazbot_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(IndexMismatchError, match="schema 99"):
        PgSource(database_url, copies=copies).open(fake_embedder)


def test_an_empty_database_has_no_state(database_url: str, fake_embedder: FakeEmbedder, copies: Path) -> None:
    source = PgSource(database_url, copies=copies)
    assert source.published_version() is None
    with pytest.raises(IndexMissingError, match="python -m bot build"):
        source.open(fake_embedder)


@pytest.mark.parametrize(
    ("url", "password", "shown"),
    [
        ("postgresql://bob:Sec#ret9@127.0.0.1:1/kaz", "Sec#ret9", "postgresql://bob@127.0.0.1:1/kaz"),
        ("postgresql://bob:4242?zz@db:5432/kaz?sslmode=require", "4242?zz", "postgresql://bob@db:5432/kaz"),
        ("postgresql://bob:p@ss@db/kaz", "p@ss", "postgresql://bob@db/kaz"),
        ("postgresql://db/kaz", "", "postgresql://db/kaz"),
    ],
)
def test_a_password_with_url_characters_is_found_whole_and_never_shown(url: str, password: str, shown: str) -> None:
    assert database_password(url) == password
    assert redacted(url) == shown
    assert not password or password not in PgSource(url).describe()


def test_the_password_never_shows() -> None:
    url = "postgresql://kazbot:s3cret-pass@db.example.com:5432/news"
    assert "s3cret" not in redacted(url)
    assert "s3cret" not in PgSource(url).describe()
    assert redacted(url) == "postgresql://kazbot@db.example.com:5432/news"
    settings = Settings(_env_file=None, database_url=SecretStr(url))  # type: ignore[call-arg]
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    assert settings.database() == url
    with pytest.raises(ConfigError, match="DATABASE_URL") as refused:
        Settings(_env_file=None, database_url=SecretStr("mysql://u:s3cret-pass@h/db")).database()  # type: ignore[call-arg]
    assert "s3cret" not in str(refused.value)


def test_a_bot_rides_out_a_database_that_goes_away_and_comes_back(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    version = _build(corpus_dir, database_url)
    source = PgSource(database_url, copies=copies, poll_seconds=0)
    engine = Engine.open(source, fake_embedder, params=UNIT_TEST_PARAMS)
    question = "When were the last parliamentary elections held?"
    expected = engine.answer(question)
    assert expected.outcome is Outcome.ANSWERED and not engine.update_available()
    server, name = database_url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s", (name,))
        admin.execute(f"ALTER DATABASE {name} RENAME TO {name}_away")
        # Gone: the newest state is the one it knew, no update is announced, and searching fails cleanly.
        assert source.published_version() == version
        assert not engine.update_available()
        with pytest.raises(IndexStoreError, match="cannot be searched"):
            engine.index.dense_search(fake_embedder.embed(["Mamai"])[0], 5)
        admin.execute(f"ALTER DATABASE {name}_away RENAME TO {name}")
    # Back: the same state answers again, on a new connection, without a reload.
    assert engine.answer(question) == expected
    assert engine.version == version


def test_a_bot_builds_a_missing_database_and_serves_one_built_elsewhere_as_it_is(
    corpus_dir: Path, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, corpus_dir=corpus_dir, index_dir=tmp_path / "unused", database_url=SecretStr(database_url)
    )
    rebuilt: list[str] = []
    engine = open_engine(settings, FakeEmbedder(), on_rebuild=lambda reason, _: rebuilt.append(reason))
    assert rebuilt == ["no index has been built yet"]
    # INDEX_DIR holds only the bot's copy of the state it serves, no index of its own.
    assert engine.version.startswith("pg-")
    assert [path.name for path in (tmp_path / "unused").iterdir()] == ["postgres"]
    assert [path.name for path in (tmp_path / "unused/postgres").iterdir()] == [engine.version]
    # Another machine, without the corpus folder: the database is stale for it, and served as it is.
    write_article(corpus_dir, EXTRA, EXTRA_BODY, title="A bridge in Oral")
    elsewhere = settings.model_copy(update={"corpus_dir": tmp_path / "no-corpus-here"})
    assert open_engine(elsewhere, FakeEmbedder(), on_rebuild=lambda reason, _: rebuilt.append(reason)).version == (
        engine.version
    )
    # Beside the corpus, a stale database is rebuilt first, as an index directory is.
    assert open_engine(settings, FakeEmbedder(), on_rebuild=lambda reason, _: rebuilt.append(reason)).version != (
        engine.version
    )
    assert rebuilt == ["no index has been built yet", "the corpus changed since the last build"]


def test_a_full_rebuild_for_the_same_model_leaves_a_running_reader_its_state(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    build_postgres(corpus_dir, PgSource(database_url), fake_embedder, ChunkingSettings())
    reader = PgSource(database_url, copies=copies).open(fake_embedder)
    query = fake_embedder.embed(["Mamai"])[0]
    dense, lexical = reader.dense_search(query, 5), reader.lexical_search(["mamai"], 5)
    assert dense and lexical
    report = build_postgres(corpus_dir, PgSource(database_url), fake_embedder, ChunkingSettings(), full=True)
    assert report.version != reader.version
    # The tables were not dropped under it: the reader still answers from the state it opened.
    assert reader.dense_search(query, 5) == dense
    assert reader.lexical_search(["mamai"], 5) == lexical
    newest = PgSource(database_url, copies=copies).open(fake_embedder)
    assert newest.version == report.version and len(newest.data.chunks) == len(reader.data.chunks)


class _FailingEmbedder(FakeEmbedder):
    """Fails on its `fail_on`-th call to `embed`, after the batches before it were written to the database."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on

    def embed(self, texts: list[str]) -> Vectors:
        if self.calls + 1 == self.fail_on:
            raise RuntimeError("the model failed")
        return super().embed(texts)


def test_a_build_that_fails_midway_leaves_no_trace(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    version = _build(corpus_dir, database_url)
    # Four texts an article (a chunk, three sentences): more than one embedding batch (EMBED_BATCH_TEXTS).
    bulletins = EMBED_BATCH_TEXTS // 4 + 100
    for number in range(bulletins):
        body = f"Bulletin {number} reports rain in Oral. The river rose by night. Roads were closed."
        write_article(corpus_dir, f"2021-04-bulletin-{number:04}.md", body)
    failing = _FailingEmbedder(fail_on=2)
    with pytest.raises(RuntimeError, match="the model failed"):
        build_postgres(corpus_dir, PgSource(database_url), failing, ChunkingSettings())
    assert failing.calls == 1  # a batch was embedded and written into the transaction before the next failed
    source = PgSource(database_url, copies=copies)
    assert source.published_version() == version
    assert sorted(_state(source.open(fake_embedder))) == [CRACKDOWN, RALLY]
    assert _count(database_url, "SELECT count(*) FROM kazbot_documents WHERE doc_id LIKE %s", "%bulletin%") == 0
    report = build_postgres(corpus_dir, PgSource(database_url), fake_embedder, ChunkingSettings())
    assert len(report.added) == bulletins and report.version != version
    assert len(_state(source.open(fake_embedder))) == bulletins + 2


def test_a_bot_does_not_hang_on_tables_a_build_holds_locked(
    corpus_dir: Path, database_url: str, fake_embedder: FakeEmbedder, copies: Path
) -> None:
    """A build that makes new tables holds the old ones until it commits: a bot's poll keeps the state it has and
    its search fails cleanly, each within `READ_LOCK_TIMEOUT`, rather than waiting for the build."""
    version = _build(corpus_dir, database_url)
    source = PgSource(database_url, copies=copies, poll_seconds=0)
    store = source.open(fake_embedder)
    assert source.published_version() == version
    with psycopg.connect(database_url) as build:
        build.execute("LOCK TABLE kazbot_states, kazbot_chunks IN ACCESS EXCLUSIVE MODE")  # as DROP TABLE takes
        # Without the timeout these would wait on the lock held here: the test's own timeout would end it.
        assert source.published_version() == version
        with pytest.raises(IndexStoreError, match="cannot be searched"):
            store.dense_search(fake_embedder.embed(["Mamai"])[0], 5)
        build.rollback()
    assert store.dense_search(fake_embedder.embed(["Mamai"])[0], 5)
