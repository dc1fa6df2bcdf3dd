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
3. the call is sent (through ``with_raw_response``, so the response's headers can be read; the caller gets what the
   plain method returns);
4. the reservation is committed with the response's usage (:func:`~noa_ai_provider.usage.usage_from_anthropic`:
   cache reads, 5-minute and 1-hour cache writes, service tier), then the response's rate-limit headers go to
   :meth:`~EnhancedModelRegistry.update_rate_limits_from_headers`;
5. an API error (any 4xx/5xx, which Anthropic does not bill) counts a failed request at $0
   (:meth:`Reservation.fail`) and its headers are applied too, so a 429's or 529's ``retry-after`` stops every
   caller of that model until then; any other exception (connection error, timeout, cancellation) also fails the
   reservation, and the exception propagates unchanged.

A stream (``create(stream=True)`` or the ``messages.stream()`` helper) commits what it reported
(``message_start``'s usage updated by ``message_delta``'s cumulative counts) when it ends, is closed early or
raises; a stream closed before ``message_start`` counts a failed request. No reservation is left open by a call
through this module, whatever happens, except a stream that is dropped without being closed or exhausted (the
registry releases it when it is garbage-collected, with a ``ResourceWarning``).

Not metered (delegated unchanged): ``messages.with_raw_response``, ``messages.with_streaming_response``,
``messages.parse``, ``messages.count_tokens``, ``messages.batches``, ``beta`` and every other resource. The SDK's
own retries (``max_retries``, 2 by default) happen inside one metered call: only the last attempt's headers are
seen.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

import anthropic

from ..errors import RegistryError
from ..registry import EnhancedModelRegistry
from ..reservation import Reservation
from ..usage import usage_from_anthropic

__all__ = ["estimate_input_tokens", "meter"]

_C = TypeVar("_C")

Estimate = Callable[[Mapping[str, Any]], int]
"""The input-token estimate of a request, from the keyword arguments of ``messages.create``."""

_IMAGE_CHARS = 1_600 * 4
"""What an inline (base64) image or document counts for, in characters: ~1,600 tokens, a typical image; the
encoded bytes themselves would count ~100x too many."""


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """The default input estimate: a quarter of the characters of ``system``, ``messages`` and ``tools``, rounded
    up. Text counts its characters (a message's role too); a tool its JSON; an inline image or document a fixed
    ~1,600 tokens.

    >>> estimate_input_tokens({"system": "Be brief.", "messages": [{"role": "user", "content": "Hello there"}]})
    6
    """
    chars = _chars(request.get("system")) + _chars(request.get("messages"))
    for tool in request.get("tools") or ():
        chars += len(json.dumps(tool, default=str, separators=(",", ":")))
    return -(-chars // 4)


def _chars(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        source = value.get("source")
        if isinstance(source, Mapping) and source.get("type") == "base64":
            return _IMAGE_CHARS
        return sum(_chars(item) for name, item in value.items() if name not in ("type", "cache_control"))
    if isinstance(value, list | tuple):
        return sum(_chars(item) for item in value)
    if isinstance(value, int | float):
        return len(str(value))
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

    def prepare(self, kwargs: dict[str, Any]) -> tuple[str, int, int]:
        """``(key, input estimate, max_tokens)`` of a request; one-shot iterables in it become lists (the estimate
        reads them, the SDK reads them again)."""
        for name in ("messages", "system", "tools"):
            value = kwargs.get(name)
            if value is not None and not isinstance(value, str | list | tuple | Mapping):
                kwargs[name] = list(value)
        key = self.registry.resolve_key(str(kwargs["model"]))
        estimate = self.estimate(kwargs)
        if isinstance(estimate, bool) or not isinstance(estimate, int) or estimate < 0:
            raise TypeError(f"estimate must return a non-negative int, got {estimate!r}")
        return key, estimate, int(kwargs["max_tokens"])

    def acquire(self, key: str, estimate: int, max_tokens: int) -> Reservation:
        return self.registry.acquire(key, estimate, max_tokens, wait=self.wait, timeout=self.timeout)

    async def acquire_async(self, key: str, estimate: int, max_tokens: int) -> Reservation:
        return await self.registry.acquire_async(key, estimate, max_tokens, wait=self.wait, timeout=self.timeout)

    def headers(self, key: str, headers: Mapping[str, str]) -> None:
        self.registry.update_rate_limits_from_headers(key, headers)

    def commit(self, reservation: Reservation, usage: Any, headers: Mapping[str, str] | None) -> None:
        """Commit ``usage`` (a message, its usage, or ``None``: nothing reported, a failed request), then apply
        ``headers``. The reservation is settled whatever raises."""
        try:
            if usage is None:
                reservation.fail()
            else:
                reservation.commit(**usage_from_anthropic(usage))
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
        if isinstance(error, anthropic.APIStatusError):
            self.headers(reservation.key, error.response.headers)


def _metered(kwargs: Mapping[str, Any]) -> bool:
    # Without these the SDK raises its own TypeError: let it, with nothing reserved.
    return "model" in kwargs and "max_tokens" in kwargs


class _Usage:
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


class _StreamSettler:
    """Settles a stream's reservation once, with what the stream reported."""

    __slots__ = ("meter", "reservation", "usage")

    def __init__(self, meter: _Meter, reservation: Reservation) -> None:
        self.meter = meter
        self.reservation = reservation
        self.usage = _Usage()

    def settle(self) -> None:
        if self.reservation.open:
            self.meter.commit(self.reservation, self.usage.usage, None)


class MeteredStream:
    """``create(stream=True)``'s :class:`anthropic.Stream`, metered: iterate it, use it as a context manager, or
    :meth:`close` it; every other attribute is the stream's. The reservation is committed when the stream ends, is
    closed, or raises."""

    def __init__(self, stream: anthropic.Stream[Any], settler: _StreamSettler) -> None:
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
    """``create(stream=True)``'s :class:`anthropic.AsyncStream`, metered (see :class:`MeteredStream`)."""

    def __init__(self, stream: anthropic.AsyncStream[Any], settler: _StreamSettler) -> None:
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


def _snapshot(stream: Any) -> Any:
    """The helper's accumulated message (``message_start`` updated by ``message_delta``), ``None`` before
    ``message_start`` (``current_message_snapshot`` asserts it exists)."""
    try:
        return stream.current_message_snapshot
    except AssertionError:
        return None


class MeteredMessageStreamManager:
    """``messages.stream(...)``, metered: entering reserves and sends, leaving commits what the stream reported.
    The object entered is the SDK's own :class:`anthropic.lib.streaming.MessageStream`."""

    def __init__(self, meter: _Meter, messages: Any, kwargs: dict[str, Any]) -> None:
        self._meter = meter
        self._messages = messages
        self._kwargs = kwargs
        self._key, self._estimate, self._max_tokens = meter.prepare(kwargs)
        self._manager: Any = None
        self._stream: Any = None
        self._reservation: Reservation | None = None

    def __enter__(self) -> Any:
        reservation = self._meter.acquire(self._key, self._estimate, self._max_tokens)
        try:
            self._manager = self._messages.stream(**self._kwargs)
            self._stream = self._manager.__enter__()
        except BaseException as error:
            self._meter.failed(reservation, error)
            raise
        self._reservation = reservation
        return self._stream

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        reservation, self._reservation = self._reservation, None
        try:
            self._manager.__exit__(exc_type, exc, tb)
        finally:
            if reservation is not None:
                self._meter.commit(reservation, _snapshot(self._stream), self._stream.response.headers)


class AsyncMeteredMessageStreamManager:
    """``messages.stream(...)`` of an async client, metered (see :class:`MeteredMessageStreamManager`). The SDK's
    manager is made on entering (it holds the request's coroutine, which must not be left unawaited)."""

    def __init__(self, meter: _Meter, messages: Any, kwargs: dict[str, Any]) -> None:
        self._meter = meter
        self._messages = messages
        self._kwargs = kwargs
        self._key, self._estimate, self._max_tokens = meter.prepare(kwargs)
        self._manager: Any = None
        self._stream: Any = None
        self._reservation: Reservation | None = None

    async def __aenter__(self) -> Any:
        reservation = await self._meter.acquire_async(self._key, self._estimate, self._max_tokens)
        try:
            self._manager = self._messages.stream(**self._kwargs)
            self._stream = await self._manager.__aenter__()
        except BaseException as error:
            self._meter.failed(reservation, error)
            raise
        self._reservation = reservation
        return self._stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        reservation, self._reservation = self._reservation, None
        try:
            await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            if reservation is not None:
                self._meter.commit(reservation, _snapshot(self._stream), self._stream.response.headers)


class _Proxy:
    """Delegates every attribute it does not define to the wrapped object."""

    def __init__(self, wrapped: Any, meter: _Meter) -> None:
        self._wrapped = wrapped
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def __repr__(self) -> str:
        return f"<metered {self._wrapped!r}>"


class _Messages(_Proxy):
    def create(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate, max_tokens = meter.prepare(kwargs)
        reservation = meter.acquire(key, estimate, max_tokens)
        try:
            raw = self._wrapped.with_raw_response.create(**kwargs)
            result = raw.parse()
        except BaseException as error:
            meter.failed(reservation, error)
            raise
        if kwargs.get("stream"):
            meter.headers(key, raw.headers)  # the stream's usage comes later: its reservation stays open until then
            return MeteredStream(result, _StreamSettler(meter, reservation))
        meter.commit(reservation, result, raw.headers)
        return result

    def stream(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return self._wrapped.stream(**kwargs)
        return MeteredMessageStreamManager(self._meter, self._wrapped, kwargs)


class _AsyncMessages(_Proxy):
    async def create(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return await self._wrapped.create(**kwargs)
        meter = self._meter
        key, estimate, max_tokens = meter.prepare(kwargs)
        reservation = await meter.acquire_async(key, estimate, max_tokens)
        try:
            raw = await self._wrapped.with_raw_response.create(**kwargs)
            result = await raw.parse()
        except BaseException as error:
            meter.failed(reservation, error)
            raise
        if kwargs.get("stream"):
            meter.headers(key, raw.headers)
            return AsyncMeteredStream(result, _StreamSettler(meter, reservation))
        meter.commit(reservation, result, raw.headers)
        return result

    def stream(self, **kwargs: Any) -> Any:
        if not _metered(kwargs):
            return self._wrapped.stream(**kwargs)
        return AsyncMeteredMessageStreamManager(self._meter, self._wrapped, kwargs)


class _Client(_Proxy):
    """A metered client: ``messages`` is metered, ``with_options`` / ``copy`` / ``with_middleware`` return metered
    copies, everything else is the client's."""

    def __init__(self, wrapped: Any, meter: _Meter, is_async: bool) -> None:
        super().__init__(wrapped, meter)
        self._async = is_async
        self._messages: _Proxy | None = None

    @property
    def messages(self) -> Any:
        if self._messages is None:
            kind = _AsyncMessages if self._async else _Messages
            self._messages = kind(self._wrapped.messages, self._meter)
        return self._messages

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        return _Client(self._wrapped.copy(*args, **kwargs), self._meter, self._async)

    with_options = copy

    def with_middleware(self, *middleware: Any) -> Any:
        return _Client(self._wrapped.with_middleware(*middleware), self._meter, self._async)


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
    the client.

    ``wait`` and ``timeout`` are passed to :meth:`~EnhancedModelRegistry.acquire`: by default a call over a limit
    raises :class:`~noa_ai_provider.errors.RateLimitExceeded` without being sent. ``estimate`` takes the keyword
    arguments of ``messages.create`` and returns the input tokens to reserve (default:
    :func:`estimate_input_tokens`). Raises ``TypeError`` when ``client`` has no ``messages.create``.
    """
    messages = getattr(client, "messages", None)
    create = getattr(messages, "create", None)
    if create is None:
        raise TypeError(f"meter() needs an Anthropic client with messages.create, got {type(client).__name__}")
    # `create` is wrapped (required-args checks) by a plain function: unwrap it to see whether it is a coroutine.
    is_async = inspect.iscoroutinefunction(inspect.unwrap(create))
    return cast(_C, _Client(client, _Meter(registry, wait, timeout, estimate), is_async))
