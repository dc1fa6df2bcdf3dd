"""Rate-limit rules over trailing windows, and the in-memory window store. The clock is injected.

Meaning of the limits (what :meth:`ModelLimiter.check` answers):

- A request is allowed when one more request and ``tokens`` more tokens keep every configured limit.
- Per-minute limits are exact over the trailing 60 s: an event ``age`` seconds old counts while ``age < 60``
  (59.9 s old counts, 60.0 s and older does not).
- Per-day limits use one-minute buckets, counted as if every event happened at the end of its bucket. That can
  refuse up to 60 s early, never late: no 24 h window ever holds more than the limit of admitted requests.

Memory: a window keeps only the entries that can still change a decision. Once the newest entries alone exceed the
limit, older ones are dropped (with every decision unchanged: see :class:`TrailingWindow`); per-day windows hold at
most one entry per minute; a per-minute token log holds at most ``max_entries`` entries (the request limit + 1
when there is one), merging its two oldest entries beyond that, which can only make it more conservative. So memory
per model is bounded by the limits, never by token counts.

Every operation is O(1) amortised, and computing ``retry_after`` is O(log n); no timer threads.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from .schemas import RateLimitCheck, RateLimitConfig

__all__ = [
    "DAY",
    "DAY_BUCKET",
    "MINUTE",
    "ModelLimiter",
    "TrailingWindow",
]

MINUTE = 60.0
DAY = 86_400.0
DAY_BUCKET = 60.0
_DEFAULT_MAX_ENTRIES = 10_000
_COMPACT_AT = 1024


class TrailingWindow:
    """The sum of amounts added within the trailing ``window`` seconds, checked against ``limit``.

    Entries are kept as timestamps and running (cumulative) sums, so the total in the window is
    ``cum[-1] - base`` and the time at which enough has expired is a binary search.

    With ``granularity > 0`` timestamps are rounded up to the end of their ``granularity`` bucket and entries in
    one bucket merge: conservative, and at most ``window / granularity + 1`` entries.

    Dropping old entries is exact: the oldest entry is dropped only while the newer ones alone sum to more than
    ``limit``. While any dropped entry would still be in the window, all newer ones are too, so the window is over
    the limit with or without it; once it has expired, it no longer matters.
    """

    __slots__ = ("_base", "_cum", "_head", "_ts", "granularity", "limit", "max_entries", "window")

    def __init__(
        self,
        window: float,
        limit: int,
        *,
        granularity: float = 0.0,
        max_entries: int = _DEFAULT_MAX_ENTRIES,
    ) -> None:
        if limit <= 0 or window <= 0 or granularity < 0 or max_entries < 2:
            raise ValueError("window and limit must be > 0, max_entries >= 2")
        self.window = window
        self.limit = limit
        self.granularity = granularity
        self.max_entries = max_entries
        self._ts: list[float] = []
        self._cum: list[int] = []
        self._head = 0  # entries before _head are gone; compacted from time to time
        self._base = 0  # running sum up to (not including) the entry at _head

    def __len__(self) -> int:
        return len(self._ts) - self._head

    def _stamp(self, now: float) -> float:
        if self.granularity:
            return (math.floor(now / self.granularity) + 1) * self.granularity
        return now

    def _expire(self, now: float) -> None:
        ts, cum, head = self._ts, self._cum, self._head
        cutoff = now - self.window
        n = len(ts)
        while head < n and ts[head] <= cutoff:
            self._base = cum[head]
            head += 1
        self._head = head
        if head >= _COMPACT_AT and head * 2 >= n:
            del ts[:head], cum[:head]
            self._head = 0

    def total(self, now: float) -> int:
        """The amount within the window at ``now``."""
        self._expire(now)
        return (self._cum[-1] - self._base) if len(self) else 0

    def add(self, now: float, amount: int) -> None:
        """Count ``amount`` at ``now`` (a zero amount changes nothing)."""
        if amount <= 0:
            return
        self._expire(now)
        self._append(self._stamp(now), amount)

    def _append(self, stamp: float, amount: int) -> None:
        ts, cum = self._ts, self._cum
        if len(self) and stamp <= ts[-1]:
            # Same bucket, or the clock stepped back: merge into the newest entry (it expires no earlier).
            cum[-1] += amount
        else:
            # When every entry has expired, _base equals cum[-1] (or the lists were compacted away).
            cum.append((cum[-1] if cum else self._base) + amount)
            ts.append(stamp)
        self._trim()

    def _trim(self) -> None:
        ts, cum = self._ts, self._cum
        last = cum[-1]
        head = self._head
        n = len(ts)
        # Drop the oldest while the newer entries alone exceed the limit (exact, see the class doc).
        while head < n - 1 and last - cum[head] > self.limit:
            self._base = cum[head]
            head += 1
        # Beyond max_entries, merge the two oldest: the older one's amount moves to the newer timestamp,
        # so it counts a little longer (conservative).
        while n - head > self.max_entries:
            head += 1
        self._head = head

    def entries(self) -> list[tuple[float, int]]:
        """The entries held, oldest first, as ``(timestamp, amount)``."""
        ts, cum, head = self._ts, self._cum, self._head
        previous = self._base
        out = []
        for i in range(head, len(ts)):
            out.append((ts[i], cum[i] - previous))
            previous = cum[i]
        return out

    def refill(self, entries: list[tuple[float, int]]) -> None:
        """Add ``entries`` (from :meth:`entries` of another window, oldest first) as they are."""
        for stamp, amount in entries:
            if amount > 0:
                self._append(stamp, amount)

    def wait(self, now: float, amount: int) -> float | None:
        """Seconds until ``amount`` more fits in the window; 0 when it fits now, ``None`` when it never can."""
        if amount > self.limit:
            return None
        self._expire(now)
        if not len(self):
            return 0.0
        excess = self._cum[-1] - self._base + amount - self.limit
        if excess <= 0:
            return 0.0
        # The first entry whose expiry frees at least `excess`.
        index = bisect_left(self._cum, self._base + excess, self._head)
        return max(self._ts[index] + self.window - now, 0.0)


@dataclass(frozen=True, slots=True)
class _Limit:
    reason: str
    counts_tokens: bool
    window: TrailingWindow


class ModelLimiter:
    """The windows of one model, built from its :class:`RateLimitConfig`. Not thread-safe (the registry locks)."""

    __slots__ = ("_limits", "config")

    def __init__(self, config: RateLimitConfig | None, previous: ModelLimiter | None = None) -> None:
        """Windows for ``config``; with ``previous``, each limit keeps that limiter's history of the same kind.

        Carrying history over means a changed limit (e.g. a hot-reloaded config) still sees the traffic of the
        last minute and day. History that the old, smaller limit had already dropped stays dropped.
        """
        self.config = config
        limits: list[_Limit] = []
        if config is not None:
            rpm, tpm, rpd = (
                config.requests_per_minute,
                config.tokens_per_minute,
                config.requests_per_day,
            )
            if rpm is not None:
                limits.append(_Limit("requests per minute", False, TrailingWindow(MINUTE, rpm)))
            if tpm is not None:
                # Within the request limit a minute holds at most rpm token entries; keep exactly that many.
                cap = rpm + 1 if rpm is not None else _DEFAULT_MAX_ENTRIES
                limits.append(_Limit("tokens per minute", True, TrailingWindow(MINUTE, tpm, max_entries=cap)))
            if rpd is not None:
                limits.append(
                    _Limit(
                        "requests per day",
                        False,
                        TrailingWindow(DAY, rpd, granularity=DAY_BUCKET),
                    )
                )
        self._limits = tuple(limits)
        if previous is not None:
            old = {limit.reason: limit.window for limit in previous._limits}
            for limit in self._limits:
                if limit.reason in old:
                    limit.window.refill(old[limit.reason].entries())

    @property
    def limited(self) -> bool:
        """Whether any limit is configured."""
        return bool(self._limits)

    def check(self, now: float, tokens: int) -> RateLimitCheck:
        """Would one more request of ``tokens`` tokens keep every limit? Read-only."""
        worst: float | None = 0.0
        reason = None
        for limit in self._limits:
            wait = limit.window.wait(now, tokens if limit.counts_tokens else 1)
            if wait is None:
                if worst is not None:
                    worst, reason = None, limit.reason
            elif wait > 0 and worst is not None and wait > worst:
                worst, reason = wait, limit.reason
        if reason is None:
            return _ALLOWED
        return RateLimitCheck(allowed=False, reason=reason, retry_after=worst)

    def record(self, now: float, tokens: int) -> None:
        """Count one request of ``tokens`` tokens at ``now``."""
        for limit in self._limits:
            limit.window.add(now, tokens if limit.counts_tokens else 1)

    def entry_count(self) -> int:
        """Entries held in all windows (for memory checks)."""
        return sum(len(limit.window) for limit in self._limits)


_ALLOWED = RateLimitCheck(allowed=True)
