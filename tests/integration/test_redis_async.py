"""``acquire_async`` on the Redis store uses redis.asyncio: while Redis is slow to answer (a ``DEBUG SLEEP`` holds
the server), the event loop keeps running other tasks, and the reservation is taken once Redis answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from noa_ai_provider import EnhancedModelRegistry

from ..redis_server import RedisServer
from ..samples import limited


@pytest.fixture
def server() -> Iterator[RedisServer]:
    running = RedisServer("--enable-debug-command", "yes")
    yield running
    running.stop()


def _stall(url: str, seconds: float) -> threading.Thread:
    # Another client makes the server sleep: every command waits until it wakes.
    def sleep() -> None:
        with redis.Redis.from_url(url) as client:
            client.execute_command("DEBUG", "SLEEP", seconds)

    thread = threading.Thread(target=sleep)
    thread.start()
    return thread


def test_acquire_async_never_blocks_the_event_loop(tmp_path: Path, server: RedisServer) -> None:
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, backend=server.url + "?namespace=a"
    )
    key = registry.register_model(limited({"requestsPerMinute": 10}))

    async def main() -> tuple[int, float]:
        await registry.acquire_async(key, 1)  # the asyncio client and its script are ready
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        staller = _stall(server.url, 0.5)
        await asyncio.sleep(0.05)  # the server now sleeps
        started = time.monotonic()
        before = ticks
        reservation = await registry.acquire_async(key, 1)  # waits for Redis, awaiting
        waited = time.monotonic() - started
        during = ticks - before
        stop = True
        await task
        staller.join()
        reservation.commit(0)
        return during, waited

    during, waited = asyncio.run(main())
    assert waited >= 0.3  # the call really waited for the sleeping server
    assert during >= 15  # and the loop kept ticking meanwhile (a blocking call would have stopped it)
    registry.close()
