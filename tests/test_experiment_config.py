"""Experiment files are validated by ``plan``: types, ranges, model paths and duplicate keys, each
error naming its place in the file (issue 13, item 7). No training runs here."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.test_experiments import tiny_config
from xner.cli import main
from xner.experiments.config import ConfigError, load_experiment, parse_experiment
from xner.experiments.plan import plan


def _config(**changes) -> dict:
    config = tiny_config("base", pathlib.Path("out"), pathlib.Path("data"))
    for dotted, value in changes.items():
        target = config
        *head, last = dotted.split(".")
        for key in head:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
    return config


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"groups.0.seeds": "12"}, "groups[0].seeds: a list of integer seeds, got '12'"),
        ({"groups.0.seeds": [1, "2"]}, "groups[0].seeds[1]: an integer, got '2'"),
        ({"groups.0.seeds": [1, 1]}, "groups[0].seeds: a seed is given twice"),
        ({"groups.1.strategies": {"best": -1, "of": "main"}}, "groups[1].strategies.best: must be >= 1, got -1"),
        ({"groups.1.strategies": {"best": 0, "of": "main"}}, "groups[1].strategies.best: must be >= 1, got 0"),
        ({"groups.1.strategies": {"best": 1, "of": "main", "domain": "inside"}}, "groups[1].strategies.domain"),
        ({"groups.0.strategies": "soft-kl"}, "groups[0].strategies: a list of strategy names, 'all' or"),
        ({"groups.0.teachers_zero_shot": "no"}, "groups[0].teachers_zero_shot: true or false"),
        ({"teachers.en.train.num_train_epochs": -1}, "teachers.en.train.num_train_epochs: -1 is not a valid value"),
        ({"teachers.en.train.num_train_epochs": 1.5}, "teachers.en.train.num_train_epochs: 1.5 is not a valid value"),
        ({"strategies.soft-kl.temperature": -2}, "strategies.soft-kl.temperature: must be > 0, got -2"),
        ({"strategies.soft-kl.temperature": float("nan")}, "strategies.soft-kl.temperature: a finite number"),
        (
            {"student.learning_rate": "fast"},
            "student.learning_rate: 'fast' is not a valid value (argument "
            "--learning_rate/--learning-rate: expected a number, got 'fast')",
        ),
        ({"student.lora.lora_dropout": 2}, "student.lora.lora_dropout: must be in [0, 1], got 2"),
        ({"student.freeze_embeddings": "yes"}, "student.freeze_embeddings: true or false, got 'yes'"),
        ({"student.lr_scheduler_type": "fastest"}, "student.lr_scheduler_type: 'fastest' is not a valid value"),
        ({"strategies.hard.threshold": 1.5}, "strategies.hard.threshold: must be in [0, 1]"),
        ({"strategies.hard.teacher_weights": [-1]}, "strategies.hard.teacher_weights: non-negative numbers"),
        ({"sweeps.kl.space": {"temperature": {"low": -1.0, "high": 2.0}}}, "sweeps.kl.space.temperature: must be > 0"),
        ({"sweeps.kl.trials": "two"}, "sweeps.kl.trials: an integer, got 'two'"),
        ({"evaluation.max_eval_samples": 0}, "evaluation.max_eval_samples: must be >= 1"),
        ({"models.tiny": "/nonexistent/model"}, "models.tiny: model folder '/nonexistent/model' does not exist"),
        ({"models.tiny": "./my-model"}, "models.tiny: model folder './my-model' does not exist"),
        ({"models.tiny": "org/name/extra"}, "models.tiny: model folder 'org/name/extra' does not exist"),
        ({"student.model": "../students/base"}, "student.model: model folder '../students/base' does not exist"),
        ({"teachers.en.model": "~/nowhere"}, "teachers.en.model: model folder '~/nowhere' does not exist"),
    ],
)
def test_bad_values_are_errors_naming_the_place(changes, message):
    with pytest.raises(ConfigError) as err:
        parse_experiment(_config(**changes), path="tiny.yaml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("model", ["base", "bert-base-cased", "FacebookAI/xlm-roberta-base", "builtin:minilm"])
def test_hub_ids_and_builtin_names_stay_valid(model):
    experiment = parse_experiment(_config(**{"models.tiny": model}))
    assert experiment.models["tiny"] == model


def test_an_existing_folder_is_valid_and_a_file_is_not(tmp_path):
    parse_experiment(_config(**{"models.tiny": str(tmp_path)}))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file, not a model folder"):
        parse_experiment(_config(**{"models.tiny": str(tmp_path / "weights.bin")}))


def test_valid_values_keep_their_meaning():
    experiment = parse_experiment(
        _config(**{"groups.0.seeds": 7, "strategies.hard.threshold": 0.9, "student.learning_rate": "1e-3"})
    )
    assert experiment.groups[0].seeds == [7]
    assert experiment.strategies["hard"].args == {"threshold": 0.9}
    runs, _ = plan(experiment)
    assert {r.seed for r in runs if r.kind == "student"} == {7}


def _write(path: pathlib.Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_duplicate_yaml_keys_are_an_error_naming_key_and_line(tmp_path):
    text = yaml.safe_dump(_config(**{"data_dir": str(tmp_path)}), sort_keys=False)
    # a second ``temperature`` under strategies.soft-kl: PyYAML alone keeps the last one silently
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "temperature: 2")
    lines.insert(at + 1, lines[at].replace("2", "5"))
    path = _write(tmp_path / "dup.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    assert str(err.value) == f"{path}:{at + 2}: duplicate key 'temperature' (first given on line {at + 1})"
    # the same key in two different mappings is fine; a merge key may be overridden
    merged = "defaults: &d {a: 1}\nuse:\n  <<: *d\n  a: 2\nother: {a: 3}\n"
    from xner.experiments.config import read_yaml

    assert read_yaml(_write(tmp_path / "merge.yaml", merged))["use"] == {"a": 2}


def test_plan_refuses_bad_files_with_one_line(tmp_path, capsys):
    config = _config(**{"groups.0.seeds": "12", "data_dir": str(tmp_path)})
    path = _write(tmp_path / "seeds.yaml", yaml.safe_dump(config))
    assert main(["experiment", "plan", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "groups[0].seeds" in err and "Traceback" not in err
    path = _write(tmp_path / "broken.yaml", "name: x\nteachers: [a\n")
    assert main(["experiment", "plan", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:" in err and "not valid YAML" in err
    path = _write(tmp_path / "nodata.yaml", yaml.safe_dump(_config(**{"data_dir": str(tmp_path / "none")})))
    assert main(["experiment", "plan", path]) == 2
    assert "data_dir:" in capsys.readouterr().err
