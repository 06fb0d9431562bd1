"""What is known before any run: the plan's scenarios are valid, and which kinds can hold the model.

The base and the catalogue are validated once, as the engine builds a run (``Simulation(...)``), on
the largest fleet the catalogue allows; an error names the catalogue entry at fault in the plan
file (``catalogue[1].link``), or the base scenario file.

Memory is then checked once per catalogue entry with the engine's own planner: the submodel a device
trains depends on its profile, power mode and overrides, the model and the algorithm's pruning —
never on how many devices there are — so an entry whose devices find no submodel that fits (the
planner's ``fits_memory=False``) is out of memory in every fleet. Such a device downloads the model
once, fails, and is excluded by the server; buying it adds price and never progress, so the search
holds these entries at their ``min_count`` (normally 0) and runs no fleet made only of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.config.algorithm import resolve_algorithm
from simulator.server.registry import policy_params
from simulator.config.loading import validate_data
from simulator.config.scenario import Scenario
from simulator.errors import InputError
from simulator.plan.fleets import Fleets
from simulator.plan.spec import LoadedPlan
from simulator.engine.world import device_budget

FLEET_SIZE_KEYS = ("k", "buffer_k", "clients_per_round")


@dataclass(frozen=True)
class KindPlan:
    """The planner's submodel for one catalogue entry."""

    label: str
    fits_memory: bool
    peak_memory_bytes: int
    usable_memory_bytes: int
    depth: int
    width_ratio: float

    def memory_text(self) -> str:
        return f"needs {self.peak_memory_bytes / 1e9:.2f} GB, {self.usable_memory_bytes / 1e9:.2f} GB usable"


@dataclass(frozen=True)
class Feasibility:
    kinds: list[KindPlan]
    min_devices: int            # devices that can train needed before any merge (aggregation k, …)
    min_devices_key: str | None  # which aggregation setting asks for them
    model_label: str

    def fits(self, index: int) -> bool:
        return self.kinds[index].fits_memory


def _readdress(err: InputError, loaded: LoadedPlan, group_entry: list[int]) -> InputError:
    """An error about fleet[i] concerns catalogue[entry]; anything else the base scenario."""
    field = err.field or ""
    if field.startswith("fleet[") and "]" in field:
        index = int(field[len("fleet["):field.index("]")])
        rest = field[field.index("]") + 1:]
        if index < len(group_entry):
            entry = group_entry[index]
            rest = {".count": ".max_count"}.get(rest, rest)
            where = f" [{err.file}]" if err.file and Path(err.file) != loaded.file else ""
            value = loaded.spec.catalogue[entry].profile if rest == ".profile" else err.value  # as written
            return InputError(f"{err.problem}{where}", file=loaded.file, field=f"catalogue[{entry}]{rest}",
                              value=value, accepted=err.accepted)
    if err.file is not None:
        return err
    if loaded.base_file is not None:
        return InputError(f"{err.problem} (base scenario)", file=loaded.base_file, field=field or None,
                          value=err.value, accepted=err.accepted)
    return InputError(err.problem, file=loaded.file, field=f"base.{field}" if field else "base",
                      value=err.value, accepted=err.accepted)


def _validation_counts(loaded: LoadedPlan, min_devices: int) -> tuple[int, ...]:
    """A small fleet with every entry in it (so each is checked) and as many devices as the algorithm
    needs to merge (so its fleet-size checks pass), within each entry's max_count where possible."""
    entries = loaded.spec.catalogue
    counts = [1] * len(entries)
    need = min_devices - len(entries)
    for i, entry in enumerate(entries):
        if need <= 0:
            break
        extra = min(need, max(0, entry.max_count - 1))
        counts[i] += extra
        need -= extra
    return tuple(counts)


def _min_devices(aggregation: dict[str, Any]) -> tuple[int, str | None]:
    best, key = 1, None
    for name in FLEET_SIZE_KEYS:
        value = aggregation.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > best:
            best, key = value, name
    return best, key


def _check_goal(loaded: LoadedPlan, scenario: Scenario, min_devices: int, key: str | None) -> None:
    """Goals no fleet of this catalogue could meet, whatever the runs would say."""
    spec = loaded.spec
    if spec.goal.target_accuracy is not None and scenario.timing_only:
        raise InputError("an accuracy goal needs training, but the base scenario is timing-only (timing_only: true)",
                         file=loaded.file, field="goal.target_accuracy", value=spec.goal.target_accuracy,
                         accepted="a versions goal ({versions: N, deadline_s: T}), or a base that may train")
    most = sum(e.max_count for e in spec.catalogue)
    if most < min_devices:
        raise InputError(
            f"no fleet of this catalogue can merge: the base's algorithm.aggregation.{key} is {min_devices}, "
            f"but the catalogue allows at most {most} devices", file=loaded.file, field="catalogue",
            value=most, accepted=f"max_count values adding up to at least {min_devices}, or a smaller "
                                 f"algorithm.aggregation.{key} in the base")


def _check_price(loaded: LoadedPlan, kinds: list["KindPlan"], min_devices: int) -> None:
    """max_price below the cheapest fleet that could train: no candidate could be run."""
    max_price = loaded.spec.constraints.max_price
    if max_price is None or not any(k.fits_memory for k in kinds):
        return   # nothing can hold the model: the plan reports that, with the out-of-memory kinds
    cheapest = _cheapest_price(loaded, kinds, min_devices)
    if cheapest is not None and cheapest > max_price:
        raise InputError(
            f"no fleet of this catalogue that can train is within max_price: the cheapest costs {cheapest:,.2f}",
            file=loaded.file, field="constraints.max_price", value=max_price,
            accepted=f"a max_price of at least {cheapest:,.2f}, lower min_count values, or cheaper entries "
                     "that can hold the model")


def _cheapest_price(loaded: LoadedPlan, kinds: list["KindPlan"], min_devices: int) -> float | None:
    """The price of the cheapest fleet honouring every min_count with enough devices that can hold the
    model for the algorithm to merge: the min_counts, then the cheapest units of kinds that fit."""
    entries = loaded.spec.catalogue
    price = sum(e.min_count * e.unit_price for e in entries)
    have = sum(e.min_count for e, k in zip(entries, kinds) if k.fits_memory)
    spare = sorted((e.unit_price, e.max_count - e.min_count) for e, k in zip(entries, kinds)
                   if k.fits_memory and e.max_count > e.min_count)
    need = max(min_devices, 1) - have
    for unit, available in spare:
        if need <= 0:
            break
        take = min(need, available)
        price += take * unit
        need -= take
    return price if need <= 0 else None


def check_plan(loaded: LoadedPlan, fleets: Fleets) -> Feasibility:
    """Validate the base and catalogue as runs, check the goal can be met at all, and plan each kind."""
    from simulator.engine.simulation import Simulation

    group_entry = list(range(len(fleets.entries)))
    stop = {"sim_time_s": loaded.spec.goal.deadline_s}
    timing_only = loaded.spec.goal.target_accuracy is None
    try:
        data = fleets.scenario(tuple(1 for _ in fleets.entries), stop, "plan-check")
        scenario = validate_data(data, Scenario)
        algorithm = resolve_algorithm(scenario.algorithm, policy_params)
        min_devices, key = _min_devices(algorithm.aggregation)
        _check_goal(loaded, scenario, min_devices, key)
        data = fleets.scenario(_validation_counts(loaded, min_devices), stop, "plan-check")
        scenario = validate_data(data, Scenario)
        simulation = Simulation(scenario, Path("."), base_dir=loaded.plan_dir, timing_only=timing_only)
    except InputError as err:
        if err.file is not None and Path(err.file) == loaded.file:
            raise
        raise _readdress(err, loaded, group_entry) from None
    kinds = _plan_kinds(simulation, fleets)
    _check_price(loaded, kinds, min_devices)
    return Feasibility(kinds, min_devices, key, simulation.workload.plan_model_label)


def _plan_kinds(simulation: Any, fleets: Fleets) -> list[KindPlan]:
    """The planner's choice per entry, as the engine makes it (memory only: fitting a round's deadline
    picks among the submodels that fit, so it never changes whether one does)."""
    scenario = simulation.scenario
    planner = simulation.make_planner()
    kinds = []
    for group, profile, label in zip(scenario.fleet, simulation.profiles, fleets.labels):
        budget = device_budget(profile, group.power_mode or profile.default_power_mode)
        choice = planner.choose(budget)
        kinds.append(KindPlan(label, choice.fits_memory, choice.peak_memory_bytes, budget.usable_memory_bytes,
                              choice.depth, choice.width_ratio))
    return kinds
