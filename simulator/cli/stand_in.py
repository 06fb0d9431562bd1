"""The inert user model ``fleetsim validate`` puts in place of a ``module:Class`` model it does not import.

Apart from :mod:`simulator.cli.validate` because it subclasses torch's ``nn.Module``: it is imported
(by name, as any plug-in) only when the stand-in is built or traced, so validating a scenario without
plug-ins imports no torch.
"""

from __future__ import annotations

import torch
from torch import nn


class StandInModel(nn.Module):
    """An inert user model: any input shape or dtype in, ``num_classes`` logits out."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.head = nn.Linear(1, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.reshape(x.shape[0], -1).float().mean(dim=1, keepdim=True))
