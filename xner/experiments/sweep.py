"""``xner experiment sweep``: tune a strategy's parameters on dev F1 with Optuna.

A sweep (``sweeps:`` in the experiment file) names a strategy, a language, a dev set, a number of
trials and a search space over ``training.distill`` arguments -- strategy parameters (temperature,
threshold, alpha, teacher_weights), student settings (learning_rate, lora_r, num_train_epochs),
anything the script accepts::

    space:
      temperature: {low: 1.0, high: 8.0, log: true}
      threshold: {low: 0.5, high: 0.99}
      lora_r: [4, 8, 16]

Each trial is a student run (kind ``trial``) evaluated on the dev set only, recorded in the results
store like any run. The Optuna study lives in ``OUTPUT_DIR/sweeps/NAME.journal`` (a journal file:
an interrupted sweep resumes, and its finished trials count); TPE sampling is seeded per trial
number, so a resumed sweep draws new settings rather than replaying its first ones (the trial cut
off keeps its number, so later draws are those of the next numbers), and ``trials`` counts distinct
settings (a setting drawn twice is scored once and counted once). When all
trials are complete the best setting is written to ``OUTPUT_DIR/sweeps/NAME.json`` and recorded
(kind ``sweep``); a strategy with ``sweep: NAME`` then runs with it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from xner.experiments.config import Experiment, stable_hash
from xner.experiments.plan import Planner, order
from xner.experiments.store import append_record, finished_runs

logger = logging.getLogger(__name__)


def suggest(trial, name: str, spec: Any):
    """One Optuna suggestion from a search-space entry: ``[choices]`` or ``{low, high, log?, int?}``."""
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if spec.get("int"):
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))


def sweep_paths(experiment: Experiment, name: str) -> tuple[str, str]:
    folder = os.path.join(experiment.output_dir, "sweeps")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{name}.journal"), os.path.join(folder, f"{name}.json")


def load_study(experiment: Experiment, name: str):
    import optuna

    journal, _ = sweep_paths(experiment, name)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)


def distinct_trials(study) -> list:
    """The complete trials, the first of each setting: what ``trials`` counts and the report shows."""
    import optuna

    seen: dict[str, Any] = {}
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            seen.setdefault(json.dumps(trial.params, sort_keys=True), trial)
    return list(seen.values())


def space_size(space: dict) -> float:
    """How many distinct settings the search space holds (infinite unless every entry is a list)."""
    size = 1.0
    for spec in space.values():
        if isinstance(spec, list):
            size *= len(spec)
        elif spec.get("int"):
            size *= int(spec["high"]) - int(spec["low"]) + 1
        else:
            return float("inf")
    return size


def optimize(study, trials: int, seed: int, space: dict, objective) -> None:
    """Run trials until ``trials`` distinct settings are scored (or the space has no more). Each trial
    gets a sampler seeded with ``seed`` and its trial number: a sampler seeded once would, on resume,
    replay the first draws and repeat finished settings instead of exploring."""
    import optuna

    target = min(trials, space_size(space))
    while len(distinct_trials(study)) < target:
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
        study.optimize(objective, n_trials=1, catch=())


def remaining_trials(experiment: Experiment, name: str) -> int:
    """Trials still to run (all of them if the study does not exist yet); reads nothing else."""
    journal, _ = sweep_paths(experiment, name)
    sweep = experiment.sweeps[name]
    target = int(min(sweep.trials, space_size(sweep.space)))
    if not os.path.isfile(journal):
        return target
    return max(0, target - len(distinct_trials(load_study(experiment, name))))


def run_sweep(experiment: Experiment, name: str, runner=None, echo=print, wait: bool = False) -> dict:
    """Run the missing trials of sweep ``name`` and write its best setting; returns it. Without ``runner``
    (that of a run holding the store) the store is held meanwhile; ``wait``: wait for another holder."""
    from xner.experiments.runner import Runner

    if runner is None:  # run alone (xner experiment sweep): hold the store as a run does
        from xner.experiments.runner import experiment_lock

        runner = Runner(experiment, echo=echo)
        with experiment_lock(experiment, wait=wait, echo=echo):
            return run_sweep(experiment, name, runner=runner)
    echo = runner.echo
    sweep = experiment.sweeps[name]
    _, best_path = sweep_paths(experiment, name)
    study = load_study(experiment, name)
    complete = distinct_trials(study)
    # The strategy's own parameters, without the sweep's result: that is what the trials search around.
    strategy = dataclasses.replace(experiment.strategies[sweep.strategy], sweep=None)
    planner = Planner(experiment)
    # Trials are scored on the dev set the students select on (the one rule), unless the sweep names its own.
    dev = planner.sweep_dev(sweep)
    protocol = Planner.selection_protocol(dev, experiment.source.lang)
    echo(f"== sweep {name}: {sweep.strategy} on {dev.name} ({protocol}), {len(complete)}/{sweep.trials} trials done")

    def objective(trial) -> float:
        params = {key: suggest(trial, key, spec) for key, spec in sweep.space.items()}
        run = planner.student(
            strategy,
            sweep.lang,
            sweep.student,
            sweep.seed,
            None,
            tests=[dev],
            extra_args=params,
            run_kind="trial",
            eval_limit=sweep.max_eval_samples,
        )
        run.info["sweep"] = {"name": name, "trial": trial.number, "params": params}
        known = finished_runs(experiment.results_path).get(run.run_id)
        if known is None:  # the same setting drawn again (or recorded before a crash) is not retrained
            runner.execute(order({r.run_id: r for r in planner.runs.values()}))
            known = finished_runs(experiment.results_path)[run.run_id]
        value = known["results"][dev.name]["f1"]
        echo(f"    trial {trial.number}: {params} -> dev F1 {100 * value:.1f}")
        return value

    optimize(study, sweep.trials, sweep.seed, sweep.space, objective)
    complete = distinct_trials(study)
    best = study.best_trial
    result = {
        "name": name,
        "strategy": sweep.strategy,
        "lang": sweep.lang,
        "dev": dev.name,
        "selection": protocol,
        "best_params": best.params,
        "best_value": best.value,
        "best_trial": best.number,
        "trials": len(complete),
        "space": sweep.space,
        "seed": sweep.seed,
    }
    previous = None
    if os.path.isfile(best_path):
        with open(best_path, encoding="utf-8") as handle:
            previous = json.load(handle)
    if previous != result:
        with open(best_path, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        run_id = f"sweep-{stable_hash(result)}"
        if run_id not in finished_runs(experiment.results_path):
            append_record(
                experiment.results_path,
                {
                    "experiment": experiment.name,
                    "config_hash": experiment.config_hash,
                    "run_id": run_id,
                    "kind": "sweep",
                    "groups": [],
                    "lang": sweep.lang,
                    "model": sweep.strategy,
                    "strategy": strategy.strategy,
                    "params": best.params,
                    "teachers": list(strategy.teachers),
                    "student_kind": sweep.student,
                    "seed": sweep.seed,
                    "sweep": {
                        "name": name,
                        "trial": best.number,
                        "value": best.value,
                        "trials": len(complete),
                        "dev": dev.name,
                        "selection": protocol,
                        "space": sweep.space,
                    },
                    "results": {},
                    "provenance": {"versions": runner.versions, "host": runner.host},
                },
            )
    echo(f"    best of {len(complete)} trials: {best.params} (dev F1 {100 * best.value:.1f}) -> {best_path}")
    return result


__all__ = ["distinct_trials", "load_study", "optimize", "remaining_trials", "run_sweep", "suggest", "sweep_paths"]
