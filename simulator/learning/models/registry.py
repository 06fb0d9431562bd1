"""``build_model``: the one way to construct a model (full or sub) from a ModelSpec.

Family builders share the signature ``(params, num_classes, input_shape, width_ratio, depth,
prune_stream) -> BlockModel``; ``register_family`` adds one. Builders raise ValueError for shapes
that do not fit (e.g. a vit patch larger than the image); this turns them into InputError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from simulator.config.workload import ModelSpec
from simulator.errors import InputError
from simulator.learning.models.base import BlockModel
from simulator.learning.models.cnn import build_cnn, build_mlp
from simulator.learning.models.mobilenet import build_mobilenet, mobilenet_depth
from simulator.learning.models.resnet import build_resnet, stage_layout
from simulator.learning.models.transformer import build_text, build_vit
from simulator.learning.models.user import build_user

Builder = Callable[[dict[str, Any], int, tuple[int, ...], float, "int | None", bool], BlockModel]

FAMILIES: dict[str, Builder] = {
    "resnet": build_resnet,
    "cnn": build_cnn,
    "mlp": build_mlp,
    "vit": build_vit,
    "text-transformer": build_text,
    "mobilenet": build_mobilenet,
}


def register_family(name: str, builder: Builder) -> None:
    """Add a model family (its name must also be accepted by ModelSpec to be reachable from YAML)."""
    FAMILIES[name] = builder


def full_depth(spec: ModelSpec) -> int:
    """Blocks of the full model, without building it (user models: 1)."""
    if not spec.is_builtin:
        return 1
    params = spec.resolved_params()
    if spec.name == "mobilenet":
        return mobilenet_depth(params["arch"])
    return sum(stage_layout(params["blocks"])) if spec.name == "resnet" else int(params["blocks"])


def build_model(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...] | list[int],
                width_ratio: float = 1.0, depth: int | None = None, *, seed: int | None = None) -> BlockModel:
    """Build the (sub)model of `spec`: ``ceil(width_ratio * size)`` units per axis, first `depth`
    blocks. Parameter names equal the full model's. With `seed`, initialisation uses a private torch
    RNG seeded with it (the global RNG is left untouched); otherwise the global RNG. Construction
    honours ``with torch.device("meta"):`` so planning a large model allocates nothing."""
    shape = tuple(int(s) for s in input_shape)
    if not 0.0 < float(width_ratio) <= 1.0:
        raise InputError("width_ratio must be in (0, 1]", field="width_ratio", value=width_ratio,
                         accepted="a number in (0, 1]")
    if not spec.is_builtin:
        return _seeded(seed, lambda: build_user(spec.name, spec.kwargs, num_classes, shape, width_ratio, depth))
    total = full_depth(spec)
    if depth is not None and not 1 <= int(depth) <= total:
        raise InputError(f"depth out of range for {spec.name!r} with {total} blocks", field="depth",
                         value=depth, accepted=f"an integer in 1..{total}")
    params = spec.resolved_params()
    builder = FAMILIES[spec.name]
    try:
        return _seeded(seed, lambda: builder(params, int(num_classes), shape, float(width_ratio),
                                             None if depth is None else int(depth), spec.prune_stream))
    except ValueError as exc:
        raise InputError(str(exc), field="workload.model", value=spec.name,
                         accepted="a model whose input matches the dataset") from None


def _seeded(seed: int | None, make: Callable[[], BlockModel]) -> BlockModel:
    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))  # CPU only (see trainer.deterministic)
        return make()
