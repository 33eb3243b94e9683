"""``xner publish dataset|model DIR --repo-id ID`` and ``xner predict --model REPO_OR_DIR TEXT...``.

The token comes from ``HF_TOKEN`` or the file ``hf auth login`` writes; there is deliberately no
``--token`` flag, so it never shows up in shell history or process listings.
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    publish = subparsers.add_parser("publish", help="push a projected dataset or a trained model to the Hub")
    targets = publish.add_subparsers(dest="target", metavar="TARGET")
    for target, help_text, folder_help in (
        ("dataset", "push a projected dataset (a `xner project` output folder or a folder in Hub layout)",
         "projection output folder (with projection_summary.json) or Hub-layout folder"),
        ("model", "push a trained model or LoRA adapter with its model card",
         "model folder (config.json or adapter_config.json; README.md or results.json for the card)"),
    ):
        p = targets.add_parser(target, help=help_text, description=help_text)
        if target == "dataset":
            p.add_argument("folder", metavar="DIR", nargs="+", help=folder_help + "; several projection folders "
                           "(e.g. one per method) give one config each")
        else:
            p.add_argument("folder", metavar="DIR", help=folder_help)
        p.add_argument("--repo-id", "--repo_id", "--hub_model_id", dest="repo_id", required=True,
                       help="user-or-org/name on the Hub")
        p.add_argument("--private", action="store_true", help="create the repo private (if it does not exist)")
        p.add_argument("--revision", help="branch to commit to (created from main when missing)")
        p.add_argument("--create-pr", "--create_pr", dest="create_pr", action="store_true",
                       help="open a pull request instead of committing to main")
        p.add_argument("--commit-message", "--commit_message", dest="commit_message")
        if target == "dataset":
            p.add_argument("--pretty-name", dest="pretty_name", help="dataset title in the card")
            p.add_argument("--max-shard-size", dest="max_shard_size", default="500MB",
                           help="largest parquet shard (default 500MB)")
        else:
            p.add_argument("--license", help="licence id for the model card (e.g. apache-2.0)")
            p.add_argument("--base-model-id", "--base_model_id", dest="base_model_id",
                           help="Hub id of the base model, when it was loaded from a local folder xner cannot "
                           "name (published files never hold local paths)")
        p.set_defaults(func=run_publish)
    publish.set_defaults(func=lambda args: _usage(publish))

    p = subparsers.add_parser("predict",
                              help="word-level entities from a trained model (full or LoRA), local or on the Hub",
                              description="Prints one JSON object per text: words and entities (word indices, end "
                                          "exclusive, character offsets, label, score).")
    p.add_argument("--model", required=True, help="model folder or Hub repo id")
    p.add_argument("--revision", help="Hub revision of --model")
    p.add_argument("--file", help="read texts from this file, one per line ('-' for stdin); one output line per "
                   "input line, blank lines included")
    p.add_argument("--lang", help="language of the texts for word splitting (ISO 639-1; default English rules)")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=16)
    p.add_argument("--device", help="torch device (default: cpu)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="raw text(s) to tag")
    p.set_defaults(func=run_predict)


def _usage(parser) -> int:
    parser.print_help()
    return 2


def _user_error(err: Exception):
    from dataset_builders.errors import UserError

    return UserError(str(err).splitlines()[0] if str(err) else type(err).__name__)


def run_publish(args) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from model_cards.publish import HubOfflineError, publish_dataset, publish_model

    common = dict(private=args.private, revision=args.revision, create_pr=args.create_pr,
                  commit_message=args.commit_message)
    try:
        if args.target == "dataset":
            info = publish_dataset(args.folder, args.repo_id, pretty_name=args.pretty_name,
                                   max_shard_size=args.max_shard_size, **common)
        else:
            card = {"license": args.license} if args.license else {}
            info = publish_model(args.folder, args.repo_id, base_model_id=args.base_model_id, **common, **card)
    except (HubOfflineError, HfHubHTTPError) as err:
        raise _user_error(err) from err
    folder = " ".join(args.folder) if isinstance(args.folder, list) else args.folder
    print(f"pushed {folder} to {args.repo_id}: {info.commit_url}")
    if getattr(info, "pr_url", None):
        print(f"pull request: {info.pr_url}")
    return 0


def run_predict(args) -> int:
    from model_cards.predict import predict
    from training.inference import WordTagger

    texts = list(args.texts)
    if args.file:
        # One output line per input line, blank ones included (a result with no words), so
        # output line N always belongs to input line N.
        handle = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with handle:
            texts += [line.rstrip("\r\n") for line in handle]
    elif not texts:
        raise ValueError("give text(s) to tag, or --file PATH")
    tagger = WordTagger.from_pretrained(args.model, revision=args.revision, device=args.device, batch_size=args.batch_size)
    for result in predict(tagger, texts, lang=args.lang):
        print(json.dumps(result, ensure_ascii=False))
    return 0
