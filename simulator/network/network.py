"""The network: links shared max-min fairly, re-divided whenever a transfer starts or ends.

Why this shape: a fleet of 100,000 devices on 1,000 Wi-Fi cells must not cost O(cells) work per
transfer event. Transfers that cross the same links and have the same per-transfer cap (a device's
Ethernet port rate, or its Wi-Fi client limit) always get the same rate under max-min fairness, so
they form a *class* (:mod:`simulator.network.flows`) with a lazy virtual clock. A start, an end or a
cancel touches its class; :class:`~simulator.network.incremental.Sharing` re-divides only the classes
that change can affect and says which rates moved: only those clocks are advanced and re-armed (one
completion timer each). The classes of a *star* (at one link's fair share) share one clock: O(1).

Units: capacities in bit/s inside this package (scenario figures are Mbit/s = 10^6 bit/s); sizes in
bytes at the public API.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Iterable

import simpy

from simulator.environment import Environment
from simulator.network.flows import Clock, FlowClass, Link, LinkLevel, Transfer
from simulator.network.heads import complete_members, push_head, star_due
from simulator.network.incremental import Sharing
from simulator.network.sharing import INF, REL_EPS


class Network:
    """Owns every shared link and the transfers in flight; all transfers go through :meth:`transfer`."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._classes: dict[tuple[tuple[Link, ...], float | None], FlowClass] = {}
        self._seq = itertools.count()
        self.sharing = Sharing(new_star=self._new_star)

    # ------------------------------------------------------------------ public API

    def transfer(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None = None) -> Transfer:
        """Start moving `size_bytes` across all `links` at once, at most `cap_bps` for this transfer;
        the returned transfer is the event that succeeds when its last bit arrives."""
        return self.transfer_in(self.route(links, cap_bps), size_bytes)

    def route(self, links: tuple[Link, ...], cap_bps: float | None = None) -> FlowClass:
        """The flow class of transfers across `links` at most `cap_bps` each (made the first time): a
        caller starting many on one path keeps it for :meth:`transfer_in` (no key built and hashed)."""
        flow_class = self._classes.get((links, cap_bps))
        return self._new_class(links, cap_bps) if flow_class is None else flow_class

    def transfer_in(self, flow_class: FlowClass, size_bytes: float) -> Transfer:
        """:meth:`transfer` on the path of a class from :meth:`route`."""
        if size_bytes < 0:
            raise ValueError("a transfer cannot have a negative size")
        env = self.env
        now = env.now
        size_bits = float(size_bytes) * 8.0
        star = flow_class.star
        if star is None:  # its own clock: Clock.advance, written out (twice per client-round)
            dt = now - flow_class.updated_s
            if dt > 0:
                flow_class.virtual_bits += flow_class.rate_bps * dt
            flow_class.updated_s = now
            virtual_bits = flow_class.virtual_bits
        else:
            virtual_bits = star.advance(now, star.rate_bps) + flow_class.offset
        transfer = Transfer(env, size_bits, flow_class, virtual_bits + size_bits, now)
        if size_bits == 0:
            transfer.finished = True
            env.succeed_now(transfer)
            return transfer
        flow_class.push((transfer.finish_tag, next(self._seq), transfer))
        flow_class.active += 1
        tag, _, head = flow_class.queue[0]
        if head.cancelled or not tag - virtual_bits > REL_EPS * (tag if tag > 1.0 else 1.0):
            flow_class.complete_due(virtual_bits)  # one is due already (its timer has not fired yet)
        sharing = self.sharing  # _redivide_one, written out
        if sharing.update_one(flow_class) and not sharing.old and not sharing.moves:
            self._arm_class(flow_class, now)
        else:
            self._settle(sharing.old, sharing.moves, (flow_class,), now)
        return transfer

    def cancel(self, transfer: Transfer) -> float:
        """Abort a transfer (its device went offline); returns the bits it had received."""
        if transfer.finished or transfer.cancelled:
            return 0.0
        now = self.env.now
        flow_class = transfer.flow_class
        virtual_bits = _read(flow_class, now)
        transfer.cancelled = True
        flow_class.active -= 1
        self._redivide_one(flow_class, now)
        return transfer.size_bits - max(0.0, transfer.finish_tag - virtual_bits)

    def set_capacity(self, link: Link, capacity_bps: float) -> None:
        """Change a link's capacity from now on (0 while a fault holds it down); transfers across it
        stall at rate 0 and pick up again when capacity returns."""
        if capacity_bps < 0:
            raise ValueError("a link's capacity cannot be negative")
        link.capacity_bps = float(capacity_bps)
        old_rates, moves = self.sharing.capacity_changed(link)
        self._apply(old_rates, moves, (), self.env.now)
        old_rates.clear()
        moves.clear()

    def received_bits(self, transfer: Transfer) -> float:
        """Bits the transfer has received so far; it goes on (:meth:`cancel` reads the same and stops
        it). The run's end books transfers still under way with it."""
        if transfer.finished:
            return transfer.size_bits
        if transfer.cancelled:
            return 0.0
        virtual_bits = _read(transfer.flow_class, self.env.now)
        return transfer.size_bits - max(0.0, transfer.finish_tag - virtual_bits)

    def rate_bps(self, transfer: Transfer) -> float:
        """The rate the transfer gets right now."""
        return (transfer.flow_class.star or transfer.flow_class).rate_bps

    # ------------------------------------------------------------------ internals

    def _new_star(self, link: Link) -> LinkLevel:
        star = LinkLevel(link, self.env.now)
        star.on_timer = partial(self._on_star_timer, star)
        return star

    def _new_class(self, links: tuple[Link, ...], cap_bps: float | None) -> FlowClass:
        if not links and cap_bps is None:
            raise ValueError("a transfer needs at least one link or a cap")
        flow_class = FlowClass(links=links, cap_bps=cap_bps, own_bound=cap_bps if cap_bps is not None else INF,
                               updated_s=self.env.now, distinct_links=len(set(map(id, links))) == len(links))
        flow_class.on_timer = partial(self._on_class_timer, flow_class)
        self._classes[(links, cap_bps)] = flow_class
        self.sharing.add_class(flow_class)
        return flow_class

    def _redivide_one(self, flow_class: FlowClass, now: float) -> None:
        """:meth:`_redivide` of one class whose clock reads now (at a start, an end, a cancel)."""
        sharing = self.sharing
        if sharing.update_one(flow_class) and not sharing.old and not sharing.moves:
            self._arm_class(flow_class, now)  # it alone moved, at a rate of its own
        else:
            self._settle(sharing.old, sharing.moves, (flow_class,), now)

    def _redivide(self, changed: tuple[FlowClass, ...] | list[FlowClass], now: float) -> None:
        """The `active` counts of `changed` moved (their clocks read now): re-divide, then advance and
        re-arm what moved."""
        self._settle(*self.sharing.update(changed), changed, now)

    def _settle(self, old_rates: dict, moves: dict, changed: tuple[FlowClass, ...] | list[FlowClass],
                now: float) -> None:
        """Advance and re-arm what a re-division moved (its report), then clear the report."""
        if moves:
            self._apply(old_rates, moves, changed, now)
            old_rates.clear()
            moves.clear()
            return
        # No class changed clocks (the usual case): only rates moved.
        armed: dict[Clock, None] = {}  # clocks armed here, their heads unchanged since
        for clock, old_rate in old_rates.items():
            if clock.rate_bps != old_rate:
                if clock.updated_s != now:
                    clock.advance(now, old_rate)
                if clock not in changed:  # (_arm, its dispatch written out: once per change)
                    (self._arm_class if type(clock) is FlowClass else self._arm_star)(clock, now)  # type: ignore[operator]
                    armed[clock] = None
        for flow_class in changed:
            star = flow_class.star
            if star is None:
                self._arm_class(flow_class, now)
            elif push_head(flow_class, star, self._seq) or star not in armed:  # its head may have changed
                self._arm_star(star, now)  # (else arming again would find the same head and keep its timer)
                armed[star] = None
        old_rates.clear()

    def _apply(self, old_rates: dict, moves: dict, changed: Iterable[FlowClass], now: float) -> None:
        """Bring every clock whose rate moved to now at its old rate, carry moved classes' virtual
        bits from their old clock to their new one, and re-arm what changed."""
        touched: dict[Clock, None] = {}
        for clock, old_rate in old_rates.items():
            if clock.rate_bps != old_rate:
                clock.advance(now, old_rate)
                touched[clock] = None
        for flow_class, old_star in moves.items():
            new_star = flow_class.star
            if new_star is old_star:
                continue
            source = old_star or flow_class
            source.advance(now, source.rate_bps)  # a moved rate was advanced above (no-op here)
            virtual_bits = source.virtual_bits + (flow_class.offset if old_star is not None else 0.0)
            if new_star is None:
                flow_class.virtual_bits, flow_class.updated_s, flow_class.offset = virtual_bits, now, 0.0
                touched[flow_class] = None
            else:
                new_star.advance(now, new_star.rate_bps)
                flow_class.offset = virtual_bits - new_star.virtual_bits
                flow_class.timer = None  # its own clock rests: a timer of its own is stale now
                push_head(flow_class, new_star, self._seq)
                touched[new_star] = None
            if old_star is not None:
                touched[old_star] = None
        for flow_class in changed:
            star = flow_class.star
            if star is None:
                touched[flow_class] = None
            elif flow_class not in moves:
                push_head(flow_class, star, self._seq)  # its head may have changed
                touched[star] = None
        for clock in touched:
            self._arm(clock, now)

    def _arm(self, clock: Clock, now: float) -> None:
        """Make sure `clock`'s completion timer fires when its next completion is due (or earlier);
        the clock must read `now`."""
        if type(clock) is FlowClass:
            self._arm_class(clock, now)  # type: ignore[arg-type]
        else:
            self._arm_star(clock, now)  # type: ignore[arg-type]

    def _arm_class(self, flow_class: FlowClass, now: float) -> None:
        """:meth:`_arm` of a class on a clock of its own: its head's finish tag."""
        if flow_class.star is not None:  # its own clock rests: the star's counts
            flow_class.timer = None
            return
        queue = flow_class.queue
        while queue and queue[0][2].cancelled:
            flow_class.pop()
        rate = flow_class.rate_bps
        if not queue or rate <= 0:
            # Nothing to complete at a positive rate: a pending timer is stale now, so forget it, or
            # a transfer started before it fires would wait on it and never complete.
            flow_class.timer = None
            return
        remaining_bits = queue[0][0] - flow_class.virtual_bits
        at = now + (remaining_bits if remaining_bits > 0.0 else 0.0) / rate
        # a pending timer firing no later is kept: it re-arms when it fires (starts only delay the head)
        if flow_class.timer is None or not now <= flow_class.timer_at <= at:
            flow_class.timer_at = at
            flow_class.timer = self.env.call_at(at, flow_class.on_timer)

    def _arm_star(self, star: LinkLevel, now: float) -> None:
        """:meth:`_arm` of a star's clock: its members' earliest head."""
        at = star_due(star, now)
        if at is None:
            star.timer = None
        elif star.timer is None or not now <= star.timer_at <= at:  # (else kept, as in _arm_class)
            star.timer_at = at
            star.timer = self.env.call_at(at, star.on_timer)

    def _on_class_timer(self, flow_class: FlowClass, timer: simpy.Event) -> None:
        if timer is not flow_class.timer:
            self.env.idle_events += 1
            return  # stale: re-armed or disarmed since
        flow_class.timer = None
        now = self.env.now
        active = flow_class.active
        dt = now - flow_class.updated_s  # Clock.advance, written out
        if dt > 0:
            flow_class.virtual_bits += flow_class.rate_bps * dt
        flow_class.updated_s = now
        if flow_class.complete_due(flow_class.virtual_bits) != active:
            sharing = self.sharing  # _redivide_one, written out
            if sharing.update_one(flow_class) and not sharing.old and not sharing.moves:
                self._arm_class(flow_class, now)
            else:
                self._settle(sharing.old, sharing.moves, (flow_class,), now)
        else:
            self.env.idle_events += 1
            self._arm_class(flow_class, now)  # early: its rate fell since it was armed

    def _on_star_timer(self, star: LinkLevel, timer: simpy.Event) -> None:
        if timer is not star.timer:
            self.env.idle_events += 1  # stale
            return
        star.timer = None
        env = self.env
        now = env.now
        star.advance(now, star.rate_bps)
        changed = complete_members(star)
        if not changed:
            self._arm_star(star, now)
            env.idle_events += 1  # early
            return
        # Armed at its next head at today's λ, but held back (Environment.hold_at: its place among
        # this instant's events taken now): λ usually rises as members complete, the re-division
        # re-arms it earlier, and this timer would only have fired stale.
        at = star_due(star, now)
        held = None
        if at is not None:
            held = env.hold_at(at, star.on_timer)
            star.timer, star.timer_at = held[3], at
        self._redivide(changed, now)
        if held is not None:
            if star.timer is held[3]:
                env.push(held)
            else:
                env.drop(held)  # superseded


def _read(flow_class: FlowClass, now: float) -> float:
    """The class's virtual bits now (its clock, or its star's, advanced to now)."""
    star = flow_class.star
    if star is None:
        return flow_class.advance(now, flow_class.rate_bps)
    return star.advance(now, star.rate_bps) + flow_class.offset
