"""``run_sweep``: expand a sweep file, run what is not finished yet, write the tables and the report.

Resuming. The sweep folder keeps ``manifest.json``: every variant's name and a fingerprint of its
full scenario, resolved as the run records it. A variant counts as finished when its folder has
``summary.json`` (the engine writes it last, atomically) *and* its fingerprint matches the current
sweep file — so editing the base or a value, or a fleetsim whose presets or defaults changed, re-runs
exactly the variants it changed. Anything else (never started, killed half-way, failed)
is run again into a fresh folder. ``force`` re-runs every variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.config.input_files import read_input_text
from simulator.output.folder import atomic_write_text, claim_sweep_dir, write_json
from simulator.server.registry import add_plugin_paths
from simulator.sweep.backends import BACKENDS, ProgressFn, VariantTask, run_tasks
from simulator.sweep.expand import Variant, expand
from simulator.sweep.results import SweepResult, aggregate_table, metrics_of, results_table, write_tables
from simulator.sweep.spec import LoadedSweep, load_sweep

MANIFEST = "manifest.json"
REPORT = "comparison.html"


def _read_manifest(sweep_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((sweep_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def is_finished(sweep_dir: Path, variant: Variant, previous: dict[str, Any]) -> bool:
    entry = (previous.get("variants") or {}).get(variant.name) or {}
    return (sweep_dir / variant.name / "summary.json").is_file() and entry.get("fingerprint") == variant.fingerprint()


def _manifest(loaded: LoadedSweep, variants: list[Variant]) -> dict[str, Any]:
    return {
        "sweep": loaded.name,
        "sweep_file": str(loaded.file.resolve()),
        "base_file": str(loaded.base_file) if loaded.base_file else None,
        "keys": [*loaded.spec.grid, *loaded.spec.zip],
        "seeds": list(loaded.spec.seeds),
        "variants": {v.name: {"fingerprint": v.fingerprint(), "seed": v.seed, "values": v.values,
                              "timing_only": v.timing_only} for v in variants},
    }


def check_options(jobs: int, backend: str, jobs_field: str = "jobs", backend_field: str = "backend") -> None:
    """The sweep's own options, named as the caller knows them (`jobs` in Python, `--jobs` on the
    command line: the CLI checks first with its flag names)."""
    if backend not in BACKENDS:
        raise InputError("unknown sweep backend", field=backend_field, value=backend, accepted=", ".join(BACKENDS))
    if not isinstance(jobs, int) or jobs < 1:
        raise InputError("jobs must be a whole number of at least 1", field=jobs_field, value=jobs,
                         accepted="1, 2, … (variants run side by side)")


def collect(sweep_dir: Path, variants: list[Variant], keys: list[str]) -> tuple[Any, Any, list[Variant]]:
    """Results and aggregate tables from the finished variants' summary.json files."""
    rows, finished = [], []
    for v in variants:
        path = sweep_dir / v.name / "summary.json"
        if path.is_file():
            rows.append((v.name, v.values, v.seed, metrics_of(json.loads(path.read_text()))))
            finished.append(v)
    results = results_table(rows, keys)
    return results, aggregate_table(results, keys), finished


def run_sweep(
    path: str | Path,
    *,
    jobs: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    force: bool = False,
    out: str | Path | None = None,
    timing_only: bool | None = None,
    report: bool = True,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Run every variant of the sweep file at `path` and return the tables.

    ``jobs`` variants run side by side (``backend="local"``: this process when 1, else a spawn
    process pool; ``"ray"``: a local Ray cluster of `jobs` CPUs, or the one at ``ray_address``).
    ``out`` overrides the sweep's ``output`` folder; ``timing_only`` its ``timing_only``.
    ``progress(finished, total, variant, status)`` is called once per variant with status
    ``skipped`` (already finished), ``done`` or ``failed``. Failed variants are listed in the result,
    not raised: the others still run and are tabulated.
    """
    check_options(jobs, backend)
    loaded = load_sweep(path)
    add_plugin_paths(loaded.sweep_dir, loaded.base_dir, Path.cwd())  # variants are validated here, before running
    variants = expand(loaded, timing_only=timing_only)
    sweep_dir = Path(out) if out is not None else loaded.default_output()
    lock = claim_sweep_dir(sweep_dir)  # new, empty or fleetsim's own; one sweep at a time
    try:
        return _run_claimed(loaded, variants, sweep_dir, jobs=jobs, backend=backend, ray_address=ray_address,
                            force=force, report=report, progress=progress)
    finally:
        lock.release()


def _run_claimed(loaded: LoadedSweep, variants: list[Variant], sweep_dir: Path, *, jobs: int, backend: str,
                 ray_address: str | None, force: bool, report: bool, progress: ProgressFn | None) -> SweepResult:
    keys = [*loaded.spec.grid, *loaded.spec.zip]
    previous = _read_manifest(sweep_dir)
    todo = [v for v in variants if force or not is_finished(sweep_dir, v, previous)]
    todo_names = {v.name for v in todo}
    skipped = [v.name for v in variants if v.name not in todo_names]
    # the manifest is written before running, so a killed sweep can still tell what it was doing;
    # an entry's fingerprint only matters together with that variant's summary.json
    write_json(sweep_dir / MANIFEST, _manifest(loaded, variants))
    atomic_write_text(sweep_dir / "sweep.yaml", read_input_text(loaded.file, "a sweep YAML"))

    total, finished = len(variants), 0
    for name in skipped:
        finished += 1
        if progress:
            progress(finished, total, name, "skipped")
    import_paths = tuple(dict.fromkeys([str(loaded.sweep_dir), str(loaded.base_dir), str(Path.cwd())]))
    tasks = [VariantTask(v.name, v.scenario, str((sweep_dir / v.name).resolve()), v.timing_only, import_paths)
             for v in todo]
    ran: list[str] = []
    failed: dict[str, str] = {}
    for outcome in run_tasks(tasks, backend=backend, jobs=jobs, ray_address=ray_address):
        finished += 1
        if outcome.ok:
            ran.append(outcome.name)
        else:
            failed[outcome.name] = outcome.error or "failed"
        if progress:
            progress(finished, total, outcome.name, "done" if outcome.ok else "failed")

    results, aggregate, done = collect(sweep_dir, variants, keys)
    write_tables(sweep_dir, results, aggregate)
    report_path = None
    if report and done:
        from simulator.report import write_comparison_report

        report_path = write_comparison_report([sweep_dir / v.name for v in sorted(done, key=lambda v: v.name)],
                                              sweep_dir / REPORT)
    return SweepResult(sweep_dir, keys, results, aggregate, sorted(ran), sorted(skipped), dict(sorted(failed.items())),
                       report_path)
