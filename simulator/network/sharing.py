"""Max-min fair sharing of link capacities among flow classes: pure functions, no SimPy, no time.

A *flow class* is a set of transfers that cross the same links and have the same per-transfer cap;
under max-min fairness they always get the same rate. These functions divide capacity among classes
given, for each, its links (objects with a ``capacity_bps``), how many transfers it has in flight
(``active`` ≥ 1) and its own bound (``own_bound``: the per-transfer cap, or +inf). They return the
per-transfer rate of each class, in the order given, and change nothing.

Progressive filling raises every class's rate together; a class stops at the level where one of its
links is full or it reaches its own bound. Levels within a relative 1e-9 of the lowest one count as
reached together (so equal shares computed through different float paths are fixed at one level).
"""

from __future__ import annotations

from typing import Hashable, Protocol, Sequence

REL_EPS = 1e-9
INF = float("inf")


class LinkLike(Protocol):
    capacity_bps: float


class ClassLike(Protocol):
    links: tuple[LinkLike, ...]
    active: int
    own_bound: float


def share_no_link(classes: "Sequence[ClassLike] | dict[ClassLike, None]") -> bool:
    """True when no link is crossed by two of these classes, or twice by one: then each class's
    max-min share is its own, whatever the others do."""
    seen: set[int] = set()
    for flow_class in classes:
        for link in flow_class.links:
            key = id(link)
            if key in seen:
                return False
            seen.add(key)
    return True


def lone_rate(flow_class: ClassLike) -> float:
    """The class's max-min rate when no other class shares its links (and it crosses none twice): its
    own bound, or its fair share (capacity / active) of its tightest link."""
    bound = flow_class.own_bound
    active = flow_class.active
    for link in flow_class.links:
        share = link.capacity_bps / active
        if share < bound:
            bound = share
    return bound


def fill(classes: Sequence[ClassLike]) -> list[float]:
    """Max-min fair per-transfer rates by progressive filling (each class weighted by `active`)."""
    rates = [0.0] * len(classes)
    remaining: dict[Hashable, float] = {}  # links as keys: identity-hashed
    users: dict[Hashable, int] = {}
    for flow_class in classes:
        for link in flow_class.links:
            if link not in remaining:
                remaining[link] = link.capacity_bps
            users[link] = users.get(link, 0) + flow_class.active
    pending = list(range(len(classes)))
    while pending:
        bounds = []
        level = INF
        for i in pending:
            flow_class = classes[i]
            bound = flow_class.own_bound
            for link in flow_class.links:
                share = remaining[link] / users[link]
                if share < bound:
                    bound = share
            bounds.append(bound)
            if bound < level:
                level = bound
        threshold = level * (1 + REL_EPS)
        still = []
        for i, bound in zip(pending, bounds):
            if bound <= threshold:
                rates[i] = level
                flow_class = classes[i]
                for link in flow_class.links:
                    remaining[link] = max(0.0, remaining[link] - level * flow_class.active)
                    users[link] -= flow_class.active
            else:
                still.append(i)
        pending = still
    return rates


def fill_independent(classes: Sequence[ClassLike]) -> list[float]:
    """:func:`fill` when no link is used twice (:func:`share_no_link`): fixing one class leaves every
    other class's share of its own links as it was, so each bound is computed once; the levels,
    thresholds and rates are those of :func:`fill`, float for float."""
    bounds = [lone_rate(flow_class) for flow_class in classes]
    rates = [0.0] * len(classes)
    pending = list(range(len(classes)))
    while pending:
        level = INF
        for i in pending:
            if bounds[i] < level:
                level = bounds[i]
        threshold = level * (1 + REL_EPS)
        still = []
        for i in pending:
            if bounds[i] <= threshold:
                rates[i] = level
            else:
                still.append(i)
        pending = still
    return rates
