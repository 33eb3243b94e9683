"""Neighbour-consistency denoising (CoLaDa) on a six-token corpus whose neighbours are known by construction.

Two clusters of directions: a0, a1, a2 near the x axis and b0, b1, b2 near the y axis, so with k=2
every token's neighbours are the two others of its cluster. The teacher tags a0, a1 with label 0
and a2, b0, b1, b2 with label 1: a2 is the noisy one (both its neighbours say 0).
"""

import pickle

import datasets
import numpy as np
import pytest
import torch

from dataset_builders.errors import UserError
from training.denoise import (
    DENOISED_TAGS,
    KD_WEIGHT,
    NeighbourConsistency,
    NeighbourDenoising,
    denoise,
    faiss_available,
    nearest_neighbours,
)

WORDS = ["a0", "a1", "a2", "b0", "b1", "b2"]
VECTORS = {
    "a0": [1.0, 0.0],
    "a1": [0.99, 0.1],
    "a2": [0.98, 0.2],
    "b0": [0.0, 1.0],
    "b1": [0.1, 0.99],
    "b2": [0.2, 0.98],
}
PROBS = {
    "a0": [0.9, 0.1],
    "a1": [0.8, 0.2],
    "a2": [0.4, 0.6],
    "b0": [0.1, 0.9],
    "b1": [0.2, 0.8],
    "b2": [0.3, 0.7],
}
FLAT_VECTORS = np.array([VECTORS[w] for w in WORDS])
FLAT_PROBS = np.array([PROBS[w] for w in WORDS])
ROWS = [["a0", "a1"], ["a2", "b0"], ["b1", "b2"]]


def represent(sentences):
    """A deterministic stand-in for a model's word representations."""
    return [torch.tensor([VECTORS[w] for w in words]) for words in sentences]


def corpus(rows=ROWS):
    return datasets.Dataset.from_dict(
        {
            "tokens": rows,
            "teacher_probs": [[PROBS[w] for w in words] for words in rows],
            "teacher_tags": [[int(np.argmax(PROBS[w])) for w in words] for words in rows],
        },
        features=datasets.Features(
            {
                "tokens": datasets.List(datasets.Value("string")),
                "teacher_probs": datasets.List(datasets.List(datasets.Value("float32"))),
                "teacher_tags": datasets.List(datasets.ClassLabel(names=["O", "B-LOC"])),
            }
        ),
    )


def test_neighbours_are_the_cluster_mates_never_oneself():
    found = nearest_neighbours(FLAT_VECTORS, 2, backend="exact")
    for i, row in enumerate(found):
        assert i not in row
        assert {int(j) // 3 for j in row} == {i // 3}  # the two others of its cluster
    assert list(found[0]) == [1, 2]  # a1 is closer to a0 than a2 is


def test_chunked_brute_force_equals_one_block():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8))
    whole = nearest_neighbours(vectors, 5, backend="exact")
    one_row_at_a_time = nearest_neighbours(vectors, 5, backend="exact", memory_mb=1e-9)
    np.testing.assert_array_equal(whole, one_row_at_a_time)
    sims = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) @ (
        vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ).T
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(whole, np.argsort(-sims, axis=1)[:, :5])


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is optional (pip install 'xner[faiss]')")
def test_faiss_finds_the_same_neighbours():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    np.testing.assert_array_equal(
        nearest_neighbours(vectors, 7, backend="faiss"), nearest_neighbours(vectors, 7, backend="exact")
    )


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is optional (pip install 'xner[faiss]')")
def test_faiss_never_returns_the_token_itself_even_among_duplicates():
    vectors = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 2, dtype=np.float32)
    found = nearest_neighbours(vectors, 3, backend="faiss")
    assert all(i not in row for i, row in enumerate(found))
    assert all(set(row) == set(range(4)) - {i} for i, row in enumerate(found[:4]))


def test_auto_backend_gives_the_exact_result_and_says_which_it_used():
    mapped, summary = denoise(corpus(), represent, config=NeighbourDenoising(k=2, backend="auto"))
    assert summary["backend_used"] == ("faiss" if faiss_available() else "exact")
    assert mapped[KD_WEIGHT] == [[0.5, 0.5], [0.0, 1.0], [1.0, 1.0]]


def test_hard_votes_by_hand():
    votes = NeighbourDenoising(k=2, backend="exact").votes_for(FLAT_VECTORS, FLAT_PROBS)
    np.testing.assert_array_equal(votes.tags, [0, 0, 1, 1, 1, 1])
    # a0: neighbours a1 (0), a2 (1) -> 1/2; a2: a0, a1 both 0 -> 0; the b's agree fully
    np.testing.assert_allclose(votes.weights, [0.5, 0.5, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(votes.majority, [0, 0, 0, 1, 1, 1])  # a0, a1: a 1-1 tie keeps their own tag
    np.testing.assert_array_equal(votes.denoised, votes.tags)  # reweight mode changes no tag


def test_soft_votes_by_hand():
    votes = NeighbourDenoising(k=2, votes="soft", backend="exact").votes_for(FLAT_VECTORS, FLAT_PROBS)
    # mean neighbour probability of the token's own tag
    # (a2's tag is 1: its neighbours a1, a0 give it 0.2 and 0.1)
    expected = [(0.8 + 0.4) / 2, (0.9 + 0.4) / 2, (0.2 + 0.1) / 2, (0.8 + 0.7) / 2, (0.9 + 0.7) / 2, (0.8 + 0.9) / 2]
    np.testing.assert_allclose(votes.weights, expected, rtol=1e-6)


def test_relabel_replaces_weakly_supported_tags_by_the_majority():
    votes = NeighbourDenoising(k=2, mode="relabel", threshold=0.5, backend="exact").votes_for(FLAT_VECTORS, FLAT_PROBS)
    np.testing.assert_array_equal(votes.denoised, [0, 0, 0, 1, 1, 1])  # a2: 1 -> 0
    np.testing.assert_allclose(votes.weights, [0.5, 0.5, 1.0, 1.0, 1.0, 1.0])  # support of the tag kept
    # below a 0.6 threshold a0 and a1 (support 0.5) are candidates too, but the tie keeps their tag
    strict = NeighbourDenoising(k=2, mode="relabel", threshold=0.6, backend="exact").votes_for(FLAT_VECTORS, FLAT_PROBS)
    np.testing.assert_array_equal(strict.denoised, [0, 0, 0, 1, 1, 1])


def test_k_is_capped_by_the_corpus_and_a_lone_token_keeps_weight_one():
    votes = NeighbourDenoising(k=10, backend="exact").votes_for(FLAT_VECTORS[:3], FLAT_PROBS[:3])
    assert votes.k == 2
    lone = NeighbourDenoising(k=3).votes_for(FLAT_VECTORS[:1], FLAT_PROBS[:1])
    assert (lone.k, lone.weights.tolist()) == (0, [1.0])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"k": 0}, "k must be a positive integer"),
        ({"k": 2.5}, "k must be a positive integer"),
        ({"mode": "drop"}, "mode must be one of"),
        ({"threshold": 1.5}, r"threshold must be in \[0, 1\]"),
        ({"votes": "mean"}, "votes must be one of"),
        ({"backend": "annoy"}, "backend must be one of"),
        ({"memory_mb": 0}, "memory_mb must be > 0"),
    ],
)
def test_bad_parameters_are_user_errors(params, message):
    with pytest.raises(UserError, match=message):
        NeighbourDenoising(**params)


def test_bad_inputs_are_user_errors():
    with pytest.raises(UserError, match="k must be in"):
        nearest_neighbours(FLAT_VECTORS, 6)
    with pytest.raises(UserError, match="same tokens"):
        NeighbourDenoising(k=2).votes_for(FLAT_VECTORS, FLAT_PROBS[:5])


def test_map_transform_adds_word_level_weights_and_a_summary():
    mapped, summary = denoise(corpus(), represent, config=NeighbourDenoising(k=2, backend="exact"))
    assert mapped[KD_WEIGHT] == [[0.5, 0.5], [0.0, 1.0], [1.0, 1.0]]
    assert DENOISED_TAGS not in mapped.column_names
    assert summary["tokens"] == 6 and summary["k_used"] == 2 and summary["backend_used"] == "exact"
    assert summary["mean_weight"] == pytest.approx(4 / 6)
    assert (summary["disagreeing"], summary["low_support"], summary["relabelled"]) == (1, 1, 0)


def test_relabel_mode_adds_denoised_tags_named_like_the_teacher_tags():
    config = NeighbourDenoising(k=2, mode="relabel", backend="exact")
    mapped, summary = denoise(corpus(), represent, config=config, batch_size=2, map_batch_size=2)
    assert mapped[DENOISED_TAGS] == [[0, 0], [0, 1], [1, 1]]
    assert mapped.features[DENOISED_TAGS].feature.names == ["O", "B-LOC"]
    assert mapped[KD_WEIGHT] == [[0.5, 0.5], [1.0, 1.0], [1.0, 1.0]]
    assert summary["relabelled"] == 1 and summary["relabelled_share"] == pytest.approx(1 / 6)


def test_given_representations_equal_the_callable_and_the_fingerprint_follows_the_result():
    config = NeighbourDenoising(k=2, backend="exact")
    by_callable, _ = denoise(corpus(), represent, config=config)
    per_row = [np.array([VECTORS[w] for w in words]) for words in ROWS]
    by_rows, _ = denoise(corpus(), representations=per_row, config=config)
    by_array, _ = denoise(corpus(), representations=FLAT_VECTORS, config=config)
    assert by_callable[KD_WEIGHT] == by_rows[KD_WEIGHT] == by_array[KD_WEIGHT]
    # same votes -> same map fingerprint (cache hit), whatever produced the representations
    assert by_callable._fingerprint == by_rows._fingerprint
    flipped = FLAT_VECTORS[:, ::-1].copy()  # a different geometry gives a different result and fingerprint
    other, _ = denoise(corpus(), representations=flipped, config=NeighbourDenoising(k=1, backend="exact"))
    assert other._fingerprint != by_callable._fingerprint


def test_fitted_transform_pickles_without_the_callable():
    transform = NeighbourConsistency(lambda sentences: represent(sentences), NeighbourDenoising(k=2, backend="exact"))
    transform.fit(corpus())
    clone = pickle.loads(pickle.dumps(transform))
    batch = corpus()[:3]
    assert clone(batch, [0, 1, 2]) == transform(batch, [0, 1, 2])


def test_mapping_another_dataset_than_the_fitted_one_names_the_row():
    transform = NeighbourConsistency(represent, NeighbourDenoising(k=2, backend="exact"))
    with pytest.raises(RuntimeError, match="must be fitted"):
        transform(corpus()[:1], [0])
    transform.fit(corpus())
    reordered = corpus([["a0"], ["a1", "a2"], ["b0", "b1", "b2"]])
    with pytest.raises(UserError, match="row 0: 1 words but 2 when fitted"):
        reordered.map(transform, batched=True, with_indices=True)


def test_representations_of_the_wrong_length_name_the_row():
    with pytest.raises(UserError, match=r"row 1: representations of shape \(1, 2\) for 2 words"):
        denoise(
            corpus(),
            lambda sentences: [torch.zeros(1, 2) if s[0] == "a2" else torch.zeros(len(s), 2) for s in sentences],
        )
    with pytest.raises(UserError, match="needs a 'tokens' column"):
        denoise(corpus().remove_columns("tokens"), represent)


def test_kd_weight_reaches_the_loss_through_the_student_features(tmp_path):
    """The wiring distill will use: word-level kd_weight -> head sub-tokens (TokenAligner) -> batch -> strategy."""
    from transformers import AutoTokenizer

    from tests.tiny_models import build_tiny_bert
    from training.collate import TokenCollator
    from training.features import TokenAligner
    from training.strategies import SoftMSE

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_bert(str(tmp_path / "m"), [" ".join(WORDS)] * 4))
    mapped, _ = denoise(corpus(), represent, config=NeighbourDenoising(k=2, backend="exact"))
    aligner = TokenAligner(tokenizer, label_column=None, word_columns={"teacher_probs": [0.0, 0.0], KD_WEIGHT: 0.0})

    def loss_of(dataset, with_weight=True):
        rows = aligner(dataset[:], list(range(len(dataset))))
        batch = TokenCollator(tokenizer.pad_token_id)([dict(zip(rows, values)) for values in zip(*rows.values())])
        assert batch[KD_WEIGHT][batch["word_heads"].bool()].tolist() == [0.5, 0.5, 0.0, 1.0, 1.0, 1.0]
        if not with_weight:
            del batch[KD_WEIGHT]
        logits = torch.linspace(-1, 1, batch["input_ids"].numel() * 2).reshape(*batch["input_ids"].shape, 2)
        return SoftMSE()(logits, batch).item()

    # a2 has weight 0: changing its teacher distribution changes nothing, unless the weights are ignored
    changed = mapped.map(
        lambda row: {
            "teacher_probs": [[1.0, 0.0] if w == "a2" else p for w, p in zip(row["tokens"], row["teacher_probs"])]
        }
    )
    assert loss_of(changed) == pytest.approx(loss_of(mapped), rel=1e-6)
    assert loss_of(changed, with_weight=False) != pytest.approx(loss_of(mapped, with_weight=False), rel=1e-3)
