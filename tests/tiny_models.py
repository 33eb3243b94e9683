"""Tiny local models for tests: nothing is downloaded, everything is built from the test's own text.

Tests need real Hugging Face checkpoints (a folder that ``AutoModel``/``AutoTokenizer``/
``AutoModelForTokenClassification.from_pretrained`` load like a Hub id) but cannot reach the Hub.
These helpers train a small tokenizer on ``texts`` with the ``tokenizers`` library, wrap it in the
model family's own fast tokenizer class, build a randomly initialised 2-layer model and
``save_pretrained`` both into ``path``. Weights are seeded, so the same call gives the same folder
contents, and the global torch RNG is left untouched.

* ``build_tiny_bert``: WordPiece (``##`` continuation pieces, cased) + ``BertConfig``.
* ``build_tiny_xlmr``: Unigram with SentencePiece-style ``▁`` word starts + ``XLMRobertaConfig``.

Pass ``num_labels`` and/or ``id2label`` to get a ``*ForTokenClassification`` checkpoint (for
training and inference tests); otherwise the bare encoder (``BertModel``/``XLMRobertaModel``) is
saved. A small ``vocab_size`` (the default) makes most words split into several subwords, which
is what tests of subword handling want.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForTokenClassification,
    BertModel,
    BertTokenizerFast,
    PretrainedConfig,
    PreTrainedModel,
    XLMRobertaConfig,
    XLMRobertaForTokenClassification,
    XLMRobertaModel,
    XLMRobertaTokenizerFast,
)

MAX_LENGTH = 128  # tokenizer model_max_length; enough for test sentences, keeps position tables small
BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
XLMR_SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0-3 as in the real XLM-R; <mask> follows


def _label_maps(
    num_labels: Optional[int], id2label: Optional[Mapping[int, str]]
) -> Optional[tuple[dict[int, str], dict[str, int]]]:
    """``(id2label, label2id)`` for a token-classification head, or None for a bare encoder."""
    if id2label is None and num_labels is None:
        return None
    if id2label is None:
        id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    id2label = {int(i): str(label) for i, label in id2label.items()}
    if num_labels is not None and num_labels != len(id2label):
        raise ValueError(f"num_labels={num_labels} but id2label has {len(id2label)} labels")
    if sorted(id2label) != list(range(len(id2label))):
        raise ValueError(f"id2label keys must be 0..{len(id2label) - 1}, got {sorted(id2label)}")
    return id2label, {label: i for i, label in id2label.items()}


def _save_model(
    path: str,
    config: PretrainedConfig,
    encoder_class: type[PreTrainedModel],
    tagger_class: type[PreTrainedModel],
    labels: Optional[tuple[dict[int, str], dict[str, int]]],
    seed: int,
) -> None:
    """Build the encoder (or tagger, when ``labels`` are given) with seeded weights and save it."""
    if labels is not None:
        config.id2label, config.label2id = labels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = (tagger_class if labels is not None else encoder_class)(config)
    model.save_pretrained(path)


def _wordpiece_vocab(texts: Iterable[str], normalizer, pre_tokenizer, vocab_size: int) -> dict[str, int]:
    """A WordPiece vocabulary built deterministically (the ``tokenizers`` trainer breaks ties by hash
    order, so its vocabulary changes from process to process).

    Every character, alone and as a ``##`` continuation, so no word is unknown; then the most
    frequent words, word-initial pieces of 2-3 characters and ``##`` pieces of 2-3 characters,
    ties broken alphabetically, up to ``vocab_size``: rarer words split into several subwords,
    as tests of subword handling want.
    """
    from collections import Counter

    words = [w for text in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]
    chars = sorted({c for w in words for c in w})
    pieces: Counter = Counter()
    for w in words:
        pieces[w] += 1
        for n in (2, 3):
            if len(w) > n:
                pieces[w[:n]] += 1
                pieces["##" + w[-n:]] += 1
    ordered = list(BERT_SPECIAL) + chars + ["##" + c for c in chars]
    ordered += [p for p, _ in sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0])) if p not in set(ordered)]
    return {
        piece: i
        for i, piece in enumerate(dict.fromkeys(ordered[: max(vocab_size, 2 * len(chars) + len(BERT_SPECIAL))]))
    }


def build_tiny_bert(
    path: str,
    texts: Iterable[str],
    num_labels: Optional[int] = None,
    id2label: Optional[Mapping[int, str]] = None,
    *,
    vocab_size: int = 200,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
) -> str:
    """Build a cased WordPiece tokenizer from ``texts`` and save it with a tiny seeded BERT into ``path``.

    The tokenizer pipeline is the one ``BertTokenizerFast`` itself builds (BERT normalizer without
    lowercasing, BERT pre-tokenizer, ``[CLS] A [SEP]`` template), so reloading it with
    ``AutoTokenizer`` gives the same tokens whichever transformers version rebuilds it.
    Returns ``path``.
    """
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    vocab = _wordpiece_vocab(texts, normalizer, pre_tokenizer, vocab_size)
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=False, model_max_length=MAX_LENGTH).save_pretrained(
        path
    )
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=MAX_LENGTH,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
    )
    _save_model(path, config, BertModel, BertForTokenClassification, _label_maps(num_labels, id2label), seed)
    return path


def build_tiny_xlmr(
    path: str,
    texts: Iterable[str],
    num_labels: Optional[int] = None,
    id2label: Optional[Mapping[int, str]] = None,
    *,
    vocab_size: int = 200,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
) -> str:
    """Train a Unigram (SentencePiece-style) tokenizer on ``texts`` and save it with a tiny seeded XLM-R.

    Words start with ``▁`` (Metaspace, always prepended) as in the real XLM-R, and the pipeline
    matches the one ``XLMRobertaTokenizerFast`` builds, so ``AutoTokenizer`` reloads it unchanged.
    Returns ``path``.
    """
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.train_from_iterator(
        list(texts),
        trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=XLMR_SPECIAL, unk_token="<unk>"),
    )
    bos_id, eos_id = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos_id), ("</s>", eos_id)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    XLMRobertaTokenizerFast(tokenizer_object=tokenizer, model_max_length=MAX_LENGTH).save_pretrained(path)
    config = XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=MAX_LENGTH + 2,  # RoBERTa positions start after the padding index
        pad_token_id=tokenizer.token_to_id("<pad>"),
        bos_token_id=bos_id,
        eos_token_id=eos_id,
    )
    _save_model(
        path, config, XLMRobertaModel, XLMRobertaForTokenClassification, _label_maps(num_labels, id2label), seed
    )
    return path


__all__ = ["build_tiny_bert", "build_tiny_xlmr"]
