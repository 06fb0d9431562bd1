"""Timing-only throughput of the core: client-rounds per second against a bare SimPy loop.

For each fleet size N, a fresh Python process (so peak memory of one size never mixes with another):

1. warms up (imports, the one-time model tracing of the cost model) with a 10-device, 1-round run;
2. runs a scenario like ``scenarios/scale_10k.yaml`` scaled to N devices (all-Ethernet, the same mix
   of five Jetson profiles, FedAvg, 256 samples per client, timing-only, no report) for R rounds with
   ``simulator.api.run``, timing the whole call and the event loop inside it (``Environment.run``),
   and counting the SimPy events it processed (scheduled minus still queued: no per-event hook);
3. runs, in the same process, a bare SimPy loop processing exactly as many events as the model's
   steps took: the events processed less the network's *idle* timers (a completion timer found stale
   or early, which stands for no step of the model: ``Environment.idle_events``). N processes each
   yield ``env.timeout(random())`` until the event budget is spent. (Before the fifth session the bare
   loop also got the idle timers: a fleet on 1,000 cells makes about one per client-round, each a
   full timeout for the bare loop, which flattered the simulator by up to 15 %.) A simulator tree
   that does not count them (older commits) is given the count with ``--worker ... IDLE``: an A/B
   of two trees whose traces are identical has the same idle timers;
4. repeats 2–3 (``--repeat``) and keeps the minimum of each time (the machine may be shared);
5. reports client-rounds per second, the times, their ratios and the process's peak RSS.

    python benchmarks/core_throughput.py            # N = 100, 1,000, 10,000 × 100 rounds
    python benchmarks/core_throughput.py --quick    # the same sizes × 10 rounds
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def scenario(devices: int, rounds: int, semi_async_k: int = 0, access_points: int = 0) -> dict[str, Any]:
    """scale_10k.yaml with its group sizes scaled to `devices` (same profile mix) and `rounds` versions;
    with `semi_async_k`, Co-S²P (semi-asynchronous, merge every K arrivals) instead of FedAvg; with
    `access_points`, the fleet split evenly over that many Wi-Fi cells (600 Mbit/s each, 150 Mbit/s
    per client, 3 ± 1 ms) instead of Ethernet, the profiles taking turns."""
    data = yaml.safe_load((ROOT / "scenarios" / "scale_10k.yaml").read_text())
    total = sum(group["count"] for group in data["fleet"])
    counts = [group["count"] * devices // total for group in data["fleet"]]
    counts[0] += devices - sum(counts)
    data["fleet"] = [dict(group, count=c) for group, c in zip(data["fleet"], counts) if c > 0]
    data["name"] = f"core-throughput-{devices}"
    data["stop"] = {"max_versions": rounds, "sim_time_s": 1e9}
    data["output"] = {"report": False, "flush_rows": 200_000}
    if semi_async_k:
        data["algorithm"] = {"name": "co-s2p", "aggregation": {"k": semi_async_k}}
    if access_points:
        profiles = [group["profile"] for group in data["fleet"]]
        sizes = [devices // access_points + (1 if a < devices % access_points else 0) for a in range(access_points)]
        data["fleet"] = [{"profile": profiles[a % len(profiles)], "count": n, "link": f"ap{a}"}
                         for a, n in enumerate(sizes) if n > 0]
        data["network"]["access_points"] = {
            f"ap{a}": {"capacity_mbps": 600, "max_client_mbps": 150, "latency": {"mean_ms": 3, "jitter_ms": 1}}
            for a in range(access_points)
        }
    return data


class _EnvSpy:
    """Remembers the last simpy.Environment created and times its run() — one call, no per-event cost."""

    def __init__(self) -> None:
        import simpy

        self.env: Any = None
        self.run_s = self.run_cpu_s = self.run_thread_cpu_s = 0.0
        spy = self
        original_init, original_run = simpy.Environment.__init__, simpy.Environment.run

        def init(env: Any, *args: Any, **kwargs: Any) -> None:
            original_init(env, *args, **kwargs)
            spy.env = env

        def run(env: Any, until: Any = None) -> Any:
            start, start_cpu, start_thread = time.perf_counter(), time.process_time(), time.thread_time()
            try:
                return original_run(env, until)
            finally:
                spy.run_s += time.perf_counter() - start
                spy.run_cpu_s += time.process_time() - start_cpu
                spy.run_thread_cpu_s += time.thread_time() - start_thread

        simpy.Environment.__init__ = init  # type: ignore[method-assign]
        simpy.Environment.run = run  # type: ignore[method-assign]

    def processed_events(self) -> int:
        """Events taken off the queue (simulator.environment.processed_events)."""
        from simulator.environment import processed_events

        return processed_events(self.env)

    def idle_events(self) -> int | None:
        """The network's idle timers among them (None: this simulator does not count them)."""
        return getattr(self.env, "idle_events", None)


def bare_loop(processes: int, events: int, seed: int = 0) -> tuple[float, float, int]:
    """A bare SimPy loop of exactly `events` events (process starts and ends included).

    Returns (wall s, CPU s, events processed). The loop runs with the garbage collector treated as the
    engine treats a timing-only loop: everything created before it frozen, the collector paused.
    """
    import simpy

    env = simpy.Environment()
    draw = random.Random(seed).random
    budget = [events - 2 * processes]  # each process also costs its start and its end event
    timeout = env.timeout

    def proc():
        while budget[0] > 0:
            budget[0] -= 1
            yield timeout(draw())

    for _ in range(processes):
        env.process(proc())
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    pause_gc = gc.isenabled()
    if pause_gc:
        gc.disable()
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        env.run()
    finally:
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if pause_gc:
            gc.enable()
        if freeze:
            gc.unfreeze()
    from simulator.environment import processed_events

    return elapsed, elapsed_cpu, processed_events(env)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(devices: int, rounds: int, repeat: int, semi_async_k: int = 0, access_points: int = 0,
            idle_given: int | None = None) -> dict[str, Any]:
    """One size, in this process: warm-up, then `repeat` × (simulator run, bare loop); minima kept.
    `idle_given`: the idle timers of a simulator that does not count them (see the module).

    The machine is shared, so each figure is the minimum over the repeats, and the run and its bare
    loop alternate so that both see the same load.
    """
    from simulator.api import run

    spy = _EnvSpy()
    best: dict[str, float] = {}

    def keep(key: str, value: float) -> None:
        best[key] = min(value, best.get(key, float("inf")))

    with tempfile.TemporaryDirectory() as tmp:
        run(scenario(10, 1), out=Path(tmp) / "warmup", timing_only=True, force=True, report=False)
        rss_before_mb = _rss_mb()
        for _ in range(repeat):
            spy.run_s = spy.run_cpu_s = spy.run_thread_cpu_s = 0.0
            start, start_cpu = time.perf_counter(), time.process_time()
            result = run(copy.deepcopy(scenario(devices, rounds, semi_async_k, access_points)), out=Path(tmp) / "run",
                         timing_only=True,
                         force=True, report=False)
            keep("total_s", time.perf_counter() - start)
            keep("total_cpu_s", time.process_time() - start_cpu)
            keep("loop_s", spy.run_s)
            keep("loop_cpu_s", spy.run_cpu_s)
            keep("loop_thread_cpu_s", spy.run_thread_cpu_s)  # the loop's own thread, without the trace writer's
            events = spy.processed_events()
            idle = spy.idle_events()
            idle_source = "counted"
            if idle is None:
                idle, idle_source = (idle_given, "given") if idle_given is not None else (0, "not counted")
            spy.env = None
            bare_s, bare_cpu_s, bare_events = bare_loop(devices, events - idle)
            assert bare_events == events - idle, (bare_events, events, idle)
            keep("bare_s", bare_s)
            keep("bare_cpu_s", bare_cpu_s)
    summary = result.summary
    client_rounds = summary["accepted"] + summary["dropped"]  # uploads that reached the server
    return {
        "devices": devices, "rounds": rounds, "repeat": repeat, "semi_async_k": semi_async_k, "access_points": access_points,
        "versions": summary["versions"],
        "client_rounds": client_rounds, "events": events, "events_per_client_round": events / client_rounds,
        "idle_events": idle, "idle_events_source": idle_source, "bare_events": bare_events,
        **best,
        "client_rounds_per_s": client_rounds / best["total_s"], "loop_client_rounds_per_s": client_rounds / best["loop_s"],
        "ratio_total": best["total_s"] / best["bare_s"], "ratio_loop": best["loop_s"] / best["bare_s"],
        "ratio_total_cpu": best["total_cpu_s"] / best["bare_cpu_s"], "ratio_loop_cpu": best["loop_cpu_s"] / best["bare_cpu_s"],
        "rss_before_run_mb": rss_before_mb, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'devices':>8} {'rounds':>6} {'client-rounds':>13} {'events':>10} {'idle':>8} {'ev/cr':>5} {'run s':>7} "
          f"{'loop s':>7} {'bare s':>7} {'cr/s (run)':>10} {'run/bare':>8} {'loop/bare':>9} {'run/bare CPU':>12} "
          f"{'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['devices']:>8} {r['rounds']:>6} {r['client_rounds']:>13,} {r['events']:>10,} {r['idle_events']:>8,} "
              f"{r['events_per_client_round']:>5.2f} {r['total_s']:>7.2f} {r['loop_s']:>7.2f} {r['bare_s']:>7.2f} "
              f"{r['client_rounds_per_s']:>10,.0f} {r['ratio_total']:>8.2f} {r['ratio_loop']:>9.2f} "
              f"{r['ratio_total_cpu']:>12.2f} {r['peak_rss_mb']:>11,.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 rounds instead of 100")
    parser.add_argument("--rounds", type=int, help="rounds (versions) per size; default 100, or 10 with --quick")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="fleet sizes")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size, minimum kept (default 2)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--semi-async", type=int, default=0, metavar="K",
                        help="Co-S²P merging every K arrivals instead of FedAvg (versions = merges)")
    parser.add_argument("--access-points", type=int, default=0, metavar="N",
                        help="split the fleet over N Wi-Fi access points instead of Ethernet")
    parser.add_argument("--worker", type=int, nargs="+", metavar="N", help=argparse.SUPPRESS)  # N R REPEAT [K APS [IDLE]]
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(*args.worker)))
        return 0
    rounds = args.rounds or (10 if args.quick else 100)
    rows = []
    for devices in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--worker", str(devices), str(rounds), str(args.repeat),
                              str(args.semi_async), str(args.access_points)], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {devices} devices done", file=sys.stderr)
    _print_table(rows)
    print("run = simulator.api.run wall time (validate, build, plan, event loop, write Parquet); loop = its "
          "Environment.run; bare = a bare SimPy loop with as many events as the run's model steps (its events "
          "less the network's idle timers) in the same process; "
          "CPU = the same ratio in process CPU time. Minimum of --repeat runs each.")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
