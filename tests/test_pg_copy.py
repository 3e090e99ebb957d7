"""A bot's local copy of the PostgreSQL store's state (bot/stores/pg_copy.py), on a real server: written once,
opened again at restart, moved to a new state by fetching only what changed, rewritten when damaged."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fakes import FakeEmbedder, FakeMultilingualEmbedder, write_article

from bot.chunking import ChunkingSettings
from bot.errors import IndexStoreError
from bot.store import IndexData
from bot.stores.pg_build import build_postgres
from bot.stores.pgvector import PgSource, PgStore

EXTRA = "2021-03-extra-steppe-bridge.md"
FIRST = "0000-first-ferry.md"
EXTRA_BODY = (
    "A new bridge over the Ural river opened in Oral on Monday. It was built by a consortium of local firms. "
    "The bridge carries four lanes of traffic and a footpath."
)


def _build(corpus: Path, url: str) -> str:
    report = build_postgres(corpus, PgSource(url), FakeEmbedder(), ChunkingSettings())
    assert report.version is not None
    return report.version


def _open(url: str, copies: Path) -> PgStore:
    return PgSource(url, copies=copies).open(FakeEmbedder())


def _same_data(a: IndexData, b: IndexData) -> None:
    assert list(a.documents) == list(b.documents)
    assert list(a.sentences) == list(b.sentences) and list(a.chunks) == list(b.chunks)
    assert list(a.clause_sentences) == list(b.clause_sentences)
    for name in ("chunk_vectors", "sentence_vectors", "clause_vectors"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.term_statistics == b.term_statistics


def test_a_restarted_bot_opens_its_copy_as_it_was(corpus_dir: Path, database_url: str, tmp_path: Path) -> None:
    version = _build(corpus_dir, database_url)
    first = _open(database_url, tmp_path / "copies")
    written = (tmp_path / "copies" / version / "manifest.json").stat().st_mtime_ns
    again = _open(database_url, tmp_path / "copies")
    assert (tmp_path / "copies" / version / "manifest.json").stat().st_mtime_ns == written
    _same_data(first.data, again.data)
    # Held once, on disk: the vectors are memory-mapped, not read into the bot's memory.
    for vectors in (again.data.chunk_vectors, again.data.sentence_vectors, again.data.clause_vectors):
        assert isinstance(vectors, np.memmap)
    query = FakeEmbedder().embed(["Mamai detained"])[0]
    assert again.dense_search(query, 10) == first.dense_search(query, 10)
    assert again.lexical_search(["mamai"], 10) == first.lexical_search(["mamai"], 10)


def test_a_new_state_fetches_only_the_documents_that_changed(
    corpus_dir: Path, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _build(corpus_dir, database_url)
    _open(database_url, tmp_path / "copies")
    # One article added that sorts after the others, one before them, and one of the two changed: fetched and
    # reused documents interleave in the copy's order.
    write_article(corpus_dir, EXTRA, EXTRA_BODY, title="A bridge in Oral")
    write_article(corpus_dir, FIRST, "A ferry crossed the Irtysh at dawn. It carried grain.", title="A ferry")
    changed = sorted(corpus_dir.glob("2020-*.md"))[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\nThe editors added a line.\n", encoding="utf-8")
    version = _build(corpus_dir, database_url)
    with caplog.at_level(logging.INFO, logger="bot.stores.pg_copy"):
        moved = _open(database_url, tmp_path / "copies")
    assert f"Copied {version}: 4 documents, 3 fetched from the database" in caplog.text
    # What it took from its previous copy is what a bot with no copy fetches whole.
    fresh = _open(database_url, tmp_path / "fresh")
    _same_data(moved.data, fresh.data)
    query = FakeEmbedder().embed(["bridge over the Ural river"])[0]
    found = moved.dense_search(query, 5)
    assert found == fresh.dense_search(query, 5)
    assert moved.data.documents[moved.data.chunks[found[0][0]].document].doc_id == EXTRA
    assert moved.lexical_search(["ural"], 5) == fresh.lexical_search(["ural"], 5) != []


def test_a_damaged_copy_is_written_again(
    corpus_dir: Path, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = _build(corpus_dir, database_url)
    before = _open(database_url, tmp_path / "copies")
    vectors = tmp_path / "copies" / version / "sentence_vectors.npy"
    damaged = bytearray(vectors.read_bytes())
    damaged[-4:] = b"\x00\x00\xc0\x7f"  # a NaN in the last vector
    # Written as a new file: `before` keeps its map of the old one, to compare with.
    replacement = vectors.with_name("replacement")
    replacement.write_bytes(bytes(damaged))
    replacement.replace(vectors)
    with caplog.at_level(logging.WARNING, logger="bot.stores.pg_copy"):
        after = _open(database_url, tmp_path / "copies")
    assert "does not match its state" in caplog.text
    _same_data(before.data, after.data)
    assert not np.isnan(np.asarray(after.data.sentence_vectors)).any()


def test_only_the_newest_copies_are_kept(corpus_dir: Path, database_url: str, tmp_path: Path) -> None:
    versions = []
    for round_ in range(3):
        write_article(corpus_dir, EXTRA, f"{EXTRA_BODY} It was inspected {round_ + 1} times.", title="A bridge")
        versions.append(_build(corpus_dir, database_url))
        _open(database_url, tmp_path / "copies")
    assert sorted(path.name for path in (tmp_path / "copies").iterdir()) == sorted(versions[1:])


def test_a_copy_keeps_the_multilingual_vectors_it_reuses(
    corpus_dir: Path, database_url: str, tmp_path: Path, multilingual: FakeMultilingualEmbedder
) -> None:
    def build() -> None:
        build_postgres(
            corpus_dir, PgSource(database_url), FakeEmbedder(), ChunkingSettings(), multilingual=multilingual
        )

    build()
    first = _open(database_url, tmp_path / "copies")
    write_article(corpus_dir, EXTRA, EXTRA_BODY, title="A bridge in Oral")
    build()
    moved = _open(database_url, tmp_path / "copies")
    fresh = _open(database_url, tmp_path / "fresh")
    assert first.manifest.has_multilingual(multilingual) and moved.manifest.has_multilingual(multilingual)
    for store in (first, moved, fresh):
        assert store.data.multilingual_vectors is not None
        assert store.data.multilingual_vectors.shape == (len(store.data.sentences), multilingual.dimension)
    assert np.array_equal(np.asarray(moved.data.multilingual_vectors), np.asarray(fresh.data.multilingual_vectors))
    # Sentence by sentence, the vectors are those the model gives the sentence's text.
    sentence = len(moved.data.sentences) - 1
    expected = multilingual.vector(moved.data.sentence_text(sentence))
    assert np.allclose(np.asarray(moved.data.multilingual_vectors)[sentence], expected, atol=1e-6)


def test_bots_sharing_a_folder_may_copy_the_same_state_at_once(
    corpus_dir: Path, database_url: str, tmp_path: Path
) -> None:
    version = _build(corpus_dir, database_url)
    opened: list[PgStore] = []
    failures: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(_open(database_url, tmp_path / "copies"))
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    bots = [threading.Thread(target=start) for _ in range(4)]
    for bot in bots:
        bot.start()
    for bot in bots:
        bot.join()
    assert not failures and len(opened) == 4
    # One copy, whoever finished first; the others' work left nothing behind.
    assert [path.name for path in (tmp_path / "copies").iterdir()] == [version]
    for store in opened[1:]:
        _same_data(opened[0].data, store.data)


def test_a_copy_of_other_tables_lends_nothing(
    corpus_dir: Path, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Row numbers name passages only within one set of tables: another database's (or tables made anew) start
    from 1 too, so a copy of them must not be taken for this one's."""
    _build(corpus_dir, database_url)
    server, name = database_url.rsplit("/", 1)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}_other")
    other = f"{server}/{name}_other"
    try:
        other_corpus = tmp_path / "other-corpus"
        other_corpus.mkdir()
        # The same names, one of them with other words: the same row numbers, other passages.
        for path in sorted(corpus_dir.iterdir()):
            (other_corpus / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        write_article(other_corpus, sorted(p.name for p in corpus_dir.iterdir())[0], EXTRA_BODY, title="A bridge")
        _build(other_corpus, other)
        _open(database_url, tmp_path / "copies")
        with caplog.at_level(logging.INFO, logger="bot.stores.pg_copy"):
            shared = _open(other, tmp_path / "copies")
        assert "2 documents, 2 fetched from the database" in caplog.text
        _same_data(shared.data, _open(other, tmp_path / "fresh").data)
    finally:
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE {name}_other WITH (FORCE)")


def test_a_copy_that_cannot_be_written_is_a_clear_store_error(
    corpus_dir: Path, database_url: str, tmp_path: Path
) -> None:
    _build(corpus_dir, database_url)
    blocked = tmp_path / "copies"
    blocked.write_text("a file where the copies' folder should be", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="cannot keep a local copy"):
        _open(database_url, blocked)
