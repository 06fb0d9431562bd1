"""The block-model contract every model family follows (see ARCHITECTURE.md, "The model contract").

A :class:`BlockModel` is ``stem -> blocks[0] -> ... -> blocks[L-1]`` with one small classifier
(``exits[b]``) reading the output of every block. Depth pruning keeps the first ``depth`` blocks and
their exits; width pruning keeps, for every *axis* (a group of prunable units such as the channels of
one conv block or the heads of one attention block), ``ceil(width_ratio * size)`` units. Every
parameter records, per tensor dimension, which axis indexes it (:class:`AxisRef`), so a submodel's
state dict is exactly the full state dict sliced along those axes and restricted to its blocks, with
the same names. That is what lets the server extract and merge submodels without knowing the family.

Families attach axes to the parameters of each leaf module with :func:`set_axes`;
:meth:`BlockModel.param_axes` collects them under the full dotted names.

Normalisation: families use GroupNorm / LayerNorm (per-sample statistics), never BatchNorm with
running statistics. BatchNorm's running mean/var would be averaged across clients whose submodels have
different widths and whose data are non-IID, so the merged statistics match no client (HeteroFL's
"static BN" problem), and train vs. eval behaviour would depend on batch composition. Per-sample norms
behave identically in training and evaluation, for any width, and carry no buffers to merge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class AxisRef:
    """A tensor dimension indexed by the units of `axis`; each unit spans `unit_size` elements.

    Example: the output rows of a query projection are indexed by ``"block2.heads"`` with
    ``unit_size = head_dim``: keeping heads (0, 2) keeps rows ``[0:hd] + [2*hd:3*hd]``.
    """

    axis: str
    unit_size: int = 1


AxesTuple = tuple[AxisRef | None, ...]


def scaled_units(size: int, width_ratio: float) -> int:
    """Units kept of an axis of `size` units at `width_ratio`: ``ceil(ratio * size)``, at least 1.

    A tiny epsilon keeps float noise (0.1 * 30 = 3.0000000000000004) from adding a unit.
    """
    if not 0.0 < width_ratio <= 1.0:
        raise ValueError(f"width_ratio must be in (0, 1], got {width_ratio}")
    return max(1, min(size, math.ceil(width_ratio * size - 1e-9)))


def set_axes(module: nn.Module, **axes: AxesTuple) -> nn.Module:
    """Declare the axes of `module`'s own parameters/buffers (by local name, e.g. ``weight``).

    Dimensions not listed are never pruned. Returns `module` so it can wrap a constructor call.
    """
    own = dict(getattr(module, "_fleetsim_axes", {}))
    own.update(axes)
    module._fleetsim_axes = own  # type: ignore[attr-defined]
    return module


def param_block(name: str) -> int:
    """The block a parameter belongs to: ``stem.*`` -> 0 (the stem is folded into block 0),
    ``blocks.b.*`` and ``exits.b.*`` -> b. Used for depth restriction, freezing and coverage."""
    head, _, rest = name.partition(".")
    if head == "stem":
        return 0
    if head in ("blocks", "exits"):
        return int(rest.split(".", 1)[0])
    raise ValueError(f"parameter {name!r} is not under stem/blocks/exits")


class BlockModel(nn.Module):
    """stem + blocks + exits, with declared prunable axes.

    Attributes set by the constructor:
      ``num_classes``, ``input_shape`` (per sample, no batch dim), ``input_dtype``,
      ``full_depth`` (blocks of the full model), ``width_ratio``, and
      ``is_block_model`` (False for wrapped user models: one block, no axes).
    """

    is_block_model: bool = True

    def __init__(
        self,
        stem: nn.Module,
        blocks: list[nn.Module],
        exits: list[nn.Module],
        *,
        width_axes: dict[str, int],
        num_classes: int,
        input_shape: tuple[int, ...],
        full_depth: int,
        width_ratio: float = 1.0,
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if len(blocks) != len(exits) or not blocks:
            raise ValueError("a BlockModel needs at least one block and exactly one exit per block")
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.exits = nn.ModuleList(exits)
        self._width_axes = dict(width_axes)
        self.num_classes = int(num_classes)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_dtype = input_dtype
        self.full_depth = int(full_depth)
        self.width_ratio = float(width_ratio)

    @property
    def depth(self) -> int:
        """Blocks present in this (sub)model."""
        return len(self.blocks)

    def forward(self, x: Tensor, depth: int | None = None) -> list[Tensor]:  # noqa: D401
        """Logits of every exit up to `depth` (default: all present blocks); last = deepest.

        Families must not override this: the cost model traces stem, blocks and exits one by one
        and relies on the forward being exactly this composition.
        """
        d = self.depth if depth is None else int(depth)
        if not 1 <= d <= self.depth:
            raise ValueError(f"depth must be in 1..{self.depth}, got {depth}")
        h = self.stem(x)
        outs: list[Tensor] = []
        for b in range(d):
            h = self.blocks[b](h)
            outs.append(self.exits[b](h))
        return outs

    def width_axes(self) -> dict[str, int]:
        """Full size (in units) of every prunable axis of the FULL model (all blocks), independent
        of this instance's width_ratio and depth, so plans built from any submodel agree."""
        return dict(self._width_axes)

    def param_axes(self) -> dict[str, AxesTuple]:
        """For every state-dict entry, the axis (or None) of each tensor dimension."""
        out: dict[str, AxesTuple] = {}
        for mod_name, mod in self.named_modules():
            declared: dict[str, AxesTuple] = getattr(mod, "_fleetsim_axes", {})
            prefix = mod_name + "." if mod_name else ""
            tensors = list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False))
            for local, tensor in tensors:
                axes = declared.get(local, (None,) * tensor.dim())
                if len(axes) != tensor.dim():
                    raise ValueError(f"{prefix}{local}: {len(axes)} axes for a {tensor.dim()}-d tensor")
                out[prefix + local] = tuple(axes)
        return out

    def example_input(self, batch_size: int = 1, device: Any = None) -> Tensor:
        """A zero batch of the right shape and dtype (used for tracing on the meta device)."""
        return torch.zeros((batch_size, *self.input_shape), dtype=self.input_dtype, device=device)

    def unit_counts(self) -> dict[str, int]:
        """Units of every axis present in THIS instance (``scaled_units(size, width_ratio)``)."""
        return {a: scaled_units(s, self.width_ratio) for a, s in self._width_axes.items()}


class Scaler:
    """Helper for family constructors: registers axes at full size, returns the kept unit count.

    ``units("block3.channels", 64)`` records the axis at 64 units and returns ``ceil(r * 64)``.
    """

    def __init__(self, width_ratio: float) -> None:
        self.width_ratio = float(width_ratio)
        self.axes: dict[str, int] = {}

    def units(self, axis: str, size: int) -> int:
        if axis in self.axes and self.axes[axis] != size:
            raise ValueError(f"axis {axis!r} registered with sizes {self.axes[axis]} and {size}")
        self.axes[axis] = int(size)
        return scaled_units(size, self.width_ratio)
