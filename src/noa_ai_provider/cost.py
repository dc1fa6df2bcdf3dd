"""Pricing arithmetic and usage counters. Pure ``Decimal``: money is never a float here.

A request costs ``(input_tokens * cost.input_tokens + output_tokens * cost.output_tokens) / cost.per``. The
arithmetic runs in a 60-digit context, so for any realistic token count and price the result is exact (with
``per`` a power of ten it is always exact), and the sum of the costs of any split of a set of requests equals the
cost computed over the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .errors import InvalidUsageError
from .schemas import (
    MAX_INT,
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
    "SERVICE_TIER_NAMES",
    "Rates",
    "UsageCounters",
    "UsageHistory",
    "billed_service_tier",
    "check_token_count",
    "request_cost",
    "request_rates",
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
    if value > MAX_INT:
        raise InvalidUsageError(f"{name} must be at most 2**63-1 (what a saved registry can hold), got {value}")
    return value


SERVICE_TIER_NAMES: dict[str, str | None] = {
    "default": None,
    "auto": None,
    "standard": None,
    "standard_only": None,
    "batch": "batch",
    "flex": "flex",
    "priority": "priority",
    "scale": "priority",
    "fast": "priority",  # OpenAI's names for faster processing; LiteLLM prices "fast" as priority too
    "ultrafast": "priority",
}
"""The service-tier names callers pass or providers report back (``response.service_tier``), lower case, and the
price set each one bills: ``None`` the standard prices. ``scale``, ``fast``, ``ultrafast`` and ``priority`` bill the
``priority`` prices where the model has them, else the standard ones (see :func:`billed_service_tier`)."""


def billed_service_tier(cost: ModelCost, service_tier: str | None) -> str | None:
    """The price set a request reported with ``service_tier`` bills: ``None`` (standard), ``"batch"``, ``"flex"``
    or ``"priority"``. Names are matched without regard to case (OpenAI reports ``"default"``, ``"flex"``,
    ``"scale"``, ``"priority"``; Anthropic ``"standard"``, ``"priority"``, ``"batch"``).

    ``priority`` (and ``scale``) on a model without priority prices, and ``default``, ``auto`` or ``standard``, bill
    the standard prices; ``batch`` always bills batch prices (half the standard ones where the model has none, see
    :func:`request_rates`). Raises :class:`InvalidUsageError` for an unknown name, and for ``flex`` on a model
    without flex prices (a flex request is cheaper than a standard one: guessing would misstate the bill).
    """
    if service_tier is None:
        return None
    name = SERVICE_TIER_NAMES.get(service_tier.strip().lower(), "") if isinstance(service_tier, str) else ""
    if name == "":
        known = ", ".join(SERVICE_TIER_NAMES)
        raise InvalidUsageError(f"service_tier must be one of {known} or None, got {service_tier!r}")
    tiers = cost.service_tiers or {}
    if name is None or name == "batch" or name in tiers:
        return name
    if name == "priority":
        return None
    have = ", ".join(sorted(tiers)) or "none"
    raise InvalidUsageError(f"service_tier {service_tier!r} is not priced for this model (priced: {have})")


@dataclass(frozen=True, slots=True)
class Rates:
    """The prices one request bills at, per the model's ``per`` tokens: input, output, cache read, cache write
    (5-minute) and 1-hour cache write."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal


_HALF = Decimal("0.5")


def request_rates(cost: ModelCost, input_tokens: int, service_tier: str | None = None) -> Rates:
    """The prices a request of ``input_tokens`` (cache tokens included) bills at, at ``service_tier`` (a name
    :func:`billed_service_tier` has resolved: ``None``, ``"batch"``, ``"flex"`` or ``"priority"``).

    The rules, the same as LiteLLM's cost calculation for standard, flex and priority requests (batch follows the
    providers where LiteLLM's batch calculator departs from its catalogue: see ``docs/pricing.md``):

    1. **Each kind carries upward.** Start from the base prices; for every long-context tier whose threshold the
       request exceeds (strictly), lowest first, each price the tier states replaces the one in force. A tier that
       states only an output price changes only the output price.
    2. **Service tiers** (``flex``, ``priority``, and ``batch`` where the model prices it) stand on the standard
       prices: at the base and at each threshold of either ladder, the service tier's own price wins, else the
       standard price of that kind and threshold, else the price carried from below. So a priority request above a
       threshold where priority has no price of its own bills the standard long-context price.
    3. **Cache fallbacks**, applied last: no cache-read or cache-write price means the input price in force; no
       1-hour write price means the (5-minute) cache-write price in force.
    4. **Batch.** Without ``batch`` prices a batch request bills half of every standard price of the request
       (long-context included). With them, a kind batch leaves out is half the standard price, except cache
       writes, which bill at the batch input price where no batch cache-write price exists.
    """
    if service_tier is None:
        return _ladder(cost, None, input_tokens)
    tier = (cost.service_tiers or {}).get(service_tier)  # type: ignore[call-overload]
    if service_tier != "batch":
        if tier is None:
            raise InvalidUsageError(f"service_tier {service_tier!r} is not priced for this model")
        return _ladder(cost, tier, input_tokens)
    standard = _ladder(cost, None, input_tokens)
    half = Rates(*(_CTX.multiply(price, _HALF) for price in _as_tuple(standard)))
    if tier is None:
        return half
    own = _own_ladder(tier, input_tokens)
    price_in = own[0] if own[0] is not None else half.input
    write = own[3] if own[3] is not None else price_in
    return Rates(
        price_in,
        own[1] if own[1] is not None else half.output,
        own[2] if own[2] is not None else half.cache_read,
        write,
        own[4] if own[4] is not None else write,
    )


def _as_tuple(rates: Rates) -> tuple[Decimal, ...]:
    return (rates.input, rates.output, rates.cache_read, rates.cache_write, rates.cache_write_1h)


def _stated(level: ModelCost | ServiceTierPrices | PriceTier | None) -> tuple[Decimal | None, ...]:
    if level is None:
        return (None, None, None, None, None)
    return (
        level.input_tokens,
        level.output_tokens,
        level.cached_input_tokens,
        level.cache_write_tokens,
        level.cache_write_1h_tokens,
    )


def _own_ladder(prices: ServiceTierPrices, input_tokens: int) -> list[Decimal | None]:
    # The prices a service tier states for the request, carried upward over its own tiers only.
    current = list(_stated(prices))
    for tier in prices.tiers or ():
        if input_tokens <= tier.above_input_tokens:
            break
        for i, price in enumerate(_stated(tier)):
            if price is not None:
                current[i] = price
    return current


def _ladder(cost: ModelCost, service: ServiceTierPrices | None, input_tokens: int) -> Rates:
    current: list[Decimal | None] = list(_stated(cost))
    if service is not None:
        for i, price in enumerate(_stated(service)):
            if price is not None:
                current[i] = price
    standard = cost.tiers or ()
    own = (service.tiers or ()) if service is not None else ()
    if own:
        by_threshold: dict[int, list[PriceTier | None]] = {}
        for t in standard:
            by_threshold.setdefault(t.above_input_tokens, [None, None])[0] = t
        for t in own:
            by_threshold.setdefault(t.above_input_tokens, [None, None])[1] = t
        steps = [(threshold, pair) for threshold, pair in sorted(by_threshold.items())]
    else:
        steps = [(t.above_input_tokens, [t, None]) for t in standard]
    for threshold, (std_tier, own_tier) in steps:
        if input_tokens <= threshold:
            break
        std_prices = _stated(std_tier)
        own_prices = _stated(own_tier)
        for i in range(5):
            price = own_prices[i] if own_prices[i] is not None else std_prices[i]
            if price is not None:
                current[i] = price
    price_in, price_out, cached, write, write_1h = current
    # The base prices are required (ModelCost), so they are set.
    assert price_in is not None
    assert price_out is not None
    if cached is None:
        cached = price_in
    if write is None:
        write = price_in
    return Rates(price_in, price_out, cached, write, write if write_1h is None else write_1h)


def request_cost(
    cost: ModelCost,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    service_tier: str | None = None,
    cache_write_1h_tokens: int = 0,
) -> Decimal:
    """The exact cost of one request; ``input_tokens`` includes the cached, cache-write and 1-hour cache-write
    tokens.

    The prices are those of :func:`request_rates` for ``input_tokens`` at ``service_tier`` (any name
    :func:`billed_service_tier` accepts). The cost is ``(uncached × input + cached × cache read + written × cache
    write + written_1h × 1-hour write + output × output) / per``.

    >>> from decimal import Decimal
    >>> c = ModelCost(input_tokens=Decimal("0.01"), output_tokens=Decimal("0.03"))
    >>> request_cost(c, 2000, 1000)
    Decimal('0.05')

    Raises :class:`InvalidUsageError` when the cache tokens exceed ``input_tokens`` or the service tier is unknown
    or not priced.
    """
    uncached = input_tokens - cached_input_tokens - cache_write_tokens - cache_write_1h_tokens
    if uncached < 0:
        raise InvalidUsageError(
            f"cached_input_tokens ({cached_input_tokens}) + cache_write_tokens ({cache_write_tokens}) + "
            f"cache_write_1h_tokens ({cache_write_1h_tokens}) exceed input_tokens ({input_tokens}); "
            "input_tokens includes them"
        )
    if not cost.tiers and service_tier is None and uncached == input_tokens:
        # The plain case, kept short: it is the hot path of record_usage.
        total = _CTX.add(
            _CTX.multiply(input_tokens, cost.input_tokens), _CTX.multiply(output_tokens, cost.output_tokens)
        )
        return _CTX.divide(total, cost.per)
    if not cost.tiers and service_tier is None:
        # Standard prices without long-context tiers (a cached request to most models): the base prices with the
        # cache fallbacks of request_rates' rule 3, read directly instead of climbing an empty ladder.
        price_in, price_out = cost.input_tokens, cost.output_tokens
        read = price_in if cost.cached_input_tokens is None else cost.cached_input_tokens
        write = price_in if cost.cache_write_tokens is None else cost.cache_write_tokens
        write_1h = write if cost.cache_write_1h_tokens is None else cost.cache_write_1h_tokens
    else:
        rates = request_rates(cost, input_tokens, billed_service_tier(cost, service_tier))
        price_in, price_out, read, write, write_1h = (
            rates.input,
            rates.output,
            rates.cache_read,
            rates.cache_write,
            rates.cache_write_1h,
        )
    # The same sum, in the same order, on both paths: the result's digits do not depend on the path taken.
    total = _CTX.add(
        _CTX.add(_CTX.multiply(uncached, price_in), _CTX.multiply(output_tokens, price_out)),
        _CTX.add(
            _CTX.multiply(cached_input_tokens, read),
            _CTX.add(_CTX.multiply(cache_write_tokens, write), _CTX.multiply(cache_write_1h_tokens, write_1h)),
        ),
    )
    return _CTX.divide(total, cost.per)


def worst_case_cost(
    cost: ModelCost, input_tokens: int, max_output_tokens: int, service_tier: str | None = None
) -> Decimal:
    """The most a request of at most ``input_tokens`` and ``max_output_tokens`` can cost: what a budget reserves
    before the call, so that no commit within the reservation can overspend it.

    Every input token at the dearest input-side price (full input, cache read, cache write or 1-hour cache write)
    plus every output token at the output price, taking the dearest of the price levels such a commit can reach:
    the base and each long-context tier whose threshold is below ``input_tokens`` (a commit of fewer input tokens
    lands in a lower tier, which may be dearer). Without ``service_tier``, the dearest of the standard prices and
    every service tier the model prices, since the call may still pick one.
    """
    billed = billed_service_tier(cost, service_tier)
    choices: list[str | None] = [billed]
    if service_tier is None and cost.service_tiers:
        choices.extend(cost.service_tiers)
    # One request size per reachable price level: at the base, and just above each threshold below input_tokens.
    thresholds = {t.above_input_tokens for t in cost.tiers or ()}
    for prices in (cost.service_tiers or {}).values():
        thresholds.update(t.above_input_tokens for t in prices.tiers or ())
    sizes = [0, *(t + 1 for t in sorted(thresholds) if t < input_tokens)]
    worst = Decimal(0)
    for choice in choices:
        for size in sizes:
            rates = request_rates(cost, size, choice)
            dearest_in = max(rates.input, rates.cache_read, rates.cache_write, rates.cache_write_1h)
            total = _CTX.add(_CTX.multiply(input_tokens, dearest_in), _CTX.multiply(max_output_tokens, rates.output))
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

    def remove(
        self, input_tokens: int, output_tokens: int, cost: Decimal, success: bool, cached: int = 0, written: int = 0
    ) -> None:
        """Take back one request counted by :meth:`add` (a request whose journal append failed)."""
        self.total_input_tokens -= input_tokens
        self.total_output_tokens -= output_tokens
        self.total_cached_input_tokens -= cached
        self.total_cache_write_tokens -= written
        self.total_cost = _CTX.subtract(self.total_cost, cost)
        self.request_count -= 1
        if success:
            self.successful_requests -= 1
        else:
            self.failed_requests -= 1

    def overflow(self, input_tokens: int, output_tokens: int, cached: int, written: int) -> str | None:
        """The counter that one more request of these tokens would take past ``MAX_INT`` (the largest count a
        saved registry holds), or ``None``."""
        # One comparison in the common case: no counter can pass MAX_INT when all of them together do not.
        if (
            self.total_input_tokens
            + self.total_output_tokens
            + self.total_cached_input_tokens
            + self.total_cache_write_tokens
            + self.request_count
            + input_tokens
            + output_tokens
            + cached
            + written
            < MAX_INT
        ):
            return None
        for name, total, more in (
            ("total_input_tokens", self.total_input_tokens, input_tokens),
            ("total_output_tokens", self.total_output_tokens, output_tokens),
            ("total_cached_input_tokens", self.total_cached_input_tokens, cached),
            ("total_cache_write_tokens", self.total_cache_write_tokens, written),
            ("request_count", self.request_count, 1),
        ):
            if total + more > MAX_INT:
                return name
        return None

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

    def overflow(self, day: date, inp: int, out: int, cached: int, written: int) -> str | None:
        """The total of ``day`` that one more request would take past ``MAX_INT``, or ``None``."""
        totals = self._days.get(day)
        if (
            totals is None
            or totals[0] + totals[1] + totals[2] + totals[3] + totals[4] + inp + out + cached + written < MAX_INT
        ):
            return None  # (the common case: together they stay below, so each does)
        for name, index, more in (
            ("input tokens", 0, inp),
            ("output tokens", 1, out),
            ("cached input tokens", 2, cached),
            ("cache write tokens", 3, written),
            ("requests", 4, 1),
        ):
            if totals[index] + more > MAX_INT:
                return f"{name} of {day}"
        return None

    def largest(self) -> int:
        """The largest sum of one day's counts (tokens of every kind and requests): no day total is above it."""
        return max((t[0] + t[1] + t[2] + t[3] + t[4] for t in self._days.values()), default=0)

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

    def remove(self, day: date, inp: int, out: int, cached: int, written: int, cost: Decimal) -> None:
        """Take back one request counted by :meth:`add` on ``day`` (the day goes when it holds no request)."""
        totals = self._days.get(day)
        if totals is None:
            return
        totals[0] -= inp
        totals[1] -= out
        totals[2] -= cached
        totals[3] -= written
        totals[4] -= 1
        totals[5] = _CTX.subtract(totals[5], cost)
        if totals[4] <= 0:
            del self._days[day]

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
