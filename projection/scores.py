"""Evidence for projecting source entities onto target words, as numpy arrays over a whole batch.

Both projection methods start from the same inputs (source entities, sentence lengths, target
words, word alignments), so this module flattens a batch of them once into an
:class:`AlignedBatch` -- one array per field, sentences concatenated -- and checks it with a few
vectorised comparisons. The scores of candidate matching (Politov et al. 2025) are then computed
for every (source entity, candidate span) pair of every sentence at once:

* **alignment** ``2 * a / (|s| + |t|)``, a = aligned word pairs between entity s and candidate t,
  read off per-entity prefix sums of link counts over target positions (no loop over candidates);
* **ner**: how well a target-side NER model's per-word label probabilities support the candidate
  as an entity of the source entity's type (:func:`ner_scores` defines it);
* **translation**: character n-gram F-score (:func:`chrf`) between a caller-supplied translation
  of the entity's text and the candidate's text;
* their weighted sum (:func:`fuse_scores`).

Pairs are laid out entity-major within each sentence, so a sentence's pair scores, reshaped to
``(n_entities, n_candidates)``, are its score matrix (:func:`score_matrices`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Mapping, Optional, Sequence

import numpy as np

from projection.candidates import CandidateBatch, offsets_of, ragged_arange

SCORE_NAMES = ("alignment", "ner", "translation")


@dataclass(frozen=True)
class AlignedBatch:
    """A batch of sentence pairs flattened into arrays; row ``k`` of the batch is sentence ``k``.

    Entities and links keep batch order (grouped by sentence); ``entity_offsets[k]:entity_offsets[k+1]``
    are sentence k's entities. Links are deduplicated: an alignment is a *set* of (i, j) pairs.
    """

    source_lengths: np.ndarray  # (S,)
    target_lengths: np.ndarray  # (S,)
    target_tokens: Sequence[Sequence[str]]
    entity_sentence: np.ndarray  # (E,)
    entity_start: np.ndarray  # (E,)
    entity_end: np.ndarray  # (E,)
    entity_label: list[str]  # (E,)
    entity_offsets: np.ndarray  # (S + 1,)
    link_sentence: np.ndarray  # (L,)
    link_source: np.ndarray  # (L,)
    link_target: np.ndarray  # (L,)
    link_offsets: np.ndarray  # (S + 1,)

    @property
    def n_sentences(self) -> int:
        return len(self.source_lengths)

    @classmethod
    def from_lists(
        cls,
        source_entities: Sequence[Sequence[Mapping]],
        source_lengths: Sequence[int],
        target_tokens: Sequence[Sequence[str]],
        alignments: Sequence[Sequence[Sequence[int]]],
    ) -> "AlignedBatch":
        """Flatten and check a batch; raises ``ValueError`` naming the first bad row and item."""
        batch, errors = _flatten(source_entities, source_lengths, target_tokens, alignments)
        if errors:
            row = min(errors)
            raise ValueError(f"row {row} of the batch: {errors[row]}")
        return batch


def validate_batch(
    source_entities: Sequence[Sequence[Mapping]],
    source_lengths: Sequence[int],
    target_tokens: Sequence[Sequence[str]],
    alignments: Sequence[Sequence[Sequence[int]]],
) -> list[Optional[str]]:
    """One entry per row: ``None`` if the row can be projected, else why not.

    Lets a caller flag bad rows and project the rest instead of losing the batch to one
    ``ValueError``.
    """
    _, errors = _flatten(source_entities, source_lengths, target_tokens, alignments)
    return [errors.get(row) for row in range(len(source_lengths))]


def _flatten(
    source_entities, source_lengths, target_tokens, alignments
) -> tuple[Optional[AlignedBatch], dict[int, str]]:
    n = len(source_lengths)
    if not len(source_entities) == len(target_tokens) == len(alignments) == n:
        raise ValueError(
            f"batch columns differ in length: {len(source_entities)} entity lists, {n} source lengths, "
            f"{len(target_tokens)} target sentences, {len(alignments)} alignments"
        )
    src_len = np.fromiter(source_lengths, dtype=np.int64, count=n)
    tgt_len = np.fromiter(map(len, target_tokens), dtype=np.int64, count=n)
    errors: dict[int, str] = {}  # one reason per row
    # Shapes are checked row by row: a batch-level count lets two bad rows cancel out ([0, 0, 0]
    # in one row, [0] in another) and shifts links between rows. A bad row is flagged and emptied.
    well_formed = _well_formed_entities(list(chain.from_iterable(source_entities)))
    entity_rows = {} if well_formed else _row_errors(source_entities, _entity_error)
    flat = _flat_pairs(alignments)
    link_rows = {} if flat is not None else _row_errors(alignments, _link_error)
    errors.update(link_rows)
    errors.update(entity_rows)  # entity errors replace link errors of the row, as below
    if errors:
        source_entities = [[] if row in entity_rows else ents for row, ents in enumerate(source_entities)]
        alignments = [[] if row in link_rows else pairs for row, pairs in enumerate(alignments)]
        flat = _flat_pairs(alignments)
    ent_counts = np.fromiter(map(len, source_entities), dtype=np.int64, count=n)
    entities = list(chain.from_iterable(source_entities))
    n_ent = len(entities)
    ent_sent = np.repeat(np.arange(n, dtype=np.int64), ent_counts)
    ent_start = np.fromiter((e["start"] for e in entities), dtype=np.int64, count=n_ent)
    ent_end = np.fromiter((e["end"] for e in entities), dtype=np.int64, count=n_ent)

    link_counts = np.fromiter(map(len, alignments), dtype=np.int64, count=n)
    link_sent = np.repeat(np.arange(n, dtype=np.int64), link_counts)
    link_src, link_tgt = flat[0::2], flat[1::2]

    bad = (link_src < 0) | (link_src >= src_len[link_sent]) | (link_tgt < 0) | (link_tgt >= tgt_len[link_sent])
    for k in np.flatnonzero(bad)[::-1].tolist():  # reversed, so that a row's first bad item is kept
        row = int(link_sent[k])
        errors[row] = (
            f"alignment pair ({link_src[k]}, {link_tgt[k]}) is outside the {src_len[row]}-word source / "
            f"{tgt_len[row]}-word target sentence"
        )
    bad = (ent_start < 0) | (ent_end <= ent_start) | (ent_end > src_len[ent_sent])
    for k in np.flatnonzero(bad)[::-1].tolist():  # entity errors replace link errors of the row
        row = int(ent_sent[k])
        if row in entity_rows:
            continue
        errors[row] = f"entity {dict(entities[k])} is empty or outside the {src_len[row]}-word source sentence"
    if errors:
        return None, errors

    # deduplicate (and sort within each sentence): a repeated pair must not count twice
    width = max(int(tgt_len.max(initial=0)), 1)
    height = max(int(src_len.max(initial=0)), 1)
    key = np.unique((link_sent * height + link_src) * width + link_tgt)
    link_sent, rest = np.divmod(key, height * width)
    link_src, link_tgt = np.divmod(rest, width)

    batch = AlignedBatch(
        source_lengths=src_len,
        target_lengths=tgt_len,
        target_tokens=target_tokens,
        entity_sentence=ent_sent,
        entity_start=ent_start,
        entity_end=ent_end,
        entity_label=[e["label"] for e in entities],
        entity_offsets=offsets_of(ent_counts),
        link_sentence=link_sent,
        link_source=link_src,
        link_target=link_tgt,
        link_offsets=offsets_of(np.bincount(link_sent, minlength=n)),
    )
    return batch, errors


_INT64 = (-(2**63), 2**63)


def _is_index(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and _INT64[0] <= value < _INT64[1]


def _flat_pairs(alignments) -> Optional[np.ndarray]:
    """All rows' links as one flat ``[i0, j0, i1, j1, ...]`` array, or ``None`` if any item is not a
    pair of integers. C-level passes over the batch (``map``, ``fromiter``, the set of value types)."""
    items = list(chain.from_iterable(alignments))
    try:
        if not (np.fromiter(map(len, items), dtype=np.int64, count=len(items)) == 2).all():
            return None
        values = list(chain.from_iterable(items))
        if not _all_integers(values):
            return None
        return np.fromiter(values, dtype=np.int64, count=len(values))
    except (TypeError, OverflowError):
        return None


def _all_integers(values: list) -> bool:
    """Whether every value is a (non-bool) Python or numpy integer: one look per distinct type."""
    return all(t is int or (issubclass(t, np.integer) and t is not np.bool_) for t in set(map(type, values)))


def _well_formed_entities(entities: list) -> bool:
    """The fast check of :func:`_entity_error` over a whole batch (``False`` sends it row by row)."""
    try:
        if set(map(type, entities)) - {dict}:
            return False
        starts = [e["start"] for e in entities]
        ends = [e["end"] for e in entities]
        label_types = set(type(e["label"]) for e in entities)
        np.fromiter(starts + ends, dtype=np.int64, count=2 * len(entities))  # OverflowError beyond int64
    except (KeyError, TypeError, OverflowError):
        return False
    return _all_integers(starts) and _all_integers(ends) and label_types <= {str}


def _link_error(item) -> Optional[str]:
    if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 2:
        return f"alignment item {item!r} is not an (i, j) pair"
    if not all(_is_index(v) for v in item):
        return f"alignment item {item!r} is not a pair of word indices"
    return None


def _entity_error(entity) -> Optional[str]:
    if not isinstance(entity, Mapping) or not all(k in entity for k in ("start", "end", "label")):
        return f"entity {entity!r} is not a {{start, end, label}} span"
    if not (_is_index(entity["start"]) and _is_index(entity["end"])) or not isinstance(entity["label"], str):
        return f"entity {dict(entity)} has non-integer bounds or a non-string label"
    return None


def _row_errors(rows, item_error) -> dict[int, str]:
    """Row -> why its first malformed item is malformed."""
    errors = {}
    for row, items in enumerate(rows):
        found = next((e for e in map(item_error, items) if e is not None), None)
        if found is not None:
            errors[row] = found
    return errors


def entity_links(batch: AlignedBatch) -> tuple[np.ndarray, np.ndarray]:
    """``(entity, target_position)`` for every link whose source word lies inside an entity.

    Each entity is joined with all links of its sentence (a ragged cross product, small because
    sentences are), then links outside the entity are dropped. Overlapping source entities are
    fine: a link inside two entities is reported for both.
    """
    counts = np.diff(batch.link_offsets)[batch.entity_sentence]
    entity = np.repeat(np.arange(len(batch.entity_start), dtype=np.int64), counts)
    link = np.repeat(batch.link_offsets[batch.entity_sentence], counts) + ragged_arange(counts)
    i = batch.link_source[link]
    inside = (i >= batch.entity_start[entity]) & (i < batch.entity_end[entity])
    return entity[inside], batch.link_target[link[inside]]


@dataclass(frozen=True)
class EntityCandidatePairs:
    """Every (entity, candidate) pair of the same sentence; global indices into batch and candidates.

    Entity-major within a sentence: sentence k's pairs are its ``n_e x n_c`` matrix in row-major order.
    """

    entity: np.ndarray
    candidate: np.ndarray

    @classmethod
    def all_pairs(cls, batch: AlignedBatch, candidates: CandidateBatch) -> "EntityCandidatePairs":
        counts = np.diff(candidates.offsets)[batch.entity_sentence]
        entity = np.repeat(np.arange(len(batch.entity_start), dtype=np.int64), counts)
        candidate = np.repeat(candidates.offsets[batch.entity_sentence], counts) + ragged_arange(counts)
        return cls(entity, candidate)


def alignment_scores(batch: AlignedBatch, candidates: CandidateBatch, pairs: EntityCandidatePairs) -> np.ndarray:
    """``2 * a / (|s| + |t|)`` per pair, a = aligned (source word, target word) pairs between them.

    Link counts are laid out per entity over its sentence's target positions (``T + 1`` slots, the
    first always empty) and summed cumulatively once; a candidate ``[lo, hi)`` then reads
    ``a = P[base + hi] - P[base + lo]``. The score is 1 for a one-to-one aligned span and can exceed 1
    when words have several links (as in the original definition).
    """
    entity, target = entity_links(batch)
    slots = batch.target_lengths[batch.entity_sentence] + 1
    base = offsets_of(slots)
    prefix = np.cumsum(np.bincount(base[entity] + target + 1, minlength=int(base[-1])))
    e, c = pairs.entity, pairs.candidate
    start, end = candidates.start[c], candidates.end[c]
    aligned = prefix[base[e] + end] - prefix[base[e] + start]
    size = (batch.entity_end - batch.entity_start)[e] + (end - start)
    return 2.0 * aligned / size


def ner_scores(
    batch: AlignedBatch,
    candidates: CandidateBatch,
    pairs: EntityCandidatePairs,
    ner_probs: Sequence[np.ndarray],
    label_names: Sequence[str],
) -> np.ndarray:
    """Support of a target NER model for candidate ``[lo, hi)`` being exactly one entity of type X.

    ``ner_probs[k]`` is sentence k's ``(n_target_words, n_labels)`` probabilities over
    ``label_names`` (IOB2). The score is the mean of ``hi - lo + 1`` probabilities:
    ``P(B-X)`` at word lo, ``P(I-X)`` at each word inside, and ``1 - P(I-X)`` at word hi (the
    entity does not go on; taken as 1 at the end of the sentence). The boundary term is what
    makes a too-short candidate (the first word of a predicted two-word entity) score below the
    exact one. In [0, 1]; 0 for a type the model does not know (e.g. MISC for a WikiANN model).
    """
    if len(ner_probs) != batch.n_sentences:
        raise ValueError(f"ner_probs has {len(ner_probs)} rows, the batch {batch.n_sentences}")
    probs = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, len(label_names)) for p in ner_probs])
    if len(probs) != batch.target_lengths.sum():
        rows = [k for k, p in enumerate(ner_probs) if len(p) != batch.target_lengths[k]]
        raise ValueError(f"row {rows[0]} of the batch: ner_probs has one row per target word, it does not")
    column = {name: k for k, name in enumerate(label_names)}
    types = sorted(set(batch.entity_label))
    type_of = {t: k for k, t in enumerate(types)}
    # one extra all-zero column stands for a label the model does not have
    padded = np.concatenate([probs, np.zeros((len(probs), 1))], axis=1)
    missing = padded.shape[1] - 1
    b_col = np.array([column.get(f"B-{t}", missing) for t in types], dtype=np.int64)
    i_col = np.array([column.get(f"I-{t}", missing) for t in types], dtype=np.int64)
    known = np.array([f"B-{t}" in column and f"I-{t}" in column for t in types], dtype=bool)
    inside_prefix = np.zeros((len(padded) + 1, len(types)))
    np.cumsum(padded[:, i_col], axis=0, out=inside_prefix[1:])

    word_base = offsets_of(batch.target_lengths)
    e, c = pairs.entity, pairs.candidate
    kind = np.array([type_of[label] for label in batch.entity_label], dtype=np.int64)[e]
    sent = batch.entity_sentence[e]
    first = word_base[sent] + candidates.start[c]
    after = word_base[sent] + candidates.end[c]
    total = padded[first, b_col[kind]]
    total += inside_prefix[after, kind] - inside_prefix[first + 1, kind]
    at_end = candidates.end[c] >= batch.target_lengths[sent]
    total += np.where(at_end, 1.0, 1.0 - padded[np.minimum(after, len(padded) - 1), i_col[kind]])
    score = total / (candidates.end[c] - candidates.start[c] + 1)
    return np.where(known[kind], score, 0.0)


@lru_cache(maxsize=65536)
def _char_ngrams(text: str, max_order: int) -> tuple[Counter, ...]:
    squeezed = "".join(text.casefold().split())
    return tuple(Counter(squeezed[k : k + n] for k in range(len(squeezed) - n + 1)) for n in range(1, max_order + 1))


def chrf(hypothesis: str, reference: str, max_order: int = 6) -> float:
    """Character n-gram F-score of two strings (chrF with beta = 1), in [0, 1].

    As sacrebleu's chrF: case and whitespace are ignored; for each order n = 1..max_order that
    both strings have n-grams of, F1 of the multiset precision and recall of character n-grams;
    the mean over those orders. beta = 1 (chrF's usual is 2) because a candidate should be neither
    longer nor shorter than the entity. Identical strings score 1, strings with no common
    character (or an empty one) 0.
    """
    hyp, ref = _char_ngrams(hypothesis, max_order), _char_ngrams(reference, max_order)
    f_scores = []
    for h, r in zip(hyp, ref):
        if not h or not r:
            break  # no n-grams of this order, nor of any higher one
        common = sum((h & r).values())
        precision, recall = common / h.total(), common / r.total()
        f_scores.append(2 * precision * recall / (precision + recall) if common else 0.0)
    return sum(f_scores) / len(f_scores) if f_scores else 0.0


def translation_scores(
    batch: AlignedBatch,
    candidates: CandidateBatch,
    pairs: EntityCandidatePairs,
    entity_translations: Sequence[Sequence[str]],
    max_order: int = 6,
) -> np.ndarray:
    """:func:`chrf` between each entity's translation and each candidate's words joined by spaces.

    ``entity_translations[k][m]`` translates entity m of sentence k into the target language (the
    MT call happens elsewhere). String work, so this is the one score computed per pair in Python.
    """
    counts = np.fromiter(map(len, entity_translations), dtype=np.int64, count=len(entity_translations))
    if len(counts) != batch.n_sentences or not np.array_equal(counts, np.diff(batch.entity_offsets)):
        raise ValueError("entity_translations must give one string per source entity of every row")
    translations = list(chain.from_iterable(entity_translations))
    sent = batch.entity_sentence[pairs.entity].tolist()
    start, end = candidates.start[pairs.candidate].tolist(), candidates.end[pairs.candidate].tolist()
    tokens = batch.target_tokens
    return np.fromiter(
        (
            chrf(" ".join(tokens[s][b:e]), translations[k], max_order)
            for k, s, b, e in zip(pairs.entity.tolist(), sent, start, end)
        ),
        dtype=np.float64,
        count=len(sent),
    )


def fuse_scores(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """``sum_k weights[k] * scores[k]`` over at least one weight; every weighted score must be present."""
    if not weights:
        raise ValueError("no weights: fusing needs at least one weighted score")
    unknown = set(weights) - set(scores)
    if unknown:
        raise ValueError(f"weights name scores {sorted(unknown)} that were not computed (have {sorted(scores)})")
    names = sorted(weights)
    fused = weights[names[0]] * np.asarray(scores[names[0]], dtype=np.float64)
    for name in names[1:]:
        fused = fused + weights[name] * np.asarray(scores[name], dtype=np.float64)
    return fused


def score_matrices(batch: AlignedBatch, candidates: CandidateBatch, values: np.ndarray) -> list[np.ndarray]:
    """Per-sentence ``(n_entities, n_candidates)`` views of pair values from :class:`EntityCandidatePairs`."""
    n_e = np.diff(batch.entity_offsets)
    n_c = np.diff(candidates.offsets)
    bounds = offsets_of(n_e * n_c)
    return [values[bounds[k] : bounds[k + 1]].reshape(n_e[k], n_c[k]) for k in range(batch.n_sentences)]
