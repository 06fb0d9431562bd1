"""Block-structured models (see base.py for the contract) and the family registry."""

from simulator.learning.models.base import (
    AxisRef,
    BlockModel,
    param_block,
    scaled_units,
    set_axes,
)
from simulator.learning.models.registry import FAMILIES, build_model, full_depth, register_family

__all__ = [
    "AxisRef", "BlockModel", "FAMILIES", "build_model", "full_depth", "param_block", "register_family",
    "scaled_units", "set_axes",
]
