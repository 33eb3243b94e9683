"""``--push_to_hub`` at the end of a training run, and ``--with_tracking`` that never silently logs nowhere.

The push goes through the publisher that the ``xner.publishers`` entry point names (what the
installed distribution declares in setup.cfg); here a dist-info folder on ``sys.path`` declares it,
so the real discovery runs without reinstalling the package.
"""

import glob
import json
import os

import pytest

from dataset_builders.errors import UserError
from tests.fixtures.training import distill_args, teacher_args
from training import distill, run_options, teacher
from xner.cli import main

BASE_ID = "xner-test/tiny-encoder"


@pytest.fixture
def declared_publisher(tmp_path, monkeypatch):
    """The entry point setup.cfg declares, visible to importlib.metadata through sys.path."""
    dist = tmp_path / "site" / "xner_publisher_test-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: xner-publisher-test\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[xner.publishers]\nmodel = model_cards.publish:publish_model\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    run_options.set_publisher(None)


def test_train_teacher_pushes_through_the_publisher(online, declared_publisher, encoder, dataset_dir, tmp_path, capsys):
    out = tmp_path / "teacher"
    repo = "xner-test/pushed-teacher"
    assert (
        main(
            [
                "train-teacher",
                *teacher_args(encoder, out, "--dataset", dataset_dir, "--max_train_steps", "2"),
                "--push_to_hub",
                "--hub_model_id",
                repo,
                "--base_model_id",
                BASE_ID,
            ]
        )
        == 0
    )
    assert f"pushed {out} to {repo}: " in capsys.readouterr().out
    files = online.files(repo)
    assert {"config.json", "model.safetensors", "results.json", "README.md"} <= set(files)
    assert f"\nbase_model: {BASE_ID}\n" in files["README.md"].decode()
    assert str(tmp_path).encode() not in b"".join(files.values())
    assert json.loads(files["results.json"])["model_name_or_path"] == BASE_ID


@pytest.mark.parametrize("entry", ["xner distill", "python -m training.distill"])
def test_distill_pushes_a_lora_student_through_the_publisher(online, declared_publisher, models, tmp_path, entry):
    out = tmp_path / "student"
    repo = f"xner-test/pushed-student-{'cli' if entry == 'xner distill' else 'module'}"
    args = distill_args(models, out, "--student", "lora", steps=2)
    args += ["--push_to_hub", "--hub_model_id", repo, "--base_model_id", BASE_ID]
    assert (main(["distill", *args]) if entry == "xner distill" else distill.main(args)) == 0
    files = online.files(repo)
    assert {"adapter_config.json", "config.json", "results.json", "README.md"} <= set(files)
    assert f"\nbase_model: {BASE_ID}\n" in files["README.md"].decode()
    assert str(tmp_path).encode() not in b"".join(files.values())  # no path of this machine went up
    assert json.loads(files["results.json"])["student"]["kind"] == "lora"


def test_push_to_hub_is_refused_before_training(declared_publisher, encoder, dataset_dir, tmp_path, monkeypatch):
    out = tmp_path / "never"
    with pytest.raises(UserError, match="--push_to_hub needs --hub_model_id"):
        teacher.main(teacher_args(encoder, out, "--dataset", dataset_dir, "--push_to_hub"))
    monkeypatch.setattr(run_options.importlib.metadata, "entry_points", lambda group: [])
    with pytest.raises(UserError, match="no publisher installed"):
        teacher.main(teacher_args(encoder, out, "--dataset", dataset_dir, "--push_to_hub", "--hub_model_id", "a/b"))
    assert not out.exists()  # nothing trained


def test_hub_token_is_never_written(online, declared_publisher, encoder, dataset_dir, tmp_path):
    out = tmp_path / "teacher"
    secret = "hf_xnerNeverWritten0000000000000"
    args = teacher_args(
        encoder,
        out,
        "--dataset",
        dataset_dir,
        "--max_train_steps",
        "1",
        "--push_to_hub",
        "--hub_model_id",
        "xner-test/token",
        "--base_model_id",
        BASE_ID,
        "--hub_token",
        secret,
    )
    try:  # (the test server knows another token: whether it refuses the push does not matter here)
        teacher.main(args)
    except Exception:
        pass
    for path in glob.glob(str(out / "**" / "*"), recursive=True):  # the token is in no file
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                assert secret.encode() not in handle.read(), path


def test_with_tracking_without_a_tracker_names_the_extra(encoder, dataset_dir, tmp_path, monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])
    with pytest.raises(UserError, match=r"no experiment tracker is installed; pip install 'xner\[tracking\]'"):
        teacher.main(teacher_args(encoder, tmp_path / "t", "--dataset", dataset_dir, "--with_tracking"))
    with pytest.raises(UserError, match="--report_to wandb: not installed"):
        teacher.main(
            teacher_args(encoder, tmp_path / "t", "--dataset", dataset_dir, "--with_tracking", "--report_to", "wandb")
        )
    assert not (tmp_path / "t").exists()


def test_with_tracking_writes_tensorboard_scalars(encoder, dataset_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tracked"
    assert (
        teacher.main(
            teacher_args(
                encoder,
                out,
                "--dataset",
                dataset_dir,
                "--max_train_steps",
                "3",
                "--with_tracking",
                "--report_to",
                "tensorboard",
            )
        )
        == 0
    )
    events = glob.glob(str(out / "**" / "events.out.tfevents.*"), recursive=True)
    assert events
    tags = {}
    for path in events:
        accumulator = EventAccumulator(path)
        accumulator.Reload()
        tags.update({tag: accumulator.Scalars(tag) for tag in accumulator.Tags()["scalars"]})
    assert [event.step for event in tags["train_loss"]] == [1, 2, 3]
    assert all(event.value == event.value and event.value > 0 for event in tags["train_loss"])  # finite, positive
    assert any(tag.startswith("validation") for tag in tags)
