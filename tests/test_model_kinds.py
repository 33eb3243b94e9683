"""Every model kind xner trains, with every distillation strategy: train -> save -> reload -> predict.

One base class, :class:`ModelKindTest`, holds the tests; a subclass per kind says how that kind is
trained (the teacher once; full, LoRA and merged students once per strategy of
:data:`training.strategies.STRATEGIES`). For each trained model:

* ``test_reload_predicts_what_training_left``: the model as training left it in memory, tagged by a
  plain forward pass written here (first sub-token of each word; no xner inference code), equals
  the folder reloaded from disk and tagged by :class:`training.inference.WordTagger` -- same tags,
  probabilities to ``ATOL``. Training must have moved the predictions away from the untrained
  model's, so a folder holding the starting weights (or a reload that never reads the folder)
  fails.
* ``test_every_inference_path_agrees``: the saved folder given to ``model_cards.predict.predict``,
  the ``projection.tagging.Tag`` transform and ``training.teacher_probs.TeacherProbabilities``
  gives the reference tagger's tags and probabilities.

Kept cheap: one tiny BERT (the teacher's encoder and every student's), a handful of sentences,
2-3 optimisation steps per run, one module-scoped teacher, each run trained once and shared by
both tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import datasets
import numpy as np
import pytest
import torch

from dataset_builders.schemes import CONLL, tags_to_spans, validate_iob2
from model_cards.predict import predict
from projection.tagging import Tag
from tests.tiny_models import build_tiny_bert
from training import distill, teacher
from training.inference import WordTagger
from training.strategies import STRATEGIES
from training.students import is_adapter
from training.teacher_probs import (
    TeacherProbabilities,
    add_teacher_probs,
    teacher_labels,
)

LABELS = CONLL.label_names
SENTENCES = [
    ["Maria", "Okafor", "flew", "from", "Lagos", "to", "Nairobi", "on", "Monday", "."],
    ["Angela", "Merkel", "met", "the", "United", "Nations", "in", "Paris", "."],
    ["Lisbon", "."],
    ["Barack", "Obama", "visited", "Madrid", ",", "Lisbon", "and", "Rome", "."],
]
ATOL = 1e-5  # float rounding between batch shapes and a LoRA adapter vs its merged weights
MOVED = 1e-3  # training must change some probability by more than this
# Parameters that make every strategy select tokens on a barely trained teacher (hard-confident's
# default threshold of 0.9 would keep none, and the student would not move).
STRATEGY_FLAGS = {"hard-confident": ["--threshold", "0.2"], "projected+kd": ["--alpha", "0.5"]}


@dataclass
class Trained:
    """One training run: the model as training left it in memory, its untrained copy, and the saved folder."""

    model: torch.nn.Module
    untrained: torch.nn.Module
    tokenizer: Any
    folder: str


def train_through_library(module, argv: list[str]) -> Trained:
    """Run ``module.main(argv)`` -- what ``xner train-teacher`` / ``xner distill`` call -- and keep
    the model its training loop trained (and a copy of it before the first step).

    The ONE place a run is started: switch it here when the arguments become dataclasses.
    """
    seen: dict[str, Any] = {}
    original = module.train

    def spy(model, *args, tokenizer=None, **kwargs):
        seen.update(untrained=copy.deepcopy(model), model=model, tokenizer=tokenizer)
        return original(model, *args, tokenizer=tokenizer, **kwargs)

    output_dir = argv[argv.index("--output_dir") + 1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "train", spy)
        assert module.main(argv) == 0
    return Trained(seen["model"], seen["untrained"], seen["tokenizer"], output_dir)


def first_subtoken_probabilities(model: torch.nn.Module, tokenizer, sentences) -> list[np.ndarray]:
    """Per-word label probabilities by a plain forward pass per sentence: the softmax at each word's
    first sub-token. An independent reference for the inference core (sentences fit one window)."""
    model.eval()
    result = []
    with torch.no_grad():
        for words in sentences:
            encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
            inputs = {k: v.to(model.device) for k, v in encoding.items()}  # training may have left it on a GPU
            probs = model(**inputs).logits[0].float().softmax(-1).cpu().numpy()
            word_ids = encoding.word_ids(0)
            result.append(probs[[word_ids.index(w) for w in range(len(words))]])
    return result


def config_labels(model: torch.nn.Module) -> list[str]:
    """Label names straight from the in-memory model's config (a LoRA wrapper's base model's)."""
    config = (model.get_base_model() if hasattr(model, "get_base_model") else model).config
    return [config.id2label[i] for i in range(config.num_labels)]


def assert_close(got, expected) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        g = np.asarray(g, dtype=np.float32)
        assert g.shape == e.shape and np.allclose(g, e, atol=ATOL), np.abs(g - e).max()


class Runs:
    """Every run of the module, trained on first use and kept: both tests of a kind share it."""

    def __init__(self, root, encoder: str, projected: str):
        self.root, self.encoder, self.projected = root, encoder, projected
        self.cache: dict[tuple[str, str | None], Trained] = {}

    def get(self, kind: str, strategy: str | None = None) -> Trained:
        key = (kind, strategy)
        if key not in self.cache:
            self.cache[key] = self._train(kind, strategy)
        return self.cache[key]

    def _train(self, kind: str, strategy: str | None) -> Trained:
        out = str(self.root / f"{kind}-{strategy or 'none'}")
        if kind == "teacher":
            return train_through_library(
                teacher,
                [
                    "--model_name_or_path",
                    self.encoder,
                    "--dataset",
                    self.projected,
                    "--tag-column",
                    "projected_tags",
                    "--output_dir",
                    out,
                    "--per_device_train_batch_size",
                    "4",
                    "--learning_rate",
                    "1e-2",
                    "--max_train_steps",
                    "3",
                    "--seed",
                    "1",
                ],
            )
        if kind == "merged":  # the LoRA run of the same strategy, merged as ``xner merge`` does
            lora = self.get("lora", strategy)
            distill.merge_student(lora.folder, out)
            return Trained(lora.model, lora.untrained, lora.tokenizer, out)
        return train_through_library(
            distill,
            [
                "--model_name_or_path",
                self.encoder,
                "--teacher",
                self.get("teacher").folder,
                "--dataset",
                self.projected,
                "--strategy",
                strategy,
                *STRATEGY_FLAGS.get(strategy, []),
                "--student",
                kind,
                "--output_dir",
                out,
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "1e-2",
                "--max_train_steps",
                "2",
                "--seed",
                "2",
            ],
        )


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sample) -> Runs:
    root = tmp_path_factory.mktemp("model-kinds")
    texts = [" ".join(words) for words in [*sample["tokens"], *SENTENCES]]
    encoder = build_tiny_bert(str(root / "encoder"), texts)  # bare: teacher and students add their heads
    # A projection's output (translate-test layout: tags on ``tokens``): the teacher's training data
    # and every student's text; projected+kd and voting also read its projected_tags.
    rows = sample.select(range(8))
    projected = datasets.Dataset.from_dict(
        {"tokens": rows["tokens"], "projected_tags": rows["ner_tags"]},
        features=datasets.Features(
            {
                "tokens": datasets.List(datasets.Value("string")),
                "projected_tags": datasets.List(datasets.ClassLabel(names=LABELS)),
            }
        ),
    )
    path = str(root / "projected")
    datasets.DatasetDict({"train": projected}).save_to_disk(path)
    return Runs(root, encoder, path)


class ModelKindTest:
    """The tests every model kind passes; a subclass sets ``kind`` (and the ``strategy`` fixture)."""

    kind: ClassVar[str]
    saved_as_adapter: ClassVar[bool] = False

    @pytest.fixture
    def trained(self, runs, strategy) -> Trained:
        return runs.get(self.kind, strategy)

    def test_reload_predicts_what_training_left(self, trained):
        assert is_adapter(trained.folder) == self.saved_as_adapter
        before = first_subtoken_probabilities(trained.model, trained.tokenizer, SENTENCES)
        untrained = first_subtoken_probabilities(trained.untrained, trained.tokenizer, SENTENCES)
        reloaded = WordTagger.from_pretrained(trained.folder)
        assert reloaded.model is not trained.model  # read back from the folder
        assert reloaded.labels == LABELS
        after = reloaded(SENTENCES)
        assert_close(after.probabilities, before)
        names = config_labels(trained.model)
        assert after.tags == [[names[i] for i in p.argmax(-1)] for p in before]
        moved = max(float(np.abs(a - u).max()) for a, u in zip(after.probabilities, untrained))
        assert moved > MOVED, f"the saved model predicts as the untrained one (max change {moved:.2e})"

    def test_every_inference_path_agrees(self, trained):
        probabilities, tags = WordTagger.from_pretrained(trained.folder)(SENTENCES)
        data = datasets.Dataset.from_dict({"tokens": SENTENCES})

        for result, p, sentence_tags in zip(predict(trained.folder, SENTENCES, batch_size=3), probabilities, tags):
            spans = [(s["start"], s["end"], s["label"]) for s in tags_to_spans(sentence_tags)]
            assert [(e["start"], e["end"], e["label"]) for e in result["entities"]] == spans
            for entity in result["entities"]:
                assert entity["score"] == pytest.approx(p[entity["start"] : entity["end"]].max(-1).mean(), abs=1e-4)

        tagged = Tag(trained.folder, tokens_column="tokens", probs_column="probs", batch_size=2, device="cpu").apply(
            data
        )
        assert_close(tagged["probs"], probabilities)
        assert tagged["source_entities"] == [tags_to_spans(validate_iob2(t, repair=True)) for t in tags]

        with_probs = add_teacher_probs(data, [TeacherProbabilities(trained.folder, batch_size=3, device="cpu")])
        assert teacher_labels(with_probs) == LABELS
        assert_close(with_probs["teacher_probs"], probabilities)
        assert with_probs["teacher_tags"] == [[LABELS.index(t) for t in s] for s in tags]


class TestTeacher(ModelKindTest):
    kind = "teacher"

    @pytest.fixture
    def strategy(self):
        return None  # a teacher is fine-tuned on tags, not distilled


class StudentTest(ModelKindTest):
    @pytest.fixture(params=list(STRATEGIES))
    def strategy(self, request):
        return request.param


class TestFullStudent(StudentTest):
    kind = "full"


class TestLoraStudent(StudentTest):
    kind = "lora"
    saved_as_adapter = True


class TestMergedStudent(StudentTest):
    kind = "merged"
