"""What a bot on the PostgreSQL store costs to start, and a rebuild of it to run, at size: each step in a fresh
process, its wall time and its peak resident memory, side by side with an earlier revision of the code.

    .venv/bin/python bench/pg_startup.py                                  # 1,000 articles (about a minute)
    .venv/bin/python bench/pg_startup.py --articles 20000 --compare-with 507be81

Synthetic articles (bench/synthetic.py), the hashing stand-in embedder (bench/hash_embedder.py: a bot's start
does not run the model, and a build's embedding is measured in build_speed.py), a throw-away PostgreSQL with
pgvector on 127.0.0.1 (tests/pg_server.py) unless `--database-url` names one. Steps, each a fresh process:

1. a full build of the database (`build_postgres`);
2. a bot's first start: open the newest state and answer one question (`Engine.open`, then `answer`), with no
   local copy yet (it writes one: bot/stores/pg_copy.py);
3. a restart: the same, with the copy in place;
4. one article rewritten, then an incremental build;
5. a bot moving to that state: the same start, with the previous state's copy in place.

With `--compare-with REV`, steps 2 (then the only start there was) and 1 and 4 are also run by the code of
revision REV (a temporary git worktree of this repository), on a database of its own built by that code, in the
same run. Writes `bench/results/pg-startup-<articles>.md` and `.png`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_search import database as server
from synthetic import rewrite_article, write_articles

ROOT = Path(__file__).resolve().parent.parent
IN_MAKE_BENCH = True  # `make bench` runs this script with its defaults
RESULTS = ROOT / "bench/results"
DEFAULT_ARTICLES = 1_000
QUESTION = "What did the party say about the rally?"

# argv: code root, bench dir, database URL, copies folder ("" for code that keeps none), question.
# Prints JSON.
START_CHILD = """
import json, resource, sys, time
started = time.perf_counter()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from pathlib import Path
import bot
assert Path(bot.__file__).is_relative_to(sys.argv[1]), bot.__file__  # the code measured
from hash_embedder import HashEmbedder
from bot.engine import Engine
from bot.stores.pgvector import PgSource
source = PgSource(sys.argv[3], copies=Path(sys.argv[4])) if sys.argv[4] else PgSource(sys.argv[3])
engine = Engine.open(source, HashEmbedder())
opened = time.perf_counter() - started
engine.answer(sys.argv[5])
print(json.dumps({"seconds": time.perf_counter() - started, "open_seconds": opened,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# argv: code root, bench dir, database URL, corpus. Prints JSON.
BUILD_CHILD = """
import json, resource, sys, time
started = time.perf_counter()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from pathlib import Path
import bot
assert Path(bot.__file__).is_relative_to(sys.argv[1]), bot.__file__  # the code measured
from hash_embedder import HashEmbedder
from bot.chunking import ChunkingSettings
from bot.stores.pg_build import build_postgres
from bot.stores.pgvector import PgSource
report = build_postgres(Path(sys.argv[4]), PgSource(sys.argv[3]), HashEmbedder(), ChunkingSettings())
print(json.dumps({"seconds": time.perf_counter() - started, "chunks": report.chunks,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@dataclass
class Step:
    code: str
    name: str
    seconds: float
    peak_mb: float
    note: str = ""


def child(program: str, code_root: Path, *args: str) -> dict[str, float]:
    finished = subprocess.run(
        [sys.executable, "-c", program, str(code_root), str(ROOT / "bench"), *args],
        capture_output=True,
        text=True,
        cwd=code_root,
        env={**os.environ, "MULTILINGUAL": "off"},
    )
    if finished.returncode != 0:
        raise SystemExit(f"a measured step failed:\n{finished.stderr[-3000:]}")
    result: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def worktree(revision: str | None) -> Iterator[Path | None]:
    """A checkout of `revision` in a temporary folder (None: no comparison)."""
    if revision is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="kazbot-rev-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], cwd=ROOT, check=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"ALTER DATABASE {name} OWNER TO CURRENT_USER")
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url


def start(code: str, code_root: Path, url: str, copies: Path | None, name: str) -> Step:
    """A bot's start in a fresh process, with `copies` as its copies folder (None: code that keeps none)."""
    started = child(START_CHILD, code_root, url, str(copies or ""), QUESTION)
    return Step(code, name, started["seconds"], started["peak_mb"], f"opened in {started['open_seconds']:.2f} s")


def run(articles: int, admin_url: str, previous_code: Path | None, work: Path) -> list[Step]:
    corpus = work / "corpus"
    first_article = write_articles(corpus, articles)[0]
    steps: list[Step] = []
    codes = [("this", ROOT)] + ([("before", previous_code)] if previous_code is not None else [])
    for code, code_root in codes:
        url = database(admin_url, f"kazbot_bench_{code}")
        copies = work / f"copies-{code}"
        keeps_copies = code == "this"
        built = child(BUILD_CHILD, code_root, url, str(corpus))
        steps.append(Step(code, "full build", built["seconds"], built["peak_mb"], f"{int(built['chunks']):,} chunks"))
        held = copies if keeps_copies else None
        steps.append(start(code, code_root, url, held, "start: no copy yet" if keeps_copies else "start"))
        if keeps_copies:
            steps.append(start(code, code_root, url, held, "restart: copy in place"))
        rewrite_article(first_article, seed=1)
        rebuilt = child(BUILD_CHILD, code_root, url, str(corpus))
        steps.append(Step(code, "one article rewritten: build", rebuilt["seconds"], rebuilt["peak_mb"]))
        if keeps_copies:
            steps.append(start(code, code_root, url, held, "start on the new state: previous copy in place"))
        write_articles(corpus, 1)  # the first article back as it was, for the next code's builds
    return steps


def write_table(steps: list[Step], articles: int, revision: str | None, path: Path) -> None:
    load = os.getloadavg()
    lines = [
        "# A bot on the PostgreSQL store: start-up and rebuilds (`bench/pg_startup.py`)",
        "",
        f"{articles:,} synthetic articles (bench/synthetic.py), the hashing stand-in embedder; each step a fresh "
        f"process (wall time, peak resident memory). PostgreSQL with pgvector on 127.0.0.1. Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{load[0]:.1f} at the end; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| code | step | seconds | peak MB | note |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    names = {"this": "this revision", "before": f"`{revision}`"}
    lines += [f"| {names[s.code]} | {s.name} | {s.seconds:.2f} | {s.peak_mb:.0f} | {s.note} |" for s in steps]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def plot(steps: list[Step], articles: int, revision: str | None, path: Path) -> None:
    """Seconds and peak memory of each step, this revision's beside `revision`'s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [f"{s.name}\n({'this' if s.code == 'this' else revision})" for s in steps]
    colours = ["#3366aa" if s.code == "this" else "#bb5555" for s in steps]
    left.barh(labels, [s.seconds for s in steps], color=colours)
    left.set_xlabel("seconds (fresh process)")
    left.invert_yaxis()
    right.barh(labels, [s.peak_mb for s in steps], color=colours)
    right.set_xlabel("peak resident MB")
    right.invert_yaxis()
    right.set_yticklabels([])
    figure.suptitle(f"A bot on the PostgreSQL store, {articles:,} synthetic articles")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=DEFAULT_ARTICLES)
    parser.add_argument("--compare-with", metavar="REV", help="also run these steps with the code of REV")
    parser.add_argument("--database-url", help="an existing server (its role must be able to create databases)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with (
        server(args.database_url) as admin_url,
        worktree(args.compare_with) as previous_code,
        tempfile.TemporaryDirectory(prefix="kazbot-pg-startup-") as work,
    ):
        steps = run(args.articles, admin_url, previous_code, Path(work))
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(steps, args.articles, args.compare_with, args.out / f"pg-startup-{args.articles}.md")
    plot(steps, args.articles, args.compare_with, args.out / f"pg-startup-{args.articles}.png")


if __name__ == "__main__":
    main()
