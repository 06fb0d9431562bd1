#!/usr/bin/env python3
"""Co-S²P on the quickstart with relative vs absolute staleness damping, seed-paired.

Evidence on the quickstart for the co-s2p preset's ``staleness_mode`` (simulator/config/algorithm.py;
the preset follows the paper-testbed ablation ``abl-staleness-absolute`` of
scenarios/sweeps/paper_ablations.yaml, where the two differ; on the quickstart they do not): the
quickstart scenario (16 Jetsons, K = 8, 120 s deadline, polynomial s(τ) = (1+τ)^-0.5, server_lr 1)
run for its whole 7,200 simulated seconds (no target stop) under each mode, seeds 0 … 4, in a pool of
``--jobs`` workers. Prints one JSON line per run and the seed-paired differences (absolute minus
relative) with 95 % Student-t intervals.

    python scripts/paper_staleness_ablation.py --jobs 2          # ~10 runs of the quickstart
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

BUDGET_S = 7200.0
TARGET = 0.9


def one(args: tuple[str, int, str]) -> dict:
    mode, seed, out = args
    import torch

    torch.set_num_threads(1)
    import simulator
    from simulator.config.loading import read_yaml

    scenario = read_yaml(ROOT / "scenarios" / "quickstart.yaml")
    scenario["seed"] = seed
    scenario["algorithm"]["aggregation"]["staleness_mode"] = mode
    scenario["stop"] = {"sim_time_s": BUDGET_S}
    start = time.perf_counter()
    run = simulator.run(scenario, out=f"{out}/{mode}-seed{seed}", force=True, report=False)
    ev = run.evals.sort_values("time_s")
    hit = ev[ev.accuracy >= TARGET]
    return {"label": mode, "seed": seed, "acc_budget": float(ev.accuracy.iloc[-1]),
            "acc_tail": float(ev[ev.time_s >= 0.9 * BUDGET_S].accuracy.mean()), "best": float(ev.accuracy.max()),
            "time_to_target_s": float(hit.time_s.iloc[0]) if len(hit) else float("nan"),
            "versions": int(run.summary["versions"]), "host_s": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default=str(ROOT / "reports" / "paper" / "staleness_ablation"))
    args = parser.parse_args()
    grid = [(mode, seed, args.out) for seed in args.seeds for mode in ("relative", "absolute")]
    rows = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(one, grid):
            print(json.dumps(row), flush=True)
            rows.append(row)
    from paper_stats import paired_differences

    for metric in ("acc_budget", "acc_tail", "best", "time_to_target_s"):
        d = paired_differences(rows, metric, "absolute").iloc[0]
        print(f"{metric}: absolute − relative = {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] ({d['n']} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
