"""The policy ``hitl demo`` runs with: short deadlines, a two-level escalation, four eyes on
critical requests, and rules that approve routine searches and deny production deletes — so a
minute of the demo shows each of them. Not a recommendation for production (see
``examples/hitl.toml`` for that).
"""

from __future__ import annotations

import json

from .config import PolicyConfig, parse_config

#: A colleague the demo fleet simulates, who gives one of the two approvals a critical request needs.
DEMO_COLLEAGUE = "sam"

_DEMO_TOML = """
[deadlines]
sweep_interval = {sweep}
warn_before = {warn}
[deadlines.default_timeout]
medium = {medium}
high = {high}

[escalation]
severities = ["high", "critical"]
levels = [
  {{ assignees = [{operator}, "oncall-secondary"], wait = {wait} }},
  {{ assignees = [{operator}, "role:eng-manager"], wait = {wait} }},
]

[authorization]
no_self_approval = true
enforce_assignees = true
four_eyes = ["critical"]
[authorization.actors]
{colleague} = ["eng-manager"]

[[rules]]
id = "routine-search"
decision = "allow"
action = "web_search"
severity = ["low", "medium"]
message = "routine, read-only"

[[rules]]
id = "no-prod-deletes"
decision = "deny"
action = "sql_execute"
args = {{ statement = {{ regex = "(?i)^\\\\s*(delete|drop|truncate)\\\\b" }}, database = "prod-*" }}
message = "destructive SQL on production is never run by an agent"
"""


def demo_config(operator: str, *, scale: float = 1.0) -> PolicyConfig:
    """The demo's policy, with ``operator`` (who runs the console) on every escalation level.

    ``scale`` multiplies every wait (a test runs the same policy in a few seconds).
    """
    text = _DEMO_TOML.format(
        operator=json.dumps(operator),
        colleague=json.dumps(DEMO_COLLEAGUE),
        sweep=min(0.5, 0.5 * scale),
        warn=10 * scale,
        medium=60 * scale,
        high=30 * scale,
        wait=15 * scale,
    )
    return parse_config(text, name="<hitl demo policy>")
