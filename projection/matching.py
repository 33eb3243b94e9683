"""Choosing target spans for source entities: each entity gets at most one span, spans never overlap.

The solvers take the scored (entity, span) pairs of a whole batch as flat arrays
(:class:`ScoredPairs`) and return the indices of the chosen pairs. Only pairs with a score
above 0 can be chosen. Sentences are independent: solving a batch equals solving each of its
sentences alone.

* :func:`greedy`: take the best pair, drop that entity and every span overlapping the chosen
  one, repeat while the best remaining score is > 0. One pass over the positive pairs in
  priority order, with the occupied target words of a sentence kept as a bit mask.
* :func:`ilp`: the exact optimum, a binary program per sentence solved by HiGHS
  (``scipy.optimize.milp``, relative gap 0): ``max sum score * x`` subject to at most one span
  per entity and at most one chosen span covering each target word.
* :func:`bipartite`: maximum-weight bipartite matching (``linear_sum_assignment``) of entities
  to spans, which knows the one-span-per-entity rule but not the overlap rule. Overlaps are
  resolved in rounds: the matched pairs are accepted in priority order, skipping a pair whose
  span overlaps one accepted in the same round; accepted entities and every span overlapping
  an accepted span leave the problem, and the remaining entities are matched again against the
  remaining spans, until no positive pair is matched. When the first matching has no overlaps it
  is optimal (it is optimal even without the overlap rule); otherwise this is a heuristic and
  can be worse than :func:`ilp` (and than :func:`greedy`). Among matchings of equal weight,
  ``linear_sum_assignment`` picks one, deterministically for a given matrix (rows in entity
  order, columns in (start, end) order).

**Priority order and ties** (greedy's order, bipartite's acceptance order, and ILP variable order):
higher score first, then the lower entity index (source order), then the earlier span start,
then the shorter span. Among several optimal ILP solutions HiGHS picks one; it is the same one
for the same sentence, batched or not, but which one is not specified.

:func:`assemble_projection` turns chosen spans into the per-sentence result both projection
methods return (:class:`ProjectionBatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp

from dataset_builders.schemes import spans_to_tags
from projection.candidates import offsets_of, ragged_arange
from projection.scores import AlignedBatch


@dataclass(frozen=True)
class ScoredPairs:
    """Flat (entity, span ``[start, end)``, score) pairs of a batch; ``sentence`` says whose.

    ``entity`` is any id unique within the batch; a span is identified by (start, end) within
    its sentence.
    """

    sentence: np.ndarray
    entity: np.ndarray
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray


def priority_order(pairs: ScoredPairs) -> np.ndarray:
    """Indices of the positive pairs, grouped by sentence, each group in priority order."""
    positive = np.flatnonzero(pairs.score > 0)
    keys = (
        (pairs.end - pairs.start)[positive],
        pairs.start[positive],
        pairs.entity[positive],
        -pairs.score[positive],
        pairs.sentence[positive],
    )
    return positive[np.lexsort(keys)]


def _sentence_groups(pairs: ScoredPairs) -> list[np.ndarray]:
    order = priority_order(pairs)
    cuts = np.flatnonzero(np.diff(pairs.sentence[order])) + 1
    return np.split(order, cuts) if len(order) else []


def greedy(pairs: ScoredPairs) -> np.ndarray:
    """Indices of the pairs the greedy rule takes, ascending."""
    order = priority_order(pairs)
    sentence = pairs.sentence[order].tolist()
    entity = pairs.entity[order].tolist()
    start = pairs.start[order].tolist()
    end = pairs.end[order].tolist()
    chosen: list[int] = []
    used: set[int] = set()
    current, occupied = -1, 0
    for k, (s, e, b, f) in enumerate(zip(sentence, entity, start, end)):
        if s != current:
            current, occupied = s, 0
        if e in used:
            continue
        words = ((1 << (f - b)) - 1) << b
        if occupied & words:
            continue
        used.add(e)
        occupied |= words
        chosen.append(k)
    return np.sort(order[chosen])


def ilp(pairs: ScoredPairs) -> np.ndarray:
    """Indices of an optimal set of pairs (exact, per sentence), ascending."""
    chosen = []
    for group in _sentence_groups(pairs):
        _, entity_row = np.unique(pairs.entity[group], return_inverse=True)
        start, end = pairs.start[group], pairs.end[group]
        lengths = end - start
        first_word = int(start.min())
        n_entities, n_words, n = int(entity_row.max()) + 1, int(end.max()) - first_word, len(group)
        # rows: one per entity (its pairs), then one per target word (the pairs covering it)
        word_rows = n_entities + np.repeat(start - first_word, lengths) + ragged_arange(lengths)
        rows = np.concatenate([entity_row, word_rows])
        cols = np.concatenate([np.arange(n), np.repeat(np.arange(n), lengths)])
        matrix = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n_entities + n_words, n))
        result = milp(
            c=-pairs.score[group],
            integrality=np.ones(n),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(matrix, -np.inf, 1),
            options={"mip_rel_gap": 0.0},
        )
        if not result.success:
            raise RuntimeError(f"HiGHS failed on sentence {pairs.sentence[group[0]]}: {result.message}")
        chosen.append(group[result.x > 0.5])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def bipartite(pairs: ScoredPairs) -> np.ndarray:
    """Indices of the pairs chosen by repeated bipartite matching (see the module docstring), ascending."""
    chosen = []
    for group in _sentence_groups(pairs):
        entities, row = np.unique(pairs.entity[group], return_inverse=True)
        spans, col = np.unique(np.stack([pairs.start[group], pairs.end[group]], axis=1), axis=0, return_inverse=True)
        col = col.reshape(-1)
        # a duplicated (entity, span) cell keeps its first pair: group is in priority order
        cell, first = np.unique(row * len(spans) + col, return_index=True)
        weight = np.zeros((len(entities), len(spans)))
        pair_at = np.full(weight.shape, -1, dtype=np.int64)
        weight.flat[cell] = pairs.score[group[first]]
        pair_at.flat[cell] = group[first]
        priority = {int(p): k for k, p in enumerate(group)}
        open_rows = np.ones(len(entities), dtype=bool)
        open_cols = np.ones(len(spans), dtype=bool)
        while open_rows.any() and open_cols.any():
            rows, cols = np.flatnonzero(open_rows), np.flatnonzero(open_cols)
            sub = weight[np.ix_(rows, cols)]
            matched_r, matched_c = linear_sum_assignment(sub, maximize=True)
            matched = [int(pair_at[rows[r], cols[c]]) for r, c in zip(matched_r, matched_c) if sub[r, c] > 0]
            if not matched:
                break
            occupied = 0
            for p in sorted(matched, key=priority.__getitem__):
                b, f = int(pairs.start[p]), int(pairs.end[p])
                words = ((1 << (f - b)) - 1) << b
                if occupied & words:
                    continue
                occupied |= words
                chosen.append(p)
                open_rows[np.searchsorted(entities, pairs.entity[p])] = False
                open_cols &= (spans[:, 1] <= b) | (spans[:, 0] >= f)
    return np.sort(np.array(chosen, dtype=np.int64))


SOLVERS: dict[str, Callable[[ScoredPairs], np.ndarray]] = {"greedy": greedy, "ilp": ilp, "bipartite": bipartite}


def match(
    scores: np.ndarray, span_starts: Sequence[int], span_ends: Sequence[int], solver: str = "greedy"
) -> list[tuple[int, int]]:
    """Solve one sentence given as an ``(n_entities, n_spans)`` score matrix; ``(entity, span)`` pairs.

    The per-sentence face of the batch solvers, for inspection and tests.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_e, n_c = scores.shape
    pairs = ScoredPairs(
        sentence=np.zeros(n_e * n_c, dtype=np.int64),
        entity=np.repeat(np.arange(n_e), n_c),
        start=np.tile(np.asarray(span_starts, dtype=np.int64), n_e),
        end=np.tile(np.asarray(span_ends, dtype=np.int64), n_e),
        score=scores.reshape(-1),
    )
    return [(int(p // n_c), int(p % n_c)) for p in SOLVERS[solver](pairs)]


@dataclass
class ProjectionBatch:
    """Projection result, one entry per sentence: spans (sorted by start), IOB2 tags, stats.

    ``stats[k] = {"entities": n_in, "projected": n, "dropped": n_in - n}`` where n counts the
    source entities that got at least one target span (the heuristic can give an entity several
    spans; ``len(spans[k])`` counts spans).
    """

    spans: list[list[dict]]
    tags: list[list[str]]
    stats: list[dict[str, int]]


def assemble_projection(batch: AlignedBatch, entity: np.ndarray, start: np.ndarray, end: np.ndarray) -> ProjectionBatch:
    """Lay out non-overlapping spans ``[start, end)`` projected from source entities ``entity``."""
    n = batch.n_sentences
    sentence = batch.entity_sentence[entity]
    order = np.lexsort((start, sentence))
    labels = batch.entity_label
    flat = [
        {"start": b, "end": f, "label": labels[e]}
        for b, f, e in zip(start[order].tolist(), end[order].tolist(), entity[order].tolist())
    ]
    bounds = offsets_of(np.bincount(sentence, minlength=n)).tolist()
    spans = [flat[bounds[k] : bounds[k + 1]] for k in range(n)]
    tags = [spans_to_tags(row, length) for row, length in zip(spans, batch.target_lengths.tolist())]
    n_in = np.diff(batch.entity_offsets)
    projected = np.bincount(batch.entity_sentence[np.unique(entity)], minlength=n)
    stats = [{"entities": a, "projected": p, "dropped": a - p} for a, p in zip(n_in.tolist(), projected.tolist())]
    return ProjectionBatch(spans, tags, stats)
