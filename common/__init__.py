"""Small utilities every package of the project may use; it imports nothing of ours.

- `common.atomic`: atomic file writes (a reader sees the old file or the whole new one).
- `common.npz_tree`: the one pytree <-> `.npz` codec (pickle-free) of checkpoints and paths.
- `common.errors`: `UserError`, the base of every error a user can fix (one line in the CLI).
- `common.pytree`: `PyTree`, the one type alias for a nested structure of arrays.
- `common.lazy`: lazy package exports, so that importing a light module of a package
  (an options dataclass) does not import JAX.

This `__init__` imports nothing, so `import common.atomic` stays light.
"""
