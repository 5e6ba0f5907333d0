"""What hitl ask, the Claude Code hook and the MCP gateway add when a rule allows at once (no person).

Run with ``python benchmarks/bench_reach.py [RUNS]`` (default 15 process runs, 300 MCP calls).
Prints tables; never pass/fail. The machine is shared and loaded: compare a row with the
``python -c pass`` and "import the core" rows measured beside it, not with another machine.

* ``hitl ask`` and the hook are whole processes (interpreter start to exit), as a shell or
  Claude Code runs them, on a SQLite file with a ``hitl.toml`` rule that allows the call. Source
  is compiled first (pip does that on install; this environment may set PYTHONDONTWRITEBYTECODE).
* The gateway: one ``tools/call`` through ``Gateway`` in-process vs the same call made directly
  on the server, on memory:// and on a SQLite file (each call records its task: start, ask, the
  rule's decision, claim, deliver).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RULES = """
[[rules]]
id = "listing"
decision = "allow"
action = "ls"

[[rules]]
id = "read-only"
decision = "allow"
action = "Bash"
args = { command = { regex = "^ls\\\\b" } }

[[rules]]
id = "sums"
decision = "allow"
action = "add"
"""


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HITL_STORE=f"sqlite:///{workdir / 'hitl.db'}", XDG_CONFIG_HOME=str(workdir / "config"))
    return env


def _timed(argv: list[str], workdir: Path, stdin: bytes | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, cwd=workdir, env=_env(workdir), check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[3:5]} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def _row(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"  {name:<44} {statistics.median(ms):>9.1f} {ms[0]:>9.1f} {p90:>9.1f}")


def processes(runs: int) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "hitl_core")], env=_env(ROOT), check=True)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "hitl.toml").write_text(RULES)
        cases: list[tuple[str, list[str], bytes | None]] = [
            ("python -c pass (interpreter start)", [py, "-c", "pass"], None),
            ("import the core (machine + policies)", [py, "-c", "import hitl_core.machine, hitl_core.policies"], None),
            ("hitl ask, allowed by a rule", [py, "-m", "hitl_core.cli", "ask", "List", "--action", "ls"], None),
        ]
        print(f"\nper process, start to exit, ms ({runs} runs; median, best, p90)")
        print(f"  {'':<44} {'median':>9} {'best':>9} {'p90':>9}")
        for name, argv, stdin in cases:
            _row(name, [_timed(argv, workdir, stdin) for _ in range(runs)])
        hook = [py, "-m", "hitl_core.cli", "hook", "claude-code"]
        samples = []
        for i in range(runs):
            event = {
                "session_id": "bench",
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_input": {"command": "ls -la"},
                "tool_use_id": f"toolu_{i}",
            }
            samples.append(_timed(hook, workdir, json.dumps(event).encode()))
        _row("hitl hook claude-code, allowed by a rule", samples)


async def gateway(calls: int) -> None:
    sys.path.insert(0, str(ROOT))
    from hitl_mcp import Gateway
    from mcp import Client

    from hitl_core import HITLStateMachine
    from hitl_core.policies import parse_config
    from tests.reach.mcp_server import SERVER

    # MCPServer (the test server) logs at INFO through rich: measure the calls, not the logging
    logging.getLogger().setLevel(logging.WARNING)

    async def per_call(client: Client) -> float:
        for _ in range(20):  # warm up
            await client.call_tool("add", {"a": 1, "b": 2})
        started = time.perf_counter()
        for _ in range(calls):
            await client.call_tool("add", {"a": 1, "b": 2})
        return (time.perf_counter() - started) / calls

    rounds = 7
    print(
        f"\nMCP tools/call, in-process client and server, ms per call ({calls} calls, best of {rounds} interleaved rounds)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            Client(SERVER, cache=None) as direct,
            HITLStateMachine("memory://", config=parse_config(RULES), load_entrypoints=False) as in_memory,
            HITLStateMachine(f"sqlite:///{tmp}/hitl.db", config=parse_config(RULES), load_entrypoints=False) as on_disk,
            Client(SERVER, cache=None, mode="legacy") as upstream_a,
            Client(SERVER, cache=None, mode="legacy") as upstream_b,
            Client(SERVER, cache=None, mode="legacy") as upstream_c,
            Client(_bare_proxy(upstream_c), cache=None) as via_bare,
            Client(Gateway(upstream_a, in_memory).server(), cache=None) as via_memory,
            Client(Gateway(upstream_b, on_disk).server(), cache=None) as via_sqlite,
        ):
            paths = {"direct (no gateway)": direct, "a bare pass-through proxy (no hitl)": via_bare}
            paths["through the gateway, memory://"] = via_memory
            paths["through the gateway, sqlite file"] = via_sqlite
            best = {name: float("inf") for name in paths}
            for _ in range(rounds):  # interleaved: a burst of load hits every path alike
                for name, client in paths.items():
                    best[name] = min(best[name], await per_call(client) * 1000)
    direct_ms = best["direct (no gateway)"]
    for name, ms in best.items():
        added = f"   (+{ms - direct_ms:.2f} added)" if name != "direct (no gateway)" else ""
        print(f"  {name:<44} {ms:>9.2f}{added}")


def _bare_proxy(upstream: Any) -> Any:
    """The same extra MCP hop as the gateway, without hitl: what a proxy costs by itself."""
    from mcp.server.lowlevel import Server

    async def list_tools(ctx: Any, params: Any) -> Any:
        return await upstream.list_tools()

    async def call_tool(ctx: Any, params: Any) -> Any:
        return await upstream.call_tool(params.name, params.arguments or {})

    return Server("bare", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench_reach: Python {platform.python_version()}, {os.cpu_count()} cores, load average {load:.1f}")
    processes(runs)
    asyncio.run(gateway(300))


if __name__ == "__main__":
    main()
