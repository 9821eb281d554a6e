"""nasx's own error types: every message says what is wrong and how to fix it."""

# How messages spell the override of the size limits: the Python API's argument; `nasx cost` sets its flag.
FORCE = "force=True"


def force_hint(action: str = "load it") -> str:
    return f"pass {FORCE} to {action} anyway"


class NasxError(Exception):
    """Base of every error nasx raises on purpose; the CLI prints it as one line and exits 2."""


class ArchError(NasxError, ValueError):
    """An architecture (JSON or spec) is malformed or inconsistent."""


class BudgetError(NasxError, ValueError):
    """A budget or size string cannot be parsed."""


class ConfigError(NasxError, ValueError):
    """A search-space config is malformed."""


class StorageError(NasxError):
    """A study storage cannot be reached or a study/trial does not exist."""
