"""Rate limits: a model's limits and the answer of a rate-limit check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .base import Strict, _Schema
from .fields import PositiveInt

__all__ = ["RateLimitCheck", "RateLimitConfig"]


class RateLimitConfig(_Schema):
    """Limits of a model over trailing windows; every limit is optional.

    ``tokens_*`` count input plus output tokens; ``input_tokens_per_minute`` and ``output_tokens_per_minute``
    count them apart (as Anthropic does). ``count_cache_reads=False`` (JSON ``countCacheReads``) leaves the tokens
    read from the provider's cache out of every token limit, as Anthropic's input-tokens-per-minute limit does on
    current models; cache writes always count.

    .. versionchanged:: 0.2.0
       The ``count_cache_reads`` field (JSON ``countCacheReads``).
    """

    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None
    requests_per_day: PositiveInt | None = None
    tokens_per_day: PositiveInt | None = None
    input_tokens_per_minute: PositiveInt | None = None
    output_tokens_per_minute: PositiveInt | None = None
    count_cache_reads: Annotated[bool, Strict()] = True
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimitCheck:
    """The answer of ``check_rate_limit``.

    ``reason`` names the limit that would be exceeded (``"requests per minute"``, ``"tokens per minute"``,
    ``"requests per day"``); ``retry_after`` is the number of seconds until the request would be allowed, or
    ``None`` when it never can be (more tokens than the per-minute token limit).
    """

    allowed: bool
    reason: str | None = None
    retry_after: float | None = None
