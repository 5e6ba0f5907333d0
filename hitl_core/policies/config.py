"""``hitl.toml``: one file configures deadlines, escalation, who may decide, rules and notifiers.

Found, in this order: ``$HITL_CONFIG`` (a path; an error if it does not exist, because a
config the user named and we silently ignored would fail open), ``./hitl.toml``, then
``hitl.toml`` in the user config directory (platformdirs). Validated by pydantic; every error
names the file, the line and the key, because an operator fixing a policy at 3 a.m. should not
have to guess which ``severity`` was wrong. ``tomllib`` reports lines only for syntax errors, so
for validation errors ``key_lines`` maps each key path to the line that set it.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import PayloadError
from ..models import Severity

CONFIG_NAME = "hitl.toml"
ENV_CONFIG = "HITL_CONFIG"


class ConfigError(PayloadError):
    """A configuration file that cannot be used: unreadable, not TOML, or an invalid value.

    ``path``, ``line`` (1-based, or None) and ``key`` (dotted, e.g. ``rules[2].decision``) say where.
    """

    def __init__(self, path: Path | str, line: int | None, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.problem = problem
        where = self.path + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {key + ': ' if key else ''}{problem}")


class _Strict(BaseModel):
    # A misspelt key ("asignees") must be an error, not a policy silently not applied.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


Seconds = float


class DeadlinesConfig(_Strict):
    """When waiting tasks expire, and how often this process looks."""

    #: Seconds between two sweeps of the waiting tasks (each sweep is one indexed query).
    sweep_interval: Seconds = Field(default=1.0, gt=0, le=3600)
    #: Seconds before a deadline at which ``hitl_deadline_warning`` fires (0: never).
    warn_before: Seconds = Field(default=60.0, ge=0)
    #: A deadline for requests that come without one, by severity (seconds from the request).
    default_timeout: dict[Severity, Seconds] = Field(default_factory=dict)
    #: A deadline for an operator's pause (a review a person asked for); none unless set.
    pause_timeout: Seconds | None = Field(default=None, gt=0)
    #: Run the sweeper in this process (a one-shot CLI command or a console may turn it off).
    sweep: bool = True
    #: Let a request name ``default_decision = "approve"`` (approved at its deadline if nobody
    #: decided). Off by default: otherwise the agent chooses that its own request is approved when
    #: nobody looks. A TOML boolean only (strict), because a typo must not switch it on.
    allow_default_approve: bool = Field(default=False, strict=True)

    @field_validator("default_timeout")
    @classmethod
    def _positive(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        for severity, seconds in value.items():
            if seconds <= 0:
                raise ValueError(f"the timeout for {severity.value} must be positive, got {seconds}")
        return value


class EscalationLevel(_Strict):
    assignees: list[str] = Field(min_length=1)
    #: How long this level has to decide before the next one (or the default decision).
    wait: Seconds = Field(gt=0)


class EscalationConfig(_Strict):
    """At each missed deadline the request moves one level up; after the last, the default applies."""

    severities: list[Severity] = Field(default_factory=lambda: list(Severity))
    levels: list[EscalationLevel] = Field(min_length=1)


class AuthorizationConfig(_Strict):
    #: The actor that requested (``requested_by`` or the task's agent) may not approve.
    no_self_approval: bool = True
    #: When a request names assignees, only they (by actor id or role) may decide it.
    enforce_assignees: bool = True
    #: Severities that need two approvals from two different people.
    four_eyes: list[Severity] = Field(default_factory=list)
    #: A roles file (relative to this file): ``[actors]`` actor = [roles], ``[severity]`` sev = [roles].
    roles_file: Path | None = None
    #: The same two tables inline (merged with the roles file's; inline wins).
    actors: dict[str, list[str]] = Field(default_factory=dict)
    severity: dict[Severity, list[str]] = Field(default_factory=dict)
    #: Append every refusal as a JSON line here (relative to this file), besides the ``hitl.audit`` log.
    refusals_log: Path | None = None


class RolesFile(_Strict):
    actors: dict[str, list[str]] = Field(default_factory=dict)
    severity: dict[Severity, list[str]] = Field(default_factory=dict)


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the refusal is ours to report (file, line, key), not RE2's on stderr
    return options


@functools.cache
def compile_regex(pattern: str) -> re2._Regexp:
    """A rule's ``regex``, compiled by RE2: matching takes time linear in the text, whatever the
    pattern. Raises ``ValueError`` naming what RE2 refused (backreferences, lookaround, ``\\Z``)."""
    try:
        return re2.compile(pattern, _re2_options())
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        hint = ""
        if "\\Z" in pattern:
            hint = "; RE2 spells Python's \\Z as \\z"
        elif re.search(r"\(\?<?[=!]|\\[1-9]", pattern):
            hint = "; RE2 has no backreferences or lookaround (it matches in linear time, they cannot)"
        raise ValueError(f"not a regular expression RE2 can take: {reason}{hint}") from None


ArgOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "glob", "regex", "exists"]


class ArgPredicate(_Strict):
    """A test on one argument; every operator given must hold."""

    eq: Any = None
    ne: Any = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    glob: str | None = None
    regex: str | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_regex(value)
        return value

    @model_validator(mode="after")
    def _something(self) -> ArgPredicate:
        if not self.model_fields_set:
            raise ValueError("an empty predicate; use one of eq, ne, lt, le, gt, ge, in, not_in, glob, regex, exists")
        return self


class RuleConfig(_Strict):
    """One auto-decision rule. Every condition given must match; the first matching rule decides."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    decision: Literal["allow", "ask", "deny"]
    #: Glob(s) on the action name (``send_*``); "*" matches any, including none.
    action: str | list[str] = "*"
    #: Glob(s) on the agent's name.
    agent: str | list[str] = "*"
    severity: Severity | list[Severity] | None = None
    #: Per argument (dotted path into the args: ``"to.domain"``): a glob string, a literal, or a predicate.
    args: dict[str, str | int | float | bool | ArgPredicate] = Field(default_factory=dict)
    #: Told to the agent (a deny's reason) and recorded with the decision.
    message: str | None = None


class TerminalNotifyConfig(_Strict):
    enabled: bool = True
    min_severity: Severity = Severity.HIGH
    bell: bool = True


class DesktopNotifyConfig(_Strict):
    enabled: bool = True
    min_severity: Severity = Severity.HIGH
    command: str = "notify-send"


class WebhookConfig(_Strict):
    """A JSON POST per notice, signed ``X-Hitl-Signature: t=…,v1=…`` (``hitl_core.webhooks``)."""

    #: Where to POST. Logged as its origin only (scheme://host[:port]/…); user:pass@ becomes Basic auth.
    url: str = Field(pattern=r"^https?://")
    #: The HMAC-SHA256 key, or the name of an environment variable that holds it (keep secrets out of files).
    secret: str | None = None
    secret_env: str | None = None
    #: While rotating: the old key too (a second ``v1``), until every receiver has the new one.
    previous_secret: str | None = None
    previous_secret_env: str | None = None
    min_severity: Severity = Severity.HIGH
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Seconds = Field(default=0.5, ge=0)
    timeout: Seconds = Field(default=5.0, gt=0)
    #: The deep link sent with each notice; ``{task_id}`` is replaced (URL-quoted).
    link: str = "hitl://task/{task_id}"
    #: Which notices: requested, warning, escalated, expired.
    events: list[Literal["requested", "warning", "escalated", "expired"]] = Field(
        default_factory=lambda: ["requested", "warning", "escalated", "expired"]
    )

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookConfig:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret or secret_env (the signature needs a key)")
        if self.previous_secret is not None and self.previous_secret_env is not None:
            raise ValueError("give at most one of previous_secret or previous_secret_env")
        return self


class NotifyConfig(_Strict):
    terminal: TerminalNotifyConfig | None = None
    desktop: DesktopNotifyConfig | None = None
    webhooks: list[WebhookConfig] = Field(default_factory=list)


class LimitsConfig(_Strict):
    """``[limits]``: bounds on what a request or decision may carry, in characters and counts.

    Each key overrides one default of ``hitl_core.settings`` (unset keys keep it); the machine
    refuses a request over a limit with a ``PayloadError`` naming the field and the key here.
    JSON payloads (context, args, responses) and the whole request are bounded in bytes by
    ``HITL_MAX_PAYLOAD_BYTES`` instead.
    """

    reason_chars: int | None = Field(default=None, gt=0)
    message_chars: int | None = Field(default=None, gt=0)
    options: int | None = Field(default=None, gt=0)
    option_chars: int | None = Field(default=None, gt=0)
    assignees: int | None = Field(default=None, gt=0)
    assignee_chars: int | None = Field(default=None, gt=0)
    name_chars: int | None = Field(default=None, gt=0)


class StatsConfig(_Strict):
    """``[stats]``: how fast a person can read a request; faster decisions are flagged as rubber
    stamps in ``hitl stats`` and ``hitl audit export`` (never blocked). See ``hitl_core.stats``."""

    #: Characters of the request (reason, action, args, context) a person reads per second.
    chars_per_second: float = Field(default=40.0, gt=0)
    #: Seconds any request of a severity takes to take in, however short (merged with the defaults).
    floor: dict[Severity, Seconds] = Field(default_factory=dict)

    @field_validator("floor")
    @classmethod
    def _not_negative(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        for severity, seconds in value.items():
            if seconds < 0:
                raise ValueError(f"the floor for {severity.value} must not be negative, got {seconds}")
        return value


class PolicyConfig(_Strict):
    """A whole ``hitl.toml``. Every section is optional; an absent section adds no policy."""

    deadlines: DeadlinesConfig = Field(default_factory=DeadlinesConfig)
    escalation: EscalationConfig | None = None
    authorization: AuthorizationConfig | None = None
    rules: list[RuleConfig] = Field(default_factory=list)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    #: Where the file was read from (set by the loader; relative paths inside resolve against it).
    source: Path | None = None
    #: The roles file's contents, loaded with the config.
    roles: RolesFile = Field(default_factory=RolesFile)

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> PolicyConfig:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice; decisions are recorded as policy:<id>")
            seen.add(rule.id)
        return self


# -- finding and reading ----------------------------------------------------------------------


def find_config(cwd: Path | None = None) -> Path | None:
    """The config file to use, or None when there is none (then no policy is active)."""
    named = os.environ.get(ENV_CONFIG)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(path, None, None, f"${ENV_CONFIG} names this file, but it does not exist")
        return path
    here = (cwd or Path.cwd()) / CONFIG_NAME
    if here.is_file():
        return here
    user = Path(platformdirs.user_config_dir("hitl")) / CONFIG_NAME
    if user.is_file():
        return user
    return None


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, None, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(path, None, None, "is a directory, not a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, None, f"cannot be read: {exc}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        message = getattr(exc, "msg", None) or str(exc)
        if line is None:  # Python < 3.14 puts "(at line N, column M)" in the message
            found = re.search(r"at line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(path, line, None, f"not valid TOML: {message}") from None


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path (array-of-tables entries by index) to the 1-based line that sets it.

    A line scanner, not a parser: enough to point an error at the right line in a file that
    ``tomllib`` already accepted. Keys inside inline tables map to the line of their outer key.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    counts: dict[tuple[str | int, ...], int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header:
            path: tuple[str | int, ...] = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = counts.get(path, -1) + 1
                counts[path] = index
                path = (*path, index)
            else:
                # [a.b] under an array of tables [[a]] continues its latest entry
                resolved: list[str | int] = []
                for part in path:
                    resolved.append(part)
                    if tuple(resolved) in counts:
                        resolved.append(counts[tuple(resolved)])
                path = tuple(resolved)
            table = path
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            full = (*table, *_split_key(key.group(1)))
            lines.setdefault(full, number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


def _where(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(model: type[BaseModel], data: dict[str, Any], path: Path, text: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = key_lines(text)
        errors = exc.errors()

        def keys(err: Any) -> tuple[str | int, ...]:
            # pydantic adds the union member or the validator's name to loc; keep the file's keys only
            return tuple(p for p in err["loc"] if isinstance(p, int) or not _is_type_tag(p))

        # Of a union's alternatives the deepest error is the telling one ("lt: not a number"
        # rather than "not a string").
        error = max(errors, key=lambda err: len(keys(err)))
        loc = keys(error)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (misspelt? it would be ignored, so it is refused)"
        elif "input" in error and error["type"] not in ("missing",) and not isinstance(error["input"], dict):
            message += f" (got {error['input']!r})"
        others = {keys(err) for err in errors} - {loc[:n] for n in range(len(loc) + 1)}
        more = len(others)
        if more:
            message += f"; and {more} more problem{'s' if more > 1 else ''}"
        raise ConfigError(path, _where(loc, lines), _dotted(loc) or None, message) from None


def _is_type_tag(part: str) -> bool:
    # e.g. "ArgPredicate", "str", "list[...]", "function-after[...]" — pydantic's union branch names
    return part in ("str", "int", "float", "bool") or "[" in part or part[:1].isupper()


def load_config(path: Path | str) -> PolicyConfig:
    """Read and validate one ``hitl.toml`` (and its roles file). ``ConfigError`` says where it is wrong."""
    path = Path(path).expanduser()
    data, text = _read_toml(path)
    _no_internal_keys(data, path, text)
    config: PolicyConfig = _validate(PolicyConfig, data, path, text)
    updates: dict[str, Any] = {"source": path.resolve()}
    auth = config.authorization
    if auth is not None:
        base = path.resolve().parent
        roles = RolesFile()
        if auth.roles_file is not None:
            roles_path = auth.roles_file if auth.roles_file.is_absolute() else base / auth.roles_file
            roles_data, roles_text = _read_toml(roles_path)
            roles = _validate(RolesFile, roles_data, roles_path, roles_text)
        roles = RolesFile(actors={**roles.actors, **auth.actors}, severity={**roles.severity, **auth.severity})
        updates["roles"] = roles
        if auth.refusals_log is not None and not auth.refusals_log.is_absolute():
            updates["authorization"] = auth.model_copy(update={"refusals_log": base / auth.refusals_log})
    return config.model_copy(update=updates)


def _no_internal_keys(data: dict[str, Any], path: Path, text: str) -> None:
    for key in ("source", "roles"):
        if key in data:
            raise ConfigError(
                path, key_lines(text).get((key,)), key, "unknown key (roles go in [authorization] or its roles_file)"
            )


def found_config(*, sweep: bool = True) -> PolicyConfig | None:
    """The config ``find_config`` finds, loaded; None without one. ``sweep=False`` for a one-shot
    command (``hitl approve``) that must apply the policies but not expire other tasks as it goes."""
    path = find_config()
    if path is None:
        return None
    config = load_config(path)
    if not sweep:
        config = config.model_copy(update={"deadlines": config.deadlines.model_copy(update={"sweep": False})})
    return config


def parse_config(text: str, name: str = "<hitl.toml>") -> PolicyConfig:
    """A config from TOML text (the demo's built-in policy; tests). Relative paths resolve against cwd."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, None, None, f"not valid TOML: {exc}") from None
    _no_internal_keys(data, Path(name), text)
    config: PolicyConfig = _validate(PolicyConfig, data, Path(name), text)
    if config.authorization is not None:
        roles = RolesFile(actors=dict(config.authorization.actors), severity=dict(config.authorization.severity))
        config = config.model_copy(update={"roles": roles})
    return config
