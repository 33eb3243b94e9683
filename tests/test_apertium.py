"""ApertiumTranslator: real eng-spa translation in batches, HTML markers, the fallback when a
batch does not split back, and the errors for what is not installed."""

import pickle
import shutil
import subprocess

import pytest

from projection.translate_apertium import ApertiumError, ApertiumTranslator, pair_name


def _installed_pairs():
    if shutil.which("apertium") is None:
        return []
    return subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=False).stdout.split()


needs_eng_spa = pytest.mark.skipif(
    "eng-spa" not in _installed_pairs(),
    reason="Apertium eng-spa is not installed (apt-get install apertium apertium-eng-spa)",
)


def test_pair_names():
    assert pair_name("eng-spa") == pair_name("en-es") == pair_name(("en", "es")) == "eng-spa"
    assert pair_name(("ca", "it")) == "cat-ita"
    assert pair_name("spa-eng_US") == "spa-eng_US"
    with pytest.raises(ValueError, match="'english' must look like"):
        pair_name("english")


@needs_eng_spa
def test_plain_batch_keeps_count_and_order():
    translator = ApertiumTranslator(("en", "es"), batch_size=3)
    texts = [
        "The cat eats.",
        "",
        "I live in New York.",
        "   ",
        "the big",  # no full stop: must not merge with the next sentence
        "cat eats",
        "first line\n\nsecond line",  # a blank line inside a text is not a separator
        "Hello\n",
    ]
    out = translator.translate(texts)
    assert len(out) == len(texts)
    assert out[0] == "El gato come."
    assert out[1] == out[3] == ""
    assert "Nueva York" in out[2]
    assert out[4] == "El grande" and out[5] == "El gato come"
    assert "\n" not in out[6] and out[6]
    assert out[7].lower().startswith("hola")
    assert translator.translate([]) == []


@needs_eng_spa
def test_unknown_word_marks():
    assert ApertiumTranslator("eng-spa").translate(["The zorblax eats."]) == ["El zorblax come."]
    assert ApertiumTranslator("eng-spa", mark_unknown=True).translate(["The zorblax eats."]) == ["El *zorblax come."]


@needs_eng_spa
def test_html_markers_are_kept():
    translator = ApertiumTranslator("en-es", mode="html")
    texts = [
        "I met <b>John</b> in <b>Paris</b>.",
        "The <b>Bank of England</b> lowered the <b>President of France</b>'s pay",
        "",
        "AT&T <p>sells</p> x < y & z",  # text that looks like markup is escaped, not a separator
        "No markers here.",
    ]
    out = translator.translate(texts)
    assert len(out) == len(texts)
    assert "<b>París</b>" in out[0] and out[0].count("<b>") == out[0].count("</b>") == 2
    assert "<b>Banco de Inglaterra</b>" in out[1]
    # a reordered entity can come back in pieces: every piece is still marked
    assert out[1].count("<b>") == out[1].count("</b>") >= 2 and "Francia</b>" in out[1]
    assert out[2] == ""
    assert "AT&T" in out[3] and "<p>" in out[3] and "x < y & z" in out[3]
    assert "<" not in out[4]

    marked = 'The <b id="e0">Bank of England</b> cut the <b id="e1">President of France</b>\'s pay'
    with_ids = translator.translate([marked])
    assert '<b id="e0">Banco de Inglaterra</b>' in with_ids[0] and with_ids[0].count('<b id="e1">') >= 2

    ent = ApertiumTranslator("en-es", mode="html", marker_tag="i").translate(["I met <i>John</i> and <b>Ann</b>."])[0]
    assert "<i>John</i>" in ent and "<b>" in ent  # only <i> is a marker; "<b>" is text here


@needs_eng_spa
def test_batch_that_does_not_split_back_is_retried(monkeypatch):
    translator = ApertiumTranslator("eng-spa", batch_size=10)
    texts = ["Good morning.", "The cat eats.", "The dog sleeps.", "I live in London."]
    expected = translator.translate(texts)
    assert expected[1] == "El gato come." and expected[3] == "Vivo en Londres."
    real_run = translator._run
    calls = []

    def dropping_run(text):
        calls.append(text)
        output = real_run(text)
        if "The cat eats." in text and text.count("\n\n") >= 1:  # lose a separator
            output = output.replace("\n\n", " ", 1)
        return output

    monkeypatch.setattr(translator, "_run", dropping_run)
    assert translator.translate(texts) == expected
    assert len(calls) == 5  # all four, the first half, its two sentences alone, the second half


@needs_eng_spa
def test_pickle():
    translator = ApertiumTranslator("en-es", mode="html", batch_size=7, marker_tag="span")
    clone = pickle.loads(pickle.dumps(translator))
    assert (
        clone.config
        == translator.config
        == {
            "pair": "eng-spa",
            "mode": "html",
            "batch_size": 7,
            "marker_tag": "span",
            "mark_unknown": False,
        }
    )
    assert clone.translate(["<span>London</span> is big."]) == ["<span>Londres</span> es grande."]


def test_uninstalled_pair_names_the_package():
    if shutil.which("apertium") is None:
        pytest.skip("apertium is not installed")
    with pytest.raises(ApertiumError, match=r"no 'eng-xyz' translator installed.*apt-get install apertium-eng-xyz"):
        ApertiumTranslator("eng-xyz")


def test_missing_apertium_binary(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    message = "'apertium' program is not installed.*apt-get install apertium apertium-eng-spa"
    with pytest.raises(ApertiumError, match=message):
        ApertiumTranslator(("en", "es"))


def test_invalid_settings():
    with pytest.raises(ValueError, match="unknown mode 'xml'"):
        ApertiumTranslator(mode="xml")
    with pytest.raises(ValueError, match="marker_tag"):
        ApertiumTranslator(mode="html", marker_tag="p")
    with pytest.raises(ValueError, match="batch_size"):
        ApertiumTranslator(batch_size=0)
