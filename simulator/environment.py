"""fleetsim's SimPy environment: the one owner of SimPy's private state.

Why a subclass: a timing-only client-round creates or triggers about eight events (latency and
compute timeouts, transfer completions, network timers), and each SimPy call there is two or three
Python frames (``Timeout.__init__`` → ``Environment.schedule``, ``Event.succeed`` → ``schedule``):
several per cent of a 10,000-device loop. The methods below push exactly the queue entries SimPy's
own code would, ``(time, priority, next event id, event)``, so event order and traces are SimPy's.
SimPy's ``rt.RealtimeEnvironment`` is the model: a subclass that alone knows the base's internals.

Nothing else in fleetsim reads or writes an underscore attribute of SimPy (``_queue``, ``_eid``,
``_now``, an event's ``_value``, ``_ok``, ``_delay``): that is what lets SimPy be pinned in one place.
It relies on SimPy 4.1 (``SIMPY_VERSION``); ``tests/core/test_environment.py`` fails, naming the
attribute, if another SimPy is installed or these internals change.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Callable, Iterable

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, PENDING, URGENT, Event, EventPriority, Timeout

# The SimPy release whose internals the methods below write (pyproject.toml pins simpy==4.1.*), and
# the SHA-256 of its Environment.step source, which Environment.step repeats.
SIMPY_VERSION = "4.1"
STEP_SOURCE_SHA256 = "8fea2b488c8ad7faecfa46ea6759b01821dce350cd54301caac0cbe0f13185a0"

_new_object = object.__new__
Callback = Callable[[Event], None]


class Environment(simpy.Environment):
    """A ``simpy.Environment`` with the few fast operations fleetsim's hot loop needs.

    `now` is a plain attribute here (SimPy's is a property over `_now`, a call per read; the hot
    loop reads it several times per event): :meth:`step` keeps the two equal."""

    now = 0.0  # shadows the base class's property; an instance attribute from __init__ on

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.now = initial_time
        # Events processed that stood for no step of the model: a completion timer found stale (SimPy
        # cannot take an event back, so a re-armed clock leaves its old timer to fire for nothing) or
        # early (nothing due yet: it only re-arms). The network counts them; the core benchmark gives
        # its bare SimPy loop the events of the model, not these (benchmarks/core_throughput.py).
        self.idle_events = 0
        # The latest time of a held timer dropped unqueued (hold_at, drop): a run whose queue empties
        # ends there if that is later than its last event, as it did when such timers fired for nothing.
        self.dropped_until_s = initial_time

    def step(self) -> None:
        """SimPy 4.1's ``Environment.step`` (the same statements: STEP_SOURCE_SHA256 is the hash of
        its source), which also sets :attr:`now` and, when the queue is empty, moves the clock to the
        last dropped timer's time if that is later (:meth:`drop`)."""
        try:
            self._now, _, _, event = heappop(self._queue)
        except IndexError:
            if self.dropped_until_s > self._now:  # (not in SimPy's step: see drop)
                self._now = self.now = self.dropped_until_s
            raise EmptySchedule from None
        self.now = self._now
        # Process callbacks of the event. Set the events callbacks to None immediately to prevent
        # concurrent modifications.
        callbacks, event.callbacks = event.callbacks, None  # type: ignore
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:
            # Reassociate any remaining callbacks with the event and reschedule the event to be
            # processed when the simulation resumes.
            event.callbacks = callbacks[callbacks.index(callback) + 1:]
            self.schedule(event, EventPriority(-1))
            raise
        if not event._ok and not hasattr(event, "_defused"):
            # The event has failed and has not been defused. Crash the environment. Create a copy
            # of the failure exception with a new traceback.
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc

    def call_later(self, delay_s: float, callback: Callback) -> Timeout:
        """``env.timeout(delay_s)`` with `callback` attached: it runs `delay_s` from now."""
        if delay_s < 0:
            raise ValueError(f"Negative delay {delay_s}")
        event = _new_object(Timeout)
        event.env = self
        event.callbacks = [callback]
        event._value = None
        event._delay = delay_s
        event._ok = True
        heappush(self._queue, (self._now + delay_s, NORMAL, next(self._eid), event))
        return event

    def call_at(self, time_s: float, callback: Callback) -> Timeout:
        """:meth:`call_later` at the absolute time `time_s` (not now + a delay: the same float as
        when `time_s` was computed, whenever this is called)."""
        entry = self.hold_at(time_s, callback)
        heappush(self._queue, entry)
        return entry[3]

    def hold_at(self, time_s: float, callback: Callback) -> tuple[float, EventPriority, int, Timeout]:
        """:meth:`call_at`'s timeout and queue entry, not queued yet: :meth:`push` queues it later in
        this callback, in the place it has now among the events of its instant (its event id is
        taken now, and the queue orders by time, priority, id). A caller that finds the timer
        superseded before then drops it (:meth:`drop`) instead: it would only have fired for nothing."""
        delay_s = time_s - self._now
        if delay_s < 0:
            raise ValueError(f"{time_s} is in the past (now {self._now})")
        event = _new_object(Timeout)
        event.env = self
        event.callbacks = [callback]
        event._value = None
        event._delay = delay_s
        event._ok = True
        return (time_s, NORMAL, next(self._eid), event)

    def push(self, entry: tuple[float, EventPriority, int, Event]) -> None:
        """Queue an entry from :meth:`hold_at` (in the callback that made it: time has not moved)."""
        heappush(self._queue, entry)

    def drop(self, entry: tuple[float, EventPriority, int, Event]) -> None:
        """Never queue an entry from :meth:`hold_at`: a timer that would have fired for nothing. It is
        booked as if it had: its id is spent (:func:`processed_events` counts it), it is an idle
        event, and a run whose queue empties ends no earlier than its time."""
        self.idle_events += 1
        if entry[0] > self.dropped_until_s:
            self.dropped_until_s = entry[0]

    def succeed_now(self, event: Event, value: Any = None) -> None:
        """``event.succeed(value)``: processed at this instant, after what is already queued for it."""
        if event._value is not PENDING:
            raise RuntimeError(f"{event} has already been triggered")
        event._ok = True
        event._value = value
        heappush(self._queue, (self._now, NORMAL, next(self._eid), event))

    def urgent(self, callbacks: Iterable[Callback], value: Any = None) -> Event:
        """One succeeded event at URGENT priority, at this instant, running `callbacks` in order.

        What a batch of process starts (``env.process`` schedules each at URGENT) or an interrupt
        is: the callbacks run before every NORMAL event of this instant, in the order given."""
        event = Event(self)
        event.callbacks.extend(callbacks)
        event._ok = True
        event._value = value
        heappush(self._queue, (self._now, URGENT, next(self._eid), event))
        return event

    def nothing_else_now(self) -> bool:
        """True when no other event is due at this instant (``peek() > now``): an action due at the end
        of this instant may then be done at once, since nothing could come between."""
        queue = self._queue
        return not queue or queue[0][0] > self._now


def processed_events(env: simpy.Environment) -> int:
    """How many events `env` has taken off its queue: every scheduled event got a fresh id from its
    counter, and those not yet processed are still queued (no per-event hook needed)."""
    return next(env._eid) - len(env._queue)
