"""Issue 15's strategy zoo wired into ``training.distill``: denoising, language-agnostic selection, voting
statistics, self-training rounds and honest model selection, each a few steps on tiny models.

Unit level: the representations of the inference core against a direct forward pass; the
``kd_weight`` word column reaching the student's head sub-tokens; relabelling folded into
``teacher_probs``; the voting statistics of the loss recorder; the model-selection rule as distill
applies it. End to end: one ``training.distill.main`` run per option, one through ``xner distill
--help``, one through ``accelerate launch``.
"""

from __future__ import annotations

import os
import shutil

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoModelForTokenClassification

from dataset_builders.errors import UserError
from dataset_builders.schemes import CONLL
from model_cards.model_card import StudentCardData, render_model_card
from tests.accelerate_launch import run_accelerate_launch
from tests.fixtures.training import distill_args, results_of
from training import distill
from training.arguments import DataArguments, EvaluationArguments
from training.denoise import DENOISED_TAGS, KD_WEIGHT, apply_relabels
from training.inference import WordTagger, load_tokenizer, sentence_vectors
from training.results import RunResults
from training.self_training import teacher_probs_cache_dir, teacher_probs_cache_file
from training.strategies import Voting
from training.teacher_probs import (
    TEACHER_PROBS,
    TEACHER_TAGS,
    TeacherProbabilities,
    add_teacher_probs,
    head_confidences,
    student_features,
)
from xner import cli

LABELS = CONLL.label_names  # the teachers' labels (the ``models`` fixture)


# ----------------------------------------------------------------------------------------- unit level


def test_word_representations_are_the_last_hidden_state_at_each_word_head(models):
    tagger = WordTagger.from_pretrained(models["teacher"])
    sentences = [["Peter", "lives", "in", "Berlin"], ["EU"], []]
    vectors = tagger.word_representations(sentences)
    assert [v.shape[0] for v in vectors] == [4, 1, 0]
    encoded = tagger.tokenizer(sentences[0], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        hidden = tagger.model(**encoded, output_hidden_states=True).hidden_states[-1][0]
    heads = [encoded.word_ids().index(w) for w in range(4)]
    np.testing.assert_allclose(vectors[0], hidden[heads].numpy(), atol=1e-5)
    pooled = sentence_vectors(vectors)
    assert pooled.shape == (3, vectors[0].shape[1])
    np.testing.assert_allclose(pooled[0], vectors[0].mean(0), atol=1e-6)
    assert not pooled[2].any()  # an empty sentence: zeros


def test_kd_weight_reaches_the_head_sub_tokens(models):
    tagger = WordTagger.from_pretrained(models["teacher"])
    probs = [[[0.9] + [0.1 / 8] * 8, [0.1 / 8] * 8 + [0.9]]]
    data = datasets.Dataset.from_dict(
        {"tokens": [["Wolfgang", "x"]], TEACHER_PROBS: probs, TEACHER_TAGS: [[0, 8]], KD_WEIGHT: [[0.25, 0.75]]},
        features=datasets.Features(
            {
                "tokens": datasets.List(datasets.Value("string")),
                TEACHER_PROBS: datasets.List(datasets.List(datasets.Value("float32"))),
                TEACHER_TAGS: datasets.List(datasets.ClassLabel(names=LABELS)),
                KD_WEIGHT: datasets.List(datasets.Value("float32")),
            }
        ),
    )
    row = student_features(data, tagger.tokenizer, LABELS, word_columns={KD_WEIGHT: 0.0})[0]
    heads = [i for i, h in enumerate(row["word_heads"]) if h]
    assert [row[KD_WEIGHT][i] for i in heads] == pytest.approx([0.25, 0.75])
    assert sum(row[KD_WEIGHT]) == pytest.approx(1.0)  # every other sub-token: 0


def test_relabelling_replaces_only_the_changed_words_with_one_hot_rows():
    batch = {TEACHER_PROBS: [[[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]], DENOISED_TAGS: [[1, 1]]}
    out = apply_relabels(batch)
    np.testing.assert_allclose(out[TEACHER_PROBS][0], [[0.0, 1.0, 0.0], [0.2, 0.7, 0.1]], atol=1e-6)
    assert out[TEACHER_TAGS] == [[1, 1]]


class _OneProcess:
    num_processes = 1
    device = torch.device("cpu")


def test_voting_statistics_per_epoch_are_counted_then_reset():
    recorder = distill.LossRecorder(Voting())
    teacher = torch.tensor([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]])
    batch = {
        "teacher_probs": teacher,
        "kd_mask": torch.tensor([[True, True, True, False]]),
        "labels": torch.tensor([[0, 0, -100, 1]]),
    }
    recorder(type("Out", (), {"logits": torch.zeros(1, 4, 2, requires_grad=True)})(), batch)
    stats = recorder.epoch_statistics(_OneProcess())
    # three first sub-tokens, two with a projected tag, one of which agrees with the teacher argmax
    assert (stats["tokens"], stats["projected"], stats["agree"]) == (3, 2, 1)
    assert stats["disagreement_rate"] == pytest.approx(0.5)
    assert recorder.epoch_statistics(_OneProcess())["tokens"] == 0


def test_model_selection_adds_the_chosen_dev_set_and_refuses_gold_target_dev():
    data = DataArguments(corpus="xner-sample", lang="es")
    specs, best_on, record = distill.model_selection(
        EvaluationArguments(eval=["x:test"], selection="source-dev", source_dev="xner-sample:train"), data
    )
    assert specs == ["x:test", "xner-sample:train"] and best_on == "xner-sample:train"
    assert record["selection"] == "source-dev" and record["gold_target_dev_used"] is False
    _, _, default = distill.model_selection(EvaluationArguments(source_dev="a:dev", translate_train_dev="/p"), data)
    assert default["selection"] == "translate-train-dev"
    with pytest.raises(UserError, match="target-dev"):
        distill.model_selection(EvaluationArguments(selection="target-dev", target_dev="xner-sample:train"), data)
    with pytest.raises(UserError, match="not both"):
        distill.model_selection(EvaluationArguments(best_on="a", selection="source-dev", source_dev="a:dev"), data)
    assert distill.model_selection(EvaluationArguments(), data)[2]["selection"] is None


# ------------------------------------------------------------------------------------------ end to end


def test_denoise_reweight_and_voting_record_their_summaries(models, projected, tmp_path):
    args = distill_args(
        models,
        tmp_path,
        "--strategy",
        "voting",
        "--dataset",
        projected,
        "--denoise",
        "reweight",
        "--denoise_k",
        "3",
        steps=2,
    )
    assert distill.main(args) == 0
    results = results_of(tmp_path)
    summaries = results["data"]["denoising"]
    assert [s["part"] for s in summaries] == ["xner-sample", "es"] and summaries[0]["k"] == 3
    assert all(0.0 <= s["mean_weight"] <= 1.0 for s in summaries)
    statistics = results["train_loss"]["strategy_statistics"][0]
    assert 0 < statistics["projected"] <= statistics["tokens"] and 0.0 <= statistics["disagreement_rate"] <= 1.0
    assert results["epochs"][0]["train"]["strategy_disagreement_rate"] == statistics["disagreement_rate"]


def test_denoise_relabel_and_language_agnostic_selection(models, tmp_path):
    args = distill_args(
        models,
        tmp_path,
        "--strategy",
        "hard",
        "--denoise",
        "relabel",
        "--denoise_threshold",
        "0.9",
        "--select_language_agnostic",
        "0.5",
        "--selection_source",
        "xner-sample:train",
        steps=1,
    )
    assert distill.main(args) == 0
    results = results_of(tmp_path)
    (report,) = results["data"]["language_agnostic_selection"]
    assert (report["kept"], report["total"]) == (9, 18) and results["num_train_sentences"] == 9
    assert results["train_data"][0]["selected_from"] == 18
    (summary,) = results["data"]["denoising"]
    assert summary["mode"] == "relabel" and summary["tokens"] > 0
    card = render_model_card(StudentCardData.from_training(str(tmp_path), examples_from_data=False))
    assert "- **Pseudo-label steps:**" in card
    assert "Language-agnostic selection (AdvPicker): kept 9 of 18 xner-sample sentences" in card
    assert f"(CoLaDa, relabel, k=10) on xner-sample: {summary['tokens']} words" in card
    assert f"{summary['relabelled']} relabelled." in card and "Ma et al. (2023), CoLaDa" in card
    rates = RunResults.read(str(tmp_path)).pseudo_label_rates()  # what the experiment harness records
    assert rates["sentences_kept"] == pytest.approx(0.5)
    assert rates["relabelled"] == pytest.approx(summary["relabelled"] / summary["tokens"])
    assert rates["denoise_mean_weight"] == pytest.approx(summary["mean_weight"])


def test_hard_confident_keep_per_class_fits_thresholds_on_the_corpus(models, tmp_path):
    args = distill_args(models, tmp_path, "--strategy", "hard-confident", "--keep_per_class", "0.5", steps=2)
    assert distill.main(args) == 0
    results = results_of(tmp_path)
    fitted = results["data"]["class_balanced_selection"]
    assert fitted["keep_per_class"] == 0.5 and list(fitted["thresholds"]) == list(LABELS)
    # at least half of the words of each predicted label reach its threshold (ties keep more)
    assert fitted["words"] > 0 and fitted["words"] / 2 <= fitted["kept"] <= fitted["words"]
    statistics = results["train_loss"]["strategy_statistics"][0]
    assert 0 < statistics["kept"] <= statistics["tokens"]
    assert statistics["kept_rate"] == pytest.approx(statistics["kept"] / statistics["tokens"])
    card = render_model_card(StudentCardData.from_training(str(tmp_path), examples_from_data=False))
    assert f"label's words): O {fitted['thresholds']['O']:.2f}" in card
    assert f"{fitted['kept']} of {fitted['words']} words kept." in card and "Zou et al. (2018)" in card
    rates = RunResults.read(str(tmp_path)).pseudo_label_rates()
    assert rates == pytest.approx(
        {"words_kept": fitted["kept"] / fitted["words"], "kept_rate": statistics["kept_rate"]}
    )


def test_head_confidences_read_the_word_heads_of_the_features(models):
    words = datasets.Dataset.from_dict({"tokens": [["Maria", "vive", "en", "Madrid"], ["Hola"]]})
    teacher = TeacherProbabilities(models["teacher"])
    with_probs = add_teacher_probs(words, [teacher], [1.0])
    features = student_features(with_probs, load_tokenizer(models["teacher"]), LABELS, max_length=8)
    confidence, predicted = head_confidences(features)
    rows = np.array([p for sentence in with_probs[TEACHER_PROBS] for p in sentence])  # one row per word
    np.testing.assert_allclose(confidence, rows.max(-1), rtol=1e-6)
    np.testing.assert_array_equal(predicted, rows.argmax(-1))


def test_self_training_rounds_chain_students_as_teachers(models, tmp_path, monkeypatch):
    teacher = shutil.copytree(models["teacher"], tmp_path / "teacher")  # retrained in place at the end
    out = tmp_path / "run"
    args = distill_args(
        {**models, "teacher": str(teacher)},
        out,
        "--strategy",
        "hard-confident",
        "--self_training_rounds",
        "2",
        "--self_training_threshold_start",
        "0.2",
        "--self_training_threshold_end",
        "0.1",
        steps=1,
    )
    sentences = []  # every sentence a teacher runs on
    word_probabilities = TeacherProbabilities.word_probabilities
    monkeypatch.setattr(
        TeacherProbabilities,
        "word_probabilities",
        lambda self, batch: sentences.extend(batch) or word_probabilities(self, batch),
    )
    assert distill.main(args) == 0
    round0 = os.path.join(out, "rounds", "round-0")
    assert os.path.isfile(os.path.join(round0, "results.json"))
    results = results_of(out)
    lineage = results["student"]["self_training"]
    (first,) = lineage["previous_rounds"]
    assert first["threshold"] == pytest.approx(0.2) and lineage["round"]["threshold"] == pytest.approx(0.1)
    assert results["strategy"]["threshold"] == pytest.approx(0.1)
    assert [t["model"] for t in results["teachers"]] == [round0]
    card = render_model_card(StudentCardData.from_training(str(out), examples_from_data=False))
    assert "Self-training: round 2 of 2, taught by the previous round's student." in card
    keys = [first["cache_key"], lineage["round"]["cache_key"]]
    assert keys[0] != keys[1]
    assert len(sentences) == 2 * results["num_train_sentences"]  # each round's teacher on the whole corpus

    # one cached column per round, in the run's hidden cache folder (later maps of the column cache next to it)
    cache = teacher_probs_cache_dir(str(out))

    def columns():
        return {os.path.join(cache, n) for n in os.listdir(cache) if n.startswith("teacher-probs-")}

    files = {teacher_probs_cache_file(cache, key, "0-xner-sample") for key in keys}
    assert columns() == files
    written = {f: os.stat(f).st_mtime_ns for f in files}

    # the same run again in the same folder: both rounds' columns come from the cache, no teacher runs
    # (the round-0 student comes out byte for byte the same, so round 1's key is unchanged too)
    sentences.clear()
    assert distill.main(args) == 0
    again = results_of(out)["student"]["self_training"]
    assert [again["previous_rounds"][0]["cache_key"], again["round"]["cache_key"]] == keys
    assert sentences == [] and {f: os.stat(f).st_mtime_ns for f in files} == written
    assert columns() == files

    # the initial teacher retrained into the same folder: new keys, the teachers run again, nothing stale read
    retrained = AutoModelForTokenClassification.from_pretrained(teacher)
    with torch.no_grad():
        retrained.classifier.bias.add_(torch.linspace(-1.0, 1.0, retrained.classifier.bias.numel()))
    retrained.save_pretrained(teacher)
    assert distill.main(args) == 0
    fresh = results_of(out)["student"]["self_training"]
    fresh_keys = [fresh["previous_rounds"][0]["cache_key"], fresh["round"]["cache_key"]]
    assert not set(fresh_keys) & set(keys)
    assert len(sentences) == 2 * results["num_train_sentences"]
    assert {f: os.stat(f).st_mtime_ns for f in files} == written  # the old columns are left, not reused
    assert columns() == files | {teacher_probs_cache_file(cache, key, "0-xner-sample") for key in fresh_keys}


def test_selection_protocol_is_recorded_and_picks_the_checkpoint(models, tmp_path):
    args = distill_args(
        models,
        tmp_path,
        "--strategy",
        "hard",
        "--selection",
        "source-dev",
        "--source_dev",
        "xner-sample:train",
        steps=1,
    )
    assert distill.main(args) == 0
    best = results_of(tmp_path)["best"]
    assert best["eval_set"] == "xner-sample:train" and best["selection"]["selection"] == "source-dev"
    card = render_model_card(StudentCardData.from_training(str(tmp_path), examples_from_data=False))
    assert "picked by the `source-dev` protocol." in card


def test_projection_output_is_taken_as_the_translate_train_dev_set(models, projected, tmp_path):
    # `projected` is `xner project`'s translate-train layout (projected tags on translation_tokens)
    args = distill_args(
        models,
        tmp_path,
        "--strategy",
        "hard",
        "--selection",
        "translate-train-dev",
        "--translate_train_dev",
        projected,
        steps=1,
    )
    assert distill.main(args) == 0
    results = results_of(tmp_path)
    best = results["best"]
    assert best["selection"]["selection"] == "translate-train-dev" and best["selection"]["dev_set"]["gold"] is False
    assert best["eval_set"] == "es"
    # every projected row is scored, on the translation's words
    assert results["eval_sets"]["es"]["num_sentences"] == 10 and 0.0 <= results["eval"]["es"]["f1"] <= 1.0


@pytest.mark.parametrize("entry", ["xner distill", "python -m training.distill"])
def test_the_new_options_are_offered_by_both_helps(capsys, entry):
    with pytest.raises(SystemExit):
        cli.main(["distill", "--help"]) if entry == "xner distill" else distill.main(["--help"])
    text = capsys.readouterr().out
    for flag in (
        "--denoise",
        "--denoise_k",
        "--denoise_threshold",
        "--select_language_agnostic",
        "--selection_source",
        "--self_training_rounds",
        "--self_training_threshold_start",
        "--keep_per_class",
        "--selection",
        "--allow_target_dev",
        "--source_dev",
        "--translate_train_dev",
        "--target_dev",
        "voting",
    ):
        assert flag in text


def test_accelerate_launch_runs_voting_with_denoising_and_selection(models, projected, tmp_path):
    out = tmp_path / "launched"
    args = distill_args(
        models,
        out,
        "--strategy",
        "voting",
        "--dataset",
        projected,
        "--denoise",
        "reweight",
        "--selection",
        "source-dev",
        "--source_dev",
        "xner-sample:train",
        steps=1,
    )
    run_accelerate_launch("training.distill", args, tmp_path)
    results = results_of(out)
    assert results["best"]["selection"]["selection"] == "source-dev" and results["data"]["denoising"]
    assert results["train_loss"]["strategy_statistics"][0]["tokens"] > 0


# ------------------------------------------------------------------------------------ experiment files


@pytest.mark.parametrize("name", ["offline-europe", "paper-gpu"])
def test_configs_offer_voting_and_the_both_direction_ensemble(name):
    from xner.experiments.config import load_experiment

    experiment = load_experiment(os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", f"{name}.yaml"))
    ensemble = experiment.strategies["ensemble-both-directions"]
    assert ensemble.strategy == "multi-teacher" and len(ensemble.args["teacher_weights"]) == 3
    assert [experiment.teachers[t].kind for t in ensemble.teachers] == [
        "model-transfer",
        "translate-train",
        "translate-test",
    ]
    assert experiment.strategies["voting"].projected == "tt"
    for strategy in ("soft-kl-denoised", "hard-relabelled", "soft-kl-agnostic", "self-training"):
        assert strategy in experiment.strategies


def test_voting_without_projected_data_is_a_config_error(tmp_path):
    from tests.test_experiments import tiny_config
    from xner.experiments.config import ConfigError, parse_experiment

    raw = tiny_config("org/encoder", tmp_path / "out", tmp_path / "data")
    raw["strategies"]["vote"] = {"strategy": "voting", "teachers": [next(iter(raw["teachers"]))]}
    with pytest.raises(ConfigError, match="strategies.vote.projected: voting needs"):
        parse_experiment(raw)
