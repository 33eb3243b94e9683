"""Training checkpoints that are complete or absent, and whose loading never runs code.

Writing: ``accelerator.save_state`` into a hidden temporary folder next to the checkpoint
(``checkpoints/.step_6.partial``); xner's own state (loop progress, sampler position, accelerate's
step counter) goes to :data:`STATE_FILE` (JSON) and the RNG states to ``rng_state_<process>.safetensors``
-- accelerate's pickled ``random_states_*.pkl`` is removed and nothing is registered with
``register_for_checkpointing`` (whose ``custom_checkpoint_*.pkl`` accelerate loads with
``weights_only=False``). :data:`STATE_FILE` is written last and lists every file with its size;
then the folder is renamed to its final name. A kill or a full disk therefore leaves only a
``.partial`` folder, which ``latest`` never picks.

Loading: a checkpoint without :data:`STATE_FILE`, with a file missing or of another size than
written, or holding a pickle xner did not write is refused with one line naming it -- the last
unless ``--trust_checkpoint_pickles`` (then accelerate's own loader runs, pickles included, as for
checkpoints of earlier xner versions). Otherwise ``accelerator.load_state`` reads only the model
(safetensors) and the optimizer, scheduler and scaler states with ``torch.load(weights_only=True)``,
which cannot run code.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from typing import Any, Optional, Sequence

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from dataset_builders.error_report import one_line
from dataset_builders.errors import UserError

STATE_FILE = "xner_state.json"
FORMAT = 1
PARTIAL_SUFFIX = ".partial"
TRUST_FLAG = "--trust_checkpoint_pickles"
TRUST_HELP = (
    "load a checkpoint that holds pickle files xner did not write (e.g. one saved by an earlier xner or by another "
    "program); unpickling runs any code the file contains: use it only for checkpoints from a source you trust"
)
# Files xner has accelerate write with torch.save and load back with weights_only=True (tensors and plain values only).
SAFE_PICKLES = ("optimizer.bin", "scheduler.bin", "scaler.pt")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt")
LOAD_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    KeyError,
    TypeError,
    EOFError,
    pickle.UnpicklingError,
    SafetensorError,
)


def rng_file(process_index: int) -> str:
    return f"rng_state_{process_index}.safetensors"


# ---------------------------------------------------------------------------------------------- writing


def save_checkpoint(accelerator, path: str, state: dict) -> str:
    """Write a complete checkpoint at ``path`` (or nothing under that name); ``state`` is xner's JSON state."""
    parent, name = os.path.split(os.path.normpath(path))
    partial = os.path.join(parent, f".{name}{PARTIAL_SUFFIX}")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(parent, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(partial)
    process = accelerator.process_index
    pickled_rng = os.path.join(partial, f"random_states_{process}.pkl")
    if os.path.exists(pickled_rng):
        os.remove(pickled_rng)
    _save_rng(os.path.join(partial, rng_file(process)))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        files = {f: os.path.getsize(os.path.join(partial, f)) for f in sorted(os.listdir(partial))}
        manifest = {
            "format": FORMAT,
            "accelerator_step": accelerator.step,
            "num_processes": accelerator.num_processes,
            "files": files,
            **state,
        }
        with open(os.path.join(partial, STATE_FILE), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if os.path.isdir(path):  # a checkpoint of the same name from an earlier run into this folder
            shutil.rmtree(path)
        os.replace(partial, path)
    accelerator.wait_for_everyone()
    return path


def _save_rng(path: str) -> None:
    """Python, numpy, torch (and CUDA) RNG states as tensors, their scalars as metadata: no pickle."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor(internal, dtype=torch.int64),
        "numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
    }
    if torch.cuda.is_available():
        tensors.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    metadata = {
        "python": json.dumps([version, gauss]),
        "numpy": json.dumps([kind, int(pos), int(has_gauss), float(cached)]),
    }
    save_file(tensors, path, metadata=metadata)


def _load_rng(path: str) -> None:
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    version, gauss = json.loads(metadata["python"])
    kind, pos, has_gauss, cached = json.loads(metadata["numpy"])
    random.setstate((version, tuple(int(x) for x in tensors["python"].tolist()), gauss))
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda_")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


# ---------------------------------------------------------------------------------------------- finding


def read_manifest(path: str) -> Optional[dict]:
    """The checkpoint's :data:`STATE_FILE`, or None when it is absent or unreadable."""
    try:
        with open(os.path.join(path, STATE_FILE), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(manifest, dict) and manifest.get("format") == FORMAT and isinstance(manifest.get("files"), dict)
    return manifest if ok else None


def damage(path: str, manifest: dict) -> Optional[str]:
    """What is wrong with the files of a checkpoint against its manifest (None when nothing)."""
    for name, size in manifest["files"].items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            return f"{name} is missing"
        if os.path.getsize(file) != size:
            return f"{name} has {os.path.getsize(file)} bytes, {size} were written (truncated or changed)"
    return None


def complete_checkpoints(root: str) -> list[str]:
    """The complete checkpoints under ``root``, oldest first (by training step, then time)."""
    found = []
    for name in os.listdir(root) if os.path.isdir(root) else []:
        path = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        manifest = read_manifest(path)
        if manifest is not None and damage(path, manifest) is None:
            step = (manifest.get("state") or {}).get("completed_steps", 0)
            found.append((step if isinstance(step, int) else 0, os.path.getmtime(path), path))
    return [path for _, _, path in sorted(found)]


def resolve_checkpoint(path: str, output_dir: str, argument: str = "--resume_from_checkpoint") -> str:
    """A checkpoint folder, or for ``"latest"`` the latest complete one under ``output_dir/checkpoints``."""
    if path != "latest":
        if not os.path.isdir(path):
            raise UserError(f"{argument} {path}: no such checkpoint folder")
        return path
    root = os.path.join(output_dir, "checkpoints")
    complete = complete_checkpoints(root)
    if not complete:
        others = sorted(n for n in (os.listdir(root) if os.path.isdir(root) else []) if not n.startswith("."))
        hint = (
            f" (incomplete or of an earlier xner: {', '.join(others)}; give one by path, with {TRUST_FLAG} if you trust it)"
            if others
            else ""
        )
        raise UserError(f"{argument} latest: no complete checkpoint under {root}{hint}")
    return complete[-1]


# ---------------------------------------------------------------------------------------------- loading


def foreign_pickles(path: str, manifest: Optional[dict]) -> list[str]:
    """Pickle files in a checkpoint that xner did not write (all of them when it has no manifest)."""
    written = set(manifest["files"]) if manifest else set()
    return sorted(
        name
        for name in os.listdir(path)
        if name.lower().endswith(PICKLE_SUFFIXES) and not (name in written and name in SAFE_PICKLES)
    )


def check_checkpoint(
    path: str, *, trust_pickles: bool = False, argument: str = "--resume_from_checkpoint"
) -> Optional[dict]:
    """Refuse, in one line naming ``argument``, a checkpoint that is incomplete, damaged or holds pickles xner did
    not write (unless ``trust_pickles``), without loading anything; returns its manifest (None: legacy, trusted)."""
    where = f"{argument} {path}"
    if not os.path.isdir(path):
        raise UserError(f"{where}: no such checkpoint folder")
    manifest = read_manifest(path)
    foreign = foreign_pickles(path, manifest)
    if foreign and not trust_pickles:
        raise UserError(
            f"{where} holds pickle files xner did not write ({', '.join(foreign)}); loading them can run "
            f"arbitrary code: pass {TRUST_FLAG} only if you trust where the checkpoint comes from"
        )
    if manifest is None and not trust_pickles:
        raise UserError(
            f"{where} is not a complete xner checkpoint (no valid {STATE_FILE}): it was cut short "
            f"or written by another program"
        )
    if manifest is not None and not foreign:
        problem = damage(path, manifest)
        if problem:
            raise UserError(f"{where} is damaged: {problem}")
        return manifest
    return None


def load_checkpoint(
    accelerator,
    path: str,
    *,
    trust_pickles: bool = False,
    legacy_objects: Sequence[Any] = (),
    argument: str = "--resume_from_checkpoint",
) -> Optional[dict]:
    """Restore model, optimizer, scheduler, RNG and step from ``path``; returns xner's saved state.

    Returns None when a checkpoint without xner's state was loaded the old way (``trust_pickles``):
    ``legacy_objects`` (registered with ``register_for_checkpointing`` then) were restored from its pickles.
    """
    where = f"{argument} {path}"
    manifest = check_checkpoint(path, trust_pickles=trust_pickles, argument=argument)
    try:
        if manifest is None:  # trusted: accelerate's own loader, pickles included
            for obj in legacy_objects:
                accelerator.register_for_checkpointing(obj)
            accelerator.load_state(path)
            return None
        if manifest.get("num_processes") != accelerator.num_processes:
            raise UserError(
                f"{where} was written by {manifest.get('num_processes')} processes; this run has "
                f"{accelerator.num_processes}: resume with the same number"
            )
        accelerator.load_state(path, load_kwargs={"weights_only": True})
        _load_rng(os.path.join(path, rng_file(accelerator.process_index)))
        accelerator.step = int(manifest["accelerator_step"])
    except UserError:
        raise
    except LOAD_ERRORS as err:
        raise UserError(f"{where} cannot be loaded: {one_line(err)}") from err
    return manifest


__all__ = [
    "FORMAT",
    "STATE_FILE",
    "TRUST_FLAG",
    "TRUST_HELP",
    "check_checkpoint",
    "complete_checkpoints",
    "foreign_pickles",
    "load_checkpoint",
    "read_manifest",
    "resolve_checkpoint",
    "rng_file",
    "save_checkpoint",
]
