"""bot.build: incremental, atomic index builds that never lose the index in use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import UNIT_TEST_PARAMS, FakeEmbedder, write_article

from bot import store
from bot.build import BuildReport, build_index
from bot.chunking import ChunkingSettings
from bot.corpus import load_corpus
from bot.engine import Engine, Outcome
from bot.errors import BuildError, IndexCorruptError, IndexStoreError

SETTINGS = ChunkingSettings()
RALLY = "2020-11-rferl-kazakh-opposition-rally.md"
CRACKDOWN = "2020-02-aljazeera-kazakhstan-crackdown.md"

BRIDGE_TITLE = "Bridge over the Ural River reopens"
BRIDGE_BODY = (
    "The new bridge over the Ural River in Oral reopened to traffic on May 3 after two years of repairs.\n\n"
    "Engineers from Astana replaced the steel girders and widened the roadway to four lanes."
)
BRIDGE_QUESTION = "When did the bridge over the Ural River reopen to traffic?"
ELECTIONS_QUESTION = "When were the last parliamentary elections held?"


def _build(corpus_dir: Path, index_dir: Path, embedder: FakeEmbedder, **kwargs: Any) -> BuildReport:
    embedder.reset_counts()
    return build_index(corpus_dir, index_dir, embedder, SETTINGS, **kwargs)


def _versions(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.glob("v-*") if p.is_dir())


def _staging_dirs(index_dir: Path) -> list[Path]:
    return list(index_dir.glob(".build-*"))


def _add_bridge(corpus_dir: Path, name: str = "2021-05-bridge.md") -> Path:
    return write_article(corpus_dir, name, BRIDGE_BODY, title=BRIDGE_TITLE, publisher="Ural Weekly")


def _assert_only_from(embedder: FakeEmbedder, corpus_dir: Path, name: str) -> None:
    """Everything embedded since the last reset comes from the article in file `name`."""
    articles, _ = load_corpus(corpus_dir)
    article = next(a for a in articles if a.doc_id == name)
    assert embedder.calls == 1
    assert embedder.texts_embedded > 0
    prefix = f"{article.title}\n"
    for text in embedder.texts:
        body = text[len(prefix) :] if text.startswith(prefix) else text
        assert body in article.text, f"embedded text {text[:60]!r} is not from {name}"


def _assert_everything_embedded(embedder: FakeEmbedder, index_dir: Path) -> None:
    """Every chunk, sentence and clause of the index now in use was embedded since the last reset."""
    data = store.open_index(index_dir, embedder).data
    assert embedder.texts_embedded == len(data.chunks) + len(data.sentences) + len(data.clause_sentences)
    assert {data.documents[row.document].doc_id for row in data.sentences} == {d.doc_id for d in data.documents}
    assert all(data.sentence_text(i) in embedder.texts for i in range(len(data.sentences)))


def test_first_build(corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> None:
    report = _build(corpus_dir, index_dir, fake_embedder)
    names = sorted(p.name for p in corpus_dir.glob("*.md"))
    assert report.added == names
    assert report.changed == report.removed == report.unchanged == []
    assert report.skipped == {}
    assert not report.up_to_date
    assert report.full_reason is None
    assert report.version == store.current_version(index_dir)
    assert _versions(index_dir) == [report.version]
    loaded = store.open_index(index_dir, fake_embedder)
    assert report.documents == len(loaded.data.documents) == len(names)
    assert report.chunks == len(loaded.data.chunks)
    assert report.sentences == len(loaded.data.sentences)
    assert report.embedded_texts == fake_embedder.texts_embedded
    assert report.embedded_texts == len(loaded.data.chunks) + len(loaded.data.sentences) + len(
        loaded.data.clause_sentences
    )
    assert fake_embedder.calls == 1  # one batch across the articles, not one call per article
    assert report.seconds >= 0
    summary = report.summary()
    assert f"Built index {report.version}" in summary
    assert f"{len(names)} added" in summary
    assert _staging_dirs(index_dir) == []


def test_second_build_without_changes_is_up_to_date(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    before = store.current_version(built_index)
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.up_to_date
    assert report.version == before == store.current_version(built_index)
    assert report.unchanged == sorted(p.name for p in corpus_dir.glob("*.md"))
    assert report.added == report.changed == report.removed == []
    assert report.embedded_texts == 0
    assert fake_embedder.calls == 0
    assert report.documents == 2
    assert report.chunks > 0
    assert "is up to date" in report.summary()
    assert _versions(built_index) == [before]


def test_adding_an_article_embeds_only_it(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    old = store.open_index(built_index, fake_embedder)
    _add_bridge(corpus_dir)
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.added == ["2021-05-bridge.md"]
    assert report.unchanged == [CRACKDOWN, RALLY]
    assert report.changed == report.removed == []
    _assert_only_from(fake_embedder, corpus_dir, "2021-05-bridge.md")
    assert report.embedded_texts == fake_embedder.texts_embedded

    new = store.open_index(built_index, fake_embedder)
    assert new.version == report.version != old.version
    assert [d.doc_id for d in new.data.documents] == [CRACKDOWN, RALLY, "2021-05-bridge.md"]
    assert len(new.data.chunks) == len(old.data.chunks) + new.manifest.documents["2021-05-bridge.md"]["chunks"]
    # The unchanged articles kept their rows and vectors.
    for doc_id in (CRACKDOWN, RALLY):
        old_number = [d.doc_id for d in old.data.documents].index(doc_id)
        new_number = [d.doc_id for d in new.data.documents].index(doc_id)
        old_chunks = [i for i, c in enumerate(old.data.chunks) if c.document == old_number]
        new_chunks = [i for i, c in enumerate(new.data.chunks) if c.document == new_number]
        assert [old.data.chunk_text(i) for i in old_chunks] == [new.data.chunk_text(i) for i in new_chunks]
        np.testing.assert_array_equal(old.data.chunk_vectors[old_chunks], new.data.chunk_vectors[new_chunks])
    # And the reused vectors still belong to their texts.
    texts = [new.data.chunk_search_text(i) for i in range(len(new.data.chunks))]
    np.testing.assert_allclose(new.data.chunk_vectors, FakeEmbedder().embed(texts), atol=1e-6)
    sentences = [new.data.sentence_text(i) for i in range(len(new.data.sentences))]
    np.testing.assert_allclose(new.data.sentence_vectors, FakeEmbedder().embed(sentences), atol=1e-6)


def test_changing_an_article_reembeds_only_it(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    path = corpus_dir / CRACKDOWN
    text = path.read_text(encoding="utf-8")
    old_sentence = "Once a party is registered, it receives funding from the state."
    new_sentence = "Once a party is registered, it receives a subsidy from the national treasury."
    assert old_sentence in text
    path.write_text(text.replace(old_sentence, new_sentence), encoding="utf-8")

    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.changed == [CRACKDOWN]
    assert report.unchanged == [RALLY]
    assert report.added == report.removed == []
    _assert_only_from(fake_embedder, corpus_dir, CRACKDOWN)

    data = store.open_index(built_index, fake_embedder).data
    sentences = [data.sentence_text(i) for i in range(len(data.sentences))]
    assert new_sentence in sentences
    assert old_sentence not in sentences
    manifest = store.read_manifest(built_index / str(report.version))
    assert manifest.documents[CRACKDOWN]["content_hash"] != manifest.documents[RALLY]["content_hash"]


def test_deleting_an_article_removes_it(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    old = store.open_index(built_index, fake_embedder)
    (corpus_dir / CRACKDOWN).unlink()
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.removed == [CRACKDOWN]
    assert report.unchanged == [RALLY]
    assert report.added == report.changed == []
    assert fake_embedder.calls == 0
    assert report.embedded_texts == 0

    new = store.open_index(built_index, fake_embedder)
    assert [d.doc_id for d in new.data.documents] == [RALLY]
    assert {c.document for c in new.data.chunks} == {0}
    assert CRACKDOWN not in new.manifest.documents
    removed_chunks = old.manifest.documents[CRACKDOWN]["chunks"]
    assert len(new.data.chunks) == len(old.data.chunks) - removed_chunks == new.faiss_index.ntotal
    assert all("Alzhanov" not in new.data.chunk_text(i) for i in range(len(new.data.chunks)))
    assert float(np.max(new.bm25.get_scores(["alzhanov"]))) == 0.0


def test_renaming_an_article_is_remove_plus_add(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    (corpus_dir / RALLY).rename(corpus_dir / "rally.md")
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.removed == [RALLY]
    assert report.added == ["rally.md"]
    data = store.open_index(built_index, fake_embedder).data
    assert sorted(d.doc_id for d in data.documents) == [CRACKDOWN, "rally.md"]


def test_bad_file_is_skipped_and_the_rest_builds(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    (corpus_dir / "broken.md").write_text("---\ntitle: [unclosed\n---\n\nSome text here.", encoding="utf-8")
    (corpus_dir / "empty.txt").write_bytes(b"")
    report = _build(corpus_dir, built_index, fake_embedder)
    assert set(report.skipped) == {"broken.md", "empty.txt"}
    assert "YAML" in report.skipped["broken.md"]
    assert "empty" in report.skipped["empty.txt"]
    assert report.unchanged == [CRACKDOWN, RALLY]
    assert fake_embedder.calls == 0
    summary = report.summary()
    assert "skipped broken.md:" in summary
    assert "2 skipped" in summary
    loaded = store.open_index(built_index, fake_embedder)
    assert [d.doc_id for d in loaded.data.documents] == [CRACKDOWN, RALLY]
    assert loaded.manifest.skipped["empty.txt"]["reason"] == report.skipped["empty.txt"]


def test_up_to_date_report_keeps_skip_reasons(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    (corpus_dir / "empty.txt").write_bytes(b"")
    first = _build(corpus_dir, built_index, fake_embedder)
    second = _build(corpus_dir, built_index, fake_embedder)
    assert second.up_to_date
    assert second.skipped == first.skipped
    assert all(isinstance(reason, str) for reason in second.skipped.values())


def test_article_that_turns_bad_leaves_the_index(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    (corpus_dir / CRACKDOWN).write_bytes(b"\x00\x01binary now")
    report = _build(corpus_dir, built_index, fake_embedder)
    assert "binary" in report.skipped[CRACKDOWN]
    data = store.open_index(built_index, fake_embedder).data
    assert [d.doc_id for d in data.documents] == [RALLY]


def test_full_rebuild_reembeds_everything(corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> None:
    first = _build(corpus_dir, index_dir, fake_embedder)
    first_count = fake_embedder.texts_embedded
    report = _build(corpus_dir, index_dir, fake_embedder, full=True)
    assert not report.up_to_date
    assert report.version != first.version
    assert report.full_reason is not None
    assert "full" in report.full_reason
    assert fake_embedder.texts_embedded == first_count == report.embedded_texts
    # Re-embedded, but their content did not change: neither added nor changed.
    assert report.added == report.changed == []
    assert report.unchanged == [CRACKDOWN, RALLY]
    assert store.current_version(index_dir) == report.version


def test_full_rebuild_reports_removed_and_unchanged_articles(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    (corpus_dir / CRACKDOWN).unlink()
    report = _build(corpus_dir, built_index, fake_embedder, full=True)
    assert report.removed == [CRACKDOWN]
    assert report.added == report.changed == []
    assert report.unchanged == [RALLY]


def test_changed_chunking_rebuilds_everything(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    fake_embedder.reset_counts()
    report = build_index(corpus_dir, built_index, fake_embedder, ChunkingSettings(max_words=40, overlap_sentences=0))
    assert report.full_reason is not None
    assert "chunking" in report.full_reason
    _assert_everything_embedded(fake_embedder, built_index)
    manifest = store.open_index(built_index, fake_embedder).manifest
    assert manifest.chunking["max_words"] == 40


def test_other_embedder_rebuilds_everything(corpus_dir: Path, built_index: Path) -> None:
    other = FakeEmbedder(dimension=64, name="other-fake")
    report = build_index(corpus_dir, built_index, other, SETTINGS)
    assert report.full_reason is not None
    assert "unusable" in report.full_reason
    _assert_everything_embedded(other, built_index)
    loaded = store.open_index(built_index, other)
    assert loaded.data.chunk_vectors.shape[1] == 64


def test_corrupt_previous_index_is_rebuilt(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    version = store.current_version(built_index)
    (built_index / str(version) / store.SENTENCE_VECTORS).write_bytes(b"broken")
    with pytest.raises(IndexCorruptError):
        store.open_index(built_index, fake_embedder)
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.full_reason is not None
    assert "unusable" in report.full_reason
    _assert_everything_embedded(fake_embedder, built_index)
    assert store.open_index(built_index, fake_embedder).version == report.version


def test_progress_is_reported(corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> None:
    events: list[str] = []

    class Bar:
        def update(self, n: int) -> None:
            events.append(f"update {n}")

        def close(self) -> None:
            events.append("close")

    def factory(total: int) -> Bar:
        events.append(f"total {total}")
        return Bar()

    _build(corpus_dir, index_dir, fake_embedder, progress=factory)
    assert events == ["total 2", "update 1", "update 1", "close"]


def test_all_bad_corpus_raises_and_keeps_previous_index(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    before = store.current_version(built_index)
    for path in corpus_dir.glob("*.md"):
        path.unlink()
    (corpus_dir / "empty.md").write_bytes(b"")
    (corpus_dir / "notes.docx").write_bytes(b"PK\x03\x04")
    with pytest.raises(BuildError) as caught:
        _build(corpus_dir, built_index, fake_embedder)
    message = str(caught.value)
    assert "empty.md: empty file" in message
    assert "notes.docx" in message
    assert store.current_version(built_index) == before
    assert _versions(built_index) == [before]
    assert _staging_dirs(built_index) == []
    engine = Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)
    assert engine.answer(ELECTIONS_QUESTION).outcome is Outcome.ANSWERED


def test_empty_corpus_raises(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    (tmp_path / "corpus").mkdir()
    with pytest.raises(BuildError, match="nothing to index"):
        _build(tmp_path / "corpus", tmp_path / "index", fake_embedder)
    assert store.current_version(tmp_path / "index") is None


def _assert_previous_index_serves(index_dir: Path, version: str | None, embedder: FakeEmbedder) -> None:
    assert store.current_version(index_dir) == version
    assert _staging_dirs(index_dir) == []
    engine = Engine.open(index_dir, embedder, params=UNIT_TEST_PARAMS)
    assert engine.version == version
    answer = engine.answer(ELECTIONS_QUESTION)
    assert answer.outcome is Outcome.ANSWERED
    assert "March 2016" in answer.text
    # The new article never made it into the index in use.
    assert all(d.doc_id != "2021-05-bridge.md" for d in engine.index.data.documents)


def _crash(*args: Any, **kwargs: Any) -> None:
    raise OSError("simulated crash: disk full")


@pytest.mark.parametrize(
    "target",
    [
        "bot.store.VersionWriter.add",
        "bot.store.VersionWriter.finish",
        "bot.store.BM25Writer.write",
        "bot.store.faiss.write_index",
        "bot.store.file_hashes",
    ],
)
def test_crash_during_write_keeps_previous_index(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    before = store.current_version(built_index)
    _add_bridge(corpus_dir)
    with monkeypatch.context() as patch:
        patch.setattr(target, _crash)
        with pytest.raises(OSError, match="simulated crash"):
            _build(corpus_dir, built_index, fake_embedder)
    _assert_previous_index_serves(built_index, before, fake_embedder)
    assert _versions(built_index) == [before]

    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.added == ["2021-05-bridge.md"]
    assert store.current_version(built_index) == report.version != before


def test_crash_while_swapping_current_keeps_previous_index(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.current_version(built_index)
    _add_bridge(corpus_dir)
    with monkeypatch.context() as patch:
        patch.setattr("bot.build.os.replace", _crash)
        with pytest.raises(OSError, match="simulated crash"):
            _build(corpus_dir, built_index, fake_embedder)
    _assert_previous_index_serves(built_index, before, fake_embedder)
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.added == ["2021-05-bridge.md"]
    assert store.current_version(built_index) == report.version != before
    assert (
        Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS).answer(BRIDGE_QUESTION).outcome
        is Outcome.ANSWERED
    )


def test_prune_keeps_the_previously_current_version_after_a_crash(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.current_version(built_index)
    _add_bridge(corpus_dir)
    with monkeypatch.context() as patch:
        patch.setattr("bot.build.os.replace", _crash)
        with pytest.raises(OSError, match="simulated crash"):
            _build(corpus_dir, built_index, fake_embedder)
    orphans = [v for v in _versions(built_index) if v != before]
    assert len(orphans) == 1  # renamed into place, never named by CURRENT
    report = _build(corpus_dir, built_index, fake_embedder)
    assert _versions(built_index) == sorted([str(before), str(report.version)])


def test_abandoned_staging_directory_is_removed(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    leftover = built_index / ".build-crashed123"
    (leftover / "bm25").mkdir(parents=True)
    (leftover / "chunks.faiss").write_bytes(b"half written")
    (leftover / "bm25" / "params.index.json").write_text("{", encoding="utf-8")
    report = _build(corpus_dir, built_index, fake_embedder)
    assert report.up_to_date  # even a build with nothing to do cleans up
    assert not leftover.exists()
    assert _staging_dirs(built_index) == []
    store.open_index(built_index, fake_embedder)


def test_old_versions_are_pruned(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    published = [store.current_version(built_index)]
    for i in range(3):
        write_article(
            corpus_dir, f"extra-{i}.md", f"Extra article number {i} says the weather was fine.", title=f"E{i}"
        )
        published.append(_build(corpus_dir, built_index, fake_embedder).version)
        current = store.current_version(built_index)
        assert current == published[-1]
        # The current version and the one before it, for readers that resolved CURRENT just before the swap.
        assert _versions(built_index) == sorted([str(published[-2]), str(current)])
    assert len(set(published)) == 4


def test_engine_keeps_serving_until_reload(corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder) -> None:
    engine = Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)
    version_a = engine.version
    assert engine.reload_if_changed() is False
    before = engine.answer(BRIDGE_QUESTION)
    assert all(c.source != "2021-05-bridge.md" for c in before.citations)

    _add_bridge(corpus_dir)
    version_b = _build(corpus_dir, built_index, fake_embedder).version
    assert version_b != version_a
    # Still on A, and still answering from it.
    assert engine.version == version_a
    assert engine.answer(ELECTIONS_QUESTION).outcome is Outcome.ANSWERED
    assert all(c.source != "2021-05-bridge.md" for c in engine.answer(BRIDGE_QUESTION).citations)

    assert engine.reload_if_changed() is True
    assert engine.version == version_b
    after = engine.answer(BRIDGE_QUESTION)
    assert after.outcome is Outcome.ANSWERED
    assert [c.source for c in after.citations] == ["2021-05-bridge.md"]
    assert "reopened to traffic on May 3" in after.text
    assert engine.reload_if_changed() is False


def test_engine_survives_version_a_being_pruned(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    engine = Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)
    version_a = engine.version
    for i in range(2):
        write_article(
            corpus_dir, f"extra-{i}.md", f"Extra article number {i} says the weather was fine.", title=f"E{i}"
        )
        _build(corpus_dir, built_index, fake_embedder)
    assert version_a not in _versions(built_index)
    assert engine.version == version_a
    assert engine.answer(ELECTIONS_QUESTION).outcome is Outcome.ANSWERED
    assert engine.reload_if_changed() is True


def test_corrupt_new_version_keeps_engine_on_old(
    corpus_dir: Path, built_index: Path, fake_embedder: FakeEmbedder
) -> None:
    engine = Engine.open(built_index, fake_embedder, params=UNIT_TEST_PARAMS)
    version_a = engine.version
    _add_bridge(corpus_dir)
    version_b = _build(corpus_dir, built_index, fake_embedder).version
    (built_index / str(version_b) / store.FAISS_FILE).write_bytes(b"corrupted")
    with pytest.raises(IndexStoreError):
        engine.reload_if_changed()
    assert engine.version == version_a
    answer = engine.answer(ELECTIONS_QUESTION)
    assert answer.outcome is Outcome.ANSWERED
    assert "March 2016" in answer.text


def test_manifest_records_skipped_files(corpus_dir: Path, index_dir: Path, fake_embedder: FakeEmbedder) -> None:
    (corpus_dir / "latin1.txt").write_bytes("Caf\xe9 society.".encode("latin-1"))
    report = _build(corpus_dir, index_dir, fake_embedder)
    manifest = json.loads((index_dir / str(report.version) / store.MANIFEST).read_text(encoding="utf-8"))
    entry = manifest["skipped"]["latin1.txt"]
    assert "UTF-8" in entry["reason"]
    assert entry["content_hash"] is not None
    assert manifest["counts"]["documents"] == 2
