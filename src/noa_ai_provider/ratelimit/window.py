"""``TrailingWindow``: the sum of amounts within a trailing window, checked against a limit (see the package
docstring for what a limit means and what memory a window uses). Not thread-safe: its store locks."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["DAY", "DAY_BUCKET", "MINUTE", "Entry", "TrailingWindow"]

MINUTE = 60.0
DAY = 86_400.0
DAY_BUCKET = 60.0
_DEFAULT_MAX_ENTRIES = 10_000

# Entries, oldest first. A settled entry is a tuple (timestamp, amount): no per-entry object for the garbage
# collector to track, which keeps long runs as fast as short ones. A pending entry (an open reservation) is a list
# [timestamp, amount, seq, window]: `seq - window._head_seq` is its position, and `window` is None once it has left
# the window. Per-day buckets are always lists [timestamp, amount, open reservations, window] (they absorb
# corrections; at most one per minute).
_TS, _AMOUNT, _SEQ, _WINDOW = 0, 1, 2, 3
Entry = list[Any]


class TrailingWindow:
    """The sum of amounts within the trailing ``window`` seconds, checked against ``limit``.

    With ``granularity > 0`` timestamps are rounded up to the end of their bucket and entries in one bucket merge
    (conservative; at most ``window / granularity + 1`` entries). Not thread-safe: the registry locks.
    """

    # ModelLimiter's hot paths (reserve, settle, release, record, check) inline the common cases of _expire, fits,
    # push_pending, add, correct and wait for speed: a change to what these do must be made there too.

    __slots__ = (
        "_entries",
        "_head_seq",
        "_pending",
        "_phantom",
        "_phantom_until",
        "_total",
        "_zeros",
        "granularity",
        "limit",
        "max_entries",
        "window",
    )

    def __init__(
        self, window: float, limit: int, *, granularity: float = 0.0, max_entries: int = _DEFAULT_MAX_ENTRIES
    ) -> None:
        if limit <= 0 or window <= 0 or granularity < 0 or max_entries < 2:
            raise ValueError("window and limit must be > 0, max_entries >= 2")
        self.window = window
        self.limit = limit
        self.granularity = granularity
        self.max_entries = max_entries
        self._entries: deque[Any] = deque()
        self._head_seq = 0  # the sequence number of _entries[0]
        self._total = 0  # sum of the amounts held
        # Exact windows: the part of _total held by open reservations (it may still change). Per-day windows:
        # how many open reservations their buckets hold.
        self._pending = 0
        self._zeros = 0  # settled entries of amount 0 (cancelled reservations)
        self._phantom = 0  # provider-reported usage we have not seen, counted until _phantom_until
        self._phantom_until = 0.0

    def __len__(self) -> int:
        return len(self._entries) - self._zeros

    def _stamp(self, now: float) -> float:
        if self.granularity:
            return (math.floor(now / self.granularity) + 1) * self.granularity
        return now

    def _expire(self, now: float) -> None:
        entries = self._entries
        cutoff = now - self.window
        while entries and entries[0][_TS] <= cutoff:
            self._drop_oldest()
        if self._phantom and now >= self._phantom_until:
            self._phantom = 0

    def _drop_oldest(self) -> None:
        entry = self._entries.popleft()
        self._head_seq += 1
        amount = entry[_AMOUNT]
        self._total -= amount
        if type(entry) is list:
            # An open reservation, or a per-day bucket with its count of open reservations in the _SEQ slot.
            self._pending -= entry[_SEQ] if self.granularity else amount
            entry[_WINDOW] = None
        elif amount == 0:
            self._zeros -= 1

    def fits(self, now: float, amount: int) -> bool:
        """Whether ``amount`` more fits in the window at ``now``."""
        self._expire(now)
        return self._total + self._phantom + amount <= self.limit

    def total(self, now: float) -> int:
        """The amount counted at ``now``, provider phantom included."""
        self._expire(now)
        return self._total + self._phantom

    def push_pending(self, now: float, amount: int) -> Entry:
        """``add(now, amount, pending=True)`` right after :meth:`fits` expired the window at ``now``."""
        entries = self._entries
        if self.granularity or (entries and now <= entries[-1][_TS]):
            entry = self.add(now, amount, pending=True)
            assert entry is not None
            return entry
        return self._append_pending(now, amount)

    def _append_pending(self, stamp: float, amount: int) -> Entry:
        entries = self._entries
        entry: Entry = [stamp, amount, self._head_seq + len(entries), self]
        entries.append(entry)
        self._total += amount
        self._pending += amount
        # Open reservations are never trimmed; only the entry cap can call for work.
        if len(entries) - self._zeros > self.max_entries:
            self._trim()
        return entry

    def add(self, now: float, amount: int, *, pending: bool = False) -> Entry | None:
        """Count ``amount`` at ``now``; when ``pending``, return a handle to correct it later.

        A settled zero amount changes nothing and returns ``None``.
        """
        self._expire(now)
        entries = self._entries
        stamp = self._stamp(now)
        if self.granularity:
            if entries and stamp <= entries[-1][_TS]:
                bucket: Entry = entries[-1]
                bucket[_AMOUNT] += amount
            else:
                bucket = [stamp, amount, 0, self]
                entries.append(bucket)
            self._total += amount
            if pending:
                bucket[_SEQ] += 1  # buckets count their open reservations here
                self._pending += 1
                return bucket
            self._trim_buckets()
            return None
        if entries and stamp <= entries[-1][_TS]:
            last = entries[-1]
            if not pending and type(last) is tuple:
                if amount > 0:  # a settled amount at the same instant merges (it expires at the same time)
                    if last[_AMOUNT] == 0:
                        self._zeros -= 1
                    entries[-1] = (last[_TS], last[_AMOUNT] + amount)
                    self._total += amount
                return None
            stamp = last[_TS]  # the clock stepped back: keep the log sorted (counts a little longer)
        if pending:
            return self._append_pending(stamp, amount)
        if amount > 0:
            entries.append((stamp, amount))
            self._total += amount
            self._trim_if_needed()
        return None

    def _trim_if_needed(self) -> None:
        # The cheap test first: most calls have nothing to trim.
        if len(self._entries) - self._zeros > self.max_entries:
            self._trim()

    def _trim(self) -> None:
        # Beyond max_entries, fold the oldest settled entry into the next: exact for a zero amount, otherwise the
        # older amount moves to the newer time (conservative: it counts a little longer). Nothing is ever dropped
        # because of the limit: a limit lowered now may be raised again, and the traffic must still count then.
        entries = self._entries
        if len(entries) - self._zeros <= self.max_entries:
            return
        if self._zeros * 2 > len(entries):
            self._compact()
            entries = self._entries  # _compact made a new deque
        while len(entries) - self._zeros > self.max_entries and type(entries[0]) is tuple:
            first = entries[0]
            if first[_AMOUNT] == 0:
                self._drop_oldest()
                continue
            second = entries[1]
            if type(second) is not tuple:
                break
            entries.popleft()
            self._head_seq += 1
            if second[_AMOUNT] == 0:
                self._zeros -= 1
            entries[0] = (second[_TS], second[_AMOUNT] + first[_AMOUNT])

    def _trim_buckets(self) -> None:
        # Per-day buckets expire with time only (at most one per minute of the day): trimming them by the limit
        # would forget traffic that a limit raised again later must still count.
        return

    def _compact(self) -> None:
        # Remove cancelled (zero) entries everywhere; open reservations get their new positions.
        kept: deque[Any] = deque()
        for entry in self._entries:
            if type(entry) is list:
                entry[_SEQ] = self._head_seq + len(kept)
                kept.append(entry)
            elif entry[_AMOUNT]:
                kept.append(entry)
        self._entries = kept
        self._zeros = 0

    def _forget(self) -> None:
        # The entries moved to another window (a changed limit took them over): this one holds nothing now.
        self._head_seq += len(self._entries)
        self._entries = deque()
        self._total = self._pending = self._zeros = 0
        self._phantom = 0

    def correct(self, entry: Entry, delta: int) -> None:
        """Change a held entry by ``delta`` (a commit's correction, or minus its amount to cancel) and settle it.

        An entry that has already left the window only records the change.
        """
        if entry[_WINDOW] is not self:
            entry[_AMOUNT] += delta
            return
        self._total += delta
        if self.granularity:
            entry[_AMOUNT] += delta  # a bucket shared by several requests
            entry[_SEQ] -= 1
            self._pending -= 1
            self._trim_buckets()
            return
        entries = self._entries
        position = entry[_SEQ] - self._head_seq
        amount = entry[_AMOUNT] + delta
        self._pending -= entry[_AMOUNT]
        entry[_AMOUNT] = amount
        entry[_WINDOW] = None  # the handle is used up
        if amount == 0 and position == len(entries) - 1:
            entries.pop()  # the common cancel: the newest entry goes at once
            return
        entries[position] = (entry[_TS], amount)
        if amount == 0:
            self._zeros += 1
        if len(entries) - self._zeros > self.max_entries:
            self._trim()

    def adopt(self, entries: Iterable[Any]) -> None:
        """Take over ``entries`` (oldest first, from a window being replaced), keeping open reservations' handles.

        The window keeps room for all of them (``max_entries`` grows to their number when it was lower): the limit
        that held them may come back, and the traffic must count exactly then."""
        entries = list(entries)
        self.max_entries = max(self.max_entries, sum(1 for e in entries if e[_AMOUNT] or type(e) is list))
        mine = self._entries
        for entry in entries:
            if mine and entry[_TS] < mine[-1][_TS]:  # keep the log sorted (counts a little longer)
                if type(entry) is tuple:
                    entry = (mine[-1][_TS], entry[_AMOUNT])
                else:
                    entry[_TS] = mine[-1][_TS]
            amount = entry[_AMOUNT]
            if type(entry) is list:
                entry[_WINDOW] = self
                if self.granularity:
                    self._pending += entry[_SEQ]
                else:
                    entry[_SEQ] = self._head_seq + len(mine)
                    self._pending += amount
            elif amount == 0:
                self._zeros += 1
            mine.append(entry)
            self._total += amount
        if not self.granularity:
            self._trim()

    def entries(self) -> list[tuple[float, int]]:
        """The entries held, oldest first, as ``(timestamp, amount)``."""
        return [(e[_TS], e[_AMOUNT]) for e in self._entries if e[_AMOUNT] or type(e) is list]

    def refill(self, entries: Iterable[tuple[float, int]]) -> None:
        """Add ``(timestamp, amount)`` entries as they are (oldest first), e.g. from :meth:`entries`."""
        for stamp, amount in entries:
            if amount > 0:
                self.adopt([[stamp, amount, 0, self]] if self.granularity else [(stamp, amount)])

    def tighten(self, now: float, remaining: int, reset_at: float) -> None:
        """Count no more than ``remaining`` as free until ``reset_at`` (a provider's report); never loosens
        below what was recorded here. A newer report replaces the previous one."""
        self._expire(now)
        self._phantom = 0
        missing = self.limit - max(remaining, 0) - self._total
        if missing > 0 and reset_at > now:
            self._phantom = missing
            self._phantom_until = min(reset_at, now + self.window)

    def wait(self, now: float, amount: int) -> float | None:
        """Seconds until ``amount`` more fits; 0 when it fits now, ``None`` when it never can."""
        if amount > self.limit:
            return None
        self._expire(now)
        excess = self._total + self._phantom + amount - self.limit
        if excess <= 0:
            return 0.0
        freed = 0
        phantom = self._phantom
        for entry in self._entries:
            expires: float = entry[_TS] + self.window
            if phantom and self._phantom_until <= expires:
                freed += phantom
                phantom = 0
                if freed >= excess:
                    return max(self._phantom_until - now, 0.0)
            freed += entry[_AMOUNT]
            if freed >= excess:
                return max(expires - now, 0.0)
        if phantom:
            return max(self._phantom_until - now, 0.0)
        return None  # pragma: no cover - amount <= limit guarantees an answer above
