"""Instructions per transition, counted by valgrind: the one figure a shared machine cannot skew.

Run with ``make bench`` (or ``python benchmarks/bench_instructions.py [LIFECYCLES]``). Never
pass/fail. Wall and CPU time on this shared 2-core machine swing by ±30 % from one minute to the
next (neighbouring virtual machines), more than most changes a commit makes. Valgrind's callgrind
counts the instructions the process executes, which does not depend on the neighbours: it tells
whether a change made the code do less.

Each row runs ``bench_core.lifecycle`` (start → request → approve → resume → complete) under
``valgrind --tool=callgrind --instr-atstart=no`` and switches the counting on only around the
measured lifecycles (``callgrind_control -i on/off`` from inside the process). The cost of the
switching itself is measured with zero lifecycles and taken off.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CASES = {
    "memory://, no observers": "hitl:0",
    "memory://, 3 observer hooks": "hitl:3",
    "seed design": "seed",
    "sqlite, no observers": "sqlite",
}


async def child(case: str, n: int) -> None:
    """Inside valgrind: warm up, then count ``n`` lifecycles."""
    sys.path.insert(0, str(HERE))
    import bench_core

    from hitl_core import HITLStateMachine

    tmp = tempfile.mkdtemp()
    if case == "seed":
        seed = bench_core.load_seed()
        assert seed is not None, "the seed baseline was not found"
        factory = seed.HITLStateMachine
    elif case == "sqlite":
        counter = iter(range(10**6))

        def factory() -> HITLStateMachine:
            return HITLStateMachine(f"sqlite:///{tmp}/s{next(counter)}.db", load_entrypoints=False)
    else:
        factory = bench_core.make_hitl(int(case.split(":")[1]))
    await bench_core.lifecycle(factory(), 30)
    machine = factory()
    await machine.start_task("warm")
    pid = str(os.getpid())
    # Blocking on purpose: the count must start and stop exactly around the lifecycles.
    subprocess.run(["callgrind_control", "-i", "on", pid], capture_output=True, check=False)  # noqa: ASYNC221
    await bench_core.lifecycle(machine, n)
    subprocess.run(["callgrind_control", "-i", "off", pid], capture_output=True, check=False)  # noqa: ASYNC221
    close = getattr(machine, "close", None)
    if close is not None:
        await close()


def count(case: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                __file__,
                "--child",
                case,
                str(n),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stderr
    match = re.search(r"Collected : (\d+)", out)
    if match is None:
        raise RuntimeError(f"valgrind printed no count:\n{out[-2000:]}")
    return int(match.group(1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], int(sys.argv[3])))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("instructions per transition: not measured (valgrind is not installed: apt-get install valgrind)")
        return
    print(f"Instructions per transition (valgrind callgrind, {n} lifecycles = {n * 5} transitions, counted")
    print("only around them; the cost of switching the count on and off is taken off). Deterministic:")
    print("the same code gives the same count on a busy machine or an idle one.\n")
    print(f"{'':<30}{'instructions':>14}{'vs seed':>10}")
    results: dict[str, float] = {}
    for name, case in CASES.items():
        per = (count(case, n) - count(case, 0)) / (n * 5)
        results[name] = per
    seed = results["seed design"]
    for name, per in results.items():
        print(f"{name:<30}{per:>14,.0f}{per / seed:>9.1f}x")


if __name__ == "__main__":
    main()
