"""One worker per device for the model-based ``datasets.map`` steps.

Teacher probabilities (:mod:`training.teacher_probs`) and projection's translation, alignment and
tagging (:mod:`projection.transforms`) run a model over every row. With several GPUs they are
sharded: ``map(with_rank=True, num_proc=<number of GPUs>)`` gives each worker a contiguous shard
and its rank, and the worker puts its model on the device of that rank (:func:`rank_device`).

* :func:`rank_device`: rank -> ``cuda:<rank % number of GPUs>``, or None without GPUs.
* :func:`default_num_proc`: the number of GPUs when there are several, else None (in-process).
* :func:`worker_start_method`: "spawn" for the workers of a step whose models use CUDA. A process
  that has touched CUDA (an Accelerate process, ``torch.cuda.is_available()``) cannot ``fork`` a
  child that uses CUDA; ``datasets`` starts its ``num_proc`` pool with ``multiprocess``'s default
  method (fork on Linux), so the default is switched for the duration of the map.
* :func:`sharded_map`: ``ds.map`` with the above (the one place both packages call).

The transforms must load their models lazily and pickle as their configuration only: each worker
receives a pickled copy and loads the model on its own device.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Optional

import torch

_in_forked_child = False  # set in fork()ed children (datasets.map(num_proc=...) workers)


def _mark_forked_child() -> None:
    global _in_forked_child
    _in_forked_child = True


os.register_at_fork(after_in_child=_mark_forked_child)


def fork_safe_threads() -> None:
    """Run torch single-threaded in a fork()ed worker; call it before a model's forward pass there.

    torch's OpenMP thread pool does not survive fork: a forked worker whose parent already ran a
    multi-threaded op hangs or crashes (segfault in its first multi-threaded op) unless it runs
    single-threaded -- which is what one worker per core wants anyway.
    """
    if _in_forked_child and torch.get_num_threads() > 1:
        torch.set_num_threads(1)


def cuda_device_count() -> int:
    """Number of usable CUDA devices (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def rank_device(rank: Optional[int]) -> Optional[str]:
    """The device of a ``with_rank`` worker: one GPU per rank (round robin), None without GPUs or rank."""
    if rank is None:
        return None
    count = cuda_device_count()
    return f"cuda:{rank % count}" if count else None


def default_num_proc() -> Optional[int]:
    """Workers for a model-based map step: one per GPU when there are several, else None (no pool)."""
    count = cuda_device_count()
    return count if count > 1 else None


def pool_size(num_proc: Optional[int]) -> Optional[int]:
    """``num_proc`` as ``datasets.map`` should get it: None for 0 or 1.

    ``datasets`` runs even ``num_proc=1`` in a one-process pool; in-process is the same result
    without pickling the transform or starting a process.
    """
    return num_proc if num_proc is not None and num_proc > 1 else None


@contextlib.contextmanager
def worker_start_method(num_proc: Optional[int], uses_device: bool = True) -> Iterator[Optional[str]]:
    """Start ``datasets.map`` workers with "spawn" while inside, when they will use CUDA; yields the method.

    Only when there is a pool (``num_proc`` > 1), its workers run models (``uses_device``) and
    CUDA is available; otherwise the default (fork) is kept, which starts faster. The previous
    default is restored on exit.
    """
    if pool_size(num_proc) is None or not uses_device or not cuda_device_count():
        yield None
        return
    import multiprocess

    previous = multiprocess.get_start_method(allow_none=True)
    multiprocess.set_start_method("spawn", force=True)
    try:
        yield "spawn"
    finally:
        multiprocess.set_start_method(previous, force=True)


def sharded_map(ds, function: Callable, num_proc: Optional[int] = None, *, uses_device: bool = True, **map_kwargs: Any):
    """``ds.map(function, with_rank=uses_device, num_proc=...)`` on a Dataset or DatasetDict.

    ``function(batch, rank)`` picks its device with :func:`rank_device` (rank is None in-process).
    Shards are contiguous and concatenated in order, so rows keep their order; the fingerprint
    does not depend on ``num_proc``, and ``datasets`` reuses a cache written with another one.
    """
    num_proc = pool_size(num_proc)
    with worker_start_method(num_proc, uses_device):
        return ds.map(function, with_rank=uses_device, num_proc=num_proc, **map_kwargs)


__all__ = [
    "cuda_device_count",
    "default_num_proc",
    "fork_safe_threads",
    "pool_size",
    "rank_device",
    "sharded_map",
    "worker_start_method",
]
