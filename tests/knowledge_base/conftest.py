"""Fixtures for the knowledge-base tests: databases (SQLite and a real PostgreSQL), a running
knowledge-base server on 127.0.0.1, and Sedna's version-1 fixture database.

PostgreSQL: the server binaries are looked up in ``$SEDNA_PG_BINDIR``, then
``/usr/lib/postgresql/*/bin`` (Debian), then ``PATH``. ``initdb`` and ``postgres`` refuse to run
as root, so as root the cluster is created and started as the ``postgres`` user (``runuser``, else
``su``) in a temporary directory that user owns; the server listens on 127.0.0.1 only, on a free
port, with its socket in that directory. Without binaries the PostgreSQL variants are skipped
with a reason that says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sedna_core.knowledge_base import KnowledgeBaseServer

FIXTURES = Path(__file__).parent / "fixtures"


def _load_builder():  # the fixture-database script, by path (tests are not a package)
    spec = importlib.util.spec_from_file_location(
        "build_sedna_v1_db", FIXTURES / "build_sedna_v1_db.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_sedna_v1_db():
    """``build(url)``: fill a database with Sedna's schema-1 tables and rows."""
    return _load_builder().build


# -- PostgreSQL ------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    candidates = []
    if os.environ.get("SEDNA_PG_BINDIR"):
        candidates.append(Path(os.environ["SEDNA_PG_BINDIR"]))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(Path(which).parent)
    for c in candidates:
        if (c / "pg_ctl").is_file() and (c / "initdb").is_file():
            return c
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PgCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(
                    "PostgreSQL tests: running as root and there is no 'postgres' user to run "
                    "the server as (initdb refuses root)"
                )
            self.user = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="sedna-pg-"))
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.data = self.root / "data"
        self.port = _free_port()

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.user, "--", *cmd]
            else:
                cmd = ["su", self.user, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    """Base URL of a throwaway PostgreSQL server (skipped where none is installed)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL tests: no server binaries (initdb, pg_ctl) found in $SEDNA_PG_BINDIR, "
            "/usr/lib/postgresql/*/bin or PATH; install PostgreSQL to run them"
        )
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("PostgreSQL tests: the psycopg driver is not installed")
    cluster = _PgCluster(bindir)
    try:
        base = cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}")
    try:
        yield base
    finally:
        cluster.stop()


_db_numbers = itertools.count()


@pytest.fixture
def postgresql_url(postgresql_server: str) -> str:
    """A fresh, empty database on the throwaway server."""
    import psycopg

    name = f"kb_test_{os.getpid()}_{next(_db_numbers)}"
    dsn = postgresql_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgresql_server}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    return request.getfixturevalue("postgresql_url")


# -- a running knowledge base ------------------------------------------------------------------


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    return tmp_path / "kb"


@pytest.fixture
def kb_server(kb_dir: Path) -> Iterator[KnowledgeBaseServer]:
    """A knowledge base on 127.0.0.1 (ephemeral port) over a SQLite file in ``kb_dir``."""
    server = KnowledgeBaseServer(data_dir=str(kb_dir), port=0, host="127.0.0.1")
    server.start_in_background()
    try:
        yield server
    finally:
        server.stop_background()
