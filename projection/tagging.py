"""Tag words with a token-classification model (first sub-token of each word), as a map transform.

translate-test uses it to find the entities of the source-language translation. Sentences longer
than the model's maximum length are cut into consecutive windows of whole words that fit, so no
word goes untagged; a word that yields no sub-token at all (a control character, say) is tagged O.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import datasets
import numpy as np

from dataset_builders.schemes import tags_to_spans, validate_iob2
from projection.transforms import ENTITIES, MapTransform, rank_device


def word_windows(subword_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Split words into consecutive ``[start, end)`` windows whose sub-tokens fit ``budget``.

    A single word longer than the budget gets a window of its own (its first sub-token, the one
    that is labelled, survives truncation).
    """
    windows, start, used = [], 0, 0
    for i, n in enumerate(subword_counts):
        if i > start and used + n > budget:
            windows.append((start, i))
            start, used = i, 0
        used += n
    if start < len(subword_counts) or not windows:
        windows.append((start, len(subword_counts)))
    return windows


class Tag(MapTransform):
    """Label the words of ``tokens_column`` and write their entity spans to ``output_column``.

    ``type_map`` renames or drops (``None``) the model's entity types, e.g. ``{"MISC": None}``
    when the dataset's scheme has no MISC. Probabilities can be kept per word
    (``probs_column``) for NER-model scores in candidate matching.
    """

    description = "tag"
    uses_device = True

    def __init__(self, model_name_or_path: str, tokens_column: str = "translation_tokens",
                 output_column: str = "source_entities", type_map: Optional[Mapping[str, Optional[str]]] = None,
                 probs_column: Optional[str] = None, batch_size: int = 64, max_length: Optional[int] = None,
                 device: Optional[str] = None):
        self.model_name_or_path = model_name_or_path
        self.tokens_column, self.output_column = tokens_column, output_column
        self.type_map = dict(type_map or {})
        self.probs_column = probs_column
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self._model = self._tokenizer = None

    def __getstate__(self):
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    @property
    def config(self) -> dict:
        return {"tagger": self.model_name_or_path, "type_map": self.type_map}

    def _load(self, device):
        if self._model is None:
            from transformers import AutoModelForTokenClassification, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path)
            self._model = AutoModelForTokenClassification.from_pretrained(self.model_name_or_path).eval()
            if not self._tokenizer.is_fast:
                raise ValueError(f"{self.model_name_or_path}: a fast tokenizer is needed (word_ids)")
        if device is None:
            from accelerate import PartialState

            device = self.device or str(PartialState().device)
        self._model.to(device)

    @property
    def label_names(self) -> list[str]:
        self._load(None)
        id2label = self._model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    def output_features(self, features):
        out = {self.output_column: ENTITIES}
        if self.probs_column:
            out[self.probs_column] = datasets.List(datasets.List(datasets.Value("float32")))
        return out

    def predict_words(self, sentences: Sequence[Sequence[str]], device: Optional[str] = None) -> list[np.ndarray]:
        """Per-word label probabilities, one ``(n_words, n_labels)`` array per sentence."""
        import torch

        self._load(device)
        tok, model = self._tokenizer, self._model
        limit = self.max_length or min(tok.model_max_length, getattr(model.config, "max_position_embeddings", 512))
        budget = limit - tok.num_special_tokens_to_add()
        n_labels = model.config.num_labels
        probs = [np.zeros((len(s), n_labels), dtype=np.float32) for s in sentences]
        for p in probs:
            p[:, 0] = 1.0  # words with no sub-token stay O (label 0 is O in every xner scheme)
        pieces = []  # (sentence, word offset, words)
        nonempty = [k for k, words in enumerate(sentences) if len(words)]
        counted = tok([list(sentences[k]) for k in nonempty], is_split_into_words=True, add_special_tokens=False)
        for row, k in enumerate(nonempty):
            words = sentences[k]
            counts = np.bincount([w for w in counted.word_ids(row) if w is not None], minlength=len(words))
            for a, b in word_windows(counts.tolist(), budget):
                pieces.append((k, a, list(words[a:b])))
        pieces.sort(key=lambda p: len(p[2]))  # similar lengths together: less padding
        for start in range(0, len(pieces), self.batch_size):
            chunk = pieces[start : start + self.batch_size]
            enc = tok([p[2] for p in chunk], is_split_into_words=True, truncation=True, max_length=limit,
                      padding=True, return_tensors="pt")
            with torch.inference_mode():
                logits = model(**{k: v.to(model.device) for k, v in enc.items()}).logits
            batch_probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
            for row, (k, offset, _) in enumerate(chunk):
                seen = set()
                for pos, w in enumerate(enc.word_ids(row)):
                    if w is not None and w not in seen:
                        seen.add(w)
                        probs[k][offset + w] = batch_probs[row, pos]
        return probs

    def __call__(self, batch, rank=None):
        sentences = batch[self.tokens_column]
        probs = self.predict_words(sentences, rank_device(rank))
        names = self.label_names
        if names[0] != "O":
            raise ValueError(f"{self.model_name_or_path}: label 0 must be 'O', the model has {names}")
        entities = []
        for p in probs:
            tags = validate_iob2([names[i] for i in p.argmax(-1)] if len(p) else [], repair=True)
            spans = []
            for span in tags_to_spans(tags):
                label = self.type_map.get(span["label"], span["label"])
                if label is not None:
                    spans.append({**span, "label": label})
            entities.append(spans)
        out = {self.output_column: entities}
        if self.probs_column:
            out[self.probs_column] = [p.tolist() for p in probs]
        return out
