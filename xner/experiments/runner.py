"""Run an experiment's runs, resumably, and append their results to the JSONL store.

Training and evaluation run as subprocesses through the experiment's ``launcher`` (``python -m``
by default; ``accelerate launch --num_processes 8 -m`` runs the same file on many GPUs), so every
run starts clean, its peak memory is its own (``os.wait4``), and a crash in one run is reported
with its log instead of taking the experiment down silently. Projection runs in this process.

What is finished is never redone (:mod:`xner.steps`, the engine ``xner demo`` uses too): a
teacher, projection or student is built in a staging folder renamed into place when complete; a
teacher or projection folder is done once it holds ``xner-run.json`` with its ``run_id`` (a folder
without it is a run that was interrupted, and starts again); a teacher evaluation or a student is
finished when its ``run_id`` is in the results store.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable, Iterator, Mapping, Optional, Sequence

from training.results import RunResults
from xner.experiments.children import run_child
from xner.experiments.config import KEEP_WEIGHTS, Experiment, TestSet, training_flags
from xner.experiments.plan import Run, format_duration, plan, sweep_results_of
from xner.experiments.store import append_record, finished_runs, host_facts, locked, package_versions, read_records
from xner.steps import Step, staged

logger = logging.getLogger(__name__)

MARKER = "xner-run.json"
ARTIFACTS_LOCK = ".xner-artifacts.lock"
ARTIFACT_FOLDERS = {"teacher-train": "teachers", "projection": "projections", "student": "students", "trial": "trials"}
# Progress bars and load reports are kept in the run's log file, not echoed.
NOISE = re.compile(
    r"\d+%\||it/s\]|s/it\]|^\s*(\x1b\[A)+\s*$|^\s*\[A|LOAD REPORT|^Key\s+\||^-+\+|UNEXPECTED|MISSING|^Notes:"
)


class RunFailed(RuntimeError):
    """A run's subprocess failed; the message names the run and its log file."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def experiment_lock(experiment: Experiment, wait: bool = False, echo: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the experiment's results store (and its artifacts folder, when that is shared elsewhere) for
    this process: a second run of the same store refuses at once, or waits with ``wait``."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(locked(experiment.results_path, wait=wait, echo=echo))
        if os.path.abspath(experiment.artifacts) != os.path.abspath(experiment.output_dir):
            stack.enter_context(locked(os.path.join(experiment.artifacts, ARTIFACTS_LOCK), wait=wait, echo=echo))
        yield


# A model folder's weight files (full model, shards and their index, LoRA adapter), top level only.
WEIGHT_FILES = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


def drop_weights(folder: str) -> int:
    """Remove the weight files of a recorded run's model folder (see ``keep_weights``); returns how many."""
    paths = sorted({p for pattern in WEIGHT_FILES for p in glob.glob(os.path.join(folder, pattern))})
    for path in paths:
        os.remove(path)
    return len(paths)


def artifact_dir(experiment: Experiment, run: Run) -> str:
    return os.path.join(experiment.artifacts, ARTIFACT_FOLDERS[run.kind], run.run_id)


def artifact_step(experiment: Experiment, run: Run) -> Step:
    """A teacher's or projection's folder as a step: done when its marker holds the run's id."""
    return Step(os.path.join(artifact_dir(experiment, run), MARKER), run.run_id)


class Runner:
    def __init__(self, experiment: Experiment, echo: Callable[[str], None] = print):
        self.x = experiment
        self.echo = echo
        os.makedirs(self.x.output_dir, exist_ok=True)
        self.logs = os.path.join(self.x.output_dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.versions = package_versions()
        self.host = host_facts()

    # ------------------------------------------------------------------------------------ bookkeeping
    def artifact_dir(self, run: Run) -> str:
        return artifact_dir(self.x, run)

    @staticmethod
    def artifact_done_at(experiment: Experiment, run: Run) -> bool:
        """Whether the run's folder holds its finished output (its marker, with the run's id)."""
        return artifact_step(experiment, run).finished() is not None

    def is_done(self, run: Run, finished: Mapping[str, dict]) -> bool:
        if run.kind in ("teacher-train", "projection"):
            return self.artifact_done_at(self.x, run)
        return run.run_id in finished

    @contextlib.contextmanager
    def building(self, run: Run) -> Iterator[tuple[str, dict]]:
        """``(staging folder, facts)`` for a teacher or projection: the folder replaces the run's folder when
        the block ends normally, and only then is it marked done, with ``facts`` (what the block found)."""
        step = artifact_step(self.x, run)
        step.start()
        facts: dict = {}
        with staged(self.artifact_dir(run)) as staging:
            yield staging, facts
        step.finish(run_id=run.run_id, spec=run.spec, **facts)

    def env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Spinning OpenMP waits make CPU runs several times slower when anything else runs; no cost on GPUs.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def launch(self, run: Run, module: str, args: Sequence[str]) -> dict:
        """Run ``launcher module args``; returns the command, wall time and peak RSS (of the largest process of
        its tree: what one process, e.g. one accelerate worker, needed)."""
        launcher = list(self.x.launcher)
        if launcher[0] == "python":
            launcher[0] = sys.executable
        elif shutil.which(launcher[0]) is None:  # e.g. accelerate of this environment, not on PATH
            beside = os.path.join(os.path.dirname(sys.executable), launcher[0])
            if os.path.isfile(beside):
                launcher[0] = beside
        command = [*launcher, module, *[str(a) for a in args]]
        log_path = os.path.join(self.logs, f"{run.run_id}.log")
        started = time.perf_counter()
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            # The child ends with this process: on an error, Ctrl-C or SIGTERM here its process group is stopped.
            with run_child(
                command, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
            ) as process:
                for line in process.stdout:
                    log.write(line)
                    if line.strip() and not NOISE.search(line):
                        self.echo("    " + line.rstrip())
                process.stdout.close()
                # wait4 gives this child's own resource usage; ru_maxrss is the largest of it and its waited-for descendants.
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise RunFailed(f"{run.label} ({run.run_id}) failed with exit status {process.returncode}; log: {log_path}")
        return {
            "command": command,
            "wall_time_s": time.perf_counter() - started,
            "peak_rss_mb": usage.ru_maxrss / 1024.0,
        }

    # ------------------------------------------------------------------------------------ run kinds
    def model_path(self, run_id: str) -> str:
        return os.path.join(self.x.artifacts, "teachers", run_id)

    def train_teacher(self, run: Run, runs: Mapping[str, Run]) -> dict:
        with self.building(run) as (out, marker):
            return self._train_teacher(run, out, marker)

    def _train_teacher(self, run: Run, out: str, marker: dict) -> dict:
        teacher = self.x.teachers[run.info["teacher"]]
        data = run.spec["data"]
        if isinstance(data, dict):
            source = {
                "corpus": data["corpus"],
                "train_split": data["split"],
                "lang": data["lang"],
                "data_dir": self.x.data_dir,
            }
        else:
            source = {"dataset_name": self.projection_path(data, "view")}
        args = training_flags(
            "teacher",
            {
                "model_name_or_path": self.x.resolve_model(teacher.model),
                "output_dir": out,
                **source,
                **run.spec["train"],
            },
        )
        facts = self.launch(run, "training.teacher", args)
        marker.update(wall_time_s=facts["wall_time_s"], peak_rss_mb=facts["peak_rss_mb"])
        return facts

    def project(self, run: Run, runs: Mapping[str, Run]) -> dict:
        with self.building(run) as (out, marker):
            return self._project(run, out, marker)

    def _project(self, run: Run, out: str, marker: dict) -> dict:
        from projection.pipelines import ProjectionConfig, run_projection

        teacher = self.x.teachers[run.info["teacher"]]
        options = dict(run.spec["projection"])
        data = run.spec["data"]
        lang = run.spec["lang"]
        tagger = None
        if teacher.kind == "translate-test":
            tagger = {"model": self.model_path(data["tagger"])}
            if options.get("tagger_type_map"):
                tagger["type_map"] = {
                    k: (None if v in (None, "O") else v) for k, v in options["tagger_type_map"].items()
                }
        started = time.perf_counter()
        config = ProjectionConfig(
            corpus=data["corpus"],
            target_langs=[lang],
            mode=teacher.kind,
            source_lang=self.x.source.lang or "en",
            data_dir=self.x.data_dir,
            splits=[data["split"]],
            translator=options.get("translator", {"kind": "apertium"}),
            aligner=options.get("aligner", {"kind": "eflomal"}),
            method=options.get("method", {"name": "heuristic"}),
            tagger=tagger,
            max_samples=options.get("max_samples"),
            num_proc=options.get("num_proc"),
            output_dir=out,
        )
        summary = run_projection(config)
        training_view(os.path.join(out, lang), os.path.join(out, "view"), teacher.kind)
        seconds = time.perf_counter() - started
        stats = summary["languages"][lang]["splits"][data["split"]]
        marker.update(wall_time_s=seconds, stats={k: v for k, v in stats.items() if k != "gold"})
        self.echo(f"    projected {stats.get('rows', '?')} sentences in {seconds:.0f} s")
        return {"wall_time_s": seconds}

    def projection_path(self, run_id: str, lang: str) -> str:
        """A projection run's output for ``lang`` (``xner project``'s folder layout), or its ``view`` folder."""
        return os.path.join(self.x.artifacts, "projections", run_id, lang)

    def test_spec(self, test: TestSet) -> str:
        """``training.evaluation``'s spec of a test set; a translate-train dev set is its projection's output."""
        if test.projection:
            return f"{self.projection_path(test.projection, test.lang)}={test.domain}"
        return test.spec

    def selection_flags(self, selection: Optional[Mapping]) -> dict:
        """``training.distill``'s model-selection arguments for a student's ``selection`` (Planner.selection_dev)."""
        if not selection:
            return {}
        dev = TestSet(**selection["dev"])
        flag = {"source-dev": "source_dev", "translate-train-dev": "translate_train_dev", "target-dev": "target_dev"}
        spec = self.test_spec(dev).rpartition("=")[0]  # a dev set has no domain marker
        return {
            "selection": selection["protocol"],
            flag[selection["protocol"]]: spec,
            "allow_target_dev": selection["protocol"] == "target-dev",
            "max_eval_samples": selection.get("max_samples"),
        }

    def evaluate(self, run: Run, model_dir: str, tests: Sequence[TestSet], name: str) -> tuple[dict, dict]:
        from training.evaluation import TestSpec
        from training.evaluation import command_line as evaluation_command_line

        out = os.path.join(self.x.output_dir, "evaluations", run.run_id)
        os.makedirs(out, exist_ok=True)
        type_map: dict = {}
        for test in tests:
            for key, value in test.type_map.items():
                if key in type_map and type_map[key] != value:
                    raise ValueError(f"test sets of {run.lang} map {key} differently ({type_map[key]} vs {value})")
                type_map[key] = value
        args = evaluation_command_line(
            [f"{name}={model_dir}"],
            [self.test_spec(t) for t in tests],
            output_dir=out,
            data_dir=self.x.data_dir,
            type_map=type_map,
            sentence_scores=True,
            per_device_eval_batch_size=self.x.evaluation.get("per_device_eval_batch_size", 32),
            max_eval_samples=run.info.get("max_eval_samples", self.x.evaluation.get("max_eval_samples")) or None,
            max_length=self.x.evaluation.get("max_length") or None,
        )
        facts = self.launch(run, "training.evaluation", args)
        with open(os.path.join(out, "evaluation.json"), encoding="utf-8") as handle:
            evaluation = json.load(handle)["models"][0]["test_sets"]
        results = {}
        for test in tests:
            got = evaluation[TestSpec.parse(self.test_spec(test)).display_name]
            results[test.name] = {
                "corpus": test.corpus,
                "split": test.split,
                "lang": test.lang,
                "domain": test.domain,
                **{
                    k: got[k]
                    for k in (
                        "num_sentences",
                        "num_entities",
                        "precision",
                        "recall",
                        "f1",
                        "per_type",
                        "type_map",
                        "sentence_counts",
                    )
                },
            }
        return results, facts

    def evaluate_teacher(self, run: Run, runs: Mapping[str, Run]) -> dict:
        started = _now()
        model_dir = self.model_path(run.spec["model"])
        tests = self.x.languages[run.lang].tests
        results, facts = self.evaluate(run, model_dir, tests, run.info["teacher"])
        teacher = self.x.teachers[run.info["teacher"]]
        record = self.record(
            run,
            results,
            [facts],
            started,
            model=run.info["teacher"],
            strategy=None,
            params={},
            teachers=[run.info["teacher"]],
            teacher_runs=[run.spec["model"]],
            student_kind=None,
            base_model=teacher.model,
            seed=None,
            artifact=model_dir,
        )
        with open(os.path.join(model_dir, MARKER), encoding="utf-8") as handle:  # what training the teacher cost
            trained = json.load(handle)
        record["training"] = {k: trained.get(k) for k in ("wall_time_s", "peak_rss_mb", "finished_at")}
        append_record(self.x.results_path, record)
        return record

    def train_student(self, run: Run, runs: Mapping[str, Run]) -> dict:
        started = _now()
        out = self.artifact_dir(run)
        spec = run.spec
        text = spec["text"]
        values = {
            "model_name_or_path": self.x.resolve_model(self.x.student["model"]),
            "seed": spec["seed"],
            "strategy": spec["strategy"],
            "student": spec["kind"],
            "teacher": [self.model_path(t) for t in spec["teachers"]],
            "corpus": text["corpus"],
            "train_split": text["split"],
            "lang": text["lang"],
            "data_dir": self.x.data_dir,
            "dataset_name": (self.projection_path(spec["projected"], run.lang) if spec["projected"] else None),
            **spec["args"],
            **self.selection_flags(spec.get("selection")),
        }
        with staged(out) as staging:  # a student is complete in its folder, or not there
            args = training_flags("distill", {**values, "output_dir": staging})
            train_facts = self.launch(run, "training.distill", args)
        tests = run.info.get("tests") or self.x.languages[run.lang].tests
        results, eval_facts = self.evaluate(run, out, tests, run.info["strategy"])
        with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
            distilled = json.load(handle)
        strategy = self.x.strategies[run.info["strategy"]]
        sweep = run.info.get("sweep")
        if sweep is not None:  # a trial: its value is the dev F1
            sweep = {**sweep, "value": next(iter(results.values()))["f1"]}
        record = self.record(
            run,
            results,
            [train_facts, eval_facts],
            started,
            model=strategy.name,
            strategy=strategy.strategy,
            params=spec["args"],
            teachers=list(strategy.teachers),
            teacher_runs=list(spec["teachers"]),
            student_kind=spec["kind"],
            base_model=self.x.student["model"],
            seed=spec["seed"],
            artifact=out,
            sweep=sweep,
            selection=(distilled.get("best") or {}).get("selection"),
            pseudo_labels=RunResults.from_dict(distilled).pseudo_label_rates() or None,
            training={
                k: distilled.get(k)
                for k in (
                    "num_train_sentences",
                    "completed_steps",
                    "train_runtime_s",
                    "train_tokens_per_s",
                    "teacher_probabilities_seconds",
                    "peak_gpu_memory_mb",
                    "num_processes",
                )
            }
            | {"trainable_parameters": distilled["student"]["trainable_parameters"]},
        )
        kept = run.kind in KEEP_WEIGHTS[self.x.keep_weights]
        record["provenance"]["weights"] = "kept" if kept else "dropped (keep_weights)"
        append_record(self.x.results_path, record)
        if not kept:  # only once the record is safe: an interrupted run is redone from scratch anyway
            drop_weights(out)
        return record

    def record(
        self,
        run: Run,
        results: dict,
        facts: Sequence[dict],
        started: str,
        *,
        artifact: str,
        sweep: Optional[dict] = None,
        training: Optional[dict] = None,
        **fields,
    ) -> dict:
        kind = {"teacher-eval": "teacher", "student": "student", "trial": "trial"}[run.kind]
        return {
            "experiment": self.x.name,
            "config_hash": self.x.config_hash,
            "run_id": run.run_id,
            "kind": kind,
            "groups": list(run.groups),
            "lang": run.lang,
            **fields,
            "sweep": sweep,
            "results": results,
            "training": training,
            "provenance": {
                "wall_time_s": sum(f["wall_time_s"] for f in facts),
                "peak_rss_mb": max(f["peak_rss_mb"] for f in facts),
                "peak_gpu_memory_mb": (training or {}).get("peak_gpu_memory_mb"),
                "started_at": started,
                "finished_at": _now(),
                "versions": self.versions,
                "host": self.host,
                "commands": [f["command"] for f in facts],
                "artifact": artifact,
                "depends": list(run.depends),
                "spec": run.spec,
                "launcher": self.x.launcher,
            },
        }

    # ------------------------------------------------------------------------------------ driving
    def execute(self, runs: Sequence[Run]) -> dict:
        """Do every run not yet done, in order; returns counts of done / skipped runs."""
        by_id = {r.run_id: r for r in runs}
        finished = finished_runs(self.x.results_path)
        todo = [r for r in runs if not self.is_done(r, finished)]
        skipped = len(runs) - len(todo)
        if skipped:
            self.echo(f"{skipped} of {len(runs)} runs already done (skipped)")
        left = sum(r.estimate_s for r in todo)
        for i, run in enumerate(todo, 1):
            self.echo(
                f"[{time.strftime('%H:%M:%S')}] ({i}/{len(todo)}) {run.label} -- {run.run_id} "
                f"(estimate {format_duration(run.estimate_s)}, {format_duration(left)} left)"
            )
            handler = {
                "teacher-train": self.train_teacher,
                "projection": self.project,
                "teacher-eval": self.evaluate_teacher,
                "student": self.train_student,
                "trial": self.train_student,
            }[run.kind]
            clock = time.perf_counter()
            record = handler(run, by_id)
            left -= run.estimate_s
            summary = ""
            if isinstance(record, dict) and "results" in record:
                summary = "; F1 " + ", ".join(f"{k} {100 * v['f1']:.1f}" for k, v in record["results"].items())
            self.echo(f"    done in {format_duration(time.perf_counter() - clock)}{summary}")
        return {"runs": len(runs), "done": len(todo), "skipped": skipped}

    def run(self, groups: Optional[Sequence[str]] = None, wait: bool = False) -> dict:
        """Sweeps the groups need, then each group in file order (later groups may pick from earlier ones);
        the store is held by this process meanwhile (see :func:`experiment_lock`)."""
        with experiment_lock(self.x, wait=wait, echo=self.echo):
            return self._run(groups)

    def _run(self, groups: Optional[Sequence[str]]) -> dict:
        from xner.experiments.sweep import run_sweep

        self.save_experiment()
        totals = {"runs": 0, "done": 0, "skipped": 0}
        for group in self.x.groups:
            if groups is not None and group.name not in groups:
                continue
            needed = {
                self.x.strategies[s].sweep
                for s in (group.strategies if isinstance(group.strategies, list) else self.x.strategies)
                if self.x.strategies[s].sweep
            }
            for name in sorted(needed):
                run_sweep(self.x, name, runner=self)
            self.echo(f"== group {group.name}")
            runs, pending = plan(
                self.x,
                records=read_records(self.x.results_path),
                sweep_results=sweep_results_of(self.x),
                groups=[group.name],
            )
            if pending:
                raise RuntimeError(f"group {group.name}: cannot expand: {[p.reason for p in pending]}")
            counts = self.execute(runs)
            for key in totals:
                totals[key] += counts[key]
        return totals

    def save_experiment(self) -> None:
        """The experiment as it was run, beside its results (provenance of the config hash)."""
        import yaml

        with open(os.path.join(self.x.output_dir, "experiment.yaml"), "w", encoding="utf-8") as handle:
            yaml.safe_dump(
                {**self.x.raw, "config_hash": self.x.config_hash}, handle, sort_keys=False, allow_unicode=True
            )


def training_rows(projected, mode: str):
    """A projection's output (a ``datasets.Dataset``) as ``tokens``/``ner_tags``: what a teacher trains on.

    After translate-train the projected tags belong to ``translation_tokens`` (``tokens`` holds the
    source sentence); after translate-test to ``tokens``. Rows the projection flagged are left out
    (:func:`training.features.projected_rows`, the one rule for every trainer and dev set)."""
    from training.features import projected_rows

    return projected_rows(projected, "translation_tokens" if mode == "translate-train" else "tokens")


def training_view(projected_dir: str, view_dir: str, mode: str) -> None:
    """:func:`training_rows` of a saved projection, saved where ``training.teacher --dataset`` reads it."""
    import datasets

    data = datasets.load_from_disk(projected_dir)
    datasets.DatasetDict({"train": training_rows(data[next(iter(data))], mode)}).save_to_disk(view_dir)


__all__ = [
    "MARKER",
    "RunFailed",
    "Runner",
    "artifact_dir",
    "artifact_step",
    "drop_weights",
    "experiment_lock",
    "training_rows",
    "training_view",
]
