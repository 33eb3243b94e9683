"""Cards by the Hub's specification, checked offline with huggingface_hub's own parsers.

Model cards: metadata that ``ModelCardData`` accepts (its model-index parser included), a
model-index whose ``dataset.type`` is always a Hub dataset id, ``datasets:`` ids, a widget of
sentences from the evaluation data, label examples found in that data, and a per-epoch table.
Dataset cards: ``license_name``/``license_link`` with ``license: other``, ``source_datasets``
naming the source's Hub id where it has one.
"""

import re

import pytest
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData
from huggingface_hub.repocard import metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from dataset_builders.corpora import CORPORA, WIKIANN_SPEC
from model_cards.dataset_card import (
    HUB_DATASET_IDS,
    LICENSE_LINKS,
    ProjectedDatasetCardData,
    license_id,
    render_dataset_card,
)
from model_cards.model_card import EvalSet, StudentCardData, TrainingResults, render_model_card
from training.results import RunResults

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
METRICS = {
    "precision": 0.5,
    "recall": 0.4,
    "f1": 0.4444,
    "accuracy": 0.9,
    "per_type": {"LOC": {"precision": 0.5, "recall": 0.4, "f1": 0.4444, "number": 5}},
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def metadata_of(text, tmp_path):
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return metadata_load(path)


def raw_conll(path):
    """(words, tags) per sentence of a two-column CoNLL file, read here independently of xner's reader."""
    sentences, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        word, tag = line.split("\t")[:2]
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append((words, tags))
    return sentences


def entity_strings(sentences):
    """Entity type -> set of entity strings (B-/I- runs) in the sentences."""
    out = {}
    for words, tags in sentences:
        current, start = None, None
        for i, tag in enumerate([*tags, "O"]):
            label = tag[2:] if tag != "O" else None
            if current is not None and (tag.startswith("B-") or label != current):
                out.setdefault(current, set()).add(" ".join(words[start:i]))
                current = None
            if label is not None and current is None:
                current, start = label, i
    return out


def student(evaluations, epochs=(), best_epoch=None):
    """The RunResults of a distillation on CoNLL-2002 es text, evaluated on ``evaluations`` (EvalSets)."""
    return RunResults(
        task="distillation",
        model_name_or_path="xner-test/tiny-encoder",
        label_names=LABELS,
        data={"corpus": "conll2002", "lang": "es", "dataset": None, "dataset_config": None, "domain": "news"},
        teachers=[{"model": "xner-test/teacher-en", "weight": 1.0}],
        strategy={"name": "soft-kl", "temperature": 2.0},
        train_data=[{"kind": "corpus", "corpus": "conll2002", "lang": "es", "split": "train", "num_sentences": 100}],
        eval={e.name: e.metrics for e in evaluations},
        eval_sets={
            e.name: {
                "corpus": e.dataset,
                "lang": e.language,
                "split": e.split,
                "corpus_domain": e.domain,
                "domain": None,
            }
            for e in evaluations
        },
        completed_steps=8,
        best={"split": "validation", "metric": "f1", "epoch": best_epoch},
        framework_versions={"transformers": "0.0.test"},
        epochs=list(epochs),
    )


@pytest.fixture(scope="module")
def europarl_es(real_data_dir):
    return raw_conll(real_data_dir / "europarl-ner" / "es-europarl.test.conll02")


def test_model_card_metadata_validates_and_names_only_hub_datasets(real_data_dir, europarl_es, tmp_path):
    evaluations = [
        EvalSet(
            name="Europarl-NER es",
            metrics=METRICS,
            dataset="europarl-ner",
            config="es",
            language="es",
            domain="parliament",
        ),
        EvalSet(
            name="CoNLL-2002 es test", metrics=METRICS, dataset="conll2002", config="es", language="es", domain="news"
        ),
    ]
    card = StudentCardData.from_training(
        student(evaluations), model_id="xner-test/student-es", data_dir=str(real_data_dir)
    )
    text = render_model_card(card)
    metadata = metadata_of(text, tmp_path)

    # huggingface_hub's own classes accept it, model-index included (they raise on a malformed one)
    parsed = ModelCardData(**metadata)
    name, results = model_index_to_eval_results(metadata["model-index"])
    assert name == card.model_name and parsed.eval_results == results
    assert ModelCard(text).data.to_dict()["datasets"] == metadata["datasets"]
    # dataset.type is a Hub dataset id: Europarl-NER has none and stays out; the corpus name is mapped
    assert {r.dataset_type for r in results} == {"eriktks/conll2002"}
    assert all(HUB_ID.match(r.dataset_type) for r in results)
    assert metadata["datasets"] == ["eriktks/conll2002"]
    assert "| Europarl-NER es | es | test | out-of-domain (parliament) |" in text  # still reported

    # widget: sentences with entities from the evaluation data (training language first: es)
    sentences = {" ".join(words): tags for words, tags in europarl_es}
    conll = {" ".join(w) for w, _ in raw_conll_space(real_data_dir / "conll2002" / "es" / "test.txt")}
    widget = [item["text"] for item in metadata["widget"]]
    assert len(widget) == 3 and "es" in metadata["language"]
    assert widget[0] in sentences and widget[1] in conll  # taken in turn from each set
    assert any(tag != "O" for tag in sentences[widget[0]])
    assert json_literal(widget[0]) in text  # the usage snippet runs on the first one


def raw_conll_space(path):
    """CoNLL-2002 (word POS tag, space separated) as (words, tags)."""
    out, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if words:
                out.append((words, tags))
            words, tags = [], []
            continue
        words.append(parts[0])
        tags.append(parts[-1])
    if words:
        out.append((words, tags))
    return out


def json_literal(text):
    import json

    return json.dumps(text, ensure_ascii=False)


def test_label_examples_are_entities_of_their_type_in_the_data(real_data_dir, europarl_es):
    evaluations = [EvalSet(name="Europarl-NER es", metrics=METRICS, dataset="europarl-ner", config="es", language="es")]
    card = StudentCardData.from_training(student(evaluations), data_dir=str(real_data_dir))
    found = entity_strings(europarl_es)
    assert set(card.label_examples) == set(found)
    for label, examples in card.label_examples.items():
        assert len(examples) == 3 and set(examples) <= found[label]
    # the most frequent first: no entity of the type is more frequent than the last one shown
    counts = {}
    for words, tags in europarl_es:
        for label, strings in entity_strings([(words, tags)]).items():
            for s in strings:
                counts[(label, s)] = counts.get((label, s), 0) + 1
    for label, examples in card.label_examples.items():
        shown = [counts[(label, s)] for s in examples]
        assert shown == sorted(shown, reverse=True)
        assert max(n for (lab, s), n in counts.items() if lab == label and s not in examples) <= shown[-1]
    text = render_model_card(card)
    row = next(line for line in text.splitlines() if line.startswith("| LOC | "))
    assert all(f'"{example}"' in row for example in card.label_examples["LOC"])
    # given examples are used as they are, and no data is read without them when asked not to
    given = StudentCardData.from_training(
        student(evaluations), widget_examples=["Juan vive en Madrid ."], label_examples={"LOC": ["Madrid"]}
    )
    assert given.widget_examples == ["Juan vive en Madrid ."] and given.label_examples == {"LOC": ["Madrid"]}
    assert StudentCardData.from_training(student(evaluations), examples_from_data=False).widget_examples == []


def test_training_results_table_per_epoch(tmp_path):
    history = [
        {"epoch": 0, "step": 10, "train": {"loss": 1.25}, "validation": {"f1": 0.5}, "test": {"f1": 0.45}},
        {"epoch": 1, "step": 20, "train": {"loss": 0.5}, "validation": {"f1": 0.625}, "test": {"f1": 0.55}},
        {"epoch": 2, "step": 30, "train": {"loss": 0.25}, "validation": {"f1": 0.6}, "test": {"f1": 0.58}},
    ]
    card = StudentCardData.from_training(student([], epochs=history, best_epoch=1), examples_from_data=False)
    text = render_model_card(card)
    assert "| epoch | step | training loss | validation F1 | test F1 |" in text
    assert "| 0 | 10 | 1.2500 | 0.5000 | 0.4500 |" in text
    assert "| **1** | 20 | 0.5000 | 0.6250 | 0.5500 |" in text  # the saved epoch
    assert "| 2 | 30 | 0.2500 | 0.6000 | 0.5800 |" in text
    assert "the epoch in bold (best f1 on validation)" in text
    # the card reads the history of results.json: a student's here, a teacher's below
    assert TrainingResults.from_dict(student([], epochs=history).to_dict()).epochs == history
    teacher = {
        "task": "teacher",
        "model_name_or_path": "xner-test/minilm",
        "label_names": LABELS,
        "epochs": history,
        "data": {"corpus": "conll2003", "splits": {"train": "train", "test": "test"}},
        "best": {"split": "validation", "metric": "f1", "epoch": 1},
    }
    assert TrainingResults.from_dict(teacher).epochs == history
    metadata = metadata_of(
        render_model_card(StudentCardData.from_training(teacher, examples_from_data=False)), tmp_path
    )
    assert metadata["datasets"] == ["eriktks/conll2003"]
    ModelCardData(**metadata)


def projection_summary(corpus, target="de", translator=None):
    splits = {
        "train": {
            "rows": 3,
            "entities": 4,
            "projected": 3,
            "dropped": 1,
            "rows_with_error": 0,
            "per_type": {"LOC": {"source": 4, "projected_spans": 3}},
            "gold": None,
        }
    }
    return {
        "config": {
            "corpus": corpus,
            "target_langs": [target],
            "translator": translator or {"kind": "apertium"},
            "aligner": {"kind": "eflomal"},
            "method": {"name": "heuristic"},
        },
        "languages": {target: {"splits": splits}},
    }


@pytest.mark.parametrize(
    "corpus, license, source",
    [
        ("conll2003", "other", ["extended|eriktks/conll2003"]),
        ("europarl-ner", "other", ["extended"]),  # no Hub copy: no id is guessed
        ("masakhaner2", "cc-by-nc-4.0", ["extended|masakhane/masakhaner2"]),
        ("germeval2014", "cc-by-4.0", ["extended|GermanEval/germeval_14"]),
    ],
)
def test_dataset_card_licence_and_sources_follow_the_hub_spec(corpus, license, source, tmp_path):
    card_data = ProjectedDatasetCardData.from_projection(projection_summary(corpus))
    text = render_dataset_card(card_data)
    metadata = metadata_of(text, tmp_path)
    DatasetCardData(**metadata)
    assert DatasetCard(text).data.to_dict()["source_datasets"] == source
    assert metadata["license"] == license and metadata["source_datasets"] == source
    if license == "other":
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", metadata["license_name"])
        assert metadata["license_link"] == LICENSE_LINKS[corpus]
        assert f"(terms: {LICENSE_LINKS[corpus]})" in text
    else:
        assert "license_name" not in metadata and "license_link" not in metadata
    for hub_id in (s.split("|", 1)[1] for s in source if "|" in s):
        assert f"[{hub_id}](https://huggingface.co/datasets/{hub_id})" in text


def test_every_corpus_with_its_own_terms_links_them():
    """A corpus whose licence is no Hub licence id would make publishing fail without a link to its terms."""
    for spec in [*CORPORA.values(), WIKIANN_SPEC]:
        if license_id(spec.license) == "other":
            assert spec.name in LICENSE_LINKS or spec.homepage, spec.name
    assert all(HUB_ID.match(i) for i in HUB_DATASET_IDS.values())
    with pytest.raises(ValueError, match="LICENSE_LINKS"):
        ProjectedDatasetCardData(source_corpus="mine", source_license="my own terms").yaml_dict()
