"""Input-token estimates of a request, made before it is sent (what :meth:`~EnhancedModelRegistry.acquire`
reserves). Whatever the estimate, the commit corrects it to the usage the provider reports.

Both SDKs' requests are read the same way: the text of ``system``, ``messages``, ``input``, ``instructions``,
``tools`` and ``functions`` (whichever the request has). No SDK is imported here.

- :func:`estimate_characters` (each integration's default): a quarter of the characters, rounded up. Cheap (a walk
  over the request, no tokenizer) and within ~20% for English prose; it over-counts code and under-counts
  non-Latin scripts.
- :func:`tokenizer_estimate` builds an estimate from a real tokenizer's ``encode`` (``tiktoken`` for OpenAI
  models, where installed), counting the messages' framing tokens as OpenAI documents them.

An inline image, audio clip or document (base64 data) counts a fixed number of tokens, not its encoded bytes
(which would count ~100 times too many); a list of token ids (embeddings) counts its length.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Estimate", "RequestParts", "estimate_characters", "request_parts", "tokenizer_estimate"]

Estimate = Callable[[Mapping[str, Any]], int]
"""The input-token estimate of a request, from the keyword arguments of the metered ``create``.

.. versionadded:: 0.2.0
"""

FIELDS = ("system", "messages", "input", "instructions", "tools", "functions")
"""The request fields an estimate reads (whichever the endpoint has)."""

_MEDIA_KEYS = ("image_url", "input_audio", "file", "file_data")
_TEXT_TYPES = (None, "text", "input_text", "output_text")
_SKIPPED = ("type", "cache_control")


class RequestParts:
    """What an estimate counts in a request: its texts, inline media, token ids, and messages.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("media", "messages", "texts", "token_ids")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.media = 0
        self.token_ids = 0
        self.messages = 0

    def walk(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str):
            if value.startswith("data:") and ";base64," in value[:100]:
                self.media += 1
            else:
                self.texts.append(value)
        elif isinstance(value, Mapping):
            source = value.get("source")
            if isinstance(source, Mapping) and source.get("type") == "base64":  # Anthropic image / document
                self.media += 1
            elif value.get("type") not in _TEXT_TYPES and any(name in value for name in _MEDIA_KEYS):
                self.media += 1  # OpenAI image_url / input_audio / file parts
            else:
                for name, item in value.items():
                    if name not in _SKIPPED:
                        self.walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self.walk(item)
        elif isinstance(value, int | float):
            self.texts.append(str(value))
        else:
            self.texts.append(str(value))


def request_parts(request: Mapping[str, Any]) -> RequestParts:
    """The texts, inline media, token ids and messages of ``request`` (the keyword arguments of ``create``).

    .. versionadded:: 0.2.0
    """
    parts = RequestParts()
    for name in FIELDS:
        value = request.get(name)
        if value is None:
            continue
        if name in ("tools", "functions"):
            for tool in value:
                parts.texts.append(json.dumps(tool, default=str, separators=(",", ":")))
        elif name == "input" and _token_ids(value):
            parts.token_ids += _count_ids(value)
        else:
            if name == "messages" and isinstance(value, list | tuple):
                parts.messages += len(value)
            parts.walk(value)
    return parts


def estimate_characters(request: Mapping[str, Any], *, media_tokens: int = 1_000) -> int:
    """A quarter of the characters of the request's texts (a message's role included; a tool counts its JSON),
    rounded up, plus ``media_tokens`` per inline image, audio clip or document and one per token id.

    >>> estimate_characters({"system": "Be brief.", "messages": [{"role": "user", "content": "Hello there"}]})
    6
    >>> estimate_characters({"input": [[1, 2, 3], [4, 5]]})
    5

    .. versionadded:: 0.2.0
    """
    parts = request_parts(request)
    chars = sum(len(text) for text in parts.texts)
    return -(-chars // 4) + parts.media * media_tokens + parts.token_ids


def tokenizer_estimate(
    encode: Callable[[str], Sequence[int]], *, per_message: int = 3, media_tokens: int = 1_000
) -> Estimate:
    """An estimate that counts the tokens of the request's texts with ``encode`` (a tokenizer's ``encode``, e.g.
    ``tiktoken.encoding_for_model("gpt-4o").encode_ordinary``, which, unlike ``encode``, does not raise on
    text that looks like a special token), plus ``per_message`` framing tokens per message and 3 for
    the reply's priming (OpenAI's documented chat format), ``media_tokens`` per inline image, audio clip or
    document, and one per token id. Pass it as ``meter(..., estimate=tokenizer_estimate(encoding.encode_ordinary))``.

    Raises ``ValueError`` when ``per_message`` or ``media_tokens`` is negative.

    .. versionadded:: 0.2.0
    """
    if per_message < 0 or media_tokens < 0:
        raise ValueError(f"per_message and media_tokens must be >= 0, got {per_message} and {media_tokens}")

    def estimate(request: Mapping[str, Any]) -> int:
        parts = request_parts(request)
        tokens = sum(len(encode(text)) for text in parts.texts)
        framing = per_message * parts.messages + (3 if parts.messages else 0)
        return tokens + framing + parts.media * media_tokens + parts.token_ids

    return estimate


def _token_ids(value: Any) -> bool:
    if not isinstance(value, list | tuple) or not value:
        return False
    first = value[0]
    return (isinstance(first, int) and not isinstance(first, bool)) or (
        isinstance(first, list | tuple) and bool(first) and isinstance(first[0], int)
    )


def _count_ids(value: Any) -> int:
    if isinstance(value, list | tuple):
        return sum(_count_ids(item) for item in value)
    return 1
