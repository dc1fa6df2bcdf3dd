"""Redis stopped mid-run and started again (with its append-only file, so its data survives): each
``on_backend_error`` policy does what docs/redis.md promises, the registry recovers by itself, and nothing is counted
twice across the outage."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from noa_ai_provider import BackendError, EnhancedModelRegistry, RateLimitExceeded, RegistryError

from ..redis_server import RedisServer
from ..samples import limited

LIMITS = {"requestsPerMinute": 100, "tokensPerMinute": 100_000}


@pytest.fixture
def server() -> Iterator[list[RedisServer]]:
    """A redis-server whose data survives a restart (every write fsynced to its append-only file); the list holds
    the running one (a test replaces it after a restart)."""
    running = [RedisServer("--appendonly", "yes", "--appendfsync", "always")]
    yield running
    running[0].stop()


def _registry(tmp_path: Path, url: str, policy: str) -> tuple[EnhancedModelRegistry, str]:
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / f"{policy}.json",
        auto_save=False,
        backend=url + "?namespace=outage&socket_timeout=2&socket_connect_timeout=2",
        on_backend_error=policy,
    )
    return registry, registry.register_model(limited(LIMITS))


def _restart(server: list[RedisServer]) -> None:
    server[0] = server[0].restart()


def _requests(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.hget("{noa:outage}:m:openai:limited:u", "requests") or 0)


def test_raise_raises_a_backend_error_and_a_commit_retried_after_the_outage_counts_once(
    tmp_path: Path, server: list[RedisServer]
) -> None:
    url = server[0].url
    registry, key = _registry(tmp_path, url, "raise")
    before = registry.acquire(key, 100, 50)  # admitted before the outage
    server[0].stop(keep=True)
    with pytest.raises(BackendError) as raised:
        registry.acquire(key, 10)
    assert isinstance(raised.value, RegistryError)
    assert isinstance(raised.value, ConnectionError)
    assert isinstance(raised.value.__cause__, redis.RedisError)  # chained from the Redis error
    with pytest.raises(BackendError):
        before.commit(40)
    assert before.open  # nothing was counted: the reservation still waits for its commit
    with pytest.raises(BackendError):
        registry.record_usage(key, 1, 1)
    _restart(server)
    cost = before.commit(40)  # recovered by itself: the same reservation, committed now
    assert cost == registry.estimate_cost(key, 100, 40)
    assert before.commit(40) == cost  # and again: once
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_cost) == (1, cost)
    assert _requests(url) == 1
    registry.close()


def test_allow_admits_during_the_outage_and_records_once_when_redis_is_back(
    tmp_path: Path, server: list[RedisServer]
) -> None:
    url = server[0].url
    registry, key = _registry(tmp_path, url, "allow")
    registry.acquire(key, 100, 0).commit(10)  # 1 before
    held = registry.acquire(key, 200, 0)  # admitted before, committed during the outage
    server[0].stop(keep=True)
    during = registry.acquire(key, 300, 0)  # admitted without Redis (fail open)
    costs = [during.commit(20), held.commit(30), registry.record_usage(key, 400, 40)]
    assert all(isinstance(c, Decimal) for c in costs)
    _restart(server)
    registry.acquire(key, 1, 0).commit(0)  # the next call sends what waited, each once
    expected = sum(
        (registry.estimate_cost(key, i, o) for i, o in [(100, 10), (300, 20), (200, 30), (400, 40), (1, 0)]),
        Decimal(0),
    )
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens, stats.total_output_tokens) == (5, 1001, 100)
    assert stats.total_cost == expected
    registry.acquire(key, 1, 0).commit(0)  # nothing is sent twice
    assert _requests(url) == 6
    registry.close()


def test_deny_refuses_during_the_outage_and_admits_again_afterwards(tmp_path: Path, server: list[RedisServer]) -> None:
    registry, key = _registry(tmp_path, server[0].url, "deny")
    server[0].stop(keep=True)
    with pytest.raises(RateLimitExceeded) as refused:
        registry.acquire(key, 10)
    assert refused.value.limit == "backend unavailable"
    assert refused.value.retry_after == 1.0
    assert not registry.check_rate_limit(key, 10).allowed
    with pytest.raises(BackendError):
        registry.record_usage(key, 1, 1)  # what cannot be recorded is never silently dropped
    _restart(server)
    registry.acquire(key, 10).commit(5)
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 1
    registry.close()


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="on_backend_error"):
        EnhancedModelRegistry(auto_save=False, on_backend_error="ignore")
