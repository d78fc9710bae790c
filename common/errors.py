"""The base class of every error a user can fix, so the command line can tell them from bugs.

A bad config, a missing data file, an unusable checkpoint or bundle, a run folder in the
wrong state, a target generation that certified nothing: each package raises its own
subclass of `UserError`, with a message that names the problem and what to do about it.
`meta-opt` prints such an error as one line (exit status 2); any other exception is a bug
and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for or supplied; the message says which and how to fix it."""
