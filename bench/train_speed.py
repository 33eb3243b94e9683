"""Training throughput of xner's student loop against a plain ``transformers.Trainer``, and peak memory.

Same model (``--model``: the offline MiniLM by default, or ``multilingual-e5-small`` or any folder,
with a fresh CoNLL head; ``--freeze_embeddings`` freezes its embeddings in every variant), same
data (``--samples`` sentences of CoNLL-2003 English train, a seeded random choice, tokenised once
with :class:`training.features.TokenAligner`: first sub-token labelled), same batch size, same
number of optimizer steps, same optimizer (fused AdamW, linear schedule, clipping at 1.0). Only
the batching differs:

* ``xner``: :func:`training.loop.train` with length-grouped batches and dynamic padding, exactly
  as ``xner train-teacher`` builds them (:func:`training.collate.build_dataloader`,
  :class:`training.collate.TokenCollator`), a full student (:func:`training.students.build_student`);
* ``trainer``: ``transformers.Trainer`` with its default random batches and
  ``DataCollatorForTokenClassification`` (padding to the longest row of each batch);
* ``xner-lora``: the xner loop on a LoRA student (default :class:`training.students.LoraSettings`),
  for the memory comparison.

Measured: real (non-padding) tokens processed per second of training, the training loop only
(model loading, tokenisation and saving excluded: ``LoopState.train_seconds`` for xner, from the
Trainer's ``on_train_begin`` to ``on_train_end`` for the Trainer; tokens counted per trained
batch from its attention mask in both). Each variant runs in its own subprocess, one after the
other, so its peak resident memory (``ru_maxrss``) is its own: full vs LoRA student. The CPU may
be shared with other work: the load average is printed with the results, ``--rounds N`` interleaves
N runs of every variant and keeps each one's best, and ``--threads 1`` avoids the collapse of
multi-threaded ops on busy cores. Example (what the README reports)::

    python bench/train_speed.py --samples 2000 --batch-size 16 --epochs 1 --threads 1
    python bench/train_speed.py --model multilingual-e5-small --freeze_embeddings --max-steps 30 --threads 1

The last line is one JSON object:
``{"tokens_per_s": {"xner": X, "trainer": Y}, "speedup": R, "peak_rss_mb": {"full": A, "lora": B}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Optional

from dataset_builders.corpora import default_data_dir  # $XNER_DATA_DIR, else ../shared/data

VARIANTS = ("trainer", "xner", "xner-lora")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder holding conll2003/ (default: $XNER_DATA_DIR or ../shared/data)",
    )
    parser.add_argument(
        "--model",
        default="all-minilm-l6-v2",
        help="a short asset name (multilingual-e5-small, all-minilm-l6-v2) or a model folder",
    )
    parser.add_argument(
        "--freeze_embeddings",
        "--freeze-embeddings",
        action="store_true",
        help="do not train the embeddings (as xner distill --freeze_embeddings)",
    )
    parser.add_argument("--samples", type=int, default=2000, help="CoNLL-2003 training sentences")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, help="optimizer steps per variant (overrides --epochs)")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="full fine-tuning (LoRA gets 10x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's own). On a CPU shared with other work use 1: with 2 threads on 2 "
        "busy cores every op waits for the preempted thread and throughput collapses (5x measured here)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the variants this many times, interleaved (trainer, xner, ... trainer, xner, ...), and report "
        "each variant's best round: on a shared CPU the least disturbed run is the closest to its real speed",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)  # run one variant in this process
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------ one variant


def model_path(args) -> str:
    from training.assets import resolve_model_name

    return resolve_model_name(args.model)


def load_features(args):
    """The sampled CoNLL-2003 sentences as labelled features (one row per window), and the tokenizer."""
    from transformers import AutoTokenizer

    from dataset_builders import load_corpus
    from training.features import TokenAligner, tokenize_dataset

    train = load_corpus("conll2003", data_dir=args.data_dir, splits=["train"])["train"]
    train = train.shuffle(seed=args.seed).select(range(min(args.samples, len(train))))
    names = train.features["ner_tags"].feature.names
    tokenizer = AutoTokenizer.from_pretrained(model_path(args))
    aligner = TokenAligner(tokenizer, label_column="ner_tags", label_names=names)
    features = tokenize_dataset(train, aligner, desc="tokenising")
    return features, tokenizer, names


def run_xner(args, lora: bool) -> dict:
    from accelerate.utils import set_seed

    from training.collate import TokenCollator, build_dataloader
    from training.loop import LoopConfig, make_accelerator, train
    from training.students import LoraSettings, build_student
    from training.teacher import token_cross_entropy

    features, tokenizer, names = load_features(args)
    with tempfile.TemporaryDirectory() as output_dir:
        config = LoopConfig(
            output_dir=output_dir,
            num_train_epochs=args.epochs,
            max_train_steps=args.max_steps,
            learning_rate=args.learning_rate * (10 if lora else 1),
        )
        accelerator = make_accelerator(config)
        set_seed(args.seed)
        model = build_student(
            model_path(args), names, lora=LoraSettings() if lora else None, freeze_embeddings=args.freeze_embeddings
        )
        dataloader = build_dataloader(
            features, args.batch_size, TokenCollator(tokenizer.pad_token_id), shuffle=True, seed=args.seed
        )
        state = train(model, dataloader, token_cross_entropy, config, accelerator)
    return {
        "steps": state.completed_steps,
        "tokens": state.train_tokens,
        "padded_tokens": state.padded_tokens,
        "seconds": state.train_seconds,
    }


def run_trainer(args) -> dict:
    from transformers import DataCollatorForTokenClassification, Trainer, TrainerCallback, TrainingArguments

    from training.students import build_student

    features, tokenizer, names = load_features(args)
    features = features.select_columns(["input_ids", "attention_mask", "labels"])
    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, *_, **__):
            clock["begin"] = time.perf_counter()

        def on_train_end(self, *_, **__):
            clock["end"] = time.perf_counter()

    class CountingTrainer(Trainer):
        """Counts the real and padded tokens of every batch it trains on."""

        tokens = padded = 0

        def training_step(self, model, inputs, *rest, **kwargs):
            self.tokens += int(inputs["attention_mask"].sum())
            self.padded += inputs["input_ids"].numel()
            return super().training_step(model, inputs, *rest, **kwargs)

    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs,
            max_steps=args.max_steps or -1,
            learning_rate=args.learning_rate,
            seed=args.seed,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=False,
            dataloader_num_workers=0,
        )
        from accelerate.utils import set_seed

        set_seed(args.seed)
        model = build_student(model_path(args), names, freeze_embeddings=args.freeze_embeddings)
        trainer = CountingTrainer(
            model=model,
            args=training_args,
            train_dataset=features,
            data_collator=DataCollatorForTokenClassification(tokenizer),
            callbacks=[Clock()],
        )
        output = trainer.train()
    return {
        "steps": output.global_step,
        "tokens": trainer.tokens,
        "padded_tokens": trainer.padded,
        "seconds": clock["end"] - clock["begin"],
    }


def child(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_trainer(args) if args.child == "trainer" else run_xner(args, lora=args.child == "xner-lora")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------- driver


def run_variant(variant: str, argv: list[str]) -> dict:
    command = [sys.executable, os.path.abspath(__file__), *argv, "--child", variant]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"variant {variant} failed (exit {done.returncode}): {' '.join(command)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    load_before = os.getloadavg()
    rounds: dict[str, list[dict]] = {variant: [] for variant in args.variants}
    for round_index in range(args.rounds):
        for variant in args.variants:
            print(f"round {round_index + 1}/{args.rounds}: running {variant} ...", file=sys.stderr, flush=True)
            result = run_variant(variant, argv)
            result["tokens_per_s"] = result["tokens"] / result["seconds"] if result["seconds"] else 0.0
            rounds[variant].append(result)
    load_after = os.getloadavg()
    results = {}
    for variant, runs in rounds.items():
        results[variant] = dict(max(runs, key=lambda r: r["tokens_per_s"]))
        results[variant]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        if len(runs) > 1:
            print(f"{variant}: tokens/s per round " + ", ".join(f"{r['tokens_per_s']:.1f}" for r in runs))

    steps = f"{args.max_steps} steps" if args.max_steps else f"{args.epochs} epoch(s)"
    frozen = ", embeddings frozen" if args.freeze_embeddings else ""
    print(
        f"{args.model}{frozen}, CoNLL-2003 en train: {args.samples} sentences, batch size "
        f"{args.batch_size}, {steps}, {results[args.variants[0]]['threads']} torch threads, {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (shared CPU); "
        f"{'best of ' + str(args.rounds) + ' interleaved rounds' if args.rounds > 1 else 'one round'}"
    )
    header = f"{'variant':<10} {'steps':>6} {'real tokens':>12} {'padded':>10} {'padding':>8} {'train s':>9} {'tokens/s':>9} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for variant, r in results.items():
        padding = 1 - r["tokens"] / r["padded_tokens"] if r["padded_tokens"] else 0.0
        print(
            f"{variant:<10} {r['steps']:>6} {r['tokens']:>12} {r['padded_tokens']:>10} {padding:>7.1%} "
            f"{r['seconds']:>9.1f} {r['tokens_per_s']:>9.1f} {r['peak_rss_mb']:>12.0f}"
        )

    def get(variant, key):
        return round(results[variant][key], 1) if variant in results else None

    xner, trainer = get("xner", "tokens_per_s"), get("trainer", "tokens_per_s")
    speedup = (
        round(results["xner"]["tokens_per_s"] / results["trainer"]["tokens_per_s"], 2) if xner and trainer else None
    )
    if speedup is not None:
        print(f"speedup (xner / trainer tokens per second): {speedup:.2f}x")
    summary = {
        "tokens_per_s": {"xner": xner, "trainer": trainer},
        "speedup": speedup,
        "peak_rss_mb": {"full": get("xner", "peak_rss_mb"), "lora": get("xner-lora", "peak_rss_mb")},
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
