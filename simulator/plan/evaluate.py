"""Running candidate fleets on the sweep backends, resumably.

Every candidate run is a sweep variant: a :class:`~simulator.sweep.backends.VariantTask` run by
:func:`~simulator.sweep.backends.run_tasks` (this process, a local process pool, or Ray) into its
own folder ``<plan folder>/<phase>/<candidate>/``. Each phase folder keeps a sweep-style
``manifest.json`` with a fingerprint per candidate; a candidate counts as finished when its
``summary.json`` exists *and* its fingerprint matches (:func:`simulator.sweep.runner.is_finished`),
so an interrupted plan resumes skipping what it finished, and an edited plan re-runs exactly the
candidates whose scenario changed. The manifest is written before a batch runs.

One process pool (:func:`~simulator.sweep.backends.local_pool`) or Ray cluster
(:func:`~simulator.sweep.backends.ray_cluster`) is kept for the whole plan, rather than one per
batch of the optimiser.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from simulator.output.folder import write_json
from simulator.sweep.backends import VariantTask, local_pool, ray_cluster, run_tasks
from simulator.sweep.expand import Variant
from simulator.sweep.runner import MANIFEST, is_finished

ProgressFn = Callable[[str, str, str], None]  # (phase, candidate name, status: done | skipped | failed)


@dataclass(frozen=True)
class RunSpec:
    """One run of a candidate: its folder name and complete scenario mapping."""

    name: str
    scenario: dict[str, Any]
    timing_only: bool

    def variant(self) -> Variant:
        return Variant(self.name, {}, int(self.scenario.get("seed", 0)), self.scenario, self.timing_only)


@dataclass(frozen=True)
class RunResult:
    name: str
    summary: dict[str, Any] | None   # None: the run failed
    error: str | None = None
    reused: bool = False             # finished by an earlier invocation


class Evaluator:
    """Runs batches of candidates in one phase folder (``runs`` or ``train``); use as a context manager."""

    def __init__(self, plan_dir: Path, *, backend: str = "local", jobs: int = 1, ray_address: str | None = None,
                 force: bool = False, import_paths: tuple[str, ...] = (), progress: ProgressFn | None = None) -> None:
        self.plan_dir = plan_dir
        self.backend, self.jobs, self.ray_address = backend, jobs, ray_address
        self.force = force
        self.import_paths = import_paths
        self.progress = progress
        self._manifests: dict[str, dict[str, Any]] = {}
        self._forced: set[tuple[str, str]] = set()   # (phase, name) already re-run under --force
        self._stack = contextlib.ExitStack()
        self._pool: Any = None
        self.ran = 0
        self.reused = 0

    def __enter__(self) -> "Evaluator":
        if self.backend == "ray":
            self._stack.enter_context(ray_cluster(self.jobs, self.ray_address, self.import_paths))
        elif self.backend == "local":
            self._pool = self._stack.enter_context(local_pool(self.jobs))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def _manifest(self, phase: str) -> dict[str, Any]:
        if phase not in self._manifests:
            try:
                data = json.loads((self.plan_dir / phase / MANIFEST).read_text())
            except (OSError, ValueError):
                data = {}
            data.setdefault("variants", {})
            self._manifests[phase] = data
        return self._manifests[phase]

    def _finished(self, phase: str, variant: Variant, manifest: dict[str, Any]) -> bool:
        if self.force and (phase, variant.name) not in self._forced:
            return False
        return is_finished(self.plan_dir / phase, variant, manifest)

    def run(self, phase: str, specs: list[RunSpec]) -> dict[str, RunResult]:
        """Run (or reuse) every spec; results are read back from each run's summary.json."""
        phase_dir = self.plan_dir / phase
        phase_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest(phase)
        variants = [s.variant() for s in specs]
        todo = [(s, v) for s, v in zip(specs, variants) if not self._finished(phase, v, manifest)]
        for spec, variant in zip(specs, variants):
            manifest["variants"][spec.name] = {"fingerprint": variant.fingerprint(), "timing_only": spec.timing_only}
        write_json(phase_dir / MANIFEST, manifest)
        todo_names = {s.name for s, _ in todo}
        results: dict[str, RunResult] = {}
        for spec in specs:
            if spec.name not in todo_names:
                self.reused += 1
                if self.progress:
                    self.progress(phase, spec.name, "skipped")
        tasks = [VariantTask(s.name, s.scenario, str((phase_dir / s.name).resolve()), s.timing_only,
                             self.import_paths) for s, _ in todo]
        errors: dict[str, str] = {}
        for outcome in run_tasks(tasks, backend=self.backend, jobs=self.jobs, ray_address=self.ray_address,
                                 pool=self._pool):
            self._forced.add((phase, outcome.name))
            self.ran += 1
            if not outcome.ok:
                errors[outcome.name] = outcome.error or "failed"
            if self.progress:
                self.progress(phase, outcome.name, "done" if outcome.ok else "failed")
        for spec in specs:
            path = phase_dir / spec.name / "summary.json"
            if spec.name in errors or not path.is_file():
                results[spec.name] = RunResult(spec.name, None, errors.get(spec.name, "no summary.json was written"))
            else:
                results[spec.name] = RunResult(spec.name, json.loads(path.read_text()),
                                               reused=spec.name not in todo_names)
        return results
