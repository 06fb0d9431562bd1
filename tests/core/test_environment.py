"""simulator.environment.Environment: the SimPy it relies on, and that its fast operations are SimPy's.

The environment writes SimPy's private state (the event queue, the event counter, an event's value
and state). These tests fail, naming what changed, if another SimPy release is installed or those
internals move; and they check that every fast operation orders events exactly as SimPy's own API.
"""

from __future__ import annotations

import itertools

import simpy
from simpy.events import NORMAL, PENDING, URGENT, Timeout

from simulator.environment import SIMPY_VERSION, STEP_SOURCE_SHA256, Environment, processed_events


def test_the_installed_simpy_is_the_one_pinned() -> None:
    assert simpy.__version__.startswith(SIMPY_VERSION + "."), (
        f"simulator/environment.py writes SimPy {SIMPY_VERSION}'s private state; SimPy {simpy.__version__} is "
        "installed. Check Environment against its core.py/events.py, then update SIMPY_VERSION and pyproject.toml.")


def test_simpy_step_is_the_one_environment_step_repeats() -> None:
    import hashlib
    import inspect

    digest = hashlib.sha256(inspect.getsource(simpy.Environment.step).encode()).hexdigest()
    assert digest == STEP_SOURCE_SHA256, (
        "simpy.Environment.step changed: simulator.environment.Environment.step repeats it (to keep `now` an "
        "attribute); bring it in line with the new one and update STEP_SOURCE_SHA256")


def test_now_is_simpys_clock() -> None:
    env = Environment(initial_time=3)
    seen: list[tuple[float, float]] = []
    env.call_later(1.5, lambda _e: seen.append((env.now, simpy.Environment.now.fget(env))))
    env.run()
    assert env.now == 4.5 and seen == [(4.5, 4.5)]


def test_simpy_keeps_the_private_state_the_environment_writes() -> None:
    env = simpy.Environment()
    assert isinstance(env._queue, list) and isinstance(env._eid, itertools.count) and env._now == 0, \
        "simpy.Environment no longer has _queue (list), _eid (itertools.count) and _now"
    event = env.event()
    assert event._value is PENDING and "_ok" not in vars(event), "a new Event's value is no longer PENDING"
    timeout = env.timeout(2.5, value="v")
    assert (vars(timeout)["_delay"], timeout._ok, timeout._value) == (2.5, True, "v"), \
        "Timeout no longer keeps _delay, _ok and _value"
    assert env._queue[-1][0] == 2.5 and env._queue[-1][1] == NORMAL and env._queue[-1][3] is timeout, \
        "Environment.schedule no longer queues (time, priority, id, event)"
    event.succeed(7)
    assert (event._ok, event._value) == (True, 7), "Event.succeed no longer sets _ok and _value"


def _order(make) -> list[str]:
    """The order in which labelled callbacks run when `make(env, log)` schedules them."""
    log: list[str] = []
    env = make(log)
    env.run()
    return log


def test_fast_operations_order_events_as_simpy_does() -> None:
    """The same schedule written with SimPy's API and with the fast operations runs in one order."""

    def with_simpy(log: list[str]) -> simpy.Environment:
        env = simpy.Environment()
        for i, delay in enumerate([1.0, 0.0, 1.0, 2.0, 0.0]):
            env.timeout(delay).callbacks.append(lambda _e, i=i: log.append(f"t{i}"))
        waiting = env.event()
        waiting.callbacks.append(lambda _e: log.append("succeeded"))
        env.timeout(1.0).callbacks.append(lambda _e: waiting.succeed())
        env.timeout(1.0).callbacks.append(lambda _e: log.append("after"))
        start = simpy.events.Event(env)
        start._ok, start._value = True, None
        start.callbacks.extend([lambda _e: log.append("u0"), lambda _e: log.append("u1")])
        env.schedule(start, URGENT)
        at = env.timeout(1.5)
        at.callbacks.append(lambda _e: log.append("at"))
        return env

    def fast(log: list[str]) -> Environment:
        env = Environment()
        for i, delay in enumerate([1.0, 0.0, 1.0, 2.0, 0.0]):
            env.call_later(delay, lambda _e, i=i: log.append(f"t{i}"))
        waiting = env.event()
        waiting.callbacks.append(lambda _e: log.append("succeeded"))
        env.call_later(1.0, lambda _e: env.succeed_now(waiting))
        env.call_later(1.0, lambda _e: log.append("after"))
        env.urgent([lambda _e: log.append("u0"), lambda _e: log.append("u1")])
        env.call_at(1.5, lambda _e: log.append("at"))
        return env

    assert _order(fast) == _order(with_simpy) == ["u0", "u1", "t1", "t4", "t0", "t2", "after", "succeeded", "at",
                                                 "t3"]


def test_fast_timeouts_are_simpy_timeouts() -> None:
    env = Environment()
    seen: list[float] = []
    timeout = env.call_later(0.25, lambda e: seen.append(env.now))
    assert isinstance(timeout, Timeout) and timeout.triggered and not timeout.processed
    env.run()
    assert seen == [0.25] and timeout.processed and timeout.ok and timeout.value is None


def test_nothing_else_now_and_processed_events() -> None:
    env = Environment()
    answers: list[bool] = []
    env.call_later(1.0, lambda _e: answers.append(env.nothing_else_now()))
    env.call_later(1.0, lambda _e: answers.append(env.nothing_else_now()))
    env.call_later(2.0, lambda _e: None)
    env.run(until=1.5)
    assert answers == [False, True]  # the first one saw the second still due at t = 1
    assert processed_events(env) == 3  # two timeouts and run's own until-event


def test_a_held_timer_keeps_its_place_and_a_dropped_one_is_booked_as_fired() -> None:
    """hold_at takes a timer's place among the events of its instant when it is made: pushed later in
    the same callback it still runs before a timeout for the same time made in between. A dropped one
    never runs, but is booked as a timer that fired for nothing: processed, idle, and the clock of a
    run whose queue empties ends at its time (2 s here, after the last event at 1 s)."""
    env = Environment()
    log: list[str] = []

    def at_start(_event: object) -> None:
        held = env.hold_at(1.0, lambda _e: log.append("held"))
        env.call_at(1.0, lambda _e: log.append("made after"))
        env.push(held)
        env.drop(env.hold_at(2.0, lambda _e: log.append("dropped")))

    env.call_later(0.0, at_start)
    env.run()
    assert log == ["held", "made after"]
    assert env.now == 2.0 and env.idle_events == 1
    assert processed_events(env) == 4  # the start, the two at 1 s and the dropped one
