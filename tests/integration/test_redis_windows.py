"""The Redis store's windows (stores/lua/windows.lua) against the in-memory rule (ratelimit.ModelLimiter): the same
random requests, reservations, commits and cancels, on a real redis-server, must be admitted or refused alike,
with the same binding limit and the same retry_after."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import redis

from noa_ai_provider import EnhancedModelRegistry, RateLimitCheck, RateLimitConfig
from noa_ai_provider.ratelimit import REASONS, RETRY_AFTER, Handle, ModelLimiter
from noa_ai_provider.testing import FakeClock, window_totals
from tests.conftest import fresh
from tests.redis_server import lua
from tests.samples import limited

LIBRARY = lua("windows")
FIELDS = tuple(REASONS)  # the rule's order


def amounts(inp: int, out: int) -> dict[str, int]:
    return {
        "requests_per_minute": 1,
        "tokens_per_minute": inp + out,
        "input_tokens_per_minute": inp,
        "output_tokens_per_minute": out,
        "requests_per_day": 1,
        "tokens_per_day": inp + out,
    }


class RedisWindows:
    """The Lua windows of one model, called as the store will call them."""

    def __init__(self, redis_client: redis.Redis, base: str, limits: dict[str, int]) -> None:
        self.base = base
        self.limits = limits
        self.reserve_script = redis_client.register_script(LIBRARY + "\nreturn reserve()")
        self.settle_script = redis_client.register_script(LIBRARY + "\nreturn settle()")
        self.check_script = redis_client.register_script(LIBRARY + "\nreturn check()")
        self.block_script = redis_client.register_script(LIBRARY + "\nreturn block()")
        self.report_script = redis_client.register_script(LIBRARY + "\nreturn report()")

    def _limits(self, inp: int, out: int) -> list[object]:
        args: list[object] = [inp + out, inp, out]
        for name, limit in self.limits.items():
            args += [name, limit]
        return args

    @staticmethod
    def _verdict(result: list[str]) -> tuple[bool, str | None, float | None]:
        if int(result[0]) == 1:
            return True, None, None
        reason = result[2] if result[2] == RETRY_AFTER else REASONS[result[2]][0]
        return False, reason, None if result[3] == "never" else float(result[3])

    def reserve(self, now: float, entry: str, inp: int, out: int) -> tuple[bool, str | None, float | None]:
        return self._verdict(self.reserve_script(keys=[self.base], args=[repr(now), entry, *self._limits(inp, out)]))

    def check(self, now: float, inp: int, out: int) -> tuple[bool, str | None, float | None]:
        return self._verdict(self.check_script(keys=[self.base], args=[repr(now), *self._limits(inp, out)]))

    def block(self, until: float) -> None:
        self.block_script(keys=[self.base], args=[repr(until)])

    def settle(self, entry: str, inp: int, out: int, *, cancel: bool = False) -> None:
        args = [entry, 0, 0, 0, 0] if cancel else [entry, 1, inp + out, inp, out]
        self.settle_script(keys=[self.base], args=args)

    def report(self, now: float, name: str, stated: int | None, remaining: int, reset_at: float) -> None:
        configured = self.limits.get(name)
        args = [repr(now), name, "" if configured is None else configured, "" if stated is None else stated]
        self.report_script(keys=[self.base], args=[*args, remaining, repr(reset_at)])


@pytest.mark.parametrize("seed", range(16))
def test_the_lua_windows_decide_as_the_memory_rule(redis_client: redis.Redis, seed: int) -> None:
    rng = random.Random(seed)
    limits = {name: rng.choice((600, 1_500, 5_000)) for name in FIELDS[1:4] if rng.random() < 0.7}
    limits["requests_per_minute"] = rng.choice((3, 6, 12))
    if rng.random() < 0.5:  # per-day limits, in one-minute buckets
        limits["requests_per_day"] = rng.choice((15, 40))
        limits["tokens_per_day"] = rng.choice((4_000, 12_000))
    limits = {name: limits[name] for name in FIELDS if name in limits}  # the rule's order: ties go to the first
    memory = ModelLimiter(RateLimitConfig(**limits))
    lua = RedisWindows(redis_client, f"{{test{seed}}}:model", limits)
    now = 1_700_000_000.0
    open_: list[tuple[str, Handle, int, int]] = []
    seen = {"admitted": 0, "refused": 0, "never": 0, "by a day limit": 0, "checked": 0, "cooldown": 0, "reports": 0}
    for step in range(400):
        now += rng.choices(
            (0.0, 0.01, 0.5, 3.0, 17.0, 59.99, 60.0, 3_600.0, 43_200.0), (3, 6, 8, 4, 1, 1, 1, 0.4, 0.1)
        )[0]
        if open_ and rng.random() < 0.45:
            entry, handle, inp, out = open_.pop(rng.randrange(len(open_)))
            if rng.random() < 0.3:  # cancel
                ModelLimiter.release(handle)
                lua.settle(entry, 0, 0, cancel=True)
                continue
            used_in, used_out = rng.randint(0, inp + 50), rng.randint(0, out + 50)
            ModelLimiter.settle(handle, used_in, used_out)
            lua.settle(entry, used_in, used_out)
            continue
        inp, out = rng.randint(0, 400), rng.randint(0, 300)
        if rng.random() < 0.06:  # a provider's report: what remains until its reset (and maybe a limit to learn)
            name = rng.choice(FIELDS)
            stated = rng.choice((None, 0, 1_000, 5_000, 20_000))
            remaining = rng.randint(-5, stated or 400)
            reset_at = now + rng.choice((-1.0, 0.5, 7.0, 45.0, 120.0))
            memory.apply_report(now, name, stated, remaining, reset_at)
            lua.report(now, name, stated, remaining, reset_at)
            seen["reports"] += 1
        if rng.random() < 0.03:  # a provider's retry-after
            until = now + rng.choice((0.5, 5.0, 30.0))
            memory.block_until(until)
            lua.block(until)
        if rng.random() < 0.2:  # a read-only check answers as the rule does
            checked = memory.check(now, inp, out)
            allowed, why, after = lua.check(now, inp, out)
            assert allowed == checked.allowed, (step, checked)
            assert why == checked.reason, (step, why, checked)
            assert (after is None) == (checked.retry_after is None) if not allowed else True
            if not allowed and after is not None:
                assert after == pytest.approx(checked.retry_after, abs=1e-6), (step, after, checked)
            seen["checked"] += 1
            continue
        expected = memory.reserve(now, inp, out)
        admitted, reason, retry = lua.reserve(now, f"r{step}", inp, out)
        if isinstance(expected, RateLimitCheck):
            assert not admitted, (step, expected)
            assert reason is not None
            assert reason == expected.reason, (step, reason, expected)
            seen["refused" if expected.retry_after is not None else "never"] += 1
            seen["cooldown"] += reason == RETRY_AFTER
            seen["by a day limit"] += reason in ("requests per day", "tokens per day")
            if expected.retry_after is None:
                assert retry is None
            else:
                assert retry == pytest.approx(expected.retry_after, abs=1e-6), (step, retry, expected)
        else:
            assert admitted, (step, inp, out)
            seen["admitted"] += 1
            open_.append((f"r{step}", expected, inp, out))
    assert seen["admitted"] >= 20
    assert seen["refused"] >= 10  # the windows really filled, so the refusals and waits were compared
    assert seen["checked"] >= 20
    assert seen["reports"] >= 10
    if (
        "requests_per_day" not in limits
    ):  # (where day limits bind most requests, a cooldown may never be the binding one)
        assert seen["cooldown"] >= 1, seen  # a provider's retry-after bound some
    if "requests_per_day" in limits:
        assert seen["by a day limit"] >= 1, seen  # and the day buckets bound some of them


def test_a_minute_of_heavy_traffic_leaves_the_window_at_once(tmp_path: Path) -> None:
    """Regression (bench_redis.py): after a pause in heavy traffic, more than ~8,000 entries left a window in one
    operation, Lua's unpack refused them ("too many results to unpack"), and every later acquire failed until the
    keys expired. They now leave in chunks."""
    clock = FakeClock(1_700_000_000.0)
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, clock=clock, backend=fresh("redis://")
    ) as registry:
        key = registry.register_model(limited({"requestsPerMinute": 100_000, "tokensPerMinute": 10**9}))
        for _ in range(9_000):
            registry.record_usage(key, 1, 0)
        clock.advance(61)  # the pause: all 9,000 leave the windows together
        registry.acquire(key, 1).commit(0)
        assert window_totals(registry, key) == {"requests_per_minute": 1, "tokens_per_minute": 1}
