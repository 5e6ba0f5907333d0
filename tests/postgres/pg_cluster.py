"""A throwaway PostgreSQL cluster on a free local port, for the tests and the benchmarks.

Why a cluster of our own rather than whatever server the machine runs: the tests restart and
crash it on purpose, change its settings and create a database per test, none of which may touch
a real installation. ``initdb`` refuses to run as root, so when we are root the cluster belongs
to the ``postgres`` OS user (created by Debian's package) and its commands run through ``runuser``.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from types import ModuleType
from typing import NoReturn

PASSWORD = "hitl-test-secret"
#: Where to find initdb, pg_ctl and psql instead of the usual places (a custom installation; the
#: tests also point it at an empty directory to see what happens without PostgreSQL).
BINDIR_VARIABLE = "HITL_TEST_PG_BINDIR"


def under_ci() -> bool:
    """True when ``CI`` says so (GitHub Actions, GitLab and most others set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """A PostgreSQL test that cannot get its server or driver: under CI that is a failure with
    the reason (a broken setup must not turn the PostgreSQL tests into a green run of skips);
    on a developer's machine without PostgreSQL it is a skip with the reason."""
    import pytest

    if under_ci():
        pytest.fail(f"CI=true and the PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_psycopg() -> ModuleType:
    """The psycopg module, or ``unavailable`` saying how to install it (usable at module level)."""
    try:
        import psycopg
    except ImportError:
        psycopg = None
    if psycopg is None:
        unavailable("the postgres extra is not installed: pip install -e '.[postgres]'")
    return psycopg


def find_bin(name: str) -> str | None:
    """The newest installed ``name`` (initdb, pg_ctl): Debian keeps them out of PATH."""
    bindir = os.environ.get(BINDIR_VARIABLE)
    if bindir:
        path = Path(bindir) / name
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalCluster:
    """``initdb`` into a temp dir, ``pg_ctl start`` on 127.0.0.1:<free port>; ``stop`` removes it all.

    ``durable=False`` turns fsync off (the tests' default: a crash of the server process still
    loses nothing, only an OS crash would); the benchmarks keep fsync on.
    """

    def __init__(self, *, durable: bool = False, max_connections: int = 200) -> None:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            where = os.environ.get(BINDIR_VARIABLE) or "/usr/lib/postgresql/*/bin or on PATH"
            raise RuntimeError(
                f"PostgreSQL is not installed (no initdb/pg_ctl in {where}); `make pg-server` installs it"
            )
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.durable = durable
        self.max_connections = max_connections
        self.base = Path(tempfile.mkdtemp(prefix="hitl-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.running = False
        self._schemas_db = False

    # -- commands --------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}\n{log[-2000:]}"
            )
        return result

    def start(self) -> LocalCluster:
        # Before initdb: a process killed while the server starts must not leave it behind.
        self._start_watchdog()
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            self.initdb,
            "-D",
            str(self.data),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        pwfile.unlink()
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.base}'",
            "max_connections": str(self.max_connections),
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on",
            "full_page_writes": "on" if self.durable else "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# hitl test cluster\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        self._pg_ctl("start")
        return self

    def _start_watchdog(self) -> None:
        """A detached process that removes the cluster once this process is gone.

        atexit is not enough: pytest-xdist workers and killed test runs exit without running it,
        and a postmaster outlives its parent. The watchdog does not.
        """
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--watchdog",
                str(os.getpid()),
                str(self.base),
                self.pg_ctl,
                "1" if self.as_postgres else "0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _pg_ctl(self, verb: str, *extra: str) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *extra, verb)
        self.running = verb in ("start", "restart")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no checkpoint, recovery on the next start)."""
        if self.running:
            self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self._pg_ctl("start")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            watchdog = getattr(self, "_watchdog", None)
            if watchdog is not None and watchdog.poll() is None:
                watchdog.kill()
                watchdog.wait()

    # -- URLs ------------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the cluster's local socket (trusted)."""
        psql = find_bin("psql") or "psql"
        return self._run(
            psql,
            "-h",
            str(self.base),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            dbname,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ).stdout

    def create_database(self, prefix: str = "hitl") -> str:
        """A fresh, empty database; returns its URL (password authentication over TCP)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def create_schema(self, prefix: str = "hitl") -> str:
        """A fresh, empty schema in one shared database; its URL puts it first on search_path.

        Much cheaper than a database (``CREATE DATABASE`` copies a template and takes about a
        second here), so it is what the conformance suite uses for each of its many tests.
        """
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        if not self._schemas_db:
            self.psql("CREATE DATABASE hitl_schemas")
            self._schemas_db = True
        with psycopg.connect(self.url("hitl_schemas"), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url("hitl_schemas") + f"?options=-csearch_path%3D{name}"


_shared: LocalCluster | None = None
_shared_failure: str | None = None


def shared_cluster() -> LocalCluster:
    """One cluster per test process (each xdist worker has its own), removed when it exits.

    Raises ``RuntimeError`` saying why when no server can be started; the fixtures turn that
    into a skip with that reason.
    """
    global _shared, _shared_failure
    if _shared is None and _shared_failure is None:
        cluster = None
        try:
            cluster = LocalCluster()
            cluster.start()
        except Exception as exc:
            _shared_failure = str(exc)
            if cluster is not None:
                cluster.destroy()
        else:
            _shared = cluster
            atexit.register(cluster.destroy)
    if _shared is None:
        raise RuntimeError(f"no PostgreSQL server could be started: {_shared_failure}")
    return _shared


def _watchdog(owner: int, base: Path, pg_ctl: str, as_postgres: bool) -> None:
    import time

    while True:
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        time.sleep(1)
    cmd = [pg_ctl, "-D", str(base / "data"), "-m", "immediate", "-w", "stop"]
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd] if as_postgres else cmd, capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    _watchdog(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], sys.argv[5] == "1")
elif __name__ == "__main__":  # pragma: no cover - manual use: python tests/postgres/pg_cluster.py
    import time

    cluster = LocalCluster().start()
    print(cluster.create_database(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.destroy()
