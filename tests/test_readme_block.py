"""docs/experiments/readme_block.py: the README results block from the experiment reports, on a
temporary repository with a synthetic results store, a stored report and an experiment not run yet."""

import importlib.util
import os
import shutil

import pytest

from tests.test_experiment_report import _records
from xner.experiments.store import append_record

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def readme_block(tmp_path, monkeypatch):
    """The script as a module, its repository root moved to ``tmp_path``."""
    spec = importlib.util.spec_from_file_location(
        "readme_block", os.path.join(REPO, "docs/experiments/readme_block.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "REPO", str(tmp_path))
    return module


CONFIG = """\
name: {name}
output_dir: xner-output/experiments/{name}
models:
  minilm: builtin:minilm
source: {{corpus: conll2003, split: train, lang: en}}
teachers:
  en: {{kind: model-transfer, model: minilm, train: {{max_train_samples: 50, num_train_epochs: 1}}}}
student: {{model: minilm, kind: full, max_train_samples: 50, num_train_epochs: 1}}
strategies:
  soft-kl: {{teachers: [en], temperature: 2}}
evaluation: {{max_eval_samples: 50}}
languages:
  swa: {{train: {{corpus: masakhaner2}}, tests: [{{corpus: masakhaner2, domain: in}}]}}
groups:
  - {{name: main, languages: all, strategies: all, students: [full], seeds: [1]}}
"""


def _config(root, name) -> str:
    path = os.path.join("configs", f"{name}.yaml")
    os.makedirs(os.path.join(root, "configs"), exist_ok=True)
    with open(os.path.join(root, path), "w", encoding="utf-8") as handle:
        handle.write(CONFIG.format(name=name))
    return path


def test_anchors_table_holds_the_published_numbers_once(readme_block):
    table = readme_block.anchors_table().splitlines()
    assert table[0] == "| Method | Paper | es (CoNLL-2002) | nl (CoNLL-2002) | de (CoNLL-2003) | MasakhaNER 2.0 avg |"
    cells = [[c.strip() for c in line[1:-1].split("|")] for line in table[2:]]
    rows = {row[0]: row[2:] for row in cells}
    assert rows["mBERT zero-shot"] == ["74.96", "77.57", "69.56", ""]
    assert rows["Single-TS (teacher-student)"] == ["76.94", "80.89", "73.22", ""]
    assert rows["UniTrans"] == ["79.31", "82.90", "74.82", ""]
    assert rows["AdvPicker"] == ["79.00", "82.90", "75.01", ""]
    assert rows["Model transfer, MasakhaNER 2.0 average"][-1] == "52.1"
    assert rows["Annotation projection, MasakhaNER 2.0 average"][-1] == "67.3"
    assert len(rows) == len(readme_block.ANCHORS) == 6


def test_the_e5_configs_lead_and_minilm_follows(readme_block):
    headline, secondary = readme_block.SECTIONS
    assert [c for c, _ in headline["configs"]] == [
        "configs/offline-europe.yaml",
        "configs/offline-africa.yaml",
        "configs/conll2003.yaml",
    ]
    assert headline["anchors"] and not secondary["anchors"]
    assert secondary["heading"] == "English-only MiniLM-L6 encoder, kept for comparison"
    assert all(c.startswith("configs/minilm/") for c, _ in secondary["configs"])
    for config, _ in headline["configs"] + secondary["configs"]:
        assert os.path.isfile(os.path.join(REPO, config)), config


def test_block_from_a_store_a_stored_report_and_a_config_not_run(readme_block, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XNER_DATA_DIR", str(tmp_path / "no-data"))
    fresh, stored, missing = (_config(tmp_path, n) for n in ("fresh-e5", "stored", "missing-e5"))
    for record in _records():
        record["provenance"] = {"wall_time_s": 60.0, "peak_rss_mb": 100.0}
        if record["kind"] == "student":
            record["pseudo_labels"] = {"words_kept": 0.5}
        append_record(str(tmp_path / "xner-output/experiments/fresh-e5/results.jsonl"), record)
    # A report written by an earlier run whose store is not here (the MiniLM case).
    shutil.copytree(os.path.join(REPO, "docs/experiments/offline-africa"), tmp_path / "docs/experiments/stored")
    sections = [
        {"heading": "Headline", "intro": "e5 runs.", "anchors": True, "configs": [(fresh, "Fresh"), (missing, "Gone")]},
        {"heading": "Secondary", "intro": "MiniLM runs.", "anchors": False, "configs": [(stored, "Old")]},
    ]
    body = readme_block.build(sections)
    printed = capsys.readouterr().out

    # The store's report is written where the README links it, and its numbers are in the block.
    out = tmp_path / "docs/experiments/fresh-e5"
    assert {"report.md", "report.json", "f1.png"} <= set(os.listdir(out))
    assert "configs/fresh-e5.yaml: report of xner-output/experiments/fresh-e5/results.jsonl written" in printed
    fresh_part = body.split("##### Fresh")[1].split("#####")[0]
    assert "$ xner experiment run configs/fresh-e5.yaml" in fresh_part
    assert "| teacher en |" in fresh_part and "Findings (generated from the numbers):" in fresh_part
    assert "What each step did to the teacher's labels" in fresh_part and "| 50.0 |" in fresh_part
    assert "Languages the encoder saw in pre-training (es, hau, swa) vs not (yor)" in fresh_part
    # Its records are not the runs the config plans: the block says the results are partial.
    assert "**Partial**: 0 of the 2 planned runs are recorded so far" in fresh_part
    runs = sum(r["kind"] in ("teacher", "student", "trial") for r in _records())
    trials = sum(r["kind"] == "trial" for r in _records())
    assert trials and all(r["groups"] == ["main"] for r in _records() if r["kind"] != "trial")
    assert (
        f"{runs} recorded runs (evaluations, students, sweep trials): {runs} min of wall time on 2 CPU cores "
        f"(by group: main {runs - trials} min, sweeps {trials} min; a run several groups use counts in the first "
        "that ran it); the teachers' training and projection not counted (their run markers are not in this "
        "checkout); peak RSS 100 MB." in fresh_part
    )
    assert "![f1](docs/experiments/fresh-e5/f1.png)" in fresh_part

    # No store, no report: one line, no table.
    gone = body.split("##### Gone")[1].split("#### Secondary")[0]
    assert [line for line in gone.splitlines() if line.strip()][1:] == [
        "Not run yet: `xner-output/experiments/missing-e5/results.jsonl` holds no results "
        "(`xner experiment run configs/missing-e5.yaml` records them)."
    ]
    assert "configs/missing-e5.yaml: not run yet" in printed
    assert not (tmp_path / "docs/experiments/missing-e5").exists()

    # No store but a stored report: the report is used as it is.
    old = body.split("##### Old")[1]
    assert "the stored report in docs/experiments/stored/ is kept" in printed
    assert "49 recorded runs (evaluations, students, sweep trials): 48 min of wall time" in old
    assert "Partial" not in old and "| hard-confident (full) |" in old

    # Order: headline heading, anchors, its experiments, then the secondary section.
    positions = [
        ("\n" + body).index(s) for s in ("\n#### Headline", "| mBERT zero-shot |", "\n##### Fresh", "\n#### Secondary")
    ]
    assert positions == sorted(positions)
    assert body.count("Published anchors") == 1


def test_replace_block_keeps_the_rest_of_the_readme(readme_block):
    readme = f"intro\n{readme_block.START}\nold\n{readme_block.END}\noutro\n"
    assert (
        readme_block.replace_block(readme, "new") == f"intro\n{readme_block.START}\n\nnew\n{readme_block.END}\noutro\n"
    )
    with pytest.raises(SystemExit, match="markers"):
        readme_block.replace_block("no markers", "new")
