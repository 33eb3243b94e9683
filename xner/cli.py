"""The ``xner`` command: one verb per package, each registered by that package's ``cli`` module.

Verbs whose package is not importable yet (an optional extra missing) are left out of the
help rather than breaking every other verb.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from xner import __version__

# Each module exposes ``register(subparsers)``; its parsers set ``func`` to a callable(args) -> int.
COMMAND_MODULES = (
    "dataset_builders.cli",
    "projection.cli",
    "training.cli",
    "model_cards.cli",
    "xner.demo",
)


class CliError(Exception):
    """An error whose message is for the user: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xner", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"xner {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and name.startswith(err.name):
                continue  # that package has no CLI (yet)
            raise
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CliError, FileNotFoundError, ValueError) as err:
        if args.verbose:
            raise
        print(f"xner {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
