"""``training.evaluation`` on tiny local models and the built-in xner sample.

The figures are checked against xner's metric computed on word predictions obtained here
independently (a plain forward pass per sentence, first sub-token of each word); then: windows,
label-set mapping and its error, LoRA == merged, the robustness arithmetic, Markdown and PNG, the
CLI, and the parsing of ``--test`` specs.
"""

import json
import os
import re

import datasets
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from transformers import AutoModelForTokenClassification, AutoTokenizer

from dataset_builders import read_conll
from dataset_builders.schemes import CONLL, MASAKHANER
from training import evaluation, teacher
from training.collate import TokenCollator
from training.evaluation import (
    IN,
    OUT,
    TestSet,
    TestSpec,
    align_label_sets,
    check_type_map,
    domain_means,
    evaluate_model,
    parse_type_map,
    robustness_markdown,
    robustness_table,
)
from training.inference import load_token_classifier
from training.metrics import load_metric
from training.students import LoraSettings, build_student, merge_adapter, save_student
from xner import cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, encoder):
    """A tiny CoNLL tagger over-fitted on the sample; its results.json records the corpus (news)."""
    out = tmp_path_factory.mktemp("teacher")
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    args = [
        "--model_name_or_path",
        encoder,
        "--output_dir",
        str(out),
        "--corpus",
        "xner-sample",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "5e-3",
        "--num_train_epochs",
        "6",
        "--seed",
        "1",
    ]
    assert teacher.main(args) == 0
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    return str(out)


def write_conll(path, tokens, tags):
    with open(path, "w", encoding="utf-8") as f:
        for words, labels in zip(tokens, tags):
            f.writelines(f"{w} {t}\n" for w, t in zip(words, labels))
            f.write("\n")
    return str(path)


@pytest.fixture(scope="module")
def conll_file(tmp_path_factory, sample):
    """Sentences 9-17 of the sample as a CoNLL file (the second test set)."""
    names = sample.features["ner_tags"].feature.names
    rows = sample.select(range(9, 18))
    return write_conll(
        tmp_path_factory.mktemp("conll") / "held.conll",
        rows["tokens"],
        [[names[i] for i in tags] for tags in rows["ner_tags"]],
    )


@pytest.fixture(scope="module")
def test_sets(sample, conll_file, hf_cache):
    held = read_conll({"test": conll_file}, label_names=CONLL.label_names, cache_dir=hf_cache)["test"]
    return [TestSet("sample-a", sample.select(range(9)), corpus="xner-sample"), TestSet("held", held, marker=OUT)]


def plain_predictions(model_dir, tokens_list):
    """Word tags from one forward pass per sentence: each word's first sub-token; O for a word without one."""
    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    id2label = model.config.id2label
    out = []
    for words in tokens_list:
        encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            ids = model(**encoding).logits[0].argmax(-1).tolist()
        tags, seen = ["O"] * len(words), set()
        for position, word in enumerate(encoding.word_ids()):
            if word is not None and word not in seen:
                seen.add(word)
                tags[word] = id2label[ids[position]]
        out.append(tags)
    return out


def expected_figures(predictions, references):
    m = load_metric().compute(predictions=predictions, references=references, zero_division=0)
    per_type = {k: v for k, v in m.items() if isinstance(v, dict)}
    return {
        "precision": m["overall_precision"],
        "recall": m["overall_recall"],
        "f1": m["overall_f1"],
        "accuracy": m["overall_accuracy"],
        "per_type": per_type,
    }


def assert_figures(got, expected):
    for key in ("precision", "recall", "f1", "accuracy"):
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key
    assert set(got["per_type"]) == set(expected["per_type"])
    for entity_type, figures in expected["per_type"].items():
        assert got["per_type"][entity_type] == pytest.approx(figures, abs=1e-12), entity_type


def test_per_set_and_per_type_figures_equal_the_metric_on_plain_predictions(trained, test_sets):
    result = evaluate_model(trained, test_sets, batch_size=4)
    assert result["label_names"] == CONLL.label_names and result["adapter"] is False
    assert (result["train_corpus"], result["train_domain"]) == ("xner-sample", "news")
    assert list(result["test_sets"]) == ["sample-a", "held"]
    for test_set in test_sets:
        got = result["test_sets"][test_set.name]
        references = test_set.references()
        assert_figures(got, expected_figures(plain_predictions(trained, test_set.dataset["tokens"]), references))
        assert got["num_sentences"] == len(references) == got["num_windows"] == 9
        assert got["num_entities"] == sum(v["number"] for v in got["per_type"].values()) > 0
        assert got["types"] == ["PER", "ORG", "LOC", "MISC"] and got["type_map"] == {}
    # trained on these sentences: the figures are not trivially zero (0.30-0.43 seen; the tiny
    # tokenizer's ids, hence the run, vary from process to process)
    assert result["test_sets"]["sample-a"]["f1"] > 0.1
    # domain: the corpus' (news) equals the model's training corpus' -> in; the marker says out
    assert result["test_sets"]["sample-a"]["domain"] == IN and result["test_sets"]["held"]["domain"] == OUT


def test_long_sentences_are_windowed_and_every_word_predicted(trained, test_sets):
    result = evaluate_model(trained, test_sets[:1], max_length=8, stride=2)
    got = result["test_sets"]["sample-a"]
    assert got["num_windows"] > got["num_sentences"] == 9
    model, tokenizer, labels = load_token_classifier(trained)
    prepared = evaluation.prepare_test_sets(test_sets[:1], tokenizer, labels, max_length=8, stride=2)
    evaluator = evaluation.evaluator_for(prepared, labels, Accelerator(), 4, TokenCollator(tokenizer.pad_token_id))
    tags = evaluator.predict(model, "sample-a")
    assert prepared["sample-a"].num_windows == got["num_windows"]
    assert [len(t) for t in tags] == [len(t) for t in test_sets[0].dataset["tokens"]]
    assert got["f1"] == pytest.approx(expected_figures(tags, test_sets[0].references())["f1"])


def test_lora_student_scores_as_its_merged_model(encoder, test_sets, tmp_path):
    model = build_student(encoder, CONLL.label_names, lora=LoraSettings(r=4, lora_alpha=8))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero: give the adapter and head an effect
        for name, parameter in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    adapter, merged = str(tmp_path / "lora"), str(tmp_path / "merged")
    save_student(model, adapter, AutoTokenizer.from_pretrained(encoder))
    merge_adapter(adapter, merged)
    from_adapter = evaluate_model(adapter, test_sets)
    from_merged = evaluate_model(merged, test_sets)
    assert from_adapter["adapter"] is True and from_merged["adapter"] is False
    for name in ("sample-a", "held"):
        assert_figures(from_adapter["test_sets"][name], from_merged["test_sets"][name])
        assert from_adapter["test_sets"][name]["f1"] > 0 or from_adapter["test_sets"][name]["per_type"]
    # no training corpus recorded: in/out known only where the marker says
    assert (
        from_adapter["test_sets"]["sample-a"]["domain"] is None and from_adapter["test_sets"]["held"]["domain"] == OUT
    )


@pytest.fixture(scope="module")
def masakhane_set(sample, tmp_path_factory, hf_cache):
    """The sample's sentences relabelled to MasakhaNER's types: MISC -> DATE (to have DATE gold entities)."""
    names = sample.features["ner_tags"].feature.names
    tags = [[names[i].replace("MISC", "DATE") for i in row] for row in sample["ner_tags"]]
    path = write_conll(tmp_path_factory.mktemp("masakhane") / "mas.conll", sample["tokens"], tags)
    data = read_conll({"test": path}, label_names=MASAKHANER.label_names, cache_dir=hf_cache)["test"]
    return TestSet("mas", data, marker=OUT)


def test_a_label_set_mismatch_is_an_error_listing_both_sets(trained, masakhane_set):
    with pytest.raises(ValueError) as err:
        evaluate_model(trained, [masakhane_set])
    message = str(err.value)
    assert str(CONLL.label_names) in message and str(MASAKHANER.label_names) in message
    assert "only the model predicts: ['MISC']" in message and "only the test set has: ['DATE']" in message
    assert "--type-map MISC=O DATE=O" in message
    with pytest.raises(ValueError, match=r"only the test set has: \['DATE'\]"):
        evaluate_model(trained, [masakhane_set], type_map=["MISC=O"])  # one side mapped is not enough


def test_type_map_sends_model_misc_and_gold_date_to_o(trained, masakhane_set):
    result = evaluate_model(trained, [masakhane_set], type_map=["MISC=O", "DATE=O"])["test_sets"]["mas"]
    predicted = plain_predictions(trained, masakhane_set.dataset["tokens"])
    predicted = [["O" if t.endswith("-MISC") else t for t in row] for row in predicted]
    gold = [["O" if t.endswith("-DATE") else t for t in row] for row in masakhane_set.references()]
    assert any(t.endswith("-DATE") for row in masakhane_set.references() for t in row)
    assert_figures(result, expected_figures(predicted, gold))
    assert result["types"] == ["PER", "ORG", "LOC"] and set(result["per_type"]) <= {"PER", "ORG", "LOC"}
    assert result["type_map"] == {"predictions": {"MISC": "O"}, "references": {"DATE": "O"}}


def test_type_map_applies_where_types_differ_unless_asked_for_all(trained, masakhane_set, test_sets):
    both = [masakhane_set, test_sets[0]]
    where_needed = evaluate_model(trained, both, type_map={"MISC": None, "DATE": None})["test_sets"]
    assert (
        where_needed["sample-a"]["types"] == ["PER", "ORG", "LOC", "MISC"]
        and where_needed["sample-a"]["type_map"] == {}
    )
    assert "MISC" in where_needed["sample-a"]["per_type"]  # the sample has gold MISC entities
    everywhere = evaluate_model(trained, both, type_map={"MISC": None, "DATE": None}, type_map_all=True)["test_sets"]
    assert everywhere["sample-a"]["types"] == ["PER", "ORG", "LOC"] and "MISC" not in everywhere["sample-a"]["per_type"]
    assert everywhere["sample-a"]["type_map"] == {"predictions": {"MISC": "O"}, "references": {"MISC": "O"}}
    assert everywhere["mas"] == where_needed["mas"]


def test_type_map_parsing_renaming_and_errors():
    assert parse_type_map(["MISC=O", "OTH=MISC"]) == {"MISC": None, "OTH": "MISC"}
    for bad in (["MISC"], ["B-MISC=O"], ["=O"], ["MISC=O", "MISC=LOC"], ["O=MISC"]):
        with pytest.raises(ValueError):
            parse_type_map(bad)
    plan = align_label_sets(
        ["O", "B-PER", "I-PER", "B-OTH", "I-OTH"], CONLL.label_names, {"OTH": "MISC", "ORG": None, "LOC": None}
    )
    assert plan.types == ("PER", "MISC")
    assert plan.map_predictions([["B-OTH", "I-OTH", "B-PER"]]) == [["B-MISC", "I-MISC", "B-PER"]]
    assert plan.map_references([["B-ORG", "B-LOC", "I-LOC", "B-MISC"]]) == [["O", "O", "O", "B-MISC"]]
    with pytest.raises(ValueError, match="not IOB2 NER tags"):
        align_label_sets(["LABEL_0", "LABEL_1"], CONLL.label_names)
    test_set = TestSet(
        "t",
        datasets.Dataset.from_dict(
            {"tokens": [["a"]], "ner_tags": [[0]]},
            features=datasets.Features(
                {
                    "tokens": datasets.List(datasets.Value("string")),
                    "ner_tags": datasets.List(datasets.ClassLabel(names=CONLL.label_names)),
                }
            ),
        ),
    )
    check_type_map({"MISC": None}, {"m": CONLL.label_names}, [test_set])
    with pytest.raises(ValueError, match=r"--type-map names \['MSIC'\], a type of no model"):
        check_type_map({"MSIC": None}, {"m": CONLL.label_names}, [test_set])


def fake_result(model, f1, domains):
    return {"model": model, "test_sets": {n: {"f1": v, "domain": domains[n]} for n, v in f1.items()}}


def test_drop_is_in_domain_mean_minus_out_of_domain_mean():
    means = domain_means({"a": 0.8, "b": 0.6, "c": 0.5, "d": 0.3}, {"a": IN, "b": IN, "c": OUT, "d": OUT})
    assert means["in_domain_f1"] == pytest.approx(0.7) and means["out_of_domain_f1"] == pytest.approx(0.4)
    assert means["drop"] == pytest.approx(0.3)
    assert domain_means({"a": 0.8}, {"a": IN}) == {"in_domain_f1": 0.8, "out_of_domain_f1": None, "drop": None}
    with pytest.raises(ValueError, match="mark them =in or =out"):
        domain_means({"a": 0.8}, {"a": None})
    with pytest.raises(ValueError, match=r"cannot tell in from out of domain for \['m / a'\]"):
        robustness_table([fake_result("m", {"a": 0.8}, {"a": None})])


def test_robustness_markdown_is_exact():
    table = robustness_table(
        [
            fake_result("teacher", {"news": 0.8125, "parl": 0.5}, {"news": IN, "parl": OUT}),
            fake_result("soft-kl", {"news": 0.7, "parl": 0.65}, {"news": IN, "parl": OUT}),
        ]
    )
    assert table["models"][0]["drop"] == pytest.approx(0.3125)
    assert robustness_markdown(table) == (
        "| model | news (in) | parl (out) | in-domain F1 | out-of-domain F1 | drop |\n"
        "|---|---:|---:|---:|---:|---:|\n"
        "| teacher | 81.25 | 50.00 | 81.25 | 50.00 | 31.25 |\n"
        "| soft-kl | 70.00 | 65.00 | 70.00 | 65.00 | 5.00 |\n"
    )
    # models disagreeing on a set: the marker moves into the cells; a model with no out-of-domain set: no drop
    mixed = robustness_table(
        [
            fake_result("a", {"x": 0.5, "y": 0.25}, {"x": IN, "y": OUT}),
            fake_result("b", {"x": 0.5, "y": 0.75}, {"x": IN, "y": IN}),
        ]
    )
    assert robustness_markdown(mixed).splitlines()[2:] == [
        "| a | 50.00 | 25.00 (out) | 50.00 | 25.00 | 25.00 |",
        "| b | 50.00 | 75.00 (in) | 62.50 | – | – |",
    ]


def test_cli_writes_tables_json_markdown_and_png(trained, encoder, conll_file, tmp_path, capsys):
    lora = build_student(encoder, CONLL.label_names, lora=LoraSettings(r=4, lora_alpha=8))
    lora_dir = save_student(lora, str(tmp_path / "lora"), AutoTokenizer.from_pretrained(encoder))
    out = tmp_path / "eval"
    base = [
        "evaluate",
        "--model",
        trained,
        "--model",
        f"student={lora_dir}",
        "--test",
        f"{conll_file}=out",
        "--output-dir",
        str(out),
        "--batch_size",
        "4",
        "--max_samples",
        "6",
    ]
    # the LoRA student records no training corpus: an unmarked set cannot be placed, before anything runs
    assert cli.main([*base, "--test", "xner-sample:train"]) == 2
    assert "undecided for ['student / xner-sample:train']" in capsys.readouterr().err
    assert not out.exists()

    assert cli.main([*base, "--test", "xner-sample:train=in"]) == 0
    printed = capsys.readouterr().out
    evaluated = json.loads((out / "evaluation.json").read_text())
    table = json.loads((out / "robustness.json").read_text())
    names = [m["model"] for m in evaluated["models"]]
    assert names == [os.path.basename(trained), "student"]
    assert table["test_sets"] == ["held", "xner-sample:train"]
    for model, row in zip(evaluated["models"], table["models"]):
        f1 = {n: t["f1"] for n, t in model["test_sets"].items()}
        assert row["f1"] == f1 and row["domain"] == {"held": OUT, "xner-sample:train": IN}
        assert row["in_domain_f1"] == f1["xner-sample:train"] and row["out_of_domain_f1"] == f1["held"]
        assert row["drop"] == pytest.approx(f1["xner-sample:train"] - f1["held"])
        assert all(t["num_sentences"] == 6 for t in model["test_sets"].values())
    number = r"(\d+\.\d\d)"
    row_pattern = r"\| {name} \| {n} \| {n} \| {n} \| {n} \| (-?\d+\.\d\d) \|\n"
    pattern = (
        r"\| model \| held \(out\) \| xner-sample:train \(in\) \| in-domain F1 \| out-of-domain F1 \| drop \|\n"
        r"\|---\|---:\|---:\|---:\|---:\|---:\|\n"
        + row_pattern.format(name=re.escape(names[0]), n=number)
        + row_pattern.format(name="student", n=number)
    )
    markdown = (out / "robustness.md").read_text()
    match = re.fullmatch(pattern, markdown)
    assert match, markdown
    assert float(match.group(1)) == pytest.approx(100 * table["models"][0]["f1"]["held"], abs=0.005)
    assert float(match.group(5)) == pytest.approx(100 * table["models"][0]["drop"], abs=0.005)
    assert markdown in printed and "| model | test set | type | gold entities |" in printed

    png = (out / "robustness.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    import matplotlib.image

    image = matplotlib.image.imread(str(out / "robustness.png"))
    assert image.ndim == 3 and image.shape[0] >= 300 and image.shape[1] >= 600 and image.std() > 0.05


def test_type_map_error_through_the_cli_lists_both_label_sets(trained, masakhane_set, tmp_path, capsys):
    path = str(tmp_path / "mas")
    masakhane_set.dataset.save_to_disk(path)
    assert cli.main(["evaluate", "--model", trained, "--test", path + "=out"]) == 2
    err = capsys.readouterr().err
    assert "model labels" in err and "test set labels" in err and "--type-map MISC=O DATE=O" in err
    assert cli.main(["evaluate", "--model", trained, "--test", path + "=out", "--type-map", "MISC=O", "DATE=O"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| mas \| out \| 18 \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|", out)
    assert "| in-domain F1 | out-of-domain F1 | drop |" in out  # printed even without --output-dir


def test_test_specs_parse_from_the_right(tmp_path):
    assert TestSpec.parse("conll2002@es=in") == TestSpec("conll2002", None, "es", IN)
    assert TestSpec.parse("masakhaner2:dev@hau") == TestSpec("masakhaner2", "dev", "hau", None)
    assert TestSpec.parse("europarl-ner@es=out").display_name == "europarl-ner-es"
    assert TestSpec.parse("masakhaner2:dev@hau").display_name == "masakhaner2-hau:dev"
    folder = tmp_path / "a@b=c"
    folder.mkdir()
    (folder / "x.conll").write_text("Paris B-LOC\n")
    spec = TestSpec.parse(f"{folder}/x.conll=out")
    assert spec == TestSpec(f"{folder}/x.conll", None, None, OUT) and spec.is_path and spec.display_name == "x"
    (tmp_path / "dev@2024.conll").write_text("Paris B-LOC\n")
    assert TestSpec.parse(f"{tmp_path}/dev@2024.conll").name == f"{tmp_path}/dev@2024.conll"
    for bad in ("conll2002@es=maybe", "@es", "conll2002:"):
        with pytest.raises(ValueError):
            TestSpec.parse(bad)
