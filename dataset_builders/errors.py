"""The one error type for mistakes a user can fix (bad input, bad arguments, missing files).

It lives at the bottom of the package layers so that every package can raise it; the ``xner``
command catches it once, at the top, and prints its message as one line (the traceback only with
``--debug`` or ``XNER_DEBUG=1``). Subclassing ``ValueError`` keeps ``except ValueError`` callers
working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input: the message names the file, row or argument at fault."""
