"""Builds the simulated world from a Scenario, runs it to the stop condition, writes the run folder.

The one place where config, network, fleet, server and learning meet. Everything random draws from
its own ``numpy.random.Generator`` spawned from the scenario seed (selection, latency jitter, churn),
so the trace is a function of (scenario, seed) alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from simulator.config.algorithm import resolve_algorithm
from simulator.config.scenario import Scenario
from simulator.engine.failure import scenario_plugin_files
from simulator.engine.faults import fault_device_indices
from simulator.engine.planning import Planner, SubmodelChoice, exit_mode, local_steps
from simulator.engine.workload_info import WorkloadInfo, describe_workload
from simulator.engine.world import aggregation_deadline, device_names, group_budgets, load_profiles, optimizer_kind
from simulator.errors import InputError
from simulator.output.checkpoint import ReplayClock
from simulator.server.registry import policy_params

if TYPE_CHECKING:
    from simulator.engine.failure import RunOutcome
    from simulator.fleet.device import Device
    from simulator.output.checkpoint import Checkpoint

ProgressFn = Callable[[float, int, float | None], None]  # (sim_s, versions, accuracy)


class Simulation:
    """One run: build with a validated scenario (every check that needs the built profiles happens
    here, before any output is written), then :meth:`run`.

    Not a dataclass: two simulations of the same scenario are two runs and never compare equal.
    """

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
        refuse_pruned_user_models(scenario.workload, self.algorithm, scenario_file)
        self.profiles = load_profiles(scenario, self.base_dir, scenario_file)
        self.budgets = group_budgets(scenario, self.profiles)  # the planner's view of each group's devices
        self._check_k()
        self.fault_devices = self._resolve_fault_devices()
        self.workload: WorkloadInfo = describe_workload(scenario, self.base_dir, timing_only, scenario_file)

    def _resolve_fault_devices(self) -> dict[int, list[int]]:
        """Devices named by faults must exist: checked here, once, before any output is written; the
        run's fault processes take the indices found (engine.faults.fault_device_indices)."""
        return fault_device_indices(self.scenario.faults, device_names(self.scenario, self.profiles), self.file)

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

    def plans(self, devices: list[Device]) -> list[SubmodelChoice]:
        """Each device's submodel (identical devices share a cached choice)."""
        w = self.workload
        planner = self.make_planner()
        deadline = aggregation_deadline(self.algorithm)
        choices = []
        for device in devices:
            budget = self.budgets[device.group]
            steps = self.steps(device.index)
            compute_budget = None
            if deadline is not None:
                full = planner.evaluate(budget, 1.0, w.num_blocks)
                comm_s = 2 * full.model_bytes * 8 / (device.cap_bps or self.scenario.network.server.downlink_mbps * 1e6)
                compute_budget = max(0.0, deadline - comm_s)
            choices.append(planner.choose(budget, compute_budget, steps))
        self.planner = planner
        return choices

    def steps(self, index: int) -> int:
        """Local steps of a job on device `index` (its shard, the workload's epochs or fixed steps)."""
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
        # here, not at the top: validate, explain and plan build a Simulation and never run it, and the
        # run's world (SimPy loop, server, run-folder lock, trace writers) costs them ~0.1 s to import
        from simulator.engine.run import SimulationRun

        if self.timing_only:
            return SimulationRun(self).execute()
        from simulator.learning.trainer import single_thread  # torch: training runs only

        with single_thread():
            return SimulationRun(self).execute()

    def plugin_files(self) -> dict[str, str]:
        """The scenario's plug-in files, for naming a failing plug-in (engine.failure)."""
        return scenario_plugin_files(self.scenario)


def refuse_pruned_user_models(workload: Any, algorithm: Any, file: str | None) -> None:
    """Width or depth pruning needs a block model: a ``module:Class`` that is a plain ``nn.Module`` is
    wrapped whole (one block, no prunable axes), so a pruning preset with it is refused before anything
    runs — by ``fleetsim validate`` too — instead of the run failing when it first builds a submodel.
    A block-model builder (a callable taking ``width_ratio``) is prunable. Telling the two apart
    imports the user's module (validate without --import-plugins checks its stand-in, a builder, so
    it cannot tell and says so). `workload` is a WorkloadSpec, `algorithm` a ResolvedAlgorithm."""
    pruning = algorithm.pruning
    cuts = [f"{axis}: {how}" for axis, how in (("width", pruning.width), ("depth", pruning.depth)) if how != "none"]
    if not cuts:
        return
    for key, spec in (("workload.model", workload.model), ("workload.train_model", workload.train_model)):
        if spec is None or spec.is_builtin:
            continue
        from simulator.learning.models.user import user_model_is_prunable  # torch: only for user models

        if not user_model_is_prunable(spec.name):
            raise InputError(
                f"algorithm '{algorithm.name}' prunes ({', '.join(cuts)}), but {key} '{spec.name}' is a plain "
                "nn.Module, which fleetsim trains whole (one block, no prunable axes); change algorithm.name "
                "to a preset that does not prune, or set algorithm.pruning to {width: none, depth: none}, or "
                "make it a block-model builder (README, 'Your own model')",
                file=file, field="algorithm.name", value=algorithm.name,
                accepted="fedavg, fedasync, fedbuff (no pruning) with a plain nn.Module model",
            )
