"""Max-min fair sharing of link capacities among flow classes: no SimPy, no time.

A *flow class* is a set of transfers that cross the same links and have the same per-transfer cap;
under max-min fairness they always get the same rate. A class is described by its links (objects with
a ``capacity_bps``), how many transfers it has in flight (``active`` ≥ 1) and its own bound
(``own_bound``: the per-transfer cap, or +inf).

:func:`fill` is the definition: progressive filling raises every class's rate together; a class
stops at the level where one of its links is full or it reaches its own bound. Levels within a
relative ``REL_EPS`` of the lowest one count as reached together (so equal shares computed through
different float paths are fixed at one level), and a link's remaining capacity drops, per level, by
the level times the number of transfers fixed on it then (an integer): the result does not depend on
the order the classes are listed in.

:class:`Sharing` keeps the rates of the classes in flight equal to :func:`fill` of all of them, float
for float (``tests/core/test_sharing.py``), while re-dividing only what a change can affect:

- a link is *slack* when its load (Σ rate × transfers over the classes crossing it) is below its
  capacity by a relative ``SLACK_MARGIN``: then in the filling its share never comes within
  ``REL_EPS`` of the level being fixed (its remaining capacity stays above the load still to come
  by the margin), so leaving it out changes no float. With a large server link, only the access
  points count;
- classes are re-divided by *component*: the classes connected to a changed one through non-slack
  links. Components are filled on their own; that equals the global filling unless two distinct
  levels of the result lie within ``REL_EPS`` of each other (the global filling would merge them).
  That case is tracked (:attr:`Sharing.ties`) and, while it lasts, every change re-divides all
  classes in flight.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Hashable, Iterable, Protocol, Sequence

REL_EPS = 1e-9
SLACK_MARGIN = 1e-6
INF = float("inf")


class LinkLike(Protocol):
    capacity_bps: float


class ClassLike(Protocol):
    links: tuple[LinkLike, ...]
    active: int
    own_bound: float


def lone_rate(flow_class: ClassLike, links: Sequence[LinkLike] | None = None) -> float:
    """The class's max-min rate when no other class shares `links` (default: all its links; none
    listed twice): its own bound, or its fair share (capacity / active) of its tightest link. The
    same float as :func:`fill` of this class alone."""
    bound = flow_class.own_bound
    active = flow_class.active
    for link in flow_class.links if links is None else links:
        share = link.capacity_bps / active
        if share < bound:
            bound = share
    return bound


def fill(classes: Sequence[ClassLike], links: Sequence[Sequence[Hashable]] | None = None) -> list[float]:
    """Max-min fair per-transfer rates by progressive filling, each class weighted by `active`.

    `links[i]` (default ``classes[i].links``) are the links class i is divided over; a link listed
    twice counts twice. Returns the rates in the order of `classes`."""
    link_lists = [c.links for c in classes] if links is None else links
    remaining: dict[Hashable, float] = {}  # links as keys: identity-hashed
    users: dict[Hashable, int] = {}
    for flow_class, own_links in zip(classes, link_lists):
        for link in own_links:
            if link not in remaining:
                remaining[link] = link.capacity_bps  # type: ignore[attr-defined]
            users[link] = users.get(link, 0) + flow_class.active
    rates = [0.0] * len(classes)
    pending = list(range(len(classes)))
    while pending:
        bounds = []
        level = INF
        for i in pending:
            bound = classes[i].own_bound
            for link in link_lists[i]:
                share = remaining[link] / users[link]
                if share < bound:
                    bound = share
            bounds.append(bound)
            if bound < level:
                level = bound
        threshold = level * (1 + REL_EPS)
        still = []
        fixed_on: dict[Hashable, int] = {}
        for i, bound in zip(pending, bounds):
            if bound <= threshold:
                rates[i] = level
                active = classes[i].active
                for link in link_lists[i]:
                    fixed_on[link] = fixed_on.get(link, 0) + active
            else:
                still.append(i)
        for link, active in fixed_on.items():
            remaining[link] = max(0.0, remaining[link] - level * active)
            users[link] -= active
        pending = still
    return rates


class SharedLink(Protocol):
    """What :class:`Sharing` keeps on a link (flows.Link has these fields)."""

    capacity_bps: float
    users: dict  # the classes in flight crossing it (ordered set), kept by Sharing
    slack: bool  # kept by Sharing
    load_bps: float  # Σ rate × active × times crossed, over `users`, while slack


class SharedClass(Protocol):
    """What :class:`Sharing` keeps on a class (flows.FlowClass has these fields)."""

    links: tuple[SharedLink, ...]
    active: int
    own_bound: float
    rate_bps: float  # written by Sharing
    distinct_links: bool  # no link listed twice in `links`
    load_bps: float  # rate × active when last booked on its slack links (Sharing's)
    tight: tuple  # its non-slack links, valid while tight_epoch == Sharing.epoch
    tight_epoch: int


class Sharing:
    """The rates of the classes in flight, kept equal to :func:`fill` of them all (see the module)."""

    def __init__(self) -> None:
        self.busy: dict[SharedClass, None] = {}  # classes in flight, in the order they became so
        self.epoch = 0  # bumped whenever a link turns slack or tight (classes' `tight` go stale)
        self._counts: dict[float, int] = {}  # rate value → classes in flight at it
        self._levels: list[float] = []  # the distinct rate values, ascending
        self.ties = 0  # adjacent distinct levels within REL_EPS of each other
        self.fallbacks = 0  # changes that re-divided every class (ties), for the benchmarks

    # ------------------------------------------------------------------ changes

    def update(self, changed: Sequence[SharedClass]) -> list[tuple[SharedClass, float]]:
        """Re-divide after the `active` counts of `changed` moved (a class at 0 has left). Writes the
        new rates and returns ``(class, old rate)`` for every class whose rate changed."""
        if len(changed) == 1 and not self.ties:
            # The common case: one class, alone on its tight links (its access point, say).
            flow_class = changed[0]
            if flow_class.active > 0:
                if flow_class not in self.busy:
                    self._join(flow_class)
                tight = self._tight(flow_class)
                for link in tight:
                    if len(link.users) != 1:
                        break
                else:
                    if flow_class.distinct_links:
                        return self._divide_lone(flow_class, tight)
            elif flow_class in self.busy:
                old = {}
                neighbours = self._leave(flow_class, old)
                if neighbours:
                    self._divide(neighbours, old)
                return [(c, rate) for c, rate in old.items() if c.rate_bps != rate]
            else:
                return []
        seeds: list[SharedClass] = []
        old: dict[SharedClass, float] = {}
        for flow_class in changed:
            if flow_class.active > 0:
                if flow_class not in self.busy:
                    self._join(flow_class)
                seeds.append(flow_class)
            elif flow_class in self.busy:
                seeds.extend(self._leave(flow_class, old))
        self._divide([c for c in seeds if c.active > 0], old)
        return [(c, rate) for c, rate in old.items() if c.rate_bps != rate]

    def capacity_changed(self, link: SharedLink) -> list[tuple[SharedClass, float]]:
        """Re-divide after `link.capacity_bps` changed: its users as one component, the link tight."""
        if link.slack:
            self._set_tight(link)
        old: dict[SharedClass, float] = {}
        self._divide(list(link.users), old)
        return [(c, rate) for c, rate in old.items() if c.rate_bps != rate]

    # ------------------------------------------------------------------ membership

    def _join(self, flow_class: SharedClass) -> None:
        self.busy[flow_class] = None
        flow_class.rate_bps = 0.0
        flow_class.load_bps = 0.0
        for link in flow_class.links:
            link.users[flow_class] = None
        self._count(0.0, 1)

    def _leave(self, flow_class: SharedClass, old: dict[SharedClass, float]) -> list[SharedClass]:
        """Remove a class that has nothing in flight; returns the classes that shared a tight link."""
        del self.busy[flow_class]
        old.setdefault(flow_class, flow_class.rate_bps)
        self._set_rate(flow_class, 0.0)
        self._count(0.0, -1)
        neighbours = []
        for link in flow_class.links:
            users = link.users
            if flow_class in users:
                del users[flow_class]
                if not link.slack:
                    neighbours.extend(users)
                elif not users:
                    link.load_bps = 0.0  # exact again (the booked sum drifts by rounding)
        return neighbours

    def _tight(self, flow_class: SharedClass) -> tuple:
        if flow_class.tight_epoch != self.epoch:
            flow_class.tight = tuple(link for link in flow_class.links if not link.slack)
            flow_class.tight_epoch = self.epoch
        return flow_class.tight

    def _set_tight(self, link: SharedLink) -> None:
        link.slack = False
        self.epoch += 1

    def _set_slack(self, link: SharedLink) -> None:
        link.slack = True
        link.load_bps = sum(c.rate_bps * c.active for c in link.users for x in c.links if x is link)
        for flow_class in link.users:
            flow_class.load_bps = flow_class.rate_bps * flow_class.active
        self.epoch += 1

    # ------------------------------------------------------------------ dividing

    def _component(self, seeds: list[SharedClass]) -> list[SharedClass]:
        """The classes in flight connected to `seeds` through tight links."""
        seen: dict[SharedClass, None] = dict.fromkeys(seeds)
        stack = list(seen)
        while stack:
            for link in self._tight(stack.pop()):
                for other in link.users:
                    if other not in seen:
                        seen[other] = None
                        stack.append(other)
        return list(seen)

    def _divide(self, seeds: list[SharedClass], old: dict[SharedClass, float]) -> None:
        """Fill the component of `seeds` over tight links; widen it while a slack link overflows its
        margin; let tight links with margin turn slack; fall back to every class on a tie."""
        everything = self.ties > 0  # while levels tie, the components' fillings are not independent
        while seeds:
            component = list(self.busy) if everything else self._component(seeds)
            tight = [self._tight(c) for c in component]
            if len(component) == 1 and len(tight[0]) == len(set(map(id, tight[0]))):
                rates = [lone_rate(component[0], tight[0])]
            else:
                rates = fill(component, tight)
            overflow = []
            for flow_class, rate in zip(component, rates):
                if rate != flow_class.rate_bps or rate * flow_class.active != flow_class.load_bps:
                    old.setdefault(flow_class, flow_class.rate_bps)
                    overflow.extend(self._set_rate(flow_class, rate))
            if overflow:  # a slack link lost its margin: it is tight now, and its users join in
                for link in overflow:
                    self._set_tight(link)
                seeds = component + [c for link in overflow for c in link.users]
                continue
            for link in {id(x): x for t in tight for x in t}.values():
                if _has_margin(link, sum(c.rate_bps * c.active for c in link.users for x in c.links if x is link)):
                    self._set_slack(link)
            if self.ties and not everything:
                everything = True  # two components' levels nearly tie: divide them all together
                self.fallbacks += 1
                continue
            return

    def _divide_lone(self, flow_class: SharedClass, tight: tuple) -> list[tuple[SharedClass, float]]:
        """:meth:`_divide` of a class that is alone on each of its tight links (none crossed twice)."""
        old_rate = flow_class.rate_bps
        active = flow_class.active
        rate = flow_class.own_bound  # lone_rate over the tight links, inline
        for link in tight:
            share = link.capacity_bps / active
            if share < rate:
                rate = share
        load = rate * active
        if rate != old_rate or load != flow_class.load_bps:
            overflow = self._set_rate(flow_class, rate)
            if overflow or self.ties:  # a slack link lost its margin, or levels tie: the general way
                for link in overflow:
                    self._set_tight(link)
                old = {flow_class: old_rate}
                self._divide([flow_class] + [c for link in overflow for c in link.users], old)
                return [(c, r) for c, r in old.items() if c.rate_bps != r]
        for link in tight:
            if load * (1 + SLACK_MARGIN) < link.capacity_bps:  # _has_margin: it limits nobody now
                self._set_slack(link)
        return [(flow_class, old_rate)] if rate != old_rate else []

    def _set_rate(self, flow_class: SharedClass, rate: float) -> list[SharedLink]:
        """Write a class's rate and book rate × active on its slack links; returns those that lost
        their margin."""
        if rate != flow_class.rate_bps:
            self._count(flow_class.rate_bps, -1)
            self._count(rate, 1)
            flow_class.rate_bps = rate
        load = rate * flow_class.active
        delta = load - flow_class.load_bps
        flow_class.load_bps = load
        overflow = []
        if delta:
            for link in flow_class.links:
                if link.slack:
                    link.load_bps += delta
                    if delta > 0 and not _has_margin(link, link.load_bps):
                        exact = sum(c.rate_bps * c.active for c in link.users for x in c.links if x is link)
                        if _has_margin(link, exact):
                            link.load_bps = exact
                        elif link not in overflow:
                            overflow.append(link)
        return overflow

    # ------------------------------------------------------------------ the levels in use

    def _count(self, rate: float, step: int) -> None:
        """Count one class more (`step` 1) or less (−1) at `rate`, keeping :attr:`ties` up to date."""
        counts = self._counts
        n = counts.get(rate, 0) + step
        if n:
            counts[rate] = n
            if n == 1 and step == 1:
                self._insert_level(rate)
        else:
            del counts[rate]
            self._remove_level(rate)

    def _insert_level(self, rate: float) -> None:
        levels = self._levels
        i = bisect_left(levels, rate)
        below = levels[i - 1] if i else None
        above = levels[i] if i < len(levels) else None
        if below is not None and above is not None:
            self.ties -= _near(below, above)
        self.ties += (below is not None and _near(below, rate)) + (above is not None and _near(rate, above))
        levels.insert(i, rate)

    def _remove_level(self, rate: float) -> None:
        levels = self._levels
        i = bisect_left(levels, rate)
        below = levels[i - 1] if i else None
        above = levels[i + 1] if i + 1 < len(levels) else None
        self.ties -= (below is not None and _near(below, rate)) + (above is not None and _near(rate, above))
        if below is not None and above is not None:
            self.ties += _near(below, above)
        del levels[i]


def _near(low: float, high: float) -> bool:
    """Two distinct levels that the filling would fix together (high within REL_EPS of low)."""
    return low < high <= low * (1 + REL_EPS)


def _has_margin(link: SharedLink, load_bps: float) -> bool:
    return load_bps * (1 + SLACK_MARGIN) < link.capacity_bps
