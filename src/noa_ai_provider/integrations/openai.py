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
3. the call is sent through ``with_raw_response`` (so the response's headers can be read); the caller gets what the
   plain method returns;
4. the reservation is committed with the response's usage (:func:`~noa_ai_provider.usage.usage_from_openai`:
   cached input tokens, service tier), then the response's ``x-ratelimit-*`` headers go to
   :meth:`~EnhancedModelRegistry.update_rate_limits_from_headers`;
5. an API error (any 4xx/5xx, which OpenAI does not bill) counts a failed request at $0 (:meth:`Reservation.fail`)
   and its headers are applied too, so a 429's ``retry-after`` stops every caller of that model until then; any
   other exception (connection error, timeout, cancellation) also fails the reservation, and the exception
   propagates unchanged.

A stream (``stream=True``) commits what it reported when it ends, is closed early or raises: a chat completion
stream reports usage in its last chunk only with ``stream_options={"include_usage": True}``; a Responses stream in
the ``response`` of its ``response.completed`` / ``response.incomplete`` / ``response.failed`` event. A stream that
yielded chunks but no usage is committed at the reserved input estimate and one output token per chunk that carried
content (an approximation: pass ``include_usage``); a stream closed before its first chunk counts a failed request.
No reservation is left open by a call through this module, except a stream dropped without being closed or
exhausted (the registry releases it when it is garbage-collected, with a ``ResourceWarning``).

Not metered (delegated unchanged): the resources' ``with_raw_response`` / ``with_streaming_response``,
``chat.completions.parse`` / ``.stream``, ``responses.parse`` / ``.stream`` / ``.retrieve``, ``completions``,
``audio``, ``images``, ``batches``, ``beta`` and every other resource. The SDK's own retries (``max_retries``, 2 by
default) happen inside one metered call: only the last attempt's headers are seen.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

import openai

from ..errors import RegistryError
from ..registry import EnhancedModelRegistry
from ..reservation import Reservation
from ..usage import usage_from_openai

__all__ = ["estimate_input_tokens", "meter"]

_C = TypeVar("_C")

Estimate = Callable[[Mapping[str, Any]], int]
"""The input-token estimate of a request, from the keyword arguments of the metered ``create``."""

_IMAGE_CHARS = 1_000 * 4
"""What an inline image, audio clip or file counts for, in characters (~1,000 tokens); its encoded bytes would count
far too many."""

_INPUT_FIELDS = ("messages", "input", "instructions", "tools", "functions")
"""The request fields the default estimate reads (whichever the endpoint has)."""


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """The default input estimate: a quarter of the characters of ``messages`` (chat), ``input`` and
    ``instructions`` (responses, embeddings), ``tools`` and ``functions``, rounded up. Text counts its characters
    (a message's role too); a tool its JSON; an inline image, audio clip or file (a ``data:`` URL or base64 data) a
    fixed ~1,000 tokens; a list of token ids (embeddings) its length.

    >>> estimate_input_tokens({"messages": [{"role": "user", "content": "Hello there"}]})
    4
    >>> estimate_input_tokens({"input": [[1, 2, 3], [4, 5]]})
    5
    """
    chars = 0
    tokens = 0
    for name in _INPUT_FIELDS:
        value = request.get(name)
        if name in ("tools", "functions"):
            for tool in value or ():
                chars += len(json.dumps(tool, default=str, separators=(",", ":")))
        elif name == "input" and _token_ids(value):
            tokens += _count_ids(value)
        else:
            chars += _chars(value)
    return tokens + -(-chars // 4)


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


def _chars(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return _IMAGE_CHARS if value.startswith("data:") and ";base64," in value[:100] else len(value)
    if isinstance(value, Mapping):
        if any(name in value for name in ("image_url", "input_audio", "file", "file_data")) and value.get(
            "type"
        ) not in (None, "text", "input_text"):
            return _IMAGE_CHARS
        return sum(_chars(item) for name, item in value.items() if name not in ("type", "cache_control"))
    if isinstance(value, list | tuple):
        return sum(_chars(item) for item in value)
    return len(str(value))


class _Meter:
    """What every proxy of one ``meter()`` call shares: the registry and the options."""

    __slots__ = ("estimate", "registry", "timeout", "wait")

    def __init__(
        self, registry: EnhancedModelRegistry, wait: bool, timeout: float | None, estimate: Estimate | None
    ) -> None:
        self.registry = registry
        self.wait = wait
        self.timeout = timeout
        self.estimate = estimate or estimate_input_tokens

    def prepare(self, kwargs: dict[str, Any], endpoint: str) -> tuple[str, int, int]:
        """``(key, input estimate, output cap)`` of a request; one-shot iterables in it become lists (the estimate
        reads them, the SDK reads them again)."""
        for name in _INPUT_FIELDS:
            value = kwargs.get(name)
            if value is not None and not isinstance(value, str | list | tuple | Mapping):
                kwargs[name] = list(value)
        key = self.registry.resolve_key(str(kwargs["model"]))
        estimate = self.estimate(kwargs)
        if isinstance(estimate, bool) or not isinstance(estimate, int) or estimate < 0:
            raise TypeError(f"estimate must return a non-negative int, got {estimate!r}")
        return key, estimate, self._output_cap(key, kwargs, endpoint)

    def _output_cap(self, key: str, kwargs: Mapping[str, Any], endpoint: str) -> int:
        if endpoint == "embeddings":
            return 0
        names = ("max_completion_tokens", "max_tokens") if endpoint == "chat" else ("max_output_tokens",)
        cap = next((kwargs[name] for name in names if isinstance(kwargs.get(name), int)), None)
        if cap is None:
            entry = self.registry.get_model(key)
            cap = (entry.max_tokens if entry is not None else None) or 0
        n = kwargs.get("n") if endpoint == "chat" else None
        return int(cap) * (n if isinstance(n, int) and n > 1 else 1)

    def acquire(self, key: str, estimate: int, cap: int) -> Reservation:
        return self.registry.acquire(key, estimate, cap, wait=self.wait, timeout=self.timeout)

    async def acquire_async(self, key: str, estimate: int, cap: int) -> Reservation:
        return await self.registry.acquire_async(key, estimate, cap, wait=self.wait, timeout=self.timeout)

    def headers(self, key: str, headers: Mapping[str, str]) -> None:
        self.registry.update_rate_limits_from_headers(key, headers)

    def commit(self, reservation: Reservation, usage: Any, headers: Mapping[str, str] | None) -> None:
        """Commit ``usage`` (a response, its usage, a dict of :meth:`Reservation.commit` keywords, or ``None``:
        nothing reported, a failed request), then apply ``headers``. The reservation is settled whatever raises."""
        try:
            if usage is None:
                reservation.fail()
            else:
                counts = usage if isinstance(usage, dict) else usage_from_openai(usage)
                reservation.commit(**counts)
        except BaseException:
            if reservation.open:  # the usage could not be recorded: give the reservation back all the same
                reservation.cancel()
            raise
        finally:
            if headers is not None:
                self.headers(reservation.key, headers)

    def failed(self, reservation: Reservation, error: BaseException) -> None:
        """The call raised ``error`` before a response could be billed: a failed request at $0, and the error
        response's headers (``retry-after``, rate-limit counts) applied."""
        try:
            reservation.fail()
        except RegistryError:
            reservation.cancel()
        if isinstance(error, openai.APIStatusError):
            self.headers(reservation.key, error.response.headers)


class _Usage:
    """What a stream reported so far: the usage of its last chunk or final response event, or the number of
    chunks (and of chunks with content) when it reports none."""

    __slots__ = ("chunks", "content", "usage")

    def __init__(self) -> None:
        self.usage: Any = None
        self.chunks = 0
        self.content = 0

    def observe(self, event: Any) -> None:
        self.chunks += 1
        usage = getattr(event, "usage", None)
        if usage is not None and getattr(event, "object", None) == "chat.completion.chunk":
            self.usage = event  # the chunk itself: it carries service_tier too
            return
        response = getattr(event, "response", None)
        if getattr(response, "usage", None) is not None:  # response.completed / .incomplete / .failed
            self.usage = response
            return
        if _has_content(event):
            self.content += 1


def _has_content(event: Any) -> bool:
    if getattr(event, "delta", None):  # responses: response.output_text.delta and the like
        return True
    for choice in getattr(event, "choices", None) or ():
        delta = getattr(choice, "delta", None)
        if delta is not None and (delta.content or delta.tool_calls or delta.refusal or delta.function_call):
            return True
    return False


class _StreamSettler:
    """Settles a stream's reservation once, with what the stream reported, then applies the response's headers
    (after, not when the stream opens: a provider's count read while the reservation still holds its worst case
    would be offset against it, and under-counted once the reservation shrinks to the real usage)."""

    __slots__ = ("headers", "meter", "reservation", "usage")

    def __init__(self, meter: _Meter, reservation: Reservation, headers: Mapping[str, str]) -> None:
        self.meter = meter
        self.reservation = reservation
        self.headers: Mapping[str, str] | None = headers
        self.usage = _Usage()

    def settle(self) -> None:
        if not self.reservation.open:
            return
        headers, self.headers = self.headers, None
        seen = self.usage
        if seen.usage is not None:
            self.meter.commit(self.reservation, seen.usage, headers)
        elif seen.chunks:  # streamed, but no usage reported (no include_usage): the estimate
            self.meter.commit(self.reservation, {"output_tokens": seen.content}, headers)
        else:
            self.meter.commit(self.reservation, None, headers)


class MeteredStream:
    """``create(stream=True)``'s :class:`openai.Stream`, metered: iterate it, use it as a context manager, or
    :meth:`close` it; every other attribute is the stream's. The reservation is committed when the stream ends, is
    closed, or raises."""

    def __init__(self, stream: openai.Stream[Any], settler: _StreamSettler) -> None:
        self._stream = stream
        self._settler = settler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            event = next(self._stream)
        except BaseException:  # StopIteration included: the stream is over
            self._settler.settle()
            raise
        self._settler.usage.observe(event)
        return event

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._settler.settle()

    def __enter__(self) -> MeteredStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncMeteredStream:
    """``create(stream=True)``'s :class:`openai.AsyncStream`, metered (see :class:`MeteredStream`)."""

    def __init__(self, stream: openai.AsyncStream[Any], settler: _StreamSettler) -> None:
        self._stream = stream
        self._settler = settler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self._stream.__anext__()
        except BaseException:  # StopAsyncIteration included
            self._settler.settle()
            raise
        self._settler.usage.observe(event)
        return event

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._settler.settle()

    async def __aenter__(self) -> AsyncMeteredStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class _Proxy:
    """Delegates every attribute it does not define to the wrapped object."""

    def __init__(self, wrapped: Any, meter: _Meter) -> None:
        self._wrapped = wrapped
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def __repr__(self) -> str:
        return f"<metered {self._wrapped!r}>"


class _Creator(_Proxy):
    """A resource whose ``create`` is metered (``endpoint``: ``"chat"``, ``"responses"`` or ``"embeddings"``)."""

    def __init__(self, wrapped: Any, meter: _Meter, endpoint: str) -> None:
        super().__init__(wrapped, meter)
        self._endpoint = endpoint

    def create(self, **kwargs: Any) -> Any:
        if kwargs.get("model") is None:  # the SDK raises its own error, or a stored prompt names the model
            return self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate, cap = meter.prepare(kwargs, self._endpoint)
        reservation = meter.acquire(key, estimate, cap)
        try:
            raw = self._wrapped.with_raw_response.create(**kwargs)
            result = raw.parse()
        except BaseException as error:
            meter.failed(reservation, error)
            raise
        if kwargs.get("stream"):  # the stream's usage comes later: its reservation stays open until then
            return MeteredStream(result, _StreamSettler(meter, reservation, raw.headers))
        meter.commit(reservation, result, raw.headers)
        return result


class _AsyncCreator(_Creator):
    async def create(self, **kwargs: Any) -> Any:
        if kwargs.get("model") is None:
            return await self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate, cap = meter.prepare(kwargs, self._endpoint)
        reservation = await meter.acquire_async(key, estimate, cap)
        try:
            raw = await self._wrapped.with_raw_response.create(**kwargs)
            result = raw.parse()  # a LegacyAPIResponse: parse() is not awaitable, even on the async client
            if inspect.isawaitable(result):
                result = await result
        except BaseException as error:
            meter.failed(reservation, error)
            raise
        if kwargs.get("stream"):
            return AsyncMeteredStream(result, _StreamSettler(meter, reservation, raw.headers))
        meter.commit(reservation, result, raw.headers)
        return result


class _Chat(_Proxy):
    def __init__(self, wrapped: Any, meter: _Meter, is_async: bool) -> None:
        super().__init__(wrapped, meter)
        self._async = is_async
        self._completions: _Creator | None = None

    @property
    def completions(self) -> Any:
        if self._completions is None:
            kind = _AsyncCreator if self._async else _Creator
            self._completions = kind(self._wrapped.completions, self._meter, "chat")
        return self._completions


class _Client(_Proxy):
    """A metered client: ``chat.completions``, ``responses`` and ``embeddings`` are metered, ``with_options`` /
    ``copy`` return metered copies, everything else is the client's."""

    def __init__(self, wrapped: Any, meter: _Meter, is_async: bool) -> None:
        super().__init__(wrapped, meter)
        self._async = is_async
        self._resources: dict[str, _Proxy] = {}

    def _resource(self, name: str) -> Any:
        proxy = self._resources.get(name)
        if proxy is None:
            if name == "chat":
                proxy = _Chat(self._wrapped.chat, self._meter, self._async)
            else:
                kind = _AsyncCreator if self._async else _Creator
                proxy = kind(getattr(self._wrapped, name), self._meter, name)
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

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        return _Client(self._wrapped.copy(*args, **kwargs), self._meter, self._async)

    with_options = copy


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
    the client.

    ``wait`` and ``timeout`` are passed to :meth:`~EnhancedModelRegistry.acquire`: by default a call over a limit
    raises :class:`~noa_ai_provider.errors.RateLimitExceeded` without being sent. ``estimate`` takes the keyword
    arguments of ``create`` and returns the input tokens to reserve (default: :func:`estimate_input_tokens`; a
    tokenizer such as tiktoken can be plugged in here). Raises ``TypeError`` when ``client`` has no
    ``chat.completions.create``.
    """
    create = getattr(getattr(getattr(client, "chat", None), "completions", None), "create", None)
    if create is None:
        raise TypeError(f"meter() needs an OpenAI client with chat.completions.create, got {type(client).__name__}")
    # `create` is wrapped (required-args checks) by a plain function: unwrap it to see whether it is a coroutine.
    is_async = inspect.iscoroutinefunction(inspect.unwrap(create))
    return cast(_C, _Client(client, _Meter(registry, wait, timeout, estimate), is_async))
