"""Teacher probabilities as a cached word-level column, multi-teacher combination, student alignment."""

import pickle

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, load_from_disk
from datasets.fingerprint import Hasher
from transformers import AutoModelForTokenClassification, AutoTokenizer

from tests.tiny_models import build_tiny_bert, build_tiny_xlmr
from training.collate import TokenCollator
from training.strategies import SoftMSE
from training.teacher_probs import (
    OnTheFlyTeachers,
    TeacherProbabilities,
    add_teacher_probs,
    spread_to_subtokens,
    student_features,
    teacher_labels,
)

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
PERMUTED = ["B-LOC", "O", "I-PER", "I-LOC", "B-PER"]  # same set, another order
SENTENCES = [
    ["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Paris", "."],
    ["Nairobi", "\u200b", "hosts", "the", "United", "Nations", "."],  # a word with no sub-token for BERT
    ["Barack", "Obama", "visited", "Madrid", ",", "Lisbon", "and", "Rome", "with", "Michelle", "Obama"] * 3,
    [],
]
TEXTS = [" ".join(s) for s in SENTENCES if s] + ["Merkel visited Nairobi and Lisbon in May ."]
MAX_LENGTH = 16  # the long sentence is cut into windows


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return {
        "a": build_tiny_bert(str(root / "a"), TEXTS, id2label=dict(enumerate(LABELS)), seed=1),
        "b": build_tiny_bert(str(root / "b"), TEXTS, id2label=dict(enumerate(PERMUTED)), seed=2),
        "student": build_tiny_xlmr(str(root / "student"), TEXTS, vocab_size=120),
    }


@pytest.fixture
def corpus(tmp_path):
    """An on-disk dataset, so map writes (and can reuse) cache files."""
    Dataset.from_dict({"tokens": SENTENCES}).save_to_disk(str(tmp_path / "corpus"))
    return load_from_disk(str(tmp_path / "corpus"))


def teacher(path):
    return TeacherProbabilities(path, max_length=MAX_LENGTH, batch_size=2)


def column(dataset):
    return [np.asarray(p, dtype=np.float32).reshape(len(p), len(LABELS)) for p in dataset["teacher_probs"]]


def test_word_level_column_shape_sums_and_labels(models, corpus):
    out = add_teacher_probs(corpus, [teacher(models["a"])])
    assert out.features["teacher_probs"].feature.feature.dtype == "float32"
    assert teacher_labels(out) == LABELS
    for words, probs, tags in zip(SENTENCES, column(out), out["teacher_tags"]):
        assert probs.shape == (len(words), len(LABELS))
        assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
        assert tags == probs.argmax(-1).tolist()
    assert column(out)[1][1].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # no sub-token: one-hot O
    splits = add_teacher_probs(DatasetDict(train=corpus, test=corpus.select([0])), [teacher(models["a"])])
    assert teacher_labels(splits) == LABELS
    # float32 from another batch composition: equal to rounding, not bit for bit
    assert np.allclose(column(splits["test"])[0], column(out)[0], atol=1e-6)
    assert splits["test"]["teacher_tags"] == out.select([0])["teacher_tags"]


def test_teacher_probabilities_match_a_direct_forward_pass(models):
    words = SENTENCES[0]
    tokenizer = AutoTokenizer.from_pretrained(models["a"])
    model = AutoModelForTokenClassification.from_pretrained(models["a"]).eval()
    encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**encoding).logits[0].softmax(-1)
    ids = encoding.word_ids(0)
    first = [ids.index(w) for w in range(len(words))]
    assert np.allclose(teacher(models["a"]).word_probabilities([words])[0], probs[first].numpy(), atol=1e-6)


def test_rerunning_the_map_hits_the_cache(models, corpus, monkeypatch):
    first = add_teacher_probs(corpus, [teacher(models["a"])])
    calls = []
    original = TeacherProbabilities.word_probabilities
    monkeypatch.setattr(
        TeacherProbabilities, "word_probabilities", lambda self, s: calls.append(len(s)) or original(self, s)
    )
    again = add_teacher_probs(corpus, [teacher(models["a"])])
    assert calls == []  # nothing recomputed: the cached file was loaded
    assert again._fingerprint == first._fingerprint
    assert again.cache_files == first.cache_files
    other = add_teacher_probs(corpus, [teacher(models["b"])])
    assert other._fingerprint != first._fingerprint
    assert calls  # another teacher is computed, through the same (patched) method


def test_a_named_cache_file_is_written_then_loaded(models, tmp_path, monkeypatch):
    memory = Dataset.from_dict({"tokens": SENTENCES})  # in memory: no cache of its own, the named file still works
    files = {"train": str(tmp_path / "c" / "train.arrow"), "test": str(tmp_path / "c" / "test.arrow")}
    splits = DatasetDict(train=memory, test=memory.select([0]))
    first = add_teacher_probs(splits, [teacher(models["a"])], cache_file_name=files)
    assert {split: ds.cache_files[0]["filename"] for split, ds in first.items()} == files
    calls = []
    original = TeacherProbabilities.word_probabilities
    monkeypatch.setattr(
        TeacherProbabilities, "word_probabilities", lambda self, s: calls.append(len(s)) or original(self, s)
    )
    again = add_teacher_probs(splits, [teacher(models["a"])], cache_file_name=files)
    assert calls == [] and again["train"]["teacher_probs"] == first["train"]["teacher_probs"]
    # two teachers: each pass next to the file, the combined column in it; reused the same way
    both = [teacher(models["a"]), teacher(models["b"])]
    combined_file = str(tmp_path / "c" / "both.arrow")
    combined = add_teacher_probs(memory, both, weights=[0.25, 0.75], cache_file_name=combined_file)
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if p.name.startswith("both")) == [
        "both-teacher0.arrow",
        "both-teacher1.arrow",
        "both.arrow",
    ]
    expected = column(add_teacher_probs(memory, both, weights=[0.25, 0.75]))
    assert all(np.allclose(got, e, atol=1e-6) for got, e in zip(column(combined), expected))
    calls.clear()
    add_teacher_probs(memory, both, weights=[0.25, 0.75], cache_file_name=combined_file)
    assert calls == []
    with pytest.raises(ValueError, match="one file per split"):
        add_teacher_probs(splits, [teacher(models["a"])], cache_file_name=files["train"])
    with pytest.raises(ValueError, match="one path"):
        add_teacher_probs(memory, [teacher(models["a"])], cache_file_name=files)


def test_transform_pickles_as_configuration_only(models):
    transform = teacher(models["a"])
    before = Hasher.hash(transform)
    transform.load()
    assert Hasher.hash(transform) == before == Hasher.hash(teacher(models["a"]))
    assert transform._tagger is not None and "_tagger" not in transform.__getstate__()
    copy = pickle.loads(pickle.dumps(transform))  # what a num_proc worker receives
    assert copy._tagger is None and len(pickle.dumps(transform)) < 10_000  # configuration, no weights
    assert np.allclose(
        copy.word_probabilities(SENTENCES[:1])[0], transform.word_probabilities(SENTENCES[:1])[0], atol=1e-6
    )


def test_two_teachers_weighted_average(models, corpus):
    a = column(add_teacher_probs(corpus, [teacher(models["a"])]))
    b = column(add_teacher_probs(corpus, [teacher(models["b"])]))  # in PERMUTED order
    to_labels = [PERMUTED.index(label) for label in LABELS]
    combined = add_teacher_probs(corpus, [teacher(models["a"]), teacher(models["b"])], weights=[0.25, 0.75])
    assert teacher_labels(combined) == LABELS  # the first teacher's order
    assert combined.column_names == ["tokens", "teacher_probs", "teacher_tags"]
    for got, pa, pb in zip(column(combined), a, b):
        assert np.allclose(got, 0.25 * pa + 0.75 * pb[:, to_labels], atol=1e-6)
        assert np.allclose(got.sum(-1), 1.0, atol=1e-5)


def test_on_the_fly_equals_precomputed(models, corpus):
    teachers = [teacher(models["a"]), teacher(models["b"])]
    precomputed = column(add_teacher_probs(corpus, teachers, weights=[0.25, 0.75]))
    on_the_fly = OnTheFlyTeachers(teachers, weights=[1, 3])(SENTENCES)
    for got, expected in zip(on_the_fly, precomputed):
        assert np.allclose(got, expected, atol=1e-6)
    single = OnTheFlyTeachers([teacher(models["a"])])(SENTENCES)
    for got, expected in zip(single, column(add_teacher_probs(corpus, [teacher(models["a"])]))):
        assert np.allclose(got, expected, atol=1e-6)


def test_labels_must_match(models, corpus, tmp_path):
    other = build_tiny_bert(str(tmp_path / "c"), TEXTS, id2label=dict(enumerate(["O", "B-ORG", "I-ORG"])))
    with pytest.raises(ValueError, match="must share a label set") as error:
        add_teacher_probs(corpus, [teacher(models["a"]), teacher(other)])
    assert str(LABELS) in str(error.value) and "['O', 'B-ORG', 'I-ORG']" in str(error.value)
    with_probs = add_teacher_probs(corpus, [teacher(models["a"])])
    tokenizer = AutoTokenizer.from_pretrained(models["student"])
    with pytest.raises(ValueError, match=r"teacher labels: \['O', 'B-PER'.*student labels: \['O', 'B-ORG'"):
        student_features(with_probs, tokenizer, ["O", "B-ORG", "I-ORG"])


@pytest.mark.parametrize("student_labels", [LABELS, PERMUTED])
def test_alignment_to_a_student_with_another_tokenizer(models, corpus, student_labels):
    words_probs = column(add_teacher_probs(corpus, [teacher(models["a"])]))  # BERT teacher
    tokenizer = AutoTokenizer.from_pretrained(models["student"])  # XLM-R student
    bert = AutoTokenizer.from_pretrained(models["a"])
    pieces = [(len(bert.tokenize(w)), len(tokenizer.tokenize(w))) for w in SENTENCES[0]]
    assert any(n_bert != n_xlmr for n_bert, n_xlmr in pieces)  # the tokenisations really differ
    features = student_features(
        add_teacher_probs(corpus, [teacher(models["a"])]), tokenizer, student_labels, max_length=MAX_LENGTH
    )
    order = [LABELS.index(label) for label in student_labels]
    seen = {i: set() for i in range(len(SENTENCES))}
    for row in features:
        probs = np.asarray(row["teacher_probs"], dtype=np.float32)
        for position, (word, head) in enumerate(zip(row["word_ids"], row["word_heads"])):
            if head:
                assert np.allclose(probs[position], words_probs[row["sentence_id"]][word][order])
                seen[row["sentence_id"]].add(word)
            else:
                assert not probs[position].any()
    assert seen == {i: set(range(len(s))) for i, s in enumerate(SENTENCES)}  # every word exactly once

    batch = TokenCollator(pad_token_id=tokenizer.pad_token_id)([features[i] for i in range(len(features))])
    word_level = [words_probs[s] for s in batch["sentence_id"].tolist()]  # in the teacher's order
    spread = spread_to_subtokens(word_level, batch["word_ids"], batch["word_heads"], label_columns=order)
    assert torch.equal(spread, batch["teacher_probs"])
    on_the_fly = OnTheFlyTeachers([teacher(models["a"])]).for_batch(batch, SENTENCES, label_columns=order)
    assert torch.allclose(on_the_fly, batch["teacher_probs"], atol=1e-6)
    logits = torch.randn(*batch["teacher_probs"].shape, requires_grad=True)
    loss = SoftMSE()(logits, batch)  # word_heads serves as the kd_mask
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
