"""The project's own user-error type for runs; the CLI prints these as one line.

Together with `trainers.config.ConfigError` (a bad config), `tasks.data.DataFileError`
(a missing or bad data file), `trainers.io.checkpoint.CheckpointError` and
`geodesic_targets.targets.NoCertifiedPairs`, these are the errors a user can fix;
anything else is a bug and the CLI shows its traceback.
"""


class RunError(ValueError):
    """A run cannot go ahead as asked: the run folder's state, or missing or mismatched inputs."""
