"""Child processes that end with their parent.

The runner starts each training or evaluation as a child process. Each child is the leader of a
process group of its own (so that ``accelerate launch`` and its workers can be stopped together,
and a Ctrl-C in the terminal reaches only the parent, which then stops them), and on Linux it asks
the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``): even a parent killed
with SIGKILL leaves no training running. While a child runs, SIGTERM and SIGHUP to the parent
raise :class:`Terminated` (SIGINT raises ``KeyboardInterrupt`` as usual), and :func:`run_child`
stops the child's whole group before the exception goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import Iterator, Sequence

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRACE_S = 10.0  # how long a stopped child may take to exit before it is killed
# Loaded here, not between fork and exec (where loading a library could deadlock a threaded parent).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


class Terminated(Exception):
    """The parent received SIGTERM or SIGHUP while a child ran; the child was stopped."""


def _die_with_parent(parent: int) -> None:
    """Runs in the child between fork and exec."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM/SIGHUP raise :class:`Terminated` in this (main) thread for the duration of the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"interrupted by {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stop_group(process: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM to the child's process group; SIGKILL to what is left after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):  # the leader's workers, or a leader that ignored SIGTERM
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
        process.wait(timeout=grace_s)


@contextlib.contextmanager
def run_child(command: Sequence[str], **popen) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(command, **popen)`` in its own process group, dying with this process; if the
    block raises (an error, Ctrl-C, SIGTERM), the child's group is stopped before the exception goes on."""
    parent = os.getpid()
    with _terminate_raises():
        process = subprocess.Popen(list(command), process_group=0, preexec_fn=lambda: _die_with_parent(parent), **popen)
        try:
            yield process
        except BaseException:
            stop_group(process)
            raise


__all__ = ["Terminated", "run_child", "stop_group"]
