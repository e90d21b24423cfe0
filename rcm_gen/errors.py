"""Errors that are the user's to fix: reported as one line, exit status 2."""

__all__ = ["ToolMissingError", "UserError"]


class UserError(Exception):
    """Bad input (a file, a value, an option).  The message is one line naming the
    parameter, the value and what is allowed."""


class ToolMissingError(UserError):
    """An external tool this step needs is not installed."""
