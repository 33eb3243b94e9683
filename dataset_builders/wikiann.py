"""WikiANN (PAN-X): from the Hub's parquet repository when online, or from local parquet / CoNLL files.

Local layout under ``data_dir`` (or ``data_dir/wikiann``): ``{lang}/{split}*.parquet`` as the
Hub repository stores them, or ``{lang}/{split}.txt`` CoNLL files (``token<TAB>tag`` or
``token tag``; the ``{lang}:`` token prefix of Rahimi et al.'s release is removed).
"""

from __future__ import annotations

import glob
import os
from typing import Optional, Sequence

import datasets

from dataset_builders.schemes import WIKIANN

SPLITS = ("train", "validation", "test")
HUB_ID = "unimelb-nlp/wikiann"


class CorpusUnavailableError(RuntimeError):
    """A corpus that must come from the Hub could not be had (offline, or no such config)."""


def _features() -> datasets.Features:
    return datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=WIKIANN.label_names)),
        }
    )


def local_files(data_dir: str, lang: str, splits: Sequence[str]) -> tuple[str, dict[str, list[str]]]:
    for base in (os.path.join(data_dir, "wikiann", lang), os.path.join(data_dir, lang)):
        parquet = {
            s: sorted(glob.glob(os.path.join(base, f"{s}*.parquet")) + glob.glob(os.path.join(base, s, "*.parquet")))
            for s in splits
        }
        if all(parquet.values()):
            return "parquet", parquet
        conll = {s: [os.path.join(base, f"{s}.txt")] for s in splits}
        if all(os.path.isfile(p[0]) for p in conll.values()):
            return "conll", conll
    return "", {}


def _strip_lang_prefix(batch, lang: str):
    prefix = f"{lang}:"
    return {"tokens": [[t[len(prefix) :] if t.startswith(prefix) else t for t in toks] for toks in batch["tokens"]]}


def load_wikiann(
    lang: Optional[str],
    data_dir: Optional[str] = None,
    splits: Optional[Sequence[str]] = None,
    cache_dir: Optional[str] = None,
) -> datasets.DatasetDict:
    if not lang:
        raise ValueError("wikiann needs lang= (a WikiANN language code such as 'sw')")
    splits = list(splits or SPLITS)
    if data_dir:
        kind, files = local_files(data_dir, lang, splits)
        if kind == "parquet":
            dd = datasets.load_dataset("parquet", data_files=files, cache_dir=cache_dir)
            dd = dd.select_columns(["tokens", "ner_tags"])
            return dd.cast(_features())
        if kind == "conll":
            from dataset_builders.conll import read_conll

            dd = read_conll(files, label_names=WIKIANN.label_names, cache_dir=cache_dir, separator=None, num_columns=2)
            return dd.map(_strip_lang_prefix, batched=True, fn_kwargs={"lang": lang})
    try:
        dd = datasets.load_dataset(HUB_ID, lang, cache_dir=cache_dir)
    except Exception as err:  # offline, unknown config, hub errors: all end the same way for the user
        where = f" and no local files for it under {data_dir!r}" if data_dir else ""
        raise CorpusUnavailableError(
            f"wikiann ({lang}) could not be loaded from the Hub repository {HUB_ID!r}{where}: {err}. "
            f"Offline, give data_dir= holding {lang}/{{train,validation,test}}*.parquet or .txt files."
        ) from err
    dd = datasets.DatasetDict({s: dd[s] for s in splits})
    return dd.select_columns(["tokens", "ner_tags"]).cast(_features())
