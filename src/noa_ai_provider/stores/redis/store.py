"""``RedisStore``: the store's state and operations in Redis, one script call each (see the package docstring)."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from ...cost import worst_case_cost
from ...errors import (
    BackendError,
    BudgetExceededError,
    ConfigError,
    InvalidUsageError,
    ModelNotFoundError,
    UnpricedModelError,
)
from ...headers import ProviderLimits
from ...ratelimit import REASONS
from ...reservation import CANCELLED, COMMITTED, EXPIRED, OPEN, Hold
from ...schemas import (
    MONEY_CONTEXT,
    BudgetStatus,
    ModelCost,
    ModelPerformanceMetrics,
    ModelUsageStats,
    RateLimitCheck,
    RateLimitConfig,
    UsageHistoryEntry,
    utc_from_timestamp,
)
from ..base import FAILED, Live, Recorded, RequestUsage, Store
from .connect import async_twin, clients_from_url, disconnect
from .follow import follow
from .outage import Outage
from .runner import ScriptRunner
from .wire import plain, text, usage_stats

__all__ = ["BACKEND", "RedisStore"]

_REPORTED = (
    ("requests_per_minute", "requests"),
    ("tokens_per_minute", "tokens"),
    ("input_tokens_per_minute", "input_tokens"),
    ("output_tokens_per_minute", "output_tokens"),
)
_EPOCH = date(1970, 1, 1)
_ZERO = Decimal(0)
_UNHELD = object()  # Hold.record of a reservation admitted while Redis was unreachable (on_backend_error="allow")
_QUEUED = "queued behind earlier waiters"  # (as the wait queue of one process says it)
BACKEND = "backend unavailable"
"""The ``reason`` (and ``RateLimitExceeded.limit``) of a refusal because Redis could not be reached
(``on_backend_error="deny"``)."""
_DENY_RETRY = 1.0  # seconds a "deny" refusal asks the caller to wait before trying again


class _Limits:
    # One model's limits as the scripts take them: (name, limit) pairs, "" for a shadow (a removed limit whose
    # window keeps counting), and whether cache reads count toward input limits.
    __slots__ = ("args", "count_cache_reads", "names")

    def __init__(self, rate_limit: RateLimitConfig | None, previous: _Limits | None) -> None:
        configured: dict[str, int] = {}
        if rate_limit is not None:
            configured = {name: getattr(rate_limit, name) for name in REASONS if getattr(rate_limit, name) is not None}
        names: dict[str, None] = dict.fromkeys(previous.names if previous is not None else ())
        names.update(dict.fromkeys(configured))
        self.names: tuple[str, ...] = tuple(name for name in REASONS if name in names)
        self.args: list[Any] = []
        for name in self.names:
            self.args += [name, configured.get(name, "")]
        self.count_cache_reads = rate_limit is None or rate_limit.count_cache_reads


class RedisStore(Store):
    """Live state in Redis, shared through ``namespace`` (see the module docstring). Thread-safe.

    ``client`` is a ``redis.Redis`` or ``redis.cluster.RedisCluster`` (a ``redis.asyncio`` twin is made for
    ``acquire_async`` from the same connection settings, or made by ``async_factory``). ``clock="server"`` (the
    default) takes every traffic operation's time from the server; ``"registry"`` from the registry's clock (tests).

    .. versionadded:: 0.2.0
    """

    remote = True

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "default",
        clock: str = "server",
        async_factory: Callable[[], Any] | None = None,
        url: str | None = None,
    ) -> None:
        if not isinstance(namespace, str) or not namespace or any(c in namespace for c in "{}"):
            raise ConfigError(f"namespace must be a non-empty string without braces, got {namespace!r}")
        if clock not in ("server", "registry"):
            raise ConfigError(f"clock must be 'server' or 'registry', got {clock!r}")
        self._client = client
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.namespace = namespace
        self.ns = "{noa:" + namespace + "}"
        self.url = url or f"redis store (namespace {namespace!r})"
        self._server_time = clock == "server"
        # The asyncio client is made per event loop (acquire_async), from the URL or the given client's settings.
        twin = async_factory if async_factory is not None else async_twin(client)
        self._scripts = ScriptRunner(client, self.ns, self.url, twin)
        self._lock = threading.Lock()  # guards the local maps below; never held during a round trip
        self._limits: dict[str, _Limits] = {}
        self._removed: dict[str, _Limits] = {}  # limits of removed models (their windows' names, for shadows)
        self._retired: dict[str, str] = {}  # models removed with retire=True -> currency
        self._open: dict[Hold, None] = {}  # this process's open reservations (their state turns "expired")
        self._collected: deque[Hold] = deque()  # reservations garbage-collected while open: released soon
        self._listeners: list[Callable[[str], None]] = []
        self._clock: Callable[[], float] = _no_clock
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-{os.urandom(6).hex()}-"
        self._version = 0
        self._closed = False
        self._outage = Outage(self._run, self.url, self._lock)  # records waiting for Redis (on_backend_error="allow")
        self._next_local_expiry = math.inf  # no reservation in self._open expires before this
        self._follower: threading.Thread | None = None  # hears other processes free capacity (while some wait)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """The store of ``redis://``, ``rediss://``, ``redis+sentinel://`` or ``redis+cluster://`` URLs. Query
        options ``namespace`` (default ``default``) and ``clock`` (``server`` or ``registry``) are the store's;
        the others go to redis-py (``ssl_ca_certs``, ``socket_timeout``...)."""
        made = clients_from_url(url)
        store = cls(
            made.client, namespace=made.namespace, clock=made.clock, async_factory=made.async_factory, url=made.url
        )
        # Its own client: disconnected when the store is closed or garbage-collected (a registry never closed).
        store._finalizer = weakref.finalize(store, disconnect, made.client)
        return store

    def __repr__(self) -> str:
        return f"<RedisStore {self.url}>"

    def bind(self, owner: object, clock: Callable[[], float]) -> None:
        """Serve ``owner`` with ``clock`` for bookkeeping (and for traffic with ``clock="registry"``). Several
        registries may share one Redis namespace; each binds a store of its own."""
        self._clock = clock

    @property
    def version(self) -> int:
        # What a registry's snapshot file holds under this store is definitions only: usage never makes it dirty.
        return 0

    def close(self) -> None:
        """Disconnect the client this store made from its URL (a client given to it stays the caller's)."""
        if self._closed:
            return
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()

    def after_fork(self) -> None:
        # A child must not share the parent's sockets: redis-py reconnects in a new pid; new ids for reservations.
        self._lock = threading.Lock()
        self._outage.lock = self._lock
        self._prefix = f"{os.getpid()}-{os.urandom(6).hex()}-"
        self._open = {}
        self._follower = None  # (the parent's thread did not come along)
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            pool.reset()

    def fork_locks(self) -> list[Any]:
        return [self._lock]

    def listen(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, key: str) -> None:
        for listener in self._listeners:
            listener(key)

    # ------------------------------------------------------------------ calling the script

    def _now_arg(self) -> str:
        return "" if self._server_time else repr(self._clock())

    def _run(self, op: str, *args: Any) -> Any:
        # One EVALSHA of the store's script; reservations garbage-collected while open go back first.
        if self._collected and op != "release":
            self._collect_garbage()
        return self._scripts.run(op, *args)

    def _pipeline(self) -> Any:
        return self._client.pipeline(transaction=False)

    def _base(self, key: str) -> str:
        return f"{self.ns}:m:{key}"

    def _model(self, key: str) -> _Limits:
        limits = self._limits.get(key)
        if limits is None:
            raise ModelNotFoundError(key)
        return limits

    def _new_id(self) -> str:
        return self._prefix + str(next(self._ids))

    def _collect_garbage(self) -> None:
        # Reservations garbage-collected while open (their holds go back now, one script each).
        while self._collected:
            hold = self._collected.popleft()
            if hold.state == OPEN:
                self._run("release", self._now_arg(), hold.handle, hold.key, "0")
                hold.state = CANCELLED
                self._drop(hold)

    def _drop(self, hold: Hold) -> None:
        with self._lock:
            self._open.pop(hold, None)

    def _expire_local(self, now: float | None = None) -> None:
        # This process's reservations past their expiry read "expired" (the server gives their holds back). Without
        # a server reading, the registry's clock (or, with the server's clock, this host's: only the local state
        # shown to callers depends on it, never what is counted).
        if now is None:
            now = time.time() if self._server_time else self._clock()
        if now < self._next_local_expiry:
            return
        with self._lock:
            due = [hold for hold in self._open if hold.expires_at <= now]
            self._next_local_expiry = min((h.expires_at for h in self._open if h.expires_at > now), default=math.inf)
            for hold in due:
                del self._open[hold]
                if hold.state == OPEN:
                    hold.state = EXPIRED
        for hold in due:
            self._notify(hold.key)

    # ------------------------------------------------------------------ models

    def define(self, key: str, rate_limit: RateLimitConfig | None, now: float) -> None:
        """Serve ``key`` with these limits. Usage the namespace holds for it (other processes', or this one's before
        it was removed) is its usage."""
        work = ("define", self._now_arg(), key)  # (the server's time, like every time the store keeps)
        try:
            self._run(*work)
        except BackendError as exc:
            if self.on_backend_error == "raise":
                raise
            self._outage.began(exc, self.on_backend_error)
            self._outage.queue(work)  # (only bookkeeping in Redis: sent when it answers again)
        with self._lock:
            self._limits[key] = _Limits(rate_limit, self._limits.get(key) or self._removed.get(key))
            self._retired.pop(key, None)
            self._removed.pop(key, None)
        self._notify(key)

    def forget(self, key: str, now: float, *, retire: str | None = None) -> None:
        """This registry no longer serves ``key``. Nothing in Redis changes: other processes may still serve the
        model (one process's config reload must not erase the fleet's usage), and its windows keep counting. With
        ``retire`` its usage stays in this registry's totals (:meth:`retired`)."""
        with self._lock:
            limits = self._limits.pop(key, None)
            if limits is None:
                return
            self._removed[key] = limits
            if retire is not None:
                self._retired[key] = retire
        self._notify(key)

    # ------------------------------------------------------------------ admission

    @staticmethod
    def _check_of(result: list[Any]) -> RateLimitCheck:
        if int(result[0]) == 1:
            return RateLimitCheck(allowed=True)
        reason = text(result[2])
        retry = text(result[3])
        return RateLimitCheck(
            allowed=False,
            reason=REASONS[reason][0] if reason in REASONS else _QUEUED if reason == "queued" else reason,
            retry_after=None if retry == "never" else float(retry),
        )

    def check(self, key: str, input_tokens: int, output_tokens: int) -> RateLimitCheck:
        limits = self._model(key)
        args = (key, input_tokens + output_tokens, input_tokens, output_tokens, *limits.args)
        try:
            result = self._run("check", self._now_arg(), *args)
        except BackendError as exc:
            if self.on_backend_error == "raise":
                raise
            self._outage.began(exc, self.on_backend_error)
            if self.on_backend_error == "deny":
                return RateLimitCheck(allowed=False, reason=BACKEND, retry_after=_DENY_RETRY)
            return RateLimitCheck(allowed=True)
        self._expire_local(float(result[1]))
        return self._check_of(result)

    def _reserve_args(
        self, key: str, input_tokens: int, output_tokens: int, cost: ModelCost | None, ttl: float, waiter: str
    ) -> tuple[list[Any], str]:
        limits = self._model(key)
        worst = plain(worst_case_cost(cost, input_tokens, output_tokens)) if cost is not None else ""
        ident = self._new_id()
        args = [self._now_arg(), ident, repr(ttl), worst, key, input_tokens + output_tokens, input_tokens]
        return [*args, output_tokens, waiter and self._prefix + waiter, *limits.args], ident

    def _reserved(
        self, result: list[Any], key: str, ident: str, cost: ModelCost | None, worst: str, waiting: bool = False
    ) -> Hold | RateLimitCheck:
        status = int(result[0])
        if status == 1:
            now, expires = float(result[1]), float(result[2])
            hold = Hold(key, self, ident, cost, now, expires)  # type: ignore[arg-type]
            hold.collected = self._collected.append
            with self._lock:
                self._open[hold] = None
                self._next_local_expiry = min(self._next_local_expiry, expires)
            return hold
        if status == 0:
            self._expire_local(float(result[1]))
            if waiting and self._follower is None:
                self._follow_freed()
            return self._check_of(result)
        if status == 3:
            raise UnpricedModelError(f"{key} has no price, so a budget cannot be checked; set one (0 if free)")
        scope, period = text(result[1]), text(result[2])
        limit, spent, reserved = (Decimal(text(v)) for v in result[3:6])
        raise BudgetExceededError(key, None if scope == "*" else scope, period, limit, spent, reserved, Decimal(worst))

    def reserve(
        self, key: str, input_tokens: int, output_tokens: int, cost: ModelCost | None, ttl: float, waiter: str = ""
    ) -> Hold | RateLimitCheck:
        """See :meth:`Store.reserve`. ``waiter`` (the wait queue's id of a caller that waits) leaves a claim when
        refused, so no other process takes capacity before it (see ``store.lua``: waiting across processes)."""
        args, ident = self._reserve_args(key, input_tokens, output_tokens, cost, ttl, waiter)
        try:
            result = self._send("reserve", *args)
        except BackendError as exc:
            return self._unreachable_reserve(exc, key, ident, cost, ttl)
        return self._reserved(result, key, ident, cost, args[3], bool(waiter))

    async def areserve(
        self, key: str, input_tokens: int, output_tokens: int, cost: ModelCost | None, ttl: float, waiter: str = ""
    ) -> Hold | RateLimitCheck:
        """:meth:`reserve` on the asyncio client: one round trip that never blocks the event loop."""
        if not self._scripts.can_async or self._collected or self._outage.queued:
            import asyncio

            return await asyncio.to_thread(self.reserve, key, input_tokens, output_tokens, cost, ttl, waiter)
        args, ident = self._reserve_args(key, input_tokens, output_tokens, cost, ttl, waiter)
        try:
            result = await self._scripts.arun("reserve", *args)
        except BackendError as exc:
            return self._unreachable_reserve(exc, key, ident, cost, ttl)
        return self._reserved(result, key, ident, cost, args[3], bool(waiter))

    def _follow_freed(self) -> None:
        # A thread that wakes this process's waiters when another process frees capacity (a commit, a cancel, an
        # expiry publish the model's key): started when a caller first waits; it holds the store only weakly.
        with self._lock:
            if self._follower is not None or self._closed:
                return
            self._follower = threading.Thread(
                target=follow, args=(weakref.ref(self), self._client, f"{self.ns}:freed"), daemon=True
            )
            self._follower.name = "noa-redis-freed"
            self._follower.start()

    def unclaim(self, key: str, waiter: str) -> None:
        with contextlib.suppress(BackendError):  # (unreachable: the claim lapses by itself within seconds)
            self._run("unclaim", self._now_arg(), key, self._prefix + waiter)

    # ------------------------------------------------------------------ when Redis cannot be reached

    def _unreachable_reserve(
        self, exc: BackendError, key: str, ident: str, cost: ModelCost | None, ttl: float
    ) -> Hold | RateLimitCheck:
        policy = self.on_backend_error
        if policy == "raise":
            raise exc
        self._outage.began(exc, policy)
        if policy == "deny":
            return RateLimitCheck(allowed=False, reason=BACKEND, retry_after=_DENY_RETRY)
        # "allow": admitted without holding anything in Redis; its commit is recorded (once, by this id) when Redis
        # answers again.
        now = self._clock()
        hold = Hold(key, _UNHELD, ident, cost, now, now + ttl)  # type: ignore[arg-type]
        return hold

    def _fallback(self, exc: BackendError, key: str, work: tuple[Any, ...], cost: Decimal) -> Recorded:
        # Under "allow": the record waits in this process (in order) until Redis answers; a provisional answer now.
        if self.on_backend_error != "allow":
            raise exc
        self._outage.began(exc, self.on_backend_error)
        return self._outage.keep(key, work, cost, self._clock())

    def _send(self, *work: Any) -> Any:
        # A write: what waited for Redis goes first, in order.
        if self._outage.queued:
            self._outage.flush()
        return self._run(*work)

    def _recorded(self, result: list[Any]) -> Recorded:
        events: list[tuple[str, dict[str, Any]]] = []
        values = [text(v) for v in result[4:]]
        for i in range(0, len(values), 5):
            event, scope, period, limit, spent = values[i : i + 5]
            payload = {"key": None if scope == "*" else scope, "period": period, "limit": Decimal(limit)}
            payload["spent"] = Decimal(spent)
            events.append((event, payload))
        self._version += 1
        return Recorded(Decimal(text(result[2])), events, float(result[1]), int(result[3]))

    def _recorded_for(self, key: str, result: list[Any]) -> Recorded:
        recorded = self._recorded(result)
        self._outage.seen(key, recorded.total)
        return recorded

    def _usage_args(self, key: str, usage: RequestUsage, cost: Decimal) -> list[Any]:
        limits = self._model(key)
        inp, out, success, cached, written = usage[:5]
        limited = inp if limits.count_cache_reads else inp - cached
        return [key, "1" if success else "0", plain(cost), inp, out, cached, written, limited, *limits.args]

    def settle(self, hold: Hold, usage: RequestUsage, cost: Decimal) -> Recorded | None:
        key = hold.key
        if hold.state == COMMITTED:
            return None
        if hold.state == CANCELLED:
            raise InvalidUsageError(f"reservation for {key} was cancelled; it cannot be committed")
        if key not in self._limits:
            self.release(hold)
            raise ModelNotFoundError(key)
        args = self._usage_args(key, usage, cost)
        op = "record" if hold.record is _UNHELD else "settle"  # admitted while Redis was away: recorded now, once
        try:
            result = self._send(op, self._now_arg(), hold.handle, *args)
        except BackendError as exc:
            recorded = self._fallback(exc, key, (op, self._now_arg(), hold.handle, *args), cost)
            hold.state = COMMITTED
            self._drop(hold)
            return recorded
        status = int(result[0])
        self._drop(hold)
        if status == 0:
            hold.state = COMMITTED
            return None
        if status == -1:
            hold.state = CANCELLED
            raise InvalidUsageError(f"reservation for {key} was cancelled; it cannot be committed")
        hold.state = COMMITTED
        self._notify(key)
        return self._recorded_for(key, result)

    def release(self, hold: Hold, *, failed: bool = False) -> Recorded | None:
        key = hold.key
        if hold.state != OPEN:
            return None
        if failed and key not in self._limits:
            self.release(hold)
            raise ModelNotFoundError(key)
        count = failed and hold.cost is not None  # an unpriced model's failure is never counted at $0
        if hold.record is _UNHELD:  # nothing held in Redis: only a failure to count
            hold.state = CANCELLED
            self._drop(hold)
            if not count:
                return None
            hold.state = COMMITTED
            return self.record(key, FAILED, _ZERO, ident=str(hold.handle))
        work = ("release", self._now_arg(), hold.handle, key, "1" if count else "0")
        try:
            result = self._send(*work)
        except BackendError as exc:
            recorded = self._fallback(exc, key, work, _ZERO)
            hold.state = COMMITTED if count else CANCELLED
            self._drop(hold)
            return recorded if count else None
        self._drop(hold)
        status = int(result[0])
        if status == 0:  # expired meanwhile (the server gave it back)
            if hold.state == OPEN:
                hold.state = EXPIRED
            return None
        hold.state = COMMITTED if status == 2 else CANCELLED
        self._notify(key)
        return self._recorded_for(key, result) if status == 2 else None

    def void(self, hold: Hold) -> None:
        hold.state = CANCELLED

    # ------------------------------------------------------------------ recording

    def record(self, key: str, usage: RequestUsage, cost: Decimal, *, ident: str | None = None) -> Recorded:
        args = self._usage_args(key, usage, cost)
        work = ("record", self._now_arg(), ident or self._new_id(), *args)
        try:
            result = self._send(*work)
        except BackendError as exc:
            return self._fallback(exc, key, work, cost)
        if int(result[0]) == 0:  # counted by an earlier send of this very call (redis-py retried it)
            total = self._safe(lambda: self._client.hget(self._base(key) + ":u", "cost"))
            return Recorded(Decimal(text(total or "0")), [], self._clock())
        return self._recorded_for(key, result)

    def undo(self, key: str, usage: RequestUsage, cost: Decimal, recorded: Recorded) -> bool:
        return False  # (only a journal needs it, and the Redis store keeps no journal)

    def touch(self, key: str, now: float) -> None:
        self._model(key)
        self._run("touch", self._now_arg(), key)

    def set_metrics(self, key: str, metrics: ModelPerformanceMetrics) -> None:
        self._model(key)
        self._run("metrics", repr(self._clock()), key, metrics.model_dump_json())

    def metrics(self, key: str) -> ModelPerformanceMetrics | None:
        self._model(key)
        text = self._safe(lambda: self._client.get(self._base(key) + ":metrics"))
        return None if text is None else ModelPerformanceMetrics.model_validate_json(text)

    def reset_usage(self, key: str, now: float) -> None:
        self._model(key)
        self._run("reset", self._now_arg(), key)

    # ------------------------------------------------------------------ reads

    def _safe(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except RedisError as exc:
            raise BackendError(f"{self.url}: Redis is unavailable: {exc}") from exc

    def _counters(self, keys: list[str]) -> list[dict[str, str]]:
        def read() -> list[Any]:
            pipe = self._pipeline()
            for key in keys:
                pipe.hgetall(self._base(key) + ":u")
            return list(pipe.execute())

        return [{text(k): text(v) for k, v in row.items()} for row in self._safe(read)]

    def live(self, keys: Iterable[str], currencies: dict[str, str]) -> dict[str, Live]:
        chosen = [key for key in keys if key in self._limits]
        if not chosen:
            return {}

        def read() -> list[Any]:
            pipe = self._pipeline()
            for key in chosen:
                pipe.hgetall(self._base(key) + ":u")
                pipe.get(self._base(key) + ":metrics")
            return list(pipe.execute())

        rows = self._safe(read)
        out = {}
        for i, key in enumerate(chosen):
            u = {text(k): text(v) for k, v in rows[2 * i].items()}
            metrics = rows[2 * i + 1]
            accessed = u.get("accessed")
            out[key] = Live(
                utc_from_timestamp(float(accessed)) if accessed else None,
                int(u.get("accesses", 0)),
                usage_stats(u, currencies.get(key, "USD"), self._clock()),
                None if metrics is None else ModelPerformanceMetrics.model_validate_json(metrics),
            )
        return out

    def history(self, keys: Iterable[str], since: date | None = None) -> list[UsageHistoryEntry]:
        chosen = [key for key in keys if key in self._limits]
        first = "-inf" if since is None else (since - _EPOCH).days

        def read() -> list[Any]:
            pipe = self._pipeline()
            for key in chosen:
                pipe.zrangebyscore(self._base(key) + ":days", first, "+inf")
                pipe.hgetall(self._base(key) + ":h")
            return list(pipe.execute())

        rows = self._safe(read)
        out = []
        for i, key in enumerate(chosen):
            days, fields = rows[2 * i], {text(k): text(v) for k, v in rows[2 * i + 1].items()}
            for day in sorted(int(text(d)) for d in days):
                get = fields.get
                out.append(
                    UsageHistoryEntry(
                        key=key,
                        date=_EPOCH + timedelta(days=day),
                        input_tokens=int(get(f"{day}:input", 0)),
                        output_tokens=int(get(f"{day}:output", 0)),
                        cached_input_tokens=int(get(f"{day}:cached", 0)),
                        cache_write_tokens=int(get(f"{day}:written", 0)),
                        requests=int(get(f"{day}:requests", 0)),
                        cost=Decimal(get(f"{day}:cost", "0")),
                    )
                )
        return out

    def usage_totals(self) -> dict[str, tuple[int, int, int, Decimal, int]]:
        keys = list(self._limits)
        return {
            key: (
                int(u.get("input", 0)),
                int(u.get("output", 0)),
                int(u.get("requests", 0)),
                Decimal(u.get("cost", "0")),
                int(u.get("accesses", 0)),
            )
            for key, u in zip(keys, self._counters(keys), strict=True)
        }

    def retired(self) -> tuple[dict[str, Decimal], int, int, int]:
        """Usage, as Redis holds it now, of the models this registry removed with ``retire``."""
        with self._lock:
            retired = dict(self._retired)
        costs: dict[str, Decimal] = {}
        counts = [0, 0, 0]
        for (key, currency), u in zip(retired.items(), self._counters(list(retired)), strict=True):
            del key
            costs[currency] = costs.get(currency, _ZERO) + Decimal(u.get("cost", "0"))
            counts[0] += int(u.get("input", 0))
            counts[1] += int(u.get("output", 0))
            counts[2] += int(u.get("requests", 0))
        return costs, counts[0], counts[1], counts[2]

    def window_totals(self, key: str) -> dict[str, int]:
        limits = self._model(key)
        values = self._run("totals", self._now_arg(), key, *limits.args)
        self._expire_local()
        return {text(values[i]): int(values[i + 1]) for i in range(0, len(values), 2)}

    def learned_limits(self, key: str) -> dict[str, int]:
        self._model(key)
        values = self._run("learned", self._now_arg(), key)
        return {text(values[i]): int(values[i + 1]) for i in range(0, len(values), 2)}

    def apply_report(self, key: str, report: ProviderLimits, now: float) -> None:
        limits = self._model(key)
        configured = dict(zip(limits.args[::2], limits.args[1::2], strict=True))
        groups: list[Any] = []
        for field_name, dim in _REPORTED:
            got = getattr(report, dim)
            if got is not None:
                limit = configured.get(field_name, "")
                stated = "" if got.limit is None else got.limit
                reset_at = repr(got.reset_at) if got.reset_at is not None else repr(now)
                groups += [field_name, limit, stated, got.remaining, reset_at]
        retry = repr(report.retry_after) if report.retry_after else ""
        self._run("report", self._now_arg(), key, retry, *groups)
        self._notify(key)

    # ------------------------------------------------------------------ budgets

    def set_budget(self, limit: Decimal, period: str, key: str | None, warn_at: Decimal, now: float) -> None:
        warn = plain(MONEY_CONTEXT.multiply(limit, warn_at))
        self._run("set_budget", self._now_arg(), key or "*", period, plain(limit), warn, plain(warn_at))

    def remove_budget(self, period: str, key: str | None) -> bool:
        return bool(self._run("remove_budget", self._now_arg(), key or "*", period))

    def budget_status(self, now: float) -> list[BudgetStatus]:
        values = self._run("budgets", self._now_arg())
        self._expire_local()
        out = []
        for i in range(0, len(values), 3):
            field, budget, warn_at = text(values[i]), text(values[i + 1]), text(values[i + 2])
            scope, _, period = field.rpartition("|")
            parts = budget.split("|")
            limit, spent, reserved = Decimal(parts[0]), Decimal(parts[5]), Decimal(parts[6])
            start = utc_from_timestamp(float(parts[3])) if parts[3] else None
            end = utc_from_timestamp(float(parts[4])) if parts[4] else None
            out.append(
                BudgetStatus(
                    key=None if scope == "*" else scope,
                    period=period,
                    limit=limit,
                    spent=spent,
                    reserved=reserved,
                    remaining=MONEY_CONTEXT.subtract(MONEY_CONTEXT.subtract(limit, spent), reserved),
                    warn_at=Decimal(warn_at),
                    period_start=start,
                    period_end=end,
                )
            )
        return out

    def restore(self, key: str, usage: ModelUsageStats, entry: Any, history: list[UsageHistoryEntry]) -> None:
        """Make ``key``'s usage, bookkeeping, metrics and daily history exactly a backup's (``import_from_json``):
        what the namespace counted for it before is replaced, for every registry sharing it."""
        self._model(key)
        from ... import cost as cost_module  # (read at call time: the history bound, as the memory store reads it)

        kept = sorted(history, key=lambda e: e.date)[-cost_module.MAX_HISTORY_DAYS :]
        accessed = entry.last_accessed.timestamp() if entry.last_accessed is not None else None
        args: list[Any] = [
            usage.total_input_tokens,
            usage.total_output_tokens,
            usage.total_cached_input_tokens,
            usage.total_cache_write_tokens,
            usage.request_count,
            usage.successful_requests,
            usage.failed_requests,
            plain(usage.total_cost),
            repr(usage.last_reset.timestamp()),
            entry.access_count,
            "" if accessed is None else repr(accessed),
        ]
        for day in kept:
            args += [(day.date - _EPOCH).days, day.input_tokens, day.output_tokens, day.cached_input_tokens]
            args += [day.cache_write_tokens, day.requests, plain(day.cost)]
        self._run("restore", repr(self._clock()), key, *args)
        if entry.performance_metrics is not None:
            self.set_metrics(key, entry.performance_metrics)

    # ------------------------------------------------------------------ operators

    def entry_count(self, key: str) -> int:
        """Entries held in the windows of ``key``, shadows included (memory checks, as the memory store's)."""
        self._model(key)
        return int(self._run("entries", self._now_arg(), key))

    def memory_usage(self, key: str) -> int:
        """Bytes Redis uses for the keys of model ``key`` in this namespace (``MEMORY USAGE`` summed)."""
        pattern = self._base(key).replace("{", "\\{").replace("}", "\\}") + ":*"

        def read() -> int:
            total = 0
            for name in self._client.scan_iter(match=pattern, count=1000):
                total += int(self._client.memory_usage(name, samples=0) or 0)
            return total

        return int(self._safe(read))


def _no_clock() -> float:
    raise RuntimeError("this store serves no registry yet (EnhancedModelRegistry binds it)")
