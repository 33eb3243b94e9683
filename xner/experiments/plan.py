"""From an :class:`~xner.experiments.config.Experiment` to the list of runs it implies, with a cost estimate.

Kinds of run, in the order they are done:

* ``teacher-train``: a teacher fine-tuned with ``training.teacher`` -- on the source corpus
  (model transfer) or on one language's projected data (translate-train / translate-test);
* ``projection``: the projected data of a projection teacher for one language (``projection.pipelines``);
* ``teacher-eval``: a teacher used zero-shot on a language's test sets (the baseline);
* ``student``: a student distilled with ``training.distill`` and evaluated on the language's test sets.

Sweep trials are planned by :mod:`xner.experiments.sweep`. A run's identity (``spec``) holds
what decides its result and the ids of the runs it depends on; ``run_id`` is its hash. Groups whose
strategies are "the best N of an earlier group", and strategies whose parameters come from a sweep,
can only be expanded once those results exist: until then :func:`plan` returns them as
:class:`Pending` entries with an estimate.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping, Optional, Sequence

from xner.experiments.config import ConfigError, Experiment, Group, Strategy, Sweep, TestSet, stable_hash

logger = logging.getLogger(__name__)

UNKNOWN_SIZE = 1000  # sentences assumed for a corpus that cannot be read here (a Hub dataset offline)


@dataclasses.dataclass
class Run:
    kind: str
    label: str
    spec: dict
    lang: Optional[str] = None
    seed: Optional[int] = None
    groups: list = dataclasses.field(default_factory=list)
    depends: list = dataclasses.field(default_factory=list)  # run ids
    estimate_s: float = 0.0
    info: dict = dataclasses.field(default_factory=dict)  # what the runner needs; not identity

    @property
    def run_id(self) -> str:
        return f"{self.kind}-{stable_hash(self.spec)}"


@dataclasses.dataclass
class Pending:
    """Runs that can be listed only after other results exist."""

    group: str
    reason: str
    count: int
    estimate_s: float


class Sizes:
    """Sentence counts of corpus splits, read once (the cost estimate needs them)."""

    def __init__(self, data_dir: Optional[str]):
        self.data_dir, self.cache = data_dir, {}

    def __call__(self, corpus: str, split: str, lang: Optional[str]) -> Optional[int]:
        key = (corpus, split, lang)
        if key not in self.cache:
            from dataset_builders.corpora import default_data_dir, load_corpus

            if corpus == "wikiann":  # a plan never downloads: only local WikiANN copies are counted
                from dataset_builders.wikiann import local_files

                if not local_files(self.data_dir or default_data_dir(), lang, [split])[0]:
                    self.cache[key] = None
                    return None
            try:
                self.cache[key] = len(load_corpus(corpus, data_dir=self.data_dir, lang=lang, splits=[split])[split])
            except Exception as err:  # offline Hub corpus, missing files: estimate only
                logger.info("size of %s/%s/%s unknown (%s)", corpus, lang, split, err)
                self.cache[key] = None
        return self.cache[key]

    def known(self, corpus: str, split: str, lang: Optional[str]) -> int:
        return self(corpus, split, lang) or UNKNOWN_SIZE


def _first_n(size: int, limit: Optional[int]) -> int:
    return size if limit is None else min(size, int(limit))


class Planner:
    """Builds runs with memoisation: a teacher used by many students is one run."""

    def __init__(
        self,
        experiment: Experiment,
        sweep_results: Optional[Mapping[str, dict]] = None,
        records: Sequence[Mapping] = (),
    ):
        self.x = experiment
        self.sizes = Sizes(experiment.data_dir)
        self.sweep_results = dict(sweep_results or {})
        self.records = list(records)
        self.runs: dict[str, Run] = {}
        self.pending: list[Pending] = []
        self.cost = experiment.cost

    # ---- helpers
    def _add(self, run: Run, group: Optional[str] = None) -> Run:
        existing = self.runs.get(run.run_id)
        if existing is None:
            self.runs[run.run_id] = existing = run
        if group and group not in existing.groups:
            existing.groups.append(group)
        return existing

    def model_ref(self, name: str) -> str:
        """What identifies a model in a spec: the alias' declared value (machine-independent)."""
        return self.x.models.get(name, name)

    def eval_settings(self, eval_limit: Optional[int] = None) -> dict:
        e = self.x.evaluation
        return {"max_eval_samples": eval_limit or e.get("max_eval_samples"), "max_length": e.get("max_length")}

    def eval_seconds(self, tests: Sequence[TestSet], eval_limit: Optional[int] = None) -> float:
        limit = eval_limit or self.x.evaluation.get("max_eval_samples")
        n = sum(_first_n(self.sizes.known(t.corpus, t.split, t.lang), limit) for t in tests)
        return n / self.cost["eval_sentences_per_s"]

    # ---- teachers
    def teacher(self, name: str, lang: Optional[str]) -> Run:
        teacher = self.x.teachers[name]
        train = dict(teacher.train)
        epochs = float(train.get("num_train_epochs", 3))
        if teacher.kind == "model-transfer":
            src = self.x.source
            spec = {
                "model": self.model_ref(teacher.model),
                "data": {"corpus": src.corpus, "split": src.split, "lang": src.lang},
                "train": train,
            }
            n = _first_n(self.sizes.known(src.corpus, src.split, src.lang), train.get("max_train_samples"))
            depends, label = [], f"teacher {name}"
        else:
            projection = self.projection(name, lang)
            spec = {"model": self.model_ref(teacher.model), "data": projection.run_id, "train": train}
            n = _first_n(projection.info["sentences"], train.get("max_train_samples"))
            depends, label = [projection.run_id], f"teacher {name} ({lang})"
        seconds = n * epochs / self.cost["teacher_train_sentences_per_s"] + self.cost["process_overhead_s"]
        return self._add(
            Run(
                "teacher-train",
                label,
                spec,
                lang=None if teacher.kind == "model-transfer" else lang,
                depends=depends,
                estimate_s=seconds,
                info={"teacher": name, "sentences": n},
            )
        )

    def projection(self, name: str, lang: str, dev: Optional[TestSet] = None) -> Run:
        """Teacher ``name``'s projection into ``lang``: of the source corpus (translate-train) or of the language's
        own text (translate-test); with ``dev`` (translate-train only), of that source dev set instead -- the
        translate-train dev set of model selection, capped at ``selection.max_samples`` sentences."""
        teacher = self.x.teachers[name]
        projection = dict(teacher.projection or {})
        if dev is not None:
            data = {"corpus": dev.corpus, "split": dev.split, "lang": dev.lang}
            size = self.sizes.known(dev.corpus, dev.split, dev.lang)
            projection["max_samples"] = self.x.selection.max_samples
            depends = []
        elif teacher.kind == "translate-train":
            src = self.x.source
            data = {"corpus": src.corpus, "split": src.split, "lang": src.lang}
            size = self.sizes.known(src.corpus, src.split, src.lang)
            depends = []
        else:  # translate-test: the language's own (unlabelled) training text, tagged through English
            text = self.x.languages[lang].train
            data = {"corpus": text.corpus, "split": text.split, "lang": text.lang}
            size = self.sizes.known(text.corpus, text.split, text.lang)
            tagger = self.teacher(teacher.tagger, None)
            depends = [tagger.run_id]
            data["tagger"] = tagger.run_id
        n = _first_n(size, projection.get("max_samples"))
        spec = {"mode": teacher.kind, "lang": lang, "data": data, "projection": projection}
        seconds = n / self.cost["projection_sentences_per_s"]
        return self._add(
            Run(
                "projection",
                f"projection {name} ({lang}{', dev set' if dev is not None else ''})",
                spec,
                lang=lang,
                depends=depends,
                estimate_s=seconds,
                info={"teacher": name, "sentences": n},
            )
        )

    def teacher_eval(self, name: str, lang: str, group: str) -> Run:
        teacher_run = self.teacher(name, lang if self.x.teachers[name].languages else None)
        tests = self.x.languages[lang].tests
        spec = {
            "model": teacher_run.run_id,
            "lang": lang,
            "tests": [t.identity() for t in tests],
            **self.eval_settings(),
        }
        seconds = self.eval_seconds(tests) + self.cost["process_overhead_s"]
        return self._add(
            Run(
                "teacher-eval",
                f"teacher {name} zero-shot ({lang})",
                spec,
                lang=lang,
                depends=[teacher_run.run_id],
                estimate_s=seconds,
                info={"teacher": name},
            ),
            group,
        )

    # ---- model selection
    def selection_dev(self, lang: str) -> Optional[TestSet]:
        """The dev set the experiment's selection rule (``selection:``) picks for ``lang``'s students and sweeps:
        the source dev set translated and projected by ``lang``'s first translate-train teacher (a
        :class:`TestSet` whose ``projection`` is that run, planned here), the source dev set, or the gold
        target dev set; None for ``selection: none``."""
        rule = self.x.selection
        protocol = rule.protocol
        mt = next(
            (t for t in self.x.teachers.values() if t.kind == "translate-train" and lang in (t.languages or ())),
            None,
        )
        if protocol == "none" or (protocol == "auto" and rule.source_dev is None):
            return None
        if protocol == "auto":
            protocol = "translate-train-dev" if mt is not None and lang != self.x.source.lang else "source-dev"
        if protocol == "target-dev":
            return self.x.languages[lang].dev
        if protocol == "translate-train-dev":
            if mt is None:
                raise ConfigError(
                    f"selection.protocol: translate-train-dev for {lang!r} needs a translate-train teacher of "
                    f"{lang!r} (its translator and aligner build the dev set); use auto or source-dev"
                )
            run = self.projection(mt.name, lang, dev=rule.source_dev)
            return dataclasses.replace(rule.source_dev, lang=lang, projection=run.run_id)
        return rule.source_dev

    def sweep_dev(self, sweep: Sweep) -> TestSet:
        """What a sweep's trials are scored on: the dev set it names, else the students' (the one rule)."""
        dev = sweep.dev or self.selection_dev(sweep.lang)
        if dev is None:
            raise ConfigError(
                f"sweeps.{sweep.name}: no dev set to score trials on (selection: none); give sweeps.{sweep.name}.dev"
            )
        return dev

    @staticmethod
    def selection_protocol(dev: TestSet, source_lang: Optional[str]) -> str:
        if dev.projection:
            return "translate-train-dev"
        return "source-dev" if dev.lang == source_lang else "target-dev"

    # ---- students
    def strategy_args(self, strategy: Strategy) -> Optional[dict]:
        """The strategy's distill arguments, with a sweep's best parameters; None while the sweep is not done."""
        args = dict(strategy.args)
        if strategy.sweep is not None:
            result = self.sweep_results.get(strategy.sweep)
            if result is None:
                return None
            args.update(result["best_params"])
        return args

    def student_args(self, kind: str, strategy_args: Mapping) -> dict:
        args = dict(self.x.student["args"])
        if kind == "lora":
            args.update(self.x.student["lora"])
        args.update(strategy_args)  # a strategy (or sweep) may set the learning rate, rank, epochs
        return args

    def student(
        self,
        strategy: Strategy,
        lang: str,
        kind: str,
        seed: int,
        group: Optional[str],
        tests: Optional[Sequence[TestSet]] = None,
        extra_args: Optional[Mapping] = None,
        run_kind: str = "student",
        eval_limit: Optional[int] = None,
    ) -> Optional[Run]:
        strategy_args = self.strategy_args(strategy)
        if strategy_args is None:
            return None
        strategy_args.update(extra_args or {})
        language = self.x.languages[lang]
        tests = list(tests if tests is not None else language.tests)
        teachers = [self.teacher(t, lang if self.x.teachers[t].languages else None) for t in strategy.teachers]
        projected = self.projection(strategy.projected, lang) if strategy.projected else None
        args = self.student_args(kind, strategy_args)
        text = language.train
        dev = self.selection_dev(lang)
        selection = None
        if dev is not None:
            selection = {
                "protocol": self.selection_protocol(dev, self.x.source.lang),
                "dev": dev.identity(),
                "max_samples": self.x.selection.max_samples,
            }
        spec = {
            "strategy": strategy.strategy,
            "model": self.model_ref(self.x.student["model"]),
            "kind": kind,
            "teachers": [t.run_id for t in teachers],
            "projected": projected.run_id if projected else None,
            "text": {"corpus": text.corpus, "split": text.split, "lang": text.lang},
            "args": args,
            "seed": seed,
            "tests": [t.identity() for t in tests],
            **self.eval_settings(eval_limit),
            # only with a rule, so that the runs of experiments with selection: none keep their ids
            **({"selection": selection} if selection else {}),
        }
        n = _first_n(self.sizes.known(text.corpus, text.split, text.lang), args.get("max_train_samples"))
        n_projected = _first_n(projected.info["sentences"], args.get("max_train_samples")) if projected else 0
        epochs = float(args.get("num_train_epochs", 3))
        rate = self.cost["train_sentences_per_s"] * (self.cost["lora_speedup"] if kind == "lora" else 1.0)
        probs_rate = self.cost["teacher_probs_sentences_per_s"]
        # language-agnostic selection encodes the target text and as much source text, then trains on what it keeps;
        # self-training trains (and relabels) once per round
        keep = float(args.get("select_language_agnostic") or 1.0)
        rounds = int(args.get("self_training_rounds") or 1)
        trained = n * keep + n_projected
        seconds = (
            rounds * trained * epochs / rate
            + rounds * (n + n_projected) * len(teachers) / probs_rate
            + (2 * n / probs_rate if keep < 1.0 else 0.0)
            + self.eval_seconds(tests, eval_limit)
            + rounds * (self.eval_seconds([dev], self.x.selection.max_samples) * epochs if dev is not None else 0.0)
            + 2 * self.cost["process_overhead_s"]
        )
        depends = [t.run_id for t in teachers] + ([projected.run_id] if projected else [])
        if dev is not None and dev.projection:
            depends.append(dev.projection)
        label = f"{strategy.name} ({kind}) {lang} seed {seed}"
        return self._add(
            Run(
                run_kind,
                label,
                spec,
                lang=lang,
                seed=seed,
                depends=depends,
                estimate_s=seconds,
                info={
                    "strategy": strategy.name,
                    "student_kind": kind,
                    "teachers": list(strategy.teachers),
                    "args": args,
                    "sentences": n,
                    "tests": tests,
                    "max_eval_samples": self.eval_settings(eval_limit)["max_eval_samples"],
                },
            ),
            group,
        )

    def group_strategies(self, group: Group) -> Optional[list[str]]:
        if isinstance(group.strategies, list):
            return group.strategies
        # "The best of" a group is known only once all of that group's students have results.
        source = next(g for g in self.x.groups if g.name == group.strategies["of"])
        sub = Planner(self.x, self.sweep_results, self.records)
        sub.add_group(source)
        finished = {r["run_id"] for r in self.records}
        if sub.pending or any(r.kind == "student" and r.run_id not in finished for r in sub.runs.values()):
            return None
        return best_strategies(self.records, group.strategies, self.x)

    def add_group(self, group: Group) -> None:
        names = self.group_strategies(group)
        if names is None:
            chosen = group.strategies
            count = int(chosen["best"]) * len(group.languages) * len(group.students) * len(group.seeds)
            first = next(iter(self.x.strategies.values()))
            runs = dict(self.runs)  # the sample run only prices the pending ones; it is not planned
            sample = self.student(first, group.languages[0], group.students[0], group.seeds[0], None)
            self.runs = runs
            self.pending.append(
                Pending(
                    group.name,
                    f"the best {chosen['best']} strategies of group {chosen['of']!r} (known once it has run)",
                    count,
                    count * (sample.estimate_s if sample else 0),
                )
            )
            return
        for lang in group.languages:
            strategies = [self.x.strategies[s] for s in names if self.x.covers(self.x.strategies[s], lang)]
            if group.teachers_zero_shot:
                for teacher in dict.fromkeys(t for s in strategies for t in s.teachers):
                    self.teacher_eval(teacher, lang, group.name)
            for strategy in strategies:
                for kind in group.students:
                    for seed in group.seeds:
                        if self.student(strategy, lang, kind, seed, group.name) is None:
                            runs = dict(self.runs)  # priced with the strategy's own parameters, not planned
                            sample = self.student(dataclasses.replace(strategy, sweep=None), lang, kind, seed, None)
                            self.runs = runs
                            self.pending.append(
                                Pending(
                                    group.name,
                                    f"{strategy.name} ({kind}): parameters from sweep {strategy.sweep!r} (not run yet)",
                                    1,
                                    sample.estimate_s,
                                )
                            )


def best_strategies(records: Sequence[Mapping], chosen: Mapping, experiment: Experiment) -> Optional[list[str]]:
    """The ``best`` strategy names of group ``of`` by mean F1 over its in-domain (or ``domain``) test sets.

    None until the group has student results. Scores average over seeds and over the group's
    languages (or only ``lang``).
    """
    domain = chosen.get("domain", "in")
    scores: dict[str, list[float]] = {}
    for record in records:
        if record.get("kind") != "student" or chosen["of"] not in record.get("groups", []):
            continue
        if chosen.get("lang") and record.get("lang") != chosen["lang"]:
            continue
        for result in record["results"].values():
            if result["domain"] == domain:
                scores.setdefault(record["model"], []).append(result["f1"])
    if not scores:
        return None
    ranked = sorted(scores, key=lambda name: -sum(scores[name]) / len(scores[name]))
    return [name for name in ranked if name in experiment.strategies][: int(chosen["best"])]


def plan(
    experiment: Experiment,
    *,
    records: Sequence[Mapping] = (),
    sweep_results: Optional[Mapping] = None,
    groups: Optional[Sequence[str]] = None,
) -> tuple[list[Run], list[Pending]]:
    """All runs of ``experiment`` (or of ``groups``) in dependency order, and what cannot be listed yet."""
    planner = Planner(experiment, sweep_results, records)
    for group in experiment.groups:
        if groups is None or group.name in groups:
            planner.add_group(group)
    return order(planner.runs), planner.pending


def order(runs: Mapping[str, Run]) -> list[Run]:
    """Dependencies first; otherwise the order runs were added (teachers, then students group by group)."""
    done: dict[str, Run] = {}

    def visit(run: Run) -> None:
        if run.run_id in done:
            return
        for dep in run.depends:
            visit(runs[dep])
        done[run.run_id] = run

    for run in runs.values():
        visit(run)
    return list(done.values())


def sweep_results_of(experiment: Experiment) -> dict[str, dict]:
    """Best parameters of the finished sweeps (``OUTPUT_DIR/sweeps/NAME.json``)."""
    import json

    results = {}
    for name in experiment.sweeps:
        path = os.path.join(experiment.output_dir, "sweeps", f"{name}.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                results[name] = json.load(handle)
    return results


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(
    experiment: Experiment,
    runs: Sequence[Run],
    pending: Sequence[Pending],
    finished: Mapping[str, Any] = (),
    sweep_trials: Optional[Mapping[str, float]] = None,
) -> str:
    """The text ``xner experiment plan`` prints."""
    finished = set(finished)
    lines = [
        f"experiment {experiment.name} ({experiment.path or 'in memory'}), config {experiment.config_hash}",
        f"results: {experiment.results_path}; artifacts: {experiment.artifacts}",
    ]
    if experiment.description:
        lines.append(experiment.description.splitlines()[0])
    todo = 0.0
    lines.append("")
    for run in runs:
        done = run.run_id in finished or run.info.get("artifact_done")
        if not done:
            todo += run.estimate_s
        groups = f" [{', '.join(run.groups)}]" if run.groups else ""
        state = "done" if done else f"~{format_duration(run.estimate_s)}"
        lines.append(f"  {run.run_id:<28} {run.label}{groups}  {state}")
    for name, seconds in (sweep_trials or {}).items():
        todo += seconds
        lines.append(f"  sweep {name}: ~{format_duration(seconds)} (remaining trials)")
    merged: dict[tuple, list] = {}
    for p in pending:  # one line per group and reason, however many languages and seeds
        entry = merged.setdefault((p.group, p.reason), [0, 0.0])
        entry[0] += p.count
        entry[1] += p.estimate_s
    for (group, reason), (count, seconds) in merged.items():
        todo += seconds
        lines.append(f"  pending [{group}]: {count} run(s), {reason}  ~{format_duration(seconds)}")
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.kind] = counts.get(run.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    lines.append("")
    lines.append(
        f"{len(runs)} runs ({summary}); {sum(1 for r in runs if r.run_id in finished or r.info.get('artifact_done'))} done; "
        f"estimated time left: {format_duration(todo)} (rates: {dict(experiment.cost)})"
    )
    return "\n".join(lines)


__all__ = [
    "Pending",
    "Planner",
    "Run",
    "best_strategies",
    "describe",
    "format_duration",
    "order",
    "plan",
    "sweep_results_of",
]
