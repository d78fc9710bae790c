"""Inner problems: what a learned optimizer optimizes.

`get_family(name, **options)` builds a `TaskFamily` of vmappable instances;
`get_task(name, seed=..., **options)` picks one instance; `list_tasks()` names them.
Exports are lazy (`common.lazy`): listing tasks and checking options needs no JAX.
"""

from common.lazy import lazy_exports

_EXPORTS = {
    "LabeledSplits": "base",
    "Task": "base",
    "TaskFamily": "base",
    "FAMILIES": "registry",
    "get_family": "registry",
    "get_task": "registry",
    "list_tasks": "registry",
    "make_options": "registry",
    "meta_training_variation": "registry",
    "options_type": "registry",
    "validate_options": "registry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
