"""Candidate-matching projection (Politov et al. 2025), end to end for a batch of sentences.

Candidates (n-grams by default, or a target NER model's spans) are scored against every source
entity of their sentence (:mod:`projection.scores`), the scores are fused with the given weights,
and a solver (:mod:`projection.matching`) picks at most one non-overlapping candidate per entity.
Only pairs with a fused score > 0 reach the solver, so its Python-level work is proportional to
the few candidates that touch an entity's alignment, not to all n-grams.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from projection.candidates import CandidateBatch, ngram_candidates
from projection.matching import SOLVERS, ProjectionBatch, ScoredPairs, assemble_projection
from projection.scores import (
    SCORE_NAMES,
    AlignedBatch,
    EntityCandidatePairs,
    alignment_scores,
    fuse_scores,
    ner_scores,
    translation_scores,
)


def project_candidates(
    source_entities: Sequence[Sequence[Mapping]],
    source_lengths: Sequence[int],
    target_tokens: Sequence[Sequence[str]],
    alignments: Sequence[Sequence[Sequence[int]]],
    *,
    candidates: Optional[CandidateBatch] = None,
    solver: str = "greedy",
    weights: Optional[Mapping[str, float]] = None,
    ner_probs: Optional[Sequence[np.ndarray]] = None,
    label_names: Optional[Sequence[str]] = None,
    entity_translations: Optional[Sequence[Sequence[str]]] = None,
) -> ProjectionBatch:
    """Project a batch by candidate matching; raises ``ValueError`` naming the first bad row.

    ``candidates`` defaults to :func:`projection.candidates.ngram_candidates` of the target words.
    ``weights`` maps score names (``alignment``, ``ner``, ``translation``) to weights; default
    ``{"alignment": 1.0}``. A score with a non-zero weight needs its inputs: ``ner_probs`` (one
    ``(n_target_words, n_labels)`` array per row) with ``label_names``, or ``entity_translations``
    (one string per source entity per row). ``solver`` is ``greedy``, ``ilp`` or ``bipartite``.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
    weights = {"alignment": 1.0} if weights is None else {k: float(w) for k, w in weights.items() if w != 0}
    unknown = set(weights) - set(SCORE_NAMES)
    if unknown:
        raise ValueError(f"unknown scores {sorted(unknown)} in weights; known: {list(SCORE_NAMES)}")
    if "ner" in weights and (ner_probs is None or label_names is None):
        raise ValueError("a non-zero 'ner' weight needs ner_probs and label_names")
    if "translation" in weights and entity_translations is None:
        raise ValueError("a non-zero 'translation' weight needs entity_translations")

    batch = AlignedBatch.from_lists(source_entities, source_lengths, target_tokens, alignments)
    if candidates is None:
        candidates = ngram_candidates(target_tokens)
    _check_candidates(batch, candidates)
    pairs = EntityCandidatePairs.all_pairs(batch, candidates)
    scores = {}
    if "alignment" in weights:
        scores["alignment"] = alignment_scores(batch, candidates, pairs)
    if "ner" in weights:
        scores["ner"] = ner_scores(batch, candidates, pairs, ner_probs, label_names)
    if "translation" in weights:
        scores["translation"] = translation_scores(batch, candidates, pairs, entity_translations)
    fused = fuse_scores(scores, weights)

    positive = np.flatnonzero(fused > 0)
    entity, candidate = pairs.entity[positive], pairs.candidate[positive]
    scored = ScoredPairs(
        sentence=batch.entity_sentence[entity],
        entity=entity,
        start=candidates.start[candidate],
        end=candidates.end[candidate],
        score=fused[positive],
    )
    chosen = SOLVERS[solver](scored)
    return assemble_projection(batch, entity[chosen], scored.start[chosen], scored.end[chosen])


def _check_candidates(batch: AlignedBatch, candidates: CandidateBatch) -> None:
    if candidates.n_sentences != batch.n_sentences:
        raise ValueError(f"candidates cover {candidates.n_sentences} rows, the batch has {batch.n_sentences}")
    sentence = candidates.sentence
    bad = (
        (candidates.start < 0)
        | (candidates.end <= candidates.start)
        | (candidates.end > batch.target_lengths[sentence])
    )
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        row = int(sentence[k])
        raise ValueError(
            f"row {row} of the batch: candidate span [{candidates.start[k]}, {candidates.end[k]}) is empty or "
            f"outside the {batch.target_lengths[row]}-word target sentence"
        )
