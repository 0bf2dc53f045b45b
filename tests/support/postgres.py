"""A real PostgreSQL server for the tests: Debian's binaries, a temporary cluster, a loopback port.

``initdb`` and ``pg_ctl`` refuse to run as root, and CI runs as root: the cluster then
belongs to the ``postgres`` user the Debian package creates (else ``nobody``), and the
server runs as that user. One server per test session; each test gets a database of
its own (``postgres_url``). ``make test`` installs the package when it is missing.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

SUPERUSER = "chatlog"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL's server binaries are missing: `make test` installs Debian's postgresql")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.fail("no unprivileged user to run PostgreSQL as")


@dataclass
class PostgresServer:
    """One running cluster: where it is and how to reach it."""

    bin: Path
    data: Path
    port: int
    user: str | None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, user=self.user, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w",
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.data}", "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def create_database(self) -> str:
        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_server(durable: bool = False) -> Iterator[PostgresServer]:
    """initdb + pg_ctl start in a temporary directory; stopped and removed at the end.

    ``durable`` keeps PostgreSQL's fsync on (benchmarks); tests turn it off for speed.
    """
    bin_dir = _binaries()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="chatlog-pg-"))
    data = root / "data"
    data.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, data, _free_port(), user)
    server._run(
        str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
        "--locale=C.UTF-8", "--no-sync",
    )
    with open(data / "postgresql.conf", "a") as conf:
        # A test server: durability is the day files' job here, speed is the tests'.
        if not durable:
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        conf.write("max_connections = 200\n")
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()


def wait_until_reachable(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def password_user(server: PostgresServer, dbname_url: str, name: str, password: str) -> str:
    """A role that must give its password (scram), owning the database of ``dbname_url``; its URL with it.

    The session's server trusts every other role; this prepends one ``pg_hba.conf``
    line for this role only and reloads the configuration.
    """
    dbname = dbname_url.rsplit("/", 1)[1]
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        conn.execute(f'ALTER DATABASE "{dbname}" OWNER TO "{name}"')
        hba = server.data / "pg_hba.conf"
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    return f"postgresql://{name}:{password}@127.0.0.1:{server.port}/{dbname}"
