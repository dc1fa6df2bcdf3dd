"""Figures: a model's usage counters and performance metrics, the registry's statistics, budgets, usage history."""

from __future__ import annotations

from datetime import date as date_type
from datetime import datetime
from decimal import Decimal
from typing import Literal

from .base import Field, _Schema
from .fields import Fraction, NonEmptyStr, NonNegativeFloat, NonNegativeInt, Price, UtcDatetime

__all__ = [
    "BudgetStatus",
    "EnhancedRegistryStatistics",
    "ModelPerformanceMetrics",
    "ModelUsageStats",
    "UsageHistoryEntry",
]


class ModelUsageStats(_Schema):
    """Usage counters of one model since ``last_reset``."""

    total_input_tokens: NonNegativeInt = 0
    total_output_tokens: NonNegativeInt = 0
    total_cached_input_tokens: NonNegativeInt = 0  # part of total_input_tokens read from the provider's cache
    total_cache_write_tokens: NonNegativeInt = 0  # part of total_input_tokens written to the cache
    total_cost: Price = Decimal(0)
    currency: NonEmptyStr = "USD"
    last_reset: UtcDatetime
    request_count: NonNegativeInt = 0
    successful_requests: NonNegativeInt = 0
    failed_requests: NonNegativeInt = 0


class ModelPerformanceMetrics(_Schema):
    """Performance figures reported by the application (the registry does not measure them)."""

    average_latency: NonNegativeFloat = 0.0
    tokens_per_second: NonNegativeFloat = 0.0
    total_inferences: NonNegativeInt = 0
    success_rate: Fraction = 0.0
    memory_usage: NonNegativeFloat = 0.0
    last_updated: UtcDatetime | None = None


class EnhancedRegistryStatistics(_Schema):
    """Aggregate figures over every registered model.

    ``total_cost`` adds every model's cost whatever its currency (as the seed does); ``cost_by_currency`` keeps
    them apart.
    """

    total_models: int
    provider_counts: dict[str, int]
    capability_counts: dict[str, int]
    status_counts: dict[str, int]
    total_accesses: int
    average_access_count: float
    total_cost: Decimal
    total_input_tokens: int
    total_output_tokens: int
    total_requests: int = 0
    cost_by_currency: dict[str, Decimal] = Field(default_factory=dict)


class BudgetStatus(_Schema):
    """Where a budget stands: ``spent`` in the current period, ``reserved`` by open reservations (worst case)."""

    key: str | None  # the model key, or None for the global budget
    period: Literal["day", "week", "month", "total"]
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    remaining: Decimal  # limit - spent - reserved (may be negative once exceeded)
    warn_at: Decimal
    period_start: datetime | None
    period_end: datetime | None


class UsageHistoryEntry(_Schema):
    """One model's usage on one UTC day."""

    key: str
    date: date_type
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cached_input_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0
    requests: NonNegativeInt = 0
    cost: Price = Decimal(0)
