"""Calibrate a device profile against THIS host: measure real training steps, fit the cost model.

Simulated step times come from the roofline in :func:`simulator.cost.step_time_s` (FLOPs ÷ peak ×
efficiency, memory traffic ÷ bandwidth, plus a fixed per-step overhead). Its three device figures are
guesses until measured, so ``calibrate`` measures them on the machine it runs on (e.g. a Jetson):

- peak FP32 GFLOP/s from a timed square matmul (the best of a few, after warm-up);
- memory bandwidth from a timed copy of a large tensor (bytes read + written);
- total and available memory from ``/proc/meminfo``;
- the real step time (forward + backward over every exit + SGD-momentum step, the median of
  `repeats` after `warmup` steps) of each requested model × width × batch;
- ``step_overhead_s`` and ``training_efficiency`` fitted so the roofline reproduces those times:
  the efficiency minimises the squared log error over all measurements, the overhead is what the
  smallest workload takes beyond its roofline time; the two are alternated until they settle.

The measured times are also written as ``measured_step_times``: a simulation whose planning model,
width and batch match one uses it instead of the roofline. Host wall time is the point here; it never
enters a simulation except through the profile written.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from simulator.config.workload import BUILTIN_MODELS, ModelSpec
from simulator.errors import InputError
from simulator.run_folder import atomic_write_text
from simulator.workload_info import model_label

ModelLike = str | dict[str, Any] | ModelSpec


def parse_model(model: ModelLike) -> ModelSpec:
    """A ModelSpec, a mapping of its fields, or a label: ``cnn-tiny``, ``text-transformer-small``,
    ``resnet`` (family default preset), ``vit-vit-b``."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        from simulator.config.loading import validate_data

        return validate_data(model, ModelSpec)
    text = str(model)
    for family in sorted(BUILTIN_MODELS, key=len, reverse=True):
        if text == family:
            return ModelSpec(name=family)
        if text.startswith(family + "-"):
            from simulator.config.workload import PRESETS

            preset = text[len(family) + 1:]
            if preset not in PRESETS[family]:
                raise InputError("unknown preset in model label", field="models", value=text,
                                 accepted=", ".join(f"{family}-{p}" for p in PRESETS[family]))
            return ModelSpec(name=family, preset=preset)
    raise InputError("unknown model label", field="models", value=text,
                     accepted=f"family-preset labels such as cnn-tiny, mlp-small, resnet-resnet18 (families: "
                              f"{', '.join(BUILTIN_MODELS)})")


# ------------------------------------------------------------------ host benchmarks


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """Peak FP32 GFLOP/s of this host: a timed n×n matmul (2 n³ FLOPs), best of `repeats`."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def copy_bandwidth_gbps(megabytes: int = 64, repeats: int = 5) -> float:
    """Memory bandwidth in GB/s: a timed copy of a `megabytes` tensor (read + write), best of `repeats`."""
    import torch

    n = megabytes * 1_000_000 // 4
    src = torch.ones(n)
    dst = torch.empty(n)
    dst.copy_(src)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * n * 4 / best / 1e9


def meminfo_gb(path: str = "/proc/meminfo") -> tuple[float, float]:
    """(total, available) memory in decimal GB from /proc/meminfo (whose "kB" are KiB)."""
    values: dict[str, float] = {}
    try:
        for line in Path(path).read_text().splitlines():
            key, _, rest = line.partition(":")
            values[key.strip()] = float(rest.split()[0]) * 1024 / 1e9  # "kB" there means KiB
    except (OSError, ValueError, IndexError):
        raise InputError("cannot read the host's memory figures", field="memory", value=path,
                         accepted="a Linux host with /proc/meminfo") from None
    total = values.get("MemTotal", 0.0)
    return total, min(total, values.get("MemAvailable", values.get("MemFree", total)))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------ step times


def measure_step_s(spec: ModelSpec, width_ratio: float, batch_size: int, *, input_shape: tuple[int, ...],
                   num_classes: int, repeats: int, warmup: int) -> float:
    """Median wall seconds of one real training step (forward over all exits, CE summed, backward,
    SGD with momentum 0.9 as in the default scenario optimizer)."""
    import torch
    import torch.nn.functional as F

    from simulator.learning.models import build_model

    model = build_model(spec, num_classes, input_shape, width_ratio, seed=0)
    model.train()
    gen = torch.Generator().manual_seed(0)
    x = model.example_input(batch_size)
    if x.is_floating_point():
        x = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.stack([F.cross_entropy(z, y) for z in model(x)]).sum()
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


# ------------------------------------------------------------------ fitting


def _roofline_parts(points: list[dict[str, Any]], input_shape: tuple[int, ...], num_classes: int,
                    ) -> list[tuple[float, float, float]]:
    """Per point: (train FLOPs of one step, memory traffic seconds, measured seconds)."""
    from simulator import cost as costmod

    out = []
    for p in points:
        c = costmod.model_cost(p["spec"], num_classes, input_shape, p["width_ratio"])
        flops = c.train_flops_per_sample * p["batch_size"]
        # traffic time at unit bandwidth: step_time_s with infinite compute and no overhead
        traffic_s = costmod.step_time_s(c, p["batch_size"], 1e30, p["bandwidth_bytes_per_s"], 0.0, "momentum")
        out.append((flops, traffic_s, p["step_s"]))
    return out


def _predict(parts: list[tuple[float, float, float]], peak_flops: float, eff: float, overhead_s: float) -> list[float]:
    return [max(f / (peak_flops * eff), t) + overhead_s for f, t, _ in parts]


def _log_error(parts: list[tuple[float, float, float]], peak_flops: float, eff: float, overhead_s: float) -> float:
    return sum(math.log(p / m) ** 2 for p, (_, _, m) in zip(_predict(parts, peak_flops, eff, overhead_s), parts))


def _best_efficiency(parts: list[tuple[float, float, float]], peak_flops: float, overhead_s: float) -> float:
    """Golden-section search of log10(efficiency) in [-5, 0] minimising the squared log error."""
    lo, hi = -5.0, 0.0
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if _log_error(parts, peak_flops, 10**a, overhead_s) <= _log_error(parts, peak_flops, 10**b, overhead_s):
            hi = b
        else:
            lo = a
    return 10 ** ((lo + hi) / 2)


def fit_cost_model(parts: list[tuple[float, float, float]], peak_flops: float) -> tuple[float, float]:
    """(training_efficiency, step_overhead_s) so the roofline matches the measured step times."""
    smallest = min(range(len(parts)), key=lambda i: parts[i][0])
    overhead_s = 0.0
    eff = _best_efficiency(parts, peak_flops, overhead_s)
    for _ in range(50):
        f, t, measured = parts[smallest]
        roofline_s = max(f / (peak_flops * eff), t)
        new_overhead = max(0.0, measured - roofline_s)
        new_eff = _best_efficiency(parts, peak_flops, new_overhead)
        settled = abs(new_overhead - overhead_s) <= 1e-9 + 1e-6 * measured and abs(new_eff - eff) <= 1e-6 * eff
        overhead_s, eff = new_overhead, new_eff
        if settled:
            break
    return min(1.0, eff), overhead_s


# ------------------------------------------------------------------ the profile


def _check(models: Sequence[ModelLike], width_ratios: Sequence[float], batch_sizes: Sequence[int], repeats: int,
           threads: int, name: str) -> list[ModelSpec]:
    import re

    if not models:
        raise InputError("give at least one model to measure", field="models", accepted="e.g. cnn-tiny")
    for w in width_ratios:
        if not 0 < float(w) <= 1:
            raise InputError("width ratios must lie in (0, 1]", field="width_ratios", value=w)
    for b in batch_sizes:
        if int(b) < 1:
            raise InputError("batch sizes must be at least 1", field="batch_sizes", value=b)
    if not width_ratios or not batch_sizes:
        raise InputError("give at least one width ratio and one batch size", field="width_ratios")
    if repeats < 1 or threads < 1:
        raise InputError("repeats and threads must be at least 1", field="repeats", value=(repeats, threads))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise InputError("not a valid profile name", field="name", value=name,
                         accepted="letters, digits, '.', '_' and '-', starting with a letter or digit")
    specs = {model_label(s): s for s in (parse_model(m) for m in models)}  # one entry per label
    return list(specs.values())


def calibrate(
    models: Sequence[ModelLike],
    width_ratios: Sequence[float] = (1.0,),
    batch_sizes: Sequence[int] = (32,),
    *,
    input_shape: Sequence[int] = (1, 32, 32),
    num_classes: int = 10,
    repeats: int = 5,
    warmup: int = 2,
    threads: int = 1,
    name: str = "this-host",
    out: str | Path | None = None,
    busy_w: float = 15.0,
    idle_w: float = 5.0,
) -> dict[str, Any]:
    """Measure this host and write a device profile YAML to `out` (default ``<name>.yaml``).

    Returns the profile as a mapping (what :func:`simulator.config.profiles.load_profile` reads back).
    `input_shape` and `num_classes` must be those of the scenarios that will use the measured times
    (the lookup keys are only model label, width ratio and batch size). Power cannot be measured
    from software portably: `busy_w` and `idle_w` are written as given — replace them with readings
    from the board's power monitor (e.g. tegrastats) when you have them.
    """
    import torch

    specs = _check(models, width_ratios, batch_sizes, repeats, threads, name)
    if busy_w <= 0 or idle_w < 0 or busy_w < idle_w:
        raise InputError("busy power must be positive and at least the idle power", field="busy_w",
                         value=(busy_w, idle_w), accepted="busy_w > 0, 0 <= idle_w <= busy_w")
    width_ratios = list(dict.fromkeys(float(w) for w in width_ratios))
    batch_sizes = list(dict.fromkeys(int(b) for b in batch_sizes))
    shape = tuple(int(s) for s in input_shape)
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        peak_gflops = matmul_gflops()
        bandwidth_gbps = copy_bandwidth_gbps()
        points = []
        for spec in specs:
            for w in width_ratios:
                for b in batch_sizes:
                    step_s = measure_step_s(spec, float(w), int(b), input_shape=shape, num_classes=int(num_classes),
                                            repeats=int(repeats), warmup=int(warmup))
                    points.append({"spec": spec, "width_ratio": float(w), "batch_size": int(b), "step_s": step_s,
                                   "bandwidth_bytes_per_s": bandwidth_gbps * 1e9})
    finally:
        torch.set_num_threads(before)
    parts = _roofline_parts(points, shape, int(num_classes))
    efficiency, overhead_s = fit_cost_model(parts, peak_gflops * 1e9)
    predicted = _predict(parts, peak_gflops * 1e9, efficiency, overhead_s)
    errors = sorted(abs(p / m - 1) for p, (_, _, m) in zip(predicted, parts))
    total_gb, available_gb = meminfo_gb()
    profile: dict[str, Any] = {
        "name": name,
        "display_name": f"{name} (calibrated)",
        "description": (
            f"Calibrated by `fleetsim calibrate` on {cpu_model()} with {threads} thread(s), torch {torch.__version__}, "
            f"input {list(shape)}, {num_classes} classes. Roofline fit: median |error| "
            f"{100 * statistics.median(errors):.1f} %, max {100 * errors[-1]:.1f} % over {len(parts)} measurements. Power figures are not measured."
        ),
        "compute": {
            "peak_fp32_gflops": round(peak_gflops, 3),
            "peak_fp16_gflops": round(peak_gflops, 3),  # CPUs have no faster fp16 training path
            "training_efficiency": float(f"{efficiency:.6g}"),
            "step_overhead_s": float(f"{overhead_s:.6g}"),
            "precision": "fp32",
        },
        "memory": {"total_gb": round(total_gb, 3), "usable_gb": round(min(available_gb, total_gb), 3),
                   "bandwidth_gbps": round(bandwidth_gbps, 3)},
        "power_modes": {"default": {"watts": float(busy_w), "clock_scale": 1.0}},
        "default_power_mode": "default",
        "idle_w": float(idle_w),
        "network": {"interfaces": [{"kind": "ethernet", "standard": "1000BASE-T", "max_mbps": 1000.0}]},
        "measured_step_times": [
            {"model": model_label(p["spec"]), "width_ratio": p["width_ratio"], "batch_size": p["batch_size"],
             "step_s": p["step_s"]} for p in points
        ],
    }
    path = Path(out) if out is not None else Path(f"{name}.yaml")
    header = (f"# Device profile measured on this host by `fleetsim calibrate` ({time.strftime('%Y-%m-%d')}).\n"
              "# measured_step_times override the roofline estimate when model label, width and batch match.\n")
    atomic_write_text(path, header + yaml.safe_dump(profile, sort_keys=False))
    return profile
