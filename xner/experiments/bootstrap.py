"""Paired bootstrap significance of an F1 difference, over test sentences.

Two systems evaluated on the same test set give, per sentence, entity counts ``[tp, fp, fn]``
(the ``sentence_counts`` of a result record). Micro F1 is not a mean over sentences, so the test
resamples *sentences* (with replacement, the same indices for both systems: that is the pairing)
and recomputes both F1 scores from the summed counts of each resample.

Vectorised: a resample is a row of multinomial weights (how often each sentence is drawn, made
with ``bincount`` of uniform indices), and one matrix product ``weights (B x n) @ counts (n x 6)``
gives the totals of both systems for B resamples at once; B is processed in chunks so that the
weight matrix stays below a few million cells.

p-value (two-sided): let ``d`` be the observed delta ``F1(a) - F1(b)`` and ``d_i`` the delta of
resample i. With ``k`` = the number of resamples where ``d_i`` is zero or has the sign opposite
to ``d`` (every resample when ``d == 0``), ``p = min(1, 2 * (1 + k) / (samples + 1))``. ``(1 + k)
/ (samples + 1)`` is the one-sided proportion of resamples in which the ordering does not hold
(the +1 keeps p above zero); doubling it makes it two-sided, so that ``p < 0.05`` agrees with the
95% percentile interval of the delta excluding zero. Identical systems give ``p = 1``; the
smallest possible p is ``2 / (samples + 1)``.

Several seeds of one system: :func:`pool_seeds` sums each sentence's counts over the seeds, so a
resample draws a sentence together with all of its seed outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

_MAX_CELLS = 4_000_000  # weight-matrix cells per chunk: ~32 MB of int64


@dataclass(frozen=True)
class BootstrapResult:
    f1_a: float  # on the full test set
    f1_b: float
    delta: float  # f1_a - f1_b
    ci_low: float  # percentile confidence interval of the delta
    ci_high: float
    p_value: float  # two-sided, see the module docstring
    samples: int
    sentences: int
    confidence: float = 0.95


def _as_counts(counts, name: str = "counts") -> np.ndarray:
    array = np.asarray(counts, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{name} must have shape (sentences, 3) [tp, fp, fn], not {array.shape}")
    if array.size and (array < 0).any():
        raise ValueError(f"{name} has negative counts")
    return array


def _f1(totals: np.ndarray) -> np.ndarray:
    """Micro F1 of totals ``[..., (tp, fp, fn)]``: 2tp / (2tp + fp + fn), 0 where undefined."""
    tp, fp, fn = totals[..., 0], totals[..., 1], totals[..., 2]
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=np.float64), where=denominator > 0)


def f1_from_counts(counts) -> float:
    """Micro F1 of per-sentence counts ``(n, 3)`` of ``[tp, fp, fn]``; 0 when nothing was predicted nor gold."""
    return float(_f1(_as_counts(counts).sum(axis=0)))


def _resample_totals(counts: np.ndarray, samples: int, rng: np.random.Generator):
    """Yield totals ``(chunk, k)`` of ``counts (n, k)`` over successive chunks of bootstrap resamples."""
    n = counts.shape[0]
    chunk = max(1, min(samples, _MAX_CELLS // n))
    done = 0
    while done < samples:
        size = min(chunk, samples - done)
        # Row r counts how often each sentence is drawn in resample r: a multinomial(n, 1/n) row.
        drawn = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)
        yield weights @ counts
        done += size


def paired_bootstrap(
    counts_a, counts_b, samples: int = 1000, seed: int = 0, *, confidence: float = 0.95
) -> BootstrapResult:
    """Paired bootstrap of ``F1(a) - F1(b)`` over the sentences of one test set (see the module docstring)."""
    a, b = _as_counts(counts_a, "counts_a"), _as_counts(counts_b, "counts_b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the test sets differ: system a has {a.shape[0]} sentence counts, system b has {b.shape[0]}")
    if a.shape[0] == 0:
        raise ValueError("no test sentences to resample")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    f1_a, f1_b = f1_from_counts(a), f1_from_counts(b)
    delta = f1_a - f1_b
    rng = np.random.default_rng(seed)
    both = np.concatenate([a, b], axis=1)  # one product gives both systems' totals
    deltas = np.concatenate([_f1(t[:, :3]) - _f1(t[:, 3:]) for t in _resample_totals(both, samples, rng)])
    sign = np.sign(delta)
    against = int(np.count_nonzero(deltas * sign <= 0))  # all of them when delta == 0
    p_value = min(1.0, 2.0 * (1 + against) / (samples + 1))
    tail = (1 - confidence) / 2 * 100
    ci_low, ci_high = np.percentile(deltas, [tail, 100 - tail])
    return BootstrapResult(
        f1_a=f1_a,
        f1_b=f1_b,
        delta=delta,
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        p_value=p_value,
        samples=samples,
        sentences=a.shape[0],
        confidence=confidence,
    )


def pool_seeds(counts_per_seed: Sequence) -> np.ndarray:
    """Sum per-sentence counts over seeds: a list of ``(n, 3)`` arrays (same n) -> one ``(n, 3)`` array."""
    arrays = [_as_counts(c, f"counts of seed #{i}") for i, c in enumerate(counts_per_seed)]
    if not arrays:
        raise ValueError("no seeds to pool")
    lengths = sorted({a.shape[0] for a in arrays})
    if len(lengths) > 1:
        raise ValueError(f"the test sets differ between seeds: sentence counts of lengths {lengths}")
    return np.sum(arrays, axis=0)


__all__ = ["BootstrapResult", "f1_from_counts", "paired_bootstrap", "pool_seeds"]
