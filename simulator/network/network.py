"""The network: links shared max-min fairly, re-divided whenever a transfer starts or ends.

Why this shape: a fleet of 10,000 devices on 100 Wi-Fi cells must not cost O(cells) work per
transfer event. Transfers that cross the same links and have the same per-transfer cap (a device's
Ethernet port rate, or its Wi-Fi client limit) always get the same rate under max-min fairness, so
they form a *class* (:mod:`simulator.network.flows`) with one lazy virtual clock. A start, an end or
a cancel touches its class; :class:`~simulator.network.sharing.Sharing` re-divides only the classes
that change can affect and says whose rate moved; only those classes are advanced and re-armed.
Each class has its own completion timer.

Units: capacities in bit/s inside this package (scenario figures are Mbit/s = 10^6 bit/s); sizes in
bytes at the public API.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Iterable

import simpy

from simulator.environment import Environment
from simulator.network.flows import FlowClass, Link, Transfer
from simulator.network.sharing import INF, Sharing


class Network:
    """Owns every shared link and the transfers in flight; all transfers go through :meth:`transfer`."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._classes: dict[tuple[tuple[Link, ...], float | None], FlowClass] = {}
        self._seq = itertools.count()
        self.sharing = Sharing()

    # ------------------------------------------------------------------ public API

    def transfer(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None = None) -> Transfer:
        """Start moving `size_bytes` across all `links` at once, at most `cap_bps` for this transfer;
        the returned transfer is the event that succeeds when its last bit arrives."""
        flow_class = self._classes.get((links, cap_bps))
        if flow_class is None:
            flow_class = self._new_class(links, cap_bps)
        if size_bytes < 0:
            raise ValueError("a transfer cannot have a negative size")
        env = self.env
        now = env.now
        size_bits = float(size_bytes) * 8.0
        flow_class.advance(now, flow_class.rate_bps)
        transfer = Transfer(env, size_bits, flow_class, flow_class.virtual_bits + size_bits, now)
        if size_bits == 0:
            transfer.finished = True
            env.succeed_now(transfer)
            return transfer
        flow_class.push((transfer.finish_tag, next(self._seq), transfer))
        flow_class.active += 1
        flow_class.complete_due()
        self._redivide((flow_class,))
        return transfer

    def cancel(self, transfer: Transfer) -> float:
        """Abort a transfer (its device went offline); returns the bits it had received."""
        if transfer.finished or transfer.cancelled:
            return 0.0
        flow_class = transfer.flow_class
        flow_class.advance(self.env.now, flow_class.rate_bps)
        transfer.cancelled = True
        flow_class.active -= 1
        received = transfer.size_bits - max(0.0, transfer.finish_tag - flow_class.virtual_bits)
        self._redivide((flow_class,))
        return received

    def set_capacity(self, link: Link, capacity_bps: float) -> None:
        """Change a link's capacity from now on (0 while a fault holds it down); transfers across it
        stall at rate 0 and pick up again when capacity returns."""
        if capacity_bps < 0:
            raise ValueError("a link's capacity cannot be negative")
        link.capacity_bps = float(capacity_bps)
        self._apply(self.sharing.capacity_changed(link), ())

    def rate_bps(self, transfer: Transfer) -> float:
        """The rate the transfer gets right now."""
        return transfer.flow_class.rate_bps

    # ------------------------------------------------------------------ internals

    def _new_class(self, links: tuple[Link, ...], cap_bps: float | None) -> FlowClass:
        if not links and cap_bps is None:
            raise ValueError("a transfer needs at least one link or a cap")
        flow_class = FlowClass(links=links, cap_bps=cap_bps, own_bound=cap_bps if cap_bps is not None else INF,
                               updated_s=self.env.now, distinct_links=len(set(map(id, links))) == len(links))
        flow_class.on_timer = partial(self._on_timer, flow_class)
        self._classes[(links, cap_bps)] = flow_class
        return flow_class

    def _redivide(self, changed: tuple[FlowClass, ...]) -> None:
        """The `active` counts of `changed` moved: re-divide, then advance and re-arm what moved."""
        self._apply(self.sharing.update(changed), changed)

    def _apply(self, moved: list[tuple[FlowClass, float]], changed: Iterable[FlowClass]) -> None:
        """Bring each class whose rate moved to now at its old rate; re-arm it and the changed ones."""
        now = self.env.now
        for flow_class, old_rate in moved:
            flow_class.advance(now, old_rate)
            self._arm(flow_class, now)
        for flow_class in changed:
            self._arm(flow_class, now)

    def _arm(self, flow_class: FlowClass, now: float) -> None:
        """Make sure the class's timer fires when its head is due (or earlier); older ones go stale.
        Its clock must read `now`."""
        queue = flow_class.queue
        while queue and queue[0][2].cancelled:
            flow_class.pop()
        rate = flow_class.rate_bps
        if not queue or rate <= 0:
            # Nothing to complete at a positive rate: a pending timer is stale now, so forget it, or
            # a transfer started before it fires would wait on it and never complete.
            flow_class.timer = flow_class.timer_at = None
            return
        remaining_bits = queue[0][0] - flow_class.virtual_bits
        delay = (remaining_bits if remaining_bits > 0.0 else 0.0) / rate
        at = now + delay
        timer_at = flow_class.timer_at
        if timer_at is not None and now <= timer_at <= at:
            # The pending timer fires no later than needed; it re-arms then. Starting transfers only
            # ever push completions later, so this saves most timers.
            return
        flow_class.timer_at = at
        flow_class.timer = self.env.call_later(delay, flow_class.on_timer)

    def _on_timer(self, flow_class: FlowClass, timer: simpy.Event) -> None:
        if timer is not flow_class.timer:
            return  # stale: re-armed or disarmed since
        flow_class.timer = flow_class.timer_at = None
        now = self.env.now
        flow_class.advance(now, flow_class.rate_bps)
        active = flow_class.active
        if flow_class.complete_due() != active:
            self._redivide((flow_class,))
        else:
            self._arm(flow_class, now)  # early (its rate fell since it was armed)
