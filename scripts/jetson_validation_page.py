"""``docs/jetson_validation.md``: the Jetson profiles against the published training measurements.

Why generated: every figure on the page (fitted efficiency, each row's predicted step time and error,
the held-out median) is computed here from ``jetson_training.csv`` and the profiles as written, so
the page cannot drift from the data (``fit_jetson_profiles.py --check`` and
``tests/fidelity/test_jetson_fit.py`` fail when it does). Predictions use the shipped profiles through
:func:`fit_jetson_profiles.predict_terms`, the call a simulation makes; the cross-fit table uses
:func:`derived_terms` (the same derivation the profiles were written by, before rounding).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import fit_jetson_profiles as fj
from jetson_hardware import BOARDS, Board, power_rows
from simulator.cost import model as costmod
from simulator.config.profiles import load_profile
from simulator.cost.fit import CostFit

TARGET_MEDIAN = 0.15
TARGET_MAX = 0.35
# Validation images per epoch where the source states them (the row's notes): a forward-only pass the
# epoch time may or may not contain; the page shows what it would change.
VALIDATION_IMAGES = {"nvji-nano-resnet18-catdog-epoch": 1000}
MODE_SENSITIVITY = {"jetson-nano-4gb": ("maxn", "5w"), "jetson-xavier-nx": ("20w", "15w", "10w")}
PLANNER_CHECK = "nvji-nano-resnet18-plantclef-iter"  # the workload the per-board table predicts


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %"


def _abs_pct(x: float) -> str:
    return f"{100 * abs(x):.1f} %"


def _ms(s: float) -> str:
    return f"{1000 * s:.1f}"


def derived_terms(board: Board, mode: str, fit: CostFit, work: costmod.StepWork) -> costmod.StepTime:
    """The step time of `work` on `board` in `mode` with the fitted board's efficiencies carried over and
    the board's own CPU-class overheads (how :func:`fit_jetson_profiles.profile_figures` derives a
    profile; only ``training_efficiency`` is free in every fit this page makes)."""
    peak, bw = fj._mode_peak_bw(board, mode, power_rows())
    return costmod.work_time_terms(work, peak * fit.training_efficiency, bw, board.step_overhead_s,
                                   elementwise_efficiency=fit.elementwise_efficiency,
                                   op_overhead_s=board.op_overhead_s, gemm_tile_width=fit.gemm_tile_width)


@dataclass(frozen=True)
class CrossFit:
    fit_row: str
    efficiency: float
    errors: dict[str, float]   # row id -> predicted / measured - 1 (the fit row itself included)


def cross_fits(rows: list[fj.Row]) -> list[CrossFit]:
    """Leave-one-workload-out in full: the fitted board fitted to each of its independent rows alone,
    every row (both boards) predicted from that fit."""
    nano = [r for r in rows if r.board == fj.FITTED_BOARD]
    split = fj.SPLITS[fj.FITTED_BOARD]
    out = []
    for fit_row in (r for r in nano if r.id not in split.same_workload):
        fit, _ = fj.fitted_nano(rows, fit_ids=(fit_row.id,))
        errors = {r.id: derived_terms(BOARDS[r.board], fj.ASSUMED_MODE[r.board], fit, fj.row_work(r)).total_s
                  / r.step_s - 1.0 for r in rows}
        out.append(CrossFit(fit_row.id, fit.training_efficiency, errors))
    return out


def _rows_table(rows: list[fj.Row]) -> list[str]:
    lines = ["| row | board | workload | measured s/step | as the source gives it |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        rng = r.step_range_s
        measured = f"{r.step_s:.4f}" + (f" ({rng[0]:.3f}-{rng[1]:.3f})" if rng else "")
        given = {"iteration_s": f"{r.value:g} s per iteration", "epoch_s": f"{r.value:g} s per epoch / {r.steps_per_epoch} steps"}
        shape = "x".join(str(s) for s in r.input_shape)
        lines.append(f"| `{r.id}` | {r.board} | {r.model} {shape}, {r.num_classes} classes, batch {r.batch_size}, "
                     f"SGD+momentum | {measured} | {given.get(r.metric, r.metric)} |")
    return lines


def _predictions_table(preds: list[fj.Prediction]) -> list[str]:
    lines = ["| row | role | mode | predicted s | measured s | error | GEMM / params / elementwise / ops / step, ms |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in preds:
        t = p.terms
        lines.append(f"| `{p.row.id}` | {p.role} | {p.mode} | {p.predicted_s:.4f} | {p.row.step_s:.4f} | "
                     f"{_pct(p.error)} | {_ms(t.compute_s)} / {_ms(t.param_traffic_s)} / {_ms(t.elementwise_s)} / "
                     f"{_ms(t.ops_s)} / {_ms(t.overhead_s)} |")
    return lines


def _mode_lines(rows: list[fj.Row]) -> list[str]:
    lines = ["| row | " + " | ".join(["mode", "predicted s", "error"]) + " |", "| --- | --- | --- | --- |"]
    for r in rows:
        profile = load_profile(r.board)
        for mode in MODE_SENSITIVITY.get(r.board, ()):
            t = fj.predict_terms(profile, mode, fj.row_work(r)).total_s
            tag = " (assumed)" if mode == fj.ASSUMED_MODE[r.board] else ""
            lines.append(f"| `{r.id}` | {mode}{tag} | {t:.4f} | {_pct(t / r.step_s - 1)} |")
    return lines


def _cross_fit_lines(rows: list[fj.Row], fits: list[CrossFit]) -> list[str]:
    head = "| fitted to (alone) | training_efficiency | " + " | ".join(f"`{r.id}`" for r in rows) + " |"
    lines = [head, "| " + " | ".join(["---"] * (len(rows) + 2)) + " |"]
    for f in fits:
        cells = [("**fit**" if r.id == f.fit_row else _pct(f.errors[r.id])) for r in rows]
        lines.append(f"| `{f.fit_row}` | {f.efficiency:.4f} | " + " | ".join(cells) + " |")
    return lines


def _derivation_check(preds: list[fj.Prediction]) -> tuple[float, float, float]:
    """(measured, predicted) Xavier NX / Nano speed-up on the one workload both boards ran, and the
    error of the hardware-ratio derivation alone (the Nano's own error on the workload taken out)."""
    by_board = {p.row.board: p for p in preds if p.row.model == "ssd-mobilenet-v1"}
    nano, xnx = by_board[fj.FITTED_BOARD], by_board["jetson-xavier-nx"]
    measured = nano.row.step_s / xnx.row.step_s
    predicted = nano.predicted_s / xnx.predicted_s
    return measured, predicted, measured / predicted - 1.0


def _validation_lines(rows: list[fj.Row]) -> list[str]:
    lines = []
    for r in rows:
        images = VALIDATION_IMAGES.get(r.id)
        if not images:
            continue
        fwd = fj.predict_terms(load_profile(r.board), fj.ASSUMED_MODE[r.board], fj.forward_work(r)).total_s
        val_steps = -(-images // r.batch_size)
        share = fwd * val_steps / r.value
        train_step = (r.value * (1 - share)) / float(r.steps_per_epoch or 1)
        pred = fj.predict_terms(load_profile(r.board), fj.ASSUMED_MODE[r.board], fj.row_work(r)).total_s
        lines.append(f"- `{r.id}`: {images} validation images = {val_steps} forward-only steps of a predicted "
                     f"{fwd:.3f} s = {100 * share:.1f} % of the stated epoch. If the epoch time includes them, the "
                     f"training step is {train_step:.4f} s and the error {_pct(pred / train_step - 1)} instead.")
    return lines


def _board_lines(rows: list[fj.Row]) -> list[str]:
    ref = next(r for r in rows if r.id == PLANNER_CHECK)
    work = fj.row_work(ref)
    nano = BOARDS[fj.FITTED_BOARD]
    measured_boards = {r.board for r in rows}
    lines = ["| profile | default mode | peak FP32 GFLOP/s (x Nano) | bandwidth GB/s (x Nano) | training rows | "
             "figures | predicted ResNet-18 224² b8 step, s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, b in BOARDS.items():
        profile = load_profile(name)
        n = sum(1 for r in rows if r.board == name)
        how = (f"fitted ({len(fj.SPLITS[name].fit)} row) + assumptions" if name == fj.FITTED_BOARD else
               "derived from the Nano; held out" if name in measured_boards else "derived from the Nano")
        t = fj.predict_terms(profile, profile.default_power_mode, work).total_s
        lines.append(f"| {name} | {profile.default_power_mode} | {b.peak_fp32_gflops:g} "
                     f"({b.peak_fp32_gflops / nano.peak_fp32_gflops:.2f}) | {b.bandwidth_gbps:g} "
                     f"({b.bandwidth_gbps / nano.bandwidth_gbps:.2f}) | {n} | {how} | {t:.4f} |")
    return lines


def render_page(rows: list[fj.Row]) -> str:
    preds = fj.predictions(rows)
    fit, free = fj.fitted_nano(rows)
    median, worst, n = fj.held_out_summary(preds)
    met = median <= TARGET_MEDIAN and worst <= TARGET_MAX
    held = [p for p in preds if p.role == "held out"]
    worst_p = max(held, key=lambda p: abs(p.error))
    fit_rows = [p for p in preds if p.role == "fit"]
    old = fj.old_nano_terms(next(r for r in rows if r.id == PLANNER_CHECK)).total_s
    ref = next(r for r in rows if r.id == PLANNER_CHECK)
    m_speed, p_speed, deriv_err = _derivation_check(preds)
    fits = cross_fits(rows)
    off_diag = [abs(e) for f in fits for rid, e in f.errors.items()
                if rid != f.fit_row and rid not in fj.SPLITS[fj.FITTED_BOARD].same_workload]
    no_rows = [name for name in BOARDS if not any(r.board == name for r in rows)]
    ssd_fit = next(f for f in fits if f.fit_row.startswith("nvji-nano-ssd"))
    out = [
        "# Jetson profiles against published training measurements",
        "",
        "> Generated by `python scripts/fit_jetson_profiles.py` (which also writes the fitted and derived figures",
        "> into `device_profiles/*.yaml`); `python scripts/fit_jetson_profiles.py --check` exits 1 if this page or a",
        "> profile is out of date, and `tests/fidelity/test_jetson_fit.py` runs that check. Do not edit by hand.",
        "> Data: `device_profiles/measurements/jetson_training.csv` (sources: `device_profiles/measurements/SOURCES.md`).",
        "> Part of [cost_model_validation.md](cost_model_validation.md).",
        "",
        f"**Headline:** on the {n} held-out external points the shipped profiles are off by a median "
        f"**{_abs_pct(median)}** (worst {_abs_pct(worst)}, `{worst_p.row.id}`); target median ≤ "
        f"{100 * TARGET_MEDIAN:.0f} %, none beyond {100 * TARGET_MAX:.0f} % — **{'met' if met else 'NOT met'}**. "
        f"The fitted Nano reproduces its fit row exactly ({len(fit_rows)} row, {len(free)} free figure). Before this fit the "
        f"Nano profile predicted the same ResNet-18 step at {old:.3f} s, {old / ref.step_s:.2f}x the measured "
        f"{ref.step_s:.4f} s.",
        "",
        "## Why the target cannot be met with this data",
        "",
        f"- **{len(rows)} rows on {len(fj.SPLITS)} boards**, of which {len(fits)} are independent timings on the Nano "
        f"({', '.join(sorted({r.model for r in rows if r.board == fj.FITTED_BOARD}))}) and "
        f"{sum(1 for r in rows if r.board != fj.FITTED_BOARD)} on other boards. "
        f"Boards with no training row at all: {', '.join(no_rows)}.",
        "- **One free figure.** Two distinct workloads on one board, and one of them needed as a held-out check, "
        "leave the fit one row: only `training_efficiency` is fitted; `elementwise_efficiency`, `gemm_tile_width`, "
        "`op_overhead_s` and `step_overhead_s` stay the profiles' stated assumptions "
        f"(free figures: {', '.join(free)}).",
        "- **No row states a power mode, a clock, a memory peak or a power draw**; modes are assumed "
        f"({', '.join(f'{b}: {m}' for b, m in fj.ASSUMED_MODE.items())}; sensitivity below).",
        "- **Every row times the whole loop** (DataLoader wait, host-to-device copy, loss, accuracy, Python) and the "
        "epoch rows may include a validation pass; the cost model predicts the training step alone. The SSD rows "
        "also run pytorch-ssd's CPU augmentation (photometric distortion, expand, random crop) in 2 workers and its "
        "MultiboxLoss with hard-negative mining, which the traced workload leaves out.",
        f"- **Most of the Xavier NX error is the SSD workload, not the hardware ratio.** Measured Xavier NX / Nano "
        f"speed-up on the same SSD run: {m_speed:.2f}x; the profiles predict {p_speed:.2f}x, so the derivation by "
        f"hardware ratios alone, with the shipped figures, is off by {_pct(deriv_err)} (the Xavier NX predicted from "
        f"the Nano's *measured* SSD time); the rest of the Xavier NX error is the model under-pricing this detector on both boards.",
        "- What would meet it: the DREAM-lab POMACS 2022 / PowerTrain tables (ResNet-18, MobileNetV3, LeNet on "
        "Nano, Xavier NX, AGX Xavier and AGX Orin, per power mode, compute time separated from fetch stalls); "
        "`SOURCES.md` (\"Not usable\") says why they are not in the CSV.",
        "",
        "## Rows",
        "",
        *_rows_table(rows),
        "",
        "## Fit",
        "",
        f"`simulator.cost.fit.fit_cost_model` (the joint NNLS `fleetsim calibrate` uses) on "
        f"{', '.join(f'`{i}`' for i in fj.SPLITS[fj.FITTED_BOARD].fit)} in mode "
        f"`{fj.ASSUMED_MODE[fj.FITTED_BOARD]}`, the split `device_profiles/measurements/README.md` set out with the "
        f"data, committed before this fit (one workload fits, the other rows are held out): training_efficiency = "
        f"**{fit.training_efficiency:.4f}** (written as {fj._sig(fit.training_efficiency)}); fixed: "
        f"elementwise_efficiency {fit.elementwise_efficiency:g}, gemm_tile_width {fit.gemm_tile_width}, op_overhead_s "
        f"{fit.op_overhead_s * 1e6:g} µs, step_overhead_s {fit.step_overhead_s * 1e3:g} ms. Every other profile "
        f"carries this training_efficiency and elementwise_efficiency over (an assumption: the same share of peak on "
        f"Pascal, Volta and Ampere as on Maxwell) and takes peak FP32, bandwidth, mode scales and watts from its "
        f"hardware (`scripts/jetson_hardware.py`, each figure's source in the profile's `sources:` block).",
        "",
        "## Per row, from the shipped profiles",
        "",
        *_predictions_table(preds),
        "",
        f"Held-out: {', '.join(f'`{p.row.id}` {_pct(p.error)}' for p in held)}. Shown, not counted (same workload "
        f"and source as the fit row): "
        f"{', '.join(f'`{p.row.id}` {_pct(p.error)}' for p in preds if p.role == 'same workload as fit')}.",
        "",
        "## Leave one workload out, every way",
        "",
        "The Nano fitted to each of its independent rows alone (only training_efficiency free), every row predicted "
        f"from that fit (the Xavier NX by the same derivation). A fit to the SSD row alone prices the ResNet-18 fit "
        f"row at {_pct(ssd_fit.errors[ref.id])}: one efficiency cannot serve both workloads, which is why the fit "
        f"uses the workload the presets share (torchvision ResNet-18). Median |error| off the fit rows: "
        f"{_abs_pct(statistics.median(off_diag))}, "
        f"worst {_abs_pct(max(off_diag))}.",
        "",
        *_cross_fit_lines(rows, fits),
        "",
        "## Sensitivity to the assumed power mode",
        "",
        *_mode_lines(rows),
        "",
        "## Sensitivity to a validation pass inside an epoch time",
        "",
        *(_validation_lines(rows) or ["- No row states its validation split."]),
        "",
        "## Every board",
        "",
        "Peak and bandwidth ratios to the Nano are the derivation; the last column is what a simulation now plans "
        "for the fit row's workload (torchvision ResNet-18, 224², batch 8, SGD with momentum) in the default mode.",
        "",
        *_board_lines(rows),
        "",
    ]
    return "\n".join(out)
