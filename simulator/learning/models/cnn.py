"""Plain conv net and MLP families: one layer per block, no residual stream.

CNN block b: conv3x3 (``block{b}.channels`` = width * 2^min(b, 3)) + GroupNorm + ReLU, then a 2x2
max-pool while the map is at least 4 pixels wide. MLP block b: Linear (``block{b}.units`` = width) +
ReLU; the stem only flattens. Exits are pooled linear classifiers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from simulator.learning.models.base import AxisRef, BlockModel, Scaler, set_axes
from simulator.learning.models.resnet import PoolExit, group_norm


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, in_ref: AxisRef | None, out_ref: AxisRef, pool: bool) -> None:
        super().__init__()
        self.conv = set_axes(nn.Conv2d(cin, cout, 3, padding=1, bias=False), weight=(out_ref, in_ref, None, None))
        self.norm = group_norm(cout, out_ref)
        self.pool = pool

    def forward(self, h: Tensor) -> Tensor:
        h = torch.relu(self.norm(self.conv(h)))
        return nn.functional.max_pool2d(h, 2) if self.pool else h


def build_cnn(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
              width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    if len(input_shape) != 3:
        raise ValueError(f"cnn needs image inputs (channels, height, width), got shape {input_shape}")
    cin, size = input_shape[0], min(input_shape[1:])
    total = int(params["blocks"])
    keep = total if depth is None else depth
    sc = Scaler(width_ratio)
    blocks: list[nn.Module] = []
    exits: list[nn.Module] = []
    c_prev, r_prev = cin, None
    for b in range(total):
        axis = f"block{b}.channels"
        c = sc.units(axis, params["width"] * 2 ** min(b, 3))
        ref = AxisRef(axis)
        pool = size >= 4
        if b < keep:
            blocks.append(ConvBlock(c_prev, c, r_prev, ref, pool))
            exits.append(PoolExit(c, num_classes, ref))
        size = size // 2 if pool else size
        c_prev, r_prev = c, ref
    return BlockModel(nn.Identity(), blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio)


class DenseBlock(nn.Module):
    def __init__(self, fin: int, fout: int, in_ref: AxisRef | None, out_ref: AxisRef) -> None:
        super().__init__()
        self.fc = set_axes(nn.Linear(fin, fout), weight=(out_ref, in_ref), bias=(out_ref,))

    def forward(self, h: Tensor) -> Tensor:
        return torch.relu(self.fc(h))


class LinearExit(nn.Module):
    def __init__(self, fin: int, num_classes: int, ref: AxisRef) -> None:
        super().__init__()
        self.fc = set_axes(nn.Linear(fin, num_classes), weight=(None, ref), bias=(None,))

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(h)


def build_mlp(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
              width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    total = int(params["blocks"])
    keep = total if depth is None else depth
    sc = Scaler(width_ratio)
    blocks: list[nn.Module] = []
    exits: list[nn.Module] = []
    f_prev, r_prev = math.prod(input_shape), None
    for b in range(total):
        axis = f"block{b}.units"
        f = sc.units(axis, params["width"])
        ref = AxisRef(axis)
        if b < keep:
            blocks.append(DenseBlock(f_prev, f, r_prev, ref))
            exits.append(LinearExit(f, num_classes, ref))
        f_prev, r_prev = f, ref
    return BlockModel(nn.Flatten(), blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio)
