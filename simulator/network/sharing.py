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

:class:`Sharing` (``sharing_state.py``) keeps the rates of the classes in flight equal to
:func:`fill` of all of them, float for float, re-dividing only what a change can affect.
"""

from __future__ import annotations

from math import frexp
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


class Levels:
    """The distinct rates in use, with how many classes are at each, and :attr:`ties`: how many
    pairs of distinct rates lie within REL_EPS of each other (0: no filling would merge two).

    Rates are kept in buckets of the top 22 bits of their mantissa (and their exponent): a bucket
    spans a relative 1.2e-7 to 2.4e-7, so two rates within REL_EPS share a bucket or lie in adjacent
    ones (only if one is that close to the edge), and finding a rate's near neighbours is one or two
    dictionary look-ups. While fewer than two classes are in flight nothing can tie, and nothing is
    kept (:meth:`start`, :meth:`stop`)."""

    def __init__(self) -> None:
        self._counts: dict[float, int] = {}
        self._buckets: dict[int, list[float]] = {}
        self._places: dict[float, tuple[int, tuple[int, int] | None]] = {}
        self.ties = 0
        self.active = False

    def start(self, rates: Iterable[float]) -> None:
        """Keep count from now on, of these rates (one per class in flight)."""
        self.active = True
        for rate in rates:
            self.count(rate, 1)

    def in_use(self) -> dict[float, int]:
        """Rate → classes counted at it (empty while not active)."""
        return dict(self._counts)

    def stop(self) -> None:
        self._counts.clear()
        self._buckets.clear()
        self.ties = 0
        self.active = False

    def count(self, rate: float, step: int) -> None:
        """`step` classes more (or fewer, if negative) at `rate`."""
        if not self.active:
            return
        counts = self._counts
        before = counts.get(rate, 0)
        after = before + step
        if after:
            counts[rate] = after
            if not before:
                self._bucket(rate, True)
        else:
            del counts[rate]
            self._bucket(rate, False)

    def move(self, old: float, new: float, step: int = 1) -> None:
        """`step` classes from `old` to `new` (`count(old, -step)`, then `count(new, step)`)."""
        if not self.active:
            return
        counts = self._counts
        after = counts[old] - step
        if after:
            counts[old] = after
        else:
            del counts[old]
            self._bucket(old, False)
        before = counts.get(new, 0)
        counts[new] = before + step
        if not before:
            self._bucket(new, True)

    def _bucket(self, rate: float, entering: bool) -> None:
        """Put a rate new in use in its bucket (or take one out of use), counting the rates within
        REL_EPS of it in :attr:`ties`: those in its bucket, and in the next bucket only if it lies
        that close to its bucket's edge. A rate's bucket and the buckets to scan are remembered
        (:func:`_place`): the rates of a fleet recur (a cell's share at each of its counts)."""
        place = self._places.get(rate)
        if place is None:
            places = self._places
            if len(places) >= _PLACES_KEPT:
                places.clear()
            place = places[rate] = _place(rate)
        key, scan = place
        buckets = self._buckets
        bucket = buckets.get(key)
        if entering:
            if bucket is None:
                buckets[key] = [rate]
                if scan is None:  # (the usual case: alone in its bucket, none to scan beside)
                    return
            else:
                bucket.append(rate)
        else:
            bucket.remove(rate)  # type: ignore[union-attr]
            if not bucket:
                del buckets[key]
                if scan is None:
                    return
        found = 0
        for k in scan or (key,):
            for other in buckets.get(k, ()):
                if other != rate and (other < rate <= other * (1 + REL_EPS) or rate < other <= rate * (1 + REL_EPS)):
                    found += 1  # near(other, rate) or near(rate, other), inline
        self.ties += found if entering else -found


def _place(rate: float) -> tuple[int, tuple[int, int] | None]:
    """A rate's bucket key (the top 22 bits of its mantissa, and its exponent), and the two buckets
    to scan for near rates if it lies within REL_EPS of its bucket's edge (None: its own only)."""
    if rate == INF:
        return 1 << 40, None
    mantissa, exponent = frexp(rate)  # rate = mantissa · 2**exponent, 0.5 <= mantissa < 1
    scaled = mantissa * 8388608.0  # its top 22 bits, contiguous across exponents
    whole = int(scaled)
    key, fraction = (exponent << 22) + whole - 4194304, scaled - whole
    return key, (key - 1, key) if fraction < EDGE else (key, key + 1) if fraction > 1 - EDGE else None


_PLACES_KEPT = 1 << 10  # rates whose place is remembered (then forgotten all at once: a star's λ
# takes a new value at each change, and a large table of them would only cost cache misses)


# A rate within REL_EPS of a bucket's edge (in units of the bucket's width, at least 1.19e-7 relative)
# may have a near neighbour in the next bucket.
EDGE = 2 * REL_EPS / 1.19e-7


def star_levels(capacity_bps: float, transfers_at: dict[float, int], bounds: list[float] | None = None,
                users: int | None = None) -> tuple[dict[float, float], float]:
    """:func:`fill` of classes that share one link and are otherwise held only by bounds of their
    own, given as `transfers_at`: bound → transfers of the classes with that bound (each class's
    own bound, or its share of links no other class crosses). Returns ``(below, level)``: the level
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
