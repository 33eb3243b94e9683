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

import logging
import os
import time
from typing import Optional, Sequence

import datasets
import torch
import torch.nn.functional as F
from accelerate.utils import set_seed
from transformers import AutoConfig, AutoModelForTokenClassification, HfArgumentParser

from dataset_builders.corpora import corpus_spec, load_corpus
from dataset_builders.error_report import run_reporting_errors
from dataset_builders.errors import UserError
from training.arguments import (
    DataArguments,
    HubArguments,
    LabelArguments,
    LoopArguments,
    ModelArguments,
    as_record,
    check_model_source,
    from_namespace,
)
from training.assets import resolve_model_name
from training.checkpoints import check_checkpoint, resolve_checkpoint
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
from training.results import RESULTS_FILE, RunResults, framework_versions, peak_memory_mb
from training.run_options import check_run_options, push_at_end
from training.students import freeze

logger = logging.getLogger(__name__)

DEV_SPLITS = ("validation", "dev")


ARGUMENTS = (DataArguments, LabelArguments, ModelArguments, LoopArguments, HubArguments)
PROG = "python -m training.teacher"
DESCRIPTION = __doc__.split("\n\n")[0]


def build_parser(**kwargs) -> HfArgumentParser:
    """The one parser of ``xner train-teacher`` and ``python -m training.teacher``, from :data:`ARGUMENTS`."""
    return HfArgumentParser(ARGUMENTS, **kwargs)


def register(subparsers) -> None:
    """Add ``train-teacher`` to the ``xner`` command (the same options, from the same dataclasses)."""
    parser = subparsers.add_parser(
        "train-teacher",
        help="fine-tune a token-classification teacher",
        description=DESCRIPTION,
        parents=[build_parser(add_help=False)],
    )
    parser.set_defaults(func=run)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m training.teacher ARGS``; errors propagate (the ``__main__`` block reports them in one line)."""
    parsed = build_parser(prog=PROG, description=DESCRIPTION).parse_args_into_dataclasses(
        argv, look_for_args_file=False
    )
    return run_typed(*parsed)


def run(namespace) -> int:
    """The ``xner train-teacher`` verb: the parsed options become the dataclasses here, the CLI edge."""
    return run_typed(*from_namespace(ARGUMENTS, namespace))


def run_typed(
    data: DataArguments, labels: LabelArguments, model: ModelArguments, loop: LoopArguments, hub: HubArguments
) -> int:
    check_run_options(hub, loop)  # a push or tracker that cannot happen is refused before training
    train_teacher(data, model, loop, labels)
    push_at_end(hub, loop.output_dir)
    return 0


def load_data(data: DataArguments) -> datasets.DatasetDict:
    """The splits named by ``--corpus`` or ``--dataset_name``."""
    if bool(data.corpus) == bool(data.dataset_name):
        raise UserError("give exactly one of --corpus NAME or --dataset_name PATH")
    if data.corpus:
        return load_corpus(data.corpus, data_dir=data.data_dir, lang=data.lang)
    return load_dataset_dict(data.dataset_name, data.dataset_config_name)


def load_dataset_dict(path: str, config: Optional[str]) -> datasets.DatasetDict:
    """A dataset saved with ``save_to_disk``, or anything ``load_dataset`` reads, as a DatasetDict."""
    saved = any(os.path.isfile(os.path.join(path, f)) for f in ("dataset_dict.json", "state.json"))
    loaded = datasets.load_from_disk(path) if saved else datasets.load_dataset(path, config)
    return datasets.DatasetDict({"train": loaded}) if isinstance(loaded, datasets.Dataset) else loaded


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
            split = split.remove_columns([c for c in ("tokens",) if c in split.column_names]).rename_column(
                column, "tokens"
            )
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


def choose_splits(data: datasets.DatasetDict, train_split: str, labels: LabelArguments) -> dict[str, Optional[str]]:
    """Split names for train / validation / test (the last two None when absent)."""

    def pick(explicit: Optional[str], defaults: Sequence[str]) -> Optional[str]:
        if explicit is not None:
            if explicit not in data:
                raise ValueError(f"split {explicit!r} not in the dataset; it has {list(data)}")
            return explicit
        return next((s for s in defaults if s in data), None)

    return {
        "train": pick(train_split, ()),
        "validation": pick(labels.validation_split, DEV_SPLITS),
        "test": pick(labels.test_split, ("test",)),
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


def loop_config(
    loop: LoopArguments, project_name: str = "xner-teacher", learning_rate: float = 5e-5, **overrides
) -> LoopConfig:
    """The loop's settings from the command line's (``learning_rate``: the default when none was given)."""
    return LoopConfig(
        output_dir=loop.output_dir,
        num_train_epochs=loop.num_train_epochs,
        max_train_steps=loop.max_train_steps,
        gradient_accumulation_steps=loop.gradient_accumulation_steps,
        learning_rate=loop.learning_rate or learning_rate,
        head_learning_rate=loop.head_learning_rate,
        weight_decay=loop.weight_decay,
        lr_scheduler_type=loop.lr_scheduler_type,
        num_warmup_steps=loop.num_warmup_steps,
        max_grad_norm=loop.max_grad_norm or None,
        checkpointing_steps=loop.checkpointing_steps,
        resume_from_checkpoint=loop.resume_from_checkpoint,
        with_tracking=loop.with_tracking,
        report_to=loop.report_to,
        project_name=project_name,
        mixed_precision=loop.mixed_precision,
        trust_checkpoint_pickles=loop.trust_checkpoint_pickles,
        **overrides,
    )


def check_arguments(
    model_name_or_path: str, loop: LoopArguments, model_arguments: Sequence[tuple[str, str]] = ()
) -> None:
    """What can be checked before anything loads: model sources, the output folder, the checkpoint to resume."""
    for argument, value in [("--model_name_or_path", model_name_or_path), *model_arguments]:
        check_model_source(value, argument)
    check_output_dir(loop.output_dir)
    if loop.resume_from_checkpoint:
        path = resolve_checkpoint(loop.resume_from_checkpoint, loop.output_dir)
        check_checkpoint(path, trust_pickles=loop.trust_checkpoint_pickles)


def load_model(model: ModelArguments, names: Sequence[str]):
    """Token classifier over ``names`` (a new head unless the checkpoint's fits) and its fast tokenizer.

    The model may be named by a short asset name (:func:`training.assets.resolve_model_name`)."""
    id2label = dict(enumerate(names))
    name, remote = resolve_model_name(model.model_name_or_path), model.trust_remote_code
    config = AutoConfig.from_pretrained(
        name, id2label=id2label, label2id={n: i for i, n in id2label.items()}, trust_remote_code=remote
    )
    tokenizer = load_tokenizer(name)
    classifier = AutoModelForTokenClassification.from_pretrained(
        name, config=config, ignore_mismatched_sizes=model.ignore_mismatched_sizes, trust_remote_code=remote
    )
    freeze(classifier, embeddings=model.freeze_embeddings, lowest_layers=model.freeze_layers)
    return classifier, tokenizer


def _first(dataset: datasets.Dataset, n: Optional[int]) -> datasets.Dataset:
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


def train_teacher(
    data: DataArguments, model: ModelArguments, loop: LoopArguments, labels: Optional[LabelArguments] = None
) -> RunResults:
    """Fine-tune, evaluate every epoch, save the best model and ``results.json``; returns the results."""
    started = time.perf_counter()
    labels = labels or LabelArguments()
    config = loop_config(loop)
    check_arguments(model.model_name_or_path, loop)
    accelerator = make_accelerator(config)
    if not accelerator.is_local_main_process:
        datasets.disable_progress_bars()
    set_seed(loop.seed)

    splits_data, flagged = drop_flagged_rows(load_data(data))
    splits_data = words_as_tokens(splits_data, data.text_column_name, labels.label_column_name)
    splits = choose_splits(splits_data, data.train_split, labels)
    names = label_names(splits_data[splits["train"]], labels.label_column_name)
    classifier, tokenizer = load_model(model, names)

    train_data = _first(splits_data[splits["train"]], data.max_train_samples)
    aligner = TokenAligner(
        tokenizer,
        max_length=data.max_length,
        stride=data.stride,
        label_column=labels.label_column_name,
        label_all_subtokens=labels.label_all_tokens,
        label_names=names,
    )
    eval_aligner = TokenAligner(tokenizer, max_length=aligner.max_length, stride=aligner.stride, label_column=None)
    eval_sets = {}
    with accelerator.main_process_first():
        workers = data.preprocessing_num_workers
        train_features = tokenize_dataset(train_data, aligner, num_proc=workers, desc="tokenising train")
        for role in ("validation", "test"):
            if splits[role] is not None:
                split_data = _first(splits_data[splits[role]], data.max_eval_samples)
                features = tokenize_dataset(split_data, eval_aligner, num_proc=workers, desc=f"tokenising {role}")
                eval_sets[role] = EvalSet(features, eval_references(split_data, labels.label_column_name, names))

    low_precision = accelerator.mixed_precision in ("fp16", "bf16", "fp8")
    collator = TokenCollator(tokenizer.pad_token_id, pad_to_multiple_of=8 if low_precision else None)
    train_dl = build_dataloader(
        train_features, loop.per_device_train_batch_size, collator, shuffle=True, seed=loop.seed
    )
    evaluator = None
    if eval_sets:
        evaluator = NerEvaluator(
            accelerator, eval_sets, dict(enumerate(names)), loop.per_device_eval_batch_size, collator
        )
    outputs = OutputFolder(loop.output_dir, RESULTS_FILE, accelerator.is_main_process)
    config.model_dir = outputs.begin(resuming=bool(loop.resume_from_checkpoint))
    accelerator.wait_for_everyone()
    record = as_record(data, labels, model, loop)
    state = train(
        classifier,
        train_dl,
        token_cross_entropy,
        config,
        accelerator,
        evaluate=evaluator,
        tokenizer=tokenizer,
        hparams=record,
    )

    domain = corpus_spec(data.corpus).domain or None if data.corpus else None
    peak_rss, peak_gpu = peak_memory_mb()
    results = RunResults(
        task="teacher",
        model_name_or_path=model.model_name_or_path,
        label_names=names,
        data={
            "corpus": data.corpus,
            "lang": data.lang,
            "dataset": data.dataset_name,
            "dataset_config": data.dataset_config_name,
            "domain": domain,
            "tag_column": labels.label_column_name,
            "text_column": data.text_column_name,
            "splits": splits,
            "flagged_rows_dropped": flagged,
        },
        num_train_sentences=len(train_data),
        num_train_windows=len(train_features),
        epochs=state.history,
        best={
            "split": config.best_split,
            "metric": config.metric_for_best,
            "value": state.best_metric,
            "epoch": state.best_epoch,
            "step": state.best_step,
        },
        eval=_saved_scores(state),
        completed_steps=state.completed_steps,
        learning_rate=config.learning_rate,
        train_runtime_s=state.train_seconds,
        train_tokens=state.train_tokens,
        train_tokens_per_s=state.tokens_per_second,
        padding_fraction=state.padding_fraction,
        wall_time_s=time.perf_counter() - started,
        peak_rss_mb=peak_rss,
        peak_gpu_memory_mb=peak_gpu,
        num_processes=accelerator.num_processes,
        train_corpus=data.corpus,
        train_domain=domain,
        framework_versions=framework_versions(adapter=False),
        args=record,
    )
    if accelerator.is_main_process:
        results.write(outputs.staging)
        outputs.publish()
        accelerator.print(
            f"best {config.best_split} {config.metric_for_best}: {state.best_metric} -> {loop.output_dir}"
        )
    return results


def _saved_scores(state) -> Optional[dict]:
    """The evaluation of the saved model: the best epoch's (the last one's without model selection)."""
    if not state.history:
        return None
    entry = (
        next((h for h in state.history if h["step"] == state.best_step), None)
        if state.best_metric is not None
        else None
    )
    entry = entry or state.history[-1]
    return {k: v for k, v in entry.items() if k not in ("epoch", "step", "train")}


if __name__ == "__main__":
    raise SystemExit(run_reporting_errors(PROG, main))
