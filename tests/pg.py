"""One real PostgreSQL server per test session (initdb + pg_ctl under a temporary folder, on a free port),
a fresh database per test that asks for one, and the `state_url` fixture that runs a test's state
store on SQLite and on PostgreSQL.

The server is started only when a test first needs it and stopped when the session ends. A missing
PostgreSQL installation fails those tests (`make test` installs it); it never skips them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "shoplake"  # the server's superuser in the tests
PASSWORD = "shoplake-test"  # given to clients through PGPASSWORD only, like a user's deployment
STATE_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
_names = itertools.count()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        """A URL without the password, as a user writes it (the password comes from PGPASSWORD)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = f"{prefix}_{next(_names)}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a generated name, not user text
        return self.url(name)


def _run_as_owner(command: list[str], owner: str | None) -> subprocess.CompletedProcess[str]:
    # PostgreSQL refuses to run as root: as root, the server's commands run as its system user.
    full = ["runuser", "-u", owner, "--", *command] if owner else command
    return subprocess.run(full, capture_output=True, text=True, check=False, timeout=120)


class PostgresMissing(RuntimeError):
    """PostgreSQL cannot be started here (not installed, no user to run it as, initdb or start failed)."""


def _binaries() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise PostgresMissing("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql): "
                              "run `make test`, which installs it with apt-get install -y postgresql")
    return Path(versions[-1]).parent


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A new PostgreSQL server under a temporary folder on a free port, stopped and deleted on exit;
    PGPASSWORD is set meanwhile (the shoplake processes started inherit it)."""
    binaries = _binaries()
    owner: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresMissing("running as root needs the `postgres` system user to start PostgreSQL "
                                  "(apt-get install -y postgresql creates it)") from None
        owner = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="shoplake-pg-"))
    data = folder / "data"
    secret = folder / "pwfile"
    secret.write_text(PASSWORD + "\n")
    if owner:
        account = pwd.getpwnam(owner)
        for path in (folder, secret):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = _free_port()
    initdb = _run_as_owner([str(binaries / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(secret),
                            "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale", "C"], owner)
    if initdb.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresMissing(f"initdb failed: {initdb.stderr[-2000:]}")
    options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
               "-c full_page_writes=off -c max_connections=100")
    started = _run_as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                             "-w", "-t", "60", "start"], owner)
    if started.returncode != 0:
        log = (folder / "log").read_text(errors="replace")[-2000:] if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresMissing(f"pg_ctl start failed: {started.stderr[-1000:]} {log}")
    previous = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PASSWORD
    try:
        yield PostgresServer("127.0.0.1", port, USER)
    finally:
        if previous is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = previous
        _run_as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], owner)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's server, started when a test first needs it; a test needing it fails without it."""
    try:
        server = running_server()
        found = server.__enter__()
    except PostgresMissing as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield found
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def pg_database(postgres: PostgresServer) -> str:
    """A fresh database on the session's server (its URL, without the password)."""
    return postgres.new_database()


@pytest.fixture(params=STATE_BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty operational store: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'shoplake.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database("state")

