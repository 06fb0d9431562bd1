"""ResNets with GroupNorm and one pooled linear exit per residual block: the torchvision layout
(``stem: imagenet``) and the CIFAR one (``stem: cifar``), with basic or bottleneck blocks.

- ``imagenet`` stem: 7×7 stride-2 conv (padding 3) + norm + ReLU + 3×3 stride-2 max-pool (padding 1),
  as torchvision's ``resnet18/34/50``; ``cifar`` stem: 3×3 stride-1 conv + norm + ReLU, no pool
  (the usual CIFAR adaptation, for 32×32 inputs).
- ``basic`` block: two 3×3 convs (ResNet-18/34). ``bottleneck``: 1×1 reduce, 3×3, 1×1 expand ×4
  (ResNet-50), the stride on the 3×3 conv as in torchvision ("ResNet v1.5").
- A block whose stride or channel count changes has a 1×1 projection shortcut (conv + norm), as
  torchvision's ``downsample``.

Norms are GroupNorm with one group (see base.py for why not BatchNorm). A GroupNorm over C channels
has the same 2·C affine parameters as a BatchNorm (BatchNorm's running mean and variance are buffers,
not parameters), so parameter counts equal torchvision's exactly when only the final exit is counted.

Axes: ``stage{s}.channels`` is the residual stream of stage s (shared by every block of the stage and
by their exits; only when ``prune_stream``); the stem's output is ``stage0.channels`` when it feeds
stage 0 unchanged (basic blocks) and ``stem.channels`` otherwise (bottleneck: 64 → 256). Inner widths:
``block{b}.channels`` (basic: between the two convs; bottleneck: after the 1×1 reduce) and, for
bottlenecks, ``block{b}.mid`` (after the 3×3). Channels double per stage; spatial size halves per
stage while it is at least 4 pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from simulator.learning.models.base import AxisRef, BlockModel, Scaler, set_axes

BOTTLENECK_EXPANSION = 4


def conv(cin: int, cout: int, k: int, stride: int, in_ref: AxisRef | None, out_ref: AxisRef | None) -> nn.Conv2d:
    """A bias-free conv (the norm that follows carries the bias), padding k // 2, with declared axes."""
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
    """conv + norm + ReLU (+ max-pool for the imagenet stem)."""

    def __init__(self, cin: int, cout: int, ref: AxisRef | None, kind: str, stride: int, pool: bool) -> None:
        super().__init__()
        k = 7 if kind == "imagenet" else 3
        self.conv = conv(cin, cout, k, stride, None, ref)
        self.norm = group_norm(cout, ref)
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.norm(self.conv(x)))
        return nn.functional.max_pool2d(h, 3, 2, 1) if self.pool else h


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


class Bottleneck(nn.Module):
    """1×1 (cin → a) + 3×3 stride s (a → m) + 1×1 (m → cout); torchvision's v1.5 placement of the stride."""

    def __init__(self, cin: int, a: int, m: int, cout: int, stride: int, refs: tuple[AxisRef | None, ...],
                 projection: bool) -> None:
        super().__init__()
        in_ref, a_ref, m_ref, out_ref = refs
        self.conv1 = conv(cin, a, 1, 1, in_ref, a_ref)
        self.norm1 = group_norm(a, a_ref)
        self.conv2 = conv(a, m, 3, stride, a_ref, m_ref)
        self.norm2 = group_norm(m, m_ref)
        self.conv3 = conv(m, cout, 1, 1, m_ref, out_ref)
        self.norm3 = group_norm(cout, out_ref)
        self.shortcut: nn.Module = nn.Identity()
        if projection:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, stride, in_ref, out_ref), group_norm(cout, out_ref))

    def forward(self, h: Tensor) -> Tensor:
        y = torch.relu(self.norm1(self.conv1(h)))
        y = torch.relu(self.norm2(self.conv2(y)))
        y = self.norm3(self.conv3(y))
        return torch.relu(y + self.shortcut(h))


def stage_layout(blocks: int | tuple[int, ...]) -> tuple[int, ...]:
    """Blocks per stage: a list is taken as is; an integer n is spread over min(4, n) stages, the
    earlier stages taking the remainder (8 -> 2,2,2,2 as ResNet-18; 3 -> 1,1,1)."""
    if not isinstance(blocks, int):
        return tuple(blocks)
    stages = min(4, blocks)
    base, extra = divmod(blocks, stages)
    return tuple(base + (1 if s < extra else 0) for s in range(stages))


def _stem(params: dict[str, Any], cin: int, size: int, sc: Scaler, prune_stream: bool,
          stage0: tuple[int, AxisRef | None]) -> tuple[Stem, int, AxisRef | None, int]:
    """The stem, its output channels and axis, and the spatial size after it."""
    kind = params["stem"]
    width = params["width"]
    if params["block_type"] == "basic":
        c, ref = stage0  # the stem writes stage 0's residual stream directly
    elif prune_stream:
        c, ref = sc.units("stem.channels", width), AxisRef("stem.channels")
    else:
        c, ref = width, None
    # the imagenet stem halves the map twice (conv, then max-pool), each only while it is >= 4 pixels
    stride = 2 if kind == "imagenet" and size >= 4 else 1
    size = (size + 1) // 2 if stride == 2 else size
    pool = kind == "imagenet" and size >= 4
    size = (size + 1) // 2 if pool else size
    return Stem(cin, c, ref, kind, stride, pool), c, ref, size


def build_resnet(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
                 width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    if len(input_shape) != 3:
        raise ValueError(f"resnet needs image inputs (channels, height, width), got shape {input_shape}")
    cin, height, _ = input_shape
    layout = stage_layout(params["blocks"])
    total = sum(layout)
    keep = total if depth is None else depth
    bottleneck = params["block_type"] == "bottleneck"
    expansion = BOTTLENECK_EXPANSION if bottleneck else 1
    sc = Scaler(width_ratio)

    def stream(s: int) -> tuple[int, AxisRef | None]:
        full = params["width"] * 2 ** min(s, 3) * expansion
        if not prune_stream:
            return full, None
        return sc.units(f"stage{s}.channels", full), AxisRef(f"stage{s}.channels")

    stem, c_prev, r_prev, size = _stem(params, cin, height, sc, prune_stream, stream(0))
    blocks: list[nn.Module] = []
    exits: list[nn.Module] = []
    b = 0
    for s, n in enumerate(layout):
        c_out, r_out = stream(s)
        inner = params["width"] * 2 ** min(s, 3)
        for i in range(n):
            stride = 2 if (s > 0 and i == 0 and size >= 4) else 1
            a_ref = AxisRef(f"block{b}.channels")
            a = sc.units(a_ref.axis, inner)
            m_ref = AxisRef(f"block{b}.mid") if bottleneck else None
            m = sc.units(m_ref.axis, inner) if m_ref else 0
            if b < keep:
                proj = stride != 1 or r_prev != r_out or c_prev != c_out
                if bottleneck:
                    blocks.append(Bottleneck(c_prev, a, m, c_out, stride, (r_prev, a_ref, m_ref, r_out), proj))
                else:
                    blocks.append(BasicBlock(c_prev, a, c_out, stride, r_prev, a_ref, r_out, proj))
                exits.append(PoolExit(c_out, num_classes, r_out))
            size = (size + 1) // 2 if stride == 2 else size
            c_prev, r_prev, b = c_out, r_out, b + 1
    return BlockModel(stem, blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio)
