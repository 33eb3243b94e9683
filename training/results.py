"""What a training run did: :class:`RunResults`, written as the one ``results.json`` of every training run.

``xner train-teacher``, ``xner distill`` and ``xner merge`` write it; readers (model cards,
``xner evaluate``'s in/out-of-domain decision, the demo and the experiment harness) read these keys.
Model cards (``model_cards.model_card``) are filled from these fields. Scores are in the one result schema of :func:`training.metrics.scores_of`. Fields a run kind does
not have stay None or empty (a teacher has no strategy, no teachers, no student).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import resource
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import torch

RESULTS_FILE = "results.json"
RESULTS_FORMAT = 2  # 2: one format for teachers and students; scores in training.metrics.scores_of's schema
# What changed the teacher's pseudo-labels (results.json ``data`` keys written by training.distill), in order
PSEUDO_LABEL_STEPS = ("language_agnostic_selection", "denoising", "class_balanced_selection")
# The packages whose versions a run records (model cards show them).
FRAMEWORKS = ("xner", "transformers", "torch", "datasets", "tokenizers", "accelerate", "huggingface_hub", "peft")


@dataclass
class RunResults:
    """One training run (the ``results.json`` keys; see the module doc)."""

    task: str  # "teacher" (supervised fine-tuning) or "distillation"
    model_name_or_path: str  # the checkpoint the run started from
    label_names: list
    data: dict  # corpus, lang, dataset, dataset_config, domain (+ tag/text columns, splits for a teacher)
    num_train_sentences: int = 0
    num_train_windows: int = 0
    epochs: list = field(default_factory=list)  # [{"epoch", "step", "train": {"loss"}, SET: scores}, ...]
    best: dict = field(default_factory=dict)  # {"split"/"eval_set", "metric", "value", "epoch", "step"}
    eval: Optional[dict] = None  # the saved model's scores per evaluation set
    eval_sets: dict = field(default_factory=dict)  # evaluation set -> facts (split, lang, domain, type map...)
    train_data: list = field(default_factory=list)  # one entry per source of training text
    completed_steps: int = 0
    learning_rate: Optional[float] = None
    train_loss: Optional[dict] = None
    train_runtime_s: float = 0.0
    train_tokens: int = 0
    train_tokens_per_s: float = 0.0
    padding_fraction: float = 0.0
    wall_time_s: float = 0.0
    peak_rss_mb: Optional[float] = None
    peak_gpu_memory_mb: Optional[float] = None
    num_processes: int = 1
    train_corpus: Optional[str] = None
    train_domain: Optional[str] = None
    student: Optional[dict] = None  # distillation: kind, lora, freeze, parameters, saved_as
    strategy: Optional[dict] = None  # distillation: the strategy's config()
    teachers: list = field(default_factory=list)  # distillation: [{"model", "weight", "label_names", "fingerprint"}]
    teacher_probabilities: Optional[str] = None  # "precomputed" or "on-the-fly"
    teacher_probabilities_seconds: Optional[float] = None
    framework_versions: dict = field(default_factory=dict)
    args: dict = field(default_factory=dict)  # every option of the run (training.arguments.as_record)
    merged_from: Optional[str] = None  # xner merge: the adapter folder this plain model was merged from
    format: int = RESULTS_FORMAT

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write(self, folder: str) -> str:
        path = os.path.join(folder, RESULTS_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2)
        return path

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunResults":
        # Distillation results written before model cards read these keys carried a copy under "card".
        values = {k: v for k, v in values.items() if k != "card"}
        fields = dataclasses.fields(cls)
        unknown = sorted(set(values) - {f.name for f in fields})
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in results.json; known: {sorted(f.name for f in fields)}")
        missing = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in values
        ]
        if missing:
            raise ValueError(f"results.json lacks {missing} (not a results.json of xner train-teacher or distill)")
        return cls(**values)

    def pseudo_label_steps(self) -> dict[str, Any]:
        """What changed the teacher's pseudo-labels before the student learnt from them (distillation only):
        the reports of ``language_agnostic_selection``, ``denoising`` and ``class_balanced_selection``
        (``data``) and the ``self_training`` lineage (``student``), each key only where the run had it."""
        steps = {k: self.data[k] for k in PSEUDO_LABEL_STEPS if (self.data or {}).get(k)}
        if (self.student or {}).get("self_training"):
            steps["self_training"] = self.student["self_training"]
        return steps

    def pseudo_label_rates(self) -> dict[str, float]:
        """The same steps as fractions (0-1), for tables: ``sentences_kept`` (language-agnostic selection),
        ``denoise_mean_weight`` and ``relabelled`` (denoising, over all words), ``words_kept``
        (class-balanced thresholds), and the strategy's last-epoch ``kept_rate`` / ``disagreement_rate``."""
        steps, rates = self.pseudo_label_steps(), {}
        selection = steps.get("language_agnostic_selection") or []
        if selection and sum(r["total"] for r in selection):
            rates["sentences_kept"] = sum(r["kept"] for r in selection) / sum(r["total"] for r in selection)
        denoising = [d for d in steps.get("denoising") or [] if d.get("tokens")]
        if denoising:
            tokens = sum(d["tokens"] for d in denoising)
            rates["denoise_mean_weight"] = sum(d["mean_weight"] * d["tokens"] for d in denoising) / tokens
            if any(d.get("mode") == "relabel" for d in denoising):
                rates["relabelled"] = sum(d.get("relabelled", 0) for d in denoising) / tokens
        fitted = steps.get("class_balanced_selection")
        if fitted and fitted.get("words"):
            rates["words_kept"] = fitted["kept"] / fitted["words"]
        epochs = (self.train_loss or {}).get("strategy_statistics") or []
        last = epochs[-1] if epochs else {}
        rates.update({k: float(last[k]) for k in ("kept_rate", "disagreement_rate") if last.get(k) is not None})
        return rates

    @classmethod
    def read(cls, path: Union[str, os.PathLike]) -> "RunResults":
        """From ``results.json`` (the file or the folder holding it)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, RESULTS_FILE)
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def framework_versions(adapter: bool) -> dict:
    """Versions of the packages of :data:`FRAMEWORKS` installed here (peft only for an adapter).

    xner's own version comes from its installed metadata: training sits below the xner package."""
    versions = {}
    for name in FRAMEWORKS:
        if name == "peft" and not adapter:
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def peak_memory_mb() -> tuple[float, Optional[float]]:
    """``(peak resident memory of this process, peak GPU memory allocated or None)`` in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return rss, gpu


__all__ = [
    "FRAMEWORKS",
    "PSEUDO_LABEL_STEPS",
    "RESULTS_FILE",
    "RESULTS_FORMAT",
    "RunResults",
    "framework_versions",
    "peak_memory_mb",
]
