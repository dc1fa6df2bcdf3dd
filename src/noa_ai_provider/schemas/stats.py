"""Figures: a model's usage counters and performance metrics, the registry's statistics, budgets, usage history."""

from __future__ import annotations

from datetime import date as date_type
from datetime import datetime
from decimal import Decimal
from typing import Literal

from . import html
from .base import Field, _Schema
from .fields import Fraction, NonEmptyStr, NonNegativeFloat, NonNegativeInt, Price, UtcDatetime

__all__ = [
    "BudgetStatus",
    "EnhancedRegistryStatistics",
    "ModelPerformanceMetrics",
    "ModelUsageStats",
    "UsageHistory",
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

    .. versionchanged:: 0.2.0
       Shown as HTML in Jupyter.
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

    def _repr_html_(self) -> str:
        """Totals, cost by currency, and counts by provider, capability and status, as HTML tables."""
        totals = html.fields_table(
            "Registry statistics",
            [
                ("models", self.total_models),
                ("requests", self.total_requests),
                ("input tokens", self.total_input_tokens),
                ("output tokens", self.total_output_tokens),
                ("accesses", self.total_accesses),
                ("total cost", self.total_cost),
            ],
        )
        parts = [totals]
        if self.cost_by_currency:
            rows = sorted(self.cost_by_currency.items())
            parts.append(html.table("Cost by currency", ("currency", "cost"), rows, right=(1,)))
        for caption, counts in (
            ("Models by provider", self.provider_counts),
            ("Models by capability", self.capability_counts),
            ("Models by status", self.status_counts),
        ):
            if counts:
                parts.append(html.table(caption, ("", "models"), sorted(counts.items()), right=(1,)))
        return "".join(parts)


class BudgetStatus(_Schema):
    """Where a budget stands: ``spent`` in the current period, ``reserved`` by open reservations (worst case).

    .. versionchanged:: 0.2.0
       Shown as HTML in Jupyter.
    """

    key: str | None  # the model key, or None for the global budget
    period: Literal["day", "week", "month", "total"]
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    remaining: Decimal  # limit - spent - reserved (may be negative once exceeded)
    warn_at: Decimal
    period_start: datetime | None
    period_end: datetime | None

    def _repr_html_(self) -> str:
        """The budget as a one-row HTML table."""
        return html.table(
            "Budget",
            ("model", "period", "limit", "spent", "reserved", "remaining", "warn at", "period ends"),
            [
                (
                    self.key or "(all models)",
                    self.period,
                    self.limit,
                    self.spent,
                    self.reserved,
                    self.remaining,
                    self.warn_at,
                    self.period_end.isoformat() if self.period_end else None,
                )
            ],
            right=(2, 3, 4, 5, 6),
        )


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


_HISTORY_COLUMNS = (
    "date",
    "model",
    "requests",
    "input tokens",
    "output tokens",
    "cached input tokens",
    "cache write tokens",
    "cost",
)


class UsageHistory(list[UsageHistoryEntry]):
    """What :meth:`~noa_ai_provider.registry.EnhancedModelRegistry.get_usage_history` returns: a ``list`` of
    :class:`UsageHistoryEntry` (equal to a plain list of the same entries) that notebooks show as a table."""

    def _repr_html_(self) -> str:
        rows = [
            (
                e.date.isoformat(),
                e.key,
                e.requests,
                e.input_tokens,
                e.output_tokens,
                e.cached_input_tokens,
                e.cache_write_tokens,
                e.cost,
            )
            for e in self
        ]
        return html.table(f"Usage history ({len(rows)} rows)", _HISTORY_COLUMNS, rows, right=range(2, 8))
