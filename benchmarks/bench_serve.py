"""``hitl serve``: round trips, throughput, live-stream fan-out and memory, through the real server.

Run with ``make bench`` or ``python benchmarks/bench_serve.py [DECISIONS]``. Prints one table; never
pass/fail. The server is ``hitl serve`` in its own process (``python -m hitl_core.cli serve``) on a
store in a temporary directory; every client talks to it over its Unix socket (peer credentials)
or TLS (argon2-hashed bearer tokens, verified once per token and then remembered).

Rows:

* **round trip**: an operator's ``approve`` is sent (HTTP request, the server's policy check, the
  store's commit) until the agent's pending ``wait_for_decision`` returns (the event reaches it over
  its live stream, carrying the decision). Agent and operator are two ``RemoteMachine`` clients in
  this process; DECISIONS decisions (default 500), over the Unix socket and over TLS. Also the CPU
  time (this process + the server) of one whole cycle (start, ask, wait, approve): on a shared,
  loaded machine the wall-clock percentiles mostly measure the scheduler; the CPU does not.
* **16 agents**: 16 agents (two client processes of 8) each run start → request → an operator's
  approve → resume → complete as fast as they can for a few seconds; machine transitions per
  second committed through the server, and the server's CPU per transition (with it, what one
  server core carries: on a shared machine the wall-clock rate is the scheduler's), on SQLite and on PostgreSQL (a throwaway local cluster,
  tests/postgres/pg_cluster.py; the row says why when there is none).
* **fan-out**: 50 live streams (two client processes of 25) follow while a writer commits events;
  per event and stream, the time from the event's commit (its ``at``, stamped by the server) to
  its arrival at that stream; p50/p99 over every (event, stream) pair, and the p99 of the slowest
  stream per event (what "every follower has it" waits for).
* **memory**: the server's resident set (VmRSS) idle, and with 100 live streams open.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hitl_core.client import RemoteMachine  # noqa: E402
from hitl_core.server.tokens import TokenStore  # noqa: E402

DECISIONS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 500
AGENTS = 16
LOAD_SECONDS = 5.0
FOLLOWERS = 50
FANOUT_EVENTS = 200
STREAMS_FOR_MEMORY = 100


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


class Served:
    """One ``hitl serve`` child on ``store`` (default: SQLite in ``directory``), Unix socket + TLS."""

    def __init__(self, directory: Path, store: str | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.cert, key = certificate(directory)
        sock = directory / "hitl.sock"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
        env["PYTHONPATH"] = str(ROOT)
        store = store or f"sqlite:///{directory / 'hitl.db'}"
        args = [sys.executable, "-m", "hitl_core.cli", "--store", store, "serve", "--socket", str(sock)]
        args += ["--tokens", str(directory / "tokens.db"), "--listen", f"127.0.0.1:{port}"]
        args += ["--tls-cert", str(self.cert), "--tls-key", str(key)]
        self.proc = subprocess.Popen(args, env=env, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.unix_url, self.https_url = f"hitl+unix://{sock}", f"https://127.0.0.1:{port}"
        self.tokens = TokenStore(directory / "tokens.db")
        deadline = time.monotonic() + 120
        while True:
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as c:
                    if c.get("http://hitl/healthz").status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("hitl serve did not start")
            time.sleep(0.05)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system): what a loaded machine cannot skew."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# -- round trip ----------------------------------------------------------------------------------


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


async def round_trip_rows(served: Served) -> list[tuple[str, str]]:
    agent_token, _ = served.tokens.create("bench-agent", "agent")
    operator_token, _ = served.tokens.create("bench-operator", "operator")
    rows = []
    for label, agent, operator in (
        ("round trip, unix socket", RemoteMachine(served.unix_url), RemoteMachine(served.unix_url)),
        (
            "round trip, TLS + token",
            RemoteMachine(served.https_url, token=agent_token, ca=str(served.cert)),
            RemoteMachine(served.https_url, token=operator_token, ca=str(served.cert)),
        ),
    ):
        try:
            await round_trips(agent, operator, f"warm-{label[-5:]}", 20)
            cpu, server_cpu = time.process_time(), served.cpu_seconds()
            times = [t * 1000 for t in await round_trips(agent, operator, f"run-{label[-5:]}", DECISIONS)]
            # Per decision, both sides, whole cycle (start, ask, wait, approve): CPU, not wall time.
            cpu_ms = (time.process_time() - cpu + served.cpu_seconds() - server_cpu) * 1000 / DECISIONS
        finally:
            await agent.close()
            await operator.close()
        figures = (
            f"p50 {statistics.median(times):.1f} ms, p99 {pct(times, 0.99):.1f} ms, max {max(times):.1f} ms;"
            f" {cpu_ms:.1f} ms CPU per cycle (clients + server)"
        )
        rows.append((f"{label} ({DECISIONS} decisions)", figures))
    return rows


# -- 16 agents -----------------------------------------------------------------------------------


async def agent_load(url: str, agents: int, seconds: float, prefix: str) -> int:
    """``agents`` agents and one operator in this process; the transitions they committed."""
    operator = RemoteMachine(url)
    machines = [RemoteMachine(url) for _ in range(agents)]
    done = 0
    stop = time.monotonic() + seconds

    async def agent(n: int, machine: RemoteMachine) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop:
            task_id = f"{prefix}-{n}-{i}"
            await machine.start_task(task_id)
            await machine.request_approval(task_id, "ship it?", args={"n": i})
            await operator.approve(task_id)
            await machine.resume(task_id)
            await machine.complete(task_id, {"ok": True})
            done += 5
            i += 1

    try:
        await asyncio.gather(*(agent(n, m) for n, m in enumerate(machines)))
    finally:
        for m in (*machines, operator):
            await m.close()
    return done


def load_row(served: Served, label: str) -> tuple[str, str]:
    server_cpu = served.cpu_seconds()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--load", served.unix_url, str(AGENTS // 2), str(LOAD_SECONDS), f"{label}-{p}"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for p in range(2)
    ]
    results = [json.loads(proc.communicate(timeout=300)[0]) for proc in procs]
    server_ms = (served.cpu_seconds() - server_cpu) * 1000
    transitions = sum(r["transitions"] for r in results)
    elapsed = max(r["seconds"] for r in results)
    per = server_ms / transitions
    # The wall-clock rate is what this machine gave; the server's CPU per transition says what one
    # core of its own would carry (the clients' CPU is theirs, on their own hosts in production).
    return f"{AGENTS} agents, {label}", (
        f"{transitions / elapsed:,.0f} transitions/s ({transitions} in {elapsed:.1f}s);"
        f" hitl serve {per:.2f} ms CPU each = {1000 / per:,.0f}/s per core of its own"
    )


def postgres_row(directory: Path) -> tuple[str, str]:
    label = f"{AGENTS} agents, PostgreSQL"
    sys.path.insert(0, str(ROOT / "tests" / "postgres"))
    try:
        from pg_cluster import LocalCluster, find_bin

        if find_bin("initdb") is None:
            return label, "not run: no PostgreSQL server binaries (initdb) on this machine (make pg-server)"
        import psycopg  # noqa: F401
    except ImportError as exc:
        return label, f"not run: {exc}"
    cluster = LocalCluster(durable=True).start()
    try:
        served = Served(directory / "pg", cluster.create_database())
        try:
            return load_row(served, "PostgreSQL")
        finally:
            served.stop()
    finally:
        cluster.destroy()


# -- fan-out and memory ----------------------------------------------------------------------------


async def follow_streams(url: str, streams: int, events: int) -> dict[str, Any]:
    """``streams`` raw SSE streams; prints ``ready`` once all are live, then records, per stream and
    event, arrival time minus the event's commit time (``at``), until each has ``events`` events."""
    uds = url.removeprefix("hitl+unix://")
    client = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=uds),
        base_url="http://hitl",
        timeout=httpx.Timeout(30, read=120),
        limits=httpx.Limits(max_connections=streams + 4),
    )
    ready = 0
    lags: dict[int, list[float]] = {}

    async def one() -> None:
        nonlocal ready
        seen = 0
        async with client.stream("GET", "/v1/stream") as response:
            async for line in response.aiter_lines():
                if line.startswith("event: hello"):
                    ready += 1
                    if ready == streams:
                        print("ready", flush=True)
                elif line.startswith("data: {") and '"seq"' in line:
                    arrived = time.time()
                    event = json.loads(line[6:])
                    at = dt.datetime.fromisoformat(event["at"]).timestamp()
                    lags.setdefault(event["seq"], []).append((arrived - at) * 1000)
                    seen += 1
                    if seen >= events:
                        return

    await asyncio.gather(*(one() for _ in range(streams)))
    await client.aclose()
    return {"lags": lags}


def followers(url: str, processes: int, streams: int, events: int) -> list[subprocess.Popen[str]]:
    """Follower processes (``--follow``), returned once every stream of each is live."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--follow", url, str(streams), str(events)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the followers did not start")
    return procs


async def write_events(url: str, count: int) -> None:
    writer = RemoteMachine(url)
    try:
        for i in range(count):
            await writer.start_task(f"fan-{i}")
            await asyncio.sleep(0.02)
    finally:
        await writer.close()


def fanout_row(served: Served) -> tuple[str, str]:
    procs = followers(served.unix_url, 2, FOLLOWERS // 2, FANOUT_EVENTS)
    asyncio.run(write_events(served.unix_url, FANOUT_EVENTS))
    per_event: dict[int, list[float]] = {}
    for proc in procs:
        out = json.loads(proc.communicate(timeout=300)[0])
        for seq, values in out["lags"].items():
            per_event.setdefault(int(seq), []).extend(values)
    every = [v for values in per_event.values() for v in values]
    slowest = [max(values) for values in per_event.values()]
    figures = (
        f"p50 {statistics.median(every):.1f} ms, p99 {pct(every, 0.99):.1f} ms;"
        f" last of {FOLLOWERS} p99 {pct(slowest, 0.99):.1f} ms ({len(every)} deliveries)"
    )
    return f"fan-out to {FOLLOWERS} live streams", figures


def memory_row(served: Served) -> tuple[str, str]:
    idle = served.rss_mb()
    [proc] = followers(served.unix_url, 1, STREAMS_FOR_MEMORY, 1_000_000)
    try:
        time.sleep(0.5)
        loaded = served.rss_mb()
    finally:
        proc.kill()
        proc.wait(10)
    return (
        f"server memory, {STREAMS_FOR_MEMORY} live streams",
        f"RSS {loaded:.1f} MB ({idle:.1f} MB idle, {(loaded - idle) * 1024 / STREAMS_FOR_MEMORY:.0f} KB per stream)",
    )


def main() -> None:
    rows: list[tuple[str, str]] = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        served = Served(Path(tmp))
        try:
            rows += asyncio.run(round_trip_rows(served))
            loads.append(os.getloadavg()[0])
            rows.append(load_row(served, "SQLite"))
            rows.append(fanout_row(served))
            rows.append(memory_row(served))
        finally:
            served.stop()
        (Path(tmp) / "pg").mkdir()
        loads.append(os.getloadavg()[0])
        rows.append(postgres_row(Path(tmp)))
        loads.append(os.getloadavg()[0])
    print("hitl serve: through the real server (its own process; clients over its Unix socket unless TLS)")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, 1-minute load {min(loads):.1f}-{max(loads):.1f}"
        " during the run; SQLite store unless said"
    )
    width = max(len(label) for label, _ in rows) + 2
    for label, figures in rows:
        print(f"{label:<{width}} {figures}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, agents, seconds, prefix = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
        started = time.monotonic()
        count = asyncio.run(agent_load(url, agents, seconds, prefix))
        print(json.dumps({"transitions": count, "seconds": time.monotonic() - started}))
    elif len(sys.argv) > 1 and sys.argv[1] == "--follow":
        result = asyncio.run(follow_streams(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        print(json.dumps(result))
    else:
        main()
