import subprocess
import sys

from xner.cli import main


def test_stats_of_builtin_sample(capsys):
    assert main(["corpus", "stats", "xner-sample"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "xner-sample"
    assert out[1].split() == ["split", "sentences", "tokens", "LOC", "MISC", "ORG", "PER", "entities"]
    assert out[2].split() == ["train", "18", "181", "14", "4", "10", "8", "36"]


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["corpus", "stats", "conll2002", "--lang", "es", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xner corpus: error: conll2002 (es): missing file(s)")
    assert "Traceback" not in err


def test_console_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "xner", "corpus", "list"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "masakhaner2" in done.stdout and "PER/ORG/LOC/DATE" in done.stdout


# ---------------------------------------------------------------- issue 13: no traceback for a user error

import os  # noqa: E402

import pytest  # noqa: E402

from dataset_builders.errors import UserError  # noqa: E402
from xner import cli  # noqa: E402


def run_cli(argv, capsys):
    """``xner ARGV`` -> (exit status, stderr); argparse's own exits included."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as done:
        code = done.code
    return code, capsys.readouterr().err


def test_cli_error_is_the_one_user_error_type():
    assert issubclass(cli.CliError, UserError)


def test_bad_training_inputs_are_one_line_errors_naming_the_argument(encoder, tmp_path, capsys):
    from accelerate.state import AcceleratorState, GradientState

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    garbage = tmp_path / "garbage_checkpoint"
    garbage.mkdir()
    (garbage / "optimizer.bin").write_bytes(b"garbage")
    teacher = [
        "train-teacher",
        "--corpus",
        "xner-sample",
        "--model_name_or_path",
        encoder,
        "--max_train_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
    ]
    out = ["--output_dir", tmp_path / "out"]
    evaluate = ["evaluate", "--model", encoder, "--test", "xner-sample:train=in"]
    # (argv, what the one error line must name)
    cases = [
        ([*teacher, "--output_dir", a_file], "--output_dir"),
        ([*teacher, "--output_dir", "/proc/xner-test"], "--output_dir"),
        (
            ["train-teacher", "--corpus", "xner-sample", "--model_name_or_path", "/nonexistent/model", *out],
            "--model_name_or_path /nonexistent/model: no such model folder",
        ),
        ([*teacher, *out, "--per_device_train_batch_size", "0"], "--per_device_train_batch_size"),
        ([*teacher, *out, "--resume_from_checkpoint", garbage], "--resume_from_checkpoint"),
        ([*teacher, *out, "--resume_from_checkpoint", "latest"], "--resume_from_checkpoint latest"),
        ([*teacher, *out, "--learning_rate", "1e30"], "a learning rate too high"),
        (
            [
                "distill",
                "--teacher",
                "/nonexistent/teacher",
                "--model_name_or_path",
                encoder,
                "--corpus",
                "xner-sample",
                *out,
            ],
            "--teacher /nonexistent/teacher",
        ),
        (["merge", tmp_path, a_file], "output_dir"),
        ([*evaluate, "--output-dir", a_file], "--output_dir"),  # the error names the primary spelling
        ([*evaluate, "--batch-size", "0"], "--batch-size"),
        (["evaluate", "--model", "/nonexistent/model", "--test", "xner-sample"], "--model /nonexistent/model"),
    ]
    for argv, named in cases:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
        code, err = run_cli(argv, capsys)
        assert code == 2 and "Traceback" not in err, (argv, err)
        errors = [line for line in err.splitlines() if "error" in line.lower()]  # progress bars also go to stderr
        assert len(errors) == 1 and errors[0].startswith(f"xner {argv[0]}: error: ") and named in errors[0], (argv, err)


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    argv = ["merge", str(tmp_path), str(a_file)]
    with pytest.raises(UserError):
        cli.main(["--debug", *argv])
    monkeypatch.setenv("XNER_DEBUG", "1")
    with pytest.raises(UserError):
        cli.main(argv)
    monkeypatch.delenv("XNER_DEBUG")
    assert cli.main(argv) == 2


def test_module_entry_points_print_one_line(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "training.distill", "merge", str(tmp_path), str(a_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert (
        done.stderr.strip().startswith("python -m training.distill merge: error:")
        and len(done.stderr.strip().splitlines()) == 1
    )


def test_training_verbs_and_modules_share_one_typed_parser():
    """``xner train-teacher``/``distill`` and ``python -m training.X`` parse the same dataclass fields, each flag
    in both spellings, the old names kept as aliases."""
    import dataclasses

    from training import distill, teacher
    from training.arguments import from_namespace

    for module, verb, extra in (
        (teacher, "train-teacher", []),
        (distill, "distill", ["--teacher", "t1", "--teacher", "t2"]),
    ):
        module_args = module.build_parser().parse_args_into_dataclasses(
            ["--model_name_or_path", "m", "--output-dir", "o", "--dataset", "d", "--max-train-samples", "5", *extra],
            look_for_args_file=False,
        )
        namespace = cli.build_parser(verb).parse_args(
            [
                verb,
                "--model-name-or-path",
                "m",
                "--output_dir",
                "o",
                "--dataset_name",
                "d",
                "--max_train_samples",
                "5",
                *extra,
            ]
        )
        verb_args = from_namespace(module.ARGUMENTS, namespace)
        assert [dataclasses.asdict(a) for a in module_args] == [dataclasses.asdict(a) for a in verb_args]
        data = next(a for a in verb_args if type(a).__name__ == "DataArguments")
        assert (data.dataset_name, data.max_train_samples) == ("d", 5)
    assert next(a for a in verb_args if type(a).__name__ == "TeacherArguments").teacher == ["t1", "t2"]
