"""Teacher probabilities, computed once per unlabelled corpus and stored as a dataset column.

Distillation (Wu et al. 2020) needs the teacher's distribution for every word of the unlabelled
target text. Running the teacher once, as a cached ``datasets.map``, and storing the result means
teacher and student are never in memory together, and every strategy and student reuses the
same column. The column is WORD-level, ``teacher_probs``: ``List(List(float32))`` of shape
``(n_words, n_labels)``, so teacher and student may use different tokenizers; next to it
``teacher_tags`` holds the teacher's argmax per word as a ``ClassLabel`` whose names are the
teacher's ``id2label`` -- the label set travels with the dataset (``save_to_disk``, parquet, Hub)
and :func:`teacher_labels` reads it back.

* :class:`TeacherProbabilities`: the batched map transform for one teacher (model loaded lazily,
  pickled as its configuration only, so fingerprints are deterministic and re-runs hit the cache).
  With several GPUs the map is sharded, one worker per GPU (:mod:`training.devices`, the same
  pattern as projection's model steps); the column is the same as from one process.
* :func:`add_teacher_probs`: one teacher, or several combined with weights into one column (the
  ``multi-teacher`` strategy; each teacher runs in its own pass, then is unloaded).
* :class:`OnTheFlyTeachers`: the same word-level probabilities computed inside a training step,
  with :func:`spread_to_subtokens` to place them on the student's sub-tokens.
* :func:`student_features`: word-level column -> the student's windowed sub-token features,
  with ``teacher_probs`` on each word's head token (``word_heads``, the strategies' ``kd_mask``).
* :func:`check_label_sets`: teachers and student must share a label set.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import datasets
import numpy as np
import torch
from datasets import ClassLabel, List, Value
from transformers import PreTrainedTokenizerBase

from dataset_builders.errors import UserError
from training.devices import default_num_proc, rank_device, sharded_map
from training.features import TokenAligner, row_matrices, tokenize_dataset
from training.inference import WordTagger, read_labels
from training.strategies import normalise_weights

TEACHER_PROBS = "teacher_probs"
TEACHER_TAGS = "teacher_tags"
WEIGHT_FILES = (".safetensors", ".bin")
AnyDataset = Union[datasets.Dataset, datasets.DatasetDict]


def check_label_sets(teacher_labels: Sequence[str], student_labels: Sequence[str]) -> list[int]:
    """Check that teacher and student share a label set; return the teacher column of each student label.

    Distillation compares distributions label by label, so both sides must predict the same
    labels. The order may differ: ``teacher_probs[..., index]`` puts teacher columns in the
    student's order. A mismatch raises ``ValueError`` listing both sets and their differences.
    """
    teacher, student = list(teacher_labels), list(student_labels)
    for side, labels in (("teacher", teacher), ("student", student)):
        if len(set(labels)) != len(labels):
            raise ValueError(f"the {side} label set has duplicates: {labels}")
    if set(teacher) != set(student):
        only_teacher = [label for label in teacher if label not in student]
        only_student = [label for label in student if label not in teacher]
        raise ValueError(
            "teacher and student must share a label set; "
            f"teacher labels: {teacher}; student labels: {student} "
            f"(only in teacher: {only_teacher}; only in student: {only_student})"
        )
    return [teacher.index(label) for label in student]


def model_fingerprint(model_name_or_path: str, revision: Optional[str] = None) -> str:
    """A content hash of a local checkpoint (config + weight files), or ``name@revision`` for a Hub id.

    Part of the transform's pickled state, so retraining a teacher into the same folder changes
    the map fingerprint and the stale cached column is not reused.
    """
    if not os.path.isdir(model_name_or_path):
        return f"{model_name_or_path}@{revision or 'main'}"
    digest = hashlib.sha256()
    names = sorted(n for n in os.listdir(model_name_or_path) if n == "config.json" or n.endswith(WEIGHT_FILES))
    for name in names:
        digest.update(name.encode())
        with open(os.path.join(model_name_or_path, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class TeacherProbabilities:
    """Batched ``datasets.map`` transform: words -> the teacher's word-level distributions.

    Adds ``teacher_probs`` (``(n_words, n_labels)`` float32 per sentence, rows sum to 1) and
    ``teacher_tags`` (argmax ids), computed by xner's one word tagger
    (:class:`training.inference.WordTagger`: the teacher's own tokenizer, long sentences in
    overlapping windows, each word the softmax at its head sub-token, a word that yields no
    sub-token a one-hot ``O``). A teacher without a trained token-classification head is refused
    when the transform is built (:func:`training.inference.read_labels`).

    Only the configuration is pickled (``__getstate__``): the model and tokenizer load on first
    use, so hashing the transform is cheap and deterministic, a re-run reuses the cache file, and
    each worker of a sharded map (``with_rank``) loads its own copy on the GPU of its rank.

    Args:
        model_name_or_path: a token-classification checkpoint (Hub id or folder; full or LoRA).
        batch_size: windows per forward pass.
        max_length, stride: window size and overlap (``TokenAligner``'s defaults when None).
        device: where the teacher runs in-process (default: CUDA when available, else CPU); a
            sharded map's workers use the GPU of their rank. Not part of the fingerprint.
        tokens_column: the words.
        revision: Hub revision of the checkpoint.
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        batch_size: int = 32,
        max_length: Optional[int] = None,
        stride: Optional[int] = None,
        device: Optional[str] = None,
        tokens_column: str = "tokens",
        revision: Optional[str] = None,
    ):
        self.model_name_or_path = model_name_or_path
        self.labels = read_labels(model_name_or_path, revision=revision)
        self.batch_size = batch_size
        self.max_length = max_length
        self.stride = stride
        self.tokens_column = tokens_column
        self.revision = revision
        self.fingerprint = model_fingerprint(model_name_or_path, revision)
        self._device = device
        self._tagger = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._device = None
        self._tagger = None

    @property
    def device(self) -> Optional[str]:
        """The device given when built (None: CUDA when available, else CPU)."""
        return self._device

    def load(self, device: Optional[str] = None) -> None:
        """Load tokenizer and model on ``device`` (default: the one given when built); no-op when loaded there."""
        if self._tagger is not None:
            if device is not None and next(self._tagger.model.parameters()).device != torch.device(device):
                self._tagger.model.to(device)
            return
        device = device or self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._tagger = WordTagger.from_pretrained(
            self.model_name_or_path,
            revision=self.revision,
            device=device,
            batch_size=self.batch_size,
            max_length=self.max_length,
            stride=self.stride,
        )

    def unload(self) -> None:
        """Free the model (before the next teacher or the student is loaded)."""
        self._tagger = None

    def word_probabilities(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One float32 array ``(n_words, n_labels)`` per sentence (:class:`training.inference.WordTagger`)."""
        self.load()
        return self._tagger.word_probabilities(sentences)

    def __call__(self, batch: dict[str, list], rank: Optional[int] = None) -> dict[str, list]:
        if rank is not None:  # a worker of a sharded map: the GPU of its rank, if any
            self.load(rank_device(rank))
        probs = self.word_probabilities(batch[self.tokens_column])
        return {TEACHER_PROBS: [p.tolist() for p in probs], TEACHER_TAGS: [p.argmax(-1).tolist() for p in probs]}


def _as_teacher(teacher: Union[str, TeacherProbabilities]) -> TeacherProbabilities:
    return teacher if isinstance(teacher, TeacherProbabilities) else TeacherProbabilities(teacher)


def _teacher_columns(teachers: Sequence[TeacherProbabilities]) -> tuple[list[str], list[list[int]]]:
    """The shared label set (first teacher's order) and, per teacher, its columns in that order."""
    if not teachers:
        raise ValueError("at least one teacher is needed")
    reference = teachers[0].labels
    return list(reference), [check_label_sets(t.labels, reference) for t in teachers]


def teacher_num_proc(num_proc: Optional[int], teachers: Sequence[TeacherProbabilities] = ()) -> Optional[int]:
    """Workers for the teacher map: ``num_proc`` as given, else one per GPU when there are several.

    Teachers built for a non-CUDA device (``accelerate launch --cpu`` on a GPU machine) stay in
    one process by default. None means in-process.
    """
    if num_proc is not None:
        if isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1:
            raise UserError(f"num_proc (--teacher_num_proc) must be a positive number of processes, got {num_proc!r}")
        return num_proc
    if any(t.device is not None and not str(t.device).startswith("cuda") for t in teachers):
        return None
    return default_num_proc()


def _resolve_weights(weights: Optional[Sequence[float]], n_teachers: int) -> list[float]:
    """Given weights normalised to sum to 1, or uniform ones."""
    if weights is None:
        return [1.0 / n_teachers] * n_teachers
    if len(weights) != n_teachers:
        raise ValueError(f"{len(weights)} weights for {n_teachers} teachers")
    return normalise_weights(weights)


def combine_teacher_probs(
    per_teacher: Sequence[Sequence[np.ndarray]], weights: Sequence[float], columns: Sequence[Sequence[int]]
) -> list[np.ndarray]:
    """Weighted average of several teachers' word distributions, sentence by sentence (float32).

    ``per_teacher[k][i]``: teacher k's ``(n_words, n_labels)`` for sentence i; ``columns[k]``
    reorders teacher k's labels into the shared order. Weights must sum to 1 (see
    :func:`training.strategies.normalise_weights`), so the rows still sum to 1.
    """
    combined = []
    for sentence in zip(*per_teacher):
        total = sum(
            w * np.asarray(p, dtype=np.float64).reshape(len(p), len(cols))[:, cols]
            for w, p, cols in zip(weights, sentence, columns)
        )
        combined.append(np.asarray(total, dtype=np.float32))
    return combined


@dataclass
class CombineTeachers:
    """Batched map transform: per-teacher columns -> one weighted ``teacher_probs`` + ``teacher_tags``."""

    columns: list[str]
    weights: list[float]
    label_columns: list[list[int]]

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        probs = combine_teacher_probs([batch[c] for c in self.columns], self.weights, self.label_columns)
        return {TEACHER_PROBS: [p.tolist() for p in probs], TEACHER_TAGS: [p.argmax(-1).tolist() for p in probs]}


def _with_teacher_features(dataset: datasets.Dataset, labels: Sequence[str]) -> datasets.Features:
    """``dataset``'s features plus the two teacher columns (tags named after ``labels``)."""
    features = dataset.features.copy()
    features[TEACHER_PROBS] = List(List(Value("float32")))
    features[TEACHER_TAGS] = List(ClassLabel(names=list(labels)))
    return features


def add_teacher_probs(
    dataset: AnyDataset,
    teachers: Sequence[Union[str, TeacherProbabilities]],
    weights: Optional[Sequence[float]] = None,
    *,
    batch_size: int = 256,
    num_proc: Optional[int] = None,
    desc: str = "teacher probabilities",
    cache_file_name: Union[str, Mapping[str, str], None] = None,
) -> AnyDataset:
    """Add ``teacher_probs`` and ``teacher_tags`` to every split, from one teacher or several.

    Several teachers must share a label set (any order; the first teacher's order is kept) and
    are combined with ``weights`` (normalised; uniform when None) -- weights from language
    similarity come from :meth:`training.strategies.MultiTeacher.teacher_weights`. Each teacher
    runs in its own cached map pass and is unloaded afterwards, so only one model is in memory at
    a time and re-weighting reuses the per-teacher passes. ``batch_size``: sentences per map batch.

    ``num_proc``: teacher workers, each on the GPU of its rank (default: one per GPU when there
    are several, else in-process; :func:`teacher_num_proc`). Shards are contiguous, so rows keep
    their order, and the fingerprint does not depend on ``num_proc``: under ``accelerate launch``
    the main process computes the column with every GPU while the others wait
    (``main_process_first``), then they read it from the cache.

    ``cache_file_name``: where the column is cached, instead of the dataset's own cache folder (a
    path for a Dataset; ``{split: path}`` for a DatasetDict, a split left out cached as usual). An
    existing file is LOADED whatever its content, so its name must change with everything the
    column depends on (self-training's :func:`training.self_training.round_cache_key`); it is
    reused even with ``datasets`` caching disabled. Several teachers: each teacher's pass goes
    next to it (``...-teacher{k}.arrow``), the combined column into the file itself.
    """
    teachers = [_as_teacher(t) for t in teachers]
    labels, label_columns = _teacher_columns(teachers)
    weights = _resolve_weights(weights, len(teachers))
    num_proc = teacher_num_proc(num_proc, teachers)
    if isinstance(dataset, datasets.DatasetDict):
        if isinstance(cache_file_name, str):
            raise ValueError("a DatasetDict's cache_file_name is {split: path}, one file per split")
        files = cache_file_name or {}
        return datasets.DatasetDict(
            {
                split: add_teacher_probs(
                    ds,
                    teachers,
                    weights,
                    batch_size=batch_size,
                    num_proc=num_proc,
                    desc=f"{desc} {split}",
                    cache_file_name=files.get(split),
                )
                for split, ds in dataset.items()
            }
        )
    if cache_file_name is not None and not isinstance(cache_file_name, str):
        raise ValueError("a Dataset's cache_file_name is one path")
    cached = {} if cache_file_name is None else {"cache_file_name": cache_file_name, "load_from_cache_file": True}
    if len(teachers) == 1:
        return _run_teacher(dataset, teachers[0], batch_size, num_proc, desc, **cached)
    columns = []
    for k, teacher in enumerate(teachers):
        column = f"{TEACHER_PROBS}_{k}"
        own = {} if cache_file_name is None else {**cached, "cache_file_name": _teacher_file(cache_file_name, k)}
        dataset = _run_teacher(dataset, teacher, batch_size, num_proc, f"{desc} (teacher {k})", **own)
        dataset = dataset.remove_columns(TEACHER_TAGS).rename_column(TEACHER_PROBS, column)
        columns.append(column)
    return dataset.map(
        CombineTeachers(columns, list(weights), label_columns),
        batched=True,
        batch_size=batch_size,
        remove_columns=columns,
        features=_with_teacher_features(dataset.remove_columns(columns), labels),
        desc=f"{desc} (combine)",
        **cached,
    )


def _teacher_file(cache_file_name: str, k: int) -> str:
    """Teacher ``k``'s own pass, next to the combined column's file."""
    stem, ext = os.path.splitext(cache_file_name)
    return f"{stem}-teacher{k}{ext}"


def _run_teacher(
    dataset: datasets.Dataset,
    teacher: TeacherProbabilities,
    batch_size: int,
    num_proc: Optional[int],
    desc: str,
    **cache: Any,
) -> datasets.Dataset:
    """One teacher's cached map pass, sharded over ``num_proc`` workers; the model is unloaded afterwards.
    ``cache``: ``cache_file_name`` and ``load_from_cache_file``, when the caller names the file."""
    try:
        return sharded_map(
            dataset,
            teacher,
            num_proc,
            batched=True,
            batch_size=batch_size,
            features=_with_teacher_features(dataset, teacher.labels),
            desc=desc,
            **cache,
        )
    finally:
        teacher.unload()


def teacher_labels(dataset: AnyDataset) -> list[str]:
    """The teacher label names recorded with a ``teacher_probs`` column (order of its columns)."""
    sample = next(iter(dataset.values())) if isinstance(dataset, datasets.DatasetDict) else dataset
    if TEACHER_TAGS not in sample.features:
        raise KeyError(f"no {TEACHER_TAGS!r} column: add teacher probabilities with add_teacher_probs first")
    return list(sample.features[TEACHER_TAGS].feature.names)


class OnTheFlyTeachers:
    """The same word-level distributions as :func:`add_teacher_probs`, computed inside a training step.

    For corpora too large or too changeable to precompute. ``teachers(sentences)`` returns one
    float32 ``(n_words, n_labels)`` array per sentence (teachers combined with ``weights``);
    :meth:`for_batch` places them on a student batch (through :func:`spread_to_subtokens`), e.g.
    inside a loss function: ``batch["teacher_probs"] = teachers.for_batch(batch, corpus["tokens"])``.
    Teachers stay loaded next to the student, so this trades memory for disk.
    """

    def __init__(self, teachers: Sequence[Union[str, TeacherProbabilities]], weights: Optional[Sequence[float]] = None):
        self.teachers = [_as_teacher(t) for t in teachers]
        self.labels, self.label_columns = _teacher_columns(self.teachers)
        self.weights = _resolve_weights(weights, len(self.teachers))

    def __call__(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        per_teacher = [t.word_probabilities(sentences) for t in self.teachers]
        if len(per_teacher) == 1:
            return per_teacher[0]
        return combine_teacher_probs(per_teacher, self.weights, self.label_columns)

    def for_batch(
        self,
        batch: Mapping[str, torch.Tensor],
        sentences: Sequence[Sequence[str]],
        label_columns: Optional[Sequence[int]] = None,
    ) -> torch.Tensor:
        """``teacher_probs`` for a collated student batch, as a precomputed column would give it.

        Rows are matched to their words through ``sentence_id`` (an index into ``sentences``, the
        split the features were made from); each sentence runs once however many windows it has.
        """
        ids = batch["sentence_id"].tolist()
        unique = sorted(set(ids))
        probs = dict(zip(unique, self([sentences[i] for i in unique])))
        word_ids, word_heads = batch["word_ids"], batch["word_heads"]
        spread = spread_to_subtokens([probs[i] for i in ids], word_ids.cpu(), word_heads.cpu(), label_columns)
        return spread.to(word_ids.device)


def spread_to_subtokens(
    word_probs: Sequence[np.ndarray],
    word_ids: torch.Tensor,
    word_heads: torch.Tensor,
    label_columns: Optional[Sequence[int]] = None,
) -> torch.Tensor:
    """Word-level distributions -> ``(batch, seq, n_labels)`` on each word's head sub-token, zeros elsewhere.

    ``word_probs[r]`` belongs to the sentence of batch row ``r`` (a window row gets its whole
    sentence); ``word_ids``/``word_heads`` are the collated feature columns; ``label_columns``
    (from :func:`check_label_sets`) puts the teacher's labels in the student's order. The result
    is what a precomputed column becomes after :func:`student_features` and collation.
    """
    n_labels = np.asarray(word_probs[0]).shape[-1] if len(word_probs) else 0
    out = torch.zeros((*word_ids.shape, n_labels), dtype=torch.float32)
    for r, probs in enumerate(word_probs):
        probs = torch.as_tensor(np.asarray(probs), dtype=torch.float32).reshape(-1, n_labels)
        if label_columns is not None:
            probs = probs[:, list(label_columns)]
        positions = torch.nonzero(word_heads[r].bool(), as_tuple=True)[0]
        out[r, positions] = probs[word_ids[r, positions]]
    return out


@dataclass
class ReorderLabels:
    """Batched map transform: put ``teacher_probs`` columns (and ``teacher_tags`` ids) in another label order."""

    label_columns: list[int]

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        n = len(self.label_columns)
        probs = [
            np.asarray(p, dtype=np.float32).reshape(len(p), n)[:, self.label_columns] for p in batch[TEACHER_PROBS]
        ]
        return {TEACHER_PROBS: [p.tolist() for p in probs], TEACHER_TAGS: [p.argmax(-1).tolist() for p in probs]}


def student_features(
    dataset: AnyDataset,
    tokenizer: PreTrainedTokenizerBase,
    student_labels: Sequence[str],
    *,
    label_column: Optional[str] = None,
    max_length: Optional[int] = None,
    stride: Optional[int] = None,
    batch_size: int = 1000,
    word_columns: Optional[Mapping[str, Any]] = None,
) -> AnyDataset:
    """A dataset with word-level ``teacher_probs`` -> the student's features (one row per window).

    The teacher's columns are put in the student's label order (:func:`check_label_sets`), then
    :class:`training.features.TokenAligner` spreads each word's distribution onto its head
    sub-token (zeros elsewhere; ``word_heads`` marks the heads and is the strategies'
    ``kd_mask``). ``label_column``: projected tags for ``projected+kd`` (their names must be the
    student labels, in order). ``word_columns``: further per-word columns spread onto head sub-tokens
    the same way -> the fill of every other token, e.g. ``{"kd_weight": 0.0}`` from
    :mod:`training.denoise`.
    """
    sample = next(iter(dataset.values())) if isinstance(dataset, datasets.DatasetDict) else dataset
    label_columns = check_label_sets(teacher_labels(sample), student_labels)
    if label_column is not None:
        names = list(sample.features[label_column].feature.names)
        if names != list(student_labels):
            raise ValueError(
                f"{label_column!r} has labels {names}; the student has {list(student_labels)} (same order needed)"
            )
    if label_columns != list(range(len(label_columns))):
        features = sample.features.copy()
        features[TEACHER_TAGS] = List(ClassLabel(names=list(student_labels)))
        dataset = dataset.map(
            ReorderLabels(label_columns), batched=True, features=features, desc="reorder teacher labels"
        )
    aligner = TokenAligner(
        tokenizer,
        max_length,
        stride,
        label_column=label_column,
        word_columns={TEACHER_PROBS: [0.0] * len(label_columns), **(word_columns or {})},
    )
    return tokenize_dataset(dataset, aligner, batch_size=batch_size, desc="student features")


def head_confidences(features: datasets.Dataset, batch_size: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's max probability and argmax on every word head of the student's ``features``.

    Streams the ``teacher_probs`` column in Arrow batches (no Python lists), keeping two small arrays
    (float32, int16) -- what a corpus-level statistic of the teacher's confidence needs, e.g.
    ``hard-confident``'s class-balanced thresholds.
    """
    confidence, predicted = [], []
    for (probs, _), table in zip(
        row_matrices(features, TEACHER_PROBS, batch_size),
        features.select_columns(["word_heads"]).with_format("arrow").iter(batch_size),
    ):
        is_head = table["word_heads"].combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(bool)
        probs = probs[is_head]
        confidence.append(probs.max(-1).astype(np.float32))
        predicted.append(probs.argmax(-1).astype(np.int16))
    if not confidence:
        return np.zeros(0, np.float32), np.zeros(0, np.int16)
    return np.concatenate(confidence), np.concatenate(predicted)


__all__ = [
    "CombineTeachers",
    "OnTheFlyTeachers",
    "ReorderLabels",
    "TEACHER_PROBS",
    "TEACHER_TAGS",
    "TeacherProbabilities",
    "add_teacher_probs",
    "check_label_sets",
    "combine_teacher_probs",
    "head_confidences",
    "model_fingerprint",
    "spread_to_subtokens",
    "student_features",
    "teacher_labels",
    "teacher_num_proc",
]
