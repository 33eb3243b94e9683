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

import copy
import dataclasses
import hashlib
import json
import os
from typing import Any, Iterable, Mapping, Optional

import yaml

from dataset_builders.corpora import corpus_spec

TEACHER_KINDS = ("model-transfer", "translate-train", "translate-test")
STRATEGY_NAMES = ("soft-mse", "soft-kl", "hard", "hard-confident", "multi-teacher", "projected+kd")
STUDENT_KINDS = ("full", "lora")
DOMAINS = ("in", "out")
BUILTIN_MODELS = {"builtin:minilm": "xner.assets.minilm_path"}

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


class ConfigError(ValueError):
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


def stable_hash(value: Any, length: int = 12) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


_ARG_DESTS: dict[str, frozenset] = {}


def training_arguments(script: str) -> frozenset:
    """Setting names of ``training.teacher`` or ``training.distill`` (their dataclass fields and the
    fields' aliases, :func:`training.arguments.field_names`): what a file may set."""
    if script not in _ARG_DESTS:
        import importlib

        from training.arguments import field_names

        _ARG_DESTS[script] = frozenset(field_names(importlib.import_module(f"training.{script}").ARGUMENTS))
    return _ARG_DESTS[script]


# Arguments the harness sets itself; a file setting them would be silently overridden.
HARNESS_OWNED = frozenset({
    "output_dir", "model_name_or_path", "corpus", "lang", "dataset", "dataset_config", "dataset_name",
    "dataset_config_name", "data_dir", "teacher",
    "eval", "seed", "strategy", "student", "resume_from_checkpoint", "best_on",
})  # fmt: skip


def _check_training_args(values: Mapping, script: str, where: str, allow: Iterable[str] = ()) -> dict:
    values = dict(values or {})
    _check_keys(values, (training_arguments(script) - HARNESS_OWNED) | set(allow), where)
    return {k: v for k, v in values.items() if v is not None}  # None = the script's default


# ------------------------------------------------------------------------------------------- schema


@dataclasses.dataclass(frozen=True)
class TestSet:
    """A gold test set of one language, marked in or out of domain."""

    corpus: str
    domain: str
    split: str = "test"
    lang: Optional[str] = None
    type_map: Mapping[str, Optional[str]] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        """The key results are reported under (``training.evaluation``'s naming): ``conll2002-es``."""
        key = f"{self.corpus}-{self.lang}" if self.lang else self.corpus
        return key if self.split == "test" else f"{key}:{self.split}"

    @property
    def spec(self) -> str:
        """``training.evaluation --test`` value."""
        lang = f"@{self.lang}" if self.lang else ""
        return f"{self.corpus}:{self.split}{lang}={self.domain}"

    def identity(self) -> dict:
        return {"corpus": self.corpus, "split": self.split, "lang": self.lang, "domain": self.domain,
                "type_map": dict(self.type_map)}  # fmt: skip


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
    dev: TestSet
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

    @property
    def config_hash(self) -> str:
        where = ("output_dir", "artifacts_dir", "data_dir", "description")
        return stable_hash({k: v for k, v in self.raw.items() if k not in where}, 16)

    @property
    def artifacts(self) -> str:
        return self.artifacts_dir or self.output_dir

    @property
    def results_path(self) -> str:
        from xner.experiments.store import RESULTS_FILE

        return os.path.join(self.output_dir, RESULTS_FILE)

    def resolve_model(self, name: str) -> str:
        """An alias of ``models:`` -> its value; ``builtin:minilm`` -> the offline MiniLM folder."""
        value = self.models.get(name, name)
        if value in BUILTIN_MODELS:
            import importlib

            module, _, function = BUILTIN_MODELS[value].rpartition(".")
            return getattr(importlib.import_module(module), function)()
        return value

    def covers(self, strategy: Strategy, lang: str) -> bool:
        """Whether every teacher of ``strategy`` exists for ``lang`` (projection teachers are per language)."""
        names = list(strategy.teachers) + ([strategy.projected] if strategy.projected else [])
        return all(self.teachers[n].languages is None or lang in self.teachers[n].languages for n in names)


# -------------------------------------------------------------------------------------------- loading


TOP_KEYS = ("name", "description", "output_dir", "artifacts_dir", "data_dir", "launcher", "models", "source", "teachers", "student",
            "strategies", "languages", "groups", "sweeps", "evaluation", "cost")  # fmt: skip


def load_experiment(path: str, output_dir: Optional[str] = None, data_dir: Optional[str] = None,
                    artifacts_dir: Optional[str] = None) -> Experiment:
    """Read and validate an experiment file; ``output_dir``/``data_dir`` override the file's."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"experiment file {path} does not exist")
    with open(path, encoding="utf-8") as handle:
        try:
            raw = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
    experiment = parse_experiment(raw, path=path)
    if output_dir:
        experiment.output_dir = output_dir
    if data_dir:
        experiment.data_dir = data_dir
    if artifacts_dir:
        experiment.artifacts_dir = artifacts_dir
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
    return TestSet(corpus, values["domain"], values.get("split", "test"), values.get("lang", lang),
                   {k: (None if v in (None, "O") else v) for k, v in type_map.items()})  # fmt: skip


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
    models = dict(raw.get("models") or {})
    source = _text_source(raw["source"], raw["source"].get("lang", "en"), "source")
    launcher = raw.get("launcher") or ["python", "-m"]
    if isinstance(launcher, str):
        launcher = launcher.split()
    if not launcher or launcher[-1] != "-m":
        raise ConfigError(f"launcher: a command that runs a module, ending in -m (python -m, accelerate launch ... -m), got {launcher}")

    evaluation = dict(raw.get("evaluation") or {})
    _check_keys(evaluation, ("max_eval_samples", "per_device_eval_batch_size", "max_length", "bootstrap_samples"), "evaluation")
    cost = {**DEFAULT_COST, **(raw.get("cost") or {})}
    _check_keys(cost, DEFAULT_COST, "cost")

    teachers: dict[str, Teacher] = {}
    for name, values in (raw["teachers"] or {}).items():
        w = f"teachers.{name}"
        _check_keys(values, ("kind", "model", "train", "languages", "projection", "tagger"), w, required=("kind", "model"))
        kind = values["kind"]
        if kind not in TEACHER_KINDS:
            raise ConfigError(f"{w}.kind: one of {TEACHER_KINDS}, got {kind!r}")
        train = _check_training_args(values.get("train"), "teacher", f"{w}.train", allow=("seed",))
        projection = values.get("projection")
        if kind == "model-transfer":
            if projection or values.get("languages"):
                raise ConfigError(f"{w}: a model-transfer teacher is trained on the source corpus; no projection/languages")
        else:
            if not projection or not values.get("languages"):
                raise ConfigError(f"{w}: a {kind} teacher needs projection: {{translator, aligner, method}} and languages")
            _check_keys(projection, ("translator", "aligner", "method", "max_samples", "num_proc", "tagger_type_map"),
                        f"{w}.projection")  # fmt: skip
        if kind == "translate-test" and not values.get("tagger"):
            raise ConfigError(f"{w}.tagger: a translate-test teacher needs the name of the source teacher that tags")
        teachers[name] = Teacher(name, kind, values["model"], train, list(values["languages"]) if values.get("languages") else None,
                                 dict(projection) if projection else None, values.get("tagger"))  # fmt: skip
    for teacher in teachers.values():
        if teacher.tagger is not None and (teacher.tagger not in teachers or teachers[teacher.tagger].kind != "model-transfer"):
            raise ConfigError(f"teachers.{teacher.name}.tagger: {teacher.tagger!r} is not a model-transfer teacher")

    student = dict(raw.get("student") or {})
    lora = dict(student.pop("lora", None) or {})
    base = {k: student.pop(k) for k in ("model", "kind") if k in student}
    if "model" not in base:
        raise ConfigError("student.model: required (an alias of models:, a folder or a Hub id)")
    if base.get("kind", "full") not in STUDENT_KINDS:
        raise ConfigError(f"student.kind: one of {STUDENT_KINDS}")
    student = {**base, "args": _check_training_args(student, "distill", "student"),
               "lora": _check_training_args(lora, "distill", "student.lora")}  # fmt: skip

    strategies: dict[str, Strategy] = {}
    for name, values in (raw["strategies"] or {}).items():
        w = f"strategies.{name}"
        values = dict(values or {})
        loss = values.pop("strategy", name)
        if loss not in STRATEGY_NAMES:
            raise ConfigError(f"{w}: strategy {loss!r} is not one of {STRATEGY_NAMES} (set strategy: for a custom name)")
        names = values.pop("teachers", None)
        if not names:
            raise ConfigError(f"{w}.teachers: the teacher names this strategy learns from")
        for teacher in names:
            if teacher not in teachers:
                raise ConfigError(f"{w}.teachers: unknown teacher {teacher!r}; teachers: {sorted(teachers)}")
        projected = values.pop("projected", None)
        if loss == "projected+kd":
            if projected not in teachers or teachers[projected].kind == "model-transfer":
                raise ConfigError(f"{w}.projected: projected+kd needs the name of a translate-train/-test teacher "
                                  f"whose projected data gives the labels")  # fmt: skip
        elif projected is not None:
            raise ConfigError(f"{w}.projected: only projected+kd uses projected data")
        if loss == "multi-teacher" and len(names) < 2:
            raise ConfigError(f"{w}.teachers: multi-teacher needs at least two teachers")
        sweep = values.pop("sweep", None)
        if "teacher_weights" in values and isinstance(values["teacher_weights"], list):
            if len(values["teacher_weights"]) != len(names):
                raise ConfigError(f"{w}.teacher_weights: one weight per teacher ({len(names)})")
        strategies[name] = Strategy(name, loss, list(names), _check_training_args(values, "distill", w), projected, sweep)

    languages: dict[str, Language] = {}
    for code, values in (raw["languages"] or {}).items():
        w = f"languages.{code}"
        _check_keys(values, ("train", "tests"), w, required=("train", "tests"))
        tests = [_test_set(t, code, f"{w}.tests[{i}]") for i, t in enumerate(values["tests"] or [])]
        if not tests:
            raise ConfigError(f"{w}.tests: at least one test set")
        if len({t.name for t in tests}) != len(tests):
            raise ConfigError(f"{w}.tests: test set names repeat: {[t.name for t in tests]}")
        languages[str(code)] = Language(str(code), _text_source(values["train"], str(code), f"{w}.train"), tests)
    for teacher in teachers.values():
        for lang in teacher.languages or []:
            if lang not in languages:
                raise ConfigError(f"teachers.{teacher.name}.languages: {lang!r} is not under languages:")

    sweeps: dict[str, Sweep] = {}
    for name, values in (raw.get("sweeps") or {}).items():
        w = f"sweeps.{name}"
        _check_keys(values, ("strategy", "lang", "dev", "trials", "space", "seed", "student", "max_eval_samples"), w,
                    required=("strategy", "lang", "dev", "trials", "space"))  # fmt: skip
        if values["strategy"] not in strategies:
            raise ConfigError(f"{w}.strategy: unknown strategy {values['strategy']!r}")
        if values["lang"] not in languages:
            raise ConfigError(f"{w}.lang: {values['lang']!r} is not under languages:")
        dev = _test_set({"domain": "in", **values["dev"]}, values["lang"], f"{w}.dev")
        space = dict(values["space"])
        for param, spec in space.items():
            _check_keys({param: None}, training_arguments("distill") - HARNESS_OWNED, f"{w}.space")
            _check_space(spec, f"{w}.space.{param}")
        if int(values["trials"]) < 1:
            raise ConfigError(f"{w}.trials: at least 1")
        kind = values.get("student", student.get("kind", "full"))
        if kind not in STUDENT_KINDS:
            raise ConfigError(f"{w}.student: one of {STUDENT_KINDS}")
        sweeps[name] = Sweep(name, values["strategy"], values["lang"], dev, int(values["trials"]), space,
                             int(values.get("seed", 0)), kind, values.get("max_eval_samples"))  # fmt: skip
    for strategy in strategies.values():
        if strategy.sweep is not None and strategy.sweep not in sweeps:
            raise ConfigError(f"strategies.{strategy.name}.sweep: unknown sweep {strategy.sweep!r}")

    groups: list[Group] = []
    for i, values in enumerate(raw["groups"] or []):
        w = f"groups[{i}]"
        _check_keys(values, ("name", "languages", "strategies", "students", "seeds", "teachers_zero_shot"), w,
                    required=("name", "languages", "strategies", "seeds"))  # fmt: skip
        langs = values["languages"]
        langs = list(languages) if langs == "all" else [str(l) for l in langs]
        for lang in langs:
            if lang not in languages:
                raise ConfigError(f"{w}.languages: {lang!r} is not under languages:")
        chosen = values["strategies"]
        if chosen == "all":
            chosen = list(strategies)
        elif isinstance(chosen, Mapping):
            _check_keys(chosen, ("best", "of", "lang", "domain"), f"{w}.strategies", required=("best", "of"))
            if chosen["of"] not in [g.name for g in groups]:
                raise ConfigError(f"{w}.strategies.of: {chosen['of']!r} must be an earlier group")
        else:
            for name in chosen:
                if name not in strategies:
                    raise ConfigError(f"{w}.strategies: unknown strategy {name!r}; strategies: {sorted(strategies)}")
        kinds = values.get("students", [student.get("kind", "full")])
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        for kind in kinds:
            if kind not in STUDENT_KINDS:
                raise ConfigError(f"{w}.students: one of {STUDENT_KINDS}, got {kind!r}")
        seeds = [int(s) for s in values["seeds"]]
        if not seeds:
            raise ConfigError(f"{w}.seeds: at least one seed")
        groups.append(Group(values["name"], langs, chosen, kinds, seeds, bool(values.get("teachers_zero_shot", True))))
    if len({g.name for g in groups}) != len(groups):
        raise ConfigError("groups: names must be unique")

    experiment = Experiment(
        name=str(raw["name"]), path=path, description=str(raw.get("description", "")).strip(),
        output_dir=raw.get("output_dir") or os.path.join("xner-output", "experiments", str(raw["name"])),
        artifacts_dir=raw.get("artifacts_dir"), data_dir=raw.get("data_dir"), launcher=list(launcher), models=models, source=source, teachers=teachers,
        student=student, strategies=strategies, languages=languages, groups=groups, sweeps=sweeps,
        evaluation=evaluation, cost=cost, raw=raw,
    )  # fmt: skip
    for group in groups:
        if isinstance(group.strategies, list):
            for lang in group.languages:
                if not any(experiment.covers(strategies[s], lang) for s in group.strategies):
                    raise ConfigError(f"groups {group.name!r}: no strategy has its teachers for language {lang!r}")
    return experiment


def _check_space(spec: Any, where: str) -> None:
    """A search-space entry: ``[choices]`` or ``{low, high, log?, int?}``."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: empty list of choices")
        return
    _check_keys(spec, ("low", "high", "log", "int"), where, required=("low", "high"))
    if not float(spec["low"]) < float(spec["high"]):
        raise ConfigError(f"{where}: low must be below high")
    if spec.get("log") and float(spec["low"]) <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0")


__all__ = ["ConfigError", "Experiment", "Group", "Language", "Strategy", "Sweep", "Teacher", "TestSet", "TextSource",
           "load_experiment", "parse_experiment", "stable_hash", "training_arguments"]  # fmt: skip
