"""Span projection algorithms: hand-worked examples, then properties on random sentences and scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataset_builders.schemes import spans_to_tags, tags_to_spans, validate_iob2
from projection.candidate_matching import project_candidates
from projection.candidates import CandidateBatch, is_punctuation, ner_candidates, ngram_candidates
from projection.heuristic import project_heuristic
from projection.matching import SOLVERS, match
from projection.scores import (
    AlignedBatch,
    EntityCandidatePairs,
    alignment_scores,
    chrf,
    ner_scores,
    score_matrices,
    validate_batch,
)


def ent(start, end, label="PER"):
    return {"start": start, "end": end, "label": label}


def heuristic_one(entities, n_src, tgt, alignment, **kw):
    out = project_heuristic([entities], [n_src], [tgt], [alignment], **kw)
    return out.spans[0], out.tags[0], out.stats[0]


def candidates_one(entities, n_src, tgt, alignment, **kw):
    out = project_candidates([entities], [n_src], [tgt], [alignment], **kw)
    return out.spans[0], out.tags[0], out.stats[0]


# ---------------------------------------------------------------- heuristic, by hand


def test_heuristic_multiword_entity_reordered():
    # the European Parliament adopted -> el Parlamento Europeo aprobó
    spans, tags, stats = heuristic_one(
        [ent(1, 3, "ORG")], 4, ["el", "Parlamento", "Europeo", "aprobó"], [(0, 0), (1, 2), (2, 1), (3, 3)]
    )
    assert spans == [ent(1, 3, "ORG")]
    assert tags == ["O", "B-ORG", "I-ORG", "O"]
    assert stats == {"entities": 1, "projected": 1, "dropped": 0}


def test_heuristic_merges_a_gap_of_one_but_not_of_two():
    tgt = ["a", "b", "c", "d", "e"]
    spans, _, _ = heuristic_one([ent(0, 1)], 1, tgt, [(0, 0), (0, 2)])
    assert spans == [ent(0, 3)]  # gap word 1 is filled
    spans, _, stats = heuristic_one([ent(0, 1)], 1, tgt, [(0, 0), (0, 3)])
    assert spans == [ent(0, 1), ent(3, 4)]  # two runs, each kept: the entity occurs twice
    assert stats == {"entities": 1, "projected": 1, "dropped": 0}
    spans, _, _ = heuristic_one([ent(0, 1)], 1, tgt, [(0, 0), (0, 2)], merge_distance=0)
    assert spans == [ent(0, 1), ent(2, 3)]
    # a 3-word entity aligned across a gap of 2: two 1-word runs, 1/3 each, both too short
    spans, _, stats = heuristic_one([ent(0, 3)], 3, tgt, [(0, 0), (2, 3)])
    assert spans == [] and stats == {"entities": 1, "projected": 0, "dropped": 1}


def test_heuristic_excludes_punctuation_only_target_words():
    tgt = ["Smith", ",", "dijo", "«", "Ana", "-", "Lopez"]
    # "Smith" is also aligned to the comma: the comma is not part of the projection
    spans, _, _ = heuristic_one([ent(0, 1)], 2, tgt, [(0, 0), (0, 1), (1, 2)])
    assert spans == [ent(0, 1)]
    # punctuation inside a merged gap stays inside the span
    spans, _, _ = heuristic_one([ent(0, 2)], 2, tgt, [(0, 3), (0, 4), (1, 6)])
    assert spans == [ent(4, 7)]
    assert is_punctuation("«") and is_punctuation("--") and not is_punctuation("U.S.") and not is_punctuation("€")


def test_heuristic_length_ratio_is_strict():
    tgt = list("abcdef")
    five_to_four = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 3)]
    spans, _, stats = heuristic_one([ent(0, 5, "ORG")], 5, tgt, five_to_four)
    assert spans == [] and stats["dropped"] == 1  # 4 / 5 = 0.8 does not exceed 0.8
    spans, _, _ = heuristic_one([ent(0, 5, "ORG")], 5, tgt, five_to_four, length_ratio=0.79)
    assert spans == [ent(0, 4, "ORG")]
    spans, _, _ = heuristic_one([ent(0, 5, "ORG")], 5, tgt, [(k, k) for k in range(5)])
    assert spans == [ent(0, 5, "ORG")]


def test_heuristic_overlaps_keep_the_longer_then_the_earlier_entity():
    tgt = ["w0", "w1", "w2", "w3"]
    # entity 0 (1 word) -> [2, 3); entity 1 (2 words) -> [2, 4): the longer run wins
    spans, tags, stats = heuristic_one([ent(0, 1, "LOC"), ent(1, 3, "ORG")], 3, tgt, [(0, 2), (1, 2), (2, 3)])
    assert spans == [ent(2, 4, "ORG")]
    validate_iob2(tags)
    assert stats == {"entities": 2, "projected": 1, "dropped": 1}
    # equal lengths: the earlier source entity wins
    spans, _, _ = heuristic_one([ent(0, 1, "LOC"), ent(1, 2, "ORG")], 2, tgt, [(0, 1), (1, 1)])
    assert spans == [ent(1, 2, "LOC")]


# ---------------------------------------------------------------- candidates and scores, by hand


def test_ngram_candidates_skip_marks_and_trim_punctuation():
    batch = ngram_candidates([["¿", "Viene", "Ana", "?"], ["la", "UE", ","]], max_ngram=2)
    pairs = list(zip(batch.start.tolist(), batch.end.tolist()))
    assert batch.offsets.tolist() == [0, 3, 6]
    assert pairs[:3] == [(1, 2), (1, 3), (2, 3)]  # nothing with ¿ or ?
    assert pairs[3:] == [(0, 1), (0, 2), (1, 2)]  # not "UE ," nor ","
    untrimmed = ngram_candidates([["la", "UE", ","]], max_ngram=3, trim_punctuation=False)
    assert len(untrimmed.start) == 6  # 3 + 2 + 1


def test_ner_candidates_from_tags_or_spans():
    batch = ner_candidates([["B-PER", "I-PER", "O", "I-LOC"], [ent(2, 3), ent(0, 1), ent(0, 1)], []])
    assert batch.start.tolist() == [0, 3, 0, 2] and batch.end.tolist() == [2, 4, 1, 3]
    assert batch.offsets.tolist() == [0, 2, 4, 4]


def test_alignment_score_by_hand():
    # entity [0, 2) vs candidate [1, 3): links (0,1) (1,2) inside, (1,5) outside -> a = 2
    batch = AlignedBatch.from_lists([[ent(0, 2)]], [3], [list("abcdef")], [[(0, 1), (1, 2), (1, 5), (2, 2)]])
    cands = CandidateBatch(np.array([1, 0, 5]), np.array([3, 1, 6]), np.array([0, 3]))
    pairs = EntityCandidatePairs.all_pairs(batch, cands)
    assert alignment_scores(batch, cands, pairs).tolist() == pytest.approx([2 * 2 / 4, 0.0, 2 * 1 / 3])
    # a duplicated link counts once
    again = AlignedBatch.from_lists([[ent(0, 2)]], [3], [list("abcdef")], [[(0, 1), (0, 1), (1, 2)]])
    assert alignment_scores(again, cands, pairs)[0] == pytest.approx(1.0)


def test_ner_score_by_hand():
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    probs = np.array(
        [
            [0.1, 0.8, 0.0, 0.1, 0.0],
            [0.1, 0.0, 0.7, 0.0, 0.2],
            [0.6, 0.0, 0.3, 0.1, 0.0],
        ]
    )
    batch = AlignedBatch.from_lists([[ent(0, 1, "PER"), ent(1, 2, "MISC")]], [2], [["a", "b", "c"]], [[]])
    cands = CandidateBatch(np.array([0, 0, 1]), np.array([2, 3, 3]), np.array([0, 3]))
    pairs = EntityCandidatePairs.all_pairs(batch, cands)
    (matrix,) = score_matrices(batch, cands, ner_scores(batch, cands, pairs, [probs], names))
    assert matrix[0].tolist() == pytest.approx(
        [
            (0.8 + 0.7 + (1 - 0.3)) / 3,  # [0, 2): B at 0, I at 1, no I at 2
            (0.8 + 0.7 + 0.3 + 1.0) / 4,  # [0, 3): ends the sentence
            (0.0 + 0.3 + 1.0) / 3,
        ]
    )
    assert matrix[1].tolist() == [0.0, 0.0, 0.0]  # the model has no MISC


def test_chrf_by_hand():
    assert chrf("Parlamento Europeo", "parlamento  europeo") == 1.0
    assert chrf("abc", "xyz") == 0.0 and chrf("", "abc") == 0.0
    # "abc" vs "ab": order 1 F = 2 (2/3)(1) / (5/3) = 0.8, order 2 F = 2/3, order 3 absent from "ab"
    assert chrf("abc", "ab") == pytest.approx((0.8 + 2 / 3) / 2)


def test_translation_score_picks_the_translated_entity():
    tgt = ["El", "Consejo", "y", "la", "Comisión", "Europea"]
    # no alignment at all: only the translation score can find the entity
    spans, _, _ = candidates_one(
        [ent(1, 3, "ORG")],
        4,
        tgt,
        [],
        weights={"translation": 1.0},
        entity_translations=[["Comisión Europea"]],
    )
    assert spans == [ent(4, 6, "ORG")]


def test_candidate_matching_with_ner_candidates_and_fusion():
    tgt = ["Ana", "López", "visita", "Lima"]
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    probs = np.array([[0, 0.9, 0, 0.1, 0], [0, 0, 0.9, 0, 0.1], [1, 0, 0, 0, 0], [0, 0.1, 0, 0.9, 0]])
    # the alignment misses "López"; the NER model's candidate span covers it
    out = project_candidates(
        [[ent(0, 2, "PER"), ent(3, 4, "LOC")]],
        [4],
        [tgt],
        [[(0, 0), (3, 3)]],
        candidates=ner_candidates([["B-PER", "I-PER", "O", "B-LOC"]]),
        weights={"alignment": 1.0, "ner": 1.0},
        ner_probs=[probs],
        label_names=names,
    )
    assert out.spans[0] == [ent(0, 2, "PER"), ent(3, 4, "LOC")]


def test_candidate_matching_by_hand_all_solvers():
    # the European Parliament and Mr Prodi -> el Parlamento Europeo y el señor Prodi
    tgt = ["el", "Parlamento", "Europeo", "y", "el", "señor", "Prodi"]
    alignment = [(0, 0), (1, 2), (2, 1), (3, 3), (4, 5), (5, 6)]
    for solver in SOLVERS:
        spans, tags, stats = candidates_one([ent(1, 3, "ORG"), ent(5, 6, "PER")], 6, tgt, alignment, solver=solver)
        assert spans == [ent(1, 3, "ORG"), ent(6, 7, "PER")], solver
        assert tags == ["O", "B-ORG", "I-ORG", "O", "O", "O", "B-PER"]
        assert stats == {"entities": 2, "projected": 2, "dropped": 0}


# ---------------------------------------------------------------- solvers, by hand


def test_greedy_can_be_beaten_by_ilp():
    # spans: c0 = [0, 2), c1 = [0, 1), c2 = [1, 2)
    scores = np.array([[1.0, 0.6, 0.0], [0.0, 0.0, 0.9]])
    starts, ends = [0, 0, 1], [2, 1, 2]
    assert match(scores, starts, ends, "greedy") == [(0, 0)]
    assert match(scores, starts, ends, "ilp") == [(0, 1), (1, 2)]
    # bipartite matches (0, c0) and (1, c2), which overlap; c0 wins and nothing is left for entity 1
    assert match(scores, starts, ends, "bipartite") == [(0, 0)]


def test_bipartite_can_beat_greedy():
    # c0 = [0, 1), c1 = [2, 3): entity 1 only fits c0
    scores = np.array([[1.0, 0.9], [0.95, 0.0]])
    assert match(scores, [0, 2], [1, 3], "greedy") == [(0, 0)]
    assert match(scores, [0, 2], [1, 3], "bipartite") == [(0, 1), (1, 0)]
    assert match(scores, [0, 2], [1, 3], "ilp") == [(0, 1), (1, 0)]


def test_greedy_ties_prefer_earlier_entity_then_earlier_then_shorter_span():
    assert match(np.array([[0.5], [0.5]]), [0], [1], "greedy") == [(0, 0)]
    assert match(np.array([[0.5, 0.5, 0.5]]), [3, 1, 1], [4, 3, 2], "greedy") == [(0, 2)]


# ---------------------------------------------------------------- bad input


def test_bad_rows_raise_with_row_and_item_or_are_reported():
    entities = [[ent(0, 1)], [ent(1, 4)], [ent(0, 1)], [ent(0, 1)]]
    lengths = [2, 3, 2, 2]
    tgt = [["a", "b"]] * 4
    alignments = [[(0, 0)], [(0, 0)], [(0, 2)], [(-1, 0)]]
    with pytest.raises(ValueError, match=r"row 1 .*'start': 1, 'end': 4"):
        project_heuristic(entities, lengths, tgt, alignments)
    with pytest.raises(ValueError, match=r"row 1 .*\(0, 2\)"):  # rows 0 and 2 of the above
        project_candidates(entities[0::2], lengths[0::2], tgt[0::2], alignments[0::2])
    errors = validate_batch(entities + [[]], lengths + [2], tgt + [["a", "b"]], alignments + [[(0, 0), (1, 1, 1)]])
    assert errors[0] is None and "(0, 2)" in errors[2] and "(-1, 0)" in errors[3] and "outside" in errors[1]
    assert "(1, 1, 1) is not an (i, j) pair" in errors[4]
    with pytest.raises(ValueError, match=r"row 0 .*candidate span \[1, 3\)"):
        outside = CandidateBatch(np.array([1]), np.array([3]), np.array([0, 1]))
        project_candidates([[ent(0, 1)]], [2], [["a", "b"]], [[(0, 0)]], candidates=outside)


# ---------------------------------------------------------------- properties

WORDS = ["la", "UE", "Ana", ",", ".", "!", "-", "de", "Lima", "?"]


@st.composite
def sentences(draw):
    n_src = draw(st.integers(1, 7))
    n_tgt = draw(st.integers(1, 8))
    tag = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    src_tags = draw(st.lists(tag, min_size=n_src, max_size=n_src))
    entities = tags_to_spans(src_tags)
    tgt = draw(st.lists(st.sampled_from(WORDS), min_size=n_tgt, max_size=n_tgt))
    all_links = [(i, j) for i in range(n_src) for j in range(n_tgt)]
    alignment = draw(st.lists(st.sampled_from(all_links), max_size=12))
    return entities, n_src, tgt, alignment


def columns(rows):
    return tuple(list(c) for c in zip(*rows))


def reference_heuristic(entities, tgt, alignment, merge_distance=1, length_ratio=0.8):
    """The definition and the documented overlap rule, written the slow and obvious way."""
    runs = []
    for k, e in enumerate(entities):
        targets = sorted({j for i, j in alignment if e["start"] <= i < e["end"] and not is_punctuation(tgt[j])})
        merged = []
        for j in targets:
            if merged and j - merged[-1][1] <= merge_distance:
                merged[-1][1] = j + 1
            else:
                merged.append([j, j + 1])
        runs += [(k, b, f) for b, f in merged if (f - b) / (e["end"] - e["start"]) > length_ratio]
    kept = []
    for k, b, f in sorted(runs, key=lambda r: (r[1] - r[2], r[0], r[1])):  # longest, earliest entity, earliest
        if all(f <= b2 or f2 <= b for _, b2, f2 in kept):
            kept.append((k, b, f))
    return [{"start": b, "end": f, "label": entities[k]["label"]} for k, b, f in sorted(kept, key=lambda r: r[1])]


def assert_valid(result, tgt_lengths, n_entities):
    for spans, tags, stats, length, n in zip(result.spans, result.tags, result.stats, tgt_lengths, n_entities):
        validate_iob2(tags)
        assert len(tags) == length
        assert all(0 <= s["start"] < s["end"] <= length for s in spans)
        assert tags_to_spans(tags) == spans and spans_to_tags(spans, length) == tags
        assert stats["entities"] == n and stats["projected"] + stats["dropped"] == n
        assert 0 <= stats["projected"] <= n


@settings(max_examples=100, deadline=None)
@given(st.lists(sentences(), min_size=1, max_size=6), st.sampled_from(sorted(SOLVERS)))
def test_projection_outputs_are_valid_and_batching_changes_nothing(rows, solver):
    entities, n_src, tgt, alignment = columns(rows)
    lengths, counts = [len(t) for t in tgt], [len(e) for e in entities]
    rng = np.random.default_rng(len(rows))
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    probs = [rng.dirichlet(np.ones(len(names)), size=n) for n in lengths]
    translations = [[" ".join(rng.choice(WORDS, size=2)) for _ in e] for e in entities]
    fused = dict(
        weights={"alignment": 1.0, "ner": 0.5, "translation": 0.25},
        ner_probs=probs,
        label_names=names,
        entity_translations=translations,
    )
    runs = [
        (project_heuristic, {}),
        (project_candidates, {"solver": solver}),
        (project_candidates, {"solver": solver, **fused}),
    ]
    for project, kw in runs:
        batched = project(entities, n_src, tgt, alignment, **kw)
        assert_valid(batched, lengths, counts)
        for k in range(len(rows)):
            one = {key: [kw[key][k]] for key in ("ner_probs", "entity_translations") if key in kw}
            alone = project([entities[k]], [n_src[k]], [tgt[k]], [alignment[k]], **{**kw, **one})
            assert (alone.spans[0], alone.tags[0], alone.stats[0]) == (
                batched.spans[k],
                batched.tags[k],
                batched.stats[k],
            )


@settings(max_examples=300, deadline=None)
@given(sentences(), st.integers(0, 2), st.sampled_from([0.5, 0.8, 1.0]))
def test_heuristic_matches_the_reference_definition(row, merge_distance, length_ratio):
    entities, n_src, tgt, alignment = row
    kw = dict(merge_distance=merge_distance, length_ratio=length_ratio)
    spans, _, stats = heuristic_one(entities, n_src, tgt, alignment, **kw)
    assert spans == reference_heuristic(entities, tgt, alignment, **kw)


@settings(max_examples=150, deadline=None)
@given(sentences(), st.integers(1, 4))
def test_alignment_scores_match_direct_counts(row, max_ngram):
    entities, n_src, tgt, alignment = row
    batch = AlignedBatch.from_lists([entities], [n_src], [tgt], [alignment])
    cands = ngram_candidates([tgt], max_ngram=max_ngram, trim_punctuation=False)
    pairs = EntityCandidatePairs.all_pairs(batch, cands)
    (matrix,) = score_matrices(batch, cands, alignment_scores(batch, cands, pairs))
    links = set(alignment)
    for r, e in enumerate(entities):
        for c, (b, f) in enumerate(zip(cands.start.tolist(), cands.end.tolist())):
            a = sum(1 for i, j in links if e["start"] <= i < e["end"] and b <= j < f)
            assert matrix[r, c] == pytest.approx(2 * a / (e["end"] - e["start"] + f - b))


@st.composite
def matching_problems(draw):
    n_e = draw(st.integers(1, 3))
    n_words = draw(st.integers(1, 5))
    span = st.tuples(st.integers(0, n_words - 1), st.integers(1, 3)).map(lambda t: (t[0], min(sum(t), n_words)))
    spans = draw(st.lists(span, min_size=1, max_size=6, unique=True))
    values = st.one_of(st.just(0.0), st.sampled_from([0.5, 1.0]), st.floats(0.01, 2.0))  # ties and zeros too
    row = st.lists(values, min_size=len(spans), max_size=len(spans))
    scores = np.array(draw(st.lists(row, min_size=n_e, max_size=n_e)))
    return scores, [b for b, _ in spans], [f for _, f in spans]


def brute_force(scores, starts, ends):
    n_e, n_c = scores.shape
    best = 0.0
    for choice in itertools.product([None, *range(n_c)], repeat=n_e):
        chosen = [(e, c) for e, c in enumerate(choice) if c is not None]
        if any(scores[e, c] <= 0 for e, c in chosen):
            continue
        pairs = itertools.combinations(chosen, 2)
        if any(starts[c1] < ends[c2] and starts[c2] < ends[c1] for (_, c1), (_, c2) in pairs):
            continue
        best = max(best, sum(scores[e, c] for e, c in chosen))
    return best


@settings(max_examples=400, deadline=None)
@given(matching_problems())
def test_solvers_are_feasible_and_ilp_is_optimal(problem):
    scores, starts, ends = problem
    totals = {}
    for solver in SOLVERS:
        chosen = match(scores, starts, ends, solver)
        entities = [e for e, _ in chosen]
        assert len(entities) == len(set(entities)), solver
        for (_, c1), (_, c2) in itertools.combinations(chosen, 2):
            assert starts[c1] >= ends[c2] or starts[c2] >= ends[c1], solver
        assert all(scores[e, c] > 0 for e, c in chosen), solver
        totals[solver] = sum(scores[e, c] for e, c in chosen)
    assert totals["ilp"] >= totals["greedy"] - 1e-6
    assert totals["ilp"] >= totals["bipartite"] - 1e-6
    assert totals["ilp"] == pytest.approx(brute_force(scores, starts, ends), abs=1e-6)
