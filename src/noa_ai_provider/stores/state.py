"""``ModelState``: the live state of one model in a :class:`~noa_ai_provider.stores.memory.MemoryStore`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..cost import UsageCounters, UsageHistory
from ..delta import Delta, later, newer_metrics
from ..ratelimit import ModelLimiter
from ..schemas import ModelPerformanceMetrics, RateLimitConfig, utc_from_timestamp
from .base import RequestUsage

__all__ = ["ModelState", "Saved"]


class Saved(Protocol):
    """What a snapshot file holds of one model's usage (a :class:`~noa_ai_provider.persistence.merge.Row`)."""

    usage: UsageCounters
    history: UsageHistory
    access_count: int
    last_accessed: datetime | None
    metrics: ModelPerformanceMetrics | None


class ModelState:
    """The live state of one model. Only touched under the store's lock."""

    __slots__ = (
        "absolute",
        "absolute_history",
        "access_count",
        "count_cache_reads",
        "history",
        "last_accessed",
        "limiter",
        "metrics",
        "pending",
        "rate_limit",
        "room",
        "usage",
    )

    def __init__(self, rate_limit: RateLimitConfig | None, now: float, windows: ModelLimiter | None = None) -> None:
        self.rate_limit = rate_limit
        self.count_cache_reads = rate_limit is None or rate_limit.count_cache_reads
        self.limiter = ModelLimiter(rate_limit, previous=windows)
        self.usage = UsageCounters(utc_from_timestamp(now))
        self.history = UsageHistory()
        self.metrics: ModelPerformanceMetrics | None = None
        self.last_accessed: datetime | None = None
        self.access_count = 0
        # What this process added since it last synchronised with the snapshot file (None: nothing), and whether
        # its usage was reset or imported since: then the whole usage replaces the file's (see merge.py).
        self.pending: Delta | None = None
        self.absolute = False
        self.absolute_history = False  # its daily history too (an import; a reset keeps the history)
        # How much more (tokens of every kind plus requests) can surely be counted before a counter or a day's total
        # could pass MAX_INT: while a request needs less, the exact check is skipped. Only ever an underestimate;
        # 0 whenever the counters are replaced by larger ones (adopt, restore), so the next request checks.
        self.room = 0

    def delta(self) -> Delta:
        """The pending delta, created on first use."""
        pending = self.pending
        if pending is None:
            pending = self.pending = Delta()
        return pending

    def limited_input(self, usage: RequestUsage) -> int:
        """The input tokens of ``usage`` that count toward token limits: all of them, or without the cache reads
        when ``rate_limit.count_cache_reads`` is false (Anthropic's input-tokens-per-minute limit)."""
        if self.count_cache_reads:
            return usage.input_tokens
        return usage.input_tokens - usage.cached_input_tokens

    def adopt(self, row: Saved) -> None:
        """Take the saved usage and bookkeeping of ``row`` (what the file now holds), plus what is pending."""
        self.room = 0
        pending = self.pending
        if not self.absolute:
            if pending is not None:
                row.usage.add_counters(pending.usage)
            self.usage = row.usage
        if not self.absolute_history:
            if pending is not None:
                row.history.add_history(pending.history)
            self.history = row.history
        self.access_count = row.access_count + (pending.accesses if pending is not None else 0)
        self.last_accessed = later(self.last_accessed, row.last_accessed)
        self.metrics = newer_metrics(self.metrics, row.metrics)
