"""A/B of the process-pool executor between two source trees on issue 16's small-clients workload.

Why: a pool run's wall time drifts ±15 % with the shared machine, more than most changes to the
executor gain. Besides the wall time, this prints each worker's *idle* time (run wall minus the time
the worker spent inside its training jobs), which moves with the executor's overhead (round trips,
pipe waits, packing) but far less with how fast the machine trains at that moment.

Each side runs in a fresh process with ``PYTHONPATH`` set to its tree: one warm-up run (starts the
fork server), then ``--runs`` measured runs of ``benchmarks/training_small_clients.yaml`` with
``make_executor("process", workers=2)``; sides alternate, the first side first in even pairs. The
workers' job times come from a wrapper of ``WorkerData.run`` preloaded into the fork server (a module
written to a temporary folder); the simulator itself is untouched.

    python benchmarks/ab_pool.py /path/to/tree-a /path/to/tree-b --pairs 4
    git archive HEAD~1 | tar -x -C /tmp/before && python benchmarks/ab_pool.py /tmp/before . --pairs 3
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

_TIMER = '''
import os, time
from simulator.learning.executors import common
_run = common.WorkerData.run
def run(self, job):
    start = time.perf_counter()
    try:
        return _run(self, job)
    finally:
        with open(os.path.join(os.environ["FLEETSIM_AB_JOBS"], f"{os.getpid()}.txt"), "a") as f:
            f.write(f"{start} {time.perf_counter()}\\n")
common.WorkerData.run = run
'''

_SIDE = '''
import glob, json, os, shutil, sys
from pathlib import Path
sys.path.insert(0, os.path.join(os.environ["FLEETSIM_AB_TREE"], "benchmarks"))
import training_throughput as tt
from simulator.learning.executors import pool
pool._PipeTransport.PRELOAD = pool._PipeTransport.PRELOAD + ["fleetsim_ab_timer"]
import fleetsim_ab_timer  # noqa: F401  (jobs trained in this process are timed too)

if __name__ == "__main__":
    jobs_dir, out, rows = os.environ["FLEETSIM_AB_JOBS"], Path(os.environ["FLEETSIM_AB_OUT"]), []
    for i in range(1 + int(os.environ["FLEETSIM_AB_RUNS"])):
        shutil.rmtree(jobs_dir, ignore_errors=True)
        os.makedirs(jobs_dir)
        r = tt.fleetsim_run(tt.scenario(), out / f"run{i}", "process", 2)
        busy = []
        for f in glob.glob(os.path.join(jobs_dir, "*.txt")):
            spans = [tuple(map(float, line.split())) for line in open(f)]
            if f != os.path.join(jobs_dir, f"{os.getpid()}.txt"):  # a worker, not this process helping
                busy.append(sum(e - s for s, e in spans))
        if i:  # run 0 warms the fork server up
            rows.append({"s": r["s"], "cpu_s": r["cpu_s"], "idle_s": [r["s"] - b for b in busy]})
    print("RESULT " + json.dumps(rows))
'''


def side(tree: Path, runs: int, tmp: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tmp}", FLEETSIM_AB_TREE=str(tree),
               FLEETSIM_AB_JOBS=str(tmp / "jobs"), FLEETSIM_AB_OUT=str(tmp / "out"), FLEETSIM_AB_RUNS=str(runs))
    done = subprocess.run([sys.executable, str(tmp / "side.py")], env=env, capture_output=True, text=True, cwd=tmp)
    found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not found:
        sys.exit(f"{tree}: the side failed:\n{done.stderr[-3000:]}")
    return json.loads(found[0][len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs=2, type=Path, help="two source trees (each with simulator/ and benchmarks/)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs of sides (default 3)")
    parser.add_argument("--runs", type=int, default=2, help="measured runs per side after its warm-up (default 2)")
    args = parser.parse_args()
    trees = [t.resolve() for t in args.trees]
    results: dict[Path, list[dict]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "fleetsim_ab_timer.py").write_text(_TIMER)
        (tmp / "side.py").write_text(_SIDE)
        for pair in range(args.pairs):
            for tree in trees if pair % 2 == 0 else trees[::-1]:
                rows = side(tree, args.runs, tmp)
                results[tree] += rows
                print(f"pair {pair + 1} {tree}: " + "; ".join(
                    f"{r['s']:.2f} s (main CPU {r['cpu_s']:.2f}), idle per worker "
                    + ", ".join(f"{i:.2f}" for i in r["idle_s"]) for r in rows), flush=True)
    for tree in trees:
        rows = results[tree]
        idle = [i for r in rows for i in r["idle_s"]]
        print(f"{tree}: wall median {statistics.median(r['s'] for r in rows):.2f} s, fastest "
              f"{min(r['s'] for r in rows):.2f} s; idle per worker median {statistics.median(idle):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
