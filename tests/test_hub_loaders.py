"""Every published model loads the standard ways, with no extra argument, on a machine that did not train it.

Each model kind (teacher, full student, LoRA student, merged student) is trained-as-saved on a
"training machine" (a temporary folder holding the tiny base model too), published to the test Hub
server (``tests/hub_server.py``), and then the training machine disappears: the folder is moved away
and downloads go to a fresh cache. The base model is on the server under its Hub id, as a real base is.
Each model is then loaded with ``pipeline``, ``AutoModelForTokenClassification``, (adapters)
``AutoPeftModelForTokenClassification`` and ``PeftModel`` over the base, ``xner predict`` and the card's
usage snippets run verbatim, and must compute what the model computed on the training machine. No
uploaded file may name a path of the training machine.
"""

import json
import os
import re

import pytest
import torch
from huggingface_hub import HfApi, constants
from peft import AutoPeftModelForTokenClassification, PeftModel
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from dataset_builders.errors import UserError
from model_cards.base_models import hub_id_of
from model_cards.predict import predict
from model_cards.publish import publish_model
from tests.fixtures.hub import STUDENT_LABELS, TEXTS, TOKEN, training_results
from tests.tiny_models import build_tiny_bert
from training.distill import merge_student
from training.students import LoraSettings, build_student, load_student, save_student
from xner.cli import main

BASE_ID = "xner-test/tiny-bert"
ADAPTER = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["query", "value"]}
ID2LABEL = dict(enumerate(STUDENT_LABELS))


def teacher_results(base):
    """The results.json ``training.teacher`` writes (RunResults of a teacher), with local paths in it."""
    return {
        "task": "teacher",
        "model_name_or_path": base,
        "label_names": STUDENT_LABELS,
        "data": {
            "corpus": None,
            "dataset": os.path.join(os.path.dirname(base), "data"),
            "lang": None,
            "dataset_config": None,
            "tag_column": "ner_tags",
            "splits": {"train": "train"},
        },
        "num_train_sentences": 3,
        "completed_steps": 2,
        "epochs": [{"epoch": 0, "step": 2}],
        "args": {"output_dir": os.path.join(os.path.dirname(base), "teacher"), "model_name_or_path": base},
    }


def train_on_machine(machine, kind):
    """The model folder of ``kind`` as training leaves it, with its results.json (local paths included)."""
    encoder = build_tiny_bert(str(machine / "encoder"), TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    lora = kind in ("lora", "merged")
    model = build_student(encoder, STUDENT_LABELS, lora=LoraSettings(r=4, lora_alpha=8) if lora else None)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a trained-looking model: LoRA B and the head away from their initial values
        for name, parameter in model.named_parameters():
            if "lora_B" in name or "classifier" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    folder = str(machine / ("lora" if kind == "merged" else kind))
    save_student(model, folder, tokenizer)
    results = (
        teacher_results(encoder)
        if kind == "teacher"
        else training_results(encoder, ADAPTER if lora else None).to_dict()
    )
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle)
    if kind == "merged":
        folder = merge_student(folder, str(machine / "merged"))
    return encoder, folder


def python_blocks(card):
    return re.findall(r"```python\n(.*?)```", card, flags=re.S)


@pytest.mark.parametrize("kind", ["teacher", "full", "lora", "merged"])
def test_published_model_loads_everywhere_after_the_machine_moved(online, kind, tmp_path, monkeypatch, capsys):
    machine = tmp_path / "training-machine"
    encoder, folder = train_on_machine(machine, kind)
    api = HfApi(endpoint=online.endpoint)
    api.create_repo(BASE_ID, exist_ok=True)
    api.upload_folder(repo_id=BASE_ID, folder_path=encoder)  # the base, as it is on the Hub
    repo = f"xner-test/moved-{kind}"

    with pytest.raises(UserError, match=r"has no known Hub id.*--base_model_id"):
        publish_model(folder, repo)  # a local base without a Hub id: refused, nothing pushed
    assert ("model", repo) not in online.repos
    publish_model(folder, repo, base_model_id=BASE_ID)

    # What the model computes on the training machine.
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    local = load_student(folder).eval()
    with torch.no_grad():
        expected_logits = local(**inputs).logits
    plain = local.merge_and_unload() if hasattr(local, "merge_and_unload") else local
    expected_pipeline = pipeline(
        "token-classification", model=plain, tokenizer=tokenizer, aggregation_strategy="simple"
    )(TEXTS)
    expected_words = predict(folder, TEXTS)
    assert any(result["entities"] for result in expected_words)

    # Nothing uploaded names a path of the training machine.
    files = online.files(repo)
    for name, content in files.items():
        for path in {str(tmp_path), os.path.realpath(tmp_path), str(machine)}:
            assert path.encode() not in content, f"{name} names the local path {path}"
    assert TOKEN.encode() not in b"".join(files.values())
    card = files["README.md"].decode()
    assert f"\nbase_model: {BASE_ID}\n" in card

    # The machine moves: the training folder is gone, the cache is empty.
    os.rename(machine, tmp_path / "elsewhere")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "fresh-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "fresh-cache"))

    def assert_logits(model):  # a snippet's pipeline may have put the model on a GPU
        with torch.no_grad():
            logits = model.eval()(**{k: v.to(model.device) for k, v in inputs.items()}).logits
            torch.testing.assert_close(logits.cpu(), expected_logits, atol=1e-4, rtol=1e-4)

    assert_logits(AutoModelForTokenClassification.from_pretrained(repo))
    ner = pipeline("token-classification", model=repo, aggregation_strategy="simple")
    assert _same_entities(ner(TEXTS), expected_pipeline)
    if kind == "lora":
        assert_logits(AutoPeftModelForTokenClassification.from_pretrained(repo))
        base = AutoModelForTokenClassification.from_pretrained(
            BASE_ID, num_labels=len(ID2LABEL), id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()}
        )
        assert_logits(PeftModel.from_pretrained(base, repo))
    assert predict(repo, TEXTS) == expected_words
    capsys.readouterr()
    assert main(["predict", "--model", repo, TEXTS[0]]) == 0
    assert json.loads(capsys.readouterr().out) == expected_words[0]

    # The card's usage snippets, verbatim.
    blocks = python_blocks(card)
    assert len(blocks) == (3 if kind == "lora" else 1)
    for block in blocks:
        namespace = {}
        exec(compile(block, f"{repo}/README.md", "exec"), namespace)
        assert_logits(namespace.get("model") or namespace["ner"].model)
    assert "tokens" not in os.listdir(tmp_path)  # (the snippets wrote nothing next to the test)


def _same_entities(got, want):
    for g, w in zip(got, want):
        assert [(e["entity_group"], e["start"], e["end"]) for e in g] == [
            (e["entity_group"], e["start"], e["end"]) for e in w
        ]
        assert [e["score"] for e in g] == pytest.approx([e["score"] for e in w], abs=1e-4)
    return True


def test_hub_ids_of_local_bases(tmp_path):
    import xner.assets

    assert hub_id_of(xner.assets.minilm_path()) == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id_of("FacebookAI/xlm-roberta-base") == "FacebookAI/xlm-roberta-base"
    snapshot = tmp_path / "hub" / "models--intfloat--multilingual-e5-small" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert hub_id_of(str(snapshot)) == "intfloat/multilingual-e5-small"
    assert hub_id_of(str(tmp_path / "runs" / "encoder")) is None
    assert hub_id_of(None) is None
