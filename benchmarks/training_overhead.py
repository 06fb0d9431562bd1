"""Host wall time of a real-training run against a plain PyTorch loop doing the same local training.

1. Runs ``scenarios/quickstart.yaml`` with a fixed number of versions (``--versions``, default 50;
   everything else unchanged: 16 Jetsons, Co-S²P, proxy CNN on digits, evaluation every version),
   training inline (serially, in this process), and times the whole ``simulator.api.run`` call with a
   breakdown: setup before the event loop, time inside training jobs, evaluations, the rest of the loop,
   writing the traces.
2. From its ``updates.parquet`` (job id, device, depth, width ratio, local steps, outcome) rebuilds the
   jobs that were trained — the accepted ones: the inline executor runs a job only when the merge
   asks for its result — and runs the same local training in a plain PyTorch loop in this process:
   the same client shard, submodel (``build_model`` at the job's proxy depth and width), frozen prefix,
   batch size, number of steps, SGD settings, loss (CE over the exits + the run's self-distillation,
   ``distill.exit_losses``) and Taylor-importance scoring (``trainer.taylor_importance``: part of the
   job's work in Co-S²P). The frozen prefix is not in the trace; it is read from the plans the
   run's learner made (recorded by wrapping ``Learner.dispatch``).
3. Runs the same scenario with the process pool (``--workers``, default 2) and reports its speed-up
   over the serial run. The pool trains every started job eagerly, also the ones later dropped or
   unfinished, and its start-up (workers import torch, load the data) is part of its wall time.

    python benchmarks/training_overhead.py [--versions 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def scenario(versions: int) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data["stop"] = {"max_versions": versions, "sim_time_s": 1e9}
    data["output"] = {"report": False}
    return data


class _Timers:
    """Accumulated wall time of a few functions, by wrapping them (one call each, not per event)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = defaultdict(float)
        self.n: dict[str, int] = defaultdict(int)
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, key: str) -> None:
        original = getattr(owner, name)
        timers = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers.s[key] += time.perf_counter() - start
                timers.n[key] += 1

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def _run_with_timers(data: dict[str, Any], out: Path, executor: Any) -> tuple[Any, dict[str, Any], dict[int, Any]]:
    """One simulator.api.run with timers; returns (Run, timings, job_id -> SubmodelPlan).

    The cost model's in-process cache is cleared first, so every run plans from scratch like a fresh
    ``fleetsim run`` (imports are warm; a process pool's fork server, once started, is reused).
    """
    import simpy

    from simulator.cost import model as cost
    from simulator.trace import recorder as trace
    from simulator.api import run
    from simulator.learning import executors, learner

    plans: dict[int, Any] = {}
    original_dispatch = learner.Learner.dispatch

    def dispatch(self: Any, job_id: int, client: int, plan: Any) -> None:
        plans[job_id] = plan
        original_dispatch(self, job_id, client, plan)

    timers = _Timers()
    learner.Learner.dispatch = dispatch  # type: ignore[method-assign]
    timers.wrap(simpy.Environment, "run", "loop")
    timers.wrap(executors.WorkerData, "run", "train")          # inline jobs (pool jobs run elsewhere)
    timers.wrap(learner.Learner, "result", "wait_result")       # includes inline training / pool waits
    timers.wrap(learner.Learner, "evaluate", "evaluate")
    timers.wrap(learner.Learner, "merge", "merge")
    timers.wrap(learner.Learner, "start", "extract_submit")
    timers.wrap(trace.TraceRecorder, "close", "write_traces")
    cost._trace.cache_clear()
    start = time.perf_counter()
    try:
        result = run(copy.deepcopy(data), out=out, force=True, report=False, executor=executor)
    finally:
        total = time.perf_counter() - start
        timers.restore()
        learner.Learner.dispatch = original_dispatch  # type: ignore[method-assign]
    timings = {"total_s": total, **{f"{k}_s": v for k, v in timers.s.items()}, "jobs_trained_here": timers.n["train"]}
    return result, timings, plans


def train_plain(model: Any, x: Any, y: Any, plan: Any, steps: int, *, seed: int, batch_size: int, lr: float,
                momentum: float, weight_decay: float, distill: tuple[str, float, float],
                importance_batches: int) -> None:
    """One job's local training as a plain PyTorch loop: freeze blocks before ``plan.trainable_from``,
    SGD over seeded shuffled batches, CE over the trainable exits + self-distillation, then the Taylor
    scores. Shared with ``training_job_ab.py``."""
    import torch

    from simulator.learning.distill import exit_losses
    from simulator.learning.trainer import taylor_importance

    frozen, depth = plan.trainable_from, plan.depth
    model.train()
    params = []
    for name, p in model.named_parameters():
        block = 0 if name.startswith("stem.") else int(name.split(".")[1])
        p.requires_grad_(block >= frozen)
        if p.requires_grad:
            params.append(p)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    batch = min(batch_size, len(y))

    def batches(count: int):
        perm, pos = torch.randperm(len(y), generator=gen), 0
        for _ in range(count):
            if pos + batch > len(y):
                perm, pos = torch.randperm(len(y), generator=gen), 0
            yield perm[pos:pos + batch]
            pos += batch

    def forward(xb: torch.Tensor) -> list[torch.Tensor]:
        if frozen == 0:
            return model(xb)
        with torch.no_grad():
            h = model.stem(xb)
            for b in range(frozen):
                h = model.blocks[b](h)
        outs = []
        for b in range(frozen, depth):
            h = model.blocks[b](h)
            outs.append(model.exits[b](h))
        return outs

    picks = batches(steps + importance_batches)
    for _ in range(steps):
        i = next(picks)
        loss, _, _ = exit_losses(forward(x[i]), y[i], *distill)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if importance_batches:  # the job's Taylor scores |Σ w·∂L/∂w| per unit: the same function
        taylor_importance(model, plan, [(x[i], y[i]) for i in picks])


def plain_loop(data: dict[str, Any], updates: Any, plans: dict[int, Any], num_plan_blocks: int) -> dict[str, Any]:
    """The accepted jobs' local training, written as a plain PyTorch loop (one intra-op thread, as
    fleetsim's trainer uses)."""
    import torch

    from simulator.config.algorithm import resolve_algorithm
    from simulator.server.registry import policy_params
    from simulator.config.scenario import Scenario
    from simulator.learning.data import load_dataset, partition
    from simulator.learning.models import build_model

    scenario_ = Scenario.model_validate(data)
    algorithm = resolve_algorithm(scenario_.algorithm, policy_params)
    wl = scenario_.workload
    spec = wl.train_model or wl.model
    distill = algorithm.distillation
    importance_batches = algorithm.pruning.importance_batches if algorithm.pruning.width == "importance" else 0
    jobs = updates[updates.outcome == "accepted"].sort_values("job_id")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        from simulator.engine.workload_info import describe_workload

        dataset_spec = describe_workload(scenario_, ROOT, False, None).dataset_spec
        dataset = load_dataset(dataset_spec, scenario_.seed)
        parts = partition(dataset.y_train.numpy(), scenario_.num_devices, wl.partition, scenario_.seed)
        train_blocks = None
        steps_total = 0
        for row in jobs.itertuples():
            plan = plans[int(row.job_id)]
            if train_blocks is None:
                train_blocks = build_model(spec, dataset.num_classes, dataset.input_shape).full_depth
            depth = max(1, min(train_blocks, math.ceil(int(row.depth) * train_blocks / num_plan_blocks)))
            assert depth == plan.depth and abs(float(row.width_ratio) - plan.width_ratio) < 1e-12, (row, plan)
            idx = torch.from_numpy(parts[int(row.device)])
            x, y = dataset.x_train[idx], dataset.y_train[idx]
            model = build_model(spec, dataset.num_classes, dataset.input_shape, float(row.width_ratio), depth)
            steps = int(row.local_steps)
            train_plain(model, x, y, plan, steps, seed=int(row.job_id), batch_size=wl.batch_size,
                        lr=wl.optimizer.lr, momentum=wl.optimizer.momentum, weight_decay=wl.optimizer.weight_decay,
                        distill=(distill.mode, distill.weight, distill.temperature),
                        importance_batches=importance_batches)
            steps_total += steps
    finally:
        elapsed = time.perf_counter() - start
        torch.set_num_threads(threads)
    return {"plain_s": elapsed, "jobs": len(jobs), "steps": steps_total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=50, help="stop after this many versions (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="process-pool workers for the parallel run")
    parser.add_argument("--skip-pool", action="store_true", help="only the serial run and the plain loop")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each kind, fastest kept (default 2)")
    parser.add_argument("--cold-cache", action="store_true",
                        help="turn the planner's on-disk trace cache off, so every run traces its models")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    t0 = time.perf_counter()
    import sklearn.datasets  # noqa: F401  imports are not what is measured
    import torch
    import torch._dynamo  # noqa: F401  (imported lazily by torch on the first model trace)

    import simulator.api  # noqa: F401
    from simulator.learning.executors import make_executor
    from simulator.learning.executors import InlineExecutor

    imports_s = time.perf_counter() - t0
    data = scenario(args.versions)
    out: dict[str, Any] = {"versions": args.versions, "imports_s": imports_s, "repeat": args.repeat,
                           "load_average_before": os.getloadavg()}
    serial_runs, plain_runs, pool_runs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        # A private planner trace cache (simulator.cost.cache): the first serial run fills it, as the
        # first run of a scenario on a machine does; --cold-cache turns it off for every run.
        os.environ["FLEETSIM_CACHE_DIR"] = "off" if args.cold_cache else str(Path(tmp) / "cache")
        out["trace_cache"] = "off" if args.cold_cache else "warm after the first serial run"
        for _ in range(args.repeat):  # alternate, keep the fastest of each: the machine may be shared
            serial, timings, plans = _run_with_timers(data, Path(tmp) / "serial", InlineExecutor())
            serial_runs.append(timings)
            plain = plain_loop(data, serial.updates, plans, int(serial.summary["num_blocks"]))
            assert plain["jobs"] == timings["jobs_trained_here"], (plain["jobs"], timings["jobs_trained_here"])
            plain_runs.append(plain)
        summary = serial.summary
        out["summary"] = {k: summary[k] for k in ("versions", "jobs", "accepted", "dropped", "lost", "final_accuracy")}
        if not args.skip_pool:
            for _ in range(args.repeat):
                _, pool_timings, _ = _run_with_timers(data, Path(tmp) / "pool",
                                                      make_executor("process", args.workers))
                pool_runs.append(pool_timings)
            out["pool_traces_identical"] = all(
                (Path(tmp) / "serial" / f"{t}.parquet").read_bytes() == (Path(tmp) / "pool" / f"{t}.parquet").read_bytes()
                for t in ("updates", "versions", "evals"))
    out["serial"] = timings = min(serial_runs, key=lambda t: t["total_s"])
    out["plain"] = plain = min(plain_runs, key=lambda p: p["plain_s"])
    out["serial_all_s"] = [t["total_s"] for t in serial_runs]
    out["serial_setup_all_s"] = [t["total_s"] - t["loop_s"] - t.get("write_traces_s", 0) for t in serial_runs]
    out["plain_all_s"] = [p["plain_s"] for p in plain_runs]
    out["ratio_serial_to_plain"] = timings["total_s"] / plain["plain_s"]
    # each serial run and the plain loop right after it saw about the same machine; the first pair
    # also fills the planner's trace cache, so it is left out when there are others
    pairs = [t["total_s"] / p["plain_s"] for t, p in zip(serial_runs, plain_runs)]
    out["pair_ratios"] = pairs
    out["median_pair_ratio"] = statistics.median(pairs[1:] if len(pairs) > 1 else pairs)
    if pool_runs:
        out["pool"] = {"workers": args.workers, **min(pool_runs, key=lambda t: t["total_s"])}
        out["pool_all_s"] = [t["total_s"] for t in pool_runs]  # the first one also starts the fork server
        out["pool_speedup"] = timings["total_s"] / out["pool"]["total_s"]
    out["load_average_after"] = os.getloadavg()

    s = out["serial"]
    other_loop = s["loop_s"] - s["wait_result_s"] - s["evaluate_s"] - s["merge_s"] - s["extract_submit_s"]
    other_loop += s["evaluate_s"] / (summary["versions"] + 1)  # the first evaluation ran before the loop
    print(f"quickstart, {summary['versions']} versions: {summary['jobs']} jobs dispatched, "
          f"{summary['accepted']} accepted (trained inline: {s['jobs_trained_here']}), "
          f"final accuracy {summary['final_accuracy']:.3f}")
    print(f"serial fleetsim run      {s['total_s']:7.2f} s")
    print(f"  setup before the loop  {s['total_s'] - s['loop_s'] - s.get('write_traces_s', 0):7.2f} s  "
          "(scenario, profiles, planning: model-cost tracing, dataset, learner, first evaluation)")
    print(f"    planner trace cache: {out['trace_cache']}; setup of each serial run: "
          + ", ".join(f"{v:.2f}" for v in out["serial_setup_all_s"]) + " s")
    print(f"  training jobs          {s['train_s']:7.2f} s")
    print(f"  evaluations            {s['evaluate_s']:7.2f} s  ({summary['versions'] + 1}; the first is part of setup)")
    print(f"  merges                 {s['merge_s']:7.2f} s")
    print(f"  extract + submit       {s['extract_submit_s']:7.2f} s")
    print(f"  rest of the loop       {other_loop + s['wait_result_s'] - s['train_s']:7.2f} s  (engine, network, policy)")
    print(f"  writing traces         {s.get('write_traces_s', 0):7.2f} s")
    print(f"plain PyTorch loop       {plain['plain_s']:7.2f} s  ({plain['jobs']} jobs, {plain['steps']} steps, data load included)")
    print(f"ratio serial / plain     {out['ratio_serial_to_plain']:7.2f}x   (target <= 1.15; fastest against fastest)")
    print(f"  per pair (run, then its plain loop): " + ", ".join(f"{r:.2f}" for r in out["pair_ratios"])
          + f"; median without the cold first pair {out['median_pair_ratio']:.2f}x")
    if "pool" in out:
        p = out["pool"]
        print(f"pool run, {p['workers']} workers     {p['total_s']:7.2f} s  (waiting for results {p['wait_result_s']:.2f} s; "
              f"first pool run in the process, which starts the fork server: {out['pool_all_s'][0]:.2f} s)")
        print(f"speed-up pool / serial   {out['pool_speedup']:7.2f}x   (target >= 1.6); traces identical: "
              f"{out['pool_traces_identical']}")
    print(f"fastest of {args.repeat} each; load average before/after: {out['load_average_before'][0]:.2f} / "
          f"{out['load_average_after'][0]:.2f} on {os.cpu_count()} CPUs")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
