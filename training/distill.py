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
    (``--temperature``, ``--threshold`` or ``--keep_per_class``, ``--alpha``, ``--agree_only``, ``--soft_loss``); a
    parameter the strategy does not take is an error.
Strategy zoo, round two (issue 15)
    ``--denoise reweight|relabel`` (``--denoise_k``, ``--denoise_threshold``): neighbour consistency
    (:mod:`training.denoise`) on the first teacher's word representations; ``kd_weight`` reaches the
    strategies as a word column, relabelled words get a one-hot teacher row. ``--select_language_agnostic
    RATIO --selection_source SPEC``: AdvPicker's discriminator on sentence vectors (:mod:`training.selection`)
    keeps the least language-specific training sentences. ``--strategy voting``: its disagreement rate is
    logged per epoch (``train_strategy_disagreement_rate``). ``--self_training_rounds N`` (threshold
    schedule ``--self_training_threshold_start/_end``): :mod:`training.self_training`. Recorded in
    results.json as ``data.denoising``, ``data.language_agnostic_selection``,
    ``train_loss.strategy_statistics``, ``student.self_training``.
Model selection
    ``--selection source-dev|translate-train-dev|target-dev`` with ``--source_dev``,
    ``--translate_train_dev``, ``--target_dev`` (``--allow_target_dev`` for gold target dev):
    :func:`training.model_selection.choose_selection` picks the dev set ``--best_on`` uses; recorded as
    ``best.selection`` (and in the card).
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
import dataclasses
import gc
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import datasets
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoConfig, HfArgumentParser

from dataset_builders.corpora import corpus_spec, load_corpus
from dataset_builders.error_report import run_reporting_errors
from dataset_builders.errors import UserError
from training.arguments import (
    DataArguments,
    EvaluationArguments,
    HubArguments,
    LoopArguments,
    ModelArguments,
    StrategyArguments,
    StudentArguments,
    TeacherArguments,
    as_record,
    from_namespace,
)
from training.assets import resolve_model_name
from training.collate import TokenCollator, build_dataloader
from training.denoise import DENOISED_TAGS, KD_WEIGHT, NeighbourDenoising, apply_relabels, denoise
from training.evaluation import TestSpec, evaluator_for, load_test_set, parse_type_map, prepare_test_sets
from training.features import (
    IGNORE_INDEX,
    PROJECTED_TAGS,
    TokenAligner,
    choose_text_column,
    projection_row_ok,
    tokenize_dataset,
)
from training.inference import WordTagger, has_trained_labels, labels_of, load_tokenizer
from training.loop import LoopConfig, NerEvaluator, make_accelerator, train
from training.model_selection import choose_selection
from training.outputs import OutputFolder, check_output_dir
from training.results import PSEUDO_LABEL_STEPS, RESULTS_FILE, RunResults, framework_versions, peak_memory_mb
from training.run_options import check_run_options, push_at_end
from training.selection import select_language_agnostic
from training.self_training import (
    SelfTrainingSchedule,
    plan_rounds,
    round_cache_key,
    teacher_probs_cache_dir,
    teacher_probs_cache_file,
)
from training.strategies import STRATEGIES, MultiTeacher, from_config, normalise_weights, similarity_weights
from training.students import LoraSettings, build_student, is_adapter, merge_adapter, save_student
from training.teacher import check_arguments, load_dataset_dict, loop_config
from training.teacher_probs import (
    TEACHER_PROBS,
    OnTheFlyTeachers,
    TeacherProbabilities,
    add_teacher_probs,
    check_label_sets,
    head_confidences,
    student_features,
)

logger = logging.getLogger(__name__)

STUDENT_KINDS = ("full", "lora")
# Adapters need a higher rate than a full fine-tune (LoRA at 5e-5 barely learns on MiniLM).
DEFAULT_LEARNING_RATE = {"full": 5e-5, "lora": 5e-4}


# --------------------------------------------------------------------------------------------- CLI


ARGUMENTS = (
    DataArguments,
    ModelArguments,
    TeacherArguments,
    StrategyArguments,
    StudentArguments,
    EvaluationArguments,
    LoopArguments,
    HubArguments,
)
DESCRIPTION = __doc__.split("\n\n")[0]


@dataclass
class DistillArguments:
    """Every setting of one distillation run, grouped as the command line groups them."""

    data: DataArguments
    model: ModelArguments
    teachers: TeacherArguments
    strategy: StrategyArguments
    student: StudentArguments
    evaluation: EvaluationArguments
    loop: LoopArguments
    hub: HubArguments = dataclasses.field(default_factory=HubArguments)

    def record(self) -> dict:
        """Every option as plain values (the Hub token left out): results.json's ``args``."""
        return as_record(self.data, self.model, self.teachers, self.strategy, self.student, self.evaluation, self.loop)


def build_parser(**kwargs) -> HfArgumentParser:
    """The one parser of ``xner distill`` and ``python -m training.distill``, from :data:`ARGUMENTS`."""
    return HfArgumentParser(ARGUMENTS, **kwargs)


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter_dir", help="a LoRA student folder written by xner distill --student lora")
    parser.add_argument("output_dir", help="where the merged plain model (config with id2label + tokenizer) goes")


def register(subparsers) -> None:
    """Add ``distill`` and ``merge`` to the ``xner`` command."""
    parser = subparsers.add_parser(
        "distill",
        help="distil a student from teachers on unlabelled text",
        description=DESCRIPTION,
        parents=[build_parser(add_help=False)],
    )
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
    parsed = build_parser(prog=PROG, description=DESCRIPTION).parse_args_into_dataclasses(
        argv, look_for_args_file=False
    )
    return run_typed(DistillArguments(*parsed))


def run(namespace: argparse.Namespace) -> int:
    """The ``xner distill`` verb: the parsed options become the dataclasses here, the CLI edge."""
    return run_typed(DistillArguments(*from_namespace(ARGUMENTS, namespace)))


def run_typed(arguments: DistillArguments) -> int:
    check_run_options(arguments.hub, arguments.loop)  # a push or tracker that cannot happen is refused before training
    distill(arguments)
    push_at_end(arguments.hub, arguments.loop.output_dir)
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


def strategy_from_args(strategy: StrategyArguments, teachers: TeacherArguments):
    """The strategy named by ``--strategy`` with the parameters given on the command line."""
    params: dict[str, Any] = {}
    for name in ("temperature", "threshold", "keep_per_class", "alpha", "agree_only", "soft_loss"):
        value = getattr(strategy, name)
        if value is not None:
            params[name] = value
    if strategy.strategy == MultiTeacher.name:
        weights = _floats(teachers.teacher_weights, "--teacher_weights")
        similarities = _floats(teachers.teacher_similarities, "--teacher_similarities")
        if weights is not None:
            params["weights"] = weights
        if similarities is not None:
            params["similarities"] = similarities
        if teachers.similarity_temperature is not None:
            params["similarity_temperature"] = teachers.similarity_temperature
    if strategy.strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy.strategy!r}: one of {list(STRATEGIES)}")
    return from_config(strategy.strategy, **params)


def resolve_teacher_weights(teachers: TeacherArguments, strategy, n_teachers: int) -> list[float]:
    """Weights (summing to 1) for averaging the teachers: the strategy's for multi-teacher, else the flags'."""
    if isinstance(strategy, MultiTeacher):
        return strategy.teacher_weights(n_teachers)
    weights = _floats(teachers.teacher_weights, "--teacher_weights")
    similarities = _floats(teachers.teacher_similarities, "--teacher_similarities")
    if weights is not None and similarities is not None:
        raise ValueError("give either --teacher_weights or --teacher_similarities, not both")
    given = weights if weights is not None else similarities
    if given is not None and len(given) != n_teachers:
        raise ValueError(f"{len(given)} teacher weights/similarities for {n_teachers} teachers")
    if weights is not None:
        return normalise_weights(weights)
    if similarities is not None:
        return similarity_weights(similarities, teachers.similarity_temperature or 1.0)
    return [1.0 / n_teachers] * n_teachers


# ------------------------------------------------------------------------------------------ evaluation


class Evaluations:
    """The ``evaluate`` callback of the loop: the one evaluator (:func:`training.evaluation.evaluator_for`)
    over the ``--eval`` sets, plus the epoch's mean training loss."""

    def __init__(
        self, accelerator: Accelerator, evaluator: Optional[NerEvaluator], recorder: Optional["LossRecorder"] = None
    ):
        self.accelerator, self.evaluator, self.recorder = accelerator, evaluator, recorder

    def __call__(self, model: torch.nn.Module) -> dict[str, dict]:
        results = self.evaluator(model) if self.evaluator is not None else {}
        if self.recorder is not None:
            results["train"] = {"loss": self.recorder.epoch_mean(self.accelerator)}
            statistics = self.recorder.epoch_statistics(self.accelerator)
            # flat keys, so the loop's per-epoch line and trackers show them (train_strategy_disagreement_rate)
            results["train"].update({f"strategy_{k}": v for k, v in statistics.items()})
        return results


# ----------------------------------------------------------------------------------------- training text


def _first(dataset: datasets.Dataset, n: Optional[int]) -> datasets.Dataset:
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


@dataclass
class TextPart:
    """One source of training text: ``tokens`` (and ``projected_tags`` where the source has them)."""

    name: str
    words: datasets.Dataset
    has_tags: bool
    info: dict


def load_training_text(args: DataArguments, needs_tags: bool) -> list[TextPart]:
    """The training text of ``--corpus`` (labels dropped) and/or ``--dataset`` (words + projected tags)."""
    if not args.corpus and not args.dataset_name:
        raise ValueError("give the training text: --corpus NAME and/or --dataset_name PATH")
    parts = []
    if args.corpus:
        data = load_corpus(args.corpus, data_dir=args.data_dir, lang=args.lang, splits=[args.train_split])
        words = _first(data[args.train_split], args.max_train_samples)
        dropped = [c for c in words.column_names if c != "tokens"]
        words = words.select_columns(["tokens"])
        parts.append(
            TextPart(
                f"{args.corpus}-{args.lang}" if args.lang else args.corpus,
                words,
                False,
                {
                    "kind": "corpus",
                    "corpus": args.corpus,
                    "lang": args.lang,
                    "split": args.train_split,
                    "text_column": "tokens",
                    "dropped_columns": dropped,
                    "num_sentences": len(words),
                },
            )
        )
    if args.dataset_name:
        data = load_dataset_dict(args.dataset_name, args.dataset_config_name)
        if args.train_split not in data:
            raise ValueError(f"split {args.train_split!r} not in {args.dataset_name}; it has {list(data)}")
        split = data[args.train_split]
        has_tags = PROJECTED_TAGS in split.column_names
        if needs_tags and not has_tags:
            raise ValueError(
                f"strategy projected+kd needs a {PROJECTED_TAGS!r} column; {args.dataset_name} has {split.column_names}"
            )
        split = _first(split, args.max_train_samples)
        flagged = 0
        if {"translation_error", "projection_stats"} & set(split.column_names):
            before = len(split)
            split = split.filter(projection_row_ok, desc="drop flagged rows")
            flagged = before - len(split)
        column = choose_text_column(split, args.text_column_name)
        keep = [column] + ([PROJECTED_TAGS] if needs_tags else [])
        words = split.select_columns(keep)
        if column != "tokens":
            words = words.rename_column(column, "tokens")
        parts.append(
            TextPart(
                os.path.basename(os.path.normpath(args.dataset_name)),
                words,
                needs_tags,
                {
                    "kind": "dataset",
                    "dataset": args.dataset_name,
                    "dataset_config": args.dataset_config_name,
                    "split": args.train_split,
                    "text_column": column,
                    "projected_tags": needs_tags,
                    "flagged_rows_dropped": flagged,
                    "num_sentences": len(words),
                },
            )
        )
    if needs_tags and not any(p.has_tags for p in parts):
        raise ValueError("strategy projected+kd needs projected tags: give --dataset_name with a projected_tags column")
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

    def __init__(
        self,
        strategy,
        on_the_fly: Optional[OnTheFlyTeachers] = None,
        sentences: Optional[Sequence[Sequence[str]]] = None,
        label_columns: Optional[Sequence[int]] = None,
    ):
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

    def epoch_statistics(self, accelerator: Accelerator) -> dict:
        """What the strategy counted since the last call (e.g. ``voting``'s disagreement rate), counts summed
        over processes (a collective when the strategy counts anything), then reset."""
        stats = self.strategy.statistics()
        self.strategy.reset_statistics()
        counts = {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}
        if not counts:
            return stats
        if accelerator.num_processes > 1:
            summed = accelerator.reduce(
                torch.tensor(list(counts.values()), dtype=torch.float64, device=accelerator.device), "sum"
            )
            counts = dict(zip(counts, (int(v) for v in summed.tolist())))
        stats.update(counts)
        stats.update(self.strategy.rates(counts))  # derived: recomputed from the summed counts
        return stats

    def epoch_mean(self, accelerator: Accelerator) -> Optional[float]:
        """Mean micro-batch loss since the last call, averaged over processes (a collective)."""
        total = self.total if self.total is not None else torch.zeros((), device=accelerator.device)
        sums = accelerator.reduce(
            torch.stack([total.float(), torch.tensor(float(self.count), device=total.device)]), "sum"
        )
        self.total, self.count = None, 0
        return float(sums[0] / sums[1]) if float(sums[1]) else None


def resolve_labels(teachers: Sequence[TeacherProbabilities], student_base: str) -> list[str]:
    """The student's label names: the teachers' shared set, in the base checkpoint's order when it has a head."""
    labels = list(teachers[0].labels)
    for teacher in teachers[1:]:
        try:
            check_label_sets(teacher.labels, labels)
        except ValueError as err:
            raise ValueError(
                f"teachers {teachers[0].model_name_or_path} and {teacher.model_name_or_path}: {err}"
            ) from None
    config = AutoConfig.from_pretrained(student_base)
    student = labels_of(config)
    if has_trained_labels(student):
        check_label_sets(labels, student)
        return student
    return labels


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


def model_selection(evaluation: EvaluationArguments, data: DataArguments) -> tuple[list[str], Optional[str], dict]:
    """Honest model selection (:func:`training.model_selection.choose_selection`): the ``--eval`` sets (the chosen
    dev set added), the ``--best_on`` key and the record for results.json (``best.selection``) and the card."""
    dev_sets = (evaluation.source_dev, evaluation.translate_train_dev, evaluation.target_dev)
    if evaluation.selection is None and not any(dev_sets):
        reason = (
            "--best_on given without --selection: protocol not stated"
            if evaluation.best_on
            else "none: the final epoch is kept"
        )
        return (
            list(evaluation.eval),
            evaluation.best_on,
            {"selection": None, "dev_set": evaluation.best_on, "reason": reason},
        )
    if evaluation.best_on:
        raise UserError(
            "give --best_on or --selection (with --source_dev/--translate_train_dev/--target_dev), not both"
        )
    source_lang = TestSpec.parse(evaluation.source_dev).lang if evaluation.source_dev else None
    chosen = choose_selection(
        evaluation.selection,
        source_dev=evaluation.source_dev,
        source_lang=source_lang,
        target_lang=data.lang,
        projected_dev=evaluation.translate_train_dev,
        target_dev=evaluation.target_dev,
        allow_target_dev=evaluation.allow_target_dev,
    )
    spec = chosen.dev.dataset
    specs = list(evaluation.eval)
    if spec not in specs:
        specs.append(spec)
    return specs, spec, chosen.record()


def _teacher_tagger(arguments: DistillArguments, accelerator: Accelerator) -> WordTagger:
    """The first teacher as a word tagger, for representations (denoising, language-agnostic selection)."""
    return WordTagger.from_pretrained(
        arguments.teachers.teacher[0],
        device=str(accelerator.device),
        batch_size=arguments.teachers.teacher_batch_size,
        max_length=arguments.data.max_length,
        stride=arguments.data.stride,
    )


def select_training_text(arguments: DistillArguments, parts: Sequence[TextPart], accelerator: Accelerator):
    """Step 1b, ``--select_language_agnostic RATIO`` (AdvPicker): keep the training sentences a source/target
    discriminator on the first teacher's sentence vectors finds least language-specific; ``(parts, reports)``."""
    ratio, source = arguments.strategy.select_language_agnostic, arguments.strategy.selection_source
    if ratio is None:
        if source:
            raise UserError("--selection_source is only used with --select_language_agnostic RATIO")
        return list(parts), None
    if not source:
        raise UserError(
            "--select_language_agnostic needs --selection_source (source-language text, e.g. conll2003:train@en)"
        )
    source_words = load_test_set(
        TestSpec.parse(source).check(), arguments.data.data_dir, arguments.data.max_train_samples
    ).dataset["tokens"]
    tagger = _teacher_tagger(arguments, accelerator)
    source_vectors = tagger.sentence_vectors(source_words)
    kept, reports = [], []
    for part in parts:
        words, report = select_language_agnostic(
            part.words, source_vectors, tagger.sentence_vectors(part.words["tokens"]), ratio, seed=arguments.loop.seed
        )
        report = {"part": part.name, "source": source, "source_sentences": len(source_words), **report}
        kept.append(
            dataclasses.replace(
                part, words=words, info={**part.info, "num_sentences": len(words), "selected_from": len(part.words)}
            )
        )
        reports.append(report)
    del tagger
    gc.collect()
    return kept, reports


def denoise_part(with_probs: datasets.Dataset, arguments: DistillArguments, represent) -> tuple[datasets.Dataset, dict]:
    """``--denoise reweight|relabel`` on one part's teacher probabilities (:func:`training.denoise.denoise`):
    a ``kd_weight`` column, and for ``relabel`` the corrected tags folded into ``teacher_probs``."""
    strategy = arguments.strategy
    config = NeighbourDenoising(k=strategy.denoise_k, mode=strategy.denoise, threshold=strategy.denoise_threshold)
    denoised, summary = denoise(with_probs, represent, config=config, batch_size=arguments.teachers.teacher_batch_size)
    if config.mode == "relabel":
        denoised = denoised.map(apply_relabels, batched=True, remove_columns=[DENOISED_TAGS], desc="relabel")
    return denoised, summary


# ------------------------------------------------------------------------------------- the run, in steps


@dataclass
class TeacherSignal:
    """Step 2's output: student features with the teacher signal (a column, or teachers kept for on-the-fly)."""

    teachers: list
    weights: list
    labels: list
    features: datasets.Dataset
    recorder: "LossRecorder"
    on_the_fly: Optional[OnTheFlyTeachers]
    seconds: float
    denoising: Optional[list] = None  # one summary per training-text part (--denoise)


def teacher_signal(
    arguments: DistillArguments,
    strategy,
    parts: Sequence[TextPart],
    tokenizer,
    accelerator: Accelerator,
    cache_files: Optional[Sequence[str]] = None,
) -> TeacherSignal:
    """Step 2: the teachers' word-level distributions on the training text, aligned to the student's windows.

    ``cache_files``: one file per part for its teacher-probability column (a self-training round's,
    keyed on the teachers' content); the datasets cache otherwise."""
    data, teacher_args = arguments.data, arguments.teachers
    device = str(accelerator.device)
    teachers = [
        TeacherProbabilities(path, batch_size=teacher_args.teacher_batch_size, device=device)
        for path in teacher_args.teacher
    ]
    weights = resolve_teacher_weights(teacher_args, strategy, len(teachers))
    labels = resolve_labels(teachers, resolve_model_name(arguments.model.model_name_or_path))
    aligner_args = dict(max_length=data.max_length, stride=data.stride)
    sentences: list = []
    seconds = 0.0
    denoising = arguments.strategy.denoise != "none"
    if denoising and teacher_args.on_the_fly:
        raise UserError("--denoise needs the teacher probabilities as a column: leave out --on_the_fly")
    tagger, summaries = None, []
    with accelerator.main_process_first():
        feature_parts = []
        for i, part in enumerate(parts):
            label_column = PROJECTED_TAGS if part.has_tags else None
            if teacher_args.on_the_fly:
                aligner = TokenAligner(tokenizer, label_column=label_column, **aligner_args)
                features = tokenize_dataset(
                    part.words, aligner, num_proc=data.preprocessing_num_workers, desc=f"student features {part.name}"
                )
                sentences += part.words["tokens"]
            else:
                clock = time.perf_counter()
                with_probs = add_teacher_probs(
                    part.words,
                    teachers,
                    weights,
                    num_proc=teacher_args.teacher_num_proc,
                    desc=f"teacher probabilities {part.name}",
                    cache_file_name=None if cache_files is None else cache_files[i],
                )
                seconds += time.perf_counter() - clock
                word_columns = None
                if denoising:
                    # representations of the first teacher (in self-training: the previous round's student)
                    tagger = tagger or _teacher_tagger(arguments, accelerator)
                    with_probs, summary = denoise_part(with_probs, arguments, tagger.word_representations)
                    summaries.append({"part": part.name, **summary})
                    word_columns = {KD_WEIGHT: 0.0}
                features = student_features(
                    with_probs, tokenizer, labels, label_column=label_column, word_columns=word_columns, **aligner_args
                )
            if strategy.needs_projected_labels and not part.has_tags:
                features = _with_ignored_labels(features)
            feature_parts.append(features)
        features = _concatenate(feature_parts, [len(p.words) for p in parts])
    del tagger
    gc.collect()
    on_the_fly = None
    if teacher_args.on_the_fly:
        on_the_fly = OnTheFlyTeachers(teachers, weights)
        recorder = LossRecorder(strategy, on_the_fly, sentences, check_label_sets(on_the_fly.labels, labels))
    else:
        for teacher in teachers:  # the column holds the signal: no teacher stays in memory while the student trains
            teacher.unload()
        gc.collect()
        recorder = LossRecorder(strategy)
    return TeacherSignal(teachers, weights, labels, features, recorder, on_the_fly, seconds, summaries or None)


def fit_strategy(strategy, signal: TeacherSignal) -> Optional[dict]:
    """Corpus-level parameters of the strategy (``hard-confident --keep_per_class``'s per-label thresholds),
    fitted on the teacher's distributions over every training word; what it fitted, or None."""
    if not strategy.needs_fit:
        return None
    if signal.on_the_fly is not None:
        raise UserError(
            f"--strategy {strategy.name} --keep_per_class needs the teacher probabilities as a column: "
            "leave out --on_the_fly"
        )
    confidence, predicted = head_confidences(signal.features)
    fitted = strategy.fit(confidence, predicted, signal.labels)
    return fitted


def build_student_model(student: StudentArguments, model: ModelArguments, labels: Sequence[str], seed: int):
    """Step 3: the student (full or LoRA) over the teachers' labels; ``(model, lora settings or None)``."""
    set_seed(seed)  # the student's initialisation does not depend on how the teacher signal was made
    lora = None
    if student.student == "lora":
        targets = [m.strip() for m in student.lora_target_modules.split(",")] if student.lora_target_modules else None
        lora = LoraSettings(
            r=student.lora_r, lora_alpha=student.lora_alpha, lora_dropout=student.lora_dropout, target_modules=targets
        )
    built = build_student(
        model.model_name_or_path,
        labels,
        lora=lora,
        freeze_embeddings=model.freeze_embeddings,
        freeze_layers=model.freeze_layers,
    )
    return built, lora


def distill(arguments: DistillArguments) -> RunResults:
    """Build the teacher signal, train the student, save it and ``results.json``; returns the results.

    One round (:func:`distill_round`), or ``--self_training_rounds N`` of them
    (:mod:`training.self_training`): round r's student, saved under ``OUTPUT_DIR/rounds/round-r``, is
    the only teacher of round r+1, with the threshold schedule's value for each round; the last round
    writes ``OUTPUT_DIR``. Each round's teacher probabilities are cached under its key in
    :func:`training.self_training.teacher_probs_cache_dir` (hidden, not pushed), so running again in
    the same folder reuses every round whose teachers are unchanged."""
    options = arguments.strategy
    if options.self_training_rounds == 1 and options.self_training_threshold_start is None:
        if options.self_training_threshold_end is not None:
            raise UserError("--self_training_threshold_end needs --self_training_threshold_start")
        return distill_round(arguments)
    schedule = SelfTrainingSchedule(
        options.self_training_rounds, options.self_training_threshold_start, options.self_training_threshold_end
    )
    schedule.check_strategy(options.strategy)
    previous: list = []
    results = None
    cache_dir = teacher_probs_cache_dir(arguments.loop.output_dir)
    for settings in plan_rounds(schedule, arguments.teachers.teacher, arguments.loop.output_dir):
        later = settings.index > 0  # one teacher from round 1 on: the first round's weights no longer apply
        round_arguments = dataclasses.replace(
            arguments,
            teachers=dataclasses.replace(
                arguments.teachers,
                teacher=list(settings.teachers),
                **({"teacher_weights": None, "teacher_similarities": None} if later else {}),
            ),
            strategy=dataclasses.replace(
                options, threshold=settings.threshold if settings.threshold is not None else options.threshold
            ),
            loop=dataclasses.replace(arguments.loop, output_dir=settings.output_dir),
        )
        record = {
            "schedule": dataclasses.asdict(schedule),
            "round": settings.record(),
            "previous_rounds": list(previous),
        }
        results = distill_round(round_arguments, self_training=record, teacher_cache_dir=cache_dir)
        previous.append(
            {
                **settings.record(),
                "cache_key": results.student["self_training"]["round"].get("cache_key"),
                "eval": results.eval,
                "best": results.best,
            }
        )
    return results


def distill_round(
    arguments: DistillArguments, self_training: Optional[dict] = None, teacher_cache_dir: Optional[str] = None
) -> RunResults:
    """One distillation: five steps, one job each: training text (:func:`load_training_text`, then
    :func:`select_training_text`), teacher signal (:func:`teacher_signal`, with ``--denoise``),
    student (:func:`build_student_model`), training (the loop, with the one evaluator on the
    ``--eval`` sets), results (:func:`distill_results`). A self-training round (``self_training``: its
    record) caches its teacher probabilities in ``teacher_cache_dir`` under the round's key."""
    started = time.perf_counter()
    data, loop, evaluation = arguments.data, arguments.loop, arguments.evaluation
    strategy = strategy_from_args(arguments.strategy, arguments.teachers)
    eval_specs, best_on, selection = model_selection(evaluation, data)
    specs = [TestSpec.parse(e).check() for e in eval_specs]
    best_split = _best_key(best_on, specs)
    type_map = parse_type_map(evaluation.eval_type_map, "--eval_type_map")
    config = loop_config(
        loop,
        "xner-distill",
        DEFAULT_LEARNING_RATE[arguments.student.student],
        best_split=best_split,
        metric_for_best="f1",
    )
    check_arguments(arguments.model.model_name_or_path, loop, [("--teacher", t) for t in arguments.teachers.teacher])
    accelerator = make_accelerator(config)
    if not accelerator.is_local_main_process:
        datasets.disable_progress_bars()
    set_seed(loop.seed)

    tokenizer = load_tokenizer(resolve_model_name(arguments.model.model_name_or_path))
    parts = load_training_text(data, strategy.needs_projected_labels)  # 1. training text
    with accelerator.main_process_first():
        parts, kept = select_training_text(arguments, parts, accelerator)
    cache_files = None
    if self_training is not None:  # this round's cache key: its teachers' content and weights, the round, the text
        weights = resolve_teacher_weights(arguments.teachers, strategy, len(arguments.teachers.teacher))
        key = round_cache_key(
            arguments.teachers.teacher,
            self_training["round"]["index"],
            "+".join(p.words._fingerprint for p in parts),
            weights=weights,
        )
        self_training = {**self_training, "round": {**self_training["round"], "cache_key": key}}
        if teacher_cache_dir is not None:
            cache_files = [
                teacher_probs_cache_file(teacher_cache_dir, key, f"{i}-{p.name}") for i, p in enumerate(parts)
            ]
    signal = teacher_signal(arguments, strategy, parts, tokenizer, accelerator, cache_files)  # 2. teacher signal
    fitted = fit_strategy(strategy, signal)
    if fitted:
        thresholds = ", ".join(f"{k} {v:.3f}" for k, v in fitted["thresholds"].items())
        accelerator.print(f"class-balanced thresholds ({thresholds}) keep {fitted['kept']} of {fitted['words']} words")
    with accelerator.main_process_first():
        test_sets = [load_test_set(spec, data.data_dir, data.max_eval_samples) for spec in specs]
        # the map is applied whenever given (type_map_all), as --eval_type_map always did
        prepared = prepare_test_sets(
            test_sets,
            tokenizer,
            signal.labels,
            type_map=type_map,
            type_map_all=True,
            model_name="student",
            num_proc=data.preprocessing_num_workers,
            max_length=data.max_length,
            stride=data.stride,
        )
    model, lora = build_student_model(arguments.student, arguments.model, signal.labels, loop.seed)  # 3. student
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    low_precision = accelerator.mixed_precision in ("fp16", "bf16", "fp8")  # 4. training
    collator = TokenCollator(tokenizer.pad_token_id, pad_to_multiple_of=8 if low_precision else None)
    train_dl = build_dataloader(
        signal.features, loop.per_device_train_batch_size, collator, shuffle=True, seed=loop.seed
    )
    evaluator = (
        evaluator_for(prepared, signal.labels, accelerator, loop.per_device_eval_batch_size, collator)
        if prepared
        else None
    )
    evaluations = Evaluations(accelerator, evaluator, signal.recorder)
    hparams = {
        **arguments.record(),
        "learning_rate": config.learning_rate,
        "teacher": ",".join(arguments.teachers.teacher),
        "eval": ",".join(eval_specs),
        "eval_type_map": ",".join(evaluation.eval_type_map),
        **{f"strategy_{k}": v for k, v in strategy.config().items() if not isinstance(v, list)},
    }
    outputs = OutputFolder(loop.output_dir, RESULTS_FILE, accelerator.is_main_process)
    config.model_dir = staging = outputs.begin(resuming=bool(loop.resume_from_checkpoint))
    accelerator.wait_for_everyone()
    state = train(
        model,
        train_dl,
        signal.recorder,
        config,
        accelerator,
        evaluate=evaluations,
        tokenizer=tokenizer,
        hparams=hparams,
    )

    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process and lora is not None:
        if state.best_metric is None:
            save_student(unwrapped, staging, tokenizer)  # the final model
        else:  # the loop saved the best epoch's adapter; add the labels save_student writes
            unwrapped.get_base_model().config.save_pretrained(staging)
    accelerator.wait_for_everyone()
    if signal.on_the_fly is not None:
        for teacher in signal.teachers:
            teacher.unload()

    student = {
        "lora": lora,
        "trainable": trainable,
        "total": total,
        "saved_as": "adapter" if is_adapter(staging) else "model",
    }
    results = distill_results(
        arguments,
        strategy,
        signal,
        parts,
        prepared,
        state,
        config,
        accelerator,  # 5. results
        student=student,
        wall_time_s=time.perf_counter() - started,
    )
    # issue-15 steps, where they belong: what changed the training data, which protocol picked the
    # checkpoint, the student's self-training lineage, what the strategy counted per epoch
    results.data.update({k: v for k, v in zip(PSEUDO_LABEL_STEPS, (kept, signal.denoising, fitted)) if v})
    results.best["selection"] = selection
    if self_training is not None:
        results.student["self_training"] = self_training
    statistics = [
        {k[len("strategy_") :]: v for k, v in h.get("train", {}).items() if k.startswith("strategy_")}
        for h in state.history
    ]
    if any(statistics):
        results.train_loss["strategy_statistics"] = statistics
    if accelerator.is_main_process:
        results.write(staging)
        outputs.publish()
        summary = {
            key: round(m["f1"], 4) for key, m in (results.eval or {}).items() if isinstance(m, dict) and "f1" in m
        }
        accelerator.print(f"{strategy.name} student ({arguments.student.student}) -> {loop.output_dir}; F1: {summary}")
    return results


def distill_results(
    arguments: DistillArguments,
    strategy,
    signal: TeacherSignal,
    parts: Sequence[TextPart],
    prepared: Mapping,
    state,
    config: LoopConfig,
    accelerator: Accelerator,
    *,
    student: Mapping,
    wall_time_s: float,
) -> RunResults:
    """Step 5: what the run did, as :class:`training.results.RunResults`."""
    data, student_args, lora = arguments.data, arguments.student, student["lora"]
    train_domain = corpus_spec(data.corpus).domain or None if data.corpus else None
    saved_entry = None
    if state.history:
        saved_entry = (
            next((h for h in state.history if h["step"] == state.best_step), None)
            if state.best_metric is not None
            else state.history[-1]
        )
    peak_rss, peak_gpu = peak_memory_mb()
    return RunResults(
        task="distillation",
        model_name_or_path=arguments.model.model_name_or_path,
        label_names=list(signal.labels),
        data={
            "corpus": data.corpus,
            "lang": data.lang,
            "dataset": data.dataset_name,
            "dataset_config": data.dataset_config_name,
            "domain": train_domain,
        },
        student={
            "base_model": arguments.model.model_name_or_path,
            "kind": student_args.student,
            "lora": None
            if lora is None
            else {
                "r": lora.r,
                "lora_alpha": lora.lora_alpha,
                "lora_dropout": lora.lora_dropout,
                "target_modules": lora.target_modules or "default",
            },
            "freeze_embeddings": arguments.model.freeze_embeddings,
            "freeze_layers": arguments.model.freeze_layers,
            "trainable_parameters": student["trainable"],
            "total_parameters": student["total"],
            "label_names": list(signal.labels),
            "saved_as": student["saved_as"],
        },
        strategy=strategy.config(),
        teachers=[
            {"model": t.model_name_or_path, "weight": w, "label_names": list(t.labels), "fingerprint": t.fingerprint}
            for t, w in zip(signal.teachers, signal.weights)
        ],
        teacher_probabilities="on-the-fly" if arguments.teachers.on_the_fly else "precomputed",
        teacher_probabilities_seconds=signal.seconds,
        train_data=[p.info for p in parts],
        num_train_sentences=sum(len(p.words) for p in parts),
        num_train_windows=len(signal.features),
        eval_sets={key: p.info(train_domain) for key, p in prepared.items()},
        best={
            "eval_set": config.best_split or None,
            "metric": config.metric_for_best,
            "value": state.best_metric,
            "epoch": state.best_epoch,
            "step": state.best_step,
        },
        epochs=state.history,
        eval=None if saved_entry is None else {k: v for k, v in saved_entry.items() if k not in ("train",)},
        train_loss={
            "first": None if signal.recorder.first is None else float(signal.recorder.first),
            "per_epoch": [h.get("train", {}).get("loss") for h in state.history],
        },
        learning_rate=config.learning_rate,
        completed_steps=state.completed_steps,
        train_runtime_s=state.train_seconds,
        train_tokens=state.train_tokens,
        train_tokens_per_s=state.tokens_per_second,
        padding_fraction=state.padding_fraction,
        wall_time_s=wall_time_s,
        peak_rss_mb=peak_rss,
        peak_gpu_memory_mb=peak_gpu,
        num_processes=accelerator.num_processes,
        train_corpus=data.corpus,
        train_domain=train_domain,
        framework_versions=framework_versions(lora is not None),
        args=arguments.record(),
    )


__all__ = [
    "ARGUMENTS",
    "DistillArguments",
    "Evaluations",
    "LossRecorder",
    "TeacherSignal",
    "build_parser",
    "build_student_model",
    "choose_text_column",
    "distill",
    "distill_results",
    "load_training_text",
    "main",
    "merge_student",
    "register",
    "run",
    "run_merge",
    "run_typed",
    "strategy_from_args",
    "teacher_signal",
]


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(f"{PROG} merge" if _argv(None)[:1] == ["merge"] else PROG, main))
