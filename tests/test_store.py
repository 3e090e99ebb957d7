"""bot.store: the index directory format, its manifest, verification and errors when opening it."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEmbedder, read_manifest, version_dir, write_manifest

from bot import ann, store
from bot.chunking import CHUNKER_VERSION, ChunkingSettings, chunk_sentences, split_clauses, split_sentences
from bot.cleaning import CLEANER_VERSION
from bot.corpus import load_corpus
from bot.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexStoreError


def _index_files(index_dir: Path) -> list[str]:
    directory = version_dir(index_dir)
    return sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and p.name != store.MANIFEST
    )


# Files every version holds (the bm25/ folder holds several, whatever bm25s names them).
CORE_FILES = [store.FAISS_FILE, store.SENTENCE_VECTORS, store.CLAUSE_VECTORS, store.SQLITE_FILE]


def test_layout(built_index: Path) -> None:
    directory = version_dir(built_index)
    assert directory.name.startswith("v-")
    assert (built_index / store.CURRENT).read_text(encoding="utf-8").strip() == directory.name
    for name in [*CORE_FILES, store.MANIFEST]:
        assert (directory / name).is_file(), name
    assert (directory / store.BM25_DIR).is_dir()
    assert any((directory / store.BM25_DIR).iterdir())


def test_manifest_contents(built_index: Path, corpus_dir: Path, fake_embedder: FakeEmbedder) -> None:
    manifest = read_manifest(built_index)
    directory = version_dir(built_index)
    assert manifest["format_version"] == store.FORMAT_VERSION
    assert manifest["version"] == directory.name
    assert manifest["model"] == {
        "name": fake_embedder.name,
        "fingerprint": fake_embedder.fingerprint,
        "dimension": fake_embedder.dimension,
    }
    assert manifest["chunking"] == {
        "max_words": 110,
        "overlap_sentences": 1,
        "cleaner_version": CLEANER_VERSION,
        "chunker_version": CHUNKER_VERSION,
    }
    assert manifest["faiss_index"] == "IndexFlatIP"

    built_at = dt.datetime.fromisoformat(manifest["built_at"])
    assert built_at.utcoffset() == dt.timedelta(0)
    assert built_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    # The version is named after the time it was published, just after the manifest was made.
    published = dt.datetime.strptime(directory.name.split("-")[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC)
    assert dt.timedelta(seconds=-1) <= published - built_at <= dt.timedelta(seconds=60)

    corpus_files = sorted(p.name for p in corpus_dir.glob("*.md"))
    assert sorted(manifest["documents"]) == corpus_files
    for name, entry in manifest["documents"].items():
        assert entry["content_hash"] == hashlib.sha256((corpus_dir / name).read_bytes()).hexdigest()
        assert entry["sentences"] > 0
        assert entry["chunks"] > 0
    counts = manifest["counts"]
    assert counts["documents"] == len(corpus_files)
    assert counts["sentences"] == sum(e["sentences"] for e in manifest["documents"].values())
    assert counts["chunks"] == sum(e["chunks"] for e in manifest["documents"].values())
    assert manifest["skipped"] == {}

    # Every file of the version is listed with its true SHA-256, and nothing else is.
    assert sorted(manifest["files"]) == _index_files(built_index)
    for name, digest in manifest["files"].items():
        assert digest == hashlib.sha256((directory / name).read_bytes()).hexdigest(), name


def test_open_index_round_trip(built_index: Path, corpus_dir: Path, fake_embedder: FakeEmbedder) -> None:
    loaded = store.open_index(built_index, fake_embedder)
    manifest = read_manifest(built_index)
    assert loaded.version == manifest["version"]
    assert loaded.manifest.raw == manifest
    data = loaded.data

    articles, _ = load_corpus(corpus_dir)
    assert [d.doc_id for d in data.documents] == sorted(a.doc_id for a in articles)
    by_id = {a.doc_id: a for a in articles}
    for number, document in enumerate(data.documents):
        article = by_id[document.doc_id]
        assert (document.title, document.publisher, document.published, document.url) == (
            article.title,
            article.publisher,
            article.published,
            article.url,
        )
        assert document.text == article.text
        assert document.content_hash == article.content_hash
        spans = [(s.start, s.end) for s in data.sentences if s.document == number]
        assert spans == split_sentences(article.text)
        own_sentences = [i for i, s in enumerate(data.sentences) if s.document == number]
        first = own_sentences[0]
        chunks = [(c.first_sentence - first, c.last_sentence - first) for c in data.chunks if c.document == number]
        expected = chunk_sentences(spans, article.text, ChunkingSettings())
        assert chunks == [(c.first_sentence, c.last_sentence) for c in expected]
        assert [c.position for c in data.chunks if c.document == number] == list(range(len(expected)))

    assert len(data.sentences) == manifest["counts"]["sentences"]
    assert len(data.chunks) == manifest["counts"]["chunks"] == loaded.faiss_index.ntotal

    # The vectors are the embedder's vectors of exactly the texts the index says they belong to.
    chunk_texts = [data.chunk_search_text(i) for i in range(len(data.chunks))]
    np.testing.assert_allclose(data.chunk_vectors, fake_embedder.embed(chunk_texts), atol=1e-6)
    sentence_texts = [data.sentence_text(i) for i in range(len(data.sentences))]
    np.testing.assert_allclose(data.sentence_vectors, fake_embedder.embed(sentence_texts), atol=1e-6)
    clauses = [(i, c) for i, text in enumerate(sentence_texts) for c in split_clauses(text)]
    assert clauses, "the corpus has long sentences with clauses"
    assert list(data.clause_sentences) == [i for i, _ in clauses]
    np.testing.assert_allclose(data.clause_vectors, fake_embedder.embed([c for _, c in clauses]), atol=1e-6)
    assert data.chunk_vectors.dtype == data.sentence_vectors.dtype == np.float32

    # The lexical index covers every chunk.
    assert len(loaded.bm25.get_scores(["nazarbaev"])) == len(data.chunks)


def test_chunk_text_is_sentence_run(built_index: Path) -> None:
    data = store.open_index(built_index).data
    for i, chunk in enumerate(data.chunks):
        text = data.chunk_text(i)
        assert text.startswith(data.sentence_text(chunk.first_sentence))
        assert text.endswith(data.sentence_text(chunk.last_sentence))
        assert data.chunk_search_text(i) == f"{data.documents[chunk.document].title}\n{text}"


def test_open_without_embedder_skips_model_check(built_index: Path) -> None:
    loaded = store.open_index(built_index)
    assert loaded.faiss_index.ntotal == len(loaded.data.chunks)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _all_files(index_dir: Path) -> list[str]:
    return _index_files(index_dir)


@pytest.mark.parametrize("name", [*CORE_FILES, "bm25/*"])
def test_flipped_byte_is_detected(built_index: Path, fake_embedder: FakeEmbedder, name: str) -> None:
    directory = version_dir(built_index)
    targets = sorted((directory / store.BM25_DIR).iterdir()) if name == "bm25/*" else [directory / name]
    for target in targets:
        original = target.read_bytes()
        _flip_byte(target)
        with pytest.raises(IndexCorruptError) as caught:
            store.open_index(built_index, fake_embedder)
        assert target.relative_to(directory).as_posix() in str(caught.value)
        assert "altered" in str(caught.value)
        target.write_bytes(original)
    store.open_index(built_index, fake_embedder)  # restored: opens again


@pytest.mark.parametrize("name", [*CORE_FILES, "bm25/*"])
def test_deleted_file_is_detected(built_index: Path, fake_embedder: FakeEmbedder, name: str) -> None:
    directory = version_dir(built_index)
    target = sorted((directory / store.BM25_DIR).iterdir())[0] if name == "bm25/*" else directory / name
    target.unlink()
    with pytest.raises(IndexCorruptError) as caught:
        store.open_index(built_index, fake_embedder)
    assert target.relative_to(directory).as_posix() in str(caught.value)


def test_extra_file_is_detected(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    (version_dir(built_index) / "stray.bin").write_bytes(b"not part of the index")
    with pytest.raises(IndexCorruptError, match=r"stray\.bin"):
        store.open_index(built_index, fake_embedder)


def test_missing_manifest(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    (version_dir(built_index) / store.MANIFEST).unlink()
    with pytest.raises(IndexCorruptError, match=r"manifest\.json"):
        store.open_index(built_index, fake_embedder)


@pytest.mark.parametrize("damage", ["truncate", "flip", "binary"])
def test_damaged_manifest(built_index: Path, fake_embedder: FakeEmbedder, damage: str) -> None:
    path = version_dir(built_index) / store.MANIFEST
    text = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(text[: len(text) // 2])
    elif damage == "flip":
        path.write_bytes(text.replace(b"{", b"[", 1))
    else:
        path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(IndexCorruptError, match="manifest"):
        store.open_index(built_index, fake_embedder)


@pytest.mark.parametrize("content", ["[]", "null", '"manifest"'])
def test_manifest_that_is_not_an_object(built_index: Path, fake_embedder: FakeEmbedder, content: str) -> None:
    (version_dir(built_index) / store.MANIFEST).write_text(content, encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        store.open_index(built_index, fake_embedder)


def test_manifest_without_file_list(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    manifest = read_manifest(built_index)
    del manifest["files"]
    write_manifest(built_index, manifest)
    with pytest.raises(IndexCorruptError, match=r"garbled.*files.*build --full"):
        store.open_index(built_index, fake_embedder)


def _replace_with_matching_hash(index_dir: Path, name: str, content: bytes) -> None:
    """Damage a file *and* update the manifest, to test the checks behind the checksums."""
    directory = version_dir(index_dir)
    (directory / name).write_bytes(content)
    manifest = read_manifest(index_dir)
    manifest["files"][name] = hashlib.sha256(content).hexdigest()
    write_manifest(index_dir, manifest)


@pytest.mark.parametrize("name", CORE_FILES)
@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_unreadable_file_behind_valid_checksum(
    built_index: Path, fake_embedder: FakeEmbedder, name: str, damage: str
) -> None:
    original = (version_dir(built_index) / name).read_bytes()
    content = b"garbage!" * 16 if damage == "garbage" else original[: len(original) // 2]
    _replace_with_matching_hash(built_index, name, content)
    with pytest.raises(IndexCorruptError, match="cannot be read"):
        store.open_index(built_index, fake_embedder)


def test_bm25_garbage_behind_valid_checksum(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    for path in sorted((version_dir(built_index) / store.BM25_DIR).iterdir()):
        name = path.relative_to(version_dir(built_index)).as_posix()
        original = path.read_bytes()
        _replace_with_matching_hash(built_index, name, b"garbage!" * 16)
        with pytest.raises(IndexCorruptError):
            store.open_index(built_index, fake_embedder)
        _replace_with_matching_hash(built_index, name, original)
    store.open_index(built_index, fake_embedder)


def test_vector_count_mismatch_behind_valid_checksum(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    directory = version_dir(built_index)
    vectors = np.load(directory / store.SENTENCE_VECTORS)
    path = directory / "short.npy"
    np.save(path, vectors[:-1])
    content = path.read_bytes()
    path.unlink()
    _replace_with_matching_hash(built_index, store.SENTENCE_VECTORS, content)
    with pytest.raises(IndexCorruptError, match="vector counts"):
        store.open_index(built_index, fake_embedder)


def test_current_names_missing_version(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    (built_index / store.CURRENT).write_text("v-does-not-exist\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="v-does-not-exist"):
        store.open_index(built_index, fake_embedder)


def test_other_model_is_a_mismatch(built_index: Path) -> None:
    other = FakeEmbedder(name="another-model")
    with pytest.raises(IndexMismatchError) as caught:
        store.open_index(built_index, other)
    message = str(caught.value)
    assert "fake-hash-embedder" in message
    assert "another-model" in message
    assert "--full" in message


def test_other_dimension_is_a_mismatch(built_index: Path) -> None:
    with pytest.raises(IndexMismatchError, match="128"):
        store.open_index(built_index, FakeEmbedder(dimension=128))


def test_same_fingerprint_other_dimension_is_a_mismatch(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    impostor = FakeEmbedder(dimension=fake_embedder.dimension + 1)
    impostor.fingerprint = fake_embedder.fingerprint
    with pytest.raises(IndexMismatchError):
        store.open_index(built_index, impostor)


def test_other_format_version_is_a_mismatch(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    manifest = read_manifest(built_index)
    manifest["format_version"] = store.FORMAT_VERSION + 1
    write_manifest(built_index, manifest)
    with pytest.raises(IndexMismatchError, match="format"):
        store.open_index(built_index, fake_embedder)


def test_missing_index(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    with pytest.raises(IndexMissingError, match="build"):
        store.open_index(tmp_path / "nowhere", fake_embedder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissingError):
        store.open_index(tmp_path / "empty", fake_embedder)
    (tmp_path / "empty" / store.CURRENT).write_text("\n", encoding="utf-8")
    with pytest.raises(IndexMissingError):
        store.open_index(tmp_path / "empty", fake_embedder)
    assert store.current_version(tmp_path / "nowhere") is None


def test_errors_share_a_base_class() -> None:
    for error in (IndexMissingError, IndexCorruptError, IndexMismatchError):
        assert issubclass(error, IndexStoreError)


def test_open_named_version(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    version = version_dir(built_index).name
    (built_index / store.CURRENT).unlink()
    with pytest.raises(IndexMissingError):
        store.open_index(built_index, fake_embedder)
    assert store.open_index(built_index, fake_embedder, version=version).version == version


def test_faiss_index_exact_search() -> None:
    embedder = FakeEmbedder(dimension=32)
    vectors = embedder.embed(["tram line approved", "floods in the valley", "election boycott"])
    spec = ann.choose(len(vectors), vectors.shape[1])
    index = ann.build(vectors, spec)
    assert ann.faiss_type(index) == "IndexFlatIP"
    assert index.ntotal == 3
    scores, labels = index.search(vectors[1:2], 3)
    assert int(labels[0][0]) == 1
    assert float(scores[0][0]) == pytest.approx(1.0, abs=1e-5)


def test_a_version_written_without_search_indexes_reads_back_article_by_article(
    built_index: Path, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    """`VersionWriter(searchable=False)` (the PostgreSQL store's local copies): every row, text and vector kept,
    no FAISS or lexical index; its articles read the same through its maps and through `VersionFiles`."""
    index = store.open_index(built_index, fake_embedder)
    directory = tmp_path / "copy"
    directory.mkdir()
    writer = store.VersionWriter(directory, fake_embedder.dimension, searchable=False)
    for number in range(len(index.data.documents)):
        writer.add(index.data.article_parts(number))
    writer.finish({**index.manifest.raw, "version": directory.name})
    assert not (directory / store.FAISS_FILE).exists() and not (directory / store.BM25_DIR).exists()
    copy = store.read_data(directory, store.read_manifest(directory))
    assert store.damaged_files(directory, store.read_manifest(directory), full=True) == []
    assert copy.term_statistics == index.data.term_statistics
    files = store.VersionFiles(directory, copy)
    # The index's own files lack the chunk vectors (FAISS holds them): those come from FAISS's storage.
    index_files = store.VersionFiles(version_dir(built_index), index.data)
    assert not index_files.has(store.CHUNK_VECTORS) and files.has(store.CHUNK_VECTORS)
    for number in range(len(copy.documents)):
        mapped, read = copy.article_parts(number), copy.article_parts(number, files=files)
        original = index.data.article_parts(number)
        for parts in (mapped, read, index.data.article_parts(number, files=index_files)):
            assert parts.document == original.document
            assert (parts.sentence_spans, parts.chunk_bounds, parts.clause_sentences) == (
                original.sentence_spans,
                original.chunk_bounds,
                original.clause_sentences,
            )
            for name in ("chunk_vectors", "sentence_vectors", "clause_vectors"):
                assert np.array_equal(getattr(parts, name), getattr(original, name)), name
    files.close()
    index_files.close()
