"""Pricing arithmetic and usage counters. Pure ``Decimal``: money is never a float here.

A request costs ``(input_tokens * cost.input_tokens + output_tokens * cost.output_tokens) / cost.per``. The
arithmetic runs in a 60-digit context, so for any realistic token count and price the result is exact (with
``per`` a power of ten it is always exact), and the sum of the costs of any split of a set of requests equals the
cost computed over the whole.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Context, Decimal

from .errors import InvalidUsageError
from .schemas import ModelCost, ModelUsageStats, construct_trusted

__all__ = ["UsageCounters", "check_token_count", "cost_per_token", "request_cost"]

_CTX = Context(prec=60)


def check_token_count(name: str, value: object) -> int:
    """Return ``value`` when it is a non-negative ``int`` (not a bool); else raise :class:`InvalidUsageError`."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidUsageError(f"{name} must be an integer, got {type(value).__name__}")
        value = int(value)  # an int subclass such as numpy's would be fine; keep the plain value
    if value < 0:
        raise InvalidUsageError(f"{name} must be >= 0, got {value}")
    return value


def request_cost(cost: ModelCost, input_tokens: int, output_tokens: int) -> Decimal:
    """The exact cost of one request.

    >>> from decimal import Decimal
    >>> c = ModelCost(input_tokens=Decimal("0.01"), output_tokens=Decimal("0.03"))
    >>> request_cost(c, 2000, 1000)
    Decimal('0.05')
    """
    total = _CTX.add(
        _CTX.multiply(input_tokens, cost.input_tokens),
        _CTX.multiply(output_tokens, cost.output_tokens),
    )
    return _CTX.divide(total, cost.per)


def cost_per_token(cost: ModelCost) -> Decimal:
    """The seed's average price of one token: ``(input + output) / (2 * per)``."""
    return _CTX.divide(_CTX.add(cost.input_tokens, cost.output_tokens), 2 * cost.per)


class UsageCounters:
    """Mutable usage counters of one model. Not thread-safe: the registry holds its lock around every call."""

    __slots__ = (
        "failed_requests",
        "last_reset",
        "request_count",
        "successful_requests",
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
        self.total_cost = Decimal(0)
        self.request_count = 0
        self.successful_requests = 0
        self.failed_requests = 0
        self.last_reset = now

    def add(self, input_tokens: int, output_tokens: int, cost: Decimal, success: bool) -> None:
        """Count one request."""
        self.total_input_tokens += input_tokens
        self.total_output_tokens += output_tokens
        self.total_cost = _CTX.add(self.total_cost, cost)
        self.request_count += 1
        if success:
            self.successful_requests += 1
        else:
            self.failed_requests += 1

    def snapshot(self, currency: str) -> ModelUsageStats:
        """An independent :class:`ModelUsageStats` with the current values."""
        return construct_trusted(
            ModelUsageStats,
            {
                "total_input_tokens": self.total_input_tokens,
                "total_output_tokens": self.total_output_tokens,
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
        counters.total_cost = stats.total_cost
        counters.request_count = stats.request_count
        counters.successful_requests = stats.successful_requests
        counters.failed_requests = stats.failed_requests
        return counters
