"""How every command line of xner reports a failure: one line, no traceback, exit status 2.

``xner`` (``xner.cli.main``) and the module entry points (``python -m training.teacher``,
``accelerate launch -m training.distill``, ...) run their work through :func:`run_reporting_errors`,
so a user error is caught in one place per process. Caught: :class:`~dataset_builders.errors.UserError`
and every ``ValueError`` (bad values; ``UserError`` is one), and ``OSError`` (a missing or unreadable
file, an unwritable folder, a full disk, a model that is neither a folder nor a Hub id). Anything else
is a bug and keeps its traceback. ``--debug`` or ``XNER_DEBUG=1`` re-raises, traceback included.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

REPORTED = (ValueError, OSError)
EXIT_USER_ERROR = 2


def debug_requested(flag: bool = False) -> bool:
    """``--debug`` given, or ``XNER_DEBUG`` set to anything but empty/0."""
    return flag or os.environ.get("XNER_DEBUG", "").strip() not in ("", "0")


def one_line(err: BaseException) -> str:
    """The error's message on one line: the first non-empty line (library errors can run to paragraphs)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def run_reporting_errors(prog: str, work: Callable[[], object], debug: bool = False) -> int:
    """``work()``'s exit status; a reported error is printed as ``PROG: error: MESSAGE`` and gives 2."""
    try:
        return int(work() or 0)
    except REPORTED as err:
        if debug_requested(debug):
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USER_ERROR


__all__ = ["EXIT_USER_ERROR", "REPORTED", "debug_requested", "one_line", "run_reporting_errors"]
