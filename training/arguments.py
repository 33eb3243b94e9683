"""The training entry points' typed arguments, and checks of their values made before anything loads.

Every option of ``xner train-teacher`` / ``xner distill`` (and of ``python -m training.X``) is a
field of one of the dataclasses below, parsed by ``transformers.HfArgumentParser`` (which adds a
``--foo-bar`` spelling to every ``--foo_bar``); names follow ``run_ner_no_trainer.py`` where it has
one, and the names users relied on before stay as ``aliases``. The library functions
(:func:`training.teacher.train_teacher`, :func:`training.distill.distill`) take these dataclasses,
never an argparse Namespace.

Each failure is one line naming the argument: argparse ``type=`` functions for numbers (argparse
prints ``argument --x: ...``), :class:`~dataset_builders.errors.UserError` for model paths.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Optional, Sequence

from transformers import SchedulerType

from dataset_builders.errors import UserError
from training.checkpoints import TRUST_HELP
from training.run_options import Secret
from training.strategies import STRATEGIES


def _checked_number(text: str, convert, expected: str, valid, must_be: str):
    """``convert(text)`` for an argparse type, or its one-line error: not a number, or not ``valid``."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"must be {must_be}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a batch size, a number of steps)."""
    return _checked_number(text, int, "a positive integer", lambda v: v >= 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (warm-up steps, layers to freeze)."""
    return _checked_number(text, int, "an integer >= 0", lambda v: v >= 0, ">= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a learning rate)."""
    return _checked_number(text, float, "a number", lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def looks_like_path(value: str) -> bool:
    """Whether a model reference is meant as a local path rather than a Hub id (``name`` or ``org/name``)."""
    return (
        os.path.isabs(value)
        or value.startswith(("./", "../", "~", ".\\"))
        or value in (".", "..")
        or value.count("/") > 1
        or "\\" in value
    )


def check_model_source(value: str, argument: str) -> str:
    """A model folder, or a Hub id; a path to nothing (or to a file) is an error naming ``argument``.

    Without this check transformers reports a missing folder as an invalid Hub repo id.
    """
    if os.path.isdir(os.path.expanduser(value)):
        return value
    if os.path.exists(value):
        raise UserError(f"{argument} {value} is a file; give a model folder or a Hub id")
    if looks_like_path(value):
        raise UserError(f"{argument} {value}: no such model folder")
    return value


# ------------------------------------------------------------------------------------ typed numbers
# HfArgumentParser passes a field's annotated type as argparse ``type=``: these classes check the value
# there (``argument --x: must be ...``) and construct a plain int/float (never an instance of theirs,
# which would leak into optimizer states and checkpoints).


class PositiveInt(int):
    def __new__(cls, value):
        return positive_int(str(value))


class NonNegativeInt(int):
    def __new__(cls, value):
        return non_negative_int(str(value))


class PositiveFloat(float):
    def __new__(cls, value):
        return positive_float(str(value))


def arg(default: Any = None, help: Optional[str] = None, aliases: Sequence[str] = (), **metadata) -> Any:
    """A dataclass field with HfArgumentParser metadata; every alias also gets its dash spelling."""
    spellings = []
    for alias in aliases:
        spellings += [alias, alias.replace("_", "-")] if "_" in alias else [alias]
    if help:
        metadata["help"] = help
    if spellings:
        metadata["aliases"] = list(dict.fromkeys(spellings))
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    if default is dataclasses.MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


REQUIRED = dataclasses.MISSING
# Schedulers stepped once per optimizer step (those that need a metric to step do not fit the loop).
SCHEDULERS = tuple(s.value for s in SchedulerType if s not in (SchedulerType.REDUCE_ON_PLATEAU, SchedulerType.GREEDY))
MIXED_PRECISION = ("no", "fp16", "bf16", "fp8")


# ------------------------------------------------------------------------------------ dataclasses


@dataclass
class DataArguments:
    """The training text: a known corpus of dataset_builders and/or a dataset (run_ner_no_trainer names)."""

    _argument_group_name = "data"

    corpus: Optional[str] = arg(help="a known corpus of dataset_builders (conll2003, conll2002, masakhaner2, ...)")
    lang: Optional[str] = arg(help="language of --corpus, for multilingual corpora")
    data_dir: Optional[str] = arg(help="folder holding the corpus folders (default: $XNER_DATA_DIR or ../shared/data)")
    dataset_name: Optional[str] = arg(
        aliases=["--dataset"],
        help="a dataset folder (save_to_disk or Hub layout) or a path/Hub id for load_dataset, e.g. a projection's output",
    )
    dataset_config_name: Optional[str] = arg(aliases=["--dataset_config"], help="config of --dataset_name (a language)")
    train_split: str = arg("train", help="split of --corpus / --dataset_name to train on")
    max_train_samples: Optional[PositiveInt] = arg(help="keep the first N training sentences (of each source)")
    max_eval_samples: Optional[PositiveInt] = arg(help="keep the first N sentences of every evaluation set")
    text_column_name: str = arg(
        "auto",
        aliases=["--text_column"],
        help="words column of --dataset_name (default auto: the column projected_tags belong to -- translation_tokens "
        "after translate-train, tokens after translate-test -- or tokens)",
    )
    max_length: Optional[PositiveInt] = arg(
        help="sub-tokens per window incl. special tokens (default: the tokenizer's limit); longer sentences are cut "
        "into overlapping windows, never truncated",
    )
    stride: Optional[NonNegativeInt] = arg(help="sub-tokens shared by consecutive windows (default: a quarter)")
    preprocessing_num_workers: Optional[PositiveInt] = arg(help="processes for tokenisation")


@dataclass
class LabelArguments:
    """The supervised labels of ``train-teacher``: which tag column, which dev and test splits."""

    _argument_group_name = "labels"

    label_column_name: str = arg(
        "ner_tags",
        aliases=["--tag_column"],
        help="ClassLabel tag column to train on (default: ner_tags; projected_tags for a projection)",
    )
    validation_split: Optional[str] = arg(help="dev split for model selection (default: validation or dev if present)")
    test_split: Optional[str] = arg(help="test split evaluated every epoch (default: test if present)")
    label_all_tokens: bool = arg(
        False, help="label every sub-token (B- becomes I- on continuation pieces), not only the first"
    )


@dataclass
class ModelArguments:
    _argument_group_name = "model"

    model_name_or_path: str = arg(
        REQUIRED,
        help="the encoder (or token classifier) to start from: local folder or Hub id; for a student, a checkpoint "
        "with a head keeps its label order, which must be the teachers' label set",
    )
    trust_remote_code: bool = arg(False, help="allow model code from the Hub (off: never run downloaded code)")
    ignore_mismatched_sizes: bool = arg(
        True, help="replace a checkpoint's classification head whose size differs from the label set (on by default)"
    )
    # Teachers and students alike: a large multilingual vocabulary is most of the parameters and of the step time.
    freeze_embeddings: bool = arg(False, help="do not train the embeddings")
    freeze_layers: NonNegativeInt = arg(0, help="do not train the lowest N encoder layers")


@dataclass
class LoopArguments:
    """Optimisation and run settings of every training entry point (run_ner_no_trainer names)."""

    _argument_group_name = "optimisation and run"

    output_dir: str = arg(REQUIRED, help="where the model, results.json and checkpoints/ go")
    per_device_train_batch_size: PositiveInt = arg(8)
    per_device_eval_batch_size: PositiveInt = arg(32)
    learning_rate: Optional[PositiveFloat] = arg(
        help="default: 5e-5 (a teacher or a full student), 5e-4 (a LoRA student)"
    )
    head_learning_rate: Optional[PositiveFloat] = arg(
        help="the classifier head's learning rate (default: --learning_rate); a higher one lets a student's new "
        "head leave the label prior on soft or pseudo labels"
    )
    weight_decay: float = arg(0.0)
    num_train_epochs: PositiveInt = arg(3)
    max_train_steps: Optional[PositiveInt] = arg(help="total optimizer steps; overrides --num_train_epochs")
    gradient_accumulation_steps: PositiveInt = arg(1)
    lr_scheduler_type: str = arg("linear", choices=SCHEDULERS)
    num_warmup_steps: NonNegativeInt = arg(0)
    max_grad_norm: float = arg(1.0, help="gradient clipping (0 disables)")
    seed: int = arg(42)
    mixed_precision: Optional[str] = arg(choices=MIXED_PRECISION, help="default: accelerate's config")
    checkpointing_steps: Optional[str] = arg(help="'epoch', or save a checkpoint every N optimizer steps")
    resume_from_checkpoint: Optional[str] = arg(
        help="a checkpoint folder, or 'latest' (the latest complete one in output_dir/checkpoints)"
    )
    trust_checkpoint_pickles: bool = arg(False, help=TRUST_HELP)
    with_tracking: bool = arg(False, help="log metrics to experiment trackers")
    report_to: str = arg("all", help="trackers for --with_tracking: all, tensorboard, wandb, ...")


@dataclass
class HubArguments:
    """``--push_to_hub`` at the end of the run (run_ner_no_trainer names), see :mod:`training.run_options`."""

    _argument_group_name = "Hub"

    push_to_hub: bool = arg(False, help="publish the model at the end of the run, as `xner publish model` does")
    hub_model_id: Optional[str] = arg(help="repo to push to (user-or-org/name); required with --push_to_hub")
    hub_token: Optional[Secret] = arg(
        help="Hub token (default: HF_TOKEN or the `hf auth login` file; never written to a file)"
    )
    hub_private_repo: bool = arg(False, help="create the repo private")
    base_model_id: Optional[str] = arg(help="Hub id of --model_name_or_path when it is a local folder xner cannot name")


@dataclass
class TeacherArguments:
    """The teachers of a distillation and how their distributions are combined."""

    _argument_group_name = "teachers"

    teacher: list[str] = arg(
        REQUIRED,
        action="extend",
        metavar="PATH",
        help="a token-classification teacher (folder or Hub id); repeat for several teachers",
    )
    teacher_weights: Optional[str] = arg(help="comma-separated weights, one per --teacher (normalised)")
    teacher_similarities: Optional[str] = arg(
        help="comma-separated language similarities, one per --teacher; weights = softmax(s / T) (Wu et al. 2020)"
    )
    similarity_temperature: Optional[float] = arg(help="T of --teacher_similarities (default 1)")
    on_the_fly: bool = arg(
        False,
        help="compute teacher probabilities inside each training step (teachers stay loaded) instead of "
        "once, as a cached dataset column",
    )
    teacher_batch_size: PositiveInt = arg(64, help="windows per teacher forward pass")
    teacher_num_proc: Optional[PositiveInt] = arg(
        help="teacher processes, one per GPU (default: the number of GPUs when more than one, else 1); the main "
        "process computes the column with all of them, the other ranks read the cache",
    )


@dataclass
class StrategyArguments:
    """The distillation loss and its parameters (a parameter the strategy does not take is an error)."""

    _argument_group_name = "strategy"

    strategy: str = arg("soft-mse", help=f"the distillation loss: {', '.join(STRATEGIES)}")
    temperature: Optional[float] = arg(help="soft-kl (and soft_loss=soft-kl): softening temperature")
    threshold: Optional[float] = arg(help="hard-confident: minimum teacher probability kept")
    keep_per_class: Optional[float] = arg(
        help="hard-confident instead of --threshold: keep the most confident share (0, 1] of the words the teacher "
        "gives each label, one threshold per label fitted on the training corpus (class-balanced, Zou et al. 2018)"
    )
    alpha: Optional[float] = arg(help="projected+kd: weight of the soft loss")
    agree_only: Optional[bool] = arg(
        nargs="?",
        const=True,
        help="projected+kd: cross-entropy only where projected tag and teacher argmax agree",
    )
    soft_loss: Optional[Literal["soft-mse", "soft-kl"]] = arg(help="multi-teacher, projected+kd: the soft loss")
    # issue 15: steps around the loss (training.denoise, training.selection, training.self_training)
    denoise: Literal["none", "reweight", "relabel"] = arg(
        "none",
        help="neighbour-consistency denoising of the teacher labels (CoLaDa): reweight gives every word the "
        "share of its k nearest neighbours (teacher representations) agreeing with its tag as kd_weight; relabel also "
        "replaces a tag with the neighbours' majority where that share is below --denoise_threshold",
    )
    denoise_k: PositiveInt = arg(10, help="--denoise: neighbours per word")
    denoise_threshold: float = arg(
        0.5, help="--denoise relabel: relabel a word whose neighbours' support is below this"
    )
    select_language_agnostic: Optional[float] = arg(
        help="keep this ratio (0, 1] of the training sentences a source/target language discriminator finds least "
        "language-specific (AdvPicker); needs --selection_source",
    )
    selection_source: Optional[str] = arg(
        metavar="NAME[:split][@lang]",
        help="--select_language_agnostic: source-language text for the discriminator, e.g. conll2003:train@en "
        "(xner evaluate's test-set syntax; only its words are used)",
    )
    self_training_rounds: PositiveInt = arg(
        1,
        help="distillation rounds; the student of round r is the only teacher of round r+1 (intermediate students "
        "under OUTPUT_DIR/rounds/round-R)",
    )
    self_training_threshold_start: Optional[float] = arg(
        help="--self_training_rounds with hard-confident: threshold of round 0, moving linearly to the end value"
    )
    self_training_threshold_end: Optional[float] = arg(help="threshold of the last round (default: the start value)")


@dataclass
class StudentArguments:
    _argument_group_name = "student"

    student: Literal["full", "lora"] = arg("full", help="full fine-tune or LoRA adapters")
    lora_r: PositiveInt = arg(8)
    lora_alpha: PositiveInt = arg(16)
    lora_dropout: float = arg(0.1)
    lora_target_modules: Optional[str] = arg(help="comma-separated module names (default: per architecture)")


@dataclass
class EvaluationArguments:
    """Test sets evaluated at every epoch end of a distillation (xner evaluate's syntax)."""

    _argument_group_name = "evaluation"

    eval: list[str] = arg(
        [],
        action="extend",
        metavar="NAME[:split][@lang][=in|out]",
        help="a gold-labelled test set evaluated every epoch, e.g. conll2002:test@es or europarl-ner@es=out "
        "(xner evaluate's --test syntax; split default: test); repeatable. Reported under NAME[-lang][:split]",
    )
    eval_type_map: list[str] = arg(
        [],
        action="extend",
        metavar="TYPE=TARGET",
        aliases=["--type_map"],
        help="explicit entity-type mapping for test sets whose scheme differs from the student's, applied to gold "
        "and predicted tags, e.g. MISC=O DATE=O (or MISC=O,DATE=O; O drops the type)",
    )
    best_on: Optional[str] = arg(help="keep the epoch scoring best (F1) on this --eval set")
    selection: Optional[Literal["source-dev", "translate-train-dev", "target-dev"]] = arg(
        help="honest model selection (training.model_selection): which dev set picks the best epoch -- the source "
        "dev set (--source_dev), a translated-and-projected dev set (--translate_train_dev) or, only with "
        "--allow_target_dev, the gold target dev set (--target_dev); recorded in results.json and the card. "
        "Default with any of those given: translate-train-dev if --translate_train_dev, else source-dev",
    )
    allow_target_dev: bool = arg(False, help="allow --selection target-dev (gold target labels: not zero-shot)")
    source_dev: Optional[str] = arg(
        metavar="NAME[:split][@lang]", help="source-language gold dev set, e.g. conll2003:validation@en"
    )
    translate_train_dev: Optional[str] = arg(
        metavar="PATH[:split]",
        help="the source dev set machine-translated and projected: `xner project` output (its projected tags are "
        "scored on the words they belong to) or a saved tokens/ner_tags dataset",
    )
    target_dev: Optional[str] = arg(
        metavar="NAME[:split][@lang]", help="gold target-language dev set (see --allow_target_dev)"
    )


def from_namespace(types: Iterable[type], namespace: Any) -> tuple:
    """The dataclasses ``types`` filled from a parsed namespace (the CLI edge: argparse stops here)."""
    return tuple(
        t(
            **{
                f.name: getattr(namespace, f.name)
                for f in dataclasses.fields(t)
                if f.init and hasattr(namespace, f.name)
            }
        )
        for t in types
    )


def field_names(types: Iterable[type]) -> dict[str, str]:
    """Every name a setting may be given by (field names and their aliases, underscores) -> the field name."""
    names: dict[str, str] = {}
    for t in types:
        for f in dataclasses.fields(t):
            names[f.name] = f.name
            for alias in f.metadata.get("aliases", ()):
                names[alias.lstrip("-").replace("-", "_")] = f.name
    return names


def to_flags(*objects: Any, skip_defaults: bool = True) -> list[str]:
    """Command-line flags (``--name value``) that reproduce the given dataclass instances.

    Lists give one flag per item for repeatable fields; booleans give ``--name`` / ``--no_name``;
    values equal to the field's default are left out unless ``skip_defaults`` is False.
    """
    flags: list[str] = []
    for obj in objects:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if value is None or (skip_defaults and value == default and default is not dataclasses.MISSING):
                continue
            if isinstance(value, Secret):
                continue  # never on a command line
            if isinstance(value, bool):
                flags.append(f"--{f.name}" if value else f"--no_{f.name}")
            elif isinstance(value, (list, tuple)):
                flags += [f"--{f.name}", *[str(v) for v in value]] if value else []
            else:
                flags += [f"--{f.name}", str(value)]
    return flags


def as_record(*objects: Any) -> dict:
    """The plain (JSON) values of dataclass instances, secrets left out: what results.json records."""
    out: dict = {}
    for obj in objects:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, Secret):
                continue
            out[f.name] = list(value) if isinstance(value, (list, tuple)) else value
    return out


__all__ = [
    "DataArguments",
    "EvaluationArguments",
    "HubArguments",
    "LabelArguments",
    "LoopArguments",
    "ModelArguments",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "StrategyArguments",
    "StudentArguments",
    "TeacherArguments",
    "arg",
    "as_record",
    "check_model_source",
    "field_names",
    "from_namespace",
    "looks_like_path",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "to_flags",
]
