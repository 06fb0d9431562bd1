"""Cross-block knowledge transfer: the training loss over a submodel's exits.

``loss = Σ_b CE(z_b, y) + λ · KD``, where the exits are those the client trains. KD terms are
``T² · KL(softmax(teacher/T) ‖ softmax(student/T))`` (batch mean), the T² keeping gradient scale
independent of the temperature (Hinton et al.). Teachers are always detached: knowledge flows into a
student exit without pulling the teacher towards it.

- ``off``: CE only.
- ``deepest`` (Co-S²P guess): the deepest retained exit teaches every shallower one, so the knowledge
  of blocks a weak device holds reaches the early exits that serve when depth is pruned.
- ``mutual`` (DepthFL): every exit learns from each other exit, ``1/(K−1) Σ_{j≠b} KL(p_j ‖ p_b)``, the
  form of DepthFL's loss (mean of pairwise KLs rather than KL to an averaged ensemble).
- ``global``: knowledge of the blocks a client cannot hold. The teacher is the deepest exit of the
  GLOBAL model the client downloaded (``teacher`` logits, computed forward-only before the step, see
  trainer.py), and it teaches every exit the client trains, its deepest one included:
  ``Σ_b KL(p_global ‖ p_b)``. This is global-model distillation in local training (FedGKD, Yao et
  al. 2021/2023; the server-model logits of FedGKT, He et al., NeurIPS 2020) aimed at DepthFL's
  shallow exits. A client that holds the whole model gets no teacher (``teacher=None``) and falls back
  to ``deepest`` self-distillation, which then carries the same knowledge.
With one exit and no teacher there is nothing to transfer and the loss is plain CE.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

DISTILL_MODES = ("off", "deepest", "mutual", "global")


def kd_term(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T² · KL(softmax(teacher/T) ‖ softmax(student/T))`` averaged over the batch; teacher detached."""
    t = float(temperature)
    log_p_student = F.log_softmax(student / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher.detach() / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True) * (t * t)


def exit_losses(logits: Sequence[Tensor], y: Tensor, mode: str = "off", weight: float = 0.0,
                temperature: float = 1.0, teacher: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(total, ce_sum, kd_sum)`` for the exits' logits (shallowest first, last = deepest);
    `teacher`: the global model's deepest-exit logits for this batch (``global`` mode only)."""
    if mode not in DISTILL_MODES:
        raise ValueError(f"unknown distillation mode {mode!r}; accepted {DISTILL_MODES}")
    if not logits:
        raise ValueError("no exit logits to train on")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    ce = torch.stack([F.cross_entropy(z, y) for z in logits]).sum()
    kd = torch.zeros((), dtype=ce.dtype)
    k = len(logits)
    if mode == "global" and teacher is not None and weight > 0:
        kd = torch.stack([kd_term(z, teacher, temperature) for z in logits]).sum()
    elif mode != "off" and weight > 0 and k > 1:
        if mode in ("deepest", "global"):
            teacher = logits[-1]
            kd = torch.stack([kd_term(z, teacher, temperature) for z in logits[:-1]]).sum()
        else:
            terms = [
                torch.stack([kd_term(logits[b], logits[j], temperature) for j in range(k) if j != b]).mean()
                for b in range(k)
            ]
            kd = torch.stack(terms).sum()
    return ce + float(weight) * kd, ce.detach(), kd.detach()
