"""``Reservation``: what ``EnhancedModelRegistry.acquire`` hands out, committed or cancelled exactly once.

The reservation holds one request and ``input_tokens + max_output_tokens`` tokens in every rate-limit window of
its model. :meth:`Reservation.commit` records the real usage (cost, counters, ``usage-recorded``, exactly as
``record_usage``) and corrects the windows at the reservation's original time; :meth:`Reservation.cancel` gives it
back. As a context manager (``with`` or ``async with``), leaving the block by an exception releases the
reservation and counts a failed request at $0 (the exception may have come before the provider billed anything; a
caller who knows the call was billed commits it explicitly), and leaving it without a decision cancels.

No reservation lives for ever: one left open longer than the registry's ``reservation_timeout`` expires (its
holds in the windows and budgets are given back, its state becomes ``"expired"``), and one garbage-collected while
open is given back too, with a :class:`ResourceWarning`. Committing an expired reservation still records the usage
(the provider billed it), counted in the windows at the time of the commit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from .errors import ModelNotFoundError, PersistenceError, UnpricedModelError
from .ratelimit import Handle
from .schemas import ModelCost, utc_from_timestamp

__all__ = ["CANCELLED", "COMMITTED", "EXPIRED", "OPEN", "Hold", "Reservation"]

OPEN, COMMITTED, CANCELLED, EXPIRED = "open", "committed", "cancelled", "expired"


class Hold:
    """What an open reservation holds, kept by the registry apart from the :class:`Reservation` object, so it can
    be given back when the reservation expires or is garbage-collected. Changed only under its store's lock."""

    __slots__ = ("at", "budgets", "collected", "cost", "expires_at", "handle", "key", "record", "released", "state")

    def __init__(
        self, key: str, record: object, handle: Handle, cost: ModelCost | None, at: float, expires_at: float
    ) -> None:
        self.key = key
        self.at = at  # when it was admitted (the store's clock reading)
        self.record = record
        self.handle = handle
        self.cost = cost  # the prices in force when admitted: the commit bills at these
        self.budgets: list[tuple[Any, Decimal]] = []  # (budget id, worst-case cost) held in budgets
        self.expires_at = expires_at
        self.released = False
        self.state = OPEN  # the reservation's state lives here, where an expiry sweep can change it
        self.collected: Callable[[Hold], None] | None = None  # where a collected open reservation sends it


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

    def _release_reservation(self, reservation: Reservation, failed: bool = False) -> None: ...


class Reservation:
    """An admitted request, held in the rate-limit windows until committed or cancelled. Thread-safe.

    Attributes: ``key``, ``input_tokens`` and ``max_output_tokens`` (as reserved), ``timestamp`` (the registry
    clock's seconds when admitted) and ``reserved_at`` (the same as a UTC datetime), ``expires_at`` (the registry
    clock's seconds when it expires if still open), ``state`` (``"open"``, ``"committed"``, ``"cancelled"``,
    ``"expired"``) and ``cost`` (after commit). Its state changes under its store's lock.

    .. versionchanged:: 0.2.0
       Expires after the registry's ``reservation_timeout`` (state ``"expired"``); released with a
       ``ResourceWarning`` when garbage-collected while open; ``async with`` works.
    """

    __slots__ = ("_hold", "_owner", "cost", "input_tokens", "max_output_tokens")

    def __init__(self, owner: _Settler, hold: Hold, input_tokens: int, max_output_tokens: int) -> None:
        self._owner = owner
        self._hold = hold
        self.input_tokens = input_tokens
        self.max_output_tokens = max_output_tokens
        self.cost: Decimal | None = None

    @property
    def key(self) -> str:
        """The registry key of the reserved model."""
        return self._hold.key

    @property
    def timestamp(self) -> float:
        """The registry clock's seconds when the reservation was admitted."""
        return self._hold.at

    @property
    def state(self) -> str:
        """``"open"``, ``"committed"``, ``"cancelled"`` or ``"expired"``."""
        return self._hold.state

    @state.setter
    def state(self, value: str) -> None:
        self._hold.state = value

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
        """Neither committed, cancelled nor expired yet."""
        return self.state == OPEN

    @property
    def expires_at(self) -> float:
        """The registry clock's seconds at which the reservation expires if it is still open.

        .. versionadded:: 0.2.0
        """
        return self._hold.expires_at

    def __del__(self) -> None:
        # Hand the holds to the registry, which gives them back at its next operation (no lock is taken here: a
        # collection may run in any thread, even one inside the registry), and say that the caller forgot.
        hold = getattr(self, "_hold", None)
        if hold is not None and hold.state == OPEN:
            if hold.collected is not None:
                hold.collected(hold)
            warnings.warn(
                f"{self!r} was garbage-collected while open: it is released; commit or cancel it (or use 'with')",
                ResourceWarning,
                stacklevel=2,
            )

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
        the reservation are corrected from its worst case to the actual cost. The cost is computed at the prices in
        force when the reservation was admitted (what its budget holds were sized on), even if the model's price
        changed since.

        The rate-limit windows are corrected at the reservation's time; cost, counters and ``usage-recorded`` are
        exactly as :meth:`EnhancedModelRegistry.record_usage`. Committing again returns the first cost and records
        nothing; committing an expired reservation records the usage, counted in the windows now. Raises
        :class:`InvalidUsageError` after :meth:`cancel`, and ``ModelNotFoundError`` when the model was unregistered
        meanwhile (the reservation is then released).

        .. versionchanged:: 0.2.0
           The ``cache_write_1h_tokens`` parameter; ``service_tier`` takes the names providers report; a failed
           journal append raises with the request taken back.
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
        """Give the reservation back (nothing is recorded). No-op when already committed, cancelled or expired."""
        self._owner._release_reservation(self)

    def fail(self) -> None:
        """Give the reservation back and count a failed request at $0: the call failed before the provider billed
        it (an exception, a 429). On a model without a price nothing is counted (its cost cannot be stated, and is
        never taken as $0): the reservation is only given back. No-op unless open. Raises ``ModelNotFoundError``
        when the model was unregistered meanwhile (the reservation is then released).

        .. versionadded:: 0.2.0
        """
        self._owner._release_reservation(self, failed=True)

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
        # The caller's exception matters more than ours: if the failure cannot be counted (the model is gone),
        # the reservation is given back all the same.
        try:
            self.fail()
        except (ModelNotFoundError, UnpricedModelError, PersistenceError):
            self.cancel()  # (a failed journal append counted nothing: the reservation is given back all the same)

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
