"""The base of every error that blames the input a person gave.

Raised where user input is checked (layer keys, architectures, search spaces, formats,
command-line options and files), with a message that says what is wrong and how to fix it.
The command line prints these as one line and exits 2; any other exception is a bug and keeps
its traceback. A ``ValueError``, so that callers catching bad values still catch it.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Input a person gave is wrong; the message says what and how to fix it."""
