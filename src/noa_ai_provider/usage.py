"""Turning providers' usage objects into ``record_usage`` / ``commit`` arguments.

Convention of this package: ``input_tokens`` **includes** cached (cache-read) and cache-write tokens.

- OpenAI reports cached tokens *inside* its prompt count: Chat Completions ``usage.prompt_tokens`` with
  ``usage.prompt_tokens_details.cached_tokens``; the Responses API ``usage.input_tokens`` with
  ``usage.input_tokens_details.cached_tokens``.
- Anthropic reports cache tokens *on top of* ``usage.input_tokens``: ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens`` are added to it here.

Both functions accept the SDKs' objects (attributes) or plain dicts, and return a dict to splat:
``registry.record_usage(key, **usage_from_openai(response.usage))``.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidUsageError

__all__ = ["usage_from_anthropic", "usage_from_openai"]


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(obj: Any, name: str, source: str) -> int:
    value = _get(obj, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidUsageError(f"{source} usage: {name} must be a non-negative integer, got {value!r}")
    return value


def usage_from_openai(usage: Any) -> dict[str, int]:
    """``input_tokens``, ``output_tokens`` and ``cached_input_tokens`` from an OpenAI usage object or dict.

    >>> usage_from_openai({"prompt_tokens": 1200, "completion_tokens": 300,
    ...                    "prompt_tokens_details": {"cached_tokens": 1024}})
    {'input_tokens': 1200, 'output_tokens': 300, 'cached_input_tokens': 1024}
    """
    if _get(usage, "prompt_tokens") is not None or _get(usage, "completion_tokens") is not None:
        inp = _count(usage, "prompt_tokens", "OpenAI")
        out = _count(usage, "completion_tokens", "OpenAI")
        cached = _count(_get(usage, "prompt_tokens_details"), "cached_tokens", "OpenAI")
    else:  # the Responses API
        inp = _count(usage, "input_tokens", "OpenAI")
        out = _count(usage, "output_tokens", "OpenAI")
        cached = _count(_get(usage, "input_tokens_details"), "cached_tokens", "OpenAI")
    if cached > inp:
        raise InvalidUsageError(f"OpenAI usage: cached_tokens ({cached}) exceed the prompt tokens ({inp})")
    return {"input_tokens": inp, "output_tokens": out, "cached_input_tokens": cached}


def usage_from_anthropic(usage: Any) -> dict[str, int]:
    """``input_tokens`` (with cache tokens added), ``output_tokens``, ``cached_input_tokens`` and
    ``cache_write_tokens`` from an Anthropic usage object or dict.

    >>> usage_from_anthropic({"input_tokens": 50, "output_tokens": 200,
    ...                       "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300})
    {'input_tokens': 1350, 'output_tokens': 200, 'cached_input_tokens': 1000, 'cache_write_tokens': 300}
    """
    base = _count(usage, "input_tokens", "Anthropic")
    read = _count(usage, "cache_read_input_tokens", "Anthropic")
    write = _count(usage, "cache_creation_input_tokens", "Anthropic")
    return {
        "input_tokens": base + read + write,
        "output_tokens": _count(usage, "output_tokens", "Anthropic"),
        "cached_input_tokens": read,
        "cache_write_tokens": write,
    }
