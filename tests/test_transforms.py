"""The projection transforms as datasets.map steps: columns, bad rows, caching, num_proc, pipelines."""

import json
import shutil

import datasets
import pytest
from datasets.fingerprint import Hasher

from dataset_builders import CONLL, validate_iob2
from projection.transforms import Align, Project, SourceEntities, Translate, add_parallel, projection_summary

datasets.disable_progress_bars()
NAMES = CONLL.label_names


def tag_ids(*tags):
    return [NAMES.index(t) for t in tags]


@pytest.fixture
def pairs():
    features = datasets.Features(
        {"tokens": datasets.List(datasets.Value("string")), "ner_tags": datasets.List(datasets.ClassLabel(names=NAMES))}
    )
    source = datasets.Dataset.from_dict(
        {
            "tokens": [
                ["Maria", "Okafor", "visited", "New", "York", "."],
                ["Hello", "Paris", "!"],
                ["Nothing", "here"],
            ],
            "ner_tags": [
                tag_ids("B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"),
                tag_ids("O", "B-LOC", "O"),
                tag_ids("O", "O"),
            ],
        },
        features=features,
    )
    target = datasets.Dataset.from_dict(
        {
            "tokens": [["Maria", "Okafor", "visitó", "Nueva", "York", "."], ["Hola", "París", "!"], ["Nada", "aquí"]],
            "ner_tags": [
                tag_ids("B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"),
                tag_ids("O", "B-LOC", "O"),
                tag_ids("O", "O"),
            ],
        },
        features=features,
    )
    return source, target


class DiagonalAligner:
    """Links word i to word i: the test sentences are word-for-word translations."""

    config = {"aligner": "diagonal"}

    def align(self, src, tgt):
        return [[(i, i) for i in range(min(len(s), len(t)))] for s, t in zip(src, tgt)]


def test_source_entities_and_parallel_columns(pairs):
    source, target = pairs
    ds = add_parallel(SourceEntities().apply(source), target)
    assert ds[0]["source_entities"] == [{"start": 0, "end": 2, "label": "PER"}, {"start": 3, "end": 5, "label": "LOC"}]
    assert ds[0]["translation"] == "Maria Okafor visitó Nueva York."
    assert ds[1]["translation_tokens"] == ["Hola", "París", "!"]
    assert ds.column_names == [
        "tokens",
        "ner_tags",
        "source_entities",
        "translation_tokens",
        "translation_ner_tags",
        "translation",
    ]
    with pytest.raises(ValueError, match="differ in length: 3 source rows, 2 target rows"):
        add_parallel(source, target.select(range(2)))


@pytest.mark.parametrize(
    "method, params",
    [
        ("heuristic", {}),
        ("candidates", {"solver": "greedy"}),
        ("candidates", {"solver": "ilp"}),
        ("candidates", {"solver": "bipartite"}),
    ],
)
def test_project_word_for_word(pairs, method, params):
    source, target = pairs
    ds = Align(DiagonalAligner()).apply(add_parallel(SourceEntities().apply(source), target))
    out = Project(NAMES, method=method, **params).apply(ds)
    assert out["projected_tags"] == out["translation_ner_tags"]
    assert out[0]["projection_stats"] == {"entities": 2, "projected": 2, "dropped": 0, "error": ""}
    summary = projection_summary(out)
    assert summary["entities"] == 3 and summary["projected"] == 3 and summary["rows_with_error"] == 0
    assert summary["per_type"] == {
        "LOC": {"source": 2, "projected_spans": 2},
        "PER": {"source": 1, "projected_spans": 1},
        "ORG": {"source": 0, "projected_spans": 0},
        "MISC": {"source": 0, "projected_spans": 0},
    }


def test_bad_rows_are_flagged_and_the_rest_projected(pairs):
    source, target = pairs
    ds = add_parallel(SourceEntities().apply(source), target)
    alignment = DiagonalAligner().align(ds["tokens"], ds["translation_tokens"])
    alignment[1] = [(0, 0), (1, 7)]  # target word 7 does not exist
    ds = ds.add_column("alignment", [[list(p) for p in row] for row in alignment])
    out = Project(NAMES).apply(ds)
    stats = out["projection_stats"]
    assert "7" in stats[1]["error"] and stats[1]["projected"] == 0 and stats[1]["dropped"] == 1
    assert out[1]["projected_tags"] == [0, 0, 0]
    assert stats[0]["error"] == "" and out[0]["projected_tags"] == out[0]["translation_ner_tags"]


def test_unknown_method_or_parameter_is_an_error():
    with pytest.raises(ValueError, match="unknown projection method 'magic'"):
        Project(NAMES, method="magic")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['solver'\] for method 'heuristic'"):
        Project(NAMES, method="heuristic", solver="ilp")


def test_fingerprint_is_stable_and_cache_is_reused(pairs, tmp_path):
    source, target = pairs
    path = tmp_path / "src"
    add_parallel(SourceEntities().apply(source), target).save_to_disk(str(path))
    ds = Align(DiagonalAligner()).apply(datasets.load_from_disk(str(path)))
    assert Hasher.hash(Project(NAMES, method="candidates", solver="ilp")) == Hasher.hash(
        Project(NAMES, method="candidates", solver="ilp")
    )
    assert Hasher.hash(Project(NAMES, method="candidates", solver="ilp")) != Hasher.hash(
        Project(NAMES, method="candidates", solver="greedy")
    )
    first = Project(NAMES).apply(ds)
    second = Project(NAMES).apply(ds)
    assert first.cache_files and first.cache_files == second.cache_files
    assert first._fingerprint == second._fingerprint


def test_num_proc_gives_the_same_rows(pairs):
    source, target = pairs
    ds = Align(DiagonalAligner()).apply(add_parallel(SourceEntities().apply(source), target))
    one = Project(NAMES, method="candidates").apply(ds)
    two = Project(NAMES, method="candidates", batch_size=1).apply(ds, num_proc=2)
    assert one["projected_tags"] == two["projected_tags"]
    assert one["projection_stats"] == two["projection_stats"]


class FlakyTranslator:
    """Fails on any batch holding the word 'boom' (as an MT server might on one bad input)."""

    config = {"translator": "flaky"}

    def translate(self, texts):
        if any("boom" in t for t in texts):
            raise RuntimeError("the MT call failed")
        return [t.upper() for t in texts]


def test_a_failing_translation_fails_alone():
    ds = datasets.Dataset.from_dict({"tokens": [["a", "b", "."], ["boom"], ["c"]]})
    out = Translate(FlakyTranslator(), target_lang="xx").apply(ds)
    assert out["translation"] == ["A B.", "", "C"]
    assert out["translation_tokens"] == [["A", "B", "."], [], ["C"]]
    assert out["translation_error"] == ["", "RuntimeError: the MT call failed", ""]


def test_translate_test_pipeline_with_real_components(tmp_path):
    """Spanish sentences -> Apertium to English -> a (tiny, untrained) tagger -> eflomal -> back to Spanish."""
    if shutil.which("apertium") is None:
        pytest.skip("apertium is not installed (apt-get install apertium apertium-eng-spa)")
    from projection.eflomal_aligner import EflomalAligner
    from projection.pipelines import translate_test
    from projection.tagging import Tag
    from projection.translate_apertium import ApertiumTranslator
    from tests.tiny_models import build_tiny_bert

    texts = ["María vive en Madrid .", "El Parlamento Europeo votó ayer .", "Juan trabaja en Barcelona con Ana ."] * 4
    model = build_tiny_bert(
        str(tmp_path / "tagger"),
        ["Maria lives in Madrid", "The European Parliament voted"],
        id2label=dict(enumerate(NAMES)),
    )
    target = datasets.Dataset.from_dict({"tokens": [t.split() for t in texts]})
    out = translate_test(
        target,
        ApertiumTranslator(("es", "en")),
        Tag(model),
        EflomalAligner(),
        {"name": "heuristic"},
        NAMES,
        source_lang="en",
    )
    assert out[0]["translation"].startswith("María lives in Madrid")
    for row in out:
        assert len(row["projected_tags"]) == len(row["tokens"])
        validate_iob2([NAMES[i] for i in row["projected_tags"]])
        s = row["projection_stats"]
        assert s["entities"] == len(row["source_entities"]) == s["projected"] + s["dropped"]
        if row["alignment"]:  # aligned translation words (source side) -> original words (target side)
            assert max(i for i, _ in row["alignment"]) < len(row["translation_tokens"])
            assert max(j for _, j in row["alignment"]) < len(row["tokens"])


def test_cli_project_on_real_europarl(real_data_dir, tmp_path, capsys):
    from xner.cli import main

    out_dir = tmp_path / "out"
    code = main(
        [
            "project",
            "--corpus",
            "europarl-ner",
            "--data-dir",
            str(real_data_dir),
            "--target-langs",
            "es",
            "--aligner",
            "eflomal",
            "--method",
            "candidates",
            "--solver",
            "greedy",
            "--max-samples",
            "300",
            "--output-dir",
            str(out_dir),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "es/test: 300 rows" in printed
    summary = json.loads((out_dir / "projection_summary.json").read_text())
    gold = summary["languages"]["es"]["splits"]["test"]["gold"]
    assert gold["f1"] > 0.5  # eflomal on only 300 pairs: well above chance, below the 799-pair figure
    ds = datasets.load_from_disk(str(out_dir / "es"))["test"]
    assert ds.features["projected_tags"].feature.names == NAMES
    assert len(ds) == 300


def test_cli_translate_train_with_apertium_and_backtranslation(real_data_dir, tmp_path, capsys):
    """CoNLL-2003 English -> Spanish by Apertium, projected with markers (no aligner)."""
    if shutil.which("apertium") is None:
        pytest.skip("apertium is not installed (apt-get install apertium apertium-eng-spa)")
    from xner.cli import main

    out_dir = tmp_path / "bt"
    assert (
        main(
            [
                "project",
                "--corpus",
                "conll2003",
                "--data-dir",
                str(real_data_dir),
                "--splits",
                "validation",
                "--max-samples",
                "60",
                "--target-langs",
                "es",
                "--translator",
                "apertium",
                "--method",
                "backtranslation",
                "--output-dir",
                str(out_dir),
            ]
        )
        == 0
    )
    ds = datasets.load_from_disk(str(out_dir / "es"))["validation"]
    assert {"translation", "translation_tokens", "backtranslation", "projected_tags"} <= set(ds.column_names)
    stats = ds["projection_stats"]
    assert sum(s["projected"] for s in stats) > 0.6 * sum(s["entities"] for s in stats)
    assert all(s["error"] == "" for s in stats)
