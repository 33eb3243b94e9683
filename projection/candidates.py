"""Candidate target spans for candidate-matching projection, as flat arrays over a batch.

Two sources, as in Politov et al. 2025:

* :func:`ngram_candidates`: every n-gram of up to ``max_ngram`` target words. The default, 8,
  covers 98.9% / 99.4% of the gold entities of the Spanish / German Europarl-NER test sets (6
  would cover 96.8% / 98.8%; longer ones are titles of acts and committees); the number of candidates, and so the cost, grows linearly
  with it. Spans containing a word with a sentence mark (``! ? ¡ ¿``) are skipped, as in the
  paper; spans that start or end with a punctuation-only word are skipped too (an entity never
  starts or ends with a bare comma or quote; interior punctuation, as in "Bosnia - Herzegovina",
  is kept). Pass ``trim_punctuation=False`` for the paper's rule alone.
* :func:`ner_candidates`: the spans a target-side NER model predicts (its IOB2 tags or spans;
  the model call happens elsewhere).

"Punctuation-only" means every character is in a Unicode punctuation category (P*); symbols
such as ``€`` or ``+`` are not punctuation (``%`` is).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Mapping, Sequence, Union

import numpy as np

from dataset_builders.schemes import tags_to_spans

DEFAULT_MAX_NGRAM = 8
SENTENCE_MARKS = frozenset("!?¡¿")

_PLAIN, _PUNCTUATION, _MARKED = 0, 1, 2


def ragged_arange(counts: np.ndarray) -> np.ndarray:
    """``[0..c0-1, 0..c1-1, ...]`` for ``counts = [c0, c1, ...]``, without a Python loop."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)


def offsets_of(counts: np.ndarray) -> np.ndarray:
    """``[0, c0, c0 + c1, ...]``: where each group starts in the concatenation, plus the total."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


@lru_cache(maxsize=1 << 16)
def is_punctuation(word: str) -> bool:
    """True for a non-empty word made only of Unicode punctuation (``,`` ``--`` ``«`` ``¿``)."""
    return bool(word) and all(unicodedata.category(ch).startswith("P") for ch in word)


@lru_cache(maxsize=1 << 16)
def _word_kind(word: str) -> int:
    if any(ch in SENTENCE_MARKS for ch in word):
        return _MARKED
    return _PUNCTUATION if is_punctuation(word) else _PLAIN


@dataclass(frozen=True)
class CandidateBatch:
    """Candidate spans ``[start, end)`` of every sentence of a batch, sorted by (start, end) per sentence.

    ``offsets[k]:offsets[k + 1]`` index sentence k's candidates.
    """

    start: np.ndarray
    end: np.ndarray
    offsets: np.ndarray

    @property
    def n_sentences(self) -> int:
        return len(self.offsets) - 1

    @property
    def sentence(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_sentences, dtype=np.int64), np.diff(self.offsets))


def ngram_candidates(
    target_tokens: Sequence[Sequence[str]],
    max_ngram: int = DEFAULT_MAX_NGRAM,
    trim_punctuation: bool = True,
) -> CandidateBatch:
    """All n-grams (n <= ``max_ngram``) of each sentence, minus those the module docstring excludes."""
    if max_ngram < 1:
        raise ValueError(f"max_ngram must be at least 1, got {max_ngram}")
    n = len(target_tokens)
    lengths = np.fromiter(map(len, target_tokens), dtype=np.int64, count=n)
    kinds = np.fromiter(map(_word_kind, chain.from_iterable(target_tokens)), dtype=np.int8, count=int(lengths.sum()))
    word_base = offsets_of(lengths)
    marked_prefix = offsets_of(kinds == _MARKED)

    # every word starts one candidate of each length; keep those that fit and pass the filters
    word_sentence = np.repeat(np.arange(n, dtype=np.int64), lengths)
    sentence = np.repeat(word_sentence, max_ngram)
    start = np.repeat(ragged_arange(lengths), max_ngram)
    end = start + np.tile(np.arange(1, max_ngram + 1, dtype=np.int64), len(kinds))
    keep = end <= lengths[sentence]
    sentence, start, end = sentence[keep], start[keep], end[keep]
    first, after = word_base[sentence] + start, word_base[sentence] + end
    keep = marked_prefix[after] == marked_prefix[first]
    if trim_punctuation:
        keep &= (kinds[first] != _PUNCTUATION) & (kinds[after - 1] != _PUNCTUATION)
    sentence = sentence[keep]
    return CandidateBatch(start[keep], end[keep], offsets_of(np.bincount(sentence, minlength=n)))


def ner_candidates(predictions: Sequence[Union[Sequence[str], Sequence[Mapping]]]) -> CandidateBatch:
    """The entity spans a target NER model predicted, one row per sentence.

    A row is either the predicted IOB2 tags (read as conlleval does: a stray I- opens a span) or
    a list of ``{"start", "end", ...}`` spans. Predicted labels are not kept: the NER score
    (:func:`projection.scores.ner_scores`) is what weighs a candidate's type.
    """
    rows = []
    for row in predictions:
        spans = tags_to_spans(row) if row and isinstance(row[0], str) else row
        rows.append(sorted({(int(s["start"]), int(s["end"])) for s in spans}))
    counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.array(list(chain.from_iterable(rows)), dtype=np.int64).reshape(-1, 2)
    return CandidateBatch(flat[:, 0].copy(), flat[:, 1].copy(), offsets_of(counts))
