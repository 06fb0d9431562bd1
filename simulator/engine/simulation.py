"""Builds the simulated world from a Scenario, runs it to the stop condition, writes the run folder.

The one place where config, network, fleet, server and learning meet. Everything random draws from
its own ``numpy.random.Generator`` spawned from the scenario seed (selection, latency jitter, churn),
so the trace is a function of (scenario, seed) alone.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import simpy

from simulator.output.checkpoint import Checkpoint, ReplayClock, save_checkpoint
from simulator.config.algorithm import resolve_algorithm
from simulator.server.registry import policy_params
from simulator.config.scenario import Scenario
from simulator.errors import InputError
from simulator.engine.faults import schedule_faults
from simulator.environment import Environment
from simulator.fleet.device import ClientRound, Device, Job, JobShape
from simulator.fleet.online import OnlineSwitch
from simulator.learning.trainer import single_thread
from simulator.engine.model_hooks import LearnerHooks, TimingHooks
from simulator.engine.failure import (RunFailed, RunFailure, RunInterrupted, RunOutcome, describe_failure,
                                   scenario_plugin_files)
from simulator.engine.planning import Planner, SubmodelChoice, exit_mode, local_steps
from simulator.output.folder import write_json
from simulator.server.registry import build_policy
from simulator.server.server import Server
from simulator.engine.step_times import step_time_sources
from simulator.engine.summary import build_summary, close_device_accounts, write_device_rows
from simulator.trace.recorder import TraceRecorder
from simulator.engine.workload_info import WorkloadInfo, describe_workload
from simulator.engine.world import (
    aggregation_deadline, build_devices, build_network, device_budget, load_profiles, optimizer_kind,
    start_availability,
)

ProgressFn = Callable[[float, int, float | None], None]  # (sim_s, versions, accuracy)


@dataclass
class Simulation:
    """One run: build with a validated scenario, then :meth:`run`."""

    def __init__(
        self,
        scenario: Scenario,
        run_dir: Path,
        *,
        scenario_file: str | None = None,
        base_dir: Path | None = None,
        timing_only: bool = False,
        executor: Any = None,
        progress: ProgressFn | None = None,
        checkpoint_every_s: float | None = None,
        resume_from: Checkpoint | None = None,
    ) -> None:
        self.scenario = scenario
        self.checkpoint_every_s = checkpoint_every_s
        self.replay = ReplayClock(resume_from)
        self.run_dir = run_dir
        self.file = scenario_file
        self.base_dir = base_dir or Path.cwd()
        self.timing_only = timing_only
        self.executor = executor
        self.progress = progress
        try:
            self.algorithm = resolve_algorithm(scenario.algorithm, policy_params)
        except InputError as err:
            raise err.with_file(scenario_file) if scenario_file else err
        self.profiles = load_profiles(scenario, self.base_dir, scenario_file)
        self._check_k()
        self._check_fault_devices()
        self.workload: WorkloadInfo = describe_workload(scenario, self.base_dir, timing_only, scenario_file)

    def _check_fault_devices(self) -> None:
        """Devices named by faults must exist (checked before any output is written)."""
        from simulator.config.faults import DevicesOffline

        names = [f"{g.name or p.name}#{k}" for g, p in zip(self.scenario.fleet, self.profiles) for k in range(g.count)]
        for i, fault in enumerate(self.scenario.faults):
            if isinstance(fault, DevicesOffline):
                for k, ref in enumerate(fault.devices):
                    if not ((isinstance(ref, int) and 0 <= ref < len(names)) or ref in names):
                        raise InputError("unknown device", file=self.file, field=f"faults[{i}].devices[{k}]", value=ref,
                                         accepted=f"an index 0 … {len(names) - 1} or a name like '{names[0]}'")

    def _check_k(self) -> None:
        n = self.scenario.num_devices
        for key in ("k", "buffer_k", "clients_per_round"):
            value = self.algorithm.aggregation.get(key)
            if value is not None and value > n:
                raise InputError(
                    f"{key} is larger than the fleet ({n} devices), so no merge could ever happen",
                    file=self.file, field=f"algorithm.aggregation.{key}", value=value, accepted=f"1 … {n}",
                )

    # ------------------------------------------------------------------ building

    def make_planner(self) -> Planner:
        """The planner this run uses (also what `fleetsim plan` asks, per catalogue entry, without a run)."""
        w = self.workload
        return Planner(
            w.plan_model, w.num_classes, w.input_shape, w.num_blocks, self.scenario.workload.batch_size,
            optimizer_kind(self.scenario), int(self.scenario.workload.framework_overhead_gb * 1e9), self.algorithm.pruning,
            exits=exit_mode(self.algorithm.pruning, self.algorithm.distillation),
        )

    def _plans(self, devices: list[Device]) -> list[SubmodelChoice]:
        """Each device's submodel (identical devices share a cached choice)."""
        w = self.workload
        planner = self.make_planner()
        deadline = aggregation_deadline(self.algorithm)
        choices = []
        for device in devices:
            profile = self.profiles[device.group]
            budget = device_budget(profile, device.power_mode)
            steps = self._steps(device.index)
            compute_budget = None
            if deadline is not None:
                full = planner.evaluate(budget, 1.0, w.num_blocks)
                comm_s = 2 * full.model_bytes * 8 / (device.cap_bps or self.scenario.network.server.downlink_mbps * 1e6)
                compute_budget = max(0.0, deadline - comm_s)
            choices.append(planner.choose(budget, compute_budget, steps))
        self.planner = planner
        return choices

    def _steps(self, index: int) -> int:
        wl = self.scenario.workload
        return local_steps(self.workload.samples(index), wl.batch_size, wl.local_epochs, wl.local_steps)

    # ------------------------------------------------------------------ running

    def run(self) -> RunOutcome:
        """Simulate the scenario. With training, the main process's tensor work (extract, merge,
        evaluate, inline jobs) runs on one torch thread: these are small ops whose OpenMP start and
        barrier cost more than a second thread gains, and a second thread stalls badly when the other
        core is busy (a pool worker, another run). The quickstart at 50 versions took 10.5-14.4 s
        with two threads and 8.4-9.3 s with one on a shared 2-core host. Jobs and evaluations were
        single-threaded already; merges are elementwise, so results do not change."""
        if self.timing_only:
            return self._run()
        with single_thread():
            return self._run()

    def _run(self) -> RunOutcome:
        scenario = self.scenario
        seeds = np.random.SeedSequence(scenario.seed).spawn(4)
        env = Environment()
        network, links = build_network(env, scenario)
        devices = build_devices(scenario, self.profiles, links, seeds[0])
        # the learner first: a process pool's workers then start while the planner traces the model
        learner = None if self.timing_only else self.workload.make_learner(self.algorithm, self.executor)
        plans = self._plans(devices)
        recorder = TraceRecorder(self.run_dir, scenario.output.flush_rows,
                                 devices=[(d.name, d.profile_name, d.group) for d in devices])
        self.workload.write_clients_table(self.run_dir / "clients.parquet", [d.name for d in devices],
                                          [d.profile_name for d in devices])
        hooks = LearnerHooks(learner, live=self.replay.live) if learner is not None else TimingHooks()
        eval_rows: list[tuple[float, int, float, float, list[float]]] = []
        policy = build_policy(dict(self.algorithm.aggregation))
        deadline = aggregation_deadline(self.algorithm)
        local_work = self.algorithm.local_work
        batch = scenario.workload.batch_size
        evals: list[tuple[float, int, float]] = []
        stop_event = env.event()
        state = {"stop_reason": "sim_time_s", "time_to_target": None}
        target_rule = scenario.stop.target_rule()

        rolling = self.algorithm.pruning.depth == "rolling"
        budgets = {g: device_budget(p, scenario.fleet[g].power_mode or p.default_power_mode)
                   for g, p in enumerate(self.profiles)}

        # A job's shape depends only on its device's plan: computed once per device (devices with equal
        # shapes share one), unless rolling depth windows move the plan from job to job.
        job_shapes: dict[int, JobShape] = {}
        shared_shapes: dict[tuple[Any, ...], JobShape] = {}

        def make_job(device: Device, job_id: int, version: int) -> Job:
            shape = job_shapes.get(device.index)
            if shape is None:
                shape = job_sizes(device)
            return Job(job_id, device, shape, version, env.now)

        def job_sizes(device: Device) -> JobShape:
            plan = plans[device.index]
            moving = rolling and plan.fits_memory and plan.depth < self.workload.num_blocks
            if moving:
                windows = self.planner.rolling_windows(budgets[device.group], plan)
                plan = windows[(device.counts["jobs"] + device.index) % len(windows)]
            steps = self._steps(device.index)
            if local_work.fit_deadline and deadline is not None:
                comm_s = 2 * plan.model_bytes * 8 / (device.cap_bps or scenario.network.server.downlink_mbps * 1e6)
                affordable = math.floor(max(0.0, deadline - comm_s) / plan.step_time_s) if plan.step_time_s > 0 else steps
                steps = max(local_work.min_steps, min(steps, affordable))
            upload_extra = self.workload.importance_bytes(plan.width_ratio) if self.algorithm.pruning.width == "importance" else 0
            # importance batches and the global-teacher pass run on the device too (planning.JobExtras)
            extra = self.planner.job_extras(budgets[device.group], plan, steps, self.algorithm)
            fields = (
                self.workload.samples(device.index), plan.depth, plan.width_ratio, plan.trainable_from, steps,
                plan.params, plan.model_bytes + extra.download_bytes, plan.upload_bytes + upload_extra,
                max(plan.peak_memory_bytes, extra.peak_memory_bytes),
                steps * plan.step_time_s + extra.compute_s, steps * batch * plan.train_flops_per_sample + extra.flops,
            )
            shape = shared_shapes.get(fields)
            if shape is None:
                shape = shared_shapes[fields] = JobShape(*fields)
            if not moving:
                job_shapes[device.index] = shape
            return shape

        def on_version(version: int) -> None:
            ev = scenario.evaluation
            if learner is not None and ev.every_versions is not None and version % ev.every_versions == 0:
                evaluate()
            if scenario.stop.max_versions is not None and version >= scenario.stop.max_versions:
                stop("max_versions")

        def evaluate() -> None:
            if hooks.live:  # type: ignore[union-attr]
                result = learner.evaluate()
                row = (env.now, server.version, result.accuracy, result.loss, list(result.exit_accuracy))
            else:
                row = self.replay.next_eval()
            eval_rows.append(row)
            recorder.evals.append(*row)
            evals.append((row[0], row[1], row[2]))
            if target_rule is not None and state["time_to_target"] is None:
                reached_s = target_rule.observe(env.now, row[2])  # N consecutive evaluations (stop spec)
                if reached_s is not None:
                    state["time_to_target"] = reached_s
                    stop("target_accuracy")

        def stop(reason: str) -> None:
            if not stop_event.triggered:
                state["stop_reason"] = reason
                server.stopped = True  # events already queued at this instant change nothing more
                stop_event.succeed()

        client_round = ClientRound(
            env, network, recorder, on_compute_start=None if getattr(hooks, "noop", False) else hooks.start,
            on_arrival=lambda job: server.job_arrived(job),
            on_failure=lambda job, outcome, reason: server.job_failed(job, outcome, reason),
        )
        server = Server(
            env, devices, policy, recorder, client_round, make_job, hooks, self.workload.num_blocks,
            np.random.default_rng(seeds[1]), on_version,
        )
        # the server exists now: bound methods instead of the lambdas (one frame less per round)
        client_round.on_arrival, client_round.on_failure = server.job_arrived, server.job_failed
        switches = [OnlineSwitch(env, device, server) for device in devices]
        start_availability(env, scenario, devices, self.base_dir, seeds[2], switches)
        fault_log = schedule_faults(env, scenario.faults, network, links, devices, server, switches, self.file)
        if learner is not None:
            evaluate()
            if scenario.evaluation.every_s is not None:
                env.process(self._periodic(env, scenario.evaluation.every_s, evaluate))
        if scenario.stop.sim_time_s is not None:
            timer = env.timeout(scenario.stop.sim_time_s)
            timer.callbacks.append(lambda _ev: stop("sim_time_s"))
        if self.progress is not None:
            env.process(self._report_progress(env, server, evals))
        if self.checkpoint_every_s is not None:
            env.process(self._checkpoints(env, learner, hooks, recorder, eval_rows))
        if self.progress is not None:
            self.progress(0.0, 0, evals[-1][2] if evals else None)
        interrupted = False
        # Hide the setup's ~400k objects (torch, pydantic) from the cyclic GC while the loop runs: else
        # each full collection rescans them and GC takes half the loop's time. Timing-only loops make no
        # reference cycles at all (benchmarks/core_throughput.py), so there the collector is paused.
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        pause_gc = learner is None and gc.isenabled()
        if pause_gc:
            gc.disable()
        failure: RunFailure | None = None
        try:
            server.start()  # after the freeze: the first dispatch makes a job, view and round per device
            env.run(until=stop_event)
        except KeyboardInterrupt:
            interrupted = True  # keep what happened: finish the traces, then tell the caller
            state["stop_reason"] = "interrupted"
        except Exception as exc:  # noqa: BLE001 - a plug-in, a full disk, a bug: end as Ctrl-C does, say which
            if isinstance(exc, RuntimeError) and "No scheduled events left" in str(exc):
                state["stop_reason"] = "stalled: no device can do more work"
            else:
                failure = describe_failure(exc, self._plugin_files())
                state["stop_reason"] = failure.stop_reason
        finally:
            if pause_gc:
                gc.enable()
            if freeze:
                gc.unfreeze()
        end_s = env.now
        server.finish()
        if self.progress is not None:
            self.progress(end_s, server.version, evals[-1][2] if evals else None)
        close_device_accounts(devices, end_s, recorder)
        totals = write_device_rows(recorder, devices, end_s)
        try:
            recorder.close()
        except OSError as exc:  # the parts written so far stay readable; the failure is the write
            if failure is None or failure.kind != "write":
                failure = describe_failure(exc, self._plugin_files())
                state["stop_reason"] = failure.stop_reason
        if learner is not None:
            learner.close()
        summary = build_summary(
            scenario_name=scenario.name, algorithm=self.algorithm.name, seed=scenario.seed,
            timing_only=learner is None, devices=devices, wall_s=end_s, versions=server.version, totals=totals,
            staleness=server.staleness_accepted, target_accuracy=scenario.stop.target_accuracy,
            time_to_target_s=state["time_to_target"], final_accuracy=evals[-1][2] if evals else None,
            stop_reason=state["stop_reason"], extra={**self._summary_extra(devices, plans), "faults": fault_log,
                                                     "target_rule": target_rule.describe() if target_rule else None},
            complete=not interrupted and failure is None,
            group_plans=self._group_plans(devices, plans),
        )
        try:
            write_json(self.run_dir / "summary.json", summary)
        except OSError as exc:
            failure = failure or describe_failure(exc)
        if failure is not None:
            raise RunFailed(RunOutcome(self.run_dir, summary), failure)
        if interrupted:
            raise RunInterrupted(RunOutcome(self.run_dir, summary))
        return RunOutcome(self.run_dir, summary)

    def _plugin_files(self) -> dict[str, str]:
        return scenario_plugin_files(self.scenario)

    def _checkpoints(self, env: simpy.Environment, learner: Any, hooks: Any, recorder: TraceRecorder,
                     eval_rows: list[tuple[float, int, float, float, list[float]]]):
        """Every `checkpoint_every_s` simulated seconds: save (live) or, when replaying, go live
        at the tick where the checkpoint being resumed was taken."""
        tick = 0
        while True:
            yield env.timeout(self.checkpoint_every_s)
            tick += 1
            checkpoint = self.replay.checkpoint
            if not self.replay.live and checkpoint is not None and tick == checkpoint.tick:
                if learner is not None:
                    learner.restore(checkpoint.learner)
                    hooks.live = True
                self.replay.live = True
            if self.replay.live:
                recorder.flush()
                save_checkpoint(self.run_dir, Checkpoint(
                    time_s=env.now, tick=tick, learner=learner.snapshot() if learner is not None else None,
                    evals=list(eval_rows),
                ))

    def _summary_extra(self, devices: list[Device], plans: list[SubmodelChoice]) -> dict[str, Any]:
        """Per device class: the plan with the largest memory peak (the class's worst case, what a
        planner sizes for), how many devices the class has, and every distinct (depth, width) chosen
        in it: power modes and shard sizes (local steps against a deadline) can differ within a class."""
        by_profile: dict[str, dict[str, Any]] = {}
        for device, plan in zip(devices, plans):
            entry = by_profile.get(device.profile_name)
            if entry is None or plan.peak_memory_bytes > entry["peak_memory_bytes"]:
                by_profile[device.profile_name] = entry = {
                    "depth": plan.depth, "width_ratio": plan.width_ratio, "params": plan.params,
                    "peak_memory_bytes": plan.peak_memory_bytes, "usable_memory_bytes": device.usable_memory_bytes,
                    "fits_memory": plan.fits_memory, "step_time_s": plan.step_time_s,
                    "step_time_source": plan.step_time_source,
                    "devices": entry["devices"] if entry else 0, "variants": entry["variants"] if entry else {},
                }
            entry["devices"] += 1
            key = f"depth {plan.depth}, width {plan.width_ratio:g}"
            entry["variants"][key] = entry["variants"].get(key, 0) + 1
        return {
            "model": self.workload.plan_model_label,
            "train_model": self.workload.train_model_label,
            "proxy_training": self.workload.proxy,
            "dataset": self.scenario.workload.dataset.name,
            "num_blocks": self.workload.num_blocks,
            "exits": self.planner.exits,
            "submodels_by_profile": by_profile,
            "step_times": step_time_sources(self.planner, [
                (self.profiles[d.group], device_budget(self.profiles[d.group], d.power_mode), plan)
                for d, plan in zip(devices, plans)]),
        }

    def _group_plans(self, devices: list[Device], plans: list[SubmodelChoice]) -> list[dict[str, Any]]:
        """Per scenario group (fleet[i], named as the engine names its devices): its static facts and
        the plan with the largest memory peak among its devices, with every distinct (depth, width)."""
        out: list[dict[str, Any]] = []
        for g, (group, profile) in enumerate(zip(self.scenario.fleet, self.profiles)):
            entry: dict[str, Any] = {"name": group.name or profile.name, "index": g, "profile": profile.name,
                                     "power_mode": group.power_mode or profile.default_power_mode,
                                     "link": group.link, "variants": {}}
            worst: SubmodelChoice | None = None
            for device, plan in zip(devices, plans):
                if device.group != g:
                    continue
                if worst is None or plan.peak_memory_bytes > worst.peak_memory_bytes:
                    worst, entry["usable_memory_bytes"] = plan, device.usable_memory_bytes
                key = f"depth {plan.depth}, width {plan.width_ratio:g}"
                entry["variants"][key] = entry["variants"].get(key, 0) + 1
            if worst is not None:
                entry.update({"depth": worst.depth, "width_ratio": worst.width_ratio, "params": worst.params,
                              "peak_memory_bytes": worst.peak_memory_bytes, "fits_memory": worst.fits_memory,
                              "step_time_s": worst.step_time_s})
            out.append(entry)
        return out

    @staticmethod
    def _periodic(env: simpy.Environment, every_s: float, fn: Callable[[], None]):
        while True:
            yield env.timeout(every_s)
            fn()

    def _report_progress(self, env: simpy.Environment, server: Server, evals: list[tuple[float, int, float]]):
        horizon = self.scenario.stop.sim_time_s or 3600.0
        step = horizon / 200
        while True:
            yield env.timeout(step)
            self.progress(env.now, server.version, evals[-1][2] if evals else None)  # type: ignore[misc]
