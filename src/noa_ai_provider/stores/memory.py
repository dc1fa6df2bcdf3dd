"""``MemoryStore``: the live state of one registry's models, in this process (the default store, ``memory://``).

One lock guards everything here and is held only for in-memory work; listeners are called after it is released.
The usage it holds is what the registry's snapshot file saves: each model's usage recorded since the last
synchronisation with the file is also kept apart (a pending :class:`~noa_ai_provider.delta.Delta`),
so that processes sharing one file add their usage up instead of overwriting it (see
:mod:`noa_ai_provider.persistence.merge`). Those snapshot methods (``seal``, ``adopt``, ``restore``...) are
called by :mod:`noa_ai_provider.persistence` only.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from ..budget import BudgetState
from ..cost import UsageHistory, worst_case_cost
from ..errors import BudgetExceededError, ConfigError, InvalidUsageError, ModelNotFoundError, UnpricedModelError
from ..headers import ProviderLimits
from ..ratelimit import DAY, ModelLimiter
from ..reservation import CANCELLED, COMMITTED, EXPIRED, OPEN, Hold
from ..schemas import (
    MAX_INT,
    BudgetStatus,
    ModelCost,
    ModelPerformanceMetrics,
    RateLimitCheck,
    RateLimitConfig,
    UsageHistoryEntry,
    utc_from_timestamp,
)
from .base import FAILED, Live, Recorded, RequestUsage, Store, days_between
from .snapshot import SnapshotUsage
from .state import ModelState

__all__ = ["MemoryStore", "ModelState"]

_REPORTED = (
    ("requests_per_minute", "requests"),
    ("tokens_per_minute", "tokens"),
    ("input_tokens_per_minute", "input_tokens"),
    ("output_tokens_per_minute", "output_tokens"),
)
_KEEP_WINDOWS = 64  # removed models' windows kept before old ones (over a day) are dropped


def _unbound() -> float:
    raise RuntimeError("this store serves no registry yet (EnhancedModelRegistry binds it)")


class MemoryStore(SnapshotUsage, Store):
    """The live state of a registry's models in this process. Thread-safe; serves one registry.

    ``memory://`` makes one (:func:`noa_ai_provider.stores.store_from_url`). State lasts as long as the process,
    and the registry's snapshot file (``persistence_path``) saves and merges its usage.

    .. versionadded:: 0.2.0
    """

    url = "memory://"

    def __init__(self) -> None:
        # Reentrant: persistence holds it (holding()) across steps that call the store's own methods.
        self._lock = threading.RLock()
        self._deferred: list[str] | None = None  # keys to announce once holding() ends
        self._states: dict[str, ModelState] = {}
        self._budgets: dict[tuple[str | None, str], BudgetState] = {}
        # Open reservations' holds by expiry. The time-to-live is the same for all and the clock moves forward, so
        # admission order is expiry order: an ordered dict (appended on admission, a hold removed in O(1) when it
        # is settled). A hold admitted after the clock went back expires before some earlier ones: those few wait
        # in a heap instead. Memory follows the open reservations, not the traffic.
        self._open: OrderedDict[Hold, None] = OrderedDict()
        self._late: list[tuple[float, int, Hold]] = []
        self._last_expiry = -math.inf
        # No open reservation expires before this (it may be earlier than the real first expiry, never later: the
        # hot path compares one number, and a sweep that finds nothing due sets it again).
        self._next_expiry = math.inf
        self._late_seq = 0
        self._collected: deque[Hold] = deque()  # holds of reservations garbage-collected while open
        self._collect = self._collected.append
        self._kept_windows: dict[str, tuple[float, ModelLimiter]] = {}  # removed models' windows, for a day
        self._retired_cost: dict[str, Decimal] = {}  # usage of models removed with retire=True, by currency
        self._retired_counts = [0, 0, 0]  # their input tokens, output tokens, requests
        self._day: tuple[float, float, date] = (0.0, 0.0, date(1970, 1, 1))
        self._version = 0
        self._listeners: list[Callable[[str], None]] = []
        self._owner: weakref.ref[object] | None = None
        self._clock: Callable[[], float] = _unbound
        # Numbering of records and batches for a journal (see persistence): the last number given.
        self.numbered = False
        self.seq = 0
        self.replayed: list[Any] = []  # other writers' journal records replayed here, not sealed yet

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """The store of ``memory://`` (nothing may follow the scheme)."""
        if url.lower() != "memory://":
            raise ConfigError(f"backend {url!r}: a memory store takes no host, path or options; use 'memory://'")
        return cls()

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._states)} models>"

    def bind(self, owner: object, clock: Callable[[], float]) -> None:
        """Serve ``owner`` (a registry) with ``clock`` as the time; a store already serving another registry raises
        ``ConfigError``: its usage is saved by the registry that owns it, and two would save it twice."""
        current = self._owner() if self._owner is not None else None
        if current is not None and current is not owner:
            raise ConfigError("this MemoryStore already serves another registry; give each registry its own")
        self._owner = weakref.ref(owner)
        self._clock = clock

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the store's lock across several steps (persistence's snapshot work); freed capacity is announced
        when the block ends, not while the lock is held."""
        with self._lock:
            outer = self._deferred is not None
            if not outer:
                self._deferred = []
            try:
                yield
            finally:
                if not outer:
                    keys, self._deferred = self._deferred, None
        if not outer and keys:
            self._notify(dict.fromkeys(keys))

    @property
    def version(self) -> int:
        return self._version

    def fork_locks(self) -> list[Any]:
        return [self._lock]

    def after_fork(self) -> None:
        self._lock = threading.RLock()
        self._deferred = None

    def listen(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, keys: Iterable[str]) -> None:
        # Outside the lock (inside holding(), the keys wait for its end).
        deferred = self._deferred
        if deferred is not None:
            deferred.extend(keys)
            return
        for key in keys:
            for listener in self._listeners:
                listener(key)

    # ------------------------------------------------------------------ models

    def define(self, key: str, rate_limit: RateLimitConfig | None, now: float) -> None:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                # It takes over the windows of a model removed under this key less than a day ago, so removing
                # and defining it again forgets no traffic.
                kept = self._kept_windows.pop(key, None)
                windows = kept[1] if kept is not None and now - kept[0] < DAY else None
                self._states[key] = ModelState(rate_limit, now, windows)
            elif rate_limit != state.rate_limit:
                state.limiter = ModelLimiter(rate_limit, previous=state.limiter)
                state.rate_limit = rate_limit
                state.count_cache_reads = rate_limit is None or rate_limit.count_cache_reads
            self._version += 1
        self._notify((key,))  # limits may have changed

    def forget(self, key: str, now: float, *, retire: str | None = None) -> None:
        with self._lock:
            state = self._states.pop(key, None)
            if state is None:
                return
            self._kept_windows[key] = (now, state.limiter)
            if len(self._kept_windows) > _KEEP_WINDOWS:
                for old in [k for k, (at, _) in self._kept_windows.items() if now - at >= DAY]:
                    del self._kept_windows[old]
            if retire is not None:  # its usage stays in the registry's totals
                usage = state.usage
                self._retired_cost[retire] = self._retired_cost.get(retire, Decimal(0)) + usage.total_cost
                self._retired_counts[0] += usage.total_input_tokens
                self._retired_counts[1] += usage.total_output_tokens
                self._retired_counts[2] += usage.request_count
            self._version += 1
        self._notify((key,))  # its waiters learn that it is gone

    # ------------------------------------------------------------------ admission

    def check(self, key: str, input_tokens: int, output_tokens: int) -> RateLimitCheck:
        with self._lock:
            now = self._clock()
            freed = self._sweep(now)
            result = self._state(key).limiter.check(now, input_tokens, output_tokens)
        if freed:
            self._notify(freed)
        return result

    def reserve(
        self, key: str, input_tokens: int, output_tokens: int, cost: ModelCost | None, ttl: float, waiter: str = ""
    ) -> Hold | RateLimitCheck:
        with self._lock:
            now = self._clock()
            freed = self._sweep(now) if now >= self._next_expiry or self._collected else None
            state = self._states.get(key)
            if state is None:
                raise ModelNotFoundError(key)
            holds = self._hold_budgets(key, cost, input_tokens, output_tokens, now) if self._budgets else None
            handle = state.limiter.reserve(now, input_tokens, output_tokens)
            if type(handle) is RateLimitCheck:
                result: Hold | RateLimitCheck = handle
            else:
                expires_at = now + ttl
                hold = Hold(key, state, handle, cost, now, expires_at)  # type: ignore[arg-type]
                if holds:
                    by_ident = {budget.ident: budget for budget in self._budgets.values()}
                    for ident, amount in holds:
                        by_ident[ident].hold(amount)
                    hold.budgets = holds
                hold.collected = self._collect
                if expires_at < self._next_expiry:
                    self._next_expiry = expires_at
                if expires_at >= self._last_expiry:
                    self._open[hold] = None
                    self._last_expiry = expires_at
                else:  # the clock went back
                    self._late_seq += 1
                    heapq.heappush(self._late, (expires_at, self._late_seq, hold))
                result = hold
        if freed:
            self._notify(freed)
        return result

    def settle(self, hold: Hold, usage: RequestUsage, cost: Decimal) -> Recorded | None:
        key = hold.key
        with self._lock:
            now = self._clock()
            freed = self._sweep(now) if now >= self._next_expiry or self._collected else None
            state = hold.state
            if state == COMMITTED:
                return None
            if state == CANCELLED:
                raise InvalidUsageError(f"reservation for {key} was cancelled; it cannot be committed")
            model = self._states.get(key)
            if model is None:
                self._release_hold(hold)
                hold.state = CANCELLED
                raise ModelNotFoundError(key)
            day = self._utc_day(now)
            self._check_room(key, model, usage, day)
            limited = usage.input_tokens if model.count_cache_reads else model.limited_input(usage)
            if not hold.released and model is hold.record:
                ModelLimiter.settle(hold.handle, limited, usage.output_tokens)
                if hold.budgets:
                    self._release_budgets(hold)
                hold.released = True
                self._open.pop(hold, None)
            else:  # expired, or removed and defined again meanwhile: count it in the windows now
                ModelLimiter.release(hold.handle)
                model.limiter.record(now, limited, usage.output_tokens)
                self._release_budgets(hold)
                self._mark_released(hold)
            recorded = self._charge(key, model, usage, cost, now, day)
            hold.state = COMMITTED
        if freed or self._deferred is not None:
            self._notify(freed or (key,))
        else:
            for listener in self._listeners:
                listener(key)
        return recorded

    def release(self, hold: Hold, *, failed: bool = False) -> Recorded | None:
        key = hold.key
        recorded = None
        with self._lock:
            now = self._clock()
            freed = self._sweep(now)
            if hold.state != OPEN:
                return None
            self._release_hold(hold)
            hold.state = CANCELLED
            if failed:
                state = self._states.get(key)
                if state is None:
                    raise ModelNotFoundError(key)
                if hold.cost is not None:  # an unpriced model's request is never counted at $0: given back only
                    recorded = self._charge(key, state, FAILED, Decimal(0), now, self._utc_day(now))
                    hold.state = COMMITTED
        self._notify([*freed, key])
        return recorded

    def void(self, hold: Hold) -> None:
        with self._lock:
            hold.state = CANCELLED

    def _hold_budgets(
        self, key: str, cost: ModelCost | None, inp: int, out: int, now: float
    ) -> list[tuple[Any, Decimal]]:
        # The worst case of the request against every budget that applies, or BudgetExceededError. Nothing is
        # taken here; reserve() adds the amounts once the rate limits admitted the request.
        applying = [b for b in self._budgets.values() if b.applies(key)]
        if not applying:
            return []
        if cost is None:
            raise UnpricedModelError(f"{key} has no price, so a budget cannot be checked; set one (0 if free)")
        worst = worst_case_cost(cost, inp, out)
        stamp = utc_from_timestamp(now)
        for budget in applying:
            budget.roll(stamp)
            if not budget.fits(worst):
                raise BudgetExceededError(
                    key, budget.key, budget.period, budget.limit, budget.spent, budget.reserved, worst
                )
        return [(budget.ident, worst) for budget in applying]

    def _release_hold(self, hold: Hold) -> None:
        # Give back what an open reservation holds in the windows and budgets, once.
        if hold.released:
            return
        ModelLimiter.release(hold.handle)
        self._release_budgets(hold)
        self._mark_released(hold)

    def _mark_released(self, hold: Hold) -> None:
        hold.released = True
        self._open.pop(hold, None)  # (a late one leaves the heap when it would have expired)

    def _release_budgets(self, hold: Hold) -> None:
        # Budgets are found again by identity: set_budget may have replaced the object (keeping the identity and
        # the reservations), while a budget removed and set again is a new one that never held them.
        for ident, amount in hold.budgets:
            for budget in self._budgets.values():
                if budget.ident == ident:
                    budget.release(amount)
        hold.budgets = []

    def _sweep(self, now: float) -> list[str]:
        # Give back the holds of reservations garbage-collected while open, and of those open past their expiry
        # (their state becomes "expired"). Returns the keys whose capacity was freed.
        freed: list[str] = []
        collected = self._collected
        while collected:
            hold = collected.popleft()
            if not hold.released:
                self._release_hold(hold)
                freed.append(hold.key)
        open_ = self._open
        while open_:
            hold = next(iter(open_))
            if hold.expires_at > now:
                break
            self._expire(hold, freed)
        late = self._late
        while late and late[0][0] <= now:
            self._expire(heapq.heappop(late)[2], freed)
        first = next(iter(open_)).expires_at if open_ else math.inf
        self._next_expiry = min(first, late[0][0]) if late else first
        return freed

    def _expire(self, hold: Hold, freed: list[str]) -> None:
        # A hold open past its expiry: given back, its reservation "expired".
        if not hold.released:
            self._release_hold(hold)
            if hold.state == OPEN:
                hold.state = EXPIRED
            freed.append(hold.key)
        self._open.pop(hold, None)

    # ------------------------------------------------------------------ recording

    def record(self, key: str, usage: RequestUsage, cost: Decimal) -> Recorded:
        with self._lock:
            now = self._clock()
            state = self._state(key)
            day = self._utc_day(now)
            self._check_room(key, state, usage, day)
            state.limiter.record(now, state.limited_input(usage), usage.output_tokens)
            return self._charge(key, state, usage, cost, now, day)

    def _check_room(self, key: str, state: ModelState, usage: RequestUsage, day: date) -> None:
        # Before anything changes: what save() writes, load() must read, so no count may pass the largest integer
        # a saved registry holds. The exact check runs only when the request needs more than the room known to be
        # left (ModelState.room), so almost never.
        inp, out, _, cached, written = usage[:5]
        need = inp + out + cached + written + 1
        if need <= state.room:
            state.room -= need
            return
        full = state.usage.overflow(inp, out, cached, written) or state.history.overflow(day, inp, out, cached, written)
        if full is not None:
            raise InvalidUsageError(
                f"{key}: recording this request would take {full} past 2**63-1, the largest count a saved registry "
                "holds; nothing was recorded (reset_usage_stats starts the counters again)"
            )
        counters = state.usage
        used = counters.total_input_tokens + counters.total_output_tokens + counters.total_cached_input_tokens
        used += counters.total_cache_write_tokens + counters.request_count
        state.room = max(MAX_INT - max(used, state.history.largest()) - 2 * need, 0)

    def _charge(
        self,
        key: str,
        state: ModelState,
        usage: RequestUsage,
        cost: Decimal,
        now: float,
        day: date,
        *,
        pending: bool = True,
    ) -> Recorded:
        # Counters, daily history (of `day`, the UTC date of `now`), the pending delta and budgets take one request.
        inp, out, success, cached, written = usage[:5]
        state.usage.add(inp, out, cost, success, cached, written)
        state.history.add(day, inp, out, cached, written, cost)
        delta = None
        if pending:  # this process's own request (a replayed one travels as a Replayed record)
            delta = state.delta()
            delta.add_request(day, inp, out, cached, written, cost, success)
        events: list[tuple[str, dict[str, Any]]] = []
        if self._budgets:
            stamp = utc_from_timestamp(now)  # once, not per budget
            for budget in self._budgets.values():
                if budget.applies(key):
                    budget.roll(stamp)
                    for event in budget.charge(cost):
                        payload = {"key": budget.key, "period": budget.period, "limit": budget.limit}
                        payload["spent"] = budget.spent
                        events.append((event, payload))
        self._version += 1
        seq = 0
        if self.numbered:
            self.seq += 1
            seq = self.seq
        return Recorded(state.usage.total_cost, events, now, seq, (state, delta))

    def undo(self, key: str, usage: RequestUsage, cost: Decimal, recorded: Recorded) -> bool:
        state, delta = recorded.ticket
        now = recorded.at
        with self._lock:
            if state.pending is not delta or delta is None or state.absolute:
                return False  # a save sealed it (it is on its way into the file), or the usage was replaced
            args = (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens)
            state.usage.remove(usage.input_tokens, usage.output_tokens, cost, usage.success, *args[2:])
            day = self._utc_day(now)
            state.history.remove(day, *args, cost)
            delta.remove_request(day, *args, cost, usage.success)
            stamp = utc_from_timestamp(now)
            for budget in self._budgets.values():
                if budget.applies(key) and (budget.start is None or budget.start <= stamp):
                    budget.uncharge(cost)  # (a budget that rolled into a new period since no longer holds it)
            self._version += 1
            return True

    def _utc_day(self, now: float) -> date:
        # The UTC date of `now`, cached for the current day: building a datetime per request is measurable.
        start, end, day = self._day
        if not start <= now < end:
            day = utc_from_timestamp(now).date()
            start = (now // 86_400) * 86_400
            self._day = (start, start + 86_400, day)
        return day

    def touch(self, key: str, now: float) -> None:
        with self._lock:
            state = self._state(key)
            state.access_count += 1
            state.last_accessed = utc_from_timestamp(now)
            pending = state.delta()
            pending.accesses += 1
            pending.last_accessed = state.last_accessed
            self._version += 1

    def set_metrics(self, key: str, metrics: ModelPerformanceMetrics) -> None:
        with self._lock:
            self._state(key).metrics = metrics
            self._version += 1

    def metrics(self, key: str) -> ModelPerformanceMetrics | None:
        """The performance metrics of ``key`` (``None`` when never set)."""
        with self._lock:
            return self._state(key).metrics

    def reset_usage(self, key: str, now: float) -> None:
        with self._lock:
            state = self._state(key)
            state.usage.reset(utc_from_timestamp(now))
            state.absolute = True  # the file's usage of this model is replaced on the next save, not added to
            self._version += 1

    # ------------------------------------------------------------------ reads

    def live(self, keys: Iterable[str], currencies: dict[str, str]) -> dict[str, Live]:
        with self._lock:
            states = self._states
            return {
                key: Live(s.last_accessed, s.access_count, s.usage.snapshot(currencies.get(key, "USD")), s.metrics)
                for key in keys
                if (s := states.get(key)) is not None
            }

    def history(self, keys: Iterable[str], since: date | None = None) -> list[UsageHistoryEntry]:
        with self._lock:
            states = self._states
            return [e for key in keys if (s := states.get(key)) is not None for e in s.history.entries(key, since)]

    def histories(self, keys: Iterable[str]) -> dict[str, UsageHistory]:
        """Independent copies of the daily history of ``keys`` (for a snapshot)."""
        with self._lock:
            return {key: s.history.copy() for key in keys if (s := self._states.get(key)) is not None}

    def usage_totals(self) -> dict[str, tuple[int, int, int, Decimal, int]]:
        with self._lock:
            return {
                key: (u.total_input_tokens, u.total_output_tokens, u.request_count, u.total_cost, s.access_count)
                for key, s in self._states.items()
                for u in (s.usage,)
            }

    def retired(self) -> tuple[dict[str, Decimal], int, int, int]:
        with self._lock:
            return dict(self._retired_cost), *self._retired_counts  # type: ignore[return-value]

    def window_totals(self, key: str) -> dict[str, int]:
        with self._lock:
            now = self._clock()
            freed = self._sweep(now)  # expired and forgotten reservations no longer count
            totals = self._state(key).limiter.totals(now)
        if freed:
            self._notify(freed)
        return totals

    def entry_count(self, key: str) -> int:
        """Entries held in the windows of ``key``, removed limits' shadows included (memory checks)."""
        with self._lock:
            return self._state(key).limiter.entry_count()

    def learned_limits(self, key: str) -> dict[str, int]:
        with self._lock:
            return self._state(key).limiter.learned_limits()

    def apply_report(self, key: str, report: ProviderLimits, now: float) -> None:
        with self._lock:
            limiter = self._state(key).limiter
            for field_name, dim in _REPORTED:
                got = getattr(report, dim)
                if got is not None:
                    limiter.apply_report(now, field_name, got.limit, got.remaining, got.reset_at)
            if report.retry_after:
                limiter.block_until(now + report.retry_after)
            self._version += 1
        self._notify((key,))

    # ------------------------------------------------------------------ budgets

    def set_budget(self, limit: Decimal, period: str, key: str | None, warn_at: Decimal, now: float) -> None:
        with self._lock:
            budget = BudgetState(limit, period, key, warn_at, utc_from_timestamp(now))
            start, end = days_between(budget.start, budget.end)
            for model_key, state in self._states.items():
                if budget.applies(model_key):
                    budget.charge(state.history.cost_between(start, end))
            # charge() above already marked the thresholds the existing spend has passed: no event for the past.
            old = self._budgets.get((key, period))
            if old is not None:  # a changed amount or threshold: the same budget, with its open reservations
                budget.reserved = old.reserved
                budget.ident = old.ident
            self._budgets[(key, period)] = budget

    def remove_budget(self, period: str, key: str | None) -> bool:
        with self._lock:
            return self._budgets.pop((key, period), None) is not None

    def budget_status(self, now: float) -> list[BudgetStatus]:
        with self._lock:
            freed = self._sweep(now)  # holds of expired or forgotten reservations are not "reserved" any more
            stamp = utc_from_timestamp(now)
            out = []
            for budget in self._budgets.values():
                budget.roll(stamp)
                out.append(budget.status())
        self._notify(freed)
        return out
