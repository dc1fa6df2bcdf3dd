"""``Delta``: the usage one writer recorded for one model since it last synchronised with the snapshot file.

A registry keeps one per model (:mod:`noa_ai_provider.stores.memory`), and saving merges them into the file that
other processes write too (:mod:`noa_ai_provider.persistence.merge`). Pure bookkeeping, no locks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from .cost import UsageCounters, UsageHistory
from .schemas import MONEY_CONTEXT, ModelPerformanceMetrics

__all__ = ["Delta", "later", "newer_metrics"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Delta:
    """What one writer added to one model since it last synchronised with the file.

    With ``absolute`` set, ``usage`` is the model's whole usage (after a reset or an import) and replaces what the
    file holds instead of adding to it; with ``absolute_history``, ``history`` does the same (an import; a reset
    keeps the history). ``accesses`` always add.

    Requests come in through :meth:`add_request`, the hot path: one list per day, folded into ``usage`` and
    ``history`` only when those are read.
    """

    __slots__ = ("_days", "_history", "_usage", "absolute", "absolute_history", "accesses", "last_accessed")

    def __init__(self) -> None:
        self._usage = UsageCounters(_EPOCH)
        self._history = UsageHistory()
        self._days: dict[date, list[Any]] = {}  # day -> input, output, cached, cache write, requests, cost, failed
        self.accesses = 0
        self.last_accessed: datetime | None = None
        self.absolute = False
        self.absolute_history = False

    def add_request(
        self, day: date, inp: int, out: int, cached: int, written: int, cost: Decimal, success: bool
    ) -> None:
        """Count one request recorded on ``day``."""
        totals = self._days.get(day)
        if totals is None:
            totals = self._days[day] = [0, 0, 0, 0, 0, Decimal(0), 0]
        totals[0] += inp
        totals[1] += out
        totals[2] += cached
        totals[3] += written
        totals[4] += 1
        totals[5] = MONEY_CONTEXT.add(totals[5], cost)
        if not success:
            totals[6] += 1

    def remove_request(
        self, day: date, inp: int, out: int, cached: int, written: int, cost: Decimal, success: bool
    ) -> None:
        """Take back one request counted by :meth:`add_request` (whose journal append failed)."""
        totals = self._days.get(day)
        if totals is None:
            totals = self._days[day] = [0, 0, 0, 0, 0, Decimal(0), 0]
        totals[0] -= inp
        totals[1] -= out
        totals[2] -= cached
        totals[3] -= written
        totals[4] -= 1
        totals[5] = MONEY_CONTEXT.subtract(totals[5], cost)
        if not success:
            totals[6] -= 1

    def _settle(self) -> None:
        days = self._days
        if days:
            self._days = {}
            self._usage.add_days(days)
            for day, totals in days.items():
                self._history.add_totals(day, totals)

    @property
    def usage(self) -> UsageCounters:
        """The counters (requests, tokens, cost) of this delta."""
        self._settle()
        return self._usage

    @usage.setter
    def usage(self, value: UsageCounters) -> None:
        self._settle()
        self._usage = value

    @property
    def history(self) -> UsageHistory:
        """The per-day totals of this delta."""
        self._settle()
        return self._history

    @history.setter
    def history(self, value: UsageHistory) -> None:
        self._settle()
        self._history = value


def newer_metrics(
    a: ModelPerformanceMetrics | None, b: ModelPerformanceMetrics | None
) -> ModelPerformanceMetrics | None:
    """The more recently updated of two metrics (either may be missing)."""
    if a is None or b is None:
        return a if b is None else b
    return b if (b.last_updated or _EPOCH) > (a.last_updated or _EPOCH) else a


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two times, either of which may be missing."""
    if a is None or b is None:
        return a if b is None else b
    return max(a, b)
