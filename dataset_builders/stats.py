"""Corpus statistics: sentences, tokens and entities per type for each split (vectorised over Arrow)."""

from __future__ import annotations

import datasets
import numpy as np
import pyarrow.compute as pc

from dataset_builders.schemes import split_tag


def split_stats(ds: datasets.Dataset) -> dict:
    names = ds.features["ner_tags"].feature.names
    column = ds.data.column("ner_tags")
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False) if len(ds) else np.zeros(0, dtype=np.int64)
    counts = np.bincount(flat, minlength=len(names))
    # Readers guarantee valid IOB2, so every entity starts with exactly one B- tag.
    entities: dict[str, int] = {}
    for i, name in enumerate(names):
        prefix, label = split_tag(name)
        if prefix == "B":
            entities[label] = int(counts[i])
    return {"sentences": len(ds), "tokens": int(len(flat)), "entities": entities}


def corpus_stats(dd: datasets.DatasetDict) -> dict[str, dict]:
    return {split: split_stats(ds) for split, ds in dd.items()}


def format_stats(stats: dict[str, dict]) -> str:
    types = sorted({t for s in stats.values() for t in s["entities"]})
    header = ["split", "sentences", "tokens", *types, "entities"]
    rows = [header]
    for split, s in stats.items():
        ents = [s["entities"].get(t, 0) for t in types]
        rows.append([split, s["sentences"], s["tokens"], *ents, sum(ents)])
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(str(v).rjust(w) if k else str(v).ljust(w) for k, (v, w) in enumerate(zip(r, widths))) for r in rows
    ]
    return "\n".join(lines)
