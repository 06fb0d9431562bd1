"""Scheduling the scenario's faults as SimPy processes (see simulator/config/faults.py for their meaning)."""

from __future__ import annotations

from typing import Any, Iterator

import simpy

from simulator.errors import InputError
from simulator.config.faults import DevicesOffline, LinkDown, ServerPause
from simulator.fleet.device import Device
from simulator.network import Link, Network


def _device_index(ref: int | str, devices: list[Device], field: str, file: str | None) -> int:
    if isinstance(ref, int) and 0 <= ref < len(devices):
        return ref
    for device in devices:
        if device.name == ref:
            return device.index
    raise InputError("unknown device", file=file, field=field, value=ref,
                     accepted=f"an index 0 … {len(devices) - 1} or a name like '{devices[0].name}'")


def schedule_faults(env: simpy.Environment, faults: list[Any], network: Network, links: dict[str, Link],
                    devices: list[Device], server: Any, switches: list[Any], file: str | None) -> list[dict[str, Any]]:
    """Start one process per fault; returns the log the summary reports (filled in as faults happen)."""
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
            indices = [_device_index(ref, devices, f"faults[{i}].devices[{k}]", file) for k, ref in enumerate(fault.devices)]
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
