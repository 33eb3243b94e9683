"""Honest model selection in the experiment harness (issue 15): the one rule -- a translate-train dev set
where the experiment has an MT system for the language, the source dev set otherwise, gold target dev
only when allowed -- for students and sweeps, and `xner project` output accepted as a dev set."""

from __future__ import annotations

import datasets
import pytest

from tests.test_experiment_config import _config
from training.evaluation import load_test_set
from xner.experiments.config import ConfigError, TestSet, parse_experiment, training_flags
from xner.experiments.plan import Planner, plan
from xner.experiments.runner import Runner

PROJECTION = {
    "translator": {"kind": "apertium"},
    "aligner": {"kind": "eflomal"},
    "method": {"name": "heuristic"},
    "max_samples": 50,
}


def _europe(**top) -> dict:
    """The tiny config with CoNLL-2003 as source, a Spanish translate-train teacher and a Dutch language
    without one."""
    config = _config()
    config["source"] = {"corpus": "conll2003", "split": "train", "lang": "en"}
    config["teachers"]["tt"] = {
        "kind": "translate-train",
        "model": "tiny",
        "languages": ["es"],
        "projection": PROJECTION,
        "train": {"num_train_epochs": 1},
    }
    for lang in ("es", "nl"):
        config["languages"][lang] = {
            "train": {"corpus": "conll2002", "split": "train"},
            "tests": [{"corpus": "conll2002", "domain": "in"}],
        }
    config["groups"] = [{"name": "main", "languages": ["es", "nl", "en"], "strategies": ["soft-kl"], "seeds": [1]}]
    config.update(top)
    return config


def _students(experiment) -> dict:
    runs, _ = plan(experiment)
    return {r.lang: r for r in runs if r.kind == "student"}, {r.run_id: r for r in runs}


def test_auto_rule_translated_dev_where_mt_exists_else_source_dev(tmp_path):
    experiment = parse_experiment(_europe(selection={"protocol": "auto", "max_samples": 40}))
    students, runs = _students(experiment)

    es = students["es"].spec["selection"]
    assert es["protocol"] == "translate-train-dev" and es["max_samples"] == 40
    dev_run = runs[es["dev"]["projection"]]
    # the source dev set, translated by the Spanish teacher's own translator and aligner, capped
    assert dev_run.kind == "projection" and dev_run.run_id in students["es"].depends
    assert dev_run.spec["data"] == {"corpus": "conll2003", "split": "validation", "lang": "en"}
    assert dev_run.spec["projection"] == {**PROJECTION, "max_samples": 40}
    assert dev_run.spec["mode"] == "translate-train" and dev_run.spec["lang"] == "es"
    # not the training projection of the teacher
    assert dev_run.run_id not in runs[students["es"].spec["teachers"][0]].depends

    for lang in ("nl", "en"):  # no MT system for Dutch; English is the source language
        selection = students[lang].spec["selection"]
        assert selection["protocol"] == "source-dev"
        assert selection["dev"]["corpus"] == "conll2003" and selection["dev"]["split"] == "validation"
        assert selection["dev"]["lang"] == "en" and "projection" not in selection["dev"]

    # what the runner passes to training.distill, accepted by its parser
    runner = Runner.__new__(Runner)
    runner.x = experiment
    flags = runner.selection_flags(es)
    assert flags["selection"] == "translate-train-dev" and flags["max_eval_samples"] == 40
    assert flags["translate_train_dev"] == runner.projection_path(dev_run.run_id, "es")
    assert not flags["allow_target_dev"]
    argv = training_flags("distill", {"output_dir": "o", "model_name_or_path": "m", "teacher": ["t"], **flags})
    assert "--translate_train_dev" in argv or "--translate-train-dev" in argv
    nl = runner.selection_flags(students["nl"].spec["selection"])
    assert nl["source_dev"] == "conll2003:validation@en" and nl["selection"] == "source-dev"


def test_selection_none_and_no_source_dev_keep_the_last_epoch():
    students, _ = _students(parse_experiment(_europe(selection="none")))
    assert all("selection" not in s.spec for s in students.values())
    # the tiny config's source (xner-sample) has no validation split: auto selects nothing
    runs, _ = plan(parse_experiment(_config()))
    assert all("selection" not in r.spec for r in runs if r.kind == "student")


def test_rule_changes_student_run_ids_only_with_a_dev_set():
    with_rule, _ = _students(parse_experiment(_europe()))
    without, _ = _students(parse_experiment(_europe(selection="none")))
    assert all(with_rule[lang].run_id != without[lang].run_id for lang in with_rule)


@pytest.mark.parametrize(
    "top, message",
    [
        ({"selection": "best"}, "selection.protocol: one of auto, source-dev, translate-train-dev, target-dev, none"),
        ({"selection": {"protocol": "target-dev"}}, "selection.protocol: target-dev picks checkpoints on gold"),
        (
            {"selection": {"protocol": "target-dev", "allow_target_dev": True}},
            "selection.protocol: target-dev needs languages.<code>.dev for ['en', 'es', 'nl']",
        ),
        ({"selection": {"protocol": "auto", "max_samples": 0}}, "selection.max_samples: must be >= 1"),
        ({"selection": {"protocol": "auto", "dev": 3}}, "selection: unknown key"),
    ],
)
def test_bad_selection_settings_are_errors_naming_the_key(top, message):
    with pytest.raises(ConfigError) as err:
        parse_experiment(_europe(**top))
    assert message in str(err.value)


def test_translate_train_dev_needs_an_mt_system():
    experiment = parse_experiment(_europe(selection={"protocol": "translate-train-dev"}))
    with pytest.raises(ConfigError, match="translate-train-dev for 'nl' needs a translate-train teacher"):
        plan(experiment)


def test_gold_target_dev_only_when_allowed():
    config = _europe()
    config["sweeps"]["kl"].update(lang="es", dev={"corpus": "conll2002", "split": "validation"})
    with pytest.raises(ConfigError, match=r"sweeps.kl.dev: conll2002-es:validation is gold es data"):
        parse_experiment(config)

    config["selection"] = {"protocol": "target-dev", "allow_target_dev": True}
    for lang in ("es", "nl", "en"):
        config["languages"][lang]["dev"] = {
            "corpus": "conll2002" if lang != "en" else "conll2003",
            "split": "validation",
        }
    experiment = parse_experiment(config)
    students, _ = _students(experiment)
    assert students["es"].spec["selection"]["protocol"] == "target-dev"
    runner = Runner.__new__(Runner)
    runner.x = experiment
    flags = runner.selection_flags(students["es"].spec["selection"])
    assert flags["target_dev"] == "conll2002:validation@es" and flags["allow_target_dev"] is True


def test_sweeps_score_trials_on_the_students_dev_set():
    config = _europe()
    del config["sweeps"]["kl"]["dev"]
    config["sweeps"]["kl"]["lang"] = "es"
    experiment = parse_experiment(config)
    planner = Planner(experiment)
    dev = planner.sweep_dev(experiment.sweeps["kl"])
    assert dev.projection and dev.lang == "es" and dev.name == "conll2003-es-translated:validation"
    assert Planner.selection_protocol(dev, "en") == "translate-train-dev"
    config["sweeps"]["kl"]["lang"] = "nl"
    experiment = parse_experiment(config)
    assert Planner(experiment).sweep_dev(experiment.sweeps["kl"]) == TestSet("conll2003", "in", "validation", "en")
    with pytest.raises(ConfigError, match="no dev set to score trials on"):
        experiment = parse_experiment({**config, "selection": "none"})
        Planner(experiment).sweep_dev(experiment.sweeps["kl"])


def test_projection_output_is_a_dev_set_on_the_words_its_tags_belong_to(tmp_path):
    labels = ["O", "B-PER", "I-PER", "B-LOC"]
    features = datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "translation_tokens": datasets.List(datasets.Value("string")),
            "projected_tags": datasets.List(datasets.ClassLabel(names=labels)),
            "translation_error": datasets.Value("string"),
        }
    )
    rows = {
        "tokens": [["John", "lives", "in", "Paris"], ["Hello"], ["Mary", "sings"]],
        "translation_tokens": [["John", "vive", "en", "París", "."], ["Hola", "!"], ["María", "canta", "bien"]],
        "projected_tags": [[1, 0, 0, 3, 0], [0, 0], [1, 0, 0]],
        "translation_error": [None, "timeout", None],  # the failed row is no dev data
    }
    path = tmp_path / "es"
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(str(path))
    test = load_test_set(str(path))
    assert test.dataset["tokens"] == [["John", "vive", "en", "París", "."], ["María", "canta", "bien"]]
    assert test.references() == [["B-PER", "O", "O", "B-LOC", "O"], ["B-PER", "O", "O"]]
    assert test.split == "validation"
