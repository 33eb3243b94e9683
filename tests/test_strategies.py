"""Each distillation loss against values computed by hand (math.exp / math.log on tiny tensors)."""

import math

import numpy as np
import pytest
import torch

from dataset_builders.errors import UserError
from training.strategies import (
    STRATEGIES,
    Hard,
    HardConfident,
    MultiTeacher,
    ProjectedKD,
    SoftKL,
    SoftMSE,
    Voting,
    class_balanced_thresholds,
    from_config,
    similarity_weights,
)

# One sentence, three sub-tokens: word 1, a continuation sub-token (masked out), word 2.
LOGITS = [[-1.0, 0.5, 2.0], [5.0, -3.0, 9.0], [0.0, 2.0, 0.0]]
TEACHER = [[0.7, 0.2, 0.1], [0.0, 0.0, 0.0], [0.1, 0.8, 0.1]]
MASK = [True, False, True]
KEPT = [0, 2]  # the positions under the mask


def softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def make_batch(labels=None, teacher=TEACHER):
    batch = {"teacher_probs": torch.tensor([teacher]), "kd_mask": torch.tensor([MASK])}
    if labels is not None:
        batch["labels"] = torch.tensor([labels])
    return batch


def logits_tensor():
    return torch.tensor([LOGITS], requires_grad=True)


def hand_mse():
    return sum((q - p) ** 2 for i in KEPT for q, p in zip(softmax(LOGITS[i]), TEACHER[i])) / (len(KEPT) * 3)


def hand_kl(t):
    total = 0.0
    for i in KEPT:
        tempered = softmax([math.log(p) / t for p in TEACHER[i]])  # = p^(1/t), renormalised
        student = softmax([z / t for z in LOGITS[i]])
        total += sum(a * (math.log(a) - math.log(b)) for a, b in zip(tempered, student))
    return t * t * total / len(KEPT)


def minus_log_softmax(i, label):
    return -math.log(softmax(LOGITS[i])[label])


def check(strategy, expected, batch=None):
    logits = logits_tensor()
    loss = strategy(logits, batch if batch is not None else make_batch())
    assert loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.count_nonzero(logits.grad[0, 1]) == 0  # the masked sub-token gets no gradient
    return logits.grad


def test_soft_mse_by_hand():
    check(SoftMSE(), hand_mse())


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_soft_kl_by_hand(temperature):
    check(SoftKL(temperature=temperature), hand_kl(temperature))


def test_soft_kl_handles_exact_zero_teacher_probabilities():
    teacher = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    expected = (minus_log_softmax(0, 0) + minus_log_softmax(2, 1)) / 2  # KL to a one-hot = CE
    check(SoftKL(), expected, make_batch(teacher=teacher))


def test_hard_by_hand():
    # teacher argmax: label 0 at word 1, label 1 at word 2
    check(Hard(), (minus_log_softmax(0, 0) + minus_log_softmax(2, 1)) / 2)


def test_hard_confident_keeps_only_confident_tokens():
    check(HardConfident(threshold=0.75), minus_log_softmax(2, 1))  # 0.7 < 0.75 <= 0.8
    check(HardConfident(threshold=0.7), (minus_log_softmax(0, 0) + minus_log_softmax(2, 1)) / 2)


def test_hard_confident_with_nothing_kept_is_zero_not_nan():
    grad = check(HardConfident(threshold=0.95), 0.0)
    assert torch.count_nonzero(grad) == 0


def test_hard_confident_counts_what_it_keeps():
    strategy = HardConfident(threshold=0.75)
    check(strategy, minus_log_softmax(2, 1))
    check(strategy, minus_log_softmax(2, 1))
    assert strategy.statistics() == {"tokens": 4, "kept": 2, "kept_rate": 0.5}
    assert strategy.statistics(cumulative=False) == {"tokens": 2, "kept": 1, "kept_rate": 0.5}
    strategy.reset_statistics()
    assert strategy.statistics() == {"tokens": 0, "kept": 0, "kept_rate": None}


def test_class_balanced_thresholds_by_hand():
    confidence = np.array([0.9, 0.5, 0.7, 0.3, 0.95, 0.6], dtype=np.float32)
    predicted = np.array([0, 1, 1, 1, 0, 1])
    # label 0: {0.9, 0.95} -> the top half keeps 0.95; label 1: {0.3, 0.5, 0.6, 0.7} -> keeps 0.6, 0.7; label 2: never
    thresholds = class_balanced_thresholds(confidence, predicted, 3, keep=0.5)
    assert thresholds == pytest.approx([0.95, 0.6, 1.0])
    assert class_balanced_thresholds(confidence, predicted, 3, keep=1.0) == pytest.approx([0.9, 0.3, 1.0])


def test_hard_confident_keep_per_class_uses_each_labels_threshold():
    # the corpus: label 0 predicted with 0.7 and 0.9, label 1 with 0.8 and 0.6 -> thresholds 0.9 and 0.8
    strategy = HardConfident(keep_per_class=0.5)
    fitted = strategy.fit(np.array([0.7, 0.9, 0.8, 0.6]), np.array([0, 0, 1, 1]), ["O", "B-PER", "I-PER"])
    assert fitted == {
        "keep_per_class": 0.5,
        "thresholds": pytest.approx({"O": 0.9, "B-PER": 0.8, "I-PER": 1.0}),
        "words": 4,
        "kept": 2,
    }
    # the batch: word 1 is label 0 at 0.7 (< 0.9, dropped), word 2 is label 1 at 0.8 (>= 0.8, kept)
    check(strategy, minus_log_softmax(2, 1))
    assert strategy.config() == {"name": "hard-confident", "keep_per_class": 0.5}
    assert HardConfident().config() == {"name": "hard-confident", "threshold": 0.9}
    assert from_config(**strategy.config()).keep_per_class == 0.5


def test_hard_confident_settings_are_checked():
    assert HardConfident().threshold == 0.9  # the default when neither is given
    with pytest.raises(UserError, match="threshold or keep_per_class, not both"):
        HardConfident(threshold=0.8, keep_per_class=0.5)
    with pytest.raises(UserError, match=r"keep_per_class must be in \(0, 1\]"):
        HardConfident(keep_per_class=0.0)
    with pytest.raises(RuntimeError, match="call fit"):
        HardConfident(keep_per_class=0.5)(logits_tensor(), make_batch())


def test_multi_teacher_weights():
    assert MultiTeacher().teacher_weights(4) == [0.25] * 4
    assert MultiTeacher(weights=[1, 3]).teacher_weights(2) == pytest.approx([0.25, 0.75])
    assert MultiTeacher(similarities=[0.0, math.log(3)]).teacher_weights(2) == pytest.approx([0.25, 0.75])
    sharp = similarity_weights([1.0, 2.0], temperature=0.5)
    assert sharp[0] == pytest.approx(math.exp(2) / (math.exp(2) + math.exp(4)))
    assert sum(sharp) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 weights for 2 teachers"):
        MultiTeacher(weights=[1, 1, 1]).teacher_weights(2)


def test_multi_teacher_loss_is_the_soft_loss_on_the_combined_column():
    # two teachers combined 0.25 / 0.75 when the column is built; the loss sees one distribution
    other = [[0.1, 0.1, 0.8], [0.0, 0.0, 0.0], [0.3, 0.4, 0.3]]
    combined = [[0.25 * a + 0.75 * b for a, b in zip(r1, r2)] for r1, r2 in zip(TEACHER, other)]
    strategy = MultiTeacher(weights=[1, 3], soft_loss="soft-mse")
    assert strategy.teacher_weights(2) == pytest.approx([0.25, 0.75])
    expected = sum((q - p) ** 2 for i in KEPT for q, p in zip(softmax(LOGITS[i]), combined[i])) / 6
    check(strategy, expected, make_batch(teacher=combined))
    check(MultiTeacher(soft_loss="soft-kl", temperature=2.0), hand_kl(2.0))


def test_projected_kd_by_hand():
    labels = [2, -100, 1]
    ce = (minus_log_softmax(0, 2) + minus_log_softmax(2, 1)) / 2
    check(ProjectedKD(alpha=0.5), ce + 0.5 * hand_mse(), make_batch(labels))
    check(ProjectedKD(alpha=0.5, soft_loss="soft-kl", temperature=2.0), ce + 0.5 * hand_kl(2.0), make_batch(labels))


def test_projected_kd_agree_only_drops_disagreeing_tokens():
    # teacher argmax is 0 at word 1 (projection says 2: dropped) and 1 at word 2 (agrees: kept)
    labels = [2, -100, 1]
    check(ProjectedKD(alpha=0.0, agree_only=True), minus_log_softmax(2, 1), make_batch(labels))


def test_projected_kd_without_projection_is_the_soft_loss_alone():
    check(ProjectedKD(alpha=2.0), 2.0 * hand_mse(), make_batch([-100, -100, -100]))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_masked_positions_do_not_matter(name):
    strategy = from_config(name)
    batch = make_batch([2, -100, 1])
    base = strategy(logits_tensor(), batch)
    changed_logits = logits_tensor().detach().clone()
    changed_logits[0, 1] = torch.tensor([-50.0, 80.0, 3.0])
    batch["teacher_probs"][0, 1] = torch.tensor([0.0, 1.0, 0.0])
    assert strategy(changed_logits, batch).item() == pytest.approx(base.item(), rel=1e-6)


def test_half_precision_logits_are_computed_in_float32():
    loss = SoftMSE()(torch.tensor([LOGITS], dtype=torch.bfloat16), make_batch())
    assert loss.dtype == torch.float32


def test_from_config_validates_names_parameters_and_values():
    assert from_config("soft-kl", temperature=3.0) == SoftKL(temperature=3.0)
    strategy = from_config("projected+kd", alpha=0.3, agree_only=True)
    assert from_config(**strategy.config()) == strategy
    assert strategy.config() == {
        "name": "projected+kd",
        "alpha": 0.3,
        "soft_loss": "soft-mse",
        "temperature": 1.0,
        "agree_only": True,
    }
    with pytest.raises(UserError, match=r"unknown strategy 'soft'.*soft-mse, soft-kl, hard, hard-confident"):
        from_config("soft")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['treshold'\]; valid parameters: threshold"):
        from_config("hard-confident", treshold=0.5)
    with pytest.raises(ValueError, match="valid parameters: none"):
        from_config("hard", threshold=0.5)
    with pytest.raises(UserError, match="threshold must be in"):
        from_config("hard-confident", threshold=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        from_config("soft-kl", temperature=0)
    with pytest.raises(ValueError, match="soft_loss must be one of"):
        from_config("projected+kd", soft_loss="hard")
    with pytest.raises(ValueError, match="either weights or similarities"):
        from_config("multi-teacher", weights=[1, 1], similarities=[0.1, 0.2])


def test_missing_batch_keys_and_shape_mismatch_are_clear():
    with pytest.raises(KeyError, match=r"needs batch\['labels'\]"):
        ProjectedKD()(logits_tensor(), make_batch())
    bad = make_batch()
    bad["teacher_probs"] = torch.zeros(1, 3, 4)
    with pytest.raises(ValueError, match="share a label set"):
        SoftMSE()(logits_tensor(), bad)


# ---- kd_weight: every teacher-derived term is sum(w * loss) / n over the selected tokens ----

WEIGHTS = [0.5, 9.0, 0.25]  # the middle token is masked out: its weight must not count


def weighted_batch(weights=WEIGHTS, labels=None):
    batch = make_batch(labels)
    batch["kd_weight"] = torch.tensor([weights])
    return batch


def mse_token(i):
    return sum((q - p) ** 2 for q, p in zip(softmax(LOGITS[i]), TEACHER[i])) / 3


def kl_token(i, t=1.0):
    tempered = softmax([math.log(p) / t for p in TEACHER[i]])
    student = softmax([z / t for z in LOGITS[i]])
    return t * t * sum(a * (math.log(a) - math.log(b)) for a, b in zip(tempered, student))


def test_kd_weight_weights_soft_and_hard_losses_by_hand():
    check(SoftMSE(), (0.5 * mse_token(0) + 0.25 * mse_token(2)) / 2, weighted_batch())
    check(SoftKL(temperature=2.0), (0.5 * kl_token(0, 2.0) + 0.25 * kl_token(2, 2.0)) / 2, weighted_batch())
    check(Hard(), (0.5 * minus_log_softmax(0, 0) + 0.25 * minus_log_softmax(2, 1)) / 2, weighted_batch())
    # only word 2 is confident enough: its weighted loss over one kept token
    check(HardConfident(threshold=0.75), 0.25 * minus_log_softmax(2, 1), weighted_batch())


def test_kd_weight_zero_drops_the_token_from_the_mean():
    check(SoftMSE(), 0.5 * mse_token(0), weighted_batch([0.5, 1.0, 0.0]))
    grad = check(SoftKL(), 0.0, weighted_batch([0.0, 1.0, 0.0]))
    assert torch.count_nonzero(grad) == 0


def test_projected_kd_weights_only_its_soft_term():
    labels = [2, -100, 1]
    ce = (minus_log_softmax(0, 2) + minus_log_softmax(2, 1)) / 2
    soft = (0.5 * mse_token(0) + 0.25 * mse_token(2)) / 2
    check(ProjectedKD(alpha=0.5), ce + 0.5 * soft, weighted_batch(labels=labels))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_unit_kd_weight_changes_nothing(name):
    strategy = from_config(name)
    base = strategy(logits_tensor(), make_batch([2, -100, 1]))
    weighted = strategy(logits_tensor(), weighted_batch([1.0, 0.0, 1.0], labels=[2, -100, 1]))
    assert weighted.item() == pytest.approx(base.item(), rel=1e-6)


def test_kd_weight_of_the_wrong_shape_is_clear():
    with pytest.raises(ValueError, match="kd_weight has shape"):
        SoftMSE()(logits_tensor(), weighted_batch([1.0, 1.0]))


# ---- voting (UniTrans): hard where projection and teacher agree, soft teacher elsewhere ----


def test_voting_by_hand():
    # teacher argmax: 0 at word 1, 1 at word 2
    disagree_then_agree = make_batch([2, -100, 1])  # word 1: 2 != 0 -> soft; word 2: 1 == 1 -> CE
    check(Voting(), (kl_token(0) + minus_log_softmax(2, 1)) / 2, disagree_then_agree)
    check(
        Voting(alpha=0.5, soft_loss="soft-mse"),
        (0.5 * mse_token(0) + minus_log_softmax(2, 1)) / 2,
        make_batch([2, -100, 1]),
    )
    agree_then_unprojected = make_batch([0, -100, -100])  # word 1 agrees; word 2 has no projection -> soft
    check(Voting(temperature=2.0), (minus_log_softmax(0, 0) + kl_token(2, 2.0)) / 2, agree_then_unprojected)


def test_voting_with_kd_weight_by_hand():
    expected = (0.5 * kl_token(0) + 0.25 * minus_log_softmax(2, 1)) / 2
    check(Voting(), expected, weighted_batch(labels=[2, -100, 1]))


def test_voting_reports_the_disagreement_rate_per_batch_and_cumulated():
    voting = Voting()
    assert voting.statistics() == {"tokens": 0, "projected": 0, "agree": 0, "disagreement_rate": None}
    voting(logits_tensor(), make_batch([2, -100, 1]))  # 2 projected, 1 agrees
    assert voting.statistics(cumulative=False) == {"tokens": 2, "projected": 2, "agree": 1, "disagreement_rate": 0.5}
    # the masked sub-token's label (0, agreeing with its zero teacher row) must not be counted
    voting(logits_tensor(), make_batch([0, 0, -100]))  # 1 projected, agrees
    assert voting.statistics(cumulative=False)["disagreement_rate"] == 0.0
    total = voting.statistics()
    assert (total["tokens"], total["projected"], total["agree"]) == (4, 3, 2)
    assert total["disagreement_rate"] == pytest.approx(1 / 3)
    # a kd_weight of 0 drops a token from the loss, not from the counts (they describe the data)
    voting.reset_statistics()
    voting(logits_tensor(), weighted_batch([0.0, 1.0, 0.0], labels=[2, -100, 1]))
    assert voting.statistics()["projected"] == 2
    assert Voting().config() == {"name": "voting", "soft_loss": "soft-kl", "temperature": 1.0, "alpha": 1.0}
    assert SoftMSE().statistics() == {}


def test_voting_needs_projected_labels_and_valid_parameters():
    assert Voting.needs_projected_labels
    with pytest.raises(KeyError, match=r"needs batch\['labels'\]"):
        Voting()(logits_tensor(), make_batch())
    with pytest.raises(UserError, match="voting: alpha must be >= 0"):
        from_config("voting", alpha=-1.0)
    with pytest.raises(UserError, match="voting: soft_loss must be one of"):
        from_config("voting", soft_loss="hard")
