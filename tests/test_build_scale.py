"""Builds at size: batched embedding across articles, no-change rebuilds that never embed or re-hash, the lazy
model, and questions from many threads embedded together (`QuestionBatcher`)."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np
import pytest
from fakes import FakeEmbedder, write_article

from bot import english, store
from bot.article_vectors import EmbeddingPipeline, cut_article
from bot.build import build_index
from bot.chunking import ChunkingSettings
from bot.corpus import load_corpus, scan
from bot.embedding import QuestionBatcher, Vectors, dimension_from_files
from bot.store import ArticleParts

SETTINGS = ChunkingSettings()


class RefusingEmbedder(FakeEmbedder):
    """The fake embedder's identity, but any call to embed fails: a build that needs no embedding passes."""

    def embed(self, texts: list[str]) -> Vectors:
        raise AssertionError(f"asked to embed {len(texts)} texts")


def _add_articles(corpus_dir: Path, count: int) -> None:
    for number in range(count):
        body = (
            f"Report number {number} from the northern district. The council met on Monday to discuss the roads.\n\n"
            f"Officials said item {number} would be funded next year."
        )
        write_article(corpus_dir, f"extra-{number:03d}.md", body, title=f"District report {number}")


def test_many_articles_are_embedded_in_few_calls(corpus_dir: Path, index_dir: Path) -> None:
    _add_articles(corpus_dir, 30)
    embedder = FakeEmbedder()
    report = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    assert report.documents == 32
    assert embedder.calls == 1  # 32 articles, far fewer texts than a batch: one call
    loaded = store.open_index(index_dir, embedder)
    # Every vector belongs to its own text, whatever batch it was embedded in.
    for chunk in range(len(loaded.data.chunks)):
        expected = FakeEmbedder().embed([loaded.data.chunk_search_text(chunk)])[0]
        assert np.allclose(loaded.data.chunk_vectors[chunk], expected, atol=1e-6)
    for sentence in range(len(loaded.data.sentences)):
        expected = FakeEmbedder().embed([loaded.data.sentence_text(sentence)])[0]
        assert np.allclose(loaded.data.sentence_vectors[sentence], expected, atol=1e-6)


def _with_vectors(parts: ArticleParts, texts: list[str]) -> ArticleParts:
    """An article as the build reuses it: with its vectors already made."""
    made = FakeEmbedder().embed(texts)
    chunks, sentences = len(parts.chunk_bounds), len(parts.sentence_spans)
    return dataclasses.replace(
        parts,
        chunk_vectors=made[:chunks],
        sentence_vectors=made[chunks : chunks + sentences],
        clause_vectors=made[chunks + sentences :],
    )


def _cuts(corpus_dir: Path) -> list[tuple[ArticleParts, list[str]]]:
    articles, _ = load_corpus(corpus_dir)
    cuts = [cut_article(article, SETTINGS) for article in articles]
    assert all(cut is not None for cut in cuts)
    return [cut for cut in cuts if cut is not None]


def test_small_batches_keep_vectors_in_article_order(corpus_dir: Path) -> None:
    _add_articles(corpus_dir, 6)
    articles, _ = load_corpus(corpus_dir)
    done: list[ArticleParts] = []
    # Batches of a few texts: articles are split across embedding calls, and every other one comes with its
    # vectors already made (as a reused article does), so reused and new articles interleave.
    pipeline = EmbeddingPipeline(done.append, FakeEmbedder(), batch_texts=3)
    for number, (parts, texts) in enumerate(_cuts(corpus_dir)):
        if number % 2:
            pipeline.add_reused(_with_vectors(parts, texts))
        else:
            pipeline.add_new(parts, texts)
    pipeline.finish()
    assert [p.document.doc_id for p in done] == [a.doc_id for a in articles]
    for parts in done:
        assert parts.sentence_vectors is not None and parts.chunk_vectors is not None
        expected = FakeEmbedder().embed([parts.document.text[start:end] for start, end in parts.sentence_spans])
        assert np.allclose(parts.sentence_vectors, expected, atol=1e-6)
        assert len(parts.chunk_vectors) == len(parts.chunk_bounds)


def test_reused_articles_behind_a_new_one_are_not_held_until_the_end(corpus_dir: Path) -> None:
    """One changed article among many unchanged ones: those after it are handed on as the batch fills, not kept
    (with their vectors) until the pipeline finishes."""
    _add_articles(corpus_dir, 40)
    cuts = _cuts(corpus_dir)
    done: list[ArticleParts] = []
    batch = 64
    pipeline = EmbeddingPipeline(done.append, FakeEmbedder(), batch_texts=batch)
    pipeline.add_new(*cuts[0])
    for parts, texts in cuts[1:]:
        pipeline.add_reused(_with_vectors(parts, texts))
    held = [texts for _, texts in cuts[len(done) :]]
    assert sum(map(len, held)) < batch + max(len(texts) for _, texts in cuts)
    pipeline.finish()
    assert [p.document.doc_id for p in done] == [parts.document.doc_id for parts, _ in cuts]


def test_reused_articles_with_nothing_queued_are_written_at_once(corpus_dir: Path) -> None:
    _add_articles(corpus_dir, 5)
    done: list[ArticleParts] = []
    pipeline = EmbeddingPipeline(done.append, FakeEmbedder())
    for number, (parts, texts) in enumerate(_cuts(corpus_dir)):
        pipeline.add_reused(_with_vectors(parts, texts))
        assert len(done) == number + 1


@pytest.mark.parametrize(
    "broken",
    [
        lambda p: dataclasses.replace(p, sentence_vectors=None),
        lambda p: dataclasses.replace(p, chunk_vectors=p.chunk_vectors[:-1]),
        lambda p: dataclasses.replace(p, clause_vectors=np.zeros((len(p.clause_sentences), 7), np.float32)),
        lambda p: dataclasses.replace(
            p, sentence_vectors=p.sentence_vectors.reshape(-1, 2 * p.sentence_vectors.shape[1])
        ),
        lambda p: dataclasses.replace(p, multilingual_vectors=p.sentence_vectors),
    ],
    ids=["missing", "a row short", "another width", "rows folded", "multilingual unasked"],
)
def test_a_version_refuses_vectors_that_do_not_match_the_rows(
    corpus_dir: Path, tmp_path: Path, broken: Callable[[ArticleParts], ArticleParts]
) -> None:
    _add_articles(corpus_dir, 2)
    parts = [_with_vectors(*cut) for cut in _cuts(corpus_dir) if len(cut[0].sentence_spans) % 2 == 0]
    writer = store.VersionWriter(tmp_path, FakeEmbedder().dimension)
    writer.add(parts[0])
    with pytest.raises(ValueError, match=parts[1].document.doc_id):
        writer.add(broken(parts[1]))
    writer.abandon()


def test_a_build_streams_what_it_writes(corpus_dir: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What grows with the corpus goes to files as it comes: bm25s's in-memory indexing (every passage's tokens at
    once) is never used, and no scratch file is left."""
    _add_articles(corpus_dir, 12)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the build held something whole that it should stream")

    monkeypatch.setattr(bm25s.BM25, "index", refuse)
    embedder = FakeEmbedder()
    report = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    monkeypatch.undo()
    version = index_dir / str(report.version)
    assert not (version / ".scratch").exists()
    assert [p.name for p in index_dir.iterdir() if p.name.startswith(".build-")] == []
    loaded = store.open_index(index_dir, embedder)
    data = loaded.data
    assert len(data.documents) == report.documents == 14
    # Every row, text and vector is where the index says it is.
    for sentence in range(len(data.sentences)):
        expected = FakeEmbedder().embed([data.sentence_text(sentence)])[0]
        assert np.allclose(data.sentence_vectors[sentence], expected, atol=1e-6)
    word = english.terms(data.chunk_search_text(len(data.chunks) - 1))[-1]
    assert len(data.chunks) - 1 in loaded.lexical_search([word], len(data.chunks))


def test_nothing_changed_needs_no_embedding(corpus_dir: Path, index_dir: Path) -> None:
    build_index(corpus_dir, index_dir, FakeEmbedder(), SETTINGS)
    report = build_index(corpus_dir, index_dir, RefusingEmbedder(), SETTINGS)
    assert report.up_to_date
    assert report.documents == 2 and report.chunks > 0 and report.sentences > 0


def test_unchanged_size_and_time_are_not_hashed_again(corpus_dir: Path) -> None:
    files = scan(corpus_dir)
    known = {f.name: (f.size, f.mtime_ns, "recorded-hash") for f in files}
    assert {f.sha256 for f in scan(corpus_dir, known)} == {"recorded-hash"}
    touched = files[0].path
    os.utime(touched, ns=(files[0].mtime_ns + 10**9, files[0].mtime_ns + 10**9))
    rescanned = {f.name: f.sha256 for f in scan(corpus_dir, known)}
    assert rescanned[files[0].name] == files[0].sha256  # its time changed: hashed again
    assert rescanned[files[1].name] == "recorded-hash"


def test_edited_article_is_rebuilt_after_a_no_change_check(corpus_dir: Path, index_dir: Path) -> None:
    embedder = FakeEmbedder()
    build_index(corpus_dir, index_dir, embedder, SETTINGS)
    path = sorted(corpus_dir.glob("*.md"))[0]
    path.write_text(path.read_text(encoding="utf-8") + "\nA late correction was added on Tuesday.\n", encoding="utf-8")
    report = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    assert report.changed == [path.name]
    manifest = store.read_manifest(index_dir / str(report.version))
    assert manifest.known_files[path.name][2] == manifest.documents[path.name]["content_hash"]


def test_damaged_version_is_not_taken_as_up_to_date(corpus_dir: Path, index_dir: Path) -> None:
    embedder = FakeEmbedder()
    first = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    (index_dir / str(first.version) / store.CLAUSE_VECTORS).write_bytes(b"damaged")
    report = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    assert not report.up_to_date and report.version != first.version


def test_a_version_holding_something_foreign_is_not_taken_as_up_to_date(corpus_dir: Path, index_dir: Path) -> None:
    embedder = FakeEmbedder()
    first = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    (index_dir / str(first.version) / "junk").mkdir()  # opening refuses it: a rebuild must not keep it
    report = build_index(corpus_dir, index_dir, embedder, SETTINGS)
    assert not report.up_to_date and report.version != first.version
    store.open_index(index_dir, embedder)


def test_dimension_is_read_from_the_model_files(tmp_path: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 384}))
    assert dimension_from_files(tmp_path) == 384
    dense = [*modules, {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}]
    (tmp_path / "modules.json").write_text(json.dumps(dense))
    assert dimension_from_files(tmp_path) is None  # a Dense layer changes it: the model must say
    assert dimension_from_files(tmp_path / "missing") is None


def _held_encoder() -> tuple[list[list[str]], threading.Event, threading.Event, Callable[[list[str]], Vectors]]:
    """An encoder that records each call's texts and holds the first call until `release` is set (it sets
    `first_started` when it begins), so that callers arriving meanwhile queue up."""
    calls: list[list[str]] = []
    first_started, release = threading.Event(), threading.Event()

    def encode(texts: list[str]) -> Vectors:
        calls.append(list(texts))
        if len(calls) == 1:
            first_started.set()
            release.wait(5)
        return np.array([[float(len(text)), float(text.count("a"))] for text in texts], dtype=np.float32)

    return calls, first_started, release, encode


def test_question_batcher_embeds_concurrent_questions_together() -> None:
    calls, first_started, release, encode = _held_encoder()
    batcher = QuestionBatcher(encode, max_batch=8)
    texts = ["a", "bb", "aaa", "dddd", "eeeee", "aa"]
    results: dict[str, Vectors] = {}

    def ask(text: str) -> None:
        results[text] = batcher.embed(text)

    first = threading.Thread(target=ask, args=(texts[0],))
    first.start()
    assert first_started.wait(5)
    others = [threading.Thread(target=ask, args=(text,)) for text in texts[1:]]
    for thread in others:
        thread.start()
    while sum(len(batch) for batch in calls) == 1 and len(batcher._pending) < len(texts) - 1:
        threading.Event().wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert calls[0] == ["a"]
    assert sorted(text for batch in calls[1:] for text in batch) == sorted(texts[1:])
    assert len(calls) == 2  # the five that arrived during the first encode shared the second
    for text in texts:
        assert results[text].tolist() == [float(len(text)), float(text.count("a"))]


def test_question_batcher_gives_every_caller_the_error() -> None:
    def encode(texts: list[str]) -> Vectors:
        raise RuntimeError("model failed")

    batcher = QuestionBatcher(encode, max_batch=4)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.embed("anything")
    with pytest.raises(RuntimeError, match="model failed"):  # and the batcher is not left stuck
        batcher.embed("again")


def test_question_batcher_keeps_each_callers_texts_together_and_in_order() -> None:
    calls, first_started, release, encode = _held_encoder()
    batcher = QuestionBatcher(encode, max_batch=4)
    asked = {"question": ["a question"], "words": ["aa", "b", "aaa"], "more": ["c", "dd"], "big": list("abcdef")}
    results: dict[str, Vectors] = {}

    def ask(name: str) -> None:
        results[name] = batcher.embed_many(asked[name])

    first = threading.Thread(target=ask, args=("question",))
    first.start()
    assert first_started.wait(5)
    others = []
    for name in ("words", "more", "big"):  # queued in this order while the first encode runs
        others.append(threading.Thread(target=ask, args=(name,)))
        others[-1].start()
        while not any(request.texts is asked[name] for request in batcher._pending):
            threading.Event().wait(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    # Three words fit with the question's batch limit of four, the next two would not; six never split.
    assert calls == [["a question"], ["aa", "b", "aaa"], ["c", "dd"], list("abcdef")]
    for name, texts in asked.items():
        assert results[name].tolist() == [[float(len(text)), float(text.count("a"))] for text in texts]
