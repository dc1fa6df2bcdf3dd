"""``ModelLimiter``: the windows of one model, built from its :class:`RateLimitConfig`: checking, reserving all of them
at once, settling, releasing, recording, provider reports (see the package docstring). Its hot paths inline the
common cases of :class:`~noa_ai_provider.ratelimit.window.TrailingWindow`'s methods."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..schemas import RateLimitCheck, RateLimitConfig
from .window import _AMOUNT, _DEFAULT_MAX_ENTRIES, _TS, _WINDOW, DAY, DAY_BUCKET, MINUTE, TrailingWindow

__all__ = ["REASONS", "RETRY_AFTER", "Handle", "ModelLimiter"]

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
        ModelLimiter._correct_to(handle, (1, input_tokens + output_tokens, input_tokens, output_tokens))

    @staticmethod
    def _correct_to(handle: Handle, amounts: tuple[int, int, int, int]) -> None:
        # Every entry of the handle becomes its kind's amount (a settle), or 0 (a release); the handle is used up.
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
        ModelLimiter._correct_to(handle, _NOTHING)

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
_NOTHING = (0, 0, 0, 0)  # what a released reservation counts, of every kind
_new_handle = object.__new__
