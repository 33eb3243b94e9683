"""Entity-level precision, recall and F1 for sequence labelling, as an ``evaluate`` metric.

Shipped inside xner and loaded by path (``evaluate.load("seqeval")`` needs the Hub). The figures
are seqeval's: in the default mode chunks are read the way conlleval reads them (a stray I-
starts an entity); ``mode="strict"`` with ``scheme="IOB2"`` counts only well-formed entities.
"""

import datasets
import evaluate
from seqeval import scheme as seqeval_scheme
from seqeval.metrics import accuracy_score, classification_report

_DESCRIPTION = """Entity-level (chunk) precision, recall and F1, micro-averaged overall and per entity type,
plus token accuracy, computed with seqeval."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of predicted tag sequences (list of list of str).
    references: list of gold tag sequences, aligned with predictions.
    suffix: tags are TYPE-B instead of B-TYPE.
    scheme: "IOB1", "IOB2", "IOE1", "IOE2", "IOBES" or "BILOU"; used with mode="strict".
    mode: None (conlleval-compatible) or "strict".
    sample_weight: optional per-sentence weights.
    zero_division: value when a ratio divides by zero: "warn" (0 with a warning), 0 or 1.
Returns:
    overall_precision, overall_recall, overall_f1, overall_accuracy, and for each type T a dict
    T -> {"precision", "recall", "f1", "number"} (number = gold entities of type T).
"""


class SeqevalMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Nakayama (2018), seqeval: A Python framework for sequence labeling evaluation",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string", id="label"), id="sequence"),
                    "references": datasets.Sequence(datasets.Value("string", id="label"), id="sequence"),
                }
            ),
        )

    def _compute(
        self, predictions, references, suffix=False, scheme=None, mode=None, sample_weight=None, zero_division="warn"
    ):
        for i, (p, r) in enumerate(zip(predictions, references)):
            if len(p) != len(r):
                raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(r)} reference tags")
        scheme_cls = getattr(seqeval_scheme, scheme) if scheme is not None else None
        report = classification_report(
            y_true=references,
            y_pred=predictions,
            suffix=suffix,
            output_dict=True,
            scheme=scheme_cls,
            mode=mode,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        report.pop("macro avg", None)
        report.pop("weighted avg", None)
        overall = report.pop("micro avg")
        result = {
            label: {
                "precision": float(s["precision"]),
                "recall": float(s["recall"]),
                "f1": float(s["f1-score"]),
                "number": int(s["support"]),
            }
            for label, s in report.items()
        }
        result["overall_precision"] = float(overall["precision"])
        result["overall_recall"] = float(overall["recall"])
        result["overall_f1"] = float(overall["f1-score"])
        result["overall_accuracy"] = float(accuracy_score(y_true=references, y_pred=predictions))
        return result
