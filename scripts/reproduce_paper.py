#!/usr/bin/env python3
"""Reproduce the Co-S²P paper's comparison with fleetsim and rewrite docs/results.md from scratch.

Runs the sweep files below — Co-S²P against every baseline preset on the reconstructed 16-Jetson
testbed for an image task under two proxies and a sequence task, Co-S²P's ablations and its
knowledge-transfer modes (image task) — over their seeds (0 … 4), every run for real (PyTorch
training of the proxy model), in a process pool of ``--jobs`` workers with one torch thread each, seed
by seed (so an interrupted run leaves whole seeds behind). Run folders go to
``reports/paper/<sweep>/<variant>/`` (git-ignored; each replaced by its new run unless ``--reuse`` or
``--resume``; the script deletes nothing else). Then
the page is written from the planned runs' folders only: per method mean ± std, seed-paired differences with 95 %
intervals, the ablations' verdicts, and Kendall's τ of the methods' ranks across proxies and tasks.
Each finished run prints a line with how long the runs still to go should take on ``--jobs`` idle
cores (from the CPU time per simulated second of the runs so far). A page built from fewer seeds,
shorter budgets or fewer runs than the sweep files' says so under its header. A run counts only if its
folder's ``scenario.yaml`` is the scenario planned now, resolved (so a preset changed since is run
again by ``--resume`` and left off by ``--reuse``).

    python scripts/reproduce_paper.py --quick          # 2 seeds, ¼ budget: a look, plus the full run's estimate
    python scripts/reproduce_paper.py                  # everything: about 7.4 h on two idle cores (53,500 CPU-s)
    python scripts/reproduce_paper.py --reuse          # rebuild the page from reports/paper/ only
    python scripts/reproduce_paper.py --resume         # run only what is undone or out of date
    python scripts/reproduce_paper.py --seeds 0 --sweeps paper_comparison --page /tmp/r.md   # one sweep, one seed
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# this working tree's simulator first (an editable install may point at another checkout)
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from paper_metrics import aggregate, run_metrics  # noqa: E402

# sweep file stem -> (task label, target accuracy for "time to target"). Targets: what Co-S²P reaches in
# the last fifth of the budget with seed 0 (image: 0.53 at 4,500 s, 0.57 at 5,400 s; sequence: 0.38 at 3,600 s)
SWEEPS: dict[str, tuple[str, float]] = {
    "paper_comparison": ("image (vit-b-proxy)", 0.50),
    "paper_comparison_vit_small": ("image (4-block vit-small proxy)", 0.50),
    "paper_comparison_sequence": ("sequence (bert-base-proxy)", 0.40),
    "paper_ablations": ("ablations (image)", 0.50),
    "paper_distillation": ("distillation (image)", 0.50),
}
# sweeps whose default is the image comparison's co-s2p (the very same scenario and seeds): label it gets
REUSE_DEFAULT = {"paper_ablations": "abl-default", "paper_distillation": "kd-deepest"}
# rough host cost of one run (relative), so the pool starts with the longest and ends evenly
_COST = {"fedasync": 3.0, "co-s2p": 2.5, "fedbuff": 2.5, "fedbuff-fit": 2.5, "timelyfl": 1.5}
QUICK_SEEDS = (0, 1)
QUICK_BUDGET = 0.25


@dataclass
class Planned:
    sweep: str
    name: str
    label: str           # algorithm name (comparison) or ablation name
    seed: int
    scenario: dict[str, Any]
    run_dir: Path
    budget_s: float
    cost: float


def plan(sweeps: list[str], seeds: list[int] | None, out: Path, budget_scale: float = 1.0) -> list[Planned]:
    """Every variant of the chosen sweep files, validated by simulator.sweep.expand; `budget_scale`
    shortens every run's simulated budget (``--quick``)."""
    from simulator.sweep import expand, load_sweep

    planned = []
    for stem in sweeps:
        for v in expand(load_sweep(ROOT / "scenarios" / "sweeps" / f"{stem}.yaml")):
            if seeds is not None and v.seed not in seeds:
                continue
            algorithm = v.scenario["algorithm"]["name"]
            label = v.values.get("name", algorithm)
            seq = 2.0 if "sequence" in stem else 1.0
            budget = float(v.scenario["stop"]["sim_time_s"]) * budget_scale
            v.scenario["stop"]["sim_time_s"] = budget
            planned.append(Planned(stem, v.name, label, v.seed, v.scenario, out / stem / v.name, budget,
                                   _COST.get(algorithm, 1.0) * seq))
    return planned


Rates = dict[tuple[str, str], list[float]]


def cpu_rates(measured: list[Planned], timings: dict[str, tuple[float, str | None, float]]) -> Rates:
    """CPU seconds per simulated second of every finished run, by (sweep, variant label)."""
    rates: Rates = {}
    for p in measured:
        _host_s, error, cpu_s = timings.get(str(p.run_dir), (0.0, "not run", 0.0))
        if error is None and p.budget_s > 0:
            rates.setdefault((p.sweep, p.label), []).append(cpu_s / p.budget_s)
    return rates


def expected_cpu_s(p: Planned, rates: Rates) -> float:
    """CPU seconds `p` should take: its variant's mean rate, else its sweep's, else everything's."""
    pool = rates.get((p.sweep, p.label)) or [r for (s, _), rs in rates.items() if s == p.sweep for r in rs] or \
        [r for rs in rates.values() for r in rs]
    return (sum(pool) / len(pool) if pool else 0.0) * p.budget_s


def estimate_full_s(measured: list[Planned], timings: dict[str, tuple[float, str | None, float]], sweeps: list[str],
                    jobs: int) -> tuple[float, int]:
    """Seconds the full run (the sweep files' own seeds and budgets) would take on `jobs` otherwise idle
    cores, from the CPU seconds per simulated second each (sweep, variant) took here, averaged over
    seeds; variants not measured count at the mean rate of their sweep (else of everything measured).
    CPU seconds, not wall seconds: they do not depend on what else the host runs. Returns (seconds,
    full run count)."""
    rates = cpu_rates(measured, timings)
    full = plan(sweeps, None, Path("/nonexistent"))
    return sum(expected_cpu_s(p, rates) for p in full) / max(1, jobs), len(full)


def _left(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def _run_one(scenario: dict[str, Any], run_dir: str) -> tuple[float, str | None, float]:
    """Worker: one run into its folder, one torch thread; returns (host seconds, error or None, CPU
    seconds of this worker). CPU seconds do not grow with other programs' load on the host, so the
    full-run estimate is made from them."""
    import torch

    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        from simulator.api import run

        run(scenario, out=run_dir, force=True, report=False)
        return time.perf_counter() - start, None, time.process_time() - cpu
    except Exception as exc:  # noqa: BLE001 - one failing run is reported on the page, not fatal
        return time.perf_counter() - start, f"{type(exc).__name__}: {exc}", time.process_time() - cpu


def execute(planned: list[Planned], jobs: int, out: Path, known: Sequence[Planned] = (),
            known_timings: dict[str, tuple[float, str | None, float]] | None = None,
            ) -> dict[str, tuple[float, str | None, float]]:
    """Run everything in a spawn process pool, seed by seed and longest first within a seed (the pool
    still ends evenly, and stopping part-way leaves whole seeds); host seconds, errors and CPU seconds
    per run dir, each also merged into ``<out>/timings.json`` the moment it ends (what --resume keeps).
    Each line it prints ends with the time the runs still to go should take on `jobs` idle cores, from
    the CPU rates of the runs finished so far (`known` with `known_timings`: those --resume kept)."""
    todo = sorted(planned, key=lambda p: (p.seed, -p.cost))
    done: dict[str, tuple[float, str | None, float]] = {}
    ended: list[Planned] = list(known)
    timings_so_far = dict(known_timings or {})
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        pending = {pool.submit(_run_one, p.scenario, str(p.run_dir)): p for p in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                p = pending.pop(future)
                try:
                    done[str(p.run_dir)] = future.result()
                except Exception as exc:  # noqa: BLE001 - the worker died
                    done[str(p.run_dir)] = (0.0, f"worker failed: {exc}", 0.0)
                host_s, error, cpu_s = done[str(p.run_dir)]
                save_timings(out, {str(p.run_dir): done[str(p.run_dir)]})
                ended.append(p)
                timings_so_far[str(p.run_dir)] = done[str(p.run_dir)]
                rates = cpu_rates(ended, timings_so_far)
                left_s = sum(expected_cpu_s(q, rates) for q in pending.values()) / max(1, jobs)
                print(f"[{len(done):3d}/{len(planned)}] {p.sweep}/{p.name}: {host_s:.1f} s ({cpu_s:.1f} CPU-s)"
                      + (f"  FAILED {error}" if error else "")
                      + (f"; {len(pending)} to go, about {_left(left_s)} on {jobs} idle cores" if pending else ""),
                      flush=True)
    return done


TIMINGS_FILE = "timings.json"


def save_timings(out: Path, timings: dict[str, tuple[float, str | None, float]]) -> None:
    """Merge this run's (wall s, error, CPU s) per run folder into ``<out>/timings.json``, so a page
    rebuilt with ``--reuse`` (or a later estimate) still knows what each run cost."""
    path = out / TIMINGS_FILE
    known = json.loads(path.read_text()) if path.exists() else {}
    known.update({k: list(v) for k, v in timings.items()})
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=0, sort_keys=True))


def load_timings(out: Path, planned: list[Planned]) -> dict[str, tuple[float, str | None, float]]:
    """The stored timings of the planned runs whose folders hold a summary and record the very scenario
    planned now (see `is_current`). Folders are matched by their resolved paths, so the timings still
    apply when ``--out`` is reached another way (a symlink, a relative path, a moved checkout holding
    the same folders)."""
    path = out / TIMINGS_FILE
    known = json.loads(path.read_text()) if path.exists() else {}
    by_resolved = {str(Path(k).resolve()): v for k, v in known.items()}
    return {str(p.run_dir): tuple(by_resolved[str(p.run_dir.resolve())]) for p in planned  # type: ignore[misc]
            if str(p.run_dir.resolve()) in by_resolved and is_current(p)}


def is_current(p: Planned) -> bool:
    """Whether `p`'s folder holds a finished run of the scenario planned now: its summary is there and
    its ``scenario.yaml`` equals the planned scenario resolved as a run records it (preset merged,
    every default filled in). A run made before a preset or a sweep file changed is not current:
    ``--resume`` runs it again and ``--reuse`` leaves it off the page (which then says it is partial).
    The record is read as plain YAML (safe loader), never executed."""
    import yaml

    from simulator.config.loading import validate_data
    from simulator.config.scenario import Scenario
    from simulator.engine.resolved import resolved_document

    record = p.run_dir / "scenario.yaml"
    if not (p.run_dir / "summary.json").is_file() or not record.is_file():
        return False
    try:
        recorded = yaml.safe_load(record.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return recorded == resolved_document(validate_data(p.scenario, Scenario))


def collect(planned: list[Planned]) -> dict[str, dict[str, Any]]:
    """Per sweep: metric rows of the runs that finished, their aggregate, budget and target."""
    by_sweep: dict[str, dict[str, Any]] = {}
    for p in planned:
        task, target = SWEEPS[p.sweep]
        entry = by_sweep.setdefault(p.sweep, {"task": task, "target": target, "budget_s": p.budget_s,
                                              "rows": [], "missing": []})
        if not is_current(p):  # not run, failed, or made under an older preset or sweep file
            entry["missing"].append(p.name)
            continue
        row = run_metrics(p.run_dir, target, p.budget_s)
        row["label"] = p.label
        entry["rows"].append(row)
    # the ablations' reference is the comparison's co-s2p: the very same scenario and seeds
    for stem, label in REUSE_DEFAULT.items():
        if stem in by_sweep and "paper_comparison" in by_sweep:
            default = [dict(r, label=label) for r in by_sweep["paper_comparison"]["rows"] if r["label"] == "co-s2p"]
            by_sweep[stem]["rows"][:0] = default
    for entry in by_sweep.values():
        entry["agg"] = aggregate(entry["rows"], "label") if entry["rows"] else None
    return by_sweep


def host_info() -> str:
    import torch

    from simulator.cost.calibrate import cpu_model

    return (f"{cpu_model()}, {multiprocessing.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def partial_note(planned: list[Planned], full: list[Planned], quick: bool, missing: int = 0) -> str | None:
    """What part of the full run (the sweep files' seeds at their budgets) a page holds; None if all.
    `missing`: planned runs with no current result (not run, failed, or made under an older scenario)."""
    seeds, all_seeds = sorted({p.seed for p in planned}), sorted({p.seed for p in full})
    parts = []
    if seeds != all_seeds:
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} of the sweep files' "
                     f"{', '.join(map(str, all_seeds))}")
    if quick:
        parts.append(f"{QUICK_BUDGET:g} of every simulated budget")
    if not parts and not missing:
        return None
    held = f"{' at '.join(parts)} ({len(planned) - missing} of {len(full)} runs)" if parts else \
        f"{len(planned) - missing} of the {len(full)} runs"
    absent = (f"; {missing} planned runs are not on it (not run yet, failed, or made under an older preset or "
              "sweep file)") if missing else ""
    return (f"This page holds {held}{absent}: fewer seed pairs make every interval wider, so more differences "
            "read as ties. The full page: `python scripts/reproduce_paper.py --resume`.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the sweep files' seeds")
    parser.add_argument("--sweeps", nargs="+", default=list(SWEEPS), choices=list(SWEEPS))
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "paper")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--reuse", action="store_true", help=(
        "do not run; rebuild the page from the run folders (a run whose scenario.yaml is not the "
        "planned scenario, say one made under an older preset, is left off and the page says so)"))
    parser.add_argument("--resume", action="store_true", help=(
        "keep every planned run that finished (its summary.json and timing are there) and records the "
        "very scenario planned now (its scenario.yaml), run the others, then write the page from all of them"))
    parser.add_argument("--quick", action="store_true", help=(
        f"seeds {', '.join(map(str, QUICK_SEEDS))} at {QUICK_BUDGET:g} of every budget, page to reports/paper/quick.md; "
        "prints the full run's estimated time"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds or list(QUICK_SEEDS)
        if args.page == ROOT / "docs" / "results.md":
            args.page = args.out / "quick.md"
        if "paper_comparison" not in args.sweeps and any(s in REUSE_DEFAULT for s in args.sweeps):
            args.sweeps = ["paper_comparison", *args.sweeps]  # the ablations' default runs
    start = time.perf_counter()
    planned = plan(args.sweeps, args.seeds, args.out, QUICK_BUDGET if args.quick else 1.0)
    print(f"{len(planned)} runs planned in {len(args.sweeps)} sweeps, {args.jobs} workers", flush=True)
    timings: dict[str, tuple[float, str | None, float]] = {}
    if args.reuse:
        timings = load_timings(args.out, planned)
    else:
        # each run replaces its own folder (fleetsim's --force: only a folder it wrote); folders of
        # variants no longer planned are left alone and never read (the page reads planned runs only)
        kept = load_timings(args.out, planned) if args.resume else {}
        kept = {k: v for k, v in kept.items() if v[1] is None}
        todo = [p for p in planned if str(p.run_dir) not in kept]
        if kept:
            print(f"--resume: {len(kept)} finished runs kept, {len(todo)} to run", flush=True)
        timings = {**kept, **execute(todo, args.jobs, args.out,
                                     known=[p for p in planned if str(p.run_dir) in kept], known_timings=kept)}
        save_timings(args.out, timings)
    results = collect(planned)
    elapsed_s = time.perf_counter() - start
    estimate = None
    if timings:
        full_s, full_runs = estimate_full_s(planned, timings, args.sweeps, args.jobs)
        estimate = (f"the full run ({full_runs} runs, the sweep files' seeds and budgets) is estimated at "
                    f"{full_s / 3600:.1f} h on {args.jobs} otherwise idle cores, from the CPU time per simulated "
                    f"second each variant took in this run")
        print(estimate, flush=True)
    from paper_page import write_page

    command = "python scripts/reproduce_paper.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    write_page(args.page, results=results, planned=planned, timings=timings, command=command.strip(),
               elapsed_s=elapsed_s, host=host_info(), reused=args.reuse,
               validation_file=ROOT / "docs" / "cost_model_validation.md", estimate=estimate,
               partial=partial_note(planned, plan(args.sweeps, None, args.out), args.quick,
                                    missing=sum(len(e["missing"]) for e in results.values())))
    (args.out).mkdir(parents=True, exist_ok=True)
    for stem, entry in results.items():
        if entry["agg"] is not None:
            entry["agg"].to_csv(args.out / f"{stem}_aggregate.csv", index=False)
    failed = [k for k, (_, e, _) in timings.items() if e]
    print(f"wrote {args.page}; {len(planned) - len(failed)} runs ok, {len(failed)} failed; "
          f"elapsed {elapsed_s / 60:.1f} min", flush=True)
    print(json.dumps({"elapsed_s": round(elapsed_s, 1), "runs": len(planned), "failed": len(failed),
                      "estimate": estimate}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
