"""SimPy events created and triggered with SimPy's own constructor and ``schedule`` code inlined.

Why: a timing-only client-round creates or triggers about eight events (latency and compute
timeouts, transfer completions, network timers). Each SimPy call there is two or three Python frames
(``Timeout.__init__`` → ``Environment.schedule``, ``Event.succeed`` → ``schedule``), which were
several per cent of a 10,000-device loop. These helpers push exactly the queue entries SimPy would,
``(time, priority, next event id, event)``, so event order and traces stay identical. They rely on
SimPy 4's ``_queue``, ``_eid`` and ``_now``, like the rest of the hot loop (ARCHITECTURE.md).
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

import simpy
from simpy.events import NORMAL, Event, Timeout

_new_object = object.__new__


def new_event(env: simpy.Environment) -> Event:
    """``Event(env)``: pending, no callbacks yet."""
    event = _new_object(Event)
    event.env = env
    event.callbacks = []
    return event


def timeout(env: simpy.Environment, delay_s: float, callback: Callable[[Event], None] | None = None) -> Timeout:
    """``Timeout(env, delay_s)``, with `callback` attached when given."""
    if delay_s < 0:
        raise ValueError(f"Negative delay {delay_s}")
    event = _new_object(Timeout)
    event.env = env
    event.callbacks = [] if callback is None else [callback]
    event._value = None
    event._delay = delay_s
    event._ok = True
    heappush(env._queue, (env._now + delay_s, NORMAL, next(env._eid), event))
    return event


def succeed(event: Event, value: Any = None) -> None:
    """``event.succeed(value)``: processed at this instant, after what is already queued for it."""
    if event._value is not simpy.events.PENDING:
        raise RuntimeError(f"{event} has already been triggered")
    event._ok = True
    event._value = value
    env = event.env
    heappush(env._queue, (env._now, NORMAL, next(env._eid), event))
