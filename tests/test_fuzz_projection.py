"""Property-based tests (issue 13): the readers and every projection transform, fed arbitrary
strings, spans and link lists, either give valid output (IOB2 tags, one per word) or fail cleanly
(a ``UserError`` naming the file or row, or a flagged row) -- never an uncaught exception.

Example counts are modest: the suite runs on two cores.
"""

from __future__ import annotations

import os
import tempfile

import datasets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataset_builders import CONLL, read_conll
from dataset_builders.errors import UserError
from dataset_builders.schemes import validate_iob2
from projection.backtranslation import Backtranslate
from projection.markers import ISSUES, mark_entities, parse_marked
from projection.scores import AlignedBatch, validate_batch
from projection.transforms import Align, Project, SourceEntities, Translate
from projection.word_split import _GRAPHEME, split_words_with_offsets

datasets.disable_progress_bars()
NAMES = CONLL.label_names
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

words = st.text(min_size=0, max_size=6)
nasty_words = st.one_of(
    words,
    st.sampled_from(
        [
            "\ufeff",
            "\u200d",
            "\u200b",
            "-DOCSTART-",
            "O",
            "B-PER",
            " ",
            "\t",
            '<b id="e0">',
            "</b>",
            "👨\u200d👩",
            "é",
            "\r",
            ".",
        ]
    ),
)
tags = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-X", "I-X", "I-", "X-PER", "B-PER ", "o", ""])
labels = st.one_of(st.sampled_from(["PER", "LOC", "ORG", "MISC"]), st.text(max_size=4))
index = st.integers(-3, 12)
pair_like = st.one_of(
    st.lists(index, min_size=2, max_size=2),
    st.lists(index, max_size=4),
    st.lists(st.integers(-(2**70), 2**70), min_size=2, max_size=2),
)


@st.composite
def conll_files(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=120))
    sep = draw(st.sampled_from([" ", "\t", "  "]))
    lines = draw(
        st.lists(
            st.one_of(
                st.tuples(nasty_words, tags).map(lambda t: f"{t[0]}{sep}{t[1]}"),
                st.sampled_from(["", "-DOCSTART- O", "# comment"]),
                nasty_words,
            ),
            max_size=8,
        )
    )
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16"])), errors="replace")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + data


@st.composite
def projection_batches(draw):
    """A batch of rows: source words, target words, entities and links, each possibly malformed."""
    n = draw(st.integers(1, 4))
    rows = {"tokens": [], "translation_tokens": [], "source_entities": [], "alignment": [], "translation_error": []}
    for _ in range(n):
        src = draw(st.lists(nasty_words, min_size=0, max_size=6))
        tgt = draw(st.lists(nasty_words, min_size=0, max_size=6))
        entities = draw(st.lists(st.fixed_dictionaries({"start": index, "end": index, "label": labels}), max_size=3))
        links = draw(st.lists(pair_like, max_size=8))
        rows["tokens"].append(src)
        rows["translation_tokens"].append(tgt)
        rows["source_entities"].append(entities)
        rows["alignment"].append(links)
        rows["translation_error"].append(draw(st.sampled_from(["", "", "", "RuntimeError: down"])))
    return rows


def assert_projected(out, batch):
    for k, (row_tags, stats) in enumerate(zip(out["projected_tags"], out["projection_stats"])):
        assert len(row_tags) == len(batch["translation_tokens"][k])
        validate_iob2([NAMES[t] for t in row_tags])
        assert stats["entities"] == len(batch["source_entities"][k])
        assert stats["projected"] + stats["dropped"] == stats["entities"]
        if stats["error"]:
            assert row_tags == [0] * len(row_tags)
        if batch.get("translation_error", [""] * (k + 1))[k]:
            assert stats["error"]


# ------------------------------------------------------------------ readers


@FUZZ
@given(
    data=conll_files(),
    sep=st.sampled_from([None, " ", "\t"]),
    scheme=st.sampled_from(["iob1", "iob2"]),
    on_invalid=st.sampled_from(["raise", "repair"]),
    given_labels=st.booleans(),
)
def test_fuzz_read_conll(data, sep, scheme, on_invalid, given_labels):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz.conll")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            dd = read_conll(
                path,
                label_names=NAMES if given_labels else None,
                separator=sep,
                tag_scheme=scheme,
                on_invalid=on_invalid,
                comment_prefix="#",
                cache_dir=os.path.join(tmp, "cache"),
            )
        except UserError as err:
            assert "fuzz.conll" in str(err)
            return
        ds = dd["train"]
        names = ds.features["ner_tags"].feature.names
        for row_tokens, row_tags in zip(ds["tokens"], ds["ner_tags"]):
            assert row_tokens and len(row_tokens) == len(row_tags)
            validate_iob2([names[t] for t in row_tags])
            assert not row_tokens[0].startswith("\ufeff")
        assert all(name == name.strip() for name in names)


# ------------------------------------------------------------------ transforms


@FUZZ
@given(st.lists(st.lists(st.integers(0, len(NAMES) - 1), max_size=8), min_size=1, max_size=4))
def test_fuzz_source_entities(tag_rows):
    out = SourceEntities(NAMES)({"ner_tags": tag_rows})
    for row, spans in zip(tag_rows, out["source_entities"]):
        previous_end = 0
        for span in spans:
            assert previous_end <= span["start"] < span["end"] <= len(row)
            assert f"B-{span['label']}" in NAMES
            previous_end = span["end"]


@FUZZ
@given(projection_batches())
def test_fuzz_alignment_validation(batch):
    lengths = [len(t) for t in batch["tokens"]]
    args = (batch["source_entities"], lengths, batch["translation_tokens"], batch["alignment"])
    errors = validate_batch(*args)
    assert len(errors) == len(lengths)
    try:
        flat = AlignedBatch.from_lists(*args)
    except ValueError as err:
        bad = [k for k, e in enumerate(errors) if e]
        assert bad and str(err).startswith(f"row {bad[0]} of the batch")
        return
    assert errors == [None] * len(lengths)
    assert ((flat.link_source >= 0) & (flat.link_source < flat.source_lengths[flat.link_sentence])).all()
    assert ((flat.link_target >= 0) & (flat.link_target < flat.target_lengths[flat.link_sentence])).all()


class FuzzAligner:
    """Returns the links it was given (whatever they are), as a buggy or hostile aligner might."""

    config = {"aligner": "fuzz"}

    def __init__(self, links):
        self.links = links

    def align(self, src, tgt):
        return self.links


@FUZZ
@given(projection_batches())
def test_fuzz_align_then_project(batch):
    align = Align(FuzzAligner(batch["alignment"]))
    try:
        aligned = align({k: v for k, v in batch.items() if k != "alignment"})
    except UserError as err:
        assert "row" in str(err) and "FuzzAligner" in str(err)
        return
    batch = {**batch, **aligned}
    for method, params in [
        ("heuristic", {}),
        ("candidates", {"solver": "greedy"}),
        ("candidates", {"solver": "ilp"}),
        ("candidates", {"solver": "bipartite", "max_ngram": 3}),
    ]:
        assert_projected(Project(NAMES, method=method, **params)(batch), batch)


@FUZZ
@given(projection_batches(), st.sampled_from(["heuristic", "greedy", "ilp", "bipartite"]))
def test_fuzz_project(batch, method):
    project = Project(NAMES) if method == "heuristic" else Project(NAMES, method="candidates", solver=method)
    assert_projected(project(batch), batch)


class FuzzTranslator:
    """Answers each text with a drawn value: any string (markers and all), None, or an exception."""

    mode = "html"
    config = {"translator": "fuzz"}

    def __init__(self, answers):
        self.answers = answers

    def translate(self, texts):
        out = []
        for k, _ in enumerate(texts):
            answer = self.answers[k % len(self.answers)]
            if answer == "raise":
                raise RuntimeError("MT failed")
            out.append(answer)
        return out


marked_text = st.lists(
    st.one_of(
        words,
        st.sampled_from(
            ['<b id="e0">', '<b id="e1">', "</b>", "<b>", "<b id=e7>", "<B ID='e0'>", "</b ", " ", ".", "<i>"]
        ),
    ),
    max_size=12,
).map("".join)


@FUZZ
@given(projection_batches(), st.lists(st.one_of(marked_text, st.none(), st.just("raise")), min_size=1, max_size=4))
def test_fuzz_backtranslate(batch, answers):
    out = Backtranslate(FuzzTranslator(answers), "es", NAMES)(batch)
    assert_projected(out, batch)
    for issues in out["backtranslation_issues"]:
        assert set(issues) == set(ISSUES) and all(v >= 0 for v in issues.values())


@FUZZ
@given(marked_text, st.lists(labels, max_size=3), st.sampled_from([None, "en", "fr", "ca", "de"]), st.integers(0, 3))
def test_fuzz_parse_marked(text, entity_labels, lang, piece_distance):
    words_out, spans, issues = parse_marked(text, entity_labels, lang, merge_distance=piece_distance)
    assert all(isinstance(w, str) and w for w in words_out)
    taken = set()
    for span in spans:
        assert 0 <= span["start"] < span["end"] <= len(words_out)
        assert span["label"] == entity_labels[span["entity"]]
        assert not taken & set(range(span["start"], span["end"]))
        taken |= set(range(span["start"], span["end"]))
    assert all(v >= 0 for v in issues.values())


@FUZZ
@given(
    st.lists(nasty_words, max_size=6),
    st.lists(st.fixed_dictionaries({"start": index, "end": index, "label": labels}), max_size=3),
)
def test_fuzz_mark_entities_round_trip(tokens, spans):
    try:
        text = mark_entities(tokens, spans)
    except ValueError as err:
        assert "entity" in str(err)
        return
    words_out, parsed, issues = parse_marked(text, [s["label"] for s in spans])
    assert all(0 <= s["start"] < s["end"] <= len(words_out) for s in parsed)
    if not any("<" in t for t in tokens):  # a word that looks like a marker is read as one (documented)
        assert issues["nested"] == issues["unbalanced"] == 0


@FUZZ
@given(
    st.lists(st.lists(nasty_words, max_size=5), min_size=1, max_size=4),
    st.lists(st.one_of(words, st.none(), st.integers(), st.just("raise")), min_size=1, max_size=4),
)
def test_fuzz_translate(rows, answers):
    class Answering:
        config = {"translator": "answering"}

        def translate(self, texts):
            return FuzzTranslator(answers).translate(texts)

    try:
        out = Translate(Answering(), target_lang="es")({"tokens": rows})
    except UserError:
        pytest.fail("a translator's bad answer must flag its row, not stop the batch")
    for text, tokens, error in zip(out["translation"], out["translation_tokens"], out["translation_error"]):
        assert isinstance(text, str) and all(isinstance(t, str) and t for t in tokens)
        if error:
            assert text == "" and tokens == []


@FUZZ
@given(
    st.text(max_size=40).map(lambda t: t.replace("x", "\u200d")), st.sampled_from([None, "en", "fr", "ca", "de", "zh"])
)
def test_fuzz_word_split_keeps_grapheme_clusters(text, lang):
    tokens = split_words_with_offsets(text, lang)
    boundaries = {m.start() for m in _GRAPHEME.finditer(text)} | {len(text)}
    previous = 0
    for word, start, end in tokens:
        assert word and text[start:end] == word and start >= previous
        previous = end
    for (_, _, end), (_, start, _) in zip(tokens, tokens[1:]):
        if end == start:  # touching tokens: the cut is between two clusters
            assert start in boundaries
