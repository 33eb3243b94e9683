"""Experiment files: YAML in, a validated :class:`Experiment` out, expanded into the runs it implies.

An experiment file names the source corpus, the teachers, the strategies, the student, the target
languages with their training text and test sets (each marked in or out of domain), the seeds, and
groups of runs (which strategies x languages x student kinds x seeds to run); see
``configs/offline-europe.yaml`` for a commented example. Every key is checked: an unknown key, a
strategy naming a teacher that does not exist, a training argument the training scripts do not
know, a test set without a domain -- each is an error naming where in the file it is, before
anything runs.

:func:`plan` expands an experiment into :class:`Run` objects in the order they must run
(teachers before the students that learn from them). A run's ``run_id`` is a hash of everything
that decides its result (models, data, parameters, seed, test sets, and the ids of the runs it
depends on), so editing one strategy invalidates only the runs of that strategy, and a run shared
by two groups is done once.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import math
import os
import re
from typing import Any, Iterable, Mapping, Optional

import yaml

from dataset_builders.corpora import corpus_spec
from dataset_builders.errors import UserError
from training.assets import E5_SMALL
from training.strategies import STRATEGIES
from xner.steps import stable_hash

TEACHER_KINDS = ("model-transfer", "translate-train", "translate-test")
STRATEGY_NAMES = tuple(STRATEGIES)  # every loss of training.strategies, voting included
# Losses that need projected tags (projected+kd, voting): their strategy names the projection teacher (projected:).
PROJECTED_LOSSES = tuple(name for name, loss in STRATEGIES.items() if loss.needs_projected_labels)
STUDENT_KINDS = ("full", "lora")
DOMAINS = ("in", "out")
# Model names that are neither folders nor Hub ids, and the function giving each one's folder; a name
# added here is accepted by ``plan`` and resolved by :meth:`Experiment.resolve_model`.
BUILTIN_MODELS = {"builtin:minilm": "training.assets.minilm_path"}  # short asset names: training.assets.ASSETS
# What a Hub repo id looks like (``name`` or ``org/name``; huggingface_hub's rule): anything else that
# is not an existing folder cannot be loaded.
HUB_ID = re.compile(r"(?!.*(--|\.\.))[\w.-]{1,96}(/[\w.-]{1,96})?")

# Rates used by ``plan``'s cost estimate when the file gives none: measured on the 2-core CPU this
# project is developed on, MiniLM-L6 students/teachers, max_length 128, batch 16 (bench/distill_real).
DEFAULT_COST = {
    "train_sentences_per_s": 23.0,  # sentence-epochs per second, full fine-tune of a distilled student
    "teacher_train_sentences_per_s": 60.0,  # sentence-epochs per second, supervised teacher
    "lora_speedup": 1.2,  # LoRA trains this much faster
    "teacher_probs_sentences_per_s": 60.0,  # teacher forward passes per teacher
    "eval_sentences_per_s": 100.0,
    "projection_sentences_per_s": 30.0,  # MT + alignment + projection
    "process_overhead_s": 15.0,  # start-up and model loading per run
}
# The same rates for multilingual-e5-small, used when a file's ``models`` names it, embeddings frozen
# (the research default). Measured here: a frozen e5 teacher trains on 1,000 CoNLL-2003 sentences in
# about 60 CPU-seconds, and bench/train_speed.py trains 300 tokens (15 sentences) per second at load
# average 4 (trained embeddings: 1.7x slower); the student rate keeps MiniLM's ratio to the teacher's
# (README "Multilingual encoder").
E5_SMALL_COST = {
    **DEFAULT_COST,
    # measured: a soft-kl student on 1,000 CoNLL-2002 sentences (batch 8, frozen embeddings), 126 steps in 87 s
    # on 2 idle cores (11.5/s); the English teacher's 10,000 sentence passes in 12 min with the CPU shared (13.9/s)
    "train_sentences_per_s": 10.0,
    "teacher_train_sentences_per_s": 15.0,
    "teacher_probs_sentences_per_s": 30.0,
    "eval_sentences_per_s": 40.0,
    "process_overhead_s": 25.0,
}


class ConfigError(UserError):
    """A problem in an experiment file; the message names the place (``teachers.en.train``)."""


# ------------------------------------------------------------------------------------------- helpers


def _check_keys(values: Mapping, known: Iterable[str], where: str, required: Iterable[str] = ()) -> None:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = set(known)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    missing = [k for k in required if k not in values]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")


def training_flags(script: str, values: Mapping[str, Any]) -> list[str]:
    """Flags of ``python -m training.SCRIPT`` (``teacher`` or ``distill``) for ``values``, keyed by the
    script's field names or their aliases: the script's argument dataclasses are built from them (a key
    that is no field, or a missing required one, fails here, so a renamed field cannot go unnoticed) and
    :func:`training.arguments.to_flags` writes them. A list given to a single-valued field (weights)
    becomes its comma-separated form; ``false`` for a switch that is off by default is its default."""
    from training.arguments import to_flags

    names = _field_names(script)
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"training.{script} has no argument(s) {unknown}")
    given = {names[key]: value for key, value in values.items() if value is not None}
    objects = []
    for cls in importlib.import_module(f"training.{script}").ARGUMENTS:
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in given:
                continue
            value = given[f.name]
            if isinstance(value, (list, tuple)) and not f.metadata.get("action") == "extend":
                value = ",".join(str(v) for v in value)
            if value is False and f.default is not True:
                continue
            kwargs[f.name] = value
        objects.append(cls(**kwargs))
    return to_flags(*objects)


# Arguments the harness sets itself; a file setting them would be silently overridden.
HARNESS_OWNED = frozenset(
    {
        "output_dir",
        "model_name_or_path",
        "corpus",
        "lang",
        "dataset",
        "dataset_config",
        "dataset_name",
        "dataset_config_name",
        "data_dir",
        "teacher",
        "eval",
        "seed",
        "strategy",
        "student",
        "resume_from_checkpoint",
        "best_on",
        # model selection follows the experiment's one rule (selection:), not a student's own flags
        "selection",
        "source_dev",
        "translate_train_dev",
        "target_dev",
        "allow_target_dev",
    }
)
# The required arguments of each script, which the harness always passes (values do not matter here).
HARNESS_REQUIRED = {
    "teacher": {"output_dir": "-", "model_name_or_path": "-"},
    "distill": {"output_dir": "-", "model_name_or_path": "-", "teacher": ["-"]},
}

# Ranges the scripts' argparse types do not express: a value outside fails at run time (or trains nonsense).
POSITIVE = (
    "num_train_epochs",
    "max_train_steps",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "learning_rate",
    "gradient_accumulation_steps",
    "max_train_samples",
    "max_eval_samples",
    "max_length",
    "preprocessing_num_workers",
    "temperature",
    "similarity_temperature",
    "teacher_batch_size",
    "lora_r",
    "lora_alpha",
)
NON_NEGATIVE = ("weight_decay", "num_warmup_steps", "max_grad_norm", "alpha", "freeze_layers", "stride", "seed")
UNIT_INTERVAL = (
    "threshold",
    "keep_per_class",
    "lora_dropout",
    "denoise_threshold",
    "self_training_threshold_start",
    "self_training_threshold_end",
    "select_language_agnostic",
)
WEIGHT_LISTS = ("teacher_weights",)


class _RaisingParser(argparse.ArgumentParser):
    """A training script's own parser that raises instead of exiting (``error`` is argparse's hook for this)."""

    def error(self, message: str):
        raise ConfigError(message)


_PARSERS: dict[str, argparse.ArgumentParser] = {}


def _script_parser(script: str) -> argparse.ArgumentParser:
    """The script's own parser (built from its argument dataclasses), raising instead of exiting."""
    if script not in _PARSERS:
        parser = importlib.import_module(f"training.{script}").build_parser(add_help=False, allow_abbrev=False)
        parser.error = _RaisingParser.error.__get__(parser)
        _PARSERS[script] = parser
    return _PARSERS[script]


def _field_names(script: str) -> dict[str, str]:
    from training.arguments import field_names

    return field_names(importlib.import_module(f"training.{script}").ARGUMENTS)


def training_arguments(script: str) -> frozenset:
    """Setting names of ``training.teacher`` or ``training.distill`` (their dataclass fields and the
    fields' aliases, :func:`training.arguments.field_names`): what a file may set."""
    return frozenset(_field_names(script))


def check_training_value(script: str, key: str, value: Any, where: str) -> None:
    """``key: value`` of an experiment file, parsed as the script will parse the flags the runner passes
    (its argparse type and choices) and checked against the ranges the types do not express.

    The one place that knows argument values: when the training arguments become dataclasses, only
    this function changes."""
    if value is None:  # the script's default
        return
    if key in WEIGHT_LISTS:
        weights = value if isinstance(value, (list, tuple)) else str(value).split(",")
        try:
            numbers = [float(w) for w in weights if not isinstance(w, bool)]
        except (TypeError, ValueError):
            numbers = []
        if (
            len(numbers) != len(weights)
            or not numbers
            or any(not (math.isfinite(w) and w >= 0) for w in numbers)
            or sum(numbers) <= 0
        ):
            raise ConfigError(f"{where}.{key}: non-negative numbers with a positive sum, got {value!r}")
        return
    if isinstance(value, (dict, list, tuple)):
        raise ConfigError(f"{where}.{key}: a single value, got {value!r}")
    try:
        namespace = _script_parser(script).parse_args(training_flags(script, {**HARNESS_REQUIRED[script], key: value}))
        parsed = getattr(namespace, _field_names(script)[key])
    except ConfigError as err:
        raise ConfigError(f"{where}.{key}: {value!r} is not a valid value ({err})") from None
    if isinstance(parsed, bool) and not isinstance(value, bool):  # a switch set to "yes" / 1
        raise ConfigError(f"{where}.{key}: true or false, got {value!r}")
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise ConfigError(f"{where}.{key}: a finite number, got {value!r}")
    if key in POSITIVE and not parsed > 0:
        raise ConfigError(f"{where}.{key}: must be > 0, got {value!r}")
    if key in NON_NEGATIVE and not parsed >= 0:
        raise ConfigError(f"{where}.{key}: must be >= 0, got {value!r}")
    if key in UNIT_INTERVAL and not 0 <= parsed <= 1:
        raise ConfigError(f"{where}.{key}: must be in [0, 1], got {value!r}")


def _check_training_args(values: Mapping, script: str, where: str, allow: Iterable[str] = ()) -> dict:
    if values is None:
        values = {}
    _check_keys(values, (training_arguments(script) - HARNESS_OWNED) | set(allow), where)
    for key, value in values.items():
        check_training_value(script, key, value, where)
    return {k: v for k, v in values.items() if v is not None}  # None = the script's default


def check_model(value: Any, where: str) -> None:
    """A model is a built-in name, an existing folder or a Hub id; a path that does not exist is an error
    now, not after the runs before it."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: a model folder, Hub id or built-in name ({sorted(BUILTIN_MODELS)}), got {value!r}")
    if value in BUILTIN_MODELS:
        return
    path = os.path.expanduser(value)
    if os.path.isdir(path):
        return
    if os.path.exists(path):
        raise ConfigError(f"{where}: {value!r} is a file, not a model folder")
    if value.startswith(("/", ".", "~")) or not HUB_ID.fullmatch(value):
        raise ConfigError(f"{where}: model folder {value!r} does not exist (and it is not a Hub id)")


def _integer(value: Any, where: str, minimum: Optional[int] = None) -> int:
    """An integer of the file (YAML ``3``), not a bool, a float or a string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------- schema


@dataclasses.dataclass(frozen=True)
class TestSet:
    """A gold test set of one language, marked in or out of domain."""

    __test__ = False  # not a pytest class

    corpus: str
    domain: str
    split: str = "test"
    lang: Optional[str] = None
    type_map: Mapping[str, Optional[str]] = dataclasses.field(default_factory=dict)
    # A translate-train dev set: the run id of the projection of ``corpus:split`` into ``lang`` (its tags are
    # projected, not gold); the runner scores the projection's output.
    projection: Optional[str] = None

    @property
    def name(self) -> str:
        """The key results are reported under (``training.evaluation``'s naming): ``conll2002-es``."""
        key = f"{self.corpus}-{self.lang}" if self.lang else self.corpus
        if self.projection:
            key += "-translated"
        return key if self.split == "test" else f"{key}:{self.split}"

    @property
    def spec(self) -> str:
        """``training.evaluation --test`` value."""
        lang = f"@{self.lang}" if self.lang else ""
        return f"{self.corpus}:{self.split}{lang}={self.domain}"

    def identity(self) -> dict:
        return {
            "corpus": self.corpus,
            "split": self.split,
            "lang": self.lang,
            "domain": self.domain,
            "type_map": dict(self.type_map),
            **({"projection": self.projection} if self.projection else {}),
        }


@dataclasses.dataclass(frozen=True)
class TextSource:
    """Unlabelled training text of a language: a known corpus' split (its labels are never used)."""

    corpus: str
    split: str = "train"
    lang: Optional[str] = None


@dataclasses.dataclass
class Language:
    code: str
    train: TextSource
    tests: list[TestSet]
    dev: Optional[TestSet] = None  # gold target dev set: only for selection target-dev (allow_target_dev)


SELECTION_RULES = ("auto", "source-dev", "translate-train-dev", "target-dev", "none")


@dataclasses.dataclass(frozen=True)
class SelectionRule:
    """Honest model selection for every student and sweep (:mod:`training.model_selection`).

    ``auto`` (the default): the source dev set machine-translated and projected into the target language
    (translate-train-dev) where the experiment has an MT system for it -- a translate-train teacher of that
    language, whose translator, aligner and method build the dev set -- and the source dev set itself
    (source-dev) otherwise. ``target-dev`` (gold target labels) only with ``allow_target_dev``; ``none``: no
    dev set, the last epoch is kept (what runs before this rule did; also ``auto``'s choice when the source
    corpus has no validation split and ``source_dev`` is not given).
    """

    protocol: str = "auto"
    source_dev: Optional[TestSet] = None
    max_samples: Optional[int] = 500  # sentences of the dev set (translated ones: of the source dev set)
    allow_target_dev: bool = False


@dataclasses.dataclass
class Teacher:
    name: str
    kind: str
    model: str
    train: dict  # training.teacher arguments
    languages: Optional[list[str]] = None  # projection teachers: one per language
    projection: Optional[dict] = None  # ProjectionConfig keys (translator, aligner, method, max_samples, ...)
    tagger: Optional[str] = None  # translate-test: the teacher that tags the translations


@dataclasses.dataclass
class Strategy:
    name: str
    strategy: str
    teachers: list[str]
    args: dict  # training.distill arguments (temperature, threshold, teacher_weights, ...)
    projected: Optional[str] = None  # projected+kd: the projection teacher whose data gives the labels
    sweep: Optional[str] = None  # take the best parameters found by this sweep


@dataclasses.dataclass
class Group:
    name: str
    languages: list[str]
    strategies: Any  # list of names, or {"best": N, "of": GROUP, "lang": L, "domain": "in"}
    students: list[str]
    seeds: list[int]
    teachers_zero_shot: bool = True


@dataclasses.dataclass
class Sweep:
    name: str
    strategy: str
    lang: str
    dev: Optional[TestSet]  # None: the selection rule's dev set (Planner.selection_dev)
    trials: int
    space: dict
    seed: int
    student: str
    max_eval_samples: Optional[int] = None


@dataclasses.dataclass
class Experiment:
    name: str
    path: Optional[str]
    description: str
    output_dir: str
    artifacts_dir: Optional[str]  # teachers, projections, students; shared by experiments that name the same folder
    data_dir: Optional[str]
    launcher: list[str]
    models: dict[str, str]
    source: TextSource
    teachers: dict[str, Teacher]
    student: dict  # model, kind, lora: {...}, and training.distill arguments
    strategies: dict[str, Strategy]
    languages: dict[str, Language]
    groups: list[Group]
    sweeps: dict[str, Sweep]
    evaluation: dict  # max_eval_samples, per_device_eval_batch_size, max_length
    cost: dict
    raw: dict
    selection: SelectionRule = SelectionRule()
    keep_weights: str = "students"  # one of KEEP_WEIGHTS: whose model files stay once the run is recorded

    @property
    def config_hash(self) -> str:
        where = ("output_dir", "artifacts_dir", "data_dir", "description", "keep_weights")
        return stable_hash({k: v for k, v in self.raw.items() if k not in where}, 16)

    @property
    def artifacts(self) -> str:
        return self.artifacts_dir or self.output_dir

    @property
    def results_path(self) -> str:
        from xner.experiments.store import RESULTS_FILE

        return os.path.join(self.output_dir, RESULTS_FILE)

    def resolve_model(self, name: str) -> str:
        """An alias of ``models:`` -> its value; ``builtin:minilm`` -> the offline MiniLM folder; a short
        asset name (``multilingual-e5-small``) -> its folder, prepared on first use."""
        value = self.models.get(name, name)
        if value in BUILTIN_MODELS:
            import importlib

            module, _, function = BUILTIN_MODELS[value].rpartition(".")
            return getattr(importlib.import_module(module), function)()
        from training.assets import resolve_model_name

        return resolve_model_name(value)

    def covers(self, strategy: Strategy, lang: str) -> bool:
        """Whether every teacher of ``strategy`` exists for ``lang`` (projection teachers are per language)."""
        names = list(strategy.teachers) + ([strategy.projected] if strategy.projected else [])
        return all(self.teachers[n].languages is None or lang in self.teachers[n].languages for n in names)


# -------------------------------------------------------------------------------------------- loading


TOP_KEYS = (
    "name",
    "description",
    "output_dir",
    "artifacts_dir",
    "data_dir",
    "launcher",
    "models",
    "source",
    "teachers",
    "student",
    "strategies",
    "languages",
    "groups",
    "sweeps",
    "evaluation",
    "selection",
    "cost",
    "keep_weights",
)

# Whose trained weights stay in the artifacts folder once the run is recorded: a full e5 student is 450 MB,
# and a grid of a hundred of them fills a disk. Results, configs, tokenizers and cards are always kept.
KEEP_WEIGHTS = {
    "all": ("student", "trial"),
    "students": ("student",),  # the default: a sweep's trials are scored on dev and not used after
    "none": (),
}


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *defaults`` may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = lines.setdefault(key, line)
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
                if first != line:
                    raise ConfigError(f"{self.name}:{line}: duplicate key {key!r} (first given on line {first})")
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str) -> Any:
    """The parsed YAML of ``path``; syntax errors and duplicate keys are one-line errors naming the line."""
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.load(handle, Loader=UniqueKeyLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
            raise ConfigError(f"{where}: not valid YAML: {err.problem or err.context}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_experiment(
    path: str, output_dir: Optional[str] = None, data_dir: Optional[str] = None, artifacts_dir: Optional[str] = None
) -> Experiment:
    """Read and validate an experiment file; ``output_dir``/``data_dir`` override the file's."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"experiment file {path} does not exist")
    experiment = parse_experiment(read_yaml(path), path=path)
    if output_dir:
        experiment.output_dir = output_dir
    if data_dir:
        experiment.data_dir = data_dir
    if artifacts_dir:
        experiment.artifacts_dir = artifacts_dir
    if experiment.data_dir and not os.path.isdir(experiment.data_dir):
        raise ConfigError(f"data_dir: {experiment.data_dir} is not a folder (the folder of the corpora)")
    for name in ("output_dir", "artifacts_dir"):
        folder = getattr(experiment, name)
        if folder and os.path.exists(folder) and not os.path.isdir(folder):
            raise ConfigError(f"{name}: {folder} is a file, not a folder")
    return experiment


def _test_set(values: Mapping, lang: str, where: str) -> TestSet:
    _check_keys(values, ("corpus", "split", "lang", "domain", "type_map"), where, required=("corpus", "domain"))
    corpus = values["corpus"]
    _known_corpus(corpus, where, values.get("split", "test"))
    if values["domain"] not in DOMAINS:
        raise ConfigError(f"{where}.domain: must be 'in' or 'out', got {values['domain']!r}")
    type_map = dict(values.get("type_map") or {})
    for key, target in type_map.items():
        if target is not None and not isinstance(target, str):
            raise ConfigError(f"{where}.type_map.{key}: a type name or O, got {target!r}")
    return TestSet(
        corpus,
        values["domain"],
        values.get("split", "test"),
        values.get("lang", lang),
        {k: (None if v in (None, "O") else v) for k, v in type_map.items()},
    )


def _known_corpus(corpus: str, where: str, split: Optional[str] = None) -> None:
    try:
        spec = corpus_spec(corpus)
    except ValueError as err:
        raise ConfigError(f"{where}.corpus: {err}") from None
    if split is not None and split not in spec.files:
        raise ConfigError(f"{where}.split: corpus {corpus!r} has no split {split!r}; it has {list(spec.files)}")


def _text_source(values: Mapping, lang: Optional[str], where: str) -> TextSource:
    _check_keys(values, ("corpus", "split", "lang"), where, required=("corpus",))
    _known_corpus(values["corpus"], where, values.get("split", "train"))
    return TextSource(values["corpus"], values.get("split", "train"), values.get("lang", lang))


def parse_experiment(raw: Any, path: Optional[str] = None) -> Experiment:
    """Validate the parsed YAML of an experiment file."""
    where = path or "experiment"
    _check_keys(raw, TOP_KEYS, where, required=("name", "source", "teachers", "strategies", "languages", "groups"))
    raw = copy.deepcopy(raw)
    if not isinstance(raw["name"], str) or not raw["name"].strip():
        raise ConfigError(f"name: a non-empty string, got {raw['name']!r}")
    models = raw.get("models") or {}
    if not isinstance(models, Mapping):
        raise ConfigError(f"models: a mapping of alias: model, got {models!r}")
    models = {str(alias): value for alias, value in models.items()}
    for alias, value in models.items():
        check_model(value, f"models.{alias}")
    source = _text_source(raw["source"], raw["source"].get("lang", "en"), "source")
    launcher = raw.get("launcher") or ["python", "-m"]
    if isinstance(launcher, str):
        launcher = launcher.split()
    if not isinstance(launcher, list) or not all(isinstance(part, str) for part in launcher):
        raise ConfigError(f"launcher: a command (string or list of strings) ending in -m, got {launcher!r}")
    if not launcher or launcher[-1] != "-m":
        raise ConfigError(
            f"launcher: a command that runs a module, ending in -m (python -m, accelerate launch ... -m), got {launcher}"
        )

    evaluation = dict(raw.get("evaluation") or {})
    _check_keys(
        evaluation, ("max_eval_samples", "per_device_eval_batch_size", "max_length", "bootstrap_samples"), "evaluation"
    )
    for key, value in evaluation.items():
        if value is not None:
            _integer(value, f"evaluation.{key}", minimum=1)
    base_cost = E5_SMALL_COST if E5_SMALL in models.values() else DEFAULT_COST
    cost = {**base_cost, **(raw.get("cost") or {})}
    _check_keys(cost, DEFAULT_COST, "cost")
    for key, value in cost.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise ConfigError(f"cost.{key}: a number > 0, got {value!r}")

    teachers: dict[str, Teacher] = {}
    for name, values in (raw["teachers"] or {}).items():
        w = f"teachers.{name}"
        _check_keys(
            values, ("kind", "model", "train", "languages", "projection", "tagger"), w, required=("kind", "model")
        )
        kind = values["kind"]
        if values["model"] not in models:
            check_model(values["model"], f"{w}.model")
        if kind not in TEACHER_KINDS:
            raise ConfigError(f"{w}.kind: one of {TEACHER_KINDS}, got {kind!r}")
        train = _check_training_args(values.get("train"), "teacher", f"{w}.train", allow=("seed",))
        projection = values.get("projection")
        if kind == "model-transfer":
            if projection or values.get("languages"):
                raise ConfigError(
                    f"{w}: a model-transfer teacher is trained on the source corpus; no projection/languages"
                )
        else:
            if not projection or not values.get("languages"):
                raise ConfigError(
                    f"{w}: a {kind} teacher needs projection: {{translator, aligner, method}} and languages"
                )
            _check_keys(
                projection,
                ("translator", "aligner", "method", "max_samples", "num_proc", "tagger_type_map"),
                f"{w}.projection",
            )
            for key in ("max_samples", "num_proc"):
                if projection.get(key) is not None:
                    _integer(projection[key], f"{w}.projection.{key}", minimum=1)
            for part in ("translator", "aligner"):
                spec = projection.get(part)
                if isinstance(spec, Mapping) and spec.get("model") is not None:
                    check_model(models.get(spec["model"], spec["model"]), f"{w}.projection.{part}.model")
        if values.get("languages") is not None and (
            isinstance(values["languages"], str) or not isinstance(values["languages"], list)
        ):
            raise ConfigError(f"{w}.languages: a list of language codes, got {values['languages']!r}")
        if kind == "translate-test" and not values.get("tagger"):
            raise ConfigError(f"{w}.tagger: a translate-test teacher needs the name of the source teacher that tags")
        teachers[name] = Teacher(
            name,
            kind,
            values["model"],
            train,
            list(values["languages"]) if values.get("languages") else None,
            dict(projection) if projection else None,
            values.get("tagger"),
        )
    for teacher in teachers.values():
        if teacher.tagger is not None and (
            teacher.tagger not in teachers or teachers[teacher.tagger].kind != "model-transfer"
        ):
            raise ConfigError(f"teachers.{teacher.name}.tagger: {teacher.tagger!r} is not a model-transfer teacher")

    student = dict(raw.get("student") or {})
    lora = dict(student.pop("lora", None) or {})
    base = {k: student.pop(k) for k in ("model", "kind") if k in student}
    if "model" not in base:
        raise ConfigError("student.model: required (an alias of models:, a folder or a Hub id)")
    if base["model"] not in models:
        check_model(base["model"], "student.model")
    if base.get("kind", "full") not in STUDENT_KINDS:
        raise ConfigError(f"student.kind: one of {STUDENT_KINDS}")
    student = {
        **base,
        "args": _check_training_args(student, "distill", "student"),
        "lora": _check_training_args(lora, "distill", "student.lora"),
    }

    strategies: dict[str, Strategy] = {}
    for name, values in (raw["strategies"] or {}).items():
        w = f"strategies.{name}"
        values = dict(values or {})
        loss = values.pop("strategy", name)
        if loss not in STRATEGY_NAMES:
            raise ConfigError(
                f"{w}: strategy {loss!r} is not one of {STRATEGY_NAMES} (set strategy: for a custom name)"
            )
        names = values.pop("teachers", None)
        if not names or not isinstance(names, list):
            raise ConfigError(f"{w}.teachers: a list of the teacher names this strategy learns from, got {names!r}")
        for teacher in names:
            if teacher not in teachers:
                raise ConfigError(f"{w}.teachers: unknown teacher {teacher!r}; teachers: {sorted(teachers)}")
        projected = values.pop("projected", None)
        if loss in PROJECTED_LOSSES:
            if projected not in teachers or teachers[projected].kind == "model-transfer":
                raise ConfigError(
                    f"{w}.projected: {loss} needs the name of a translate-train/-test teacher "
                    f"whose projected data gives the labels"
                )
        elif projected is not None:
            raise ConfigError(f"{w}.projected: only {' and '.join(PROJECTED_LOSSES)} use projected data")
        if loss == "multi-teacher" and len(names) < 2:
            raise ConfigError(f"{w}.teachers: multi-teacher needs at least two teachers")
        sweep = values.pop("sweep", None)
        if "teacher_weights" in values and isinstance(values["teacher_weights"], list):
            if len(values["teacher_weights"]) != len(names):
                raise ConfigError(f"{w}.teacher_weights: one weight per teacher ({len(names)})")
        strategies[name] = Strategy(
            name, loss, list(names), _check_training_args(values, "distill", w), projected, sweep
        )

    languages: dict[str, Language] = {}
    for code, values in (raw["languages"] or {}).items():
        w = f"languages.{code}"
        _check_keys(values, ("train", "tests", "dev"), w, required=("train", "tests"))
        tests = [_test_set(t, code, f"{w}.tests[{i}]") for i, t in enumerate(values["tests"] or [])]
        if not tests:
            raise ConfigError(f"{w}.tests: at least one test set")
        if len({t.name for t in tests}) != len(tests):
            raise ConfigError(f"{w}.tests: test set names repeat: {[t.name for t in tests]}")
        dev = _test_set({"domain": "in", **values["dev"]}, str(code), f"{w}.dev") if values.get("dev") else None
        languages[str(code)] = Language(str(code), _text_source(values["train"], str(code), f"{w}.train"), tests, dev)
    for teacher in teachers.values():
        for lang in teacher.languages or []:
            if lang not in languages:
                raise ConfigError(f"teachers.{teacher.name}.languages: {lang!r} is not under languages:")

    selection = _selection_rule(raw.get("selection", "auto"), source, languages)

    sweeps: dict[str, Sweep] = {}
    for name, values in (raw.get("sweeps") or {}).items():
        w = f"sweeps.{name}"
        _check_keys(
            values,
            ("strategy", "lang", "dev", "trials", "space", "seed", "student", "max_eval_samples"),
            w,
            required=("strategy", "lang", "trials", "space"),
        )
        if values["strategy"] not in strategies:
            raise ConfigError(f"{w}.strategy: unknown strategy {values['strategy']!r}")
        if values["lang"] not in languages:
            raise ConfigError(f"{w}.lang: {values['lang']!r} is not under languages:")
        dev = None  # the experiment's selection rule picks it
        if values.get("dev"):
            dev = _test_set({"domain": "in", **values["dev"]}, values["lang"], f"{w}.dev")
            if dev.lang != source.lang and not selection.allow_target_dev:
                raise ConfigError(
                    f"{w}.dev: {dev.name} is gold {dev.lang} data, which zero-shot transfer may not tune on; "
                    "leave dev out (the selection rule picks a translated or source dev set) or set "
                    "selection.allow_target_dev: true for an upper-bound study"
                )
        space = values["space"]
        _check_keys(space, training_arguments("distill") - HARNESS_OWNED, f"{w}.space")
        space = dict(space)
        for param, spec in space.items():
            _check_space(spec, f"{w}.space.{param}")
            for bound in spec if isinstance(spec, list) else [spec["low"], spec["high"]]:
                check_training_value("distill", param, bound, f"{w}.space")
        _integer(values["trials"], f"{w}.trials", minimum=1)
        if values.get("seed") is not None:
            _integer(values["seed"], f"{w}.seed", minimum=0)
        if values.get("max_eval_samples") is not None:
            _integer(values["max_eval_samples"], f"{w}.max_eval_samples", minimum=1)
        kind = values.get("student", student.get("kind", "full"))
        if kind not in STUDENT_KINDS:
            raise ConfigError(f"{w}.student: one of {STUDENT_KINDS}")
        sweeps[name] = Sweep(
            name,
            values["strategy"],
            values["lang"],
            dev,
            int(values["trials"]),
            space,
            int(values.get("seed", 0)),
            kind,
            values.get("max_eval_samples"),
        )
    for strategy in strategies.values():
        if strategy.sweep is not None and strategy.sweep not in sweeps:
            raise ConfigError(f"strategies.{strategy.name}.sweep: unknown sweep {strategy.sweep!r}")

    groups: list[Group] = []
    for i, values in enumerate(raw["groups"] or []):
        w = f"groups[{i}]"
        _check_keys(
            values,
            ("name", "languages", "strategies", "students", "seeds", "teachers_zero_shot"),
            w,
            required=("name", "languages", "strategies", "seeds"),
        )
        if not isinstance(values["name"], str) or not values["name"]:
            raise ConfigError(f"{w}.name: a non-empty string, got {values['name']!r}")
        langs = values["languages"]
        if langs != "all" and not isinstance(langs, list):
            raise ConfigError(f"{w}.languages: a list of language codes or 'all', got {langs!r}")
        langs = list(languages) if langs == "all" else [str(lang) for lang in langs]
        for lang in langs:
            if lang not in languages:
                raise ConfigError(f"{w}.languages: {lang!r} is not under languages:")
        chosen = values["strategies"]
        if chosen == "all":
            chosen = list(strategies)
        elif isinstance(chosen, Mapping):
            _check_keys(chosen, ("best", "of", "lang", "domain"), f"{w}.strategies", required=("best", "of"))
            _integer(chosen["best"], f"{w}.strategies.best", minimum=1)
            if chosen["of"] not in [g.name for g in groups]:
                raise ConfigError(f"{w}.strategies.of: {chosen['of']!r} must be an earlier group")
            if chosen.get("lang") is not None and str(chosen["lang"]) not in languages:
                raise ConfigError(f"{w}.strategies.lang: {chosen['lang']!r} is not under languages:")
            if chosen.get("domain") is not None and chosen["domain"] not in DOMAINS:
                raise ConfigError(f"{w}.strategies.domain: must be 'in' or 'out', got {chosen['domain']!r}")
        elif not isinstance(chosen, list):
            raise ConfigError(
                f"{w}.strategies: a list of strategy names, 'all' or {{best: N, of: GROUP}}, got {chosen!r}"
            )
        else:
            for name in chosen:
                if name not in strategies:
                    raise ConfigError(f"{w}.strategies: unknown strategy {name!r}; strategies: {sorted(strategies)}")
        kinds = values.get("students", [student.get("kind", "full")])
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        for kind in kinds:
            if kind not in STUDENT_KINDS:
                raise ConfigError(f"{w}.students: one of {STUDENT_KINDS}, got {kind!r}")
        seeds = values["seeds"]
        seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
        if not isinstance(seeds, list) or not seeds:
            raise ConfigError(f"{w}.seeds: a list of integer seeds, got {values['seeds']!r}")
        seeds = [_integer(s, f"{w}.seeds[{i}]", minimum=0) for i, s in enumerate(seeds)]
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{w}.seeds: a seed is given twice: {seeds}")
        zero_shot = values.get("teachers_zero_shot", True)
        if not isinstance(zero_shot, bool):
            raise ConfigError(f"{w}.teachers_zero_shot: true or false, got {zero_shot!r}")
        groups.append(Group(values["name"], langs, chosen, kinds, seeds, zero_shot))
    if len({g.name for g in groups}) != len(groups):
        raise ConfigError("groups: names must be unique")

    keep_weights = raw.get("keep_weights", "students")
    if keep_weights not in KEEP_WEIGHTS:
        raise ConfigError(f"keep_weights: one of {sorted(KEEP_WEIGHTS)}, got {keep_weights!r}")
    experiment = Experiment(
        keep_weights=keep_weights,
        selection=selection,
        name=str(raw["name"]),
        path=path,
        description=str(raw.get("description", "")).strip(),
        output_dir=raw.get("output_dir") or os.path.join("xner-output", "experiments", str(raw["name"])),
        artifacts_dir=raw.get("artifacts_dir"),
        data_dir=raw.get("data_dir"),
        launcher=list(launcher),
        models=models,
        source=source,
        teachers=teachers,
        student=student,
        strategies=strategies,
        languages=languages,
        groups=groups,
        sweeps=sweeps,
        evaluation=evaluation,
        cost=cost,
        raw=raw,
    )
    for group in groups:
        if isinstance(group.strategies, list):
            for lang in group.languages:
                if not any(experiment.covers(strategies[s], lang) for s in group.strategies):
                    raise ConfigError(f"groups {group.name!r}: no strategy has its teachers for language {lang!r}")
    return experiment


def _selection_rule(values: Any, source: TextSource, languages: Mapping[str, Language]) -> SelectionRule:
    """``selection:`` -- a protocol name, or ``{protocol, source_dev, max_samples, allow_target_dev}``."""
    values = {"protocol": values} if isinstance(values, str) or values is None else values
    if not isinstance(values, Mapping):
        raise ConfigError(f"selection: a protocol ({', '.join(SELECTION_RULES)}) or a mapping, got {values!r}")
    _check_keys(values, ("protocol", "source_dev", "max_samples", "allow_target_dev"), "selection")
    protocol = values.get("protocol") or "auto"
    if protocol not in SELECTION_RULES:
        raise ConfigError(f"selection.protocol: one of {', '.join(SELECTION_RULES)}, got {protocol!r}")
    allow = values.get("allow_target_dev", False)
    if not isinstance(allow, bool):
        raise ConfigError(f"selection.allow_target_dev: true or false, got {allow!r}")
    if protocol == "target-dev":
        if not allow:
            raise ConfigError(
                "selection.protocol: target-dev picks checkpoints on gold target-language labels, which zero-shot "
                "transfer does not have; use auto, or set selection.allow_target_dev: true for an upper-bound study"
            )
        missing = [code for code, language in languages.items() if language.dev is None]
        if missing:
            raise ConfigError(f"selection.protocol: target-dev needs languages.<code>.dev for {missing}")
    max_samples = values.get("max_samples", SelectionRule.max_samples)
    if max_samples is not None:
        max_samples = _integer(max_samples, "selection.max_samples", minimum=1)
    if values.get("source_dev"):
        source_dev = _test_set({"domain": "in", **values["source_dev"]}, source.lang, "selection.source_dev")
    else:
        split = next((s for s in ("validation", "dev") if s in corpus_spec(source.corpus).files), None)
        source_dev = TestSet(source.corpus, "in", split, source.lang) if split else None
    # auto without a source dev set: nothing to select on, the last epoch is kept (as with none)
    if source_dev is None and protocol in ("source-dev", "translate-train-dev"):
        raise ConfigError(
            f"selection.source_dev: the source corpus {source.corpus!r} has no validation split; "
            "name a source dev set ({corpus, split}) or set selection: none"
        )
    return SelectionRule(protocol, source_dev, max_samples, allow)


def _check_space(spec: Any, where: str) -> None:
    """A search-space entry: ``[choices]`` or ``{low, high, log?, int?}``."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: empty list of choices")
        return
    _check_keys(spec, ("low", "high", "log", "int"), where, required=("low", "high"))
    for bound in ("low", "high"):
        if isinstance(spec[bound], bool) or not isinstance(spec[bound], (int, float)):
            raise ConfigError(f"{where}.{bound}: a number, got {spec[bound]!r}")
    if not float(spec["low"]) < float(spec["high"]):
        raise ConfigError(f"{where}: low must be below high")
    if spec.get("log") and float(spec["low"]) <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0")


__all__ = [
    "ConfigError",
    "Experiment",
    "Group",
    "KEEP_WEIGHTS",
    "Language",
    "SELECTION_RULES",
    "SelectionRule",
    "Strategy",
    "Sweep",
    "Teacher",
    "TestSet",
    "TextSource",
    "check_model",
    "check_training_value",
    "training_flags",
    "load_experiment",
    "parse_experiment",
    "read_yaml",
    "stable_hash",
    "training_arguments",
]
