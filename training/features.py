"""Word-level NER rows -> model features, and model outputs -> word-level predictions again.

A model sees sub-tokens; NER data and metrics are about words. This module owns that mapping, in
both directions, so that no label is ever shifted or dropped on the way:

* :class:`TokenAligner` is a batched ``datasets.map`` function. It tokenises ``tokens`` with a fast
  tokenizer (``is_split_into_words=True``) and aligns the word labels with ``word_ids()``: the
  first sub-token of a word carries its label, the others ``-100`` (or, with
  ``label_all_subtokens``, the label with B- turned into I-).
* A word that yields no sub-token at all (an empty string, a control character the normaliser
  removes) simply has no token: it cannot shift the labels of the words after it, because labels
  are looked up by ``word_ids`` and never by position. Merging back predicts such a word ``"O"``
  (a one-hot distribution on O), because the model never saw it.
* A sentence longer than the model's window is cut into overlapping windows of sub-tokens
  (``stride`` sub-tokens of overlap, window boundaries moved back to word starts when possible).
  Each word is *headed* by exactly one token: its first sub-token in the window where that
  sub-token is most central (farthest from both window edges; the earlier window on a tie), so
  the model sees the most context on both sides. Only heads are labelled (``word_heads`` = 1),
  and merging takes each word's prediction from its head, so every word is trained on and
  predicted exactly once and none is dropped.

Output columns, one row per window: ``input_ids``, ``attention_mask``, ``labels`` (if the input is
labelled), ``word_ids`` (word index of every token, -1 for special tokens), ``word_heads`` (1 on
the one token that stands for its word), ``sentence_id`` (row index in the mapped split) and
``window_id``. Per-word columns listed in ``word_columns`` (such as stored teacher probabilities)
are spread onto the head tokens, with a fill value elsewhere.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
NO_WORD = -1
FEATURE_COLUMNS = ("input_ids", "attention_mask", "labels", "word_ids", "word_heads", "sentence_id", "window_id")


def window_spans(word_ids: Sequence[int], capacity: int, stride: int) -> list[tuple[int, int]]:
    """Cut ``len(word_ids)`` sub-tokens into windows ``[start, end)`` of at most ``capacity`` tokens.

    Consecutive windows overlap by at most ``stride`` tokens. A window ends before the word that
    would not fit and the next one starts at a word start, unless a single word is longer than
    the whole window (then it is cut inside the word). Every token lies in at least one window.
    """
    n = len(word_ids)
    if n <= capacity:
        return [(0, n)]
    starts = [i for i in range(n) if i == 0 or word_ids[i] != word_ids[i - 1]]
    spans = []
    start = 0
    while True:
        end = start + capacity
        if end >= n:
            spans.append((start, n))
            return spans
        last_fitting = starts[bisect_right(starts, end) - 1]
        if last_fitting > start:
            end = last_fitting
        spans.append((start, end))
        j = bisect_left(starts, max(end - stride, start + 1))
        start = starts[j] if j < len(starts) and starts[j] <= end else end


def head_windows(word_ids: Sequence[int], spans: Sequence[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Word -> ``(window index, token position)`` of the token that heads it (see the module doc)."""
    first: dict[int, int] = {}
    for position, word in enumerate(word_ids):
        first.setdefault(word, position)
    heads = {}
    for word, position in first.items():
        best, best_margin = None, -1
        for k, (start, end) in enumerate(spans):
            if start <= position < end:
                margin = min(position - start, end - 1 - position)
                if margin > best_margin:
                    best, best_margin = k, margin
        heads[word] = (best, position)
    return heads


def b_to_i_table(label_names: Sequence[str]) -> list[int]:
    """Label id -> the id to give continuation sub-tokens: B-X -> I-X, every other label unchanged."""
    index = {name: i for i, name in enumerate(label_names)}
    return [index.get("I-" + name[2:], i) if name.startswith("B-") else i for i, name in enumerate(label_names)]


@dataclass
class TokenAligner:
    """Batched ``datasets.map`` function (``with_indices=True``): words -> windowed sub-token features.

    Args:
        tokenizer: a *fast* tokenizer (``word_ids()`` is needed).
        max_length: tokens per window including special tokens (default: the tokenizer's
            ``model_max_length``, or 512 when the tokenizer does not set one).
        stride: overlap in sub-tokens between consecutive windows of a long sentence (default:
            a quarter of the window).
        label_column: ClassLabel ids per word; ``None`` for unlabelled text (no ``labels`` column).
        label_all_subtokens: label every sub-token of a word, not only the first; continuation
            pieces of a B-X word get I-X (needs ``label_names``).
        label_names: the label names of ``label_column`` (for the B->I remapping).
        word_columns: per-word columns to spread onto head tokens -> the fill value of every other
            token (e.g. ``{"teacher_probs": [0.0] * n_labels}``).
        tokens_column: the words.

    Instances pickle and hash deterministically (datasets' fingerprint of a tokenizer ignores the
    truncation/padding state that calling it leaves behind), so ``map`` caching works.
    """

    tokenizer: PreTrainedTokenizerBase
    max_length: Optional[int] = None
    stride: Optional[int] = None
    label_column: Optional[str] = "ner_tags"
    label_all_subtokens: bool = False
    label_names: Optional[Sequence[str]] = None
    word_columns: Mapping[str, Any] = field(default_factory=dict)
    tokens_column: str = "tokens"

    def __post_init__(self):
        if not self.tokenizer.is_fast:
            raise ValueError(f"{type(self.tokenizer).__name__} is not a fast tokenizer: word_ids() is needed")
        if self.max_length is None:
            limit = self.tokenizer.model_max_length
            self.max_length = int(limit) if limit and limit < 100_000 else 512
        probe = self.tokenizer(["x"], is_split_into_words=True)
        probe_words = probe.word_ids()
        first = probe_words.index(0)
        last = len(probe_words) - 1 - probe_words[::-1].index(0)
        self.prefix_ids = list(probe["input_ids"][:first])
        self.suffix_ids = list(probe["input_ids"][last + 1 :])
        capacity = self.capacity
        if capacity < 1:
            raise ValueError(
                f"max_length={self.max_length} leaves no room next to {self.num_special_tokens} special tokens"
            )
        if self.stride is None:
            self.stride = capacity // 4
        if not 0 <= self.stride < capacity:
            raise ValueError(
                f"stride must be in [0, {capacity}) for windows of {capacity} sub-tokens, got {self.stride}"
            )
        if self.label_all_subtokens and self.label_names is None:
            raise ValueError("label_all_subtokens needs label_names (to turn B- into I- on continuation pieces)")
        self.continuation = b_to_i_table(self.label_names) if self.label_names is not None else None

    @property
    def num_special_tokens(self) -> int:
        return len(self.prefix_ids) + len(self.suffix_ids)

    @property
    def capacity(self) -> int:
        """Sub-tokens of text per window."""
        return self.max_length - self.num_special_tokens

    def __call__(self, batch: Mapping[str, list], indices: Sequence[int]) -> dict[str, list]:
        if self.label_column is not None and self.label_column not in batch:
            raise ValueError(f"label column {self.label_column!r} not in the dataset; it has {sorted(batch)}")
        missing = [c for c in self.word_columns if c not in batch]
        if missing:
            raise ValueError(f"word columns {missing} not in the dataset; it has {sorted(batch)}")
        encoding = self.tokenizer(
            batch[self.tokens_column], is_split_into_words=True, add_special_tokens=False, verbose=False
        )
        out: dict[str, list] = {name: [] for name in FEATURE_COLUMNS}
        if self.label_column is None:
            del out["labels"]
        out.update({name: [] for name in self.word_columns})
        for row, sentence_id in enumerate(indices):
            ids = encoding["input_ids"][row]
            words = encoding.word_ids(row)
            spans = window_spans(words, self.capacity, self.stride)
            heads = head_windows(words, spans)
            for k, (start, end) in enumerate(spans):
                window_words = words[start:end]
                is_head = [heads[w] == (k, start + i) for i, w in enumerate(window_words)]
                self._add_window(out, batch, row, sentence_id, k, ids[start:end], window_words, is_head, heads)
        return out

    def _add_window(self, out, batch, row, sentence_id, k, ids, words, is_head, heads) -> None:
        pre, post = [NO_WORD] * len(self.prefix_ids), [NO_WORD] * len(self.suffix_ids)
        out["input_ids"].append(self.prefix_ids + list(ids) + self.suffix_ids)
        out["attention_mask"].append([1] * (len(ids) + self.num_special_tokens))
        out["word_ids"].append(pre + list(words) + post)
        out["word_heads"].append([0] * len(pre) + [int(h) for h in is_head] + [0] * len(post))
        out["sentence_id"].append(sentence_id)
        out["window_id"].append(k)
        if self.label_column is not None:
            tags = batch[self.label_column][row]
            labels = []
            for word, head in zip(words, is_head):
                if head:
                    labels.append(tags[word])
                elif self.label_all_subtokens and heads[word][0] == k:
                    labels.append(self.continuation[tags[word]])
                else:
                    labels.append(IGNORE_INDEX)
            out["labels"].append([IGNORE_INDEX] * len(pre) + labels + [IGNORE_INDEX] * len(post))
        for name, fill in self.word_columns.items():
            values = batch[name][row]
            spread = [values[word] if head else fill for word, head in zip(words, is_head)]
            out[name].append([fill] * len(pre) + spread + [fill] * len(post))


def tokenize_dataset(
    dataset: Union[datasets.Dataset, datasets.DatasetDict],
    aligner: TokenAligner,
    batch_size: int = 1000,
    num_proc: Optional[int] = None,
    desc: str = "tokenising",
) -> Union[datasets.Dataset, datasets.DatasetDict]:
    """``dataset.map(aligner)`` replacing the word columns by the feature columns (one row per window).

    Each split of a ``DatasetDict`` is mapped on its own, so ``sentence_id`` indexes rows of that split.
    """
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict(
            {
                split: tokenize_dataset(ds, aligner, batch_size, num_proc, f"{desc} {split}")
                for split, ds in dataset.items()
            }
        )
    return dataset.map(
        aligner,
        batched=True,
        batch_size=batch_size,
        with_indices=True,
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=desc,
    )


def merge_windows(
    sentence_ids: Sequence[int],
    word_ids: Sequence[Sequence[int]],
    word_heads: Sequence[Sequence[int]],
    values: Sequence[Any],
    num_words: Sequence[int],
    fill: Any,
) -> list[np.ndarray]:
    """Per-token values of feature rows -> one array per sentence, one entry per word.

    ``values[r]`` holds row ``r``'s per-token values (``(seq, ...)``, padding past the row's
    length is ignored): predicted ids, logits or probabilities. Each word takes the value at its
    head token; a word without a head (it produced no sub-token) gets ``fill`` (give the O id,
    or a one-hot O distribution). Rows may come in any order. Raises if a word gets two heads or
    a row names a sentence or word out of range: features and ``num_words`` must belong together.
    """
    fill = np.asarray(fill)
    dtype = np.result_type(np.asarray(values[0]).dtype, fill.dtype) if len(values) else fill.dtype
    merged = [np.broadcast_to(fill, (n, *fill.shape)).astype(dtype) for n in num_words]
    seen = [np.zeros(n, dtype=bool) for n in num_words]
    for sentence, words, heads, row_values in zip(sentence_ids, word_ids, word_heads, values):
        sentence = int(sentence)
        if not 0 <= sentence < len(num_words):
            raise ValueError(f"feature row names sentence {sentence}, but num_words covers {len(num_words)} sentences")
        row_values = np.asarray(row_values)
        for position, (word, head) in enumerate(zip(words, heads)):
            if not head:
                continue
            word = int(word)
            if not 0 <= word < num_words[sentence] or seen[sentence][word]:
                problem = "a second head" if 0 <= word < num_words[sentence] else "out of range"
                raise ValueError(f"sentence {sentence}, word {word}: {problem} (num_words={num_words[sentence]})")
            seen[sentence][word] = True
            merged[sentence][word] = row_values[position]
    return merged


PROJECTED_TAGS = "projected_tags"  # the tag column a projection adds


def projection_row_ok(row: Mapping[str, Any]) -> bool:
    """False for rows a projection flagged (failed translation or projection): not training data."""
    if row.get("translation_error"):
        return False
    stats = row.get("projection_stats")
    return not (isinstance(stats, Mapping) and stats.get("error"))


def projected_rows(dataset: datasets.Dataset, text_column: str = "auto") -> datasets.Dataset:
    """A projection's output as ``tokens``/``ner_tags`` rows: what a teacher trains on, or a translate-train
    dev set is scored on. Flagged rows are left out (:func:`projection_row_ok`); the words are
    ``text_column`` (``translation_tokens`` after translate-train, ``tokens`` after translate-test) or, with
    ``"auto"``, the column whose lengths match ``projected_tags`` (:func:`choose_text_column`)."""
    data = dataset.filter(projection_row_ok)
    words = choose_text_column(data, text_column)
    data = data.select_columns([words, PROJECTED_TAGS])
    return data.rename_columns({**({words: "tokens"} if words != "tokens" else {}), PROJECTED_TAGS: "ner_tags"})


def choose_text_column(dataset: datasets.Dataset, requested: str = "auto") -> str:
    """The words column: ``requested``, or the column ``projected_tags`` belong to, or ``tokens``."""
    if requested != "auto":
        if requested not in dataset.column_names:
            raise ValueError(f"--text_column {requested!r} not in the dataset; it has {dataset.column_names}")
        return requested
    if PROJECTED_TAGS not in dataset.column_names:
        if "tokens" not in dataset.column_names:
            raise ValueError(f"no 'tokens' column in the dataset (it has {dataset.column_names}): pass --text_column")
        return "tokens"
    tag_lengths = [len(t) for t in dataset[PROJECTED_TAGS]]
    fitting = [
        column
        for column in ("translation_tokens", "tokens")
        if column in dataset.column_names and [len(w) for w in dataset[column]] == tag_lengths
    ]
    if len(fitting) != 1:
        found = "both 'translation_tokens' and 'tokens'" if fitting else "no words column"
        raise ValueError(f"{found} match the lengths of projected_tags: pass --text_column")
    return fitting[0]


def row_matrices(
    dataset: datasets.Dataset, column: str, batch_size: int = 10_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A ``list<list<float>>`` column (one vector per word or token) as numpy, one Arrow batch at a time.

    Yields ``(vectors (n_items, width), lengths (n_rows,))`` per batch of rows: the column flattened in
    Arrow, never materialised as nested Python lists (teacher distributions of a large corpus).
    """
    for table in dataset.select_columns([column]).with_format("arrow").iter(batch_size):
        rows = table[column].combine_chunks()
        items = rows.flatten()
        values = items.flatten().to_numpy(zero_copy_only=False)
        width = values.size // len(items) if len(items) else 0
        yield values.reshape(len(items), width), np.diff(rows.offsets.to_numpy())


__all__ = [
    "FEATURE_COLUMNS",
    "IGNORE_INDEX",
    "NO_WORD",
    "PROJECTED_TAGS",
    "TokenAligner",
    "b_to_i_table",
    "choose_text_column",
    "projected_rows",
    "row_matrices",
    "projection_row_ok",
    "head_windows",
    "merge_windows",
    "tokenize_dataset",
    "window_spans",
]
