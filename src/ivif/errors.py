"""Exceptions that carry a message meant for the user (the CLI prints them without a traceback)."""

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input: a missing or unreadable file, mismatched sizes, an empty folder…

    The message names the offending file or value and, where possible, what to do about it.
    """
