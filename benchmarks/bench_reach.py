"""What hitl ask, the Claude Code hook and the MCP gateway add when a rule allows at once (no person).

Run with ``python benchmarks/bench_reach.py [RUNS] [--compare DIR] [--no-gateway]`` (default 15
process runs, 300 MCP calls). Prints tables; never pass/fail. The machine is shared and loaded:
compare a row with the ``python -c pass`` row measured beside it, not with another machine. Each
process row gives wall time and CPU time (user + system of the child): on a loaded machine the
CPU time moves far less than the wall time. The load average is printed before and after.

``--compare DIR`` runs every process row also against another checkout of hitl (``git archive
<commit> | tar -x -C DIR``; its modules first on ``PYTHONPATH``), interleaved run by run with this one so
that a burst of load hits both alike: the before/after of a change. Both run with
``HITL_PLUGINS`` set to the adapters (the installed entry points are this checkout's).

The last table is where ``hitl ask``'s time goes: ``python -X importtime``, cumulative
microseconds per top-level import, largest first.

* ``hitl ask`` and the hook are whole processes (interpreter start to exit), as a shell or
  Claude Code runs them, on a SQLite file with a ``hitl.toml`` rule that allows the call. Source
  is compiled first (pip does that on install; this environment may set PYTHONDONTWRITEBYTECODE).
* The gateway: one ``tools/call`` through ``Gateway`` in-process vs the same call made directly
  on the server, on memory:// and on a SQLite file (each call records its task: start, ask, the
  rule's decision, claim, deliver).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
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


ADAPTERS = "langgraph,pydantic_ai,openai_agents,crewai,mcp"


def _env(workdir: Path, tree: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HITL_STORE=f"sqlite:///{workdir / 'hitl.db'}", XDG_CONFIG_HOME=str(workdir / "config"))
    if tree is not None:
        env.update(PYTHONPATH=f"{tree}{os.pathsep}{tree / 'plugins'}", HITL_PLUGINS=ADAPTERS)
    return env


def _timed(argv: list[str], workdir: Path, stdin: bytes | None = None, tree: Path | None = None) -> tuple[float, float]:
    """Wall and CPU (the child's user + system) seconds of one process run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, cwd=workdir, env=_env(workdir, tree), check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv[3:5]} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _row(name: str, samples: list[tuple[float, float]]) -> None:
    wall = sorted(s[0] * 1000 for s in samples)
    cpu = sorted(s[1] * 1000 for s in samples)
    p90 = wall[min(len(wall) - 1, int(len(wall) * 0.9))]
    print(f"  {name:<50} {statistics.median(wall):>8.1f} {wall[0]:>8.1f} {p90:>8.1f} {statistics.median(cpu):>8.1f}")


def _hook_event(i: int) -> bytes:
    event = {
        "session_id": "bench",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "ls -la"},
        "tool_use_id": f"toolu_{i}",
    }
    return json.dumps(event).encode()


def processes(runs: int, compare: Path | None) -> None:
    py = sys.executable
    trees: dict[str, Path | None] = {"": None}
    if compare is not None:
        trees = {"before: ": compare, "after:  ": None}
    for tree in trees.values():
        where = tree or ROOT
        for package in ("hitl_core", "hitl_tui", "plugins"):
            subprocess.run([py, "-m", "compileall", "-q", str(where / package)], env=_env(ROOT), check=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "hitl.toml").write_text(RULES)
        cases: list[tuple[str, list[str], bool]] = [
            ("python -c pass (interpreter start)", [py, "-c", "pass"], False),
            ("import hitl_core", [py, "-c", "import hitl_core"], False),
            ("import the core (machine + policies)", [py, "-c", "import hitl_core.machine, hitl_core.policies"], False),
            ("hitl --help", [py, "-m", "hitl_core.cli", "--help"], False),
            ("hitl ask, allowed by a rule", [py, "-m", "hitl_core.cli", "ask", "List", "--action", "ls"], False),
            ("hitl hook claude-code, allowed by a rule", [py, "-m", "hitl_core.cli", "hook", "claude-code"], True),
        ]
        print(f"\nper process, start to exit, ms ({runs} runs; wall median, best, p90; CPU median)")
        print(f"  {'':<50} {'median':>8} {'best':>8} {'p90':>8} {'cpu':>8}")
        for name, argv, is_hook in cases:
            if name.startswith("python -c pass"):
                samples = {"": [_timed(argv, workdir) for _ in range(runs)]}
                _row(name, samples[""])
                continue
            per_tree: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
            for i in range(runs):  # interleaved: both trees see the same load
                for label, tree in trees.items():
                    stdin = _hook_event(i * len(trees) + len(per_tree[label])) if is_hook else None
                    per_tree[label].append(_timed(argv, workdir, stdin, tree))
            for label, samples_of in per_tree.items():
                _row(label + name, samples_of)
        _import_profile(workdir)


def _import_profile(workdir: Path, top: int = 14) -> None:
    """Where ``hitl ask``'s start goes: cumulative import time of each top-level import."""
    argv = [sys.executable, "-X", "importtime", "-m", "hitl_core.cli", "ask", "List", "--action", "ls"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=workdir, env=_env(workdir), check=True)
    entries: list[tuple[int, int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        entries.append((len(name) - len(name.lstrip()), int(cumulative), name.strip()))
    top_level = min(depth for depth, _, _ in entries)  # what the interpreter and `hitl ask` import
    rows = [(cumulative, name) for depth, cumulative, name in entries if depth == top_level]
    total = sum(c for c, _ in rows)
    print(f"\nhitl ask's imports (-X importtime, one run, cumulative ms; {total / 1000:.1f} ms in all)")
    for cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"  {name:<50} {cumulative / 1000:>8.1f}")


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=15)
    parser.add_argument("--compare", type=Path, metavar="DIR", help="another checkout: before/after rows")
    parser.add_argument("--no-gateway", action="store_true", help="only the process rows")
    args = parser.parse_args()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"bench_reach: Python {platform.python_version()}, {os.cpu_count()} cores, load average {load[0]:.1f}")
    processes(args.runs, args.compare.resolve() if args.compare else None)
    if not args.no_gateway:
        asyncio.run(gateway(300))
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"\nload average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)")


if __name__ == "__main__":
    main()
