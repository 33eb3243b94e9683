"""The real corpora in $XNER_DATA_DIR: exact sentence and token counts as documented in
shared/data/README.md (computed there independently of xner), and the standard CoNLL-2003
entity counts."""

import json

import pytest

from dataset_builders import CONLL, corpus_stats, load_corpus, read_conll
from xner.cli import main

pytestmark = pytest.mark.corpora

MASAKHANER2 = {  # lang: (train, dev, test) as (sentences, tokens)
    "hau": ((5716, 153238), (816, 21537), (1633, 44848)),
    "ibo": ((7634, 238783), (1090, 33510), (2181, 71802)),
    "kin": ((7825, 171147), (1118, 22502), (2235, 52284)),
    "lug": ((4942, 86308), (706, 11480), (1412, 22329)),
    "luo": ((5161, 163382), (737, 22270), (1474, 44275)),
    "nya": ((6250, 186533), (893, 25479), (1785, 51610)),
    "sna": ((6207, 137240), (887, 20080), (1773, 38460)),
    "swa": ((6593, 175160), (942, 25251), (1883, 51179)),
    "tsn": ((3489, 99973), (499, 14389), (996, 26705)),
    "wol": ((4593, 123225), (656, 19676), (1312, 38127)),
    "xho": ((5718, 86647), (817, 14246), (1633, 26326)),
    "yor": ((6876, 175835), (983, 22787), (1964, 45653)),
    "zul": ((5848, 89355), (836, 13245), (1670, 26086)),
    "ewe": ((3505, 60657), (501, 9320), (1001, 20442)),
    "fon": ((4343, 118853), (623, 17539), (1228, 36415)),
    "bam": ((4462, 106998), (638, 16502), (1274, 32024)),
    "mos": ((4532, 123879), (648, 16562), (1294, 27700)),
    "twi": ((4240, 112160), (605, 14804), (1211, 28996)),
}

EXPECTED = {
    ("conll2003", "en"): {"train": (14041, 203621), "validation": (3250, 51362), "test": (3453, 46435)},
    ("conll2002", "es"): {"train": (8323, 264715), "validation": (1915, 52923), "test": (1517, 51533)},
    ("conll2002", "nl"): {"train": (15806, 202644), "validation": (2895, 37687), "test": (5195, 68875)},
    ("europarl-ner", "en"): {"test": (799, 22320)},
    ("europarl-ner", "de"): {"test": (799, 20187)},
    ("europarl-ner", "es"): {"test": (799, 23279)},
    ("germeval2014", "de"): {"validation": (2200, 41653), "test": (5100, 96499)},
    **{
        ("masakhaner2", lang): dict(zip(("train", "validation", "test"), counts))
        for lang, counts in MASAKHANER2.items()
    },
}


@pytest.mark.parametrize("corpus, lang", sorted(EXPECTED), ids=lambda v: v)
def test_exact_counts(real_data_dir, hf_cache, corpus, lang):
    expected = EXPECTED[(corpus, lang)]
    dd = load_corpus(corpus, data_dir=str(real_data_dir), lang=lang, splits=list(expected), cache_dir=hf_cache)
    stats = corpus_stats(dd)
    assert {split: (s["sentences"], s["tokens"]) for split, s in stats.items()} == expected


def test_conll2003_entity_counts(real_data_dir, hf_cache):
    stats = corpus_stats(load_corpus("conll2003", data_dir=str(real_data_dir), cache_dir=hf_cache))
    # The figures of Tjong Kim Sang and De Meulder (2003), Table 2.
    assert stats["train"]["entities"] == {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438}
    assert stats["validation"]["entities"] == {"PER": 1842, "ORG": 1341, "LOC": 1837, "MISC": 922}
    assert stats["test"]["entities"] == {"PER": 1617, "ORG": 1661, "LOC": 1668, "MISC": 702}


def test_iob1_originals_convert_to_the_iob2_copy(real_data_dir, hf_cache):
    converted = load_corpus("conll2003", data_dir=str(real_data_dir), cache_dir=hf_cache)
    folder = real_data_dir / "conll2003" / "iob2"
    files = {"train": folder / "train.txt", "validation": folder / "valid.txt", "test": folder / "test.txt"}
    iob2 = read_conll(files, label_names=CONLL.label_names, separator=" ", num_columns=4, cache_dir=hf_cache)
    for split in files:
        assert converted[split]["ner_tags"] == iob2[split]["ner_tags"]
        assert converted[split]["tokens"] == iob2[split]["tokens"]


def test_masakhaner_keeps_empty_tokens(real_data_dir, hf_cache):
    ds = load_corpus("masakhaner2", data_dir=str(real_data_dir), lang="xho", splits=["train"], cache_dir=hf_cache)
    assert sum(tok == "" for row in ds["train"]["tokens"] for tok in row) == 2


def test_cli_stats_json(real_data_dir, capsys):
    assert main(["corpus", "stats", "europarl-ner", "--lang", "es", "--data-dir", str(real_data_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["test"]["sentences"] == 799
    assert out["splits"]["test"]["tokens"] == 23279
    assert set(out["splits"]["test"]["entities"]) == {"PER", "ORG", "LOC", "MISC"}


def test_cli_stats_table_notes_missing_split(real_data_dir, capsys):
    assert main(["corpus", "stats", "germeval2014", "--data-dir", str(real_data_dir)]) == 0
    captured = capsys.readouterr()
    assert "no file for split(s) ['train']" in captured.err
    assert "validation       2200   41653" in captured.out


def test_stray_i_tags_raise_when_asked(real_data_dir, hf_cache):
    from dataset_builders import ConllFormatError

    with pytest.raises(ConllFormatError, match=r"xho/train.txt:29332: .*'I-ORG' after 'O'"):
        load_corpus(
            "masakhaner2",
            data_dir=str(real_data_dir),
            lang="xho",
            splits=["train"],
            on_invalid="raise",
            cache_dir=hf_cache,
        )
