"""Budgets: spending limits per UTC calendar period (day, week, month) or in total, global or per model.

Pure bookkeeping, no locks and no clock of its own: the registry calls it under its lock with its clock's time.
A budget counts what was recorded in its current period (``spent``) plus the worst case of open reservations
(``reserved``). A reservation is refused when it could take ``spent + reserved`` past the limit.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from .schemas import MONEY_CONTEXT, BudgetStatus

__all__ = ["PERIODS", "BudgetState", "period_bounds"]

PERIODS = ("day", "week", "month", "total")
_IDS = itertools.count(1)
_CTX = MONEY_CONTEXT


def period_bounds(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The UTC calendar period containing ``now``: ``[start, end)``; ``(None, None)`` for ``total``.

    Weeks start on Monday.
    """
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    return None, None


class BudgetState:
    """One budget's running state."""

    __slots__ = (
        "end",
        "exceeded",
        "ident",
        "key",
        "limit",
        "period",
        "reserved",
        "spent",
        "start",
        "warn_at",
        "warned",
    )

    def __init__(self, limit: Decimal, period: str, key: str | None, warn_at: Decimal, now: datetime) -> None:
        self.ident = next(_IDS)  # reservations find their budget by it
        self.limit = limit
        self.period = period
        self.key = key
        self.warn_at = warn_at
        self.start, self.end = period_bounds(period, now)
        self.spent = Decimal(0)
        self.reserved = Decimal(0)
        self.warned = False
        self.exceeded = False

    def applies(self, key: str) -> bool:
        """Whether a request on model ``key`` counts against this budget."""
        return self.key is None or self.key == key

    def roll(self, now: datetime) -> None:
        """Start a new period when ``now`` has left the current one (spend starts again at 0)."""
        if self.end is not None and now >= self.end:
            self.start, self.end = period_bounds(self.period, now)
            self.spent = Decimal(0)
            self.warned = self.exceeded = False

    def fits(self, amount: Decimal) -> bool:
        """Whether ``amount`` more can be reserved without crossing the limit."""
        return _CTX.add(_CTX.add(self.spent, self.reserved), amount) <= self.limit

    def charge(self, amount: Decimal) -> list[str]:
        """Add a recorded cost; return the events it triggers (each at most once per period)."""
        self.spent = _CTX.add(self.spent, amount)
        events = []
        if not self.warned and self.spent >= _CTX.multiply(self.limit, self.warn_at):
            self.warned = True
            events.append("budget-warning")
        if not self.exceeded and self.spent > self.limit:
            self.exceeded = True
            events.append("budget-exceeded")
        return events

    def uncharge(self, amount: Decimal) -> None:
        """Take back a recorded cost (a request whose journal append failed); the warning flags stay."""
        self.spent = _CTX.subtract(self.spent, amount)

    def hold(self, amount: Decimal) -> None:
        """Reserve ``amount`` (an admitted request's worst case)."""
        self.reserved = _CTX.add(self.reserved, amount)

    def release(self, amount: Decimal) -> None:
        """Give back a reservation's ``amount``."""
        self.reserved = max(_CTX.subtract(self.reserved, amount), Decimal(0))

    def status(self) -> BudgetStatus:
        """A snapshot for :meth:`EnhancedModelRegistry.get_budget_status`."""
        return BudgetStatus(
            key=self.key,
            period=self.period,
            limit=self.limit,
            spent=self.spent,
            reserved=self.reserved,
            remaining=_CTX.subtract(_CTX.subtract(self.limit, self.spent), self.reserved),
            warn_at=self.warn_at,
            period_start=self.start,
            period_end=self.end,
        )
