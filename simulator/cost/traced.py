"""What a meta-device trace of a model gives, per block: plain numbers, no torch.

Why a module of its own: :mod:`simulator.cost.meta_trace` (the tracer) needs torch, but a warm cache
(:mod:`simulator.cost.cache`) only needs these records, so planning a run whose models were traced
before — ``fleetsim validate``, ``explain``, a timing-only run — never imports torch. ``to_row`` /
``from_row`` are the cache's JSON rows (floats round-trip exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GemmWidths = tuple[tuple[int, float], ...]  # ((output width, FLOPs per sample), ...) sorted by width


@dataclass(frozen=True)
class TracedPart:
    """One part of a block (its body, or its exit): the figures of one training step per sample
    (FLOPs, bytes) or per step (ops). ``fwd_gemm``/``bwd_gemm``: GEMM FLOPs by output width."""

    params: int
    fwd_flops_per_sample: float
    activation_bytes_per_sample: float
    fwd_elementwise_bytes_per_sample: float
    bwd_elementwise_bytes_per_sample: float
    fwd_ops: int
    bwd_ops: int
    fwd_gemm: GemmWidths
    bwd_gemm: GemmWidths

    def to_row(self) -> dict[str, Any]:
        row = dict(vars(self))
        row["fwd_gemm"] = [list(p) for p in self.fwd_gemm]
        row["bwd_gemm"] = [list(p) for p in self.bwd_gemm]
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "TracedPart":
        def gemm(pairs: Any) -> GemmWidths:
            return tuple((int(n), float(f)) for n, f in pairs)

        return cls(int(row["params"]), float(row["fwd_flops_per_sample"]), float(row["activation_bytes_per_sample"]),
                   float(row["fwd_elementwise_bytes_per_sample"]), float(row["bwd_elementwise_bytes_per_sample"]),
                   int(row["fwd_ops"]), int(row["bwd_ops"]), gemm(row["fwd_gemm"]), gemm(row["bwd_gemm"]))


@dataclass(frozen=True)
class Traced:
    """One block of the full-depth model: its body (block 0's includes the stem) and its exit."""

    body: TracedPart
    exit: TracedPart

    def to_row(self) -> dict[str, Any]:
        return {"body": self.body.to_row(), "exit": self.exit.to_row()}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Traced":
        return cls(TracedPart.from_row(row["body"]), TracedPart.from_row(row["exit"]))
