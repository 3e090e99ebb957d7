"""The approximate-nearest-neighbour index over chunk vectors: which FAISS index a corpus gets, how it is
searched, and where its vectors live.

The kind is chosen by the number of chunks (`AnnPolicy`), and the manifest records it with every parameter
(`AnnSpec`), so that a reader searches an index exactly as it was meant to be searched:

- **flat** (`Flat`, up to 20,000 chunks): exact search, while a scan of every vector is fast.
- **hnsw** (`HNSW32,Flat`, up to 200,000 chunks): a graph over the full vectors, needing no training, so its
  recall does not depend on how well clusters fit the corpus; but it takes 1.8 KB a passage (384 dimensions),
  held whole while it is built, and its build grows fastest (230 s at 100k on two busy cores, against 24 s for
  IVF-SQ8).
- **ivf-sq8** (`IVF<nlist>,SQ8`, up to 10 million): vectors clustered, stored as one byte per dimension (400 B a
  passage); as fast as HNSW at 100k in the bench, at the same recall.
- **ivf-pq** (`IVF<nlist>,PQ<m>x4fs`): vectors clustered and stored as `m` 4-bit codes, one per two
  dimensions (FAISS's fast-scan layout: 96 bytes at 384 dimensions, 1/16 of the memory).

The compressed kinds only *find* candidates: `search` takes `rerank` times as many as asked and orders them by
their exact cosine, read from the full vectors in a memory-mapped `.npy` beside the index (the few rows a query
touches are paged in; the rest stay on disk). The thresholds and parameters come from `bench/search_scale.py`
(see `bench/results/search_scale-10000-100000.md`, `-1000000.md`, `-500000-hnsw.md`): every recorded setting
holds recall@10 against exact search at 0.95 or more on the clustered synthetic vectors measured there.

Vectors are held once: Flat and HNSW store them exactly, so `stored_vectors` is a read-only view on FAISS's
own storage; the compressed kinds get theirs from the memory-mapped file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bot.embedding import Vectors
from bot.spool import BLOCK_ROWS, NpyRows

FLAT = "flat"
HNSW = "hnsw"
IVF_SQ8 = "ivf-sq8"
IVF_PQ = "ivf-pq"
COMPRESSED_KINDS = frozenset({IVF_SQ8, IVF_PQ})

# Links per vector in the HNSW graph: 32 is FAISS's usual choice for high recall at 384 dimensions (the wiki's
# range is 4-64; memory grows by 8 bytes a link).
HNSW_LINKS = 32
# Graph quality at build time; 80 reached recall 0.95 at a lower efSearch than FAISS's default 40 (bench).
HNSW_EF_CONSTRUCTION = 80
# Candidates kept while walking the graph at search time. Recall falls as the graph grows: at 500,000 passages
# (HNSW's largest size before `AnnPolicy.graph_max` was lowered to 200,000), 64 held recall@10 at 0.961 and 128
# at 0.981, for a median 0.29 and 0.45 ms (bench/results/search_scale-500000-hnsw.md, -1000000-hnsw.md;
# synthetic vectors, so keep the margin for real text).
HNSW_EF_SEARCH = 128
# k-means sees this many vectors per cluster when the IVF index is trained (FAISS warns under 39; more costs
# minutes at 1M vectors on two cores and did not raise recall in the bench).
IVF_TRAINING_PER_LIST = 40
# Lists visited per query, as a share of all lists (nlist / IVF_PROBE_DIVISOR, at least IVF_MIN_PROBES). In the
# bench, 4-8 lists already held recall@10 at 0.998-1.000 at 10k, 100k and 1M (synthetic vectors are kinder to IVF
# than real text); 1/64 (32 of 2048 at 1M: 1.8 ms median) keeps a margin for real data well under 5 ms.
IVF_PROBE_DIVISOR = 64
IVF_MIN_PROBES = 8
# Candidates read per result before the exact re-ranking, per compressed kind.
SQ8_RERANK = 2
PQ_RERANK = 10
# Product quantization: one 4-bit code per this many dimensions. 4-bit codes train in seconds (16 centroids per
# sub-quantizer, not 256; 8-bit codes took minutes at 100k vectors) and are scanned with SIMD ("fast-scan"); at
# 4 dimensions a code, too few true neighbours were among even 10x the candidates (recall 0.92 in tests/test_ann.py).
PQ_DIMENSIONS_PER_CODE = 2
# An IVF index is not trained on fewer vectors than this (FAISS wants 39 per list, and 16 lists at least); fewer
# get the graph, which needs no training.
IVF_MIN_VECTORS = 256
_SEED = 20261201


@dataclass(frozen=True)
class AnnPolicy:
    """How many chunks each kind serves: exact up to `exact_max`, then HNSW up to `graph_max`, then IVF-SQ8 up
    to `sq8_max`, then IVF-PQ. The defaults are measured (module docstring); tests inject small ones."""

    # Exact search scanned 10k passages in 1.2 ms and 100k in 31 ms (median, bench): past the CPU caches it is
    # bound by memory bandwidth, so about 20k keeps it within 5 ms (it was 50k before the bench; HNSW holds
    # recall@10 at 0.999 from there).
    exact_max: int = 20_000
    # Past this, HNSW's memory and build time buy nothing over IVF-SQ8 in the bench (the same recall and speed
    # at 100k, a tenth of the build time), and a build holds the whole graph: 1.85 KB a passage, 0.37 GB at 200k,
    # which keeps a build within twice the peak of a 1,000-article one (bench/build_scale.py; it was 500k, 0.9 GB).
    graph_max: int = 200_000
    # Past this, SQ8's 400 B a passage (4 GB at 10M) gives way to PQ's ~100 B.
    sq8_max: int = 10_000_000


DEFAULT_POLICY = AnnPolicy()


@dataclass(frozen=True)
class AnnSpec:
    """One index as the manifest records it: its kind, FAISS factory string, build and search parameters."""

    kind: str
    factory: str
    build: dict[str, int] = field(default_factory=dict)
    search: dict[str, int] = field(default_factory=dict)

    @property
    def compressed(self) -> bool:
        """Whether the index stores the vectors inexactly, so that the exact ones are kept beside it."""
        return self.kind in COMPRESSED_KINDS

    @property
    def rerank(self) -> int:
        return self.search.get("rerank", 1)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "factory": self.factory, "build": self.build, "search": self.search}


def choose(count: int, dimension: int, policy: AnnPolicy = DEFAULT_POLICY) -> AnnSpec:
    """The index for `count` vectors of `dimension`, with its parameters."""
    if count <= policy.exact_max:
        return AnnSpec(FLAT, "Flat")
    if count <= policy.graph_max or count < IVF_MIN_VECTORS:
        return AnnSpec(
            HNSW,
            f"HNSW{HNSW_LINKS},Flat",
            build={"M": HNSW_LINKS, "efConstruction": HNSW_EF_CONSTRUCTION},
            search={"efSearch": HNSW_EF_SEARCH},
        )
    lists = ivf_lists(count)
    probes = min(lists, max(IVF_MIN_PROBES, lists // IVF_PROBE_DIVISOR))
    build = {"nlist": lists}
    if count <= policy.sq8_max:
        return AnnSpec(IVF_SQ8, f"IVF{lists},SQ8", build=build, search={"nprobe": probes, "rerank": SQ8_RERANK})
    codes = pq_codes(dimension)
    return AnnSpec(
        IVF_PQ,
        f"IVF{lists},PQ{codes}x4fs",
        build={**build, "pq_codes": codes},
        search={"nprobe": probes, "rerank": PQ_RERANK},
    )


def ivf_lists(count: int) -> int:
    """Clusters of an IVF index: about 2·√count, as a power of two.

    The FAISS wiki suggests 4-16·√count; 2·√count keeps k-means training within a minute or two at 1M
    vectors on two cores, and the probes per query are set from the bench to hold the recall.
    """
    return int(2 ** round(math.log2(max(16.0, 2 * math.sqrt(count)))))


def pq_codes(dimension: int) -> int:
    """4-bit codes per vector: one per `PQ_DIMENSIONS_PER_CODE` dimensions, an even divisor of the dimension
    (fast-scan packs codes in pairs)."""
    wanted = max(2, dimension // PQ_DIMENSIONS_PER_CODE)
    return max((m for m in range(2, wanted + 1, 2) if dimension % m == 0), default=2)


def one_thread() -> None:
    """Run FAISS on one OpenMP thread (process-wide).

    OpenMP threads spin while they wait for each other; on a shared two-core machine that made training an IVF-PQ
    index of 1,200 vectors take 45 s on two threads against 0.4 s on one. A bot's parallelism is its worker
    threads, each searching for one question, so FAISS gains nothing from threads of its own there.
    """
    faiss.omp_set_num_threads(1)


def build(vectors: Vectors | NpyRows, spec: AnnSpec) -> Any:
    """A FAISS index of `spec`'s kind over unit-length `vectors` (inner product = cosine), searched as `spec`
    says. Vectors in a file (`NpyRows`, as a build writes them) are read a block at a time, never all at once:
    what the index holds is then all the memory they take."""
    one_thread()
    dimension = vectors.shape[1]
    # The factory makes an `IndexFlat` with the inner-product metric; FAISS reads it back as `IndexFlatIP`.
    index: Any = (
        faiss.IndexFlatIP(dimension)
        if spec.kind == FLAT
        else faiss.index_factory(dimension, spec.factory, faiss.METRIC_INNER_PRODUCT)
    )
    if spec.kind == HNSW:
        index.hnsw.efConstruction = spec.build["efConstruction"]
    if not index.is_trained:
        index.train(_training_sample(vectors, spec.build["nlist"] * IVF_TRAINING_PER_LIST))
    _add(index, vectors)
    configure(index, spec)
    return index


def _blocks(vectors: Vectors | NpyRows) -> Iterator[Vectors]:
    """Every vector, in order, a block at a time, as contiguous float32."""
    blocks = (
        vectors.blocks()
        if isinstance(vectors, NpyRows)
        else (vectors[s : s + BLOCK_ROWS] for s in range(0, len(vectors), BLOCK_ROWS))
    )
    for block in blocks:
        yield np.ascontiguousarray(block, dtype=np.float32)


def _reserve(index: Any, count: int) -> None:
    """Make room at once for `count` vectors in a Flat or HNSW index (and its graph's links): FAISS grows these
    arrays as blocks are added, by doubling, which held up to twice the vectors while building. (Resizing a
    vector up and back down keeps what it allocated.)"""
    graph: Any = index.hnsw if isinstance(index, faiss.IndexHNSW) else None
    storage = faiss.downcast_index(index.storage) if graph is not None else index
    if isinstance(storage, faiss.IndexFlatCodes):
        storage.codes.resize(count * storage.code_size)
        storage.codes.resize(storage.ntotal * storage.code_size)
    if graph is not None:
        # Links per vector: 2·M on the ground level, M on each level above, which a vector reaches with
        # probability 1/M, 1/M², ... (FAISS's level distribution): about 2·M + 1; a quarter of M spare.
        links = graph.nb_neighbors(0) + graph.nb_neighbors(1) // 4
        size = graph.neighbors.size()
        graph.neighbors.resize(size + count * links)
        graph.neighbors.resize(size)


def _add(index: Any, vectors: Vectors | NpyRows) -> None:
    """Add every vector, in order, numbered from 0.

    An IVF index whose lists are plain arrays (IVF-SQ8) gets each list sized exactly before it is filled: FAISS's
    own `add` grows the lists by doubling, which held up to twice the codes while building (474 MB for 251 MB of
    codes at 672,000 passages). The vectors are assigned to their lists first (one pass over them, 8 bytes a
    vector kept), then encoded and written into place (a second pass); the index is the one `add` makes, byte
    for byte (tests/test_ann.py).
    """
    ivf = faiss.try_extract_index_ivf(index)
    lists = None if ivf is None or ivf.invlists is None else faiss.downcast_InvertedLists(ivf.invlists)
    if ivf is None or not isinstance(lists, faiss.ArrayInvertedLists):
        _reserve(index, len(vectors))
        for block in _blocks(vectors):
            index.add(block)
        return
    assigned = [ivf.quantizer.assign(block, 1).reshape(-1) for block in _blocks(vectors)]
    owners = np.concatenate(assigned) if assigned else np.zeros(0, dtype=np.int64)
    for list_no, size in enumerate(np.bincount(owners, minlength=ivf.nlist).tolist()):
        lists.resize(list_no, size)
    filled = np.zeros(ivf.nlist, dtype=np.int64)
    start = 0
    for block in _blocks(vectors):
        count = len(block)
        own = np.ascontiguousarray(owners[start : start + count])
        codes = np.empty((count, ivf.code_size), dtype=np.uint8)
        ivf.encode_vectors(count, faiss.swig_ptr(block), faiss.swig_ptr(own), faiss.swig_ptr(codes), False)
        # Grouped by list (stably, so each list holds its vectors in order, as `add` leaves them).
        order = np.argsort(own, kind="stable")
        ids, codes, own = np.arange(start, start + count, dtype=np.int64)[order], codes[order], own[order]
        cuts = [0, *(np.flatnonzero(np.diff(own)) + 1).tolist(), count]
        for first, end in itertools.pairwise(cuts):
            list_no = int(own[first])
            lists.update_entries(
                list_no,
                int(filled[list_no]),
                end - first,
                faiss.swig_ptr(np.ascontiguousarray(ids[first:end])),
                faiss.swig_ptr(np.ascontiguousarray(codes[first:end])),
            )
            filled[list_no] += end - first
        start += count
    ivf.ntotal = index.ntotal = len(owners)


def _training_sample(vectors: Vectors | NpyRows, size: int) -> Vectors:
    count = len(vectors)
    rows = (
        np.arange(count) if count <= size else np.sort(np.random.default_rng(_SEED).choice(count, size, replace=False))
    )
    sample = vectors.take(rows) if isinstance(vectors, NpyRows) else vectors[rows]
    return np.ascontiguousarray(sample, dtype=np.float32)


def read(path: Path, spec: AnnSpec) -> Any:
    """The index written at `path`, memory-mapped where FAISS can (its pages are read when a search touches
    them and shared by every process that maps the file), searched as `spec` says."""
    # Flat and HNSW keep their vectors in an `IndexFlatCodes`, which FAISS (1.10 on) can map; IVF lists can be
    # mapped read-only. Older FAISS lacks the first flag (0: read into memory, as before).
    flags = (
        getattr(faiss, "IO_FLAG_MMAP_IFC", 0) if not spec.compressed else faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
    )
    one_thread()
    index = faiss.read_index(str(path), flags)
    configure(index, spec)
    return index


def configure(index: Any, spec: AnnSpec) -> None:
    """Set the recorded search parameters (efSearch, nprobe) on an index just built or read from disk."""
    for name, value in spec.search.items():
        if name != "rerank":
            faiss.ParameterSpace().set_index_parameter(index, name, value)


class _StorageOwner:
    """Exposes FAISS's vector storage to numpy and, as the view's base, keeps the index (its owner) alive for
    as long as any view on it exists."""

    def __init__(self, index: Any, storage: Any) -> None:
        self._index = index
        raw = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * storage.d)
        self.__array_interface__ = {
            "shape": (storage.ntotal, storage.d),
            "typestr": "<f4",
            "data": (raw.__array_interface__["data"][0], True),  # read-only
            "version": 3,
        }


def stored_vectors(index: Any) -> Vectors | None:
    """A read-only view on the exact vectors inside a Flat or HNSW-over-Flat index (no copy), or None when the
    index does not store them exactly."""
    storage = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    if not isinstance(storage, faiss.IndexFlat) or storage.ntotal == 0:
        return None
    view: Vectors = np.asarray(_StorageOwner(index, storage))
    return view


def search(index: Any, vectors: Vectors, query: Vectors, k: int, spec: AnnSpec) -> tuple[Vectors, Any]:
    """The `k` nearest chunks to each query row: (cosines, chunk numbers), best first, -1 where FAISS found
    fewer. A compressed index's candidates are re-ranked by their exact cosine with `vectors`."""
    if spec.rerank <= 1 or len(vectors) == 0:
        scores: Vectors
        scores, labels = index.search(query, k)
        return scores, labels
    _, candidates = index.search(query, k * spec.rerank)
    scores = np.full((len(query), k), -np.inf, dtype=np.float32)
    labels = np.full((len(query), k), -1, dtype=np.int64)
    for row, found in enumerate(candidates):
        found = found[found >= 0]
        # Rows in ascending order read the memory-mapped file front to back.
        found = np.unique(found)
        exact = vectors[found] @ query[row]
        best = np.argsort(-exact, kind="stable")[:k]
        scores[row, : len(best)] = exact[best]
        labels[row, : len(best)] = found[best]
    return scores, labels


def spec_from_manifest(raw: dict[str, Any]) -> AnnSpec | None:
    """The index a manifest records; an index written before `ann` was recorded is Flat or HNSW, told by its
    FAISS type name. None when the manifest names neither (its index cannot be searched as it was meant)."""
    recorded = raw.get("ann")
    if isinstance(recorded, dict):
        kind, factory = recorded.get("kind"), recorded.get("factory")
        built, searched = recorded.get("build", {}), recorded.get("search", {})
        if (
            kind in (FLAT, HNSW, *COMPRESSED_KINDS)
            and isinstance(factory, str)
            and _int_mapping(built)
            and _int_mapping(searched)
        ):
            return AnnSpec(kind, factory, dict(built), dict(searched))
        return None
    legacy = raw.get("faiss_index", "")
    if legacy == "IndexFlatIP":
        return AnnSpec(FLAT, "Flat")
    if isinstance(legacy, str) and legacy.startswith("IndexHNSWFlat"):
        # Built with M=32, efConstruction=80 and searched at FAISS's default efSearch (16) before; now at ours.
        return AnnSpec(HNSW, "HNSW32,Flat", {"M": 32, "efConstruction": 80}, {"efSearch": HNSW_EF_SEARCH})
    return None


def _int_mapping(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and type(v) is int and v > 0 for k, v in value.items())


def faiss_type(index: Any) -> str:
    """FAISS's class name for an index (what the manifest's `faiss_index` has always held)."""
    return type(faiss.downcast_index(index)).__name__
