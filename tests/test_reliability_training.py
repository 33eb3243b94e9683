"""Issue 13, training side: flagged rows, atomic checkpoints and outputs, no pickle from a checkpoint.

Each test reproduces one failure of the old code on a tiny BERT and the built-in sample corpus:
the teacher training on rows a projection flagged (item 5); a checkpoint cut short by a kill or a
full disk picked by ``latest`` (9); an unusable output folder found only after training, and a
failed run leaving a previous run's results looking finished (10); a pickle planted in a
checkpoint run on resume (14).
"""

import json
import os
import pickle

import datasets
import pytest
from accelerate.state import AcceleratorState, GradientState

from dataset_builders.errors import UserError
from tests.fixtures.training import teacher_args as shared_teacher_args
from training import loop, teacher


def teacher_args(encoder, output_dir, *extra):
    """The shared teacher arguments on the built-in sample corpus (``encoder`` is the shared fixture)."""
    return shared_teacher_args(encoder, output_dir, "--corpus", "xner-sample", *extra)


def fresh_process():
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


# ----------------------------------------------------------------------------- 5. flagged projection rows


def test_teacher_drops_rows_a_projection_flagged(encoder, sample, tmp_path):
    """The teacher applies distill's rule (training.features.projection_row_ok) to a projection's rows."""
    rows = sample.select(range(6))
    errors = [None, "translator failed", None, None, None, None]
    stats = [
        {"error": None},
        {"error": None},
        {"error": "bad alignment"},
        {"error": None},
        {"error": None},
        {"error": None},
    ]
    train = rows.add_column("translation_error", errors).add_column("projection_stats", stats)
    train = train.rename_column("ner_tags", "projected_tags")
    path = str(tmp_path / "projected")
    datasets.DatasetDict({"train": train}).save_to_disk(path)
    out = tmp_path / "teacher"
    args = teacher_args(encoder, out, "--max_train_steps", "1", "--tag-column", "projected_tags")
    args[args.index("--corpus") : args.index("--corpus") + 2] = ["--dataset", path]
    assert teacher.main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["num_train_sentences"] == 4 and results["data"]["flagged_rows_dropped"] == {"train": 2}


# ------------------------------------------------------------------------------------ 9. atomic checkpoints


def test_a_checkpoint_cut_short_is_never_latest(encoder, tmp_path, monkeypatch):
    """A kill (or a full disk) while step_4 is written: latest is step_2, and the resumed run completes."""
    out = tmp_path / "run"
    real_save = loop.Accelerator.save_state

    def dying_save(self, path, *args, **kwargs):
        if path.rstrip("/").endswith("step_4") or ".step_4" in path:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "optimizer.bin"), "wb") as f:
                f.write(b"\x80\x04trunc")  # what a full disk leaves
            raise OSError(28, "No space left on device")
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(loop.Accelerator, "save_state", dying_save)
    with pytest.raises(OSError):
        teacher.main(teacher_args(encoder, out, "--max_train_steps", "5", "--checkpointing_steps", "2"))
    monkeypatch.setattr(loop.Accelerator, "save_state", real_save)
    checkpoints = out / "checkpoints"
    assert loop.resolve_checkpoint("latest", str(out)) == str(checkpoints / "step_2")
    assert not (checkpoints / "step_4").exists()  # the cut one never took a complete checkpoint's name

    fresh_process()
    assert (
        teacher.main(
            teacher_args(
                encoder,
                out,
                "--max_train_steps",
                "5",
                "--checkpointing_steps",
                "2",
                "--resume_from_checkpoint",
                "latest",
            )
        )
        == 0
    )
    assert json.loads((out / "results.json").read_text())["completed_steps"] == 5


def test_garbage_or_truncated_checkpoints_are_one_line_errors(encoder, tmp_path):
    out = tmp_path / "run"
    assert teacher.main(teacher_args(encoder, out, "--max_train_steps", "2", "--checkpointing_steps", "2")) == 0
    step_2 = out / "checkpoints" / "step_2"
    optimizer = step_2 / "optimizer.bin"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # truncated after it was written
    fresh_process()
    with pytest.raises(UserError, match=r"--resume_from_checkpoint .*step_2.*optimizer\.bin"):
        teacher.main(
            teacher_args(encoder, tmp_path / "b", "--max_train_steps", "3", "--resume_from_checkpoint", str(step_2))
        )
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "model.safetensors").write_bytes(b"not a checkpoint")
    fresh_process()
    with pytest.raises(UserError, match=r"--resume_from_checkpoint .*garbage.*not a complete xner checkpoint"):
        teacher.main(
            teacher_args(encoder, tmp_path / "c", "--max_train_steps", "3", "--resume_from_checkpoint", str(garbage))
        )


# ------------------------------------------------------------------------ 10. output folder, atomic outputs


def test_an_unusable_output_dir_is_refused_before_training(encoder, tmp_path, monkeypatch):
    monkeypatch.setattr(teacher, "train", lambda *a, **k: pytest.fail("training started"))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for bad in (a_file, "/proc/xner-test"):
        with pytest.raises(UserError, match=r"--output_dir"):
            teacher.main(teacher_args(encoder, bad, "--max_train_steps", "1"))


def test_a_failed_run_leaves_no_finished_looking_folder(encoder, tmp_path):
    out = tmp_path / "run"
    assert teacher.main(teacher_args(encoder, out, "--max_train_steps", "1")) == 0
    assert (out / "results.json").is_file()
    fresh_process()
    with pytest.raises(loop.NonFiniteLossError):
        teacher.main(teacher_args(encoder, out, "--max_train_steps", "3", "--learning_rate", "1e30"))
    assert not (out / "results.json").exists()  # the old run's marker is gone: the folder does not look finished


# ------------------------------------------------------------------------------- 14. no pickle from a checkpoint


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # any callable runs on unpickling; creating a file proves it ran


def test_checkpoints_hold_no_pickle_and_a_planted_one_is_refused(encoder, tmp_path):
    out = tmp_path / "run"
    assert teacher.main(teacher_args(encoder, out, "--max_train_steps", "2", "--checkpointing_steps", "2")) == 0
    step_2 = out / "checkpoints" / "step_2"
    assert not [f for f in os.listdir(step_2) if f.endswith(".pkl")]
    marker = tmp_path / "pwned"
    with open(step_2 / "custom_checkpoint_0.pkl", "wb") as f:
        pickle.dump(_Payload(str(marker)), f)
    fresh_process()
    with pytest.raises(UserError, match=r"custom_checkpoint_0\.pkl.*--trust_checkpoint_pickles"):
        teacher.main(
            teacher_args(encoder, tmp_path / "b", "--max_train_steps", "3", "--resume_from_checkpoint", str(step_2))
        )
    assert not marker.exists()
