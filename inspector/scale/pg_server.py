"""A throwaway PostgreSQL server from the distribution's binaries, for tests and benchmarks.

``initdb`` in a temporary folder, ``pg_ctl`` on a free loopback port, trust
authentication for local connections only. PostgreSQL refuses to run as root, so
as root the server runs as the ``postgres`` user (``runuser``), which the Debian
package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest version first; ``None`` if absent."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for folder in candidates + [os.path.dirname(shutil.which("initdb") or "")]:
        if folder and os.path.isfile(os.path.join(folder, "initdb")) and os.path.isfile(os.path.join(folder, "pg_ctl")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A private PostgreSQL server; :meth:`start` it, use :meth:`url`, :meth:`stop` it.

    Args:
        bin_dir: Where ``initdb``/``pg_ctl`` are (default :func:`find_bin_dir`).
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        if self.bin_dir is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.folder = Path(tempfile.mkdtemp(prefix="inspector-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    def start(self) -> PostgresServer:
        """Create the cluster and start the server (a few seconds)."""
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=50 "
                   "-c fsync=on -c shared_buffers=32MB")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.folder / "server.log"), "-w", "-t", "60", "start")
        return self

    def url(self, dbname: str = "postgres") -> str:
        """A URL for database ``dbname`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


_SHARED: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """One server per process (test modules share it); stopped when the process exits."""
    global _SHARED
    if _SHARED is None:
        import atexit

        _SHARED = PostgresServer().start()
        atexit.register(_SHARED.stop)
    return _SHARED
