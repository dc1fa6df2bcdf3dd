"""Metered Anthropic clients: every ``messages.create`` and ``messages.stream`` call is admitted, billed and fed
back to an :class:`~noa_ai_provider.registry.EnhancedModelRegistry`.

::

    client = meter(anthropic.Anthropic(), registry)
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=[...])

Per call, in this order:

1. the request's ``model`` is resolved with :meth:`~EnhancedModelRegistry.resolve_key` (aliases, dated names,
   provider spellings); an unknown model raises :class:`~noa_ai_provider.errors.ModelNotFoundError` before anything
   is sent;
2. one request of ``estimate(request)`` input tokens plus ``max_tokens`` output tokens is reserved with
   :meth:`~EnhancedModelRegistry.acquire` (``acquire_async`` on an async client), waiting or raising
   :class:`~noa_ai_provider.errors.RateLimitExceeded` as ``wait`` / ``timeout`` say;
3. the call is sent through ``with_raw_response`` (so the response's headers can be read) on a copy of the client
   without the SDK's own retries; the caller gets what the plain method returns;
4. the reservation is committed with the response's usage (:func:`~noa_ai_provider.usage.usage_from_anthropic`:
   cache reads, 5-minute and 1-hour cache writes, service tier), then the response's rate-limit headers go to
   :meth:`~EnhancedModelRegistry.update_rate_limits_from_headers`;
5. an API error (any 4xx/5xx, which Anthropic does not bill) counts a failed request at $0
   (:meth:`Reservation.fail`) and its headers are applied too, so a 429's or 529's ``retry-after`` stops every
   caller of that model until then; any other exception (connection error, timeout, cancellation) also fails the
   reservation;
6. what the SDK would retry (a connection error, a 408, 409, 429, 529 or other 5xx; ``x-should-retry`` obeyed) is
   retried here, up to the client's ``max_retries``, each attempt admitted by the registry again (waiting for the
   model's limits and cooldown like any call) and counted; the wait is the response's ``retry-after-ms`` /
   ``retry-after`` (one over :data:`~noa_ai_provider.integrations.metering.MAX_RETRY_AFTER` seconds is raised at
   once), else the SDK's backoff. The last error propagates unchanged.

Once the provider has answered, a usage the registry cannot record (a service tier without a price, a store
outage) does not raise: the caller gets the response, the problem is logged at ERROR on
``noa_ai_provider.integrations``, and the reservation is given back (its windows keep the request).

A stream (``create(stream=True)`` or the ``messages.stream()`` helper) commits what it reported
(``message_start``'s usage updated by ``message_delta``'s cumulative counts) when it ends, is closed early, raises,
or (``create(stream=True)``) is dropped unclosed, then from a short-lived thread; a stream closed before
``message_start`` counts a failed request. A reservation taken by this module is never left open.

Not metered (delegated unchanged, with the SDK's own retries): ``messages.with_raw_response``,
``messages.with_streaming_response``, ``messages.parse``, ``messages.count_tokens``, ``messages.batches``, ``beta``
and every other resource.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

import anthropic

from ..registry import EnhancedModelRegistry
from ..reservation import Reservation
from ..usage import usage_from_anthropic
from .estimates import Estimate, estimate_characters, tokenizer_estimate
from .metering import (
    AsyncMeteredStream,
    ClientProxy,
    Meter,
    MeteredStream,
    Proxy,
    Settler,
    is_coroutine,
    without_retries,
)

__all__ = ["Estimate", "estimate_input_tokens", "meter", "tokenizer_estimate"]

_C = TypeVar("_C")

_MEDIA_TOKENS = 1_600
"""What an inline (base64) image or document counts for: ~1,600 tokens, a typical image; the encoded bytes
themselves would count ~100x too many."""


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """The default input estimate: a quarter of the characters of ``system``, ``messages`` and ``tools``, rounded
    up. Text counts its characters (a message's role too); a tool its JSON; an inline image or document a fixed
    ~1,600 tokens.

    >>> estimate_input_tokens({"system": "Be brief.", "messages": [{"role": "user", "content": "Hello there"}]})
    6

    .. versionadded:: 0.2.0
    """
    return estimate_characters(request, media_tokens=_MEDIA_TOKENS)


def _metered(kwargs: Mapping[str, Any]) -> bool:
    # Without these the SDK raises its own TypeError: let it, with nothing reserved.
    return "model" in kwargs and "max_tokens" in kwargs


class _StreamUsage:
    """A stream's usage as reported so far: ``message_start``'s, updated by each ``message_delta`` (whose counts
    are cumulative totals, optional ones missing when unchanged)."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: dict[str, Any] | None = None

    def observe(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            usage = event.message.usage
            self.usage = usage.to_dict() if hasattr(usage, "to_dict") else dict(usage)
        elif kind == "message_delta" and self.usage is not None:
            delta = event.usage
            for name in ("output_tokens", "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                value = getattr(delta, name, None)
                if value is not None:
                    self.usage[name] = value

    def report(self) -> Any:
        return self.usage


def _snapshot(stream: Any) -> Any:
    """The helper's accumulated message (``message_start`` updated by ``message_delta``), ``None`` before
    ``message_start`` (``current_message_snapshot`` asserts it exists)."""
    try:
        return stream.current_message_snapshot
    except AssertionError:
        return None


class _StreamManager:
    """What the sync and async ``messages.stream()`` managers share: the request, prepared at once (an unknown
    model raises before anything is sent), and the reservation taken on entering."""

    def __init__(self, meter: Meter, sender: Any, retries: int, kwargs: dict[str, Any]) -> None:
        self._meter = meter
        self._kwargs = kwargs
        self._key, self._estimate = meter.prepare(kwargs)
        self._max_tokens = int(kwargs["max_tokens"])
        self._reservation: Reservation | None = None
        self._entered: _Entered | None = None
        # The helper is entered on the client's copy without retries (its request is sent on entering): a refused
        # or failed entry is retried by Meter.send, through the registry.
        self._sender = sender
        self._retries = retries

    def _leaving(self) -> tuple[Reservation | None, _Entered]:
        reservation, self._reservation = self._reservation, None
        assert self._entered is not None, "left a messages.stream() that was not entered"
        return reservation, self._entered

    def _settle(self, reservation: Reservation | None, entered: _Entered) -> None:
        if reservation is not None:
            self._meter.commit(reservation, _snapshot(entered.stream), entered.stream.response.headers)


class MeteredMessageStreamManager(_StreamManager):
    """``messages.stream(...)``, metered: entering reserves and sends, leaving commits what the stream reported.
    The object entered is the SDK's own :class:`anthropic.lib.streaming.MessageStream`."""

    def __enter__(self) -> Any:
        reservation, entered, _ = self._meter.send(
            self._key, self._estimate, self._max_tokens, _opener(self._sender), self._kwargs, self._retries
        )
        self._reservation, self._entered = reservation, entered
        return entered.stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        reservation, entered = self._leaving()
        try:
            entered.manager.__exit__(exc_type, exc, tb)
        finally:
            self._settle(reservation, entered)


class AsyncMeteredMessageStreamManager(_StreamManager):
    """``messages.stream(...)`` of an async client, metered (see :class:`MeteredMessageStreamManager`). The SDK's
    manager is made on entering (it holds the request's coroutine, which must not be left unawaited)."""

    async def __aenter__(self) -> Any:
        reservation, entered, _ = await self._meter.send_async(
            self._key, self._estimate, self._max_tokens, _async_opener(self._sender), self._kwargs, self._retries
        )
        self._reservation, self._entered = reservation, entered
        return entered.stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        reservation, entered = self._leaving()
        try:
            await entered.manager.__aexit__(exc_type, exc, tb)
        finally:
            self._settle(reservation, entered)


class _Entered:
    """An entered ``messages.stream()`` helper, shaped like a raw response for :meth:`Meter.send`: ``parse()``
    returns itself (the usage comes at the end of the stream)."""

    __slots__ = ("manager", "stream")

    def __init__(self, manager: Any, stream: Any) -> None:
        self.manager = manager
        self.stream = stream

    def parse(self) -> _Entered:
        return self


def _opener(messages: Any) -> Any:
    def open_stream(**kwargs: Any) -> _Entered:
        manager = messages.stream(**kwargs)
        return _Entered(manager, manager.__enter__())

    return open_stream


def _async_opener(messages: Any) -> Any:
    async def open_stream(**kwargs: Any) -> _Entered:
        manager = messages.stream(**kwargs)
        return _Entered(manager, await manager.__aenter__())

    return open_stream


class _Messages(Proxy):
    def __init__(self, wrapped: Any, meter: Meter, sender: Any, retries: int) -> None:
        super().__init__(wrapped, meter)
        self._sender = sender
        self._create = sender.with_raw_response.create
        self._retries = retries

    def create(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate = meter.prepare(kwargs)
        reservation, raw, result = meter.send(
            key, estimate, int(kwargs["max_tokens"]), self._create, kwargs, self._retries
        )
        if kwargs.get("stream"):  # the stream's usage comes later: its reservation stays open until then
            return MeteredStream(result, Settler(meter, reservation, raw.headers, _StreamUsage()))
        meter.commit(reservation, result, raw.headers)
        return result

    def stream(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return self._wrapped.stream(**kwargs)
        return MeteredMessageStreamManager(self._meter, self._sender, self._retries, kwargs)


class _AsyncMessages(_Messages):
    async def create(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return await self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate = meter.prepare(kwargs)
        cap = int(kwargs["max_tokens"])
        reservation, raw, result = await meter.send_async(key, estimate, cap, self._create, kwargs, self._retries)
        if kwargs.get("stream"):
            return AsyncMeteredStream(result, Settler(meter, reservation, raw.headers, _StreamUsage()))
        meter.commit(reservation, result, raw.headers)
        return result

    def stream(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return self._wrapped.stream(**kwargs)
        return AsyncMeteredMessageStreamManager(self._meter, self._sender, self._retries, kwargs)


class _Client(ClientProxy):
    """A metered client: ``messages`` is metered, ``with_options`` / ``copy`` / ``with_middleware`` return metered
    copies, everything else is the client's."""

    def __init__(self, wrapped: Any, meter: Meter, is_async: bool) -> None:
        super().__init__(wrapped, meter, is_async)
        self._messages: _Messages | None = None

    @property
    def messages(self) -> Any:
        if self._messages is None:
            sender, retries = without_retries(self._wrapped)
            kind = _AsyncMessages if self._async else _Messages
            self._messages = kind(self._wrapped.messages, self._meter, sender.messages, retries)
        return self._messages

    def with_middleware(self, *middleware: Any) -> Any:
        return self._rewrapped(self._wrapped.with_middleware(*middleware))


def meter(
    client: _C,
    registry: EnhancedModelRegistry,
    *,
    wait: bool = False,
    timeout: float | None = None,
    estimate: Estimate | None = None,
) -> _C:
    """``client`` (an :class:`anthropic.Anthropic` or :class:`anthropic.AsyncAnthropic`, or a Bedrock / Vertex /
    Foundry client with the same ``messages``) with its ``messages.create`` and ``messages.stream`` metered by
    ``registry`` (see the module's documentation); the object returned has the client's interface and is typed as
    the client. ``client`` itself is left unchanged.

    ``wait`` and ``timeout`` are passed to :meth:`~EnhancedModelRegistry.acquire`: by default a call over a limit
    raises :class:`~noa_ai_provider.errors.RateLimitExceeded` without being sent. ``estimate`` takes the keyword
    arguments of ``messages.create`` and returns the input tokens to reserve (default:
    :func:`estimate_input_tokens`, or :func:`tokenizer_estimate` over a tokenizer's ``encode``). Raises
    ``TypeError`` when ``client`` has no ``messages.create`` or ``registry`` is not a registry.

    .. versionadded:: 0.2.0
    """
    messages = getattr(client, "messages", None)
    create = getattr(messages, "create", None)
    if create is None:
        raise TypeError(f"meter() needs an Anthropic client with messages.create, got {type(client).__name__}")
    is_async = is_coroutine(create)
    core = Meter(
        registry,
        wait=wait,
        timeout=timeout,
        estimate=estimate or estimate_input_tokens,
        usage_of=usage_from_anthropic,
        status_error=anthropic.APIStatusError,
        connection_error=anthropic.APIConnectionError,
    )
    return cast(_C, _Client(client, core, is_async))
