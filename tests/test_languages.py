"""Language codes through langcodes: ISO 639-1 <-> 639-3 and NLLB-200 codes, including the languages
the former hand-written tables did not know (gd, ti, fy, qu, yi, sd, si, ug) or got wrong (ckb, uig, ary)."""

import pytest

from dataset_builders.errors import UserError
from projection.languages import nllb_code, script_of, to_iso1, to_iso3
from xner.experiments.languages import language_info


@pytest.mark.parametrize(
    "iso1, iso3",
    [
        ("gd", "gla"),
        ("ti", "tir"),
        ("fy", "fry"),
        ("qu", "que"),
        ("yi", "yid"),
        ("sd", "snd"),
        ("si", "sin"),
        ("ug", "uig"),
        ("es", "spa"),
        ("de", "deu"),
        ("fa", "fas"),
        ("zh", "zho"),
        ("sw", "swa"),
        ("yo", "yor"),
    ],
)
def test_iso1_and_iso3_round_trip(iso1, iso3):
    assert to_iso3(iso1) == iso3 and to_iso3(iso1.upper()) == iso3
    assert to_iso3(iso3) == iso3
    assert to_iso1(iso3) == iso1 and to_iso1(iso1) == iso1


def test_three_letter_codes_stay_as_given():
    # a macrolanguage member is not replaced by its macrolanguage, and a language without a
    # two-letter code has no ISO 639-1 form
    assert to_iso3("swh") == "swh" and to_iso1("swh") is None
    assert to_iso3("ckb") == "ckb" and to_iso1("ckb") is None and to_iso1("ary") is None


@pytest.mark.parametrize(
    "code, nllb",
    [
        ("ckb", "ckb_Arab"),
        ("uig", "uig_Arab"),
        ("ug", "uig_Arab"),
        ("ary", "ary_Arab"),
        ("sd", "snd_Arab"),
        ("si", "sin_Sinh"),
        ("ti", "tir_Ethi"),
        ("gd", "gla_Latn"),
        ("fy", "fry_Latn"),
        ("yi", "ydd_Hebr"),
        ("qu", "quy_Latn"),  # NLLB's members of the macrolanguages
        ("sw", "swh_Latn"),
        ("ar", "arb_Arab"),
        ("fa", "pes_Arab"),
        ("zh", "zho_Hans"),
        ("ko", "kor_Hang"),  # NLLB's script, not CLDR's "Kore"
        ("ru", "rus_Cyrl"),
        ("hi", "hin_Deva"),
        ("ja", "jpn_Jpan"),
        ("am", "amh_Ethi"),
        ("es", "spa_Latn"),
    ],
)
def test_nllb_codes(code, nllb):
    assert nllb_code(code) == nllb


def test_scripts_come_from_cldr():
    assert [script_of(c) for c in ("ckb", "ug", "sr", "he", "th")] == ["Arab", "Arab", "Cyrl", "Hebr", "Thai"]


@pytest.mark.parametrize("bad", ["xx", "qq", "", "e1", "spanish"])
def test_unknown_codes_are_one_line_user_errors(bad):
    with pytest.raises(UserError, match=f"unknown .*code {bad!r}") as error:
        to_iso3(bad)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError):
        nllb_code(bad)


def test_nllb_code_checked_against_the_model():
    assert nllb_code("hau_Latn") == "hau_Latn"
    assert nllb_code("ckb", known=["ckb_Arab", "eng_Latn"]) == "ckb_Arab"
    with pytest.raises(UserError, match="close codes: \\['ckb_Arab'\\]"):
        nllb_code("ckb_Latn", known=["ckb_Arab", "eng_Latn"])


def test_experiment_metadata_matches_either_code_form():
    for a, b in (("sw", "swa"), ("yo", "YOR"), ("pt", "pt-BR"), ("zh", "zh_Hant"), ("de", "deu")):
        info_a, info_b = language_info(a), language_info(b)
        assert (info_a.name, info_a.family, info_a.script) == (info_b.name, info_b.family, info_b.script)
        assert info_a.family != "unknown"
    assert language_info("swa").branch == "Bantu" and language_info("zh_Hant").script == "Han"
    assert language_info("???").family == "unknown"
