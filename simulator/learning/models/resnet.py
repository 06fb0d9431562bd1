"""CIFAR-style ResNet with BasicBlocks, GroupNorm, one pooled linear exit per residual block.

Axes: ``stage{s}.channels`` is the residual stream of stage s (shared by the stem for s = 0, by every
block of the stage and by their exits; only when ``prune_stream``), ``block{b}.channels`` is the inner
width of block b (between its two convs). Channels double per stage, spatial size halves per stage
while it is at least 4 pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from simulator.learning.models.base import AxisRef, BlockModel, Scaler, set_axes


def conv(cin: int, cout: int, k: int, stride: int, in_ref: AxisRef | None, out_ref: AxisRef | None) -> nn.Conv2d:
    """A bias-free conv (the norm that follows carries the bias) with declared axes."""
    c = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
    return set_axes(c, weight=(out_ref, in_ref, None, None))  # type: ignore[return-value]


def group_norm(c: int, ref: AxisRef | None) -> nn.GroupNorm:
    """GroupNorm with ONE group (per-sample norm over C,H,W): valid for any pruned channel count, so
    a submodel normalises the way its own definition says (see base.py on why not BatchNorm)."""
    return set_axes(nn.GroupNorm(1, c), weight=(ref,), bias=(ref,))  # type: ignore[return-value]


class PoolExit(nn.Module):
    """Global average pool + linear classifier reading a [B, C, H, W] feature map."""

    def __init__(self, c: int, num_classes: int, ref: AxisRef | None) -> None:
        super().__init__()
        self.fc = set_axes(nn.Linear(c, num_classes), weight=(None, ref), bias=(None,))

    def forward(self, h: Tensor) -> Tensor:
        return self.fc(h.mean(dim=(2, 3)))


class Stem(nn.Module):
    def __init__(self, cin: int, cout: int, ref: AxisRef | None) -> None:
        super().__init__()
        self.conv = conv(cin, cout, 3, 1, None, ref)
        self.norm = group_norm(cout, ref)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.norm(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int,
                 in_ref: AxisRef | None, mid_ref: AxisRef | None, out_ref: AxisRef | None,
                 projection: bool) -> None:
        super().__init__()
        self.conv1 = conv(cin, mid, 3, stride, in_ref, mid_ref)
        self.norm1 = group_norm(mid, mid_ref)
        self.conv2 = conv(mid, cout, 3, 1, mid_ref, out_ref)
        self.norm2 = group_norm(cout, out_ref)
        self.shortcut: nn.Module = nn.Identity()
        if projection:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride, in_ref, out_ref), group_norm(cout, out_ref))

    def forward(self, h: Tensor) -> Tensor:
        y = torch.relu(self.norm1(self.conv1(h)))
        y = self.norm2(self.conv2(y))
        return torch.relu(y + self.shortcut(h))


def stage_layout(blocks: int | tuple[int, ...]) -> tuple[int, ...]:
    """Blocks per stage: a list is taken as is; an integer n is spread over min(4, n) stages, the
    earlier stages taking the remainder (8 -> 2,2,2,2 as ResNet-18; 3 -> 1,1,1)."""
    if not isinstance(blocks, int):
        return tuple(blocks)
    stages = min(4, blocks)
    base, extra = divmod(blocks, stages)
    return tuple(base + (1 if s < extra else 0) for s in range(stages))


def build_resnet(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
                 width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    if len(input_shape) != 3:
        raise ValueError(f"resnet needs image inputs (channels, height, width), got shape {input_shape}")
    cin, height, _ = input_shape
    layout = stage_layout(params["blocks"])
    total = sum(layout)
    keep = total if depth is None else depth
    sc = Scaler(width_ratio)

    def stream(s: int) -> tuple[int, AxisRef | None]:
        full = params["width"] * 2 ** min(s, 3)
        if not prune_stream:
            return full, None
        return sc.units(f"stage{s}.channels", full), AxisRef(f"stage{s}.channels")

    c0, r0 = stream(0)
    stem = Stem(cin, c0, r0)
    blocks: list[nn.Module] = []
    exits: list[nn.Module] = []
    c_prev, r_prev, size, b = c0, r0, height, 0
    for s, n in enumerate(layout):
        c_out, r_out = stream(s)
        for i in range(n):
            stride = 2 if (s > 0 and i == 0 and size >= 4) else 1
            mid_axis = f"block{b}.channels"
            mid = sc.units(mid_axis, params["width"] * 2 ** min(s, 3))
            if b < keep:
                proj = stride != 1 or r_prev != r_out or c_prev != c_out
                blocks.append(BasicBlock(c_prev, mid, c_out, stride, r_prev, AxisRef(mid_axis), r_out, proj))
                exits.append(PoolExit(c_out, num_classes, r_out))
            size = (size + 1) // 2 if stride == 2 else size
            c_prev, r_prev, b = c_out, r_out, b + 1
    return BlockModel(stem, blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio)
