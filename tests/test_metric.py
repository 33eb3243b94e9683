"""xner's shipped seqeval metric equals seqeval (default and strict IOB2) and conlleval."""

import collections

import pytest
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from training.metrics import METRIC_DIR, load_metric


def test_loads_offline_by_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = load_metric()
    out = metric.compute(predictions=[["B-PER", "I-PER", "O"]], references=[["B-PER", "I-PER", "O"]])
    assert out["overall_f1"] == 1.0 and out["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "number": 1}
    assert METRIC_DIR.endswith("seqeval_metric")


def test_hand_computed_example():
    preds = [["B-PER", "I-PER", "O", "I-LOC", "B-ORG"], ["B-LOC", "O"]]
    refs = [["B-PER", "I-PER", "O", "B-LOC", "B-ORG"], ["B-LOC", "B-MISC"]]
    default = load_metric().compute(predictions=preds, references=refs)
    # Default (conlleval) mode reads the stray I-LOC as an entity: 4 correct of 4 predicted, 5 gold.
    assert default["overall_precision"] == 1.0
    assert default["overall_recall"] == pytest.approx(4 / 5)
    assert default["MISC"]["number"] == 1 and default["MISC"]["recall"] == 0.0
    strict = load_metric().compute(predictions=preds, references=refs, mode="strict", scheme="IOB2")
    # Strict IOB2 drops the ill-formed I-LOC: 3 correct of 3 predicted.
    assert strict["overall_precision"] == 1.0
    assert strict["overall_recall"] == pytest.approx(3 / 5)
    assert default["overall_accuracy"] == pytest.approx(5 / 7)  # tag-level: I-LOC and O are wrong


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sentence 0: 1 predicted tags for 2 reference tags"):
        load_metric().compute(predictions=[["O"]], references=[["O", "O"]])


@pytest.fixture(scope="module")
def real_predictions(real_data_dir, hf_cache):
    """Predictions of a real (weak) tagger on CoNLL-2003 test: each word's most frequent training tag.

    It makes the kinds of errors real taggers make, including I- tags that continue nothing.
    """
    from dataset_builders import load_corpus

    dd = load_corpus("conll2003", data_dir=str(real_data_dir), splits=["train", "test"], cache_dir=hf_cache)
    names = dd["train"].features["ner_tags"].feature.names
    counts = collections.defaultdict(collections.Counter)
    for tokens, tags in zip(dd["train"]["tokens"], dd["train"]["ner_tags"]):
        for tok, tag in zip(tokens, tags):
            counts[tok][names[tag]] += 1
    refs, preds = [], []
    for tokens, tags in zip(dd["test"]["tokens"], dd["test"]["ner_tags"]):
        refs.append([names[t] for t in tags])
        preds.append([counts[tok].most_common(1)[0][0] if tok in counts else "O" for tok in tokens])
    assert any(p[0].startswith("I-") for p in preds)  # the stray-I case is exercised
    return preds, refs


@pytest.mark.corpora
@pytest.mark.parametrize("mode", [None, "strict"])
def test_equals_seqeval_on_real_predictions(real_predictions, mode):
    preds, refs = real_predictions
    kwargs = {"mode": "strict", "scheme": "IOB2"} if mode else {}
    ours = load_metric().compute(predictions=preds, references=refs, **kwargs)
    theirs = classification_report(refs, preds, output_dict=True, mode=mode, scheme=IOB2 if mode else None)
    assert ours["overall_f1"] == pytest.approx(theirs["micro avg"]["f1-score"], abs=1e-12)
    assert ours["overall_precision"] == pytest.approx(theirs["micro avg"]["precision"], abs=1e-12)
    assert ours["overall_recall"] == pytest.approx(theirs["micro avg"]["recall"], abs=1e-12)
    for label in ("PER", "ORG", "LOC", "MISC"):
        assert ours[label]["f1"] == pytest.approx(theirs[label]["f1-score"], abs=1e-12)
        assert ours[label]["number"] == theirs[label]["support"]
    assert 0.2 < ours["overall_f1"] < 0.9  # a real, imperfect tagger


@pytest.mark.corpora
def test_equals_conlleval_on_real_predictions(real_predictions):
    import conlleval

    preds, refs = real_predictions
    lines = []
    for pred, ref in zip(preds, refs):
        lines += [f"w {r} {p}" for p, r in zip(pred, ref)] + [""]
    expected = conlleval.evaluate(lines)
    ours = load_metric().compute(predictions=preds, references=refs)
    overall = expected["overall"]["chunks"]["evals"]
    assert ours["overall_precision"] == pytest.approx(overall["prec"], abs=1e-12)
    assert ours["overall_recall"] == pytest.approx(overall["rec"], abs=1e-12)
    assert ours["overall_f1"] == pytest.approx(overall["f1"], abs=1e-12)
    for label, figures in expected["slots"]["chunks"].items():
        assert ours[label]["f1"] == pytest.approx(figures["evals"]["f1"], abs=1e-12)
        assert ours[label]["number"] == figures["stats"]["gold"]
