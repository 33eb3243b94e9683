import datasets
import pytest

from dataset_builders import WIKIANN, load_corpus
from dataset_builders.wikiann import CorpusUnavailableError

ROWS = {
    "train": {"tokens": [["Nairobi", "ni", "mji"], ["Amina", "Juma"]], "ner_tags": [[5, 0, 0], [1, 2]]},
    "validation": {"tokens": [["Kenya"]], "ner_tags": [[5]]},
    "test": {"tokens": [["Benki", "Kuu"]], "ner_tags": [[3, 4]]},
}


def test_local_parquet_in_hub_layout(tmp_path, hf_cache):
    folder = tmp_path / "wikiann" / "sw"
    folder.mkdir(parents=True)
    for split, rows in ROWS.items():
        # The Hub's parquet files carry extra columns (langs, spans); they are dropped.
        table = dict(rows, langs=[["sw"] * len(t) for t in rows["tokens"]])
        datasets.Dataset.from_dict(table).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    dd = load_corpus("wikiann", data_dir=str(tmp_path), lang="sw", cache_dir=hf_cache)
    assert dd["train"]["tokens"] == ROWS["train"]["tokens"]
    assert dd["test"]["ner_tags"] == [[3, 4]]
    assert dd["train"].features["ner_tags"].feature.names == WIKIANN.label_names
    assert dd["train"].column_names == ["tokens", "ner_tags"]


def test_local_conll_with_language_prefix(tmp_path, hf_cache):
    folder = tmp_path / "sw"
    folder.mkdir()
    names = WIKIANN.label_names
    for split, rows in ROWS.items():
        lines = []
        for toks, tags in zip(rows["tokens"], rows["ner_tags"]):
            lines += [f"sw:{t}\t{names[g]}" for t, g in zip(toks, tags)] + [""]
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    dd = load_corpus("wikiann", data_dir=str(tmp_path), lang="sw", cache_dir=hf_cache)
    assert dd["train"]["tokens"] == ROWS["train"]["tokens"]
    assert dd["validation"]["ner_tags"] == [[5]]


def test_offline_without_local_files_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(CorpusUnavailableError, match=r"wikiann \(sw\) could not be loaded .*unimelb-nlp/wikiann"):
        load_corpus("wikiann", data_dir=str(tmp_path), lang="sw", cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="needs lang="):
        load_corpus("wikiann")
