"""User models given as ``package.module:Name``: any ``nn.Module`` class (or factory returning one).

A callable that names a ``width_ratio`` parameter is a *block-model builder*: it returns a
:class:`BlockModel` at any width ratio and depth and is pruned like a built-in family. Anything else is
wrapped as a one-block :class:`BlockModel` with no axes (``is_block_model = False``):
the stem and exit are identities and the user's module is ``blocks[0]``, so its parameters are named
``blocks.0.<user name>``. It can be trained and merged like any other model, but not pruned: width or
depth reduction is refused with an InputError. Constructor arguments come from ``ModelSpec.kwargs``;
``num_classes`` and ``input_shape`` are passed too when the constructor accepts them.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch
from torch import Tensor, nn

from simulator.errors import InputError
from simulator.learning.models.base import BlockModel

FIELD = "workload.model.name"
ACCEPTED = "'package.module:ClassName' naming an importable torch.nn.Module subclass (or a factory returning one)"


class _ListOutput(nn.Module):
    """Turns the user module's single tensor into the exit's logits (identity, no parameters)."""

    def forward(self, h: Tensor) -> Tensor:
        return h


def resolve(name: str) -> Any:
    """Import ``module:attr`` and return the attribute, or raise InputError saying which part failed."""
    mod_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(mod_name)
    except Exception as exc:  # an ImportError or an error raised while importing the user's code
        raise InputError(f"cannot import module {mod_name!r} ({type(exc).__name__}: {exc})",
                         field=FIELD, value=name, accepted=ACCEPTED) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"module {mod_name!r} has no attribute {attr!r}", field=FIELD, value=name,
                             accepted=ACCEPTED)
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"{name!r} is not a class or factory", field=FIELD, value=name, accepted=ACCEPTED)
    return obj


def _call_with(obj: Any, kwargs: dict[str, Any], num_classes: int, input_shape: tuple[int, ...]) -> Any:
    """Call the constructor with `kwargs`, adding num_classes / input_shape when it names them
    explicitly (not through **kwargs, which often forward to nn.Module.__init__ and would fail)."""
    args = dict(kwargs)
    try:
        names = set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        names = set()
    for key, value in (("num_classes", num_classes), ("input_shape", tuple(input_shape))):
        if key in names and key not in args:
            args[key] = value
    return obj(**args)


def is_block_builder(obj: Any) -> bool:
    """A user's *block-model builder*: a callable naming a ``width_ratio`` parameter (and usually
    ``depth``) that returns a :class:`BlockModel` — prunable like a built-in family."""
    try:
        return "width_ratio" in inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False


def user_model_is_prunable(name: str) -> bool:
    """Whether ``module:Name`` is a block-model builder (imports the module: it runs the user's code)."""
    return is_block_builder(resolve(name))


def _build_block_model(name: str, builder: Any, kwargs: dict[str, Any], num_classes: int,
                       input_shape: tuple[int, ...], width_ratio: float, depth: int | None) -> BlockModel:
    names = set(inspect.signature(builder).parameters)
    args = dict(kwargs)
    for key, value in (("num_classes", num_classes), ("input_shape", tuple(input_shape)),
                       ("width_ratio", float(width_ratio)), ("depth", depth)):
        if key in names:
            args[key] = value
    try:
        model = builder(**args)
    except Exception as exc:
        raise InputError(f"building {name!r} at width {width_ratio:g}, depth {depth} failed "
                         f"({type(exc).__name__}: {exc})", field="workload.model.kwargs", value=kwargs,
                         accepted="a builder that accepts these arguments at every width ratio and depth") from None
    if not isinstance(model, BlockModel):
        raise InputError(f"{name!r} takes width_ratio, so it must return a simulator.learning.models.BlockModel, "
                         f"not a {type(model).__name__}", field=FIELD, value=name,
                         accepted="a block-model builder (README, 'Your own model') or a plain nn.Module class")
    return model


def build_user(name: str, kwargs: dict[str, Any], num_classes: int, input_shape: tuple[int, ...],
               width_ratio: float, depth: int | None) -> BlockModel:
    obj = resolve(name)
    if is_block_builder(obj):
        return _build_block_model(name, obj, kwargs, num_classes, input_shape, width_ratio, depth)
    if width_ratio != 1.0 or depth not in (None, 1):
        raise InputError("a user model cannot be width- or depth-pruned (it declares no blocks or axes)",
                         field=FIELD, value=name, accepted="width_ratio 1.0 and depth 1 for user models")
    try:
        module = _call_with(obj, kwargs, num_classes, input_shape)
    except Exception as exc:
        raise InputError(f"constructing {name!r} failed ({type(exc).__name__}: {exc})",
                         field="workload.model.kwargs", value=kwargs,
                         accepted="keyword arguments the model's constructor accepts") from None
    if not isinstance(module, nn.Module):
        raise InputError(f"{name!r} produced a {type(module).__name__}, not a torch.nn.Module",
                         field=FIELD, value=name, accepted=ACCEPTED)
    model = BlockModel(nn.Identity(), [module], [_ListOutput()], width_axes={}, num_classes=num_classes,
                       input_shape=input_shape, full_depth=1, width_ratio=1.0,
                       input_dtype=getattr(module, "input_dtype", torch.float32))
    model.is_block_model = False
    return model
