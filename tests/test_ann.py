"""bot.ann: the FAISS index kind chosen by size, its recall, and vectors held once; through bot.store: what the
manifest records, old manifests, and damaged files refused without hashing every byte at each open."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from fakes import FakeEmbedder, read_manifest, version_dir, write_manifest

from bot import ann, store
from bot.embedding import Vectors
from bot.errors import IndexCorruptError, IndexMismatchError

DIMENSION = 64
# Small thresholds, injected: the choice is tested at a few hundred vectors, not at 20,000.
SMALL = ann.AnnPolicy(exact_max=300, graph_max=600, sq8_max=900)


def _clustered(count: int, seed: int = 3) -> Vectors:
    """Unit vectors in clusters (centres plus noise), the way embeddings of related passages lie."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(4, count // 40), DIMENSION))
    rows = centres[rng.integers(0, len(centres), count)] + 0.35 * rng.standard_normal((count, DIMENSION))
    vectors: Vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return vectors


@pytest.mark.parametrize(
    ("count", "policy"),
    [(200, SMALL), (2000, ann.AnnPolicy(0, 0, 10**6)), (5000, SMALL)],
    ids=["flat", "ivf-sq8", "ivf-pq"],
)
def test_an_index_is_built_as_faiss_itself_adds(
    count: int, policy: ann.AnnPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`build` adds the vectors a block at a time and fills an IVF-SQ8 index's lists itself (each sized first, to
    hold no spare memory): the index must be the one FAISS's own `add` of all vectors at once makes, byte for
    byte, across many blocks. (HNSW is left out: its graph depends on how the vectors are grouped into adds.)"""
    monkeypatch.setattr(ann, "BLOCK_ROWS", 96)
    vectors = _clustered(count)
    spec = ann.choose(count, DIMENSION, policy)
    reference: Any = faiss.index_factory(DIMENSION, spec.factory, faiss.METRIC_INNER_PRODUCT)
    if spec.kind == ann.HNSW:
        reference.hnsw.efConstruction = spec.build["efConstruction"]
    if not reference.is_trained:
        reference.train(ann._training_sample(vectors, spec.build["nlist"] * ann.IVF_TRAINING_PER_LIST))
    reference.add(vectors)
    ann.configure(reference, spec)
    built = ann.build(vectors, spec)
    assert built.ntotal == count
    assert np.array_equal(faiss.serialize_index(built), faiss.serialize_index(reference))


@pytest.mark.parametrize(
    ("count", "kind"),
    [(10, ann.FLAT), (300, ann.FLAT), (301, ann.HNSW), (600, ann.HNSW), (601, ann.IVF_SQ8), (901, ann.IVF_PQ)],
)
def test_kind_chosen_by_size(count: int, kind: str) -> None:
    assert ann.choose(count, DIMENSION, SMALL).kind == kind


def test_too_few_vectors_to_train_get_the_graph() -> None:
    assert ann.choose(ann.IVF_MIN_VECTORS - 1, DIMENSION, ann.AnnPolicy(0, 0, 0)).kind == ann.HNSW


def test_default_policy_is_exact_while_small() -> None:
    assert ann.choose(20_000, 384).kind == ann.FLAT
    assert ann.choose(20_001, 384).kind == ann.HNSW


def test_parameters_grow_with_size() -> None:
    small, large = (ann.choose(n, 384, ann.AnnPolicy(0, 0, 0)) for n in (10_000, 1_000_000))
    assert small.build["nlist"] < large.build["nlist"] and small.search["nprobe"] <= large.search["nprobe"]
    assert large.factory == f"IVF{large.build['nlist']},PQ192x4fs"  # 4-bit codes, one per 2 dimensions
    assert ann.pq_codes(64) == 32 and ann.pq_codes(384) == 192


@pytest.mark.parametrize("kind", [ann.HNSW, ann.IVF_SQ8, ann.IVF_PQ])
def test_approximate_kinds_find_what_exact_search_finds(kind: str) -> None:
    vectors, queries = _clustered(1200), _clustered(50, seed=4)
    policy = {
        ann.HNSW: ann.AnnPolicy(0, 10_000, 10_000),
        ann.IVF_SQ8: ann.AnnPolicy(0, 0, 10_000),
        ann.IVF_PQ: ann.AnnPolicy(0, 0, 0),
    }[kind]
    spec = ann.choose(len(vectors), DIMENSION, policy)
    assert spec.kind == kind
    index = ann.build(vectors, spec)
    _, found = ann.search(index, vectors, queries, 10, spec)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95


def test_reranked_scores_are_exact_cosines() -> None:
    vectors, query = _clustered(400), _clustered(1, seed=5)
    spec = ann.choose(len(vectors), DIMENSION, ann.AnnPolicy(0, 0, 0))
    scores, labels = ann.search(ann.build(vectors, spec), vectors, query, 5, spec)
    np.testing.assert_allclose(scores[0], vectors[labels[0]] @ query[0], rtol=1e-6)
    assert list(scores[0]) == sorted(scores[0], reverse=True)


def test_flat_and_hnsw_vectors_are_a_view_on_faiss_storage() -> None:
    vectors = _clustered(400)
    for policy in (SMALL, ann.AnnPolicy(0, 10_000, 10_000)):
        index = ann.build(vectors, ann.choose(len(vectors), DIMENSION, policy))
        view = ann.stored_vectors(index)
        assert view is not None and not view.flags.owndata and not view.flags.writeable
        np.testing.assert_array_equal(view, vectors)
        # Two views share FAISS's memory; a copy (reconstruct_n, as before) would not.
        assert np.shares_memory(view, ann.stored_vectors(index))
        assert not np.shares_memory(view, index.reconstruct_n(0, index.ntotal))
        del index  # the view keeps the index alive
        assert float(view[0] @ vectors[0]) == pytest.approx(1.0, abs=1e-5)


# --- Through the store --------------------------------------------------------------------------------------


def _rewrite_version(
    index_dir: Path, policy: ann.AnnPolicy, at_least: int, version: str = "v-bigger", source: str | None = None
) -> Path:
    """The built index's articles (of version `source`, by default the current one) repeated until there are
    `at_least` chunks (enough for an IVF index), written as a new `version` under `policy` and made current."""
    loaded = store.open_index(index_dir, version=source)
    data = loaded.data
    copies = -(-at_least // len(data.chunks))
    directory = index_dir / version
    directory.mkdir()
    manifest = {key: value for key, value in loaded.manifest.raw.items() if key not in ("files", "file_stats", "ann")}
    manifest["version"] = version
    writer = store.VersionWriter(directory, data.chunk_vectors.shape[1])
    documents = {}
    # Each copy's chunk vectors are nudged apart, so that the copies are distinct neighbours.
    rng = np.random.default_rng(0)
    for copy in range(copies):
        for number in range(len(data.documents)):
            parts = data.article_parts(number, multilingual=False)
            assert parts.chunk_vectors is not None
            nudged = parts.chunk_vectors + 0.05 * rng.standard_normal(parts.chunk_vectors.shape)
            document = dataclasses.replace(parts.document, doc_id=f"{copy}-{parts.document.doc_id}")
            writer.add(
                dataclasses.replace(
                    parts,
                    document=document,
                    chunk_vectors=(nudged / np.linalg.norm(nudged, axis=1, keepdims=True)).astype(np.float32),
                )
            )
            documents[document.doc_id] = {"content_hash": document.content_hash}
    manifest["documents"] = documents
    writer.finish(manifest, policy)
    (index_dir / store.CURRENT).write_text(version, encoding="utf-8")
    return directory


def test_manifest_records_the_kind_and_its_parameters(built_index: Path) -> None:
    manifest = read_manifest(built_index)
    assert manifest["ann"] == {"kind": "flat", "factory": "Flat", "build": {}, "search": {}}
    assert manifest["faiss_index"] == "IndexFlatIP"
    directory = _rewrite_version(built_index, ann.AnnPolicy(0, 0, 10**6), at_least=ann.IVF_MIN_VECTORS)
    recorded = read_manifest(built_index)
    chunks = store.open_index(built_index).faiss_index.ntotal
    assert recorded["ann"] == ann.choose(chunks, FakeEmbedder().dimension, ann.AnnPolicy(0, 0, 10**6)).to_json()
    assert recorded["ann"]["kind"] == ann.IVF_SQ8 and recorded["ann"]["search"]["nprobe"] > 0
    assert recorded["faiss_index"] == "IndexIVFScalarQuantizer"
    assert store.CHUNK_VECTORS in recorded["files"] and (directory / store.CHUNK_VECTORS).is_file()


def test_search_parameters_are_set_on_load(built_index: Path) -> None:
    _rewrite_version(built_index, ann.AnnPolicy(0, 0, 10**6), at_least=ann.IVF_MIN_VECTORS)
    loaded = store.open_index(built_index)
    assert loaded.ann_spec.kind == ann.IVF_SQ8
    assert loaded.faiss_index.nprobe == loaded.ann_spec.search["nprobe"]
    _rewrite_version(built_index, ann.AnnPolicy(0, 10**6, 10**6), at_least=1, version="v-graph")
    loaded = store.open_index(built_index)
    assert loaded.faiss_index.hnsw.efSearch == loaded.ann_spec.search["efSearch"] == ann.HNSW_EF_SEARCH


def test_vectors_are_held_once(built_index: Path) -> None:
    loaded = store.open_index(built_index)
    data = loaded.data
    # The chunk vectors are FAISS's own storage, reached here another way than bot/ann.py reaches it.
    flat = faiss.downcast_index(loaded.faiss_index)
    pointer = flat.get_xb()  # type: ignore[attr-defined]
    storage = faiss.rev_swig_ptr(pointer, flat.ntotal * flat.d)
    assert np.shares_memory(data.chunk_vectors, storage)
    assert not data.chunk_vectors.flags.owndata and not data.chunk_vectors.flags.writeable
    for vectors in (data.sentence_vectors, data.clause_vectors):
        assert isinstance(vectors, np.memmap)
    _rewrite_version(built_index, ann.AnnPolicy(0, 0, 0), at_least=ann.IVF_MIN_VECTORS)
    compressed = store.open_index(built_index)
    assert compressed.ann_spec.kind == ann.IVF_PQ
    assert isinstance(compressed.data.chunk_vectors, np.memmap)
    assert compressed.data.chunk_vectors.shape == (compressed.faiss_index.ntotal, FakeEmbedder().dimension)


def test_a_compressed_index_finds_what_the_exact_one_finds(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    original = version_dir(built_index).name
    query = fake_embedder.embed(["opposition party congress arrested"])
    found = {}
    for name, policy in (("v-exact", ann.AnnPolicy(10**6, 10**6, 10**6)), ("v-pq", ann.AnnPolicy(0, 0, 0))):
        _rewrite_version(built_index, policy, at_least=ann.IVF_MIN_VECTORS, version=name, source=original)
        loaded = store.open_index(built_index)
        _, labels = ann.search(loaded.faiss_index, loaded.data.chunk_vectors, query, 10, loaded.ann_spec)
        found[loaded.ann_spec.kind] = set(labels[0])
    assert len(found[ann.IVF_PQ] & found[ann.FLAT]) >= 9


def test_damaged_large_file_is_refused(built_index: Path) -> None:
    directory = version_dir(built_index)
    manifest = store.read_manifest(directory)
    target = directory / store.FAISS_FILE
    assert store.damaged_files(directory, manifest, hash_at_open_max_bytes=0) == []
    content = bytearray(target.read_bytes())
    content[len(content) // 2] ^= 0xFF
    recorded_time = target.stat().st_mtime_ns
    target.write_bytes(bytes(content))
    os.utime(target, ns=(recorded_time + 1_000_000, recorded_time + 1_000_000))
    # Same size, another modification time: hashed, and refused.
    assert store.damaged_files(directory, manifest, hash_at_open_max_bytes=0) == [store.FAISS_FILE]
    # The trade-off: an edit that restores the recorded time is taken on trust at open, found by `verify`.
    os.utime(target, ns=(recorded_time, recorded_time))
    assert store.damaged_files(directory, manifest, hash_at_open_max_bytes=0) == []
    assert store.damaged_files(directory, manifest, full=True) == [store.FAISS_FILE]
    with pytest.raises(IndexCorruptError, match=r"chunks\.faiss.*build --full"):
        store.verify_version(built_index)


def test_verify_passes_an_intact_index(built_index: Path) -> None:
    assert store.verify_version(built_index) == version_dir(built_index).name


def test_manifest_of_the_previous_format_still_opens(built_index: Path, fake_embedder: FakeEmbedder) -> None:
    manifest = read_manifest(built_index)
    del manifest["ann"], manifest["file_stats"]
    write_manifest(built_index, manifest)
    loaded = store.open_index(built_index, fake_embedder)
    assert loaded.ann_spec == ann.AnnSpec(ann.FLAT, "Flat")
    assert ann.spec_from_manifest({"faiss_index": "IndexHNSWFlat(M=32)"}) == ann.AnnSpec(
        ann.HNSW, "HNSW32,Flat", {"M": 32, "efConstruction": 80}, {"efSearch": ann.HNSW_EF_SEARCH}
    )


@pytest.mark.parametrize(
    "change",
    [
        {"faiss_index": "IndexLSH"},
        {"faiss_index": "IndexLSH", "ann": {"kind": "lsh", "factory": "LSH"}},
        {"ann": {"kind": "hnsw", "factory": "HNSW32,Flat", "search": {"efSearch": "many"}}},
    ],
)
def test_unknown_index_kind_is_refused_with_the_way_out(
    built_index: Path, fake_embedder: FakeEmbedder, change: dict[str, Any]
) -> None:
    manifest = read_manifest(built_index)
    manifest.pop("ann")
    write_manifest(built_index, {**manifest, **change})
    with pytest.raises(IndexMismatchError, match="build --full"):
        store.open_index(built_index, fake_embedder)
