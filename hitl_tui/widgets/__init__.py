"""The console's own widgets and helpers, one per module; ``hitl_tui.app`` is the app itself."""

from .column_header import ColumnHeader
from .console_commands import ConsoleCommands
from .console_plugin import ConsolePlugin
from .detail import DetailPane
from .filter_input import FilterInput
from .key_capture import KeyCapture
from .key_footer import KeyFooter
from .task_table import COLUMNS, TaskTable, column_header
from .text_line import TextLine

__all__ = [
    "COLUMNS",
    "ColumnHeader",
    "ConsoleCommands",
    "ConsolePlugin",
    "DetailPane",
    "FilterInput",
    "KeyCapture",
    "KeyFooter",
    "TaskTable",
    "TextLine",
    "column_header",
]
