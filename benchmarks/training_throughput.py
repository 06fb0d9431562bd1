"""Real-training throughput of issue 16's many-small-clients workload against a plain PyTorch loop.

Why: the speed of fleetsim's real training is only meaningful next to the same training written as
the shortest plain PyTorch program, measured in the same run on the same (shared, drifting) machine.

The workload is ``benchmarks/training_small_clients.yaml`` (documented field by field in
``docs/benchmark_workload.md``): 16 clients, the 155,020-parameter CNN (151,380 of them in its four
convolutions) on scikit-learn's digits, FedAvg with every client in every round, 20 rounds, 2 local
epochs of batch 32, SGD 0.05 / 0.9, an evaluation of the global model after every round.

Every repeat measures, alternating (order rotated from repeat to repeat, so no variant always runs
on the calmest or busiest moment):
- ``plain``: :func:`plain_fedavg`, one model trained in place client after client, a float64
  weighted mean per round, one evaluation per round (one intra-op thread, as fleetsim's jobs);
- ``serial``: ``simulator.api.run`` of the scenario, inline executor;
- ``pool``: the same with ``make_executor("process", workers=2)``;
- ``ray``: the same with ``make_executor("ray", workers=2)`` on a local Ray started before the clock.
Each variant is timed from the call to the end of the run (imports and, for Ray, ``ray.init`` are
outside the clock; the pool's workers start inside it, as in ``fleetsim run --workers 2``). Ratios are
taken against the plain loop of the same repeat; the median over repeats is printed, with the fastest
against the fastest. The runs' ``updates``, ``versions`` and ``evals`` traces must be byte-identical
across executors, and the plain loop's accuracies must match fleetsim's (same seeds, same work).

    python benchmarks/training_throughput.py                 # 3 repeats of plain, serial, pool, ray
    python benchmarks/training_throughput.py --repeat 5 --skip ray --json /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "benchmarks" / "training_small_clients.yaml"
TRACES = ("updates", "versions", "evals")


def scenario() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(SCENARIO.read_text())


def plain_fedavg(data: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    """The workload as a plain PyTorch program: the same data split, model initialisation, job seeds
    (``Learner.job_seed`` with job id ``16·round + client``), batches, steps, optimizer and a float64
    weighted mean. Returns its wall time (data loading included) and its accuracy after every round."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from simulator.config.scenario import Scenario
    from simulator.learning.data import load_dataset, partition
    from simulator.learning.models import build_model

    sc = Scenario.model_validate(data)
    wl, seed, clients = sc.workload, int(sc.seed), sc.num_devices
    rounds, epochs, batch = int(sc.stop.max_versions), float(wl.local_epochs), int(wl.batch_size)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        ds = load_dataset(wl.dataset, seed)
        parts = [torch.from_numpy(p) for p in partition(ds.y_train.numpy(), clients, wl.partition, seed)]
        shards = [(ds.x_train[p], ds.y_train[p]) for p in parts]

        def derived(*key: int) -> int:  # the learner's seeds: SeedSequence(key) -> 63-bit integer
            return int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0] >> 1)

        model = build_model(wl.model, ds.num_classes, ds.input_shape, seed=derived(seed, 0x6D6F64))
        head = model.exits[len(model.blocks) - 1]

        def logits(x: torch.Tensor) -> torch.Tensor:  # FedAvg trains and evaluates the deepest exit only
            h = model.stem(x)
            for block in model.blocks:
                h = block(h)
            return head(h)

        def evaluate() -> float:
            model.eval()
            with torch.no_grad():
                return float((logits(ds.x_test).argmax(-1) == ds.y_test).double().mean())

        global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(global_state)
        accuracies = [evaluate()]
        for r in range(rounds):
            total = {k: torch.zeros(v.shape, dtype=torch.float64) for k, v in global_state.items()}
            weight = 0.0
            for c, (x, y) in enumerate(shards):
                n, b = len(y), min(batch, len(y))
                model.load_state_dict(global_state)
                model.train()
                opt = torch.optim.SGD(model.parameters(), lr=wl.optimizer.lr, momentum=wl.optimizer.momentum,
                                      weight_decay=wl.optimizer.weight_decay)
                job_seed = derived(seed, 0x6A6F62, c, clients * r + c)
                gen = torch.Generator().manual_seed(job_seed)
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(job_seed)
                    perm, pos = torch.randperm(n, generator=gen), 0
                    for _ in range(max(1, math.ceil(epochs * n / b))):
                        if pos + b > n:
                            perm, pos = torch.randperm(n, generator=gen), 0
                        idx = perm[pos:pos + b]
                        pos += b
                        loss = F.cross_entropy(logits(x[idx]), y[idx])
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                for k, v in model.state_dict().items():
                    total[k] += float(n) * v.detach().double()
                weight += n
            global_state = {k: (v / weight).to(global_state[k].dtype) for k, v in total.items()}
            model.load_state_dict(global_state)
            accuracies.append(evaluate())
    finally:
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        torch.set_num_threads(previous)
    return {"s": elapsed, "cpu_s": cpu, "accuracies": accuracies}


def fleetsim_run(data: dict[str, Any], out: Path, kind: str, workers: int, keep_actors: bool = False) -> dict[str, Any]:
    """One ``simulator.api.run`` with the named executor; wall time, accuracies, trace bytes."""
    import copy

    from simulator.api import run
    from simulator.cost import cache as cost_cache
    from simulator.learning.executors import make_executor

    executor = make_executor(kind, workers=workers if kind != "inline" else None)
    if kind == "ray" and keep_actors:
        executor.keep_actors = True
    cost_cache.trace.cache_clear()  # plan from the on-disk cache, as a fresh `fleetsim run` does
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = run(copy.deepcopy(data), out=out, force=True, report=False, executor=executor)
    finally:
        executor.shutdown()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"s": elapsed, "cpu_s": cpu, "startup": getattr(executor, "last_run", {}), "accuracies": [float(a) for a in result.evals.accuracy],
            "traces": {t: (out / f"{t}.parquet").read_bytes() for t in TRACES}}


def _ratios(runs: dict[str, list[dict[str, Any]]], name: str) -> tuple[float, float]:
    """(median of per-repeat ratios to that repeat's plain loop, fastest / fastest plain)."""
    per = [v["s"] / p["s"] for v, p in zip(runs[name], runs["plain"])]
    return statistics.median(per), min(v["s"] for v in runs[name]) / min(p["s"] for p in runs["plain"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of alternation (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the pool and CPUs of Ray (default 2)")
    parser.add_argument("--skip", action="append", default=[], choices=["serial", "pool", "ray"],
                        help="leave a variant out (repeatable)")
    parser.add_argument("--plain-threads", type=int, default=1,
                        help="intra-op threads of the plain loop (default 1, as fleetsim's jobs)")
    parser.add_argument("--keep-actors", action="store_true",
                        help="Ray actors stay up between runs (warm, as the pool's fork server is after its first run)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    import sklearn.datasets  # noqa: F401  imports are outside the clock
    import torch._dynamo  # noqa: F401  (torch.optim imports it on the first optimizer)

    import simulator.api  # noqa: F401

    data = scenario()
    variants = ["serial", "pool", "ray"]
    variants = [v for v in variants if v not in args.skip]
    if "ray" in variants:
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    kinds = {"serial": "inline", "pool": "process", "ray": "ray"}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in ["plain", *variants]}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FLEETSIM_CACHE_DIR"] = str(Path(tmp) / "cache")
        fleetsim_run(data, Path(tmp) / "warm", "inline", 0)  # fills the planner's trace cache, untimed
        order = ["plain", *variants]
        for rep in range(args.repeat):
            shift = rep % len(order)
            for name in order[shift:] + order[:shift]:
                if name == "plain":
                    runs[name].append(plain_fedavg(data, args.plain_threads))
                else:
                    runs[name].append(fleetsim_run(data, Path(tmp) / name, kinds[name], args.workers, args.keep_actors))
                last = runs[name][-1]
                up = last.get("startup") or {}
                extra = (f"; workers ready after {', '.join(f'{x:.1f}' for x in up['ready_after_s']) or 'never'} s, "
                         f"{up['trained_here']} jobs trained by the waiting thread") if up else ""
                print(f"  repeat {rep + 1} {name:6s} {last['s']:6.2f} s wall, {last['cpu_s']:6.2f} s CPU of this process"
                      + extra, file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
    if "ray" in variants:
        ray.shutdown()

    base = runs[variants[0]][0] if variants else None
    identical = all(r["traces"] == base["traces"] for v in variants for r in runs[v]) if base else None
    plain_acc = runs["plain"][0]["accuracies"]
    acc_gap = max(abs(a - b) for a, b in zip(plain_acc, base["accuracies"])) if base else None
    report: dict[str, Any] = {"repeat": args.repeat, "keep_actors": args.keep_actors, "workers": args.workers, "plain_threads": args.plain_threads,
                              "load_1min": loads, "cpus": os.cpu_count(), "traces_identical": identical,
                              "max_accuracy_gap_plain_vs_fleetsim": acc_gap,
                              "all_s": {k: [round(r["s"], 3) for r in v] for k, v in runs.items()},
                              "all_cpu_s": {k: [round(r["cpu_s"], 3) for r in v] for k, v in runs.items()},
                              "startup": {k: [r.get("startup") for r in v] for k, v in runs.items() if k != "plain"}}
    print(f"issue 16 small-clients workload: 16 clients, 20 FedAvg rounds; {args.repeat} alternating repeats; "
          f"load (1 min) {', '.join(f'{x:.2f}' for x in loads)} on {os.cpu_count()} CPUs")
    print(f"plain PyTorch loop ({args.plain_threads} thread)  " + ", ".join(f"{r['s']:.2f}" for r in runs["plain"]) + " s")
    targets = {"serial": "<= 1.05", "pool": "<= 0.60", "ray": "<= 1.2 x pool"}
    for v in variants:
        med, fast = _ratios(runs, v)
        report[v] = {"median_ratio_to_plain": med, "fastest_ratio_to_plain": fast}
        print(f"{v:6s} " + ", ".join(f"{r['s']:.2f}" for r in runs[v]) + f" s   / plain: median {med:.3f}x, "
              f"fastest {fast:.3f}x   (target {targets[v]})")
    if "serial" in variants:  # CPU time drifts less with load than wall time; only the serial run has all its work here
        per = [s["cpu_s"] / p["cpu_s"] for s, p in zip(runs["serial"], runs["plain"])]
        report["serial_cpu_ratio_median"] = statistics.median(per)
        print("serial / plain in CPU time of this process: " + ", ".join(f"{x:.3f}" for x in per)
              + f"; median {statistics.median(per):.3f}x")
    if "pool" in variants and "ray" in variants:
        per = [r["s"] / p["s"] for r, p in zip(runs["ray"], runs["pool"])]
        report["ray_to_pool_median"] = statistics.median(per)
        print(f"ray / pool per repeat: " + ", ".join(f"{x:.3f}" for x in per) + f"; median {statistics.median(per):.3f}x")
    if "serial" in variants and "pool" in variants:
        per = [s["s"] / p["s"] for s, p in zip(runs["serial"], runs["pool"])]
        report["pool_speedup_median"] = statistics.median(per)
        print(f"pool speed-up over serial per repeat: " + ", ".join(f"{x:.2f}" for x in per))
    if base:
        print(f"traces identical across executors: {identical}; final accuracy fleetsim {base['accuracies'][-1]:.4f}, "
              f"plain {plain_acc[-1]:.4f} (largest gap over the {len(plain_acc)} evaluations {acc_gap:.2e})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if identical in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
