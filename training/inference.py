"""The one inference core: load a token classifier, and tag words with it.

Every word-level prediction in xner goes through here: the ``Tag`` transform of translate-test,
teacher probabilities, ``xner evaluate``, the per-epoch evaluation of teachers and students, and
``xner predict``. So they agree, to float rounding, on the same model and sentences.

* :func:`load_tokenizer`: the model's fast tokenizer (a LoRA adapter's, or its base model's when
  the adapter folder has none), with ``add_prefix_space`` for byte-level BPE models (RoBERTa,
  GPT-2 style), which otherwise tokenise a pre-split word without its leading space.
* :func:`load_token_classifier`: ``(model, tokenizer, labels)`` from a folder or a Hub repo id, a
  full model or a peft LoRA adapter with its saved classifier head. Labels come from the config's
  ``id2label``; no index is assumed for ``O``. A checkpoint without a trained token-classification
  head (placeholder ``LABEL_0, LABEL_1, ...`` labels, no classifier weights, an adapter that did
  not save its head) is a :class:`~dataset_builders.errors.UserError`: tagging with a random head
  would "work" and be silently wrong.
* :class:`WordTagger`: words -> per-word probabilities (float32) and tags. Sentences become
  windowed sub-token features through :class:`training.features.TokenAligner` (overlapping
  windows when a sentence exceeds the model's length, each word headed by its first sub-token in
  its most central window), windows run batched and sorted by length under
  ``torch.inference_mode``, and :func:`training.features.merge_windows` puts them back per word.
* :func:`predict_word_probabilities`: the same over an Accelerate-prepared dataloader, gathered
  with ``gather_for_metrics`` (distributed evaluation).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch

from dataset_builders.errors import UserError
from dataset_builders.schemes import OUTSIDE
from training.collate import TokenCollator
from training.devices import fork_safe_threads
from training.features import TokenAligner, merge_windows

# Byte-level BPE tokenizers need add_prefix_space=True to tokenise pre-split words.
PREFIX_SPACE_MODEL_TYPES = frozenset({"bart", "bloom", "deberta", "gpt2", "longformer", "roberta"})
MODEL_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
FEATURE_KEYS = ("input_ids", "attention_mask", "sentence_id", "word_ids", "word_heads")
Token = Union[str, bool, None]


# ------------------------------------------------------------------------------------- locating


def _looks_like_local_path(name: str) -> bool:
    """Whether ``name`` can only be a file-system path (never a valid Hub repo id)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.startswith(("/", ".", "~")) or name.endswith(("/", os.sep)):
        return True
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def resolve_model_dir(path_or_repo: str, revision: Optional[str] = None, token: Token = None) -> str:
    """A local folder as it is; a Hub repo id downloaded (or found in the cache when offline).

    A path that does not exist is reported as a missing folder, not as a bad Hub repo id.
    """
    name = os.fspath(path_or_repo)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise UserError(f"model {name}: is a file, not a model folder")
    if _looks_like_local_path(name):
        raise UserError(f"model {name}: no such folder")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id=name, revision=revision, token=token)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"model {name}: no local folder of that name, and not a Hub repo that could be fetched ({first})"
        ) from err


def _students():
    """:mod:`training.students` (adapters), imported when used: it imports teacher_probs, which imports this module."""
    from training import students

    return students


def _is_adapter(folder: str) -> bool:
    return _students().is_adapter(folder)


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _adapter_config(folder: str) -> dict:
    return _read_json(os.path.join(folder, _students().ADAPTER_CONFIG))


def _adapter_base(folder: str) -> str:
    return _adapter_config(folder)["base_model_name_or_path"]


# ------------------------------------------------------------------------------------- labels


def labels_of(config) -> list[str]:
    """Label names in id order from a transformers config (``id2label``), nothing assumed."""
    id2label = {int(i): str(label) for i, label in config.id2label.items()}
    if sorted(id2label) != list(range(len(id2label))):
        raise ValueError(f"id2label keys must be 0..{len(id2label) - 1}, got {sorted(id2label)}")
    return [id2label[i] for i in range(len(id2label))]


def model_labels(model: torch.nn.Module) -> list[str]:
    """Label names of a loaded token classifier (a peft wrapper's base model's)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return labels_of(inner.config)


def has_trained_labels(labels: Sequence[str]) -> bool:
    """False for a bare encoder's placeholder labels (``LABEL_0``, ``LABEL_1``, ...)."""
    return any(label != f"LABEL_{i}" for i, label in enumerate(labels))


def check_tagger_labels(labels: Sequence[str], name: str) -> list[str]:
    """The labels of a token classifier that can tag: trained (not placeholders), with an ``O``."""
    labels = list(labels)
    if not has_trained_labels(labels):
        raise UserError(
            f"model {name}: has no trained token-classification head (its labels are the placeholders "
            f"{labels}); give a model fine-tuned for NER (xner train-teacher) or a student saved by xner"
        )
    if OUTSIDE not in labels:
        raise UserError(f"model {name}: its labels {labels} have no {OUTSIDE!r} (an IOB2 tagger is needed)")
    return labels


def read_labels(
    path_or_repo: str, *, revision: Optional[str] = None, token: Token = None, name: Optional[str] = None
) -> list[str]:
    """A token classifier's label names from its config alone (no weights loaded), checked as
    :func:`check_tagger_labels`. ``name``: how errors call the model (default: ``path_or_repo``)."""
    from transformers import AutoConfig

    name = name or os.fspath(path_or_repo)
    path = os.path.expanduser(os.fspath(path_or_repo))
    if not os.path.isdir(path):
        if os.path.exists(path) or _looks_like_local_path(path):
            resolve_model_dir(path)  # raises the missing-folder error
        try:
            config = AutoConfig.from_pretrained(path, revision=revision, token=token)
        except OSError as err:
            raise UserError(
                f"model {name}: no local folder of that name, and no Hub config could be read ({err})"
            ) from err
    elif _is_adapter(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise UserError(
            f"model {name}: an adapter folder without the config.json holding its labels (save it with save_student)"
        )
    else:
        config = AutoConfig.from_pretrained(path)
    return check_tagger_labels(labels_of(config), name)


# ------------------------------------------------------------------------------------- loading


def load_tokenizer(path_or_repo: str, *, revision: Optional[str] = None, token: Token = None):
    """The fast tokenizer of a model folder or Hub id (an adapter's base model's when it has none).

    ``add_prefix_space`` is set for byte-level BPE models (:data:`PREFIX_SPACE_MODEL_TYPES`), so a
    pre-split word is tokenised as it is inside a sentence. Errors: not fast, no padding token.
    """
    from transformers import AutoConfig, AutoTokenizer

    name = os.fspath(path_or_repo)
    path = os.path.expanduser(name)
    hub = {"revision": revision, "token": token}
    if os.path.isdir(path):
        source = config_source = path
        hub = {}
        if _is_adapter(path):
            base = _adapter_base(path)
            if not any(os.path.isfile(os.path.join(path, f)) for f in TOKENIZER_FILES):
                source = base
            if not os.path.isfile(os.path.join(path, "config.json")):
                config_source = base
    elif os.path.exists(path) or _looks_like_local_path(name):
        resolve_model_dir(name)  # raises the missing-folder error
    else:
        source = config_source = name
    model_type = getattr(AutoConfig.from_pretrained(config_source, **hub), "model_type", None)
    extra = {"add_prefix_space": True} if model_type in PREFIX_SPACE_MODEL_TYPES else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **hub, **extra)
    if not tokenizer.is_fast:
        raise UserError(f"model {name}: its tokenizer is not a fast tokenizer (word alignment needs word_ids())")
    if tokenizer.pad_token_id is None:
        raise UserError(f"model {name}: its tokenizer has no padding token")
    return tokenizer


def _head_missing(model: torch.nn.Module, missing_keys: Iterable[str]) -> list[str]:
    """Missing weights outside the encoder: the head was never trained (freshly initialised)."""
    prefix = model.base_model_prefix + "."
    return sorted(k for k in missing_keys if not k.startswith(prefix))


def load_token_classifier(
    path_or_repo: str, *, revision: Optional[str] = None, token: Token = None, device: Optional[str] = None
) -> tuple[torch.nn.Module, Any, list[str]]:
    """``(model in eval mode, fast tokenizer, label names in id order)`` of a trained token classifier.

    A folder or a Hub repo id (downloaded); a full model or a peft LoRA adapter (with the
    ``config.json`` holding its labels and the head in ``modules_to_save``, as
    :func:`training.students.save_student` writes it). Raises :class:`UserError` for a missing
    folder, an unreachable repo, or a checkpoint without a trained token-classification head.
    """
    from transformers import AutoModelForTokenClassification

    name = os.fspath(path_or_repo)
    target = check_device(device)  # before any weights are read
    folder = resolve_model_dir(name, revision, token)
    labels = read_labels(folder, name=name)
    try:
        if _is_adapter(folder):
            if not _adapter_config(folder).get("modules_to_save"):
                raise UserError(f"model {name}: the adapter was saved without its classifier head (modules_to_save)")
            model = _students().load_student(folder)
        else:
            model, info = AutoModelForTokenClassification.from_pretrained(folder, output_loading_info=True)
            missing = _head_missing(model, info.get("missing_keys", ()))
            if missing:
                raise UserError(f"model {name}: has no trained token-classification head (missing weights {missing})")
    except OSError as err:  # no or unreadable weight files
        raise UserError(
            f"model {name}: cannot load its weights ({str(err).splitlines()[0] if str(err) else err!r})"
        ) from err
    tokenizer = load_tokenizer(folder)
    if target is not None:
        model.to(target)
    return model.eval(), tokenizer, labels


def check_device(device: Optional[str]) -> Optional[torch.device]:
    """``device`` as a torch device, or a :class:`UserError` naming it when it is malformed or absent here."""
    if device is None:
        return None
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UserError(f"--device {device!r} is not a torch device ({err})") from None
    counts = {"cuda": torch.cuda.device_count, "mps": lambda: int(torch.backends.mps.is_available())}
    available = counts.get(target.type, lambda: None)()
    if available is not None and (available == 0 or (target.index or 0) >= available):
        raise UserError(f"--device {device!r}: this machine has {available} {target.type} device(s)")
    return target


def default_max_length(tokenizer, model: torch.nn.Module) -> int:
    """Tokens per window: the tokenizer's limit, never more than the model's position table (512 at most)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = inner.config
    positions = getattr(config, "max_position_embeddings", None) or 512
    if config.model_type in ("roberta", "xlm-roberta", "camembert", "longformer"):
        positions -= (config.pad_token_id or 0) + 1  # their positions start after the padding index
    limit = tokenizer.model_max_length
    limit = int(limit) if limit and limit < 100_000 else 512
    return min(limit, positions, 512)


# ------------------------------------------------------------------------------------- tagging

Gather = Callable[[tuple], tuple]


def tag_batches(
    model: torch.nn.Module,
    batches: Iterable[Any],
    num_words: Sequence[int],
    *,
    outside_id: int,
    gather: Optional[Gather] = None,
    model_input_names: Sequence[str] = MODEL_INPUT_NAMES,
) -> list[np.ndarray]:
    """Collated feature batches -> one float32 ``(words, labels)`` probability array per sentence.

    Each batch holds ``input_ids``/``attention_mask`` and the feature columns ``sentence_id``,
    ``word_ids``, ``word_heads`` (any order of rows and sentences). ``gather`` (distributed runs)
    maps ``(sentence_id, word_ids, word_heads, probabilities)`` to the same, gathered from every
    process. A word without a sub-token gets probability 1 on ``outside_id``.
    """
    outside = np.eye(outside_id + 1, dtype=np.float32)[outside_id]
    return _per_word(
        model,
        batches,
        num_words,
        lambda outputs: outputs.logits.float().softmax(-1),
        lambda size: np.eye(size, dtype=np.float32)[outside_id] if size else outside,
        gather=gather,
        model_input_names=model_input_names,
    )


def _per_word(
    model: torch.nn.Module,
    batches: Iterable[Any],
    num_words: Sequence[int],
    per_token: Callable[[Any], torch.Tensor],
    fill: Callable[[int], np.ndarray],
    *,
    gather: Optional[Gather] = None,
    model_input_names: Sequence[str] = MODEL_INPUT_NAMES,
    hidden_states: bool = False,
) -> list[np.ndarray]:
    """The one inference loop: ``per_token(model outputs)`` ``(batch, seq, d)`` of every window, taken at
    each word's head sub-token and merged per sentence; ``fill(d)`` for a word without a sub-token."""
    fork_safe_threads()  # in a forked datasets.map worker, torch must run single-threaded
    model.eval()
    device = next(model.parameters()).device
    sentence_ids: list[int] = []
    word_ids: list = []
    word_heads: list = []
    values: list = []
    size = 0
    extra = {"output_hidden_states": True} if hidden_states else {}
    with torch.inference_mode():
        for batch in batches:
            inputs = {k: batch[k].to(device) for k in model_input_names if k in batch}
            tokens = per_token(model(**inputs, **extra))
            columns = (batch["sentence_id"], batch["word_ids"], batch["word_heads"], tokens)
            if gather is not None:
                columns = gather(columns)
            sids, wids, heads, tokens = columns
            size = tokens.shape[-1]
            sentence_ids += sids.tolist()
            word_ids += wids.cpu().numpy().tolist()
            word_heads += heads.cpu().numpy().tolist()
            values += list(tokens.cpu().numpy())
    merged = merge_windows(sentence_ids, word_ids, word_heads, values, num_words, fill(size))
    return [m.astype(np.float32, copy=False) for m in merged]


def predict_word_probabilities(
    model: torch.nn.Module,
    dataloader,
    accelerator,
    num_words: Sequence[int],
    *,
    outside_id: int,
    model_input_names: Sequence[str] = MODEL_INPUT_NAMES,
) -> list[np.ndarray]:
    """:func:`tag_batches` over an ``accelerator.prepare``-d dataloader of feature rows, on every process.

    Rows are padded across processes and gathered with ``gather_for_metrics`` (which drops the
    samples added to even out the last batches), so every process gets every sentence.
    """
    from tqdm.auto import tqdm

    def gather(columns: tuple) -> tuple:
        sentence_id, word_ids, word_heads, probs = columns
        padded = (
            accelerator.pad_across_processes(word_ids, dim=1, pad_index=-1),
            accelerator.pad_across_processes(word_heads, dim=1, pad_index=0),
            accelerator.pad_across_processes(probs, dim=1, pad_index=0),
        )
        return accelerator.gather_for_metrics((sentence_id, *padded))

    batches = tqdm(dataloader, desc="predicting", disable=not accelerator.is_local_main_process, leave=False)
    return tag_batches(
        model, batches, num_words, outside_id=outside_id, gather=gather, model_input_names=model_input_names
    )


def tags_of(probabilities: Sequence[np.ndarray], labels: Sequence[str]) -> list[list[str]]:
    """The argmax label name of every word."""
    return [[labels[int(i)] for i in p.argmax(-1)] if len(p) else [] for p in probabilities]


class WordPredictions(NamedTuple):
    probabilities: list[np.ndarray]  # per sentence, float32 (words, labels)
    tags: list[list[str]]  # per sentence, one label name per word


class WordTagger:
    """Tag pre-split sentences with a loaded token classifier, word by word (first sub-token).

    ``batch_size``: windows per forward pass; ``max_length``/``stride``: window size (default:
    :func:`default_max_length`) and overlap (default: a quarter of the window), as
    :class:`training.features.TokenAligner` takes them.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        labels: Optional[Sequence[str]] = None,
        *,
        batch_size: int = 32,
        max_length: Optional[int] = None,
        stride: Optional[int] = None,
    ):
        if batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.labels = list(labels) if labels is not None else model_labels(model)
        self.outside_id = self.labels.index(OUTSIDE) if OUTSIDE in self.labels else 0
        self.batch_size = batch_size
        length = max_length or default_max_length(tokenizer, model)
        self.aligner = TokenAligner(tokenizer, length, stride, label_column=None)
        self.collator = TokenCollator(tokenizer.pad_token_id)

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo: str,
        *,
        revision: Optional[str] = None,
        token: Token = None,
        device: Optional[str] = None,
        **kwargs: Any,
    ) -> "WordTagger":
        model, tokenizer, labels = load_token_classifier(path_or_repo, revision=revision, token=token, device=device)
        return cls(model, tokenizer, labels, **kwargs)

    def batches(self, sentences: Sequence[Sequence[str]]) -> list[dict[str, torch.Tensor]]:
        """Collated windows of ``sentences``, shortest first (little padding)."""
        features = self.aligner({"tokens": [list(s) for s in sentences]}, range(len(sentences)))
        order = sorted(range(len(features["input_ids"])), key=lambda r: len(features["input_ids"][r]))
        rows = [{k: features[k][r] for k in FEATURE_KEYS} for r in order]
        return [self.collator(rows[i : i + self.batch_size]) for i in range(0, len(rows), self.batch_size)]

    def word_probabilities(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One float32 ``(words, labels)`` array per sentence (label order: :attr:`labels`)."""
        if not len(sentences):
            return []
        num_words = [len(s) for s in sentences]
        return tag_batches(self.model, self.batches(sentences), num_words, outside_id=self.outside_id)

    def __call__(self, sentences: Sequence[Sequence[str]]) -> WordPredictions:
        probabilities = self.word_probabilities(sentences)
        return WordPredictions(probabilities, tags_of(probabilities, self.labels))

    def word_representations(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """:func:`word_representations` of this tagger's model, through its own windows and batches."""
        return word_representations(self.model, self.batches(sentences), [len(s) for s in sentences])

    def sentence_vectors(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """:func:`sentence_vectors` of :meth:`word_representations`: one row per sentence."""
        return sentence_vectors(self.word_representations(sentences))


def word_representations(
    model: torch.nn.Module,
    batches: Iterable[Any],
    num_words: Sequence[int],
    *,
    model_input_names: Sequence[str] = MODEL_INPUT_NAMES,
) -> list[np.ndarray]:
    """Collated feature batches -> one float32 ``(words, hidden)`` array per sentence: the last hidden state
    at each word's head sub-token (the position it is tagged at), merged across windows like
    :func:`tag_batches`. A word without a sub-token gets zeros. Used for neighbour denoising
    (:mod:`training.denoise`) and sentence vectors (:mod:`training.selection`)."""
    return _per_word(
        model,
        batches,
        num_words,
        lambda outputs: outputs.hidden_states[-1].float(),
        lambda size: np.zeros(size, dtype=np.float32),
        model_input_names=model_input_names,
        hidden_states=True,
    )


def sentence_vectors(word_vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Mean-pooled sentence vectors ``(sentences, hidden)`` from per-word vectors (an empty sentence: zeros)."""
    dim = next((v.shape[-1] for v in word_vectors if v.ndim == 2), 0)
    rows = [v.mean(0) if len(v) else np.zeros(dim, dtype=np.float32) for v in word_vectors]
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)


__all__ = [
    "MODEL_INPUT_NAMES",
    "PREFIX_SPACE_MODEL_TYPES",
    "WordPredictions",
    "WordTagger",
    "check_tagger_labels",
    "default_max_length",
    "has_trained_labels",
    "sentence_vectors",
    "word_representations",
    "labels_of",
    "load_token_classifier",
    "load_tokenizer",
    "model_labels",
    "predict_word_probabilities",
    "read_labels",
    "resolve_model_dir",
    "tag_batches",
    "tags_of",
]
