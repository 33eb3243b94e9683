"""``xner assets``: the offline models of :mod:`training.assets`, prepared ahead of use.

``minilm_path`` is re-exported for the callers that import it from here.
"""

from __future__ import annotations

from dataset_builders.cli_flags import add_flag
from training.assets import ASSETS, hub_id_of, minilm_path, resolve_model_name

__all__ = ["hub_id_of", "minilm_path", "register", "resolve_model_name"]


def register(subparsers) -> None:
    assets = subparsers.add_parser("assets", help="prepare offline models (e.g. convert multilingual-e5-small)")
    verbs = assets.add_subparsers(dest="assets_command", metavar="VERB", required=True)
    prepare = verbs.add_parser("prepare", help="build an asset's transformers folder (once) and print it")
    prepare.add_argument("name", choices=sorted(ASSETS), help="the asset's short name")
    add_flag(prepare, "--output_dir", help="write the folder here instead of the cache ($XNER_HOME/models/NAME)")
    prepare.set_defaults(func=run_prepare)
    listing = verbs.add_parser("list", help="the assets, their Hub ids and what they are")
    listing.set_defaults(func=run_list)


def run_prepare(args) -> int:
    asset = ASSETS[args.name]
    print(f"{asset.name}: {asset.description} (copy of {asset.hub_id})")
    print(asset.prepare(args.output_dir))  # the folder, last line, for scripts
    return 0


def run_list(args) -> int:
    for asset in ASSETS.values():
        print(f"{asset.name}\t{asset.hub_id}\t{asset.description}")
    return 0
