"""Back-translation (marker-based) projection: markers, same-language alignment, the transform,
and end to end with the real Apertium (skipped only where apertium is not installed)."""

import pickle
import shutil
import subprocess

import datasets
import pytest
from datasets.fingerprint import Hasher

from dataset_builders.schemes import validate_iob2
from projection.backtranslation import Backtranslate
from projection.markers import ISSUES, mark_entities, parse_marked
from projection.monolingual_align import MonolingualAligner
from projection.word_split import split_words

NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def span(start, end, label):
    return {"start": start, "end": end, "label": label}


def tags_of(row):
    return [NAMES[t] for t in row]


def no_issues(**counts):
    return {**dict.fromkeys(ISSUES, 0), **counts}


# ----------------------------------------------------------------------------- markers


def test_mark_entities_attaches_markers_to_words_not_punctuation():
    tokens = ["«", "José", "Martínez", "»", "visitó", "Nueva", "York", ",", "dijo", "la", "ONU", "."]
    text = mark_entities(tokens, [span(1, 3, "PER"), span(5, 7, "LOC"), span(10, 11, "ORG")])
    assert text == '«<b id="e0">José Martínez</b>» visitó <b id="e1">Nueva York</b>, dijo la <b id="e2">ONU</b>.'
    words, spans, issues = parse_marked(text, ["PER", "LOC", "ORG"], lang="es")
    assert words == tokens
    assert [(s["start"], s["end"], s["label"], s["entity"]) for s in spans] == [
        (1, 3, "PER", 0),
        (5, 7, "LOC", 1),
        (10, 11, "ORG", 2),
    ]
    assert issues == no_issues()


def test_mark_entities_numbers_entities_in_the_given_order():
    assert (
        mark_entities(["a", "b", "c"], [span(2, 3, "LOC"), span(0, 1, "PER")], tag="i")
        == '<i id="e1">a</i> b <i id="e0">c</i>'
    )


@pytest.mark.parametrize("spans", [[span(0, 2, "PER"), span(1, 3, "LOC")], [span(2, 5, "PER")], [span(1, 1, "PER")]])
def test_mark_entities_rejects_bad_spans(spans):
    with pytest.raises(ValueError):
        mark_entities(["a", "b", "c"], spans)


def test_parse_marked_offsets_with_diacritics_and_edge_punctuation():
    words, spans, issues = parse_marked(
        '¿Vio al <b id="e0">Señor Ñúñez</b> en <b id="e1">Bogotá.</b>', ["PER", "LOC"], "es"
    )
    assert words == ["¿", "Vio", "al", "Señor", "Ñúñez", "en", "Bogotá", "."]
    assert [(s["start"], s["end"], s["label"]) for s in spans] == [(3, 5, "PER"), (6, 7, "LOC")]  # "." left out
    assert issues == no_issues()


def test_split_pieces_close_together_are_merged():
    text = 'La casa de <b id="e0">Herrero</b> de <b id="e0">Señor</b> en <b id="e1">Londres</b>.'
    words, spans, issues = parse_marked(text, ["PER", "LOC"], "es")
    assert [(s["start"], s["end"], s["label"]) for s in spans] == [(3, 6, "PER"), (7, 8, "LOC")]
    assert issues == no_issues(split=1)


def test_split_pieces_far_apart_keep_the_longest():
    text = '<b id="e0">Banco</b> dijo ayer que el <b id="e0">Central Europeo</b> no.'
    _, spans, issues = parse_marked(text, ["ORG"], "es", merge_distance=1)
    assert [(s["start"], s["end"]) for s in spans] == [(5, 7)]
    assert issues == no_issues(partial=1)
    _, spans, issues = parse_marked(text, ["ORG"], "es", merge_distance=4)
    assert [(s["start"], s["end"]) for s in spans] == [(0, 7)]
    assert issues == no_issues(split=1)


def test_pieces_are_not_merged_across_another_entity():
    _, spans, issues = parse_marked('<b id="e0">A</b> <b id="e1">B</b> <b id="e0">C D</b>', ["PER", "LOC"])
    assert [(s["start"], s["end"], s["label"]) for s in spans] == [(1, 2, "LOC"), (2, 4, "PER")]
    assert issues == no_issues(partial=1)


def test_unbalanced_markers_drop_their_entity_and_are_counted():
    text = 'El <b id="e0">presidente visitó <b id="e1">Nueva York</b> y <b id="e2">París</b>.'
    words, spans, issues = parse_marked(text, ["PER", "LOC", "LOC"], "es")
    assert words == ["El", "presidente", "visitó", "Nueva", "York", "y", "París", "."]
    assert [(s["start"], s["end"], s["label"]) for s in spans] == [(3, 5, "LOC"), (6, 7, "LOC")]
    assert issues == no_issues(unbalanced=1)  # e0 never closes: it alone is dropped
    _, spans, issues = parse_marked('A</b> <b id="e0">B</b> <b id="e7">C</b> <b>D</b>', ["PER"])
    assert [(s["start"], s["end"]) for s in spans] == [(1, 2)]
    assert issues == no_issues(unbalanced=3)  # the stray close, the unknown id, the marker with no id


def test_nested_markers_drop_both_entities():
    _, spans, issues = parse_marked(
        '<b id="e0">Banco de <b id="e1">España</b></b> y <b id="e2">Roma</b>', ["ORG", "LOC", "LOC"]
    )
    assert [(s["start"], s["end"], s["entity"]) for s in spans] == [(4, 5, 2)]
    assert issues == no_issues(nested=2)


def test_missing_entity_is_counted():
    _, spans, issues = parse_marked('<b id="e1">París</b> y nada más', ["PER", "LOC"])
    assert [(s["start"], s["label"]) for s in spans] == [(0, "LOC")]
    assert issues == no_issues(missing=1)


def test_markers_inside_one_word_overlap():
    _, spans, issues = parse_marked('<b id="e0">Smith</b><b id="e1">son</b> went', ["PER", "ORG"])
    assert [(s["start"], s["end"], s["label"]) for s in spans] == [(0, 1, "PER")]
    assert issues == no_issues(overlap=1)


# ----------------------------------------------------------------------------- monolingual alignment


def test_identical_sentences_align_to_identity():
    words = "El Parlamento Europeo se reunió en Estrasburgo .".split()
    assert MonolingualAligner().align([words], [words]) == [[(i, i) for i in range(len(words))]]


def test_changed_words_are_aligned_by_similarity_and_case():
    m = "La presidente de la Comisión Europea habló ayer .".split()
    x = "la presidenta de la comision europea dijo ayer .".split()
    links = MonolingualAligner().align_pair(m, x)
    assert (1, 1) in links and (4, 4) in links and (5, 5) in links  # presidenta, comisión, europea
    assert all(i == j for i, j in links) and (6, 6) not in links  # habló / dijo are unrelated


def test_reordered_words_are_aligned():
    m = "Ayer el señor García visitó Madrid .".split()
    x = "El señor García visitó Madrid ayer .".split()
    links = MonolingualAligner().align_pair(m, x)
    assert sorted(links) == [(0, 5), (1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (6, 6)]
    assert MonolingualAligner(reorder=False).align_pair(m, x) == [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (6, 6)]


def test_repeated_moved_words_are_not_guessed():
    # "sí sí" is matched in place; the two moved "no" have no unique twin, so they stay unaligned
    assert MonolingualAligner().align_pair("sí sí no no".split(), "no no sí sí".split()) == [(0, 2), (1, 3)]


def test_monolingual_aligner_config_and_checks():
    aligner = pickle.loads(pickle.dumps(MonolingualAligner(threshold=0.6)))
    assert aligner.config == {"threshold": 0.6, "reorder": True}
    with pytest.raises(ValueError):
        MonolingualAligner(threshold=0)
    with pytest.raises(ValueError):
        aligner.align([["a"]], [])


# ----------------------------------------------------------------------------- the transform (canned MT)


class CannedTranslator:
    """A markup-keeping 'translator' that looks its answers up; raises on texts it does not know."""

    mode = "html"

    def __init__(self, answers):
        self.answers = dict(answers)

    @property
    def config(self):
        return {"answers": sorted(self.answers.items())}

    def translate(self, texts):
        return [self.answers[t] for t in texts]


SOURCE = [
    "John Smith lives in New York .".split(),
    "Nothing here .".split(),
    "Mr. Smith 's house is in London .".split(),
    "Paris is nice .".split(),
]
ENTITIES = [[span(0, 2, "PER"), span(4, 6, "LOC")], [], [span(0, 2, "PER"), span(6, 7, "LOC")], [span(0, 1, "LOC")]]
TARGET = [
    "Juan Smith vive en Nueva York .".split(),
    "Nada aquí .".split(),
    "La casa del señor Smith está en Londres .".split(),
    "París es bonita .".split(),
]
ANSWERS = {
    '<b id="e0">John Smith</b> lives in <b id="e1">New York</b>.': '<b id="e0">Juan Smith</b> vive en <b id="e1">Nueva York</b>.',
    '<b id="e0">Mr. Smith</b>\'s house is in <b id="e1">London</b>.': 'La casa de <b id="e0">Smith</b> de <b id="e0">señor</b> es en <b id="e1">Londres</b>.',
}  # row 3 is unknown to the translator: it must fail alone


def batch():
    return {"tokens": SOURCE, "source_entities": ENTITIES, "translation_tokens": TARGET}


def test_backtranslate_projects_through_the_marked_translation():
    out = Backtranslate(CannedTranslator(ANSWERS), "es", NAMES)(batch())
    assert tags_of(out["projected_tags"][0]) == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    assert tags_of(out["projected_tags"][1]) == ["O"] * 3
    # the merged pieces "Smith de señor" align with "señor Smith" (the moved word "señor"), a run
    # 2/3 as long as the entity: too short for the default length_ratio of 0.8
    assert tags_of(out["projected_tags"][2]) == ["O", "O", "O", "O", "O", "O", "O", "B-LOC", "O"]
    assert tags_of(out["projected_tags"][3]) == ["O"] * 4
    assert out["projection_stats"][:3] == [
        {"entities": 2, "projected": 2, "dropped": 0, "error": ""},
        {"entities": 0, "projected": 0, "dropped": 0, "error": ""},
        {"entities": 2, "projected": 1, "dropped": 1, "error": ""},
    ]
    failed = out["projection_stats"][3]
    assert (failed["entities"], failed["projected"], failed["dropped"]) == (1, 0, 1)
    assert failed["error"].startswith("back-translation failed: KeyError")
    assert out["backtranslation"][1] == "" and out["backtranslation"][0].startswith('<b id="e0">Juan')
    assert out["backtranslation_issues"][2] == no_issues(split=1)
    lenient = Backtranslate(CannedTranslator(ANSWERS), "es", NAMES, length_ratio=0.6)(batch())
    assert tags_of(lenient["projected_tags"][2]) == ["O", "O", "O", "B-PER", "I-PER", "O", "O", "B-LOC", "O"]


def test_backtranslate_warns_when_no_marker_survives(caplog):
    rows = {"tokens": [["Paris"]], "source_entities": [[span(0, 1, "LOC")]], "translation_tokens": [["París"]]}
    out = Backtranslate(CannedTranslator({'<b id="e0">Paris</b>': "&lt;b id=e0&gt;París"}), "es", NAMES)(rows)
    assert out["projection_stats"] == [{"entities": 1, "projected": 0, "dropped": 1, "error": ""}]
    assert out["backtranslation_issues"] == [no_issues(missing=1)]
    assert "id attribute" in caplog.text
    empty = {"tokens": [["Nada"]], "source_entities": [[]], "translation_tokens": [["Nothing"]]}
    assert Backtranslate(CannedTranslator({}), "es", NAMES)(empty)["projected_tags"] == [[0]]


def test_backtranslate_flags_entities_outside_their_sentence():
    rows = batch()
    rows["source_entities"] = [ENTITIES[0], [span(2, 9, "PER")], [], []]
    out = Backtranslate(CannedTranslator(ANSWERS), "es", NAMES)(rows)
    assert "not a non-empty span" in out["projection_stats"][1]["error"]
    assert out["projection_stats"][0]["projected"] == 2


def test_backtranslate_apply_and_fingerprint(hf_cache):
    ds = datasets.Dataset.from_dict({**batch(), "id": list(range(4))})
    transform = Backtranslate(CannedTranslator(ANSWERS), "es", NAMES)
    out = transform.apply(ds)
    assert out.features["projected_tags"].feature.names == NAMES
    assert out.column_names[:5] == ["tokens", "source_entities", "translation_tokens", "id", "projected_tags"]
    assert out[0]["backtranslation_issues"] == no_issues()
    same = pickle.loads(pickle.dumps(transform))
    assert Hasher.hash(same) == Hasher.hash(Backtranslate(CannedTranslator(ANSWERS), "es", NAMES))
    assert Hasher.hash(transform) != Hasher.hash(
        Backtranslate(CannedTranslator(ANSWERS), "es", NAMES, length_ratio=0.5)
    )
    assert transform.config["aligner"] == MonolingualAligner().config


def test_backtranslate_refuses_a_plain_text_translator():
    translator = CannedTranslator({})
    translator.mode = "plain"
    with pytest.raises(ValueError, match="html"):
        Backtranslate(translator, "es", NAMES)


# ----------------------------------------------------------------------------- real Apertium


def apertium_pairs() -> list[str]:
    if shutil.which("apertium") is None:
        pytest.skip("apertium is not installed (apt-get install apertium apertium-eng-spa)")
    return subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=False).stdout.split()


def marked_translator(pair):
    """Apertium in HTML mode; the test is an expected failure where ApertiumTranslator does not
    keep the markers' id attribute (its marker pattern accepts only bare tags)."""
    from projection.translate_apertium import ApertiumTranslator

    translator = ApertiumTranslator(pair, mode="html")
    _, spans, _ = parse_marked(translator.translate(['<b id="e0">John</b> sleeps.'])[0], ["PER"])
    if not spans:
        pytest.xfail("ApertiumTranslator(mode='html') escapes marker tags with attributes (<b id=...>)")
    return translator


def project_rows(translator, source, entities, target, lang):
    ds = datasets.Dataset.from_dict({"tokens": source, "source_entities": entities, "translation_tokens": target})
    return Backtranslate(translator, lang, NAMES).apply(ds)


def test_translate_train_with_real_apertium():
    """English -> Spanish; X is Apertium's plain translation of the unmarked sentence."""
    if "eng-spa" not in apertium_pairs():
        pytest.skip("apertium-eng-spa is not installed")
    from projection.translate_apertium import ApertiumTranslator

    source = ["John Smith lives in New York .".split(), "The European Parliament met in Strasbourg on Monday .".split()]
    entities = [[span(0, 2, "PER"), span(4, 6, "LOC")], [span(1, 3, "ORG"), span(5, 6, "LOC")]]
    plain = ApertiumTranslator("eng-spa").translate([" ".join(s) for s in source])
    target = [split_words(t, "es") for t in plain]
    out = project_rows(marked_translator("eng-spa"), source, entities, target, "es")
    found = [{(" ".join(t[s["start"] : s["end"]]), s["label"]) for s in _spans(row)} for t, row in zip(target, out)]
    assert ("Nueva York", "LOC") in found[0] and any(label == "PER" and "Smith" in text for text, label in found[0])
    assert ("Estrasburgo", "LOC") in found[1] and any(label == "ORG" for _, label in found[1])
    for row in out:
        validate_iob2(tags_of(row["projected_tags"]))
        assert row["projection_stats"]["error"] == "" and row["projection_stats"]["dropped"] == 0


def test_translate_test_with_real_apertium():
    """Original Spanish -> English (spa-eng) -> entities on the English -> back to the original Spanish."""
    pairs = apertium_pairs()
    if not {"eng-spa", "spa-eng"} <= set(pairs):
        pytest.skip(f"needs Apertium eng-spa and spa-eng; installed: {pairs}")
    from projection.translate_apertium import ApertiumTranslator

    original = [
        "María vive en Nueva York con Juan Pérez .".split(),
        "El Parlamento Europeo se reunió en Estrasburgo .".split(),
    ]
    english = [split_words(t) for t in ApertiumTranslator("spa-eng").translate([" ".join(s) for s in original])]
    names = {"María": "PER", "New York": "LOC", "Juan Pérez": "PER", "European Parliament": "ORG", "Strasbourg": "LOC"}
    entities = [_find(words, names) for words in english]
    out = project_rows(marked_translator("eng-spa"), english, entities, original, "es")
    assert tags_of(out[0]["projected_tags"]) == ["B-PER", "O", "O", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "O"]
    # Apertium renders "European Parliament" as "Eurocámara", which shares no word with the
    # original "Parlamento Europeo": that entity is dropped, and counted
    assert tags_of(out[1]["projected_tags"]) == ["O"] * 6 + ["B-LOC", "O"]
    assert out[1]["projection_stats"] == {"entities": 2, "projected": 1, "dropped": 1, "error": ""}


def _spans(row):
    from dataset_builders.schemes import tags_to_spans

    return tags_to_spans(tags_of(row["projected_tags"]))


def _find(words, names):
    """Spans of the given names where they occur in ``words``."""
    found = []
    for name, label in names.items():
        parts = name.split()
        for k in range(len(words) - len(parts) + 1):
            if words[k : k + len(parts)] == parts:
                found.append(span(k, k + len(parts), label))
    return sorted(found, key=lambda s: s["start"])
