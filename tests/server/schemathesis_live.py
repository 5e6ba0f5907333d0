"""schemathesis against a live ``hitl serve``, from the OpenAPI document the server itself serves.

``make test-schemathesis`` runs this with the main environment's Python (the server is this tree,
started as tests/server/conftest.py starts it: its own process, a fresh SQLite store and token
file, TLS on 127.0.0.1) and hands the URL and an admin token to the ``schemathesis`` command of
``.venv-schemathesis`` (schemathesis requires pytest 9, which the main environment cannot share).

The checks: no 5xx (``not_a_server_error``), every status and content type one the document
declares, every body valid against its declared schema. The event stream (``/v1/stream``) is left
out: it is an endless ``text/event-stream`` by design, which schemathesis would read until its
request timeout; tests/server covers it (resume, overflow, revocation). Exits with schemathesis'
exit code, after checking the server survived and logged no internal error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.server.conftest import ServerProcess, server_directory

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> int:
    schemathesis = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".venv-schemathesis/bin/schemathesis")
    max_examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10")
    directory = server_directory()
    # The fuzz sends bad and missing credentials too: with the default limit the address is soon
    # answered 429 for everything, and the fuzz would stop reaching the handlers behind it.
    server = ServerProcess(directory, listen=True, extra=("--auth-failure-limit", "1000000"))
    try:
        server.start()
        token = server.token("schemathesis", "admin")
        started = time.monotonic()
        command = [
            schemathesis,
            "run",
            f"{server.https_url}/openapi.json",
            "--url",
            server.https_url,
            "--header",
            f"Authorization: Bearer {token}",
            "--tls-verify",
            str(server.cert),
            "--checks",
            CHECKS,
            "--max-examples",
            max_examples,
            "--exclude-operation-id",
            "stream",
            # One worker: with two threads, Hypothesis' lambda-description cache (used by
            # schemathesis' coverage phase) races and raises "AST constructor recursion depth
            # mismatch" inside schemathesis itself, failing a run that found nothing wrong.
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--seed",
            os.environ.get("SCHEMATHESIS_SEED", "1"),
            "--no-color",
        ]
        shown = [part if not part.startswith("Authorization") else "Authorization: Bearer ***" for part in command]
        print("$", " ".join(shown), flush=True)
        code = subprocess.run(
            command, cwd=directory, env={k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_HOOKS")}
        ).returncode
        print(f"schemathesis exited {code} after {time.monotonic() - started:.0f}s", flush=True)
        if server.proc is None or server.proc.poll() is not None:
            print("hitl serve died during the run:\n" + server.log.read_text()[-3000:], file=sys.stderr)
            return 1
        log = server.log.read_text()
        if "internal error" in log or "Traceback" in log:
            print("hitl serve logged an internal error:\n" + log[-5000:], file=sys.stderr)
            return 1
        return code
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
