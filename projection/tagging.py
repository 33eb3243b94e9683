"""Tag words with a token-classification model (first sub-token of each word), as a map transform.

translate-test uses it to find the entities of the source-language translation. The words are
tagged by xner's one inference core, :class:`training.inference.WordTagger` (long sentences in
overlapping windows merged per word; a word that yields no sub-token at all is tagged O); labels
come from the model's config, whatever index ``O`` has.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import datasets
import numpy as np

from dataset_builders.schemes import tags_to_spans, validate_iob2
from projection.transforms import ENTITIES, MapTransform, rank_device
from training.inference import WordTagger, read_labels, tags_of


class Tag(MapTransform):
    """Label the words of ``tokens_column`` and write their entity spans to ``output_column``.

    ``type_map`` renames or drops (``None``) the model's entity types, e.g. ``{"MISC": None}``
    when the dataset's scheme has no MISC. Probabilities can be kept per word
    (``probs_column``) for NER-model scores in candidate matching.
    """

    description = "tag"
    uses_device = True

    def __init__(
        self,
        model_name_or_path: str,
        tokens_column: str = "translation_tokens",
        output_column: str = "source_entities",
        type_map: Optional[Mapping[str, Optional[str]]] = None,
        probs_column: Optional[str] = None,
        batch_size: int = 64,
        max_length: Optional[int] = None,
        device: Optional[str] = None,
    ):
        self.model_name_or_path = model_name_or_path
        self.tokens_column, self.output_column = tokens_column, output_column
        self.type_map = dict(type_map or {})
        self.probs_column = probs_column
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self.labels = read_labels(model_name_or_path)  # refuses a model without a trained head, up front
        self._tagger = None

    def __getstate__(self):
        return {**self.__dict__, "_tagger": None}

    @property
    def config(self) -> dict:
        return {"tagger": self.model_name_or_path, "type_map": self.type_map}

    def _load(self, device) -> WordTagger:
        if self._tagger is None:
            self._tagger = WordTagger.from_pretrained(
                self.model_name_or_path, batch_size=self.batch_size, max_length=self.max_length
            )
        if device is None:
            from accelerate import PartialState

            device = self.device or str(PartialState().device)
        self._tagger.model.to(device)
        return self._tagger

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    def output_features(self, features):
        out = {self.output_column: ENTITIES}
        if self.probs_column:
            out[self.probs_column] = datasets.List(datasets.List(datasets.Value("float32")))
        return out

    def predict_words(self, sentences: Sequence[Sequence[str]], device: Optional[str] = None) -> list[np.ndarray]:
        """Per-word label probabilities, one float32 ``(n_words, n_labels)`` array per sentence."""
        return self._load(device).word_probabilities(sentences)

    def __call__(self, batch, rank=None):
        sentences = batch[self.tokens_column]
        probs = self.predict_words(sentences, rank_device(rank))
        entities = []
        for word_tags in tags_of(probs, self.labels):
            tags = validate_iob2(word_tags, repair=True)
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
