"""Building the simulated world from a scenario: profiles, budgets, links, devices, availability.

Pure construction, no running: the engine calls these once per run, in a fixed order, so that the
random streams (latency, churn) are drawn identically every time. The checks a Simulation makes
before a run (profiles, budgets, device names) need none of the SimPy side: the builders import the
fleet and the network themselves, so `fleetsim validate` and `explain` do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.config.algorithm import ResolvedAlgorithm
from simulator.config.profiles import DeviceProfile, StepPoint, apply_overrides, load_profile
from simulator.config.scenario import AlwaysOn, AvailabilityTrace, Churn, Scenario
from simulator.errors import InputError
from simulator.engine.planning import DeviceBudget

if TYPE_CHECKING:
    import simpy

    from simulator.fleet.device import Device
    from simulator.fleet.online import OnlineSwitch
    from simulator.network import Link, Network


def optimizer_kind(scenario: Scenario) -> str:
    opt = scenario.workload.optimizer
    if opt.name == "adam":
        return "adam"
    return "momentum" if opt.momentum > 0 else "sgd"


def load_profiles(scenario: Scenario, base_dir: Path, file: str | None) -> list[DeviceProfile]:
    profiles = []
    loaded: dict[str, DeviceProfile] = {}  # a profile named by many groups (one per Wi-Fi cell) is read once
    for i, group in enumerate(scenario.fleet):
        try:
            profile = loaded.get(group.profile) or loaded.setdefault(group.profile, load_profile(group.profile, base_dir))
        except InputError as err:
            if err.field is None:
                err.field = f"fleet[{i}].profile"
            raise err.with_file(file) if file else err
        if group.overrides:
            profile = apply_overrides(profile, group.overrides, file=file, field_prefix=f"fleet[{i}].overrides")
        if group.power_mode is not None and group.power_mode not in profile.power_modes:
            raise InputError(
                "unknown power mode for this profile", file=file, field=f"fleet[{i}].power_mode",
                value=group.power_mode, accepted=", ".join(profile.power_modes),
            )
        profiles.append(profile)
    return profiles


def device_budget(profile: DeviceProfile, mode: str) -> DeviceBudget:
    """The planner's view of one device: its profile's capacities in power `mode`, and its measured
    step times, looked up by the whole point the planner asks for (simulator.config.measured)."""
    def measured(point: StepPoint) -> float | None:
        return profile.lookup_measured_step_s(point, power_mode=mode)

    return DeviceBudget(
        usable_memory_bytes=int(profile.usable_memory_bytes),
        effective_flops=float(profile.effective_flops(mode)),
        memory_bandwidth_bytes_per_s=float(profile.mode_memory_bandwidth_bytes_per_s(mode)),
        step_overhead_s=float(profile.compute.step_overhead_s),
        measured_step_s=measured if profile.measured_step_times else None,
        elementwise_efficiency=float(profile.compute.elementwise_efficiency),
        op_overhead_s=float(profile.compute.op_overhead_s),
        gemm_tile_width=int(profile.compute.gemm_tile_width),
        dtype=str(profile.compute.precision),
    )


def group_budgets(scenario: Scenario, profiles: list[DeviceProfile]) -> dict[int, DeviceBudget]:
    """Each fleet group's device budget: its devices share its profile and power mode, so one object
    per group serves them all (the planner's caches key on the budget: one per device, each with its
    own closure, never hit; a 100,000-device set-up built 200,000 of them)."""
    return {g: device_budget(p, scenario.fleet[g].power_mode or p.default_power_mode) for g, p in enumerate(profiles)}


def aggregation_deadline(algorithm: ResolvedAlgorithm) -> float | None:
    value = algorithm.aggregation.get("deadline_s")
    return float(value) if value is not None else None


def device_names(scenario: Scenario, profiles: list[DeviceProfile]) -> list[str]:
    """Every device's name, in index order: its group's label (the group's `name`, else its
    profile's name) and a number counted over all the groups with that label, so that two groups of
    one profile give ``jetson-tx2#0 … #9`` and ``jetson-tx2#10 … #19``, never two ``jetson-tx2#0``.
    Names must be unique: faults, reports and exports name devices by them."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for group, profile in zip(scenario.fleet, profiles):
        label = group.name or profile.name
        first = seen.get(label, 0)
        names.extend(f"{label}#{k}" for k in range(first, first + group.count))
        seen[label] = first + group.count
    return names


def build_devices(scenario: Scenario, profiles: list[DeviceProfile], network_links: dict[str, Link],
                  rng_root: np.random.SeedSequence) -> list[Device]:
    """Every device of the fleet, with its links, power and a shared latency stream."""
    from simulator.fleet.device import Device  # a run's only (see the module's docstring)

    net = scenario.network
    devices: list[Device] = []
    latency_seeds = rng_root.spawn(1)[0]
    latency_rng = np.random.default_rng(latency_seeds)
    names = device_names(scenario, profiles)
    for g, (group, profile) in enumerate(zip(scenario.fleet, profiles)):
        mode = group.power_mode or profile.default_power_mode
        if group.link == "ethernet":
            down = (network_links["server_down"],)
            up = (network_links["server_up"],)
            cap = net.ethernet.rate_mbps * 1e6
            latency = net.ethernet.latency
        else:
            ap = network_links[f"ap:{group.link}"]
            down = (ap, network_links["server_down"])
            up = (ap, network_links["server_up"])
            spec = net.access_points[group.link]
            cap = spec.max_client_mbps * 1e6 if spec.max_client_mbps else None
            latency = spec.latency
        for _ in range(group.count):
            devices.append(
                Device(
                    index=len(devices), name=names[len(devices)], profile_name=profile.name, group=g, power_mode=mode,
                    usable_memory_bytes=int(profile.usable_memory_bytes),
                    busy_power_w=float(profile.busy_power_w(mode)), idle_power_w=float(profile.idle_power_w),
                    down_links=down, up_links=up, cap_bps=cap, latency_mean_s=latency.mean_ms / 1e3,
                    latency_jitter_s=latency.jitter_ms / 1e3, latency_distribution=latency.distribution,
                    rng=latency_rng,
                )
            )
    return devices


def build_network(env: simpy.Environment, scenario: Scenario) -> tuple[Network, dict[str, Link]]:
    """The shared links: server downlink and uplink, one per access point (Ethernet ports are caps)."""
    from simulator.network import Link, Network  # a run's only (see the module's docstring)

    net = scenario.network
    links: dict[str, Link] = {
        "server_down": Link("server-downlink", net.server.downlink_mbps * 1e6),
        "server_up": Link("server-uplink", net.server.uplink_mbps * 1e6),
    }
    for name, ap in net.access_points.items():
        links[f"ap:{name}"] = Link(f"ap-{name}", ap.capacity_mbps * 1e6)
    return Network(env), links


def start_availability(env: simpy.Environment, scenario: Scenario, devices: list[Device], base_dir: Path,
                       seed: np.random.SeedSequence, switches: list[OnlineSwitch]) -> None:
    """One process per device that is not always on, walking its offline intervals."""
    from simulator.fleet.availability import availability_process, churn_intervals, load_trace  # a run's only

    group_seeds = seed.spawn(len(scenario.fleet))
    for g, group in enumerate(scenario.fleet):
        spec = group.availability
        if isinstance(spec, AlwaysOn):
            continue
        members = [d for d in devices if d.group == g]
        if isinstance(spec, Churn):
            rngs = [np.random.default_rng(s) for s in group_seeds[g].spawn(len(members))]
            sources = [churn_intervals(spec, rng) for rng in rngs]
        else:
            assert isinstance(spec, AvailabilityTrace)
            sources = [iter(x) for x in load_trace(spec, base_dir, g, len(members))]
        for device, intervals in zip(members, sources):
            switch = switches[device.index]
            env.process(availability_process(env, intervals, switch.go_offline, switch.go_online))
