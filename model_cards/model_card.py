"""Model cards for students (and teachers), filled from what training actually did.

The input is what a training run did: :class:`training.results.RunResults` (the one ``results.json``
of teachers and students, or the object ``train_teacher``/``distill`` return), which
:meth:`TrainingResults.from_run` reads into the card's view of the run (the fields are documented on
the class). :meth:`StudentCardData.from_training` turns that into card data building on
``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData`, SpanMarker-style:
:meth:`~StudentCardData.to_dict` derives the template variables (tables, usage code),
:meth:`~StudentCardData.to_yaml` the Hub metadata -- with ``model-index`` holding one entry per
test set, each marked in or out of domain -- and :func:`render_model_card` renders
``templates/model_card.md.j2``.

A card is deterministic: no clock, host name or Hub look-up; local paths appear as their last
component; framework versions are the ones the run recorded (or, when it recorded none, those of
the environment writing the card, and the card says so).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult, eval_results_to_model_index
from huggingface_hub.utils import yaml_dump

from model_cards.base_models import hub_id_of, provenance_note
from model_cards.dataset_card import corpus_facts, dataset_hub_id
from model_cards.rendering import (
    fmt,
    is_secret_key,
    markdown_table,
    model_title_name,
    params_text,
    public_name,
    render,
    scrub_paths,
    unique,
)
from training.metrics import SCORE_KEYS
from training.results import RESULTS_FILE, RunResults
from training.results import framework_versions as installed_versions

TEMPLATE = "model_card.md.j2"

STRATEGY_TEXT = {
    None: "supervised fine-tuning (cross-entropy on the training tags)",
    "soft-mse": "soft-label distillation: mean squared error between student and teacher probabilities on first "
    "sub-tokens",
    "soft-kl": "soft-label distillation: KL divergence with temperature between teacher and student distributions",
    "hard": "hard pseudo-labels: cross-entropy on the teacher's most probable label",
    "hard-confident": "hard pseudo-labels kept only above a teacher confidence threshold",
    "multi-teacher": "several teachers: a weighted average of their distributions as the soft target",
    "projected+kd": "projected labels plus distillation: cross-entropy on projected tags where they exist plus a "
    "soft loss",
    "voting": "voting between projected and teacher labels: cross-entropy where they agree, the teacher's soft "
    "distribution elsewhere",
}
REFERENCES = {
    "distillation": "Wu et al. (2020), Single-/Multi-Source Cross-Lingual NER via Teacher-Student Learning on "
    "Unlabeled Data in Target Language, ACL 2020.",
    "kl": "Hinton, Vinyals and Dean (2015), Distilling the Knowledge in a Neural Network.",
    "unitrans": "Wu et al. (2020), UniTrans: Unifying Model Transfer and Data Transfer for Cross-Lingual Named "
    "Entity Recognition with Unlabeled Data, IJCAI 2020.",
    "lora": "Hu et al. (2022), LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022.",
    "colada": "Ma et al. (2023), CoLaDa: A Collaborative Label Denoising Framework for Cross-lingual Named Entity "
    "Recognition, ACL 2023.",
    "advpicker": "Chen et al. (2021), AdvPicker: Effectively Leveraging Unlabeled Data via Adversarial Discriminator "
    "for Cross-Lingual NER, ACL 2021.",
    "cbst": "Zou et al. (2018), Unsupervised Domain Adaptation for Semantic Segmentation via Class-Balanced "
    "Self-Training, ECCV 2018.",
}
HYPERPARAMETER_KEYS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_train_steps",
    "weight_decay",
    "lr_scheduler_type",
    "num_warmup_steps",
    "max_grad_norm",
    "seed",
    "mixed_precision",
    "max_length",
    "stride",
    "label_all_tokens",
    "num_processes",
)
METRICS = (("f1", "F1"), ("precision", "Precision"), ("recall", "Recall"))


@dataclass
class EvalSet:
    """One evaluation of the model: a test set and the scores on it.

    ``metrics``: xner's one evaluation result schema (:func:`training.metrics.scores_of`:
    ``precision``, ``recall``, ``f1``, ``accuracy`` and ``per_type`` ``{TYPE: {precision, recall, f1, number}}``).
    ``in_domain`` None means: decided by comparing ``domain`` with the training data's domains.
    """

    name: str
    metrics: dict
    dataset: Optional[str] = None  # Hub id or xner corpus name
    config: Optional[str] = None
    split: str = "test"
    language: Optional[str] = None
    domain: Optional[str] = None
    in_domain: Optional[bool] = None
    num_sentences: Optional[int] = None
    revision: Optional[str] = None


@dataclass
class TrainingResults:
    """What a training run did, as its ``results.json`` records it (``to_dict``/``from_dict`` round-trip).

    base_model: the encoder or checkpoint the model started from (Hub id or local path).
    label_names: the label names in id order.
    adapter: LoRA settings (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``) for a LoRA
        student, None for a full fine-tune.
    freeze: ``{"embeddings": bool, "layers": int}`` frozen during training.
    teachers: ``[{"model": ..., "language": ..., "weight": ..., "description": ...}]``; empty for
        supervised training.
    strategy: the distillation strategy's ``config()`` (``{"name": "soft-kl", "temperature": 2.0}``);
        None for supervised training.
    train_data: ``[{"dataset": ..., "config": ..., "split": ..., "language": ..., "domain": ...,
        "num_sentences": ..., "labels": "teacher probabilities" | "projected_tags" | ...}]``.
    evaluations: :class:`EvalSet` per test set (in and out of domain).
    hyperparameters: optimisation settings (``run_ner_no_trainer.py`` names).
    training: run facts: ``completed_steps``, ``train_runtime_s``, ``train_tokens_per_s``, ``best``.
    framework_versions: package -> version of the training environment.
    merged: the LoRA adapter was merged into the base model (``xner merge``): a plain model now.
    epochs: the per-epoch evaluation history (``[{"epoch", "step", "train": {"loss"}, <eval set>:
        {<seqeval metrics>}}, ...]``, the ``epochs`` of the run's results.json).

    Read from a run's results with :meth:`from_run` (``from_dict``/``load`` for its ``results.json``).
    """

    base_model: str
    label_names: list
    adapter: Optional[dict] = None
    freeze: dict = field(default_factory=lambda: {"embeddings": False, "layers": 0})
    teachers: list = field(default_factory=list)
    strategy: Optional[dict] = None
    train_data: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    hyperparameters: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    framework_versions: Optional[dict] = None
    merged: bool = False
    epochs: list = field(default_factory=list)
    pseudo_labels: dict = field(default_factory=dict)

    def __post_init__(self):
        self.evaluations = [e if isinstance(e, EvalSet) else EvalSet(**e) for e in self.evaluations]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_run(cls, run: RunResults) -> "TrainingResults":
        """The card's view of a run (teacher or distillation): what :class:`training.results.RunResults` recorded,
        plus what each teacher folder's own ``results.json`` says about the teacher's training data."""
        student = run.student or {}
        hyperparameters = {k: run.args[k] for k in HYPERPARAMETER_KEYS if run.args.get(k) is not None}
        for key, value in (("learning_rate", run.learning_rate), ("num_processes", run.num_processes)):
            if value is not None:  # what the run used (the loop's resolved values)
                hyperparameters[key] = value
        training = {
            k: getattr(run, k)
            for k in ("completed_steps", "train_runtime_s", "train_tokens_per_s", "best")
            if getattr(run, k) is not None
        }
        return cls(
            base_model=run.model_name_or_path,
            label_names=list(run.label_names),
            adapter=student.get("lora"),
            freeze={"embeddings": bool(student.get("freeze_embeddings")), "layers": student.get("freeze_layers") or 0},
            teachers=[
                {"model": t["model"], "weight": t.get("weight"), **_teacher_facts(t["model"])} for t in run.teachers
            ],
            strategy=run.strategy,
            train_data=_train_data(run),
            evaluations=_evaluations(run),
            hyperparameters=hyperparameters,
            training=training,
            framework_versions=run.framework_versions or None,
            merged=bool(run.merged_from),
            epochs=list(run.epochs),
            pseudo_labels=run.pseudo_label_steps(),
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainingResults":
        """From a run's ``results.json`` dict (:class:`training.results.RunResults`)."""
        return cls.from_run(RunResults.from_dict(values))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "TrainingResults":
        """From ``results.json`` (the file or the model folder holding it)."""
        return cls.from_run(RunResults.read(path))


def _teacher_facts(path: str) -> dict:
    """What a teacher folder's own ``results.json`` (``xner train-teacher``) says about its training data."""
    try:
        with open(os.path.join(path, RESULTS_FILE), encoding="utf-8") as f:
            data = json.load(f).get("data") or {}
    except (OSError, ValueError):
        return {}  # a Hub id, or a folder without results
    source = data.get("corpus") or data.get("dataset")
    language = data.get("lang") or data.get("dataset_config")
    if not source:
        return {"language": language}
    return {"language": language, "description": f"fine-tuned on {source}" + (f" ({language})" if language else "")}


def _train_data(run: RunResults) -> list[dict]:
    """The card's training-data rows: a teacher's one labelled split, or each source of a student's text
    (a projected dataset's language and domain are the run's ``--lang`` and training domain)."""
    data = run.data or {}
    if not run.train_data:  # supervised (teacher): the corpus or dataset in ``data``
        dataset = data.get("dataset") or data.get("corpus")
        facts = corpus_facts(data["corpus"]) if data.get("corpus") else {"domain": None, "languages": []}
        language = (
            data.get("lang")
            or data.get("dataset_config")
            or (facts["languages"][0] if len(facts["languages"]) == 1 else None)
        )
        return [
            {
                "dataset": public_name(dataset),
                "config": data.get("dataset_config") or data.get("lang"),
                "split": (data.get("splits") or {}).get("train", "train"),
                "language": language,
                "domain": facts["domain"] or None,
                "num_sentences": run.num_train_sentences,
                "labels": data.get("tag_column", "ner_tags"),
            }
        ]
    rows = []
    for part in run.train_data:
        if part.get("kind") == "corpus":
            entry = {
                "dataset": part["corpus"],
                "config": part.get("lang"),
                "language": part.get("lang"),
                "domain": corpus_facts(part["corpus"])["domain"] or None,
            }
        else:
            entry = {
                "dataset": part.get("dataset"),
                "config": part.get("dataset_config"),
                "language": data.get("lang"),
                "domain": data.get("domain"),
            }
        labels = "teacher probabilities" + (" + projected_tags" if part.get("projected_tags") else "")
        rows.append({**entry, "split": part.get("split"), "num_sentences": part.get("num_sentences"), "labels": labels})
    return rows


def _evaluations(run: RunResults) -> list[EvalSet]:
    """The saved model's scores per evaluation set: a teacher's test split, a student's evaluation sets."""
    saved = run.eval or {}
    if not run.eval_sets:  # supervised (teacher): the test split of its training data
        data = run.data or {}
        test = (data.get("splits") or {}).get("test")
        if not test or not saved.get("test"):
            return []
        train = _train_data(run)[0]
        config = train["config"]
        return [
            EvalSet(
                name=f"{train['dataset']} {config + ' ' if config else ''}{test}".strip(),
                metrics=saved["test"],
                dataset=train["dataset"],
                config=config,
                split=test,
                language=train["language"],
                domain=train["domain"],
            )
        ]
    return [
        EvalSet(
            name=key,
            metrics={k: saved[key][k] for k in SCORE_KEYS if k in saved[key]},
            dataset=info.get("corpus") or key,
            config=info.get("lang"),
            split=info.get("split") or "test",
            language=info.get("lang"),
            domain=info.get("corpus_domain"),
            in_domain={"in": True, "out": False}.get(info.get("domain")),
            num_sentences=info.get("num_sentences"),
        )
        for key, info in run.eval_sets.items()
        if key in saved
    ]


WIDGET_SENTENCES = 3  # widget examples taken from the evaluation data
LABEL_EXAMPLES = 3  # example entities per label
WIDGET_WORDS = (6, 30)  # a widget sentence has entities and this many words


def evaluation_sentences(evaluation: EvalSet, data_dir: Optional[str] = None) -> list[tuple[list, list]]:
    """(words, IOB2 tags) of an evaluation set that is a corpus xner reads from local files
    (:func:`dataset_builders.corpus_spec`); [] when it is not one or its files are not on this machine
    (examples are a nicety of the card: their absence is no error)."""
    from dataset_builders import corpus_spec, load_corpus
    from dataset_builders.corpora import default_data_dir

    try:
        spec = corpus_spec(evaluation.dataset or "")
    except ValueError:
        return []
    if evaluation.dataset == "wikiann" and not os.path.isdir(os.path.join(data_dir or default_data_dir(), spec.folder)):
        return []  # it would be fetched from the Hub: a card reads local files only
    try:
        split = load_corpus(evaluation.dataset, data_dir=data_dir, lang=evaluation.config, splits=[evaluation.split])[
            evaluation.split
        ]
    except (OSError, ValueError):
        return []
    names = split.features["ner_tags"].feature.names
    return [(row["tokens"], [names[t] for t in row["ner_tags"]]) for row in split]


def widget_sentences(sets: list[list[tuple[list, list]]], count: int = WIDGET_SENTENCES) -> list[str]:
    """Up to ``count`` sentences that hold entities, a readable number of words and open with a word (not
    punctuation), taken in turn from each set."""
    low, high = WIDGET_WORDS
    pools = [
        [
            " ".join(words)
            for words, tags in sentences
            if low <= len(words) <= high and set(tags) - {"O"} and words[0][:1].isalnum()
        ]
        for sentences in sets
    ]
    out: list[str] = []
    for i in range(max(map(len, pools), default=0)):
        for pool in pools:
            if i < len(pool) and pool[i] not in out:
                out.append(pool[i])
            if len(out) == count:
                return out
    return out


def entity_examples(sets: list[list[tuple[list, list]]], count: int = LABEL_EXAMPLES) -> dict[str, list[str]]:
    """Entity type -> its ``count`` most frequent entity strings in the sets (ties: first seen first)."""
    from collections import Counter

    from dataset_builders.schemes import tags_to_spans

    counters: dict[str, Counter] = {}
    for sentences in sets:
        for words, tags in sentences:
            for span in tags_to_spans(tags):
                text = " ".join(words[span["start"] : span["end"]])
                counters.setdefault(span["label"], Counter())[text] += 1
    return {label: [text for text, _ in counter.most_common(count)] for label, counter in counters.items()}


YAML_FIELDS = [
    "language",
    "license",
    "library_name",
    "pipeline_tag",
    "tags",
    "base_model",
    "datasets",
    "metrics",
    "widget",
    "model-index",
]


@dataclass
class StudentCardData(ModelCardData):
    """Card data of a trained token classifier (a distilled student, or a supervised teacher)."""

    results: TrainingResults = None
    model_id: Optional[str] = None  # the Hub repo the model is published to
    model_name: Optional[str] = None
    language: Optional[list] = None
    license: Optional[str] = None
    tags: list = field(
        default_factory=lambda: ["xner", "token-classification", "ner", "named-entity-recognition", "cross-lingual"]
    )
    pipeline_tag: str = "token-classification"
    limitations: list = field(default_factory=list)
    # Sentences in the model's language and, per entity type, example entities: given, or read from the
    # evaluation sets that are local corpora (``examples_from_data``; ``data_dir`` as ``load_corpus``'s).
    widget_examples: list = field(default_factory=list)
    label_examples: dict = field(default_factory=dict)
    examples_from_data: bool = True
    data_dir: Optional[str] = field(default=None, repr=False)
    # Where an xner asset base's weights come from (publish reads it before local paths become Hub ids).
    base_model_note: Optional[str] = None
    examples_source: list = field(default_factory=list, init=False)  # the evaluation sets they came from
    versions_recorded: bool = field(default=False, init=False)

    def __post_init__(self):
        if self.results is None:
            raise ValueError("StudentCardData needs the training results")
        r = self.results
        if self.base_model_note is None:
            self.base_model_note = provenance_note(r.base_model)
        if self.language is None:
            self.language = (
                unique([*(d.get("language") for d in r.train_data), *(e.language for e in r.evaluations)]) or None
            )
        extra = []
        if r.strategy:
            extra.append("knowledge-distillation")
        if self.is_adapter:
            extra += ["peft", "lora"]
        self.tags = unique([*self.tags, *extra])
        if self.model_name is None:
            langs = ", ".join(self.language or []) or "its training languages"
            how = r.strategy["name"] if r.strategy else "supervised"
            kind = "LoRA adapter" if self.is_adapter else "model"
            base = self.base_model_id or model_title_name(r.base_model)
            self.model_name = f"{base} {kind} for NER in {langs} ({how}, xner)"
        self.versions_recorded = r.framework_versions is not None
        if self.examples_from_data and not (self.widget_examples and self.label_examples):
            self._read_examples()

    def _read_examples(self) -> None:
        """Fill the widget and label examples from the evaluation data, the training languages' sets first."""
        train_languages = {d.get("language") for d in self.results.train_data}
        ordered = sorted(self.results.evaluations, key=lambda e: e.language not in train_languages)
        sets, names = [], []
        for evaluation in ordered:
            sentences = evaluation_sentences(evaluation, self.data_dir)
            if sentences:
                sets.append(sentences)
                names.append(scrub_paths(evaluation.name))
        if not sets:
            return
        self.examples_source = names
        self.widget_examples = self.widget_examples or widget_sentences(sets)
        self.label_examples = self.label_examples or entity_examples(sets)

    @classmethod
    def from_training(
        cls, results: Union[RunResults, TrainingResults, Mapping[str, Any], str, os.PathLike], **kwargs: Any
    ) -> "StudentCardData":
        """Card data from a run's results (the :class:`RunResults` a training function returned, its
        ``results.json`` dict, file or model folder, or a :class:`TrainingResults`).
        ``kwargs``: ``model_id`` (the repo), ``license``, ``language``, ``limitations``..."""
        if isinstance(results, RunResults):
            results = TrainingResults.from_run(results)
        elif isinstance(results, (str, os.PathLike)):
            results = TrainingResults.load(results)
        elif not isinstance(results, TrainingResults):
            results = TrainingResults.from_dict(results)
        return cls(results=results, **kwargs)

    # ------------------------------------------------------------------ derived values
    @property
    def base_model_id(self) -> Optional[str]:
        """The base model's Hub id, also when it was loaded from a known local copy (never a local path)."""
        return hub_id_of(self.results.base_model)

    @property
    def is_adapter(self) -> bool:
        return self.results.adapter is not None and not self.results.merged

    @property
    def library_name(self) -> str:
        return "peft" if self.is_adapter else "transformers"

    def _train_domains(self) -> list[str]:
        return unique(d.get("domain") for d in self.results.train_data)

    def in_domain(self, evaluation: EvalSet) -> Optional[bool]:
        if evaluation.in_domain is not None:
            return evaluation.in_domain
        domains = self._train_domains()
        if evaluation.domain is None or not domains:
            return None
        return evaluation.domain in domains

    def domain_text(self, evaluation: EvalSet) -> str:
        status = self.in_domain(evaluation)
        label = {True: "in-domain", False: "out-of-domain", None: "domain not recorded"}[status]
        return f"{label} ({evaluation.domain})" if evaluation.domain else label

    def eval_results(self) -> list[EvalResult]:
        results = []
        for e in self.results.evaluations:
            dataset_id = dataset_hub_id(e.dataset)
            if dataset_id is None:  # the Hub's dataset.type is a dataset id: sets without one stay in the tables
                continue
            for key, pretty in METRICS:
                if e.metrics.get(key) is None:
                    continue
                results.append(
                    EvalResult(
                        task_type="token-classification",
                        task_name="Named Entity Recognition",
                        dataset_type=dataset_id,
                        dataset_name=f"{scrub_paths(e.name)} — {self.domain_text(e)}",
                        dataset_config=e.config,
                        dataset_split=e.split,
                        dataset_revision=e.revision,
                        metric_type=key,
                        metric_value=round(float(e.metrics[key]), 4),
                        metric_name=f"{e.split.capitalize()} {pretty}",
                    )
                )
        return results

    def evaluation_rows(self) -> list[dict]:
        return [
            {
                "test set": scrub_paths(e.name),
                "language": e.language,
                "split": e.split,
                "domain": self.domain_text(e),
                "sentences": e.num_sentences,
                "precision": e.metrics.get("precision"),
                "recall": e.metrics.get("recall"),
                "F1": e.metrics.get("f1"),
            }
            for e in self.results.evaluations
        ]

    def type_rows(self) -> list[dict]:
        rows = []
        for e in self.results.evaluations:
            per_type = e.metrics.get("per_type") or {}
            for entity_type in sorted(per_type):
                m = per_type[entity_type]
                rows.append(
                    {
                        "test set": scrub_paths(e.name),
                        "type": entity_type,
                        "precision": m.get("precision"),
                        "recall": m.get("recall"),
                        "F1": m.get("f1"),
                        "support": m.get("number"),
                    }
                )
        return rows

    def teacher_rows(self) -> list[dict]:
        return [
            {
                "teacher": public_name(t.get("model")),
                "language": t.get("language"),
                "weight": t.get("weight"),
                "description": scrub_paths(t.get("description")),
            }
            for t in self.results.teachers
        ]

    def data_rows(self) -> list[dict]:
        return [
            {
                "dataset": public_name(d.get("dataset")),
                "config": d.get("config"),
                "split": d.get("split"),
                "language": d.get("language"),
                "domain": d.get("domain"),
                "sentences": d.get("num_sentences"),
                "labels": d.get("labels"),
            }
            for d in self.results.train_data
        ]

    def epoch_rows(self) -> list[dict]:
        """Per epoch: step, training loss and F1 on each evaluation set; the saved (best) epoch in bold."""
        best = (self.results.training.get("best") or {}).get("epoch")
        rows = []
        for h in self.results.epochs:
            epoch = h.get("epoch")
            row = {
                "epoch": f"**{epoch}**" if epoch == best and len(self.results.epochs) > 1 else fmt(epoch),
                "step": h.get("step"),
                "training loss": (h.get("train") or {}).get("loss"),
            }
            for key, metrics in h.items():
                if key != "train" and isinstance(metrics, Mapping) and metrics.get("f1") is not None:
                    row[f"{scrub_paths(key)} F1"] = metrics["f1"]
            rows.append(row)
        return rows

    def label_rows(self) -> list[dict]:
        types = unique(n.split("-", 1)[1] for n in self.results.label_names if "-" in n)
        return [
            {"label": t, "examples": ", ".join(json.dumps(x, ensure_ascii=False) for x in self.label_examples[t])}
            for t in types
            if self.label_examples.get(t)
        ]

    def framework_versions(self) -> dict:
        return dict(sorted((self.results.framework_versions or installed_versions(self.is_adapter)).items()))

    @property
    def example_text(self) -> str:
        """A sentence for the usage snippets: the first widget example, else a placeholder."""
        return self.widget_examples[0] if self.widget_examples else "..."

    def _references(self) -> list[str]:
        r = self.results
        keys = []
        if r.strategy:
            keys.append("distillation")
            name = r.strategy.get("name")
            if name == "soft-kl" or r.strategy.get("soft_loss") == "soft-kl":
                keys.append("kl")
            if name in ("projected+kd", "voting"):
                keys.append("unitrans")
            steps = r.pseudo_labels
            keys += [
                k
                for k, step in (
                    ("advpicker", "language_agnostic_selection"),
                    ("colada", "denoising"),
                    ("cbst", "class_balanced_selection"),
                )
                if step in steps
            ]
        if r.adapter:
            keys.append("lora")
        return [REFERENCES[k] for k in keys]

    # ------------------------------------------------------------------ card data API
    def yaml_dict(self) -> dict:
        r = self.results
        datasets_ids = unique(
            [dataset_hub_id(d.get("dataset")) for d in r.train_data]
            + [dataset_hub_id(e.dataset) for e in r.evaluations]
        )
        eval_results = self.eval_results()
        values = {
            "language": self.language,
            "license": self.license,
            "library_name": self.library_name,
            "pipeline_tag": self.pipeline_tag,
            "tags": self.tags,
            "base_model": self.base_model_id,
            "datasets": datasets_ids or None,
            "metrics": ["precision", "recall", "f1"] if r.evaluations else None,
            "widget": [{"text": text} for text in self.widget_examples] or None,
            "model-index": eval_results_to_model_index(self.model_name, eval_results) if eval_results else None,
        }
        return {k: values[k] for k in YAML_FIELDS if values.get(k) is not None}

    def to_dict(self) -> dict:
        r = self.results
        strategy = dict(r.strategy) if r.strategy else None
        strategy_name = strategy.pop("name") if strategy else None
        id2label = {i: name for i, name in enumerate(r.label_names)}
        return {
            **self.yaml_dict(),
            "language": self.language,  # also when unknown (no YAML key then)
            "model_name": self.model_name,
            "model_id": self.model_id or "path/to/this/model",
            "base_model_name": self.base_model_id or public_name(r.base_model),
            "base_model_id": self.base_model_id,
            "base_model_note": self.base_model_note,
            "is_adapter": self.is_adapter,
            "adapter_text": params_text(r.adapter or {}),
            "merged": bool(r.adapter) and r.merged,
            "freeze": r.freeze,
            "strategy_name": strategy_name,
            "strategy_text": STRATEGY_TEXT.get(strategy_name, strategy_name),
            "strategy_params": params_text(strategy or {}),
            "pseudo_label_steps": pseudo_label_lines(r.pseudo_labels),
            "teachers_table": markdown_table(self.teacher_rows()),
            "data_table": markdown_table(self.data_rows()),
            "label_names": list(r.label_names),
            "entity_types": unique(n.split("-", 1)[1] for n in r.label_names if "-" in n),
            "id2label": json.dumps({str(i): n for i, n in id2label.items()}, ensure_ascii=False),
            "label2id": json.dumps({n: i for i, n in id2label.items()}, ensure_ascii=False),
            "evaluations": [dataclasses.asdict(e) | {"domain_text": self.domain_text(e)} for e in r.evaluations],
            "evaluation_table": markdown_table(self.evaluation_rows()),
            "types_table": markdown_table(self.type_rows()),
            "label_examples_table": markdown_table(self.label_rows()),
            "examples_source": list(self.examples_source),
            "epochs_table": markdown_table(self.epoch_rows(), align={"epoch": "right"}),
            "best": {
                k: scrub_paths(str(v)) if isinstance(v, str) else v for k, v in (r.training.get("best") or {}).items()
            },
            "has_out_of_domain": any(self.in_domain(e) is False for e in r.evaluations),
            "hyperparameters_table": markdown_table(
                [
                    {"hyperparameter": k, "value": repr(v) if isinstance(v, float) else fmt(v)}
                    for k, v in sorted(r.hyperparameters.items())
                    if not is_secret_key(k)
                ]
            ),
            "training_facts": {
                k: fmt(v, 2) if isinstance(v, float) else v
                for k, v in sorted(r.training.items())
                if not isinstance(v, Mapping) and not is_secret_key(k)
            },
            "framework_versions": self.framework_versions(),
            "versions_recorded": self.versions_recorded,
            "limitations": list(self.limitations),
            "references": self._references(),
            "example_text_literal": json.dumps(self.example_text, ensure_ascii=False),
            "example_text_shell": shlex.quote(self.example_text),
        }

    def to_yaml(self, line_break: Optional[str] = None, original_order: Optional[list] = None) -> str:
        return yaml_dump(self.yaml_dict(), sort_keys=False, line_break=line_break).strip()


def pseudo_label_lines(steps: Mapping[str, Any]) -> list[str]:
    """One sentence per step that changed the teacher's pseudo-labels (``TrainingResults.pseudo_labels``)."""
    lines = []
    for report in steps.get("language_agnostic_selection") or []:
        lines.append(
            f"Language-agnostic selection (AdvPicker): kept {report['kept']} of {report['total']} {report['part']} "
            f"sentences, those a source/target discriminator found least language-specific."
        )
    for summary in steps.get("denoising") or []:
        mean = summary.get("mean_weight")
        lines.append(
            f"Neighbour-consistency denoising (CoLaDa, {summary['mode']}, k={summary.get('k_used', summary['k'])}) "
            f"on {summary['part']}: {summary['tokens']} words"
            + (f", mean weight {mean:.2f}" if mean is not None else "")
            + (f", {summary['relabelled']} relabelled" if summary["mode"] == "relabel" else "")
            + "."
        )
    fitted = steps.get("class_balanced_selection")
    if fitted:
        thresholds = ", ".join(f"{label} {value:.2f}" for label, value in fitted["thresholds"].items())
        lines.append(
            f"Class-balanced confidence thresholds (the most confident {fitted['keep_per_class']:.0%} of each "
            f"label's words): {thresholds}; {fitted['kept']} of {fitted['words']} words kept."
        )
    rounds = steps.get("self_training")
    if rounds:
        total = rounds["schedule"]["rounds"]
        lines.append(
            f"Self-training: round {rounds['round']['index'] + 1} of {total}"
            + (", taught by the previous round's student." if rounds["round"]["index"] else ".")
        )
    return lines


def render_model_card(card_data: StudentCardData) -> str:
    """README.md text: YAML metadata + ``model_card.md.j2``; parsed back through
    ``huggingface_hub.ModelCard`` (model-index included) so a malformed card fails here."""
    text = render(TEMPLATE, card_data=card_data.to_yaml(), **card_data.to_dict())
    ModelCard(text)
    return text


def write_model_card(model_dir: Union[str, os.PathLike], results: Any = None, **kwargs: Any) -> str:
    """Write ``model_dir/README.md`` from ``results`` (default: ``model_dir/results.json``); returns its path.

    The file is written to a temporary name and renamed, so a reader never sees half a card.
    """
    model_dir = os.fspath(model_dir)
    card = render_model_card(StudentCardData.from_training(results if results is not None else model_dir, **kwargs))
    path = os.path.join(model_dir, "README.md")
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(card)
    os.replace(partial, path)
    return path


__all__ = [
    "EvalSet",
    "HYPERPARAMETER_KEYS",
    "StudentCardData",
    "TrainingResults",
    "entity_examples",
    "evaluation_sentences",
    "render_model_card",
    "widget_sentences",
    "write_model_card",
]
