"""The Redis store's budgets (stores/lua/budgets.lua with decimal.lua) against the in-memory rule
(budget.BudgetState): the same charges, holds, releases and period rolls, on a real redis-server, give the same
spend, holds, period bounds, answers and events, exactly."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis

from noa_ai_provider.budget import PERIODS, BudgetState
from noa_ai_provider.schemas import MONEY_CONTEXT
from tests.redis_server import lua, plain

SCRIPT = (
    lua("decimal")
    + lua("budgets")
    + """
local op, now = ARGV[1], tonumber(ARGV[2])
if op == "new" then
  local start, stop = period_bounds(ARGV[5], now)
  local b = { limit = ARGV[3], warn = ARGV[4], period = ARGV[5], start = start, ["end"] = stop,
              spent = "0", reserved = "0", warned = false, exceeded = false }
  redis.call("HSET", KEYS[1], "b", budget_write(b))
  return 1
end
local b = budget_read(redis.call("HGET", KEYS[1], "b"))
local out = {}
if op == "roll" then budget_roll(b, now)
elseif op == "fits" then out = { budget_fits(b, ARGV[3]) and "1" or "0" }
elseif op == "charge" then out = budget_charge(b, ARGV[3])
elseif op == "hold" then b.reserved = dec_add(b.reserved, ARGV[3])
elseif op == "release" then b.reserved = dec_sub(b.reserved, ARGV[3])
end
redis.call("HSET", KEYS[1], "b", budget_write(b))
return { budget_write(b), unpack(out) }
"""
)


def stamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@pytest.mark.parametrize("seed", range(10))
def test_the_lua_budgets_agree_with_the_memory_rule(redis_client: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    run = redis_client.register_script(SCRIPT)
    key = f"{{budget{seed}}}"
    period = PERIODS[seed % len(PERIODS)]
    limit = Decimal(rng.choice(("5", "12.5", "0.003", "1000")))
    warn_at = Decimal(rng.choice(("0.8", "0.5", "1")))
    now = float(rng.randint(0, 2_000_000_000))  # 1970 to 2033: leap years, month and year ends
    memory = BudgetState(limit, period, None, warn_at, datetime.fromtimestamp(now, UTC))
    run(keys=[key], args=["new", repr(now), plain(limit), plain(MONEY_CONTEXT.multiply(limit, warn_at)), period])
    rolled = 0
    for step in range(300):
        now += rng.choice((0.0, 1.0, 3_600.0, 86_399.0, 86_400.0, 7 * 86_400.0, 29 * 86_400.0))
        amount = Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(0, 12))
        op = rng.choice(("roll", "roll", "fits", "charge", "hold", "release"))
        got = run(keys=[key], args=[op, repr(now), plain(amount)])
        if op == "roll":
            before = memory.start
            memory.roll(datetime.fromtimestamp(now, UTC))
            rolled += memory.start != before
        elif op == "fits":
            assert got[1] == ("1" if memory.fits(amount) else "0"), step
        elif op == "charge":
            assert got[1:] == memory.charge(amount), step
        elif op == "hold":
            memory.hold(amount)
        else:
            memory.release(amount)
        fields = got[0].split("|")
        assert Decimal(fields[5]) == memory.spent, (step, op)
        assert Decimal(fields[6]) == memory.reserved, (step, op)
        assert (float(fields[3]) if fields[3] else None) == stamp(memory.start), (step, fields, memory.start)
        assert (float(fields[4]) if fields[4] else None) == stamp(memory.end), (step, fields, memory.end)
        assert (fields[7], fields[8]) == (str(int(memory.warned)), str(int(memory.exceeded))), step
    if period != "total":
        assert rolled >= 3  # periods really rolled over, so the calendar bounds were compared


def test_worked_examples_at_the_edges(redis_client: redis.Redis) -> None:
    run = redis_client.register_script(SCRIPT)
    december = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    run(keys=["{edges}"], args=["new", repr(december), "10", "8", "month"])
    # Spend exactly at the warning amount warns; exactly at the limit does not exceed it.
    assert run(keys=["{edges}"], args=["charge", repr(december), "8"])[1:] == ["budget-warning"]
    assert run(keys=["{edges}"], args=["charge", repr(december), "2"])[1:] == []
    assert run(keys=["{edges}"], args=["fits", repr(december), "0"])[1] == "1"
    assert run(keys=["{edges}"], args=["fits", repr(december), "0.000000000001"])[1] == "0"
    assert run(keys=["{edges}"], args=["charge", repr(december), "0.000000000001"])[1:] == ["budget-exceeded"]
    # One second later it is January: a new period, from 0, with its bounds.
    fields = run(keys=["{edges}"], args=["roll", repr(december + 1)])[0].split("|")
    assert fields[5] == "0"
    assert float(fields[3]) == datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert float(fields[4]) == datetime(2025, 2, 1, tzinfo=UTC).timestamp()
