"""``hitl serve``: the decision round trip through the server, over the Unix socket and over TLS.

Run with ``make bench`` or ``python benchmarks/bench_serve.py [DECISIONS]``. Prints a table; never
pass/fail. One round trip: an operator's ``approve`` is sent (HTTP request, the server's policy
check and the store's commit) and the agent's pending ``wait_for_decision`` returns (the event
reaches it over its live stream, and it reads the task). The agent and the operator are two
``RemoteMachine`` clients in this process; the server is ``hitl serve`` in its own process on a
SQLite store in a temporary directory. The TLS rows authenticate with argon2-hashed bearer tokens
(verified once per token, then remembered).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from hitl_core.client import RemoteMachine
from hitl_core.server.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[1]
DECISIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hitl bench")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def start_server(directory: Path) -> tuple[subprocess.Popen[bytes], str, str, Path, TokenStore]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cert, key = certificate(directory)
    sock = directory / "hitl.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["PYTHONPATH"] = str(ROOT)
    args = [sys.executable, "-m", "hitl_core.cli", "--store", f"sqlite:///{directory / 'hitl.db'}", "serve"]
    args += ["--socket", str(sock), "--tokens", str(directory / "tokens.db"), "--listen", f"127.0.0.1:{port}"]
    args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    proc = subprocess.Popen(args, env=env, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as c:
                if c.get("http://hitl/healthz").status_code == 200:
                    break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("hitl serve did not start")
        time.sleep(0.05)
    return proc, f"hitl+unix://{sock}", f"https://127.0.0.1:{port}", cert, TokenStore(directory / "tokens.db")


async def round_trips(agent: RemoteMachine, operator: RemoteMachine, prefix: str, n: int) -> list[float]:
    times: list[float] = []
    await agent._ensure_follower()
    for i in range(n):
        task_id = f"{prefix}-{i}"
        await agent.start_task(task_id)
        await agent.request_approval(task_id, "refund?", args={"amount": i})
        waiting = asyncio.create_task(agent.wait_for_decision(task_id, timeout=60))
        await asyncio.sleep(0.01)  # outside the clock: the agent has read the task and is parked waiting
        start = time.perf_counter()
        await operator.approve(task_id)
        await waiting
        times.append(time.perf_counter() - start)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, unix_url, https_url, cert, tokens = start_server(Path(tmp))
        try:
            rows = []
            agent_token, _ = tokens.create("bench-agent", "agent")
            operator_token, _ = tokens.create("bench-operator", "operator")
            for label, agent, operator in (
                ("unix socket (peer credentials)", RemoteMachine(unix_url), RemoteMachine(unix_url)),
                (
                    "TLS + bearer token",
                    RemoteMachine(https_url, token=agent_token, ca=str(cert)),
                    RemoteMachine(https_url, token=operator_token, ca=str(cert)),
                ),
            ):
                await round_trips(agent, operator, f"warm-{label[:4]}", 20)
                times = await round_trips(agent, operator, f"run-{label[:4]}", DECISIONS)
                rows.append((label, statistics.median(times) * 1000, pct(times, 0.99), max(times) * 1000))
                await agent.close()
                await operator.close()
        finally:
            proc.terminate()
            proc.wait(30)
    print(
        f"hitl serve: decision round trip (operator approve -> agent's wait_for_decision returns), {DECISIONS} decisions"
    )
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; SQLite store")
    print(f"{'transport':<32} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, p50, p99, worst in rows:
        print(f"{label:<32} {p50:>8.2f} {p99:>8.2f} {worst:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
