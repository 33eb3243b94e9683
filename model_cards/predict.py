"""Word-level entities from a trained student (full model or LoRA adapter), local or on the Hub.

``predict(model_or_repo, texts_or_words)``: raw text is split into words with
:func:`projection.word_split.split_words_with_offsets` (the CoNLL conventions the training data
follows); each word is tagged by its first sub-token, as the model was trained and evaluated
(:class:`training.features.TokenAligner` windows long sentences, :func:`training.features.word_probabilities`
maps the sub-token outputs back to words); entities are the IOB2 spans of the word tags.

A model is a folder (``save_student`` output: a full model or an adapter with its ``config.json``
and tokenizer) or a Hub repo id, downloaded with ``snapshot_download`` and loaded with
:func:`training.students.load_student` (``AutoPeftModelForTokenClassification`` for adapters).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np

Words = Sequence[str]
Inputs = Union[str, Sequence[str], Sequence[Words]]


def resolve_model_dir(model_or_repo: str, revision: Optional[str] = None, token: Union[str, bool, None] = None) -> str:
    """A local folder as it is; a Hub repo id downloaded (or found in the cache when offline)."""
    path = os.path.expanduser(os.fspath(model_or_repo))
    if os.path.isdir(path):
        return path
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id=model_or_repo, revision=revision, token=token)


@dataclass
class Tagger:
    """A loaded token classifier and its tokenizer, tagging words by their first sub-token."""

    model: Any
    tokenizer: Any
    batch_size: int = 16
    max_length: Optional[int] = None
    stride: Optional[int] = None

    @classmethod
    def load(cls, model_or_repo: str, *, revision: Optional[str] = None, token: Union[str, bool, None] = None,
             device: Optional[str] = None, **kwargs: Any) -> "Tagger":
        from transformers import AutoTokenizer

        from training.students import is_adapter, load_student
        from training.teacher import PREFIX_SPACE_MODEL_TYPES

        folder = resolve_model_dir(model_or_repo, revision, token)
        model = load_student(folder)
        config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
        extra = {"add_prefix_space": True} if config.model_type in PREFIX_SPACE_MODEL_TYPES else {}
        has_tokenizer = any(os.path.isfile(os.path.join(folder, name))
                            for name in ("tokenizer.json", "tokenizer_config.json"))
        if not has_tokenizer and is_adapter(folder):
            import json

            with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as handle:
                tokenizer_source = json.load(handle)["base_model_name_or_path"]
        else:
            tokenizer_source = folder
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, **extra)
        if device is not None:
            model.to(device)
        model.eval()
        return cls(model, tokenizer, **kwargs)

    @property
    def id2label(self) -> dict[int, str]:
        config = self.model.get_base_model().config if hasattr(self.model, "get_base_model") else self.model.config
        return {int(i): label for i, label in config.id2label.items()}

    def word_probabilities(self, sentences: Sequence[Words]) -> list[np.ndarray]:
        """``(words, labels)`` probabilities per sentence, each word from its first sub-token."""
        import torch

        from training.collate import TokenCollator
        from training.features import TokenAligner, word_probabilities

        id2label = self.id2label
        outside = next((i for i, name in id2label.items() if name == "O"), 0)
        out: list[Optional[np.ndarray]] = [None] * len(sentences)
        todo = [k for k, words in enumerate(sentences) if len(words)]
        for k, words in enumerate(sentences):
            if not len(words):
                out[k] = np.zeros((0, len(id2label)))
        if not todo:
            return out  # type: ignore[return-value]
        aligner = TokenAligner(self.tokenizer, max_length=self.max_length, stride=self.stride, label_column=None)
        features = aligner({"tokens": [list(sentences[k]) for k in todo]}, list(range(len(todo))))
        rows = [dict(zip(features, values)) for values in zip(*features.values())]
        collator = TokenCollator(self.tokenizer.pad_token_id)
        device = next(self.model.parameters()).device
        inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in rows[0]]
        logits: list[np.ndarray] = []
        with torch.no_grad():
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start:start + self.batch_size]
                batch = collator([{name: row[name] for name in inputs} for row in chunk])
                output = self.model(**{name: t.to(device) for name, t in batch.items()}).logits.float().cpu().numpy()
                logits += [output[i, :len(row["input_ids"])] for i, row in enumerate(chunk)]
        probabilities = word_probabilities(features, logits, [len(sentences[k]) for k in todo], outside_id=outside)
        for k, p in zip(todo, probabilities):
            out[k] = p
        return out  # type: ignore[return-value]

    def tag(self, sentences: Sequence[Words]) -> list[list[dict]]:
        """Entities ``{start, end, label, score}`` (word indices, end exclusive) per sentence."""
        from dataset_builders.schemes import tags_to_spans

        id2label = self.id2label
        results = []
        for probabilities in self.word_probabilities(sentences):
            ids = probabilities.argmax(-1) if len(probabilities) else []
            tags = [id2label[int(i)] for i in ids]
            entities = []
            for span in tags_to_spans(tags):
                score = float(probabilities[span["start"]:span["end"]].max(-1).mean())
                entities.append({**span, "score": round(score, 4)})
            results.append(entities)
        return results

    def __call__(self, texts_or_words: Inputs, lang: Optional[str] = None):
        return predict(self, texts_or_words, lang=lang)


def predict(model_or_repo: Union[str, Tagger], texts_or_words: Inputs, *, lang: Optional[str] = None,
            revision: Optional[str] = None, token: Union[str, bool, None] = None, batch_size: int = 16,
            device: Optional[str] = None) -> Union[dict, list[dict]]:
    """Word-level entities of raw texts or pre-split sentences.

    ``texts_or_words``: a string (one result), a list of strings, or a list of word lists. Each
    result is ``{"words": [...], "entities": [{"start", "end", "label", "text", "score"}]}`` with
    word indices (``end`` exclusive); for raw text also ``"text"`` and each entity's
    ``start_char``/``end_char`` in it. ``lang`` selects the word-splitting rules (ISO 639-1).
    """
    from projection.word_split import split_words_with_offsets

    tagger = model_or_repo if isinstance(model_or_repo, Tagger) else Tagger.load(
        model_or_repo, revision=revision, token=token, device=device, batch_size=batch_size)
    single = isinstance(texts_or_words, str)
    items = [texts_or_words] if single else list(texts_or_words)
    raw = [isinstance(item, str) for item in items]
    if any(raw) and not all(raw):
        raise TypeError("give raw texts (strings) or pre-split sentences (lists of words), not a mix")
    offsets = [split_words_with_offsets(item, lang) if is_raw else None for item, is_raw in zip(items, raw)]
    sentences = [[w for w, _, _ in o] if o is not None else list(item) for item, o in zip(items, offsets)]
    results = []
    for item, words, spans, entities in zip(items, sentences, offsets, tagger.tag(sentences)):
        result: dict[str, Any] = {}
        if spans is not None:
            result["text"] = item
        result["words"] = words
        for entity in entities:
            if spans is not None:
                entity["start_char"], entity["end_char"] = spans[entity["start"]][1], spans[entity["end"] - 1][2]
                entity["text"] = item[entity["start_char"]:entity["end_char"]]
            else:
                entity["text"] = " ".join(words[entity["start"]:entity["end"]])
        result["entities"] = [{k: e[k] for k in ("start", "end", "label", "text", "score", "start_char", "end_char")
                               if k in e} for e in entities]
        results.append(result)
    return results[0] if single else results


__all__ = ["Tagger", "predict", "resolve_model_dir"]
