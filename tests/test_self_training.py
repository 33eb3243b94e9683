"""Self-training rounds: the schedule, the per-round plan and the cache keys of each round's teacher probabilities."""

import os

import pytest

from dataset_builders.errors import UserError
from training.self_training import (
    SelfTrainingSchedule,
    plan_rounds,
    round_cache_key,
    teacher_probs_cache_file,
)


def test_linear_threshold_schedule():
    schedule = SelfTrainingSchedule(rounds=3, threshold_start=0.9, threshold_end=0.7)
    assert [schedule.threshold(r) for r in range(3)] == pytest.approx([0.9, 0.8, 0.7])
    five = SelfTrainingSchedule(rounds=5, threshold_start=0.5, threshold_end=0.9)
    assert [five.threshold(r) for r in range(5)] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert SelfTrainingSchedule(rounds=4, threshold_start=0.8).threshold(3) == 0.8  # constant
    assert SelfTrainingSchedule(rounds=1, threshold_start=0.9, threshold_end=0.5).threshold(0) == 0.9
    assert SelfTrainingSchedule(rounds=2).threshold(1) is None
    with pytest.raises(UserError, match="round 3 is outside 0..2"):
        schedule.threshold(3)


def test_plan_chains_students_into_teachers(tmp_path):
    out = str(tmp_path / "run")
    plan = plan_rounds(SelfTrainingSchedule(rounds=3, threshold_start=0.9, threshold_end=0.7), ["t/en", "t/de"], out)
    assert [p.index for p in plan] == [0, 1, 2]
    assert plan[0].teachers == ("t/en", "t/de")
    assert plan[1].teachers == (os.path.join(out, "rounds", "round-0"),) == (plan[0].output_dir,)
    assert plan[2].teachers == (plan[1].output_dir,)
    assert plan[2].output_dir == out and plan[2].is_last and not plan[1].is_last
    assert [p.threshold for p in plan] == pytest.approx([0.9, 0.8, 0.7])
    assert plan[1].record()["teachers"] == [plan[0].output_dir]
    single = plan_rounds(SelfTrainingSchedule(), ["t/en"], out)  # one round = a plain distillation run
    assert [(p.teachers, p.output_dir, p.threshold) for p in single] == [(("t/en",), out, None)]


def test_round_threshold_goes_into_the_strategy_parameters():
    plan = plan_rounds(SelfTrainingSchedule(rounds=2, threshold_start=0.9, threshold_end=0.6), ["t"], "out")
    assert plan[1].strategy_config({"name": "hard-confident", "threshold": 0.99}) == {
        "name": "hard-confident",
        "threshold": pytest.approx(0.6),
    }
    unscheduled = plan_rounds(SelfTrainingSchedule(rounds=2), ["t"], "out")[1]
    assert unscheduled.strategy_config({"name": "soft-kl", "temperature": 2.0}) == {
        "name": "soft-kl",
        "temperature": 2.0,
    }
    with pytest.raises(UserError, match="needs a strategy with a threshold \\(hard-confident\\); 'soft-mse' has none"):
        plan[0].strategy_config({"name": "soft-mse"})
    with pytest.raises(UserError, match="'soft-kl' has none"):
        SelfTrainingSchedule(rounds=2, threshold_start=0.9).check_strategy("soft-kl")
    SelfTrainingSchedule(rounds=2).check_strategy("soft-kl")  # no schedule: any strategy


@pytest.mark.parametrize(
    "params, message",
    [
        ({"rounds": 0}, "rounds must be an integer >= 1"),
        ({"rounds": 1.5}, "rounds must be an integer"),
        ({"threshold_start": 1.2}, r"threshold_start must be in \[0, 1\]"),
        ({"threshold_start": 0.9, "threshold_end": -0.1}, "threshold_end must be in"),
        ({"threshold_end": 0.5}, "threshold_end needs threshold_start"),
    ],
)
def test_bad_schedules_are_user_errors(params, message):
    with pytest.raises(UserError, match=message):
        SelfTrainingSchedule(**params)


def make_teacher(folder, weights=b"\x00\x01"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(weights)
    return str(folder)


def test_cache_key_follows_teacher_content_round_and_corpus(tmp_path):
    teacher = make_teacher(tmp_path / "teacher")
    key = round_cache_key([teacher], 1, "corpus-fp")
    assert key == round_cache_key([teacher], 1, "corpus-fp")  # deterministic
    assert key == round_cache_key([make_teacher(tmp_path / "copy")], 1, "corpus-fp")  # content, not path
    assert key != round_cache_key([teacher], 2, "corpus-fp")
    assert key != round_cache_key([teacher], 1, "other-corpus")
    assert key != round_cache_key([teacher, "org/hub-model"], 1, "corpus-fp", weights=[0.5, 0.5])
    make_teacher(tmp_path / "teacher", weights=b"\x00\x02")  # retrained into the same folder
    assert key != round_cache_key([teacher], 1, "corpus-fp")
    assert teacher_probs_cache_file("/c", key, "train") == f"/c/teacher-probs-{key}-train.arrow"


def test_cache_key_refuses_an_unfinished_round(tmp_path):
    (tmp_path / "round-0").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        round_cache_key([str(tmp_path / "round-0")], 1, "fp")
    with pytest.raises(UserError, match="at least one"):
        plan_rounds(SelfTrainingSchedule(), [], "out")
