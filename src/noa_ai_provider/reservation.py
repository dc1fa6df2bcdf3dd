"""``Reservation``: what ``EnhancedModelRegistry.acquire`` hands out, committed or cancelled exactly once.

The reservation holds one request and ``input_tokens + max_output_tokens`` tokens in every rate-limit window of
its model. :meth:`Reservation.commit` records the real usage (cost, counters, ``usage-recorded``, exactly as
``record_usage``) and corrects the windows at the reservation's original time; :meth:`Reservation.cancel` gives it
back. As a context manager, leaving the block by an exception records a failed request (its input tokens are
charged, as providers do) and leaving it without a decision cancels.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Protocol

from .errors import InvalidUsageError, ModelNotFoundError
from .ratelimit import Handle

__all__ = ["Reservation"]

OPEN, COMMITTED, CANCELLED = "open", "committed", "cancelled"


class _Settler(Protocol):
    def _settle_reservation(
        self, reservation: Reservation, input_tokens: int, output_tokens: int, success: bool
    ) -> Decimal: ...

    def _release_reservation(self, reservation: Reservation) -> None: ...


class Reservation:
    """An admitted request, held in the rate-limit windows until committed or cancelled. Thread-safe.

    Attributes: ``key``, ``input_tokens`` and ``max_output_tokens`` (as reserved), ``reserved_at`` (UTC),
    ``state`` (``"open"``, ``"committed"``, ``"cancelled"``) and ``cost`` (after commit).
    """

    __slots__ = (
        "_handle",
        "_lock",
        "_owner",
        "_record",
        "cost",
        "input_tokens",
        "key",
        "max_output_tokens",
        "reserved_at",
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
        reserved_at: datetime,
    ) -> None:
        self._owner = owner
        self._record = record
        self._handle = handle
        self._lock = threading.Lock()
        self.key = key
        self.input_tokens = input_tokens
        self.max_output_tokens = max_output_tokens
        self.timestamp = timestamp
        self.reserved_at = reserved_at
        self.state = OPEN
        self.cost: Decimal | None = None

    def __repr__(self) -> str:
        return (
            f"<Reservation {self.key} {self.state}: {self.input_tokens} in + {self.max_output_tokens} out "
            f"at {self.reserved_at.isoformat()}>"
        )

    @property
    def open(self) -> bool:
        """Neither committed nor cancelled yet."""
        return self.state == OPEN

    def commit(self, output_tokens: int, *, input_tokens: int | None = None, success: bool = True) -> Decimal:
        """Record the real usage (``input_tokens`` defaults to the reserved count) and return its cost.

        The rate-limit windows are corrected at the reservation's time; cost, counters and ``usage-recorded`` are
        exactly as :meth:`EnhancedModelRegistry.record_usage`. Committing again returns the first cost and records
        nothing. Raises :class:`InvalidUsageError` after :meth:`cancel`, and ``ModelNotFoundError`` when the model
        was unregistered meanwhile (the reservation is then released).
        """
        with self._lock:
            if self.state == COMMITTED:
                assert self.cost is not None
                return self.cost
            if self.state == CANCELLED:
                raise InvalidUsageError(f"reservation for {self.key} was cancelled; it cannot be committed")
            used_input = self.input_tokens if input_tokens is None else input_tokens
            cost = self._owner._settle_reservation(self, used_input, output_tokens, success)
            self.cost = cost
            self.state = COMMITTED
            return cost

    def cancel(self) -> None:
        """Give the reservation back (nothing is recorded). No-op when already committed or cancelled."""
        with self._lock:
            if self.state != OPEN:
                return
            self._owner._release_reservation(self)
            self.state = CANCELLED

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
        # If the model is gone (the reservation was released), the caller's exception matters more.
        with contextlib.suppress(ModelNotFoundError):
            self.commit(0, success=False)
