"""One execution of a :class:`~simulator.engine.simulation.Simulation`: the world it builds, the
loop's state, and the steps of a run as named methods.

Why an object: the run used to be one 157-line function of closures over a ``state`` dict. Its
state is now attributes (``stop_reason``, ``time_to_target_s``), and each thing the loop calls back
is a method with a name a traceback shows: :meth:`make_job` (the server's job factory),
:meth:`on_version` (after each merge), :meth:`evaluate`, :meth:`stop`. The order in which the world is
built and its processes are started is the order of the function it replaces, so SimPy's event ids —
and with them the traces — are unchanged (benchmarks/trace_fingerprint.py).
"""

from __future__ import annotations

import gc
import math
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import simpy

from simulator.engine.failure import RunFailed, RunFailure, RunInterrupted, RunOutcome, describe_failure
from simulator.engine.faults import schedule_faults
from simulator.engine.model_hooks import LearnerHooks, TimingHooks
from simulator.engine.plans_summary import group_plans, plans_extra
from simulator.engine.summary import build_summary, close_device_accounts, write_device_rows
from simulator.engine.world import (aggregation_deadline, build_devices, build_network,
                                    start_availability)
from simulator.environment import Environment
from simulator.fleet.device import ClientRound, Device, Job, JobShape
from simulator.fleet.online import OnlineSwitch
from simulator.output.checkpoint import Checkpoint, save_checkpoint
from simulator.output.folder import write_json
from simulator.server.registry import build_policy
from simulator.server.server import Server
from simulator.trace.recorder import TraceRecorder

if TYPE_CHECKING:
    from simulator.engine.simulation import Simulation

EvalRow = tuple[float, int, float, float, list[float]]


class SimulationRun:
    """Builds the world of one run (devices, links, learner, plans, traces, server), then
    :meth:`execute` starts it, runs the loop to the stop condition and writes the summary."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        scenario = self.scenario = sim.scenario
        seeds = self.seeds = np.random.SeedSequence(scenario.seed).spawn(4)
        env = self.env = Environment()
        self.network, self.links = build_network(env, scenario)
        devices = self.devices = build_devices(scenario, sim.profiles, self.links, seeds[0])
        # the learner first: a process pool's workers then start while the planner traces the model
        learner = self.learner = None if sim.timing_only else sim.workload.make_learner(sim.algorithm, sim.executor)
        self.plans = sim.plans(devices)
        self.planner = sim.planner
        self.recorder = TraceRecorder(sim.run_dir, scenario.output.flush_rows,
                                      devices=[(d.name, d.profile_name, d.group) for d in devices])
        sim.workload.write_clients_table(sim.run_dir / "clients.parquet", [d.name for d in devices],
                                         [d.profile_name for d in devices])
        self.hooks = LearnerHooks(learner, live=sim.replay.live) if learner is not None else TimingHooks()
        self.eval_rows: list[EvalRow] = []
        self.evals: list[tuple[float, int, float]] = []  # (time_s, version, accuracy)
        self.pending_evals: list[tuple[float, int, Any]] = []  # (time_s, version, future): evaluate()
        self.policy = build_policy(dict(sim.algorithm.aggregation))
        self.deadline_s = aggregation_deadline(sim.algorithm)
        self.stop_event = env.event()
        self.stop_reason = "sim_time_s"
        self.time_to_target_s: float | None = None
        self.target_rule = scenario.stop.target_rule()
        self.rolling = sim.algorithm.pruning.depth == "rolling"
        self.budgets = sim.budgets
        # A job's shape depends only on its device's plan: computed once per device (devices with equal
        # shapes share one), unless rolling depth windows move the plan from job to job.
        self.job_shapes: dict[int, JobShape] = {}
        self.shared_shapes: dict[tuple[Any, ...], JobShape] = {}
        self._build_server()

    def _build_server(self) -> None:
        env, hooks = self.env, self.hooks
        client_round = ClientRound(
            env, self.network, self.recorder, on_compute_start=None if getattr(hooks, "noop", False) else hooks.start,
            on_arrival=lambda job: server.job_arrived(job),
            on_failure=lambda job, outcome, reason: server.job_failed(job, outcome, reason),
        )
        server = self.server = Server(
            env, self.devices, self.policy, self.recorder, client_round, self.make_job, hooks,
            self.sim.workload.num_blocks, np.random.default_rng(self.seeds[1]), self.on_version,
        )
        # the server exists now: bound methods instead of the lambdas (one frame less per round)
        client_round.on_arrival, client_round.on_failure = server.job_arrived, server.job_failed
        self.switches = [OnlineSwitch(env, device, server) for device in self.devices]
        start_availability(env, self.scenario, self.devices, self.sim.base_dir, self.seeds[2], self.switches)
        self.fault_log = schedule_faults(env, self.scenario.faults, self.network, self.links, self.devices, server,
                                         self.switches, self.sim.fault_devices)

    # ------------------------------------------------------------------ what the loop calls back

    def make_job(self, device: Device, job_id: int, version: int) -> Job:
        """The server's job factory: the device's shape (computed once) and this dispatch's state."""
        shape = self.job_shapes.get(device.index)
        if shape is None:
            shape = self.job_shape(device)
        return Job(job_id, device, shape, version, self.env.now)

    def job_shape(self, device: Device) -> JobShape:
        """Sizes, steps and durations of a job on `device` under its plan (or its next rolling window)."""
        sim, plan = self.sim, self.plans[device.index]
        algorithm, workload = sim.algorithm, sim.workload
        budget = self.budgets[device.group]
        moving = self.rolling and plan.fits_memory and plan.depth < workload.num_blocks
        if moving:
            windows = self.planner.rolling_windows(budget, plan)
            plan = windows[(device.jobs + device.index) % len(windows)]
        steps = sim.steps(device.index)
        deadline = self.deadline_s
        if algorithm.local_work.fit_deadline and deadline is not None:
            comm_s = 2 * plan.model_bytes * 8 / (device.cap_bps or self.scenario.network.server.downlink_mbps * 1e6)
            affordable = math.floor(max(0.0, deadline - comm_s) / plan.step_time_s) if plan.step_time_s > 0 else steps
            steps = max(algorithm.local_work.min_steps, min(steps, affordable))
        upload_extra = workload.importance_bytes(plan.width_ratio) if algorithm.pruning.width == "importance" else 0
        # importance batches and the global-teacher pass run on the device too (planning.JobExtras)
        extra = self.planner.job_extras(budget, plan, steps, algorithm)
        batch = self.scenario.workload.batch_size
        fields = (
            workload.samples(device.index), plan.depth, plan.width_ratio, plan.trainable_from, steps,
            plan.params, plan.model_bytes + extra.download_bytes, plan.upload_bytes + upload_extra,
            max(plan.peak_memory_bytes, extra.peak_memory_bytes),
            steps * plan.step_time_s + extra.compute_s, steps * batch * plan.train_flops_per_sample + extra.flops,
        )
        shape = self.shared_shapes.get(fields)
        if shape is None:
            shape = self.shared_shapes[fields] = JobShape(*fields)
        if not moving:
            self.job_shapes[device.index] = shape
        return shape

    def on_version(self, version: int) -> None:
        """After each merge: evaluate when due, stop at ``stop.max_versions``."""
        scenario = self.scenario
        every = scenario.evaluation.every_versions
        if self.learner is not None and every is not None and version % every == 0:
            self.evaluate()
        if scenario.stop.max_versions is not None and version >= scenario.stop.max_versions:
            self.stop("max_versions")

    def evaluate(self) -> None:
        """Evaluate the global model (or replay the evaluation a resumed run recorded) and check the target.

        Without a target to check now, the evaluation runs in the learner's thread while the next
        jobs train (issue 16) and its row, with this instant's time and version, is recorded once it
        is done: at a later evaluation, a checkpoint or the end, in the order they were asked for."""
        if self.hooks.live and self.target_rule is None:  # type: ignore[union-attr]
            self.pending_evals.append((self.env.now, self.server.version, self.learner.evaluate_later()))
            self.settle_evals(wait=False)
            return
        self.settle_evals()
        if self.hooks.live:  # type: ignore[union-attr]
            result = self.learner.evaluate()  # type: ignore[union-attr]
            row: EvalRow = (self.env.now, self.server.version, result.accuracy, result.loss,
                            list(result.exit_accuracy))
        else:
            row = self.sim.replay.next_eval()
        self.record_eval(row)
        if self.target_rule is not None and self.time_to_target_s is None:
            reached_s = self.target_rule.observe(self.env.now, row[2])  # N consecutive evaluations (stop spec)
            if reached_s is not None:
                self.time_to_target_s = reached_s
                self.stop("target_accuracy")

    def settle_evals(self, wait: bool = True) -> None:
        """Record the evaluations started earlier, oldest first (`wait` False: only those done)."""
        while self.pending_evals and (wait or self.pending_evals[0][2].done()):
            now_s, version, future = self.pending_evals.pop(0)
            result = future.result()
            self.record_eval((now_s, version, result.accuracy, result.loss, list(result.exit_accuracy)))

    def record_eval(self, row: EvalRow) -> None:
        self.eval_rows.append(row)
        self.recorder.evals.append(*row)
        self.evals.append((row[0], row[1], row[2]))

    def stop(self, reason: str) -> None:
        if not self.stop_event.triggered:
            self.stop_reason = reason
            self.server.stopped = True  # events already queued at this instant change nothing more
            self.stop_event.succeed()

    # ------------------------------------------------------------------ the run, in order

    def execute(self) -> RunOutcome:
        self.start()
        interrupted, failure = self.loop()
        return self.finish(interrupted, failure)

    def start(self) -> None:
        """The first evaluation and the periodic processes (evaluation, stop timer, progress, checkpoints)."""
        env, sim, scenario = self.env, self.sim, self.scenario
        if self.learner is not None:
            self.evaluate()
            if scenario.evaluation.every_s is not None:
                env.process(_periodic(env, scenario.evaluation.every_s, self.evaluate))
        if scenario.stop.sim_time_s is not None:
            timer = env.timeout(scenario.stop.sim_time_s)
            timer.callbacks.append(lambda _ev: self.stop("sim_time_s"))
        if sim.progress is not None:
            env.process(self._report_progress())
        if sim.checkpoint_every_s is not None:
            env.process(self._checkpoints())
        self._progress(0.0, 0)

    def loop(self) -> tuple[bool, RunFailure | None]:
        """Run the event loop to the stop event; (interrupted, failure) of how it ended."""
        interrupted = False
        # Hide the setup's ~400k objects (torch, pydantic) from the cyclic GC while the loop runs: else
        # each full collection rescans them and GC takes half the loop's time. Timing-only loops make no
        # reference cycles at all (benchmarks/core_throughput.py), so there the collector is paused.
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        pause_gc = self.learner is None and gc.isenabled()
        if pause_gc:
            gc.disable()
        failure: RunFailure | None = None
        try:
            self.server.start()  # after the freeze: the first dispatch makes a job, view and round per device
            self.env.run(until=self.stop_event)
        except KeyboardInterrupt:
            interrupted = True  # keep what happened: finish the traces, then tell the caller
            self.stop_reason = "interrupted"
        except Exception as exc:  # noqa: BLE001 - a plug-in, a full disk, a bug: end as Ctrl-C does, say which
            if isinstance(exc, RuntimeError) and "No scheduled events left" in str(exc):
                self.stop_reason = "stalled: no device can do more work"
            else:
                failure = describe_failure(exc, self.sim.plugin_files())
                self.stop_reason = failure.stop_reason
        finally:
            if pause_gc:
                gc.enable()
            if freeze:
                gc.unfreeze()
        return interrupted, failure

    def finish(self, interrupted: bool, failure: RunFailure | None) -> RunOutcome:
        """Close the accounts and the traces, write summary.json; raise if the run did not complete."""
        sim, scenario, devices, server = self.sim, self.scenario, self.devices, self.server
        end_s = self.env.now
        try:
            self.settle_evals()
        except Exception as exc:  # noqa: BLE001 - an evaluation failed in the learner's thread
            failure = failure or describe_failure(exc, sim.plugin_files())
            self.stop_reason = failure.stop_reason
        server.finish()
        self._progress(end_s, server.version)
        close_device_accounts(devices, end_s, self.recorder)
        totals = write_device_rows(self.recorder, devices, end_s)
        try:
            self.recorder.close()
        except OSError as exc:  # the parts written so far stay readable; the failure is the write
            if failure is None or failure.kind != "write":
                failure = describe_failure(exc, sim.plugin_files())
                self.stop_reason = failure.stop_reason
        if self.learner is not None:
            self.learner.close()
        extra = plans_extra(sim.workload, scenario, sim.profiles, self.budgets, self.planner, devices, self.plans)
        summary = build_summary(
            scenario_name=scenario.name, algorithm=sim.algorithm.name, seed=scenario.seed,
            timing_only=self.learner is None, devices=devices, wall_s=end_s, versions=server.version, totals=totals,
            staleness=server.staleness_accepted, target_accuracy=scenario.stop.target_accuracy,
            time_to_target_s=self.time_to_target_s, final_accuracy=self._accuracy(),
            stop_reason=self.stop_reason,
            extra={**extra, "faults": self.fault_log,
                   "target_rule": self.target_rule.describe() if self.target_rule else None},
            complete=not interrupted and failure is None,
            group_plans=group_plans(scenario, sim.profiles, devices, self.plans),
        )
        try:
            write_json(sim.run_dir / "summary.json", summary)
        except OSError as exc:
            failure = failure or describe_failure(exc)
        if failure is not None:
            raise RunFailed(RunOutcome(sim.run_dir, summary), failure)
        if interrupted:
            raise RunInterrupted(RunOutcome(sim.run_dir, summary))
        return RunOutcome(sim.run_dir, summary)

    # ------------------------------------------------------------------ processes

    def _accuracy(self) -> float | None:
        self.settle_evals(wait=False)
        return self.evals[-1][2] if self.evals else None

    def _progress(self, sim_s: float, version: int) -> None:
        if self.sim.progress is not None:
            self.sim.progress(sim_s, version, self._accuracy())

    def _report_progress(self) -> Iterator[simpy.Event]:
        env, progress = self.env, self.sim.progress
        step = (self.scenario.stop.sim_time_s or 3600.0) / 200
        while True:
            yield env.timeout(step)
            progress(env.now, self.server.version, self._accuracy())  # type: ignore[misc]

    def _checkpoints(self) -> Iterator[simpy.Event]:
        """Every `checkpoint_every_s` simulated seconds: save (live) or, when replaying, go live
        at the tick where the checkpoint being resumed was taken."""
        env, sim, learner = self.env, self.sim, self.learner
        replay = sim.replay
        tick = 0
        while True:
            yield env.timeout(sim.checkpoint_every_s)
            tick += 1
            checkpoint = replay.checkpoint
            if not replay.live and checkpoint is not None and tick == checkpoint.tick:
                if learner is not None:
                    learner.restore(checkpoint.learner)
                    self.hooks.live = True
                replay.live = True
            if replay.live:
                self.settle_evals()
                self.recorder.flush()
                save_checkpoint(sim.run_dir, Checkpoint(
                    time_s=env.now, tick=tick, learner=learner.snapshot() if learner is not None else None,
                    evals=list(self.eval_rows),
                ))


def _periodic(env: simpy.Environment, every_s: float, fn: Callable[[], None]) -> Iterator[simpy.Event]:
    while True:
        yield env.timeout(every_s)
        fn()
