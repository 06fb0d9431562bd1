"""MobileNetV2 and MobileNetV3 (large, small) as block models: torchvision's layouts, GroupNorm.

Blocks: every inverted residual is one block (1×1 expand + norm + activation, depthwise k×k + norm +
activation, [squeeze-excitation,] 1×1 project + norm, a residual add when stride is 1 and channels
match), and the final 1×1 conv (V2: 320 → 1280, V3: → 6× channels) is the last block; the stem is
the first 3×3 stride-2 conv. Exit b is a pooled linear classifier; the last block's exit is the
reference classifier (V2: pool + linear; V3: pool + linear 960 → 1280 + hardswish + linear).

Layouts follow torchvision 0.2x ``mobilenet_v2`` / ``mobilenet_v3_large`` / ``mobilenet_v3_small``
(the papers' tables): channels scaled by ``width_mult`` and rounded with ``make_divisible`` (to a
multiple of 8, never more than 10 % below), V2's last conv never below 1280, V3's squeeze width
``make_divisible(expanded // 4)``. Dropout layers are left out (they have no parameters or FLOPs).
Norm: GroupNorm with one group (same affine parameter count as BatchNorm; see base.py).

Axes (the prunable units edge users train away): ``block{b}.channels`` the expanded channels of
inverted residual b (the 1×1 expand's outputs = the depthwise conv's channels); a block without an
expand conv (expansion 1) filters its input stream's channels and has no axis of its own;
``block{b}.se`` the squeeze-excitation's hidden units; ``block{L-1}.channels`` the final conv's
outputs and ``block{L-1}.head`` the V3 classifier's hidden units. With ``prune_stream`` the
residual streams are axes too: ``stage0.channels`` (the stem's output) and ``stage{s}.channels``
for each run of blocks joined by residual adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from simulator.learning.models.base import AxisRef, BlockModel, Scaler, set_axes
from simulator.learning.models.resnet import PoolExit, group_norm


@dataclass(frozen=True)
class Bneck:
    """One inverted residual: input, kernel, expanded and output channels (before width_mult),
    squeeze-excitation, hardswish (else ReLU / ReLU6), stride; V2 gives its expansion ratio instead
    (the expanded width is then the *rounded* input width × ratio, as in torchvision)."""

    cin: int
    kernel: int
    expanded: int
    cout: int
    se: bool
    hardswish: bool
    stride: int
    expand_ratio: int | None = None


def _v2() -> tuple[Bneck, ...]:
    rows = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    out: list[Bneck] = []
    cin = 32
    for t, c, n, s in rows:
        for i in range(n):
            out.append(Bneck(cin, 3, cin * t, c, False, False, s if i == 0 else 1, t))
            cin = c
    return tuple(out)


def _b(cin: int, k: int, exp: int, cout: int, se: bool, act: str, s: int) -> Bneck:
    return Bneck(cin, k, exp, cout, se, act == "HS", s)


V3_LARGE = (
    _b(16, 3, 16, 16, False, "RE", 1), _b(16, 3, 64, 24, False, "RE", 2), _b(24, 3, 72, 24, False, "RE", 1),
    _b(24, 5, 72, 40, True, "RE", 2), _b(40, 5, 120, 40, True, "RE", 1), _b(40, 5, 120, 40, True, "RE", 1),
    _b(40, 3, 240, 80, False, "HS", 2), _b(80, 3, 200, 80, False, "HS", 1), _b(80, 3, 184, 80, False, "HS", 1),
    _b(80, 3, 184, 80, False, "HS", 1), _b(80, 3, 480, 112, True, "HS", 1), _b(112, 3, 672, 112, True, "HS", 1),
    _b(112, 5, 672, 160, True, "HS", 2), _b(160, 5, 960, 160, True, "HS", 1), _b(160, 5, 960, 160, True, "HS", 1),
)
V3_SMALL = (
    _b(16, 3, 16, 16, True, "RE", 2), _b(16, 3, 72, 24, False, "RE", 2), _b(24, 3, 88, 24, False, "RE", 1),
    _b(24, 5, 96, 40, True, "HS", 2), _b(40, 5, 240, 40, True, "HS", 1), _b(40, 5, 240, 40, True, "HS", 1),
    _b(40, 5, 120, 48, True, "HS", 1), _b(48, 5, 144, 48, True, "HS", 1), _b(48, 5, 288, 96, True, "HS", 2),
    _b(96, 5, 576, 96, True, "HS", 1), _b(96, 5, 576, 96, True, "HS", 1),
)
# arch -> (inverted residuals, stem channels, last conv channels or None for 6x, V3 head hidden or None)
LAYOUTS: dict[str, tuple[tuple[Bneck, ...], int, int | None, int | None]] = {
    "v2": (_v2(), 32, 1280, None),
    "v3-large": (V3_LARGE, 16, None, 1280),
    "v3-small": (V3_SMALL, 16, None, 1024),
}


def mobilenet_depth(arch: str) -> int:
    """Blocks of the full model: the inverted residuals plus the final 1×1 conv."""
    return len(LAYOUTS[arch][0]) + 1


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of `divisor`, at least `divisor`, and never
    more than 10 % below `v`."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv(cin: int, cout: int, k: int, stride: int, groups: int, in_ref: AxisRef | None,
          out_ref: AxisRef | None, bias: bool = False) -> nn.Conv2d:
    c = nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=bias)
    axes: dict[str, Any] = {"weight": (out_ref, None if groups > 1 else in_ref, None, None)}
    if bias:
        axes["bias"] = (out_ref,)
    return set_axes(c, **axes)  # type: ignore[return-value]


class ConvNormAct(nn.Module):
    """conv + GroupNorm + activation (None: linear), torchvision's Conv2dNormActivation."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int, in_ref: AxisRef | None,
                 out_ref: AxisRef | None, act: type[nn.Module] | None) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, k, stride, groups, in_ref, out_ref)
        self.norm = group_norm(cout, out_ref)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, h: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(h)))


class SqueezeExcite(nn.Module):
    """Global pool, 1×1 conv (c → s) + ReLU, 1×1 conv (s → c) + hardsigmoid, scale the input."""

    def __init__(self, c: int, s: int, c_ref: AxisRef | None, s_ref: AxisRef | None) -> None:
        super().__init__()
        self.fc1 = _conv(c, s, 1, 1, 1, c_ref, s_ref, bias=True)
        self.fc2 = _conv(s, c, 1, 1, 1, s_ref, c_ref, bias=True)

    def forward(self, h: Tensor) -> Tensor:
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(h.mean(dim=(2, 3), keepdim=True)))))
        return h * scale


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, hidden: int, cout: int, cfg: Bneck, stride: int, squeeze: int,
                 refs: tuple[AxisRef | None, ...], act: type[nn.Module], residual: bool, expand: bool) -> None:
        super().__init__()
        in_ref, h_ref, s_ref, out_ref = refs
        self.expand = ConvNormAct(cin, hidden, 1, 1, 1, in_ref, h_ref, act) if expand else None
        self.depthwise = ConvNormAct(hidden, hidden, cfg.kernel, stride, hidden, h_ref, h_ref, act)
        self.se = SqueezeExcite(hidden, squeeze, h_ref, s_ref) if cfg.se else None
        self.project = ConvNormAct(hidden, cout, 1, 1, 1, h_ref, out_ref, None)
        self.residual = residual

    def forward(self, h: Tensor) -> Tensor:
        y = self.expand(h) if self.expand is not None else h
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return h + y if self.residual else y


class HeadExit(nn.Module):
    """V3's classifier: pool + linear (c → hidden) + hardswish + linear (hidden → classes)."""

    def __init__(self, c: int, hidden: int, num_classes: int, c_ref: AxisRef | None, h_ref: AxisRef) -> None:
        super().__init__()
        self.fc1 = set_axes(nn.Linear(c, hidden), weight=(h_ref, c_ref), bias=(h_ref,))
        self.fc2 = set_axes(nn.Linear(hidden, num_classes), weight=(None, h_ref), bias=(None,))

    def forward(self, h: Tensor) -> Tensor:
        return self.fc2(nn.functional.hardswish(self.fc1(h.mean(dim=(2, 3)))))


def build_mobilenet(params: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
                    width_ratio: float, depth: int | None, prune_stream: bool) -> BlockModel:
    if len(input_shape) != 3:
        raise ValueError(f"mobilenet needs image inputs (channels, height, width), got shape {input_shape}")
    arch, mult = params["arch"], float(params["width_mult"])
    layout, stem_c, last_c, head_c = LAYOUTS[arch]
    v3 = arch != "v2"
    act: type[nn.Module] = nn.ReLU6 if not v3 else nn.ReLU
    total = mobilenet_depth(arch)
    keep = total if depth is None else depth
    sc = Scaler(width_ratio)
    stage = [0]

    def stream(c_full: int) -> tuple[int, AxisRef | None]:
        if not prune_stream:
            return c_full, None
        axis = f"stage{stage[0]}.channels"
        return sc.units(axis, c_full), AxisRef(axis)

    size = input_shape[1]
    c_prev, r_prev = stream(make_divisible(stem_c * mult))
    stride = 2 if size >= 4 else 1
    size = (size + 1) // 2 if stride == 2 else size
    stem = ConvNormAct(input_shape[0], c_prev, 3, stride, 1, None, r_prev, nn.Hardswish if v3 else nn.ReLU6)
    full_prev = make_divisible(stem_c * mult)
    blocks: list[nn.Module] = []
    exits: list[nn.Module] = []
    for b, cfg in enumerate(layout):
        out_full = make_divisible(cfg.cout * mult)
        exp_full = (int(round(full_prev * cfg.expand_ratio)) if cfg.expand_ratio is not None
                    else make_divisible(cfg.expanded * mult))
        stride = cfg.stride if size >= 4 else 1  # small inputs: stop halving below 4 pixels
        residual = cfg.stride == 1 and full_prev == out_full  # the layout's, whatever the input size
        expand = exp_full != full_prev
        if not residual:
            stage[0] += 1
        c_out, r_out = (c_prev, r_prev) if residual else stream(out_full)
        if expand:
            h_ref: AxisRef | None = AxisRef(f"block{b}.channels")
            hidden = sc.units(h_ref.axis, exp_full)  # type: ignore[union-attr]
        else:
            h_ref, hidden = r_prev, c_prev  # no expand conv: the depthwise filters the input stream
        s_ref = AxisRef(f"block{b}.se") if cfg.se else None
        squeeze = sc.units(s_ref.axis, make_divisible(exp_full // 4)) if s_ref else 0
        if b < keep:
            block_act: type[nn.Module] = nn.Hardswish if cfg.hardswish else act
            blocks.append(InvertedResidual(c_prev, hidden, c_out, cfg, stride, squeeze,
                                           (r_prev, h_ref, s_ref, r_out), block_act, residual, expand))
            exits.append(PoolExit(c_out, num_classes, r_out))
        size = (size + 1) // 2 if stride == 2 else size
        c_prev, r_prev, full_prev = c_out, r_out, out_full
    b = len(layout)
    last_full = make_divisible(last_c * max(1.0, mult)) if last_c else 6 * full_prev
    last_ref = AxisRef(f"block{b}.channels")
    last = sc.units(last_ref.axis, last_full)
    if b < keep:
        blocks.append(ConvNormAct(c_prev, last, 1, 1, 1, r_prev, last_ref, nn.Hardswish if v3 else nn.ReLU6))
        if head_c is None:
            exits.append(PoolExit(last, num_classes, last_ref))
        else:
            head_ref = AxisRef(f"block{b}.head")
            exits.append(HeadExit(last, sc.units(head_ref.axis, make_divisible(head_c * mult)), num_classes,
                                  last_ref, head_ref))
    else:  # register the last block's axes (width_axes lists the full model's) without building it
        if head_c is not None:
            sc.units(f"block{b}.head", make_divisible(head_c * mult))
    return BlockModel(stem, blocks, exits, width_axes=sc.axes, num_classes=num_classes,
                      input_shape=input_shape, full_depth=total, width_ratio=width_ratio)
