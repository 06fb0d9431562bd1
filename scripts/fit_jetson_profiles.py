#!/usr/bin/env python3
"""Fit the Jetson profiles to published training measurements, derive the rest, write the page.

1. Rows: ``device_profiles/measurements/jetson_training.csv``, each converted to seconds per step
   (``iteration_s`` as is; ``epoch_s / steps_per_epoch``; batch ÷ throughput). The sources time the
   whole loop, so a row is an upper bound on the compute-only step the cost model predicts: data
   loading (DataLoader wait, H2D copy), Python, loss and accuracy are inside, and for epoch rows
   possibly the per-epoch validation pass (never stated). Nothing is subtracted: the page gives the
   size a validation pass would have where the source states the validation split.
2. Workloads: each row traced with the cost model (``simulator.cost``): torchvision ResNet-18 at
   224² (the ``resnet18`` preset, classifier of the row's classes) or SSD300-MobileNetV1 (traced from
   ``scripts/ssd_mobilenet_v1.py``), single exit, SGD with momentum, at the row's batch.
3. Fit (``simulator.cost.fit.fit_cost_model``, the joint NNLS ``fleetsim calibrate`` uses) per board
   with a fit split (:data:`SPLITS`), in the mode :data:`ASSUMED_MODE` says (no row states one). Only
   the figures the fit rows can tell apart are free, in cost_fit's order (training_efficiency,
   elementwise_efficiency, op_overhead_s, step_overhead_s; the GEMM tile width only with five or more
   independent rows); the others keep the board's documented assumptions (:mod:`jetson_hardware`),
   their time subtracted from the measured one before the fit.
4. Derive every other board from the fitted one by hardware ratios (:func:`profile_figures`): FP32
   peak = CUDA cores x 2 x clock, bandwidth from the datasheet, power modes from nvpmodel
   (``jetson_power.csv``), efficiencies carried over from the fitted Nano (stated as an assumption).
5. Write the figures and a ``sources:`` entry per figure into ``device_profiles/*.yaml`` (values
   edited in place, comments kept) and ``docs/jetson_validation.md``; predictions there are made
   from the profiles as written, the way a simulation makes them.

    python scripts/fit_jetson_profiles.py           # rewrite the profiles and the page
    python scripts/fit_jetson_profiles.py --check   # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # this tree's simulator; the SSD module and helpers

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from jetson_hardware import BOARDS, Board, mode_figures, power_rows  # noqa: E402
from simulator.cost import model as costmod  # noqa: E402
from simulator.cost.calibrate import parse_model  # noqa: E402
from simulator.config.profiles import DeviceProfile, load_profile  # noqa: E402
from simulator.cost.fit import CostFit, fit_cost_model  # noqa: E402

TRAINING_CSV = ROOT / "device_profiles" / "measurements" / "jetson_training.csv"
PROFILES_DIR = ROOT / "device_profiles"
PAGE = ROOT / "docs" / "jetson_validation.md"
FITTED_BOARD = "jetson-nano-4gb"
FIGURES = ("training_efficiency", "elementwise_efficiency", "op_overhead_s", "step_overhead_s")
MODELS = {"resnet18": {"name": "resnet", "preset": "resnet18"},
          "ssd-mobilenet-v1": {"name": "ssd_mobilenet_v1:SSD300MobileNetV1"}}
ELEMENTWISE_ASSUMED = 0.4   # the profiles' assumption (norm/activation kernels vs DRAM peak); not fitted
TILE_ASSUMED = 32           # a warp; cuDNN/cuBLAS tiles are 32-128 wide (the profiles' assumption)


@dataclass(frozen=True)
class Split:
    """Which rows of a board fit it, which are held out, and which repeat a fit row's workload and
    source (shown, never counted as held out: they are not independent of the fit)."""

    fit: tuple[str, ...]
    held_out: tuple[str, ...]
    same_workload: tuple[str, ...] = ()


SPLITS = {
    "jetson-nano-4gb": Split(fit=("nvji-nano-resnet18-plantclef-iter",),
                             held_out=("nvji-nano-resnet18-catdog-epoch", "nvji-nano-ssd-mobilenet-v1-fruit-epoch"),
                             same_workload=("nvji-nano-resnet18-plantclef-epoch",)),
    "jetson-xavier-nx": Split(fit=(), held_out=("nvji-xaviernx-ssd-mobilenet-v1-fruit-epoch",)),
}
# No row states a power mode. The Nano's default mode 0 (MAXN, JFEY-NANO) is also its fastest; in the
# 5 W mode the ResNet-18 row would need 1.5x the fitted GEMM efficiency (the page shows it). The Xavier
# NX row dates from July 2020, when the stock modes were 10 W and 15 W [m]: predicted in the faster one.
ASSUMED_MODE = {"jetson-nano-4gb": "maxn", "jetson-xavier-nx": "15w"}
# The Nano profile before this fit (git show b7e5d77:device_profiles/jetson-nano-4gb.yaml).
OLD_NANO = {"peak_fp32_gflops": 235.9, "training_efficiency": 0.27, "gemm_tile_width": 32,
            "elementwise_efficiency": 0.4, "op_overhead_s": 60e-6, "step_overhead_s": 3e-3, "bandwidth_gbps": 25.6}


@dataclass(frozen=True)
class Row:
    id: str
    board: str
    model: str
    num_classes: int
    input_shape: tuple[int, ...]
    batch_size: int
    optimizer: str
    metric: str
    value: float
    low: float | None
    high: float | None
    steps_per_epoch: int | None
    includes_data_loading: str
    notes: str

    def _per_step(self, v: float) -> float:
        if self.metric in ("iteration_s", "step_s"):
            return v
        if self.metric == "epoch_s":
            return v / float(self.steps_per_epoch or 0)
        if self.metric == "throughput_samples_per_s":
            return self.batch_size / v
        raise ValueError(f"{self.id}: unknown metric {self.metric!r}")

    @property
    def step_s(self) -> float:
        """Measured seconds per training step (data loading and Python included, as the source timed it)."""
        return self._per_step(self.value)

    @property
    def step_range_s(self) -> tuple[float, float] | None:
        if self.low is None or self.high is None:
            return None
        return tuple(sorted((self._per_step(self.low), self._per_step(self.high))))  # type: ignore[return-value]


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


def load_rows(path: Path = TRAINING_CSV) -> list[Row]:
    with path.open(newline="") as f:
        raw = list(csv.DictReader(f))
    rows = []
    for r in raw:
        shape = tuple(int(s) for s in re.match(r"\s*(\d+(?:x\d+)*)", r["input_shape"]).group(1).split("x"))
        opt = r["optimizer"]
        kind = "momentum" if "momentum" in opt.lower() else "adam" if "adam" in opt.lower() else "sgd"
        spe = r.get("steps_per_epoch", "").strip()
        rows.append(Row(r["id"], r["board"], r["model"], int(r["num_classes"]), shape, int(r["batch_size"]), kind,
                        r["metric"], float(r["value"]), _float(r["value_low"]), _float(r["value_high"]),
                        int(spe) if spe else None, r["includes_data_loading"], r["notes"]))
    assigned = {i for s in SPLITS.values() for i in (*s.fit, *s.held_out, *s.same_workload)}
    missing = [r.id for r in rows if r.id not in assigned]
    if missing:
        raise SystemExit(f"rows without a role in SPLITS (fit, held out or same workload): {missing}")
    return rows


def row_cost(row: Row) -> costmod.ModelCost:
    spec = parse_model(MODELS[row.model])
    return costmod.model_cost(spec, row.num_classes, row.input_shape, exits="final")


def row_work(row: Row) -> costmod.StepWork:
    return costmod.step_work(row_cost(row), row.batch_size, row.optimizer)


def forward_work(row: Row) -> costmod.StepWork:
    """One forward-only batch of the row's model (a validation step): forward GEMMs, the weights read
    once, forward elementwise traffic and ops."""
    from simulator.cost.cache import trace

    spec = parse_model(MODELS[row.model])
    traced = trace(spec.resolved(), row.num_classes, row.input_shape, 1.0)
    parts = [t.body for t in traced] + [traced[-1].exit]
    gemm: dict[int, float] = {}
    for p in parts:
        for width, flops in p.fwd_gemm:
            gemm[width] = gemm.get(width, 0.0) + flops * row.batch_size
    return costmod.StepWork(tuple(sorted(gemm.items())), float(4 * sum(p.params for p in parts)),
                            sum(p.fwd_elementwise_bytes_per_sample for p in parts) * row.batch_size,
                            sum(p.fwd_ops for p in parts))


# ------------------------------------------------------------------ the fit


def free_figures(works: list[costmod.StepWork], measured: np.ndarray, tile: int) -> tuple[str, ...]:
    """The figures the rows can determine: cost_fit's columns (GEMM, elementwise, per op, per step),
    kept in that order while each adds rank. Columns are scaled to unit length and a column adds rank
    only if the smallest singular value stays above 1e-3: two timings of one network that differ only
    in the classifier's width (ResNet-18 with 20 or 2 classes, 1e-5 apart) are one workload, not two."""
    cols = np.array([[w.tiled_gemm_flops(tile), w.elementwise_bytes, float(w.ops), 1.0] for w in works])
    a = cols / measured[:, None]
    norms = np.linalg.norm(a, axis=0)
    a = a / np.where(norms > 0, norms, 1.0)
    kept: list[int] = []
    for j in range(4):
        trial = kept + [j]
        if norms[j] > 0 and len(trial) <= len(a) and np.linalg.svd(a[:, trial], compute_uv=False).min() > 1e-3:
            kept = trial
    return tuple(FIGURES[j] for j in kept)


def fit_board(points: list[tuple[costmod.StepWork, float]], peak_flops: float, bandwidth: float,
              fixed: CostFit) -> tuple[CostFit, tuple[str, ...]]:
    """cost_fit's joint fit of the identifiable figures; the others at ``fixed``'s values (their time
    taken off the measured times, their work columns zeroed, so cost_fit cannot move them)."""
    works = [w for w, _ in points]
    measured = np.array([m for _, m in points], dtype=float)
    free = free_figures(works, measured, fixed.gemm_tile_width)
    if "training_efficiency" not in free:
        raise ValueError("the fit rows do no GEMM work: training_efficiency cannot be fitted")
    reduced = []
    for w, m in points:
        if "elementwise_efficiency" not in free:
            m -= w.elementwise_bytes / (bandwidth * fixed.elementwise_efficiency)
            w = replace(w, elementwise_bytes=0.0)
        if "op_overhead_s" not in free:
            m -= w.ops * fixed.op_overhead_s
            w = replace(w, ops=0)
        if "step_overhead_s" not in free:
            m -= fixed.step_overhead_s
        if m <= 0:
            raise ValueError("the fixed figures alone exceed a measured step: revise them")
        reduced.append((w, m))
    tiles = None if len(points) >= 5 and len(free) == 4 else (fixed.gemm_tile_width,)
    fit = fit_cost_model(reduced, peak_flops, bandwidth, **({} if tiles is None else {"tile_widths": tiles}))
    if "step_overhead_s" not in free and fit.step_overhead_s > 0:
        # cost_fit always has a per-step column: fit rows of one workload timed differently would move it
        raise ValueError("the fit rows would set a per-step overhead they cannot identify: give one row per workload")
    return CostFit(
        training_efficiency=fit.training_efficiency,
        elementwise_efficiency=fit.elementwise_efficiency if "elementwise_efficiency" in free
        else fixed.elementwise_efficiency,
        op_overhead_s=fit.op_overhead_s if "op_overhead_s" in free else fixed.op_overhead_s,
        step_overhead_s=fit.step_overhead_s if "step_overhead_s" in free else fixed.step_overhead_s,
        gemm_tile_width=fit.gemm_tile_width), free


def _mode_peak_bw(board: Board, mode: str, rows: list[dict[str, str]]) -> tuple[float, float]:
    figs = mode_figures(board, mode, rows)
    return (board.peak_fp32_gflops * 1e9 * figs["clock_scale"][0], board.bandwidth_gbps * 1e9 * figs["bandwidth_scale"][0])


def fitted_nano(rows: list[Row] | None = None, fit_ids: tuple[str, ...] | None = None) -> tuple[CostFit, tuple[str, ...]]:
    """The fitted board's figures from its fit rows (``fit_ids`` overrides the split, for the page's
    sensitivity table)."""
    rows = load_rows() if rows is None else rows
    board = BOARDS[FITTED_BOARD]
    ids = SPLITS[FITTED_BOARD].fit if fit_ids is None else fit_ids
    points = [(row_work(r), r.step_s) for r in rows if r.id in ids]
    peak, bw = _mode_peak_bw(board, ASSUMED_MODE[FITTED_BOARD], power_rows())
    fixed = CostFit(1.0, ELEMENTWISE_ASSUMED, board.op_overhead_s, board.step_overhead_s, TILE_ASSUMED)
    return fit_board(points, peak, bw, fixed)


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def profile_figures(rows: list[Row] | None = None) -> dict[str, dict[str, tuple[Any, str]]]:
    """Every figure the script writes, per profile: ``{dotted path: (value, source)}``. Each source
    starts with its kind (``fitted:``, ``derived:``, ``datasheet:``, ``nvpmodel:``, ``measured:``,
    ``assumption:``), which becomes the value line's comment tag."""
    rows = load_rows() if rows is None else rows
    nano_fit, free = fitted_nano(rows)
    split = SPLITS[FITTED_BOARD]
    n_fit = len(split.fit)
    mode = ASSUMED_MODE[FITTED_BOARD]
    held = {r.board: r.id for r in rows if r.board != FITTED_BOARD}
    power = power_rows()
    out: dict[str, dict[str, tuple[Any, str]]] = {}
    for name, b in BOARDS.items():
        fitted = name == FITTED_BOARD
        check = (f"; held out: its measured row {held[name]} checks the derivation (docs/jetson_validation.md)"
                 if name in held else "; no training row on this board checks it")
        carried = (f"derived: carried over from the fitted {FITTED_BOARD} (assumption: the same share of peak on "
                   f"{b.arch} as on Maxwell){check}")
        not_free = f"not identifiable from {n_fit} fit row(s) of one workload"
        op_src = (f"assumption: [m] by CPU class, {b.op_overhead_s * 1e6:g} us per op for {b.cpu} "
                  f"(A57 Nano 60, TX2 40, Carmel 30, A78AE Orin 20 us); not fitted")
        step_src = f"assumption: [m] by CPU class, {b.step_overhead_s * 1e3:g} ms per step for {b.cpu}; not fitted"
        figs: dict[str, tuple[Any, str]] = {
            "compute.peak_fp32_gflops": (b.peak_fp32_gflops, b.peak_source),
            "compute.peak_fp16_gflops": (round(2 * b.peak_fp32_gflops, 1), "derived: 2 x FP32 on CUDA cores [S19]"),
            "compute.training_efficiency": (_sig(nano_fit.training_efficiency), (
                f"fitted: cost_fit.fit_cost_model on {', '.join(split.fit)} (jetson_training.csv, NVJI) in mode "
                f"{mode} (assumed: no row states one); free figures: {', '.join(free)}") if fitted else carried),
            "compute.gemm_tile_width": (nano_fit.gemm_tile_width,
                                        f"assumption: {TILE_ASSUMED}, a warp (cuDNN/cuBLAS tiles are 32-128 wide); "
                                        + (not_free if fitted else f"as {FITTED_BOARD}")),
            "compute.elementwise_efficiency": (_sig(nano_fit.elementwise_efficiency), (
                f"assumption: {ELEMENTWISE_ASSUMED:g}; {not_free}" if "elementwise_efficiency" not in free
                else "fitted: with training_efficiency") if fitted
                else f"assumption: as {FITTED_BOARD} ({ELEMENTWISE_ASSUMED:g}, not fitted there either)"),
            "compute.op_overhead_s": (b.op_overhead_s if not fitted or "op_overhead_s" not in free
                                      else _sig(nano_fit.op_overhead_s), op_src),
            "compute.step_overhead_s": (b.step_overhead_s if not fitted or "step_overhead_s" not in free
                                        else _sig(nano_fit.step_overhead_s), step_src),
            "memory.bandwidth_gbps": (b.bandwidth_gbps, b.bandwidth_source),
            "idle_w": (b.idle_w, b.idle_source),
        }
        for mode_name in b.modes:
            for key, (value, source) in mode_figures(b, mode_name, power).items():
                figs[f"power_modes.{mode_name}.{key}"] = (value, source)
        out[name] = figs
    return out


# ------------------------------------------------------------------ predictions


@dataclass(frozen=True)
class Prediction:
    row: Row
    role: str            # "fit", "held out", "same workload as fit"
    mode: str
    terms: costmod.StepTime

    @property
    def predicted_s(self) -> float:
        return self.terms.total_s

    @property
    def error(self) -> float:
        return self.predicted_s / self.row.step_s - 1.0


def predict_terms(profile: DeviceProfile, mode: str, work: costmod.StepWork) -> costmod.StepTime:
    """The step time a simulation gives this work on `profile` in `mode` (planning.Planner's call)."""
    c = profile.compute
    return costmod.work_time_terms(work, profile.effective_flops(mode), profile.mode_memory_bandwidth_bytes_per_s(mode),
                                   c.step_overhead_s, elementwise_efficiency=c.elementwise_efficiency,
                                   op_overhead_s=c.op_overhead_s, gemm_tile_width=c.gemm_tile_width)


def predictions(rows: list[Row] | None = None, modes: dict[str, str] | None = None) -> list[Prediction]:
    """Every row predicted from the shipped profiles (as loaded by the simulator)."""
    rows = load_rows() if rows is None else rows
    modes = ASSUMED_MODE if modes is None else modes
    out = []
    for r in rows:
        split = SPLITS[r.board]
        role = "fit" if r.id in split.fit else "held out" if r.id in split.held_out else "same workload as fit"
        out.append(Prediction(r, role, modes[r.board], predict_terms(load_profile(r.board), modes[r.board], row_work(r))))
    return out


def held_out_summary(preds: list[Prediction]) -> tuple[float, float, int]:
    errors = [abs(p.error) for p in preds if p.role == "held out"]
    return statistics.median(errors), max(errors), len(errors)


def old_nano_terms(row: Row) -> costmod.StepTime:
    o = OLD_NANO
    return costmod.work_time_terms(row_work(row), o["peak_fp32_gflops"] * 1e9 * o["training_efficiency"],
                                   o["bandwidth_gbps"] * 1e9, o["step_overhead_s"],
                                   elementwise_efficiency=o["elementwise_efficiency"], op_overhead_s=o["op_overhead_s"],
                                   gemm_tile_width=o["gemm_tile_width"])


# ------------------------------------------------------------------ writing


def main(argv: list[str] | None = None) -> int:
    from jetson_profile_yaml import update_profile_text
    from jetson_validation_page import render_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a profile or the page is out of date")
    args = parser.parse_args(argv)
    rows = load_rows()
    stale = []
    for name, figs in profile_figures(rows).items():
        path = PROFILES_DIR / f"{name}.yaml"
        text = path.read_text()
        new = update_profile_text(text, figs)
        DeviceProfile.model_validate(yaml.safe_load(new))  # never write a profile that does not load
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    page = render_page(rows)
    if page != (PAGE.read_text() if PAGE.exists() else ""):
        stale.append(PAGE)
        if not args.check:
            PAGE.write_text(page)
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
