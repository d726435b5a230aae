"""The ``venue`` command's exceptions: one root, :class:`CliError`.

Each carries a one-line message for the operator; ``cli.main`` prints it as
``error: ...`` and exits non-zero.
"""
from venue.errors import VenueError


class CliError(VenueError):
    """Root of every error the command line raises on purpose."""


class ControlError(CliError):
    """A control request failed (venue down, credentials refused, bad input, refusal)."""


class ConfigError(CliError, ValueError):
    """A configuration file or option that cannot be used."""
