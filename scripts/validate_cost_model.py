#!/usr/bin/env python3
"""Validate fleetsim's step-time cost model on THIS host and rewrite docs/cost_model_validation.md.

1. Calibrate: ``simulator.calibrate.calibrate`` measures this host's peak FLOP/s and memory bandwidth
   and fits the profile's ``training_efficiency`` and ``step_overhead_s`` on a FIT set of real
   training steps (CNN-small and ResNet-small at three widths and two batch sizes). The profile is
   written to ``reports/paper/this-host.yaml``.
2. Predict: for every case, ``simulator.cost.step_time_s`` with that profile's figures (effective
   FLOP/s = peak × efficiency, bandwidth, overhead) — the roofline, NOT the profile's
   ``measured_step_times`` override.
3. Measure: the real step time of the same case with ``simulator.calibrate.measure_step_s`` (median
   of repeats after warm-up, one torch thread), in ``--rounds`` rounds interleaved over all cases;
   the least-disturbed round (the smallest median) counts, since other processes only ever add time.
4. Compare on HELD-OUT cases the fit never saw: other widths and batches of the fitted families,
   other presets, and families the fit never saw at all (ViT, MLP, text transformer on sequences).

    python scripts/validate_cost_model.py                 # about 2 minutes
    python scripts/validate_cost_model.py --rounds 5      # steadier on a busy host

Run it when the machine is otherwise idle: other processes on the same cores inflate measured
times and the page then reports the machine's load, not the model's error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this working tree's simulator (an editable install may point elsewhere)
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
FIT_MODELS = ("cnn-small", "resnet-small")
FIT_WIDTHS = (1.0, 0.5, 0.25)
FIT_BATCHES = (16, 64)
WIDE_FIT_WIDTHS = (1.0, 0.5)   # sensitivity: the same fit without the narrowest width
TARGET_ERROR = 0.15


@dataclass(frozen=True)
class Case:
    model: str
    width_ratio: float
    batch_size: int
    input_shape: tuple[int, ...] = IMAGE_SHAPE
    why: str = ""


HELD_OUT = (
    Case("cnn-small", 0.75, 32, why="fitted family, unseen width and batch"),
    Case("resnet-small", 0.25, 128, why="fitted family, unseen width and batch"),
    Case("cnn-tiny", 1.0, 32, why="fitted family, other preset"),
    Case("resnet-tiny", 1.0, 64, why="fitted family, other preset"),
    Case("resnet-resnet18", 0.25, 32, why="fitted family, ResNet-18 layout"),
    Case("vit-small", 1.0, 32, why="unseen family (ViT)"),
    Case("vit-small", 0.5, 64, why="unseen family (ViT)"),
    Case("mlp-small", 1.0, 64, why="unseen family (MLP)"),
    Case("text-transformer-small", 1.0, 32, (64,), why="unseen family and input (token sequences)"),
)


def fit_cases() -> list[Case]:
    return [Case(m, w, b, why="fit") for m in FIT_MODELS for w in FIT_WIDTHS for b in FIT_BATCHES]


def predict_s(case: Case, profile: Any) -> dict[str, float]:
    """The roofline step time from the calibrated profile's figures, plus the workload's terms
    (training FLOPs, parameter-side and activation-side memory traffic per step) for the diagnostic."""
    from simulator import cost
    from simulator.calibrate import parse_model

    c = cost.model_cost(parse_model(case.model), NUM_CLASSES, case.input_shape, case.width_ratio)
    step = cost.step_time_s(c, case.batch_size, profile.effective_flops(), profile.memory_bandwidth_bytes_per_s,
                            profile.compute.step_overhead_s, "momentum")
    traffic = cost.step_time_s(c, case.batch_size, 1e30, 1.0, 0.0, "momentum")  # bytes (unit bandwidth)
    act_bytes = 2.0 * c.activation_bytes_per_sample * case.batch_size
    return {"predicted_s": step, "flops": c.train_flops_per_sample * case.batch_size,
            "act_bytes": act_bytes, "param_bytes": traffic - act_bytes}


def measure_all(cases: list[Case], rounds: int, repeats: int, warmup: int) -> list[list[float]]:
    """Step times per case, one median per round; rounds interleave the cases so a burst of load
    elsewhere on the machine hits one round of many cases, not every round of one case."""
    from simulator.calibrate import measure_step_s, parse_model

    times: list[list[float]] = [[] for _ in cases]
    for _ in range(rounds):
        for i, case in enumerate(cases):
            times[i].append(measure_step_s(parse_model(case.model), case.width_ratio, case.batch_size,
                                           input_shape=case.input_shape, num_classes=NUM_CLASSES,
                                           repeats=repeats, warmup=warmup))
    return times


# ------------------------------------------------------------------ a diagnostic alternative


def _alt_time(r: dict, peak_flops: float, bandwidth: float, eff: float, k_act: float, overhead_s: float) -> float:
    return r["flops"] / (peak_flops * eff) + (r["param_bytes"] + k_act * r["act_bytes"]) / bandwidth + overhead_s


def fit_alternative(rows: list[dict], peak_flops: float, bandwidth: float) -> tuple[float, float, float]:
    """Fit a SUM model on the fit rows: FLOPs ÷ (peak × e) + (parameter traffic + k × activation
    traffic) ÷ bandwidth + overhead, minimising the squared log error (Nelder–Mead on log-parameters).
    Not fleetsim's model: it shows how much of the error is the model's form."""
    from scipy.optimize import minimize

    fit = [r for r in rows if r["set"] == "fit"]

    def loss(logp: Any) -> float:
        e, k, o = (math.exp(v) for v in logp)
        return sum(math.log(_alt_time(r, peak_flops, bandwidth, e, k, o) / r["measured_s"]) ** 2 for r in fit)

    best = min((minimize(loss, x0, method="Nelder-Mead", options={"maxiter": 5000, "xatol": 1e-8, "fatol": 1e-12})
                for x0 in ([0.0, 0.0, -7.0], [-0.5, 2.0, -6.0], [0.5, 3.0, -8.0])), key=lambda res: res.fun)
    return tuple(math.exp(v) for v in best.x)  # type: ignore[return-value]


# ------------------------------------------------------------------ the page


def table(rows: list[dict]) -> str:
    lines = ["| set | model | width | batch | input | GFLOP/step | predicted (ms) | measured (ms) | error | "
             "round spread | error, fit w ∈ {1, 0.5} | alt. model error | why |",
             "| :--- | :--- | ---: | ---: | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :--- |"]
    for r in rows:
        lines.append(f"| {r['set']} | `{r['model']}` | {r['width_ratio']:g} | {r['batch_size']} | "
                     f"{'×'.join(map(str, r['input_shape']))} | {r['flops'] / 1e9:.3f} | {1e3 * r['predicted_s']:.1f} | "
                     f"{1e3 * r['measured_s']:.1f} | **{100 * r['error']:+.1f} %** | {100 * r['spread']:.0f} % | "
                     f"{100 * r['wide_error']:+.1f} % | {100 * r['alt_error']:+.1f} % | {r['why']} |")
    return "\n".join(lines)


def _median_abs(rows: list[dict], key: str, which: str) -> float:
    return statistics.median(abs(r[key]) for r in rows if r["set"] == which)


def write_page(path: Path, rows: list[dict], profile: Any, wide: Any, alt: tuple[float, float, float], command: str,
               elapsed_s: float, load: tuple[float, float], rounds: int, repeats: int) -> dict:
    held = [r for r in rows if r["set"] == "held-out"]
    med, worst = _median_abs(rows, "error", "held-out"), max(held, key=lambda r: abs(r["error"]))
    ok = med <= TARGET_ERROR
    summary = {"held_out_median_abs_error": med, "held_out_max_abs_error": abs(worst["error"]),
               "fit_median_abs_error": _median_abs(rows, "error", "fit"), "cases": len(rows),
               "held_out": len(held), "target": TARGET_ERROR, "meets_target": ok,
               "alt_held_out_median_abs_error": _median_abs(rows, "alt_error", "held-out"),
               "wide_fit_held_out_median_abs_error": _median_abs(rows, "wide_error", "held-out"),
               "median_round_spread": statistics.median(r["spread"] for r in rows)}
    c = profile.compute
    host = profile.description.split(" Roofline fit")[0].replace("Calibrated by `fleetsim calibrate` on ", "")
    under = [r for r in held if r["error"] < -TARGET_ERROR]
    over = [r for r in held if r["error"] > TARGET_ERROR]
    fit_rows = [r for r in rows if r["set"] == "fit"]
    smallest = min(fit_rows, key=lambda r: r["flops"])
    memory_bound = [r for r in rows if (r["param_bytes"] + r["act_bytes"]) / profile.memory_bandwidth_bytes_per_s
                    > r["flops"] / profile.effective_flops()]
    wide_med = summary["wide_fit_held_out_median_abs_error"]

    def names(rs: list[dict]) -> str:
        return ", ".join(f"`{r['model']}` w={r['width_ratio']:g} b={r['batch_size']}" for r in rs) or "none"
    text = f"""# Cost model validation on this host

> Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} in {elapsed_s / 60:.1f} minutes on {host}
> Load average before / after: {load[0]:.2f} / {load[1]:.2f} on 2 cores shared with other work; each time is the
> smallest of {rounds} interleaved round medians ({repeats} steps each). Do not edit by hand: rerun the script.
> Part of [results.md](results.md).

**Headline:** fleetsim's step-time roofline, calibrated on this host, is off by a median **{100 * med:.1f} %** over
{len(held)} held-out cases (worst {100 * abs(worst['error']):.0f} %, `{worst['model']}` w={worst['width_ratio']:g}
b={worst['batch_size']}); target ≤ {100 * TARGET_ERROR:.0f} % — **{'met' if ok else 'NOT met'}**. In-sample (the fit
cases): {100 * summary['fit_median_abs_error']:.1f} %. Measurement noise (spread between rounds, median):
{100 * summary['median_round_spread']:.0f} %. A sum-form alternative fitted on the same cases reaches
{100 * summary['alt_held_out_median_abs_error']:.1f} % (see below).

## What was done

1. `simulator.calibrate.calibrate` measured this host (one torch thread): peak
   **{c.peak_fp32_gflops:.1f} GFLOP/s** (timed 1024² matmul), memory bandwidth
   **{profile.memory.bandwidth_gbps:.1f} GB/s** (timed copy), and fitted **training_efficiency =
   {c.training_efficiency:.4g}** and **step_overhead_s = {1e3 * c.step_overhead_s:.2f} ms** on the fit set
   ({', '.join(FIT_MODELS)} × widths {', '.join(map(str, FIT_WIDTHS))} × batches {', '.join(map(str, FIT_BATCHES))},
   input {'×'.join(map(str, IMAGE_SHAPE))}, {NUM_CLASSES} classes). Profile: `reports/paper/this-host.yaml`.
2. Predicted = `simulator.cost.step_time_s(model_cost(...), batch, peak × efficiency, bandwidth, overhead,
   "momentum")` = max(FLOPs ÷ effective FLOP/s, memory traffic ÷ bandwidth) + overhead: the roofline a
   simulation uses when no measured time matches — never the profile's `measured_step_times`.
3. Measured = `simulator.calibrate.measure_step_s` (forward over every exit, summed cross-entropy,
   backward, SGD-momentum step), re-measured for every row including the fit rows, so in-sample error
   includes run-to-run noise; "round spread" = (largest − smallest round median) ÷ smallest.
4. Held-out rows were never used for fitting: other widths and batches of the fitted families, other
   presets (`cnn-tiny`, `resnet-tiny`, ResNet-18 layout), and families the fit never saw (ViT, MLP, a text
   transformer on token sequences).

## Results

{table(rows)}

error = predicted ÷ measured − 1 (negative: the model is too fast).

## Reading it

- **Where the roofline fails.** Under-predicted by more than {100 * TARGET_ERROR:.0f} %: {names(under)}.
  Over-predicted: {names(over)}. The roofline takes the *larger* of compute and memory time, and its
  memory traffic (weights, gradients, optimizer state, saved activations each read/written about twice)
  moves at the copy bandwidth — so the compute term wins for {len(rows) - len(memory_bound)} of the {len(rows)}
  cases here and their time is FLOPs ÷ one efficiency. But on this CPU narrow and attention-heavy models are much slower per FLOP than wide
  convolutions: normalisation, activation functions, softmax and pooling make many passes over the
  activations, each at far below copy speed, and their cost grows with activation size (∝ width) while
  FLOPs grow ∝ width². One efficiency cannot fit both.
- **An alternative form (diagnostic, not fleetsim's model){
  " would meet the target here" if summary['alt_held_out_median_abs_error'] <= TARGET_ERROR else ""}:**
  time = FLOPs ÷ (peak × e) + (parameter traffic + k × activation traffic) ÷ bandwidth + overhead, fitted on
  the same fit cases: e = {alt[0]:.3g}, k = {alt[1]:.3g}, overhead = {1e3 * alt[2]:.2f} ms; held-out median
  |error| {100 * summary['alt_held_out_median_abs_error']:.1f} % (column "alt. model error").{
  " e > 1 means the fit moves time from FLOPs to activation traffic: what costs time on this host is touching"
  " activations." if alt[0] > 1 else ""}
  Adding such an activation term (`k`, a profile figure `fleetsim calibrate` would fit) to
  `simulator.cost.step_time_s` is the suggested change — for the owners of `simulator/cost.py`.
- **The fit is fragile in its overhead.** `fit_cost_model` sets `step_overhead_s` to what the workload
  with the fewest FLOPs takes beyond its roofline time — one measurement. Here that workload is
  `{smallest['model']}` w={smallest['width_ratio']:g} b={smallest['batch_size']} (measured
  {1e3 * smallest['measured_s']:.1f} ms for {smallest['flops'] / 1e9:.3f} GFLOP), and the fitted overhead is
  {1e3 * c.step_overhead_s:.2f} ms, charged to every step of every model. Fitting on widths 1 and 0.5 only (`this-host-wide-fit.yaml`: efficiency
  {wide.compute.training_efficiency:.3g}, overhead {1e3 * wide.compute.step_overhead_s:.2f} ms) gives a held-out
  median of {100 * wide_med:.1f} % (column "error, fit w ∈ {{1, 0.5}}"){
  f" — also above {100 * TARGET_ERROR:.0f} %" if wide_med > TARGET_ERROR else ""}: the choice of fit cases moves the
  overhead and efficiency a lot, which is itself a sign the model's form is off. Fitting the overhead
  jointly with the efficiency (least squares over all points) instead of from one point would make it
  robust; again for the owners of `simulator/calibrate.py`.
- The per-step overhead stands for Python/autograd dispatch; it dominates tiny models (`cnn-tiny`,
  `mlp-small`), where a percentage error is mostly an error in that constant.
- This is a CPU. On a Jetson GPU, kernel-launch overhead and the GPU's own memory behaviour differ; run
  `fleetsim calibrate` on the board. The built-in Jetson profiles' figures are vendor-derived estimates, not
  such measurements, so fleetsim's absolute simulated times carry at least this uncertainty.
"""
    path.write_text(text)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3)")
    parser.add_argument("--repeats", type=int, default=9, help="timed steps per measurement (default 9)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "cost_model_validation.md")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "paper")
    args = parser.parse_args(argv)
    import torch

    from simulator.calibrate import calibrate
    from simulator.config.profiles import load_profile

    torch.set_num_threads(1)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    profile_path = args.out / "this-host.yaml"
    print("calibrating on the fit set …", flush=True)
    calibrate(list(FIT_MODELS), FIT_WIDTHS, FIT_BATCHES, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES,
              repeats=args.repeats, warmup=args.warmup, threads=1, name="this-host", out=profile_path)
    profile = load_profile(str(profile_path))
    cases = [("fit", c) for c in fit_cases()] + [("held-out", c) for c in HELD_OUT]
    print(f"measuring {len(cases)} cases × {args.rounds} rounds …", flush=True)
    times = measure_all([c for _, c in cases], args.rounds, args.repeats, args.warmup)
    rows = []
    for (set_name, case), ts in zip(cases, times):
        measured = min(ts)
        row = {"set": set_name, "model": case.model, "width_ratio": case.width_ratio, "batch_size": case.batch_size,
               "input_shape": list(case.input_shape), "why": case.why, "measured_s": measured, "rounds_s": ts,
               "spread": max(ts) / measured - 1, **predict_s(case, profile)}
        row["error"] = row["predicted_s"] / measured - 1
        rows.append(row)
    peak, bandwidth = profile.compute.peak_flops, profile.memory_bandwidth_bytes_per_s
    print("sensitivity: calibrating again on widths 1 and 0.5 only …", flush=True)
    calibrate(list(FIT_MODELS), WIDE_FIT_WIDTHS, FIT_BATCHES, input_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES,
              repeats=args.repeats, warmup=args.warmup, threads=1, name="this-host-wide-fit",
              out=args.out / "this-host-wide-fit.yaml")
    wide = load_profile(str(args.out / "this-host-wide-fit.yaml"))
    for (_, case), r in zip(cases, rows):
        r["wide_error"] = predict_s(case, wide)["predicted_s"] / r["measured_s"] - 1
    alt = fit_alternative(rows, peak, bandwidth)
    for r in rows:
        r["alt_error"] = _alt_time(r, peak, bandwidth, *alt) / r["measured_s"] - 1
        print(f"{r['set']:8s} {r['model']:24s} w={r['width_ratio']:<5g} b={r['batch_size']:<4d} predicted "
              f"{1e3 * r['predicted_s']:7.1f} ms  measured {1e3 * r['measured_s']:7.1f} ms  {100 * r['error']:+6.1f} %"
              f"  (alt {100 * r['alt_error']:+6.1f} %)", flush=True)
    elapsed = time.perf_counter() - start
    command = "python scripts/validate_cost_model.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    summary = write_page(args.page, rows, profile, wide, alt, command, elapsed, (load_before, os.getloadavg()[0]),
                         args.rounds, args.repeats)
    (args.out / "cost_model_validation.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(f"median |error| on held-out cases: {100 * summary['held_out_median_abs_error']:.1f} % "
          f"(target ≤ {100 * TARGET_ERROR:.0f} %; alternative {100 * summary['alt_held_out_median_abs_error']:.1f} %); "
          f"wrote {args.page}; elapsed {elapsed / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
