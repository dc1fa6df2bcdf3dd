"""Metered OpenAI clients: every ``chat.completions.create``, ``responses.create`` and ``embeddings.create`` call is
admitted, billed and fed back to an :class:`~noa_ai_provider.registry.EnhancedModelRegistry`.

::

    client = meter(openai.OpenAI(), registry)
    completion = client.chat.completions.create(model="gpt-4o", messages=[...])

Per call, in this order:

1. the request's ``model`` is resolved with :meth:`~EnhancedModelRegistry.resolve_key` (aliases, the dated names the
   API answers with, provider spellings); an unknown model raises
   :class:`~noa_ai_provider.errors.ModelNotFoundError` before anything is sent;
2. one request of ``estimate(request)`` input tokens plus the request's output cap is reserved with
   :meth:`~EnhancedModelRegistry.acquire` (``acquire_async`` on an async client), waiting or raising
   :class:`~noa_ai_provider.errors.RateLimitExceeded` as ``wait`` / ``timeout`` say. The output cap is
   ``max_completion_tokens`` (or ``max_tokens``) times ``n`` for a chat completion, ``max_output_tokens`` for a
   response, 0 for embeddings; without one, the model's ``maxTokens`` (0 when it has none);
3. the call is sent through ``with_raw_response`` (so the response's headers can be read) on a copy of the client
   without the SDK's own retries; the caller gets what the plain method returns;
4. the reservation is committed with the response's usage (:func:`~noa_ai_provider.usage.usage_from_openai`:
   cached input tokens, service tier), then the response's ``x-ratelimit-*`` headers go to
   :meth:`~EnhancedModelRegistry.update_rate_limits_from_headers`;
5. an API error (any 4xx/5xx, which OpenAI does not bill) counts a failed request at $0 (:meth:`Reservation.fail`)
   and its headers are applied too, so a 429's ``retry-after`` stops every caller of that model until then; any
   other exception (connection error, timeout, cancellation) also fails the reservation;
6. what the SDK would retry (a connection error, a 408, 409, 429 or 5xx; ``x-should-retry`` obeyed) is retried
   here, up to the client's ``max_retries``, each attempt admitted by the registry again (waiting for the
   model's limits and cooldown like any call) and counted; the wait is the response's ``retry-after-ms`` /
   ``retry-after`` (one over :data:`~noa_ai_provider.integrations.metering.MAX_RETRY_AFTER` seconds is raised at
   once), else the SDK's backoff. The last error propagates unchanged.

Once the provider has answered, a usage the registry cannot record (a service tier without a price, a store
outage) does not raise: the caller gets the response, the problem is logged at ERROR on
``noa_ai_provider.integrations``, and the reservation is given back (its windows keep the request).

A stream (``stream=True``) commits what it reported when it ends, is closed early, raises, or is dropped unclosed
(then from a short-lived thread, as a garbage collection may happen inside the registry's locks): a chat completion
stream reports usage in its last chunk only with ``stream_options={"include_usage": True}``; a Responses stream in
the ``response`` of its ``response.completed`` / ``response.incomplete`` / ``response.failed`` event. A stream that
yielded chunks but no usage is committed at the reserved input estimate and one output token per chunk that carried
content (an approximation: pass ``include_usage``); a stream closed before its first chunk counts a failed request.
A reservation taken by this module is never left open.

Not metered (delegated unchanged, with the SDK's own retries): the resources' ``with_raw_response`` /
``with_streaming_response``, ``chat.completions.parse`` / ``.stream``, ``responses.parse`` / ``.stream`` /
``.retrieve``, ``completions``, ``audio``, ``images``, ``batches``, ``beta`` and every other resource.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

import openai

from ..registry import EnhancedModelRegistry
from ..usage import usage_from_openai
from .estimates import Estimate, estimate_characters, tokenizer_estimate
from .metering import (
    AsyncMeteredStream,
    ClientProxy,
    Counts,
    Meter,
    MeteredStream,
    Proxy,
    Settler,
    is_coroutine,
    without_retries,
)

__all__ = ["Estimate", "estimate_input_tokens", "meter", "tokenizer_estimate"]

_C = TypeVar("_C")

_MEDIA_TOKENS = 1_000
"""What an inline image, audio clip or file counts for (~1,000 tokens); its encoded bytes would count far too
many."""


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """The default input estimate: a quarter of the characters of ``messages`` (chat), ``input`` and
    ``instructions`` (responses, embeddings), ``tools`` and ``functions``, rounded up. Text counts its characters
    (a message's role too); a tool its JSON; an inline image, audio clip or file (a ``data:`` URL or base64 data) a
    fixed ~1,000 tokens; a list of token ids (embeddings) its length.

    >>> estimate_input_tokens({"messages": [{"role": "user", "content": "Hello there"}]})
    4
    >>> estimate_input_tokens({"input": [[1, 2, 3], [4, 5]]})
    5

    .. versionadded:: 0.2.0
    """
    return estimate_characters(request, media_tokens=_MEDIA_TOKENS)


def _output_cap(registry: EnhancedModelRegistry, key: str, kwargs: Mapping[str, Any], endpoint: str) -> int:
    """The output tokens to reserve: the request's cap (times ``n`` for a chat completion), else the model's
    ``maxTokens``, else 0; 0 for embeddings. With ``n`` > 1 the total is at most the model's ``maxTokens`` (the
    registry refuses a request whose output could exceed it; the commit records all ``n`` choices' tokens)."""
    if endpoint == "embeddings":
        return 0
    names = ("max_completion_tokens", "max_tokens") if endpoint == "chat" else ("max_output_tokens",)
    cap = next((kwargs[name] for name in names if isinstance(kwargs.get(name), int)), None)
    n = kwargs.get("n") if endpoint == "chat" else None
    many = isinstance(n, int) and n > 1
    if cap is not None and not many:  # the common case: no catalogue lookup
        return int(cap)
    entry = registry.get_model(key)
    most = (entry.max_tokens if entry is not None else None) or 0
    if cap is None:
        return most
    total = int(cap) * cast(int, n)
    return min(total, most) if most else total


class _StreamUsage:
    """What a stream reported so far: the usage of its last chunk or final response event, or the number of
    chunks (and of chunks with content) when it reports none."""

    __slots__ = ("chunks", "content", "usage")

    def __init__(self) -> None:
        self.usage: Any = None
        self.chunks = 0
        self.content = 0

    def observe(self, event: Any) -> None:
        # Read the event's fields from its __dict__: getattr of a field an SDK model lacks goes through pydantic's
        # __getattr__ and an exception (~1.6 µs each, on every chunk).
        self.chunks += 1
        fields = getattr(event, "__dict__", None) or {}
        if fields.get("object") == "chat.completion.chunk":
            if fields.get("usage") is not None:
                self.usage = event  # the chunk itself: it carries service_tier too
            elif _chunk_has_content(fields.get("choices")):
                self.content += 1
            return
        response = fields.get("response")
        if response is not None and getattr(response, "usage", None) is not None:
            self.usage = response  # response.completed / .incomplete / .failed
        elif fields.get("delta"):  # responses: response.output_text.delta and the like
            self.content += 1

    def report(self) -> Any:
        if self.usage is not None:
            return self.usage
        if self.chunks:  # streamed, but no usage reported (no include_usage): the estimate
            return Counts(output_tokens=self.content)
        return None


def _chunk_has_content(choices: Any) -> bool:
    for choice in choices or ():
        delta = getattr(choice, "delta", None)
        if delta is not None and (delta.content or delta.tool_calls or delta.refusal or delta.function_call):
            return True
    return False


class _Creator(Proxy):
    """A resource whose ``create`` is metered (``endpoint``: ``"chat"``, ``"responses"`` or ``"embeddings"``);
    ``sender`` is the same resource of the client's copy without retries."""

    def __init__(self, wrapped: Any, meter: Meter, endpoint: str, sender: Any, retries: int) -> None:
        super().__init__(wrapped, meter)
        self._endpoint = endpoint
        self._create = sender.with_raw_response.create
        self._retries = retries

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("model") is None:  # the SDK raises its own error, or a stored prompt names the model
            return self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate = meter.prepare(kwargs)
        cap = _output_cap(meter.registry, key, kwargs, self._endpoint)
        reservation, raw, result = meter.send(key, estimate, cap, self._create, kwargs, self._retries)
        if kwargs.get("stream"):  # the stream's usage comes later: its reservation stays open until then
            return MeteredStream(result, Settler(meter, reservation, raw.headers, _StreamUsage()))
        meter.commit(reservation, result, raw.headers)
        return result


class _AsyncCreator(_Creator):
    async def create(self, **kwargs: Any) -> Any:
        if kwargs.get("model") is None:
            return await self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate = meter.prepare(kwargs)
        cap = _output_cap(meter.registry, key, kwargs, self._endpoint)
        # The raw response is a LegacyAPIResponse: its parse() is not awaitable, even on the async client.
        reservation, raw, result = await meter.send_async(key, estimate, cap, self._create, kwargs, self._retries)
        if kwargs.get("stream"):
            return AsyncMeteredStream(result, Settler(meter, reservation, raw.headers, _StreamUsage()))
        meter.commit(reservation, result, raw.headers)
        return result


class _Chat(Proxy):
    def __init__(self, wrapped: Any, meter: Meter, client: _Client) -> None:
        super().__init__(wrapped, meter)
        self._client = client
        self._completions: _Creator | None = None

    @property
    def completions(self) -> Any:
        if self._completions is None:
            self._completions = self._client._creator(self._wrapped.completions, "chat")
        return self._completions


class _Client(ClientProxy):
    """A metered client: ``chat.completions``, ``responses`` and ``embeddings`` are metered, ``with_options`` /
    ``copy`` return metered copies, everything else is the client's."""

    def __init__(self, wrapped: Any, meter: Meter, is_async: bool) -> None:
        super().__init__(wrapped, meter, is_async)
        self._resources: dict[str, Proxy] = {}
        self._sender: tuple[Any, int] | None = None

    def _creator(self, resource: Any, endpoint: str) -> _Creator:
        if self._sender is None:
            self._sender = without_retries(self._wrapped)
        sender, retries = self._sender
        target = sender.chat.completions if endpoint == "chat" else getattr(sender, endpoint)
        kind = _AsyncCreator if self._async else _Creator
        return kind(resource, self._meter, endpoint, target, retries)

    def _resource(self, name: str) -> Any:
        proxy = self._resources.get(name)
        if proxy is None:
            wrapped = getattr(self._wrapped, name)
            proxy = _Chat(wrapped, self._meter, self) if name == "chat" else self._creator(wrapped, name)
            self._resources[name] = proxy
        return proxy

    @property
    def chat(self) -> Any:
        return self._resource("chat")

    @property
    def responses(self) -> Any:
        return self._resource("responses")

    @property
    def embeddings(self) -> Any:
        return self._resource("embeddings")


def meter(
    client: _C,
    registry: EnhancedModelRegistry,
    *,
    wait: bool = False,
    timeout: float | None = None,
    estimate: Estimate | None = None,
) -> _C:
    """``client`` (an :class:`openai.OpenAI` or :class:`openai.AsyncOpenAI`, or an Azure client with the same
    resources) with its ``chat.completions.create``, ``responses.create`` and ``embeddings.create`` metered by
    ``registry`` (see the module's documentation); the object returned has the client's interface and is typed as
    the client. ``client`` itself is left unchanged.

    ``wait`` and ``timeout`` are passed to :meth:`~EnhancedModelRegistry.acquire`: by default a call over a limit
    raises :class:`~noa_ai_provider.errors.RateLimitExceeded` without being sent. ``estimate`` takes the keyword
    arguments of ``create`` and returns the input tokens to reserve (default: :func:`estimate_input_tokens`; for a
    real tokenizer, ``tokenizer_estimate(tiktoken.encoding_for_model("gpt-4o").encode_ordinary)``). Raises
    ``TypeError`` when ``client`` has no ``chat.completions.create`` or ``registry`` is not a registry.

    .. versionadded:: 0.2.0
    """
    create = getattr(getattr(getattr(client, "chat", None), "completions", None), "create", None)
    if create is None:
        raise TypeError(f"meter() needs an OpenAI client with chat.completions.create, got {type(client).__name__}")
    is_async = is_coroutine(create)
    core = Meter(
        registry,
        wait=wait,
        timeout=timeout,
        estimate=estimate or estimate_input_tokens,
        usage_of=usage_from_openai,
        status_error=openai.APIStatusError,
        connection_error=openai.APIConnectionError,
    )
    return cast(_C, _Client(client, core, is_async))
