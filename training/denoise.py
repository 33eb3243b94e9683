"""Neighbour-consistency denoising of pseudo-labels (after CoLaDa, Ma et al. 2023, arXiv 2305.14913).

A teacher's label for a word is suspect when the words that look most like it -- its k nearest
neighbours in a representation space, over the WHOLE pseudo-labelled corpus -- carry other
labels. CoLaDa down-weights such tokens in the distillation loss; this module gives each word

* ``kd_weight``: the neighbours' support for its tag -- with ``votes="hard"`` (CoLaDa) the share of
  its k neighbours whose teacher argmax is that tag, with ``votes="soft"`` the neighbours' mean
  teacher probability of it; in [0, 1];
* ``denoised_tags`` (``mode="relabel"`` only): the teacher's tag, replaced by the neighbours'
  majority tag where the support is below ``threshold`` (a tie with the token's own tag keeps it);
  ``kd_weight`` is then the support of the tag it ends up with.

Neighbours are by cosine similarity, the token itself excluded. The search is exact: by default
brute force in chunks of query rows whose similarity block stays under ``memory_mb`` (torch matmul
+ top-k, always available), or ``faiss`` (``pip install 'xner[faiss]'``; ``IndexFlatIP`` over unit
vectors, also exact) with ``backend="faiss"``, or ``"auto"`` (faiss when installed). CoLaDa's
released code uses faiss (on GPU). Measured on one CPU thread, 20,000 random 384-d vectors, k=10:
brute force 7.2 s, faiss-cpu 1.15 34 s -- so brute force stays the default; faiss is there for
GPU builds and for callers who measured it faster on their machine.

Two passes, because the neighbours of a word come from the whole corpus: :meth:`NeighbourConsistency.fit`
computes every word's representation (or takes them as an array) and the neighbour votes; the
fitted object is then a picklable batched ``datasets.map`` transform (``with_indices=True``) that
writes the columns row by row. :func:`denoise` does both and returns ``(dataset, summary)``.

How ``xner distill`` should call it (after ``add_teacher_probs``, before ``student_features``)::

    represent = lambda sentences: word_hidden_states(teacher_or_previous_student, sentences)
    corpus, summary = denoise(corpus, represent, config=NeighbourDenoising(k=10, mode="reweight"))
    results["denoising"] = summary            # tokens, mean_weight, relabelled, ...
    # then spread the word-level weight onto head sub-tokens next to teacher_probs:
    TokenAligner(..., word_columns={"teacher_probs": [0.0] * n_labels, "kd_weight": 0.0})

so that ``batch["kd_weight"]`` reaches the strategies (:mod:`training.strategies` weights every
teacher-derived term with it). ``represent(sentences)`` takes a list of word lists and returns one
``(n_words, dim)`` array (numpy or torch) per sentence -- e.g. the inference core's last hidden
state at each word's head sub-token (CoLaDa averages a word's sub-tokens); the transform never
loads a model itself. With ``mode="relabel"`` use ``denoised_tags`` as the hard pseudo-labels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence, Union

import datasets
import numpy as np
import torch
from datasets import ClassLabel, List, Value

from dataset_builders.errors import UserError
from training.features import row_matrices

KD_WEIGHT = "kd_weight"
DENOISED_TAGS = "denoised_tags"
MODES = ("reweight", "relabel")
VOTES = ("hard", "soft")
BACKENDS = ("auto", "exact", "faiss")

ArrayLike = Union[np.ndarray, torch.Tensor]
Represent = Callable[[list[list[str]]], Sequence[ArrayLike]]


def _as_array(values: Union[ArrayLike, Sequence], dtype=np.float32) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (an all-zero row stays zero: cosine 0 to everything)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _exact_neighbours(unit: np.ndarray, k: int, memory_mb: float) -> np.ndarray:
    n = unit.shape[0]
    rows = max(1, int(memory_mb * 2**20 // (4 * n)))  # one (rows, n) float32 block at a time
    table = torch.from_numpy(unit)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        sims = table[start:stop] @ table.T
        sims[torch.arange(stop - start), torch.arange(start, stop)] = -math.inf  # never one's own neighbour
        out[start:stop] = sims.topk(k, dim=1).indices.numpy()
    return out


def _faiss_neighbours(unit: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    _, found = index.search(unit, k + 1)
    # drop the token itself wherever it came back (with exact duplicates it may not be first, or
    # not be there at all: then the first k others are kept)
    not_self = found != np.arange(unit.shape[0])[:, None]
    keep = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(found, keep, axis=1).astype(np.int64)


def nearest_neighbours(vectors: ArrayLike, k: int, *, backend: str = "exact", memory_mb: float = 256.0) -> np.ndarray:
    """``(n, k)`` indices of each row's k most cosine-similar other rows, most similar first.

    ``k`` must be < n. ``backend``: ``"exact"`` (chunked brute force; each block of query rows
    against all rows stays under ``memory_mb``), ``"faiss"`` (needs faiss-cpu) or ``"auto"``
    (faiss when installed). Both are exact; only the order of equally similar rows may differ.
    """
    vectors = _as_array(vectors)
    if vectors.ndim != 2:
        raise UserError(f"representations must be a 2-D array (n_tokens, dim), got shape {vectors.shape}")
    unit = _unit_rows(vectors)
    if not 0 < k < unit.shape[0]:
        raise UserError(f"k must be in [1, {unit.shape[0] - 1}] for {unit.shape[0]} tokens, got {k}")
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "faiss" and not faiss_available():
        raise UserError("backend 'faiss' needs faiss-cpu: pip install 'xner[faiss]' (or use backend='exact')")
    if backend == "faiss" or (backend == "auto" and faiss_available()):
        return _faiss_neighbours(unit, k)
    return _exact_neighbours(unit, k, memory_mb)


@dataclass(frozen=True)
class NeighbourVotes:
    """Per token of the flattened corpus: its tag, the neighbours' votes for it, and the result."""

    tags: np.ndarray  # (n,) the teacher's argmax
    majority: np.ndarray  # (n,) the neighbours' majority tag (own tag on a tie)
    support: np.ndarray  # (n,) the neighbours' support for the teacher's tag, in [0, 1]
    denoised: np.ndarray  # (n,) the tag kept (relabel mode: majority where support < threshold)
    weights: np.ndarray  # (n,) float32 kd_weight: the neighbours' support for the denoised tag
    k: int  # neighbours per token actually used


@dataclass
class NeighbourDenoising:
    """The parameters of neighbour-consistency denoising (recorded with a run as ``asdict``).

    k: neighbours per token (CoLaDa uses ~10-500 depending on corpus size); fewer when the corpus
        has fewer other tokens. mode: ``"reweight"`` (``kd_weight`` only) or ``"relabel"`` (also
        ``denoised_tags``). threshold: relabel when the support of the teacher's tag is below it.
        votes: ``"hard"`` (neighbours' argmax tags, CoLaDa) or ``"soft"`` (their distributions).
        backend / memory_mb: see :func:`nearest_neighbours`.
    """

    k: int = 10
    mode: str = "reweight"
    threshold: float = 0.5
    votes: str = "hard"
    backend: str = "exact"
    memory_mb: float = 256.0

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k <= 0:
            raise UserError(f"denoising k must be a positive integer, got {self.k!r}")
        if self.mode not in MODES:
            raise UserError(f"denoising mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"denoising threshold must be in [0, 1], got {self.threshold}")
        if self.votes not in VOTES:
            raise UserError(f"denoising votes must be one of {VOTES}, got {self.votes!r}")
        if self.backend not in BACKENDS:
            raise UserError(f"denoising backend must be one of {BACKENDS}, got {self.backend!r}")
        if not self.memory_mb > 0:
            raise UserError(f"denoising memory_mb must be > 0, got {self.memory_mb}")

    def votes_for(self, representations: ArrayLike, teacher_probs: ArrayLike) -> NeighbourVotes:
        """Neighbour votes for every token of a flattened corpus: ``(n, dim)`` vectors, ``(n, n_labels)`` probs."""
        vectors, probs = _as_array(representations), _as_array(teacher_probs)
        if probs.ndim != 2 or vectors.ndim != 2 or vectors.shape[0] != probs.shape[0]:
            raise UserError(
                f"representations {vectors.shape} and teacher_probs {probs.shape} must be (n_tokens, dim) and "
                "(n_tokens, n_labels) for the same tokens"
            )
        n, n_labels = probs.shape
        tags = probs.argmax(1) if n else np.zeros(0, dtype=np.int64)
        k = min(self.k, n - 1)
        if k < 1:  # zero or one token: nobody to vote, nothing to change
            ones = np.ones(n, dtype=np.float32)
            return NeighbourVotes(tags, tags.copy(), ones, tags.copy(), ones, 0)
        neighbours = nearest_neighbours(vectors, k, backend=self.backend, memory_mb=self.memory_mb)
        if self.votes == "hard":
            votes = np.zeros((n, n_labels), dtype=np.float64)
            np.add.at(votes, (np.repeat(np.arange(n), k), tags[neighbours].ravel()), 1.0 / k)
        else:
            votes = probs[neighbours].mean(axis=1, dtype=np.float64)
        rows = np.arange(n)
        own = votes[rows, tags]
        majority = np.where(own >= votes.max(1), tags, votes.argmax(1))
        denoised = np.where(own < self.threshold, majority, tags) if self.mode == "relabel" else tags.copy()
        weights = votes[rows, denoised].astype(np.float32)
        return NeighbourVotes(tags, majority, own.astype(np.float32), denoised, weights, k)


def summarise(votes: NeighbourVotes, config: NeighbourDenoising, backend: str) -> dict[str, Any]:
    """What denoising did, for results and cards: how many tokens it changed and the mean weight."""
    n = int(votes.tags.shape[0])
    return {
        **asdict(config),
        "backend_used": backend,
        "k_used": votes.k,
        "tokens": n,
        "mean_weight": float(votes.weights.mean()) if n else None,
        "disagreeing": int((votes.majority != votes.tags).sum()),  # neighbours' majority differs
        "low_support": int((votes.support < config.threshold).sum()),
        "relabelled": int((votes.denoised != votes.tags).sum()),
        "relabelled_share": float((votes.denoised != votes.tags).mean()) if n else None,
    }


def _stack_rows(arrays: Sequence[ArrayLike], lengths: Sequence[int]) -> np.ndarray:
    """Per-row ``(n_words, dim)`` arrays -> one ``(total_words, dim)`` array, checking each row's word count."""
    if len(arrays) != len(lengths):
        raise UserError(f"{len(arrays)} representation arrays for {len(lengths)} rows")
    rows = [_as_array(a) for a in arrays]
    for row, (array, n_words) in enumerate(zip(rows, lengths)):
        if array.ndim != 2 or array.shape[0] != n_words:
            raise UserError(f"row {row}: representations of shape {array.shape} for {n_words} words")
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)


class NeighbourConsistency:
    """Batched ``datasets.map`` transform (``with_indices=True``) adding ``kd_weight`` (and ``denoised_tags``).

    Fit it first on the very dataset it will map (:meth:`fit`, the corpus-wide pass); rows are
    then matched by index, and a row whose word count differs from the fitted one is an error
    naming the row (the dataset was filtered or shuffled in between).

    Args:
        represent: ``sentences -> [array (n_words, dim), ...]`` (see the module docstring); not
            needed when :meth:`fit` is given ``representations``. It is not pickled: the fitted
            votes are, so the map fingerprint depends on the result, not on the model object.
        config: :class:`NeighbourDenoising`.
        tokens_column, probs_column: the words and the word-level teacher distributions.
        batch_size: sentences per call of ``represent``.
    """

    def __init__(
        self,
        represent: Optional[Represent] = None,
        config: Optional[NeighbourDenoising] = None,
        *,
        tokens_column: str = "tokens",
        probs_column: str = "teacher_probs",
        batch_size: int = 64,
    ):
        if batch_size <= 0:
            raise UserError(f"batch_size must be > 0, got {batch_size}")
        self.config = config if config is not None else NeighbourDenoising()
        self.tokens_column = tokens_column
        self.probs_column = probs_column
        self.batch_size = batch_size
        self._represent = represent
        self.offsets: Optional[np.ndarray] = None
        self.weights: Optional[np.ndarray] = None
        self.denoised: Optional[np.ndarray] = None
        self.summary: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_represent"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._represent = None

    def _flat_probs(self, dataset: datasets.Dataset) -> tuple[np.ndarray, list[int]]:
        batches = list(row_matrices(dataset, self.probs_column))
        lengths = [int(n) for _, batch_lengths in batches for n in batch_lengths]
        filled = [probs for probs, _ in batches if probs.size]
        if not filled:
            return np.zeros((0, 0), dtype=np.float32), lengths
        return np.concatenate(filled).astype(np.float32, copy=False), lengths

    def _representations(self, dataset: datasets.Dataset) -> list[ArrayLike]:
        if self._represent is None:
            raise UserError("NeighbourConsistency.fit needs a represent callable or representations")
        arrays: list[ArrayLike] = []
        for batch in dataset.select_columns([self.tokens_column]).iter(batch_size=self.batch_size):
            sentences = batch[self.tokens_column]
            vectors = self._represent(sentences)
            if len(vectors) != len(sentences):
                raise UserError(f"represent returned {len(vectors)} arrays for {len(sentences)} sentences")
            arrays.extend(vectors)
        return arrays

    def fit(
        self, dataset: datasets.Dataset, representations: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = None
    ) -> dict[str, Any]:
        """The corpus-wide pass: every word's representation, its neighbours and their votes.

        ``representations``: one ``(n_words, dim)`` array per row, or all words stacked
        ``(total_words, dim)`` in row order; computed with ``represent`` when None. Returns the
        summary (also kept in :attr:`summary`).
        """
        for column in (self.tokens_column, self.probs_column):
            if column not in dataset.column_names:
                raise UserError(f"denoising needs a {column!r} column; the dataset has {dataset.column_names}")
        probs, lengths = self._flat_probs(dataset)
        if representations is None:
            representations = self._representations(dataset)
        if isinstance(representations, (np.ndarray, torch.Tensor)):
            vectors = _as_array(representations)
        else:
            vectors = _stack_rows(representations, lengths)
        votes = self.config.votes_for(vectors, probs)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.weights = votes.weights
        self.denoised = votes.denoised
        backend = self.config.backend
        if backend == "auto":
            backend = "faiss" if faiss_available() else "exact"
        self.summary = summarise(votes, self.config, backend)
        return self.summary

    def __call__(self, batch: dict[str, list], indices: Sequence[int]) -> dict[str, list]:
        if self.offsets is None:
            raise RuntimeError("NeighbourConsistency must be fitted (fit(dataset)) before it is mapped")
        out: dict[str, list] = {KD_WEIGHT: []}
        if self.config.mode == "relabel":
            out[DENOISED_TAGS] = []
        for probs, index in zip(batch[self.probs_column], indices):
            if index + 1 >= len(self.offsets):
                raise UserError(f"row {index}: the denoiser was fitted on {len(self.offsets) - 1} rows")
            start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
            if stop - start != len(probs):
                raise UserError(
                    f"row {index}: {len(probs)} words but {stop - start} when fitted; map the dataset it was fitted on"
                )
            out[KD_WEIGHT].append(self.weights[start:stop].tolist())
            if self.config.mode == "relabel":
                out[DENOISED_TAGS].append(self.denoised[start:stop].tolist())
        return out

    def features(self, dataset: datasets.Dataset) -> datasets.Features:
        """``dataset``'s features plus ``kd_weight`` (and ``denoised_tags``, named like ``teacher_tags``)."""
        features = dataset.features.copy()
        features[KD_WEIGHT] = List(Value("float32"))
        if self.config.mode == "relabel":
            tags = features.get("teacher_tags")
            is_labelled = isinstance(tags, List) and isinstance(tags.feature, ClassLabel)
            features[DENOISED_TAGS] = List(tags.feature) if is_labelled else List(Value("int64"))
        return features


def denoise(
    dataset: datasets.Dataset,
    represent: Optional[Represent] = None,
    *,
    representations: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = None,
    config: Optional[NeighbourDenoising] = None,
    tokens_column: str = "tokens",
    probs_column: str = "teacher_probs",
    batch_size: int = 64,
    map_batch_size: int = 1000,
    desc: str = "neighbour denoising",
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Fit :class:`NeighbourConsistency` on ``dataset`` and map it: ``(dataset with kd_weight, summary)``."""
    transform = NeighbourConsistency(
        represent, config, tokens_column=tokens_column, probs_column=probs_column, batch_size=batch_size
    )
    summary = transform.fit(dataset, representations)
    mapped = dataset.map(
        transform,
        batched=True,
        batch_size=map_batch_size,
        with_indices=True,
        features=transform.features(dataset),
        desc=desc,
    )
    return mapped, summary


def apply_relabels(
    batch: dict[str, list], probs_column: str = "teacher_probs", tags_column: str = "teacher_tags"
) -> dict[str, list]:
    """Batched map function for ``mode="relabel"``: a word whose ``denoised_tags`` differs from its teacher
    argmax gets a one-hot distribution on the new tag (and that tag in ``tags_column``), so every
    strategy -- hard or soft -- learns the corrected label; other words keep the teacher's distribution."""
    probs_out, tags_out = [], []
    for probs, denoised in zip(batch[probs_column], batch[DENOISED_TAGS]):
        array = np.asarray(probs, dtype=np.float32)
        tags = np.asarray(denoised, dtype=np.int64)
        if array.size:
            changed = array.argmax(-1) != tags
            array[changed] = np.eye(array.shape[-1], dtype=np.float32)[tags[changed]]
        probs_out.append(array.tolist())
        tags_out.append(tags.tolist())
    return {probs_column: probs_out, tags_column: tags_out}


__all__ = [
    "apply_relabels",
    "DENOISED_TAGS",
    "KD_WEIGHT",
    "NeighbourConsistency",
    "NeighbourDenoising",
    "NeighbourVotes",
    "denoise",
    "faiss_available",
    "nearest_neighbours",
    "summarise",
]
