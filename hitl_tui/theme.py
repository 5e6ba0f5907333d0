"""The console's colours, derived from the Textual theme in force (``App.get_css_variables``).

Every part of the console draws with a ``Scheme``: the table, its header, the detail pane, the
summary, the flash line and the footer. Text colours come from the theme's own variables
(foreground, muted text, the footer's key colour, error/warning/success text), so a light theme
gets dark text; backgrounds (cursor, urgent rows) are the theme's colours blended over its
background. Severity colours are the console's own — four hues that stay apart on dark and light
backgrounds alike — and each has a weight as well, so under ``NO_COLOR`` (Textual turns colours
into greys) the four levels still differ (``test_the_four_severities_stay_apart…``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.style import Style
from textual.color import Color

from hitl_core import Severity, TaskState

S = TaskState

#: (dark background, light background): a hue per level, light ones darker so they read on white.
_SEVERITY_COLOURS = {
    Severity.LOW: ("#5f9f3f", "#5a8f2a"),
    Severity.MEDIUM: ("#b58900", "#7a5200"),
    Severity.HIGH: ("#9f6fef", "#5b1fa8"),
    Severity.CRITICAL: ("#ef2f4f", "#c8102e"),
}


@dataclass(frozen=True)
class Scheme:
    """Named styles for one theme."""

    dark: bool
    base: Style
    dim: Style
    header: Style
    cursor: Style
    marked: Style
    urgent: Style
    urgent_text: Style
    key: Style
    label: Style
    error: Style
    warning: Style
    success: Style
    severity: Mapping[Severity, Style]
    severity_cell: Mapping[Severity, Style]
    state: Mapping[TaskState, Style]
    #: Pygments theme for JSON in the detail pane.
    syntax_theme: str


def _colour(variables: Mapping[str, str], name: str, fallback: str) -> Color:
    try:
        return Color.parse(variables.get(name, fallback))
    except Exception:  # "auto 60%" and the like: not a colour on its own
        return Color.parse(fallback)


def _hex(colour: Color) -> str:
    return colour.hex6


def scheme_for(variables: Mapping[str, str], dark: bool) -> Scheme:
    """The console's styles for a theme given as its CSS variables (``App.get_css_variables()``)."""
    background = _colour(variables, "background", "#121212" if dark else "#e0e0e0")
    foreground = _colour(variables, "foreground", "#e0e0e0" if dark else "#1f1f1f")
    primary = _colour(variables, "primary", "#0178d4")
    error = _colour(variables, "error", "#b93c5b")

    def over(colour: Color, alpha: float) -> str:
        return _hex(background.blend(colour.with_alpha(1.0), alpha))

    def text(name: str, fallback: str) -> str:
        return _hex(_colour(variables, name, fallback))

    muted = over(foreground, 0.62)
    soft = over(foreground, 0.8)
    side = 0 if dark else 1
    severity = {
        Severity.LOW: Style(color=_SEVERITY_COLOURS[Severity.LOW][side], dim=dark),
        Severity.MEDIUM: Style(color=_SEVERITY_COLOURS[Severity.MEDIUM][side]),
        Severity.HIGH: Style(color=_SEVERITY_COLOURS[Severity.HIGH][side], bold=True),
        Severity.CRITICAL: Style(color=_SEVERITY_COLOURS[Severity.CRITICAL][side], bold=True),
    }
    error_text = text("text-error", "#d17e92")
    warning_text = text("text-warning", "#ffc473")
    success_text = text("text-success", "#8ad4a1")
    return Scheme(
        dark=dark,
        base=Style(color=_hex(foreground)),
        dim=Style(color=muted),
        header=Style(color=soft, bold=True, underline=True),
        cursor=Style(bgcolor=over(primary, 0.45 if dark else 0.3)),
        marked=Style(color=text("text-primary", "#57a5e2"), bold=True),
        urgent=Style(bgcolor=over(error, 0.35 if dark else 0.25)),
        urgent_text=Style(color=_SEVERITY_COLOURS[Severity.CRITICAL][side], bold=True),
        key=Style(color=text("footer-key-foreground", "#ffa62b"), bold=True),
        label=Style(color=text("footer-description-foreground", _hex(foreground))),
        error=Style(color=error_text, bold=True),
        warning=Style(color=warning_text, bold=True),
        success=Style(color=success_text, bold=True),
        severity=severity,
        severity_cell={**severity, Severity.CRITICAL: severity[Severity.CRITICAL] + Style(reverse=True)},
        state={
            S.PENDING: Style(color=muted),
            S.RUNNING: Style(color=text("text-primary", "#57a5e2")),
            S.AWAITING_APPROVAL: Style(color=warning_text, bold=True),
            S.APPROVED: Style(color=success_text),
            S.REJECTED: Style(color=error_text),
            S.COMPLETED: Style(color=muted),
            S.FAILED: Style(color=_SEVERITY_COLOURS[Severity.CRITICAL][side]),
        },
        syntax_theme="ansi_dark" if dark else "ansi_light",
    )


#: The default theme's scheme (textual-dark), for code that runs before an app has a theme.
DEFAULT_SCHEME = scheme_for(
    {
        "background": "#121212",
        "foreground": "#e0e0e0",
        "primary": "#0178d4",
        "error": "#b93c5b",
        "text-error": "#d17e92",
        "text-warning": "#ffc473",
        "text-success": "#8ad4a1",
        "text-primary": "#57a5e2",
        "footer-key-foreground": "#ffa62b",
        "footer-description-foreground": "#e0e0e0",
    },
    dark=True,
)


def scheme_of(app: object) -> Scheme:
    """The scheme of ``app`` (a ``ConsoleApp``), or the default one."""
    scheme = getattr(app, "scheme", None)
    return scheme if isinstance(scheme, Scheme) else DEFAULT_SCHEME
