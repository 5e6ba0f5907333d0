"""The console's one table of actions: every key, footer label, palette entry and help line.

Each row is one action the operator can take. The app's ``BINDINGS``, the footer, the command
palette, the help screen and ``check_action`` are all derived from ``ACTIONS``, so a new action
is one row here (plus its ``action_*`` method), and the five can never disagree.

The states an action applies to are not written here: they come from the transition table
(``hitl_core.transitions.allowed_actions``) through the core transition the action commits, so
the console offers ``p`` on exactly the states the machine would let a pause leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from textual.binding import Binding

from hitl_core import TaskState
from hitl_core.transitions import allowed_actions


def states_for(transition: str) -> frozenset[TaskState]:
    """The states the transition table lets ``transition`` leave."""
    return frozenset(state for state in TaskState if transition in allowed_actions(state))


@dataclass(frozen=True)
class ConsoleAction:
    """One action: how it is bound, shown, offered and gated."""

    #: The binding id (remappable from the keymap file): "namespace.verb".
    id: str
    #: Default key(s), comma-separated; "" for an action only the palette offers.
    key: str
    #: The Textual action it runs, with its parameters: ``approve``, ``option(3)``…
    action: str
    #: The footer's label.
    label: str
    #: The help screen's line and the binding's tooltip.
    help: str
    #: The palette's "namespace: verb", or None when the palette does not offer it.
    palette: str | None = None
    #: It changes a task: read-only mode removes it, and the dwell rule applies to it.
    decides: bool = False
    #: The core transition it commits (its states come from the transition table), or None.
    transition: str | None = None
    #: It acts on the selected task (nothing selected: not possible).
    needs_task: bool = False
    #: Shown in the footer.
    show: bool = True
    #: Its key opens a text input: keys typed right after it belong to that input.
    opens_input: bool = False
    #: While a dialog is up, the dialog's keys win (False: quit, help and the palette still work).
    blocked_by_dialog: bool = True
    #: When the footer is too narrow, labels with a higher number go first (0: never).
    shed: int = 0
    #: Drawn at the footer's end and never shed (help, quit).
    footer_last: bool = False

    @property
    def name(self) -> str:
        """The action's method name (``option(3)`` → ``option``)."""
        return self.action.split("(", 1)[0]

    @property
    def states(self) -> frozenset[TaskState] | None:
        """The task states it applies to (None: it does not depend on the selected task's state)."""
        return states_for(self.transition) if self.transition is not None else None

    def binding(self) -> Binding:
        return Binding(
            self.key, self.action, self.label, show=self.show, id=self.id, tooltip=self.help if self.help else ""
        )


def _options() -> list[ConsoleAction]:
    return [
        ConsoleAction(
            f"decide.option{n}",
            str(n),
            f"option({n})",
            f"Option {n}",
            f"Choose the interrupt's option {n}",
            decides=True,
            transition="approve",
            needs_task=True,
            show=False,
        )
        for n in range(1, 10)
    ]


ACTIONS: tuple[ConsoleAction, ...] = (
    ConsoleAction(
        "decide.approve",
        "a",
        "approve",
        "Approve",
        "Approve the selected task",
        "task: approve",
        decides=True,
        transition="approve",
        needs_task=True,
    ),
    ConsoleAction(
        "decide.reject",
        "r",
        "reject",
        "Reject",
        "Reject the selected task, with a reason",
        "task: reject",
        decides=True,
        transition="reject",
        needs_task=True,
        opens_input=True,
    ),
    ConsoleAction(
        "decide.edit",
        "e",
        "edit",
        "Edit",
        "Edit the action's args as JSON, then approve",
        "task: edit args and approve",
        decides=True,
        transition="approve",
        needs_task=True,
        opens_input=True,
    ),
    ConsoleAction(
        "decide.respond",
        "m",
        "respond",
        "Respond",
        "Answer the selected task's question with free text",
        "task: respond",
        decides=True,
        transition="approve",
        needs_task=True,
        opens_input=True,
    ),
    ConsoleAction(
        "task.resume",
        "R",
        "resume",
        "Resume",
        "Let a decided task go on (or lift your own pause)",
        "task: resume",
        decides=True,
        transition="resume",
        needs_task=True,
    ),
    ConsoleAction(
        "task.pause",
        "p",
        "pause",
        "Pause",
        "Stop a running task for review",
        "task: pause",
        decides=True,
        transition="pause",
        needs_task=True,
        opens_input=True,
    ),
    *_options(),
    ConsoleAction(
        "task.mark",
        "space",
        "mark",
        "Mark",
        "Mark or unmark the selected task for a batch decision",
        "task: mark / unmark",
        needs_task=True,
        shed=1,
    ),
    ConsoleAction(
        "decide.approve_marked",
        "A",
        "approve_marked",
        "Approve marked",
        "Approve every marked task (a confirm counts them)",
        "task: approve marked",
        decides=True,
    ),
    ConsoleAction(
        "decide.reject_marked",
        "X",
        "reject_marked",
        "Reject marked",
        "Reject every marked task, one reason",
        "task: reject marked",
        decides=True,
        opens_input=True,
    ),
    ConsoleAction(
        "view.filter",
        "slash",
        "filter",
        "Filter",
        "Filter by id, agent or reason",
        "view: filter text",
        opens_input=True,
    ),
    ConsoleAction(
        "view.clear_filter", "escape", "clear_filter", "Clear filter", "Show every task again", "view: clear filter"
    ),
    ConsoleAction(
        "view.state_filter",
        "f",
        "cycle_state_filter",
        "Waiting/active/all",
        "Show waiting, active or all tasks (in turn)",
        shed=2,
    ),
    ConsoleAction(
        "view.waiting",
        "",
        "set_state_filter('waiting')",
        "Waiting",
        "Show only tasks waiting for a decision",
        "view: waiting only",
    ),
    ConsoleAction(
        "view.active", "", "set_state_filter('active')", "Active", "Hide completed and failed tasks", "view: active"
    ),
    ConsoleAction("view.all", "", "set_state_filter('all')", "All", "Show every task", "view: all"),
    ConsoleAction("view.sort", "s", "sort", "Sort", "Sort by the next column", "view: next sort column", shed=3),
    ConsoleAction("view.flip_sort", "S", "flip_sort", "Flip sort", "Reverse the sort", "view: flip sort", show=False),
    ConsoleAction(
        "view.sort_deadline",
        "d",
        "sort_deadline",
        "By deadline",
        "Sort by deadline, soonest first",
        "view: sort by deadline",
        shed=4,
    ),
    ConsoleAction(
        "view.freeze",
        "z",
        "freeze",
        "Freeze",
        "Stop re-sorting while you read (again: re-sort)",
        "view: freeze / unfreeze",
        shed=5,
    ),
    ConsoleAction(
        "view.detail", "enter", "focus_detail", "Detail", "Move the focus to the detail pane and back", show=False
    ),
    ConsoleAction(
        "view.history", "h", "history", "History", "The audit trail of the selected task", "view: history", shed=6
    ),
    ConsoleAction(
        "view.stats",
        "t",
        "stats",
        "Stats",
        "Waiting, time to decision, who decides, rubber stamps (live)",
        "view: stats",
        show=False,
        blocked_by_dialog=False,
    ),
    ConsoleAction(
        "app.mute",
        "b",
        "mute",
        "Mute",
        "Mute or unmute the bell",
        "app: mute / unmute",
        show=False,
        blocked_by_dialog=False,
    ),
    ConsoleAction(
        "app.help",
        "question_mark",
        "help",
        "Help",
        "Every key",
        "view: help",
        blocked_by_dialog=False,
        footer_last=True,
    ),
    ConsoleAction(
        "app.palette",
        "colon",
        "command_palette",
        "Commands",
        "The command palette",
        show=False,
        opens_input=True,
        blocked_by_dialog=False,
    ),
    ConsoleAction("app.quit", "q", "quit", "Quit", "Quit the console", blocked_by_dialog=False, footer_last=True),
)

#: Action method name → its row (the option rows share one name; the first stands for them).
BY_NAME: Mapping[str, ConsoleAction] = MappingProxyType(
    {a.name: a for a in reversed(ACTIONS)}  # reversed: the first of a name wins
)
#: Actions that change a task; read-only mode hides them all.
DECIDING = frozenset(a.name for a in ACTIONS if a.decides)
#: Actions whose key opens a text input (the filter box, a dialog, the palette).
INPUT_ACTIONS = frozenset(a.name for a in ACTIONS if a.opens_input)


def bindings() -> list[Binding]:
    """The app's bindings: every row with a key."""
    return [a.binding() for a in ACTIONS if a.key]


def palette_entries() -> list[ConsoleAction]:
    """What the command palette may offer (each only when possible)."""
    return [a for a in ACTIONS if a.palette]


def footer_names() -> tuple[str, ...]:
    """The action names the footer shows: what it shows changes when one of these changes."""
    return tuple(dict.fromkeys(a.name for a in ACTIONS if a.show and a.key))
