"""Fine-tune a token-classification teacher on a known corpus or a projected dataset.

Runs as ``accelerate launch -m training.teacher ...`` and as ``xner train-teacher ...`` with the
same arguments, the vocabulary of transformers' ``run_ner_no_trainer.py``. A user error ends the
run with one line on stderr and exit status 2 (``XNER_DEBUG=1``, or ``xner --debug``: the traceback);
``accelerate launch -q`` keeps the launcher from adding a traceback of its own. Data: a corpus of
``dataset_builders`` (``--corpus conll2003 --data-dir ../shared/data``) or a dataset saved with
``save_to_disk`` / in Hub layout (``--dataset PATH [--dataset_config LANG]``); the tags are
``ner_tags`` or, with ``--tag-column projected_tags``, a projection's.

Rows a projection flagged (failed translation or projection: ``training.features.projection_row_ok``)
are dropped from every split, as distillation drops them.

``output_dir`` receives the model that scored best on the dev split (the final model when there
is no dev split) with its tokenizer and ``id2label`` in the config, ``results.json`` (dev/test
metrics per epoch, best epoch, training time and tokens per second) and ``checkpoints/``. It is
checked before anything loads; the final files are staged and published together, results last
(``training.outputs``), so a failed run never leaves a folder that looks finished.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Optional, Sequence

import datasets
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from transformers import AutoConfig, AutoModelForTokenClassification, SchedulerType

from dataset_builders.corpora import load_corpus
from dataset_builders.error_report import run_reporting_errors
from dataset_builders.errors import UserError
from training.arguments import (
    check_model_source,
    non_negative_int,
    positive_float,
    positive_int,
)
from training.assets import resolve_model_name
from training.checkpoints import (
    TRUST_FLAG,
    TRUST_HELP,
    check_checkpoint,
    resolve_checkpoint,
)
from training.collate import TokenCollator, build_dataloader
from training.features import (
    IGNORE_INDEX,
    PROJECTED_TAGS,
    TokenAligner,
    choose_text_column,
    projection_row_ok,
    tokenize_dataset,
)
from training.inference import load_tokenizer
from training.loop import EvalSet, LoopConfig, NerEvaluator, make_accelerator, train
from training.outputs import OutputFolder, check_output_dir
from training.run_options import add_push_arguments, check_run_options, push_at_end
from training.students import freeze

logger = logging.getLogger(__name__)

# Byte-level BPE tokenizers only accept pre-split words with a prefix space.
DEV_SPLITS = ("validation", "dev")
RESULTS_FILE = "results.json"
# Schedulers stepped once per optimizer step (those that need a metric to step do not fit the loop).
SCHEDULERS = [s.value for s in SchedulerType if s not in (SchedulerType.REDUCE_ON_PLATEAU, SchedulerType.GREEDY)]


def add_loop_arguments(parser: argparse.ArgumentParser, optim, learning_rate: Optional[float] = 5e-5,
                       learning_rate_help: Optional[str] = None) -> None:
    """The optimisation (into the ``optim`` group) and run arguments of every training entry point:
    run_ner_no_trainer.py's vocabulary, read by :func:`loop_config`."""
    optim.add_argument("--per_device_train_batch_size", type=positive_int, default=8)
    optim.add_argument("--per_device_eval_batch_size", type=positive_int, default=32)
    optim.add_argument("--learning_rate", type=positive_float, default=learning_rate, help=learning_rate_help)
    optim.add_argument("--weight_decay", type=float, default=0.0)
    optim.add_argument("--num_train_epochs", type=positive_int, default=3)
    optim.add_argument("--max_train_steps", type=positive_int, help="total optimizer steps; overrides --num_train_epochs")
    optim.add_argument("--gradient_accumulation_steps", type=positive_int, default=1)
    optim.add_argument("--lr_scheduler_type", default="linear", choices=SCHEDULERS)
    optim.add_argument("--num_warmup_steps", type=non_negative_int, default=0)
    optim.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping (0 disables)")
    optim.add_argument("--seed", type=int, default=42)
    optim.add_argument("--mixed_precision", choices=["no", "fp16", "bf16", "fp8"], help="default: accelerate's config")

    run = parser.add_argument_group("run")
    run.add_argument("--output_dir", required=True)
    run.add_argument("--checkpointing_steps", help="'epoch', or save a checkpoint every N optimizer steps")
    run.add_argument("--resume_from_checkpoint",
                     help="a checkpoint folder, or 'latest' (the latest complete one in output_dir/checkpoints)")  # fmt: skip
    run.add_argument(TRUST_FLAG, action="store_true", help=TRUST_HELP)
    run.add_argument("--with_tracking", action="store_true", help="log metrics to experiment trackers")
    run.add_argument("--report_to", default="all", help="trackers for --with_tracking: all, tensorboard, wandb, ...")
    add_push_arguments(parser)


def add_text_arguments(data) -> None:
    """How words are read and cut into windows: the same flags for teachers and students."""
    data.add_argument(
        "--text_column", default="auto",
        help="words column of --dataset (default auto: the column projected_tags belong to -- translation_tokens "
        "after translate-train, tokens after translate-test -- or tokens)",
    )  # fmt: skip
    data.add_argument(
        "--max_length", type=positive_int,
        help="sub-tokens per window incl. special tokens (default: the tokenizer's limit); longer sentences "
        "are cut into overlapping windows, never truncated",
    )  # fmt: skip
    data.add_argument("--stride", type=non_negative_int, help="sub-tokens shared by consecutive windows (default: a quarter)")
    data.add_argument("--preprocessing_num_workers", type=positive_int, help="processes for tokenisation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--corpus", help="a known corpus of dataset_builders (conll2003, conll2002, masakhaner2, ...)")
    data.add_argument("--lang", help="language of --corpus, for multilingual corpora")
    data.add_argument(
        "--data-dir", "--data_dir", dest="data_dir",
        help="folder holding the corpus folder (default: $XNER_DATA_DIR or ../shared/data)",
    )  # fmt: skip
    data.add_argument("--dataset", help="a dataset folder written by save_to_disk, or a path/Hub id for load_dataset")
    data.add_argument("--dataset_config", "--dataset-config", dest="dataset_config", help="config of --dataset (a language)")
    data.add_argument(
        "--tag-column", "--tag_column", dest="tag_column", default="ner_tags",
        help="ClassLabel tag column to train on (default: ner_tags; projected_tags for a projection)",
    )  # fmt: skip
    data.add_argument("--train_split", default="train")
    data.add_argument("--validation_split", help="dev split for model selection (default: validation or dev if present)")
    data.add_argument("--test_split", help="test split evaluated every epoch (default: test if present)")
    data.add_argument("--max_train_samples", type=positive_int, help="keep the first N training sentences")
    data.add_argument("--max_eval_samples", type=positive_int, help="keep the first N dev and test sentences")
    add_text_arguments(data)
    data.add_argument(
        "--label_all_tokens", action="store_true",
        help="label every sub-token (B- becomes I- on continuation pieces), not only the first",
    )  # fmt: skip

    model = parser.add_argument_group("model and optimisation")
    model.add_argument("--model_name_or_path", required=True, help="encoder or token classifier: local folder or Hub id")
    # As distill's flag: a large multilingual vocabulary is most of the parameters and of the step time.
    model.add_argument("--freeze_embeddings", action="store_true", help="do not train the embeddings")
    add_loop_arguments(parser, model)


def register(subparsers) -> None:
    """Add ``train-teacher`` to the ``xner`` command."""
    parser = subparsers.add_parser(
        "train-teacher", help="fine-tune a token-classification teacher", description=__doc__.split("\n\n")[0]
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


PROG = "python -m training.teacher"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m training.teacher ARGS``; errors propagate (the ``__main__`` block reports them in one line)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    check_run_options(args)  # a push or tracker that cannot happen is refused before training
    train_teacher(args)
    push_at_end(args)
    return 0


def load_data(args: argparse.Namespace) -> datasets.DatasetDict:
    """The splits named by ``--corpus`` or ``--dataset``."""
    if bool(args.corpus) == bool(args.dataset):
        raise UserError("give exactly one of --corpus NAME or --dataset PATH")
    if args.corpus:
        return load_corpus(args.corpus, data_dir=args.data_dir, lang=args.lang)
    saved = any(os.path.isfile(os.path.join(args.dataset, f)) for f in ("dataset_dict.json", "state.json"))
    data = datasets.load_from_disk(args.dataset) if saved else datasets.load_dataset(args.dataset, args.dataset_config)
    return datasets.DatasetDict({"train": data}) if isinstance(data, datasets.Dataset) else data


def drop_flagged_rows(data: datasets.DatasetDict) -> tuple[datasets.DatasetDict, dict[str, int]]:
    """Every split without the rows a projection flagged (the rule distillation applies), and how many went."""
    kept, dropped = {}, {}
    for name, split in data.items():
        if {"translation_error", "projection_stats"} & set(split.column_names):
            before = len(split)
            split = split.filter(projection_row_ok, desc=f"drop flagged rows ({name})")
            dropped[name] = before - len(split)
        kept[name] = split
    return datasets.DatasetDict(kept), dropped


def words_as_tokens(data: datasets.DatasetDict, text_column: str, tag_column: str) -> datasets.DatasetDict:
    """Each split with its words in ``tokens`` (what the tokeniser reads).

    A translate-train dataset keeps the English source in ``tokens``; its projected tags belong to
    ``translation_tokens``, which then becomes ``tokens`` (the source words are dropped).
    """
    if text_column == "auto" and tag_column != PROJECTED_TAGS:
        return data
    out = {}
    for name, split in data.items():
        column = choose_text_column(split, text_column)
        if column != "tokens":
            split = split.remove_columns([c for c in ("tokens",) if c in split.column_names]).rename_column(column, "tokens")
        out[name] = split
    return datasets.DatasetDict(out)


def label_names(dataset: datasets.Dataset, column: str) -> list[str]:
    """The ClassLabel names of a tag column; a clear error when the column is missing or not ClassLabel."""
    if column not in dataset.column_names:
        raise ValueError(f"tag column {column!r} not in the dataset; it has {dataset.column_names}")
    inner = getattr(dataset.features[column], "feature", None)
    if not isinstance(inner, datasets.ClassLabel):
        raise ValueError(f"tag column {column!r} must be a sequence of ClassLabel, got {dataset.features[column]}")
    return list(inner.names)


def choose_splits(data: datasets.DatasetDict, args: argparse.Namespace) -> dict[str, Optional[str]]:
    """Split names for train / validation / test (the last two None when absent)."""

    def pick(explicit: Optional[str], defaults: Sequence[str]) -> Optional[str]:
        if explicit is not None:
            if explicit not in data:
                raise ValueError(f"split {explicit!r} not in the dataset; it has {list(data)}")
            return explicit
        return next((s for s in defaults if s in data), None)

    return {
        "train": pick(args.train_split, ()),
        "validation": pick(args.validation_split, DEV_SPLITS),
        "test": pick(args.test_split, ("test",)),
    }


def eval_references(dataset: datasets.Dataset, tag_column: str, names: Sequence[str]) -> list[list[str]]:
    """Gold tags as strings: ``tag_column`` when the split has it, else ``ner_tags``, over the same labels."""
    column = tag_column if tag_column in dataset.column_names else "ner_tags"
    found = label_names(dataset, column)
    if found != list(names):
        raise ValueError(f"evaluation tags {found} differ from the training tags {list(names)}")
    return [[names[i] for i in tags] for tags in dataset[column]]


def token_cross_entropy(outputs, batch) -> torch.Tensor:
    """Mean cross-entropy over labelled sub-tokens; 0 (with a graph) for a batch without any."""
    logits, labels = outputs.logits.float(), batch["labels"]
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp_min(1)


def loop_config(args: argparse.Namespace) -> LoopConfig:
    return LoopConfig(
        output_dir=args.output_dir, num_train_epochs=args.num_train_epochs, max_train_steps=args.max_train_steps,
        gradient_accumulation_steps=args.gradient_accumulation_steps, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, lr_scheduler_type=args.lr_scheduler_type,
        num_warmup_steps=args.num_warmup_steps, max_grad_norm=args.max_grad_norm or None,
        checkpointing_steps=args.checkpointing_steps, resume_from_checkpoint=args.resume_from_checkpoint,
        with_tracking=args.with_tracking, report_to=args.report_to, project_name="xner-teacher",
        mixed_precision=args.mixed_precision, trust_checkpoint_pickles=args.trust_checkpoint_pickles,
    )  # fmt: skip


def check_arguments(args: argparse.Namespace, model_arguments: Sequence[tuple[str, str]] = ()) -> None:
    """What can be checked before anything loads: model sources, the output folder, the checkpoint to resume."""
    for argument, value in [("--model_name_or_path", args.model_name_or_path), *model_arguments]:
        check_model_source(value, argument)
    check_output_dir(args.output_dir)
    if args.resume_from_checkpoint:
        path = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)
        check_checkpoint(path, trust_pickles=args.trust_checkpoint_pickles)


def load_model(name: str, names: Sequence[str]):
    """Token classifier over ``names`` (a new head unless the checkpoint's fits) and its fast tokenizer.

    ``name`` may be a short asset name (:func:`training.assets.resolve_model_name`)."""
    name = resolve_model_name(name)
    id2label = dict(enumerate(names))
    config = AutoConfig.from_pretrained(name, id2label=id2label, label2id={n: i for i, n in id2label.items()})
    tokenizer = load_tokenizer(name)
    model = AutoModelForTokenClassification.from_pretrained(name, config=config, ignore_mismatched_sizes=True)
    return model, tokenizer


def _first(dataset: datasets.Dataset, n: Optional[int]) -> datasets.Dataset:
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


def train_teacher(args: argparse.Namespace) -> dict:
    """Fine-tune, evaluate every epoch, save the best model and ``results.json``; returns the results."""
    started = time.perf_counter()
    config = loop_config(args)
    check_arguments(args)
    accelerator = make_accelerator(config)
    if not accelerator.is_local_main_process:
        datasets.disable_progress_bars()
    set_seed(args.seed)

    data, flagged = drop_flagged_rows(load_data(args))
    data = words_as_tokens(data, args.text_column, args.tag_column)
    splits = choose_splits(data, args)
    names = label_names(data[splits["train"]], args.tag_column)
    model, tokenizer = load_model(args.model_name_or_path, names)
    freeze(model, embeddings=args.freeze_embeddings)

    train_data = _first(data[splits["train"]], args.max_train_samples)
    aligner = TokenAligner(tokenizer, max_length=args.max_length, stride=args.stride, label_column=args.tag_column,
                           label_all_subtokens=args.label_all_tokens, label_names=names)  # fmt: skip
    eval_aligner = TokenAligner(tokenizer, max_length=aligner.max_length, stride=aligner.stride, label_column=None)
    eval_sets = {}
    with accelerator.main_process_first():
        workers = args.preprocessing_num_workers
        train_features = tokenize_dataset(train_data, aligner, num_proc=workers, desc="tokenising train")
        for role in ("validation", "test"):
            if splits[role] is not None:
                split_data = _first(data[splits[role]], args.max_eval_samples)
                features = tokenize_dataset(split_data, eval_aligner, num_proc=workers, desc=f"tokenising {role}")
                eval_sets[role] = EvalSet(features, eval_references(split_data, args.tag_column, names))

    low_precision = accelerator.mixed_precision in ("fp16", "bf16", "fp8")
    collator = TokenCollator(tokenizer.pad_token_id, pad_to_multiple_of=8 if low_precision else None)
    train_dl = build_dataloader(train_features, args.per_device_train_batch_size, collator, shuffle=True, seed=args.seed)
    evaluator = None
    if eval_sets:
        evaluator = NerEvaluator(accelerator, eval_sets, dict(enumerate(names)), args.per_device_eval_batch_size, collator)
    outputs = OutputFolder(args.output_dir, RESULTS_FILE, accelerator.is_main_process)
    config.model_dir = outputs.begin(resuming=bool(args.resume_from_checkpoint))
    accelerator.wait_for_everyone()
    state = train(model, train_dl, token_cross_entropy, config, accelerator, evaluate=evaluator, tokenizer=tokenizer,
                  hparams=_json_args(args))  # fmt: skip

    results = {
        "model_name_or_path": args.model_name_or_path,
        "data": {"corpus": args.corpus, "lang": args.lang, "dataset": args.dataset,
                 "dataset_config": args.dataset_config, "tag_column": args.tag_column, "text_column": args.text_column,
                 "splits": splits, "flagged_rows_dropped": flagged},
        "label_names": names,
        "num_train_sentences": len(train_data),
        "num_train_windows": len(train_features),
        "completed_steps": state.completed_steps,
        "epochs": state.history,
        "best": {"split": config.best_split, "metric": config.metric_for_best, "value": state.best_metric,
                 "epoch": state.best_epoch, "step": state.best_step},
        "train_runtime_s": state.train_seconds,
        "train_tokens": state.train_tokens,
        "train_tokens_per_s": state.tokens_per_second,
        "padding_fraction": state.padding_fraction,
        "wall_time_s": time.perf_counter() - started,
        "num_processes": accelerator.num_processes,
        "args": _json_args(args),
    }  # fmt: skip
    if accelerator.is_main_process:
        with open(os.path.join(outputs.staging, RESULTS_FILE), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        outputs.publish()
        accelerator.print(f"best {config.best_split} {config.metric_for_best}: {state.best_metric} -> {args.output_dir}")
    return results


def _json_args(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(PROG, main))
