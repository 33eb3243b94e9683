"""Each distillation loss against values computed by hand (math.exp / math.log on tiny tensors)."""

import math

import pytest
import torch

from training.strategies import (
    STRATEGIES,
    Hard,
    HardConfident,
    MultiTeacher,
    ProjectedKD,
    SoftKL,
    SoftMSE,
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
        "name": "projected+kd", "alpha": 0.3, "soft_loss": "soft-mse", "temperature": 1.0, "agree_only": True,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown strategy 'soft'.*soft-mse, soft-kl, hard, hard-confident"):
        from_config("soft")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['treshold'\]; valid parameters: threshold"):
        from_config("hard-confident", treshold=0.5)
    with pytest.raises(ValueError, match="valid parameters: none"):
        from_config("hard", threshold=0.5)
    with pytest.raises(ValueError, match="threshold must be in"):
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
