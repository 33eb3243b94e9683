"""``xner corpus``: inspect the known corpora."""

from __future__ import annotations

import json
import sys

from dataset_builders.cli_flags import add_flag
from dataset_builders.corpora import CORPORA, available_splits, corpus_spec, load_corpus
from dataset_builders.stats import corpus_stats, format_stats


def register(subparsers) -> None:
    corpus = subparsers.add_parser("corpus", help="inspect known corpora")
    verbs = corpus.add_subparsers(dest="corpus_command", metavar="VERB", required=True)

    stats = verbs.add_parser("stats", help="sentences, tokens and entities per type for each split")
    stats.add_argument("name", help=f"corpus: one of {sorted([*CORPORA, 'wikiann'])}")
    add_flag(stats, "--data_dir", help="folder holding the corpus folder (default: $XNER_DATA_DIR or ../shared/data)")
    stats.add_argument("--lang", help="language, for multilingual corpora")
    stats.add_argument("--splits", help="comma-separated splits (default: every split whose file exists)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=run_stats)

    listing = verbs.add_parser("list", help="the known corpora, their languages and label types")
    listing.set_defaults(func=run_list)


def run_stats(args) -> int:
    spec = corpus_spec(args.name)
    if args.splits:
        splits = args.splits.split(",")
    elif args.name == "wikiann":
        splits = None
    else:
        splits = available_splits(args.name, args.data_dir, args.lang)
        missing = [s for s in spec.files if s not in splits]
        if not splits:
            splits = None  # let load_corpus name the missing files
        elif missing:
            print(f"note: no file for split(s) {missing}; showing {splits}", file=sys.stderr)
    dd = load_corpus(args.name, data_dir=args.data_dir, lang=args.lang, splits=splits)
    stats = corpus_stats(dd)
    if args.json:
        print(json.dumps({"corpus": args.name, "lang": args.lang, "splits": stats}, indent=2))
    else:
        print(f"{args.name}{' (' + args.lang + ')' if args.lang else ''}")
        print(format_stats(stats))
    return 0


def run_list(args) -> int:
    for spec in [*CORPORA.values(), corpus_spec("wikiann")]:
        langs = ",".join(spec.languages) if spec.languages else "any WikiANN language"
        print(f"{spec.name:14s} {'/'.join(spec.scheme.types):28s} {langs}")
    return 0
