"""How ``store_before_glossary.db`` was made: with hitl as it was before the glossary renames (commit
bdc06f6, run with that tree on PYTHONPATH), through the words it used then — ``approver=``,
``comment=``, ``rejector=``, ``reason=``, ``responder=``. Kept to say what the file holds; running it
with today's hitl would warn at every retired word.

    PYTHONPATH=<bdc06f6 tree> python make_store_before_glossary.py sqlite:///store_before_glossary.db
"""

from __future__ import annotations

import asyncio
import sys

from hitl_core import HITLStateMachine


async def main(url: str) -> None:
    async with HITLStateMachine(url, load_entrypoints=False) as m:
        await m.start_task("approved", agent="bot")
        await m.request_approval("approved", "deploy", action="deploy", args={"env": "prod"})
        await m.approve("approved", approver="alice", comment="window is open")
        await m.resume("approved")
        await m.complete("approved", {"ok": True})
        await m.start_task("rejected")
        await m.request_approval("rejected", "drop table")
        await m.reject("rejected", rejector="bob", reason="never on a Friday")
        await m.start_task("edited")
        await m.request_approval("edited", "refund", action="refund", args={"amount": 50})
        await m.edit("edited", {"amount": 40}, approver="carol", comment="cap")
        await m.start_task("answered")
        await m.request_approval("answered", "which card?", kind="question")
        await m.respond("answered", "the Visa", responder="dana")
        await m.start_task("waiting")
        await m.request_approval("waiting", "delete the backups", severity="high")
        await m.start_task("failed")
        await m.fail("failed", "boom")


asyncio.run(main(sys.argv[1]))
