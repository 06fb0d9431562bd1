"""Calibrate a device profile against THIS host: measure real training steps, fit the cost model.

Simulated step times come from :func:`simulator.cost.model.step_time_s`: GEMM FLOPs (widths padded to
gemm_tile_width) ÷ (peak × training_efficiency) + parameter traffic ÷ bandwidth + elementwise traffic
÷ (bandwidth × elementwise_efficiency) + ops × op_overhead_s + step_overhead_s. Its device figures are guesses until
measured, so ``calibrate`` measures them on the machine it runs on:

- peak FP32 GFLOP/s: the faster of a timed square matmul and a timed 3×3 convolution (the best of a
  few, after warm-up) — the two go through different libraries (MKL and oneDNN on x86), and on some
  CPUs one uses vector units the other does not (on an AMD EPYC host here: matmul 110, conv 200);
- memory bandwidth from a timed copy of a large tensor (bytes read + written);
- total and available memory from ``/proc/meminfo``;
- the real step time (forward + backward over every exit + SGD-momentum step, the median of
  `repeats` after `warmup` steps) of each requested model × width × batch;
- the step-time figures, fitted jointly (:func:`fit_cost_model`): at each candidate GEMM tile width the
  model is linear in 1 ÷ training_efficiency, 1 ÷ elementwise_efficiency, op_overhead_s and
  step_overhead_s, so a non-negative least squares on the relative errors finds them exactly, with
  both efficiencies kept at most 1; the tile width with the smallest residual wins. Measure several
  models, widths and batch sizes: of two figures the measurements cannot tell apart (e.g. per-op and
  per-step overhead when every model dispatches as many ops) the second is not fitted and keeps its
  neutral value (efficiency 1, overhead 0).

The measured times are also written as ``measured_step_times``, each with the point it was measured
at (model label, width, batch, input shape, dtype, exits; full depth): a simulation uses one instead of
the model only at that very point (:mod:`simulator.config.measured`). Host wall time is the point
here; it never enters a simulation except through the profile written. Models run on this host's CPU.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from simulator.config.workload import BUILTIN_MODELS, ModelSpec
from simulator.cost.fit import TILE_WIDTHS, CostFit, fit_cost_model, predict_step_s  # noqa: F401 - public here too
from simulator.errors import InputError
from simulator.output.folder import atomic_write_text
from simulator.config.workload import model_label

ModelLike = str | dict[str, Any] | ModelSpec
# "wall": elapsed time, what a board's training takes (GPU work included). "cpu": this process's CPU
# time, for one-thread CPU measurements on a shared host: equal to wall time on an idle core, but
# blind to the time the process waited for a core while others ran (not to memory contention).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _clock(name: str) -> Any:
    try:
        return CLOCKS[name]
    except KeyError:
        raise InputError("unknown clock", field="clock", value=name, accepted=", ".join(CLOCKS)) from None


def _override_value(text: str) -> Any:
    """A label's override value: ``2/2/2/2`` a list, ``false``/``true`` a bool, numbers as numbers."""
    if "/" in text:
        return [_override_value(t) for t in text.split("/")]
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_label(text: str) -> dict[str, Any]:
    """The ModelSpec fields of a label ``family[-preset][[field=value,...]]`` (see model_label)."""
    from simulator.config.workload import PRESETS

    head, _, rest = text.partition("[")
    fields: dict[str, Any] = {}
    if rest:
        if not rest.endswith("]"):
            raise InputError("unclosed '[' in model label", field="models", value=text,
                             accepted="e.g. resnet-resnet18[stem=cifar]")
        for item in filter(None, rest[:-1].split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise InputError("an override in a model label needs field=value", field="models", value=text,
                                 accepted="e.g. resnet-resnet18[stem=cifar,width=32]")
            fields[key.strip()] = _override_value(value.strip())
    for family in sorted(BUILTIN_MODELS, key=len, reverse=True):
        if head == family:
            return {"name": family, **fields}
        if head.startswith(family + "-"):
            preset = head[len(family) + 1:]
            if preset not in PRESETS[family]:
                raise InputError("unknown preset in model label", field="models", value=text,
                                 accepted=", ".join(f"{family}-{p}" for p in PRESETS[family]))
            return {"name": family, "preset": preset, **fields}
    raise InputError("unknown model label", field="models", value=text,
                     accepted=f"family-preset labels such as cnn-tiny, mlp-small, resnet-resnet18, "
                              f"resnet-resnet18[stem=cifar] (families: {', '.join(BUILTIN_MODELS)})")


def parse_model(model: ModelLike) -> ModelSpec:
    """A ModelSpec, a mapping of its fields, or a label as :func:`simulator.config.workload.model_label`
    writes it: ``cnn-tiny``, ``resnet`` (family default preset), ``vit-vit-b``,
    ``resnet-resnet18[stem=cifar]``, ``resnet[blocks=8,width=32]``."""
    if isinstance(model, ModelSpec):
        return model
    from simulator.config.loading import validate_data

    data = model if isinstance(model, dict) else _parse_label(str(model))
    return validate_data(data, ModelSpec)


# The first line of every profile calibrate writes: how `calibrate --force` knows a file is its own
# (cli/sweep.py written_by_calibrate; a user's profile or notes at --out are never overwritten).
PROFILE_HEADER = "# Device profile measured on this host by `fleetsim calibrate`"


# ------------------------------------------------------------------ host benchmarks


def matmul_gflops(n: int = 1024, repeats: int = 10, clock: str = "wall") -> float:
    """Peak FP32 GFLOP/s of this host: a timed n×n matmul (2 n³ FLOPs), best of `repeats`."""
    now = _clock(clock)
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = now()
        torch.mm(a, b)
        best = min(best, now() - start)
    return 2.0 * n**3 / best / 1e9


def conv_gflops(channels: int = 128, size: int = 32, batch: int = 8, repeats: int = 10, clock: str = "wall") -> float:
    """FP32 GFLOP/s of a timed 3×3 convolution (``channels`` in and out, ``size``², ``batch``), best of
    `repeats`: the GEMM path convolutions take, which can be faster than matmul's."""
    now = _clock(clock)
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=gen)
    w = torch.randn(channels, channels, 3, 3, generator=gen)
    F.conv2d(x, w, padding=1)
    best = math.inf
    for _ in range(repeats):
        start = now()
        F.conv2d(x, w, padding=1)
        best = min(best, now() - start)
    return 2.0 * batch * channels * channels * 9 * size * size / best / 1e9


def copy_bandwidth_gbps(megabytes: int = 64, repeats: int = 5, clock: str = "wall") -> float:
    """Memory bandwidth in GB/s: a timed copy of a `megabytes` tensor (read + write), best of `repeats`."""
    now = _clock(clock)
    import torch

    n = megabytes * 1_000_000 // 4
    src = torch.ones(n)
    dst = torch.empty(n)
    dst.copy_(src)
    best = math.inf
    for _ in range(repeats):
        start = now()
        dst.copy_(src)
        best = min(best, now() - start)
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
                   num_classes: int, repeats: int, warmup: int, exits: str = "all", clock: str = "wall") -> float:
    """Median wall seconds of one real training step: forward, cross-entropy summed over every exit
    (``exits="all"``, as the trainer does) or of the last exit only, the others not even run
    (``"final"``: the single-classifier model), backward, SGD with momentum 0.9 as in the default
    scenario optimizer."""
    now = _clock(clock)
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

    def logits() -> list[Any]:
        if exits == "all":
            return model(x)
        h = model.stem(x)
        for block in model.blocks:
            h = block(h)
        return [model.exits[-1](h)]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.stack([F.cross_entropy(z, y) for z in logits()]).sum()
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = now()
        step()
        times.append(now() - start)
    return float(statistics.median(times))


# ------------------------------------------------------------------ fitting (simulator.cost.fit)


def step_works(points: list[dict[str, Any]], input_shape: tuple[int, ...], num_classes: int) -> list[Any]:
    """:class:`simulator.cost.model.StepWork` of each measured point (SGD with momentum, as measured)."""
    from simulator.cost import model as costmod

    return [costmod.step_work(costmod.model_cost(p["spec"], num_classes, input_shape, p["width_ratio"],
                                                 exits=p.get("exits", "all")),
                              p["batch_size"], "momentum") for p in points]


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
    rounds: int = 1,
    threads: int = 1,
    name: str = "this-host",
    out: str | Path | None = None,
    busy_w: float = 15.0,
    idle_w: float = 5.0,
    exits: Sequence[str] = ("all",),
    clock: str = "wall",
) -> dict[str, Any]:
    """Measure this host and write a device profile YAML to `out` (default ``<name>.yaml``).

    Returns the profile as a mapping (what :func:`simulator.config.profiles.load_profile` reads back).
    Every measured time is keyed by the point it was taken at (model label, width, batch, `input_shape`,
    dtype fp32, each of `exits`: ``all`` as algorithms with depth pruning or distillation train,
    ``final`` as the others do), so measure the shapes and exits your scenarios plan with; `num_classes`
    should be theirs too (it sizes the exits, not part of the key). Power cannot be measured
    from software portably: `busy_w` and `idle_w` are written as given — replace them with readings
    from the board's power monitor (e.g. tegrastats) when you have them. With `rounds` > 1 every
    workload is measured once per round, rounds interleaved, and the smallest round median counts:
    other processes on a shared host only ever add time, and a burst of it hits one round of many
    workloads rather than every round of one. ``clock="cpu"`` times by this process's CPU time instead
    of elapsed time (see :data:`CLOCKS`): for one-thread CPU measurements on a busy shared host only;
    never on a board whose GPU does the work.
    """
    import torch

    specs = _check(models, width_ratios, batch_sizes, repeats, threads, name)
    exits = list(dict.fromkeys(str(e) for e in exits))
    if not exits or any(e not in ("all", "final") for e in exits):
        raise InputError("unknown exits mode", field="exits", value=exits, accepted="all, final (one or both)")
    if int(rounds) < 1:
        raise InputError("rounds must be at least 1", field="rounds", value=rounds)
    if busy_w <= 0 or idle_w < 0 or busy_w < idle_w:
        raise InputError("busy power must be positive and at least the idle power", field="busy_w",
                         value=(busy_w, idle_w), accepted="busy_w > 0, 0 <= idle_w <= busy_w")
    width_ratios = list(dict.fromkeys(float(w) for w in width_ratios))
    batch_sizes = list(dict.fromkeys(int(b) for b in batch_sizes))
    shape = tuple(int(s) for s in input_shape)
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        _clock(clock)
        matmul = matmul_gflops(clock=clock)
        conv = conv_gflops(clock=clock)
        peak_gflops = max(matmul, conv)
        bandwidth_gbps = copy_bandwidth_gbps(clock=clock)
        points = [{"spec": spec, "width_ratio": float(w), "batch_size": int(b), "exits": e, "step_s": math.inf}
                  for spec in specs for e in exits for w in width_ratios for b in batch_sizes]
        for _ in range(int(rounds)):
            for p in points:
                step_s = measure_step_s(p["spec"], p["width_ratio"], p["batch_size"], input_shape=shape,
                                        num_classes=int(num_classes), repeats=int(repeats), warmup=int(warmup),
                                        exits=p["exits"], clock=clock)
                p["step_s"] = min(p["step_s"], step_s)
    finally:
        torch.set_num_threads(before)
    works = step_works(points, shape, int(num_classes))
    fit = fit_cost_model([(w, p["step_s"]) for w, p in zip(works, points)], peak_gflops * 1e9, bandwidth_gbps * 1e9)
    predicted = [predict_step_s(w, peak_gflops * 1e9, bandwidth_gbps * 1e9, fit) for w in works]
    errors = sorted(abs(pr / p["step_s"] - 1) for pr, p in zip(predicted, points))
    total_gb, available_gb = meminfo_gb()
    profile: dict[str, Any] = {
        "name": name,
        "display_name": f"{name} (calibrated)",
        "description": (
            f"Calibrated by `fleetsim calibrate` on {cpu_model()} with {threads} thread(s), torch {torch.__version__}, "
            f"input {list(shape)}, {num_classes} classes{', timed by process CPU time' if clock == 'cpu' else ''}; "
            f"peak = max(matmul {matmul:.1f}, conv {conv:.1f} GFLOP/s). "
            f"Step-time fit: median |error| {100 * statistics.median(errors):.1f} %, max {100 * errors[-1]:.1f} % "
            f"over {len(points)} measurements. Power figures are not measured."
        ),
        "compute": {
            "peak_fp32_gflops": round(peak_gflops, 3),
            "peak_fp16_gflops": round(peak_gflops, 3),  # CPUs have no faster fp16 training path
            "training_efficiency": float(f"{fit.training_efficiency:.6g}"),
            "gemm_tile_width": fit.gemm_tile_width,
            "elementwise_efficiency": float(f"{fit.elementwise_efficiency:.6g}"),
            "op_overhead_s": float(f"{fit.op_overhead_s:.6g}"),
            "step_overhead_s": float(f"{fit.step_overhead_s:.6g}"),
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
             "input_shape": list(shape), "dtype": "fp32", "exits": p["exits"], "step_s": p["step_s"]}
            for p in points
        ],
    }
    path = Path(out) if out is not None else Path(f"{name}.yaml")
    header = (f"{PROFILE_HEADER} ({time.strftime('%Y-%m-%d')}).\n"
              "# measured_step_times override the step-time model only at the point each was measured at\n"
              "# (model label, width, batch, input shape, dtype, exits, full depth).\n")
    atomic_write_text(path, header + yaml.safe_dump(profile, sort_keys=False))
    return profile
