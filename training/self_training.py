"""Iterative self-training: N distillation rounds, the student of round r teaching round r+1.

Round 0 distils from the given teachers; every later round distils from the previous round's
student alone, on the same unlabelled corpus, so the student's own (better adapted) target-language
predictions replace the source-trained teacher's (the self-training loop of e.g. CoLaDa and of
Wu et al.'s iterated teacher-student). An optional confidence threshold schedule moves linearly from
``threshold_start`` in round 0 to ``threshold_end`` in the last round (e.g. 0.9 -> 0.7 for a
``hard-confident`` student that admits more pseudo-labels as its teachers improve).

* :class:`SelfTrainingSchedule`: the parameters, validated (``UserError``), recorded with ``asdict``.
* :func:`plan_rounds`: the pure per-round settings (teachers, output folder, threshold).
* :func:`round_cache_key` / :func:`teacher_probs_cache_file`: each round's teacher probabilities
  cached under a key made of the teacher folders' content fingerprints and weights, the round and
  the corpus, so a resumed or repeated run reuses finished rounds' columns and a retrained teacher
  never hits a stale cache. The files go to :func:`teacher_probs_cache_dir`, a hidden folder of the
  run (``OUTPUT_DIR/rounds/.teacher-probs``): kept across runs in the same folder, never uploaded
  by ``--push_to_hub`` (publishing skips hidden folders).

How ``xner distill`` calls it (:func:`training.distill.distill`)::

    schedule = SelfTrainingSchedule(rounds=3, threshold_start=0.9, threshold_end=0.7)
    schedule.check_strategy(strategy_config["name"])                 # fail before any training
    cache_dir = teacher_probs_cache_dir(args.output_dir)
    for settings in plan_rounds(schedule, args.teacher, args.output_dir):
        # the teacher folder of round r >= 1 is only written by round r-1: key it now
        key = round_cache_key(settings.teachers, settings.index, corpus._fingerprint, weights)
        corpus_r = add_teacher_probs(corpus, settings.teachers, weights,
                                     cache_file_name=teacher_probs_cache_file(cache_dir, key, part))
        strategy = from_config(**settings.strategy_config(strategy_config))
        train_student(corpus_r, strategy, output_dir=settings.output_dir)
    results["self_training"] = {**asdict(schedule), "rounds": [s.record() for s in plan]}

Intermediate students go to ``OUTPUT_DIR/rounds/round-R``; the last round writes ``OUTPUT_DIR``
itself, so one round is exactly a plain distillation run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from dataset_builders.errors import UserError
from training.strategies import STRATEGIES
from training.teacher_probs import model_fingerprint

ROUNDS_DIR = "rounds"
TEACHER_PROBS_CACHE = ".teacher-probs"  # hidden: model publishing skips dot folders


def _check_probability(name: str, value: Optional[float]) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise UserError(f"self-training {name} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class SelfTrainingSchedule:
    """``rounds`` distillation rounds (>= 1) and an optional linear confidence-threshold schedule.

    ``threshold_end`` defaults to ``threshold_start`` (a constant threshold); giving an end
    without a start is an error.
    """

    rounds: int = 1
    threshold_start: Optional[float] = None
    threshold_end: Optional[float] = None

    def __post_init__(self):
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise UserError(f"self-training rounds must be an integer >= 1, got {self.rounds!r}")
        if self.threshold_end is not None and self.threshold_start is None:
            raise UserError("self-training threshold_end needs threshold_start")
        _check_probability("threshold_start", self.threshold_start)
        _check_probability("threshold_end", self.threshold_end)

    def threshold(self, round_index: int) -> Optional[float]:
        """The confidence threshold of round ``round_index`` (0-based); None without a schedule."""
        if not 0 <= round_index < self.rounds:
            raise UserError(f"round {round_index} is outside 0..{self.rounds - 1}")
        if self.threshold_start is None:
            return None
        end = self.threshold_start if self.threshold_end is None else self.threshold_end
        if self.rounds == 1:
            return self.threshold_start
        return self.threshold_start + (end - self.threshold_start) * round_index / (self.rounds - 1)

    def check_strategy(self, strategy: str) -> None:
        """A threshold schedule needs a strategy that takes a ``threshold`` (e.g. ``hard-confident``)."""
        if self.threshold_start is None:
            return
        if strategy not in STRATEGIES:
            raise UserError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
        if "threshold" not in {f.name for f in dataclasses.fields(STRATEGIES[strategy])}:
            takes = [
                name for name, cls in STRATEGIES.items() if "threshold" in {f.name for f in dataclasses.fields(cls)}
            ]
            raise UserError(
                f"a self-training threshold schedule needs a strategy with a threshold ({', '.join(takes)}); "
                f"{strategy!r} has none"
            )


@dataclass(frozen=True)
class RoundSettings:
    """What one round runs with: its teachers, where its student goes, its threshold."""

    index: int
    teachers: tuple[str, ...]
    output_dir: str
    threshold: Optional[float]
    is_last: bool

    def strategy_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` (``{"name": ..., **params}``) with this round's threshold, when there is one."""
        out = dict(config)
        if self.threshold is not None:
            SelfTrainingSchedule(rounds=1, threshold_start=self.threshold).check_strategy(out.get("name", ""))
            out["threshold"] = self.threshold
        return out

    def record(self) -> dict[str, Any]:
        """JSON-ready, for ``results.json``."""
        return {**dataclasses.asdict(self), "teachers": list(self.teachers)}


def round_dir(output_dir: str, round_index: int, rounds: int) -> str:
    """Where round ``round_index``'s student is saved: the run's own folder for the last round."""
    if round_index == rounds - 1:
        return output_dir
    return os.path.join(output_dir, ROUNDS_DIR, f"round-{round_index}")


def plan_rounds(schedule: SelfTrainingSchedule, teachers: Sequence[str], output_dir: str) -> list[RoundSettings]:
    """Per-round settings: round 0 learns from ``teachers``, round r from round r-1's student."""
    if not teachers:
        raise UserError("self-training needs at least one initial teacher")
    plan = []
    for r in range(schedule.rounds):
        round_teachers = tuple(teachers) if r == 0 else (round_dir(output_dir, r - 1, schedule.rounds),)
        plan.append(
            RoundSettings(
                index=r,
                teachers=round_teachers,
                output_dir=round_dir(output_dir, r, schedule.rounds),
                threshold=schedule.threshold(r),
                is_last=r == schedule.rounds - 1,
            )
        )
    return plan


def round_cache_key(
    teachers: Sequence[str],
    round_index: int,
    corpus_fingerprint: str,
    weights: Optional[Sequence[float]] = None,
    revision: Optional[str] = None,
) -> str:
    """A hex key for one round's teacher probabilities on one corpus.

    Made of each teacher's content fingerprint (:func:`training.teacher_probs.model_fingerprint`:
    config and weight files of a folder, ``name@revision`` for a Hub id), their weights, the round
    and the corpus fingerprint (``dataset._fingerprint``). Compute it when the round starts: a
    later round's teacher folder only exists once the previous round has finished.
    """
    if not teachers:
        raise UserError("round_cache_key needs at least one teacher")
    for teacher in teachers:
        if os.path.isdir(teacher) and not os.path.isfile(os.path.join(teacher, "config.json")):
            raise UserError(f"teacher folder {teacher} has no config.json (has its round finished?)")
    payload = {
        "teachers": [model_fingerprint(t, revision) for t in teachers],
        "weights": None if weights is None else [float(w) for w in weights],
        "round": int(round_index),
        "corpus": corpus_fingerprint,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def teacher_probs_cache_dir(output_dir: str) -> str:
    """Where a self-training run caches its rounds' teacher probabilities: hidden, so not published."""
    return os.path.join(output_dir, ROUNDS_DIR, TEACHER_PROBS_CACHE)


def teacher_probs_cache_file(cache_dir: str, key: str, split: str = "train") -> str:
    """The ``cache_file_name`` for ``datasets.map`` holding one round's teacher probabilities."""
    return os.path.join(cache_dir, f"teacher-probs-{key}-{split}.arrow")


__all__ = [
    "RoundSettings",
    "SelfTrainingSchedule",
    "plan_rounds",
    "round_cache_key",
    "round_dir",
    "teacher_probs_cache_dir",
    "teacher_probs_cache_file",
]
