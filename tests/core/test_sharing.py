"""Max-min sharing (simulator/network/sharing.py) on random instances, without SimPy.

The filling is checked against the definition of max-min fairness (feasible; every class is held by
its own cap or by a full link on which nobody gets more), and the incremental :class:`Sharing`
against the filling of every class in flight after each change, float for float.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from simulator.network.incremental import Sharing
from simulator.network.sharing import INF, REL_EPS, fill

TOL = 1e-9


@dataclass(eq=False)
class L:
    capacity_bps: float
    users: dict = field(default_factory=dict)
    slack: bool = True
    load_bps: float = 0.0
    star: object = None
    classes: list = field(default_factory=list)
    static_bps: float = 0.0
    never_binds: bool = False


@dataclass(eq=False)
class C:
    links: tuple
    own_bound: float
    active: int = 0
    rate_bps: float = 0.0
    load_bps: float = 0.0
    tight: tuple = ()
    booked: tuple = ()
    tight_valid: bool = False
    distinct_links: bool = True
    star: object = None
    hub: object = None


def _rate(c: C) -> float:
    """A class's rate: its own, or its star's."""
    return c.star.rate_bps if c.star is not None else c.rate_bps


# Capacities and caps from a small set (ties and exact equalities happen, as in real fleets: many
# equal access points) and from anywhere (no structure at all).
CAPACITIES = st.one_of(st.sampled_from([1e6, 4e6, 6e6, 1.5e8, 6e8, 1e9, 1e11]), st.floats(1e3, 1e12))
CAPS = st.one_of(st.just(INF), st.sampled_from([1e6, 1.5e8, 9.41e8]), st.floats(1e3, 1e12))


@st.composite
def instances(draw, max_links: int = 6, max_classes: int = 8):
    links = [L(draw(CAPACITIES)) for _ in range(draw(st.integers(1, max_links)))]
    classes = []
    for _ in range(draw(st.integers(1, max_classes))):
        chosen = draw(st.lists(st.sampled_from(range(len(links))), min_size=0, max_size=3))
        cap = draw(CAPS)
        if not chosen and cap == INF:
            chosen = [0]
        own = tuple(links[i] for i in chosen)
        classes.append(C(own, cap, draw(st.integers(1, 50)), distinct_links=len(set(chosen)) == len(chosen)))
    return links, classes


@st.composite
def fleets(draw):
    """The shape of real fleets: cells under a server downlink and uplink (each class one cell and
    one server link; some classes on the server links alone, as Ethernet ports), capacities such
    that the server binds or not, cells bind or not."""
    down, up = L(draw(st.sampled_from([2e9, 1e10, 1e11]))), L(draw(st.sampled_from([2e9, 1e10, 1e11])))
    cells = [L(draw(st.sampled_from([6e8, 4e8, 3e9]))) for _ in range(draw(st.integers(1, 6)))]
    classes = []
    for cell in cells:
        cap = draw(st.sampled_from([1.5e8, 2e8, INF]))
        classes += [C((cell, down), cap), C((cell, up), cap)]
    for _ in range(draw(st.integers(0, 2))):
        classes += [C((down,), 9.41e8), C((up,), 9.41e8)]
    return [down, up, *cells], classes


def _load(link: L, classes: list[C], rates: list[float]) -> float:
    return sum(rate * c.active for c, rate in zip(classes, rates) for x in c.links if x is link)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(instances())
def test_fill_is_feasible_and_each_class_within_its_cap(instance) -> None:
    links, classes = instance
    rates = fill(classes)
    for c, rate in zip(classes, rates):
        assert 0 <= rate <= c.own_bound * (1 + TOL)
    for link in links:
        assert _load(link, classes, rates) <= link.capacity_bps * (1 + TOL)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(instances())
def test_fill_is_max_min_fair(instance) -> None:
    """Every class is held either by its own cap or by a link that is full and on which no class
    gets more than it does (the bottleneck condition, which characterises max-min fairness)."""
    links, classes = instance
    rates = fill(classes)
    for c, rate in zip(classes, rates):
        if rate >= c.own_bound * (1 - TOL):
            continue
        held = False
        for link in c.links:
            full = _load(link, classes, rates) >= link.capacity_bps * (1 - TOL)
            top = all(r <= rate * (1 + TOL) for d, r in zip(classes, rates) if link in d.links)
            held = held or (full and top)
        assert held, (c, rate)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_fill_does_not_depend_on_the_order_of_classes(instance, random) -> None:
    _, classes = instance
    order = list(range(len(classes)))
    random.shuffle(order)
    rates = fill(classes)
    shuffled = fill([classes[i] for i in order])
    assert [shuffled[order.index(i)] for i in range(len(classes))] == rates


OPS = st.lists(st.tuples(st.sampled_from(["+", "-", "-", "capacity"]), st.integers(0, 1000), CAPACITIES),
               min_size=1, max_size=60)


def _check(sharing: Sharing, classes: list[C]) -> None:
    busy = [c for c in classes if c.active > 0]
    assert set(sharing.busy) == set(busy)
    expected = fill(busy)
    assert [_rate(c) for c in busy] == expected  # float for float
    for c in classes:
        if not c.active:
            assert c.rate_bps == 0.0 and c.star is None
    for star in {id(c.hub): c.hub for c in busy if c.hub is not None}.values():  # a star's running tallies
        assert star.bounds == sorted(star.transfers_at) and star.transfers == sum(star.transfers_at.values())
        assert star.transfers_at == {b: sum(star.members[c] for c in g) for b, g in star.by_bound.items()}
    if len(busy) >= 2:  # the levels it checks ties on are the rates in use, one count per class
        in_use: dict[float, int] = {}
        for c in busy:
            in_use[_rate(c)] = in_use.get(_rate(c), 0) + 1
        assert sharing.levels.in_use() == in_use


def _check_report(before: dict, report: tuple, classes: list[C], changed: tuple = ()) -> None:
    """What the network advances clocks by: every class whose rate moved is reported, with the rate
    its clock ran at until now (its own, its star's, or, if it moved, its former clock's)."""
    old_rates, moves = report
    for c in classes:
        if c in changed:
            continue  # the caller has brought its own clock to now
        if c in moves:
            source = moves[c] if moves[c] is not None else c
            assert old_rates.get(source, source.rate_bps) == before[id(c)]
        elif _rate(c) != before[id(c)]:
            assert old_rates[c.star if c.star is not None else c] == before[id(c)]


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(instances(), OPS)
def test_incremental_sharing_equals_the_global_filling_after_every_change(instance, ops) -> None:
    _change_and_check(instance, ops)


def _change_and_check(instance: tuple, ops: list) -> None:
    """Apply `ops` (a class's transfers up or down, a link's capacity) one by one; after each, the
    report and every rate are checked against the global filling (:func:`_check_report`, :func:`_check`)."""
    links, classes = instance
    sharing = Sharing()
    for c in classes:
        c.active = 0
        sharing.add_class(c)
    for kind, pick, capacity in ops:
        before = {id(d): _rate(d) for d in classes}
        changed: tuple = ()
        if kind == "capacity":
            link = links[pick % len(links)]
            link.capacity_bps = capacity
            report = tuple(map(dict, sharing.capacity_changed(link)))
        else:
            c = classes[pick % len(classes)]
            if kind == "-" and c.active == 0:
                continue
            c.active += 1 if kind == "+" else -1
            if pick % 2:
                sharing.update([c])
            else:
                sharing.update_one(c)
            changed = (c,)
            report = (dict(sharing.old), dict(sharing.moves))
        _check_report(before, report, classes, changed)
        sharing.old.clear()
        sharing.moves.clear()
        _check(sharing, classes)


FLEET_OPS = st.lists(st.tuples(st.sampled_from(["+", "+", "-", "capacity"]), st.integers(0, 1000),
                               st.sampled_from([6e8, 1e9, 1e10, 0.0])), min_size=1, max_size=150)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(fleets(), FLEET_OPS)
def test_incremental_sharing_on_fleet_shapes(instance, ops) -> None:
    """As above, on cells under server links: stars form, move, dissolve and re-form."""
    _change_and_check(instance, ops)


@st.composite
def stars(draw):
    """Many cells under one server link that binds (a star), at counts where a change can move λ
    past a member's cap or its cell's share, or fill a cell's slack at the ceiling Λ: caps within a
    few per cent of the server's fair share, and cells that hold few or many transfers."""
    server = L(draw(st.sampled_from([2e8, 5e8, 1e9, 2e9])))
    counts = [draw(st.integers(1, 30)) for _ in range(draw(st.integers(2, 24)))]
    share = server.capacity_bps / sum(counts)
    kind = draw(st.sampled_from(["uniform", "caps near λ", "mixed"]))
    if kind == "uniform":  # one kind of cell and client: λ moves, nothing else
        cells, caps = [L(6e8) for _ in counts], [INF] * len(counts)
    elif kind == "caps near λ":  # a few transfers fewer and λ passes them
        cells = [L(6e8) for _ in counts]
        caps = [draw(st.sampled_from([INF, 1.01 * share, 1.02 * share, 1.04 * share])) for _ in counts]
    else:
        cells = [L(draw(st.sampled_from([6e8, 1e8, 20 * share, 5 * share]))) for _ in counts]
        caps = [draw(st.sampled_from([INF, INF, 1.5e8, 0.98 * share, 1.02 * share])) for _ in counts]
    return [server, *cells], [C((cell, server), cap) for cell, cap in zip(cells, caps)], counts


STAR_OPS = st.lists(st.tuples(st.sampled_from(["+", "-", "-"]), st.integers(0, 1000)), min_size=20, max_size=200)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(stars(), STAR_OPS)
def test_incremental_sharing_in_a_star_of_many_cells(instance, ops) -> None:
    """A star formed, then one transfer more or less at a time anywhere in it (the path nine changes
    in ten take on 1,000 cells: a member of the λ group at the same bound): every rate equals the
    global filling after each change, and the report names what moved."""
    links, classes, counts = instance
    sharing = Sharing()
    for c, n in zip(classes, counts):
        sharing.add_class(c)
        c.active = n
    sharing.update(classes)
    sharing.old.clear()
    sharing.moves.clear()
    _check(sharing, classes)
    for kind, pick in ops:
        c = classes[pick % len(classes)]
        if kind == "-" and c.active == 0:
            continue
        before = {id(d): _rate(d) for d in classes}
        c.active += 1 if kind == "+" else -1
        sharing.update_one(c)
        _check_report(before, (dict(sharing.old), dict(sharing.moves)), classes, (c,))
        sharing.old.clear()
        sharing.moves.clear()
        _check(sharing, classes)


def test_a_slack_server_link_leaves_access_points_independent() -> None:
    """100 cells under a big server link: a start in one cell re-divides that cell only."""
    server = L(1e11)
    aps = [L(6e8) for _ in range(100)]
    classes = [C((ap, server), 1.5e8) for ap in aps]
    sharing = Sharing()
    for c in classes:
        for _ in range(10):
            c.active += 1
            sharing.update([c])
    assert server.slack and not any(ap.slack for ap in aps)
    classes[7].active += 1
    assert sharing.update_one(classes[7]) and not sharing.old and not sharing.moves  # it alone moved
    assert classes[7].rate_bps == 6e8 / 11
    _check(sharing, classes)


def test_a_binding_server_link_under_slack_cells_is_one_star() -> None:
    """1,000 cells of 100 transfers under a 100 Gbit/s server link: every class at the server's
    share, in one star; a start anywhere moves that one rate and no class's own."""
    server = L(1e11)
    classes = [C((L(6e8), server), 1.5e8) for _ in range(1000)]
    sharing = Sharing()
    for c in classes:
        c.active = 100
    sharing.update(classes)
    star = classes[0].star
    assert star is not None and all(c.star is star for c in classes) and star.rate_bps == 1e11 / 100_000
    sharing.old.clear()
    sharing.moves.clear()
    classes[3].active += 1
    old_rates, moves = sharing.update([classes[3]])
    assert list(old_rates) == [star] and not moves and star.rate_bps == 1e11 / 100_001
    _check(sharing, classes)


def test_near_tie_between_components_falls_back_to_the_global_filling() -> None:
    """Two cells whose shares differ by less than REL_EPS: the global filling fixes them at one
    level, and so must the incremental one."""
    a, b = L(6e8), L(6e8 * (1 + REL_EPS / 2))
    first, second = C((a,), INF), C((b,), INF)
    sharing = Sharing()
    first.active = 3
    sharing.update([first])
    second.active = 3
    sharing.update([second])
    assert second.rate_bps == first.rate_bps == 2e8 and sharing.fallbacks >= 1
    _check(sharing, [first, second])


def test_sharing_needs_no_simpy() -> None:
    """sharing.py loads and divides with SimPy made unimportable (a fresh interpreter)."""
    import subprocess
    from pathlib import Path

    import simulator.network.sharing as sharing

    code = (
        "import sys, importlib.util\n"
        "sys.modules['simpy'] = None\n"
        f"spec = importlib.util.spec_from_file_location('sharing', {str(Path(sharing.__file__))!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "class K: links = (); active = 2; own_bound = 5.0\n"
        "print(module.fill([K()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[5.0]"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-3, 1e13), st.integers(0, 3), st.booleans()), min_size=1, max_size=80))
def test_levels_count_near_ties_as_a_sorted_scan_would(ops) -> None:
    """Levels.ties is positive exactly when two distinct rates in use are within REL_EPS."""
    from simulator.network.levels import Levels
    from simulator.network.sharing import near

    levels, counts = Levels(), {}
    levels.start(())
    for base, jitter, add in ops:
        rate = base * (1 + jitter * REL_EPS / 3) if jitter else base  # close neighbours, often
        if add or counts.get(rate, 0) == 0:
            levels.count(rate, 1)
            counts[rate] = counts.get(rate, 0) + 1
        else:
            levels.count(rate, -1)
            counts[rate] -= 1
        live = sorted(r for r, n in counts.items() if n)
        assert (levels.ties > 0) == any(near(a, b) for a, b in zip(live, live[1:]))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**20), st.integers(-3, 3), st.booleans()), min_size=1, max_size=60))
def test_levels_find_near_ties_across_bucket_edges(ops) -> None:
    """Rates a few ulps apart, placed on bucket edges (mantissa multiples of 2**-(BUCKET_BITS+1))
    and powers of two: a near neighbour in the next bucket is found as in the same one."""
    from simulator.network.levels import BUCKET_BITS, Levels
    from simulator.network.sharing import near

    levels, counts = Levels(), {}
    levels.start(())
    for which, ulps, add in ops:
        step = 2.0 ** -(BUCKET_BITS + 1)  # a bucket's width at mantissa 0.5..1
        edge = (0.5 + (which % 2**BUCKET_BITS) * step) * 2.0 ** (which % 7)  # on a bucket's edge
        rate = edge
        for _ in range(abs(ulps)):
            rate = math.nextafter(rate, math.inf if ulps > 0 else 0.0)
        if add or counts.get(rate, 0) == 0:
            levels.count(rate, 1)
            counts[rate] = counts.get(rate, 0) + 1
        else:
            levels.move(rate, edge) if counts.get(edge, 0) >= 0 else None
            counts[rate] -= 1
            counts[edge] = counts.get(edge, 0) + 1
        live = sorted(r for r, n in counts.items() if n)
        assert (levels.ties > 0) == any(near(a, b) for a, b in zip(live, live[1:]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40), st.integers(-3, 3)), min_size=1, max_size=80))
def test_moving_levels_count_ties_as_a_sorted_scan_would(ops) -> None:
    """Two moving levels (stars' λ groups) among rates counted per value: moved by small steps (in
    place, inside a bucket), across bucket edges, onto and next to the other rates, counted in and
    out, through stop and start; ties and in_use stay those of the rates in use."""
    from simulator.network.levels import BUCKET_BITS, Levels, MovingLevel
    from simulator.network.sharing import near

    levels, counts = Levels(), {}
    moving = [MovingLevel(), MovingLevel()]
    levels.start(())
    for level in moving:
        levels.count_level(level, 2)
    statics = [1e6 * (1 + k / 7) for k in range(6)]  # rates counted per value
    edge = (0.5 + 3 * 2.0 ** -(BUCKET_BITS + 1)) * 2.0**21  # a bucket's edge near them
    for kind, which, ulps in ops:
        level = moving[which % 2]
        if kind == 0:  # a static rate in or out
            rate = statics[which % 6]
            step = 1 if counts.get(rate, 0) == 0 or ulps >= 0 else -1
            levels.count(rate, step)
            counts[rate] = counts.get(rate, 0) + step
        elif kind == 1:  # members into or out of a moving level (out of use at 0)
            step = 1 if level.count == 0 or ulps >= 0 else -min(level.count, -ulps)
            levels.count_level(level, step)
        elif kind == 2:  # a small step: one transfer in ten thousand or more, mostly inside the bucket
            levels.move_level(level, level.rate * (1 + (ulps or 1) / (10_000 + 997 * which)) if level.rate else 1e6)
        elif kind == 3:  # onto a static rate, or a few ulps from it (ties), or from a bucket's edge
            rate = statics[which % 6] if which % 3 else edge
            for _ in range(abs(ulps)):
                rate = math.nextafter(rate, math.inf if ulps > 0 else 0.0)
            levels.move_level(level, rate)
        elif kind == 4:  # within REL_EPS of the other moving level
            levels.move_level(level, moving[1 - which % 2].rate * (1 + ulps * REL_EPS / 4))
        elif kind == 5 and levels.active:
            levels.stop()
        else:
            if not levels.active:
                levels.start(r for r, n in counts.items() for _ in range(n))
        if not levels.active:
            continue
        in_use = {r: n for r, n in counts.items() if n}
        for m in moving:
            if m.count:
                in_use[m.rate] = in_use.get(m.rate, 0) + m.count
        assert levels.in_use() == in_use
        live = sorted(in_use)
        assert (levels.ties > 0) == any(near(a, b) for a, b in zip(live, live[1:]))


def test_a_moving_level_stepping_onto_a_bucket_edge_sees_a_rate_across_it() -> None:
    """A moving level inside its bucket steps to one ulp above the bucket's low edge, where a rate
    one ulp below it (the next bucket down) is in use: a tie, found though the level moved within
    its bucket; and gone when it steps back inside."""
    from simulator.network.levels import BUCKET_BITS, Levels, MovingLevel

    edge = (0.5 + 5 * 2.0 ** -(BUCKET_BITS + 1)) * 2.0**24  # a bucket's low edge
    below, above = math.nextafter(edge, 0.0), math.nextafter(edge, math.inf)
    inside = edge * (1 + 2.0 ** -(BUCKET_BITS + 3))  # an eighth of a bucket's width above it
    levels, level = Levels(), MovingLevel()
    levels.start([below])
    levels.move_level(level, inside)
    levels.count_level(level, 3)
    assert levels.ties == 0
    levels.move_level(level, above)
    assert levels.ties == 1 and levels.in_use() == {below: 1, above: 3}
    levels.move_level(level, inside)
    assert levels.ties == 0


@settings(max_examples=500, deadline=None)
@given(CAPACITIES, st.dictionaries(CAPS.filter(lambda b: b > 0), st.integers(1, 100), min_size=1, max_size=4))
def test_star_levels_is_the_filling_of_a_star(capacity, transfers_at) -> None:
    """Classes on one shared link, each also held by a bound of its own (a cap, or a private link):
    star_levels gives each bound the level fill() gives its classes. (Each bound has transfers: a
    star drops a bound with its last class; a bound left with none would still set a level.)"""
    from simulator.network.sharing import star_levels

    shared = L(capacity)
    classes = [C((shared,), bound, n) for bound, n in transfers_at.items() if n]
    below, level = star_levels(capacity, transfers_at)
    for c, rate in zip(classes, fill(classes)):
        assert below.get(c.own_bound, level) == rate
