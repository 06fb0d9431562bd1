"""Levels: the distinct rates in use, and whether two of them nearly tie (pure, no SimPy).

Why: the incremental sharing (incremental.py) equals the global filling only while no two distinct
levels lie within ``REL_EPS`` of each other (the filling would merge them); :attr:`Levels.ties` says
when they do, so that every change then re-divides every class.

Rates are kept in *buckets* of the top ``BUCKET_BITS`` bits of their mantissa (and their exponent):
a bucket spans a relative 4.9e-4 to 9.8e-4, far wider than REL_EPS, so two rates within REL_EPS
share a bucket or lie in adjacent ones (only if one is that close to the edge), and finding a
rate's near neighbours is one or two dictionary look-ups (by an integer key) and a scan of a short
list. A rate's place is remembered (:func:`span`): the rates of a fleet recur (a cell's share at
each of its counts).

A star's λ group (stars.py) holds one rate that moves at nearly every change of its members (by
about one part in the star's transfers), a fresh float each time: counting it per value would take
it out of one bucket and into another at each step, three float-keyed dictionaries touched. It is a
:class:`MovingLevel` instead: one entry in its bucket, moved in place while it stays inside it and
clear of the bucket's edges (the same test :func:`span` makes, on the same floats).
"""

from __future__ import annotations

from math import frexp
from typing import Iterable

from simulator.network.sharing import INF, REL_EPS

BUCKET_BITS = 10  # buckets per octave: 2**BUCKET_BITS
_SCALE = float(1 << (BUCKET_BITS + 1))  # mantissa (in [0.5, 1)) → its bucket's index, in [2**B, 2**(B+1))
# A rate within REL_EPS of its bucket's edge (in units of the bucket's width, at least 2**-(B+1)
# relative) may have a near neighbour in the next bucket; twice that, for safety.
EDGE = 2 * REL_EPS * _SCALE
_PLACES_KEPT = 1 << 10  # rates whose place is remembered (then forgotten all at once)

Place = tuple[int, "tuple[int, int] | None", float, float]  # key, buckets to scan (None: its own), low edge, width


def span(rate: float) -> Place:
    """A rate's bucket key, the two buckets to scan for near rates if it lies within EDGE of its
    bucket's edge (None: its own only), and the bucket's low edge and width (exact floats: powers
    of two times small integers, so ``(rate - low) / width`` is exactly this rate's fraction)."""
    if rate == INF:
        return 1 << 40, None, INF, INF
    mantissa, exponent = frexp(rate)  # rate = mantissa · 2**exponent, 0.5 <= mantissa < 1
    scaled = mantissa * _SCALE
    whole = int(scaled)
    key, fraction = (exponent << BUCKET_BITS) + whole - (1 << BUCKET_BITS), scaled - whole  # (contiguous
    # across exponents: the last bucket of one octave is next to the first of the next)
    width = 2.0 ** (exponent - BUCKET_BITS - 1)
    scan = (key - 1, key) if fraction < EDGE else (key, key + 1) if fraction > 1 - EDGE else None
    return key, scan, whole * width, width


class MovingLevel:
    """The rate `count` classes hold together and that moves at nearly every change (a star's λ
    group), with its place among the buckets while it is counted."""

    __slots__ = ("rate", "count", "place")

    def __init__(self) -> None:
        self.rate = 0.0
        self.count = 0
        self.place: Place = span(0.0)  # its bucket's, while counted (:func:`span` of its rate then)


class Levels:
    """The distinct rates in use, with how many classes are at each, and :attr:`ties`: how many
    pairs of distinct rates lie within REL_EPS of each other (0: no filling would merge two). While
    fewer than two classes are in flight nothing can tie, and nothing is kept (:meth:`start`,
    :meth:`stop`); moving levels keep their counts then, and are placed again at :meth:`start`."""

    def __init__(self) -> None:
        self._counts: dict[float, int] = {}  # rate → classes counted at it (moving levels apart)
        self._buckets: dict[int, list[float]] = {}  # key → its rates in use (a moving level's once)
        self._places: dict[float, Place] = {}
        self._moving: dict[MovingLevel, None] = {}  # the moving levels with a count
        self.ties = 0
        self.active = False

    def start(self, rates: Iterable[float]) -> None:
        """Keep count from now on, of these rates (one per class in flight not in a moving level)."""
        self.active = True
        for rate in rates:
            self.count(rate, 1)
        for level in self._moving:
            self._enter_level(level)

    def in_use(self) -> dict[float, int]:
        """Rate → classes counted at it (empty while not active)."""
        if not self.active:
            return {}
        counts = dict(self._counts)
        for level in self._moving:
            counts[level.rate] = counts.get(level.rate, 0) + level.count
        return counts

    def stop(self) -> None:
        self._counts.clear()
        self._buckets.clear()
        self.ties = 0
        self.active = False

    # ------------------------------------------------------------------ rates counted per value

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
                self._enter(rate, self._places.get(rate) or self._place(rate))
        else:
            del counts[rate]
            self._leave(rate, self._places.get(rate) or self._place(rate))

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
            self._leave(old, self._places.get(old) or self._place(old))
        before = counts.get(new, 0)
        counts[new] = before + step
        if not before:
            self._enter(new, self._places.get(new) or self._place(new))

    def _place(self, rate: float) -> Place:
        """A rate's place, remembered (the caller found it not remembered yet)."""
        places = self._places
        if len(places) >= _PLACES_KEPT:
            places.clear()
        place = places[rate] = span(rate)
        return place

    # ------------------------------------------------------------------ moving levels

    def count_level(self, level: MovingLevel, step: int) -> None:
        """`step` classes more (or fewer) in `level`, at its rate."""
        before = level.count
        level.count = after = before + step
        if not before and after:
            self._moving[level] = None
            if self.active:
                self._enter_level(level)
        elif before and not after:
            del self._moving[level]
            if self.active:
                self._leave(level.rate, level.place)

    def move_level(self, level: MovingLevel, rate: float) -> None:
        """The level's classes are at `rate` now."""
        old = level.rate
        level.rate = rate
        if not level.count or not self.active or rate == old:
            return
        key, scan, low, width = level.place
        if scan is None and EDGE <= (rate - low) / width <= 1 - EDGE:
            # the same bucket, clear of its edges as before: near rates are in this bucket alone
            bucket = self._buckets[key]
            if len(bucket) == 1:  # (the usual case: alone in its bucket)
                bucket[0] = rate
                return
            keys = (key,)
            self.ties -= self._near(old, keys)
            bucket[bucket.index(old)] = rate
            self.ties += self._near(rate, keys)
            return
        self._leave(old, level.place)
        self._enter_level(level)

    def _enter_level(self, level: MovingLevel) -> None:
        level.place = span(level.rate)
        self._enter(level.rate, level.place)

    # ------------------------------------------------------------------ buckets

    def _enter(self, rate: float, place: Place) -> None:
        """A rate new in use into its bucket, counting the rates within REL_EPS of it in :attr:`ties`."""
        key, scan = place[0], place[1]
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [rate]
            if scan is None:  # (the usual case: alone in its bucket, none to scan beside)
                return
        else:
            bucket.append(rate)
        self.ties += self._near(rate, scan or (key,))

    def _leave(self, rate: float, place: Place) -> None:
        """A rate out of use (one entry of that value) out of its bucket, and out of :attr:`ties`."""
        key, scan = place[0], place[1]
        bucket = self._buckets[key]
        bucket.remove(rate)
        if not bucket:
            del self._buckets[key]
            if scan is None:
                return
        self.ties -= self._near(rate, scan or (key,))

    def _near(self, rate: float, keys: tuple[int, ...]) -> int:
        """How many rates in these buckets lie within REL_EPS of `rate` (equal ones are one rate)."""
        found = 0
        buckets = self._buckets
        for key in keys:
            for other in buckets.get(key, ()):
                if other != rate and (other < rate <= other * (1 + REL_EPS) or rate < other <= rate * (1 + REL_EPS)):
                    found += 1  # near(other, rate) or near(rate, other), inline
        return found
