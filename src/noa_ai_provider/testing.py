"""Helpers for tests of code that uses the registry: a fake clock, an event recorder, and the few views of live
state a test needs (what a rate-limit window counts, who waits, which writer a registry is).

Also exposed as pytest fixtures by :mod:`noa_ai_provider.pytest_plugin` (``noa_clock``, ``noa_registry``,
``noa_events``), installed automatically with the package.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .events import EVENTS
from .registry import EnhancedModelRegistry

__all__ = [
    "EventRecorder",
    "FakeClock",
    "RecordedEvent",
    "busy",
    "waiting",
    "window_entries",
    "window_totals",
    "writer_id",
]


class FakeClock:
    """A clock for ``EnhancedModelRegistry(clock=...)`` that moves only when told. Thread-safe.

    With ``auto_advance=True`` it also moves by itself, as trio's autojump clock does: when every caller waiting in
    ``acquire(wait=True)`` (or ``acquire_async``) has slept a couple of milliseconds of real time without being
    woken, the registry moves the clock to the earliest time one of them waits for. A test of a rate-limited worker
    then runs at full speed and deterministically, however long the waits it simulates.

    ``acquire(..., timeout=T)`` also bounds real time, so even a frozen clock never keeps a waiter longer than
    ``T`` real seconds.

    >>> clock = FakeClock(1000.0)
    >>> clock.advance(59.9)
    >>> clock()
    1059.9

    .. versionchanged:: 0.2.0
       The ``auto_advance`` argument: the clock jumps to the next wake-up when every waiter sleeps.
    """

    def __init__(self, start: float = 1_700_000_000.0, auto_advance: bool = False) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.auto_advance = bool(auto_advance)

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (must be >= 0)."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards; use set() to test that on purpose")
        with self._lock:
            self._now += seconds

    def advance_to(self, when: float) -> None:
        """Move forward to ``when`` (no change when the clock is already there or past it).

        .. versionadded:: 0.2.0
        """
        with self._lock:
            self._now = max(self._now, float(when))

    def set(self, now: float) -> None:
        """Jump to ``now`` seconds since the epoch (backwards too: the registry then keeps its last reading)."""
        with self._lock:
            self._now = float(now)


@dataclass(frozen=True)
class RecordedEvent:
    """One event: its name and payload (the sender is the registry)."""

    name: str
    payload: dict[str, Any] = field(default_factory=dict)


class EventRecorder:
    """Records every event of a registry, in order. Thread-safe.

    >>> recorder = EventRecorder()          # doctest: +SKIP
    >>> recorder.attach(registry)           # doctest: +SKIP
    >>> recorder.names()                    # doctest: +SKIP
    ['model-registered', 'usage-recorded']
    """

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self._lock = threading.Lock()
        self._handlers: list[tuple[EnhancedModelRegistry, str, Any]] = []

    def attach(self, registry: EnhancedModelRegistry) -> EventRecorder:
        """Start recording every event of ``registry``; returns ``self``."""
        for name in EVENTS:

            def handler(sender: object, _name: str = name, **payload: Any) -> None:
                with self._lock:
                    self.events.append(RecordedEvent(_name, payload))

            registry.on(name, handler)
            self._handlers.append((registry, name, handler))
        return self

    def detach(self) -> None:
        """Stop recording."""
        for registry, name, handler in self._handlers:
            registry.off(name, handler)
        self._handlers.clear()

    def names(self) -> list[str]:
        """The names of the recorded events, in order."""
        with self._lock:
            return [e.name for e in self.events]

    def of(self, name: str) -> list[dict[str, Any]]:
        """The payloads of the recorded ``name`` events, in order."""
        with self._lock:
            return [e.payload for e in self.events if e.name == name]

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self.events.clear()


def waiting(registry: EnhancedModelRegistry) -> dict[str, int]:
    """How many callers wait in ``acquire(wait=True)`` (or ``acquire_async``) per model key; models nobody waits
    for are left out, so ``{}`` means no waiter is queued (none leaked after a timeout or a cancellation).

    .. versionadded:: 0.2.0
    """
    return registry._queue.waiting()


def window_totals(registry: EnhancedModelRegistry, key: str) -> dict[str, int]:
    """What each enforced rate-limit window of ``key`` counts now, by limit name (``requests_per_minute``,
    ``tokens_per_minute``...): recorded traffic, open reservations and provider reports, at the registry's clock.
    Limits learned from headers are included; a model without limits gives ``{}``.

    .. versionadded:: 0.2.0
    """
    key = registry.resolve_key(key)
    return registry._store.window_totals(key)


def window_entries(registry: EnhancedModelRegistry, key: str) -> int:
    """How many entries the in-memory windows of ``key`` hold (shadows of removed limits included): the memory a
    model's rate limiting uses, for tests that bound it. The memory and Redis stores count them (a store that does
    not: ``TypeError``).

    .. versionadded:: 0.2.0
    """
    store = registry._store
    count = getattr(store, "entry_count", None)
    if count is None:
        raise TypeError(f"window_entries needs a store that counts its entries, not {store!r}")
    return int(count(registry.resolve_key(key)))


def writer_id(registry: EnhancedModelRegistry) -> str:
    """The id under which ``registry`` writes its snapshot file (its watermark in the file's ``writers``) and
    journal records; unique per registry and process (a forked child gets its own).

    .. versionadded:: 0.2.0
    """
    return registry._writer_id


@contextlib.contextmanager
def busy(registry: EnhancedModelRegistry) -> Iterator[None]:
    """Hold ``registry``'s locks for the block, as a thread halfway through a change would (tests of what a fork
    or a concurrent caller meets). Calling the registry from the same thread inside the block deadlocks.

    .. versionadded:: 0.2.0
    """
    locks = registry._fork_locks()
    for lock in locks:
        lock.acquire()
    try:
        yield
    finally:
        for lock in reversed(locks):
            lock.release()
