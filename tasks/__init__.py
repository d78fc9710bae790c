"""Inner problems: what a learned optimizer optimizes.

`get_family(name, **options)` builds a `TaskFamily` of vmappable instances;
`get_task(name, seed=..., **options)` picks one instance; `list_tasks()` names them.
"""

from tasks.base import LabeledSplits, Task, TaskFamily
from tasks.registry import (FAMILIES, get_family, get_task, list_tasks, make_options,
                            options_type, validate_options)

__all__ = [
    "FAMILIES", "LabeledSplits", "Task", "TaskFamily", "get_family", "get_task", "list_tasks",
    "make_options", "options_type", "validate_options",
]
