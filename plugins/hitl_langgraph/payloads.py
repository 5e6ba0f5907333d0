"""What a pending LangGraph interrupt asks a person, and how their decision goes back.

Pure data in, data out: nothing here imports LangGraph, so the mapping is testable on its own and
the resumer can rebuild it from a checkpoint alone.

An interrupt's value is read in one of four ways:

``batched``
    LangChain ``HumanInTheLoopMiddleware`` in its default mode: ``{"action_requests": [...],
    "review_configs": [...]}``. One ``Ask`` per action request; the resume value is
    ``{"decisions": [...]}`` with one middleware decision per request, in their order.
``per_call``
    The middleware's ``interrupt_mode="per_call"``: ``{"type": "tool_approval", "tool_call_id",
    "name", "args", "description"}``; the allowed decisions come from the interrupt's
    ``response_schema``. The resume value is one middleware decision.
``typed``
    Any other interrupt that declared a ``response_schema``: it waits for a typed answer, so the
    person may only respond, and the resume value is their response itself.
``plain``
    Anything else. The value is shown as context; the resume value is a plain decision::

        {"type": "approve" | "reject" | "edit" | "respond",
         "actor": "<who decided>",
         "message": "<reason or comment>",   # when there is one
         "args": {...},                       # edit: the edited args
         "response": <any JSON>}              # respond: the answer

    A dict value may name the step it guards — ``{"action": "deploy", "args": {...}}`` (or
    ``"tool"``/``"name"`` for ``"action"``) — and then the console shows it as the action and
    offers ``edit``; ``"reason"``/``"question"``/``"description"`` become the reason, and
    ``"severity"`` the severity.

Middleware decisions, in LangChain's own format: ``{"type": "approve"}``,
``{"type": "edit", "edited_action": {"name", "args"}}``, ``{"type": "reject", "message"}``
(the middleware returns it to the model as an error tool result), ``{"type": "respond",
"message"}`` (a successful tool result written by the person).

A ``timeout`` or ``policy`` decision goes back as the decision it applied (``outcome``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from hitl_core import Action, Decision, DecisionType, HITLError, InterruptKind
from hitl_core.adapters import Request

Shape = Literal["batched", "per_call", "typed", "plain"]

ALL_DECISIONS: tuple[str, ...] = ("approve", "reject", "edit", "respond")

_REASON_KEYS = ("reason", "question", "description", "message")
_ACTION_KEYS = ("action", "tool", "name")
_SEVERITIES = ("low", "medium", "high", "critical")


#: One question for a person (the shared ``Request``): becomes one hitl task.
Ask = Request


@dataclass(slots=True)
class PendingInterrupt:
    """A pending LangGraph interrupt read into the questions it asks (one, or one per batched call)."""

    interrupt_id: str
    shape: Shape
    asks: list[Ask] = field(default_factory=list)

    def resume_value(self, decisions: list[Decision]) -> Any:
        """The value to put under this interrupt's id in ``Command(resume={...})``."""
        if len(decisions) != len(self.asks):
            raise HITLError(f"interrupt {self.interrupt_id}: {len(decisions)} decisions for {len(self.asks)} questions")
        if self.shape == "batched":
            return {"decisions": [_middleware_decision(a, d) for a, d in zip(self.asks, decisions, strict=True)]}
        ask, decision = self.asks[0], decisions[0]
        if self.shape == "per_call":
            return _middleware_decision(ask, decision)
        if self.shape == "typed":
            if decision.effective_type.value != "respond":
                raise HITLError(
                    f"interrupt {self.interrupt_id} waits for a typed answer (it has a response_schema), "
                    f"but the decision was {decision.effective_type.value} by {decision.actor.id}: only a response "
                    "can resume it"
                )
            return decision.response
        return plain_decision(decision)


def plain_decision(decision: Decision) -> dict[str, Any]:
    """The documented resume value for a plain interrupt (see the module docstring)."""
    value: dict[str, Any] = {"type": decision.effective_type.value, "actor": decision.actor.id}
    if decision.message is not None:
        value["message"] = decision.message
    if decision.type is DecisionType.EDIT:
        value["args"] = decision.edited_args
    if decision.type is DecisionType.RESPOND:
        value["response"] = decision.response
    return value


def _middleware_decision(ask: Ask, decision: Decision) -> dict[str, Any]:
    outcome = decision.effective_type.value
    if outcome == "approve":
        return {"type": "approve"}
    if outcome == "edit":
        name = ask.action.name if ask.action is not None else ""
        return {"type": "edit", "edited_action": {"name": name, "args": decision.edited_args or {}}}
    if outcome == "respond":
        response = decision.response
        return {"type": "respond", "message": response if isinstance(response, str) else json.dumps(response)}
    rejected: dict[str, Any] = {"type": "reject"}
    if decision.message:
        rejected["message"] = decision.message
    return rejected


def json_safe(value: Any) -> Any:
    """``value`` as JSON, with anything JSON can't hold shown by its ``repr`` (it is only context)."""
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _allowed_from_schema(schema: dict[str, Any] | None) -> list[str]:
    """The decision types a middleware ``response_schema`` accepts (all four if it doesn't say)."""
    if not isinstance(schema, dict):
        return list(ALL_DECISIONS)
    mapping = (schema.get("discriminator") or {}).get("mapping")
    if isinstance(mapping, dict) and mapping:
        found = [str(k) for k in mapping]
    else:
        const = ((schema.get("properties") or {}).get("type") or {}).get("const")
        found = [str(const)] if const is not None else list(ALL_DECISIONS)
    allowed = [d for d in ALL_DECISIONS if d in found]
    return allowed or list(ALL_DECISIONS)


def _short(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_interrupt(
    interrupt_id: str, value: Any, response_schema: Any = None, node: str | None = None
) -> PendingInterrupt:
    """Read one pending interrupt (its id, value and ``response_schema``) into what to ask."""
    if (
        isinstance(value, dict)
        and isinstance(value.get("action_requests"), list)
        and isinstance(value.get("review_configs"), list)
    ):
        return _read_batched(interrupt_id, value, node)
    if isinstance(value, dict) and value.get("type") == "tool_approval" and "tool_call_id" in value:
        return _read_per_call(interrupt_id, value, response_schema)
    if response_schema is not None:
        return _read_typed(interrupt_id, value, response_schema, node)
    return _read_plain(interrupt_id, value, node)


def _tool_ask(name: str, args: Any, description: str | None, allowed: list[str], context: dict[str, Any]) -> Ask:
    args = json_safe(args) if isinstance(args, dict) else {"_args": json_safe(args)}
    if description:
        context["description"] = description
    reason = _short(description.splitlines()[0]) if description else f"Tool call {name} needs review"
    if reason.lower().startswith("tool execution requires approval"):
        reason = f"{name}: tool execution requires approval"
    return Ask(
        reason=reason,
        context=context,
        allowed_decisions=allowed,
        kind=InterruptKind.QUESTION if allowed == ["respond"] else InterruptKind.APPROVAL,
        action=Action(name=name, args=args),
        step=name,
    )


def _read_batched(interrupt_id: str, value: dict[str, Any], node: str | None) -> PendingInterrupt:
    configs: dict[str, list[str]] = {}
    for config in value["review_configs"]:
        if isinstance(config, dict) and "action_name" in config:
            configs[str(config["action_name"])] = [
                d for d in ALL_DECISIONS if d in (config.get("allowed_decisions") or ALL_DECISIONS)
            ]
    requests = value["action_requests"]
    asks = []
    for index, request in enumerate(requests):
        if not isinstance(request, dict) or "name" not in request:
            raise HITLError(f"interrupt {interrupt_id}: action request {index} has no tool name: {request!r}")
        name = str(request["name"])
        context: dict[str, Any] = {
            "middleware": "HumanInTheLoopMiddleware (batched)",
            "position": f"{index + 1} of {len(requests)}",
        }
        if node:
            context["node"] = node
        asks.append(
            _tool_ask(
                name,
                request.get("args", {}),
                request.get("description"),
                configs.get(name) or list(ALL_DECISIONS),
                context,
            )
        )
    return PendingInterrupt(interrupt_id, "batched", asks)


def _read_per_call(interrupt_id: str, value: dict[str, Any], response_schema: Any) -> PendingInterrupt:
    context = {"middleware": "HumanInTheLoopMiddleware (per call)", "tool_call_id": value.get("tool_call_id")}
    ask = _tool_ask(
        str(value.get("name", "tool")),
        value.get("args", {}),
        value.get("description"),
        _allowed_from_schema(response_schema),
        context,
    )
    return PendingInterrupt(interrupt_id, "per_call", [ask])


def _plain_fields(value: Any) -> tuple[str | None, Action | None, str | None]:
    if isinstance(value, str):
        return value, None, None
    if not isinstance(value, dict):
        return None, None, None
    reason = next((value[k] for k in _REASON_KEYS if isinstance(value.get(k), str) and value[k].strip()), None)
    action = None
    name = next((value[k] for k in _ACTION_KEYS if isinstance(value.get(k), str) and value[k].strip()), None)
    if name is not None and isinstance(value.get("args"), dict):
        action = Action(name=name, args=json_safe(value["args"]))
    severity = value.get("severity")
    severity = severity.lower() if isinstance(severity, str) and severity.lower() in _SEVERITIES else None
    return reason, action, severity


def _read_plain(interrupt_id: str, value: Any, node: str | None) -> PendingInterrupt:
    reason, action, severity = _plain_fields(value)
    context: dict[str, Any] = {"value": json_safe(value)}
    if node:
        context["node"] = node
    allowed = ["approve", "reject", "edit", "respond"] if action is not None else ["approve", "reject", "respond"]
    ask = Ask(
        reason=_short(reason) if reason else f"LangGraph interrupt in {node or 'a node'}",
        context=context,
        allowed_decisions=allowed,
        action=action,
        step=node or (action.name if action else None),
        severity=severity,
    )
    return PendingInterrupt(interrupt_id, "plain", [ask])


def _read_typed(interrupt_id: str, value: Any, response_schema: Any, node: str | None) -> PendingInterrupt:
    reason, _, severity = _plain_fields(value)
    context: dict[str, Any] = {"value": json_safe(value)}
    if node:
        context["node"] = node
    schema = json_safe(response_schema) if isinstance(response_schema, dict) else None
    ask = Ask(
        reason=_short(reason) if reason else f"LangGraph asks for an answer in {node or 'a node'}",
        context=context,
        allowed_decisions=["respond"],
        kind=InterruptKind.QUESTION,
        response_schema=schema,
        step=node,
        severity=severity,
    )
    return PendingInterrupt(interrupt_id, "typed", [ask])
