"""A run's output folder: checked before any work, filled atomically, never left looking finished.

:func:`check_output_dir` runs before anything loads or trains: a path that is a file, or a folder
that cannot be created or written, is a one-line error naming the argument (not a loss of the
trained weights at the end). The final files (model, tokenizer, ``results.json`` or
``evaluation.json``) are written into a staging folder inside the output folder
(:data:`STAGING`); :meth:`OutputFolder.publish` renames them into place, the marker file (the
results) last. :meth:`OutputFolder.begin`, called when the run starts writing, removes the
previous run's marker and the files it published, so a run that fails leaves a folder without
results -- never one that looks finished. ``checkpoints/`` and tracker logs are left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from dataset_builders.atomic import write_json
from dataset_builders.errors import UserError

STAGING = ".xner-staging"
PUBLISHED = ".xner-outputs.json"  # what the last publish put in the folder, removed by the next begin()


def check_output_dir(path: str, argument: str = "--output_dir") -> str:
    """Create ``path`` if needed and prove it writable; an error naming ``argument`` otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{argument} {path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path, prefix=".xner-write-test-")
        os.close(handle)
        os.remove(probe)
    except OSError as err:
        raise UserError(f"{argument} {path} cannot be written: {err.strerror or err}") from None
    return path


class OutputFolder:
    """The final files of a run in ``path``, staged and published; ``marker`` is the file that says "finished"."""

    def __init__(self, path: str, marker: str, is_main_process: bool = True):
        self.path, self.marker, self.is_main_process = path, marker, is_main_process
        self.staging = os.path.join(path, STAGING)

    def begin(self, resuming: bool = False) -> str:
        """The staging folder, emptied unless ``resuming`` (an interrupted run's best model so far is staged
        there); the previous run's marker and published files removed."""
        if self.is_main_process:
            if not resuming:
                shutil.rmtree(self.staging, ignore_errors=True)
            for name in [*self._published(), self.marker]:
                _remove(os.path.join(self.path, name))
            _remove(os.path.join(self.path, PUBLISHED))
            os.makedirs(self.staging, exist_ok=True)
        return self.staging

    def publish(self) -> None:
        """Move every staged file into the folder, the marker last, and forget the staging folder."""
        if not self.is_main_process:
            return
        names = sorted(os.listdir(self.staging), key=lambda n: n == self.marker)
        write_json(os.path.join(self.path, PUBLISHED), names)
        for name in names:
            target = os.path.join(self.path, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(os.path.join(self.staging, name), target)
        os.rmdir(self.staging)

    def _published(self) -> list[str]:
        try:
            with open(os.path.join(self.path, PUBLISHED), encoding="utf-8") as f:
                names = json.load(f)
        except (OSError, ValueError):
            return []
        # Only plain names inside the folder: the list is a file a user could edit.
        return [n for n in names if isinstance(n, str) and n and os.path.basename(n) == n and n not in (".", "..")]


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


__all__ = ["OutputFolder", "PUBLISHED", "STAGING", "check_output_dir"]
