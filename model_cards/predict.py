"""Word-level entities from a trained student (full model or LoRA adapter), local or on the Hub.

``predict(model_or_repo, texts_or_words)``: the user-facing face of xner's one inference core.
Raw text is split into words with :func:`projection.word_split.split_words_with_offsets` (the
CoNLL conventions the training data follows); the model is loaded and the words tagged by
:class:`training.inference.WordTagger` (first sub-token of each word, long sentences in
overlapping windows); entities are the IOB2 spans of the word tags, with character offsets.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from training.inference import WordTagger

Words = Sequence[str]
Inputs = Union[str, Sequence[str], Sequence[Words]]


def entities_of(tagger: WordTagger, sentences: Sequence[Words]) -> list[list[dict]]:
    """Entities ``{start, end, label, score}`` (word indices, end exclusive) per sentence.

    ``score``: the mean over the entity's words of their highest label probability.
    """
    from dataset_builders.schemes import tags_to_spans

    probabilities, tags = tagger(sentences)
    results = []
    for word_probs, word_tags in zip(probabilities, tags):
        entities = []
        for span in tags_to_spans(word_tags):
            score = float(word_probs[span["start"] : span["end"]].max(-1).mean())
            entities.append({**span, "score": round(score, 4)})
        results.append(entities)
    return results


def predict(
    model_or_repo: Union[str, WordTagger],
    texts_or_words: Inputs,
    *,
    lang: Optional[str] = None,
    revision: Optional[str] = None,
    token: Union[str, bool, None] = None,
    batch_size: int = 16,
    device: Optional[str] = None,
) -> Union[dict, list[dict]]:
    """Word-level entities of raw texts or pre-split sentences.

    ``texts_or_words``: a string (one result), a list of strings, or a list of word lists. Each
    result is ``{"words": [...], "entities": [{"start", "end", "label", "text", "score"}]}`` with
    word indices (``end`` exclusive); for raw text also ``"text"`` and each entity's
    ``start_char``/``end_char`` in it. ``lang`` selects the word-splitting rules (ISO 639-1).
    A blank text gives a result with no words and no entities.
    """
    from projection.word_split import split_words_with_offsets

    tagger = (
        model_or_repo
        if isinstance(model_or_repo, WordTagger)
        else WordTagger.from_pretrained(
            model_or_repo, revision=revision, token=token, device=device, batch_size=batch_size
        )
    )
    single = isinstance(texts_or_words, str)
    items = [texts_or_words] if single else list(texts_or_words)
    raw = [isinstance(item, str) for item in items]
    if any(raw) and not all(raw):
        raise TypeError("give raw texts (strings) or pre-split sentences (lists of words), not a mix")
    offsets = [split_words_with_offsets(item, lang) if is_raw else None for item, is_raw in zip(items, raw)]
    sentences = [[w for w, _, _ in o] if o is not None else list(item) for item, o in zip(items, offsets)]
    results = []
    for item, words, spans, entities in zip(items, sentences, offsets, entities_of(tagger, sentences)):
        result: dict[str, Any] = {}
        if spans is not None:
            result["text"] = item
        result["words"] = words
        for entity in entities:
            if spans is not None:
                entity["start_char"], entity["end_char"] = spans[entity["start"]][1], spans[entity["end"] - 1][2]
                entity["text"] = item[entity["start_char"] : entity["end_char"]]
            else:
                entity["text"] = " ".join(words[entity["start"] : entity["end"]])
        keys = ("start", "end", "label", "text", "score", "start_char", "end_char")
        result["entities"] = [{k: e[k] for k in keys if k in e} for e in entities]
        results.append(result)
    return results[0] if single else results


__all__ = ["entities_of", "predict"]
