"""The resumable-step engine shared by ``xner demo`` and the experiment harness (``xner.steps``)."""

from __future__ import annotations

import json

import pytest

from xner.steps import Step, stable_hash, staged


def test_a_step_is_done_only_with_its_key_and_outputs(tmp_path):
    out = tmp_path / "out.txt"
    step = Step(str(tmp_path / "state" / "a.json"), stable_hash({"lr": 1e-3}), [str(out)])
    assert step.finished() is None
    step.start()
    out.write_text("x")
    step.finish(figures={"f1": 0.5})
    assert step.finished()["figures"] == {"f1": 0.5}
    assert Step(step.marker, stable_hash({"lr": 2e-3}), [str(out)]).finished() is None  # other settings
    out.unlink()
    assert step.finished() is None  # an output is missing
    out.write_text("x")
    step.start()  # a redo began: until it finishes, the step is not done
    assert step.finished() is None
    (tmp_path / "state" / "a.json").write_text('{"key": ')  # a marker cut mid-write
    assert step.finished() is None


def test_staged_folder_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with staged(str(target)) as staging:
        (tmp_path / "model.partial" / "weights").write_text("v1")
        assert staging == str(tmp_path / "model.partial") and not target.exists()
    assert (target / "weights").read_text() == "v1" and not (tmp_path / "model.partial").exists()
    step = Step(str(target / "done.json"), "k2")
    with pytest.raises(RuntimeError):
        step.start()
        with staged(str(target)) as staging:
            (tmp_path / "model.partial" / "weights").write_text("half of v2")
            raise RuntimeError("training failed")
        step.finish()  # never reached: a failure is never marked done
    assert (target / "weights").read_text() == "v1" and not (tmp_path / "model.partial").exists()
    assert step.finished() is None and not (target / "done.json").exists()
    with staged(str(target)) as staging:
        (tmp_path / "model.partial" / "weights").write_text("v2")
    step.finish(run_id="r")
    assert (target / "weights").read_text() == "v2" and json.loads((target / "done.json").read_text())["key"] == "k2"
    assert not (tmp_path / "model.old").exists()


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
