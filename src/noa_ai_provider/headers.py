"""Parsing providers' rate-limit response headers (OpenAI, Anthropic, ``retry-after``). Pure functions.

- OpenAI: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``; resets are durations such as ``6m0s``,
  ``1s``, ``20ms`` or ``1h2m3.5s``.
- Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}``;
  resets are RFC 3339 times such as ``2024-05-01T12:00:30Z``.
- ``retry-after``: seconds (``"20"``, ``"1.5"``) or an HTTP date; ``retry-after-ms`` (OpenAI) in milliseconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .errors import InvalidUsageError

__all__ = ["LimitReport", "ProviderLimits", "parse_duration", "parse_rate_limit_headers", "read_rate_limit_headers"]

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|h|m|s))")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True, slots=True)
class LimitReport:
    """One dimension reported by a provider: its limit, what remains, and when it resets (epoch seconds)."""

    limit: int | None
    remaining: int
    reset_at: float


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """Everything a response said about rate limits; ``None`` where it said nothing."""

    requests: LimitReport | None = None
    tokens: LimitReport | None = None
    input_tokens: LimitReport | None = None
    output_tokens: LimitReport | None = None
    retry_after: float | None = None


def parse_duration(text: str) -> float:
    """Seconds in an OpenAI reset duration.

    >>> parse_duration("6m0s"), parse_duration("20ms"), parse_duration("1h2m3.5s"), parse_duration("0.5")
    (360.0, 0.02, 3723.5, 0.5)
    """
    text = text.strip()
    seconds = _number(text, "not a duration")
    if seconds is not None:
        if seconds < 0:
            raise InvalidUsageError(f"not a duration: {text!r}")
        return seconds
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidUsageError(f"not a duration: {text!r}")
    return round(sum(float(n) * _UNIT[u] for n, u in parts), 6)


def _number(text: str, problem: str) -> float | None:
    # A plain number of seconds (None when the text is not a number); inf and nan are refused.
    try:
        seconds = float(text)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        raise InvalidUsageError(f"{problem}: {text!r}")
    return seconds


def _rfc3339(text: str) -> float:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidUsageError(f"not an RFC 3339 time: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _retry_after(text: str, now: float) -> float:
    text = text.strip()
    seconds = _number(text, "header retry-after: not a finite number of seconds")
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        return max(parsedate_to_datetime(text).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        raise InvalidUsageError(f"header retry-after: neither seconds nor an HTTP date: {text!r}") from None


def _int(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidUsageError(f"header {name}: not an integer: {text!r}") from None


def _report(
    lower: Mapping[str, str], limit: str, remaining: str, reset: str, now: float, absolute: bool
) -> LimitReport | None:
    if remaining not in lower:
        return None
    reset_text = lower.get(reset)
    try:
        if reset_text is None:
            reset_at = now + 60.0  # providers' limits are per minute unless they say otherwise
        elif absolute:
            reset_at = _rfc3339(reset_text)
        else:
            reset_at = now + parse_duration(reset_text)
    except InvalidUsageError as exc:
        raise InvalidUsageError(f"header {reset}: {exc}") from None
    return LimitReport(
        limit=_int(limit, lower[limit]) if limit in lower else None,
        remaining=_int(remaining, lower[remaining]),
        reset_at=reset_at,
    )


def parse_rate_limit_headers(headers: Mapping[str, str], now: float) -> ProviderLimits:
    """Read the rate-limit headers of one response (names are case-insensitive).

    Raises :class:`InvalidUsageError` naming the header when a value cannot be read (see
    :func:`read_rate_limit_headers` for a reading that skips such values instead).
    """
    limits, problems = read_rate_limit_headers(headers, now)
    if problems:
        raise InvalidUsageError(problems[0])
    return limits


def read_rate_limit_headers(headers: Mapping[str, str], now: float) -> tuple[ProviderLimits, list[str]]:
    """Read the rate-limit headers of one response, each dimension on its own: what could be read, and one message
    (naming the header) per dimension that could not, which is left out (``None``). Never raises for a value.

    This is what the registry applies: a provider's malformed header must not fail the caller's request.

    .. versionadded:: 0.2.0
    """
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    out: dict[str, LimitReport | None] = {}
    problems: list[str] = []
    # OpenAI documents these as per-minute limits (RPM, TPM); a reset beyond a minute is capped by the window.
    for dim in ("requests", "tokens"):
        try:
            out[dim] = _report(
                lower,
                f"x-ratelimit-limit-{dim}",
                f"x-ratelimit-remaining-{dim}",
                f"x-ratelimit-reset-{dim}",
                now,
                False,
            )
        except InvalidUsageError as exc:
            problems.append(str(exc))
    for dim, name in (
        ("requests", "requests"),
        ("tokens", "tokens"),
        ("input_tokens", "input-tokens"),
        ("output_tokens", "output-tokens"),
    ):
        base = f"anthropic-ratelimit-{name}"
        try:
            report = _report(lower, f"{base}-limit", f"{base}-remaining", f"{base}-reset", now, True)
        except InvalidUsageError as exc:
            problems.append(str(exc))
            continue
        if report is not None:
            out[dim] = report
    retry: float | None = None
    try:
        if "retry-after-ms" in lower:
            retry = max(_int("retry-after-ms", lower["retry-after-ms"]), 0) / 1000
        elif "retry-after" in lower:
            retry = _retry_after(lower["retry-after"], now)
    except InvalidUsageError as exc:
        problems.append(str(exc))
    limits = ProviderLimits(
        requests=out.get("requests"),
        tokens=out.get("tokens"),
        input_tokens=out.get("input_tokens"),
        output_tokens=out.get("output_tokens"),
        retry_after=retry,
    )
    return limits, problems
