"""The shared-link model against closed forms of processor sharing and max-min fairness."""

from __future__ import annotations

import pytest
import simpy

from simulator.environment import Environment
from simulator.network import Link, Network


def _run_transfers(starts: list[tuple[float, tuple[Link, ...], float, float | None]]) -> list[float]:
    env = Environment()
    net = Network(env)
    ends: list[float] = [0.0] * len(starts)

    def one(i: int, start_s: float, links: tuple[Link, ...], size: float, cap: float | None):
        yield env.timeout(start_s)
        transfer = net.transfer(links, size, cap)
        yield transfer.done
        ends[i] = env.now

    for i, (start_s, links, size, cap) in enumerate(starts):
        env.process(one(i, start_s, links, size, cap))
    env.run()
    return ends


@pytest.mark.parametrize("n", [1, 2, 5, 64])
def test_n_equal_transfers_each_get_one_nth(n: int) -> None:
    link = Link("ap", capacity_bps=100e6)
    size_bytes = 10e6  # 80 Mbit: alone it takes 0.8 s
    ends = _run_transfers([(0.0, (link,), size_bytes, None)] * n)
    assert ends == pytest.approx([0.8 * n] * n, rel=1e-9)


def test_share_is_redivided_when_a_transfer_ends() -> None:
    # A (8 Mbit) and B (16 Mbit) share 8 Mbit/s: both at 4 until A ends at 2 s, then B alone at 8.
    link = Link("ap", capacity_bps=8e6)
    ends = _run_transfers([(0.0, (link,), 1e6, None), (0.0, (link,), 2e6, None)])
    assert ends == pytest.approx([2.0, 3.0])


def test_share_is_redivided_when_a_transfer_starts() -> None:
    # A alone for 1 s at 8 Mbit/s (8 of 16 Mbit done), then A and B at 4 each: A ends at 3 s.
    link = Link("ap", capacity_bps=8e6)
    ends = _run_transfers([(0.0, (link,), 2e6, None), (1.0, (link,), 2e6, None)])
    assert ends[0] == pytest.approx(3.0)
    assert ends[1] == pytest.approx(4.0)  # 8 Mbit at 4 for 2 s, then 8 more alone at 8 Mbit/s


def test_per_transfer_cap_leaves_capacity_to_others() -> None:
    # Max-min: a transfer capped at 2 Mbit/s leaves 8 of a 10 Mbit/s link to the other one.
    link = Link("server", capacity_bps=10e6)
    ends = _run_transfers([(0.0, (link,), 1e6, 2e6), (0.0, (link,), 1e6, None)])
    assert ends[0] == pytest.approx(4.0)
    assert ends[1] == pytest.approx(1.0)


def test_two_links_max_min() -> None:
    # Wi-Fi cell of 6 Mbit/s with two devices; server link of 10 Mbit/s also carries one Ethernet
    # device. Max-min: Wi-Fi devices 3 each, Ethernet gets the remaining 4 (its port cap is 100).
    wifi = Link("wifi", 6e6)
    server = Link("server", 10e6)
    size = 3e6 / 8  # 3 Mbit
    ends = _run_transfers(
        [(0.0, (wifi, server), size, None), (0.0, (wifi, server), size, None), (0.0, (server,), 4e6 / 8, 100e6)]
    )
    assert ends == pytest.approx([1.0, 1.0, 1.0])


def test_cancel_frees_capacity_and_reports_progress() -> None:
    env = Environment()
    net = Network(env)
    link = Link("ap", 8e6)
    first = net.transfer((link,), 2e6)
    second = net.transfer((link,), 2e6)
    received: list[float] = []

    def canceller():
        yield env.timeout(1.0)
        received.append(net.cancel(first))

    env.process(canceller())
    env.run(second.done)
    assert received == [pytest.approx(4e6)]  # 1 s at 4 Mbit/s
    assert env.now == pytest.approx(1.0 + 12e6 / 8e6)
    assert not first.done.triggered


def test_a_busy_link_is_work_conserving() -> None:
    """Transfers that keep one link busy end, all together, when the link has carried their bits:
    the last end is Σ sizes / capacity, whatever the overlap."""
    link = Link("ap", 50e6)
    sizes = [1e6, 3e6, 2.5e6, 7e6]
    ends = _run_transfers([(i * 0.1, (link,), s, None) for i, s in enumerate(sizes)])
    assert max(ends) == pytest.approx(sum(sizes) * 8 / 50e6, rel=1e-12)


def test_transfer_after_everything_was_cancelled_still_completes() -> None:
    # Regression: a stale completion timer once left a later transfer waiting forever.
    env = Environment()
    net = Network(env)
    link = Link("ap", 8e6)
    ends: list[float] = []

    def scenario():
        first = net.transfer((link,), 1e6)
        yield env.timeout(0.5)
        net.cancel(first)
        yield env.timeout(0.1)
        second = net.transfer((link,), 1e6)
        yield second.done
        ends.append(env.now)

    env.process(scenario())
    env.run()
    assert ends == [pytest.approx(1.6)]


def test_capacity_change_stalls_and_resumes() -> None:
    env = Environment()
    net = Network(env)
    link = Link("ap", 8e6)
    done = net.transfer((link,), 1e6)  # 1 s at full rate

    def outage():
        yield env.timeout(0.25)
        net.set_capacity(link, 0.0)
        yield env.timeout(2.0)
        net.set_capacity(link, 8e6)

    env.process(outage())
    env.run(done.done)
    assert env.now == pytest.approx(3.0)


def test_a_later_shorter_transfer_overtakes_an_earlier_longer_one() -> None:
    """A: 3 MB at t=0 on 8 Mbit/s; B: 1 MB at t=0.1. Both at 4 Mbit/s from 0.1, so B ends at 2.1 s;
    A has 1.1 MB by then and ends at 4.0 s. B's finish tag is below A's: the class's FIFO order no
    longer holds and its queue must become a heap without changing any result."""
    env = Environment()
    net = Network(env)
    link = Link("ap", capacity_bps=8e6)
    ends: dict[str, float] = {}

    def start(name: str, size_bytes: float):
        def callback(_event: simpy.Event) -> None:
            transfer = net.transfer((link,), size_bytes)
            transfer.done.callbacks.append(lambda _e: ends.__setitem__(name, env.now))
        return callback

    for name, at_s, size in (("A", 0.0, 3e6), ("B", 0.1, 1e6), ("C", 5.0, 1e6), ("D", 5.0, 1e6)):
        env.timeout(at_s).callbacks.append(start(name, size))
    env.run()
    assert ends["B"] == pytest.approx(2.1) and ends["A"] == pytest.approx(4.0)
    assert ends["C"] == pytest.approx(7.0) and ends["D"] == pytest.approx(7.0)  # two equal, after the switch
    flow_class = ends_class = net.transfer((link,), 0).flow_class  # the class of this link (a 0-byte transfer)
    assert ends_class is flow_class and not flow_class.in_order and len(flow_class.queue) == 0


# ---------------------------------------------------------------------------- Wi-Fi cells under a server


def test_cells_under_a_slack_server_are_each_processor_sharing() -> None:
    """Three cells of 100, 40 and 6 Mbit/s under a 10 Gbit/s server link: cell c's n equal transfers
    of S bits end together at n·S / C_c, whatever the other cells do."""
    server = Link("server", 10e9)
    cells = [Link(f"ap{i}", c) for i, c in enumerate([100e6, 40e6, 6e6])]
    size_bytes = 1e6  # 8 Mbit
    starts = [(0.0, (cell, server), size_bytes, None) for cell, n in zip(cells, [5, 2, 3]) for _ in range(n)]
    ends = _run_transfers(starts)
    expected = [n * 8e6 / cell.capacity_bps for cell, n in zip(cells, [5, 2, 3]) for _ in range(n)]
    assert ends == pytest.approx(expected, rel=1e-12)


def test_a_binding_server_shares_by_processor_sharing_across_cells() -> None:
    """Four roomy cells (1 Gbit/s), one transfer each, under a 100 Mbit/s server link: the server is
    the bottleneck of all, so the four are processor sharing on it. Sizes 1, 2, 3, 4 Mbit end at
    4·1/100, then + 3·1/100, + 2·1/100, + 1·1/100 seconds."""
    server = Link("server", 100e6)
    cells = [Link(f"ap{i}", 1e9) for i in range(4)]
    ends = _run_transfers([(0.0, (cell, server), mbit * 1e6 / 8, None) for cell, mbit in zip(cells, [1, 2, 3, 4])])
    assert ends == pytest.approx([0.04, 0.07, 0.09, 0.10], rel=1e-12)


def test_a_cell_takes_over_as_bottleneck_when_the_server_share_rises() -> None:
    """Server 30 Mbit/s; cell A (10 Mbit/s) with one transfer of 20 Mbit, cells B and C (1 Gbit/s)
    with one of 10 Mbit each. Max-min: A is held by its cell at 10, B and C share the rest, 10 each;
    B and C end at 1 s. Then A is alone: still 10 (its cell), so it ends at 2 s."""
    server = Link("server", 30e6)
    a, b, c = Link("a", 10e6), Link("b", 1e9), Link("c", 1e9)
    ends = _run_transfers([(0.0, (a, server), 20e6 / 8, None), (0.0, (b, server), 10e6 / 8, None),
                           (0.0, (c, server), 10e6 / 8, None)])
    assert ends == pytest.approx([2.0, 1.0, 1.0], rel=1e-12)
    # and with B and C larger, at a slower server: A is server-bound first, then its cell holds it
    server = Link("server", 12e6)
    a, b, c = Link("a", 5e6), Link("b", 1e9), Link("c", 1e9)
    # shares: 5 (A, cell-bound: 12/3 = 4 < 5, so A gets 4, server-bound), B 4, C 4 until B ends
    ends = _run_transfers([(0.0, (a, server), 12e6 / 8, None), (0.0, (b, server), 4e6 / 8, None),
                           (0.0, (c, server), 8e6 / 8, None)])
    # t=1: B done (4 Mbit at 4); A has 4, C has 4. Then server 12 / 2 = 6 > A's cell 5: A at 5, C at 7.
    # C's last 4 Mbit at 7 → t = 1 + 4/7; A's 8 Mbit left: 4/7 s at 5, then alone at 5 (its cell).
    t_c = 1 + 4 / 7
    assert ends[1] == pytest.approx(1.0, rel=1e-12) and ends[2] == pytest.approx(t_c, rel=1e-12)
    assert ends[0] == pytest.approx(1 + 8 / 5, rel=1e-12)


def test_downloads_and_uploads_on_one_cell_share_it() -> None:
    """A cell of 12 Mbit/s under a big server: a download and an upload class (different server
    links) share the cell: 2 downloads and 1 upload of 6 Mbit each get 4 Mbit/s, ending at 1.5 s."""
    down, up, cell = Link("down", 1e10), Link("up", 1e10), Link("cell", 12e6)
    ends = _run_transfers([(0.0, (cell, down), 6e6 / 8, None), (0.0, (cell, down), 6e6 / 8, None),
                           (0.0, (cell, up), 6e6 / 8, None)])
    assert ends == pytest.approx([1.5, 1.5, 1.5], rel=1e-12)


def test_idle_timers_are_counted_and_change_no_completion() -> None:
    """A (8 Mbit) and B (8 Mbit) start together on 8 Mbit/s; B is cancelled at 1.5 s. A's timer, armed
    at 1 s when it was alone, fires early (both at 4 Mbit/s: nothing due, it re-arms for 2 s); the
    cancel re-arms it for 1.75 s (6 Mbit received, 2 left at 8 Mbit/s), so the 2 s timer fires stale.
    Two idle timers, which the core benchmark leaves out of its bare loop, and A still ends at 1.75 s."""
    env = Environment()
    net = Network(env)
    link = Link("ap", capacity_bps=8e6)
    a = net.transfer((link,), 1e6)
    b = net.transfer((link,), 1e6)
    ends: dict[str, float] = {}
    a.callbacks.append(lambda _event: ends.setdefault("a", env.now))
    env.call_at(1.5, lambda _event: ends.setdefault("b received bits", net.cancel(b)))
    env.run()
    assert ends == {"b received bits": 6e6, "a": 1.75}
    assert env.idle_events == 2
    assert env.now == 2.0  # the stale timer was still processed: the model's time is SimPy's


def test_a_kept_route_is_the_class_transfer_finds() -> None:
    """Network.route gives the flow class transfer() puts a path's transfers in (made once): two
    transfers of 4 Mbit on a 8 Mbit/s cell, one through each entry, share it and end together at 1 s."""
    env = Environment()
    net = Network(env)
    cell = Link("cell", 8e6)
    route = net.route((cell,), 6e6)
    assert net.route((cell,), 6e6) is route and net.route((cell,), None) is not route
    a = net.transfer_in(route, 4e6 / 8)
    b = net.transfer((cell,), 4e6 / 8, 6e6)
    assert a.flow_class is b.flow_class is route and route.active == 2
    ends: list[float] = []
    for transfer in (a, b):
        transfer.callbacks.append(lambda _event: ends.append(env.now))
    env.run()
    assert ends == pytest.approx([1.0, 1.0], rel=1e-12)


def test_a_star_completion_queues_no_timer_that_would_fire_stale() -> None:
    """Two cells (100 Mbit/s) under a 10 Mbit/s server link: a star on it, λ = 5 Mbit/s. A (1 Mbit)
    ends at 0.2 s; B (2 Mbit, 1 received) is then alone at 10 Mbit/s and ends at 0.3 s. At A's end the
    star's next head is due at 0.4 s at the old λ, but the re-division re-arms it for 0.3 s: that
    timer is never queued (the star's callback runs twice, not three times), yet it is booked as
    before, as an idle timer that fired for nothing at 0.4 s: the run ends there. (The other idle
    timer is A's own, armed for 0.1 s while it was alone, stale once B's start made the star.)"""
    env = Environment()
    net = Network(env)
    calls: list[float] = []
    on_star_timer = net._on_star_timer

    def counting(star, timer):  # bound into each star as it is made (Network._new_star)
        calls.append(env.now)
        on_star_timer(star, timer)

    net._on_star_timer = counting  # type: ignore[method-assign]
    server = Link("server", 10e6)
    a = net.transfer((Link("cell a", 100e6), server), 1e6 / 8)
    b = net.transfer((Link("cell b", 100e6), server), 2e6 / 8)
    ends: dict[str, float] = {}
    a.callbacks.append(lambda _event: ends.setdefault("a", env.now))
    b.callbacks.append(lambda _event: ends.setdefault("b", env.now))
    env.run()
    assert ends == pytest.approx({"a": 0.2, "b": 0.3}, rel=1e-12)
    assert calls == pytest.approx([0.2, 0.3], rel=1e-12)
    assert env.idle_events == 2 and env.now == pytest.approx(0.4, rel=1e-12)


def test_star_members_due_together_complete_in_the_order_of_their_last_change() -> None:
    """Three cells (100 Mbit/s each) under a 10 Mbit/s server link: a star on it. A, B and C (8 Mbit
    each) start together, so their heads are due at one instant; B2 starts in
    B's cell at 0.1 s and A2 in A's at 0.2 s, behind their heads. Members due at one instant complete
    in the order of their last change (C, then B, then A), as when each change entered a fresh head
    in the star's heap; the heads' entries stand, so this checks the tie rule that keeps that order.
    Closed form: 10/3 Mbit/s each until 0.1, 2.5 until 0.2, then 2: each of A, B, C has 0.333… +
    0.25 + 2·(t − 0.2) Mbit at t, so all three end at t = 0.2 + (8 − 0.58333…)/2 = 3.908333… s."""
    env = Environment()
    net = Network(env)
    server = Link("server", capacity_bps=10e6)
    cells = [Link(f"ap{i}", capacity_bps=100e6) for i in range(3)]
    ends: list[tuple[str, float]] = []

    def start(cell: int, name: str) -> None:
        transfer = net.transfer((cells[cell], server), 1e6)
        transfer.callbacks.append(lambda _event: ends.append((name, env.now)))

    for cell, name in enumerate("ABC"):
        start(cell, name)
    env.call_at(0.1, lambda _event: start(1, "B2"))
    env.call_at(0.2, lambda _event: start(0, "A2"))
    env.run()
    assert [name for name, _ in ends] == ["C", "B", "A", "B2", "A2"]
    assert [t for _, t in ends[:3]] == pytest.approx([0.2 + (8 - 1 / 3 - 0.25) / 2] * 3, rel=1e-12)
    assert ends[0][1] == ends[1][1] == ends[2][1]
