"""The experiment harness end to end on a tiny config: plan, run, resume, sweep, report; and config errors.

The tiny experiment trains a 2-layer BERT teacher on the built-in ``xner-sample`` corpus, distils
students with two strategies and a LoRA student for the best one, runs a two-trial Optuna sweep,
and evaluates in domain (the sample) and out of domain (Europarl-NER English, from the real
corpora). Every training and evaluation is a real subprocess, as on a GPU node.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib

import pytest
import yaml

from dataset_builders import load_corpus
from tests.accelerate_launch import ACCELERATE_CPU_LAUNCH
from tests.tiny_models import build_tiny_bert
from xner.cli import main
from xner.experiments.bootstrap import f1_from_counts
from xner.experiments.config import ConfigError, parse_experiment
from xner.experiments.plan import plan
from xner.experiments.store import read_records

REPO = pathlib.Path(__file__).resolve().parent.parent


def tiny_config(base_model: str, output_dir: pathlib.Path, data_dir: pathlib.Path) -> dict:
    train = {
        "num_train_epochs": 1,
        "per_device_train_batch_size": 8,
        "max_length": 32,
        "learning_rate": 1.0e-3,
        "seed": 3,
    }
    return {
        "name": "tiny",
        "output_dir": str(output_dir),
        "data_dir": str(data_dir),
        "models": {"tiny": base_model},
        "source": {"corpus": "xner-sample", "split": "train", "lang": "en"},
        "teachers": {"en": {"kind": "model-transfer", "model": "tiny", "train": train}},
        "student": {
            "model": "tiny",
            "kind": "full",
            "num_train_epochs": 1,
            "per_device_train_batch_size": 8,
            "max_length": 32,
            "learning_rate": 1.0e-3,
            "lora": {"learning_rate": 5.0e-3, "lora_r": 4},
        },
        "strategies": {
            "soft-kl": {"teachers": ["en"], "temperature": 2},
            "hard": {"teachers": ["en"]},
            "soft-kl-tuned": {"strategy": "soft-kl", "teachers": ["en"], "temperature": 2, "sweep": "kl"},
        },
        "sweeps": {
            "kl": {
                "strategy": "soft-kl",
                "lang": "en",
                "dev": {"corpus": "xner-sample", "split": "train"},
                "trials": 2,
                "seed": 0,
                "space": {"temperature": {"low": 1.0, "high": 4.0}},
            }
        },
        "evaluation": {"max_eval_samples": 20, "per_device_eval_batch_size": 16, "max_length": 32},
        "languages": {
            "en": {
                "train": {"corpus": "xner-sample"},
                "tests": [
                    {"corpus": "xner-sample", "split": "train", "domain": "in"},
                    {"corpus": "europarl-ner", "domain": "out"},
                ],
            }
        },
        "groups": [
            {"name": "main", "languages": ["en"], "strategies": ["soft-kl", "hard", "soft-kl-tuned"], "seeds": [1, 2]},
            {
                "name": "lora",
                "languages": ["en"],
                "strategies": {"best": 1, "of": "main"},
                "students": ["lora"],
                "seeds": [1],
            },
        ],
    }


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, real_data_dir):
    root = tmp_path_factory.mktemp("experiment")
    texts = [" ".join(row) for row in load_corpus("xner-sample")["train"]["tokens"]]
    base = build_tiny_bert(str(root / "tiny-bert"), texts, vocab_size=300)
    config = tiny_config(base, root / "out", real_data_dir)
    # one seed: every training is a subprocess (~10 s of imports each on 2 cores); the plan's expansion over
    # seeds is checked on the two-seed config without running it (test_plan_expands_groups_over_seeds)
    config["groups"][0]["seeds"] = [1]
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    code, planned = run_cli("experiment", "plan", str(path))
    assert code == 0, planned
    code, first = run_cli("experiment", "run", str(path))
    assert code == 0, first
    records = read_records(str(root / "out" / "results.jsonl"))
    code, second = run_cli("experiment", "run", str(path))
    assert code == 0, second
    return {
        "root": root,
        "path": path,
        "config": config,
        "planned": planned,
        "first": first,
        "second": second,
        "records": records,
    }


def test_plan_lists_runs_and_pending_work_without_running_anything(experiment):
    planned = experiment["planned"]
    assert "teacher en" in planned and "soft-kl (full) en seed 1" in planned and "hard (full) en seed 1" in planned
    assert "sweep kl (2 of 2 trials left)" in planned
    assert "pending [lora]" in planned and "pending [main]" in planned  # best-of and swept strategies
    assert "estimated time left" in planned


def test_plan_expands_groups_over_seeds():
    runs, pending = plan(parse_experiment(_config()))  # the two-seed config, planned only
    assert [r.label for r in runs] == [
        "teacher en",
        "teacher en zero-shot (en)",
        *(f"{m} (full) en seed {s}" for m in ("soft-kl", "hard") for s in (1, 2)),
    ]
    assert len({r.run_id for r in runs}) == len(runs)
    # the swept strategy waits for its sweep, once per seed; the LoRA group for the best of main
    assert [(p.group, p.count) for p in pending] == [("main", 1), ("main", 1), ("lora", 1)]


def test_run_records_every_run_with_provenance(experiment):
    records = experiment["records"]
    kinds = [r["kind"] for r in records]
    assert kinds.count("trial") == 2 and kinds.count("sweep") == 1 and kinds.count("teacher") == 1
    students = [r for r in records if r["kind"] == "student"]
    # 3 strategies x 1 seed (full) + the best one as LoRA
    assert len(students) == 4
    assert sorted((r["model"], r["student_kind"], r["seed"]) for r in students if r["student_kind"] == "full") == [
        (m, "full", 1) for m in ("hard", "soft-kl", "soft-kl-tuned")
    ]
    teacher = next(r for r in records if r["kind"] == "teacher")
    assert teacher["training"]["wall_time_s"] > 0 and teacher["training"]["peak_rss_mb"] > 50
    lora = [r for r in students if r["student_kind"] == "lora"]
    assert len(lora) == 1 and lora[0]["groups"] == ["lora"]
    for record in records:
        if record["kind"] == "sweep":
            continue
        assert record["config_hash"] and record["run_id"].startswith(("student-", "teacher-eval-", "trial-"))
        provenance = record["provenance"]
        assert provenance["wall_time_s"] > 0 and provenance["peak_rss_mb"] > 50
        assert provenance["versions"]["torch"] and provenance["versions"]["xner"]
        assert os.path.isdir(provenance["artifact"])
        for name, result in record["results"].items():
            counts = result["sentence_counts"]
            assert len(counts) == result["num_sentences"]
            # the per-sentence counts reproduce the metric's F1 exactly: what the bootstrap resamples
            assert f1_from_counts(counts) == pytest.approx(result["f1"], abs=1e-12)
    # keep_weights' default: students keep their model, a sweep's trials (scored on dev, not used after) do not
    for record in students + [r for r in records if r["kind"] == "trial"]:
        folder = record["provenance"]["artifact"]
        weights = [name for name in os.listdir(folder) if name.endswith(".safetensors")]
        assert os.path.isfile(os.path.join(folder, "results.json"))
        if record["kind"] == "student":
            assert weights and record["provenance"]["weights"] == "kept"
        else:
            assert not weights and record["provenance"]["weights"] == "dropped (keep_weights)"
    student = students[0]
    assert set(student["results"]) == {"xner-sample-en:train", "europarl-ner-en"}
    assert student["results"]["europarl-ner-en"]["domain"] == "out"
    assert student["results"]["europarl-ner-en"]["num_sentences"] == 20


def test_sweep_best_parameters_feed_the_tuned_strategy(experiment):
    records = experiment["records"]
    trials = [r for r in records if r["kind"] == "trial"]
    best = max(trials, key=lambda r: r["results"]["xner-sample-en:train"]["f1"])
    sweep = json.loads((experiment["root"] / "out" / "sweeps" / "kl.json").read_text())
    assert sweep["trials"] == 2
    assert sweep["best_value"] == pytest.approx(best["results"]["xner-sample-en:train"]["f1"])
    assert sweep["best_params"]["temperature"] == pytest.approx(best["sweep"]["params"]["temperature"])
    tuned = [r for r in records if r["model"] == "soft-kl-tuned" and r["kind"] == "student"]
    assert tuned and all(
        r["params"]["temperature"] == pytest.approx(sweep["best_params"]["temperature"]) for r in tuned
    )
    assert all(1.0 <= r["sweep"]["params"]["temperature"] <= 4.0 for r in trials)
    assert all(r["sweep"]["value"] == r["results"]["xner-sample-en:train"]["f1"] for r in trials)
    (final,) = [r for r in records if r["kind"] == "sweep"]
    assert final["sweep"]["value"] == pytest.approx(sweep["best_value"]) and final["params"] == sweep["best_params"]


def test_lora_group_takes_the_best_strategy_of_main(experiment):
    students = [r for r in experiment["records"] if r["kind"] == "student" and "main" in r["groups"]]
    means = {}
    for r in students:
        means.setdefault(r["model"], []).append(r["results"]["xner-sample-en:train"]["f1"])
    best = max(means, key=lambda m: sum(means[m]) / len(means[m]))
    lora = next(r for r in experiment["records"] if r.get("student_kind") == "lora")
    assert lora["model"] == best


def test_rerun_skips_finished_work_and_adds_nothing(experiment):
    assert "runs already done (skipped)" in experiment["second"]
    assert "0 runs done" in experiment["second"]
    assert read_records(str(experiment["root"] / "out" / "results.jsonl")) == experiment["records"]


def test_interrupted_run_is_redone_alone(experiment, tmp_path):
    """A store whose last line was cut mid-write: only that run is redone."""
    out = experiment["root"] / "out"
    store = out / "results.jsonl"
    lines = store.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    store.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    code, text = run_cli("experiment", "run", str(experiment["path"]))
    assert code == 0, text
    assert "1 runs done" in text
    records = read_records(str(store))
    assert [r["run_id"] for r in records] == [r["run_id"] for r in experiment["records"]]
    assert records[-1]["run_id"] == last["run_id"]


def test_report_writes_tables_charts_and_significance(experiment, tmp_path):
    code, text = run_cli(
        "experiment",
        "report",
        str(experiment["root"] / "out" / "results.jsonl"),
        "--output-dir",
        str(tmp_path),
        "--bootstrap-samples",
        "200",
    )
    assert code == 0, text
    report = json.loads((tmp_path / "report.json").read_text())
    labels = {row["configuration"] if "configuration" in row else row.get("label") for row in report["main"]}
    assert any("soft-kl" in str(label) for label in labels)
    assert report["significance"]["rows"], "a paired bootstrap per test set"
    (swept,) = report["sweeps"]
    assert swept["name"] == "kl" and swept["n_trials"] == 2 and swept["best_value"] is not None
    assert (tmp_path / "f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "report.md").read_text()
    assert "europarl-ner-en" in markdown and "![" in markdown


@pytest.mark.parametrize(
    "name",
    [
        "offline-europe",
        "offline-africa",
        "conll2003",
        "paper-gpu",
        "minilm/offline-europe",
        "minilm/offline-africa",
        "minilm/conll2003",
    ],
)
def test_shipped_configs_plan_cleanly(name, real_data_dir, tmp_path):
    code, text = run_cli(
        "experiment",
        "plan",
        str(REPO / "configs" / f"{name}.yaml"),
        "--output-dir",
        str(tmp_path),
        "--data-dir",
        str(real_data_dir),
    )
    assert code == 0, text
    assert "estimated time left" in text


def _config(**changes) -> dict:
    config = tiny_config("base", pathlib.Path("out"), pathlib.Path("data"))
    for dotted, value in changes.items():
        target = config
        *head, last = dotted.split(".")
        for key in head:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return config


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"teachers.en.train": {"epochs": 2}}, "teachers.en.train: unknown key(s) ['epochs']"),
        ({"strategies.hard": {"teachers": ["nobody"]}}, "strategies.hard.teachers: unknown teacher 'nobody'"),
        (
            {"languages.en.tests": [{"corpus": "europarl-ner"}]},
            "languages.en.tests[0]: missing required key(s) ['domain']",
        ),
        ({"languages.en.tests": [{"corpus": "europarl-ner", "domain": "maybe"}]}, "must be 'in' or 'out'"),
        ({"strategies.soft-kl": {"teachers": ["en"], "temprature": 2}}, "unknown key(s) ['temprature']"),
        ({"strategies.soft-kl": {"teachers": ["en"], "strategy": "soft-xx"}}, "is not one of"),
        ({"strategies.hard": {"teachers": ["en"], "seed": 4}}, "unknown key(s) ['seed']"),
        ({"groups.1.strategies": {"best": 1, "of": "later"}}, "must be an earlier group"),
        ({"languages.en.train": {"corpus": "nope"}}, "unknown corpus 'nope'"),
        ({"languages.en.train": {"corpus": "germeval2014", "split": "dev"}}, "has no split 'dev'"),
        ({"sweeps.kl.space": {"temperature": {"low": 4, "high": 1}}}, "low must be below high"),
        ({"strategies.soft-kl-tuned.sweep": "missing"}, "unknown sweep 'missing'"),
        ({"launcher": "python"}, "ending in -m"),
        ({"groups.0.languages": ["fr"]}, "'fr' is not under languages"),
        ({"keep_weights": "trials"}, "keep_weights: one of ['all', 'none', 'students'], got 'trials'"),
    ],
)
def test_config_errors_name_the_place(changes, message):
    with pytest.raises(ConfigError) as err:
        parse_experiment(_config(**changes), path="tiny.yaml")
    assert message in str(err.value)


def test_run_identity_follows_what_decides_the_result():
    base = plan(parse_experiment(_config()))[0]
    ids = {r.label: r.run_id for r in base}
    changed = plan(parse_experiment(_config(**{"strategies.hard": {"teachers": ["en"], "threshold": None}})))[0]
    # an unrelated edit (a new, unused strategy parameter set to None is dropped) keeps every id
    assert {r.label: r.run_id for r in changed} == ids
    tweaked = {r.label: r.run_id for r in plan(parse_experiment(_config(**{"strategies.soft-kl.temperature": 3})))[0]}
    assert tweaked["hard (full) en seed 1"] == ids["hard (full) en seed 1"]
    assert tweaked["soft-kl (full) en seed 1"] != ids["soft-kl (full) en seed 1"]
    assert tweaked["teacher en"] == ids["teacher en"]
    retaught = {r.label: r.run_id for r in plan(parse_experiment(_config(**{"teachers.en.train.seed": 4})))[0]}
    assert (
        retaught["teacher en"] != ids["teacher en"]
        and retaught["hard (full) en seed 1"] != ids["hard (full) en seed 1"]
    )


def test_the_same_file_runs_under_accelerate_launch(tmp_path, real_data_dir):
    """Only the launcher changes: teacher, evaluation and student run as ``accelerate launch -m ...``."""
    texts = [" ".join(row) for row in load_corpus("xner-sample")["train"]["tokens"]]
    config = tiny_config(
        build_tiny_bert(str(tmp_path / "tiny-bert"), texts, vocab_size=300), tmp_path / "out", real_data_dir
    )
    config["launcher"] = ["accelerate", *ACCELERATE_CPU_LAUNCH, "-m"]
    config["groups"] = [{"name": "main", "languages": ["en"], "strategies": ["hard"], "seeds": [1]}]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    code, text = run_cli("experiment", "run", str(path))
    assert code == 0, text
    records = read_records(str(tmp_path / "out" / "results.jsonl"))
    assert [r["kind"] for r in records] == ["teacher", "student"]
    student = records[1]
    assert student["training"]["num_processes"] == 1
    for command in student["provenance"]["commands"]:
        assert os.path.basename(command[0]) == "accelerate" and command[1] == "launch"
    assert [c[c.index("-m") + 1] for c in student["provenance"]["commands"]] == [
        "training.distill",
        "training.evaluation",
    ]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["experiment", "plan", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_config(**{"strategies.hard": {"teachers": ["ghost"]}})))
    assert main(["experiment", "run", str(bad)]) == 2
    assert "unknown teacher 'ghost'" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({**_config(), "data_dir": str(tmp_path)}))
    assert main(["experiment", "run", str(good), "--group", "nope"]) == 2
    assert "no group(s) ['nope']" in capsys.readouterr().err


def test_a_failing_run_names_its_log_and_keeps_finished_work(tmp_path, capsys):
    config = _config()
    # An existing folder that holds no model: it passes plan (a missing path would not) and fails to load.
    (tmp_path / "no-such-model").mkdir()
    config["models"]["tiny"] = str(tmp_path / "no-such-model")
    config["data_dir"] = str(tmp_path)
    config["output_dir"] = str(tmp_path / "out")
    config["groups"] = [{"name": "main", "languages": ["en"], "strategies": ["hard"], "seeds": [1]}]
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["experiment", "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "teacher en" in err and "failed with exit status" in err and "logs/teacher-train-" in err
    log = err.split("log: ")[1].split(";")[0]
    assert "no-such-model" in pathlib.Path(log).read_text()


def test_translate_test_teacher_labels_target_text_and_teaches(tmp_path, real_data_dir):
    """A translate-test teacher: Spanish text -> Apertium -> tagged by the English teacher -> eflomal ->
    projected back onto the Spanish words, a teacher trained on that, then students learning from it."""
    import shutil

    pytest.importorskip("eflomal")
    if shutil.which("apertium") is None:
        pytest.skip("Apertium is not installed (apt-get install apertium apertium-eng-spa)")
    texts = [" ".join(row) for row in load_corpus("xner-sample")["train"]["tokens"]]
    config = tiny_config(
        build_tiny_bert(str(tmp_path / "tiny-bert"), texts, vocab_size=300), tmp_path / "out", real_data_dir
    )
    config["teachers"]["tt"] = {
        "kind": "translate-test",
        "languages": ["es"],
        "model": "tiny",
        "tagger": "en",
        "projection": {
            "translator": {"kind": "apertium"},
            "aligner": {"kind": "eflomal"},
            "method": {"name": "heuristic"},
            "max_samples": 40,
        },
        "train": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "max_length": 32, "seed": 3},
    }
    config["strategies"] = {
        "multi-teacher": {"teachers": ["en", "tt"], "teacher_weights": [1, 1]},
        "projected+kd": {"teachers": ["en"], "projected": "tt", "alpha": 1},
    }
    config["student"]["max_train_samples"] = 40
    config.pop("sweeps")
    config["languages"] = {
        "es": {"train": {"corpus": "conll2002", "split": "train"}, "tests": [{"corpus": "conll2002", "domain": "in"}]}
    }
    config["groups"] = [{"name": "main", "languages": ["es"], "strategies": "all", "seeds": [1]}]
    path = tmp_path / "tt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    code, text = run_cli("experiment", "run", str(path))
    assert code == 0, text
    records = read_records(str(tmp_path / "out" / "results.jsonl"))
    assert sorted((r["kind"], r["model"]) for r in records) == [
        ("student", "multi-teacher"),
        ("student", "projected+kd"),
        ("teacher", "en"),
        ("teacher", "tt"),
    ]
    (projection,) = (tmp_path / "out" / "projections").iterdir()
    marker = json.loads((projection / "xner-run.json").read_text())
    assert marker["spec"]["mode"] == "translate-test" and marker["spec"]["data"]["corpus"] == "conll2002"
    import datasets as hf_datasets

    view = hf_datasets.load_from_disk(str(projection / "view"))["train"]
    spanish = load_corpus("conll2002", data_dir=str(real_data_dir), lang="es", splits=["train"])["train"]
    # the teacher trains on the ORIGINAL Spanish words (the rows the projection did not flag)
    assert 0 < len(view) <= 40
    assert all(tokens in spanish[:40]["tokens"] for tokens in view["tokens"])
    assert view.features["ner_tags"].feature.names == spanish.features["ner_tags"].feature.names


def test_estimates_count_self_training_rounds_and_language_agnostic_selection():
    def run(**params):
        runs = plan(parse_experiment(_config(**{"strategies.hard": {"teachers": ["en"], **params}})))[0]
        return next(r for r in runs if r.label == "hard (full) en seed 1")

    def estimate(**params):
        return run(**params).estimate_s

    base = estimate(strategy="hard-confident")
    two_rounds = estimate(strategy="hard-confident", self_training_rounds=2)
    overhead = 2 * parse_experiment(_config()).cost["process_overhead_s"]
    # a second round trains, relabels and selects again; evaluation and process start-up happen once
    assert base < two_rounds < 2 * base
    assert two_rounds - base > (base - overhead) / 2
    # trains on half the text, after encoding it and as much source text
    cost, plain = parse_experiment(_config()).cost, run()
    n, epochs = plain.info["sentences"], float(plain.info["args"].get("num_train_epochs", 3))
    assert estimate(select_language_agnostic=0.5) - plain.estimate_s == pytest.approx(
        -n / 2 * epochs / cost["train_sentences_per_s"] + 2 * n / cost["teacher_probs_sentences_per_s"]
    )
