"""One error tree for everything privaudit reports to its user.

The CLI turns :class:`PrivauditError` subclasses into exit code 2 with the
message (which names the file, and the line where there is one); anything else
is an internal error, exit code 1.
"""

from __future__ import annotations


class PrivauditError(Exception):
    """Base of every error that is the user's input or configuration."""

    exit_code = 2


class InputError(PrivauditError):
    """A capture file that cannot be read (unknown type, broken HAR, ...)."""


class RuleError(PrivauditError):
    """A rule, operator-map or canary file that is not valid."""


class ConfigError(PrivauditError):
    """A bad option, a missing or corrupt database, an unreachable resolver."""


def yaml_location(path: str, exc: BaseException) -> str:
    """'path:line:col' for a PyYAML error, or just the path."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return f"{path}:{mark.line + 1}:{mark.column + 1}"
    return str(path)
