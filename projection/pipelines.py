"""translate-train and translate-test: chains of the projection transforms, from Python or YAML.

translate-train
    labelled source sentence -> MT into the target language (or a parallel corpus' sentence)
    -> target words -> align source/target words -> project the source entities.
translate-test (Politov et al. 2025)
    unlabelled original target sentence -> MT into the source language -> tag the translation
    with a source NER model -> align -> project back onto the ORIGINAL target words.

:func:`run_projection` runs a :class:`ProjectionConfig` for each target language, saves a
``DatasetDict`` per language under ``output_dir/<lang>/`` and writes ``projection_summary.json``:
totals of projected/dropped entities per type and, where the target side has gold tags, the
projection's entity-level F1 against them.

Failure behaviour: the config is checked whole before anything is read or written. Each language
is staged in a hidden folder and renamed into place when complete, and the summary is rewritten
(atomically) after each language, so a run that fails on its second language keeps the first one,
described by the summary, and never leaves a folder that looks finished but is not (or a summary
describing another run's folder).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any, Optional, Sequence

import datasets

from dataset_builders import corpus_spec, load_corpus
from dataset_builders.atomic import staged_dir, write_json
from dataset_builders.corpora import corpus_files
from dataset_builders.errors import UserError
from projection.transforms import Align, Project, SourceEntities, Translate, add_parallel, projection_summary

logger = logging.getLogger(__name__)

MODES = ("translate-train", "translate-test")


@dataclasses.dataclass
class ProjectionConfig:
    """What to project and how; every field has the meaning of the same key in the YAML file.

    translator: ``{"kind": "pretranslated"}`` (a sentence-parallel corpus: ``corpus`` in the target
        language, or ``parallel_corpus``), ``{"kind": "apertium"}`` or ``{"kind": "hf", "model": ...,
        "num_beams": 4, "batch_size": 16}``.
    aligner: ``{"kind": "eflomal", "symmetrization": ..., "runs": 1, "extra_parallel": [src, tgt]}``,
        ``{"kind": "embedding", "model": ..., "layer": 8, "method": "itermax"}``, ``{"kind": "simalign", ...}`` or
        ``{"kind": "monolingual", "threshold": 0.7}`` (same-language text).
    method: ``{"name": "heuristic", "merge_distance": 1, "length_ratio": 0.8}``,
        ``{"name": "candidates", "solver": "greedy"|"ilp"|"bipartite", "max_ngram": ..., "weights": {...}}`` or
        ``{"name": "backtranslation", "translator": {"kind": "apertium", "mode": "html"}, ...}`` (the marked
        source is translated into the target language, then aligned monolingually; no aligner needed).
    tagger (translate-test): ``{"model": PATH_OR_ID, "type_map": {"MISC": null}}``.
    """

    corpus: str
    target_langs: list[str]
    mode: str = "translate-train"
    source_lang: str = "en"
    data_dir: Optional[str] = None
    splits: Optional[list[str]] = None
    translator: dict = dataclasses.field(default_factory=lambda: {"kind": "pretranslated"})
    aligner: dict = dataclasses.field(default_factory=lambda: {"kind": "eflomal"})
    method: dict = dataclasses.field(default_factory=lambda: {"name": "heuristic"})
    tagger: Optional[dict] = None
    parallel_corpus: Optional[str] = None
    output_dir: str = "xner-output/projection"
    max_samples: Optional[int] = None
    num_proc: Optional[int] = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {MODES}, got {self.mode!r}")
        if isinstance(self.target_langs, str):
            self.target_langs = [self.target_langs]
        if not self.target_langs or not all(isinstance(lang, str) and lang for lang in self.target_langs):
            raise UserError(
                f"target_langs (--target-langs) must be a list of language codes, got {self.target_langs!r}"
            )
        if self.max_samples is not None and (
            isinstance(self.max_samples, bool) or not isinstance(self.max_samples, int) or self.max_samples < 1
        ):
            raise UserError(
                f"max_samples (--max-samples) must be a positive number of sentences, got {self.max_samples!r}"
            )
        if self.num_proc is not None and (not isinstance(self.num_proc, int) or self.num_proc < 1):
            raise UserError(f"num_proc (--num-proc) must be a positive number of processes, got {self.num_proc!r}")
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise UserError(f"output_dir (--output-dir) {self.output_dir!r} is a file, not a folder")
        from projection.config_checks import check_components

        check_components(self.translator, self.aligner, self.method, self.tagger, needs_aligner(self.method))
        if self.mode == "translate-test" and not self.tagger:
            raise UserError("translate-test needs a tagger: {model: PATH_OR_HUB_ID} (--tagger)")
        if self.mode == "translate-test" and self.translator["kind"] == "pretranslated":
            raise UserError("translate-test translates the original target text: choose an MT translator")
        corpus_spec(self.corpus)  # unknown corpus: error now, not after an hour

    @classmethod
    def from_dict(cls, values: dict) -> "ProjectionConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise UserError(f"unknown key(s) {sorted(unknown)} in projection config; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str) -> "ProjectionConfig":
        values = load_yaml_mapping(path)
        try:
            return cls.from_dict(values)
        except UserError as err:
            raise UserError(f"{path}: {err}") from None


def load_yaml_mapping(path: str) -> dict:
    """A YAML file of settings; malformed YAML or a non-mapping is a one-line error naming the file."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        try:
            values = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UserError(f"{path}: not valid YAML{where}: {problem}") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values


def build_translator(spec: dict, src_lang: str, tgt_lang: str):
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "hf":
        from projection.translate_hf import HFTranslator

        return HFTranslator(spec.pop("model"), src_lang, tgt_lang, **spec)
    if kind == "apertium":
        from projection.translate_apertium import ApertiumTranslator

        return ApertiumTranslator((src_lang, tgt_lang), **spec)
    raise ValueError(f"unknown translator kind {kind!r}; choose 'pretranslated', 'apertium' or 'hf'")


def build_aligner(spec: dict):
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "eflomal":
        from projection.eflomal_aligner import EflomalAligner

        if spec.get("extra_parallel") is not None:
            spec["extra_parallel"] = tuple(spec["extra_parallel"])
        return EflomalAligner(**spec)
    if kind in ("embedding", "simalign"):
        method = spec.pop("method", "itermax")
        if kind == "embedding":
            from projection.embedding_aligner import EmbeddingAligner as cls
        else:
            from projection.simalign_reference import SimAlignReference as cls
        return _OneMethod(cls(spec.pop("model"), **spec), method)
    if kind == "monolingual":  # two texts in the same language (a back-translation and its original)
        from projection.monolingual_align import MonolingualAligner

        return MonolingualAligner(**spec)
    raise ValueError(f"unknown aligner kind {kind!r}; choose 'eflomal', 'embedding', 'simalign' or 'monolingual'")


class _OneMethod:
    """An embedding aligner restricted to one matching method, with the ``align`` protocol."""

    def __init__(self, aligner, method: str):
        self.aligner, self.method = aligner, method

    @property
    def config(self) -> dict:
        return {**self.aligner.config, "method": self.method}

    @property
    def device(self):
        return getattr(self.aligner, "device", None)

    @device.setter
    def device(self, value):
        self.aligner.device = value

    def align(self, src, tgt):
        return self.aligner.align(src, tgt, method=self.method)


def build_projector(
    spec: dict, label_names: Sequence[str], src_lang: str = "en", tgt_lang: Optional[str] = None, **columns
):
    """``Project`` for heuristic / candidates; ``Backtranslate`` (marker-based, needs no aligner) for backtranslation."""
    spec = dict(spec)
    name = spec.pop("name")
    if name == "backtranslation":
        from projection.backtranslation import Backtranslate

        translator_spec = {"kind": "apertium", "mode": "html", **spec.pop("translator", {})}
        translator = build_translator(translator_spec, src_lang, tgt_lang)
        return Backtranslate(translator, tgt_lang, label_names, **columns, **spec)
    return Project(label_names, method=name, **columns, **spec)


def needs_aligner(method_spec: dict) -> bool:
    return method_spec.get("name") != "backtranslation"


def translate_train(
    source: datasets.Dataset,
    aligner,
    projector_spec: dict,
    translator=None,
    parallel: Optional[datasets.Dataset] = None,
    target_lang: Optional[str] = None,
    num_proc: Optional[int] = None,
    source_lang: str = "en",
) -> datasets.Dataset:
    """Project a labelled source dataset onto its translation (MT ``translator`` or ``parallel`` rows)."""
    if (translator is None) == (parallel is None):
        raise ValueError("give exactly one of translator= and parallel=")
    ds = SourceEntities().apply(source, num_proc=num_proc)
    if parallel is not None:
        ds = add_parallel(ds, parallel)
    else:
        ds = Translate(translator, target_lang=target_lang).apply(ds, num_proc=num_proc)
    if needs_aligner(projector_spec):
        ds = Align(aligner).apply(ds)
    label_names = source.features["ner_tags"].feature.names
    return build_projector(projector_spec, label_names, source_lang, target_lang).apply(ds, num_proc=num_proc)


def translate_test(
    target: datasets.Dataset,
    translator,
    tagger,
    aligner,
    projector_spec: dict,
    label_names: Sequence[str],
    source_lang: str = "en",
    num_proc: Optional[int] = None,
    target_lang: Optional[str] = None,
) -> datasets.Dataset:
    """Label original target sentences: MT to the source language, tag, align back, project."""
    ds = Translate(translator, target_lang=source_lang).apply(target, num_proc=num_proc)
    ds = tagger.apply(ds)
    if needs_aligner(projector_spec):
        ds = Align(aligner, source_column="translation_tokens", target_column="tokens").apply(ds)
    projector = build_projector(
        projector_spec,
        label_names,
        source_lang,
        target_lang,
        source_column="translation_tokens",
        target_column="tokens",
    )
    return projector.apply(ds, num_proc=num_proc)


def gold_f1(ds: datasets.Dataset, gold_column: str) -> Optional[dict]:
    if gold_column not in ds.column_names:
        return None
    from training.metrics import load_metric

    gold_names = ds.features[gold_column].feature.names
    names = ds.features["projected_tags"].feature.names
    result = load_metric().compute(
        predictions=[[names[i] for i in row] for row in ds["projected_tags"]],
        references=[[gold_names[i] for i in row] for row in ds[gold_column]],
    )
    return {
        "precision": result["overall_precision"],
        "recall": result["overall_recall"],
        "f1": result["overall_f1"],
        "per_type": {k: v for k, v in result.items() if isinstance(v, dict)},
    }


def _limit(dd: datasets.DatasetDict, n: Optional[int]) -> datasets.DatasetDict:
    return dd if n is None else datasets.DatasetDict({s: d.select(range(min(n, len(d)))) for s, d in dd.items()})


def _components(config: ProjectionConfig, aligner, lang: str, features: datasets.Features) -> dict:
    """The resolved settings of every component (defaults included), for cards and provenance."""
    src, tgt = (config.source_lang, lang) if config.mode == "translate-train" else (lang, config.source_lang)
    if config.translator["kind"] == "pretranslated":
        translator = {"translator": "pretranslated", "corpus": config.parallel_corpus or config.corpus}
    else:
        translator = build_translator(config.translator, src, tgt).config
    label_names = features["projected_tags"].feature.names
    projector = build_projector(config.method, label_names, config.source_lang, lang).config
    return {
        "translator": translator,
        "aligner": aligner.config if aligner is not None else None,
        "projector": projector,
        "tagger": dict(config.tagger) if config.tagger else None,
    }


def _check_parallel(config: ProjectionConfig, source: datasets.DatasetDict, lang: str) -> datasets.DatasetDict:
    """The target side of a pre-translated corpus, split by split as long as the (whole) source side.

    Row i of one must translate row i of the other, so any difference in length is an error: cutting
    the longer side to length would shift every row after the first extra or missing line.
    """
    name = config.parallel_corpus or config.corpus
    parallel = load_corpus(name, config.data_dir, lang, list(source))
    for split, ds in source.items():
        if len(parallel[split]) != len(ds):
            describe = (
                (lambda n, lg: corpus_files(n, config.data_dir, lg, [split])[split])
                if name != "wikiann"
                else (lambda n, lg: f"{n} ({lg}, {split})")
            )
            raise UserError(
                f"parallel corpora differ in length ({split}): {describe(config.corpus, config.source_lang)} has "
                f"{len(ds)} sentences, {describe(name, lang)} has {len(parallel[split])}; sentence i of one must "
                f"translate sentence i of the other"
            )
    return parallel


def _project_language(config: ProjectionConfig, aligner, lang: str) -> tuple[datasets.DatasetDict, str]:
    """One target language's projected ``DatasetDict`` and the name of its gold tag column."""
    if config.mode == "translate-train":
        source = load_corpus(config.corpus, config.data_dir, config.source_lang, config.splits)
        parallel = _check_parallel(config, source, lang) if config.translator["kind"] == "pretranslated" else None
        dd = _limit(source, config.max_samples)
        if parallel is not None:
            parallel = _limit(parallel, config.max_samples)
        out = datasets.DatasetDict()
        for split, ds in dd.items():
            if parallel is not None:
                out[split] = translate_train(
                    ds,
                    aligner,
                    config.method,
                    parallel=parallel[split],
                    target_lang=lang,
                    num_proc=config.num_proc,
                    source_lang=config.source_lang,
                )
            else:
                translator = build_translator(config.translator, config.source_lang, lang)
                out[split] = translate_train(
                    ds,
                    aligner,
                    config.method,
                    translator=translator,
                    target_lang=lang,
                    num_proc=config.num_proc,
                    source_lang=config.source_lang,
                )
        return out, "translation_ner_tags"
    from projection.tagging import Tag

    dd = _limit(load_corpus(config.corpus, config.data_dir, lang, config.splits), config.max_samples)
    tagger_spec = dict(config.tagger)
    tagger = Tag(tagger_spec.pop("model"), **tagger_spec)
    translator = build_translator(config.translator, lang, config.source_lang)
    label_names = corpus_spec(config.corpus).scheme.label_names
    out = datasets.DatasetDict(
        {
            split: translate_test(
                ds,
                translator,
                tagger,
                aligner,
                config.method,
                label_names,
                source_lang=config.source_lang,
                num_proc=config.num_proc,
                target_lang=lang,
            )
            for split, ds in dd.items()
        }
    )
    return out, "ner_tags"


def _same_settings(a: dict, b: dict) -> bool:
    """Whether two runs' configs differ at most in their target languages (and where they write)."""
    ignore = {"target_langs", "output_dir"}
    return {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


def _finished_languages(config: ProjectionConfig, summary_path: str) -> dict:
    """The languages an earlier run with the same settings finished (their folders still there)."""
    try:
        with open(summary_path, encoding="utf-8") as handle:
            earlier = json.load(handle)
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(earlier, dict) or not _same_settings(earlier.get("config") or {}, dataclasses.asdict(config)):
        return {}
    return {
        lang: info
        for lang, info in (earlier.get("languages") or {}).items()
        if os.path.isdir(os.path.join(config.output_dir, lang))
    }


def run_projection(config: ProjectionConfig) -> dict:
    """Run ``config`` for every target language; returns (and writes) the summary.

    Each language's folder and its entry in ``projection_summary.json`` are written together: the
    folder is staged and renamed into place, then the summary is rewritten (see the module docstring).
    """
    summary: dict[str, Any] = {"config": dataclasses.asdict(config), "languages": {}}
    aligner = build_aligner(config.aligner) if needs_aligner(config.method) else None
    summary_path = os.path.join(config.output_dir, "projection_summary.json")
    done = _finished_languages(config, summary_path)
    for lang in config.target_langs:
        started = time.perf_counter()
        out, gold_column = _project_language(config, aligner, lang)
        path = os.path.join(config.output_dir, lang)
        entry = {
            "path": path,
            "components": _components(config, aligner, lang, next(iter(out.values())).features),
            "seconds": round(time.perf_counter() - started, 2),
            "splits": {
                split: {**projection_summary(ds), "gold": gold_f1(ds, gold_column)} for split, ds in out.items()
            },
        }
        with staged_dir(path) as staging:
            out.save_to_disk(staging)
            # While the folder is swapped, the summary describes no version of this language: at
            # every moment each language it lists is the folder on disk.
            done.pop(lang, None)
            if os.path.exists(summary_path):
                write_json(summary_path, {**summary, "languages": done})
        done[lang] = entry
        summary["languages"] = dict(done)
        write_json(summary_path, summary)
    return summary
