"""Language-agnostic selection of target sentences (after AdvPicker, Chen et al. ACL 2021, arXiv 2106.02300).

AdvPicker trains a language discriminator on the encoder's representations of source- and
target-language sentences and distils only on the target sentences the discriminator cannot tell
from source text: those are the "language-independent" ones on which the source-trained teacher
transfers best. In their released code (``get_xl_data.py``) a target sentence is kept when its
probability of being SOURCE is above ``0.5 - threshold``: the ones the discriminator gets wrong
(it calls them source) and the ones it is unsure of (around 0.5). Ranking target sentences by
P(source), highest first, and keeping a ``ratio`` of them is that same rule with the cut-off
expressed as a share of the corpus (``criterion="source-probability"``, the default);
``criterion="uncertainty"`` keeps those closest to 0.5 only (the paper's wording, "close to 0.5").

Here the discriminator is a small seeded torch model -- logistic regression (``hidden_size=0``)
or one hidden layer -- trained full-batch on fixed sentence vectors (mean-pooled encoder states;
AdvPicker trains it adversarially with the encoder, which a fixed teacher does not need), with a
class-balanced loss so that P(source) = 0.5 means "no evidence either way" whatever the two
corpus sizes. The global RNG is left untouched.

How ``xner distill`` should call it (before ``add_teacher_probs``, so the teacher only runs on
the kept sentences)::

    source_vectors = sentence_vectors(encoder, source_corpus["tokens"])   # (n_source, dim)
    target_vectors = sentence_vectors(encoder, target_corpus["tokens"])   # (n_target, dim), row order
    target_corpus, report = select_language_agnostic(target_corpus, source_vectors, target_vectors,
                                                     ratio=0.5, seed=args.seed)
    results["selection"] = report   # kept, total, discriminator_accuracy, cutoff, ...

where ``sentence_vectors`` is the inference core's mean over each sentence's last hidden states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import datasets
import numpy as np
import torch

from dataset_builders.errors import UserError

CRITERIA = ("source-probability", "uncertainty")
ArrayLike = Union[np.ndarray, torch.Tensor]


def _matrix(name: str, values: ArrayLike) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise UserError(f"{name} must be a non-empty 2-D array (n_sentences, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise UserError(f"{name} has NaN or infinite values")
    return torch.from_numpy(array)


@dataclass
class LanguageDiscriminator:
    """A trained discriminator: standardisation + model; :meth:`source_probability` of new vectors."""

    mean: torch.Tensor
    scale: torch.Tensor
    model: torch.nn.Module

    @torch.no_grad()
    def source_probability(self, vectors: ArrayLike) -> np.ndarray:
        inputs = (_matrix("vectors", vectors) - self.mean) / self.scale
        return torch.sigmoid(self.model(inputs).squeeze(-1)).double().numpy()


def train_discriminator(
    source_vectors: ArrayLike,
    target_vectors: ArrayLike,
    *,
    hidden_size: int = 0,
    epochs: int = 300,
    learning_rate: float = 0.01,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> LanguageDiscriminator:
    """Fit P(source | vector) on the two sets (label 1 = source), full batch with Adam, class-balanced.

    ``hidden_size=0``: logistic regression; otherwise one ReLU hidden layer of that size. Inputs
    are standardised with the pooled mean and standard deviation of both sets.
    """
    source, target = _matrix("source_vectors", source_vectors), _matrix("target_vectors", target_vectors)
    if source.shape[1] != target.shape[1]:
        raise UserError(f"source vectors have dimension {source.shape[1]}, target vectors {target.shape[1]}")
    if hidden_size < 0 or epochs <= 0 or not learning_rate > 0 or weight_decay < 0:
        raise UserError(
            f"discriminator needs hidden_size >= 0, epochs > 0, learning_rate > 0, weight_decay >= 0; got "
            f"{hidden_size}, {epochs}, {learning_rate}, {weight_decay}"
        )
    inputs = torch.cat([source, target])
    labels = torch.cat([torch.ones(len(source)), torch.zeros(len(target))])
    mean, scale = inputs.mean(0), inputs.std(0, unbiased=False).clamp_min(1e-6)
    inputs = (inputs - mean) / scale
    # each class weighs half of the loss, whatever the corpus sizes
    weights = torch.where(labels == 1, 0.5 / len(source), 0.5 / len(target))
    dim = inputs.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hidden_size:
            model = torch.nn.Sequential(
                torch.nn.Linear(dim, hidden_size), torch.nn.ReLU(), torch.nn.Linear(hidden_size, 1)
            )
        else:
            model = torch.nn.Linear(dim, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    for _ in range(epochs):
        optimiser.zero_grad()
        logits = model(inputs).squeeze(-1)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none") * weights).sum()
        loss.backward()
        optimiser.step()
    return LanguageDiscriminator(mean, scale, model.eval())


def keep_count(ratio: float, total: int) -> int:
    """Sentences kept out of ``total``: ``ceil(ratio * total)`` (at least one of a non-empty corpus)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
        raise UserError(f"ratio must be in (0, 1], got {ratio!r}")
    # the small tolerance keeps e.g. 0.3 * 10 = 3.0000000000000004 from rounding up to 4
    return min(total, max(1, math.ceil(ratio * total - 1e-9))) if total else 0


def rank_target(probabilities: np.ndarray, criterion: str) -> np.ndarray:
    """Target rows, most language-agnostic first (ties broken by row order)."""
    if criterion not in CRITERIA:
        raise UserError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    score = -probabilities if criterion == "source-probability" else np.abs(probabilities - 0.5)
    return np.argsort(score, kind="stable")


def select_language_agnostic(
    dataset: datasets.Dataset,
    source_vectors: ArrayLike,
    target_vectors: ArrayLike,
    ratio: float,
    seed: int = 0,
    *,
    criterion: str = "source-probability",
    hidden_size: int = 0,
    epochs: int = 300,
    learning_rate: float = 0.01,
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Keep the ``ratio`` of ``dataset`` (the target corpus) least recognisable as target language.

    ``target_vectors[i]`` represents ``dataset[i]``. Returns the kept rows in their original order
    (``dataset.select``, no copy) and a report: ``kept``, ``total``, ``ratio``, ``criterion``,
    ``discriminator_accuracy`` (on the source and target vectors it was trained on, as AdvPicker
    reports it; near 0.5 means the representations are already language-agnostic),
    ``cutoff`` (the lowest P(source) kept; with ``"uncertainty"`` the largest ``|P(source) - 0.5|``
    kept), the mean P(source) of the
    kept and of all target sentences, and the discriminator's parameters.
    """
    target = _matrix("target_vectors", target_vectors)
    if len(target) != len(dataset):
        raise UserError(f"{len(target)} target vectors for a dataset of {len(dataset)} rows")
    n_keep = keep_count(ratio, len(dataset))
    if criterion not in CRITERIA:
        raise UserError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    discriminator = train_discriminator(
        source_vectors, target, hidden_size=hidden_size, epochs=epochs, learning_rate=learning_rate, seed=seed
    )
    source_prob = discriminator.source_probability(source_vectors)
    target_prob = discriminator.source_probability(target)
    correct = (source_prob >= 0.5).sum() + (target_prob < 0.5).sum()
    kept = np.sort(rank_target(target_prob, criterion)[:n_keep])
    report = {
        "method": "language-agnostic selection (AdvPicker)",
        "criterion": criterion,
        "ratio": ratio,
        "kept": int(n_keep),
        "total": len(dataset),
        "discriminator_accuracy": float(correct / (len(source_prob) + len(target_prob))),
        "cutoff": float(
            target_prob[kept].min() if criterion == "source-probability" else np.abs(target_prob[kept] - 0.5).max()
        ),
        "mean_source_probability_kept": float(target_prob[kept].mean()),
        "mean_source_probability_all": float(target_prob.mean()),
        "discriminator": {"hidden_size": hidden_size, "epochs": epochs, "learning_rate": learning_rate, "seed": seed},
    }
    return dataset.select(kept.tolist()), report


__all__ = [
    "CRITERIA",
    "LanguageDiscriminator",
    "keep_count",
    "rank_target",
    "select_language_agnostic",
    "train_discriminator",
]
