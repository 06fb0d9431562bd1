#!/usr/bin/env python3
"""Validate fleetsim's training-memory model on THIS host and write docs/memory_validation.md.

For each case (model × input × batch × exits):

1. Predict: ``simulator.cost.model.training_memory_bytes(model_cost(...), batch, "momentum")`` with no
   framework overhead — weights + gradients + momentum (4 bytes each per parameter) + the traced
   saved activations × batch: what the planner compares with a device's usable memory (minus the
   scenario's ``framework_overhead_gb``, which stands for the CUDA context and is not measured here).
2. Measure, in a fresh process per case, one real SGD-momentum training step after a warm-up step
   (so the momentum buffers exist, as in steady training), one torch thread:
   - tensor peak (``simulator.cost.memory_probe``): the bytes alive before the step (weights, momentum,
     batch) + the most the step's own tensors held at once (a dispatch mode registers every output
     storage of every forward, backward and optimizer op and drops it when it is freed);
   - allocator view: the process's resident-set high-water mark during the step (VmHWM after
     resetting it through /proc/self/clear_refs) minus its resident set before — what the step took
     from the OS, op scratch included. glibc is told to serve every block above 64 kB by mmap and to
     return freed memory at once (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_), else pages kept
     from the warm-up step hide the step's growth. Linux only; "n/a" elsewhere.
3. Compare: error = predicted ÷ tensor peak − 1.

    python scripts/validate_memory.py            # about 2 minutes on one core

Exits: a case marked ``final`` trains the last exit only (what an algorithm without depth pruning or
distillation does, and what fleetsim plans for it), ``all`` sums every block's exit (depth pruning,
distillation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this working tree's simulator (an editable install may point elsewhere)
NUM_CLASSES = 10
TARGET_ERROR = 0.15
# glibc: every allocation above 64 kB by mmap, freed memory returned at once, so the resident set
# follows what the step holds (otherwise pages kept from the warm-up step hide its growth)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


@dataclass(frozen=True)
class Case:
    model: str
    input_shape: tuple[int, ...]
    batch_size: int
    exits: str = "final"
    why: str = ""


CASES = (
    Case("resnet-resnet18-cifar", (3, 32, 32), 16, why="CIFAR ResNet-18"),
    Case("resnet-resnet18-cifar", (3, 32, 32), 64, why="CIFAR ResNet-18"),
    Case("resnet-resnet18-cifar", (3, 32, 32), 64, "all", why="CIFAR ResNet-18, every exit"),
    Case("resnet-resnet18", (3, 224, 224), 4, why="torchvision ResNet-18"),
    Case("resnet-resnet18", (3, 224, 224), 16, why="torchvision ResNet-18"),
    Case("mobilenet-mobilenet-v2", (3, 224, 224), 4, why="MobileNetV2 (depthwise)"),
    Case("mobilenet-mobilenet-v2", (3, 224, 224), 8, why="MobileNetV2 (depthwise)"),
    Case("mobilenet-mobilenet-v3-large", (3, 224, 224), 8, why="MobileNetV3-Large (SE, hardswish)"),
    Case("vit-small", (3, 32, 32), 32, why="small ViT"),
    Case("vit-small", (3, 32, 32), 128, why="small ViT"),
    Case("vit-small", (3, 32, 32), 128, "all", why="small ViT, every exit"),
    Case("text-transformer-small", (64,), 64, why="small text transformer"),
)


# ------------------------------------------------------------------ the measuring process


def _status_bytes(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(case: Case) -> dict[str, Any]:
    """One case, in this process: warm-up step, then the tensor peak and the allocator view of a step."""
    import torch
    import torch.nn.functional as F

    from simulator.cost.calibrate import parse_model
    from simulator.learning.models import build_model
    from simulator.cost.memory_probe import measure_step_peak

    torch.set_num_threads(1)
    spec = parse_model(case.model)
    model = build_model(spec, NUM_CLASSES, case.input_shape, seed=0)
    model.train()
    gen = torch.Generator().manual_seed(0)
    x = model.example_input(case.batch_size)
    x = torch.randn(x.shape, generator=gen) if x.is_floating_point() else torch.randint(0, 64, x.shape, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (case.batch_size,), generator=gen)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def loss_fn(m: Any, xb: Any, yb: Any) -> Any:
        if case.exits == "all":
            return torch.stack([F.cross_entropy(z, yb) for z in m(xb)]).sum()
        h = m.stem(xb)
        for block in m.blocks:
            h = block(h)
        return F.cross_entropy(m.exits[-1](h), yb)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, x, y).backward()
        optimizer.step()

    step()  # warm-up: momentum buffers exist from here on
    optimizer.zero_grad(set_to_none=True)
    rss_step = None
    if _reset_high_water_mark():
        before = _status_bytes("VmRSS")
        step()
        after = _status_bytes("VmHWM")
        rss_step = after - before if before is not None and after is not None else None
    start = time.perf_counter()
    peak = measure_step_peak(model, x, y, optimizer, loss_fn)
    return {"resident_bytes": peak.resident_bytes, "step_peak_bytes": peak.step_peak_bytes,
            "measured_bytes": peak.peak_bytes, "rss_step_bytes": rss_step,
            "probe_s": time.perf_counter() - start}


def predict(case: Case) -> dict[str, Any]:
    from simulator.cost import model as cost
    from simulator.cost.calibrate import parse_model

    c = cost.model_cost(parse_model(case.model), NUM_CLASSES, case.input_shape, exits=case.exits)
    total = cost.training_memory_bytes(c, case.batch_size, "momentum")
    return {"predicted_bytes": total, "params": c.params, "state_bytes": 3 * c.param_bytes,
            "activation_bytes": c.activation_bytes_per_sample * case.batch_size}


def measure_in_fresh_process(case: Case) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **MALLOC_ENV}
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(asdict(case))], capture_output=True,
                         text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the page


def mb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:,.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | input | batch | exits | params | predicted (MB) | = weights, grads, momentum | + activations | "
             "measured tensor peak (MB) | = resident | + step | **error** | allocator view of the step (MB) | why |",
             "| :--- | :--- | ---: | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :--- |"]
    for r in rows:
        lines.append(
            f"| `{r['model']}` | {'×'.join(map(str, r['input_shape']))} | {r['batch_size']} | {r['exits']} | "
            f"{r['params'] / 1e6:.2f} M | {mb(r['predicted_bytes'])} | {mb(r['state_bytes'])} | {mb(r['activation_bytes'])} | "
            f"{mb(r['measured_bytes'])} | {mb(r['resident_bytes'])} | {mb(r['step_peak_bytes'])} | "
            f"**{100 * r['error']:+.1f} %** | {mb(r['rss_step_bytes'])} | {r['why']} |")
    return "\n".join(lines)


def page(rows: list[dict[str, Any]], minutes: float, loads: tuple[float, float]) -> str:
    import platform

    import torch

    from simulator.cost.calibrate import cpu_model

    errors = [abs(r["error"]) for r in rows]
    worst = max(rows, key=lambda r: abs(r["error"]))
    within = sum(e <= TARGET_ERROR for e in errors)
    slack = [r["rss_step_bytes"] / r["step_peak_bytes"] - 1 for r in rows if r["rss_step_bytes"]]
    tf = [r["error"] for r in rows if r["model"].startswith(("vit", "text-transformer"))]
    transformer_text = (f"come out low by {100 * -max(tf):.0f}–{100 * -min(tf):.0f} %" if tf and max(tf) < 0
                        else "are not all low")
    slack_text = (f"median {100 * statistics.median(slack):+.0f} %, range {100 * min(slack):+.0f} … "
                  f"{100 * max(slack):+.0f} %") if slack else "not available on this host"
    return f"""# Training-memory validation on this host

> Generated by `python scripts/validate_memory.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in
> {minutes:.1f} minutes on {cpu_model()} ({platform.machine()}), torch {torch.__version__}, one thread, {NUM_CLASSES} classes.
> Load average before / after: {loads[0]:.2f} / {loads[1]:.2f} (memory figures do not depend on load).
> Do not edit by hand: rerun the script. Part of [results.md](results.md); step times:
> [cost_model_validation.md](cost_model_validation.md).

**Headline:** `simulator.cost.model.training_memory_bytes` is off by a median **{100 * statistics.median(errors):.1f} %**
from the measured tensor peak over {len(rows)} cases ({within} of {len(rows)} within {100 * TARGET_ERROR:.0f} %; worst
{100 * worst['error']:+.1f} %, `{worst['model']}` batch {worst['batch_size']}).

## What was done

1. **Predicted** = `training_memory_bytes(model_cost(model, {NUM_CLASSES}, input, exits=…), batch, "momentum")`
   with no framework overhead: 4 bytes × parameters × 3 (weights, gradients, momentum) + the saved
   activations the meta-device trace counts (`saved_tensors_hooks`, each storage once, parameters
   excluded) × batch.
2. **Measured**, in a fresh process per case, one real training step (set-to-none `zero_grad`, forward,
   cross-entropy, backward, SGD-momentum `step`) after a warm-up step, with `simulator.cost.memory_probe`:
   *resident* = weights, momentum buffers and the batch alive before the step; *step* = the most the
   step's own tensors (every output of every forward, backward and optimizer op, each storage once,
   dropped when freed) held at any moment. *Measured tensor peak* = resident + step.
3. **Allocator view**, an independent check of the step figure: the process's resident-set high-water
   mark during an identical step minus its resident set before (Linux `VmHWM` after `clear_refs`),
   with glibc serving every block above 64 kB by `mmap` and returning freed memory at once
   (`MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=0`): what the step took from the operating
   system, op scratch buffers that no tensor owns included. It differs from the tensor-level step
   figure by {slack_text} (blocks under 64 kB still come from the heap, where pages freed by the
   warm-up step are reused without growing the resident set: the allocator view can only be lower for
   them).

## Results

{table(rows)}

error = predicted ÷ measured tensor peak − 1 (negative: the model under-estimates).

## Reading it

- **Why the model is close, and where it misses.** At the peak (in the backward pass) a step holds the
  weights, the momentum buffers, the saved activations not yet released, the gradients computed so far
  and the temporaries of the op running. The model counts every gradient and every saved activation in
  full and no temporary. The convolution nets come out within 7 % either way; the
  transformers {transformer_text} — consistent with backward temporaries of activation size that no saved
  tensor accounts for (the gradient of each layer's attention matrix, batch × heads × tokens², and of its
  2×–4×-wide MLP hidden layer), which this page does not measure one by one.
- **Depthwise models hold the most activations per FLOP.** MobileNetV2's expanded 96- and
  144-channel maps at 112² and 56² make ~78 MB of saved tensors per 224² sample in eager PyTorch — more
  than torchvision ResNet-18's ~22 MB, at a sixth of the FLOPs. A conv + norm + ReLU6 saves three
  maps (the conv's input, the norm's input and the activation's input; ReLU saves its output, which the
  next conv saves anyway, so a ResNet block saves two); in-place ReLU6 does not change this in torch
  2.13 (measured while writing this page). A planner should not size edge training by parameters.
- **What this page does not measure.** GPU-side memory: the CUDA context, cuDNN workspaces and the
  caching allocator's rounding and fragmentation on a Jetson (the scenario's `framework_overhead_gb`,
  default 0.3 GB, stands for them), and fp16/AMP training (the model assumes fp32 throughout).
- **Published Jetson figures.** None found: three searches of the stored sources (Jetson Nano training
  memory; the IISc DREAM-lab POMACS 2022 characterisation of Jetson training, whose stored abstract
  and summaries report time, energy and utilisation, not per-step memory peaks) turned up no
  measured training-memory peak to compare with. The measurements file gathered for issue 13 (point 3)
  is where such rows belong; compare them with the predicted column here when they exist.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs" / "memory_validation.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        data = json.loads(args.worker)
        data["input_shape"] = tuple(data["input_shape"])
        print(json.dumps(measure(Case(**data))))
        return
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows = []
    for case in CASES:
        print(f"{case.model} {case.input_shape} batch {case.batch_size} exits {case.exits} …", flush=True)
        row = {**asdict(case), **predict(case), **measure_in_fresh_process(case)}
        row["error"] = row["predicted_bytes"] / row["measured_bytes"] - 1
        print(f"  predicted {mb(row['predicted_bytes'])} MB, measured {mb(row['measured_bytes'])} MB "
              f"({100 * row['error']:+.1f} %), allocator view of the step {mb(row['rss_step_bytes'])} MB", flush=True)
        rows.append(row)
    text = page(rows, (time.perf_counter() - start) / 60, (load_before, os.getloadavg()[0]))
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
