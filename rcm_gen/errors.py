"""Errors that are the user's to fix: reported as one line, exit status 2."""

__all__ = ["ToolFailed", "ToolMissingError", "UserError"]


class UserError(Exception):
    """Bad input (a file, a value, an option).  The message is one line naming the
    parameter, the value and what is allowed."""


class ToolMissingError(UserError):
    """An external tool this step needs is not installed."""


class ToolFailed(RuntimeError):
    """A tool run (simulation, synthesis, timing, place and route) failed or produced a
    report that cannot be parsed.  The message names the kept log; exit status 1."""
