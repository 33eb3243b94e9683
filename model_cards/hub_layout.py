"""Projected datasets in Hub layout: parquet shards, one config per target language, README with the card.

:func:`write_hub_dataset` turns the output folder(s) of :func:`projection.pipelines.run_projection`
(``<lang>/`` DatasetDicts saved with ``save_to_disk`` + ``projection_summary.json``) into::

    README.md                                   card + YAML: configs, dataset_info (features), licence...
    data/<config>/<split>-00000-of-00001.parquet

One config per target language, named after it (``es``), or ``<lang>-<method>`` when several runs
project the same language with different methods. The YAML ``configs:`` block maps each config's
splits to its files and ``dataset_info:`` records the features, so ``load_dataset(folder, "es")``
and, once uploaded, ``load_dataset(repo_id, "es")`` give the saved rows with the same features
(``ClassLabel`` names included). Rows keep every column and their order; a split larger than
``max_shard_size`` is cut into contiguous shards.

The folder is built next to its destination and moved into place with one ``rename``: an error
midway leaves no half-written folder behind; what ``load_dataset`` cached from an earlier folder at
that path is then removed (:func:`forget_cached_loads`), so a rewritten folder never loads stale.
"""

from __future__ import annotations

import math
import os
import shutil
from typing import Optional, Sequence, Union

import datasets
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from datasets.utils.py_utils import convert_file_size_to_int
from huggingface_hub import DatasetCard, DatasetCardData

from dataset_builders.atomic import staged_dir
from model_cards.dataset_card import ProjectedDatasetCardData, render_dataset_card

PathLike = Union[str, os.PathLike]
DATA_DIR = "data"


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.parquet"


def write_config(
    dd: datasets.DatasetDict, folder: str, config_name: str, max_shard_size: Union[int, str] = "500MB"
) -> tuple[dict, DatasetInfo]:
    """Write one config's splits as parquet shards under ``folder/data/<config>/``.

    Returns its ``configs:`` entry (split -> file pattern) and its ``DatasetInfo`` (features and
    split sizes) for the README metadata.
    """
    max_bytes = convert_file_size_to_int(max_shard_size)
    config_dir = os.path.join(folder, DATA_DIR, config_name)
    os.makedirs(config_dir, exist_ok=True)
    features = None
    splits = SplitDict()
    data_files = []
    download_size = 0
    for split, ds in dd.items():
        if features is None:
            features = ds.features
        elif ds.features != features:
            raise ValueError(f"config {config_name!r}: split {split!r} has other features than the first split")
        num_bytes = int(ds.data.nbytes)
        num_shards = max(1, math.ceil(num_bytes / max_bytes)) if len(ds) else 1
        num_shards = min(num_shards, max(len(ds), 1))
        for index in range(num_shards):
            path = os.path.join(config_dir, shard_name(split, index, num_shards))
            ds.shard(num_shards, index, contiguous=True).to_parquet(path)
            download_size += os.path.getsize(path)
        splits.add(SplitInfo(name=split, num_bytes=num_bytes, num_examples=len(ds)))
        data_files.append({"split": split, "path": f"{DATA_DIR}/{config_name}/{split}-*"})
    info = DatasetInfo(
        features=features,
        splits=splits,
        download_size=download_size,
        dataset_size=sum(s.num_bytes for s in splits.values()),
    )
    return {"data_files": data_files}, info


def hub_metadata(entries: dict[str, dict], infos: dict[str, DatasetInfo]) -> tuple[list, list]:
    """The ``configs:`` and ``dataset_info:`` YAML lists (datasets' own serialisers, sorted by config)."""
    card_data = DatasetCardData()
    MetadataConfigs(entries).to_dataset_card_data(card_data)
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    dataset_info = card_data["dataset_info"]
    if isinstance(dataset_info, dict):  # datasets writes a single config as a mapping
        dataset_info = [
            {"config_name": next(iter(infos)), **{k: v for k, v in dataset_info.items() if k != "config_name"}}
        ]
    return card_data["configs"], dataset_info


def write_hub_dataset(
    projections: Union[PathLike, Sequence[PathLike]],
    output_dir: PathLike,
    *,
    repo_id: Optional[str] = None,
    pretty_name: Optional[str] = None,
    card_data: Optional[ProjectedDatasetCardData] = None,
    max_shard_size: Union[int, str] = "500MB",
    overwrite: bool = False,
) -> str:
    """Write the projection run folder(s) ``projections`` in Hub layout into ``output_dir``.

    ``repo_id`` names the Hub repository in the card's usage section. ``card_data`` replaces the
    card data built from the runs' summaries (its ``configs_info[i].source`` says where each
    config's DatasetDict is). ``output_dir`` must not exist unless ``overwrite``; it appears
    complete or not at all. Returns ``output_dir``.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} exists; pass overwrite=True to replace it")
    if card_data is None:
        runs = [projections] if isinstance(projections, (str, os.PathLike)) else list(projections)
        if not runs:
            raise ValueError("no projection folder given")
        for run in runs:
            if not os.path.isfile(os.path.join(os.fspath(run), "projection_summary.json")):
                raise FileNotFoundError(f"{run}: no projection_summary.json (is it a run_projection output folder?)")
        card_data = ProjectedDatasetCardData.from_projections(list(runs), repo_id=repo_id, pretty_name=pretty_name)
    with staged_dir(output_dir) as staging:
        build_layout(card_data, staging, max_shard_size=max_shard_size)
    forget_cached_loads(output_dir, [config.name for config in card_data.configs_info])
    return output_dir


def forget_cached_loads(folder: PathLike, configs: Sequence[str]) -> list[str]:
    """Remove what ``load_dataset(folder, config)`` cached from an earlier folder at the same path; returns it.

    ``datasets`` keys a local folder's cache on its path, config and file names, not on the files'
    content or times (measured with datasets 5.2: a folder rewritten in place loads as its old rows,
    also in a new process), so a rewritten layout would otherwise load stale. Only the default cache
    location is known here; a ``load_dataset(..., cache_dir=...)`` elsewhere is not touched.
    """
    removed = []
    for config in configs:
        cache_dir = datasets.load_dataset_builder(os.fspath(folder), config).cache_dir
        if os.path.isdir(cache_dir):
            shutil.rmtree(cache_dir)
            removed.append(cache_dir)
    return removed


def build_layout(card_data: ProjectedDatasetCardData, folder: str, max_shard_size: Union[int, str] = "500MB") -> None:
    """Write the parquet shards and README.md of ``card_data``'s configs into the (empty) ``folder``."""
    entries, infos = {}, {}
    for config in card_data.configs_info:
        if not config.source or not os.path.isdir(config.source):
            raise FileNotFoundError(f"config {config.name!r}: the projected data {config.source} is missing")
        dd = datasets.load_from_disk(config.source)
        if isinstance(dd, datasets.Dataset):
            dd = datasets.DatasetDict({"train": dd})
        entries[config.name], infos[config.name] = write_config(dd, folder, config.name, max_shard_size)
    card_data.hub_configs, card_data.hub_dataset_info = hub_metadata(entries, infos)
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(render_dataset_card(card_data))


def is_hub_layout(folder: PathLike) -> bool:
    """Whether ``folder`` already holds a dataset in Hub layout (README.md with ``configs:`` + data files)."""
    readme = os.path.join(os.fspath(folder), "README.md")
    if not os.path.isfile(readme):
        return False
    return bool(DatasetCard.load(readme).data.get("configs"))


def is_projection_output(folder: PathLike) -> bool:
    return os.path.isfile(os.path.join(os.fspath(folder), "projection_summary.json"))


__all__ = [
    "build_layout",
    "forget_cached_loads",
    "hub_metadata",
    "is_hub_layout",
    "is_projection_output",
    "shard_name",
    "write_config",
    "write_hub_dataset",
]
