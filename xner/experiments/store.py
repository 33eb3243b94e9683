"""The results store: one JSON object per finished run, one run per line (JSONL), appended as runs end.

A line is written only when its run has finished, in one ``write`` followed by ``fsync``, so a
crash leaves at most one truncated last line; :func:`read_records` skips such a line with a
warning (the run is then simply redone). ``run_id`` identifies a run by everything that determines
its result (models, data, strategy, parameters, seed, test sets); a re-run of an experiment skips
every run whose ``run_id`` is already in the store.

A record (``format`` = :data:`RECORD_FORMAT`)::

    {
      "format": "xner-experiment-result/1",
      "experiment": "offline-europe",          # the experiment file's name
      "config_hash": "3f2a...",                # sha256 of the experiment's resolved settings
      "run_id": "student-9c1e0f2ab4d1",
      "kind": "teacher" | "student" | "trial" | "sweep",
      "groups": ["main"],                      # experiment groups that asked for this run
      "model": "soft-kl",                      # strategy name (students/trials) or teacher name
      "strategy": "soft-kl" | null,            # the distillation loss (null for teachers)
      "params": {"temperature": 2.0, ...},     # strategy and student settings that differ by run
      "teachers": ["en"],                      # teacher names the run learnt from (students)
      "teacher_runs": ["teacher-..."],         # their run ids
      "student_kind": "full" | "lora" | null,
      "base_model": "minilm",
      "lang": "es",                            # target language (ISO code of the corpus)
      "seed": 1,
      "sweep": null | {"name": ..., "trial": 3, "value": 0.61},   # trials and sweep results
      "pseudo_labels": null | {"words_kept": 0.5, "disagreement_rate": 0.2, ...},  # students: what the
                                               # pseudo-label steps did (training.results.RunResults.pseudo_label_rates)
      "results": {                             # per test set (kind teacher/student/trial)
        "conll2002-es": {
          "corpus": "conll2002", "split": "test", "lang": "es",
          "domain": "in" | "out",
          "num_sentences": 1517, "num_entities": 3558,
          "precision": 0.71, "recall": 0.69, "f1": 0.70,
          "per_type": {"PER": {"precision": ..., "recall": ..., "f1": ..., "number": 1222}, ...},
          "sentence_counts": [[tp, fp, fn], ...]   # per test sentence, for paired bootstrap
        }
      },
      "provenance": {
        "wall_time_s": 81.2, "peak_rss_mb": 1310.0, "peak_gpu_memory_mb": null,
        "started_at": "2026-11-22T07:01:02Z", "finished_at": "...",
        "versions": {"xner": "0.1.0", "torch": "2.13.0", ...},
        "host": {"platform": ..., "cpus": 2, "gpus": []},
        "commands": [["python", "-m", "training.distill", ...], ...],
        "artifact": "xner-output/experiments/offline-europe/students/student-9c1e0f2ab4d1"
      }
    }

Figures are fractions (0-1).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import importlib.metadata as metadata
import json
import logging
import os
import platform
import sys
from typing import Any, Callable, Iterator, Mapping, Optional

from dataset_builders.errors import UserError

logger = logging.getLogger(__name__)

RECORD_FORMAT = "xner-experiment-result/1"
RESULTS_FILE = "results.jsonl"
PACKAGES = ("xner", "torch", "transformers", "datasets", "accelerate", "peft", "evaluate", "optuna", "eflomal", "numpy")


def iter_records(path: str) -> Iterator[dict]:
    """Every complete record of the store at ``path`` (none if the file does not exist)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d is not a complete record (an interrupted write?); ignored", path, number)
                continue
            if record.get("format") != RECORD_FORMAT:
                raise ValueError(f"{path}:{number} is not an xner experiment record (format {record.get('format')!r})")
            yield record


def read_records(path: str) -> list[dict]:
    return list(iter_records(path))


def append_record(path: str, record: Mapping[str, Any]) -> None:
    """Append one record durably: one write of the whole line, then fsync."""
    record = {"format": RECORD_FORMAT, **record}
    line = json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # A truncated last line (crash mid-write) must not glue itself to this record.
    needs_newline = False
    if os.path.exists(path) and os.path.getsize(path):
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            needs_newline = handle.read(1) != b"\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\n" if needs_newline else "") + line)
        handle.flush()
        os.fsync(handle.fileno())


def finished_runs(path: str) -> dict[str, dict]:
    """``run_id -> record`` of the runs already in the store."""
    return {r["run_id"]: r for r in iter_records(path)}


LOCK_SUFFIX = ".lock"


def _holder(lock_path: str) -> str:
    """Who holds a lock, as its holder wrote it: ``pid 123 (xner experiment run x.yaml, since ...)``."""
    try:
        with open(lock_path, encoding="utf-8") as handle:
            facts = json.load(handle)
        return f"pid {facts['pid']} ({facts['command']}, since {facts['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (pid not yet written)"


@contextlib.contextmanager
def locked(path: str, wait: bool = False, echo: Callable[[str], None] = print) -> Iterator[None]:
    """Hold ``path`` (a results store, or any file that stands for a folder) for this process.

    An exclusive ``flock`` on ``PATH.lock``: the kernel releases it when the holder ends, however it ends,
    so a crashed run never leaves a stale lock. A second holder refuses at once with a one-line error
    naming the holder's pid, or with ``wait`` waits for it. The file stays (unlinking it would let two
    processes lock two different files of the same name)."""
    lock_path = path + LOCK_SUFFIX
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(lock_path)
            if not wait:
                raise UserError(f"{path} is in use by {holder}; wait for it to end, or pass --wait") from None
            echo(f"waiting for {holder} to release {path} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        since = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        command = " ".join(
            ["xner" if os.path.basename(sys.argv[0]) in ("xner", "__main__.py") else sys.argv[0], *sys.argv[1:]]
        )
        facts = json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, facts, 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def package_versions() -> dict[str, Optional[str]]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def host_facts() -> dict:
    facts: dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count(), "gpus": []}
    try:
        import torch

        if torch.cuda.is_available():
            facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return facts


__all__ = [
    "RECORD_FORMAT",
    "RESULTS_FILE",
    "append_record",
    "finished_runs",
    "host_facts",
    "iter_records",
    "locked",
    "package_versions",
    "read_records",
]
