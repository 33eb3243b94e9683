"""Students on a tiny local BERT: LoRA trainable parameters, save/reload, merge, freezing, label sets."""

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForTokenClassification, AutoTokenizer

from tests.tiny_models import build_tiny_bert, build_tiny_xlmr
from training.students import (
    LoraSettings,
    build_student,
    encoder_layers,
    freeze,
    load_student,
    lora_target_modules,
    merge_adapter,
    save_student,
)
from training.teacher_probs import check_label_sets

TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris on Monday .",
    "The United Nations opened an office in Nairobi .",
    "Barack Obama visited Madrid and Lisbon last year .",
]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_tiny_bert(str(tmp_path_factory.mktemp("tiny_bert")), TEXTS)


@pytest.fixture(scope="module")
def inputs(encoder_dir):
    return AutoTokenizer.from_pretrained(encoder_dir)(TEXTS[:2], padding=True, return_tensors="pt")


def lora_student(encoder_dir, **kwargs):
    model = build_student(encoder_dir, LABELS, lora=LoraSettings(r=4, lora_alpha=8), **kwargs)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero: give the adapter an effect worth saving
        for name, parameter in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model.eval()


def logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


def trainable(model):
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def test_full_student_trains_everything_with_the_teacher_labels(encoder_dir):
    model = build_student(encoder_dir, LABELS)
    assert model.config.id2label == dict(enumerate(LABELS))
    assert len(trainable(model)) == len(list(model.parameters()))


def test_lora_student_trains_only_adapters_and_the_classifier(encoder_dir):
    names = trainable(lora_student(encoder_dir))
    assert {n for n in names if "lora_" not in n} == {
        "base_model.model.classifier.modules_to_save.default.weight",
        "base_model.model.classifier.modules_to_save.default.bias",
    }
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[1] for n in names if "lora_" in n}
    assert adapted == {"query", "value"}


def test_lora_save_and_reload_gives_identical_logits(encoder_dir, inputs, tmp_path):
    model = lora_student(encoder_dir)
    save_student(model, str(tmp_path), AutoTokenizer.from_pretrained(encoder_dir))
    reloaded = load_student(str(tmp_path)).eval()
    assert isinstance(reloaded, PeftModel)
    assert reloaded.config.id2label == dict(enumerate(LABELS))
    assert torch.equal(logits(reloaded, inputs), logits(model, inputs))


def test_merge_gives_a_plain_model_with_the_same_logits(encoder_dir, inputs, tmp_path):
    model = lora_student(encoder_dir)
    save_student(model, str(tmp_path / "adapter"))  # no tokenizer: the base model's is used
    merged_dir = merge_adapter(str(tmp_path / "adapter"), str(tmp_path / "merged"))
    merged = AutoModelForTokenClassification.from_pretrained(merged_dir).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert merged.config.id2label == dict(enumerate(LABELS))
    assert torch.allclose(logits(merged, inputs), logits(model, inputs), atol=1e-5)
    assert AutoTokenizer.from_pretrained(merged_dir).tokenize("Paris") == AutoTokenizer.from_pretrained(
        encoder_dir
    ).tokenize("Paris")
    assert not isinstance(load_student(merged_dir), PeftModel)


def test_freezing_embeddings_and_lowest_layer(encoder_dir):
    model = build_student(encoder_dir, LABELS, freeze_embeddings=True, freeze_layers=1)
    frozen = {name for name, parameter in model.named_parameters() if not parameter.requires_grad}
    assert frozen and all(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in frozen)
    assert {f"bert.embeddings.{n}" for n, _ in model.bert.embeddings.named_parameters()} <= frozen
    assert {f"bert.encoder.layer.0.{n}" for n, _ in model.bert.encoder.layer[0].named_parameters()} <= frozen
    assert all(p.requires_grad for p in model.bert.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())


def test_freezing_a_lora_student_freezes_its_adapters_too(encoder_dir):
    names = trainable(lora_student(encoder_dir, freeze_layers=1))
    assert names and not any(".layer.0." in n for n in names)
    assert any(".layer.1." in n for n in names)
    with pytest.raises(ValueError, match="cannot freeze 3 layers: the encoder has 2"):
        freeze(build_student(encoder_dir, LABELS), lowest_layers=3)


def test_layers_are_found_generically(tmp_path):
    xlmr = build_tiny_xlmr(str(tmp_path), TEXTS, id2label=dict(enumerate(LABELS)))
    model = AutoModelForTokenClassification.from_pretrained(xlmr)
    assert encoder_layers(model) is model.roberta.encoder.layer


def test_target_modules_per_architecture():
    assert lora_target_modules("bert") == ["query", "value"]
    assert lora_target_modules("xlm-roberta") == ["query", "value"]
    assert lora_target_modules("deberta-v2") == ["query_proj", "value_proj"]
    assert lora_target_modules("t5") == ["q", "v"]  # peft's own default mapping
    with pytest.raises(ValueError, match="pass target_modules"):
        lora_target_modules("no-such-architecture")


def test_label_set_mismatch_lists_both_sets(encoder_dir, tmp_path):
    other = ["O", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    with pytest.raises(ValueError) as error:
        check_label_sets(LABELS, other)
    message = str(error.value)
    assert str(LABELS) in message and str(other) in message
    assert "only in teacher: ['B-PER', 'I-PER']; only in student: ['B-ORG', 'I-ORG']" in message
    tagger = build_tiny_bert(str(tmp_path), TEXTS, id2label=dict(enumerate(other)))
    with pytest.raises(ValueError, match="must share a label set") as error:
        build_student(tagger, LABELS)
    assert str(LABELS) in str(error.value) and str(other) in str(error.value)


def test_same_labels_in_another_order_give_the_column_permutation():
    student = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert check_label_sets(LABELS, student) == [0, 3, 4, 1, 2]
