"""Taking a device offline and back: churn, availability traces and faults share one switch."""

from __future__ import annotations

from typing import Any

import simpy

from simulator.fleet.device import Device


class OnlineSwitch:
    """Takes a device offline and back, however many causes overlap (churn, a trace, a fault).

    Going offline interrupts the work in hand (the job is lost); the offline interval is recorded when
    the last cause ends.
    """

    def __init__(self, env: simpy.Environment, device: Device, server: Any) -> None:
        self.env = env
        self.device = device
        self.server = server
        self.holds = 0

    def go_offline(self) -> None:
        self.holds += 1
        if self.holds > 1:
            return
        device = self.device
        device.online = False
        device.offline_since_s = self.env.now
        if device.job is not None and device.job.process is not None and device.job.process.is_alive:
            device.job.process.interrupt("lost:offline")

    def go_online(self) -> None:
        self.holds -= 1
        if self.holds > 0:
            return
        device, now = self.device, self.env.now
        device.online = True
        if device.offline_since_s is not None:
            device.offline_s += now - device.offline_since_s
            self.server.recorder.events.append(device.index, "offline", device.offline_since_s, now, -1, -1, 0, 0.0,
                                               "offline")
            device.offline_since_s = None
        self.server.device_ready(device)
