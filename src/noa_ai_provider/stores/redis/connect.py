"""How the Redis store reaches Redis: its clients made from a URL (``redis://``, ``rediss://``,
``redis+sentinel://``, ``redis+cluster://``), the asyncio twin of a client, and their disconnection. The URL a
message or ``repr`` shows never holds a password."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import redis.asyncio
from redis.exceptions import RedisClusterException, RedisClusterUnreachableError, RedisError

from ...errors import BackendError, ConfigError

__all__ = ["Clients", "async_twin", "clients_from_url", "disconnect", "keeper"]


class Clients(NamedTuple):
    """What a URL makes: the client, a maker of its asyncio twin, the store's options, the URL to show."""

    client: Any
    async_factory: Callable[[], Any]
    namespace: str
    clock: str
    url: str


def clients_from_url(url: str) -> Clients:
    """The clients of a Redis URL. Query options ``namespace`` and ``clock`` are the store's; the others go to
    redis-py. Raises :class:`ConfigError` (without the password) for a URL that cannot be used, and
    :class:`BackendError` when a cluster (which is reached at once, to learn its slots) has no reachable node."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    # The URL as messages and repr show it: without a password (in the netloc or as a query option).
    shown = {k: ("***" if k == "password" else v) for k, v in options.items()}
    safe = parts._replace(
        netloc=parts.netloc.rpartition("@")[2], query="&".join(f"{k}={v}" for k, v in shown.items())
    ).geturl()
    namespace = options.pop("namespace", "default")
    clock = options.pop("clock", "server")
    rest = "&".join(f"{k}={v}" for k, v in options.items())
    client: Any
    async_factory: Callable[[], Any]
    try:
        if scheme in ("redis", "rediss"):
            target = parts._replace(query=rest).geturl()
            client = redis.Redis.from_url(target)
            async_factory = partial(redis.asyncio.Redis.from_url, target)
        elif scheme == "redis+cluster":
            target = parts._replace(scheme="redis", query=rest).geturl()
            client = redis.cluster.RedisCluster.from_url(target)
            async_factory = partial(redis.asyncio.RedisCluster.from_url, target)
        elif scheme == "redis+sentinel":
            client, async_factory = sentinel_clients(parts, options)
        else:
            raise ConfigError("not a Redis URL")
    except ConfigError as exc:
        raise ConfigError(f"backend {safe!r}: {exc}") from None
    except RedisClusterUnreachableError as exc:  # an outage, not a bad URL: the caller may retry
        raise BackendError(f"{safe}: Redis is unavailable: {redacted(str(exc), url)}") from None
    except (ValueError, RedisError, RedisClusterException) as exc:
        raise ConfigError(f"backend {safe!r}: {redacted(str(exc), url)}") from None
    return Clients(client, async_factory, namespace, clock, safe)


def redacted(message: str, url: str) -> str:
    # A client library's message may quote the URL: never with its password.
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    for secret in (password, unquote(password), *(v for k, v in parse_qsl(parts.query) if k == "password")):
        if secret:
            message = message.replace(secret, "***")
    return message


def disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):  # (at exit or in a collection: nothing may escape)
        client.close()
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()


async def keeper(factory: Callable[[], Any]) -> AsyncIterator[Any]:
    # Yields an asyncio client and closes it when the event loop shuts its async generators down.
    client = factory()
    try:
        yield client
    finally:
        await client.aclose()


def sentinel_clients(parts: Any, options: dict[str, str]) -> tuple[Any, Any]:
    # redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]: the master the sentinels name.
    from redis.sentinel import Sentinel

    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        nodes.append((host or item, int(port) if port else 26379))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError("a redis+sentinel:// URL names the service: redis+sentinel://host:26379/mymaster/0")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    kwargs: dict[str, Any] = {"db": db}
    if password:
        kwargs["password"] = password
    kwargs.update(redis_options(options))
    # The sentinels get the password and the timeouts too (redis-py copies no option to them once sentinel_kwargs
    # is given).
    sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith("socket_") or k == "password"} or None
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs, **kwargs)
    master = sentinel.master_for(service)

    def async_master() -> Any:
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        return AsyncSentinel(nodes, sentinel_kwargs=sentinel_kwargs, **kwargs).master_for(service)

    return master, async_master


def redis_options(options: dict[str, str]) -> dict[str, Any]:
    # Query options of a redis+sentinel:// URL for redis-py (the rest of the URL forms pass them to from_url).
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name in ("socket_timeout", "socket_connect_timeout", "health_check_interval"):
            out[name] = float(value)
        elif name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "username", "client_name"):
            out[name] = value
        elif name == "ssl":
            out[name] = value.lower() in ("1", "true", "yes")
        else:
            raise ConfigError(f"redis+sentinel:// URL: unknown option {name!r}")
    return out


def async_twin(client: Any) -> Callable[[], Any] | None:
    # An asyncio client with the settings of a given redis.Redis (None for others: acquire_async then runs the
    # synchronous call in a worker thread).
    if type(client) is not redis.Redis:
        return None
    kwargs = dict(client.connection_pool.connection_kwargs)
    allowed = ("host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout", "client_name")
    settings = {k: v for k, v in kwargs.items() if k in allowed}
    if "host" not in settings and "path" in kwargs:
        return None  # (a unix socket: the worker-thread path)
    return partial(redis.asyncio.Redis, **settings)
