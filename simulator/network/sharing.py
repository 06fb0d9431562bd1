"""Max-min fair sharing of link capacities among flow classes: no SimPy, no time.

A *flow class* is a set of transfers that cross the same links and have the same per-transfer cap;
under max-min fairness they always get the same rate. A class is described by its links (objects with
a ``capacity_bps``), how many transfers it has in flight (``active`` ≥ 1) and its own bound
(``own_bound``: the per-transfer cap, or +inf).

:func:`fill` is the definition: progressive filling raises every class's rate together; a class
stops at the level where one of its links is full or it reaches its own bound. Levels within a
relative ``REL_EPS`` of the lowest one count as reached together (so equal shares computed through
different float paths are fixed at one level), and a link's remaining capacity drops, per level, by
the level times the number of transfers fixed on it then (an integer), so the result does not
depend on the order the classes are listed in.

:class:`~simulator.network.incremental.Sharing` keeps the rates of the classes in flight equal to
:func:`fill` of all of them, float for float, re-dividing only what a change can affect.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Protocol, Sequence

REL_EPS = 1e-9
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


def near(low: float, high: float) -> bool:
    """Two distinct levels that the filling would fix together (high within REL_EPS of low)."""
    return low < high <= low * (1 + REL_EPS)


def star_levels(capacity_bps: float, transfers_at: dict[float, int], bounds: list[float] | None = None,
                users: int | None = None) -> tuple[dict[float, float], float]:
    """:func:`fill` of classes that share one link and are otherwise held only by bounds of their
    own, given as `transfers_at`: bound → transfers of the classes with that bound (each class's
    own bound, or its share of links no other class crosses; at least one transfer per bound, as a
    star keeps them, unless there is one bound). Returns ``(below, level)``: the level
    each bound below the link's share was fixed at, and the level of all the others (the link's
    fair share; 0 classes left: +inf). The same floats as :func:`fill`, in O(distinct bounds).
    A caller that keeps them passes `bounds` (the keys, sorted) and `users` (the sum of the values):
    then the work stops at the first bound not below the link's share."""
    if len(transfers_at) == 1:  # one bound (a fleet of one cap): the loop below, unrolled
        for bound, users in transfers_at.items():
            if not users:
                return {}, INF
            share = capacity_bps / users
            if bound >= share:
                return {}, share
            if share <= bound * (1 + REL_EPS):
                return {}, bound
            return {bound: bound}, INF  # all held by their bound: the link has room
    remaining = capacity_bps
    if users is None:
        users = sum(transfers_at.values())
    below: dict[float, float] = {}
    if bounds is None:
        bounds = sorted(transfers_at)
    i = 0
    while users:
        share = remaining / users
        bound = bounds[i] if i < len(bounds) else INF
        level = bound if bound < share else share
        threshold = level * (1 + REL_EPS)
        if share <= threshold:
            return below, level
        fixed = 0
        while i < len(bounds) and bounds[i] <= threshold:
            below[bounds[i]] = level
            fixed += transfers_at[bounds[i]]
            i += 1
        remaining = max(0.0, remaining - level * fixed)
        users -= fixed
    return below, INF
