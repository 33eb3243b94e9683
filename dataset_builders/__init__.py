"""Corpora in and out: CoNLL-style readers, known corpora, label schemes, statistics."""

from dataset_builders.conll import ConllFormatError, ConllNer, ConllNerConfig, read_conll
from dataset_builders.corpora import CORPORA, CorpusSpec, available_splits, corpus_spec, load_corpus
from dataset_builders.schemes import (
    CONLL,
    GERMEVAL,
    MASAKHANER,
    WIKIANN,
    LabelScheme,
    TagSequenceError,
    TypeMapping,
    iob1_to_iob2,
    spans_to_tags,
    tags_to_spans,
    validate_iob2,
)
from dataset_builders.stats import corpus_stats

__all__ = [
    "CONLL",
    "CORPORA",
    "ConllFormatError",
    "ConllNer",
    "ConllNerConfig",
    "CorpusSpec",
    "GERMEVAL",
    "LabelScheme",
    "MASAKHANER",
    "TagSequenceError",
    "TypeMapping",
    "WIKIANN",
    "available_splits",
    "corpus_spec",
    "corpus_stats",
    "iob1_to_iob2",
    "load_corpus",
    "read_conll",
    "spans_to_tags",
    "tags_to_spans",
    "validate_iob2",
]
