"""Resumable steps: the one engine of ``xner demo`` and the experiment harness.

A step has a *key*, a hash of everything that decides its result (settings, inputs, the keys of the
steps it reads from). It is done when its completion marker (a small JSON file) holds the same key
and its outputs exist; a done step is reused, any other is redone from scratch. The marker is removed
when a step starts and written only once its outputs are complete, so a step that failed or was
interrupted is never taken for done. A folder output is built in a staging folder beside its target
and renamed into place when complete (:func:`staged`): the target is always the previous complete
folder or the new complete one, never half of either.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
from typing import Any, Iterator, Optional, Sequence

STAGING_SUFFIX = ".partial"


def stable_hash(value: Any, length: int = 12) -> str:
    """A short hash of a JSON-able value that does not depend on key order."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def write_json(path: str, value: Any) -> None:
    """Write ``value`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + STAGING_SUFFIX
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Step:
    """A step identified by ``key``, done when ``marker`` holds that key and every path of ``outputs`` exists."""

    def __init__(self, marker: str, key: str, outputs: Sequence[str] = ()):
        self.marker, self.key, self.outputs = marker, key, list(outputs)

    def finished(self) -> Optional[dict]:
        """The marker's content when the step is done with this key, else None."""
        try:
            with open(self.marker, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            return None
        if not all(os.path.exists(p) for p in self.outputs):
            return None
        return state

    def start(self) -> None:
        """Forget an earlier completion: from here until :meth:`finish` the step is not done."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.marker)

    def finish(self, **facts: Any) -> dict:
        """Mark the step done (call only once its outputs are complete); ``facts`` are kept in the marker."""
        state = {"key": self.key, "finished_at": _now(), **facts}
        write_json(self.marker, state)
        return state


def replace_dir(staging: str, target: str) -> None:
    """Move a completed ``staging`` folder to ``target``, replacing an older one."""
    old = target + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(target):
        os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged(target: str) -> Iterator[str]:
    """An empty staging folder beside ``target``; renamed to ``target`` when the block ends normally,
    removed when it raises (``target`` then stays as it was)."""
    staging = target + STAGING_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_dir(staging, target)


__all__ = ["Step", "replace_dir", "stable_hash", "staged", "write_json"]
