"""Scheduling the scenario's faults as SimPy processes (see simulator/config/faults.py for their meaning)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from simulator.errors import InputError
from simulator.config.faults import DevicesOffline, LinkDown, ServerPause

if TYPE_CHECKING:  # types only: Simulation checks fault_device_indices before any of these is built
    import simpy

    from simulator.fleet.device import Device
    from simulator.network import Link, Network


def fault_device_indices(faults: list[Any], names: list[str], file: str | None) -> dict[int, list[int]]:
    """For each ``devices_offline`` fault (by its position in ``faults``), the indices of the devices it
    names (an index or a name such as ``jetson-tx2#3``); InputError naming the field for one that does
    not exist. The one place fault device references are checked."""
    index_of = {name: i for i, name in enumerate(names)}  # names are unique (engine.world.device_names)
    found: dict[int, list[int]] = {}
    for i, fault in enumerate(faults):
        if not isinstance(fault, DevicesOffline):
            continue
        found[i] = []
        for k, ref in enumerate(fault.devices):
            if isinstance(ref, int) and 0 <= ref < len(names):
                found[i].append(ref)
            elif isinstance(ref, str) and ref in index_of:
                found[i].append(index_of[ref])
            else:
                raise InputError("unknown device", file=file, field=f"faults[{i}].devices[{k}]", value=ref,
                                 accepted=f"an index 0 … {len(names) - 1} or a name like '{names[0]}'")
    return found


def schedule_faults(env: simpy.Environment, faults: list[Any], network: Network, links: dict[str, Link],
                    devices: list[Device], server: Any, switches: list[Any],
                    fault_devices: dict[int, list[int]]) -> list[dict[str, Any]]:
    """Start one process per fault; returns the log the summary reports (filled in as faults happen).
    ``fault_devices``: the checked device indices of each devices_offline fault (fault_device_indices)."""
    log: list[dict[str, Any]] = []
    for i, fault in enumerate(faults):
        entry: dict[str, Any] = {"kind": fault.kind, "start_s": fault.start_s, "end_s": fault.end_s}
        if isinstance(fault, LinkDown):
            targets = ([links["server_down"], links["server_up"]] if fault.link == "server"
                       else [links[f"ap:{fault.link}"]])
            entry["link"] = fault.link
            env.process(_link_down(env, fault, targets, network, devices, entry))
        elif isinstance(fault, ServerPause):
            env.process(_server_pause(env, fault, server))
        elif isinstance(fault, DevicesOffline):
            indices = fault_devices[i]
            entry["devices"] = [devices[k].name for k in indices]
            env.process(_devices_offline(env, fault, [switches[k] for k in indices]))
        log.append(entry)
    return log


def _link_down(env: simpy.Environment, fault: LinkDown, targets: list[Link], network: Network,
               devices: list[Device], entry: dict[str, Any]) -> Iterator[simpy.Event]:
    yield env.timeout(fault.start_s)
    saved = [link.capacity_bps for link in targets]
    for link in targets:
        network.set_capacity(link, 0.0)
    cut = 0
    if fault.drop_transfers:
        for device in devices:
            job = device.job
            round_ = job.process if job is not None else None
            transfer = getattr(round_, "transfer", None)
            if transfer is not None and any(link in targets for link in transfer.flow_class.links):
                round_.interrupt("lost:link down")
                cut += 1
    entry["transfers_cut"] = cut
    yield env.timeout(fault.end_s - fault.start_s)
    for link, capacity in zip(targets, saved):
        network.set_capacity(link, capacity)


def _server_pause(env: simpy.Environment, fault: ServerPause, server: Any) -> Iterator[simpy.Event]:
    yield env.timeout(fault.start_s)
    server.pause()
    yield env.timeout(fault.end_s - fault.start_s)
    server.resume()


def _devices_offline(env: simpy.Environment, fault: DevicesOffline, switches: list[Any]) -> Iterator[simpy.Event]:
    yield env.timeout(fault.start_s)
    for switch in switches:
        switch.go_offline()
    yield env.timeout(fault.end_s - fault.start_s)
    for switch in switches:
        switch.go_online()
