"""The network: links shared max-min fairly, re-divided whenever a transfer starts or ends.

Why this shape: a fleet of 10,000 devices starting their downloads at once must not cost
O(transfers) work per transfer event. Transfers that cross the same set of shared links and have the
same per-transfer cap (a device's own Ethernet port rate, or its Wi-Fi client limit) always get the
same rate under max-min fairness, so they form a *class* (:mod:`simulator.network.flows`); rates are
computed per class (:mod:`simulator.network.sharing`), and a start or an end costs
O(classes² + log transfers).

Units: capacities in bit/s inside this package (scenario figures are Mbit/s = 10^6 bit/s); sizes in
bytes at the public API.
"""

from __future__ import annotations

import itertools

import simpy

from simulator.environment import Environment
from simulator.network.flows import FlowClass, Link, Transfer
from simulator.network.sharing import INF, fill, fill_independent, lone_rate, share_no_link


class Network:
    """Owns every shared link and the transfers in flight; all transfers go through :meth:`transfer`."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._classes: dict[tuple[tuple[Link, ...], float | None], FlowClass] = {}
        self._class_list: list[FlowClass] = []  # the same classes, in creation order
        # the classes with transfers in flight (active > 0), as an ordered set
        self._busy: dict[FlowClass, None] = {}
        # whether the classes in `_busy` share no link (None: not known since `_busy` last changed)
        self._busy_independent: bool | None = None
        self._last_update_s = 0.0
        self._seq = itertools.count()
        # the completion timer that counts (any other that fires is stale) and when it fires
        self._timer: simpy.Event | None = None
        self._timer_at: float | None = None
        self._settle_pending = False

    # ------------------------------------------------------------------ public API

    def transfer(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None = None) -> Transfer:
        """Start moving `size_bytes` across all `links` at once; at most `cap_bps` for this transfer.

        The shares are re-divided at this instant, after everything already due at it: at once when
        nothing else is (the zero-delay settle event would be the very next one processed), else by
        one settle event however many transfers start or end at this instant."""
        transfer = self._start(links, size_bytes, cap_bps)
        if not transfer.finished and not self._settle_pending:
            if self.env.nothing_else_now():
                self._settle()
            else:
                self._request_settle()
        return transfer

    def cancel(self, transfer: Transfer) -> float:
        """Abort a transfer (its device went offline); returns the bits it had received."""
        if transfer.finished or transfer.cancelled:
            return 0.0
        self._advance()
        transfer.cancelled = True
        flow_class = transfer.flow_class
        flow_class.active -= 1
        if not flow_class.active:
            self._set_idle(flow_class)
        received = transfer.size_bits - max(0.0, transfer.finish_tag - flow_class.virtual_bits)
        if not self._settle_pending:
            self._request_settle()
        return received

    def set_capacity(self, link: Link, capacity_bps: float) -> None:
        """Change a link's capacity from now on (0 while a fault holds it down); transfers across it
        stall at rate 0 and pick up again when capacity returns."""
        if capacity_bps < 0:
            raise ValueError("a link's capacity cannot be negative")
        self._advance()
        link.capacity_bps = float(capacity_bps)
        self._request_settle()

    def rate_bps(self, transfer: Transfer) -> float:
        """The rate the transfer gets right now (after pending re-division)."""
        if self._settle_pending:
            self._settle()
        return transfer.flow_class.rate_bps

    # ------------------------------------------------------------------ internals

    def _start(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None) -> Transfer:
        if size_bytes < 0:
            raise ValueError("a transfer cannot have a negative size")
        if not links and cap_bps is None:
            raise ValueError("a transfer needs at least one link or a cap")
        self._advance()
        flow_class = self._classes.get((links, cap_bps))
        if flow_class is None:
            flow_class = self._new_class(links, cap_bps)
        size_bits = float(size_bytes) * 8.0
        now = self.env.now
        transfer = Transfer(self.env, size_bits, flow_class, flow_class.virtual_bits + size_bits, now)
        if size_bits == 0:
            transfer.finished = True
            self.env.succeed_now(transfer)
            return transfer
        flow_class.push((transfer.finish_tag, next(self._seq), transfer))
        if not flow_class.active:
            self._busy[flow_class] = None
            self._busy_independent = None  # the set changed: ask share_no_link again
        flow_class.active += 1
        return transfer

    def _new_class(self, links: tuple[Link, ...], cap_bps: float | None) -> FlowClass:
        flow_class = FlowClass(
            links=links, cap_bps=cap_bps, own_bound=cap_bps if cap_bps is not None else INF,
            distinct_links=len({id(link) for link in links}) == len(links),
        )
        self._classes[(links, cap_bps)] = flow_class
        self._class_list.append(flow_class)
        return flow_class

    def _set_idle(self, flow_class: FlowClass) -> None:
        """The class has nothing in flight any more: it has no rate until a transfer starts in it."""
        del self._busy[flow_class]
        self._busy_independent = None  # the set changed: ask share_no_link again
        flow_class.rate_bps = 0.0

    def _advance(self) -> None:
        """Move every busy class's virtual clock to now at its current rate."""
        now = self.env.now
        dt = now - self._last_update_s
        if dt > 0:
            for flow_class in self._busy:
                flow_class.virtual_bits += flow_class.rate_bps * dt
        self._last_update_s = now

    def _request_settle(self) -> None:
        """Re-divide once per simulated instant, however many transfers start or end in it."""
        if self._settle_pending:
            return
        self._settle_pending = True
        self.env.call_later(0, self._on_settle_event)

    def _on_settle_event(self, _event: simpy.Event) -> None:
        if self._settle_pending:
            self._settle()

    def _settle(self) -> None:
        """Advance the clocks, complete due transfers, re-divide, re-arm the timer: one pass per step.

        The same floating-point operations in the same order as advancing every class, then
        completing every class, then dividing (fused per class, since no step of one class reads
        another's), so rates and completion times are bit-for-bit those of separate passes.
        """
        self._settle_pending = False
        now = self.env.now
        dt = now - self._last_update_s
        self._last_update_s = now
        busy = self._busy
        if len(busy) == 1:
            for lone in busy:
                if lone.distinct_links:
                    self._settle_lone(lone, dt)
                    return
        pending = []
        for flow_class in self._class_list:
            if flow_class.active:  # an idle class has rate 0 and at most cancelled transfers queued
                if flow_class.advance_and_complete(dt):
                    pending.append(flow_class)
                else:
                    self._set_idle(flow_class)
        if pending:
            independent = self._busy_independent  # `busy` holds exactly the pending classes now
            if independent is None:
                independent = self._busy_independent = share_no_link(busy)
            for flow_class, rate in zip(pending, (fill_independent if independent else fill)(pending)):
                flow_class.rate_bps = rate
        self._schedule_next_completion()

    def _settle_lone(self, flow_class: FlowClass, dt: float) -> None:
        """:meth:`_settle` when `flow_class` is the only class in flight: every other class is idle, with
        rate 0 and at most cancelled transfers queued (left for a later general settle to pop; they
        change no number). Advance, complete what is due, take the single-class rate, re-arm."""
        if not flow_class.advance_and_complete(dt):
            self._set_idle(flow_class)
            self._arm_timer(INF)
            return
        bound = flow_class.rate_bps = lone_rate(flow_class)
        if bound > 0:
            remaining_bits = flow_class.queue[0][0] - flow_class.virtual_bits
            self._arm_timer((remaining_bits if remaining_bits > 0.0 else 0.0) / bound)
        else:
            self._arm_timer(INF)

    def _schedule_next_completion(self) -> None:
        delay = INF
        for flow_class in self._class_list:
            queue = flow_class.queue
            while queue and queue[0][2].cancelled:
                flow_class.pop()
            if queue and flow_class.rate_bps > 0:
                remaining_bits = queue[0][0] - flow_class.virtual_bits
                candidate = (remaining_bits if remaining_bits > 0.0 else 0.0) / flow_class.rate_bps
                if candidate < delay:
                    delay = candidate
        self._arm_timer(delay)

    def _arm_timer(self, delay: float) -> None:
        """Make sure a timer fires `delay` from now (or earlier); every older timer goes stale."""
        if delay == INF:
            # Nothing left to complete: a pending timer is stale now, so forget it, or a transfer
            # started before it fires would wait on it and never complete.
            self._timer = self._timer_at = None
            return
        now = self.env.now
        at = now + delay
        timer_at = self._timer_at
        if timer_at is not None and now <= timer_at <= at:
            # The pending timer fires no later than needed; it will settle and re-arm then. Starting
            # transfers only ever push completions later, so this saves most timers.
            return
        self._timer_at = at
        self._timer = self.env.call_later(delay, self._on_timer)

    def _on_timer(self, timer: simpy.Event) -> None:
        if timer is not self._timer:
            return  # stale: re-armed or disarmed since
        self._timer = self._timer_at = None
        if not self._settle_pending:
            self._settle()
