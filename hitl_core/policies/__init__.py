"""Policies from a ``hitl.toml``: deadlines, escalation, who may decide, auto-decision rules, notifiers.

Each is an ordinary plugin on the core's hooks (``hitl_assess``, ``hitl_auto_decide``,
``hitl_authorize``, ``hitl_deadline_expired``, ``hitl_approval_requested``,
``hitl_deadline_warning``, ``hitl_transition``), registered exactly as a third-party plugin
would be. Nothing here is active unless asked for: ``HITLStateMachine(config=…)`` with a path,
a ``PolicyConfig``, or True to use the ``hitl.toml`` that ``find_config`` finds (the CLI and
the console do that). Without a config the machine behaves as it always did.

Public: ``PolicyConfig``, ``ConfigError``, ``load_config``, ``parse_config``, ``find_config``,
``install_policies``, ``Policies``, ``DeadlineSweeper``, ``evaluate`` and ``evaluate_async`` (the
rule engine), the notifiers, and ``verify_signature`` for webhook receivers (its home is the
dependency-free ``hitl_core.webhooks``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..webhooks import WebhookSignatureError, verify_signature
from .authorization import AuthorizationPlugin
from .config import ConfigError, PolicyConfig, find_config, found_config, load_config, parse_config
from .deadlines import DeadlinePlugin, DeadlineSweeper, SweepReport, escalation_level
from .host import PolicyHost
from .notifiers import (
    DesktopNotifier,
    Notice,
    Notifier,
    NotifierPlugin,
    TerminalNotifier,
    WebhookNotifier,
    build_notifiers,
    sign,
)
from .rules import RulesPlugin, Verdict, evaluate, evaluate_async

#: What ``HITLStateMachine(config=…)`` accepts: a file, a loaded config, or True to look for one.
PolicyConfigSource = PolicyConfig | str | os.PathLike[str] | bool


@dataclass(slots=True)
class Policies:
    """The policy plugins installed on one machine, and its deadline sweeper."""

    config: PolicyConfig
    plugins: list[object] = field(default_factory=list)
    sweeper: DeadlineSweeper | None = None
    notifier: NotifierPlugin | None = None

    def start(self) -> None:
        """Called by the machine once its store is open, in its event loop."""
        if self.sweeper is not None:
            self.sweeper.start()

    async def stop(self) -> None:
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.notifier is not None:
            await self.notifier.drain(timeout=10.0)


def resolve_config(source: PolicyConfigSource) -> PolicyConfig | None:
    if isinstance(source, PolicyConfig):
        return source
    if source is True:
        path = find_config()
        return load_config(path) if path is not None else None
    if source is False:
        return None
    return load_config(Path(source))


def install_policies(machine: PolicyHost, source: PolicyConfigSource) -> Policies | None:
    """Register the plugins a config asks for on ``machine``; None when there is no config."""
    config = resolve_config(source)
    if config is None:
        return None
    policies = Policies(config)
    host = machine.plugins
    # Registered in this order, called last-first: rules decide before a person is notified.
    if config.authorization is not None:
        policies.plugins.append(AuthorizationPlugin(config.authorization, config.roles))
    deadlines = config.deadlines
    if deadlines.default_timeout or config.escalation is not None:
        policies.plugins.append(DeadlinePlugin(machine, deadlines, config.escalation))
    if config.rules:
        policies.plugins.append(RulesPlugin(config.rules))
    notifiers = build_notifiers(config.notify, config.source)
    if notifiers:
        policies.notifier = NotifierPlugin(notifiers)
        policies.plugins.append(policies.notifier)
    for plugin in policies.plugins:
        host.register(plugin, name=f"hitl.policies.{type(plugin).__name__}")
    if deadlines.sweep:
        policies.sweeper = DeadlineSweeper(machine, deadlines)
    return policies


__all__ = [
    "AuthorizationPlugin",
    "ConfigError",
    "DeadlinePlugin",
    "DeadlineSweeper",
    "DesktopNotifier",
    "Notice",
    "Notifier",
    "NotifierPlugin",
    "Policies",
    "PolicyConfig",
    "PolicyConfigSource",
    "PolicyHost",
    "RulesPlugin",
    "SweepReport",
    "TerminalNotifier",
    "Verdict",
    "WebhookNotifier",
    "WebhookSignatureError",
    "build_notifiers",
    "escalation_level",
    "evaluate",
    "evaluate_async",
    "find_config",
    "found_config",
    "install_policies",
    "load_config",
    "parse_config",
    "sign",
    "verify_signature",
]
