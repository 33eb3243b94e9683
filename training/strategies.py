"""Teacher-student distillation strategies: each one a named, documented loss with its parameters.

Every strategy is a small dataclass called as ``strategy(student_logits, batch) -> loss`` where

* ``student_logits``: ``(batch, seq, n_labels)`` over the student's sub-tokens;
* ``batch["teacher_probs"]``: ``(batch, seq, n_labels)`` teacher distributions aligned to the
  student's sub-tokens (only meaningful where ``kd_mask`` is true; zeros elsewhere);
* ``batch["kd_mask"]``: ``(batch, seq)`` bool, true on the first sub-token of every real word --
  the positions a word-level teacher distribution is attached to (Wu et al. 2020 distil on first
  sub-tokens only, the same positions a token classifier is trained and evaluated on). A batch
  from :mod:`training.features` has no ``kd_mask``; its ``word_heads`` (the one head token of each
  word, window overlaps deduplicated) marks the same tokens and is used instead;
* ``batch["labels"]``: ``(batch, seq)`` projected tag ids with -100 where there is no projection
  (only ``projected+kd`` and ``voting`` read it);
* ``batch["kd_weight"]`` (optional): ``(batch, seq)`` non-negative float weight of each token's
  teacher-derived term, e.g. the neighbour agreement of :mod:`training.denoise` spread onto head
  sub-tokens like ``teacher_probs`` (``TokenAligner(word_columns={"kd_weight": 0.0})``). Every
  teacher-derived term (soft losses, hard pseudo-labels, ``voting``) is then ``sum(w * loss) / n``
  over the n selected tokens -- a weighted mean in which a uniformly down-weighted batch counts
  less, as in CoLaDa's released code -- and a token of weight 0 is not selected at all.
  ``projected+kd``'s cross-entropy on projected tags is not a teacher term and stays unweighted.

All losses average over the selected tokens, computed in float32 whatever the logits' dtype, and
return a zero that is still connected to the graph when no token is selected (a batch where a
confidence threshold keeps nothing must not produce NaN). Build one by name with
:func:`from_config`; :data:`STRATEGIES` lists them. A strategy may count what it saw
(:meth:`DistillationLoss.statistics`, e.g. ``voting``'s disagreement rate); the training loop can
log them per batch and per epoch.

References: Wu et al. 2020, "Single-/Multi-Source Cross-Lingual NER via Teacher-Student Learning on
Unlabeled Data in Target Language" (ACL); Hinton et al. 2015, "Distilling the Knowledge in a Neural
Network"; Wu et al. 2020, "UniTrans: Unifying Model Transfer and Data Transfer for Cross-Lingual
Named Entity Recognition with Unlabeled Data" (IJCAI).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from dataset_builders.errors import UserError

IGNORE_INDEX = -100
Batch = Mapping[str, torch.Tensor]


def _batch_tensor(batch: Batch, key: str, strategy: str) -> torch.Tensor:
    if key not in batch:
        raise KeyError(f"strategy {strategy!r} needs batch[{key!r}]; the batch has {sorted(batch)}")
    return batch[key]


def _kd_mask(batch: Batch, strategy: str) -> torch.Tensor:
    """``kd_mask``, or the features' ``word_heads`` (the same tokens) when the batch has no ``kd_mask``."""
    key = "word_heads" if "kd_mask" not in batch and "word_heads" in batch else "kd_mask"
    return _batch_tensor(batch, key, strategy).bool()


class Selected(NamedTuple):
    """The tokens a loss is computed on: ``(n, n_labels)`` logits and teacher rows, ``(n,)`` weights or None."""

    logits: torch.Tensor
    teacher: torch.Tensor
    weights: Optional[torch.Tensor]
    mask: torch.Tensor  # (batch, seq) bool: which tokens were selected


def _selected(student_logits: torch.Tensor, batch: Batch, strategy: str) -> Selected:
    """Student logits, teacher probabilities and ``kd_weight`` of the tokens under ``kd_mask``.

    Selecting by boolean indexing (rather than multiplying by the mask) keeps padding and
    non-first sub-tokens, whose teacher rows are all zeros, out of every log/softmax, so they can
    put neither NaN in the forward pass nor in the gradient. With a ``kd_weight`` column, tokens of
    weight 0 are left out too (they would only add zeros to the sum and one to the count).
    """
    teacher = _batch_tensor(batch, "teacher_probs", strategy)
    mask = _kd_mask(batch, strategy)
    if teacher.shape != student_logits.shape:
        raise ValueError(
            f"teacher_probs has shape {tuple(teacher.shape)} but the student logits have "
            f"{tuple(student_logits.shape)}: teacher and student must share a label set and a tokenisation"
        )
    weights = batch.get("kd_weight")
    if weights is None:
        return Selected(student_logits[mask].float(), teacher[mask].float(), None, mask)
    if weights.shape != mask.shape:
        raise ValueError(
            f"kd_weight has shape {tuple(weights.shape)}; one weight per token {tuple(mask.shape)} is needed"
        )
    mask = mask & (weights > 0)
    return Selected(student_logits[mask].float(), teacher[mask].float(), weights[mask].float(), mask)


def _zero(student_logits: torch.Tensor) -> torch.Tensor:
    """A zero loss that keeps the graph (backward works, gradients are zero)."""
    return student_logits.float().sum() * 0.0


def _mean(per_token: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean of per-token losses, each multiplied by its weight when there are weights (0 when empty)."""
    if per_token.shape[0] == 0:
        return _zero(per_token)
    if weights is None:
        return per_token.mean()
    return (per_token * weights).sum() / per_token.shape[0]


def _soft_mse_tokens(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Per token: mean over labels of ``(softmax(s) - p_T)^2`` (their mean is ``MSELoss``'s)."""
    return (logits.softmax(-1) - teacher).pow(2).mean(-1)


def _soft_kl_tokens(logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per token: ``T^2 * KL(p_T^(T) || softmax(s / T))``."""
    # Tempering stored probabilities is exact: log p = z - logsumexp(z), so softmax(log p / T)
    # equals softmax(z / T) for the teacher's own logits z. The clamp only guards exact zeros.
    teacher_log_t = (teacher.clamp_min(torch.finfo(teacher.dtype).tiny).log() / temperature).log_softmax(-1)
    student_log_t = (logits / temperature).log_softmax(-1)
    return (teacher_log_t.exp() * (teacher_log_t - student_log_t)).sum(-1) * temperature**2


def _soft_tokens(name: str, logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    return _soft_mse_tokens(logits, teacher) if name == "soft-mse" else _soft_kl_tokens(logits, teacher, temperature)


def _soft_loss(name: str, selected: Selected, temperature: float) -> torch.Tensor:
    return _mean(_soft_tokens(name, selected.logits, selected.teacher, temperature), selected.weights)


def _hard_loss(logits: torch.Tensor, targets: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    return _mean(F.cross_entropy(logits, targets, reduction="none"), weights)


def _check_temperature(strategy: str, temperature: float) -> None:
    if not temperature > 0:
        raise UserError(f"{strategy}: temperature must be > 0, got {temperature}")


def _check_soft_loss(strategy: str, soft_loss: str, temperature: float) -> None:
    if soft_loss not in SOFT_LOSSES:
        raise UserError(f"{strategy}: soft_loss must be one of {SOFT_LOSSES}, got {soft_loss!r}")
    _check_temperature(strategy, temperature)


def _check_alpha(strategy: str, alpha: float) -> None:
    if not alpha >= 0:
        raise UserError(f"{strategy}: alpha must be >= 0, got {alpha}")


def similarity_weights(similarities: Sequence[float], temperature: float = 1.0) -> list[float]:
    """Teacher weights from language similarities: ``softmax(similarities / temperature)``.

    Wu et al. 2020 (multi-source) weight the teacher of source language k by a softmax over the
    similarity between the target language and source k (they measure it with a language
    identification model), so teachers of closer languages count more. A small temperature
    sharpens the weights towards the most similar source; a large one tends to uniform.
    """
    if not similarities:
        raise UserError("similarity_weights needs at least one similarity value")
    if not temperature > 0:
        raise UserError(f"temperature must be > 0, got {temperature}")
    scaled = [float(s) / temperature for s in similarities]
    top = max(scaled)
    exps = [math.exp(s - top) for s in scaled]
    total = sum(exps)
    return [e / total for e in exps]


def normalise_weights(weights: Sequence[float]) -> list[float]:
    """Non-negative weights scaled to sum to 1 (raises on negative or all-zero weights)."""
    if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UserError(f"teacher weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


@dataclass
class DistillationLoss:
    """Base class: a named loss over student logits and a batch carrying teacher outputs."""

    name: ClassVar[str]
    needs_projected_labels: ClassVar[bool] = False

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """``{"name": ..., **parameters}``: what a run records and :func:`from_config` accepts back."""
        return {"name": self.name, **dataclasses.asdict(self)}

    # The names of what the loss counts per batch (empty: it counts nothing), kept as one tensor per batch and
    # summed, so a training step never waits on the device; numbers only when statistics() is asked for.
    counted: ClassVar[tuple[str, ...]] = ()

    def _add_counts(self, *counts: torch.Tensor) -> None:
        self._last = torch.stack([c.to(torch.long) for c in counts]).detach()
        self._total = self._last if self._total is None else self._total + self._last.to(self._total.device)

    def statistics(self, cumulative: bool = True) -> dict[str, Optional[float]]:
        """What the loss counted: since :meth:`reset_statistics` (``cumulative``) or in the last batch.

        Empty for strategies that count nothing. Counts are plain numbers, so a multi-process
        loop can sum them across processes before deriving rates (:meth:`rates`).
        """
        if not self.counted:
            return {}
        counts = self._total if cumulative else self._last
        values = [0] * len(self.counted) if counts is None else [int(c) for c in counts.tolist()]
        stats = dict(zip(self.counted, values))
        return {**stats, **self.rates(stats)}

    def rates(self, counts: Mapping[str, int]) -> dict[str, Optional[float]]:
        """The rates :meth:`statistics` derives from its counts (recomputed after counts are summed over processes)."""
        return {}

    def reset_statistics(self) -> None:
        """Start counting afresh (e.g. at each epoch)."""
        self._last: Optional[torch.Tensor] = None
        self._total: Optional[torch.Tensor] = None

    @property
    def needs_fit(self) -> bool:
        """True when the loss has parameters fitted on the whole training corpus first (:meth:`fit`)."""
        return False

    def fit(self, confidence: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
        """Fit corpus-level parameters from the teacher's max probability and argmax per word; returns a record."""
        raise NotImplementedError(f"{self.name} fits nothing on the corpus")


@dataclass
class SoftMSE(DistillationLoss):
    """``soft-mse``: mean squared error between student softmax and teacher probabilities.

    The loss of Wu et al. 2020 (single source): ``mean over first sub-tokens and labels of
    (softmax(s) - p_T)^2`` -- the element-wise mean of ``torch.nn.MSELoss``, as in their code.
    Bounded and gentle on confidently wrong teachers, which is why they prefer it to KL.
    """

    name: ClassVar[str] = "soft-mse"

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return _soft_loss(self.name, _selected(student_logits, batch, self.name), 1.0)


@dataclass
class SoftKL(DistillationLoss):
    """``soft-kl``: ``T^2 * KL(p_T^(T) || softmax(s / T))`` per first sub-token, averaged over tokens.

    Hinton et al. 2015: both distributions are softened with temperature ``T`` (the teacher's as
    ``softmax(log p_T / T)``, identical to softening its logits) and the loss is multiplied by
    ``T^2`` so that gradient magnitudes stay comparable across temperatures. KL is summed over
    labels and averaged over tokens (``reduction="batchmean"`` per token). ``T = 1`` is plain KL.
    """

    name: ClassVar[str] = "soft-kl"
    temperature: float = 1.0

    def __post_init__(self):
        _check_temperature(self.name, self.temperature)

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return _soft_loss(self.name, _selected(student_logits, batch, self.name), self.temperature)


@dataclass
class Hard(DistillationLoss):
    """``hard``: cross-entropy against the teacher's argmax label (pseudo-labelling / self-training).

    Throws the teacher's uncertainty away; the baseline the soft losses are compared with.
    """

    name: ClassVar[str] = "hard"

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        selected = _selected(student_logits, batch, self.name)
        return _hard_loss(selected.logits, selected.teacher.argmax(-1), selected.weights)


def class_balanced_thresholds(confidence: np.ndarray, predicted: np.ndarray, n_labels: int, keep: float) -> list[float]:
    """Per-label confidence thresholds that keep the most confident ``keep`` share of each predicted label.

    Class-balanced selection (Zou et al. 2018, "Unsupervised Domain Adaptation for Semantic
    Segmentation via Class-Balanced Self-Training", ECCV): one global threshold keeps the frequent,
    easy label (``O``) and drops the rare ones whose teacher is less sure -- a cross-lingual teacher
    rarely reaches 0.9 on an entity word -- so each label gets its own threshold, the ``1 - keep``
    quantile of the teacher's confidence on the words it gives that label. ``confidence``/``predicted``:
    the teacher's max probability and argmax per word. A label the teacher never predicts gets 1.0
    (nothing to keep).
    """
    if not 0.0 < keep <= 1.0:
        raise UserError(f"keep_per_class must be in (0, 1], got {keep}")
    thresholds = []
    for label in range(n_labels):
        scores = confidence[predicted == label]
        thresholds.append(float(np.quantile(scores, 1.0 - keep, method="higher")) if scores.size else 1.0)
    return thresholds


@dataclass
class HardConfident(DistillationLoss):
    """``hard-confident``: ``hard``, only on the words whose teacher max probability reaches a threshold.

    Filters the pseudo-labels the teacher is unsure of; the loss is averaged over the kept tokens
    only (a batch with none kept gives 0, not NaN). Either one ``threshold`` for every label
    (default 0.9), or ``keep_per_class``: class-balanced thresholds, one per label, fitted once on
    the whole training corpus's teacher distributions (:meth:`fit`, called by ``training.distill``
    before training; :func:`class_balanced_thresholds`). :meth:`statistics` counts the ``tokens``
    seen and those ``kept`` (``kept_rate``), so a threshold that keeps nothing shows in the logs.
    """

    name: ClassVar[str] = "hard-confident"
    counted: ClassVar[tuple[str, ...]] = ("tokens", "kept")
    threshold: Optional[float] = None
    keep_per_class: Optional[float] = None

    def __post_init__(self):
        if self.threshold is not None and self.keep_per_class is not None:
            raise UserError(f"{self.name}: give threshold or keep_per_class, not both")
        if self.keep_per_class is None and self.threshold is None:
            self.threshold = 0.9
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"{self.name}: threshold must be in [0, 1], got {self.threshold}")
        if self.keep_per_class is not None and not 0.0 < self.keep_per_class <= 1.0:
            raise UserError(f"{self.name}: keep_per_class must be in (0, 1], got {self.keep_per_class}")
        self.class_thresholds: Optional[list[float]] = None
        self.reset_statistics()

    def config(self) -> dict[str, Any]:
        """The one way of thresholding that was used (``threshold`` or ``keep_per_class``), not the other's None."""
        return {k: v for k, v in super().config().items() if v is not None}

    @property
    def needs_fit(self) -> bool:
        return self.keep_per_class is not None

    def fit(self, confidence: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
        """Fit the class-balanced thresholds on the corpus's words; returns what a run records."""
        self.class_thresholds = class_balanced_thresholds(confidence, predicted, len(labels), self.keep_per_class)
        kept = int((confidence >= np.asarray(self.class_thresholds)[predicted]).sum()) if confidence.size else 0
        return {
            "keep_per_class": self.keep_per_class,
            "thresholds": dict(zip(labels, self.class_thresholds)),
            "words": int(confidence.size),
            "kept": kept,
        }

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        selected = _selected(student_logits, batch, self.name)
        confidence, pseudo = selected.teacher.max(-1)
        if self.keep_per_class is None:
            keep = confidence >= self.threshold
        elif self.class_thresholds is None:
            raise RuntimeError(f"{self.name} with keep_per_class: call fit() on the corpus before training")
        else:
            keep = confidence >= torch.tensor(self.class_thresholds, device=confidence.device)[pseudo]
        self._add_counts(keep.new_tensor(keep.numel(), dtype=torch.long), keep.sum())
        weights = selected.weights[keep] if selected.weights is not None else None
        return _hard_loss(selected.logits[keep], pseudo[keep], weights)

    def rates(self, counts: Mapping[str, int]) -> dict[str, Optional[float]]:
        return {"kept_rate": counts["kept"] / counts["tokens"] if counts.get("tokens") else None}


@dataclass
class MultiTeacher(DistillationLoss):
    """``multi-teacher``: a soft loss on a weighted average of several teachers' distributions.

    The combination happens ONCE, when the ``teacher_probs`` column is built
    (:func:`training.teacher_probs.add_teacher_probs` with ``weights=strategy.teacher_weights(k)``);
    the loss itself is then ``soft_loss`` (``"soft-mse"`` as Wu et al. 2020, or ``"soft-kl"`` with
    ``temperature``) on that combined distribution, so no teacher is in memory while the student
    trains. Weights are, in order of precedence:

    * ``weights``: given explicitly (normalised to sum to 1);
    * ``similarities``: one language-similarity score per teacher, turned into weights by
      :func:`similarity_weights` with ``similarity_temperature`` (Wu et al. 2020, multi-source);
    * neither: uniform.
    """

    name: ClassVar[str] = "multi-teacher"
    weights: Optional[list[float]] = None
    similarities: Optional[list[float]] = None
    similarity_temperature: float = 1.0
    soft_loss: str = "soft-mse"
    temperature: float = 1.0

    def __post_init__(self):
        if self.weights is not None and self.similarities is not None:
            raise UserError(f"{self.name}: give either weights or similarities, not both")
        if self.weights is not None:
            normalise_weights(self.weights)
        if not self.similarity_temperature > 0:
            raise UserError(f"{self.name}: similarity_temperature must be > 0, got {self.similarity_temperature}")
        _check_soft_loss(self.name, self.soft_loss, self.temperature)

    def teacher_weights(self, n_teachers: int) -> list[float]:
        """The weights (summing to 1) for combining ``n_teachers`` distributions into one column."""
        given = self.weights if self.weights is not None else self.similarities
        if given is not None and len(given) != n_teachers:
            kind = "weights" if self.weights is not None else "similarities"
            raise UserError(f"{self.name}: {len(given)} {kind} for {n_teachers} teachers")
        if self.weights is not None:
            return normalise_weights(self.weights)
        if self.similarities is not None:
            return similarity_weights(self.similarities, self.similarity_temperature)
        return [1.0 / n_teachers] * n_teachers

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return _soft_loss(self.soft_loss, _selected(student_logits, batch, self.name), self.temperature)


@dataclass
class ProjectedKD(DistillationLoss):
    """``projected+kd``: cross-entropy on projected tags where they exist + ``alpha`` * soft loss.

    As in UniTrans (Wu et al. 2020, IJCAI), the student learns from both the data-transfer signal
    (tags projected onto the target text, ``labels``; -100 where nothing was projected) and the
    model-transfer signal (the teacher's distribution, through ``soft_loss``). With
    ``agree_only=True`` the cross-entropy keeps only tokens where the projected tag equals the
    teacher's argmax -- the two independent sources voting together filter projection noise. The
    cross-entropy is averaged over its kept tokens, the soft loss over all first sub-tokens.
    """

    name: ClassVar[str] = "projected+kd"
    needs_projected_labels: ClassVar[bool] = True
    alpha: float = 1.0
    soft_loss: str = "soft-mse"
    temperature: float = 1.0
    agree_only: bool = False

    def __post_init__(self):
        _check_alpha(self.name, self.alpha)
        _check_soft_loss(self.name, self.soft_loss, self.temperature)

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        labels = _batch_tensor(batch, "labels", self.name)
        soft = _soft_loss(self.soft_loss, _selected(student_logits, batch, self.name), self.temperature)
        keep = labels != IGNORE_INDEX
        if self.agree_only:
            agree = batch["teacher_probs"].argmax(-1) == labels
            keep = keep & _kd_mask(batch, self.name) & agree
        ce = _hard_loss(student_logits[keep].float(), labels[keep], None)
        return ce + self.alpha * soft


@dataclass
class Voting(DistillationLoss):
    """``voting``: hard projected label where projection and teacher agree, the teacher's distribution elsewhere.

    After UniTrans (Wu et al. 2020, IJCAI): the projected tag (``labels``, -100 where nothing was
    projected) and the teacher's argmax are two independent votes. On each first sub-token:

    * both agree: cross-entropy on that label (a confident, doubly confirmed hard label);
    * they disagree, or there is no projection: ``alpha`` * the soft loss (``soft_loss``,
      ``temperature``) against the teacher's whole distribution, which keeps its uncertainty.

    One term per token, averaged over the first sub-tokens (weighted by ``kd_weight`` when the batch
    has one). The default soft loss is ``soft-kl``: the KL to a distribution is on the same scale
    as the cross-entropy of the agreeing tokens (KL to a one-hot is that cross-entropy), whereas
    ``soft-mse`` is one to two orders of magnitude smaller and would need a large ``alpha``.

    :meth:`statistics` reports ``tokens`` (first sub-tokens seen), ``projected`` (those with a
    projected tag), ``agree`` and ``disagreement_rate`` = 1 - agree / projected (None before any
    projected token) -- how often data transfer and model transfer disagree.
    """

    name: ClassVar[str] = "voting"
    needs_projected_labels: ClassVar[bool] = True
    counted: ClassVar[tuple[str, ...]] = ("tokens", "projected", "agree")
    soft_loss: str = "soft-kl"
    temperature: float = 1.0
    alpha: float = 1.0

    def __post_init__(self):
        _check_alpha(self.name, self.alpha)
        _check_soft_loss(self.name, self.soft_loss, self.temperature)
        self.reset_statistics()

    def __call__(self, student_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        labels = _batch_tensor(batch, "labels", self.name)
        selected = _selected(student_logits, batch, self.name)
        self._count(labels, batch)
        projected = labels[selected.mask]
        teacher_top = selected.teacher.argmax(-1)
        agree = (projected != IGNORE_INDEX) & (projected == teacher_top)
        # where they agree the projected label IS the teacher's argmax, so one cross-entropy serves
        hard = F.cross_entropy(selected.logits, teacher_top, reduction="none")
        soft = _soft_tokens(self.soft_loss, selected.logits, selected.teacher, self.temperature)
        return _mean(torch.where(agree, hard, self.alpha * soft), selected.weights)

    def _count(self, labels: torch.Tensor, batch: Batch) -> None:
        # over every first sub-token, whatever its kd_weight: the rate describes the data, not the weighting
        mask = _kd_mask(batch, self.name)
        projected = labels[mask]
        has_projection = projected != IGNORE_INDEX
        agree = has_projection & (projected == batch["teacher_probs"][mask].argmax(-1))
        # kept as tensors: no device sync per step; numbers only when statistics() is asked for
        self._add_counts(mask.sum(), has_projection.sum(), agree.sum())

    def rates(self, counts: Mapping[str, int]) -> dict[str, Optional[float]]:
        return {"disagreement_rate": 1.0 - counts["agree"] / counts["projected"] if counts.get("projected") else None}


SOFT_LOSSES = ("soft-mse", "soft-kl")
STRATEGIES: dict[str, type[DistillationLoss]] = {
    cls.name: cls for cls in (SoftMSE, SoftKL, Hard, HardConfident, MultiTeacher, ProjectedKD, Voting)
}


def from_config(name: str, **params: Any) -> DistillationLoss:
    """The strategy ``name`` built with ``params``; unknown names or parameters raise, listing the valid ones."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    cls = STRATEGIES[name]
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        accepted = ", ".join(valid) if valid else "none"
        raise UserError(f"strategy {name!r} got unknown parameter(s) {unknown}; valid parameters: {accepted}")
    return cls(**params)


__all__ = [
    "DistillationLoss",
    "Hard",
    "HardConfident",
    "class_balanced_thresholds",
    "IGNORE_INDEX",
    "MultiTeacher",
    "ProjectedKD",
    "SOFT_LOSSES",
    "STRATEGIES",
    "Selected",
    "SoftKL",
    "SoftMSE",
    "Voting",
    "from_config",
    "normalise_weights",
    "similarity_weights",
]
