"""The projection steps as ``datasets.map`` transforms.

Each transform is a small picklable object: its state is its configuration (models and
processes load lazily and are never pickled), so ``datasets`` fingerprints it deterministically
-- re-running a step reuses the cache -- and ``num_proc`` workers get a copy for free. Every step
adds columns and never renames or drops the user's:

==================  =========================================  ==============
column              type                                       added by
==================  =========================================  ==============
source_entities     list of {start, end, label}                SourceEntities
translation         str                                        Translate / add_parallel
translation_tokens  list of str                                Translate / add_parallel
translation_error   str ("" when the row translated)           Translate
alignment           list of [i, j] (source word, target word)  Align
projected_tags      list of ClassLabel (IOB2)                  Project
projection_stats    {entities, projected, dropped, error}      Project
==================  =========================================  ==============

Bad rows never cost the rest of their batch: a row whose translation fails gets an empty
translation and its error in ``translation_error``; a row that cannot be projected (translation
failed, malformed alignment item or index out of range, entity outside the sentence or with a
label outside the label set) gets all-``O`` tags and the reason in ``projection_stats.error``.
Such rows are *flagged*: counted in ``projection_summary``'s ``rows_with_error`` and left out of
training. A step in which every row failed stops with a :class:`~dataset_builders.errors.UserError`
naming the cause. Failed translations are never cached: a step with failed rows is kept in memory
under a fresh fingerprint and its cache file is removed, so a re-run translates them again.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any, Callable, Optional, Sequence

import datasets
import numpy as np
import pyarrow.compute as pc

from dataset_builders.errors import UserError
from dataset_builders.schemes import tags_to_spans
from projection.candidates import DEFAULT_MAX_NGRAM
from projection.detokenize import detokenize
from training.devices import rank_device, sharded_map

logger = logging.getLogger(__name__)

ENTITIES = datasets.List(
    {"start": datasets.Value("int32"), "end": datasets.Value("int32"), "label": datasets.Value("string")}
)
ALIGNMENT = datasets.List(datasets.List(datasets.Value("int32")))
STATS = {
    "entities": datasets.Value("int32"),
    "projected": datasets.Value("int32"),
    "dropped": datasets.Value("int32"),
    "error": datasets.Value("string"),
}


class MapTransform:
    """Base: a batched map function that knows its output features and how to apply itself."""

    batch_size: Optional[int] = 1000
    uses_device = False  # GPU steps take the process rank (``with_rank``) to pick their device
    description = "transform"

    def output_features(self, features: datasets.Features) -> dict:
        raise NotImplementedError

    def __call__(self, batch: dict, rank: Optional[int] = None) -> dict:
        raise NotImplementedError

    def apply(self, ds, num_proc: Optional[int] = None, **map_kwargs):
        """``ds.map(self, batched=True, ...)`` for a Dataset or DatasetDict, with the right features."""
        sample = next(iter(ds.values())) if isinstance(ds, datasets.DatasetDict) else ds
        features = sample.features.copy()
        features.update(self.output_features(sample.features))
        # One worker per device for model steps, spawned when they use CUDA (training.devices).
        return sharded_map(
            ds,
            self,
            num_proc,
            uses_device=self.uses_device,
            batched=True,
            batch_size=self.batch_size,
            features=features,
            desc=self.description,
            **map_kwargs,
        )


TRANSLATION_FAILED = "translation failed: "  # prefix of projection_stats.error for rows whose MT failed


def _splits(ds) -> list:
    return list(ds.values()) if isinstance(ds, datasets.DatasetDict) else [ds]


def settle_failures(source, result, failed: Callable[[datasets.Dataset], int], step: str, first_error: Callable):
    """After a step whose rows may fail for a passing reason (an MT call): stop if every row failed;
    else keep the failures out of the ``datasets`` cache, so that a re-run retries them.

    ``failed(split)`` counts a split's failed rows and ``first_error(split)`` gives one reason. A split
    with failures is copied into memory under a fresh fingerprint (so no later step caches results
    built on it either) and the cache file the step wrote for it is deleted.
    """
    is_dict = isinstance(result, datasets.DatasetDict)
    out = {}
    for name, (before, after) in zip(result.keys() if is_dict else [None], zip(_splits(source), _splits(result))):
        n_failed = failed(after)
        if len(after) and n_failed == len(after):
            raise UserError(
                f"{step} failed for all {len(after)} rows{'' if name is None else f' of split {name!r}'}; "
                f"the first error: {first_error(after)}"
            )
        if n_failed and after.cache_files:
            keep = {f["filename"] for f in before.cache_files}
            written = [f["filename"] for f in after.cache_files if f["filename"] not in keep]
            after = after.flatten_indices(keep_in_memory=True, new_fingerprint=f"{step}-failures-{uuid.uuid4().hex}")
            for path in written:
                os.remove(path)
            logger.warning(
                "%s: %d row(s) failed and are flagged; they are not cached, a re-run retries them", step, n_failed
            )
        out[name] = after
    return datasets.DatasetDict(out) if is_dict else out[None]


def label_errors(entities: Sequence[Sequence[dict]], label_names: Sequence[str]) -> list[Optional[str]]:
    """Per row: ``None``, or why an entity's type cannot be written in the ``label_names`` tag set."""
    known = {name[2:] for name in label_names if name.startswith("B-")} & {
        name[2:] for name in label_names if name.startswith("I-")
    }
    out: list[Optional[str]] = []
    for row in entities:
        bad = next((e.get("label") for e in row if isinstance(e, dict) and e.get("label") not in known), None)
        out.append(None if bad is None else f"entity label {bad!r} is not in the label set {sorted(known)}")
    return out


def upstream_errors(batch: dict, n: int, error_column: Optional[str]) -> list[Optional[str]]:
    """Per row: the failure an earlier step recorded (``translation_error``), as a projection error."""
    column = batch.get(error_column) if error_column else None
    if column is None:
        return [None] * n
    return [TRANSLATION_FAILED + e if e else None for e in column]


class SourceEntities(MapTransform):
    """IOB2 ``ner_tags`` -> ``source_entities`` spans (the entities to project)."""

    description = "source entities"

    def __init__(
        self,
        label_names: Optional[Sequence[str]] = None,
        tags_column: str = "ner_tags",
        output_column: str = "source_entities",
    ):
        self.label_names = list(label_names) if label_names is not None else None
        self.tags_column, self.output_column = tags_column, output_column

    def output_features(self, features):
        return {self.output_column: ENTITIES}

    def apply(self, ds, num_proc=None, **map_kwargs):
        if self.label_names is None:  # read them off the dataset's ClassLabel
            sample = next(iter(ds.values())) if isinstance(ds, datasets.DatasetDict) else ds
            self.label_names = list(sample.features[self.tags_column].feature.names)
        return super().apply(ds, num_proc=num_proc, **map_kwargs)

    def __call__(self, batch, rank=None):
        names = self.label_names
        if names is None:
            raise ValueError("SourceEntities needs label_names (or use .apply(ds), which reads them)")
        return {self.output_column: [tags_to_spans([names[t] for t in row]) for row in batch[self.tags_column]]}


def add_parallel(
    source: datasets.Dataset,
    target: datasets.Dataset,
    tokens_column: str = "tokens",
    tags_column: Optional[str] = "ner_tags",
) -> datasets.Dataset:
    """Use a sentence-parallel corpus as the translation (pre-translated input).

    Adds ``translation_tokens`` (the target's words as they are), ``translation`` (their text) and,
    when the target has gold tags, ``translation_ner_tags`` -- which lets projection be scored.
    Row i of ``target`` must translate row i of ``source``.
    """
    if len(source) != len(target):
        raise ValueError(f"parallel corpora differ in length: {len(source)} source rows, {len(target)} target rows")
    columns = {"translation_tokens": tokens_column}
    if tags_column and tags_column in target.column_names:
        columns["translation_ner_tags"] = tags_column
    side = target.select_columns(list(columns.values())).rename_columns({v: k for k, v in columns.items()})
    clash = set(side.column_names) & set(source.column_names)
    if clash:
        raise ValueError(f"source already has column(s) {sorted(clash)}")
    joined = datasets.concatenate_datasets([source, side], axis=1)
    return joined.map(
        _detokenize_translation,
        batched=True,
        features=datasets.Features({**joined.features, "translation": datasets.Value("string")}),
        desc="detokenize parallel text",
    )


def _detokenize_translation(batch):
    return {"translation": [detokenize(t) for t in batch["translation_tokens"]]}


class Translate(MapTransform):
    """Translate a column of words (or text) and split the translation into words.

    ``translator`` is any object with ``translate(texts) -> texts`` and a ``config`` dict
    (:class:`projection.translate_hf.HFTranslator`, :class:`projection.translate_apertium.ApertiumTranslator`).
    A batch whose call fails is retried row by row, so one bad row fails alone.
    """

    description = "translate"

    def __init__(
        self,
        translator,
        target_lang: Optional[str] = None,
        source_column: str = "tokens",
        output_column: str = "translation",
        batch_size: int = 256,
    ):
        self.translator = translator
        self.target_lang = target_lang
        self.source_column, self.output_column = source_column, output_column
        self.batch_size = batch_size
        self.uses_device = hasattr(translator, "model_name_or_path")

    def output_features(self, features):
        return {
            self.output_column: datasets.Value("string"),
            f"{self.output_column}_tokens": datasets.List(datasets.Value("string")),
            f"{self.output_column}_error": datasets.Value("string"),
        }

    def _texts(self, batch) -> list[str]:
        column = batch[self.source_column]
        return [row if isinstance(row, str) else detokenize(row) for row in column]

    def _call_translator(self, texts: list[str], device) -> list[str]:
        out = self.translator.translate(texts, device=device) if device else self.translator.translate(texts)
        if out is None or len(out) != len(texts):
            raise RuntimeError(
                f"translator returned {0 if out is None else len(out)} translations for {len(texts)} texts"
            )
        return list(out)

    def apply(self, ds, num_proc: Optional[int] = None, **map_kwargs):
        """As ``MapTransform.apply``; every row failing is an error, failed rows are not cached."""
        error_column = f"{self.output_column}_error"

        def failed(split):
            return int(pc.sum(pc.not_equal(split.data.column(error_column), "")).as_py() or 0)

        def first_error(split):
            return next(e for e in split[error_column] if e)

        result = super().apply(ds, num_proc=num_proc, **map_kwargs)
        return settle_failures(ds, result, failed, "translation", first_error)

    def __call__(self, batch, rank=None):
        from projection.word_split import split_words

        texts = self._texts(batch)
        device = rank_device(rank)
        errors = [""] * len(texts)
        try:
            translations = self._call_translator(texts, device)
        except UserError:
            raise  # a setting is wrong (e.g. the model cannot be loaded): no row can succeed
        except Exception as err:  # one bad row must not lose the batch: retry row by row
            logger.warning("translation of a batch of %d failed (%s); retrying row by row", len(texts), err)
            translations = []
            for k, text in enumerate(texts):
                try:
                    translations.append(self._call_translator([text], device)[0])
                except UserError:
                    raise
                except Exception as row_err:
                    translations.append("")
                    errors[k] = f"{type(row_err).__name__}: {row_err}"
        for k, text in enumerate(translations):
            if not isinstance(text, str):  # a translator that gave None for one row: that row fails alone
                translations[k] = ""
                errors[k] = errors[k] or f"the translator returned {text!r} instead of a string"
        return {
            self.output_column: translations,
            f"{self.output_column}_tokens": [split_words(t, self.target_lang) for t in translations],
            f"{self.output_column}_error": errors,
        }


class Align(MapTransform):
    """Word-align two columns of words with any aligner exposing ``align(src, tgt) -> pairs``.

    Statistical aligners (``aligner.trains_on_input``, e.g. eflomal) learn from the sentences they
    align, so they see the whole dataset as one batch; embedding aligners work batch by batch.
    """

    description = "align"

    def __init__(
        self,
        aligner,
        source_column: str = "tokens",
        target_column: str = "translation_tokens",
        output_column: str = "alignment",
        batch_size: int = 256,
    ):
        self.aligner = aligner
        self.source_column, self.target_column, self.output_column = source_column, target_column, output_column
        whole = getattr(aligner, "trains_on_input", type(aligner).__name__.startswith("Eflomal"))
        self.batch_size = None if whole else batch_size
        self.uses_device = not whole

    def output_features(self, features):
        return {self.output_column: ALIGNMENT}

    def __call__(self, batch, rank=None):
        src, tgt = batch[self.source_column], batch[self.target_column]
        device = rank_device(rank)
        if device is not None and hasattr(self.aligner, "device"):
            self.aligner.device = device
        links = self.aligner.align(src, tgt)
        if links is None or len(links) != len(src):
            raise UserError(
                f"aligner {_name(self.aligner)} returned {0 if links is None else len(links)} alignments "
                f"for {len(src)} sentence pairs"
            )
        out = []
        for k, row in enumerate(links):
            try:
                # Items are stored as they come (Project flags a row whose items are not (i, j) pairs
                # inside the sentences); only what the int32 column cannot hold is an error here.
                out.append([[_int32(v) for v in item] for item in row])
            except (TypeError, ValueError, OverflowError) as err:
                raise UserError(
                    f"row {k} of the batch: aligner {_name(self.aligner)} returned links that are not "
                    f"word indices ({err})"
                ) from None
        return {self.output_column: out}


def _name(component) -> str:
    return type(component).__name__


def _int32(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{value!r} is not an integer")
    if not -(2**31) <= value < 2**31:
        raise OverflowError(f"{value} does not fit in int32")
    return int(value)


class Project(MapTransform):
    """Project ``source_entities`` onto target words through ``alignment``.

    ``method="heuristic"`` (García-Ferrero et al. 2022; ``merge_distance``, ``length_ratio``) or
    ``method="candidates"`` (Politov et al. 2025; ``solver`` greedy/ilp/bipartite, ``weights``,
    ``max_ngram``, ...). Output tags use ``label_names`` (the source dataset's label set).
    """

    description = "project"

    def __init__(
        self,
        label_names: Sequence[str],
        method: str = "heuristic",
        entities_column: str = "source_entities",
        source_column: str = "tokens",
        target_column: str = "translation_tokens",
        alignment_column: str = "alignment",
        output_column: str = "projected_tags",
        batch_size: int = 1000,
        error_column: Optional[str] = "translation_error",
        **params: Any,
    ):
        if method not in ("heuristic", "candidates"):
            raise ValueError(f"unknown projection method {method!r}; choose 'heuristic' or 'candidates'")
        self.label_names = list(label_names)
        self.method, self.params = method, dict(params)
        self.entities_column, self.source_column = entities_column, source_column
        self.target_column, self.alignment_column = target_column, alignment_column
        self.output_column, self.batch_size = output_column, batch_size
        self.error_column = error_column  # rows an earlier step flagged (failed MT) are flagged here too
        self._check_params()

    # The parameters of each method (projection.heuristic / projection.candidate_matching).
    PARAMS = {"heuristic": {"merge_distance", "length_ratio"}, "candidates": {"solver", "weights", "max_ngram"}}

    def _check_params(self):
        allowed = self.PARAMS[self.method]
        unknown = set(self.params) - allowed
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for method {self.method!r}; known: {sorted(allowed)}"
            )

    # The defaults of projection.heuristic / projection.candidate_matching, recorded in configs and cards.
    DEFAULTS = {
        "heuristic": {"merge_distance": 1, "length_ratio": 0.8},
        "candidates": {"solver": "greedy", "max_ngram": DEFAULT_MAX_NGRAM, "weights": {"alignment": 1.0}},
    }

    @property
    def config(self) -> dict:
        return {"method": self.method, **self.DEFAULTS[self.method], **self.params}

    def output_features(self, features):
        return {
            self.output_column: datasets.List(datasets.ClassLabel(names=self.label_names)),
            "projection_stats": STATS,
        }

    def _project(self, entities, lengths, targets, links):
        if self.method == "heuristic":
            from projection.heuristic import project_heuristic

            return project_heuristic(entities, lengths, targets, links, **self.params)
        from projection.candidate_matching import project_candidates
        from projection.candidates import ngram_candidates

        params = dict(self.params)
        if "max_ngram" in params:
            params["candidates"] = ngram_candidates(targets, max_ngram=params.pop("max_ngram"))
        return project_candidates(entities, lengths, targets, links, **params)

    def __call__(self, batch, rank=None):
        from projection.scores import validate_batch

        entities = [[dict(e) for e in row] for row in batch[self.entities_column]]
        lengths = [len(row) for row in batch[self.source_column]]
        targets = batch[self.target_column]
        links = batch[self.alignment_column]
        n = len(targets)
        errors = [
            up or label or check
            for up, label, check in zip(
                upstream_errors(batch, n, self.error_column),
                label_errors(entities, self.label_names),
                validate_batch(entities, lengths, targets, links),
            )
        ]
        good = [k for k, e in enumerate(errors) if e is None]
        result = self._project(
            [entities[k] for k in good],
            [lengths[k] for k in good],
            [targets[k] for k in good],
            [links[k] for k in good],
        )
        label_id = {name: i for i, name in enumerate(self.label_names)}
        tags = [[0] * len(t) for t in targets]
        stats = [
            {"entities": len(entities[k]), "projected": 0, "dropped": len(entities[k]), "error": errors[k]}
            for k in range(len(targets))
        ]
        for k, row_tags, row_stats in zip(good, result.tags, result.stats):
            tags[k] = [label_id[t] for t in row_tags]  # every label is known: label_errors checked the types
            stats[k] = {**row_stats, "error": ""}
        return {self.output_column: tags, "projection_stats": stats}


def projection_summary(
    ds: datasets.Dataset, entities_column: str = "source_entities", tags_column: str = "projected_tags"
) -> dict:
    """Totals of ``projection_stats`` plus entities per type before and after projection."""
    stats = ds.data.column("projection_stats").combine_chunks()
    totals = {name: int(np.asarray(stats.field(name)).sum()) for name in ("entities", "projected", "dropped")}
    errors = np.asarray(stats.field("error").to_pylist(), dtype=object)
    totals["rows"] = len(ds)
    totals["rows_with_error"] = int((errors != "").sum())
    names = ds.features[tags_column].feature.names
    import pyarrow.compute as pc

    flat_tags = pc.list_flatten(ds.data.column(tags_column)).to_numpy(zero_copy_only=False)
    counts = (
        np.bincount(flat_tags.astype(np.int64), minlength=len(names)) if len(flat_tags) else np.zeros(len(names), int)
    )
    labels = pc.list_flatten(ds.data.column(entities_column)).combine_chunks() if len(ds) else None
    source_types: dict[str, int] = {}
    if labels is not None and len(labels):
        for label, n in zip(
            *np.unique(np.asarray(labels.field("label").to_pylist(), dtype=object), return_counts=True)
        ):
            source_types[str(label)] = int(n)
    projected_types = {n[2:]: int(c) for n, c in zip(names, counts) if n.startswith("B-")}
    totals["per_type"] = {
        t: {"source": source_types.get(t, 0), "projected_spans": projected_types.get(t, 0)}
        for t in sorted(set(source_types) | set(projected_types))
    }
    return totals
