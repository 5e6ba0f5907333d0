"""The server's clock: a deadline warning, an escalation, an expiry and their notifications all
happen in ``hitl serve`` itself (no client runs a sweeper), as its policy says: a real server
process, a real webhook receiver, signed notices."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from hitl_core.webhooks import SIGNATURE_HEADER, verify_signature

from .conftest import ServerFactory
from .test_server_auth import ask

pytestmark = pytest.mark.processes

SECRET = "clock-test-secret"


class Receiver(BaseHTTPRequestHandler):
    notices: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        verify_signature(SECRET, self.headers.get(SIGNATURE_HEADER), body)  # raises: the test then sees no notice
        Receiver.notices.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_warning_escalation_expiry_and_their_notices_happen_in_the_server(start_server: ServerFactory) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        policy = (
            "[deadlines]\nsweep_interval = 0.2\nwarn_before = 1.5\n\n"
            '[escalation]\nlevels = [{ assignees = ["lead"], wait = 3 }]\n\n'
            f'[[notify.webhooks]]\nurl = "http://127.0.0.1:{receiver.server_address[1]}/hook"\n'
            f'secret = "{SECRET}"\nmin_severity = "low"\nretries = 0\n'
        )
        server = start_server(policy, listen=True)
        ask(server, server.token("bot", "agent"), "clocked", timeout=3.0, assignees=["alice"])
        deadline = time.monotonic() + 120
        while True:
            kinds = [n["kind"] for n in Receiver.notices if n["task_id"] == "clocked"]
            if "expired" in kinds or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        receiver.shutdown()
    assert kinds[0] == "requested" and kinds[-1] == "expired", kinds
    assert kinds.index("warning") < kinds.index("escalated") < kinds.index("expired"), kinds
    with server.unix_client() as c:
        events = c.get("/v1/events", params={"task_id": "clocked"}).json()["events"]
    actions = [(e["action"], e["actor"]["id"] if e["actor"] else None) for e in events]
    assert actions[-2:] == [("escalate", "escalation:level-1"), ("reject", "hitl:timeout")], actions
    assert events[-2]["data"]["assignees"] == ["lead"]
