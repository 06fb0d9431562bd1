"""Exit losses: CE sum plus self-distillation, teachers detached."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from simulator.learning.distill import exit_losses, kd_term


def logits(seed: int, n: int = 3, batch: int = 5, classes: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, classes, generator=g, dtype=torch.float64).requires_grad_() for _ in range(n)]


Y = torch.tensor([0, 1, 2, 3, 0])


def kl(p_logits, q_logits, t):
    """KL(softmax(p/t) || softmax(q/t)) per batch mean, written out."""
    p = torch.softmax(p_logits / t, -1)
    return float((p * (torch.log(p) - torch.log_softmax(q_logits / t, -1))).sum(-1).mean())


def test_off_is_the_sum_of_exit_cross_entropies():
    z = logits(0)
    total, ce, kd = exit_losses(z, Y, "off", 0.5, 2.0)
    want = sum(float(F.cross_entropy(zi.detach(), Y)) for zi in z)
    assert float(total.detach()) == pytest.approx(want) and float(ce) == pytest.approx(want) and float(kd) == 0.0


def test_deepest_teaches_shallower_exits_with_t_squared_scaling():
    z = logits(1)
    t, lam = 3.0, 0.7
    total, ce, kd = exit_losses(z, Y, "deepest", lam, t)
    want_kd = t * t * (kl(z[2].detach(), z[0].detach(), t) + kl(z[2].detach(), z[1].detach(), t))
    assert float(kd) == pytest.approx(want_kd)
    assert float(total.detach()) == pytest.approx(float(ce) + lam * want_kd)


def test_deepest_teacher_gets_no_gradient_from_distillation():
    z = logits(2)
    exit_losses(z, Y, "deepest", 5.0, 2.0)[0].backward()
    ce_only = [zi.detach().clone().requires_grad_() for zi in z]
    F.cross_entropy(ce_only[2], Y).backward()
    assert torch.allclose(z[2].grad, ce_only[2].grad)  # teacher's gradient = its own CE only
    assert z[0].grad.abs().sum() > 0


def test_mutual_is_the_mean_pairwise_kl_of_depthfl():
    z = logits(3)
    t = 2.0
    _, _, kd = exit_losses(z, Y, "mutual", 1.0, t)
    want = sum(sum(kl(z[j].detach(), z[b].detach(), t) for j in range(3) if j != b) / 2 for b in range(3)) * t * t
    assert float(kd) == pytest.approx(want)


def test_agreeing_exits_and_a_single_exit_transfer_nothing():
    same = logits(4, n=1) * 3
    for mode in ("deepest", "mutual"):
        assert float(exit_losses(same, Y, mode, 1.0, 2.0)[2]) == pytest.approx(0.0, abs=1e-12)
    single = logits(5, n=1)
    total, ce, _ = exit_losses(single, Y, "mutual", 1.0, 2.0)
    assert float(total.detach()) == pytest.approx(float(F.cross_entropy(single[0].detach(), Y)))
    assert float(kd_term(single[0].detach(), single[0].detach(), 1.0)) == pytest.approx(0.0, abs=1e-12)


def test_kd_of_uniform_teacher_against_confident_student_is_positive():
    student = torch.tensor([[10.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0]])
    v = float(kd_term(student, teacher, 1.0))
    want = 0.5 * math.log(0.5 / (math.exp(10) / (1 + math.exp(10)))) + 0.5 * math.log(0.5 / (1 / (1 + math.exp(10))))
    assert v == pytest.approx(want, rel=1e-5)


def test_unknown_mode_raises():
    with pytest.raises(ValueError):
        exit_losses(logits(6), Y, "sideways", 1.0, 1.0)


def test_global_teacher_teaches_every_exit_and_without_one_falls_back_to_deepest():
    z = logits(7)
    teacher = logits(8, n=1)[0].detach()
    t, lam = 2.0, 0.5
    total, ce, kd = exit_losses(z, Y, "global", lam, t, teacher)
    want = t * t * sum(kl(teacher, zi.detach(), t) for zi in z)  # the deepest exit is taught too
    assert float(kd) == pytest.approx(want)
    assert float(total.detach()) == pytest.approx(float(ce) + lam * want)
    # a client holding the whole model gets no teacher: self-distillation from its deepest exit
    assert float(exit_losses(z, Y, "global", lam, t)[2]) == pytest.approx(float(exit_losses(z, Y, "deepest", lam, t)[2]))
    # one exit is still taught by the global model
    single = logits(9, n=1)
    assert float(exit_losses(single, Y, "global", lam, t, teacher)[2]) == pytest.approx(
        t * t * kl(teacher, single[0].detach(), t))
