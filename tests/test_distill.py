"""``training.distill`` end to end on tiny local models: every strategy trains a student from the CLI.

Teachers are tiny BERT token classifiers over the CoNLL labels (random heads: the mechanics, not the
quality, are under test); the student starts from a bare tiny XLM-R encoder, so teacher and student
tokenise differently. The training text is the built-in ``xner-sample`` corpus (labels dropped) and,
for ``projected+kd``, a small projected dataset in translate-train layout.

Covers: a few-step run per strategy (full students), LoRA student -> ``load_student`` -> ``xner
merge``; on-the-fly teacher probabilities giving the same first loss as the precomputed column;
label-set errors listing both sets; ``xner distill`` through ``xner.cli.main``; and ``accelerate
launch -m training.distill`` in a subprocess.
"""

import os

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from transformers import AutoModelForTokenClassification, AutoTokenizer

from dataset_builders.schemes import CONLL, MASAKHANER
from model_cards.model_card import TrainingResults
from tests.accelerate_launch import run_accelerate_launch
from tests.fixtures.training import distill_args, results_of
from training import distill
from training.evaluation import align_label_sets, parse_type_map
from training.students import is_adapter, load_student
from xner import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = CONLL.label_names


STRATEGY_RUNS = {
    "soft-mse": ("--freeze_embeddings", "--freeze_layers", "1"),
    "soft-kl": ("--temperature", "2"),
    "hard": (),
    "hard-confident": ("--threshold", "0.15"),
    "multi-teacher": ("--teacher_weights", "1,3", "--soft_loss", "soft-kl"),
    "projected+kd": ("--alpha", "0.5", "--agree_only"),
}


@pytest.mark.parametrize("strategy", list(STRATEGY_RUNS))
def test_each_strategy_trains_a_full_student(models, projected, tmp_path, strategy):
    extra = ["--strategy", strategy, *STRATEGY_RUNS[strategy]]
    teachers = ("teacher", "teacher2") if strategy == "multi-teacher" else ("teacher",)
    if strategy == "projected+kd":
        extra += ["--dataset", projected]
    assert distill.main(distill_args(models, tmp_path, *extra, teachers=teachers)) == 0

    results = results_of(tmp_path)
    assert results["strategy"]["name"] == strategy and results["completed_steps"] == 3
    assert results["student"]["kind"] == "full" and results["student"]["saved_as"] == "model"
    assert 0 < results["student"]["trainable_parameters"] <= results["student"]["total_parameters"]
    assert results["teacher_probabilities"] == "precomputed"
    metrics = results["eval"]["xner-sample:train"]
    assert {"f1", "precision", "recall", "per_type"} <= set(metrics)
    assert [e["epoch"] for e in results["epochs"]] == [0] and "xner-sample:train" in results["epochs"][0]
    assert results["train_loss"]["first"] is not None and results["train_tokens_per_s"] > 0
    assert results["peak_rss_mb"] > 0 and results["wall_time_s"] > 0
    card = TrainingResults.load(str(tmp_path))  # what the model card reads from the run
    assert card.strategy == results["strategy"] and [e.name for e in card.evaluations] == ["xner-sample:train"]
    assert card.evaluations[0].metrics["f1"] == metrics["f1"] and card.adapter is None
    model = AutoModelForTokenClassification.from_pretrained(tmp_path)
    assert model.config.id2label == dict(enumerate(LABELS))

    if strategy == "soft-mse":  # embeddings and the lowest layer frozen
        assert results["student"]["trainable_parameters"] < results["student"]["total_parameters"] * 0.9
    if strategy == "multi-teacher":
        assert [t["weight"] for t in results["teachers"]] == [0.25, 0.75]
        assert results["strategy"]["weights"] == [1.0, 3.0] and results["strategy"]["soft_loss"] == "soft-kl"
    if strategy == "projected+kd":
        corpus_part, dataset_part = results["train_data"]
        assert corpus_part["dropped_columns"] == ["ner_tags"] and dataset_part["text_column"] == "translation_tokens"
        assert results["num_train_sentences"] == 18 + 10 and results["strategy"]["agree_only"] is True


def test_lora_student_saves_reloads_and_merges(models, tmp_path):
    out, merged = tmp_path / "lora", tmp_path / "merged"
    assert (
        distill.main(
            distill_args(
                models,
                out,
                "--strategy",
                "soft-kl",
                "--student",
                "lora",
                "--lora_r",
                "4",
                "--lora_alpha",
                "8",
                "--best_on",
                "xner-sample:train",
                "--num_train_epochs",
                "2",
                steps=4,
            )
        )
        == 0
    )
    results = results_of(out)
    assert results["student"]["kind"] == "lora" and results["student"]["saved_as"] == "adapter" and is_adapter(str(out))
    assert results["student"]["trainable_parameters"] < results["student"]["total_parameters"] / 2
    assert results["learning_rate"] == 1e-3 and results["best"]["eval_set"] == "xner-sample:train"
    assert TrainingResults.load(str(out)).adapter["r"] == 4

    student = load_student(str(out)).eval()
    assert student.get_base_model().config.id2label == dict(enumerate(LABELS))
    assert cli.main(["merge", str(out), str(merged)]) == 0
    plain = AutoModelForTokenClassification.from_pretrained(merged).eval()
    inputs = AutoTokenizer.from_pretrained(merged)(["Maria Okafor flew to Lagos ."], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(student(**inputs).logits, plain(**inputs).logits, atol=1e-5)
    assert results_of(merged)["merged_from"] == str(out)


def test_on_the_fly_gives_the_same_first_loss_as_precomputed(models, tmp_path):
    common = ("--strategy", "multi-teacher", "--teacher_weights", "1,3")
    teachers = ("teacher", "teacher2")
    assert distill.main(distill_args(models, tmp_path / "pre", *common, teachers=teachers, steps=2)) == 0
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    assert (
        distill.main(distill_args(models, tmp_path / "fly", *common, "--on_the_fly", teachers=teachers, steps=2)) == 0
    )
    pre, fly = results_of(tmp_path / "pre"), results_of(tmp_path / "fly")
    assert fly["teacher_probabilities"] == "on-the-fly"
    assert fly["train_loss"]["first"] == pytest.approx(pre["train_loss"]["first"], rel=1e-5)
    assert fly["train_loss"]["per_epoch"] == pytest.approx(pre["train_loss"]["per_epoch"], rel=1e-4)


def test_label_set_mismatches_are_errors_listing_both_sets(models, tmp_path):
    student_with_other_labels = {**models, "student": models["wrong"]}
    with pytest.raises(ValueError, match="must share a label set") as error:
        distill.main(distill_args(student_with_other_labels, tmp_path))
    assert str(LABELS) in str(error.value) and "['O', 'B-ORG', 'I-ORG']" in str(error.value)
    with pytest.raises(ValueError, match="must share a label set") as error:
        distill.main(distill_args(models, tmp_path, teachers=("teacher", "wrong")))
    assert "['O', 'B-ORG', 'I-ORG']" in str(error.value) and "B-MISC" in str(error.value)


def test_evaluation_schemes_must_be_mapped_explicitly():
    with pytest.raises(ValueError, match=r"only the model predicts: \['MISC'\].*only the test set has: \['DATE'\]"):
        align_label_sets(LABELS, MASAKHANER.label_names, {}, "student", "masakhaner2-hau", map_matching=True)
    # the comma form of --eval_type_map and the list form of --type_map parse into the same map
    assert parse_type_map("MISC=O,DATE=O") == parse_type_map(["MISC=O", "DATE=O"]) == {"MISC": None, "DATE": None}
    plan = align_label_sets(LABELS, MASAKHANER.label_names, parse_type_map("MISC=O,DATE=O"), map_matching=True)
    assert plan.map_references([["B-DATE", "I-DATE", "B-PER"]]) == [["O", "O", "B-PER"]]
    assert plan.map_predictions([["B-MISC", "I-MISC", "B-LOC"]]) == [["O", "O", "B-LOC"]]


def test_argument_errors_are_clear(models, projected, tmp_path):
    with pytest.raises(ValueError, match=r"strategy 'soft-mse' got unknown parameter\(s\) \['threshold'\]"):
        distill.main(distill_args(models, tmp_path, "--threshold", "0.9"))
    with pytest.raises(ValueError, match="projected\\+kd needs projected tags"):
        distill.main(distill_args(models, tmp_path, "--strategy", "projected+kd"))
    with pytest.raises(ValueError, match="--best_on 'nope' is not one of the --eval sets"):
        distill.main(distill_args(models, tmp_path, "--best_on", "nope"))
    with pytest.raises(ValueError, match="unknown corpus .no-such-corpus"):
        distill.main(distill_args(models, tmp_path, "--eval", "no-such-corpus@es"))


def test_xner_distill_runs_through_the_cli(models, tmp_path):
    assert cli.main(["distill", *distill_args(models, tmp_path, "--strategy", "hard", steps=1)]) == 0
    assert results_of(tmp_path)["completed_steps"] == 1


def test_accelerate_launch_runs_the_distillation(models, tmp_path):
    out = tmp_path / "launched"
    run_accelerate_launch("training.distill", distill_args(models, out, "--strategy", "soft-kl", steps=2), tmp_path)
    results = results_of(out)
    assert results["completed_steps"] == 2 and results["num_processes"] == 1
    assert AutoModelForTokenClassification.from_pretrained(out).config.num_labels == len(LABELS)
