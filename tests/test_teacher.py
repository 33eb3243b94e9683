"""The teacher and the shared training loop on a tiny local BERT and the built-in xner sample corpus.

Covers: a few-step run that saves a reloadable model with id2label; resume equality (interrupted
then resumed == uninterrupted, bit for bit on CPU) through the loop and through the CLI; a
non-finite loss stopping the run with a clear error while the last checkpoint stays usable;
trackers; and ``accelerate launch -m training.teacher`` in a subprocess.
"""

import argparse
import json
import os

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.tracking import GeneralTracker
from accelerate.utils import set_seed
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification, AutoTokenizer

from dataset_builders import load_corpus
from tests.accelerate_launch import run_accelerate_launch
from tests.fixtures.training import teacher_args
from training import teacher
from training.collate import TokenCollator, build_dataloader
from training.features import TokenAligner, tokenize_dataset
from training.loop import EvalSet, LoopConfig, NerEvaluator, NonFiniteLossError, make_accelerator, train
from training.teacher import token_cross_entropy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_few_steps_save_a_model_with_labels(encoder, dataset_dir, tmp_path):
    out = tmp_path / "teacher"
    assert (
        teacher.main(
            teacher_args(
                encoder, out, "--dataset", dataset_dir, "--num_train_epochs", "2", "--checkpointing_steps", "epoch"
            )
        )
        == 0
    )
    names = load_corpus("xner-sample")["train"].features["ner_tags"].feature.names
    model = AutoModelForTokenClassification.from_pretrained(out)
    assert model.config.id2label == dict(enumerate(names)) and model.config.label2id == {
        n: i for i, n in enumerate(names)
    }
    assert AutoTokenizer.from_pretrained(out).is_fast
    results = json.loads((out / "results.json").read_text())
    assert [e["epoch"] for e in results["epochs"]] == [0, 1] and results["completed_steps"] == 10
    assert {"validation", "test"} <= set(results["epochs"][0]) and "f1" in results["epochs"][1]["test"]
    assert results["best"]["epoch"] in (0, 1) and results["train_tokens_per_s"] > 0
    assert sorted(os.listdir(out / "checkpoints")) == ["epoch_0", "epoch_1"]


def test_freeze_embeddings_keeps_them_and_trains_the_rest(encoder, dataset_dir, tmp_path):
    """``--freeze_embeddings`` (as distill's): the saved embeddings are the encoder's, the layers moved."""
    out = tmp_path / "teacher"
    assert (
        teacher.main(
            teacher_args(encoder, out, "--dataset", dataset_dir, "--max_train_steps", "3", "--freeze_embeddings")
        )
        == 0
    )
    before = AutoModelForTokenClassification.from_pretrained(encoder).state_dict()
    after = AutoModelForTokenClassification.from_pretrained(out).state_dict()
    assert torch.equal(
        before["bert.embeddings.word_embeddings.weight"], after["bert.embeddings.word_embeddings.weight"]
    )
    assert torch.equal(before["bert.embeddings.LayerNorm.weight"], after["bert.embeddings.LayerNorm.weight"])
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(before[query], after[query])
    assert json.loads((out / "results.json").read_text())["args"]["freeze_embeddings"] is True


def test_head_learning_rate_gives_the_classifier_its_own_rate(encoder, tmp_path):
    from peft import LoraConfig, get_peft_model

    from training.loop import default_optimizer

    model = AutoModelForTokenClassification.from_pretrained(encoder, num_labels=5)

    def rates(model, **config):
        optimizer = default_optimizer(model, LoopConfig(output_dir=str(tmp_path), learning_rate=1e-4, **config))
        names = {id(p): n for n, p in model.named_parameters()}
        return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}

    plain = rates(model, weight_decay=0.01)
    assert {lr for lr, _ in plain.values()} == {1e-4}
    split = rates(model, head_learning_rate=3e-3, weight_decay=0.01)
    assert split.keys() == plain.keys()  # every trainable parameter, once
    assert split["classifier.weight"] == (3e-3, 0.01) and split["classifier.bias"] == (3e-3, 0.0)
    assert all(lr == 1e-4 for name, (lr, _) in split.items() if not name.startswith("classifier."))
    # A LoRA student's head is trained through peft's modules_to_save copy: it gets the head's rate too.
    lora = get_peft_model(model, LoraConfig(target_modules=["query", "value"], modules_to_save=["classifier"]))
    adapter = rates(lora, head_learning_rate=3e-3)
    heads = {name for name, (lr, _) in adapter.items() if lr == 3e-3}
    assert heads and all("classifier.modules_to_save" in name for name in heads)
    assert any("lora_A" in name and lr == 1e-4 for name, (lr, _) in adapter.items())


def loop_setup(encoder, sample, output_dir, accelerator=None, **config):
    """A tiny classifier, length-grouped batches of 2 and a dev evaluator, seeded like a fresh process."""
    names = sample.features["ner_tags"].feature.names
    config = LoopConfig(output_dir=str(output_dir), learning_rate=1e-3, **config)
    accelerator = accelerator or make_accelerator(config)
    set_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    collator = TokenCollator(tokenizer.pad_token_id)
    features = tokenize_dataset(sample, TokenAligner(tokenizer, label_names=names))
    dev = sample.select(range(6))
    evaluator = NerEvaluator(
        accelerator,
        {"validation": EvalSet(features.select(range(6)), [[names[t] for t in tags] for tags in dev["ner_tags"]])},
        dict(enumerate(names)),
        batch_size=4,
        collator=collator,
    )
    loader = build_dataloader(features, 2, collator, shuffle=True, seed=0)
    return model, loader, config, accelerator, evaluator


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(encoder, sample, tmp_path):
    # 9 batches of 2 per epoch, 2 micro-batches per step: steps end mid-epoch and at the odd last batch.
    settings = dict(num_train_epochs=2, gradient_accumulation_steps=2, checkpointing_steps=3)
    model, loader, config, accelerator, evaluator = loop_setup(encoder, sample, tmp_path / "straight", **settings)
    straight = train(model, loader, token_cross_entropy, config, accelerator, evaluate=evaluator)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    assert straight.completed_steps == 10

    calls = []

    def crashing_loss(outputs, batch):
        calls.append(1)
        if len(calls) == 13:  # epoch 1, batch 4: inside step 7, after the step-6 checkpoint
            raise KeyboardInterrupt("simulated crash")
        return token_cross_entropy(outputs, batch)

    model, loader, config, accelerator, evaluator = loop_setup(encoder, sample, tmp_path / "crashed", **settings)
    with pytest.raises(KeyboardInterrupt):
        train(model, loader, crashing_loss, config, accelerator, evaluate=evaluator)
    assert sorted(os.listdir(tmp_path / "crashed" / "checkpoints")) == ["step_3", "step_6"]

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    model, loader, config, accelerator, evaluator = loop_setup(
        encoder, sample, tmp_path / "crashed", resume_from_checkpoint="latest", **settings
    )
    resumed = train(model, loader, token_cross_entropy, config, accelerator, evaluate=evaluator)
    assert resumed.completed_steps == 10
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert resumed.history == straight.history  # same dev metrics at each epoch end


def test_teacher_cli_resume_matches_uninterrupted_run(encoder, tmp_path):
    # No dev split in the built-in sample: the final model is what gets saved.
    common = ["--corpus", "xner-sample", "--max_train_steps", "7", "--checkpointing_steps", "3"]
    assert teacher.main(teacher_args(encoder, tmp_path / "a", *common)) == 0
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    step_3 = str(tmp_path / "a" / "checkpoints" / "step_3")
    assert teacher.main(teacher_args(encoder, tmp_path / "b", *common, "--resume_from_checkpoint", step_3)) == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["completed_steps"] == 7 and results["best"]["value"] is None


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(encoder, sample, tmp_path):
    calls = []

    def nan_at_step_3(outputs, batch):
        calls.append(1)
        loss = token_cross_entropy(outputs, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    model, loader, config, accelerator, evaluator = loop_setup(
        encoder, sample, tmp_path, checkpointing_steps=2, num_train_epochs=1
    )
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(nan\) at step 3 .*step_2") as error:
        train(model, loader, nan_at_step_3, config, accelerator, evaluate=evaluator)
    assert error.value.step == 3 and error.value.last_checkpoint.endswith("step_2")
    assert os.listdir(tmp_path / "checkpoints") == ["step_2"]
    assert all(
        torch.isfinite(t).all() for t in load_file(tmp_path / "checkpoints" / "step_2" / "model.safetensors").values()
    )

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    model, loader, config, accelerator, evaluator = loop_setup(
        encoder,
        sample,
        tmp_path,
        checkpointing_steps=2,
        num_train_epochs=1,
        resume_from_checkpoint=error.value.last_checkpoint,
    )
    state = train(model, loader, token_cross_entropy, config, accelerator, evaluate=evaluator)
    assert (
        state.completed_steps == 9
        and AutoModelForTokenClassification.from_pretrained(tmp_path).config.id2label[1] == "B-PER"
    )


class RecordingTracker(GeneralTracker):
    name = "recording"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.config, self.logged = None, []

    @property
    def tracker(self):
        return self

    def store_init_configuration(self, values):
        self.config = values

    def log(self, values, step=None, **kwargs):
        self.logged.append((step, values))


def test_trackers_receive_config_losses_and_dev_metrics(encoder, sample, tmp_path):
    tracker = RecordingTracker()
    model, loader, config, accelerator, evaluator = loop_setup(
        encoder, sample, tmp_path, Accelerator(log_with=[tracker]), with_tracking=True, max_train_steps=3
    )
    train(model, loader, token_cross_entropy, config, accelerator, evaluate=evaluator, hparams={"seed": 0})
    assert tracker.config["learning_rate"] == 1e-3 and tracker.config["seed"] == 0
    assert [step for step, values in tracker.logged if "train_loss" in values] == [1, 2, 3]
    assert any("validation_f1" in values for _, values in tracker.logged)


def test_data_errors_are_clear(encoder, dataset_dir, tmp_path):
    with pytest.raises(ValueError, match="exactly one of --corpus"):
        teacher.main(teacher_args(encoder, tmp_path, "--corpus", "xner-sample", "--dataset", dataset_dir))
    with pytest.raises(ValueError, match="tag column 'projected_tags' not in the dataset"):
        teacher.main(teacher_args(encoder, tmp_path, "--dataset", dataset_dir, "--tag-column", "projected_tags"))


def test_register_adds_the_same_arguments_to_a_cli():
    parser = argparse.ArgumentParser(prog="xner")
    teacher.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "train-teacher",
            "--corpus",
            "conll2003",
            "--model_name_or_path",
            "m",
            "--output_dir",
            "o",
            "--gradient_accumulation_steps",
            "4",
            "--data-dir",
            "d",
            "--label_all_tokens",
        ]
    )
    assert (
        args.func is teacher.run
        and args.gradient_accumulation_steps == 4
        and args.data_dir == "d"
        and args.label_all_tokens
    )


def test_accelerate_launch_runs_the_teacher(encoder, dataset_dir, tmp_path):
    out = tmp_path / "launched"
    run_accelerate_launch(
        "training.teacher", teacher_args(encoder, out, "--dataset", dataset_dir, "--max_train_steps", "3"), tmp_path
    )
    results = json.loads((out / "results.json").read_text())
    assert results["completed_steps"] == 3 and results["num_processes"] == 1
    assert AutoModelForTokenClassification.from_pretrained(out).config.num_labels == len(results["label_names"])


def test_translate_train_data_trains_on_the_translated_words():
    """projected_tags belong to translation_tokens after translate-train: those words become tokens."""
    import datasets as hf_datasets

    from training.teacher import words_as_tokens

    split = hf_datasets.Dataset.from_dict(
        {
            "tokens": [["John", "lives", "in", "New", "York"]],
            "translation_tokens": [["John", "vive", "en", "Nueva", "York", "."]],
            "projected_tags": [[1, 0, 0, 5, 6, 0]],
        }
    )
    data = hf_datasets.DatasetDict({"train": split})
    converted = words_as_tokens(data, "auto", "projected_tags")["train"]
    assert converted["tokens"] == [["John", "vive", "en", "Nueva", "York", "."]]
    assert "translation_tokens" not in converted.column_names
    assert words_as_tokens(data, "auto", "ner_tags") is data  # plain corpora are left alone
    with pytest.raises(ValueError, match="not in the dataset"):
        words_as_tokens(data, "words", "projected_tags")
