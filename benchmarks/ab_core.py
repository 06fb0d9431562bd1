"""A/B timing of the timing-only core: this checkout against an older commit, alternating.

Why: on a shared or drifting machine, two runs of the same code differ by ±15 %, more than most
single speed changes gain. Alternating the two versions run by run, each in a fresh process, and
comparing minima and medians over several runs is what separates a real gain from the drift.

    python benchmarks/ab_core.py HEAD~1                       # 10,000 devices × 10 rounds, 5 pairs
    python benchmarks/ab_core.py 3ab0d12 --devices 2000 --rounds 50 --times 8
    python benchmarks/ab_core.py HEAD~1 --this HEAD --access-points 100   # two commits, Wi-Fi fleet
    git archive START | tar -x -C /tmp/start && python benchmarks/ab_core.py - --base-tree /tmp/start

The older commit is checked out in a temporary ``git worktree`` (so is ``--this``, when given: then
edits made while the comparison runs cannot leak into it; without it, this checkout is measured).
Both sides run this checkout's ``benchmarks/core_throughput.py --worker N R 1 K APS [IDLE]`` (one
definition of the bare loop for both) with ``PYTHONPATH`` set to their own tree. A side whose
simulator does not count the network's idle timers (commits before the fifth session) is given the
count the other side measured: identical traces, identical timers. Each pair runs "this" first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(tree: Path, devices: int, rounds: int, semi_async: int = 0, access_points: int = 0,
            idle_events: int | None = None) -> dict[str, float]:
    worker = ["--worker", str(devices), str(rounds), "1", str(semi_async), str(access_points)]
    if idle_events is not None:
        worker.append(str(idle_events))
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "core_throughput.py"), *worker],
        check=True, capture_output=True, text=True, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the commit to compare against (any git revision; ignored with --base-tree)")
    parser.add_argument("--base-tree", type=Path, help="a tree to compare against instead (a `git archive` of it)")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--times", type=int, default=5, help="pairs of runs (default 5)")
    parser.add_argument("--this", help="measure this commit instead of the checkout (its own worktree)")
    parser.add_argument("--semi-async", type=int, default=0, metavar="K", help="as core_throughput.py")
    parser.add_argument("--access-points", type=int, default=0, metavar="N", help="as core_throughput.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this": Path(tmp) / "this" if args.this else ROOT, "base": args.base_tree or Path(tmp) / "base"}
        added = []
        try:
            for side, rev in (("base", None if args.base_tree else args.base), ("this", args.this)):
                if rev:
                    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(trees[side]), rev], check=True,
                                   cwd=ROOT)
                    added.append(trees[side])
            results: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
            idle: int | None = None  # the idle timers a side counted, for one that does not
            for i in range(args.times):
                for side, tree in trees.items():
                    row = one_run(tree, args.devices, args.rounds, args.semi_async, args.access_points, idle)
                    if row["idle_events_source"] == "counted":
                        idle = row["idle_events"]
                    results[side].append(row)
                    print(f"pair {i + 1}: {side:4} loop {row['loop_s']:.3f} s (CPU {row['loop_cpu_s']:.3f})  "
                          f"run {row['total_s']:.3f} s  bare {row['bare_s']:.3f} s (CPU {row['bare_cpu_s']:.3f})  "
                          f"run/bare CPU {row['ratio_total_cpu']:.3f}  idle timers {row['idle_events']:,} "
                          f"({row['idle_events_source']})", file=sys.stderr)
        finally:
            for tree in added:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=False, cwd=ROOT)
    print(f"{args.devices:,} devices × {args.rounds} rounds, {args.times} alternating pairs (s)")
    for side, rows in results.items():
        loops, cpus = [r["loop_s"] for r in rows], [r["loop_cpu_s"] for r in rows]
        print(f"  {side:4}  loop min {min(loops):.3f} median {statistics.median(loops):.3f}   "
              f"loop CPU min {min(cpus):.3f} median {statistics.median(cpus):.3f}   "
              f"loop/bare CPU median {statistics.median(r['ratio_loop_cpu'] for r in rows):.3f}")

    def quotient(key: str, stat) -> float:
        return stat([r[key] for r in results["this"]]) / stat([r[key] for r in results["base"]])

    print(f"  this / base: loop minima {quotient('loop_s', min):.3f}, medians {quotient('loop_s', statistics.median):.3f}; "
          f"loop CPU minima {quotient('loop_cpu_s', min):.3f}, medians {quotient('loop_cpu_s', statistics.median):.3f}; "
          f"loop/bare CPU medians {quotient('ratio_loop_cpu', statistics.median):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
