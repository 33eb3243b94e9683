"""Outputs that appear complete or not at all: a folder is staged next to its final place and
renamed into it; a JSON file is written to a temporary file and renamed over the old one.

A rename within one folder is atomic on POSIX file systems, so a reader (or a run killed half-way)
sees the old output or the new one, never a mix; staged folders are hidden (``.name.partial-*``)
and removed when the writing fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def staged_dir(target: str) -> Iterator[str]:
    """Yield an empty folder beside ``target``; on success it replaces ``target``, on error it is removed."""
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.partial-", dir=parent)
    try:
        yield staging
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_dir(staging: str, target: str) -> None:
    """Move the complete folder ``staging`` to ``target``, replacing what was there."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    trash = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=os.path.dirname(os.path.abspath(target)))
    os.rename(target, os.path.join(trash, "old"))
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(os.path.join(trash, "old"), target)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (a temporary file in the same folder, then renamed)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(obj, out, indent=2)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
