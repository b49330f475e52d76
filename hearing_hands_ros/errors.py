"""The package's shared exceptions, each a mistake the user can fix.

``UserError`` is raised by commands for bad arguments and files, ``ModelError`` by whatever loads
a model bundle. The CLI prints either as one line ``hearing-hands: error: ...`` with exit code 2;
a node reports a ``ModelError`` on ``/diagnostics`` and keeps running.
"""


class UserError(Exception):
    """A mistake the user can fix (bad argument, existing output...): one line, exit code 2."""


class ModelError(RuntimeError):
    """A model file is missing, corrupt, or does not match what its user expects."""


class MissingInputError(UserError, FileNotFoundError):
    """An input file or folder the user named does not exist (a ``FileNotFoundError`` too, so
    callers that catch that keep working)."""
