"""A prunable model of your own: a block-model builder fleetsim can width- and depth-prune.

Name it in a scenario as ``workload.model: {name: "my_block_models:build_mlp", kwargs: {hidden: 64}}``
(the module beside the scenario). The contract (README, "Your own model"): a callable that takes
``width_ratio`` (and ``depth``, ``num_classes``, ``input_shape`` as it needs) and returns a
``BlockModel`` — stem, one block per layer, one exit per block — whose parameters declare which of
their dimensions each prunable *axis* indexes (``set_axes``), built at any width ratio and depth with
the full model's parameter names. ``Scaler.units`` registers an axis at full size and returns the
kept units, so every width gives the same names with narrower tensors.
"""

from __future__ import annotations

import torch
from torch import nn

from simulator.learning.models.base import AxisRef, BlockModel, Scaler, set_axes


class Dense(nn.Module):
    """One block: Linear + ReLU. Its output units are the axis `out_ref`; its inputs the previous one."""

    def __init__(self, fin: int, fout: int, in_ref: AxisRef | None, out_ref: AxisRef) -> None:
        super().__init__()
        self.fc = set_axes(nn.Linear(fin, fout), weight=(out_ref, in_ref), bias=(out_ref,))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(h))


class Exit(nn.Module):
    """A block's classifier: its inputs are the block's units (pruned with them), its outputs the classes."""

    def __init__(self, fin: int, num_classes: int, ref: AxisRef) -> None:
        super().__init__()
        self.fc = set_axes(nn.Linear(fin, num_classes), weight=(None, ref), bias=(None,))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


def build_mlp(num_classes: int, input_shape: tuple[int, ...], width_ratio: float = 1.0, depth: int | None = None,
              hidden: int = 64, blocks: int = 3) -> BlockModel:
    """`blocks` dense layers of `hidden` units (each its own prunable axis); the first `depth` are built."""
    fin = 1
    for size in input_shape:
        fin *= int(size)
    scaler = Scaler(width_ratio)
    layers, exits = [], []
    prev_units, prev_ref = fin, None
    for b in range(blocks):
        ref = AxisRef(f"block{b}.units")
        units = scaler.units(ref.axis, hidden)
        if depth is None or b < depth:
            layers.append(Dense(prev_units, units, prev_ref, ref))
            exits.append(Exit(units, num_classes, ref))
        prev_units, prev_ref = units, ref
    return BlockModel(nn.Flatten(), layers, exits, width_axes=scaler.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=blocks, width_ratio=width_ratio)
