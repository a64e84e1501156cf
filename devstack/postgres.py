"""A PostgreSQL server of its own on a free port, from Debian's `postgresql` package: for the tests and
any stack that wants Django on PostgreSQL rather than SQLite.

The data directory is made by `initdb` and thrown away with the server; no system service is used.
PostgreSQL refuses to run as root, so as root the server runs as the package's `postgres` user, in a
data directory under the system's temporary directory (a test's own directory may be closed to it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .processes import Process, StartError, wait_until

SERVICE_USER = "postgres"
# Speed over durability: a throwaway server whose data nobody keeps.
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "shared_buffers=16MB")


def postgres_bin_dir() -> Path:
    """Where `initdb` and `postgres` are: Debian keeps them under /usr/lib/postgresql/<version>/bin,
    off the PATH; the newest version wins. Else wherever PATH has `initdb`."""
    versions = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    if found is None:
        raise StartError(
            "PostgreSQL is not installed: run `scripts/install-system-deps test` (apt-get install postgresql)"
        )
    return Path(found).resolve().parent


@dataclass
class PostgresServer:
    run_dir: Path
    port: int
    database: str = "sse"
    process: Process | None = None
    data_dir: Path | None = field(default=None, init=False)

    @property
    def user(self) -> str:
        """The database superuser: initdb names it after the OS user that runs the server."""
        return SERVICE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def url(self) -> str:
        """As Django's DATABASE_URL takes it (trust authentication: no password)."""
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> PostgresServer:
        bin_dir = postgres_bin_dir()
        self.data_dir = data_dir = Path(tempfile.mkdtemp(prefix="devstack-postgres-"))
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVICE_USER)
            os.chown(data_dir, account.pw_uid, account.pw_gid)
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "--auth=trust", "--encoding=UTF8"]
        initdb += ["--locale=C", "--no-sync"]
        result = subprocess.run(self._as_owner(initdb), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise StartError(f"initdb failed:\n{result.stdout}{result.stderr}")
        args = [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(self.port)]
        args += ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]
        for setting in _FAST_SETTINGS:
            args += ["-c", setting]
        self.process = Process.start(f"postgres-{self.port}", self._as_owner(args), self.run_dir)
        wait_until(lambda: self._ready(bin_dir), 30, f"PostgreSQL on port {self.port}", self.process)
        self._psql(bin_dir, f'CREATE DATABASE "{self.database}"')
        return self

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return args
        # setpriv execs the command itself, so the process (and the pid we signal) is PostgreSQL's.
        return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", *args]

    def _ready(self, bin_dir: Path) -> bool:
        ready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(ready, timeout=10).returncode == 0

    def _psql(self, bin_dir: Path, sql: str) -> None:
        psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        result = subprocess.run(
            [*psql, "-d", "postgres", "-c", sql], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise StartError(f"psql {sql!r} failed:\n{result.stdout}{result.stderr}")

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open sessions are cut rather than waited for, as SIGTERM would."""
        if self.process is not None:
            self.process.signal(signal.SIGINT)
            self.process.stop()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
