"""Turning providers' responses and usage objects into ``record_usage`` / ``commit`` arguments.

Both functions take either a whole response or just its ``usage``, as the official SDKs' objects (read by
attribute) or as plain dicts (read by key), and return a dict to splat::

    registry.record_usage(key, **usage_from_openai(response))
    reservation.commit(**usage_from_anthropic(message))

Conventions:

- ``input_tokens`` **includes** cached (cache-read) and cache-write tokens, as everywhere in this package.
  OpenAI already counts cached tokens in its prompt count (Chat Completions ``usage.prompt_tokens`` with
  ``usage.prompt_tokens_details.cached_tokens``; the Responses API ``usage.input_tokens`` with
  ``usage.input_tokens_details.cached_tokens``). Anthropic reports cache tokens *on top of* ``usage.input_tokens``
  (``cache_read_input_tokens``, ``cache_creation_input_tokens``); they are added to it here.
- Anthropic cache writes are split by lifetime from ``usage.cache_creation``: ``cache_write_tokens`` are the
  5-minute writes (``ephemeral_5m_input_tokens``, plus any part of ``cache_creation_input_tokens`` attributed to
  neither lifetime), ``cache_write_1h_tokens`` the 1-hour writes (``ephemeral_1h_input_tokens``). Without
  ``cache_creation`` every cache write is a 5-minute one.
- A *response* is anything with a ``usage`` attribute (or key): a chat completion, its last streamed chunk (with
  ``stream_options={"include_usage": True}``), a Responses API response, an Anthropic ``Message`` (also a stream's
  final message) or ``message_delta`` event. Anything else is taken to be the usage itself.
- The service tier is read from a response only (a bare usage gives token counts only): OpenAI's
  ``response.service_tier``, Anthropic's ``response.usage.service_tier``. The provider's name is passed through
  unchanged (``"default"``, ``"flex"``, ``"scale"``, ``"standard"``, ``"priority"``, ...):
  :func:`noa_ai_provider.cost.billed_service_tier` maps it to a price set when the usage is recorded.
- The dict always has ``input_tokens``, ``output_tokens`` and ``cached_input_tokens`` (and, from Anthropic,
  ``cache_write_tokens``); ``cache_write_1h_tokens`` only when non-zero and ``service_tier`` only when reported
  (not ``None``), so the dict also suits code written before those arguments existed.
- A count that is not a non-negative ``int`` (a bool, a float, a string), a service tier that is not a string,
  cached or cache-write counts that do not add up, a response whose ``usage`` is ``None`` and an object without any
  token count raise :class:`~noa_ai_provider.errors.InvalidUsageError` naming the provider and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidUsageError

__all__ = ["usage_from_anthropic", "usage_from_openai"]


def _has(obj: Any, name: str) -> bool:
    if isinstance(obj, Mapping):
        return name in obj
    return hasattr(obj, name)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(obj: Any, name: str, provider: str, path: str | None = None) -> int:
    """The count ``obj.name`` (``0`` when missing or ``None``); ``path`` names it in errors."""
    value = _get(obj, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidUsageError(f"{provider} usage: {path or name} must be a non-negative integer, got {value!r}")
    return int(value)  # a plain int, also from an int subclass


def _split(obj: Any, provider: str) -> tuple[Any, Any]:
    """``(usage, response)``: ``response`` is ``None`` when ``obj`` is the usage itself."""
    if obj is None:
        raise InvalidUsageError(f"{provider} usage: expected a response or its usage, got None")
    if not _has(obj, "usage"):
        return obj, None
    usage = _get(obj, "usage")
    if usage is None:
        hint = " (a stream reports it in its last chunk with stream_options={'include_usage': True})"
        raise InvalidUsageError(
            f"{provider} response: usage is None, no token counts to record{hint if provider == 'OpenAI' else ''}"
        )
    return usage, obj


def _no_counts(usage: Any, provider: str, fields: str) -> InvalidUsageError:
    return InvalidUsageError(
        f"{provider} usage: no token counts in {type(usage).__name__} {usage!r:.200} (expected {fields})"
    )


def _service_tier(obj: Any, provider: str, path: str) -> str | None:
    value = _get(obj, "service_tier")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidUsageError(f"{provider} response: {path} must be a string, got {value!r}")
    return value


def usage_from_openai(obj: Any) -> dict[str, Any]:
    """``input_tokens``, ``output_tokens`` and ``cached_input_tokens`` from an OpenAI response or its usage (Chat
    Completions or Responses API; SDK object or dict), and ``service_tier`` when the response reports one.

    ``input_tokens`` is the prompt count, cached tokens included (OpenAI counts them in it). A cache-write count
    (``cache_write_tokens`` in the details, in recent SDKs) is returned as ``cache_write_tokens`` when non-zero
    (billed at the model's ``cacheWriteTokens`` price, else at the input price); its lifetimes are not read.
    ``service_tier`` is ``response.service_tier`` as reported (``"default"``, ``"flex"``,
    ``"scale"``, ``"priority"``, ...), present only when a response with a non-``None`` tier is given.

    A chat completion's usage:

    >>> usage_from_openai({"prompt_tokens": 1200, "completion_tokens": 300,
    ...                    "prompt_tokens_details": {"cached_tokens": 1024}})
    {'input_tokens': 1200, 'output_tokens': 300, 'cached_input_tokens': 1024}

    A whole Responses API response, with its service tier:

    >>> usage_from_openai({"object": "response", "service_tier": "flex",
    ...                    "usage": {"input_tokens": 5000, "output_tokens": 700,
    ...                              "input_tokens_details": {"cached_tokens": 4096}}})
    {'input_tokens': 5000, 'output_tokens': 700, 'cached_input_tokens': 4096, 'service_tier': 'flex'}

    Bad counts raise :class:`~noa_ai_provider.errors.InvalidUsageError`:

    >>> usage_from_openai({"prompt_tokens": 10, "completion_tokens": "2"})
    Traceback (most recent call last):
    ...
    noa_ai_provider.errors.InvalidUsageError: OpenAI usage: completion_tokens must be a non-negative integer, got '2'

    .. versionchanged:: 0.2.0
       Takes a whole response or its ``usage``; returns ``service_tier`` and ``cache_write_tokens`` when reported.
    """
    usage, response = _split(obj, "OpenAI")
    if _get(usage, "prompt_tokens") is not None or _get(usage, "completion_tokens") is not None:
        inp = _count(usage, "prompt_tokens", "OpenAI")
        out = _count(usage, "completion_tokens", "OpenAI")
        details, prompt = "prompt_tokens_details", "prompt_tokens"
    elif _get(usage, "input_tokens") is not None or _get(usage, "output_tokens") is not None:  # Responses API
        inp = _count(usage, "input_tokens", "OpenAI")
        out = _count(usage, "output_tokens", "OpenAI")
        details, prompt = "input_tokens_details", "input_tokens"
    else:
        fields = "prompt_tokens/completion_tokens or input_tokens/output_tokens"
        raise _no_counts(usage, "OpenAI", fields)
    cached = _count(_get(usage, details), "cached_tokens", "OpenAI", f"{details}.cached_tokens")
    # Newer models report prompt-cache writes too (inside the prompt count, like cached tokens).
    written = _count(_get(usage, details), "cache_write_tokens", "OpenAI", f"{details}.cache_write_tokens")
    if cached + written > inp:
        raise InvalidUsageError(
            f"OpenAI usage: {details}.cached_tokens ({cached}) + {details}.cache_write_tokens ({written}) exceed "
            f"{prompt} ({inp})"
        )
    result: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, "cached_input_tokens": cached}
    if written:
        result["cache_write_tokens"] = written
    if response is not None:
        tier = _service_tier(response, "OpenAI", "service_tier")
        if tier is not None:
            result["service_tier"] = tier
    return result


def usage_from_anthropic(obj: Any) -> dict[str, Any]:
    """``input_tokens`` (with cache tokens added), ``output_tokens``, ``cached_input_tokens`` and
    ``cache_write_tokens`` from an Anthropic response (a ``Message``, a stream's final message or ``message_delta``
    event) or its usage (SDK object or dict); ``cache_write_1h_tokens`` and ``service_tier`` when they apply.

    ``input_tokens`` = ``usage.input_tokens + cache_read_input_tokens + cache_creation_input_tokens``;
    ``cached_input_tokens`` = ``cache_read_input_tokens``. The cache writes are split by lifetime with
    ``usage.cache_creation``: ``cache_write_1h_tokens`` = ``ephemeral_1h_input_tokens`` (present only when
    non-zero), ``cache_write_tokens`` = the rest of ``cache_creation_input_tokens`` (the 5-minute writes, and any
    part attributed to neither lifetime); without ``cache_creation``, all of it. When
    ``cache_creation_input_tokens`` is missing (or ``None``) it is taken to be the sum of the two parts.
    ``service_tier`` is ``response.usage.service_tier`` as reported (``"standard"``, ``"priority"``,
    ``"batch"``), present only when a response (not a bare usage) with a non-``None`` tier is given.

    A usage with cache reads and 5-minute writes:

    >>> usage_from_anthropic({"input_tokens": 50, "output_tokens": 200,
    ...                       "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300})
    {'input_tokens': 1350, 'output_tokens': 200, 'cached_input_tokens': 1000, 'cache_write_tokens': 300}

    A whole message with 1-hour writes and its service tier:

    >>> usage_from_anthropic({"type": "message", "usage": {
    ...     "input_tokens": 50, "output_tokens": 200, "cache_creation_input_tokens": 3000,
    ...     "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
    ...     "service_tier": "priority"}})  # doctest: +NORMALIZE_WHITESPACE
    {'input_tokens': 3050, 'output_tokens': 200, 'cached_input_tokens': 0, 'cache_write_tokens': 1000,
     'cache_write_1h_tokens': 2000, 'service_tier': 'priority'}

    Lifetimes adding up to more than the writes raise :class:`~noa_ai_provider.errors.InvalidUsageError`:

    >>> usage_from_anthropic({"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 100,
    ...                       "cache_creation": {"ephemeral_1h_input_tokens": 150}})
    Traceback (most recent call last):
    ...
    noa_ai_provider.errors.InvalidUsageError: Anthropic usage: cache_creation.ephemeral_5m_input_tokens (0) + cache_creation.ephemeral_1h_input_tokens (150) exceed cache_creation_input_tokens (100)

    .. versionchanged:: 0.2.0
       Takes a whole response or its ``usage``; splits cache writes into 5-minute and 1-hour parts
       and returns ``service_tier`` when reported.
    """  # noqa: E501
    usage, response = _split(obj, "Anthropic")
    if _get(usage, "input_tokens") is None and _get(usage, "output_tokens") is None:
        raise _no_counts(usage, "Anthropic", "input_tokens/output_tokens")
    base = _count(usage, "input_tokens", "Anthropic")
    out = _count(usage, "output_tokens", "Anthropic")
    read = _count(usage, "cache_read_input_tokens", "Anthropic")
    creation = _get(usage, "cache_creation")
    five = _count(creation, "ephemeral_5m_input_tokens", "Anthropic", "cache_creation.ephemeral_5m_input_tokens")
    hour = _count(creation, "ephemeral_1h_input_tokens", "Anthropic", "cache_creation.ephemeral_1h_input_tokens")
    if _get(usage, "cache_creation_input_tokens") is None:
        written = five + hour
    else:
        written = _count(usage, "cache_creation_input_tokens", "Anthropic")
    if five + hour > written:
        raise InvalidUsageError(
            f"Anthropic usage: cache_creation.ephemeral_5m_input_tokens ({five}) + "
            f"cache_creation.ephemeral_1h_input_tokens ({hour}) exceed cache_creation_input_tokens ({written})"
        )
    result: dict[str, Any] = {
        "input_tokens": base + read + written,
        "output_tokens": out,
        "cached_input_tokens": read,
        "cache_write_tokens": written - hour,
    }
    if hour:
        result["cache_write_1h_tokens"] = hour
    # Anthropic reports the tier inside usage, so a bare usage carries it too.
    tier = _service_tier(usage, "Anthropic", "usage.service_tier")
    if tier is None and response is not None:  # not Anthropic's place for it, but some wrappers report it there
        tier = _service_tier(response, "Anthropic", "service_tier")
    if tier is not None:
        result["service_tier"] = tier
    return result
