"""``ScriptRunner``: the one script of a namespace, called with ``EVALSHA`` on the sync client and on a per-loop
asyncio client, loaded on first use and again after ``NOSCRIPT`` (a restart, a failover). redis-py's errors become
the registry's here, the same way on both paths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from ...errors import BackendError, RegistryError
from .connect import keeper
from .wire import argv, script

__all__ = ["ScriptRunner"]

_REFUSED = ("OOM", "READONLY", "MASTERDOWN")  # Redis is there but will not take writes: an outage to the caller


class ScriptRunner:
    """Calls of the store's script in namespace ``ns`` (its hash tag) through ``client``; ``async_factory`` makes
    the asyncio twin of the client, one per event loop. ``url`` (password-free) names the server in errors."""

    def __init__(self, client: Any, ns: str, url: str, async_factory: Callable[[], Any] | None) -> None:
        self.client = client
        self.ns = ns
        self.url = url
        self._async_factory = async_factory
        self._async_client: Any = None
        self._async_loop: Any = None
        self._async_keeper: Any = None
        self._source = script()
        self._sha: str | None = None

    @property
    def can_async(self) -> bool:
        """Whether an asyncio client can be made (else async callers run :meth:`run` in a thread)."""
        return self._async_factory is not None

    def run(self, op: str, *args: Any) -> Any:
        """One ``EVALSHA`` of operation ``op``. Raises :class:`BackendError` when Redis is unreachable or refuses
        writes, :class:`RegistryError` when the script itself fails."""
        client = self.client
        packed = argv(op, args)
        try:
            if self._sha is not None:
                try:
                    return client.evalsha(self._sha, 1, self.ns, *packed)
                except NoScriptError:
                    pass
            self._sha = client.script_load(self._source)
            return client.evalsha(self._sha, 1, self.ns, *packed)
        except RedisError as exc:
            raise self._translate(op, exc) from exc

    async def arun(self, op: str, *args: Any) -> Any:
        """:meth:`run` on the asyncio client of the running loop: never blocks the event loop."""
        client = await self._client_for_loop()
        packed = argv(op, args)
        try:
            if self._sha is not None:
                try:
                    return await client.evalsha(self._sha, 1, self.ns, *packed)
                except NoScriptError:
                    pass
            self._sha = await client.script_load(self._source)
            return await client.evalsha(self._sha, 1, self.ns, *packed)
        except RedisError as exc:
            raise self._translate(op, exc) from exc

    def _translate(self, op: str, exc: RedisError) -> RegistryError:
        if isinstance(exc, ResponseError):
            if any(word in str(exc) for word in _REFUSED):
                return BackendError(f"{self.url}: Redis refused the write: {exc}")
            return RegistryError(f"{self.url}: the store's {op} script failed: {exc}")
        return BackendError(f"{self.url}: Redis is unavailable: {exc}")

    async def _client_for_loop(self) -> Any:
        # redis.asyncio connections belong to the event loop that opened them: one client per running loop, held
        # by an async generator so that the loop's shutdown (asyncio.run's shutdown_asyncgens) closes it.
        loop = asyncio.get_running_loop()
        if self._async_loop is not loop and self._async_factory is not None:
            holder = keeper(self._async_factory)
            self._async_client = await holder.__anext__()
            self._async_keeper = holder
            self._async_loop = loop
        return self._async_client
