"""`RunError`: a run cannot go ahead as asked (a user error, `common.errors.UserError`).

The other user errors are `trainers.config.ConfigError` (a bad config),
`tasks.data.DataFileError` (a missing or bad data file), `trainers.io.checkpoint.CheckpointError`,
`meta_opt.PretrainedError` and `geodesic_targets.targets.NoCertifiedPairs`; the CLI prints
every `UserError` as one line, and anything else is a bug that keeps its traceback.
"""

from common.errors import UserError


class RunError(UserError, ValueError):
    """A run cannot go ahead as asked: the run folder's state, or missing or mismatched inputs."""
