"""The one inference core: every path that tags words gives the same tags and probabilities.

One tiny tagger (labels in an order where ``O`` is not index 0, a head scaled up so its argmax
varies from word to word) and the same sentences (one needing several overlapping windows, one
with a word that has no sub-token, an empty one) go through the ``Tag`` transform, teacher
probabilities, ``xner evaluate``'s prediction, the per-epoch evaluator and ``predict``; each must
equal the reference :class:`training.inference.WordTagger` to float tolerance (never bit for bit:
batch shapes differ). Then: windows, LoRA adapters, models without a trained head, bad paths, and
``xner predict --file`` keeping one output line per input line.
"""

import json

import datasets
import numpy as np
import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import AutoModelForTokenClassification, BertModel

from dataset_builders.errors import UserError
from dataset_builders.schemes import tags_to_spans, validate_iob2
from model_cards.predict import predict
from projection.tagging import Tag
from tests.tiny_models import build_tiny_bert, build_tiny_xlmr
from training import evaluation
from training.collate import TokenCollator, build_dataloader
from training.features import TokenAligner, tokenize_dataset
from training.inference import (
    WordTagger,
    check_device,
    load_token_classifier,
    load_tokenizer,
    predict_word_probabilities,
    read_labels,
)
from training.loop import EvalSet, NerEvaluator
from training.students import LoraSettings, build_student, merge_adapter, save_student
from training.teacher_probs import TeacherProbabilities, add_teacher_probs, teacher_labels

LABELS = ["B-PER", "I-PER", "B-LOC", "O", "I-LOC"]  # O is not at index 0
OUTSIDE_ID = LABELS.index("O")
SENTENCES = [
    ["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Paris", "."],
    ["Nairobi", "\u200b", "hosts", "the", "United", "Nations", "."],  # "\u200b": no sub-token for BERT
    ["Barack", "Obama", "visited", "Madrid", ",", "Lisbon", "and", "Rome", "with", "Michelle", "Obama"] * 3,
    [],
    ["Lisbon", "."],
]
TEXTS = [" ".join(s) for s in SENTENCES if s] + ["Merkel visited Nairobi and Lisbon in May ."]
MAX_LENGTH = 16  # the long sentence needs several windows
ATOL = 1e-5


def sharpen_head(path: str, factor: float = 30.0) -> str:
    """Scale the random classifier so the argmax changes from word to word (not all one label)."""
    model = AutoModelForTokenClassification.from_pretrained(path)
    with torch.no_grad():
        model.classifier.weight.mul_(factor)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    return {
        "tagger": sharpen_head(build_tiny_bert(str(root / "tagger"), TEXTS, id2label=dict(enumerate(LABELS)), seed=3)),
        "encoder": build_tiny_bert(str(root / "encoder"), TEXTS),
        "xlmr": build_tiny_xlmr(str(root / "xlmr"), TEXTS, vocab_size=120),
    }


@pytest.fixture(scope="module")
def reference(models):
    tagger = WordTagger.from_pretrained(models["tagger"], max_length=MAX_LENGTH, batch_size=4)
    return tagger(SENTENCES)


def assert_same(probabilities, expected):
    assert len(probabilities) == len(expected)
    for got, want in zip(probabilities, expected):
        got = np.asarray(got, dtype=np.float32).reshape(want.shape)
        assert np.allclose(got, want, atol=ATOL)


def test_reference_tags_are_varied_and_well_formed(reference):
    probabilities, tags = reference
    assert [p.shape for p in probabilities] == [(len(s), len(LABELS)) for s in SENTENCES]
    assert all(p.dtype == np.float32 for p in probabilities)
    for p, t in zip(probabilities, tags):
        assert np.allclose(p.sum(-1), 1.0, atol=1e-5)
        assert t == [LABELS[i] for i in p.argmax(-1)]
    assert len({tag for sentence in tags for tag in sentence}) >= 3  # the test can tell paths apart
    assert probabilities[1][1].tolist() == np.eye(len(LABELS))[OUTSIDE_ID].tolist()  # no sub-token: one-hot O
    assert tags[1][1] == "O"


def test_every_path_gives_the_same_tags_and_probabilities(models, reference, tmp_path):
    probabilities, tags = reference
    data = Dataset.from_dict({"tokens": SENTENCES})

    # the Tag transform (translate-test), batch size 2
    tagged = Tag(
        models["tagger"],
        tokens_column="tokens",
        probs_column="probs",
        batch_size=2,
        max_length=MAX_LENGTH,
        device="cpu",
    ).apply(data)
    assert_same(tagged["probs"], probabilities)
    for entities, sentence_tags in zip(tagged["source_entities"], tags):
        assert entities == tags_to_spans(validate_iob2(sentence_tags, repair=True))

    # teacher probabilities, batch size 3
    teacher = TeacherProbabilities(models["tagger"], max_length=MAX_LENGTH, batch_size=3, device="cpu")
    with_probs = add_teacher_probs(data, [teacher])
    assert teacher_labels(with_probs) == LABELS
    assert_same(with_probs["teacher_probs"], probabilities)
    assert with_probs["teacher_tags"] == [[LABELS.index(t) for t in s] for s in tags]

    model, tokenizer, labels = load_token_classifier(models["tagger"])
    assert labels == LABELS

    # the distributed core itself (what the evaluator runs), batch size 5
    accelerator = Accelerator()
    features = tokenize_dataset(data, TokenAligner(tokenizer, MAX_LENGTH, label_column=None))
    loader = accelerator.prepare(build_dataloader(features, 5, TokenCollator(tokenizer.pad_token_id), shuffle=False))
    gathered = predict_word_probabilities(
        model, loader, accelerator, [len(s) for s in SENTENCES], outside_id=OUTSIDE_ID
    )
    assert_same(gathered, probabilities)

    # the per-epoch evaluator: scored against the reference tags, every word must agree
    evaluator = NerEvaluator(
        accelerator, {"dev": EvalSet(features, tags)}, dict(enumerate(LABELS)), 2, TokenCollator(tokenizer.pad_token_id)
    )
    metrics = evaluator(model)["dev"]
    assert metrics["accuracy"] == 1.0 and metrics["f1"] == 1.0

    # xner evaluate (the one evaluation core over test sets), batch size 1
    test_set = evaluation.TestSet(
        "dev",
        data.add_column("ner_tags", [[LABELS.index(t) for t in s] for s in tags]).cast_column(
            "ner_tags", datasets.List(datasets.ClassLabel(names=LABELS))
        ),
    )
    prepared = evaluation.prepare_test_sets([test_set], tokenizer, labels, max_length=MAX_LENGTH)
    assert prepared["dev"].num_windows > len(SENTENCES)
    one = evaluation.evaluator_for(prepared, labels, accelerator, 1, TokenCollator(tokenizer.pad_token_id))
    assert one.predict(model, "dev") == tags

    # predict (the user-facing wrapper), on pre-split words
    tagger = WordTagger(model, tokenizer, batch_size=16, max_length=MAX_LENGTH)
    results = predict(tagger, SENTENCES)
    for result, p, sentence_tags in zip(results, probabilities, tags):
        spans = tags_to_spans(sentence_tags)
        assert [(e["start"], e["end"], e["label"]) for e in result["entities"]] == [
            (s["start"], s["end"], s["label"]) for s in spans
        ]
        for entity in result["entities"]:
            assert entity["score"] == pytest.approx(p[entity["start"] : entity["end"]].max(-1).mean(), abs=1e-4)


def test_long_sentences_run_in_overlapping_windows_merged_per_word(models, reference):
    """Each word's distribution is the softmax at its head token, from a plain forward pass over that window."""
    model, tokenizer, _ = load_token_classifier(models["tagger"])
    aligner = TokenAligner(tokenizer, MAX_LENGTH, label_column=None)
    long = SENTENCES[2]
    features = aligner({"tokens": [long]}, [0])
    assert len(features["input_ids"]) >= 3
    words_in = [set(w for w in ids if w >= 0) for ids in features["word_ids"]]
    assert all(a & b for a, b in zip(words_in, words_in[1:]))  # consecutive windows overlap
    expected = np.full((len(long), len(LABELS)), np.nan, dtype=np.float32)
    for ids, word_ids, heads in zip(features["input_ids"], features["word_ids"], features["word_heads"]):
        with torch.no_grad():
            probs = model(input_ids=torch.tensor([ids])).logits[0].softmax(-1).numpy()
        for position, (word, head) in enumerate(zip(word_ids, heads)):
            if head:
                expected[word] = probs[position]
    assert not np.isnan(expected).any()  # every word predicted exactly from one window
    assert np.allclose(reference.probabilities[2], expected, atol=ATOL)
    whole = WordTagger(model, tokenizer)(SENTENCES[2:3])  # one window (the model's full length)
    assert whole.probabilities[0].shape == expected.shape


def test_lora_adapter_loads_with_its_head_and_tags_as_its_merged_model(models, tmp_path):
    student = build_student(models["encoder"], LABELS, lora=LoraSettings(r=4, lora_alpha=8))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero and the head is random: give both an effect
        for name, parameter in student.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 3.0)
    adapter = save_student(student, str(tmp_path / "lora"), load_tokenizer(models["encoder"]))
    merged = merge_adapter(adapter, str(tmp_path / "merged"))
    model, _, labels = load_token_classifier(adapter)
    assert labels == LABELS and hasattr(model, "get_base_model")
    from_adapter = WordTagger.from_pretrained(adapter, max_length=MAX_LENGTH)(SENTENCES)
    from_merged = WordTagger.from_pretrained(merged, max_length=MAX_LENGTH)(SENTENCES)
    assert_same(from_adapter.probabilities, from_merged.probabilities)
    assert from_adapter.tags == from_merged.tags


def test_a_model_without_a_trained_head_is_refused_naming_it(models, tmp_path):
    encoder = models["encoder"]  # a bare BertModel: placeholder labels LABEL_0, LABEL_1
    for make in (load_token_classifier, WordTagger.from_pretrained, TeacherProbabilities, Tag, read_labels):
        with pytest.raises(UserError, match="no trained token-classification head") as caught:
            make(encoder)
        assert encoder in str(caught.value) and "\n" not in str(caught.value)
    # real label names in the config, but no classifier weights saved
    labelled = str(tmp_path / "labelled-encoder")
    bare = BertModel.from_pretrained(encoder)
    bare.config.id2label, bare.config.label2id = dict(enumerate(LABELS)), {n: i for i, n in enumerate(LABELS)}
    bare.save_pretrained(labelled)
    load_tokenizer(encoder).save_pretrained(labelled)
    with pytest.raises(UserError, match=r"no trained token-classification head \(missing weights \['classifier"):
        load_token_classifier(labelled)


def test_bad_paths_are_reported_as_missing_folders(tmp_path):
    missing = str(tmp_path / "no" / "such" / "model")
    for make in (load_token_classifier, load_tokenizer, read_labels):
        with pytest.raises(UserError, match=f"model {missing}: no such folder"):
            make(missing)
    with pytest.raises(UserError, match="model runs/nonexistent-teacher: no local folder of that name"):
        load_token_classifier("runs/nonexistent-teacher")  # a valid repo id, neither here nor on the (offline) Hub
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"")
    with pytest.raises(UserError, match="is a file, not a model folder"):
        load_token_classifier(str(a_file))


def test_sentencepiece_tokenizer_needs_no_prefix_space_and_keeps_words(models):
    tokenizer = load_tokenizer(models["xlmr"])
    encoding = tokenizer(SENTENCES[0], is_split_into_words=True)
    assert max(w for w in encoding.word_ids() if w is not None) == len(SENTENCES[0]) - 1


def test_cli_predict_file_gives_one_output_line_per_input_line(models, tmp_path, capsys):
    from xner.cli import main

    lines = ["Angela Merkel met Emmanuel Macron in Paris .", "", "Barack Obama visited Madrid .", "   ", "Lisbon ."]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["predict", "--model", models["tagger"], "--file", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(lines)
    results = [json.loads(line) for line in out]
    assert [r["text"] for r in results] == lines
    assert results[1] == {"text": "", "words": [], "entities": []}
    assert results[3]["words"] == [] and results[3]["entities"] == []
    expected = predict(models["tagger"], [lines[0], lines[2], lines[4]])
    for got, want in zip([results[0], results[2], results[4]], expected):
        assert got["words"] == want["words"]
        assert [(e["start"], e["end"], e["label"]) for e in got["entities"]] == [
            (e["start"], e["end"], e["label"]) for e in want["entities"]
        ]


def test_distill_refuses_a_teacher_without_a_trained_head_before_anything_runs(models, tmp_path, capsys):
    """Issue 13 item 4: a bare encoder as --teacher is a one-line error, not a student trained on a random head."""
    from xner.cli import main

    out = tmp_path / "student"
    code = main(
        [
            "distill",
            "--model_name_or_path",
            models["xlmr"],
            "--teacher",
            models["encoder"],
            "--output_dir",
            str(out),
            "--corpus",
            "xner-sample",
            "--max_train_steps",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"xner distill: error: model {models['encoder']}: has no trained token-classification head "
        f"(its labels are the placeholders ['LABEL_0', 'LABEL_1']); give a model fine-tuned for NER "
        f"(xner train-teacher) or a student saved by xner"
    ]
    assert not (out / "results.json").exists() and not (out / "model.safetensors").exists()


@pytest.mark.parametrize("device", ["gpu0", "cuda:7", "cpu:x"])
def test_cli_predict_refuses_a_bogus_device_in_one_line(models, device, capsys):
    from xner.cli import main

    assert main(["predict", "--model", models["tagger"], "--device", device, "Paris ."]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"--device {device!r}" in err


def test_a_valid_device_is_used():
    assert check_device("cpu") == torch.device("cpu") and check_device(None) is None
