"""The Redis store's usage counters and daily history (stores/lua/usage.lua with decimal.lua) against the in-memory
bookkeeping (cost.UsageCounters and UsageHistory): the same requests, on a real redis-server, give the same
counters, days and exact costs, the oldest days dropped beyond the same bound."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import redis

from noa_ai_provider.cost import MAX_HISTORY_DAYS, UsageCounters, UsageHistory
from tests.redis_server import lua, plain

SCRIPT = (
    lua("decimal")
    + lua("usage")
    + """
usage_add(KEYS[1], ARGV[1], { ARGV[2], ARGV[3], ARGV[4], ARGV[5] }, ARGV[6], ARGV[7] == "1")
return 1
"""
)
EPOCH = date(1970, 1, 1)


@pytest.mark.parametrize("seed", range(6))
def test_the_lua_usage_agrees_with_the_memory_bookkeeping(redis_client: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    run = redis_client.register_script(SCRIPT)
    base = f"{{usage{seed}}}:model"
    counters, history = UsageCounters(datetime(2024, 1, 1, tzinfo=UTC)), UsageHistory()
    day = 19_000 + rng.randint(0, 100)
    for _ in range(1_500):
        day += rng.choice((0, 0, 0, 1, 1, 2, -1))  # mostly forward; sometimes a day recorded late
        inp = rng.choice((0, 1, rng.randint(0, 10**6), 2**40 + rng.randint(0, 99)))
        cached = rng.randint(0, inp)
        written = rng.randint(0, inp - cached)
        out = rng.randint(0, 10**5)
        cost = Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(0, 15))
        success = rng.random() < 0.9
        counters.add(inp, out, cost, success, cached, written)
        history.add(EPOCH + timedelta(days=day), inp, out, cached, written, cost)
        run(keys=[base], args=[day, inp, out, cached, written, plain(cost), "1" if success else "0"])
    u = redis_client.hgetall(base + ":u")
    assert int(u["input"]) == counters.total_input_tokens
    assert int(u["output"]) == counters.total_output_tokens
    assert int(u["cached"]) == counters.total_cached_input_tokens
    assert int(u["written"]) == counters.total_cache_write_tokens
    assert int(u["requests"]) == counters.request_count
    assert int(u.get("ok", 0)) == counters.successful_requests
    assert int(u.get("failed", 0)) == counters.failed_requests
    assert Decimal(u["cost"]) == counters.total_cost
    h = redis_client.hgetall(base + ":h")
    days = [int(d) for d in redis_client.zrange(base + ":days", 0, -1)]
    expected = history.entries("k")
    assert [EPOCH + timedelta(days=d) for d in days] == [e.date for e in expected]
    assert len(days) <= MAX_HISTORY_DAYS
    for d, entry in zip(days, expected, strict=True):
        assert int(h[f"{d}:input"]) == entry.input_tokens
        assert int(h[f"{d}:output"]) == entry.output_tokens
        assert int(h[f"{d}:cached"]) == entry.cached_input_tokens
        assert int(h[f"{d}:written"]) == entry.cache_write_tokens
        assert int(h[f"{d}:requests"]) == entry.requests
        assert Decimal(h[f"{d}:cost"]) == entry.cost
    assert len(h) == 6 * len(days)  # the dropped days left nothing behind
