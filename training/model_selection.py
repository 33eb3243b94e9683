"""Honest model selection for zero-shot cross-lingual NER: which dev set may pick checkpoints and hyperparameters.

Zero-shot cross-lingual transfer assumes no labelled target-language data. Choosing the best epoch,
the best learning rate or the best strategy on the gold target dev set uses exactly that data and
inflates the reported scores (Keung et al. 2020, "Don't Use English Dev: On the Zero-Shot
Cross-Lingual Evaluation of Contextual Embeddings"). Three protocols are offered:

* ``source-dev``: the source-language gold dev set (always legitimate; may favour models that
  overfit the source language);
* ``translate-train-dev``: the source dev set machine-translated into the target language with its
  tags projected (legitimate: no target gold labels; closer to the target distribution);
* ``target-dev``: the gold target dev set -- only when the user explicitly allows it (e.g. a
  few-shot or an upper-bound study), and recorded as such.

:func:`choose_selection` applies the rule: the requested protocol if its dev set can be had,
``target-dev`` refused unless ``allow_target_dev``, and by default ``translate-train-dev`` where an
MT system (or an already projected dev set) exists, ``source-dev`` otherwise. Sweeps use the same
call. :meth:`ModelSelection.record` is the small dict to store in ``results.json`` and model cards.

How ``xner distill`` / the experiment harness should call it::

    selection = choose_selection(args.selection, source_dev="conll2003:validation@en",
                                 source_lang="en", target_lang=args.lang, mt_system=args.mt_system,
                                 projected_dev=args.projected_dev, target_dev=f"conll2002:validation@{args.lang}",
                                 allow_target_dev=args.allow_target_dev)
    dev = selection.dev        # what --best_on / the sweep evaluates on (build it first when
                               # dev.needs_projection: translate source_dev with dev.mt_system, project)
    results["model_selection"] = selection.record()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Optional, get_args

from dataset_builders.errors import UserError

Selection = Literal["source-dev", "translate-train-dev", "target-dev"]
SELECTION_PROTOCOLS: tuple[str, ...] = get_args(Selection)

TARGET_DEV_REFUSED = (
    "selection 'target-dev' picks checkpoints on gold target-language labels, which zero-shot "
    "cross-lingual work assumes it does not have (the scores would be optimistic); use 'source-dev' or "
    "'translate-train-dev', or allow it explicitly (--allow_target_dev) for a few-shot or upper-bound study"
)


@dataclass(frozen=True)
class DevSetSpec:
    """The dev set a protocol selects on.

    ``dataset``: a corpus spec (``NAME:split@lang``) or a path; for a translate-train dev set still
    to be built, the source dev spec it is translated from (``needs_projection`` is then true and
    ``mt_system`` names the translator). ``gold``: its labels are human annotations (source or
    target dev set), not projected ones; ``language``: the language of its text.
    """

    protocol: str
    dataset: str
    language: Optional[str]
    gold: bool
    mt_system: Optional[str] = None
    needs_projection: bool = False


@dataclass(frozen=True)
class ModelSelection:
    """The protocol chosen, its dev set, and why (for the record)."""

    protocol: str
    dev: DevSetSpec
    reason: str
    target_dev_allowed: bool

    def record(self) -> dict[str, Any]:
        """What results.json and the model card store about model selection."""
        return {
            "selection": self.protocol,
            "dev_set": dataclasses.asdict(self.dev),
            "gold_target_dev_used": self.protocol == "target-dev",
            "target_dev_allowed": self.target_dev_allowed,
            "reason": self.reason,
        }


def choose_selection(
    requested: Optional[str] = None,
    *,
    source_dev: Optional[str] = None,
    source_lang: Optional[str] = None,
    target_lang: Optional[str] = None,
    mt_system: Optional[str] = None,
    projected_dev: Optional[str] = None,
    target_dev: Optional[str] = None,
    allow_target_dev: bool = False,
) -> ModelSelection:
    """The selection protocol and dev set to use, given what is available.

    ``requested``: one of :data:`SELECTION_PROTOCOLS`, or None for the default (translate-train-dev
    where ``mt_system`` or ``projected_dev`` exists, source-dev otherwise). ``projected_dev``: an
    already translated-and-projected dev set (preferred over building one with ``mt_system``).
    Raises :class:`UserError` for an unknown protocol, a protocol whose dev set is missing, and
    ``target-dev`` without ``allow_target_dev``.
    """
    if requested is not None and requested not in SELECTION_PROTOCOLS:
        raise UserError(f"--selection must be one of {', '.join(SELECTION_PROTOCOLS)}, got {requested!r}")
    has_translate_train = projected_dev is not None or (mt_system is not None and source_dev is not None)
    if requested is None:
        if has_translate_train:
            protocol, reason = "translate-train-dev", "default: an MT system / projected dev set is available"
        elif source_dev is not None:
            protocol, reason = "source-dev", "default: no MT system, so the source-language dev set"
        else:
            raise UserError(
                "no dev set for model selection: give a source dev set (and an MT system for translate-train-dev)"
            )
    else:
        protocol, reason = requested, "requested"

    if protocol == "target-dev":
        if not allow_target_dev:
            raise UserError(TARGET_DEV_REFUSED)
        if target_dev is None:
            raise UserError("selection 'target-dev' needs a target dev set (none was given)")
        dev = DevSetSpec(protocol, target_dev, target_lang, gold=True)
        reason = "requested, gold target dev explicitly allowed"
    elif protocol == "translate-train-dev":
        if projected_dev is not None:
            dev = DevSetSpec(protocol, projected_dev, target_lang, gold=False, mt_system=mt_system)
        elif has_translate_train:
            dev = DevSetSpec(protocol, source_dev, target_lang, gold=False, mt_system=mt_system, needs_projection=True)
        else:
            raise UserError(
                "selection 'translate-train-dev' needs a projected dev set, or a source dev set and an MT system "
                f"to build one (source dev: {source_dev}, MT system: {mt_system})"
            )
    else:
        if source_dev is None:
            raise UserError("selection 'source-dev' needs a source dev set (none was given)")
        dev = DevSetSpec(protocol, source_dev, source_lang, gold=True)
    return ModelSelection(protocol, dev, reason, allow_target_dev)


__all__ = ["DevSetSpec", "ModelSelection", "SELECTION_PROTOCOLS", "Selection", "choose_selection"]
