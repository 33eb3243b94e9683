"""Sweeps resume without replaying: each trial number has its own seeded draw, settings count once."""

import optuna
import pytest

from xner.experiments.sweep import distinct_trials, optimize, suggest

SPACE = {"temperature": {"low": 1.0, "high": 8.0, "log": True}, "threshold": {"low": 0.5, "high": 0.99}}


def study_at(path):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.create_study(study_name="s", storage=storage, direction="maximize", load_if_exists=True)


def objective(trial):
    params = {key: suggest(trial, key, spec) for key, spec in SPACE.items()}
    return params["threshold"] - params["temperature"] / 10


def settings(study):
    return [tuple(sorted(t.params.items())) for t in distinct_trials(study)]


def test_a_resumed_sweep_explores_instead_of_repeating_its_first_draws(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    whole = study_at(tmp_path / "whole.journal")
    optimize(whole, 4, 0, SPACE, objective)

    calls = []

    def interrupted(trial):
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        calls.append(trial.number)
        return objective(trial)

    with pytest.raises(RuntimeError):
        optimize(study_at(tmp_path / "resumed.journal"), 4, 0, SPACE, interrupted)
    resumed = study_at(tmp_path / "resumed.journal")  # a new process: a new study object and sampler
    optimize(resumed, 4, 0, SPACE, objective)

    drawn = settings(resumed)
    assert len(drawn) == 4 and len(set(drawn)) == 4, "no setting drawn twice after the resume"
    assert drawn[:2] == settings(whole)[:2], "the same seed draws the same first settings"
    assert len([t for t in resumed.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 4


def test_a_finite_space_stops_when_every_setting_is_scored(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = study_at(tmp_path / "small.journal")
    optimize(study, 6, 0, {"lora_r": [4, 8]}, lambda trial: float(suggest(trial, "lora_r", [4, 8])))
    assert sorted(t.params["lora_r"] for t in distinct_trials(study)) == [4, 8]
