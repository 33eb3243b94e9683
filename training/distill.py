"""Distil a token-classification student from one or more teachers on unlabelled target-language text.

Runs as ``accelerate launch -m training.distill ...`` and as ``xner distill ...`` with the same
arguments (the vocabulary of transformers' ``run_ner_no_trainer.py`` plus the distillation ones);
``xner merge ADAPTER_DIR OUTPUT_DIR`` merges a LoRA student into a plain model. A user error ends the
run with one line on stderr and exit status 2 (``XNER_DEBUG=1``, or ``xner --debug``: the traceback);
``accelerate launch -q`` keeps the launcher from adding a traceback of its own.

Training text
    ``--corpus NAME --lang L`` (a corpus of ``dataset_builders``; its gold labels, if any, are
    DROPPED: only the words are used) and/or ``--dataset PATH`` (a dataset saved with
    ``save_to_disk`` or loadable with ``load_dataset``, e.g. a projection's output: its
    ``projected_tags`` feed the ``projected+kd`` strategy, on the words they were projected onto --
    ``translation_tokens`` for translate-train, ``tokens`` for translate-test, found by length or
    given with ``--text_column``). With both, the student learns from the union: the corpus rows
    carry the teacher signal only, the projected rows also their projected tags ("cross-entropy on
    projected tags where they exist", UniTrans).
Teachers
    ``--teacher PATH`` (repeatable). Their word-level distributions are computed ONCE per corpus and
    stored as a cached dataset column (:func:`training.teacher_probs.add_teacher_probs`); every
    teacher is unloaded before the student is built. Several teachers are averaged with
    ``--teacher_weights`` or with weights from ``--teacher_similarities`` (uniform otherwise).
    ``--on_the_fly`` computes the same distributions inside each step instead (teachers stay in
    memory; no column is written).
Strategy
    ``--strategy`` one of :data:`training.strategies.STRATEGIES` with its parameters
    (``--temperature``, ``--threshold``, ``--alpha``, ``--agree_only``, ``--soft_loss``); a
    parameter the strategy does not take is an error.
Student
    ``--model_name_or_path`` (the pretrained encoder the student starts from, as in Wu et al. 2020),
    ``--student full|lora`` (LoRA rank/alpha/dropout/target modules), ``--freeze_embeddings``,
    ``--freeze_layers N``. Teachers and student share one label set; a mismatch is an error listing
    both sets.
Evaluation
    ``--eval NAME[:split][@lang][=in|out]`` (repeatable; the test-set syntax of ``xner evaluate``,
    :class:`training.evaluation.TestSpec`: gold corpora such as ``conll2002:test@es``, a saved
    dataset or a CoNLL file) is evaluated at every epoch end by the one evaluation core
    (:func:`training.evaluation.prepare_test_sets` + the loop's ``NerEvaluator``), in the one result
    schema (``precision``, ``recall``, ``f1``, ``accuracy``, ``per_type``); ``--best_on KEY`` keeps
    the epoch scoring best F1 on that set (the final model otherwise). A corpus whose type set
    differs from the student's must be mapped explicitly with ``--eval_type_map TYPE=TARGET ...``
    (``MISC=O DATE=O`` or ``MISC=O,DATE=O``; applied to gold and predicted tags alike).

``output_dir`` receives the student (a full model, or a LoRA adapter written by
:func:`training.students.save_student`: adapter + head + ``config.json`` with the labels +
tokenizer), ``checkpoints/`` and ``results.json``: per-epoch evaluations, the evaluation of the saved
model, strategy and parameters, teachers and weights, student kind and trainable parameters, training
loss, wall time, training tokens per second and peak memory. The folder and every model path are
checked before anything loads; the final files are staged and published together, results last
(``training.outputs``): a failed run never leaves a folder that looks finished. ``xner merge`` too.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoConfig

from dataset_builders.corpora import corpus_spec, load_corpus
from dataset_builders.error_report import run_reporting_errors
from dataset_builders.errors import UserError
from training.arguments import non_negative_int, positive_int
from training.collate import TokenCollator, build_dataloader
from training.metrics import SCORE_KEYS
from training.evaluation import TestSpec, evaluator_for, load_test_set, parse_type_map, prepare_test_sets
from training.features import (
    IGNORE_INDEX, PROJECTED_TAGS, TokenAligner, choose_text_column, projection_row_ok, tokenize_dataset,
)
from training.inference import load_tokenizer
from training.loop import LoopConfig, NerEvaluator, make_accelerator, train
from training.outputs import OutputFolder, check_output_dir
from training.run_options import check_run_options, push_at_end
from training.strategies import STRATEGIES, MultiTeacher, from_config, normalise_weights, similarity_weights
from training.students import LoraSettings, build_student, is_adapter, merge_adapter, save_student
from training.teacher import add_loop_arguments, add_text_arguments, check_arguments
from training.teacher_probs import (
    TEACHER_PROBS,
    OnTheFlyTeachers,
    TeacherProbabilities,
    add_teacher_probs,
    check_label_sets,
    student_features,
)

logger = logging.getLogger(__name__)

STUDENT_KINDS = ("full", "lora")
# Adapters need a higher rate than a full fine-tune (LoRA at 5e-5 barely learns on MiniLM).
DEFAULT_LEARNING_RATE = {"full": 5e-5, "lora": 5e-4}
RESULTS_FILE = "results.json"
RESULTS_FORMAT = 1  # bump when a key of results.json changes meaning


# --------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("training text (unlabelled)")
    data.add_argument(
        "--corpus",
        help="a known corpus of dataset_builders whose WORDS are the training text; its gold labels, if any, "
        "are dropped (never used for training)",
    )
    data.add_argument("--lang", help="language of --corpus, for multilingual corpora")
    data.add_argument(
        "--data-dir", "--data_dir", dest="data_dir",
        help="folder holding the corpus folders, for --corpus and --eval (default: $XNER_DATA_DIR or ../shared/data)",
    )  # fmt: skip
    data.add_argument("--train_split", default="train", help="split of --corpus / --dataset to train on")
    data.add_argument(
        "--dataset",
        help="a dataset folder (save_to_disk) or a path/Hub id for load_dataset, e.g. a projection's output; "
        "its projected_tags are used by projected+kd (other labels are ignored)",
    )
    data.add_argument("--dataset_config", "--dataset-config", dest="dataset_config", help="config of --dataset")
    data.add_argument("--max_train_samples", type=positive_int, help="keep the first N sentences (of --corpus and of --dataset each)")
    data.add_argument("--max_eval_samples", type=positive_int, help="keep the first N sentences of every --eval set")
    add_text_arguments(data)

    teachers = parser.add_argument_group("teachers")
    teachers.add_argument(
        "--teacher", action="append", required=True, metavar="PATH",
        help="a token-classification teacher (folder or Hub id); repeat for several teachers",
    )  # fmt: skip
    teachers.add_argument("--teacher_weights", help="comma-separated weights, one per --teacher (normalised)")
    teachers.add_argument(
        "--teacher_similarities",
        help="comma-separated language similarities, one per --teacher; weights = softmax(s / T) (Wu et al. 2020)",
    )
    teachers.add_argument("--similarity_temperature", type=float, help="T of --teacher_similarities (default 1)")
    teachers.add_argument(
        "--on_the_fly", action="store_true",
        help="compute teacher probabilities inside each training step (teachers stay loaded) instead of once, "
        "as a cached dataset column",
    )  # fmt: skip
    teachers.add_argument("--teacher_batch_size", type=positive_int, default=64, help="windows per teacher forward pass")

    strategy = parser.add_argument_group("strategy")
    strategy.add_argument("--strategy", default="soft-mse", choices=list(STRATEGIES), help="the distillation loss")
    strategy.add_argument("--temperature", type=float, help="soft-kl (and soft_loss=soft-kl): softening temperature")
    strategy.add_argument("--threshold", type=float, help="hard-confident: minimum teacher probability kept")
    strategy.add_argument("--alpha", type=float, help="projected+kd: weight of the soft loss")
    strategy.add_argument(
        "--agree_only", action="store_true", default=None,
        help="projected+kd: cross-entropy only where projected tag and teacher argmax agree",
    )  # fmt: skip
    strategy.add_argument("--soft_loss", choices=["soft-mse", "soft-kl"], help="multi-teacher, projected+kd: the soft loss")

    student = parser.add_argument_group("student")
    student.add_argument(
        "--model_name_or_path", required=True,
        help="the pretrained encoder the student starts from (folder or Hub id); a checkpoint with a head keeps "
        "its label order, which must be the teachers' label set",
    )  # fmt: skip
    student.add_argument("--student", default="full", choices=STUDENT_KINDS, help="full fine-tune or LoRA adapters")
    student.add_argument("--lora_r", type=positive_int, default=8)
    student.add_argument("--lora_alpha", type=positive_int, default=16)
    student.add_argument("--lora_dropout", type=float, default=0.1)
    student.add_argument("--lora_target_modules", help="comma-separated module names (default: per architecture)")
    student.add_argument("--freeze_embeddings", action="store_true", help="do not train the embeddings")
    student.add_argument("--freeze_layers", type=non_negative_int, default=0, help="do not train the lowest N encoder layers")

    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument(
        "--eval", action="append", default=[], metavar="NAME[:split][@lang][=in|out]",
        help="a gold-labelled test set evaluated every epoch, e.g. conll2002:test@es or europarl-ner@es=out "
        "(xner evaluate's --test syntax; split default: test); repeatable. Reported under the key NAME[-lang][:split]",
    )  # fmt: skip
    evaluation.add_argument(
        "--eval_type_map", nargs="+", action="extend", default=[], metavar="TYPE=TARGET",
        help="explicit entity-type mapping for evaluation corpora whose scheme differs from the student's, "
        "applied to gold and predicted tags, e.g. MISC=O,DATE=O (O drops the type)",
    )  # fmt: skip
    evaluation.add_argument("--best_on", help="keep the epoch scoring best (overall F1) on this --eval set")

    optim = parser.add_argument_group("optimisation")
    add_loop_arguments(parser, optim, learning_rate=None,
                       learning_rate_help="default: 5e-5 for a full student, 5e-4 for LoRA")


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter_dir", help="a LoRA student folder written by xner distill --student lora")
    parser.add_argument("output_dir", help="where the merged plain model (config with id2label + tokenizer) goes")


def register(subparsers) -> None:
    """Add ``distill`` and ``merge`` to the ``xner`` command."""
    parser = subparsers.add_parser(
        "distill", help="distil a student from teachers on unlabelled text", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    merge = subparsers.add_parser(
        "merge",
        help="merge a LoRA student into a plain token-classification model",
        description="Merge a LoRA adapter (saved by xner distill --student lora) into its base model.",
    )
    add_merge_arguments(merge)
    merge.set_defaults(func=run_merge)


PROG = "python -m training.distill"


def _argv(argv: Optional[Sequence[str]]) -> list[str]:
    import sys

    return list(sys.argv[1:] if argv is None else argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m training.distill ARGS`` (distillation) or ``python -m training.distill merge ADAPTER OUT``.

    Errors propagate; the ``__main__`` block reports them in one line."""
    argv = _argv(argv)
    if argv[:1] == ["merge"]:
        parser = argparse.ArgumentParser(prog=f"{PROG} merge")
        add_merge_arguments(parser)
        return run_merge(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    check_run_options(args)  # a push or tracker that cannot happen is refused before training
    distill(args)
    push_at_end(args)
    return 0


def run_merge(args: argparse.Namespace) -> int:
    merge_student(args.adapter_dir, args.output_dir)
    print(f"merged {args.adapter_dir} -> {args.output_dir}")
    return 0


def merge_student(adapter_dir: str, output_dir: str) -> str:
    """:func:`training.students.merge_adapter`, plus the run's ``results.json`` (marked as merged) when there is one.

    The output folder is checked first and filled atomically (staged, then published)."""
    check_output_dir(output_dir, "output_dir")
    if not os.path.isdir(adapter_dir):
        raise UserError(f"adapter_dir {adapter_dir}: no such folder")
    outputs = OutputFolder(output_dir, RESULTS_FILE)
    staging = outputs.begin()
    merge_adapter(adapter_dir, staging)
    source = os.path.join(adapter_dir, RESULTS_FILE)
    if os.path.isfile(source):
        with open(source, encoding="utf-8") as f:
            results = json.load(f)
        results["merged_from"] = os.path.abspath(adapter_dir)
        with open(os.path.join(staging, RESULTS_FILE), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    outputs.publish()
    return output_dir


# ----------------------------------------------------------------------------------- argument parsing


def _floats(text: Optional[str], what: str) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated numbers, got {text!r}") from None


def strategy_from_args(args: argparse.Namespace):
    """The strategy named by ``--strategy`` with the parameters given on the command line."""
    params: dict[str, Any] = {}
    for name in ("temperature", "threshold", "alpha", "agree_only", "soft_loss"):
        value = getattr(args, name, None)
        if value is not None:
            params[name] = value
    if args.strategy == MultiTeacher.name:
        weights = _floats(args.teacher_weights, "--teacher_weights")
        similarities = _floats(args.teacher_similarities, "--teacher_similarities")
        if weights is not None:
            params["weights"] = weights
        if similarities is not None:
            params["similarities"] = similarities
        if args.similarity_temperature is not None:
            params["similarity_temperature"] = args.similarity_temperature
    return from_config(args.strategy, **params)


def resolve_teacher_weights(args: argparse.Namespace, strategy, n_teachers: int) -> list[float]:
    """Weights (summing to 1) for averaging the teachers: the strategy's for multi-teacher, else the flags'."""
    if isinstance(strategy, MultiTeacher):
        return strategy.teacher_weights(n_teachers)
    weights = _floats(args.teacher_weights, "--teacher_weights")
    similarities = _floats(args.teacher_similarities, "--teacher_similarities")
    if weights is not None and similarities is not None:
        raise ValueError("give either --teacher_weights or --teacher_similarities, not both")
    given = weights if weights is not None else similarities
    if given is not None and len(given) != n_teachers:
        raise ValueError(f"{len(given)} teacher weights/similarities for {n_teachers} teachers")
    if weights is not None:
        return normalise_weights(weights)
    if similarities is not None:
        return similarity_weights(similarities, args.similarity_temperature or 1.0)
    return [1.0 / n_teachers] * n_teachers


# ------------------------------------------------------------------------------------------ evaluation


class Evaluations:
    """The ``evaluate`` callback of the loop: the one evaluator (:func:`training.evaluation.evaluator_for`)
    over the ``--eval`` sets, plus the epoch's mean training loss."""

    def __init__(self, accelerator: Accelerator, evaluator: Optional[NerEvaluator], recorder: Optional["LossRecorder"] = None):
        self.accelerator, self.evaluator, self.recorder = accelerator, evaluator, recorder

    def __call__(self, model: torch.nn.Module) -> dict[str, dict]:
        results = self.evaluator(model) if self.evaluator is not None else {}
        if self.recorder is not None:
            results["train"] = {"loss": self.recorder.epoch_mean(self.accelerator)}
        return results


# ----------------------------------------------------------------------------------------- training text


def _first(dataset: datasets.Dataset, n: Optional[int]) -> datasets.Dataset:
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


def _load_dataset(path: str, config: Optional[str]) -> datasets.DatasetDict:
    saved = any(os.path.isfile(os.path.join(path, f)) for f in ("dataset_dict.json", "state.json"))
    data = datasets.load_from_disk(path) if saved else datasets.load_dataset(path, config)
    return datasets.DatasetDict({"train": data}) if isinstance(data, datasets.Dataset) else data


@dataclass
class TextPart:
    """One source of training text: ``tokens`` (and ``projected_tags`` where the source has them)."""

    name: str
    words: datasets.Dataset
    has_tags: bool
    info: dict


def load_training_text(args: argparse.Namespace, needs_tags: bool) -> list[TextPart]:
    """The training text of ``--corpus`` (labels dropped) and/or ``--dataset`` (words + projected tags)."""
    if not args.corpus and not args.dataset:
        raise ValueError("give the training text: --corpus NAME and/or --dataset PATH")
    parts = []
    if args.corpus:
        data = load_corpus(args.corpus, data_dir=args.data_dir, lang=args.lang, splits=[args.train_split])
        words = _first(data[args.train_split], args.max_train_samples)
        dropped = [c for c in words.column_names if c != "tokens"]
        words = words.select_columns(["tokens"])
        parts.append(TextPart(f"{args.corpus}-{args.lang}" if args.lang else args.corpus, words, False,
                              {"kind": "corpus", "corpus": args.corpus, "lang": args.lang, "split": args.train_split,
                               "text_column": "tokens", "dropped_columns": dropped, "num_sentences": len(words)}))  # fmt: skip
    if args.dataset:
        data = _load_dataset(args.dataset, args.dataset_config)
        if args.train_split not in data:
            raise ValueError(f"split {args.train_split!r} not in {args.dataset}; it has {list(data)}")
        split = data[args.train_split]
        has_tags = PROJECTED_TAGS in split.column_names
        if needs_tags and not has_tags:
            raise ValueError(f"strategy projected+kd needs a {PROJECTED_TAGS!r} column; {args.dataset} has {split.column_names}")
        split = _first(split, args.max_train_samples)
        flagged = 0
        if {"translation_error", "projection_stats"} & set(split.column_names):
            before = len(split)
            split = split.filter(projection_row_ok, desc="drop flagged rows")
            flagged = before - len(split)
        column = choose_text_column(split, args.text_column)
        keep = [column] + ([PROJECTED_TAGS] if needs_tags else [])
        words = split.select_columns(keep)
        if column != "tokens":
            words = words.rename_column(column, "tokens")
        parts.append(TextPart(os.path.basename(os.path.normpath(args.dataset)), words, needs_tags,
                              {"kind": "dataset", "dataset": args.dataset, "dataset_config": args.dataset_config,
                               "split": args.train_split, "text_column": column, "projected_tags": needs_tags,
                               "flagged_rows_dropped": flagged, "num_sentences": len(words)}))  # fmt: skip
    if needs_tags and not any(p.has_tags for p in parts):
        raise ValueError("strategy projected+kd needs projected tags: give --dataset with a projected_tags column")
    return parts


def _with_ignored_labels(features: datasets.Dataset) -> datasets.Dataset:
    """Add ``labels`` of -100 everywhere (rows without projected tags, next to rows with them)."""
    return features.map(
        lambda batch: {"labels": [[IGNORE_INDEX] * len(ids) for ids in batch["input_ids"]]},
        batched=True,
        desc="no projected tags",
    )


def _concatenate(parts: Sequence[datasets.Dataset], sizes: Sequence[int]) -> datasets.Dataset:
    """Concatenate feature datasets, shifting ``sentence_id`` so it indexes the concatenated sentences."""
    shifted, offset = [], 0
    for features, size in zip(parts, sizes):
        if offset:
            features = features.map(
                lambda batch, o=offset: {"sentence_id": [s + o for s in batch["sentence_id"]]},
                batched=True,
                desc="shift sentence ids",
            )
        shifted.append(features)
        offset += size
    if len(shifted) == 1:
        return shifted[0]
    reference = shifted[0].features
    return datasets.concatenate_datasets([shifted[0]] + [f.cast(reference) for f in shifted[1:]])


# -------------------------------------------------------------------------------------------- training


class LossRecorder:
    """The loop's ``loss_fn``: the strategy on the student logits (teacher probabilities added on the fly
    when asked), recording the first micro-batch loss and per-epoch means without a device sync per step."""

    def __init__(self, strategy, on_the_fly: Optional[OnTheFlyTeachers] = None,
                 sentences: Optional[Sequence[Sequence[str]]] = None, label_columns: Optional[Sequence[int]] = None):  # fmt: skip
        self.strategy, self.on_the_fly = strategy, on_the_fly
        self.sentences, self.label_columns = sentences, label_columns
        self.first: Optional[torch.Tensor] = None
        self.total: Optional[torch.Tensor] = None
        self.count = 0

    def __call__(self, outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.on_the_fly is not None:
            batch = {**batch, TEACHER_PROBS: self.on_the_fly.for_batch(batch, self.sentences, self.label_columns)}
        loss = self.strategy(outputs.logits, batch)
        value = loss.detach().float()
        if self.first is None:
            self.first = value
        self.total = value if self.total is None else self.total + value
        self.count += 1
        return loss

    def epoch_mean(self, accelerator: Accelerator) -> Optional[float]:
        """Mean micro-batch loss since the last call, averaged over processes (a collective)."""
        total = self.total if self.total is not None else torch.zeros((), device=accelerator.device)
        sums = accelerator.reduce(torch.stack([total.float(), torch.tensor(float(self.count), device=total.device)]), "sum")
        self.total, self.count = None, 0
        return float(sums[0] / sums[1]) if float(sums[1]) else None


def _has_real_labels(config) -> bool:
    return any(label != f"LABEL_{i}" for i, label in config.id2label.items())


def resolve_labels(teachers: Sequence[TeacherProbabilities], student_base: str) -> list[str]:
    """The student's label names: the teachers' shared set, in the base checkpoint's order when it has a head."""
    labels = list(teachers[0].labels)
    for teacher in teachers[1:]:
        try:
            check_label_sets(teacher.labels, labels)
        except ValueError as err:
            raise ValueError(f"teachers {teachers[0].model_name_or_path} and {teacher.model_name_or_path}: {err}") from None
    config = AutoConfig.from_pretrained(student_base)
    if _has_real_labels(config):
        student = [config.id2label[i] for i in range(len(config.id2label))]
        check_label_sets(labels, student)
        return student
    return labels


def loop_config(args: argparse.Namespace, best_split: str) -> LoopConfig:
    return LoopConfig(
        output_dir=args.output_dir, num_train_epochs=args.num_train_epochs, max_train_steps=args.max_train_steps,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=args.learning_rate or DEFAULT_LEARNING_RATE[args.student],
        weight_decay=args.weight_decay, lr_scheduler_type=args.lr_scheduler_type,
        num_warmup_steps=args.num_warmup_steps, max_grad_norm=args.max_grad_norm or None,
        checkpointing_steps=args.checkpointing_steps, resume_from_checkpoint=args.resume_from_checkpoint,
        with_tracking=args.with_tracking, report_to=args.report_to, project_name="xner-distill",
        mixed_precision=args.mixed_precision, best_split=best_split, metric_for_best="f1",
        trust_checkpoint_pickles=args.trust_checkpoint_pickles,
    )  # fmt: skip


def _best_key(best_on: Optional[str], specs: Sequence[TestSpec]) -> str:
    if not best_on:
        return ""
    keys = [s.display_name for s in specs]
    if best_on in keys:
        return best_on
    try:
        key = TestSpec.parse(best_on).display_name
    except ValueError:
        key = None
    if key not in keys:
        raise ValueError(f"--best_on {best_on!r} is not one of the --eval sets {keys}")
    return key


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def distill(args: argparse.Namespace) -> dict:
    """Build the teacher signal, train the student, save it and ``results.json``; returns the results."""
    started = time.perf_counter()
    train_domain = corpus_spec(args.corpus).domain or None if args.corpus else None
    strategy = strategy_from_args(args)
    specs = [TestSpec.parse(e).check() for e in args.eval]
    best_split = _best_key(args.best_on, specs)
    type_map = parse_type_map(args.eval_type_map, "--eval_type_map")
    config = loop_config(args, best_split)
    check_arguments(args, [("--teacher", teacher) for teacher in args.teacher])
    accelerator = make_accelerator(config)
    if not accelerator.is_local_main_process:
        datasets.disable_progress_bars()
    set_seed(args.seed)
    device = str(accelerator.device)

    teachers = [TeacherProbabilities(path, batch_size=args.teacher_batch_size, device=device) for path in args.teacher]
    weights = resolve_teacher_weights(args, strategy, len(teachers))
    student_labels = resolve_labels(teachers, args.model_name_or_path)
    tokenizer = load_tokenizer(args.model_name_or_path)
    aligner_args = dict(max_length=args.max_length, stride=args.stride)
    parts = load_training_text(args, strategy.needs_projected_labels)
    sentences: list = []
    teacher_seconds = 0.0
    with accelerator.main_process_first():
        feature_parts = []
        for part in parts:
            label_column = PROJECTED_TAGS if part.has_tags else None
            if args.on_the_fly:
                aligner = TokenAligner(tokenizer, label_column=label_column, **aligner_args)
                features = tokenize_dataset(part.words, aligner, num_proc=args.preprocessing_num_workers,
                                            desc=f"student features {part.name}")  # fmt: skip
                sentences += part.words["tokens"]
            else:
                clock = time.perf_counter()
                with_probs = add_teacher_probs(part.words, teachers, weights, desc=f"teacher probabilities {part.name}")
                teacher_seconds += time.perf_counter() - clock
                features = student_features(with_probs, tokenizer, student_labels, label_column=label_column,
                                            **aligner_args)  # fmt: skip
            if strategy.needs_projected_labels and not part.has_tags:
                features = _with_ignored_labels(features)
            feature_parts.append(features)
        train_features = _concatenate(feature_parts, [len(p.words) for p in parts])
        test_sets = [load_test_set(spec, args.data_dir, args.max_eval_samples) for spec in specs]
        # the map is applied whenever given (type_map_all), as --eval_type_map always did
        prepared = prepare_test_sets(test_sets, tokenizer, student_labels, type_map=type_map, type_map_all=True,
                                     model_name="student", num_proc=args.preprocessing_num_workers,
                                     **aligner_args)  # fmt: skip

    on_the_fly = None
    if args.on_the_fly:
        on_the_fly = OnTheFlyTeachers(teachers, weights)
        label_columns = check_label_sets(on_the_fly.labels, student_labels)
        recorder = LossRecorder(strategy, on_the_fly, sentences, label_columns)
    else:
        for teacher in teachers:
            teacher.unload()
        gc.collect()
        recorder = LossRecorder(strategy)

    set_seed(args.seed)  # the student's initialisation does not depend on how the teacher signal was made
    lora = None
    if args.student == "lora":
        targets = [m.strip() for m in args.lora_target_modules.split(",")] if args.lora_target_modules else None
        lora = LoraSettings(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                            target_modules=targets)  # fmt: skip
    model = build_student(args.model_name_or_path, student_labels, lora=lora,
                          freeze_embeddings=args.freeze_embeddings, freeze_layers=args.freeze_layers)  # fmt: skip
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    low_precision = accelerator.mixed_precision in ("fp16", "bf16", "fp8")
    collator = TokenCollator(tokenizer.pad_token_id, pad_to_multiple_of=8 if low_precision else None)
    train_dl = build_dataloader(train_features, args.per_device_train_batch_size, collator, shuffle=True, seed=args.seed)
    evaluator = evaluator_for(prepared, student_labels, accelerator, args.per_device_eval_batch_size, collator) if prepared else None
    evaluations = Evaluations(accelerator, evaluator, recorder)
    hparams = {**_json_args(args), "learning_rate": config.learning_rate, "teachers": ",".join(args.teacher),
               **{f"strategy_{k}": v for k, v in strategy.config().items() if not isinstance(v, list)}}  # fmt: skip
    outputs = OutputFolder(args.output_dir, RESULTS_FILE, accelerator.is_main_process)
    config.model_dir = staging = outputs.begin(resuming=bool(args.resume_from_checkpoint))
    accelerator.wait_for_everyone()
    state = train(model, train_dl, recorder, config, accelerator, evaluate=evaluations, tokenizer=tokenizer,
                  hparams=hparams)  # fmt: skip

    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process and lora is not None:
        if state.best_metric is None:
            save_student(unwrapped, staging, tokenizer)  # the final model
        else:  # the loop saved the best epoch's adapter; add the labels save_student writes
            unwrapped.get_base_model().config.save_pretrained(staging)
    accelerator.wait_for_everyone()
    if on_the_fly is not None:
        for teacher in teachers:
            teacher.unload()

    saved_entry = None
    if state.history:
        saved_entry = next((h for h in state.history if h["step"] == state.best_step), None) if state.best_metric is not None else state.history[-1]  # fmt: skip
    results = {
        "format": RESULTS_FORMAT,
        "task": "distillation",
        "student": {
            "base_model": args.model_name_or_path,
            "kind": args.student,
            "lora": None if lora is None else {"r": lora.r, "lora_alpha": lora.lora_alpha, "lora_dropout": lora.lora_dropout,
                                               "target_modules": lora.target_modules or "default"},  # fmt: skip
            "freeze_embeddings": args.freeze_embeddings,
            "freeze_layers": args.freeze_layers,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "label_names": list(student_labels),
            "saved_as": "adapter" if is_adapter(staging) else "model",
        },
        "strategy": strategy.config(),
        "teachers": [{"model": t.model_name_or_path, "weight": w, "label_names": list(t.labels), "fingerprint": t.fingerprint}
                     for t, w in zip(teachers, weights)],  # fmt: skip
        "teacher_probabilities": "on-the-fly" if args.on_the_fly else "precomputed",
        "teacher_probabilities_seconds": teacher_seconds,
        "train_data": [p.info for p in parts],
        "num_train_sentences": sum(len(p.words) for p in parts),
        "num_train_windows": len(train_features),
        "eval_sets": {key: p.info(train_domain) for key, p in prepared.items()},
        "best": {"eval_set": best_split or None, "metric": config.metric_for_best, "value": state.best_metric,
                 "epoch": state.best_epoch, "step": state.best_step},  # fmt: skip
        "epochs": state.history,
        "eval": None if saved_entry is None else {k: v for k, v in saved_entry.items() if k not in ("train",)},
        "train_loss": {"first": None if recorder.first is None else float(recorder.first),
                       "per_epoch": [h.get("train", {}).get("loss") for h in state.history]},  # fmt: skip
        "learning_rate": config.learning_rate,
        "completed_steps": state.completed_steps,
        "train_runtime_s": state.train_seconds,
        "train_tokens": state.train_tokens,
        "train_tokens_per_s": state.tokens_per_second,
        "padding_fraction": state.padding_fraction,
        "wall_time_s": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        "num_processes": accelerator.num_processes,
        "train_corpus": args.corpus,
        "train_domain": corpus_spec(args.corpus).domain if args.corpus else None,
        "data": {"corpus": args.corpus, "lang": args.lang, "dataset": args.dataset,
                 "dataset_config": args.dataset_config, "domain": corpus_spec(args.corpus).domain if args.corpus else None},
        "framework_versions": framework_versions(lora is not None),
        "args": {**_json_args(args), "teacher": list(args.teacher), "eval": list(args.eval)},
    }  # fmt: skip
    results["card"] = card_results(results, args)
    if accelerator.is_main_process:
        with open(os.path.join(staging, RESULTS_FILE), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        outputs.publish()
        summary = {key: round(m["f1"], 4) for key, m in (results["eval"] or {}).items() if isinstance(m, dict) and "f1" in m}  # fmt: skip
        accelerator.print(f"{strategy.name} student ({args.student}) -> {args.output_dir}; F1: {summary}")
    return results


CARD_HYPERPARAMETERS = (
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "num_train_epochs",
    "max_train_steps", "weight_decay", "lr_scheduler_type", "num_warmup_steps", "max_grad_norm", "seed",
    "mixed_precision", "max_length", "stride",
)  # fmt: skip


def framework_versions(adapter: bool) -> dict:
    import importlib.metadata as metadata

    versions = {}
    # xner's own version from its installed metadata: training sits below the xner package and may not import it.
    for name in ("xner", "transformers", "torch", "datasets", "tokenizers", "accelerate", "huggingface_hub", "peft"):
        if name == "peft" and not adapter:
            continue
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _teacher_facts(path: str) -> dict:
    """What a teacher folder's own ``results.json`` (``xner train-teacher``) says about its training data."""
    try:
        with open(os.path.join(path, RESULTS_FILE), encoding="utf-8") as f:
            data = json.load(f).get("data") or {}
    except (OSError, ValueError):
        return {}
    source = data.get("corpus") or data.get("dataset")
    language = data.get("lang") or data.get("dataset_config")
    if not source:
        return {"language": language}
    return {"language": language, "description": f"fine-tuned on {source}" + (f" ({language})" if language else "")}


def card_results(results: Mapping[str, Any], args: argparse.Namespace) -> dict:
    """The run in the shape of ``model_cards.model_card.TrainingResults`` (its field names), for model cards."""
    student = results["student"]
    train_data = []
    for part in results["train_data"]:
        if part["kind"] == "corpus":
            entry = {"dataset": part["corpus"], "config": part["lang"], "language": part["lang"],
                     "domain": corpus_spec(part["corpus"]).domain or None}  # fmt: skip
        else:
            entry = {"dataset": part["dataset"], "config": part["dataset_config"], "language": None, "domain": None}
        labels = "teacher probabilities" + (" + projected_tags" if part.get("projected_tags") else "")
        train_data.append({**entry, "split": part["split"], "num_sentences": part["num_sentences"], "labels": labels})
    saved = results["eval"] or {}
    evaluations = [
        {"name": key, "metrics": {k: saved[key][k] for k in SCORE_KEYS}, "dataset": info["corpus"] or key,
         "config": info["lang"], "split": info["split"] or "test", "language": info["lang"],
         "domain": info["corpus_domain"], "in_domain": {"in": True, "out": False}.get(info["domain"]),
         "num_sentences": info["num_sentences"], "revision": None}
        for key, info in results["eval_sets"].items() if key in saved
    ]  # fmt: skip
    hyperparameters = {k: getattr(args, k) for k in CARD_HYPERPARAMETERS if getattr(args, k, None) is not None}
    hyperparameters.update(learning_rate=results["learning_rate"], num_processes=results["num_processes"])
    training = {k: results[k] for k in ("completed_steps", "train_runtime_s", "train_tokens_per_s", "best")}
    teachers = [{"model": t["model"], "weight": t["weight"], **_teacher_facts(t["model"])} for t in results["teachers"]]
    return {
        "base_model": student["base_model"],
        "label_names": student["label_names"],
        "adapter": student["lora"],
        "freeze": {"embeddings": student["freeze_embeddings"], "layers": student["freeze_layers"]},
        "teachers": teachers,
        "strategy": results["strategy"],
        "train_data": train_data,
        "evaluations": evaluations,
        "hyperparameters": hyperparameters,
        "training": training,
        "framework_versions": results["framework_versions"],
    }


def _json_args(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None))) and k != "func"}


__all__ = [
    "Evaluations", "LossRecorder", "add_arguments", "choose_text_column", "distill", "load_training_text", "main",
    "merge_student", "register", "run", "run_merge", "strategy_from_args",
]  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(f"{PROG} merge" if _argv(None)[:1] == ["merge"] else PROG, main))
