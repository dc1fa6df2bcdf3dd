"""``RedisStore``: the live state of a registry's models in Redis (or Valkey), shared by every registry, process and
host that points at the same server and namespace: ``EnhancedModelRegistry(backend="redis://host:6379/0")``.

What lives in Redis: the rate-limit windows and open reservations, usage counters and daily history, access
counts, performance metrics, budgets' spend and holds, limits learned from provider headers and ``retry-after``
cooldowns. Model definitions stay with each registry (its config and JSON file).

How (see ``docs/redis.md``):

- **One script, one round trip per operation.** ``stores/lua/store.lua`` (with the decimal, budget, usage and
  window libraries before it) is loaded once and called with ``EVALSHA``; ``NOSCRIPT`` (a restarted or failed-over
  server) loads it again. ``acquire`` checks every limit and budget of the model and reserves, or says which
  refused and when to retry; ``commit`` and ``cancel`` settle by the reservation's id, so a retried commit counts
  once, and a reservation whose process died expires and releases its holds.
- **The server's clock** (``TIME``, read inside each script), never the hosts', unless the URL says
  ``clock=registry`` (tests, with ``testing.FakeClock``).
- **One hash tag per namespace** (``{noa:NAME}``): every key of a namespace is in one Cluster slot, so every
  script, a global budget's included, runs on Redis Cluster.
- **Exact money**: decimal strings, added digit by digit in Lua, never ``INCRBYFLOAT``.

The modules: ``store`` (``RedisStore``, the Store operations), ``runner`` (the script's calls, sync and asyncio,
and redis-py's errors translated), ``outage`` (records waiting for Redis under ``on_backend_error="allow"``),
``connect`` (clients from URLs), ``follow`` (the thread that hears other processes free capacity) and ``wire`` (the
script's text and packed arguments). ``redis`` (redis-py) is imported by this package only:
``pip install 'noa-ai-provider[redis]'``.

.. versionadded:: 0.2.0
"""

from .store import BACKEND, RedisStore

__all__ = ["BACKEND", "RedisStore"]
