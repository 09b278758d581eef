"""The training side's error tree.

A ``JobError`` is a failure the user can fix: its message goes, as it is, into SageMaker's
failure file (of which the console shows the first 1,024 characters), so it says what went
wrong and what to do. Anything else is a bug and is reported with its traceback.
"""

from __future__ import annotations


class JobError(Exception):
    """A failure with a message meant for the user who started the job."""


class DataError(JobError):
    """The input data is missing, unreadable or malformed."""


class HyperparameterError(JobError):
    """A hyperparameter is unknown, malformed or out of range."""


class ModelLoadError(JobError):
    """The base model or the artifact could not be loaded."""
