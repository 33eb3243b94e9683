"""The entity-level NER metric, shipped with xner and loaded through ``evaluate`` by path."""

from __future__ import annotations

import os
from typing import Sequence

import evaluate

METRIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seqeval_metric")


def load_metric(**kwargs) -> evaluate.Metric:
    """``evaluate.load`` of xner's seqeval metric (works offline); kwargs go to ``evaluate.load``."""
    return evaluate.load(METRIC_DIR, **kwargs)


def entity_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], **kwargs) -> dict:
    """One-shot convenience: ``load_metric().compute(...)``."""
    return load_metric().compute(predictions=predictions, references=references, **kwargs)
