"""``xner`` verbs of the training package; each also runs as ``accelerate launch -m training.<module>``."""

from __future__ import annotations

import importlib

# Module -> it registers one verb (its ``register(subparsers)``); modules not written yet are skipped.
VERB_MODULES = ("training.teacher", "training.distill", "training.evaluation")


def register(subparsers) -> None:
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue
            raise
        module.register(subparsers)
