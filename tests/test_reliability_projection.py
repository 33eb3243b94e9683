"""Issue 13, reader and projection side: each case a careless or hostile user hit, reproduced.

Every test here failed on the code before the fix: a traceback, a silent wrong result (exit 0),
or output left half-written.
"""

from __future__ import annotations

import json
import os

import datasets
import pytest

from dataset_builders import CONLL, read_conll
from dataset_builders.errors import UserError
from projection.scores import validate_batch
from projection.transforms import Align, Project, SourceEntities, Translate, projection_summary
from projection.word_split import split_words, split_words_with_offsets

datasets.disable_progress_bars()
NAMES = CONLL.label_names


def ids(*tags):
    return [NAMES.index(t) for t in tags]


def cli(argv, capsys):
    """Run ``xner`` in-process: (exit code, stderr)."""
    from xner.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


class DiagonalAligner:
    config = {"aligner": "diagonal"}

    def align(self, src, tgt):
        return [[(i, i) for i in range(min(len(s), len(t)))] for s, t in zip(src, tgt)]


# ------------------------------------------------------------------ 1. failed translations


class BrokenTranslator:
    config = {"translator": "broken"}

    def translate(self, texts):
        raise RuntimeError("the MT server is down")


class HealingTranslator:
    """Fails on 'boom' while ``down`` is set (a transient MT failure); its fingerprint never changes."""

    config = {"translator": "healing"}
    down = True

    def translate(self, texts):
        if HealingTranslator.down and any("boom" in t for t in texts):
            raise RuntimeError("transient failure")
        return [t.upper() for t in texts]


def test_a_translation_step_where_every_row_failed_is_an_error():
    ds = datasets.Dataset.from_dict({"tokens": [["a"], ["b", "c"]]})
    with pytest.raises(UserError, match=r"all 2 rows.*the MT server is down"):
        Translate(BrokenTranslator(), target_lang="xx").apply(ds)


def test_failed_translations_are_flagged_and_never_cached(tmp_path):
    path = str(tmp_path / "src")
    datasets.Dataset.from_dict({"tokens": [["a", "b"], ["boom"], ["c"]]}).save_to_disk(path)
    source = datasets.load_from_disk(path)  # cache-backed, as corpora are
    HealingTranslator.down = True
    first = Translate(HealingTranslator(), target_lang="xx").apply(source)
    assert first["translation_error"][1].startswith("RuntimeError")
    first = Align(DiagonalAligner()).apply(first)
    HealingTranslator.down = False  # the MT server is back: a re-run must retry the failed row
    second = Align(DiagonalAligner()).apply(Translate(HealingTranslator(), target_lang="xx").apply(source))
    assert second["translation"] == ["A B", "BOOM", "C"]
    assert second["translation_error"] == ["", "", ""]
    assert second["alignment"][1] == [[0, 0]]  # the downstream step is not served from the failed run's cache
    # a fully successful step is cached as before
    third = Translate(HealingTranslator(), target_lang="xx").apply(source)
    assert (
        third.cache_files
        and third.cache_files == Translate(HealingTranslator(), target_lang="xx").apply(source).cache_files
    )


def test_rows_whose_translation_failed_count_as_flagged():
    ds = datasets.Dataset.from_dict(
        {
            "tokens": [["Paris"], ["Lima"]],
            "ner_tags": [ids("B-LOC"), ids("B-LOC")],
        },
        features=datasets.Features(
            {
                "tokens": datasets.List(datasets.Value("string")),
                "ner_tags": datasets.List(datasets.ClassLabel(names=NAMES)),
            }
        ),
    )
    ds = SourceEntities().apply(ds)
    ds = ds.add_column("translation_tokens", [["París"], []])
    ds = ds.add_column("translation_error", ["", "RuntimeError: boom"])
    ds = Align(DiagonalAligner()).apply(ds)
    out = Project(NAMES).apply(ds)
    assert out["projection_stats"][0]["error"] == ""
    assert "translation failed" in out["projection_stats"][1]["error"] and "boom" in out["projection_stats"][1]["error"]
    assert projection_summary(out)["rows_with_error"] == 1


def test_cli_hf_translator_with_a_missing_model_fails_naming_it(tmp_path, capsys):
    out = tmp_path / "out"
    model = str(tmp_path / "nonexistent" / "model")
    code, err = cli(
        [
            "project",
            "--corpus",
            "xner-sample",
            "--target-langs",
            "de",
            "--translator",
            "hf",
            "--translator-model",
            model,
            "--output-dir",
            str(out),
        ],
        capsys,
    )
    assert code != 0
    assert model in err and "Traceback" not in err
    assert not (out / "de").exists()


class NoneTranslator:
    """Returns None for the text 'bad' (an MT wrapper that swallowed an error)."""

    config = {"translator": "none"}

    def translate(self, texts):
        return [None if t == "bad" else t.upper() for t in texts]


def test_a_translator_returning_none_flags_that_row_only():
    ds = datasets.Dataset.from_dict({"tokens": [["good"], ["bad"], ["fine"]]})
    out = Translate(NoneTranslator(), target_lang="xx").apply(ds)
    assert out["translation"] == ["GOOD", "", "FINE"]
    assert out["translation_tokens"] == [["GOOD"], [], ["FINE"]]
    assert out["translation_error"][0] == out["translation_error"][2] == ""
    assert "None" in out["translation_error"][1]


# ------------------------------------------------------------------ 2. parallel corpora of different lengths


def europarl(tmp_path, lines: dict[str, int]) -> str:
    """A tiny europarl-ner folder: ``lines[lang]`` one-word sentences per language."""
    folder = tmp_path / "data" / "europarl-ner"
    folder.mkdir(parents=True)
    words = ["Paris", "Lima", "Roma", "Oslo", "Bern", "Kiev", "Riga"]
    for lang, n in lines.items():
        text = "".join(f"{words[k % len(words)]}\tB-LOC\n.\tO\n\n" for k in range(n))
        (folder / f"{lang}-europarl.test.conll02").write_text(text, encoding="utf-8")
    return str(tmp_path / "data")


@pytest.mark.parametrize("n_target", [5, 3])
def test_parallel_corpus_of_another_length_is_an_error_naming_both_files(tmp_path, n_target):
    from projection.pipelines import ProjectionConfig, run_projection

    data_dir = europarl(tmp_path, {"en": 4, "de": n_target})
    config = ProjectionConfig(
        corpus="europarl-ner", target_langs=["de"], data_dir=data_dir, max_samples=2, output_dir=str(tmp_path / "out")
    )
    with pytest.raises(UserError) as err:
        run_projection(config)
    message = str(err.value)
    assert "en-europarl.test.conll02" in message and "de-europarl.test.conll02" in message
    assert "4" in message and str(n_target) in message
    assert not (tmp_path / "out" / "de").exists()


# ------------------------------------------------------------------ 3. malformed alignment items


def test_malformed_alignment_items_are_flagged_per_row_and_do_not_shift_links():
    tokens = [["John", "lives", "in", "Paris"], ["Ana"], ["Bob"]]
    entities = [
        [{"start": 0, "end": 1, "label": "PER"}, {"start": 3, "end": 4, "label": "LOC"}],
        [{"start": 0, "end": 1, "label": "PER"}],
        [{"start": 0, "end": 1, "label": "PER"}],
    ]
    alignments = [[[0, 0], [1, 1], [2, 2], [3, 3]], [[0, 0, 0]], [[0]]]
    errors = validate_batch(entities, [len(t) for t in tokens], tokens, alignments)
    assert errors[0] is None
    assert "[0, 0, 0]" in errors[1] and "[0]" in errors[2]
    ds = datasets.Dataset.from_dict(
        {"tokens": tokens, "source_entities": entities, "translation_tokens": tokens, "alignment": alignments}
    )
    for method in ("heuristic", "candidates"):
        out = Project(NAMES, method=method)(ds[:])
        assert [NAMES[t] for t in out["projected_tags"][0]] == ["B-PER", "O", "O", "B-LOC"]
        assert out["projected_tags"][1:] == [[0], [0]]
        assert [s["error"] != "" for s in out["projection_stats"]] == [False, True, True]


# ------------------------------------------------------------------ 15. labels outside the label set


def test_an_entity_label_outside_the_label_set_flags_its_row():
    tokens = [["Paris"], ["Acme"]]
    entities = [[{"start": 0, "end": 1, "label": "LOC"}], [{"start": 0, "end": 1, "label": "PRODUCT"}]]
    batch = {
        "tokens": tokens,
        "source_entities": entities,
        "translation_tokens": tokens,
        "alignment": [[[0, 0]], [[0, 0]]],
    }
    for method in ("heuristic", "candidates"):
        out = Project(NAMES, method=method)(batch)
        assert [NAMES[t] for t in out["projected_tags"][0]] == ["B-LOC"]
        assert out["projected_tags"][1] == [0]
        assert "PRODUCT" in out["projection_stats"][1]["error"]


# ------------------------------------------------------------------ 8. reading: BOM, tag whitespace, ZWJ


def write(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_byte_order_mark_neither_sticks_to_the_first_token_nor_hides_docstart(tmp_path, hf_cache):
    path = write(tmp_path, "bom.txt", "\ufeff-DOCSTART- O\n\nJohn B-PER\nlives O\n".encode("utf-8"))
    ds = read_conll(path, label_names=NAMES, separator=" ", cache_dir=hf_cache)["train"]
    assert ds["tokens"] == [["John", "lives"]]
    path = write(tmp_path, "bom2.txt", "\ufeffJohn B-PER\n".encode("utf-8"))
    assert read_conll(path, label_names=NAMES, separator=" ", cache_dir=hf_cache)["train"]["tokens"] == [["John"]]


def test_tab_separated_tags_with_trailing_spaces_are_the_same_label(tmp_path, hf_cache):
    path = write(tmp_path, "tab.tsv", b"John\tB-PER \nSmith\tI-PER\nParis\t B-LOC\n")
    ds = read_conll(path, separator="\t", cache_dir=hf_cache)["train"]
    assert ds.features["ner_tags"].feature.names == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert ds["tokens"] == [["John", "Smith", "Paris"]]


@pytest.mark.parametrize(
    "emoji",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f44d\U0001f3fd",
        "\U0001f1e9\U0001f1ea",
        "\U0001f3f3\ufe0f\u200d\U0001f308",
    ],
)
def test_emoji_sequences_stay_one_word(emoji):
    words = split_words(f"Hola {emoji} amigos")
    assert words == ["Hola", emoji, "amigos"]
    assert not any(set(w) <= {"\u200d"} for w in split_words(f"a{emoji}b {emoji}{emoji}"))
    text = f"x{emoji}."
    assert "".join(w for w, _, _ in split_words_with_offsets(text)) == text


# ------------------------------------------------------------------ 15. undecodable corpus files


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path, hf_cache):
    path = write(tmp_path, "latin1.txt", "John B-PER\n\nJosé B-PER\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.txt:3: .*UTF-8.*byte 0xe9"):
        read_conll(path, label_names=NAMES, separator=" ", cache_dir=hf_cache)
    with pytest.raises(UserError, match=r"latin1.txt:3: .*UTF-8"):  # label names scanned from the file
        read_conll(path, separator=" ", cache_dir=hf_cache)


def test_a_binary_file_is_named(tmp_path, hf_cache):
    path = write(tmp_path, "model.bin", bytes(range(256)) * 4)
    with pytest.raises(UserError, match=r"model.bin"):
        read_conll(path, label_names=NAMES, cache_dir=hf_cache)


def test_cli_corpus_stats_on_a_non_utf8_file_is_one_line(tmp_path, capsys):
    folder = tmp_path / "conll2003"
    folder.mkdir()
    (folder / "test.txt").write_bytes("Jos\xe9 NNP B-NP B-PER\n".encode("latin-1"))
    code, err = cli(["corpus", "stats", "conll2003", "--data-dir", str(tmp_path), "--splits", "test"], capsys)
    assert code != 0 and "test.txt:1" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ 15. project: bad configs and models


def project_args(tmp_path, *extra):
    return ["project", "--corpus", "xner-sample", "--target-langs", "de", "--output-dir", str(tmp_path / "out"), *extra]


@pytest.mark.parametrize(
    "yaml_text, named",
    [
        ("corpus: xner-sample\ntarget_langs: [de\n", "line"),  # malformed YAML
        ("aligner: {kind: eflomal, symetrization: union}\n", "symetrization"),
        ("method: {name: heuristic, merge_distnce: 2}\n", "merge_distnce"),
        ("translator: {kind: hf, model: x, num_beam: 4}\n", "num_beam"),
        ("translator: {kind: hf}\n", "model"),
        ("aligner: {kind: embedding}\n", "model"),
        ("aligner: [eflomal]\n", "aligner"),
    ],
)
def test_cli_bad_project_config_is_one_line_naming_key_and_file(tmp_path, capsys, yaml_text, named):
    config = tmp_path / "project.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    code, err = cli(project_args(tmp_path, "--config", str(config)), capsys)
    assert code != 0 and "Traceback" not in err
    assert named in err and "project.yaml" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--translator", "hf"], "--translator-model"),
        (["--aligner", "embedding", "--aligner-model", "/nonexistent/encoder"], "/nonexistent/encoder"),
        (["--max-samples", "0"], "--max-samples"),
        (["--max-samples", "-3"], "--max-samples"),
    ],
)
def test_cli_bad_project_arguments_are_refused_before_anything_is_written(tmp_path, capsys, extra, named):
    code, err = cli(project_args(tmp_path, *extra), capsys)
    assert code != 0 and "Traceback" not in err
    assert named in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 11. one language's output and its summary together


def test_a_failed_language_leaves_every_finished_language_described_by_the_summary(tmp_path):
    from projection.pipelines import ProjectionConfig, run_projection

    data_dir = europarl(tmp_path, {"en": 4, "de": 4, "es": 4})
    out = tmp_path / "out"

    def config(**kw):
        return ProjectionConfig(
            corpus="europarl-ner", target_langs=["de", "es"], data_dir=data_dir, output_dir=str(out), **kw
        )

    run_projection(config())
    assert len(datasets.load_from_disk(str(out / "de"))["test"]) == 4
    # the es side breaks: the second run fails on es, after de is done
    es = os.path.join(data_dir, "europarl-ner", "es-europarl.test.conll02")
    with open(es, "a", encoding="utf-8") as handle:
        handle.write("Madrid\tB-LOC\n")
    with pytest.raises(UserError, match="es-europarl"):
        run_projection(config(max_samples=2))
    summary = json.loads((out / "projection_summary.json").read_text())
    for lang, info in summary["languages"].items():
        on_disk = datasets.load_from_disk(str(out / lang))
        assert {s: v["rows"] for s, v in info["splits"].items()} == {s: len(d) for s, d in on_disk.items()}, lang
    assert summary["languages"]["de"]["splits"]["test"]["rows"] == 2  # the new de is kept, and described
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left behind
