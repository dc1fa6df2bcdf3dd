"""The store interface: what ``EnhancedModelRegistry`` needs of the place where its live state is kept.

The registry is the front door (argument checks, the catalogue of model definitions, events, persistence of the
definitions); everything that changes with traffic lives in a :class:`Store`: the rate-limit windows and open
reservations, the usage counters and daily history, performance metrics and access counts, the budgets' spend
and holds, limits learned from provider headers and ``retry-after`` cooldowns.

What every store guarantees (the registry's promises rest on these; the test suite runs its rate-limit, reservation,
budget, waiting and header tests on every store through the ``store`` fixture of ``tests/conftest.py``):

- **Each operation is atomic on its own.** :meth:`Store.reserve` checks every limit and every budget that applies
  to the model and takes them all, or takes nothing and says which refused and when to retry. :meth:`Store.settle`
  corrects a reservation to the real usage and records it (counters, history, budgets) in one step;
  :meth:`Store.release` gives it back. A reservation is settled or released at most once, whoever asks.
- **Thread-safe**, and never calls back into the registry while holding a lock of its own: freed capacity is
  announced through the listener given to :meth:`Store.listen`, after the store's locks are released.
- **Exact money**: costs are ``Decimal`` in and out, never rounded, never floats.
- **One time per operation**: an operation on traffic (``check``, ``reserve``, ``settle``, ``release``, ``record``,
  ``window_totals``) reads the clock once, inside its own atomic step, so the order of readings is the order of
  the changes (the windows' history is then exactly what happened). The memory store reads the registry's clock
  (given to :meth:`Store.bind`); a store with a clock of its own (a server's) uses that. Bookkeeping operations
  take ``now`` from the registry.
- **Errors**: unknown keys raise :class:`~noa_ai_provider.errors.ModelNotFoundError`; a request over a budget
  :class:`~noa_ai_provider.errors.BudgetExceededError`; failures of the store itself a
  :class:`~noa_ai_provider.errors.RegistryError` chained from the original.

See ``docs/stores.md`` for how to write one.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from ..headers import ProviderLimits
from ..reservation import Hold
from ..schemas import (
    BudgetStatus,
    ModelCost,
    ModelPerformanceMetrics,
    ModelUsageStats,
    RateLimitCheck,
    RateLimitConfig,
    UsageHistoryEntry,
)

__all__ = ["Live", "Recorded", "RequestUsage", "Store"]


class RequestUsage(NamedTuple):
    """One request's usage, checked by the registry. ``input_tokens`` includes the cache reads and writes.

    .. versionadded:: 0.2.0
    """

    input_tokens: int
    output_tokens: int
    success: bool
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0  # every cache write: 5-minute and 1-hour (what the counters count)
    service_tier: str | None = None
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written for an hour (priced apart)


FAILED = RequestUsage(0, 0, False)
"""A request that failed before the provider billed it: counted, at $0."""


class Recorded(NamedTuple):
    """What recording one request did: the model's new total cost, the budget events it triggered (name and
    payload, for the registry to emit), when it was recorded, and the store's sequence number of the record (0 when
    not numbered).

    .. versionadded:: 0.2.0
    """

    total: Decimal
    budget_events: list[tuple[str, dict[str, Any]]]
    at: float  # when it was recorded (the store's clock reading)
    seq: int = 0
    ticket: Any = None  # what undo() needs to take the record back (opaque to the registry)


class Live(NamedTuple):
    """The live part of one model's entry: bookkeeping, usage counters (as stats) and metrics.

    .. versionadded:: 0.2.0
    """

    last_accessed: Any
    access_count: int
    usage: ModelUsageStats
    metrics: ModelPerformanceMetrics | None


class Store(ABC):
    """Where the live state of a registry's models is kept. See the module docstring for the guarantees.

    .. versionadded:: 0.2.0
    """

    url: str = ""
    """The URL the store was made from (``memory://``), for messages and ``repr``."""

    on_backend_error: str = "raise"
    """What to do when the store cannot be reached (``"raise"``, ``"allow"``, ``"deny"``; set by the registry from
    its ``on_backend_error``). Only stores on a server consult it."""

    # ------------------------------------------------------------------ models

    @abstractmethod
    def bind(self, owner: object, clock: Callable[[], float]) -> None:
        """Serve the registry ``owner``, with ``clock`` (seconds since the epoch) as the time unless the store has
        its own. Called once, by the registry's constructor."""

    @abstractmethod
    def define(self, key: str, rate_limit: RateLimitConfig | None, now: float) -> None:
        """Make ``key`` known with these limits, or change its limits: traffic already counted keeps counting
        (a lowered limit sees the last minute and day), and open reservations stay valid."""

    @abstractmethod
    def forget(self, key: str, now: float, *, retire: str | None = None) -> None:
        """``key``'s model was removed: its usage goes (with ``retire``, the model's currency, its cost and tokens
        stay in :meth:`retired`), its windows are kept for a day in case it is defined again."""

    # ------------------------------------------------------------------ admission

    @abstractmethod
    def check(self, key: str, input_tokens: int, output_tokens: int) -> RateLimitCheck:
        """Whether one more request of these tokens keeps every limit of ``key`` (read-only)."""

    @abstractmethod
    def reserve(
        self, key: str, input_tokens: int, output_tokens: int, cost: ModelCost | None, ttl: float, waiter: str = ""
    ) -> Hold | RateLimitCheck:
        """Take one request and these tokens in every window of ``key``, and the request's worst-case cost (at
        ``cost``) in every budget that applies, all at once: the :class:`Hold`, or the refusal of the binding
        limit with its ``retry_after``. Raises ``BudgetExceededError`` (nothing taken) when a budget could be
        crossed, ``UnpricedModelError`` when a budget applies to a model without a price. A hold not settled or
        released within ``ttl`` seconds is given back by the store (its state becomes ``"expired"``). ``waiter``
        names a caller of ``acquire(wait=True)`` (its wait queue's id, stable across its attempts): a store shared
        by several processes lets the longest waiter of any process go first; one process's queue needs nothing
        (the memory store ignores it)."""

    def unclaim(self, key: str, waiter: str) -> None:  # noqa: B027 - optional: one process's queue needs nothing
        """The caller ``waiter`` of :meth:`reserve` stopped waiting without being admitted (a timeout, an error):
        its place in a queue shared by several processes goes."""

    remote = False
    """Whether operations are round trips to a server (then ``acquire_async`` never runs them on the event loop)."""

    async def areserve(
        self, key: str, input_tokens: int, output_tokens: int, cost: ModelCost | None, ttl: float, waiter: str = ""
    ) -> Hold | RateLimitCheck:
        """:meth:`reserve` for ``acquire_async``: a store that talks to a server awaits it without blocking the event
        loop; the default is the synchronous call (in-memory work, no waiting)."""
        return self.reserve(key, input_tokens, output_tokens, cost, ttl, waiter)

    @abstractmethod
    def settle(self, hold: Hold, usage: RequestUsage, cost: Decimal) -> Recorded | None:
        """Correct the reservation to ``usage`` (at its original time; an expired one counts now) and record it
        with ``cost``. ``None`` when it was settled before (nothing recorded again)."""

    @abstractmethod
    def release(self, hold: Hold, *, failed: bool = False) -> Recorded | None:
        """Give an open reservation back; with ``failed``, count a failed request at $0 (priced models only).
        ``None`` when nothing was recorded (including when the reservation was not open)."""

    @abstractmethod
    def void(self, hold: Hold) -> None:
        """Mark a settled reservation as cancelled: its record was taken back with :meth:`undo` (its journal
        append failed), so committing it again raises instead of returning a cost that was never counted."""

    @abstractmethod
    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(key)`` whenever capacity of ``key`` may have been freed (outside the store's locks)."""

    # ------------------------------------------------------------------ recording

    @abstractmethod
    def record(self, key: str, usage: RequestUsage, cost: Decimal) -> Recorded:
        """Record one request that happened (windows, counters, history, budgets)."""

    @abstractmethod
    def undo(self, key: str, usage: RequestUsage, cost: Decimal, recorded: Recorded) -> bool:
        """Take back what :meth:`record` or :meth:`settle` counted in counters, history and budgets (its
        journal append failed); ``False`` when it can no longer be taken back (a save already holds it)."""

    @abstractmethod
    def touch(self, key: str, now: float) -> None:
        """Count one access of ``key``."""

    @abstractmethod
    def set_metrics(self, key: str, metrics: ModelPerformanceMetrics) -> None:
        """Replace the performance metrics of ``key``."""

    @abstractmethod
    def metrics(self, key: str) -> ModelPerformanceMetrics | None:
        """The performance metrics of ``key`` (``None`` when never set)."""

    @abstractmethod
    def reset_usage(self, key: str, now: float) -> None:
        """Zero the usage counters of ``key`` (not its windows, history or budgets)."""

    # ------------------------------------------------------------------ reads

    @abstractmethod
    def live(self, keys: Iterable[str], currencies: dict[str, str]) -> dict[str, Live]:
        """The live part of each key's entry (usage stats in that key's currency), in one consistent view."""

    @abstractmethod
    def history(self, keys: Iterable[str], since: date | None = None) -> list[UsageHistoryEntry]:
        """The daily usage of ``keys``, each key's days oldest first, keys in the order given."""

    @abstractmethod
    def usage_totals(self) -> dict[str, tuple[int, int, int, Decimal, int]]:
        """Per key: input tokens, output tokens, requests, cost and accesses recorded (statistics, ranking)."""

    @abstractmethod
    def retired(self) -> tuple[dict[str, Decimal], int, int, int]:
        """Usage of models forgotten with ``retire``: cost by currency, input tokens, output tokens, requests."""

    @abstractmethod
    def window_totals(self, key: str) -> dict[str, int]:
        """What each enforced window of ``key`` counts now (open reservations and provider reports included),
        by limit name (``requests_per_minute``...)."""

    @abstractmethod
    def learned_limits(self, key: str) -> dict[str, int]:
        """Limits of ``key`` learned from provider headers, by limit name."""

    @abstractmethod
    def apply_report(self, key: str, report: ProviderLimits, now: float) -> None:
        """Tighten ``key``'s windows to a provider's report, learn limits it states, and start the
        ``retry-after`` cooldown it asks for."""

    # ------------------------------------------------------------------ budgets

    @abstractmethod
    def set_budget(self, limit: Decimal, period: str, key: str | None, warn_at: Decimal, now: float) -> None:
        """Set or replace a budget; spend already recorded in its current period counts at once. A replaced
        budget keeps its open reservations."""

    @abstractmethod
    def remove_budget(self, period: str, key: str | None) -> bool:
        """Remove a budget; ``True`` when there was one."""

    @abstractmethod
    def budget_status(self, now: float) -> list[BudgetStatus]:
        """Every budget in its current period: spend, reservations, the limit and the period's end."""

    # ------------------------------------------------------------------ lifecycle

    def holding(self) -> contextlib.AbstractContextManager[None]:
        """Keep the store's traffic out for a block of several steps (a change of the catalogue whose time must
        be read where no request can slip in between, or persistence's snapshot work). Stores whose time is not
        the registry's clock need not hold anything: the default does nothing."""
        return contextlib.nullcontext()

    @property
    @abstractmethod
    def version(self) -> int:
        """A number that changes whenever the store's state does (the registry saves when it changed)."""

    def close(self) -> None:  # noqa: B027 - optional: most stores have nothing to close
        """Release what the store holds (connections). Idempotent."""

    def fork_locks(self) -> list[Any]:
        """The locks a fork must take (and the child replace), so no thread is halfway through a change."""
        return []

    def after_fork(self) -> None:  # noqa: B027 - optional
        """In a forked child: replace locks and connections the child cannot share."""


def days_between(start: Any, end: Any) -> tuple[date | None, date | None]:
    """The dates of a budget period's bounds (``None`` stays ``None``)."""
    return (start.date() if start is not None else None, end.date() if end is not None else None)
