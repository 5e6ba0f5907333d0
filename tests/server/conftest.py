"""Fixtures for ``hitl serve``: the real server in its own process, on a Unix socket and on TLS.

Each server is ``python -m hitl_core.cli serve`` on a fresh SQLite store, a fresh token file and
(when given) a policy config; the fixture waits until ``/healthz`` answers and kills the process
at the end whatever happened. The TLS certificate is made here with ``cryptography``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hitl_core.server.tokens import Role, TokenStore

ROOT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """A child's environment: this tree's packages, no stray store/config/token settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("HITL_STORE", "HITL_CONFIG", "HITL_TOKEN", "HITL_TOKENS")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hitl test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class ServerProcess:
    """One ``hitl serve`` child. ``start()`` again after ``kill()`` restarts it on the same files."""

    directory: Path
    config: Path | None = None
    listen: bool = False
    socket_group: str | None = None
    agent_users: tuple[str, ...] = ()
    store: str | None = None  # default: a SQLite file in the directory
    extra: tuple[str, ...] = ()  # more ``hitl serve`` options
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "server.log"
        if self.listen:
            self.cert, self.key = make_certificate(self.directory)
            self.port = free_port()
        self.tokens = TokenStore(self.token_file)
        self._made: dict[tuple[object, ...], str] = {}

    @property
    def socket_path(self) -> Path:
        return self.directory / "hitl.sock"

    @property
    def token_file(self) -> Path:
        return self.directory / "tokens.db"

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.directory / 'hitl.db'}"

    @property
    def unix_url(self) -> str:
        return f"hitl+unix://{self.socket_path}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "hitl_core.cli", "--store", self.store_url, "serve"]
        args += ["--socket", str(self.socket_path), "--tokens", str(self.token_file)]
        if self.listen:
            args += ["--listen", f"127.0.0.1:{self.port}", "--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if self.socket_group:
            args += ["--socket-group", self.socket_group]
        for user in self.agent_users:
            args += ["--agent-user", user]
        return args + list(self.extra)

    def start(self, timeout: float = 90) -> ServerProcess:
        log = open(self.log, "a")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            self.args(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(XDG_CONFIG_HOME=str(self.directory / "xdg")),
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"hitl serve exited ({self.proc.returncode}): {self.log.read_text()[-3000:]}")
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket_path)), timeout=5) as c:
                    if c.get("http://hitl/healthz").status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"hitl serve did not answer within {timeout}s: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        if self.listen:
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError("the TLS listener did not open") from None
                    time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def token(self, name: str, role: Role | str, **options: object) -> str:
        """A token for ``name`` (the same one again for the same name, role and options)."""
        key = (name, str(role), tuple(sorted(options.items())))
        if key not in self._made:
            self._made[key] = self.tokens.create(name, role, **options)[0]  # type: ignore[arg-type]
        return self._made[key]

    def unix_client(self) -> httpx.Client:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket_path)), base_url="http://hitl", timeout=30
        )

    def https_client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        import ssl

        return httpx.Client(
            base_url=self.https_url,
            verify=ssl.create_default_context(cafile=str(self.cert)),
            headers=headers,
            timeout=30,
        )


def server_directory() -> Path:
    """A directory other local users can traverse (pytest's tmp_path is 0700 under /tmp/pytest-of-root)."""
    path = Path(tempfile.mkdtemp(prefix="hitl-serve-"))
    path.chmod(0o755)
    return path


ServerFactory = Callable[..., ServerProcess]


def _servers() -> Iterator[ServerFactory]:
    servers: list[ServerProcess] = []

    def start(config: str | None = None, **options: object) -> ServerProcess:
        directory = server_directory()
        config_path = None
        if config is not None:
            config_path = directory / "hitl.toml"
            config_path.write_text(config)
        server = ServerProcess(directory, config=config_path, **options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def start_server() -> Iterator[ServerFactory]:
    """``start_server(config=TOML, listen=True, …)`` → a running ``ServerProcess``; killed at the end."""
    yield from _servers()


@pytest.fixture(scope="module")
def start_module_server() -> Iterator[ServerFactory]:
    """The same, for a server the tests of one module share (each test uses its own task ids)."""
    yield from _servers()


@pytest.fixture
def hitl_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``hitl`` command line in its own process."""

    def run(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hitl_core.cli", *args],
            capture_output=True,
            text=True,
            env=child_env(**(env or {})),
            cwd=ROOT,
            timeout=timeout,
        )

    return run
