"""``Reservation``: what ``EnhancedModelRegistry.acquire`` hands out, committed or cancelled exactly once.

The reservation holds one request and ``input_tokens + max_output_tokens`` tokens in every rate-limit window of
its model. :meth:`Reservation.commit` records the real usage (cost, counters, ``usage-recorded``, exactly as
``record_usage``) and corrects the windows at the reservation's original time; :meth:`Reservation.cancel` gives it
back. As a context manager, leaving the block by an exception records a failed request (its input tokens are
charged, as providers do) and leaving it without a decision cancels.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from .errors import ModelNotFoundError, UnpricedModelError
from .ratelimit import Handle
from .schemas import utc_from_timestamp

__all__ = ["CANCELLED", "COMMITTED", "OPEN", "Reservation"]

OPEN, COMMITTED, CANCELLED = "open", "committed", "cancelled"


class _Settler(Protocol):
    def _settle_reservation(
        self,
        reservation: Reservation,
        input_tokens: int | None,
        output_tokens: int,
        success: bool,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal: ...

    def _release_reservation(self, reservation: Reservation) -> None: ...


class Reservation:
    """An admitted request, held in the rate-limit windows until committed or cancelled. Thread-safe.

    Attributes: ``key``, ``input_tokens`` and ``max_output_tokens`` (as reserved), ``timestamp`` (the registry
    clock's seconds when admitted) and ``reserved_at`` (the same as a UTC datetime), ``state`` (``"open"``,
    ``"committed"``, ``"cancelled"``) and ``cost`` (after commit). Its state changes under the registry's lock.
    """

    __slots__ = (
        "_budget_holds",
        "_handle",
        "_owner",
        "_record",
        "cost",
        "input_tokens",
        "key",
        "max_output_tokens",
        "state",
        "timestamp",
    )

    def __init__(
        self,
        owner: _Settler,
        key: str,
        record: object,
        handle: Handle,
        input_tokens: int,
        max_output_tokens: int,
        timestamp: float,
    ) -> None:
        self._owner = owner
        self._record = record
        self._handle = handle
        self._budget_holds: list[tuple[Any, Decimal]] = []  # (budget id, worst-case cost) held in budgets
        self.key = key
        self.input_tokens = input_tokens
        self.max_output_tokens = max_output_tokens
        self.timestamp = timestamp
        self.state = OPEN
        self.cost: Decimal | None = None

    @property
    def reserved_at(self) -> datetime:
        """When the reservation was admitted, as a timezone-aware UTC datetime."""
        return utc_from_timestamp(self.timestamp)

    def __repr__(self) -> str:
        return (
            f"<Reservation {self.key} {self.state}: {self.input_tokens} in + {self.max_output_tokens} out "
            f"at {self.reserved_at.isoformat()}>"
        )

    @property
    def open(self) -> bool:
        """Neither committed nor cancelled yet."""
        return self.state == OPEN

    def commit(
        self,
        output_tokens: int,
        *,
        input_tokens: int | None = None,
        success: bool = True,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal:
        """Record the real usage (``input_tokens`` defaults to the reserved count) and return its cost.

        Cache and service-tier arguments are as for :meth:`EnhancedModelRegistry.record_usage`; budgets held by
        the reservation are corrected from its worst case to the actual cost.

        The rate-limit windows are corrected at the reservation's time; cost, counters and ``usage-recorded`` are
        exactly as :meth:`EnhancedModelRegistry.record_usage`. Committing again returns the first cost and records
        nothing. Raises :class:`InvalidUsageError` after :meth:`cancel`, and ``ModelNotFoundError`` when the model
        was unregistered meanwhile (the reservation is then released).
        """
        return self._owner._settle_reservation(
            self,
            input_tokens,
            output_tokens,
            success,
            cached_input_tokens,
            cache_write_tokens,
            service_tier,
            cache_write_1h_tokens,
        )

    def cancel(self) -> None:
        """Give the reservation back (nothing is recorded). No-op when already committed or cancelled."""
        self._owner._release_reservation(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.open:
            return
        if exc_type is None:
            self.cancel()
            return
        # The caller's exception matters more than ours: if the failure cannot be recorded (the model is gone or
        # has no price), give the reservation back instead.
        try:
            self.commit(0, success=False)
        except (ModelNotFoundError, UnpricedModelError):
            self.cancel()
