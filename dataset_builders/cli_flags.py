"""One flag style for every ``xner`` verb: each long option exists as ``--foo_bar`` and ``--foo-bar``.

The underscore spelling is the primary one (``run_ner_no_trainer.py``'s, and what ``--help``
shows first); the dash spelling is an alias, as ``transformers.HfArgumentParser`` adds for the
dataclass-based verbs. Old names given as further spellings keep working (each with both forms).
This module sits at the bottom layer so that every package's command line can use it.
"""

from __future__ import annotations

import argparse
from typing import Iterable


def spellings(names: Iterable[str]) -> list[str]:
    """Every spelling of option ``names``: each long name with underscores, then with dashes; once each."""
    out: list[str] = []
    for name in names:
        if name.startswith("--"):
            out += ["--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")]
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def add_flag(parser: argparse.ArgumentParser, name: str, *aliases: str, **kwargs) -> argparse.Action:
    """``parser.add_argument`` of ``--name`` (underscore form, the destination unless ``dest`` is given)
    with ``aliases``, all in both spellings: ``add_flag(p, "--output_dir", "--out")``."""
    if not name.startswith("--"):
        raise ValueError(f"add_flag is for long options, got {name!r}")
    primary = "--" + name[2:].replace("-", "_")
    kwargs.setdefault("dest", primary[2:])
    return parser.add_argument(*spellings([primary, *aliases]), **kwargs)


__all__ = ["add_flag", "spellings"]
