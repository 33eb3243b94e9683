"""The experiment report: paired bootstrap, language metadata, and the numbers, markdown and charts
built from a synthetic results store."""

import json
import os

import numpy as np
import pytest

from xner.experiments.bootstrap import f1_from_counts, paired_bootstrap, pool_seeds
from xner.experiments.languages import language_info
from xner.experiments.report import build_report, render_markdown, write_report
from xner.experiments.store import append_record, read_records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SENTENCES = 120


# ------------------------------------------------------------------------------------ bootstrap


def test_f1_from_counts_matches_hand_computation():
    counts = [[2, 1, 0], [0, 0, 1], [1, 0, 1]]  # tp=3, fp=1, fn=2
    precision, recall = 3 / 4, 3 / 5
    assert f1_from_counts(counts) == pytest.approx(2 * precision * recall / (precision + recall))
    assert f1_from_counts([[0, 0, 0], [0, 0, 0]]) == 0.0
    assert f1_from_counts([[0, 3, 2]]) == 0.0


def test_identical_systems_have_zero_delta_and_p_one():
    counts = np.random.default_rng(1).integers(0, 4, size=(200, 3))
    result = paired_bootstrap(counts, counts.copy(), samples=500)
    assert result.delta == 0.0
    assert result.p_value == 1.0
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)


def test_clearly_better_system_is_significant():
    rng = np.random.default_rng(2)
    good = np.stack([rng.binomial(3, 0.9, 300), rng.binomial(1, 0.1, 300)], axis=1)
    bad = np.stack([rng.binomial(3, 0.4, 300), rng.binomial(1, 0.6, 300)], axis=1)
    a = np.column_stack([good[:, 0], good[:, 1], 3 - good[:, 0]])
    b = np.column_stack([bad[:, 0], bad[:, 1], 3 - bad[:, 0]])
    result = paired_bootstrap(a, b, samples=1000, seed=0)
    assert result.delta > 0.3
    assert result.p_value < 0.01
    assert 0 < result.ci_low < result.delta < result.ci_high
    # Swapping the systems negates the delta; the same resamples give the same p.
    swapped = paired_bootstrap(b, a, samples=1000, seed=0)
    assert swapped.delta == pytest.approx(-result.delta)
    assert swapped.p_value == result.p_value


def test_close_systems_are_not_significant():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, size=(300, 3))
    b = a.copy()
    b[0] = [a[0, 0] + 1, a[0, 1], a[0, 2]]  # one more true positive in one sentence
    result = paired_bootstrap(b, a, samples=500)
    assert result.delta > 0
    assert result.p_value > 0.05


def test_full_sample_delta_is_the_f1_difference():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 5, size=(50, 3)), rng.integers(0, 5, size=(50, 3))
    tp_a, fp_a, fn_a = a.sum(axis=0)
    tp_b, fp_b, fn_b = b.sum(axis=0)
    expected = 2 * tp_a / (2 * tp_a + fp_a + fn_a) - 2 * tp_b / (2 * tp_b + fp_b + fn_b)
    result = paired_bootstrap(a, b, samples=100)
    assert result.delta == pytest.approx(expected)
    assert result.f1_a == pytest.approx(2 * tp_a / (2 * tp_a + fp_a + fn_a))
    assert result.sentences == 50 and result.samples == 100
    assert paired_bootstrap(a, b, samples=100, seed=7) == paired_bootstrap(a, b, samples=100, seed=7)


def test_bootstrap_rejects_different_test_sets():
    with pytest.raises(ValueError, match="test sets differ"):
        paired_bootstrap(np.ones((10, 3)), np.ones((11, 3)))
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap(np.ones((10, 2)), np.ones((10, 2)))


def test_pool_seeds_sums_per_sentence():
    first, second = np.array([[1, 0, 2], [3, 1, 0]]), np.array([[0, 1, 1], [2, 2, 2]])
    assert pool_seeds([first, second]).tolist() == [[1, 1, 3], [5, 3, 2]]
    with pytest.raises(ValueError, match="differ"):
        pool_seeds([first, np.ones((3, 3))])
    with pytest.raises(ValueError):
        pool_seeds([])


# ------------------------------------------------------------------------------------ languages


@pytest.mark.parametrize(
    "code, name, family, branch",
    [
        ("hau", "Hausa", "Afro-Asiatic", "Chadic"),
        ("luo", "Dholuo", "Nilo-Saharan", "Western Nilotic"),
        ("pcm", "Nigerian Pidgin", "Creole", "English-based creole"),
        ("wol", "Wolof", "Niger-Congo", "Atlantic"),
        ("bam", "Bambara", "Niger-Congo", "Mande"),
        ("fon", "Fon", "Niger-Congo", "Gbe"),
        ("ewe", "Ewe", "Niger-Congo", "Gbe"),
        ("mos", "Mossi", "Niger-Congo", "Gur"),
        ("twi", "Twi", "Niger-Congo", "Kwa"),
        ("bbj", "Ghomala'", "Niger-Congo", "Grassfields"),
        ("zul", "isiZulu", "Niger-Congo", "Bantu"),
        ("nl", "Dutch", "Indo-European", "Germanic"),
        ("es", "Spanish", "Indo-European", "Romance"),
        ("fi", "Finnish", "Uralic", "Finnic"),
        ("eu", "Basque", "Basque (isolate)", "Basque"),
    ],
)
def test_language_facts(code, name, family, branch):
    info = language_info(code)
    assert (info.code, info.name, info.family, info.branch) == (code, name, family, branch)


def test_language_scripts_and_code_forms():
    assert language_info("hi").script == "Devanagari"
    assert language_info("ar").script == "Arabic"
    assert language_info("ru").script == "Cyrillic"
    assert language_info("zh").script == "Han"
    assert language_info("yor").script == "Latin"
    for short, long in (("sw", "swa"), ("yo", "yor"), ("ha", "hau"), ("en", "eng"), ("de", "deu")):
        a, b = language_info(short), language_info(long)
        assert (
            (a.name, a.family, a.branch, a.script)
            == (b.name, b.family, b.branch, b.script)
            != (b.code, "unknown", "unknown", "unknown")
        )
        assert a.code == short and b.code == long
    assert language_info("YOR").name == "Yoruba"
    assert language_info("pt-BR").name == "Portuguese"


def test_encoder_coverage_splits_the_african_languages_of_the_offline_config():
    """hau, swa, xho are CC-100 languages (XLM-R, multilingual-e5); the other seven of the config are not."""
    config_languages = ("hau", "swa", "xho", "yor", "ibo", "kin", "zul", "wol", "luo", "ewe")
    seen = [c for c in config_languages if language_info(c).encoder == "seen"]
    assert seen == ["hau", "swa", "xho"]
    assert language_info("sw").encoder == language_info("swa").encoder == "seen"
    assert all(language_info(c).encoder == "seen" for c in ("en", "es", "nl", "de"))
    assert language_info("xx-unknown").encoder == "unseen"


@pytest.mark.parametrize(
    "config, seen",
    [
        ("configs/offline-africa.yaml", {"hau", "swa", "xho"}),
        ("configs/offline-europe.yaml", {"es", "nl", "de"}),
        ("configs/conll2003.yaml", {"en"}),
    ],
)
def test_encoder_coverage_of_every_language_of_the_e5_configs(config, seen):
    """The e5 configs' languages, in the corpus's code form and the other one, against XLM-R's CC-100 list."""
    import langcodes
    import yaml

    with open(os.path.join(REPO, config), encoding="utf-8") as handle:
        languages = set(yaml.safe_load(handle)["languages"])
    assert seen <= languages
    for code in languages:
        expected = "seen" if code in seen else "unseen"
        other = langcodes.Language.get(code)
        other = other.to_alpha3() if len(code) == 2 else other.language
        info, other_info = language_info(code), language_info(other)
        assert info.encoder == other_info.encoder == expected, (code, other)
        assert info.family != "unknown" and info.name == other_info.name, (code, other)


def test_encoder_coverage_of_other_masakhaner_languages():
    for code in ("amh", "am", "som", "so", "hau", "ha", "swa", "sw", "xho", "xh"):
        assert language_info(code).encoder == "seen", code
    for code in ("yor", "ibo", "kin", "zul", "wol", "luo", "ewe", "lug", "nya", "sna", "tsn", "twi", "fon", "bam"):
        assert language_info(code).encoder == "unseen", code
    for code in ("bbj", "mos", "pcm"):
        assert language_info(code).encoder == "unseen", code
    assert (language_info("amh").family, language_info("amh").script) == ("Afro-Asiatic", "Ethiopic")
    assert (language_info("so").name, language_info("so").branch) == ("Somali", "Cushitic")


def test_unknown_language_does_not_fail():
    info = language_info("qqq")
    assert (info.code, info.name, info.family, info.branch, info.script) == (
        "qqq",
        "qqq",
        "unknown",
        "unknown",
        "unknown",
    )
    with pytest.raises(AttributeError):  # frozen
        info.name = "x"


# --------------------------------------------------------------------------------------- report


def _counts(quality: float, seed: int, sentences: int = SENTENCES) -> list:
    rng = np.random.default_rng(seed)
    tp = rng.binomial(2, quality, sentences)
    fp = rng.binomial(1, 1 - quality, sentences)
    return np.column_stack([tp, fp, 2 - tp]).tolist()


def _result(f1, domain, quality=0.5, seed=0, per_type=None, sentences=SENTENCES):
    return {
        "corpus": "c",
        "split": "test",
        "lang": "x",
        "domain": domain,
        "num_sentences": sentences,
        "num_entities": 2 * sentences,
        "precision": f1,
        "recall": f1,
        "f1": f1,
        "per_type": {t: {"precision": v, "recall": v, "f1": v, "number": 10} for t, v in (per_type or {}).items()},
        "sentence_counts": _counts(quality, seed, sentences),
    }


def _record(run_id, kind, model, lang, seed, results, student_kind=None, teachers=(), params=None, sweep=None):
    return {
        "experiment": "synthetic",
        "config_hash": "0" * 8,
        "run_id": run_id,
        "kind": kind,
        "groups": ["main"],
        "model": model,
        "strategy": None if kind == "teacher" else model,
        "params": params or {},
        "teachers": list(teachers),
        "teacher_runs": [],
        "student_kind": student_kind,
        "base_model": "tiny",
        "lang": lang,
        "seed": seed,
        "sweep": sweep,
        "results": results,
        "provenance": {},
    }


FULL_ES_IN = [0.70, 0.72, 0.75]
FULL_ES_OUT = [0.55, 0.56, 0.60]
FULL_PER = [0.80, 0.82, 0.90]
FULL_SWA = [0.50, 0.52, 0.54]
FULL_YOR = [0.60, 0.61, 0.65]
LORA_ES_IN = [0.65, 0.66]
LORA_ES_OUT = [0.60, 0.61]
TEACHER = {"es": (0.60, 0.50), "swa": 0.40, "yor": 0.45, "hau": 0.30}


def _records() -> list[dict]:
    records = [
        _record(
            "teacher-es",
            "teacher",
            "en",
            "es",
            1,
            {"conll-es": _result(TEACHER["es"][0], "in", 0.55, 1), "wiki-es": _result(TEACHER["es"][1], "out", 0.5, 2)},
        ),
        _record("teacher-swa", "teacher", "en", "swa", 1, {"masakha-swa": _result(TEACHER["swa"], "in", 0.4, 3)}),
        _record("teacher-yor", "teacher", "en", "yor", 1, {"masakha-yor": _result(TEACHER["yor"], "in", 0.4, 4)}),
        _record("teacher-hau", "teacher", "en", "hau", 1, {"masakha-hau": _result(TEACHER["hau"], "in", 0.3, 5)}),
    ]
    for i, seed in enumerate((1, 2, 3)):
        results = {
            "conll-es": _result(FULL_ES_IN[i], "in", 0.9, 10 + seed, {"PER": FULL_PER[i], "ORG": 0.5}),
            "wiki-es": _result(FULL_ES_OUT[i], "out", 0.7, 20 + seed),
        }
        records.append(_record(f"full-es-{seed}", "student", "soft-kl", "es", seed, results, "full", ["en"]))
        for lang, values in (("swa", FULL_SWA), ("yor", FULL_YOR)):
            records.append(
                _record(
                    f"full-{lang}-{seed}",
                    "student",
                    "soft-kl",
                    lang,
                    seed,
                    {f"masakha-{lang}": _result(values[i], "in", 0.6, 30 + seed)},
                    "full",
                    ["en"],
                )
            )
    for i, seed in enumerate((1, 2)):
        results = {
            "conll-es": _result(LORA_ES_IN[i], "in", 0.6, 40 + seed),
            "wiki-es": _result(LORA_ES_OUT[i], "out", 0.8, 50 + seed),
        }
        records.append(_record(f"lora-es-{seed}", "student", "soft-kl", "es", seed, results, "lora", ["en"]))
    for trial, value in enumerate((0.61, 0.70, None)):
        records.append(
            _record(
                f"trial-{trial}",
                "trial",
                "soft-kl",
                "es",
                1,
                {},
                "full",
                ["en"],
                {"temperature": float(trial + 1)},
                {"name": "temp", "trial": trial, "value": value},
            )
        )
    records.append(
        _record(
            "sweep-temp",
            "sweep",
            "soft-kl",
            "es",
            1,
            {},
            "full",
            ["en"],
            {"temperature": 2.0},
            {"name": "temp", "trial": 1, "value": 0.70},
        )
    )
    return records


@pytest.fixture
def store(tmp_path):
    path = str(tmp_path / "results.jsonl")
    for record in _records():
        append_record(path, record)
    return path


@pytest.fixture
def report(store):
    return build_report(read_records(store), samples=200)


def _row(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def test_main_table_mean_and_sample_std(report):
    assert [c["label"] for c in report["configurations"]] == ["teacher en", "soft-kl (full)", "soft-kl (lora)"]
    row = _row(report["main"], configuration="soft-kl (full)", lang="es", test_set="conll-es")
    assert row["n_seeds"] == 3 and row["seeds"] == [1, 2, 3] and row["domain"] == "in"
    assert row["f1_mean"] == pytest.approx(np.mean(FULL_ES_IN))
    assert row["f1_std"] == pytest.approx(np.std(FULL_ES_IN, ddof=1))
    teacher = _row(report["main"], configuration="teacher en", lang="es", test_set="wiki-es")
    assert teacher["f1_mean"] == pytest.approx(TEACHER["es"][1]) and teacher["f1_std"] is None
    assert teacher["domain"] == "out"


def test_robustness_drop_is_in_minus_out(report):
    row = _row(report["robustness"]["rows"], configuration="soft-kl (full)", lang="es")
    assert row["drop"] == pytest.approx(np.mean(FULL_ES_IN) - np.mean(FULL_ES_OUT))
    assert _row(report["robustness"]["rows"], configuration="soft-kl (full)", lang="swa")["drop"] is None
    by_config = _row(report["robustness"]["by_configuration"], configuration="soft-kl (lora)")
    assert by_config["drop"] == pytest.approx(np.mean(LORA_ES_IN) - np.mean(LORA_ES_OUT))
    assert by_config["n_languages"] == 1


def test_teacher_vs_student_delta(report):
    tvs = report["teacher_vs_student"]
    row = _row(tvs["rows"], configuration="soft-kl (full)", lang="yor", test_set="masakha-yor")
    assert row["teacher"] == "en"
    assert row["delta"] == pytest.approx(np.mean(FULL_YOR) - TEACHER["yor"])
    deltas = [r["delta"] for r in tvs["rows"] if r["configuration"] == "soft-kl (lora)"]
    expected = [np.mean(LORA_ES_IN) - TEACHER["es"][0], np.mean(LORA_ES_OUT) - TEACHER["es"][1]]
    assert sorted(deltas) == pytest.approx(sorted(expected))
    assert tvs["overall"]["n"] == 6  # full: 2 es + swa + yor, lora: 2 es


def test_per_type_mean(report):
    row = _row(report["per_type"], configuration="soft-kl (full)", lang="es", test_set="conll-es", type="PER")
    assert row["f1_mean"] == pytest.approx(np.mean(FULL_PER)) and row["n_seeds"] == 3


def test_family_and_script_grouping(report):
    families = report["families"]
    assert {r["code"]: r["family"] for r in families["languages"]} == {
        "es": "Indo-European",
        "hau": "Afro-Asiatic",
        "swa": "Niger-Congo",
        "yor": "Niger-Congo",
    }
    niger_congo = _row(families["by_family"], family="Niger-Congo", configuration="soft-kl (full)")
    assert niger_congo["languages"] == ["swa", "yor"]
    assert niger_congo["f1_mean"] == pytest.approx(np.mean([np.mean(FULL_SWA), np.mean(FULL_YOR)]))
    teacher_latin = _row(families["by_script"], script="Latin", configuration="teacher en")
    assert teacher_latin["f1_mean"] == pytest.approx(
        np.mean([TEACHER["es"][0], TEACHER["swa"], TEACHER["yor"], TEACHER["hau"]])
    )


def test_encoder_coverage_grouping(report):
    """es, hau, swa are CC-100 languages, yor is not; each group averages the languages' in-domain F1."""
    families = report["families"]
    assert {r["code"]: r["encoder"] for r in families["languages"]} == {
        "es": "seen",
        "hau": "seen",
        "swa": "seen",
        "yor": "unseen",
    }
    by_encoder = families["by_encoder"]
    teacher_seen = _row(by_encoder, encoder="seen", configuration="teacher en")
    assert teacher_seen["n_languages"] == 3 and sorted(teacher_seen["languages"]) == ["es", "hau", "swa"]
    assert teacher_seen["f1_mean"] == pytest.approx(np.mean([TEACHER["es"][0], TEACHER["swa"], TEACHER["hau"]]))
    teacher_unseen = _row(by_encoder, encoder="unseen", configuration="teacher en")
    assert teacher_unseen["n_languages"] == 1 and teacher_unseen["f1_mean"] == pytest.approx(TEACHER["yor"])
    full_seen = _row(by_encoder, encoder="seen", configuration="soft-kl (full)")
    assert full_seen["n_languages"] == 2
    assert full_seen["f1_mean"] == pytest.approx(np.mean([np.mean(FULL_ES_IN), np.mean(FULL_SWA)]))
    assert _row(by_encoder, encoder="unseen", configuration="soft-kl (full)")["f1_mean"] == pytest.approx(
        np.mean(FULL_YOR)
    )
    assert [r["encoder"] for r in by_encoder if r["configuration"] == "soft-kl (lora)"] == ["seen"]
    # The cross table: within Niger-Congo, swa (seen) against yor (unseen).
    cross = families["by_family_encoder"]
    nc_seen = _row(cross, family="Niger-Congo", encoder="seen", configuration="soft-kl (full)")
    assert nc_seen["languages"] == ["swa"] and nc_seen["f1_mean"] == pytest.approx(np.mean(FULL_SWA))
    nc_unseen = _row(cross, family="Niger-Congo", encoder="unseen", configuration="teacher en")
    assert nc_unseen["languages"] == ["yor"] and nc_unseen["f1_mean"] == pytest.approx(TEACHER["yor"])
    assert _row(cross, family="Afro-Asiatic", encoder="seen", configuration="teacher en")["languages"] == ["hau"]
    assert not [r for r in cross if r["family"] == "Indo-European" and r["encoder"] == "unseen"]


def test_encoder_coverage_findings(report):
    teacher_seen = np.mean([TEACHER["es"][0], TEACHER["swa"], TEACHER["hau"]])
    full_seen = np.mean([np.mean(FULL_ES_IN), np.mean(FULL_SWA)])
    overall = (
        "Languages the encoder saw in pre-training (es, hau, swa) vs not (yor), mean in-domain F1: "
        f"teacher en {100 * teacher_seen:.1f}% (n=3) vs {100 * TEACHER['yor']:.1f}% (n=1), "
        f"{100 * (teacher_seen - TEACHER['yor']):+.1f} points; "
        f"soft-kl (full) {100 * full_seen:.1f}% (n=2) vs {100 * np.mean(FULL_YOR):.1f}% (n=1), "
        f"{100 * (full_seen - np.mean(FULL_YOR)):+.1f} points; "
        f"the seen ones score higher for {int(teacher_seen > TEACHER['yor']) + int(full_seen > np.mean(FULL_YOR))} "
        "of 2 configuration(s)."
    )
    assert overall in report["findings"]
    within = [f for f in report["findings"] if f.startswith("Within ")]
    assert len(within) == 1  # only Niger-Congo has both seen and unseen languages
    assert within[0].startswith("Within Niger-Congo, languages the encoder saw in pre-training (swa) vs not (yor)")
    assert f"teacher en {100 * TEACHER['swa']:.1f}% (n=1) vs {100 * TEACHER['yor']:.1f}% (n=1)" in within[0]
    # Without an unseen language there is nothing to compare.
    records = [_record("t", "teacher", "en", "es", 1, {"conll-es": _result(0.6, "in")})]
    assert not [f for f in build_report(records, samples=50)["findings"] if "saw in pre-training" in f]


def test_significance_uses_shared_seeds(report):
    rows = report["significance"]["rows"]
    row = _row(rows, lang="es", test_set="conll-es", other="soft-kl (lora)")
    assert row["best"] == "soft-kl (full)"
    assert row["pooling"] == "shared seeds" and row["seeds_best"] == [1, 2] and row["seeds_other"] == [1, 2]
    assert row["significant"] == (row["p_value"] < 0.05)
    # The tested delta is that of the pooled counts of the shared seeds.
    full = [r for r in _records() if r["run_id"] in ("full-es-1", "full-es-2")]
    lora = [r for r in _records() if r["run_id"] in ("lora-es-1", "lora-es-2")]
    pooled = [pool_seeds([r["results"]["conll-es"]["sentence_counts"] for r in rs]) for rs in (full, lora)]
    assert row["delta"] == pytest.approx(f1_from_counts(pooled[0]) - f1_from_counts(pooled[1]))
    teacher = _row(rows, lang="es", test_set="conll-es", other="teacher en")
    assert teacher["pooling"] == "shared seeds" and teacher["seeds_best"] == [1]
    assert teacher["significant"]  # quality 0.9 vs 0.55 on 120 sentences


def test_sweeps_and_findings(report):
    sweep = _row(report["sweeps"], name="temp")
    assert sweep["n_trials"] == 3 and sweep["best_value"] == 0.70 and sweep["best_params"] == {"temperature": 2.0}
    findings = "\n".join(report["findings"])
    assert "es / conll-es (in-domain): soft-kl (full) has the highest mean F1 (72.3%)" in findings
    assert "Smallest in- vs out-of-domain drop: soft-kl (lora)" in findings
    assert "Niger-Congo (swa, yor): highest mean in-domain F1 for soft-kl (full)" in findings


def test_family_finding_compares_only_configurations_run_on_all_its_languages():
    # "hard" ran on Swahili alone: its mean (0.70) beats the teacher's over swa and yor (0.40), but over other
    # languages, so the finding names the teacher and says a configuration was left out.
    records = [
        _record("t-swa", "teacher", "en", "swa", 1, {"m-swa": _result(0.50, "in")}),
        _record("t-yor", "teacher", "en", "yor", 1, {"m-yor": _result(0.30, "in")}),
        _record("hard-swa", "student", "hard", "swa", 1, {"m-swa": _result(0.70, "in")}, "full", ["en"]),
    ]
    findings = build_report(records, samples=50)["findings"]
    assert (
        "Niger-Congo (swa, yor): highest mean in-domain F1 for teacher en (40.0%), "
        "among the 1 configuration(s) run on all of them."
    ) in findings
    assert not [f for f in findings if "highest mean in-domain F1 for hard" in f]


def test_a_student_that_finds_no_entity_is_not_the_most_robust():
    # hard-confident tagged everything O in and out of domain: a drop of 0 points, which is no robustness
    records = [
        _record("t", "teacher", "en", "en", 1, {"a": _result(0.85, "in"), "b": _result(0.62, "out")}),
        _record(
            "s", "student", "soft-kl", "en", 1, {"a": _result(0.72, "in"), "b": _result(0.52, "out")}, "full", ["en"]
        ),
        _record(
            "h",
            "student",
            "hard-confident",
            "en",
            1,
            {"a": _result(0.0, "in"), "b": _result(0.0, "out")},
            "full",
            ["en"],
        ),
    ]
    findings = build_report(records, samples=50)["findings"]
    (robustness,) = [f for f in findings if f.startswith("Smallest in- vs out-of-domain drop")]
    assert robustness.startswith("Smallest in- vs out-of-domain drop: soft-kl (full) (+20.0 points")
    assert robustness.endswith("left out, F1 0 in domain: hard-confident (full).")


def test_lead_not_confirmed_by_pooled_counts_is_said():
    # Mean F1 ranks "hard" first, but its sentence counts are the worse ones.
    records = [
        _record("a", "teacher", "en", "es", 1, {"t": _result(0.6, "in", quality=0.9, seed=1)}),
        _record("b", "student", "hard", "es", 1, {"t": _result(0.7, "in", quality=0.3, seed=2)}, "full", ["en"]),
    ]
    report = build_report(records, samples=100)
    row = _row(report["significance"]["rows"], best="hard (full)", other="teacher en")
    assert row["delta"] < 0 and row["significant"]
    assert "does not confirm the lead" in report["findings"][0]
    assert "the lead is significant" not in report["findings"][0]


def test_variants_of_a_configuration_are_kept_apart(tmp_path):
    records = [
        _record(
            f"s-{t}", "student", "soft-kl", "es", 1, {"conll-es": _result(f1, "in")}, "full", ["en"], {"temperature": t}
        )
        for t, f1 in ((1.0, 0.5), (2.0, 0.7))
    ]
    report = build_report(records, samples=50)
    assert sorted(r["configuration"] for r in report["main"]) == [
        "soft-kl (full) [temperature=1.0]",
        "soft-kl (full) [temperature=2.0]",
    ]
    assert all(r["n_seeds"] == 1 for r in report["main"])


def test_a_variant_label_names_what_it_sets():
    # self-training redefined: a threshold schedule first, class-balanced thresholds after
    old = {"self_training_threshold_start": 0.9, "self_training_threshold_end": 0.7}
    records = [
        _record(f"s-{i}", "student", "self-training", "en", 1, {"t": _result(f1, "in")}, "full", ["en"], params)
        for i, (params, f1) in enumerate(((old, 0.0), ({"keep_per_class": 0.5}, 0.5), ({}, 0.4)))
    ]
    labels = sorted(r["configuration"] for r in build_report(records, samples=50)["main"])
    assert labels == [
        "self-training (full) [keep_per_class unset, self_training_threshold_end unset, self_training_threshold_start unset]",
        "self-training (full) [keep_per_class=0.5]",
        "self-training (full) [self_training_threshold_end=0.7, self_training_threshold_start=0.9]",
    ]


def test_write_report_markdown_json_and_charts(store, tmp_path):
    out = tmp_path / "report"
    paths = write_report(read_records(store), str(out), title="Synthetic", samples=200)
    assert set(paths) == {"report.md", "report.json", "f1.png", "robustness.png", "families.png", "coverage.png"}
    for name in ("f1.png", "robustness.png", "families.png", "coverage.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# Synthetic\n")
    mean, std = 100 * np.mean(FULL_ES_IN), 100 * np.std(FULL_ES_IN, ddof=1)
    assert f"| soft-kl (full) | es | conll-es | in | {mean:.1f} ± {std:.1f} | 3 |" in markdown
    assert f"| teacher en | es | wiki-es | out | {100 * TEACHER['es'][1]:.1f} | 1 |" in markdown
    drop = 100 * (np.mean(LORA_ES_IN) - np.mean(LORA_ES_OUT))
    assert (
        f"| soft-kl (lora) | es | {100 * np.mean(LORA_ES_IN):.1f} | {100 * np.mean(LORA_ES_OUT):.1f} | {drop:+.1f} |"
        in markdown
    )
    assert "| yor | Yoruba | Niger-Congo | Volta-Niger | Latin | unseen |" in markdown
    assert f"| unseen | soft-kl (full) | yor | {100 * np.mean(FULL_YOR):.1f} |" in markdown
    assert f"| Niger-Congo | seen | teacher en | swa | {100 * TEACHER['swa']:.1f} |" in markdown
    assert "| temp | es | 3 | 70.0 |" in markdown
    for embed in (
        "![F1](f1.png)",
        "![Robustness](robustness.png)",
        "![Families](families.png)",
        "![Encoder coverage](coverage.png)",
    ):
        assert embed in markdown
    saved = json.loads((out / "report.json").read_text())
    assert saved["title"] == "Synthetic"
    assert saved["charts"]["f1"] == {"file": "f1.png"}
    assert {
        "main",
        "robustness",
        "teacher_vs_student",
        "per_type",
        "families",
        "significance",
        "sweeps",
        "findings",
    } <= set(saved)
    assert render_markdown(saved) == markdown


def test_chart_without_data_is_skipped_and_said(tmp_path):
    records = [_record("t", "teacher", "en", "es", 1, {"conll-es": _result(0.6, "in")})]
    paths = write_report(records, str(tmp_path), samples=50)
    assert "robustness.png" not in paths and not (tmp_path / "robustness.png").exists()
    markdown = (tmp_path / "report.md").read_text()
    assert "*No Robustness chart: no configuration has both in- and out-of-domain results.*" in markdown
    assert (tmp_path / "f1.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "*No Encoder coverage chart: every language with in-domain results is seen by the encoder.*" in markdown


def test_mismatched_sentence_counts_are_skipped_with_a_note():
    records = [
        _record("a", "teacher", "en", "es", 1, {"t": _result(0.6, "in", sentences=10)}),
        _record("b", "student", "hard", "es", 1, {"t": _result(0.7, "in", sentences=12)}, "full", ["en"]),
    ]
    report = build_report(records, samples=50)
    assert report["significance"]["rows"] == []
    assert "test sets differ" in report["significance"]["skipped"][0]
    assert "lead was not tested" in "\n".join(report["findings"])


def test_empty_store_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no teacher or student records"):
        build_report(read_records(str(tmp_path / "missing.jsonl")))
    sweep_only = [r for r in _records() if r["kind"] in ("trial", "sweep")]
    with pytest.raises(ValueError, match="no teacher or student records"):
        build_report(sweep_only)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["results"]["conll-es"].pop("f1"), "F1"),
        (lambda r: r["results"]["conll-es"].update(domain="inside"), "domain"),
        (lambda r: r["results"]["conll-es"].update(sentence_counts=[[1, 2]]), "sentence_counts"),
        (lambda r: r.update(results={}), "no results"),
        (lambda r: r.update(seed="one"), "seed"),
        (lambda r: r.update(kind="pupil"), "unknown kind"),
        (lambda r: r.update(pseudo_labels={"words_kept": 1.5}), "pseudo_labels"),
    ],
)
def test_malformed_record_names_its_run(tmp_path, change, message):
    records = _records()
    bad = next(r for r in records if r["run_id"] == "full-es-2")
    change(bad)
    path = str(tmp_path / "results.jsonl")
    for record in records:
        append_record(path, record)
    with pytest.raises(ValueError, match=message) as error:
        build_report(read_records(path), samples=50)
    assert "full-es-2" in str(error.value)


def test_overview_pivots_configurations_against_test_sets(report):
    markdown = render_markdown(report)
    overview = markdown.split("## Overview")[1].split("## Main results")[0]
    header = next(line for line in overview.splitlines() if line.startswith("| Configuration"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "es conll-es (in)" in columns and "es wiki-es (out)" in columns and "swa masakha-swa (in)" in columns
    row = next(line for line in overview.splitlines() if line.startswith("| soft-kl (lora)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    lora_in = cells[columns.index("es conll-es (in)")]
    assert lora_in == f"{100 * np.mean(LORA_ES_IN):.1f} ± {100 * np.std(LORA_ES_IN, ddof=1):.1f} (2)"
    assert cells[columns.index("swa masakha-swa (in)")] == ""  # no LoRA student for Swahili


def test_compute_sums_the_recorded_wall_time(tmp_path):
    records = _records()
    for i, record in enumerate(records):
        record["provenance"] = {"wall_time_s": 10.0 * (i + 1), "peak_rss_mb": 100.0 + i}
    report = build_report(records, samples=50)
    counted = [i for i, r in enumerate(records) if r["kind"] in ("teacher", "student", "trial")]
    assert report["summary"]["compute"]["wall_time_s"] == pytest.approx(sum(10.0 * (i + 1) for i in counted))
    assert report["summary"]["compute"]["peak_rss_mb"] == max(100.0 + i for i in counted)
    assert "Compute: " in render_markdown(report)


def test_compute_per_group_counts_a_shared_run_in_each_group():
    records = _records()
    for record in records:
        record["provenance"] = {"wall_time_s": 60.0}
    runs = [r for r in records if r["kind"] in ("teacher", "student")]
    runs[0]["groups"] = ["main", "zoo"]  # a teacher evaluation both groups use
    runs[1]["groups"] = ["zoo"]
    trials = sum(r["kind"] == "trial" for r in records)
    report = build_report(records, samples=50)
    compute = report["summary"]["compute"]
    assert trials and compute["groups"] == {
        "main": pytest.approx(60.0 * (len(runs) - 1)),
        "zoo": pytest.approx(120.0),
        "sweeps": pytest.approx(60.0 * trials),
    }
    assert compute["wall_time_s"] == pytest.approx(60.0 * (len(runs) + trials))
    assert f"by group: main {len(runs) - 1} min, zoo 2 min, sweeps {trials} min" in render_markdown(report)


def test_chart_axes_fit_low_scores():
    from xner.experiments.report import _y_top

    assert _y_top([11.6, 7.4, float("nan")]) == 20.0  # 11.6 + 15% margin, next 10
    assert _y_top([95.0]) == 100.0 and _y_top([]) == 10.0


def test_students_are_also_ranked_among_themselves(report):
    rows = report["student_significance"]["rows"]
    assert rows and all(not r["best"].startswith("teacher") and not r["other"].startswith("teacher") for r in rows)
    es_in = [r for r in rows if r["lang"] == "es" and r["test_set"] == "conll-es"]
    assert (
        {r["best"] for r in es_in} == {"soft-kl (full)"}
        if np.mean(FULL_ES_IN) > np.mean(LORA_ES_IN)
        else {"soft-kl (lora)"}
    )
    assert any(f.startswith("Best student on es / conll-es (in-domain)") for f in report["findings"])
    assert "Among students only" in render_markdown(report)


def _drawn(report, name):
    """The figure of chart ``name`` as write_report draws it, laid out on an Agg canvas."""
    from matplotlib import colormaps, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from xner.experiments import report as module

    draw = {
        "f1": module._chart_f1,
        "robustness": module._chart_robustness,
        "families": module._chart_families,
        "coverage": module._chart_coverage,
    }[name]
    labels = [c["label"] for c in report["configurations"]]
    colours = {label: colormaps["tab10"](i) for i, label in enumerate(labels)}
    with rc_context({"font.size": module.FONT_SIZE}):
        figure = draw(report, colours, Figure)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    return figure, canvas.get_renderer()


@pytest.mark.parametrize("name", ["f1", "robustness", "families", "coverage"])
def test_charts_are_legible_at_readme_width(report, name, tmp_path):
    figure, renderer = _drawn(report, name)
    texts = [
        t
        for t in figure.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))
        if t.get_visible() and t.get_text().strip()
    ]
    assert texts and min(t.get_fontsize() for t in texts) >= 10  # points, at the width shown
    width, height = figure.bbox.width, figure.bbox.height
    for artist in [*texts, *figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend())]:
        box = artist.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1, artist  # nothing cut off on the left or bottom
        if artist in figure.legends:
            assert box.x1 <= width + 1 and box.y1 <= height + 1  # the legend is inside the image
    paths = write_report(_records(), str(tmp_path / "out"), samples=50)
    import matplotlib.image

    image = matplotlib.image.imread(paths[f"{name}.png"])
    assert 700 <= image.shape[1] <= 830  # ~800 px: shown at its own size, the points stay points


def test_bars_that_average_languages_say_how_many(report):
    figure, _ = _drawn(report, "families")
    ax = figure.axes[0]
    annotations = sorted(t.get_text() for t in ax.texts)
    assert annotations == sorted(str(r["n_languages"]) for r in report["families"]["by_family"])
    assert len(set(annotations)) > 1  # the synthetic store averages different numbers of languages
    figure, _ = _drawn(report, "coverage")
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["seen", "unseen"]
    annotations = sorted(t.get_text() for t in figure.axes[0].texts)
    assert annotations == sorted(str(r["n_languages"]) for r in report["families"]["by_encoder"])
    figure, _ = _drawn(report, "robustness")
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == [f"{r['configuration']} (n={r['n_languages']})" for r in report["robustness"]["by_configuration"]]


def test_model_selection_is_summarised_per_language_and_protocol():
    def student(run_id, lang, selection):
        record = _record(run_id, "student", "soft-kl", lang, 1, {"t": _result(0.5, "in")}, student_kind="full")
        if selection is not None:
            record["selection"] = selection
        return record

    translated = {
        "selection": "translate-train-dev",
        "dev_set": {"dataset": "/somewhere/projections/p/es", "gold": False},
        "gold_target_dev_used": False,
    }
    source = {
        "selection": "source-dev",
        "dev_set": {"dataset": "conll2003:validation@en", "gold": True},
        "gold_target_dev_used": False,
    }
    target = {
        "selection": "target-dev",
        "dev_set": {"dataset": "conll2002:validation@nl", "gold": True},
        "gold_target_dev_used": True,
    }
    records = [
        student("a", "es", translated),
        student("b", "es", translated),
        student("c", "nl", source),
        student("d", "nl", target),
        student("e", "de", None),
    ]
    report = build_report(records, samples=50)
    rows = report["summary"]["model_selection"]
    assert [(r["lang"], r["protocol"], r["runs"], r["gold_target_dev_used"]) for r in rows] == [
        ("de", "none", 1, False),
        ("es", "translate-train-dev", 2, False),
        ("nl", "source-dev", 1, False),
        ("nl", "target-dev", 1, True),
    ]
    assert "/somewhere" not in json.dumps(rows)  # a machine's folder is not what a reader needs
    markdown = render_markdown(report)
    assert "| nl | target-dev | conll2002:validation@nl | yes | 1 |" in markdown
    assert "| de | none | none: the last epoch | no | 1 |" in markdown


def test_pseudo_label_steps_are_averaged_per_configuration_and_language(tmp_path):
    def student(run_id, model, seed, rates):
        record = _record(run_id, "student", model, "es", seed, {"t": _result(0.5, "in")}, student_kind="full")
        record["pseudo_labels"] = rates
        return record

    records = [
        student("v1", "voting", 1, {"disagreement_rate": 0.2}),
        student("v2", "voting", 2, {"disagreement_rate": 0.3}),
        student("b1", "hard-balanced", 1, {"words_kept": 0.5, "kept_rate": 0.4}),
        student("s1", "soft-kl", 1, None),  # a strategy without steps: no row
    ]
    report = build_report(records, samples=50)
    rows = {r["configuration"]: r for r in report["pseudo_labels"]}
    assert set(rows) == {"voting (full)", "hard-balanced (full)"}
    assert rows["voting (full)"]["rates"] == pytest.approx({"disagreement_rate": 0.25})
    assert rows["voting (full)"]["runs"] == 2
    assert rows["hard-balanced (full)"]["rates"] == pytest.approx({"words_kept": 0.5, "kept_rate": 0.4})
    text = render_markdown(report)
    assert "## Pseudo-label steps" in text
    assert "| hard-balanced (full) | es | 50.0 | 40.0 | - | 1 |" in text
    assert "| voting (full) | es | - | - | 25.0 | 2 |" in text
