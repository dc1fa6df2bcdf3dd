"""``Outage``: what a Redis store does while Redis cannot be reached, under ``on_backend_error="allow"``: records
wait in this process, in order, and are sent (each once: they carry their ids) by the first call that reaches Redis
again; callers get a provisional total meanwhile. Said once per outage in the log."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ...errors import BackendError
from ..base import Recorded

__all__ = ["Outage"]

logger = logging.getLogger("noa_ai_provider.stores.redis")
_ZERO = Decimal(0)


class Outage:
    """The records waiting for Redis and each model's total cost as last seen. ``run`` sends one record (a script
    call); ``lock`` guards the waiting records and the totals (never held during a round trip)."""

    def __init__(self, run: Callable[..., Any], url: str, lock: threading.Lock) -> None:
        self._run = run
        self._url = url
        self.lock = lock
        self.down = False  # Redis did not answer the last call
        self.queued: deque[tuple[Any, ...]] = deque()
        self.totals: dict[str, Decimal] = {}

    def began(self, exc: BackendError, policy: str) -> None:
        """Log ``exc`` once per outage (the policy decides what the caller sees)."""
        if not self.down:
            self.down = True
            logger.warning("%s; on_backend_error=%r", exc, policy)

    def queue(self, work: tuple[Any, ...]) -> None:
        """Queue ``work`` (a script call that records nothing billable) for when Redis answers."""
        with self.lock:
            self.queued.append(work)

    def keep(self, key: str, work: tuple[Any, ...], cost: Decimal, now: float) -> Recorded:
        """Queue ``work`` (a record of ``cost`` on ``key``) for when Redis answers; a provisional answer now."""
        with self.lock:
            self.queued.append(work)
            total = self.totals.get(key, _ZERO) + cost
            self.totals[key] = total
        return Recorded(total, [], now)

    def seen(self, key: str, total: Decimal) -> None:
        """The total Redis answered for ``key`` (the base of later provisional answers)."""
        with self.lock:
            self.totals[key] = total

    def flush(self) -> None:
        """Send what waited, oldest first; each carries its id, so nothing counts twice. Raises
        :class:`BackendError` (and keeps the rest) when Redis is still unreachable."""
        while True:
            with self.lock:
                if not self.queued:
                    break
                work = self.queued[0]
            self._run(*work)
            with self.lock:
                if self.queued and self.queued[0] is work:
                    self.queued.popleft()
        if self.down:
            self.down = False
            logger.warning("%s: Redis answers again; what waited is recorded", self._url)
