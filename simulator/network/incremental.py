"""Incremental max-min sharing: the rates of the classes in flight kept equal to :func:`fill` of
them all, float for float, while re-dividing only what a change can affect (no SimPy, no time).

- A link is *slack* when its load is below its capacity by a relative ``SLACK_MARGIN``. In the
  filling its share then never comes within ``REL_EPS`` of the level being fixed (its remaining
  capacity stays above the load still to come by the margin), so leaving it out changes no float.
  A slack link's load is booked as an upper bound (`load_bps`): each class's rate × transfers (a
  star's λ group: its ceiling × transfers, see stars.py).
- Classes are re-divided by *component*: those connected to a changed one through non-slack
  (*tight*) links, filled on their own. That equals the global filling unless two distinct levels
  of the result lie within ``REL_EPS`` of each other (the global filling would merge them): that
  case is tracked (:attr:`Levels.ties`) and, while it lasts, every change re-divides every class.
- A class alone on its tight links has a rate of its own (O(1)); a *star* (stars.py) is re-divided
  in O(1) too; anything else is filled (O(component)).

``tests/core/test_sharing.py`` checks every rate against :func:`fill` after random changes.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from simulator.network.levels import Levels
from simulator.network.sharing import INF, fill
from simulator.network.stars import SLACK_MARGIN, Star, StarSharing


class Sharing(StarSharing):
    """See the module. Links need ``capacity_bps, users, slack, load_bps, star``; classes ``links,
    active, own_bound, distinct_links, rate_bps, star (the star whose clock it reads), hub (the star
    it belongs to), load_bps, tight, booked, tight_valid``; links also ``classes, never_binds``."""

    def __init__(self, new_star: Callable[[Any], Star] = Star) -> None:
        self.busy: dict[Any, None] = {}  # classes in flight
        self.levels = Levels()  # the rates in use, and whether two of them tie
        self.fallbacks = 0  # re-divisions of every class because of ties (for the benchmarks)
        self._new_star = new_star
        # the report of the last update (the caller clears it): rate holder (a class on its own or
        # a star) → its rate before; class → its star before (None: it had a rate of its own)
        self.old: dict[Any, float] = {}
        self.moves: dict[Any, Any] = {}

    # ------------------------------------------------------------------ public

    def update(self, changed: Iterable[Any]) -> tuple[dict[Any, float], dict[Any, Any]]:
        """Re-divide after the `active` counts of `changed` moved (0: the class left). Returns the
        report (:attr:`old`, :attr:`moves`): each rate holder (a class on its own, or a star) whose
        rate may have moved, with its rate before, and each class whose star changed, with its star
        before (None: none). The changed classes' own clocks are the caller's: it has brought them to
        now, so their old rates are not reported. The caller clears the report when it is done."""
        for flow_class in changed:
            self.update_one(flow_class)
        return self.old, self.moves

    def update_one(self, flow_class: Any) -> bool:
        """:meth:`update` of one class; True if it was alone on each of its tight links (none crossed
        twice) and got a rate of its own (then, if the report is empty, nothing else moved)."""
        active = flow_class.active
        hub = flow_class.hub
        if hub is not None and active > 0:  # a star's member (in flight, in busy): its star re-divides
            if not self._star_change(hub, flow_class):
                self._divide([flow_class])
            return False
        levels = self.levels
        if active <= 0 or hub is not None or levels.ties or flow_class not in self.busy:
            return self._update_other(flow_class)
        tight = flow_class.tight if flow_class.tight_valid else self._tight(flow_class)
        rate = flow_class.own_bound  # lone_rate over the tight links, while checking it is alone
        for link in tight:
            if len(link.users) != 1 or not flow_class.distinct_links:
                return self._join_or_divide(flow_class, tight)
            share = link.capacity_bps / active
            if share < rate:
                rate = share
        load = rate * active
        old_rate = flow_class.rate_bps
        if rate != old_rate or load != flow_class.load_bps:
            if rate != old_rate:
                if levels.active:
                    levels.move(old_rate, rate)
                flow_class.rate_bps = rate
            if flow_class.booked:  # book it on its slack links
                overflow = self._book(flow_class, load)
            else:
                flow_class.load_bps = load  # (booked as soon as one of its links turns slack)
                overflow = ()
            if overflow or levels.ties:  # a slack link lost its margin, or levels tie: the general way
                for link in overflow:
                    self._set_tight(link)
                if not levels.ties and _hold_no_lower(overflow, active, rate):
                    # alone on them too, and they hold it no lower (a cell filling up to its clients'
                    # cap): its rate stands, the float _divide of it alone fills; only slack turns
                    return self.update_one(flow_class)
                self._divide([flow_class] + [c for link in overflow for c in link.users])
                return False
        if rate >= flow_class.own_bound or len(tight) > 1:  # a tight link it does not fill may turn slack
            for link in tight:
                if load * (1 + SLACK_MARGIN) < link.capacity_bps:  # it limits nobody now
                    self._set_slack(link)
        return True

    def _update_other(self, flow_class: Any) -> bool:
        """:meth:`update_one` of a class that left, came in flight, is in a star, or while levels
        tie."""
        if flow_class.active <= 0:
            if flow_class in self.busy:
                neighbours = self._leave(flow_class)
                if neighbours:
                    self._divide(neighbours)
            return False
        if flow_class not in self.busy:
            self._join(flow_class)
            if not self.levels.ties:
                return self.update_one(flow_class)
        hub = flow_class.hub
        if hub is not None:
            if not self._star_change(hub, flow_class):
                self._divide([flow_class])
            return False
        self._divide([flow_class])
        return False

    def _join_or_divide(self, flow_class: Any, tight: tuple) -> bool:
        """A class that shares a tight link: into a star on one of them if it can, else divided."""
        for link in tight:
            star = link.star
            if star is not None:
                bound = self._private_bound(flow_class, link)
                if bound is not None:
                    if not self._join_star(flow_class, star, bound):
                        self._divide([flow_class])
                    return False
        self._divide([flow_class])
        return False

    def capacity_changed(self, link: Any) -> tuple[dict[Any, float], dict[Any, Any]]:
        """Re-divide after `link.capacity_bps` changed: its classes as one component, it tight."""
        full = self._static_bounds({id(x): x for c in link.classes for x in c.links}.values())
        if link.slack:
            self._set_tight(link)
        seeds = list(link.users) + [c for x in full for c in x.users]
        if seeds:
            self._divide(seeds)
        return self.old, self.moves

    # ------------------------------------------------------------------ membership

    def _join(self, flow_class: Any) -> None:
        busy = self.busy
        busy[flow_class] = None
        flow_class.star = flow_class.hub = None
        flow_class.rate_bps = 0.0
        flow_class.load_bps = 0.0
        flow_class.tight_valid = False  # its links may have turned while it had nothing in flight
        for link in flow_class.links:
            link.users[flow_class] = None
        if len(busy) == 2:  # two classes may tie: count the rates from now on
            self.levels.start(c.rate_bps for c in busy if c.star is None)  # (λ groups: their stars' levels)
        else:
            self.levels.count(0.0, 1)

    def _leave(self, flow_class: Any) -> list[Any]:
        """Remove a class with nothing in flight; returns the classes left to re-divide."""
        del self.busy[flow_class]
        hub = flow_class.hub
        settled = True
        if hub is None:  # out of the levels from its rate (not moved to 0.0 and counted off there)
            self._note(flow_class)
            self.levels.count(flow_class.rate_bps, -1)
            flow_class.rate_bps = 0.0
            self._book(flow_class, 0.0)
        else:
            settled = self._leave_star(hub, flow_class)
            self.levels.count(0.0, -1)
        if len(self.busy) < 2:
            self.levels.stop()  # one class cannot tie
        neighbours = []
        for link in flow_class.links:
            users = link.users
            if flow_class in users:
                del users[flow_class]
                if not link.slack and (hub is None or link is not hub.link):
                    neighbours.extend(users)
                elif not users:
                    link.load_bps = 0.0  # exact again (a booked sum drifts by rounding)
        if not settled:
            neighbours.extend(hub.link.users)
        return neighbours

    def _tight(self, flow_class: Any) -> tuple:
        """The class's tight links, and the slack ones its load is booked on (those that can bind),
        cached until one of its links turns (or it comes in flight)."""
        if not flow_class.tight_valid:  # (one loop, no generators: a cell's class redoes this as it
            tight, booked = [], []      # fills past its clients' cap and back, twice a round)
            for link in flow_class.links:
                if not link.slack:
                    tight.append(link)
                elif not link.never_binds:
                    booked.append(link)
            flow_class.tight, flow_class.booked = tuple(tight), tuple(booked)
            flow_class.tight_valid = True
        return flow_class.tight

    def _booked_links(self, flow_class: Any) -> tuple:
        """The class's booked links, its cache refreshed first (a link of it turned since)."""
        self._tight(flow_class)
        return flow_class.booked

    def _set_tight(self, link: Any) -> None:
        link.slack = False
        for flow_class in link.users:
            flow_class.tight_valid = False

    def _set_slack(self, link: Any) -> None:
        link.slack = True
        link.load_bps = _booked(link)
        for flow_class in link.users:
            flow_class.tight_valid = False

    # ------------------------------------------------------------------ links that can never bind

    def add_class(self, flow_class: Any) -> None:
        """A class was created: its links' static bounds grow (see :meth:`_static_bounds`)."""
        for link in flow_class.links:
            link.classes.append(flow_class)
            link.static_bps += _most(flow_class, link)
            never = link.static_bps * (1 + SLACK_MARGIN) < link.capacity_bps
            if never != link.never_binds:
                self._static_bounds((link,))  # (it can only stop never binding: booked from now on)

    def _static_bounds(self, links: Iterable[Any]) -> list[Any]:
        """A link *never binds* when, even if every class that crosses it carried as much as its other
        links allow, its load would stay below capacity by the margin (a 100 Gbit/s server link
        under 50 cells of 600 Mbit/s): it is slack for good and booked nowhere. A class crossing it
        twice or only it has no such bound. Returns the links that may bind again and are full."""
        full = []
        for link in links:
            total = link.static_bps = sum(_most(flow_class, link) for flow_class in link.classes)
            never = total * (1 + SLACK_MARGIN) < link.capacity_bps
            if link.never_binds and not never and link.slack:  # booked from now on: is it full?
                link.load_bps = _booked(link)
                if not link.load_bps * (1 + SLACK_MARGIN) < link.capacity_bps:
                    self._set_tight(link)
                    full.append(link)
            link.never_binds = never
            for flow_class in link.classes:
                flow_class.tight_valid = False
        return full

    # ------------------------------------------------------------------ components

    def _component(self, seeds: list[Any]) -> list[Any]:
        """The classes in flight connected to `seeds` through tight links."""
        seen: dict[Any, None] = dict.fromkeys(c for c in seeds if c.active > 0)
        stack = list(seen)
        while stack:
            for link in self._tight(stack.pop()):
                for other in link.users:
                    if other not in seen and other.active > 0:
                        seen[other] = None
                        stack.append(other)
        return list(seen)

    def _divide(self, seeds: list[Any]) -> None:
        """Fill the component of `seeds` over tight links; widen it while a slack link overflows its
        margin; let tight links with margin turn slack; every class on a tie; maybe form a star."""
        everything = self.levels.ties > 0
        while True:
            component = list(self.busy) if everything else self._component(seeds)
            for hub in {id(c.hub): c.hub for c in component if c.hub is not None}.values():
                self._dissolve(hub)
            tight = [self._tight(c) for c in component]
            overflow: list[Any] = []
            for flow_class, rate in zip(component, fill(component, tight)):
                if rate != flow_class.rate_bps or rate * flow_class.active != flow_class.load_bps:
                    self._note(flow_class)
                    overflow.extend(x for x in self._set_rate(flow_class, rate) if x not in overflow)
            if overflow:  # a slack link lost its margin: it is tight now, and its users join in
                for link in overflow:
                    self._set_tight(link)
                seeds = component + [c for link in overflow for c in link.users]
                continue
            for link in {id(x): x for t in tight for x in t}.values():
                if _load(link) * (1 + SLACK_MARGIN) < link.capacity_bps:
                    self._set_slack(link)
            if self.levels.ties and not everything:
                everything = True  # two components' levels nearly tie: divide them all together
                self.fallbacks += 1
                continue
            if not self.levels.ties and len(component) > 1:
                self._form_star(component, [self._tight(c) for c in component])
            return

    def _note(self, flow_class: Any) -> None:
        """Remember a class's own rate before this update (not if its star changed: the network
        then takes its clock from the star)."""
        if flow_class not in self.old and flow_class not in self.moves:
            self.old[flow_class] = flow_class.rate_bps

    def _move(self, flow_class: Any, star: Any) -> None:
        if flow_class not in self.moves:
            if flow_class.star is None:
                self._note(flow_class)  # its own clock ran at this rate until now
            self.moves[flow_class] = flow_class.star
        flow_class.star = star

    def _set_rate(self, flow_class: Any, rate: float) -> list[Any]:
        """Write a class's own rate and book rate × active; returns the slack links that overflow."""
        if rate != flow_class.rate_bps:
            levels = self.levels
            if levels.active:
                levels.move(flow_class.rate_bps, rate)
            flow_class.rate_bps = rate
        return self._book(flow_class, rate * flow_class.active)

    def _book(self, flow_class: Any, load: float) -> list[Any]:
        """Book `load` for the class on its slack links; returns those left without their margin."""
        delta = load - flow_class.load_bps
        flow_class.load_bps = load
        overflow = []
        if delta:
            for link in flow_class.booked if flow_class.tight_valid else self._booked_links(flow_class):
                link.load_bps += delta
                if delta > 0 and not link.load_bps * (1 + SLACK_MARGIN) < link.capacity_bps:
                    booked = _booked(link)  # the sum afresh: drift is no overflow
                    if booked * (1 + SLACK_MARGIN) < link.capacity_bps:
                        link.load_bps = booked
                    elif link not in overflow:
                        overflow.append(link)
        return overflow


def _hold_no_lower(links: list[Any], active: int, rate: float) -> bool:
    """True if each link has one class in flight (the one at `active` transfers and `rate`) and its
    fair share is no lower than `rate`. (A function: a generator inside update_one would make its
    locals cells, allocated at every call.)"""
    for link in links:
        if len(link.users) != 1 or link.capacity_bps / active < rate:
            return False
    return True


def _most(flow_class: Any, link: Any) -> float:
    """The most the class can ever load `link` with: the capacity of its tightest other link (none,
    or `link` crossed twice: no bound)."""
    others = [x.capacity_bps for x in flow_class.links if x is not link]
    return min(others) if others and len(others) == len(flow_class.links) - 1 else INF


def _booked(link: Any) -> float:
    """Σ booked load over the classes crossing `link` (a class crossing it twice counts twice)."""
    return sum(c.load_bps for c in link.users for x in c.links if x is link)


def _load(link: Any) -> float:
    """Σ rate × transfers over the classes crossing `link` (all on rates of their own here)."""
    return sum(c.rate_bps * c.active for c in link.users for x in c.links if x is link)
