"""A CrewAI crew whose publish tool waits for a person in ``hitl console``.

Offline: the editor agent runs on ``OfflineToolLLM``, which asks to publish two articles and then
reports what it was told; no key, no network, CrewAI's telemetry and tracing off. Run it (in an
environment with the ``crewai`` extra: ``make test-crewai`` builds ``.venv-crewai``), then decide in
the console on the same store::

    .venv-crewai/bin/python examples/crewai_publish.py   # waits for your decisions
    hitl console                                          # in another terminal: a / r / e / m

Approve publishes as asked, edit (``e``) publishes with your arguments, respond (``m``) skips the
tool and hands your text to the agent as its result, reject (``r``) blocks it and the agent reads
your reason. The store is ``--store URL``, else ``$HITL_STORE``, else the ``hitl`` command's
default SQLite file. ``--decide-for-me`` starts a stand-in reviewer that publishes the finished
article with a corrected title and rejects the draft, for an unattended run.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

# Offline and quiet: set before CrewAI is imported, which reads them at import time.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")

from crewai import Agent, Crew, Task
from crewai.tools import tool
from hitl_crewai import OfflineToolLLM, ToolApprovals

from hitl_core import HITLStateMachine
from hitl_core.cli_commands import resolve_store_url


@tool("publish")
def publish(title: str, section: str) -> str:
    """Publish the article with this title in this section of the site."""
    return f"published {title!r} in {section}"


def stand_in_reviewer(machine: HITLStateMachine, run_id: str, stop: threading.Event) -> None:
    """Decides as a person at the console would: fix the finished article's title, refuse the draft."""
    decided: set[str] = set()
    while not stop.is_set():
        for task in machine.sync.get_pending_approvals():
            if task.run_id != run_id or task.task_id in decided or task.interrupt_point is None:
                continue
            args = task.interrupt_point.action.args if task.interrupt_point.action else {}
            if "draft" in str(args.get("title", "")).lower():
                machine.sync.reject(task.task_id, "stand-in-editor", "drafts never go out; finish it first")
            else:
                machine.sync.edit(
                    task.task_id,
                    {**args, "title": str(args.get("title", "")).title()},
                    "stand-in-editor",
                    message="house style: title case",
                )
            decided.add(task.task_id)
        time.sleep(0.1)


def run(store: str, decide_for_me: bool) -> str:
    llm = OfflineToolLLM(
        [
            [
                ("publish", {"title": "hitl 1.0 is out", "section": "news"}),
                ("publish", {"title": "DRAFT: adapters deep dive", "section": "blog"}),
            ]
        ]
    )
    editor = Agent(
        role="editor",
        goal="Publish this week's articles",
        backstory="Runs the site.",
        llm=llm,
        tools=[publish],
        verbose=False,
    )
    task = Task(
        description="Publish this week's articles and report what went out.",
        expected_output="what was published",
        agent=editor,
    )
    crew = Crew(agents=[editor], tasks=[task], verbose=False)
    machine = HITLStateMachine(store)
    run_id = f"publish-{crew.id.hex[:6]}"
    print(f"store: {store}")
    print(f"run {run_id}: the editor asks to publish two articles; decide them in `hitl console --store {store}`")
    stop = threading.Event()
    reviewer = threading.Thread(target=stand_in_reviewer, args=(machine, run_id, stop), daemon=True)
    if decide_for_me:
        reviewer.start()
    try:
        with ToolApprovals(machine, tools=["publish"], run_id=run_id):
            output = crew.kickoff()
    finally:
        stop.set()
    for done in machine.sync.get_all_tasks():
        if done.run_id == run_id:
            print(f"  {done.task_id}: {done.state} — {done.result}")
    print(f"the crew's final answer:\n{output.raw}")
    return output.raw


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: $HITL_STORE, else the hitl command's SQLite file)")
    parser.add_argument(
        "--decide-for-me",
        action="store_true",
        help="a stand-in reviewer decides (edit the finished one, reject the draft) instead of you",
    )
    args = parser.parse_args(argv)
    run(resolve_store_url(args.store), args.decide_for_me)


if __name__ == "__main__":
    main()
