"""Apply a :class:`TypeMapping` to a dataset's ``ner_tags`` column (ClassLabel ids in, ids out)."""

from __future__ import annotations

import datasets
import numpy as np

from dataset_builders.schemes import TypeMapping


def _map_ids(batch, table):
    return {"ner_tags": [table[np.asarray(tags, dtype=np.int64)].tolist() for tags in batch["ner_tags"]]}


def relabel(ds: datasets.Dataset | datasets.DatasetDict, mapping: TypeMapping, num_proc: int | None = None):
    """Map ``ner_tags`` from ``mapping.source``'s label set to ``mapping.target``'s.

    The dataset's label names must be those of the source scheme (checked, so ids never silently
    mean something else).
    """
    sample = next(iter(ds.values())) if isinstance(ds, datasets.DatasetDict) else ds
    names = sample.features["ner_tags"].feature.names
    if list(names) != mapping.source.label_names:
        raise ValueError(f"dataset labels {names} are not those of the mapping's source {mapping.source.label_names}")
    features = sample.features.copy()
    features["ner_tags"] = datasets.List(datasets.ClassLabel(names=mapping.target.label_names))
    table = np.asarray(mapping.id_table(), dtype=np.int64)
    return ds.map(
        _map_ids,
        batched=True,
        fn_kwargs={"table": table},
        features=features,
        num_proc=num_proc,
        desc=f"relabel {mapping.source.name or 'source'} -> {mapping.target.name or 'target'}",
    )
