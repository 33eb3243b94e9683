import os

import datasets
import pytest

from dataset_builders import CONLL, ConllFormatError, load_corpus, read_conll
from dataset_builders.relabel import relabel
from dataset_builders.schemes import CONLL_TO_MASAKHANER, MASAKHANER


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def tags_of(ds):
    names = ds.features["ner_tags"].feature.names
    return [[names[i] for i in row] for row in ds["ner_tags"]]


def test_reads_columns_docstart_comments_and_iob1(tmp_path, hf_cache):
    text = (
        "-DOCSTART- -X- O O\n\n"
        "# a comment line\n"
        "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\n\n"
        "Peter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n"
        "-DOCSTART- -X- O O\n"
        "Paris NNP B-NP I-LOC\n"  # a DOCSTART line ends a sentence even without a blank line
    )
    path = write(tmp_path, "a.txt", text)
    dd = read_conll(
        {"test": path},
        label_names=CONLL.label_names,
        separator=" ",
        num_columns=4,
        tag_column=3,
        tag_scheme="iob1",
        comment_prefix="#",
        cache_dir=hf_cache,
    )
    ds = dd["test"]
    assert ds["tokens"] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["Paris"]]
    assert tags_of(ds) == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert ds.features["tokens"] == datasets.List(datasets.Value("string"))
    assert ds.features["ner_tags"].feature.names == CONLL.label_names


def test_tab_separated_tokens_may_hold_spaces_and_be_empty(tmp_path, hf_cache):
    path = write(tmp_path, "b.tsv", "New York\tB-LOC\n\tO\ncity\tO\t\n")
    ds = read_conll(path, label_names=CONLL.label_names, separator="\t", num_columns=2, cache_dir=hf_cache)["train"]
    assert ds["tokens"] == [["New York", "", "city"]]


def test_label_names_inferred_when_not_given(tmp_path, hf_cache):
    path = write(tmp_path, "c.txt", "a B-X\nb I-X\nc B-Y\n")
    ds = read_conll(path, cache_dir=hf_cache)["train"]
    assert ds.features["ner_tags"].feature.names == ["O", "B-X", "I-X", "B-Y", "I-Y"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a O\nb O extra\n", r"bad.txt:2: expected 2 columns, found 3"),
        ("a O\nb B-FOO\n", r"bad.txt:2: unknown tag 'B-FOO'"),
        ("a O\n\nb O\nc X-PER\n", r"bad.txt:4: malformed tag 'X-PER'"),
        ("a O\nb I-PER\n", r"bad.txt:1: .*position 1: 'I-PER' after 'O'"),
        ("", r"bad.txt: the file holds no sentence"),
        ("\n\n-DOCSTART- O\n", r"bad.txt: the file holds no sentence"),
    ],
)
def test_bad_input_names_file_and_line_and_leaves_nothing(tmp_path, text, message):
    path = write(tmp_path, "bad.txt", text)
    cache = tmp_path / "cache"
    with pytest.raises(ConllFormatError, match=message):
        read_conll(path, label_names=CONLL.label_names, separator=" ", cache_dir=str(cache))
    written = [f for _, _, files in os.walk(cache) for f in files if f.endswith(".arrow")]
    assert written == []  # nothing half-written to the cache


def test_error_then_fix_builds(tmp_path):
    path = write(tmp_path, "fix.txt", "a O\nb I-PER\n")
    cache = str(tmp_path / "cache")
    with pytest.raises(ConllFormatError):
        read_conll(path, label_names=CONLL.label_names, separator=" ", cache_dir=cache)
    ds = read_conll(path, label_names=CONLL.label_names, separator=" ", on_invalid="repair", cache_dir=cache)["train"]
    assert tags_of(ds) == [["O", "B-PER"]]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.txt: no such file \(split 'test'\)"):
        read_conll({"test": str(tmp_path / "nope.txt")}, label_names=CONLL.label_names)


def test_load_corpus_missing_files_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"conll2002 \(es\): missing file.*train"):
        load_corpus("conll2002", data_dir=str(tmp_path), lang="es")
    with pytest.raises(ValueError, match="unknown corpus 'conll1999'"):
        load_corpus("conll1999", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="pass lang="):
        load_corpus("masakhaner2", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no language 'fr'"):
        load_corpus("conll2002", data_dir=str(tmp_path), lang="fr")


def test_builtin_sample_loads_without_data_dir(hf_cache):
    dd = load_corpus("xner-sample", cache_dir=hf_cache)
    assert dd["train"].num_rows == 18
    assert tags_of(dd["train"])[0][:2] == ["B-PER", "I-PER"]


def test_relabel_dataset(tmp_path, hf_cache):
    path = write(tmp_path, "r.txt", "Cup B-MISC\nof I-MISC\nAmina B-PER\n")
    ds = read_conll(path, label_names=CONLL.label_names, separator=" ", cache_dir=hf_cache)["train"]
    out = relabel(ds, CONLL_TO_MASAKHANER)
    assert out.features["ner_tags"].feature.names == MASAKHANER.label_names
    assert tags_of(out) == [["O", "O", "B-PER"]]
    with pytest.raises(ValueError, match="not those of the mapping's source"):
        relabel(out, CONLL_TO_MASAKHANER)
