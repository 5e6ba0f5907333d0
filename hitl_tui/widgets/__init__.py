"""The console's own widgets: the virtual task table and the detail pane."""

from .detail import DetailPane
from .task_table import COLUMNS, TaskTable, column_header

__all__ = ["COLUMNS", "DetailPane", "TaskTable", "column_header"]
