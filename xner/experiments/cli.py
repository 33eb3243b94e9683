"""Experiments as configuration: plan, run, sweep and report the runs a YAML file describes.

    xner experiment plan configs/offline-europe.yaml      # validate, list the runs and their cost; runs nothing
    xner experiment run configs/offline-europe.yaml       # run what is not done yet; results.jsonl grows
    xner experiment sweep configs/conll2003.yaml          # Optuna sweeps of the file (all, or --name)
    xner experiment report xner-output/experiments/offline-europe/results.jsonl --output_dir reports/europe

``run`` is resumable: finished teachers, projections, evaluations and students are skipped, so an
interrupted run is continued by running the same command again. ``--output_dir`` and
``--data_dir`` override the file's; ``--group`` restricts to some groups. One ``run`` or ``sweep``
holds a results store at a time: a second refuses at once naming the holder's pid (``--wait``
waits for it); stopping a run (Ctrl-C, SIGTERM) stops its training processes with it.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from dataset_builders.cli_flags import add_flag


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="an experiment YAML file (see configs/)")
    add_flag(parser, "--output_dir", help="results and logs (default: the file's output_dir)")
    add_flag(
        parser,
        "--artifacts_dir",
        help="teachers, projections, students (default: the file's artifacts_dir, else --output_dir)",
    )
    add_flag(parser, "--data_dir", help="folder of the corpora (default: $XNER_DATA_DIR or ../shared/data)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="plan, run, sweep and report experiments defined in YAML",
        description=__doc__.split("\n\n")[0],
    )
    verbs = parser.add_subparsers(dest="experiment_command", metavar="VERB", required=True)
    p = verbs.add_parser("plan", help="validate an experiment file and list its runs with a cost estimate")
    _common(p)
    p.set_defaults(func=run_plan)
    p = verbs.add_parser("run", help="run an experiment (skipping finished runs)")
    _common(p)
    p.add_argument("--group", action="append", help="only this group (repeatable)")
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another run holds the results store, wait for it to end (default: refuse at once)",
    )
    p.set_defaults(func=run_run)
    p = verbs.add_parser("sweep", help="tune strategy parameters on dev F1 with Optuna")
    _common(p)
    p.add_argument("--name", action="append", help="only this sweep (repeatable; default: every sweep of the file)")
    p.add_argument("--wait", action="store_true", help="if another run holds the results store, wait for it to end")
    p.set_defaults(func=run_sweeps)
    p = verbs.add_parser("report", help="tables, charts and significance tests from a results store")
    p.add_argument("results", nargs="+", help="results.jsonl files (or folders holding one)")
    add_flag(p, "--output_dir", help="default: beside the (first) results file")
    p.add_argument("--title", help="report title")
    add_flag(p, "--bootstrap_samples", dest="samples", type=int, default=1000)
    p.add_argument("--alpha", type=float, default=0.05, help="significance level")
    p.set_defaults(func=run_report)


def _load(args: argparse.Namespace):
    import datasets

    from xner.experiments.config import load_experiment

    datasets.disable_progress_bars()
    return load_experiment(
        args.file, output_dir=args.output_dir, data_dir=args.data_dir, artifacts_dir=args.artifacts_dir
    )


def run_plan(args: argparse.Namespace) -> int:
    import dataclasses

    from xner.experiments.plan import Planner, describe, plan, sweep_results_of
    from xner.experiments.runner import Runner
    from xner.experiments.store import finished_runs, read_records
    from xner.experiments.sweep import remaining_trials

    experiment = _load(args)
    records = read_records(experiment.results_path)
    runs, pending = plan(experiment, records=records, sweep_results=sweep_results_of(experiment))
    for run in runs:
        if run.kind in ("teacher-train", "projection"):
            run.info["artifact_done"] = Runner.artifact_done_at(experiment, run)
    sweep_time = {}
    planner = Planner(experiment)
    for name, sweep in experiment.sweeps.items():  # priced as trials of the strategy's own settings
        strategy = dataclasses.replace(experiment.strategies[sweep.strategy], sweep=None)
        one = planner.student(
            strategy,
            sweep.lang,
            sweep.student,
            sweep.seed,
            None,
            tests=[planner.sweep_dev(sweep)],
            run_kind="trial",
            eval_limit=sweep.max_eval_samples,
        )
        left = remaining_trials(experiment, name)
        sweep_time[f"{name} ({left} of {sweep.trials} trials left)"] = left * one.estimate_s
    print(describe(experiment, runs, pending, finished_runs(experiment.results_path), sweep_time))
    return 0


def run_run(args: argparse.Namespace) -> int:
    from dataset_builders.errors import UserError
    from xner.experiments.children import Terminated
    from xner.experiments.runner import RunFailed, Runner

    experiment = _load(args)
    unknown = sorted(set(args.group or []) - {g.name for g in experiment.groups})
    if unknown:
        raise ValueError(f"no group(s) {unknown} in {args.file}; groups: {[g.name for g in experiment.groups]}")
    try:
        totals = Runner(experiment).run(groups=args.group, wait=args.wait)
    except RunFailed as err:  # the log file named in the message has the traceback
        raise UserError(f"{err}; finished runs are kept: run the same command again to continue") from err
    except (Terminated, KeyboardInterrupt) as err:  # the run in progress was stopped with its processes
        raise UserError(
            f"{str(err) or 'interrupted'}; the run in progress was stopped, finished runs are kept: run the "
            f"same command again to continue"
        ) from None
    print(f"{totals['done']} runs done, {totals['skipped']} skipped; results: {experiment.results_path}")
    return 0


def run_sweeps(args: argparse.Namespace) -> int:
    from xner.experiments.sweep import run_sweep

    experiment = _load(args)
    names = args.name or list(experiment.sweeps)
    if not names:
        raise ValueError(f"{args.file} defines no sweeps")
    for name in names:
        if name not in experiment.sweeps:
            raise ValueError(f"no sweep {name!r} in {args.file}; sweeps: {sorted(experiment.sweeps)}")
    for name in names:
        run_sweep(experiment, name, wait=args.wait)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from xner.experiments.report import write_report
    from xner.experiments.store import RESULTS_FILE, read_records

    records = []
    paths = [os.path.join(p, RESULTS_FILE) if os.path.isdir(p) else p for p in args.results]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"results store {path} does not exist")
        records += read_records(path)
    output_dir = args.output_dir or os.path.join(os.path.dirname(os.path.abspath(paths[0])), "report")
    written = write_report(records, output_dir, title=args.title, samples=args.samples, alpha=args.alpha)
    with open(
        written["report.md"] if "report.md" in written else next(iter(written.values())), encoding="utf-8"
    ) as handle:
        print(handle.read())
    print("wrote " + ", ".join(written.values()))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from xner.cli import main as xner_main

    return xner_main(["experiment", *(argv if argv is not None else __import__("sys").argv[1:])])


if __name__ == "__main__":
    raise SystemExit(main())
