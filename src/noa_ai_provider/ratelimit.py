"""Rate-limit rules over trailing windows, the in-memory window store, and atomic reservations. Clock injected.

What a limit means (what :meth:`ModelLimiter.check` and :meth:`ModelLimiter.reserve` answer):

- A request is admitted when one more request and its tokens keep **every** configured limit; a reservation takes
  them all at once or none (no limit is consumed when another refuses).
- Per-minute limits are an exact sliding log over the trailing 60 s: an event ``age`` seconds old counts while
  ``age < 60`` (59.9 s old counts, 60.0 s and older does not).
- Per-day limits use one-minute buckets, counted as if every event happened at the end of its bucket: they may
  refuse up to 60 s early, never late, so no 24 h window ever holds more than the limit.
- Open reservations count like recorded traffic. Committing corrects a reservation's amounts in place, at the time
  it was made, so the window's history stays what really happened; cancelling removes it.
- Provider feedback (remaining counts, reset times, ``retry-after``) can only tighten: a *phantom* amount makes
  the local window report no more than the provider's remaining until the provider's reset.

Memory: entries leave a window only by expiring, never because of the limit (a limit lowered and raised again
must still see the traffic that happened). Per-day windows hold one entry per minute; a per-minute log holds at
most ``max_entries`` entries (the request limit + 1 for a request count, and for a token log too when there is a
request limit: traffic within the request limit never reaches it), merging its oldest settled entries beyond
that, which can only refuse earlier. A window that takes over another's entries (a changed limit) keeps room for
all of them. Memory per model is bounded by the request limits (and the largest limit a model had), never by
token counts.

Cost: admission, recording, committing and cancelling are O(1) amortised; computing ``retry_after`` after a
refusal walks the entries that must expire first. No timer threads: windows expire lazily when read.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .schemas import RateLimitCheck, RateLimitConfig

__all__ = [
    "DAY",
    "DAY_BUCKET",
    "MINUTE",
    "REASONS",
    "Entry",
    "Handle",
    "ModelLimiter",
    "TrailingWindow",
]

MINUTE = 60.0
DAY = 86_400.0
DAY_BUCKET = 60.0
_DEFAULT_MAX_ENTRIES = 10_000

# What a limit counts; an index into the (requests, tokens, input, output) amounts of a request.
REQUESTS, TOKENS, INPUT, OUTPUT = 0, 1, 2, 3

REASONS: dict[str, tuple[str, int, float]] = {
    # config field: (reason shown to callers, what it counts, window)
    "requests_per_minute": ("requests per minute", REQUESTS, MINUTE),
    "tokens_per_minute": ("tokens per minute", TOKENS, MINUTE),
    "input_tokens_per_minute": ("input tokens per minute", INPUT, MINUTE),
    "output_tokens_per_minute": ("output tokens per minute", OUTPUT, MINUTE),
    "requests_per_day": ("requests per day", REQUESTS, DAY),
    "tokens_per_day": ("tokens per day", TOKENS, DAY),
}
RETRY_AFTER = "retry-after"


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


@dataclass(slots=True)
class _Limit:
    field: str
    reason: str
    kind: int
    window: TrailingWindow
    learned: bool = False


@dataclass(slots=True)
class Handle:
    """What a reservation holds in a limiter: per window, the entry and the amount it put there."""

    parts: list[tuple[int, Any, int]] = field(default_factory=list)


class ModelLimiter:
    """The windows of one model, built from its :class:`RateLimitConfig`. Not thread-safe (the registry locks)."""

    __slots__ = ("_checked", "_every", "_limits", "_shadows", "blocked_until", "config", "latest")

    def __init__(self, config: RateLimitConfig | None, previous: ModelLimiter | None = None) -> None:
        """Windows for ``config``; with ``previous``, each limit of the same kind takes over that limiter's
        history and open reservations (a changed or hot-reloaded limit still sees the last minute and day).
        Limits learned from provider headers are kept unless ``config`` now sets them. A limit ``config`` no
        longer sets keeps counting traffic, unenforced, while its window holds any (a *shadow*): set again, it
        still sees that traffic."""
        self.config = config
        self.blocked_until: float = previous.blocked_until if previous is not None else 0.0
        # The windows' time never goes back: a clock reading before the latest one is taken as the latest, so a
        # clock that jumps back can neither admit early nor leave entries out of order.
        self.latest: float = previous.latest if previous is not None else -math.inf
        limits: list[_Limit] = []
        rpm = config.requests_per_minute if config is not None else None
        for name, (reason, kind, span) in REASONS.items():
            limit = getattr(config, name) if config is not None else None
            if limit is not None:
                limits.append(_Limit(name, reason, kind, _window(span, limit, kind, rpm)))
        shadows: list[_Limit] = []
        if previous is not None:
            have = {limit.field for limit in limits}
            limits.extend(old for old in previous._limits if old.learned and old.field not in have)
            have = {limit.field for limit in limits}
            old_by_field = {old.field: old for old in (*previous._shadows, *previous._limits)}
            for limit in limits:
                old = old_by_field.get(limit.field)
                if old is not None and old is not limit:
                    limit.window.adopt(old.window._entries)
                    old.window._forget()  # the entries (and open reservations' handles) moved
            for field_name, old in old_by_field.items():
                if field_name not in have and old.window.total(self.latest) > 0:
                    shadows.append(old)  # a limit removed: its traffic still counts if it comes back
        self._limits: list[_Limit] = limits
        self._shadows: list[_Limit] = shadows
        self._plan()

    def _plan(self) -> None:
        # What the hot paths walk, built once per change of the limits instead of once per call: the enforced
        # limits as (kind, window, reason), and every window that counts traffic (limits, then shadows) as
        # (kind, window). Called again whenever _limits or _shadows change.
        self._checked: tuple[tuple[int, TrailingWindow, str], ...] = tuple(
            (limit.kind, limit.window, limit.reason) for limit in self._limits
        )
        self._every: tuple[tuple[int, TrailingWindow], ...] = tuple(
            (limit.kind, limit.window) for limit in (*self._limits, *self._shadows)
        )

    def _at(self, now: float) -> float:
        if now < self.latest:
            return self.latest
        self.latest = now
        return now

    def learned_limits(self) -> dict[str, int]:
        """Limits learned from provider headers (config field name to limit)."""
        return {limit.field: limit.window.limit for limit in self._limits if limit.learned}

    def check(self, now: float, input_tokens: int, output_tokens: int = 0) -> RateLimitCheck:
        """Would one more request of these tokens keep every limit? Read-only."""
        if now < self.latest:
            now = self.latest
        else:
            self.latest = now
        worst: float | None = 0.0
        reason = None
        if now < self.blocked_until:
            worst, reason = self.blocked_until - now, RETRY_AFTER
        amounts = (1, input_tokens + output_tokens, input_tokens, output_tokens)
        for kind, window, why in self._checked:
            amount = amounts[kind]
            # TrailingWindow.wait, its common answers inline: never (over the limit), or 0 (fits now).
            if amount > window.limit:
                if worst is not None:
                    worst, reason = None, why
                continue
            entries = window._entries
            if entries and entries[0][_TS] <= now - window.window:
                window._expire(now)
            elif window._phantom and now >= window._phantom_until:
                window._phantom = 0
            if window._total + window._phantom + amount - window.limit <= 0:
                continue
            wait = window.wait(now, amount)
            if wait is None:
                if worst is not None:  # pragma: no cover - amount <= limit always has an answer
                    worst, reason = None, why
            elif wait > 0 and worst is not None and wait > worst:
                worst, reason = wait, why
        if reason is None:
            return _ALLOWED
        return RateLimitCheck(allowed=False, reason=reason, retry_after=worst)

    def reserve(self, now: float, input_tokens: int, output_tokens: int) -> Handle | RateLimitCheck:
        """Take one request and these tokens from every window at once, or nothing: the handle, or the refusal."""
        if now < self.latest:
            now = self.latest
        else:
            self.latest = now
        if now < self.blocked_until:
            return self.check(now, input_tokens, output_tokens)
        amounts = (1, input_tokens + output_tokens, input_tokens, output_tokens)
        # First every window must fit (a refusal then costs nothing), then each takes its share. This is
        # TrailingWindow.fits and TrailingWindow.push_pending inline; the expiry test is _expire's own
        # (`oldest <= now - window`, the same float rounding), and _expire runs only when it has work to do.
        for kind, window, _ in self._checked:
            entries = window._entries
            if entries and entries[0][_TS] <= now - window.window:
                window._expire(now)
            elif window._phantom and now >= window._phantom_until:
                window._phantom = 0
            if window._total + window._phantom + amounts[kind] > window.limit:
                return self.check(now, input_tokens, output_tokens)
        parts = []
        for kind, window in self._every:
            amount = amounts[kind]
            entries = window._entries
            if window.granularity or (entries and now <= entries[-1][_TS]):
                entry = window.add(now, amount, pending=True)
            else:  # an exact log, time moved on: a new open entry at the end
                entry = [now, amount, window._head_seq + len(entries), window]
                entries.append(entry)
                window._total += amount
                window._pending += amount
                # Open reservations are never trimmed; only the entry cap can call for work.
                if len(entries) - window._zeros > window.max_entries:
                    window._trim()
            parts.append((kind, entry, amount))
        # Handle(parts), without a call of the generated __init__ (Handle has that one field and no __post_init__).
        handle = _new_handle(Handle)
        handle.parts = parts
        return handle

    @staticmethod
    def settle(handle: Handle, input_tokens: int, output_tokens: int) -> None:
        """Correct a reservation to what was really used, at its original time. Idempotent."""
        amounts = (1, input_tokens + output_tokens, input_tokens, output_tokens)
        for kind, entry, reserved in handle.parts:
            stamp, held, seq, window = entry
            delta = amounts[kind] - reserved
            if window is None:  # the entry has left its window (expired): only record the change
                entry[_AMOUNT] = held + delta
            elif window.granularity:
                window.correct(entry, delta)
            else:
                amount = held + delta
                # TrailingWindow.correct of an open entry of an exact log, inline.
                window._total += delta
                window._pending -= held
                entry[_AMOUNT] = amount
                entry[_WINDOW] = None  # the handle is used up
                entries = window._entries
                position = seq - window._head_seq
                if amount == 0 and position == len(entries) - 1:
                    entries.pop()  # the common cancel: the newest entry goes at once
                    continue
                entries[position] = (stamp, amount)
                if amount == 0:
                    window._zeros += 1
                if len(entries) - window._zeros > window.max_entries:
                    window._trim()
        handle.parts = []

    @staticmethod
    def release(handle: Handle) -> None:
        """Give a reservation back: it no longer counts anywhere. Idempotent."""
        for _, entry, reserved in handle.parts:
            stamp, held, seq, window = entry
            delta = -reserved
            if window is None:
                entry[_AMOUNT] = held + delta
            elif window.granularity:
                window.correct(entry, delta)
            else:
                amount = held + delta
                # TrailingWindow.correct of an open entry of an exact log, inline.
                window._total += delta
                window._pending -= held
                entry[_AMOUNT] = amount
                entry[_WINDOW] = None  # the handle is used up
                entries = window._entries
                position = seq - window._head_seq
                if amount == 0 and position == len(entries) - 1:
                    entries.pop()  # the common cancel: the newest entry goes at once
                    continue
                entries[position] = (stamp, amount)
                if amount == 0:
                    window._zeros += 1
                if len(entries) - window._zeros > window.max_entries:
                    window._trim()
        handle.parts = []

    def record(self, now: float, input_tokens: int, output_tokens: int = 0) -> None:
        """Count one request of these tokens at ``now`` (traffic that happened, admitted or not)."""
        if now < self.latest:
            now = self.latest
        else:
            self.latest = now
        amounts = (1, input_tokens + output_tokens, input_tokens, output_tokens)
        for kind, window in self._every:
            amount = amounts[kind]
            entries = window._entries
            if window.granularity or (entries and now <= entries[-1][_TS]):
                window.add(now, amount)
                continue
            # TrailingWindow.add of an exact log, time moved on, inline: expire, then a settled entry at the end.
            if entries and entries[0][_TS] <= now - window.window:
                window._expire(now)
            elif window._phantom and now >= window._phantom_until:
                window._phantom = 0
            if amount > 0:
                entries.append((now, amount))
                window._total += amount
                if len(entries) - window._zeros > window.max_entries:
                    window._trim()

    def block_until(self, until: float) -> None:
        """Admit nothing before ``until`` (a provider's ``retry-after``)."""
        self.blocked_until = max(self.blocked_until, until)

    def apply_report(self, now: float, field_name: str, limit: int | None, remaining: int, reset_at: float) -> None:
        """Tighten the window ``field_name`` (e.g. ``"tokens_per_minute"``) to a provider's ``remaining``.

        Without a configured limit of that kind, one is learned from the provider's ``limit``.
        """
        now = self._at(now)
        current = next((lim for lim in self._limits if lim.field == field_name), None)
        if current is None:
            if limit is None or limit <= 0:
                return
            reason, kind, span = REASONS[field_name]
            rpm = next((lim.window.limit for lim in self._limits if lim.field == "requests_per_minute"), None)
            current = _Limit(field_name, reason, kind, _window(span, limit, kind, rpm), learned=True)
            self._limits.append(current)
            self._plan()
        elif current.learned and limit is not None and limit > 0 and limit != current.window.limit:
            current.window.limit = limit
        current.window.tighten(now, remaining, reset_at)

    def entry_count(self) -> int:
        """Entries held in all windows, shadows included (for memory checks)."""
        return sum(len(limit.window) for limit in (*self._limits, *self._shadows))

    def totals(self, now: float) -> dict[str, int]:
        """What each enforced window counts at ``now`` (open reservations and provider reports included), by limit
        name; shadows of removed limits are left out."""
        return {limit.field: limit.window.total(now) for limit in self._limits}


def _window(span: float, limit: int, kind: int, rpm: int | None) -> TrailingWindow:
    if span == DAY:
        return TrailingWindow(DAY, limit, granularity=DAY_BUCKET)
    if kind == REQUESTS:
        return TrailingWindow(span, limit, max_entries=limit + 1)
    # Within the request limit a minute holds at most rpm token entries; keep exactly that many.
    return TrailingWindow(span, limit, max_entries=rpm + 1 if rpm is not None else _DEFAULT_MAX_ENTRIES)


_ALLOWED = RateLimitCheck(allowed=True)
_new_handle = object.__new__
