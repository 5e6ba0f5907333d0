"""Both terminals of the two-process example in one command, on a throwaway store.

Starts ``agent.py`` as its own process, waits until it asks, approves with the real ``hitl``
command line (a third process) and prints what the agent printed. ``make``-free:
``python examples/two_processes/run_both.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hitl-two-processes-") as tmp:
        env = {
            **os.environ,
            "HITL_STORE": f"sqlite:///{Path(tmp) / 'hitl.db'}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        agent = subprocess.Popen([sys.executable, str(HERE / "agent.py")], stdout=subprocess.PIPE, text=True, env=env)
        assert agent.stdout is not None
        for line in agent.stdout:
            print(f"[agent]    {line.rstrip()}")
            if "hitl reject" in line:  # the last line of its "run this" hint
                break
        cli = [sys.executable, "-m", "hitl_core.cli"]
        listed = subprocess.run([*cli, "ls", "--state", "waiting"], env=env, capture_output=True, text=True)
        for line in listed.stdout.splitlines():
            print(f"[operator] {line}")
        approved = subprocess.run(
            [*cli, "approve", "cleanup-staging", "--as", "operator", "--comment", "go ahead"],
            env=env,
            capture_output=True,
            text=True,
        )
        print(f"[operator] {approved.stdout.strip() or approved.stderr.strip()}")
        for line in agent.stdout:
            print(f"[agent]    {line.rstrip()}")
        code = agent.wait(30)
        verified = subprocess.run([*cli, "audit", "verify"], env=env, capture_output=True, text=True)
        print(f"[operator] {verified.stdout.strip() or verified.stderr.strip()}")
        return code or approved.returncode or verified.returncode


if __name__ == "__main__":
    sys.exit(main())
