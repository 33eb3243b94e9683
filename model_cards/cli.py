"""``xner publish dataset|model DIR --hub_model_id ID`` and ``xner predict --model REPO_OR_DIR TEXT...``.

The token comes from ``HF_TOKEN`` or the file ``hf auth login`` writes; there is deliberately no
``--token`` flag, so it never shows up in shell history or process listings.
"""

from __future__ import annotations

import json
import sys

from dataset_builders.cli_flags import add_flag


def register(subparsers) -> None:
    publish = subparsers.add_parser("publish", help="push a projected dataset or a trained model to the Hub")
    targets = publish.add_subparsers(dest="target", metavar="TARGET")
    for target, help_text, folder_help in (
        (
            "dataset",
            "push a projected dataset (a `xner project` output folder or a folder in Hub layout)",
            "projection output folder (with projection_summary.json) or Hub-layout folder",
        ),
        (
            "model",
            "push a trained model or LoRA adapter with its model card",
            "model folder (config.json or adapter_config.json; README.md or results.json for the card)",
        ),
    ):
        p = targets.add_parser(target, help=help_text, description=help_text)
        if target == "dataset":
            p.add_argument(
                "folder",
                metavar="DIR",
                nargs="+",
                help=folder_help + "; several projection folders (e.g. one per method) give one config each",
            )
        else:
            p.add_argument("folder", metavar="DIR", help=folder_help)
        add_flag(p, "--hub_model_id", "--repo_id", required=True, help="user-or-org/name on the Hub")
        add_flag(
            p,
            "--hub_private_repo",
            "--private",
            action="store_true",
            help="create the repo private (if it does not exist)",
        )
        add_flag(p, "--revision", help="branch to commit to (created from main when missing)")
        add_flag(p, "--create_pr", action="store_true", help="open a pull request instead of committing to main")
        add_flag(p, "--commit_message")
        if target == "dataset":
            add_flag(p, "--pretty_name", help="dataset title in the card")
            add_flag(p, "--max_shard_size", default="500MB", help="largest parquet shard (default 500MB)")
        else:
            add_flag(p, "--license", help="licence id for the model card (e.g. apache-2.0)")
            add_flag(
                p,
                "--base_model_id",
                help="Hub id of the base model, when it was loaded from a local folder xner cannot "
                "name (published files never hold local paths)",
            )
        p.set_defaults(func=run_publish)
    publish.set_defaults(func=lambda args: _usage(publish))

    p = subparsers.add_parser(
        "predict",
        help="word-level entities from a trained model (full or LoRA), local or on the Hub",
        description="Prints one JSON object per text: words and entities (word indices, end "
        "exclusive, character offsets, label, score).",
    )
    add_flag(p, "--model", "--model_name_or_path", required=True, help="model folder or Hub repo id")
    add_flag(p, "--revision", help="Hub revision of --model")
    add_flag(
        p,
        "--file",
        help="read texts from this file, one per line ('-' for stdin); one output line per "
        "input line, blank lines included",
    )
    add_flag(p, "--lang", help="language of the texts for word splitting (ISO 639-1; default English rules)")
    add_flag(p, "--per_device_eval_batch_size", "--batch_size", type=int, default=16, help="sentences per forward pass")
    add_flag(p, "--device", help="torch device (default: cpu)")
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

    common = dict(
        private=args.hub_private_repo,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
    )
    try:
        if args.target == "dataset":
            info = publish_dataset(
                args.folder,
                args.hub_model_id,
                pretty_name=args.pretty_name,
                max_shard_size=args.max_shard_size,
                **common,
            )
        else:
            card = {"license": args.license} if args.license else {}
            info = publish_model(args.folder, args.hub_model_id, base_model_id=args.base_model_id, **common, **card)
    except (HubOfflineError, HfHubHTTPError) as err:
        raise _user_error(err) from err
    folder = " ".join(args.folder) if isinstance(args.folder, list) else args.folder
    print(f"pushed {folder} to {args.hub_model_id}: {info.commit_url}")
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
    tagger = WordTagger.from_pretrained(
        args.model, revision=args.revision, device=args.device, batch_size=args.per_device_eval_batch_size
    )
    for result in predict(tagger, texts, lang=args.lang):
        print(json.dumps(result, ensure_ascii=False))
    return 0
