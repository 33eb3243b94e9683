"""Language-agnostic selection (AdvPicker): a seeded discriminator on sentence vectors, and the filter step."""

import datasets
import numpy as np
import pytest
import torch

from dataset_builders.errors import UserError
from training.selection import (
    keep_count,
    rank_target,
    select_language_agnostic,
    train_discriminator,
)


def clusters(seed=0, n=100, dim=4, moved=range(5, 15)):
    """Source around +3 on axis 0, target around -3; the target rows in ``moved`` sit in the source cluster."""
    rng = np.random.default_rng(seed)
    source, target = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    source[:, 0] += 3.0
    target[:, 0] -= 3.0
    target[list(moved), 0] += 6.0
    return source.astype(np.float32), target.astype(np.float32)


def rows(n):
    return datasets.Dataset.from_dict({"tokens": [[f"w{i}"] for i in range(n)], "row": list(range(n))})


def test_keep_count():
    assert [keep_count(0.5, 5), keep_count(0.3, 10), keep_count(1.0, 7), keep_count(0.001, 10)] == [3, 3, 7, 1]
    for bad in (0.0, -0.1, 1.5, True, "0.5"):
        with pytest.raises(UserError, match=r"ratio must be in \(0, 1\]"):
            keep_count(bad, 10)


def test_rank_target_by_hand():
    probabilities = np.array([0.2, 0.9, 0.5, 0.6, 0.9])
    assert rank_target(probabilities, "source-probability").tolist() == [1, 4, 3, 2, 0]  # ties in row order
    assert rank_target(probabilities, "uncertainty").tolist() == [2, 3, 0, 1, 4]  # |p - 0.5| = .3 .4 0 .1 .4
    with pytest.raises(UserError, match="criterion must be one of"):
        rank_target(probabilities, "entropy")


def test_discriminator_probability_grows_towards_the_source_side():
    source, target = clusters()
    line = np.zeros((5, 4), dtype=np.float32)
    line[:, 0] = [-2, -1, 0, 1, 2]
    for hidden_size in (0, 8):
        probability = train_discriminator(source, target, hidden_size=hidden_size).source_probability(line)
        assert np.all(np.diff(probability) > 0)
        assert probability[0] < 0.5 < probability[-1]


def test_selection_keeps_the_target_sentences_that_look_like_source():
    source, target = clusters()
    kept, report = select_language_agnostic(rows(100), source, target, ratio=0.05, seed=3)
    assert kept["row"] == sorted(kept["row"]) and len(kept) == 5  # original order, ceil(0.05 * 100)
    assert set(kept["row"]) <= set(range(5, 15))  # only moved rows
    assert (report["kept"], report["total"], report["ratio"]) == (5, 100, 0.05)
    assert report["discriminator_accuracy"] == pytest.approx(190 / 200, abs=0.02)  # the 10 moved rows fool it
    assert report["cutoff"] > 0.5 and report["mean_source_probability_kept"] > report["mean_source_probability_all"]
    # the uncertainty criterion keeps those nearest 0.5 instead: here none of the confidently "source" ones
    _, uncertain = select_language_agnostic(rows(100), source, target, ratio=0.05, seed=3, criterion="uncertainty")
    assert uncertain["cutoff"] < 0.5


def test_selection_is_seeded_and_leaves_the_global_rng_alone():
    source, target = clusters()
    state = torch.get_rng_state()
    first = select_language_agnostic(rows(100), source, target, ratio=0.3, seed=7, hidden_size=8)
    assert torch.equal(torch.get_rng_state(), state)
    second = select_language_agnostic(rows(100), source, target, ratio=0.3, seed=7, hidden_size=8)
    assert first[0]["row"] == second[0]["row"] and first[1] == second[1]


def test_indistinguishable_languages_give_chance_accuracy():
    rng = np.random.default_rng(0)
    same = rng.normal(size=(1000, 2)).astype(np.float32)
    _, report = select_language_agnostic(rows(500), same[:500], same[500:], ratio=0.5)
    assert report["discriminator_accuracy"] < 0.6


def test_bad_inputs_are_user_errors():
    source, target = clusters()
    with pytest.raises(UserError, match="100 target vectors for a dataset of 99 rows"):
        select_language_agnostic(rows(99), source, target, ratio=0.5)
    with pytest.raises(UserError, match="dimension 3, target vectors 4"):
        select_language_agnostic(rows(100), source[:, :3], target, ratio=0.5)
    with pytest.raises(UserError, match="ratio must be in"):
        select_language_agnostic(rows(100), source, target, ratio=0.0)
    target[0, 0] = np.nan
    with pytest.raises(UserError, match="target_vectors has NaN"):
        select_language_agnostic(rows(100), source, target, ratio=0.5)
