"""What the OpenAI and Anthropic integrations share: admitting a call, sending it with retries that go through the
registry, settling its reservation, and metered streams. No SDK is imported here; each integration passes in its
SDK's error classes and usage reader.

The rules every metered call follows:

- a reservation is taken before a request is sent, and every reservation is settled: committed with the usage
  the provider reported, failed at $0 when the call raised, or (a stream dropped unclosed) committed with what
  the stream had reported, from a short-lived thread;
- the SDK's own retries are turned off for metered calls and done here instead, with the client's
  ``max_retries``: each attempt is admitted by the registry (so a retry waits for its model's limits like any
  other call), each failed attempt counts a failed request at $0, and its ``retry-after`` cools the model down for
  every caller at once, not only for the caller that saw it;
- once the provider has answered, nothing here raises because the usage could not be recorded (an unpriced service
  tier, a store outage): the caller gets the response, the problem is logged at ERROR on
  ``noa_ai_provider.integrations`` and the reservation is given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from ..errors import RegistryError
from ..headers import read_rate_limit_headers
from ..registry import EnhancedModelRegistry
from ..reservation import Reservation
from .estimates import FIELDS, Estimate

__all__ = [
    "MAX_RETRY_AFTER",
    "AsyncMeteredStream",
    "ClientProxy",
    "Counts",
    "Meter",
    "MeteredStream",
    "Proxy",
    "Settler",
]

log = logging.getLogger("noa_ai_provider.integrations")

MAX_RETRY_AFTER = 60.0
"""A ``retry-after`` longer than this many seconds is not waited for: the error is raised at once (the model stays
cooled down for every caller until then)."""

_RETRIED_STATUS = (408, 409, 429)  # and every 5xx: what both SDKs retry by default


class Counts(dict[str, Any]):
    """Keyword arguments of :meth:`Reservation.commit`, as opposed to a provider's response or usage object (which
    the SDK's usage reader turns into them)."""


class Meter:
    """The registry, the options of one ``meter()`` call, and the SDK's pieces (its status and connection error
    classes, its usage reader). Shared by every proxy of that call; holds no state of its own."""

    __slots__ = ("connection_error", "estimate", "registry", "status_error", "timeout", "usage_of", "wait")

    def __init__(
        self,
        registry: EnhancedModelRegistry,
        *,
        wait: bool,
        timeout: float | None,
        estimate: Estimate,
        usage_of: Callable[[Any], dict[str, Any]],
        status_error: type[BaseException],
        connection_error: type[BaseException],
    ) -> None:
        if not isinstance(registry, EnhancedModelRegistry):
            raise TypeError(f"meter() needs an EnhancedModelRegistry, got {type(registry).__name__}")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be None or >= 0 seconds, got {timeout!r}")
        self.registry = registry
        self.wait = wait
        self.timeout = timeout
        self.estimate = estimate
        self.usage_of = usage_of
        self.status_error = status_error
        self.connection_error = connection_error

    def prepare(self, kwargs: dict[str, Any]) -> tuple[str, int]:
        """``(key, input estimate)`` of a request. One-shot iterables in its input fields become lists first (the
        estimate reads them; the SDK reads them again)."""
        for name in FIELDS:
            value = kwargs.get(name)
            if value is not None and not isinstance(value, str | list | tuple | Mapping):
                kwargs[name] = list(value)
        key = self.registry.resolve_key(str(kwargs["model"]))
        estimate = self.estimate(kwargs)
        if isinstance(estimate, bool) or not isinstance(estimate, int) or estimate < 0:
            raise TypeError(f"estimate must return a non-negative int, got {estimate!r}")
        return key, estimate

    # Sending ------------------------------------------------------------------------------------------------

    def send(
        self, key: str, estimate: int, cap: int, create: Callable[..., Any], kwargs: dict[str, Any], retries: int
    ) -> tuple[Reservation, Any, Any]:
        """Admit and send one call: ``(reservation, raw response, parsed result)``. ``create`` is the raw-response
        ``create`` of a client without retries; up to ``retries`` more attempts are made as the module says. The
        reservation is open on return; on an exception every reservation taken is settled."""
        reservation = self.registry.acquire(key, estimate, cap, wait=self.wait, timeout=self.timeout)
        attempt = 0
        while True:
            try:
                raw = create(**_attempt(kwargs, attempt))
                return reservation, raw, raw.parse()
            except BaseException as error:
                self.failed(reservation, error)
                delay = self.retry_delay(error, attempt, retries)
                if delay is None:
                    raise
            attempt += 1
            time.sleep(delay)
            reservation = self.registry.acquire(key, estimate, cap, wait=True, timeout=self.timeout)

    async def send_async(
        self, key: str, estimate: int, cap: int, create: Callable[..., Any], kwargs: dict[str, Any], retries: int
    ) -> tuple[Reservation, Any, Any]:
        """:meth:`send` on an event loop (``create`` returns an awaitable; so may the raw response's ``parse``)."""
        reservation = await self.registry.acquire_async(key, estimate, cap, wait=self.wait, timeout=self.timeout)
        attempt = 0
        while True:
            try:
                raw = await create(**_attempt(kwargs, attempt))
                result = raw.parse()
                if inspect.isawaitable(result):
                    result = await result
                return reservation, raw, result
            except BaseException as error:
                self.failed(reservation, error)
                delay = self.retry_delay(error, attempt, retries)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)
            reservation = await self.registry.acquire_async(key, estimate, cap, wait=True, timeout=self.timeout)

    def retry_delay(self, error: BaseException, attempt: int, retries: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after ``error``, or ``None`` when it is not retried.

        Retried, as the SDKs do: a connection error or timeout, and a 408, 409, 429 or 5xx response, unless the
        response says ``x-should-retry: false`` (``true`` retries any status). The wait is the response's
        ``retry-after-ms`` / ``retry-after`` when given (a value over :data:`MAX_RETRY_AFTER` is not retried),
        else an exponential backoff of 0.5 s doubling up to 8 s, with up to 25% jitter."""
        if attempt >= retries:
            return None
        if isinstance(error, self.status_error):
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None) or {}
            should = str(headers.get("x-should-retry", "")).lower()
            status = int(getattr(error, "status_code", 0) or 0)
            if should == "false" or (should != "true" and status not in _RETRIED_STATUS and status < 500):
                return None
            after = _retry_after(headers)
            if after is not None:
                return after if after <= MAX_RETRY_AFTER else None
        elif not isinstance(error, self.connection_error):
            return None
        return min(0.5 * 2.0**attempt, 8.0) * (1 - 0.25 * random.random())

    # Settling ---------------------------------------------------------------------------------------------

    def headers(self, key: str, headers: Mapping[str, str]) -> None:
        """Feed a response's rate-limit headers to the registry; never raises after a call was answered."""
        try:
            self.registry.update_rate_limits_from_headers(key, headers)
        except RegistryError:
            log.exception("metering %s: the response's rate-limit headers could not be applied", key)

    def commit(self, reservation: Reservation, usage: Any, headers: Mapping[str, str] | None) -> None:
        """Settle ``reservation`` with ``usage`` (a response or its usage, read with the SDK's usage reader;
        :class:`Counts`; or ``None``: nothing reported, a failed request), then apply
        ``headers``. Never raises a :class:`RegistryError`: a usage that cannot be recorded is logged at ERROR and
        the reservation given back."""
        try:
            if usage is None:
                reservation.fail()
            else:
                counts = usage if isinstance(usage, Counts) else self.usage_of(usage)
                reservation.commit(**counts)
        except RegistryError:
            log.exception(
                "metering %s: the call's usage could not be recorded; its reservation is released", reservation.key
            )
            if reservation.open:
                reservation.cancel()
        except BaseException:
            if reservation.open:
                reservation.cancel()
            raise
        finally:
            if headers is not None:
                self.headers(reservation.key, headers)

    def failed(self, reservation: Reservation, error: BaseException) -> None:
        """The call raised ``error`` before a response could be billed: a failed request at $0, and an error
        response's headers (``retry-after``, rate-limit counts) applied, so a 429 cools the model down."""
        try:
            reservation.fail()
        except RegistryError:
            log.exception("metering %s: a failed request could not be recorded", reservation.key)
            if reservation.open:
                reservation.cancel()
        if isinstance(error, self.status_error):
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None)
            if headers is not None:
                self.headers(reservation.key, headers)


def _attempt(kwargs: dict[str, Any], attempt: int) -> dict[str, Any]:
    # Tell the provider which attempt this is, as the SDK's own retry loop does (it cannot: its retries are off).
    if attempt == 0:
        return kwargs
    extra = dict(kwargs.get("extra_headers") or {})
    extra["x-stainless-retry-count"] = str(attempt)
    return {**kwargs, "extra_headers": extra}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    limits, _problems = read_rate_limit_headers(headers, time.time())
    return None if limits.retry_after is None else max(limits.retry_after, 0.0)


class Settler:
    """Settles one stream's reservation, once, with what the stream reported (``observer.report()``: a response or
    usage, :class:`Counts`, or ``None``), then applies the response's headers: after the commit, not when
    the stream opens, because a provider's count read while the reservation still holds its worst case would be
    offset against it and under-counted once the reservation shrinks to the real usage."""

    __slots__ = ("headers", "lock", "meter", "observer", "reservation")

    def __init__(self, meter: Meter, reservation: Reservation, headers: Mapping[str, str], observer: Any) -> None:
        self.meter = meter
        self.reservation = reservation
        self.headers: Mapping[str, str] | None = headers
        self.observer = observer
        self.lock = threading.Lock()

    @property
    def pending(self) -> bool:
        return self.headers is not None

    def settle(self) -> None:
        with self.lock:  # a stream closed by its thread while the collector settles it: once
            headers, self.headers = self.headers, None
        if headers is not None:
            self.meter.commit(self.reservation, self.observer.report(), headers)

    def settle_later(self) -> None:
        """Settle from a new thread: called by a stream's finalizer, which may run inside the registry's own
        locks (a collection can happen anywhere), so it must not take them itself."""
        if self.pending:
            # RuntimeError: the interpreter is shutting down; the reservation's own finalizer releases it.
            with contextlib.suppress(RuntimeError):
                threading.Thread(target=self.settle, name="noa-meter-settle", daemon=True).start()


class MeteredStream:
    """An SDK's ``Stream``, metered: iterate it, use it as a context manager, or :meth:`close` it; every other
    attribute is the stream's. The reservation is committed when the stream ends, is closed, raises, or is dropped
    unclosed (then from a short-lived thread)."""

    def __init__(self, stream: Any, settler: Settler) -> None:
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
        self._settler.observer.observe(event)
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

    def __del__(self) -> None:
        settler = getattr(self, "_settler", None)
        if settler is not None:
            settler.settle_later()


class AsyncMeteredStream:
    """An SDK's ``AsyncStream``, metered (see :class:`MeteredStream`)."""

    def __init__(self, stream: Any, settler: Settler) -> None:
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
        self._settler.observer.observe(event)
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

    def __del__(self) -> None:
        settler = getattr(self, "_settler", None)
        if settler is not None:
            settler.settle_later()


class Proxy:
    """Delegates every attribute it does not define to the wrapped object."""

    def __init__(self, wrapped: Any, meter: Meter) -> None:
        self._wrapped = wrapped
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def __repr__(self) -> str:
        return f"<metered {self._wrapped!r}>"


class ClientProxy(Proxy):
    """A metered client: a context manager (sync or async, as the client is) that closes the client and returns
    the metered one; ``copy`` / ``with_options`` return metered copies; every other attribute is the client's."""

    def __init__(self, wrapped: Any, meter: Meter, is_async: bool) -> None:
        super().__init__(wrapped, meter)
        self._async = is_async

    def _rewrapped(self, client: Any) -> Any:
        return type(self)(client, self._meter, self._async)

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        return self._rewrapped(self._wrapped.copy(*args, **kwargs))

    with_options = copy

    def __enter__(self) -> Any:
        self._wrapped.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._wrapped.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Any:
        await self._wrapped.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._wrapped.__aexit__(exc_type, exc, tb)


def is_coroutine(method: Any) -> bool:
    """Whether an SDK method is a coroutine function: the SDKs wrap ``create`` in a plain function (required-args
    checks), so it is unwrapped first."""
    return inspect.iscoroutinefunction(inspect.unwrap(method))


def without_retries(client: Any) -> tuple[Any, int]:
    """``(a copy of client that does not retry, the client's max_retries)``: metered calls retry here, through the
    registry. A client without ``with_options`` keeps its own retries (``(client, 0)``)."""
    retries = getattr(client, "max_retries", 0)
    with_options = getattr(client, "with_options", None)
    if not isinstance(retries, int) or retries <= 0 or with_options is None:
        return client, 0
    return with_options(max_retries=0), retries
