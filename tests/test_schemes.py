import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataset_builders.schemes import (
    CONLL,
    CONLL_TO_MASAKHANER,
    GERMEVAL_TO_CONLL,
    MASAKHANER,
    MASAKHANER_TO_CONLL,
    LabelScheme,
    TagSequenceError,
    TypeMapping,
    iob1_to_iob2,
    spans_to_tags,
    tags_to_spans,
    validate_iob2,
)

TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


def test_label_names_order():
    assert CONLL.label_names == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    assert LabelScheme.from_label_names(MASAKHANER.label_names) == LabelScheme(MASAKHANER.types)


def test_iob1_to_iob2_examples():
    # IOB1: I- starts an entity unless it follows one of the same type; B- only splits two adjacent ones.
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
        "B-ORG",
    ]


@given(st.lists(TAGS, max_size=30))
def test_iob1_to_iob2_is_valid_and_keeps_types(tags):
    out = iob1_to_iob2(tags)
    validate_iob2(out)
    assert [t[2:] for t in out] == [t[2:] for t in tags]


def test_validate_raises_with_position_and_repairs():
    with pytest.raises(TagSequenceError, match="position 2: 'I-LOC' after 'B-PER'"):
        validate_iob2(["O", "B-PER", "I-LOC"])
    with pytest.raises(TagSequenceError, match="position 0"):
        validate_iob2(["I-PER"])
    assert validate_iob2(["O", "B-PER", "I-LOC", "I-LOC"], repair=True) == ["O", "B-PER", "B-LOC", "I-LOC"]
    with pytest.raises(TagSequenceError, match="malformed tag"):
        validate_iob2(["B_PER"])


@given(st.lists(TAGS, max_size=30))
def test_repair_gives_valid_iob2_with_same_spans(tags):
    repaired = validate_iob2(tags, repair=True)
    validate_iob2(repaired)
    # A stray I- is read as the start of an entity both before and after repair.
    assert tags_to_spans(repaired) == tags_to_spans(tags)


@given(st.lists(TAGS, max_size=30))
def test_spans_round_trip(tags):
    tags = validate_iob2(tags, repair=True)
    assert spans_to_tags(tags_to_spans(tags), len(tags)) == tags


def test_spans_to_tags_rejects_overlap_and_out_of_range():
    with pytest.raises(TagSequenceError, match="overlaps"):
        spans_to_tags([{"start": 0, "end": 2, "label": "PER"}, {"start": 1, "end": 3, "label": "LOC"}], 4)
    with pytest.raises(TagSequenceError, match="outside a sentence of 2 words"):
        spans_to_tags([{"start": 1, "end": 3, "label": "PER"}], 2)


def test_type_mapping_must_be_explicit():
    with pytest.raises(ValueError, match=r"\['MISC'\].*map them explicitly"):
        TypeMapping(CONLL, MASAKHANER)
    with pytest.raises(ValueError, match="not a type"):
        TypeMapping(CONLL, MASAKHANER, {"MISC": "EVENT"})
    with pytest.raises(ValueError, match="not a type of"):
        TypeMapping(CONLL, MASAKHANER, {"DATE": None, "MISC": None})


def test_type_mapping_tags_and_ids():
    tags = ["B-MISC", "I-MISC", "B-PER", "O", "B-LOC"]
    assert CONLL_TO_MASAKHANER.map_tags(tags) == ["O", "O", "B-PER", "O", "B-LOC"]
    assert MASAKHANER_TO_CONLL.map_tags(["B-DATE", "I-DATE", "B-ORG"]) == ["O", "O", "B-ORG"]
    assert GERMEVAL_TO_CONLL.map_tags(["B-OTH", "I-OTH", "B-LOCderiv", "B-LOC"]) == ["B-MISC", "I-MISC", "O", "B-LOC"]
    table = CONLL_TO_MASAKHANER.id_table()
    src, dst = CONLL.label_names, MASAKHANER.label_names
    assert [dst[table[src.index(t)]] for t in tags] == CONLL_TO_MASAKHANER.map_tags(tags)


@given(st.lists(st.sampled_from(CONLL.label_names), max_size=30))
def test_mapping_by_ids_equals_mapping_by_spans(tags):
    tags = validate_iob2(tags, repair=True)
    table = CONLL_TO_MASAKHANER.id_table()
    by_ids = [MASAKHANER.label_names[table[CONLL.label_names.index(t)]] for t in tags]
    assert by_ids == CONLL_TO_MASAKHANER.map_tags(tags)
    validate_iob2(by_ids)
