"""Replicas: two ``hitl serve`` processes on one PostgreSQL database. A deadline that passes is
expired once (both sweep; the transition is a compare-and-set), and a policy applied through one
is enforced by the other."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerFactory
from .test_server_auth import ask, problem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "postgres"))
from pg_cluster import shared_cluster  # tests/postgres: the throwaway cluster

pytestmark = pytest.mark.processes

POLICY = "[deadlines]\nsweep_interval = 0.1\n\n[authorization]\nno_self_approval = true\n"


def test_two_replicas_expire_a_deadline_exactly_once(start_server: ServerFactory) -> None:
    url = shared_cluster().create_database()
    one = start_server(POLICY, listen=True, store=url)
    two = start_server(POLICY, listen=True, store=url)  # same --config: the policy in force, v1
    for i in range(5):
        ask(one, one.token("bot", "agent"), f"deadline-{i}", timeout=1.0)
    deadline = time.monotonic() + 120
    with two.unix_client() as c:
        while True:
            states = [c.get(f"/v1/tasks/deadline-{i}").json()["state"] for i in range(5)]
            if set(states) == {"rejected"} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert set(states) == {"rejected"}, states
        time.sleep(1.0)  # more sweeps by both: none may add an expiry
        for i in range(5):
            events = c.get("/v1/events", params={"task_id": f"deadline-{i}"}).json()["events"]
            decided = [e for e in events if e["action"] in ("reject", "approve")]
            assert len(decided) == 1, events
            assert decided[0]["actor"]["id"] == "hitl:timeout" and decided[0]["data"]["decision"]["type"] == "timeout"
        policy = c.get("/v1/policy").json()
    assert policy["version"] == 1


def test_a_policy_applied_through_one_replica_is_enforced_by_the_other(
    start_server: ServerFactory, tmp_path: Path, hitl_cli: Any
) -> None:
    url = shared_cluster().create_database()
    one = start_server(POLICY, store=url)
    two = start_server(POLICY, listen=True, store=url)
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[authorization]\nno_self_approval = false\n")
    assert hitl_cli("--store", one.unix_url, "policy", "apply", str(lenient)).returncode == 0
    dana = two.token("dana", "operator")
    ask(two, dana, "replica-self")
    deadline = time.monotonic() + 60
    with two.https_client(dana) as c:
        while True:
            response = c.post("/v1/tasks/replica-self/approve", json={})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            problem(response, 403, "not-authorized")  # the old policy, until replica two has polled
            time.sleep(0.2)
        assert response.status_code == 200, response.text
    with two.unix_client() as c:
        assert c.get("/v1/policy").json()["version"] == 2
