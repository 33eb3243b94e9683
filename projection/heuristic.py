"""Alignment-run heuristic projection (García-Ferrero et al. 2022, as revisited by Politov et al. 2025).

For each source entity: collect the target words aligned to any of its words, leaving out
punctuation-only words (:func:`projection.candidates.is_punctuation`); group them into runs of
consecutive positions; merge neighbouring runs whose gap (words between them) is at most
``merge_distance``; keep every run whose length -- gap words included -- divided by the
entity's length *exceeds* ``length_ratio`` (strictly: a 4-word run for a 5-word entity, 0.8,
is not kept at the default); label kept runs with the entity's type. An entity can keep several
runs (it may occur twice in the translation).

**Overlaps.** Runs of different entities can overlap (two source entities aligned to the same
target word). The output must be valid IOB2, so overlapping runs are resolved with the greedy
span selection of :mod:`projection.matching`, each run scored by its length: the longer run is
kept; at equal length the run of the earlier source entity, then the earlier run. A dropped run
is simply not projected; an entity left with no run counts as dropped in the stats.

Everything is computed for the whole batch at once: one join of entities with links, one sort of
(entity, target position) keys, run boundaries from comparing neighbours.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from projection.candidates import is_punctuation
from projection.matching import ProjectionBatch, ScoredPairs, assemble_projection, greedy
from projection.scores import AlignedBatch, entity_links


def project_heuristic(
    source_entities: Sequence[Sequence[Mapping]],
    source_lengths: Sequence[int],
    target_tokens: Sequence[Sequence[str]],
    alignments: Sequence[Sequence[Sequence[int]]],
    *,
    merge_distance: int = 1,
    length_ratio: float = 0.8,
) -> ProjectionBatch:
    """Project a batch of sentences' entities; raises ``ValueError`` naming the first bad row."""
    batch = AlignedBatch.from_lists(source_entities, source_lengths, target_tokens, alignments)
    return heuristic_projection(batch, merge_distance=merge_distance, length_ratio=length_ratio)


def heuristic_projection(batch: AlignedBatch, *, merge_distance: int = 1, length_ratio: float = 0.8) -> ProjectionBatch:
    """:func:`project_heuristic` on an already flattened batch."""
    if merge_distance < 0:
        raise ValueError(f"merge_distance must be >= 0, got {merge_distance}")
    entity, target = entity_links(batch)
    width = int(batch.target_lengths.max(initial=0)) + 1
    entity, target = np.divmod(np.unique(entity * width + target), width)  # sorted by entity, then position
    sentence = batch.entity_sentence[entity].tolist()
    tokens = batch.target_tokens
    punctuation = np.fromiter(
        (is_punctuation(tokens[s][j]) for s, j in zip(sentence, target.tolist())), dtype=bool, count=len(sentence)
    )
    entity, target = entity[~punctuation], target[~punctuation]

    new_run = np.ones(len(entity), dtype=bool)
    new_run[1:] = (entity[1:] != entity[:-1]) | (target[1:] - target[:-1] - 1 > merge_distance)
    last = np.ones(len(entity), dtype=bool)
    last[:-1] = new_run[1:]
    run_entity, run_start, run_end = entity[new_run], target[new_run], target[last] + 1
    entity_length = (batch.entity_end - batch.entity_start)[run_entity]
    kept = (run_end - run_start) / entity_length > length_ratio
    run_entity, run_start, run_end = run_entity[kept], run_start[kept], run_end[kept]

    runs = ScoredPairs(
        sentence=batch.entity_sentence[run_entity],
        entity=np.arange(len(run_entity)),  # each run is its own item: an entity may keep several
        start=run_start,
        end=run_end,
        score=(run_end - run_start).astype(np.float64),
    )
    chosen = greedy(runs)
    return assemble_projection(batch, run_entity[chosen], run_start[chosen], run_end[chosen])
