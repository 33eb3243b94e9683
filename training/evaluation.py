"""Evaluate NER models on test sets: entity-level P/R/F1 per set and per type, and robustness in vs out of domain.

Runs as ``xner evaluate ...`` and as ``accelerate launch -m training.evaluation ...`` with the same
arguments::

    xner evaluate --model runs/teacher --model runs/soft-kl \\
        --test conll2002@es=in --test europarl-ner@es=out --type-map MISC=O --output-dir eval/

Models: any token classifier saved with ``save_pretrained`` or a LoRA student folder, loaded by
:func:`training.inference.load_token_classifier` (a model without a trained head is refused);
``--model NAME=PATH`` names it in the tables (default: the folder's name). Predictions are per
word, from each word's first sub-token, with long sentences cut into overlapping windows and
merged back, computed by xner's one inference core
(:func:`training.inference.predict_word_probabilities`) under an Accelerator (one process here,
several under ``accelerate launch``, gathered with ``gather_for_metrics``).

Test sets: ``NAME[:split][@lang][=in|out]``. NAME is a known corpus of ``dataset_builders``
(``conll2003``, ``conll2002``, ``europarl-ner``, ``masakhaner2``, ``wikiann``, ...; split default
``test``, or the corpus' only split), a dataset folder written by ``save_to_disk``, or a CoNLL
file (whitespace-separated, token first, IOB2 tag last). A test set is named ``NAME-lang`` in the
tables (``conll2002-es``), with ``:split`` appended when it is not ``test``.

Label sets. The model's entity types and the test set's must be the same, or be made the same
explicitly with ``--type-map TYPE=TARGET`` (TARGET a type, or ``O`` to drop it). Each entry
applies to *whichever side has that type*: the model's predictions and/or the gold tags, before
scoring; spans are mapped whole, so B-/I- stay consistent. A CoNLL model (PER ORG LOC MISC) on
MasakhaNER 2.0 (PER ORG LOC DATE) needs ``--type-map MISC=O DATE=O``: the model's MISC
predictions and the gold DATE entities both become O, and the scores are over PER, ORG, LOC. A
type left unmapped on one side only is an error listing both label sets and the fix. The map is
applied only to (model, test set) pairs whose type sets differ, so the same command still scores
CoNLL-2002 with MISC; ``--type-map-all`` applies it to every pair (all sets on the same types).
What was applied is recorded per result (``type_map``).

In or out of domain. A ``=in``/``=out`` marker decides for every model. Without one, a test
set from a known corpus is in domain when its corpus' domain (``corpus_spec(name).domain``,
e.g. news, parliament) equals the domain of the model's training corpus, read from the model
folder: ``results.json`` (``train_domain``, or ``data.domain``, or the corpus in
``data.corpus`` / ``train_corpus``, as ``xner train-teacher`` writes it), else ``config.json``
(``train_domain`` / ``train_corpus``). When neither is known the marker is required for the
robustness table (``--output-dir``), and the error says which pairs lack it.

Robustness: per model, the mean F1 over its in-domain sets, the mean over its out-of-domain sets,
and the drop (in-domain mean - out-of-domain mean; positive = worse out of domain). With
``--output-dir``: ``evaluation.json`` (every figure, per type included), ``robustness.json``,
``robustness.md`` (the Markdown table, F1 in %) and ``robustness.png`` (grouped bar chart,
out-of-domain bars hatched). Tables are printed on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import datasets
import torch
from accelerate import Accelerator

from dataset_builders.cli_flags import add_flag
from dataset_builders.conll import read_conll
from dataset_builders.corpora import CORPORA, corpus_spec, load_corpus
from dataset_builders.error_report import run_reporting_errors
from dataset_builders.errors import UserError
from dataset_builders.schemes import OUTSIDE, LabelScheme, TagSequenceError, TypeMapping, tags_to_spans
from training.arguments import non_negative_int, positive_int
from training.collate import TokenCollator
from training.features import PROJECTED_TAGS, TokenAligner, projected_rows, tokenize_dataset
from training.inference import default_max_length, load_token_classifier, read_labels
from training.loop import EvalSet, NerEvaluator
from training.outputs import OutputFolder, check_output_dir
from training.students import is_adapter

logger = logging.getLogger(__name__)

IN, OUT = "in", "out"
DEFAULT_SPLIT = "test"
TYPE_MAP_HELP = "TYPE=TARGET"
EVALUATION_FILE = "evaluation.json"


# ----------------------------------------------------------------------------------------- test sets


@dataclass(frozen=True)
class TestSpec:
    """A parsed ``--test NAME[:split][@lang][=in|out]``."""

    __test__ = False  # not a pytest class

    name: str
    split: Optional[str] = None
    lang: Optional[str] = None
    marker: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "TestSpec":
        """Parse from the right, so that a path may hold ``:``, ``@`` or ``=`` in its folders."""
        rest, marker = text, None
        head, sep, tail = rest.rpartition("=")
        if sep and tail in (IN, OUT):
            rest, marker = head, tail
        elif sep and "/" not in tail and not os.path.exists(text):
            raise ValueError(f"test set {text!r}: the domain marker must be '={IN}' or '={OUT}', got {'=' + tail!r}")
        if os.path.exists(rest) and rest not in CORPORA:
            return cls(rest, None, None, marker)  # a file or folder whose name holds '@' or ':'
        lang = split = None
        head, sep, tail = rest.rpartition("@")
        if sep and "/" not in tail:
            rest, lang = head, tail
        head, sep, tail = rest.rpartition(":")
        if sep and "/" not in tail:
            rest, split = head, tail
        if not rest or (lang is not None and not lang) or (split is not None and not split):
            raise ValueError(f"test set {text!r} is not NAME[:split][@lang][=in|out]")
        return cls(rest, split, lang, marker)

    def check(self) -> "TestSpec":
        """Fail now, before anything loads, on a NAME that is neither a known corpus nor an existing path."""
        if not self.is_path:
            corpus_spec(self.name)  # an unknown name: an error listing the known corpora
        return self

    @property
    def is_path(self) -> bool:
        return self.name not in CORPORA and self.name != "wikiann" and os.path.exists(self.name)

    @property
    def display_name(self) -> str:
        base = os.path.splitext(os.path.basename(os.path.normpath(self.name)))[0] if self.is_path else self.name
        if self.lang:
            base += f"-{self.lang}"
        if self.split and self.split != DEFAULT_SPLIT:
            base += f":{self.split}"
        return base


@dataclass
class TestSet:
    """A labelled evaluation set: ``tokens`` and ClassLabel ``ner_tags`` (IOB2).

    ``corpus``: the known corpus it comes from (its domain decides in/out by default);
    ``marker``: ``"in"``/``"out"`` to decide explicitly, for every model.
    """

    __test__ = False  # not a pytest class

    name: str
    dataset: datasets.Dataset
    corpus: Optional[str] = None
    marker: Optional[str] = None
    split: Optional[str] = None  # the split loaded, when read from a spec
    lang: Optional[str] = None

    def __post_init__(self):
        if self.marker not in (None, IN, OUT):
            raise ValueError(f"test set {self.name}: marker must be {IN!r}, {OUT!r} or None, got {self.marker!r}")
        for column in ("tokens", "ner_tags"):
            if column not in self.dataset.column_names:
                raise ValueError(f"test set {self.name} has no {column!r} column; it has {self.dataset.column_names}")
        if not isinstance(getattr(self.dataset.features["ner_tags"], "feature", None), datasets.ClassLabel):
            raise ValueError(f"test set {self.name}: ner_tags must be a sequence of ClassLabel")

    @property
    def label_names(self) -> list[str]:
        return list(self.dataset.features["ner_tags"].feature.names)

    @property
    def corpus_domain(self) -> Optional[str]:
        return corpus_spec(self.corpus).domain or None if self.corpus else None

    def references(self) -> list[list[str]]:
        names = self.label_names
        return [[names[i] for i in tags] for tags in self.dataset["ner_tags"]]


def load_test_set(
    spec: Union[str, TestSpec], data_dir: Optional[str] = None, max_samples: Optional[int] = None
) -> TestSet:
    """A :class:`TestSet` from ``NAME[:split][@lang][=in|out]`` (a known corpus, a saved dataset, `xner project`
    output -- its projected tags on the words they belong to, flagged rows left out -- or a CoNLL file)."""
    spec = TestSpec.parse(spec) if isinstance(spec, str) else spec
    corpus, split = None, spec.split
    if spec.is_path:
        if spec.lang:
            raise ValueError(f"test set {spec.name}: @lang applies to known corpora, not to files")
        if os.path.isdir(spec.name):
            data = datasets.load_from_disk(spec.name)
        else:
            data = read_conll({spec.split or DEFAULT_SPLIT: spec.name})
        if isinstance(data, datasets.Dataset):
            dataset = data
        else:
            split = spec.split or (DEFAULT_SPLIT if DEFAULT_SPLIT in data or len(data) != 1 else next(iter(data)))
            if split not in data:
                raise ValueError(f"test set {spec.name} has no split {split!r}; it has {list(data)}")
            dataset = data[split]
        if PROJECTED_TAGS in dataset.column_names:  # `xner project` output: a translate-train (or -test) dev set
            dataset = projected_rows(dataset)
    else:
        spec_info = corpus_spec(spec.name)  # unknown name: error listing the known corpora
        split = spec.split
        if split is None:
            split = (
                DEFAULT_SPLIT
                if DEFAULT_SPLIT in spec_info.files or len(spec_info.files) != 1
                else next(iter(spec_info.files))
            )
        dataset = load_corpus(spec.name, data_dir=data_dir, lang=spec.lang, splits=[split])[split]
        corpus = spec.name
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    return TestSet(spec.display_name, dataset, corpus=corpus, marker=spec.marker, split=split, lang=spec.lang)


# ---------------------------------------------------------------------------------------- label sets


def parse_type_map(
    entries: Optional[Union[str, Sequence[str], Mapping[str, Optional[str]]]], flag: str = "--type_map"
) -> dict[str, Optional[str]]:
    """The one type-map structure, ``{TYPE: TARGET or None}`` (None: to O), from any spelling users give.

    ``["MISC=O", "OTH=MISC"]`` (the command line's list form), ``"MISC=O,OTH=MISC"`` (one string,
    comma-separated, as YAML configs and older ``--eval_type_map`` flags wrote it; list entries may
    hold commas too) or a mapping whose targets are a type, ``"O"`` or None.
    """
    if isinstance(entries, Mapping):
        pairs = [(str(k), "O" if v is None else str(v)) for k, v in entries.items()]
    else:
        items = [entries] if isinstance(entries, str) else list(entries or ())
        pairs = []
        for item in (part for entry in items for part in str(entry).split(",")):
            if not item.strip():
                continue
            source, sep, target = item.partition("=")
            if not sep:
                raise ValueError(
                    f"{flag} entry {item!r} is not {TYPE_MAP_HELP} (entity types without B-/I-, TARGET may be O)"
                )
            pairs.append((source, target))
    mapping: dict[str, Optional[str]] = {}
    for source, target in pairs:
        source, target = source.strip(), target.strip()
        if not source or not target or source == OUTSIDE or "-" in source or "-" in target:
            raise ValueError(
                f"{flag} entry {source}={target} is not {TYPE_MAP_HELP} (entity types without B-/I-, TARGET may be O)"
            )
        if source in mapping:
            raise ValueError(f"{flag} maps {source!r} twice")
        mapping[source] = None if target == OUTSIDE else target
    return mapping


def entity_types(labels: Sequence[str], owner: str) -> tuple[str, ...]:
    """The entity types of an IOB2 label set, in order; a clear error for non-NER labels (``LABEL_0``)."""
    try:
        return LabelScheme.from_label_names(labels).types
    except TagSequenceError as err:
        raise ValueError(f"{owner} labels {list(labels)} are not IOB2 NER tags ({err})") from None


def map_spans(tags: Sequence[str], entries: Mapping[str, Optional[str]]) -> list[str]:
    """Map the entity spans whose type is in ``entries`` (to another type, or to O for None); keep the rest.

    Spans are read as conlleval does (a stray I- opens one) and a renamed span is written whole as
    B-/I-, so it never merges with a neighbour of its new type. Tags of spans left alone are not
    touched (a stray I- stays one), so token accuracy changes only where a type is mapped.
    """
    out = list(tags)
    for span in tags_to_spans(tags):
        if span["label"] not in entries:
            continue
        target = entries[span["label"]]
        for k in range(span["start"], span["end"]):
            out[k] = OUTSIDE if target is None else f"{'B' if k == span['start'] else 'I'}-{target}"
    return out


@dataclass(frozen=True)
class LabelAlignment:
    """How a model's label set meets a test set's: the mapping applied to each side, and the scored types."""

    types: tuple[str, ...]
    predictions: Optional[TypeMapping] = None  # None: predictions are used as they are
    references: Optional[TypeMapping] = None

    def map_predictions(self, tags: list[list[str]]) -> list[list[str]]:
        return [map_spans(t, self.predictions.mapping) for t in tags] if self.predictions else tags

    def map_references(self, tags: list[list[str]]) -> list[list[str]]:
        return [map_spans(t, self.references.mapping) for t in tags] if self.references else tags

    @property
    def applied(self) -> dict[str, dict[str, str]]:
        """The entries actually used, per side, for the record (``O`` for None)."""
        out = {}
        for side, mapping in (("predictions", self.predictions), ("references", self.references)):
            if mapping is not None:
                out[side] = {s: (OUTSIDE if t is None else t) for s, t in mapping.mapping.items()}
        return out


def align_label_sets(
    model_labels: Sequence[str],
    test_labels: Sequence[str],
    type_map: Optional[Mapping[str, Optional[str]]] = None,
    model_name: str = "model",
    test_name: str = "test set",
    map_matching: bool = False,
) -> LabelAlignment:
    """Check that the model's and the test set's types agree once ``type_map`` is applied to each side.

    Sides whose type sets already agree are left alone unless ``map_matching``. Raises
    ``ValueError`` listing both label sets, the types left on one side only and the
    ``--type-map`` entries that would fix it.
    """
    type_map = dict(type_map or {})
    model_types = entity_types(model_labels, f"model {model_name}")
    test_types = entity_types(test_labels, f"test set {test_name}")
    if set(model_types) == set(test_types) and not map_matching:
        return LabelAlignment(test_types)

    def mapped(types):
        return {type_map.get(t, t) for t in types} - {None}

    model_out, test_out = mapped(model_types), mapped(test_types)
    if model_out != test_out:
        only_model = sorted(model_out - test_out, key=lambda t: (t not in model_types, t))
        only_test = sorted(test_out - model_out, key=lambda t: (t not in test_types, t))
        hint = " ".join(f"{t}=O" for t in [*only_model, *only_test])
        applied = (
            f" after --type-map {' '.join(f'{s}={t or OUTSIDE}' for s, t in type_map.items())}" if type_map else ""
        )
        raise ValueError(
            f"label sets differ between model {model_name} and test set {test_name}{applied}: "
            f"model labels {list(model_labels)}; test set labels {list(test_labels)}; "
            f"types only the model predicts: {only_model}; types only the test set has: {only_test}. "
            f"Map them explicitly with --type-map TYPE=TARGET (TARGET a shared type, or O), "
            f"applied to whichever side has TYPE, e.g. --type-map {hint}"
        )
    common: list[str] = []
    for t in test_types:
        if type_map.get(t, t) is not None and type_map.get(t, t) not in common:
            common.append(type_map.get(t, t))
    target = LabelScheme(tuple(common))

    def side(types) -> Optional[TypeMapping]:
        entries = {t: type_map[t] for t in types if t in type_map and type_map[t] != t}
        return TypeMapping(LabelScheme(types), target, entries) if entries else None

    return LabelAlignment(tuple(common), side(model_types), side(test_types))


# ------------------------------------------------------------------------------------------- models


def check_type_map(
    type_map: Mapping[str, Optional[str]], model_labels: Mapping[str, Sequence[str]], test_sets: Sequence["TestSet"]
) -> None:
    """Every ``type_map`` entry must name a type of some model or some test set (a typo is an error, not a no-op)."""
    named: set[str] = set()
    for name, labels in model_labels.items():
        named.update(entity_types(labels, f"model {name}"))
    for test_set in test_sets:
        named.update(entity_types(test_set.label_names, f"test set {test_set.name}"))
    unused = [t for t in type_map if t not in named]
    if unused:
        raise ValueError(
            f"--type-map names {unused}, a type of no model and no test set; model labels: "
            f"{ {n: list(names) for n, names in model_labels.items()} }; test set labels: "
            f"{ {t.name: t.label_names for t in test_sets} }"
        )


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def training_domain(model_path: str) -> tuple[Optional[str], Optional[str]]:
    """``(training corpus, its domain)`` as recorded in the model folder (see the module doc); Nones if unknown."""
    for record in (
        _read_json(os.path.join(model_path, "results.json")),
        _read_json(os.path.join(model_path, "config.json")),
    ):
        data = record.get("data") if isinstance(record.get("data"), dict) else {}
        corpus = record.get("train_corpus") or data.get("corpus")
        domain = record.get("train_domain") or data.get("domain")
        if not domain and corpus:
            try:
                domain = corpus_spec(corpus).domain or None
            except ValueError:
                domain = None
        if corpus or domain:
            return corpus, domain
    return None, None


def resolve_domain(test_set: TestSet, train_domain: Optional[str]) -> Optional[str]:
    """``"in"``/``"out"`` for one model and test set: the explicit marker, else by domain; None if unknown."""
    if test_set.marker:
        return test_set.marker
    if train_domain and test_set.corpus_domain:
        return IN if test_set.corpus_domain == train_domain else OUT
    return None


def display_names(paths: Sequence[str]) -> list[str]:
    """Short unique names for model folders: the last path component(s)."""
    parts = [os.path.normpath(p).split(os.sep) for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = [os.path.join(*p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return list(paths)


def parse_model_arg(text: str) -> tuple[Optional[str], str]:
    """``PATH`` or ``NAME=PATH`` -> (name or None, path)."""
    if os.path.exists(text) or "=" not in text:
        return None, text
    name, _, path = text.partition("=")
    return (name, path) if name else (None, text)


# --------------------------------------------------------------------------------------- evaluation


@dataclass
class PreparedTestSet:
    """A test set ready for one model: the label alignment and the tokenised :class:`EvalSet` of the loop."""

    __test__ = False  # not a pytest class

    test_set: TestSet
    alignment: LabelAlignment
    eval_set: EvalSet

    @property
    def num_windows(self) -> int:
        return len(self.eval_set.features)

    def info(self, train_domain: Optional[str] = None) -> dict:
        """Facts recorded beside the scores of this set (the result schema's non-metric keys)."""
        return {
            "num_sentences": len(self.eval_set.references),
            "num_windows": self.num_windows,
            "types": list(self.alignment.types),
            "type_map": self.alignment.applied,
            "corpus": self.test_set.corpus,
            "split": self.test_set.split,
            "lang": self.test_set.lang,
            "corpus_domain": self.test_set.corpus_domain,
            "domain": resolve_domain(self.test_set, train_domain),
        }


def prepare_test_sets(
    test_sets: Sequence[TestSet],
    tokenizer,
    labels: Sequence[str],
    *,
    type_map: Optional[Mapping[str, Optional[str]]] = None,
    type_map_all: bool = False,
    model_name: str = "model",
    max_length: Optional[int] = None,
    stride: Optional[int] = None,
    num_proc: Optional[int] = None,
) -> dict[str, PreparedTestSet]:
    """Check every test set's labels against the model's (``type_map``, see the module doc), then tokenise them.

    Label sets are all checked before anything is tokenised, so a mismatch in the last set fails fast.
    """
    test_sets = list(test_sets)
    if len({t.name for t in test_sets}) != len(test_sets):
        raise ValueError(f"test set names must be unique, got {[t.name for t in test_sets]}")
    type_map = parse_type_map(type_map)
    alignments = [
        align_label_sets(labels, t.label_names, type_map, model_name, t.name, type_map_all) for t in test_sets
    ]
    aligner = TokenAligner(tokenizer, max_length=max_length, stride=stride, label_column=None)
    prepared = {}
    for test_set, alignment in zip(test_sets, alignments):
        features = tokenize_dataset(
            test_set.dataset.select_columns(["tokens"]), aligner, num_proc=num_proc, desc=f"tokenising {test_set.name}"
        )
        references = alignment.map_references(test_set.references())
        map_predictions = alignment.map_predictions if alignment.predictions else None
        prepared[test_set.name] = PreparedTestSet(test_set, alignment, EvalSet(features, references, map_predictions))
    return prepared


def evaluator_for(
    prepared: Mapping[str, PreparedTestSet], labels: Sequence[str], accelerator: Accelerator, batch_size: int, collator
) -> NerEvaluator:
    """The loop's :class:`NerEvaluator` over prepared test sets: the one evaluation, per epoch or of a saved model."""
    return NerEvaluator(
        accelerator, {name: p.eval_set for name, p in prepared.items()}, dict(enumerate(labels)), batch_size, collator
    )


def sentence_counts(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per sentence ``[true positives, false positives, false negatives]`` of entity spans.

    Spans are read as xner's seqeval metric reads them (seqeval's default mode), so the sums over
    sentences give exactly the metric's micro P/R/F1: what a paired bootstrap over test sentences
    resamples.
    """
    from seqeval.metrics.sequence_labeling import get_entities

    counts = []
    for predicted, gold in zip(predictions, references, strict=True):
        p, g = set(get_entities(list(predicted))), set(get_entities(list(gold)))
        tp = len(p & g)
        counts.append([tp, len(p) - tp, len(g) - tp])
    return counts


def evaluate_model(
    model_path: str,
    test_sets: Union[Sequence[Union[TestSet, str]], Mapping[str, datasets.Dataset]],
    *,
    type_map: Optional[Union[str, Mapping[str, Optional[str]], Sequence[str]]] = None,
    type_map_all: bool = False,
    name: Optional[str] = None,
    batch_size: int = 32,
    max_length: Optional[int] = None,
    stride: Optional[int] = None,
    accelerator: Optional[Accelerator] = None,
    sentence_scores: bool = False,
    data_dir: Optional[str] = None,
    max_samples: Optional[int] = None,
) -> dict:
    """Entity-level P/R/F1 of one model (full or LoRA folder) on each test set, overall and per type.

    ``test_sets``: :class:`TestSet` objects or ``NAME[:split][@lang][=in|out]`` specs (loaded with
    ``data_dir``/``max_samples``), or a mapping ``name -> Dataset`` (tokens, ClassLabel ner_tags).
    ``type_map``: ``{TYPE: TARGET or None}``, ``["MISC=O", ...]`` or ``"MISC=O,DATE=O"``, applied to
    whichever side has TYPE, for test sets whose type set differs from the model's (every test set
    with ``type_map_all``; see the module doc); label sets are checked for every test set before
    anything is predicted. Returns ``{"model", "path", "adapter", "label_names", "train_corpus",
    "train_domain", "test_sets": {name: {"precision", "recall", "f1", "accuracy", "per_type":
    {TYPE: {precision, recall, f1, number}}, "num_sentences", "num_windows", "num_entities",
    "types", "type_map", "domain", ...}}}`` (:func:`training.metrics.scores_of` plus
    :meth:`PreparedTestSet.info`); ``domain`` is ``"in"``, ``"out"`` or None (unknown). Figures
    are fractions (0-1). With ``sentence_scores``, each test set also gets ``sentence_counts``:
    :func:`sentence_counts` of its sentences, for significance tests.
    """
    if isinstance(test_sets, Mapping):
        test_sets = [TestSet(n, d) for n, d in test_sets.items()]
    test_sets = [t if isinstance(t, TestSet) else load_test_set(t, data_dir, max_samples) for t in test_sets]
    name = name or display_names([model_path])[0]
    accelerator = accelerator or Accelerator()

    model, tokenizer, labels = load_token_classifier(model_path)
    with accelerator.main_process_first():
        prepared = prepare_test_sets(
            test_sets,
            tokenizer,
            labels,
            type_map=type_map,
            type_map_all=type_map_all,
            model_name=name,
            max_length=max_length or default_max_length(tokenizer, model),
            stride=stride,
        )
    model = accelerator.prepare_model(model, evaluation_mode=True)
    evaluator = evaluator_for(prepared, labels, accelerator, batch_size, TokenCollator(tokenizer.pad_token_id))
    train_corpus, train_domain = training_domain(model_path)
    results = {}
    with torch.random.fork_rng(devices=[]):
        for test_name, p in prepared.items():
            predictions = evaluator.predict(model, test_name)
            figures = {**evaluator.score(predictions, test_name), **p.info(train_domain)}
            figures["num_entities"] = sum(v["number"] for v in figures["per_type"].values())
            if sentence_scores:
                figures["sentence_counts"] = sentence_counts(predictions, p.eval_set.references)
            results[test_name] = figures
            logger.info("%s on %s: F1 %.4f", name, test_name, figures["f1"])
    del model, evaluator
    gc.collect()
    return {
        "model": name,
        "path": model_path,
        "adapter": is_adapter(model_path),
        "label_names": labels,
        "train_corpus": train_corpus,
        "train_domain": train_domain,
        "test_sets": results,
    }


# --------------------------------------------------------------------------------------- robustness


def domain_means(f1: Mapping[str, float], domains: Mapping[str, str]) -> dict:
    """In-domain mean F1, out-of-domain mean F1 and the drop (in - out; None where a side has no set)."""
    unknown = [name for name in f1 if domains.get(name) not in (IN, OUT)]
    if unknown:
        raise ValueError(f"test sets {unknown} are neither in nor out of domain: mark them =in or =out")
    ins = [f1[n] for n in f1 if domains[n] == IN]
    outs = [f1[n] for n in f1 if domains[n] == OUT]
    in_mean = sum(ins) / len(ins) if ins else None
    out_mean = sum(outs) / len(outs) if outs else None
    drop = in_mean - out_mean if in_mean is not None and out_mean is not None else None
    return {"in_domain_f1": in_mean, "out_of_domain_f1": out_mean, "drop": drop}


def robustness_table(results: Sequence[Mapping[str, Any]]) -> dict:
    """Models x test sets: F1 with in/out status per cell, the two domain means and the drop per model.

    ``results``: :func:`evaluate_model` outputs. Every (model, test set) needs a known domain.
    """
    test_names: list[str] = []
    for result in results:
        test_names += [n for n in result["test_sets"] if n not in test_names]
    missing = [
        f"{r['model']} / {n}" for r in results for n, t in r["test_sets"].items() if t["domain"] not in (IN, OUT)
    ]
    if missing:
        raise ValueError(
            f"cannot tell in from out of domain for {missing}: the model records no training corpus "
            f"(results.json / config.json) or the test set is not a known corpus; mark the test set "
            f"--test NAME={IN} or ={OUT}"
        )
    rows = []
    for result in results:
        f1 = {n: t["f1"] for n, t in result["test_sets"].items()}
        domains = {n: t["domain"] for n, t in result["test_sets"].items()}
        rows.append({"model": result["model"], "f1": f1, "domain": domains, **domain_means(f1, domains)})
    return {"metric": "entity-level micro F1 (fraction)", "test_sets": test_names, "models": rows}


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _uniform_domains(table: Mapping[str, Any]) -> dict[str, Optional[str]]:
    """Test set -> its in/out status when every model agrees on it, else None."""
    out = {}
    for name in table["test_sets"]:
        seen = {row["domain"][name] for row in table["models"] if name in row["domain"]}
        out[name] = seen.pop() if len(seen) == 1 else None
    return out


def robustness_markdown(table: Mapping[str, Any]) -> str:
    """The robustness table in Markdown, F1 in % with two decimals; the drop in F1 points.

    A column header carries ``(in)``/``(out)`` when all models agree on that test set; otherwise
    every cell does.
    """
    uniform = _uniform_domains(table)
    headers = ["model"]
    for name in table["test_sets"]:
        headers.append(f"{name} ({uniform[name]})" if uniform[name] else name)
    headers += ["in-domain F1", "out-of-domain F1", "drop"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" + "---:|" * (len(headers) - 1)]
    for row in table["models"]:
        cells = [row["model"]]
        for name in table["test_sets"]:
            value = _pct(row["f1"].get(name))
            if name in row["f1"] and not uniform[name]:
                value += f" ({row['domain'][name]})"
            cells.append(value)
        cells += [_pct(row["in_domain_f1"]), _pct(row["out_of_domain_f1"]), _pct(row["drop"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_robustness(table: Mapping[str, Any], path: str, title: str = "Entity F1 in and out of domain") -> str:
    """A grouped bar chart (matplotlib, Agg): one group per model, one bar per test set, F1 in %.

    Out-of-domain bars are hatched; the drop is written above each group. Drawn 8 inches wide at
    100 dpi, the ~800 px a README shows it at, with text of 10 points or more; the legend sits below
    the axes (constrained layout) and ``bbox_inches="tight"`` keeps it in the image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    models, test_names = table["models"], table["test_sets"]
    uniform = _uniform_domains(table)
    n_models, n_tests = len(models), max(len(test_names), 1)
    width = 0.8 / n_tests
    colors = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(8.0, 5.0), dpi=100, layout="constrained")
    for j, name in enumerate(test_names):
        for i, row in enumerate(models):
            if name not in row["f1"]:
                continue
            x = i - 0.4 + width * (j + 0.5)
            value = 100 * row["f1"][name]
            out = row["domain"][name] == OUT
            ax.bar(
                x,
                value,
                width * 0.92,
                color=colors[j % len(colors)],
                edgecolor="black",
                linewidth=0.6,
                hatch="//" if out else None,
            )
            ax.text(
                x,
                value + 1,
                f"{value:.1f}",
                ha="center",
                va="bottom",
                fontsize=10,
                rotation=90 if n_models * n_tests > 8 else 0,
            )
    for i, row in enumerate(models):
        if row["drop"] is not None:
            top = max(100 * v for v in row["f1"].values())
            ax.text(
                i, top + 7, f"drop {100 * row['drop']:.1f}", ha="center", va="bottom", fontsize=10, fontweight="bold"
            )
    legend = [
        Patch(
            facecolor=colors[j % len(colors)],
            edgecolor="black",
            label=f"{name} ({uniform[name]})" if uniform[name] else name,
        )
        for j, name in enumerate(test_names)
    ]
    legend += [
        Patch(facecolor="white", edgecolor="black", label="in domain"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="out of domain"),
    ]
    fig.legend(handles=legend, fontsize=10, loc="outside lower center", ncols=min(3, len(legend)), frameon=False)
    ax.set_xticks(range(n_models))
    ax.set_xticklabels(
        [row["model"] for row in models],
        rotation=20 if n_models > 4 else 0,
        ha="right" if n_models > 4 else "center",
        fontsize=10,
    )
    ax.tick_params(labelsize=10)
    ax.set_ylabel("entity-level F1 (%)", fontsize=10)
    ax.set_ylim(0, 115)
    ax.set_xlim(-0.6, n_models - 0.4)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.savefig(path, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


def write_robustness(table: Mapping[str, Any], output_dir: str) -> dict[str, str]:
    """``robustness.json``, ``robustness.md`` and ``robustness.png`` in ``output_dir``; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {ext: os.path.join(output_dir, f"robustness.{ext}") for ext in ("json", "md", "png")}
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump(table, f, indent=2)
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write(robustness_markdown(table))
    plot_robustness(table, paths["png"])
    return paths


def results_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """Overall and per-type P/R/F1 (%) of every model on every test set, as two Markdown tables."""
    lines = ["| model | test set | domain | sentences | precision | recall | F1 |", "|---|---|---|---:|---:|---:|---:|"]
    for r in results:
        for name, t in r["test_sets"].items():
            lines.append(
                f"| {r['model']} | {name} | {t['domain'] or '?'} | {t['num_sentences']} | "
                f"{_pct(t['precision'])} | {_pct(t['recall'])} | {_pct(t['f1'])} |"
            )
    lines += [
        "",
        "| model | test set | type | gold entities | precision | recall | F1 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        for name, t in r["test_sets"].items():
            for entity_type, s in sorted(t["per_type"].items()):
                lines.append(
                    f"| {r['model']} | {name} | {entity_type} | {s['number']} | "
                    f"{_pct(s['precision'])} | {_pct(s['recall'])} | {_pct(s['f1'])} |"
                )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "--model",
        "--model_name_or_path",
        dest="models",
        action="append",
        required=True,
        metavar="[NAME=]PATH",
        help="a saved token classifier or LoRA student folder; repeat for several models",
    )
    add_flag(
        parser,
        "--test",
        dest="tests",
        action="append",
        required=True,
        metavar="NAME[:split][@lang][=in|out]",
        help="a known corpus (split default: test), a save_to_disk folder or a CoNLL file; =in/=out marks "
        "the domain (default: the corpus' domain vs the model's training corpus); repeat for several",
    )
    add_flag(parser, "--data_dir", help="folder holding the corpus folders (default: $XNER_DATA_DIR or ../shared/data)")
    add_flag(
        parser,
        "--type_map",
        nargs="+",
        action="extend",
        default=[],
        metavar=TYPE_MAP_HELP,
        help="map an entity type to another or to O, on whichever side (model or test set) has it, for test "
        "sets whose types differ from the model's; e.g. a CoNLL model on MasakhaNER: --type_map MISC=O DATE=O",
    )
    add_flag(
        parser,
        "--type_map_all",
        action="store_true",
        help="apply --type_map to every test set, also those whose types already match the model's",
    )
    add_flag(parser, "--output_dir", help="write evaluation.json and robustness.{json,md,png} here")
    add_flag(parser, "--per_device_eval_batch_size", "--batch_size", type=positive_int, default=32)
    add_flag(
        parser, "--max_eval_samples", "--max_samples", type=positive_int, help="first N sentences of each test set"
    )
    add_flag(
        parser,
        "--max_length",
        type=positive_int,
        help="sub-tokens per window incl. special tokens (default: the tokenizer's limit)",
    )
    add_flag(
        parser, "--stride", type=non_negative_int, help="sub-tokens shared by consecutive windows (default: a quarter)"
    )
    add_flag(
        parser,
        "--sentence_scores",
        action="store_true",
        help="also write per-sentence [tp, fp, fn] entity counts to evaluation.json (for paired bootstrap tests)",
    )


def command_line(
    models: Sequence[str],
    tests: Sequence[str],
    *,
    output_dir: Optional[str] = None,
    data_dir: Optional[str] = None,
    type_map: Optional[Mapping[str, Optional[str]]] = None,
    per_device_eval_batch_size: Optional[int] = None,
    max_eval_samples: Optional[int] = None,
    max_length: Optional[int] = None,
    sentence_scores: bool = False,
) -> list[str]:
    """The arguments of ``xner evaluate`` / ``python -m training.evaluation`` for these settings: what the demo
    and the experiment harness run, built here beside :func:`add_arguments` so that the names stay in step.

    ``models``: ``[NAME=]PATH`` each; ``tests``: test-set specs; ``type_map``: TYPE -> TARGET (None: ``O``)."""
    argv = [*(a for m in models for a in ("--model", m)), *(a for t in tests for a in ("--test", t))]
    for name, value in (
        ("output_dir", output_dir),
        ("data_dir", data_dir),
        ("per_device_eval_batch_size", per_device_eval_batch_size),
        ("max_eval_samples", max_eval_samples),
        ("max_length", max_length),
    ):
        if value is not None:
            argv += [f"--{name}", str(value)]
    if type_map:
        argv += ["--type_map", *(f"{k}={v or OUTSIDE}" for k, v in type_map.items())]
    if sentence_scores:
        argv.append("--sentence_scores")
    return argv


def register(subparsers) -> None:
    """Add ``evaluate`` to the ``xner`` command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="entity-level P/R/F1 of models on test sets, in and out of domain",
        description=__doc__.split("\n\n")[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


PROG = "python -m training.evaluation"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m training.evaluation ARGS``; errors propagate (the ``__main__`` block reports them in one line)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    type_map = parse_type_map(args.type_map)
    parsed = [parse_model_arg(m) for m in args.models]
    paths = [path for _, path in parsed]
    for path in paths:
        if not os.path.isdir(path):
            raise UserError(f"--model {path}: no such model folder")
    defaults = display_names(paths)
    names = [name or default for (name, _), default in zip(parsed, defaults)]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    specs = [TestSpec.parse(t) for t in args.tests]
    if len({s.display_name for s in specs}) != len(specs):
        raise ValueError(f"test set names must be unique, got {[s.display_name for s in specs]}")
    # Before any model runs: can every (model, test set) be placed in or out of domain?
    train_domains = {name: training_domain(path)[1] for name, path in zip(names, paths)}
    undecided = []
    for spec in specs:
        corpus_domain = None if spec.is_path else corpus_spec(spec.name).domain  # an unknown name fails here
        for name in names:
            if not spec.marker and not (corpus_domain and train_domains[name]):
                undecided.append(f"{name} / {spec.display_name}")
    if undecided and args.output_dir:
        raise ValueError(
            f"the robustness table needs each test set in or out of domain, undecided for {undecided}: "
            f"the model records no training corpus (results.json / config.json) or the test set is not a "
            f"known corpus; mark them --test NAME={IN} or --test NAME={OUT}"
        )
    if args.output_dir:  # before any model runs, not after
        check_output_dir(args.output_dir, "--output_dir")

    accelerator = Accelerator()
    if not accelerator.is_local_main_process:
        datasets.disable_progress_bars()
    test_sets = [load_test_set(spec, args.data_dir, args.max_eval_samples) for spec in specs]
    check_type_map(type_map, {name: read_labels(path) for name, path in zip(names, paths)}, test_sets)
    results = [
        evaluate_model(
            path,
            test_sets,
            type_map=type_map,
            type_map_all=args.type_map_all,
            name=name,
            batch_size=args.per_device_eval_batch_size,
            max_length=args.max_length,
            stride=args.stride,
            accelerator=accelerator,
            sentence_scores=args.sentence_scores,
        )
        for name, path in zip(names, paths)
    ]
    if not accelerator.is_main_process:
        return 0
    print(results_markdown(results))
    table = None
    if not undecided:
        table = robustness_table(results)
        print(robustness_markdown(table))
    else:
        logger.warning("no robustness table: in/out of domain unknown for %s (mark test sets =in or =out)", undecided)
    if args.output_dir:  # staged, then published with evaluation.json last: never half a set of files
        outputs = OutputFolder(args.output_dir, EVALUATION_FILE)
        staging = outputs.begin()
        with open(os.path.join(staging, EVALUATION_FILE), "w", encoding="utf-8") as f:
            json.dump({"models": results, "type_map": {k: v or OUTSIDE for k, v in type_map.items()}}, f, indent=2)
        written = write_robustness(table, staging)
        outputs.publish()
        names = [EVALUATION_FILE, *(os.path.basename(p) for p in written.values())]
        print("wrote " + ", ".join(os.path.join(args.output_dir, n) for n in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(PROG, main))
