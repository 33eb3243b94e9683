"""Dataset cards for projected NER datasets, filled from what the projection pipeline did.

Card data is a dataclass building on ``huggingface_hub``'s :class:`~huggingface_hub.DatasetCardData`
(SpanMarker's ``model_card.py`` is the model): :meth:`ProjectedDatasetCardData.from_projection`
reads a run's ``projection_summary.json`` (and its :class:`~projection.pipelines.ProjectionConfig`),
:meth:`~ProjectedDatasetCardData.to_dict` derives the template variables (tables, references),
:meth:`~ProjectedDatasetCardData.to_yaml` the Hub metadata, and :func:`render_dataset_card` renders
``templates/dataset_card.md.j2``. :mod:`model_cards.hub_layout` adds the ``configs``/``dataset_info``
metadata of the parquet files it writes.

What a card states comes from the run: languages, source corpus and its licence (from
:func:`dataset_builders.corpus_spec`), translator, aligner, projection method and their parameters
(the values given, completed with the defaults of the installed xner components), rows per split,
projection statistics (source entities, projected, dropped, per type; F1 against gold target tags
where the run had them). No Hub look-up, clock or host name is involved, and local paths are shown
by their last component only.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

from huggingface_hub import DatasetCard, DatasetCardData
from huggingface_hub.utils import yaml_dump

from dataset_builders.corpora import WIKIANN_HUB_ID
from dataset_builders.errors import UserError
from model_cards.rendering import hub_id, markdown_table, params_text, public_name, render, size_category, unique

TEMPLATE = "dataset_card.md.j2"

# Licence text of dataset_builders' corpus specs -> Hub licence id; anything else is "other"
# (the full text is in the card body).
LICENSE_IDS = {
    "cc by-nc 4.0": "cc-by-nc-4.0",
    "cc by 4.0": "cc-by-4.0",
    "cc by-sa 4.0": "cc-by-sa-4.0",
    "apache-2.0": "apache-2.0",
    "mit": "mit",
}

# xner corpus name -> its dataset id on the Hub (the canonical copy as of 2025; the legacy
# un-namespaced ids redirect there). Corpora with no Hub copy (europarl-ner, xner-sample) are absent:
# metadata names no dataset rather than a guessed one.
HUB_DATASET_IDS = {
    "conll2003": "eriktks/conll2003",
    "conll2002": "eriktks/conll2002",
    "masakhaner2": "masakhane/masakhaner2",
    "germeval2014": "GermanEval/germeval_14",
    "wikiann": WIKIANN_HUB_ID,
}
# Where the terms of the corpora whose licence is no Hub licence id ("other") are stated: the Hub
# asks for ``license_name`` and ``license_link`` with ``license: other``.
LICENSE_LINKS = {
    "conll2003": "https://www.clips.uantwerpen.be/conll2003/ner/",
    "conll2002": "https://www.clips.uantwerpen.be/conll2002/ner/",
    "europarl-ner": "https://www.statmt.org/europarl/",
}

REFERENCES = {
    "heuristic": "García-Ferrero, Agerri and Rigau (2022), Model and Data Transfer for Cross-Lingual Sequence "
    "Labelling in Zero-Resource Settings, Findings of EMNLP 2022 (alignment-run heuristic projection).",
    "candidates": "Politov et al. (2025): candidate matching for annotation projection (n-gram or NER "
    "candidates, alignment/NER/translation scores, greedy, ILP or bipartite matching).",
    "backtranslation": "Politov et al. (2025): refinement by back-translation with entity markers and "
    "same-language alignment.",
    "translate-test": "Politov et al. (2025): translate-test labelling of original target-language text.",
    "eflomal": "Östling and Tiedemann (2016), Efficient Word Alignment with Markov Chain Monte Carlo, "
    "The Prague Bulletin of Mathematical Linguistics 106 (eflomal).",
    "embedding": "Jalili Sabet, Dufter, Yvon and Schütze (2020), SimAlign: High Quality Word Alignments without "
    "Parallel Training Data using Static and Contextualized Embeddings, Findings of EMNLP 2020.",
    "apertium": "Forcada et al. (2011), Apertium: a free/open-source platform for rule-based machine "
    "translation, Machine Translation 25(2).",
}
REFERENCES["simalign"] = REFERENCES["embedding"]

# Where the defaults of each component live (signature defaults of the installed code), and which
# parameters are part of its behaviour (device/batching settings are not).
_COMPONENTS = {
    ("aligner", "eflomal"): ("projection.eflomal_aligner", "EflomalAligner"),
    ("aligner", "embedding"): ("projection.embedding_aligner", "EmbeddingAligner"),
    ("aligner", "simalign"): ("projection.simalign_reference", "SimAlignReference"),
    ("aligner", "monolingual"): ("projection.monolingual_align", "MonolingualAligner"),
    ("translator", "apertium"): ("projection.translate_apertium", "ApertiumTranslator"),
    ("translator", "hf"): ("projection.translate_hf", "HFTranslator"),
    ("method", "heuristic"): ("projection.heuristic", "project_heuristic"),
    ("method", "candidates"): ("projection.candidate_matching", "project_candidates"),
    ("method", "backtranslation"): ("projection.backtranslation", "Backtranslate"),
}
_NOT_BEHAVIOUR = {
    "self",
    "device",
    "dtype",
    "batch_size",
    "pair",
    "src_lang",
    "tgt_lang",
    "target_lang",
    "label_names",
    "translator",
    "aligner",
    "candidates",
    "ner_probs",
    "entity_translations",
    "matching_methods",
    "model_name_or_path",
}
_METHOD_PARAMS = {
    "heuristic": {"merge_distance", "length_ratio"},
    "candidates": {"solver", "weights", "max_ngram"},
    "backtranslation": {"marker_tag", "piece_distance", "merge_distance", "length_ratio"},
}


SPLIT_ORDER = ("train", "validation", "dev", "test")
COLUMNS = {
    "tokens": "{tokens}",
    "ner_tags": "gold tags of `tokens` (ClassLabel, IOB2)",
    "source_entities": "{source_entities}",
    "translation": "the translation, as text",
    "translation_tokens": "{translation_tokens}",
    "translation_ner_tags": "gold tags of `translation_tokens` from the annotated parallel corpus "
    "(used to score the projection)",
    "translation_error": "the translator's error message for a row that failed to translate (else empty)",
    "backtranslation": "the marked back-translation the projection was read from",
    "alignment": "word alignment links `[i, j]` (source word i, target word j)",
    "projected_tags": "**the projected tags** of the target-language words (ClassLabel, IOB2)",
    "projection_stats": "per row: entities in, projected, dropped, and the reason a row could not be projected",
}


def split_key(split: str) -> tuple:
    """Splits in their usual order (train, validation, test), others after them by name."""
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


def resolve_component(role: str, spec: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """The given settings of a translator/aligner/method completed with the installed defaults.

    ``{"kind": "eflomal", "runs": 3}`` -> ``{"kind": "eflomal", "runs": 3, "symmetrization":
    "grow-diag-final-and", ...}``. When the component cannot be imported (an optional extra is
    missing) the given settings are returned as they are.
    """
    if spec is None:
        return None
    spec = dict(spec)
    key = spec.get("kind") or spec.get("name")
    target = _COMPONENTS.get((role, key))
    if target is None:
        return spec
    try:
        obj = getattr(importlib.import_module(target[0]), target[1])
        signature = inspect.signature(obj)
    except Exception:  # an optional dependency is missing: show what was given
        return spec
    allowed = _METHOD_PARAMS.get(key) if role == "method" else None
    defaults = {}
    for name, param in signature.parameters.items():
        if param.default is inspect.Parameter.empty or name in _NOT_BEHAVIOUR:
            continue
        if param.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if allowed is not None and name not in allowed:
            continue
        default = param.default
        defaults[name] = list(default) if isinstance(default, tuple) else default
    if role == "aligner" and key in ("embedding", "simalign"):
        defaults["method"] = "itermax"  # pipelines.build_aligner's default matching method
    if key == "candidates":
        try:  # Project builds n-gram candidates; project_candidates scores alignment alone by default
            ngram = inspect.signature(importlib.import_module("projection.candidates").ngram_candidates)
            defaults["max_ngram"] = ngram.parameters["max_ngram"].default
        except Exception:
            pass
        if defaults.get("weights") is None:
            defaults["weights"] = {"alignment": 1.0}
    resolved = {**defaults, **spec}
    if key == "backtranslation":  # pipelines.build_projector: Apertium in HTML mode unless told otherwise
        resolved["translator"] = {"kind": "apertium", "mode": "html", **(spec.get("translator") or {})}
    return resolved


def method_tag(method: Mapping[str, Any]) -> str:
    """A short name for a projection method: ``heuristic``, ``candidates-greedy``, ``backtranslation``."""
    name = method["name"]
    if name == "candidates":
        return f"candidates-{method.get('solver', 'greedy')}"
    return name


def corpus_facts(corpus: str) -> dict:
    """Licence, citation, homepage and domain of a known corpus (``dataset_builders.corpus_spec``)."""
    from dataset_builders import corpus_spec

    try:
        spec = corpus_spec(corpus)
    except ValueError:
        return {"license": "", "citation": "", "homepage": "", "domain": "", "label_names": None, "languages": []}
    return {
        "license": spec.license,
        "citation": spec.citation,
        "homepage": spec.homepage,
        "domain": spec.domain,
        "label_names": list(spec.scheme.label_names),
        "languages": list(spec.languages),
    }


def dataset_hub_id(name: Optional[str]) -> Optional[str]:
    """The Hub dataset id of a dataset reference: a known corpus' canonical id, a namespaced Hub id as
    it is, else None (a local folder, a corpus with no Hub copy)."""
    if not name:
        return None
    return HUB_DATASET_IDS.get(str(name)) or hub_id(str(name))


def license_slug(corpus: str) -> str:
    """``license_name`` for a corpus' own terms: lowercase letters, digits and dashes, as the Hub wants."""
    return re.sub(r"[^a-z0-9]+", "-", corpus.lower()).strip("-") + "-license"


def license_id(text: str) -> str:
    """Hub licence id for a corpus licence text: a known licence, ``unknown``, or ``other``."""
    if not text or text.lower().startswith("unknown"):
        return "unknown"
    head = text.split("(")[0].strip().lower()
    return LICENSE_IDS.get(head, "other")


@dataclass
class ProjectedConfig:
    """One config of a projected dataset: one target language projected by one method.

    ``splits`` maps a split to its ``projection_summary`` entry (``rows``, ``entities``,
    ``projected``, ``dropped``, ``rows_with_error``, ``per_type`` and ``gold``: P/R/F1 against gold
    target tags or None). ``source`` is where the rows are (a ``save_to_disk`` folder), not rendered.
    """

    name: str
    language: str
    mode: str
    corpus: str
    source_language: str
    translator: dict
    aligner: Optional[dict]
    method: dict
    splits: dict
    tagger: Optional[dict] = None
    parallel_corpus: Optional[str] = None
    max_samples: Optional[int] = None
    source: Optional[str] = field(default=None, repr=False, compare=False)

    @property
    def method_tag(self) -> str:
        return method_tag(self.method)

    @property
    def words_column(self) -> str:
        """The column holding the target-language words the projected tags belong to."""
        return "translation_tokens" if self.mode == "translate-train" else "tokens"

    @property
    def num_rows(self) -> int:
        return sum(int(s.get("rows", 0)) for s in self.splits.values())


def _load_json(value: Union[str, os.PathLike, Mapping]) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    path = os.fspath(value)
    if os.path.isdir(path):
        path = os.path.join(path, "projection_summary.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _config_dict(config: Any) -> dict:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(config)


def projected_configs(
    summary: Union[str, os.PathLike, Mapping], config: Any = None, names: Optional[Mapping[str, str]] = None
) -> list[ProjectedConfig]:
    """The configs (one per target language) of one ``run_projection`` run.

    ``summary``: ``projection_summary.json`` (a dict, the file or its folder); ``config``: the run's
    :class:`~projection.pipelines.ProjectionConfig` or dict (default: the one recorded in the
    summary); ``names``: language -> config name (default: the language).
    """
    folder = None
    if not isinstance(summary, Mapping):
        path = os.fspath(summary)
        folder = path if os.path.isdir(path) else os.path.dirname(path)
    summary = _load_json(summary)
    settings = {**summary.get("config", {}), **_config_dict(config)}
    if "corpus" not in settings:
        raise ValueError("the projection summary records no config and none was given")
    mode = settings.get("mode", "translate-train")
    method = resolve_component("method", settings.get("method") or {"name": "heuristic"})
    aligner = resolve_component("aligner", settings.get("aligner")) if method["name"] != "backtranslation" else None
    configs = []
    for lang in sorted(summary.get("languages", {})):
        info = summary["languages"][lang]
        configs.append(
            ProjectedConfig(
                name=(names or {}).get(lang, lang),
                language=lang,
                mode=mode,
                corpus=settings["corpus"],
                source_language=settings.get("source_lang", "en"),
                translator=resolve_component("translator", settings.get("translator") or {"kind": "pretranslated"}),
                aligner=aligner,
                method=method,
                splits={split: dict(info["splits"][split]) for split in sorted(info["splits"], key=split_key)},
                tagger=dict(settings["tagger"]) if settings.get("tagger") else None,
                parallel_corpus=settings.get("parallel_corpus"),
                max_samples=settings.get("max_samples"),
                source=os.path.join(folder, lang) if folder else info.get("path"),
            )
        )
    return configs


def name_configs(runs: Sequence[Sequence[ProjectedConfig]]) -> list[ProjectedConfig]:
    """Flatten the configs of several runs, naming them ``<lang>`` when each language has one
    method, else ``<lang>-<method>`` (``-<aligner>`` added when that is still ambiguous)."""
    configs = [dataclasses.replace(c) for run in runs for c in run]
    per_lang: dict[str, list[ProjectedConfig]] = {}
    for c in configs:
        per_lang.setdefault(c.language, []).append(c)
    several = any(len(group) > 1 for group in per_lang.values())
    for c in configs:
        c.name = f"{c.language}-{c.method_tag}" if several else c.language
    names = [c.name for c in configs]
    for c in configs:
        if names.count(c.name) > 1 and c.aligner:
            c.name = f"{c.name}-{c.aligner.get('kind')}"
    seen = [c.name for c in configs]
    clashes = sorted({n for n in seen if seen.count(n) > 1})
    if clashes:
        raise ValueError(
            f"several runs give the same config name(s) {clashes}: they project the same language "
            f"with the same method and aligner; publish them to separate repos"
        )
    return sorted(configs, key=lambda c: c.name)


YAML_FIELDS = [
    "pretty_name",
    "language",
    "license",
    "license_name",
    "license_link",
    "multilinguality",
    "size_categories",
    "source_datasets",
    "task_categories",
    "task_ids",
    "annotations_creators",
    "language_creators",
    "tags",
    "configs",
    "dataset_info",
]


@dataclass
class ProjectedDatasetCardData(DatasetCardData):
    """Card data of a projected NER dataset (one or more configs of one source corpus).

    Fill it with :meth:`from_projection` / :meth:`from_projections`; ``hub_configs`` and
    ``hub_dataset_info`` (the ``configs:`` and ``dataset_info:`` metadata) are set by
    :func:`model_cards.hub_layout.write_hub_dataset` from the files it writes.
    """

    configs_info: list = field(default_factory=list)  # ProjectedConfig, sorted by name
    repo_id: Optional[str] = None
    pretty_name: Optional[str] = None
    source_corpus: str = ""
    source_language: str = "en"
    source_license: str = ""
    source_citation: str = ""
    source_homepage: str = ""
    source_domain: str = ""
    label_names: Optional[list] = None
    hub_configs: Optional[list] = None
    hub_dataset_info: Optional[list] = None
    tags: list = field(default_factory=lambda: ["xner", "annotation-projection", "cross-lingual", "ner"])
    xner_version: str = field(default_factory=lambda: __import__("xner").__version__)

    def __post_init__(self):
        corpora = unique(c.corpus for c in self.configs_info)
        if len(corpora) > 1:
            raise ValueError(f"a projected dataset has one source corpus; got {corpora}")
        if corpora and not self.source_corpus:
            self.source_corpus = corpora[0]
        if self.source_corpus:
            facts = corpus_facts(self.source_corpus)
            self.source_license = self.source_license or facts["license"]
            self.source_citation = self.source_citation or facts["citation"]
            self.source_homepage = self.source_homepage or facts["homepage"]
            self.source_domain = self.source_domain or facts["domain"]
            self.label_names = self.label_names or facts["label_names"]
        if self.configs_info:
            self.source_language = self.configs_info[0].source_language
        if self.pretty_name is None and self.source_corpus:
            langs = ", ".join(unique(c.language for c in self.configs_info))
            self.pretty_name = f"{self.source_corpus} projected to {langs} (xner)"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_projection(
        cls, summary: Union[str, os.PathLike, Mapping], config: Any = None, **kwargs: Any
    ) -> "ProjectedDatasetCardData":
        """Card data of one ``run_projection`` run: ``summary`` is ``projection_summary.json`` (a
        dict, the file, or the run's output folder), ``config`` its ``ProjectionConfig`` (default:
        the one the summary records). ``kwargs``: ``repo_id``, ``pretty_name``, ... fields."""
        return cls.from_projections([(summary, config)], **kwargs)

    @classmethod
    def from_projections(cls, runs: Sequence[Any], **kwargs: Any) -> "ProjectedDatasetCardData":
        """Card data of several runs of the same corpus (e.g. several methods): each run is a summary
        or a ``(summary, config)`` pair. Configs are named by :func:`name_configs`."""
        pairs = [run if isinstance(run, tuple) else (run, None) for run in runs]
        configs = name_configs([projected_configs(summary, config) for summary, config in pairs])
        return cls(configs_info=configs, **kwargs)

    # ------------------------------------------------------------------ derived values
    @property
    def target_languages(self) -> list[str]:
        return sorted(unique(c.language for c in self.configs_info))

    def _languages(self) -> list[str]:
        return unique([self.source_language, *self.target_languages])

    def _reference_keys(self) -> list[str]:
        keys = []
        for c in self.configs_info:
            keys.append(c.method["name"])
            if c.mode == "translate-test":
                keys.append("translate-test")
            if c.aligner:
                keys.append(c.aligner.get("kind"))
            keys.append(c.translator.get("kind"))
            if c.method["name"] == "backtranslation":
                keys.append(c.method.get("translator", {}).get("kind"))
        return [k for k in unique(keys) if k in REFERENCES]

    def split_rows(self) -> list[dict]:
        rows = []
        for c in self.configs_info:
            for split in sorted(c.splits, key=split_key):
                s = c.splits[split]
                gold = s.get("gold") or {}
                rows.append(
                    {
                        "config": c.name,
                        "split": split,
                        "rows": s.get("rows"),
                        "source entities": s.get("entities"),
                        "projected": s.get("projected"),
                        "dropped": s.get("dropped"),
                        "rows flagged": s.get("rows_with_error"),
                        "gold P": gold.get("precision"),
                        "gold R": gold.get("recall"),
                        "gold F1": gold.get("f1"),
                    }
                )
        return rows

    def type_rows(self) -> list[dict]:
        rows = []
        for c in self.configs_info:
            for split in sorted(c.splits, key=split_key):
                per_type = c.splits[split].get("per_type") or {}
                for entity_type in sorted(per_type):
                    counts = per_type[entity_type]
                    source, projected = counts.get("source", 0), counts.get("projected_spans", 0)
                    if not source and not projected:
                        continue
                    rows.append(
                        {
                            "config": c.name,
                            "split": split,
                            "type": entity_type,
                            "source entities": source,
                            "projected spans": projected,
                            "ratio": projected / source if source else None,
                        }
                    )
        return rows

    def method_rows(self) -> list[dict]:
        rows = []
        for c in self.configs_info:
            translator = dict(c.translator)
            kind = translator.pop("kind")
            if kind == "pretranslated":
                translator_text = f"human translation: parallel corpus `{c.parallel_corpus or c.corpus}`"
            else:
                direction = (
                    f"{c.source_language}→{c.language}"
                    if c.mode == "translate-train"
                    else f"{c.language}→{c.source_language}"
                )
                translator_text = f"{kind} ({direction}): {params_text(translator)}"
            method = dict(c.method)
            name = method.pop("name")
            if c.aligner:
                aligner = dict(c.aligner)
                aligner_text = f"{aligner.pop('kind')}: {params_text(aligner)}"
            else:
                aligner_text = "same-language aligner of the back-translation step"
            rows.append(
                {
                    "config": c.name,
                    "language": c.language,
                    "mode": c.mode,
                    "translator": translator_text,
                    "aligner": aligner_text,
                    "method": f"{name}: {params_text(method)}",
                    "tagger": public_name(c.tagger.get("model")) if c.tagger else None,
                }
            )
        return rows

    def column_rows(self) -> list[dict]:
        """The columns of the published rows (from the written features when known) and what they hold."""
        if self.hub_dataset_info:
            names = [f["name"] for f in self.hub_dataset_info[0].get("features", [])]
        else:
            names = [n for n in COLUMNS if n not in ("translation_ner_tags", "translation_error", "backtranslation")]
        modes = unique(c.mode for c in self.configs_info)
        source = self.source_language
        train_text = {
            "tokens": f"the {source} source words",
            "source_entities": f"the {source} entities to project: `{{start, end, label}}` over `tokens`",
            "translation_tokens": "the words of the translation: the target-language words",
        }
        test_text = {
            "tokens": "the original target-language words",
            "source_entities": f"the entities the {source} NER model found in the translation: "
            f"`{{start, end, label}}` over `translation_tokens`",
            "translation_tokens": f"the words of the {source} translation",
        }
        if len(modes) > 1:
            texts = {k: f"translate-train: {train_text[k]}; translate-test: {test_text[k]}" for k in train_text}
        else:
            texts = test_text if modes == ["translate-test"] else train_text
        texts = {**COLUMNS, **texts}
        return [{"column": f"`{name}`", "content": texts.get(name, "—")} for name in names]

    def parallel_corpora(self) -> list[dict]:
        """Parallel corpora other than the source corpus that gave translations (their licences apply too)."""
        names = unique(
            c.parallel_corpus
            for c in self.configs_info
            if c.mode == "translate-train"
            and c.translator.get("kind") == "pretranslated"
            and c.parallel_corpus
            and c.parallel_corpus != c.corpus
        )
        return [{"name": name, "license": corpus_facts(name)["license"] or "not recorded"} for name in names]

    def usage(self) -> dict:
        c = self.configs_info[0] if self.configs_info else None
        return {
            "repo": self.repo_id or "path/to/this/folder",
            "config": c.name if c else "default",
            "words_column": c.words_column if c else "tokens",
            "mode": c.mode if c else "translate-train",
        }

    def source_dataset_ids(self) -> list[str]:
        """Hub ids of the corpora the rows come from (the source corpus, parallel corpora), where they have one."""
        names = [
            self.source_corpus,
            *(c.parallel_corpus for c in self.configs_info if c.translator.get("kind") == "pretranslated"),
        ]
        return unique(dataset_hub_id(name) for name in names)

    def license_terms(self) -> dict:
        """``license_name``/``license_link`` when the licence is ``other``: the corpus' terms page, else its homepage."""
        if license_id(self.source_license) != "other":
            return {}
        link = LICENSE_LINKS.get(self.source_corpus) or self.source_homepage
        if not link:
            raise UserError(
                f"corpus {self.source_corpus!r} has licence {self.source_license!r}, which is no Hub "
                f"licence id, and no link to its terms: add it to model_cards.dataset_card.LICENSE_LINKS"
            )
        return {"license_name": license_slug(self.source_corpus), "license_link": link}

    # ------------------------------------------------------------------ card data API
    def yaml_dict(self) -> dict:
        total = sum(c.num_rows for c in self.configs_info)
        modes = unique(c.mode for c in self.configs_info)
        machine_text = any(
            c.mode == "translate-train" and c.translator.get("kind") != "pretranslated" for c in self.configs_info
        )
        values = {
            "pretty_name": self.pretty_name,
            "language": self._languages(),
            "license": license_id(self.source_license),
            **self.license_terms(),
            "multilinguality": "multilingual" if len(self._languages()) > 1 else "monolingual",
            "size_categories": [size_category(total)],
            # The Hub convention for derived data: ``extended|<source id>``; plain ``extended`` when the
            # source has no Hub copy.
            "source_datasets": [f"extended|{i}" for i in self.source_dataset_ids()] or ["extended"],
            "task_categories": ["token-classification"],
            "task_ids": ["named-entity-recognition"],
            "annotations_creators": ["machine-generated"],
            "language_creators": ["machine-generated" if machine_text else "found"]
            + (["found"] if machine_text and "translate-test" in modes else []),
            "tags": list(self.tags),
            "configs": self.hub_configs,
            "dataset_info": self.hub_dataset_info,
        }
        return {k: values[k] for k in YAML_FIELDS if values.get(k) is not None}

    def to_dict(self) -> dict:
        """Every template variable: the metadata plus tables and texts derived from the run."""
        usage = self.usage()
        return {
            **self.yaml_dict(),
            "pretty_name": self.pretty_name,
            "repo_id": self.repo_id,
            "xner_version": self.xner_version,
            "source_corpus": self.source_corpus,
            "source_language": self.source_language,
            "source_license": self.source_license or "not recorded",
            "license_is_restrictive": license_id(self.source_license) in ("other", "unknown"),
            "license_link": self.license_terms().get("license_link"),
            "source_hub_ids": self.source_dataset_ids(),
            "source_citation": self.source_citation,
            "source_homepage": self.source_homepage,
            "source_domain": self.source_domain or "not recorded",
            "corpus_languages": unique(
                [self.source_language] * any(c.mode == "translate-train" for c in self.configs_info)
                + [c.language for c in self.configs_info if c.mode == "translate-test"]
            ),
            "parallel_corpora": self.parallel_corpora(),
            "label_names": self.label_names or [],
            "entity_types": sorted(unique(n[2:] for n in (self.label_names or []) if n != "O")),
            "configs_info": [
                dataclasses.asdict(c)
                | {"method_tag": c.method_tag, "words_column": c.words_column, "num_rows": c.num_rows, "source": None}
                for c in self.configs_info
            ],
            "target_languages": self.target_languages,
            "modes": unique(c.mode for c in self.configs_info),
            "uses_parallel": any(
                c.mode == "translate-train" and c.translator.get("kind") == "pretranslated" for c in self.configs_info
            ),
            "uses_mt": any(
                c.mode == "translate-train" and c.translator.get("kind") != "pretranslated" for c in self.configs_info
            ),
            "uses_backtranslation": any(c.method["name"] == "backtranslation" for c in self.configs_info),
            "several_methods": len(self.configs_info) > len(self.target_languages),
            "methods_table": markdown_table(
                self.method_rows(),
                ["config", "language", "mode", "translator", "aligner", "method"]
                + (["tagger"] if any(c.tagger for c in self.configs_info) else []),
            ),
            "splits_table": markdown_table(self.split_rows()),
            "columns_table": markdown_table(self.column_rows()),
            "types_table": markdown_table(self.type_rows()),
            "has_gold": any((s.get("gold") or None) for c in self.configs_info for s in c.splits.values()),
            "references": [REFERENCES[k] for k in self._reference_keys()],
            "usage": usage,
        }

    def to_yaml(self, line_break: Optional[str] = None, original_order: Optional[list] = None) -> str:
        return yaml_dump(self.yaml_dict(), sort_keys=False, line_break=line_break).strip()


def render_dataset_card(card_data: ProjectedDatasetCardData) -> str:
    """The README.md text: YAML metadata + the rendered ``dataset_card.md.j2``; parsed back once
    through ``huggingface_hub.DatasetCard`` so a malformed header fails here, not on the Hub."""
    text = render(TEMPLATE, card_data=card_data.to_yaml(), **card_data.to_dict())
    DatasetCard(text)  # validates the YAML block
    return text


__all__ = [
    "HUB_DATASET_IDS",
    "LICENSE_IDS",
    "LICENSE_LINKS",
    "ProjectedConfig",
    "ProjectedDatasetCardData",
    "REFERENCES",
    "corpus_facts",
    "dataset_hub_id",
    "license_id",
    "license_slug",
    "method_tag",
    "name_configs",
    "projected_configs",
    "render_dataset_card",
    "resolve_component",
]
