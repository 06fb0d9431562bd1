"""Where variants run: in this process, on a local process pool, or on a Ray cluster.

Every backend calls the same pure function, :func:`run_variant`, with a picklable
:class:`VariantTask`; a variant's results depend on its scenario and seed only, so the backend and
the order in which variants finish never change the sweep's tables. Training uses one intra-op
thread per variant (parallelism comes from running variants side by side, and a fixed thread count
keeps floating-point reductions identical across backends).

A failing variant does not stop the sweep: its error comes back as text in the outcome.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from simulator.cluster.ray_start import start_ray
from simulator.errors import InputError, RunError
from simulator.server.registry import add_plugin_paths

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class VariantTask:
    name: str
    scenario: dict[str, Any]
    run_dir: str
    timing_only: bool
    import_paths: tuple[str, ...] = ()     # folders for user plug-ins (module:Class), e.g. the sweep's


@dataclass(frozen=True)
class VariantOutcome:
    name: str
    ok: bool
    error: str | None = None


def _set_single_thread() -> int:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    return before


def run_variant(task: VariantTask) -> VariantOutcome:
    """Run one variant into its folder (replacing a partial one); never raises."""
    add_plugin_paths(*task.import_paths)
    before = _set_single_thread()
    try:
        from simulator.api import run

        run(task.scenario, out=task.run_dir, timing_only=task.timing_only, force=True, report=False)
        return VariantOutcome(task.name, True)
    except (InputError, RunError) as err:
        return VariantOutcome(task.name, False, err.message)
    except Exception as exc:  # noqa: BLE001 - one broken variant must not take the sweep down
        tail = "".join(traceback.format_exception(exc)[-3:]).strip()
        return VariantOutcome(task.name, False, f"{type(exc).__name__}: {exc}\n{tail}")
    finally:
        import torch

        torch.set_num_threads(before)


def _worker_init() -> None:
    _set_single_thread()


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init)


@contextmanager
def local_pool(jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """A spawn process pool of `jobs` workers kept for several :func:`run_local` calls (None when
    ``jobs == 1``: variants then run in this process), so a caller running batches (``fleetsim plan``)
    starts its workers once rather than once per batch."""
    pool = _spawn_pool(jobs) if jobs > 1 else None
    try:
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def run_local(tasks: list[VariantTask], jobs: int, pool: ProcessPoolExecutor | None = None,
              ) -> Iterator[VariantOutcome]:
    """In this process when ``jobs == 1``; otherwise a spawn-context process pool of `jobs` workers
    (`pool`, when given: one from :func:`local_pool`, left running)."""
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield run_variant(task)
        return
    own = pool is None
    if pool is None:
        pool = _spawn_pool(min(jobs, len(tasks)))
    pending = {pool.submit(run_variant, task): task for task in tasks}
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory)
                    yield VariantOutcome(task.name, False, f"worker process failed: {type(exc).__name__}: {exc}")
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            for future in pending:
                future.cancel()


def _ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("the Ray backend needs the 'ray' package", field="backend", value="ray",
                         accepted="pip install 'fleetsim[ray]', or --backend local") from None
    return ray


def _python_path(extra: Iterable[str]) -> str:
    import simulator

    root = str(Path(simulator.__file__).resolve().parent.parent)
    parts = [root, *extra, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return os.pathsep.join(dict.fromkeys(parts))


@contextmanager
def ray_cluster(jobs: int, address: str | None, import_paths: Iterable[str] = ()) -> Iterator[Any]:
    """Ray, initialised to run variants: a local cluster of `jobs` CPUs, or the one at `address`,
    unless Ray is initialised already. A cluster this call started is shut down when it ends, so a
    caller running several batches (``fleetsim plan``) can keep one cluster for all of them."""
    ray = _ray_module()
    started = False
    if not ray.is_initialized():
        extra = sorted(set(import_paths))
        kwargs: dict[str, Any] = {
            "include_dashboard": False, "log_to_driver": False, "configure_logging": False,
            "runtime_env": {"env_vars": {"PYTHONPATH": _python_path(extra), "OMP_NUM_THREADS": "1"}},
        }
        if address:  # (away from the working directory: simulator.cluster.ray_start says why)
            start_ray(ray, address=address, **kwargs)
        else:
            start_ray(ray, num_cpus=max(1, jobs), **kwargs)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def run_ray(tasks: list[VariantTask], jobs: int, address: str | None) -> Iterator[VariantOutcome]:
    """One Ray task per variant (1 CPU each). Starts a local cluster of `jobs` CPUs unless `address`
    names a running one; a cluster this call started is shut down when it ends."""
    with ray_cluster(jobs, address, {p for t in tasks for p in t.import_paths}) as ray:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_variant)
        pending = {remote.remote(task): task for task in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the Ray worker died
                    yield VariantOutcome(task.name, False, f"Ray task failed: {type(exc).__name__}: {exc}")


def run_tasks(tasks: list[VariantTask], *, backend: str, jobs: int, ray_address: str | None,
              pool: ProcessPoolExecutor | None = None) -> Iterator[VariantOutcome]:
    """Run the tasks on `backend`; `pool` (local backend) is a pool from :func:`local_pool` to reuse."""
    if backend == "local":
        if ray_address:
            raise InputError("--ray-address only applies to the Ray backend", field="ray_address",
                             value=ray_address, accepted="--backend ray, or no address")
        return run_local(tasks, jobs, pool)
    if backend == "ray":
        return run_ray(tasks, jobs, ray_address)
    raise InputError("unknown sweep backend", field="backend", value=backend, accepted=", ".join(BACKENDS))


ProgressFn = Callable[[int, int, str, str], None]  # (finished, total, variant name, status)
