"""A/B of where a serial run evaluates: in the learner's evaluation thread (as fleetsim does) or inline.

Why: with the inline executor the jobs train in the main thread, and the evaluation thread
(``Learner.evaluate_later``) overlaps each evaluation with the next round's training on the second
core. On a 2-vCPU guest that overlap may cost the training thread more (shared caches, a busy
neighbour) than it saves. This measures both against the plain PyTorch loop of
``training_throughput.py``, alternating in one process (order rotated per repeat), on issue 16's
small-clients workload. ``inline`` replaces ``evaluate_later`` for the measurement only: the same
evaluation (one intra-op thread, same state), computed when it is asked for.

    python benchmarks/eval_thread_ab.py --repeat 4
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_throughput  # noqa: E402  (this folder's module: the plain loop and the scenario)

import simulator.api  # noqa: E402
from simulator.learning.learner import Learner  # noqa: E402

THREADED = Learner.evaluate_later


def _inline(self: Learner) -> cf.Future:
    future: cf.Future = cf.Future()
    future.set_result(self._evaluate_one_thread(self._state, self.version))
    return future


def one(mode: str, scenario: dict) -> tuple[float, float]:
    """Wall and CPU seconds of one variant."""
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "plain":
        training_throughput.plain_fedavg(scenario)
    else:
        Learner.evaluate_later = THREADED if mode == "thread" else _inline  # type: ignore[method-assign]
        try:
            simulator.api.run(scenario, out=tempfile.mkdtemp(prefix="eval-ab-"), force=True, report=False)
        finally:
            Learner.evaluate_later = THREADED  # type: ignore[method-assign]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    scenario = training_throughput.scenario()
    one("thread", scenario), one("plain", scenario)  # warm-up: imports, data, the plan cache
    modes = ("plain", "thread", "inline")
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for i in range(args.repeat):
        for mode in modes[i % 3:] + modes[:i % 3]:
            times[mode].append(one(mode, scenario))
            wall, cpu = times[mode][-1]
            print(f"repeat {i + 1} {mode:6s} {wall:6.2f} s wall {cpu:6.2f} s CPU  load {os.getloadavg()[0]:.2f}",
                  flush=True)
    for mode in ("thread", "inline"):
        walls = [a[0] / p[0] for a, p in zip(times[mode], times["plain"])]
        cpus = [a[1] / p[1] for a, p in zip(times[mode], times["plain"])]
        print(f"{mode} / plain: wall median {statistics.median(walls):.3f}x, CPU median {statistics.median(cpus):.3f}x; "
              f"per repeat {', '.join(f'{r:.3f}' for r in walls)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
