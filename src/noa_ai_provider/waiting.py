"""Admission with waiting: the first-come, first-served queue of ``acquire(wait=True)`` and its sync and async loops.

A :class:`WaitQueue` sits in front of a store. A caller that may take capacity now (nobody waits for its model,
or it is at the head of the queue) asks the store to reserve; the others wait, so a big request is not starved
by small ones and a non-waiting call does not overtake a waiter. Waiters sleep until the store announces freed
capacity (:meth:`WaitQueue.wake`, the store's listener), until the binding limit's ``retry_after``, or until
their timeout; async waiters await an :class:`asyncio.Event` set through their loop, never blocking it.

Locks: the queue's lock is taken before the store's (never after), and the store announces freed capacity only
after releasing its own, so the two never wait on each other.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is imported when an async waiter needs it (about 10 ms of import otherwise)
    import asyncio

from .errors import RateLimitExceeded, RateLimitTimeout
from .reservation import Hold
from .schemas import ModelCost, RateLimitCheck
from .stores.base import Store

__all__ = ["WaitQueue"]

_POLL = 0.05  # real seconds between looks when the clock is injected (we cannot know how fast it moves)
_AUTOJUMP_GRACE = 0.002  # real seconds every waiter sleeps before an auto-advancing clock jumps
_CLAIMS = itertools.count(1)
_QUEUED = RateLimitCheck(allowed=False, reason="queued behind earlier waiters", retry_after=0.0)


class _Waiter:
    """A caller queued in ``acquire(wait=True)``; async ones are woken through their event loop."""

    __slots__ = ("event", "input_tokens", "loop", "output_tokens", "wake_at")

    def __init__(self, input_tokens: int, output_tokens: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.loop = loop
        self.wake_at: float | None = None  # clock time it sleeps until (for an auto-advancing clock)
        self.event: asyncio.Event | None = None
        if loop is not None:
            import asyncio

            self.event = asyncio.Event()

    def wake(self) -> None:
        if self.loop is not None and self.event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to wake
                self.loop.call_soon_threadsafe(self.event.set)


class _Acquisition:
    """The state of one acquire call across its attempts."""

    __slots__ = (
        "announced",
        "claim",
        "cost",
        "deadline",
        "first",
        "inp",
        "key",
        "loop",
        "out",
        "real_deadline",
        "timeout",
        "wait",
        "waiter",
    )

    def __init__(self, key: str, inp: int, out: int, cost: ModelCost | None, timeout: float | None, wait: bool) -> None:
        self.key = key
        self.inp = inp
        self.out = out
        self.cost = cost
        self.timeout = timeout
        self.wait = wait
        self.deadline: float | None = None
        # `timeout` bounds real time too, so a frozen (or slow) injected clock cannot keep a waiter for ever.
        self.real_deadline = None if timeout is None else time.monotonic() + timeout
        self.waiter: _Waiter | None = None
        self.first: Hold | RateLimitCheck | None = None  # an attempt made before the loop
        self.announced = False
        # Who this caller is to a store shared by several processes: a waiting caller keeps its place there.
        self.claim = f"w{next(_CLAIMS)}" if wait else ""
        self.loop: asyncio.AbstractEventLoop | None = None


class WaitQueue:
    """FIFO admission in front of ``store``. Thread-safe.

    ``now`` reads the registry's clock; ``ttl`` is how long a reservation may stay open; ``refused(key, check)``
    is called (outside every lock) before a refusal is raised or a wait begins, for the ``rate-limited`` event;
    ``auto_advance``, when given, returns the function that moves an injected clock to the earliest wake-up when
    every waiter sleeps, or None while the clock does not auto-advance (``testing.FakeClock(auto_advance=True)``;
    read at every wait, so switching it on or off later takes effect); ``real_clock`` says whether ``now`` is the
    real time.
    """

    def __init__(
        self,
        store: Store,
        now: Callable[[], float],
        ttl: float,
        refused: Callable[[str, RateLimitCheck], None],
        *,
        auto_advance: Callable[[], Callable[[float], None] | None] | None = None,
        real_clock: bool = True,
    ) -> None:
        self._store = store
        self._now = now
        self._ttl = ttl
        self._refused = refused
        self._advancer = auto_advance
        self._real_clock = real_clock
        self._lock = threading.RLock()  # reentrant: the store may announce freed capacity inside an attempt
        self._cond = threading.Condition(self._lock)
        self._queues: dict[str, deque[_Waiter]] = {}
        store.listen(self.wake)

    @property
    def _auto_advance(self) -> Callable[[float], None] | None:
        # The clock's jump, while it auto-advances (asked each time: a test may switch it after the registry exists).
        return None if self._advancer is None else self._advancer()

    def after_fork(self) -> None:
        """In a forked child: the waiters belong to threads that did not come along."""
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._queues = {}

    def fork_locks(self) -> list[Any]:
        return [self._lock]

    def waiting(self) -> dict[str, int]:
        """How many callers wait per key (keys nobody waits for are left out)."""
        with self._lock:
            return {key: len(queue) for key, queue in self._queues.items() if queue}

    def wake(self, key: str) -> None:
        """Every waiter of ``key`` looks again (the store freed capacity, or limits changed)."""
        if key not in self._queues:  # the common case, without the lock
            return
        with self._lock:
            queue = self._queues.get(key)
            if not queue:
                return
            self._cond.notify_all()
            for waiter in queue:
                waiter.wake()

    # ------------------------------------------------------------------ the loops

    def acquire(
        self, key: str, inp: int, out: int, cost: ModelCost | None, *, wait: bool, timeout: float | None
    ) -> Hold:
        """Reserve for ``key``, waiting when ``wait``; returns the hold (``hold.at``: when it was taken). Raises
        :class:`RateLimitExceeded` / :class:`RateLimitTimeout` (after ``refused``)."""
        first = None
        acq = None
        if not self._queues.get(key):  # nobody waits: no queue to respect (the common case)
            if wait:
                acq = _Acquisition(key, inp, out, cost, timeout, wait)
                first = self._store.reserve(key, inp, out, cost, self._ttl, acq.claim)
            else:
                first = self._store.reserve(key, inp, out, cost, self._ttl)
            if type(first) is Hold:
                return first
        if acq is None:
            acq = _Acquisition(key, inp, out, cost, timeout, wait)
        acq.first = first
        try:
            while True:
                step = self._step(acq, block=True)
                if type(step) is Hold:
                    acq.claim = ""  # admitted: the store took its claim back with the admission
                    return step
        finally:
            if acq.waiter is not None:
                self._drop(key, acq.waiter)
            if acq.claim:  # gave up (timeout, refusal, error): its place in a shared store's queue goes at once
                self._store.unclaim(key, acq.claim)

    async def acquire_async(
        self, key: str, inp: int, out: int, cost: ModelCost | None, *, wait: bool, timeout: float | None
    ) -> Hold:
        """:meth:`acquire` for event loops: waiting awaits instead of blocking (same queue, same order)."""
        acq = _Acquisition(key, inp, out, cost, timeout, wait)
        import asyncio

        acq.loop = asyncio.get_running_loop()
        store = self._store
        try:
            while True:
                if store.remote:
                    # A round trip must not block the event loop: the caller's own reservation through the store's
                    # asyncio client when it may take capacity now; any other attempt in a worker thread.
                    if self._may_take(acq):
                        taken = await store.areserve(key, inp, out, cost, self._ttl, acq.claim)
                        if type(taken) is Hold:
                            self._took(acq)
                            acq.claim = ""
                            return taken
                        acq.first = taken
                    step = await asyncio.to_thread(self._step, acq, block=False)
                else:
                    step = self._step(acq, block=False)
                if type(step) is Hold:
                    acq.claim = ""
                    return step
                if isinstance(step, float) and acq.waiter is not None and acq.waiter.event is not None:
                    try:
                        await asyncio.wait_for(acq.waiter.event.wait(), step)
                    except TimeoutError:
                        if self._auto_advance is not None:
                            with self._lock:
                                self._autojump()
                    acq.waiter.event.clear()
        finally:
            if acq.waiter is not None:
                self._drop(key, acq.waiter)
            if acq.claim:
                if store.remote:
                    await asyncio.to_thread(store.unclaim, key, acq.claim)
                else:
                    store.unclaim(key, acq.claim)

    def _step(self, acq: _Acquisition, *, block: bool) -> Hold | float | None:
        # One attempt: the hold; or the seconds to sleep before the next attempt (async), or None to attempt again
        # (after announcing the wait, or after a blocking wait). Raises the refusal after `refused`.
        with self._lock:
            now = self._now()
            if acq.deadline is None and acq.timeout is not None:
                acq.deadline = now + acq.timeout
            result = self._attempt(acq)
            if type(result) is Hold:
                return result
            assert isinstance(result, RateLimitCheck)
            failure = _failure(acq, result, now)
            if failure is None:
                if acq.waiter is None:
                    acq.waiter = _Waiter(acq.inp, acq.out, acq.loop)
                    self._queues.setdefault(acq.key, deque()).append(acq.waiter)
                if acq.announced:
                    delay = self._delay(result, acq.deadline, now)
                    if self._auto_advance is not None:
                        # An auto-advancing clock: sleep briefly in real time; if nothing wakes us, move the clock
                        # to the earliest wake-up of all waiters (see testing.FakeClock).
                        wanted = result.retry_after if result.retry_after else 0.0
                        if acq.deadline is not None:
                            wanted = min(wanted, max(acq.deadline - now, 0.0))
                        acq.waiter.wake_at = now + wanted if wanted > 0 else None
                        delay = _AUTOJUMP_GRACE
                    if not block:
                        return delay
                    woken = self._cond.wait(delay)  # releases the lock while waiting: no wake-up is missed
                    if not woken and self._auto_advance is not None:
                        self._autojump()
                    return None
        self._refused(acq.key, result)
        if failure is not None:
            raise failure
        acq.announced = True
        return None

    def _may_take(self, acq: _Acquisition) -> bool:
        # Whether `acq` may take capacity now: nobody waits for its model, or it is the first waiter.
        with self._lock:
            queue = self._queues.get(acq.key)
            return not queue or queue[0] is acq.waiter

    def _took(self, acq: _Acquisition) -> None:
        # `acq` was admitted outside the loop's steps: it leaves the queue as _attempt's admissions do.
        with self._lock:
            queue = self._queues.get(acq.key)
            if queue and queue[0] is acq.waiter:
                queue.popleft()
                if not queue:
                    del self._queues[acq.key]
                self.wake(acq.key)

    def _attempt(self, acq: _Acquisition) -> Hold | RateLimitCheck:
        # Under the lock. First come, first served: only the head of the queue (or anyone when nobody waits) may
        # take capacity; the others hear the head's reason. (The first attempt of a call that found nobody waiting
        # was made already, without the lock: its refusal is taken as it is.)
        first = acq.first
        if first is not None:
            acq.first = None
            return first
        store = self._store
        queue = self._queues.get(acq.key)
        if queue and queue[0] is not acq.waiter:
            own = store.check(acq.key, acq.inp, acq.out)
            if own.retry_after is None and not own.allowed:
                return own  # can never fit: say so now rather than queue it forever
            head = queue[0]
            check = store.check(acq.key, head.input_tokens, head.output_tokens)
            return _QUEUED if check.allowed else check  # the head is about to be admitted: wait for it
        result = store.reserve(acq.key, acq.inp, acq.out, acq.cost, self._ttl, acq.claim)
        if type(result) is Hold and queue:
            queue.popleft()
            if not queue:
                del self._queues[acq.key]
            self.wake(acq.key)  # the next waiter may fit too
        return result

    def _autojump(self) -> None:
        # Under the lock, with an auto-advancing clock: every waiter slept through its grace period, so move the
        # clock to the earliest time one of them waits for.
        times = [w.wake_at for queue in self._queues.values() for w in queue if w.wake_at is not None]
        jump = self._auto_advance
        if times and jump is not None:
            jump(min(times))
            for queue in self._queues.values():
                for waiter in queue:
                    waiter.wake_at = None
            self._cond.notify_all()
            for queue in self._queues.values():
                for waiter in queue:
                    waiter.wake()

    def _delay(self, check: RateLimitCheck, deadline: float | None, now: float) -> float:
        # Seconds of real time to sleep before trying again. With an injected clock we cannot know how fast it
        # moves, so we look again soon; commits, cancels and header updates wake waiters at once anyway.
        delay = check.retry_after if check.retry_after else _POLL
        if deadline is not None:
            delay = min(delay, max(deadline - now, 0.0))
        if not self._real_clock:
            delay = min(delay, _POLL)
        return max(delay, 0.0005)

    def _drop(self, key: str, waiter: _Waiter) -> None:
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None and waiter in queue:
                was_head = queue[0] is waiter
                queue.remove(waiter)
                if not queue:
                    del self._queues[key]
                elif was_head:
                    self.wake(key)


def _failure(acq: _Acquisition, check: RateLimitCheck, now: float) -> RateLimitExceeded | None:
    key = acq.key
    reason = check.reason or "rate limit"
    if check.retry_after is None:
        return RateLimitExceeded(key, reason, None)
    if not acq.wait:
        return RateLimitExceeded(key, reason, check.retry_after)
    if (acq.deadline is not None and now >= acq.deadline) or (
        acq.real_deadline is not None and time.monotonic() >= acq.real_deadline
    ):
        return RateLimitTimeout(
            key, reason, check.retry_after, f"{key}: not admitted within {acq.timeout} s ({reason} limit)"
        )
    return None
