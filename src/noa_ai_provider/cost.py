"""Pricing arithmetic and usage counters. Pure ``Decimal``: money is never a float here.

A request costs ``(input_tokens * cost.input_tokens + output_tokens * cost.output_tokens) / cost.per``. The
arithmetic runs in a 60-digit context, so for any realistic token count and price the result is exact (with
``per`` a power of ten it is always exact), and the sum of the costs of any split of a set of requests equals the
cost computed over the whole.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .errors import InvalidUsageError
from .schemas import (
    MONEY_CONTEXT,
    ModelCost,
    ModelUsageStats,
    PriceTier,
    ServiceTierPrices,
    UsageHistoryEntry,
    construct_trusted,
)

__all__ = [
    "MAX_HISTORY_DAYS",
    "UsageCounters",
    "UsageHistory",
    "check_token_count",
    "request_cost",
    "worst_case_cost",
]

_CTX = MONEY_CONTEXT


def check_token_count(name: str, value: object) -> int:
    """Return ``value`` when it is a non-negative ``int`` (not a bool); else raise :class:`InvalidUsageError`."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidUsageError(f"{name} must be an integer, got {type(value).__name__}")
        value = int(value)  # an int subclass such as numpy's would be fine; keep the plain value
    if value < 0:
        raise InvalidUsageError(f"{name} must be >= 0, got {value}")
    return value


def _prices(cost: ModelCost, input_tokens: int, service_tier: str | None) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    # (input, output, cache read, cache write) prices for a request of `input_tokens`, at `service_tier`.
    base: ModelCost | ServiceTierPrices = cost
    if service_tier is not None:
        tiers = cost.service_tiers or {}
        if service_tier not in tiers:
            have = ", ".join(sorted(tiers)) or "none"
            raise InvalidUsageError(f"service_tier {service_tier!r} is not priced for this model (priced: {have})")
        base = tiers[service_tier]
    chosen: ModelCost | ServiceTierPrices | PriceTier = base
    for tier in base.tiers or ():  # sorted by threshold; the highest one exceeded wins
        if input_tokens > tier.above_input_tokens:
            chosen = tier
    price_in = chosen.input_tokens
    cached = chosen.cached_input_tokens
    write = chosen.cache_write_tokens
    return (
        price_in,
        chosen.output_tokens,
        price_in if cached is None else cached,
        price_in if write is None else write,
    )


def request_cost(
    cost: ModelCost,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    service_tier: str | None = None,
) -> Decimal:
    """The exact cost of one request; ``input_tokens`` includes the cached and cache-write tokens.

    The tier is chosen by ``input_tokens`` (the whole request bills at the highest tier whose threshold it
    exceeds, strictly); cache reads and writes bill at their prices, falling back to the input price.

    >>> from decimal import Decimal
    >>> c = ModelCost(input_tokens=Decimal("0.01"), output_tokens=Decimal("0.03"))
    >>> request_cost(c, 2000, 1000)
    Decimal('0.05')

    Raises :class:`InvalidUsageError` when cached plus cache-write tokens exceed ``input_tokens`` or the service
    tier is not priced.
    """
    uncached = input_tokens - cached_input_tokens - cache_write_tokens
    if uncached < 0:
        raise InvalidUsageError(
            f"cached_input_tokens ({cached_input_tokens}) + cache_write_tokens ({cache_write_tokens}) exceed "
            f"input_tokens ({input_tokens}); input_tokens includes them"
        )
    if not cost.tiers and service_tier is None and uncached == input_tokens:
        # The plain case, kept short: it is the hot path of record_usage.
        total = _CTX.add(
            _CTX.multiply(input_tokens, cost.input_tokens), _CTX.multiply(output_tokens, cost.output_tokens)
        )
        return _CTX.divide(total, cost.per)
    price_in, price_out, price_cached, price_write = _prices(cost, input_tokens, service_tier)
    total = _CTX.add(
        _CTX.add(_CTX.multiply(uncached, price_in), _CTX.multiply(output_tokens, price_out)),
        _CTX.add(_CTX.multiply(cached_input_tokens, price_cached), _CTX.multiply(cache_write_tokens, price_write)),
    )
    return _CTX.divide(total, cost.per)


def worst_case_cost(
    cost: ModelCost, input_tokens: int, max_output_tokens: int, service_tier: str | None = None
) -> Decimal:
    """The most a request can cost (what a budget reserves before the call): every input token at the highest
    input-side price of its tier (full input, cache write or cache read, whichever is dearest), plus
    ``max_output_tokens`` at the output price. Without ``service_tier``, the dearest of the base prices and every
    service tier, since the call may still pick one."""
    choices: list[str | None] = [service_tier]
    if service_tier is None and cost.service_tiers:
        choices.extend(cost.service_tiers)
    worst = Decimal(0)
    for choice in choices:
        price_in, price_out, price_cached, price_write = _prices(cost, input_tokens, choice)
        dearest_in = max(price_in, price_cached, price_write)
        total = _CTX.add(_CTX.multiply(input_tokens, dearest_in), _CTX.multiply(max_output_tokens, price_out))
        worst = max(worst, _CTX.divide(total, cost.per))
    return worst


class UsageCounters:
    """Mutable usage counters of one model. Not thread-safe: the registry holds its lock around every call."""

    __slots__ = (
        "failed_requests",
        "last_reset",
        "request_count",
        "successful_requests",
        "total_cache_write_tokens",
        "total_cached_input_tokens",
        "total_cost",
        "total_input_tokens",
        "total_output_tokens",
    )

    def __init__(self, now: datetime) -> None:
        self.reset(now)

    def reset(self, now: datetime) -> None:
        """Zero every counter and set ``last_reset`` to ``now``."""
        self.total_input_tokens = 0
        self.total_output_tokens = 0
        self.total_cached_input_tokens = 0
        self.total_cache_write_tokens = 0
        self.total_cost = Decimal(0)
        self.request_count = 0
        self.successful_requests = 0
        self.failed_requests = 0
        self.last_reset = now

    def add(
        self, input_tokens: int, output_tokens: int, cost: Decimal, success: bool, cached: int = 0, written: int = 0
    ) -> None:
        """Count one request."""
        self.total_input_tokens += input_tokens
        self.total_output_tokens += output_tokens
        self.total_cached_input_tokens += cached
        self.total_cache_write_tokens += written
        self.total_cost = _CTX.add(self.total_cost, cost)
        self.request_count += 1
        if success:
            self.successful_requests += 1
        else:
            self.failed_requests += 1

    def add_days(self, days: dict[date, list[Any]]) -> None:
        """Count the requests of ``days`` (per day: input, output, cached, cache write, requests, cost, failed)."""
        for t in days.values():
            self.total_input_tokens += t[0]
            self.total_output_tokens += t[1]
            self.total_cached_input_tokens += t[2]
            self.total_cache_write_tokens += t[3]
            self.total_cost = _CTX.add(self.total_cost, t[5])
            self.request_count += t[4]
            self.successful_requests += t[4] - t[6]
            self.failed_requests += t[6]

    def add_counters(self, other: UsageCounters, sign: int = 1) -> None:
        """Add (``sign=-1``: take away) every counter of ``other``; ``last_reset`` stays. Merging another writer's
        requests, or dropping a parent's unsaved ones in a forked child."""
        self.total_input_tokens += sign * other.total_input_tokens
        self.total_output_tokens += sign * other.total_output_tokens
        self.total_cached_input_tokens += sign * other.total_cached_input_tokens
        self.total_cache_write_tokens += sign * other.total_cache_write_tokens
        self.total_cost = _CTX.add(self.total_cost, other.total_cost if sign > 0 else -other.total_cost)
        self.request_count += sign * other.request_count
        self.successful_requests += sign * other.successful_requests
        self.failed_requests += sign * other.failed_requests

    def copy(self) -> UsageCounters:
        """An independent copy."""
        other = UsageCounters(self.last_reset)
        other.add_counters(self)
        return other

    def snapshot(self, currency: str) -> ModelUsageStats:
        """An independent :class:`ModelUsageStats` with the current values."""
        return construct_trusted(
            ModelUsageStats,
            {
                "total_input_tokens": self.total_input_tokens,
                "total_output_tokens": self.total_output_tokens,
                "total_cached_input_tokens": self.total_cached_input_tokens,
                "total_cache_write_tokens": self.total_cache_write_tokens,
                "total_cost": self.total_cost,
                "currency": currency,
                "last_reset": self.last_reset,
                "request_count": self.request_count,
                "successful_requests": self.successful_requests,
                "failed_requests": self.failed_requests,
            },
        )

    @classmethod
    def from_stats(cls, stats: ModelUsageStats) -> UsageCounters:
        """Counters holding the values of a (validated) ``stats``, e.g. from a saved snapshot."""
        counters = cls(stats.last_reset)
        counters.total_input_tokens = stats.total_input_tokens
        counters.total_output_tokens = stats.total_output_tokens
        counters.total_cached_input_tokens = stats.total_cached_input_tokens
        counters.total_cache_write_tokens = stats.total_cache_write_tokens
        counters.total_cost = stats.total_cost
        counters.request_count = stats.request_count
        counters.successful_requests = stats.successful_requests
        counters.failed_requests = stats.failed_requests
        return counters


MAX_HISTORY_DAYS = 400
"""Days of per-model usage history kept (the oldest days are dropped beyond this)."""


class UsageHistory:
    """Per UTC day totals of one model: tokens, requests and cost. Bounded to :data:`MAX_HISTORY_DAYS` days.

    Not thread-safe: the registry holds its lock around every call.
    """

    __slots__ = ("_days",)

    def __init__(self) -> None:
        # day -> [input, output, cached, cache write, requests, cost]; insertion order is date order in practice
        self._days: dict[date, list[Any]] = {}

    def add(self, day: date, inp: int, out: int, cached: int, written: int, cost: Decimal) -> None:
        """Count one request on ``day``."""
        totals = self._days.get(day)
        if totals is None:
            totals = self._days[day] = [0, 0, 0, 0, 0, Decimal(0)]
            if len(self._days) > MAX_HISTORY_DAYS:
                del self._days[min(self._days)]
        totals[0] += inp
        totals[1] += out
        totals[2] += cached
        totals[3] += written
        totals[4] += 1
        totals[5] = _CTX.add(totals[5], cost)

    def copy(self) -> UsageHistory:
        """An independent copy (the day totals are copied, not shared)."""
        other = UsageHistory()
        other._days = {day: totals.copy() for day, totals in self._days.items()}
        return other

    def add_totals(self, day: date, totals: list[Any]) -> None:
        """Add ``totals`` (input, output, cached, cache write, requests, cost) to ``day``."""
        mine = self._days.get(day)
        if mine is None:
            self._days[day] = totals[:6]
            if len(self._days) > MAX_HISTORY_DAYS:
                del self._days[min(self._days)]
            return
        for i in range(5):
            mine[i] += totals[i]
        mine[5] = _CTX.add(mine[5], totals[5])

    def add_history(self, other: UsageHistory, sign: int = 1) -> None:
        """Add (``sign=-1``: take away) the day totals of ``other``; days left without requests go, and so do the
        oldest days beyond the bound."""
        for day, totals in other._days.items():
            mine = self._days.get(day)
            if mine is None:
                mine = self._days[day] = [0, 0, 0, 0, 0, Decimal(0)]
            for i in range(5):
                mine[i] += sign * totals[i]
            mine[5] = _CTX.add(mine[5], totals[5] if sign > 0 else -totals[5])
            if mine[4] <= 0:
                del self._days[day]
        if len(self._days) > MAX_HISTORY_DAYS:
            self._days = dict(sorted(self._days.items())[-MAX_HISTORY_DAYS:])

    def cost_between(self, start: date | None, end: date | None) -> Decimal:
        """The cost recorded on days in ``[start, end)`` (open bounds when ``None``)."""
        total = Decimal(0)
        for day, totals in self._days.items():
            if (start is None or day >= start) and (end is None or day < end):
                total = _CTX.add(total, totals[5])
        return total

    def entries(self, key: str, since: date | None = None) -> list[UsageHistoryEntry]:
        """The days from ``since`` on (all when ``None``), oldest first."""
        return [
            construct_trusted(
                UsageHistoryEntry,
                {
                    "key": key,
                    "date": day,
                    "input_tokens": t[0],
                    "output_tokens": t[1],
                    "cached_input_tokens": t[2],
                    "cache_write_tokens": t[3],
                    "requests": t[4],
                    "cost": t[5],
                },
            )
            for day, t in sorted(self._days.items())
            if since is None or day >= since
        ]

    def load(self, entries: list[UsageHistoryEntry]) -> None:
        """Replace the history with ``entries`` (validated, e.g. from a saved snapshot)."""
        self._days = {
            e.date: [e.input_tokens, e.output_tokens, e.cached_input_tokens, e.cache_write_tokens, e.requests, e.cost]
            for e in sorted(entries, key=lambda e: e.date)[-MAX_HISTORY_DAYS:]
        }
