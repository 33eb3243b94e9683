"""The entity-level NER metric, shipped with xner and loaded through ``evaluate`` by path."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

import evaluate

SCORE_KEYS = ("precision", "recall", "f1", "accuracy", "per_type")  # the one result schema (scores_of)
METRIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seqeval_metric")


def load_metric(**kwargs) -> evaluate.Metric:
    """``evaluate.load`` of xner's seqeval metric (works offline); kwargs go to ``evaluate.load``."""
    return evaluate.load(METRIC_DIR, **kwargs)


def entity_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], **kwargs) -> dict:
    """One-shot convenience: ``load_metric().compute(...)``."""
    return load_metric().compute(predictions=predictions, references=references, **kwargs)


def scores_of(metric_output: Mapping[str, Any]) -> dict:
    """The metric's output in xner's one result schema for an evaluation set.

    ``{"precision", "recall", "f1", "accuracy", "per_type": {TYPE: {"precision", "recall", "f1", "number"}}}``
    (fractions). The per-type figures are nested so that facts recorded beside the scores (sentence
    counts, the type map applied, the domain) never read as an entity type.
    """
    return {
        "precision": float(metric_output["overall_precision"]),
        "recall": float(metric_output["overall_recall"]),
        "f1": float(metric_output["overall_f1"]),
        "accuracy": float(metric_output["overall_accuracy"]),
        "per_type": {k: dict(v) for k, v in metric_output.items() if isinstance(v, Mapping)},
    }


def entity_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], metric: Optional[evaluate.Metric] = None
) -> dict:
    """Entity-level scores of tagged sentences in the one result schema (:func:`scores_of`)."""
    metric = metric or load_metric()
    return scores_of(metric.compute(predictions=predictions, references=references, zero_division=0))
