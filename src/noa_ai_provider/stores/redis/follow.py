"""Hearing other processes free capacity: a thread subscribed to the namespace's ``freed`` channel wakes this
process's waiters (see :meth:`RedisStore._follow_freed`)."""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from .wire import text

if TYPE_CHECKING:
    from .store import RedisStore

__all__ = ["follow"]


def follow(store_ref: weakref.ref[RedisStore], client: Any, channel: str) -> None:
    # The body of RedisStore._follow_freed's thread: until the store is closed or collected, every key published on
    # `channel` wakes the store's listeners (this process's waiters for that model). Redis away: try again later.
    while True:
        store = store_ref()
        if store is None or store._closed:
            return
        del store
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
        except Exception:  # (a client without pub/sub: waiters keep their retry_after)
            return
        try:
            pubsub.subscribe(channel)
            while True:
                message = pubsub.get_message(timeout=0.5)
                store = store_ref()
                if store is None or store._closed:
                    return
                if message is not None and message.get("type") == "message":
                    key = text(message["data"])
                    if key in store._limits:
                        store._notify(key)
                del store
        except RedisError:
            time.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()
