"""Checks of the training command lines' values, made before anything loads or trains.

Each failure is one line naming the argument: argparse ``type=`` functions for numbers (argparse
prints ``argument --x: ...``), :class:`~dataset_builders.errors.UserError` for model paths.
"""

from __future__ import annotations

import argparse
import math
import os

from dataset_builders.errors import UserError


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a batch size, a number of steps)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (warm-up steps, layers to freeze)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def looks_like_path(value: str) -> bool:
    """Whether a model reference is meant as a local path rather than a Hub id (``name`` or ``org/name``)."""
    return (
        os.path.isabs(value)
        or value.startswith(("./", "../", "~", ".\\"))
        or value in (".", "..")
        or value.count("/") > 1
        or "\\" in value
    )


def check_model_source(value: str, argument: str) -> str:
    """A model folder, or a Hub id; a path to nothing (or to a file) is an error naming ``argument``.

    Without this check transformers reports a missing folder as an invalid Hub repo id.
    """
    if os.path.isdir(os.path.expanduser(value)):
        return value
    if os.path.exists(value):
        raise UserError(f"{argument} {value} is a file; give a model folder or a Hub id")
    if looks_like_path(value):
        raise UserError(f"{argument} {value}: no such model folder")
    return value


__all__ = ["check_model_source", "looks_like_path", "non_negative_int", "positive_float", "positive_int"]
