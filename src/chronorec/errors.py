"""The exceptions chronorec raises for problems a user can fix.

Every error caused by user input (a file, an option, a config, a model folder, a request) is a
:class:`ChronorecError`; the CLI prints its message as one line and exits with status 1, and the
service answers 4xx. Anything else is a bug and is reported as such. Each class also derives from
the built-in exception it refines, so ``except ValueError`` in existing code keeps working.
"""

from __future__ import annotations


class ChronorecError(Exception):
    """Base class of every error that a user can fix by changing an input."""


class ConfigError(ChronorecError, ValueError):
    """A config file, option or parameter is invalid."""


class IngestError(ChronorecError, ValueError):
    """An events file or frame cannot be read or validated; the message names file, rows and fix."""


class DataError(ChronorecError, ValueError):
    """Data that was read fine is unusable for the requested operation (e.g. too short a history)."""


class ModelLoadError(ChronorecError, ValueError):
    """A model folder is missing, incomplete, tampered with, or of an unknown kind."""


class ModelFolderError(ModelLoadError):
    """A model folder's files are unsafe or unreadable: a manifest entry outside the folder, a
    corrupt or truncated file, files that contradict each other. The message names folder, file and fix."""


class CheckpointError(ChronorecError, ValueError):
    """A training checkpoint cannot be resumed: absent, truncated, or written by another run."""


class DivergedError(ChronorecError, RuntimeError):
    """Training produced a non-finite loss or non-finite weights (a learning rate too large, or
    extreme input values); nothing is saved."""


class NotFittedError(ChronorecError, RuntimeError):
    """A model was asked to score or recommend before ``fit``."""


__all__ = [
    "CheckpointError",
    "ChronorecError",
    "ConfigError",
    "DataError",
    "DivergedError",
    "IngestError",
    "ModelFolderError",
    "ModelLoadError",
    "NotFittedError",
]
