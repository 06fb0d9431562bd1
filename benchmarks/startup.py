"""Start-up of the commands people run from editors and scripts, against `python -c pass`.

Why a ratio: on a shared 2-core machine absolute wall times drift 2-4x with load, so each command's
time is printed next to a bare interpreter's start measured in the same run, the commands
alternating round by round (min and median over --times rounds). Issue 16 point 4 asks for validate,
schema, profiles, explain and --help under 1 s.

    python benchmarks/startup.py                 # 5 rounds of every command
    python benchmarks/startup.py --times 9
    python benchmarks/startup.py --planning      # also: cold vs warm planning of ViT-B and BERT-base
    python benchmarks/startup.py --planning-only --against /tmp/base   # only that, both trees alternating
    python benchmarks/startup.py --against /tmp/base   # also the same commands from another checkout
                                                       # (e.g. `git archive <commit> | tar -x -C /tmp/base`),
                                                       # alternating with this one: before/after in one run

Each tree's commands run once untimed first, so the plan cache (FLEETSIM_CACHE_DIR, else
~/.cache/fleetsim) holds what they trace, as it does from a user's second command on.

`--planning` measures what a cold plan cache costs: in a fresh process (imports excluded) the planner
of each model picks a Co-S²P submodel (importance width, rolling depth: every width x depth
candidate) for each built-in Jetson profile, once with an empty FLEETSIM_CACHE_DIR (cold: every
candidate traced) and once with the cache it filled (warm); CPU and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("fleetsim --help", ["-m", "simulator.cli", "--help"]),
    ("fleetsim --version", ["-m", "simulator.cli", "--version"]),
    ("fleetsim schema", ["-m", "simulator.cli", "schema"]),
    ("fleetsim profiles", ["-m", "simulator.cli", "profiles"]),
    ("fleetsim explain --no-plan", ["-m", "simulator.cli", "explain", "scenarios/quickstart.yaml", "--no-plan"]),
    ("fleetsim explain", ["-m", "simulator.cli", "explain", "scenarios/quickstart.yaml"]),
    ("fleetsim validate", ["-m", "simulator.cli", "validate", "scenarios/quickstart.yaml"]),
    ("fleetsim run --timing-only", ["-m", "simulator.cli", "run", "scenarios/quickstart.yaml", "--timing-only",
                                    "--out", "{out}", "--force", "--quiet", "--no-report"]),
]
MODELS = {"vit-b": ({"name": "vit", "preset": "vit-b"}, 1000, (3, 224, 224)),
          "bert-base": ({"name": "text-transformer", "preset": "bert-base"}, 2, (512,))}


def wall_s(argv: list[str], tree: Path = ROOT, out: Path | None = None) -> float:
    """Wall seconds of one command run from `tree`; "{out}" in it names a run folder (a scratch one)."""
    argv = [str(out) if a == "{out}" else a for a in argv]
    cmd = argv if argv[0] == sys.executable else [sys.executable, *argv]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=tree, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "120"})
    return time.perf_counter() - t0


def plan_worker(model: str) -> None:
    """In this process: imports first (not timed), then one Co-S²P choice per built-in profile."""
    from simulator.config.algorithm import resolve_algorithm
    from simulator.config.profiles import list_builtin_profiles
    from simulator.config.scenario import AlgorithmSpec
    from simulator.config.workload import ModelSpec
    from simulator.learning.models.registry import full_depth
    from simulator.engine.planning import Planner
    from simulator.engine.world import device_budget
    from simulator.server.registry import policy_params

    spec_data, classes, shape = MODELS[model]
    spec = ModelSpec(**spec_data)
    pruning = resolve_algorithm(AlgorithmSpec(name="co-s2p"), policy_params).pruning
    budgets = [device_budget(p, p.default_power_mode) for p in list_builtin_profiles()]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    planner = Planner(spec, classes, shape, full_depth(spec), 32, "momentum", int(1.0e9), pruning, exits="all")
    for budget in budgets:
        planner.choose(budget)
    print(json.dumps({"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0,
                      "candidates": len(planner.candidates)}))


def plan_once(model: str, cache_dir: Path, tree: Path = ROOT) -> dict[str, float]:
    """One --plan-worker process (this script) planning with `tree`'s simulator package."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--plan-worker", model], cwd=tree,
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tree), "FLEETSIM_CACHE_DIR": str(cache_dir)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def startup(times: int, against: Path | None = None) -> None:
    trees = [("", ROOT)] + ([("against", against)] if against else [])
    scratch = Path(tempfile.mkdtemp(prefix="fleetsim-startup-"))
    outs = {label: scratch / (label or "this") for label, _ in trees}  # `run` writes (and --force replaces) these
    for label, tree in trees:  # warm the plan cache (untimed)
        for _, argv in COMMANDS[1:]:
            wall_s(argv, tree, outs[label])
    samples: dict[tuple[str, str], list[float]] = {(t, name): [] for t, _ in trees for name, _ in COMMANDS}
    for _ in range(times):  # round-robin: drift hits every command (and both trees) alike
        for name, argv in COMMANDS:
            for label, tree in trees:
                samples[label, name].append(wall_s(argv, tree, outs[label]))
    shutil.rmtree(scratch)
    base = min(samples["", "python -c pass"])
    head = f"{'command':<28} {'min s':>7} {'median s':>9} {'min / python -c pass':>21}"
    if against:
        head += f" {'against: min s':>15} {'median s':>9} {'min / against min':>18}"
        print(f"this tree: {ROOT}\nagainst:   {against}")
    print(head)
    for name, _ in COMMANDS:
        got = samples["", name]
        line = f"{name:<28} {min(got):>7.2f} {statistics.median(got):>9.2f} {min(got) / base:>20.1f}x"
        if against:
            other = samples["against", name]
            line += f" {min(other):>15.2f} {statistics.median(other):>9.2f} {min(got) / min(other):>17.2f}x"
        print(line)


def planning(times: int, against: Path | None = None) -> None:
    """Cold and warm planning per model (min over `times`), this tree and `against` alternating."""
    trees = [("", ROOT)] + ([("against", against)] if against else [])
    print(f"\n{'planning (Co-S²P, all profiles)':<34} {'cold cpu s':>10} {'warm cpu s':>10} {'cold wall s':>11} "
          f"{'warm wall s':>11}")
    for model in MODELS:
        cold: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
        warm: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
        for _ in range(times):
            for label, tree in trees:
                with tempfile.TemporaryDirectory() as folder:
                    cold[label].append(plan_once(model, Path(folder), tree))
                    warm[label].append(plan_once(model, Path(folder), tree))
        for label, _ in trees:
            c, w = cold[label], warm[label]
            print(f"{model + (' (against)' if label else ''):<34} {min(x['cpu_s'] for x in c):>10.2f} "
                  f"{min(x['cpu_s'] for x in w):>10.2f} {min(x['wall_s'] for x in c):>11.2f} "
                  f"{min(x['wall_s'] for x in w):>11.2f}   ({c[0]['candidates']} candidates)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=5)
    parser.add_argument("--planning", action="store_true")
    parser.add_argument("--planning-only", action="store_true", help="cold vs warm planning, no start-up commands")
    parser.add_argument("--against", type=Path, help="another checkout whose commands alternate with these")
    parser.add_argument("--plan-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plan_worker:
        plan_worker(args.plan_worker)
        return
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    if not args.planning_only:
        startup(args.times, args.against.resolve() if args.against else None)
    if args.planning or args.planning_only:
        planning(max(1, min(args.times, 3)), args.against.resolve() if args.against else None)
    print(f"load at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
