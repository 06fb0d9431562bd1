"""The inert user model ``fleetsim validate`` puts in place of a ``module:Class`` model it does not import.

Apart from :mod:`simulator.cli.validate` because it needs torch: it is imported (by name, as any
plug-in) only when the stand-in is built or traced, so validating a scenario without plug-ins imports
no torch. It is a block-model builder (it takes ``width_ratio``), so a pruning preset validates with it:
whether the user's own model can be pruned is checked only with ``--import-plugins``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from simulator.learning.models.base import BlockModel


class _MeanFeature(nn.Module):
    """Any input shape or dtype in, one feature per sample out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).float().mean(dim=1, keepdim=True)


def StandInModel(num_classes: int = 10, input_shape: tuple[int, ...] = (1,), width_ratio: float = 1.0,  # noqa: N802
                 depth: Any = None) -> BlockModel:
    """An inert one-block model with no prunable axes (named like the class it replaces)."""
    return BlockModel(nn.Identity(), [_MeanFeature()], [nn.Linear(1, num_classes)], width_axes={},
                      num_classes=num_classes, input_shape=tuple(input_shape), full_depth=1,
                      width_ratio=width_ratio)
