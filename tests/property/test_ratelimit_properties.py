"""Rate limits against an exact oracle on random traces, with an injected clock.

The oracle keeps every recorded ``(time, tokens)`` event. At ``now`` an event counts in a window of ``w`` seconds
while ``now - t < w``. A request of ``k`` tokens is allowed iff ``count + 1 <= limit`` for each request limit and
``tokens + k <= tokens_per_minute``; ``retry_after`` is the time until the oracle (with no new events) allows.

- Per-minute limits must be IDENTICAL to the oracle (decision, and ``retry_after`` to 1e-6 s).
- The per-day limit may refuse early (one-minute buckets: at most 60 s), never late: the registry must refuse
  whenever the exact oracle refuses, and allow whenever an oracle with a 24 h + 60 s window allows.

Times start at 1.7e9 s, where every double is a multiple of 2**-22 and sums and differences of the times used here
are exact, so ``now - t < 60`` and the implementation's ``t > now - 60`` are the same test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from noa_ai_provider import EnhancedModelRegistry, RateLimitCheck
from noa_ai_provider.ratelimit import DAY, DAY_BUCKET, MINUTE, TrailingWindow
from noa_ai_provider.testing import window_entries

from ..conftest import STORES, fresh, store_id

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

START = 1_700_000_000.0
RPM, TPM, RPD = "requests per minute", "tokens per minute", "requests per day"
ABS = 1e-6
DAY_SLACK = DAY_BUCKET + 1e-3  # how early the per-day limit may refuse (one bucket), plus float slack


# --------------------------------------------------------------------------- the oracle


def _wait_for_count(times: list[float], limit: int, window: float, now: float) -> float:
    """Seconds until fewer than ``limit`` of ``times`` (sorted, all in the window) remain in it."""
    if len(times) + 1 <= limit:
        return 0.0
    # The oldest len - limit + 1 must expire; the last of them is at index len - limit.
    return times[len(times) - limit] + window - now


def _wait_for_tokens(events: list[tuple[float, int]], limit: int, extra: int, now: float) -> float | None:
    if extra > limit:
        return None
    total = sum(k for _, k in events)
    if total + extra <= limit:
        return 0.0
    freed = 0
    for t, k in events:
        freed += k
        if total - freed + extra <= limit:
            return t + MINUTE - now
    raise AssertionError("unreachable: freeing everything always fits")  # pragma: no cover


@dataclass
class Oracle:
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    events: list[tuple[float, int]] = field(default_factory=list)

    def record(self, now: float, tokens: int) -> None:
        assert not self.events or now >= self.events[-1][0]
        self.events.append((now, tokens))

    def in_window(self, now: float, window: float) -> list[tuple[float, int]]:
        return [(t, k) for t, k in self.events if now - t < window]

    def waits(self, now: float, tokens: int, day_window: float = DAY) -> dict[str, float | None]:
        """Per configured limit: 0 when it allows now, else seconds until it does (None: never)."""
        out: dict[str, float | None] = {}
        minute = self.in_window(now, MINUTE)
        if self.rpm is not None:
            out[RPM] = _wait_for_count([t for t, _ in minute], self.rpm, MINUTE, now)
        if self.tpm is not None:
            out[TPM] = _wait_for_tokens(minute, self.tpm, tokens, now)
        if self.rpd is not None:
            day = [t for t, _ in self.in_window(now, day_window)]
            out[RPD] = _wait_for_count(day, self.rpd, day_window, now)
        return out

    def allows(self, now: float, tokens: int, day_window: float = DAY) -> bool:
        return all(w == 0.0 for w in self.waits(now, tokens, day_window).values())


def overall_wait(waits: dict[str, float | None]) -> float | None:
    if any(w is None for w in waits.values()):
        return None
    return max((w for w in waits.values() if w is not None), default=0.0)


# --------------------------------------------------------------------------- helpers


def make_registry(
    tmp_path: Path, rate_limit: dict[str, int] | None, backend: str
) -> tuple[EnhancedModelRegistry, str, list[float]]:
    """A registry on ``backend`` (the test's store) with one model ``limited`` of ``rate_limit``, and its clock."""
    clock = [START]
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / "registry.json", auto_save=False, clock=lambda: clock[0], backend=fresh(backend)
    )
    model: dict[str, Any] = {
        "id": "limited",
        "name": "Limited",
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": "0.01", "outputTokens": "0.03"},
    }
    if rate_limit is not None:
        model["rateLimit"] = rate_limit
    return registry, registry.register_model(model), clock


def limits_json(rpm: int | None, tpm: int | None, rpd: int | None) -> dict[str, int]:
    out = {}
    if rpm is not None:
        out["requestsPerMinute"] = rpm
    if tpm is not None:
        out["tokensPerMinute"] = tpm
    if rpd is not None:
        out["requestsPerDay"] = rpd
    return out


def split(tokens: int) -> tuple[int, int]:
    return tokens // 3, tokens - tokens // 3


def run_trace(
    registry: EnhancedModelRegistry,
    key: str,
    clock: list[float],
    oracle: Oracle,
    steps: list[tuple[str, Any, int]],
    check: Any,
) -> int:
    """Apply ``steps`` to the registry and the oracle; after each, ``check(now, probe_tokens)``. Returns checks."""
    checks = 0
    for action, arg, probe in steps:
        if action == "advance":
            clock[0] += arg
        elif action == "record":
            registry.record_usage(key, *split(arg))
            oracle.record(clock[0], arg)
        elif action == "burst":
            count, tokens = arg
            for _ in range(count):
                registry.record_usage(key, *split(tokens))
                oracle.record(clock[0], tokens)
        check(clock[0], probe)
        checks += 1
    return checks


# --------------------------------------------------------------------------- strategies

small_advance = st.one_of(
    st.floats(min_value=0.0, max_value=30.0, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=30 * 16).map(lambda n: n / 16),  # lands exactly on 60 s ages often
    st.sampled_from([0.0, 0.1, 59.9, 60.0, 60.1]),
)


def minute_steps(max_tokens: int) -> st.SearchStrategy[list[tuple[str, Any, int]]]:
    tokens = st.integers(min_value=0, max_value=max_tokens)
    probe = st.one_of(tokens, st.just(0), st.integers(min_value=0, max_value=2 * max_tokens))
    step = st.one_of(
        st.tuples(st.just("advance"), small_advance, probe),
        st.tuples(st.just("record"), tokens, probe),
        st.tuples(st.just("record"), tokens, probe),
        st.tuples(st.just("burst"), st.tuples(st.integers(min_value=1, max_value=25), tokens), probe),
        st.tuples(st.just("check"), st.none(), probe),
    )
    return st.lists(step, min_size=1, max_size=60)


@st.composite
def minute_configs(draw: st.DrawFn) -> tuple[int | None, int | None]:
    rpm = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=8)))
    tpm = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=5_000)))
    if rpm is None and tpm is None:
        rpm = draw(st.integers(min_value=1, max_value=8))
    return rpm, tpm


# --------------------------------------------------------------------------- per-minute: identical to the oracle


@pytest.mark.parametrize("store", STORES, ids=store_id)  # no fixture in a @given test
@SETTINGS
@given(config=minute_configs(), data=st.data())
def test_per_minute_limits_match_the_oracle_exactly(
    tmp_path: Path, store: str, config: tuple[int | None, int | None], data: st.DataObject
) -> None:
    rpm, tpm = config
    max_tokens = (tpm or 1000) // 2 + 1
    steps = data.draw(minute_steps(max_tokens))
    registry, key, clock = make_registry(tmp_path, limits_json(rpm, tpm, None), store)
    oracle = Oracle(rpm=rpm, tpm=tpm)

    def check(now: float, tokens: int) -> None:
        result = registry.check_rate_limit(key, tokens)
        waits = oracle.waits(now, tokens)
        expected_allowed = all(w == 0.0 for w in waits.values())
        assert result.allowed == expected_allowed, (now - START, tokens, waits, result)
        event(f"minute check: {result.reason or 'allowed'}")
        if expected_allowed:
            assert result.reason is None
            assert result.retry_after is None
            return
        refusing = {name for name, w in waits.items() if w != 0.0}
        assert result.reason in refusing
        expected_wait = overall_wait(waits)
        if expected_wait is None:
            assert result.retry_after is None
            assert result.reason == TPM
            assert tpm is not None
            assert tokens > tpm
        else:
            assert result.retry_after is not None
            assert result.retry_after > 0
            assert result.retry_after == pytest.approx(expected_wait, abs=ABS)
            assert waits[result.reason] == pytest.approx(expected_wait, abs=ABS)
            # Sound and tight: the oracle allows at now + retry_after and refuses just before.
            assert oracle.allows(now + result.retry_after, tokens)
            assert not oracle.allows(now + result.retry_after - 1e-3, tokens)

    run_trace(registry, key, clock, oracle, steps, check)


@pytest.mark.parametrize("store", STORES, ids=store_id)  # no fixture in a @given test
@SETTINGS
@given(
    rpm=st.integers(min_value=1, max_value=6),
    tpm=st.integers(min_value=1, max_value=300),
    bursts=st.lists(
        st.tuples(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=400), small_advance),
        min_size=1,
        max_size=12,
    ),
    probes=st.lists(st.integers(min_value=0, max_value=320), min_size=1, max_size=4),
)
def test_recording_beyond_the_limits_still_matches_the_oracle(
    tmp_path: Path, store: str, rpm: int, tpm: int, bursts: list[tuple[int, int, float]], probes: list[int]
) -> None:
    """record_usage does not enforce limits: many requests at one timestamp, far over both limits, then expiry."""
    registry, key, clock = make_registry(tmp_path, limits_json(rpm, tpm, None), store)
    oracle = Oracle(rpm=rpm, tpm=tpm)
    for count, tokens, advance in bursts:
        for _ in range(count):
            registry.record_usage(key, tokens, 0)
            oracle.record(clock[0], tokens)
        clock[0] += advance
    # Walk time forward past the last expiry, probing at every event's expiry instant and just around it.
    instants = sorted({clock[0]} | {t + MINUTE + d for t, _ in oracle.events for d in (-0.5, 0.0, 0.5)})
    for now in instants:
        if now < clock[0]:
            continue
        clock[0] = now
        for tokens in probes:
            result = registry.check_rate_limit(key, tokens)
            waits = oracle.waits(now, tokens)
            assert result.allowed == oracle.allows(now, tokens), (now - START, tokens, waits)
            expected = overall_wait(waits)
            if result.allowed or expected is None:
                assert result.retry_after is None
            else:
                assert result.retry_after == pytest.approx(expected, abs=ABS)
    assert registry.check_rate_limit(key, 0).allowed


def test_token_limit_alone_beyond_the_entry_cap_is_conservative(tmp_path: Path, store: str) -> None:
    """Without a request limit the token log keeps at most 10_000 entries (memory stays bounded), merging the
    oldest into newer timestamps: beyond 10_000 requests a minute it may refuse a little early, never late."""
    tpm = 10**9
    registry, key, clock = make_registry(tmp_path, {"tokensPerMinute": tpm}, store)
    oracle = Oracle(tpm=tpm)
    for n in range(10_001):  # one token every 2**-10 s: 10_001 requests within 10 s
        clock[0] = START + n * 2**-10
        registry.record_usage(key, 1, 0)
        oracle.record(clock[0], 1)
    assert window_entries(registry, key) <= 10_000
    clock[0] = START + MINUTE + 2**-11  # the first request has just left the exact window
    tokens = tpm - 10_000
    assert oracle.allows(clock[0], tokens)
    early = registry.check_rate_limit(key, tokens)
    assert not early.allowed  # refused early: the merged entry counts until its newer timestamp expires
    assert early.retry_after is not None
    assert early.retry_after <= 2**-10
    clock[0] += early.retry_after
    assert registry.check_rate_limit(key, tokens).allowed
    for extra in range(4):  # and never more than the exact window allows
        if registry.check_rate_limit(key, tokens + extra).allowed:
            assert oracle.allows(clock[0], tokens + extra)


def test_reset_usage_stats_keeps_the_rate_limit_windows(tmp_path: Path, store: str) -> None:
    registry, key, clock = make_registry(tmp_path, {"requestsPerMinute": 2, "tokensPerMinute": 100}, store)
    registry.record_usage(key, 30, 30)
    clock[0] += 1.0
    registry.record_usage(key, 10, 0)
    registry.reset_usage_stats(key)
    result = registry.check_rate_limit(key, 0)
    assert not result.allowed
    assert result.reason == RPM
    assert result.retry_after == pytest.approx(59.0, abs=ABS)
    clock[0] = START + MINUTE
    assert registry.check_rate_limit(key, 90).allowed
    assert not registry.check_rate_limit(key, 91).allowed


# --------------------------------------------------------------------------- per-day: early, never late


def day_steps(max_tokens: int) -> st.SearchStrategy[list[tuple[str, Any, int]]]:
    advance = st.one_of(
        small_advance,
        st.floats(min_value=0.0, max_value=4_000.0, allow_nan=False, allow_infinity=False),
        st.floats(min_value=80_000.0, max_value=90_000.0, allow_nan=False, allow_infinity=False),
        st.sampled_from([86_399.9, 86_400.0, 86_400.1, 86_430.0, 86_459.9, 86_460.0, 86_460.1]),
    )
    tokens = st.integers(min_value=0, max_value=max_tokens)
    probe = st.one_of(tokens, st.just(0))
    step = st.one_of(
        st.tuples(st.just("advance"), advance, probe),
        st.tuples(st.just("advance"), advance, probe),
        st.tuples(st.just("record"), tokens, probe),
        st.tuples(st.just("burst"), st.tuples(st.integers(min_value=1, max_value=6), tokens), probe),
        st.tuples(st.just("check"), st.none(), probe),
    )
    return st.lists(step, min_size=1, max_size=60)


@pytest.mark.parametrize("store", STORES, ids=store_id)  # no fixture in a @given test
@SETTINGS
@given(
    rpd=st.integers(min_value=1, max_value=6),
    rpm=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
    tpm=st.one_of(st.none(), st.integers(min_value=1, max_value=2_000)),
    data=st.data(),
)
def test_per_day_limit_refuses_early_never_late(
    tmp_path: Path, store: str, rpd: int, rpm: int | None, tpm: int | None, data: st.DataObject
) -> None:
    steps = data.draw(day_steps((tpm or 1000) // 2 + 1))
    registry, key, clock = make_registry(tmp_path, limits_json(rpm, tpm, rpd), store)
    oracle = Oracle(rpm=rpm, tpm=tpm, rpd=rpd)
    refused_early = []

    def check(now: float, tokens: int) -> None:
        result = registry.check_rate_limit(key, tokens)
        exact = oracle.waits(now, tokens)
        exact_allows = all(w == 0.0 for w in exact.values())
        wide_allows = oracle.allows(now, tokens, day_window=DAY + DAY_SLACK)
        event(f"day check: {result.reason or 'allowed'}{' (early)' if exact_allows and not result.allowed else ''}")
        if result.allowed:
            # Never late: an allowed request keeps every limit over the exact windows.
            assert exact_allows, (now - START, tokens, exact)
            assert result.retry_after is None
            return
        # At most one bucket early: with a 24 h + 60 s day window the oracle refuses too.
        assert not wide_allows, (now - START, tokens, exact)
        if exact_allows:
            refused_early.append(now)
            assert result.reason == RPD
        wait = overall_wait(exact)
        if wait is None:
            assert result.retry_after is None
            return
        assert result.retry_after is not None
        assert result.retry_after > 0
        assert result.retry_after >= wait - ABS
        upper = max(w + DAY_SLACK if name == RPD else w for name, w in exact.items() if w is not None)
        assert result.retry_after <= upper + ABS
        # At now + retry_after the exact oracle allows (nothing recorded in between).
        assert oracle.allows(now + result.retry_after + ABS, tokens)

    run_trace(registry, key, clock, oracle, steps, check)


# --------------------------------------------------------------------------- exact boundaries


def test_request_59_9_seconds_old_counts_60_1_does_not(tmp_path: Path, store: str) -> None:
    registry, key, clock = make_registry(tmp_path, {"requestsPerMinute": 1}, store)
    registry.record_usage(key, 10, 10)
    clock[0] = START + 59.9
    result = registry.check_rate_limit(key, 0)
    assert not result.allowed
    assert result.reason == RPM
    assert result.retry_after == pytest.approx(0.1, abs=ABS)
    clock[0] = START + 60.0  # exactly 60 s old: out of the window (age < 60 counts)
    assert registry.check_rate_limit(key, 0).allowed
    clock[0] = START + 60.1
    result = registry.check_rate_limit(key, 0)
    assert result.allowed
    assert result.reason is None
    assert result.retry_after is None


def test_tokens_59_9_seconds_old_count_60_1_do_not(tmp_path: Path, store: str) -> None:
    registry, key, clock = make_registry(tmp_path, {"tokensPerMinute": 100}, store)
    registry.record_usage(key, 60, 40)
    clock[0] = START + 30.0
    registry.record_usage(key, 0, 0)  # a request without tokens changes nothing for the token limit
    assert registry.check_rate_limit(key, 0).allowed  # exactly at the limit is allowed
    clock[0] = START + 59.9
    result = registry.check_rate_limit(key, 1)
    assert not result.allowed
    assert result.reason == TPM
    assert result.retry_after == pytest.approx(0.1, abs=ABS)
    result = registry.check_rate_limit(key, 101)
    assert not result.allowed
    assert result.reason == TPM
    assert result.retry_after is None  # more than the limit can never pass
    clock[0] = START + 60.1
    assert registry.check_rate_limit(key, 100).allowed
    result = registry.check_rate_limit(key, 101)
    assert not result.allowed
    assert result.retry_after is None


def test_per_day_boundaries(tmp_path: Path, store: str) -> None:
    registry, key, clock = make_registry(tmp_path, {"requestsPerDay": 1}, store)
    registry.record_usage(key, 1, 1)
    for age in (0.0, 59.9, 3_600.0, DAY - 60.1, DAY - 0.1):
        clock[0] = START + age
        result = registry.check_rate_limit(key, 0)
        assert not result.allowed, age
        assert result.reason == RPD
        assert result.retry_after is not None
        # Between the exact expiry and one bucket later.
        assert DAY - age - ABS <= result.retry_after <= DAY - age + DAY_BUCKET + ABS
    clock[0] = START + DAY + DAY_BUCKET  # 24 h + 60 s old: must be free whatever the bucketing
    assert registry.check_rate_limit(key, 0).allowed


def test_model_without_rate_limit_is_always_allowed(tmp_path: Path, store: str) -> None:
    registry, key, _clock = make_registry(tmp_path, None, store)
    for _ in range(1_000):
        registry.record_usage(key, 10**9, 10**9)
    result = registry.check_rate_limit(key, 10**12)
    assert result.allowed
    assert result.retry_after is None
    assert window_entries(registry, key) == 0


# --------------------------------------------------------------------------- memory stays bounded


def _bound(rpm: int | None, tpm: int | None, rpd: int | None) -> int:
    """The documented per-window bounds (see ratelimit.py): a count window holds at most limit + 1 entries,
    a per-minute token log at most rpm + 1 (when rpm is set), a day window at most DAY / DAY_BUCKET + 1 (one bucket
    a minute: entries leave by expiring, never because of the limit)."""
    total = 0
    if rpm is not None:
        total += rpm + 1
    if tpm is not None:
        total += rpm + 1 if rpm is not None else 10_000
    if rpd is not None:
        total += int(DAY / DAY_BUCKET) + 1
    return total


@pytest.mark.slow
def test_memory_stays_bounded_within_limits(tmp_path: Path, store: str) -> None:
    import random

    rng = random.Random(20240229)
    # 100_000 requests at <= 60 a minute take more than a day, so the day window fills up too.
    rpm, tpm, rpd = 60, 10**15, 200_000
    registry, key, clock = make_registry(tmp_path, limits_json(rpm, tpm, rpd), store)
    bound = _bound(rpm, tpm, rpd)
    assert bound == 61 + 61 + 1441
    highest = 0
    for n in range(100_000):
        tokens = rng.choice((0, 1, rng.randrange(10**6), rng.randrange(10**12), 10**13))
        result = registry.check_rate_limit(key, tokens)
        if not result.allowed:
            assert result.retry_after is not None
            clock[0] += result.retry_after
            assert registry.check_rate_limit(key, tokens).allowed
        registry.record_usage(key, *split(tokens))
        clock[0] += rng.random() * 0.5
        if n % 97 == 0:
            count = window_entries(registry, key)  # what the windows store, cancelled entries included
            highest = max(highest, count)
            assert count <= bound, (n, count)
    assert window_entries(registry, key) <= bound
    # The day window really filled up (so the bound was exercised, not trivially met).
    assert highest >= 1_400
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 100_000


@pytest.mark.parametrize(
    ("rpm", "tpm", "rpd"),
    [(50, 1_000, None), (None, 1_000, None), (3, None, 5), (None, 10**6, 10_000), (10, 10**18, 2_000)],
)
def test_memory_stays_bounded_beyond_limits_with_huge_tokens(
    tmp_path: Path, store: str, rpm: int | None, tpm: int | None, rpd: int | None
) -> None:
    """record_usage does not enforce limits: 100_000 records far over them still use bounded memory (the token
    counts stay within what the usage counters may hold, 2**63-1 in all)."""
    import random

    rng = random.Random(7)
    registry, key, clock = make_registry(tmp_path, limits_json(rpm, tpm, rpd), store)
    bound = _bound(rpm, tpm, rpd)
    # (A round trip per record: on Redis a quarter of the records, still minutes of traffic past every cap.)
    for n in range(100_000 if store == "memory://" else 25_000):
        registry.record_usage(key, rng.choice((0, 1, 10**9, 10**13)), rng.choice((0, 10**12)))
        if n % 10 == 0:
            clock[0] += rng.random() * 3
        if n % 251 == 0:
            assert window_entries(registry, key) <= bound, n
    assert window_entries(registry, key) <= bound


@pytest.mark.parametrize("tokens", [1, 10**6, 2**48])  # 20,000 requests of 2**48: within the 64-bit counters
def test_token_log_does_not_grow_with_token_counts(tmp_path: Path, store: str, tokens: int) -> None:
    rpm, tpm = 20, 2**63 - 1  # the largest limit a definition may hold
    registry, key, clock = make_registry(tmp_path, limits_json(rpm, tpm, None), store)
    for n in range(20_000):
        registry.record_usage(key, tokens, 0)
        clock[0] += 0.01 * (n % 3)
    # Far over the request limit: both windows hold at most rpm + 1 entries.
    assert window_entries(registry, key) <= 2 * (rpm + 1)


# --------------------------------------------------------------------------- TrailingWindow directly


def test_trailing_window_entries_total_and_wait() -> None:
    w = TrailingWindow(60.0, 10)
    assert w.entries() == []
    assert w.total(0.0) == 0
    assert w.wait(0.0, 10) == 0.0
    assert w.wait(0.0, 11) is None
    w.add(0.0, 3)
    w.add(10.0, 4)
    w.add(10.0, 0)  # zero changes nothing
    assert w.entries() == [(0.0, 3), (10.0, 4)]
    assert len(w) == 2
    assert w.total(10.0) == 7
    assert w.wait(10.0, 3) == 0.0  # 7 + 3 == 10 fits
    assert w.wait(10.0, 4) == pytest.approx(50.0)  # the 3 at t=0 must expire (at 60)
    assert w.wait(10.0, 8) == pytest.approx(60.0)  # both must expire; the 4 expires at 70
    assert w.wait(10.0, 10) == pytest.approx(60.0)
    assert w.wait(10.0, 11) is None
    assert w.total(59.999) == 7
    assert w.total(60.0) == 4  # age 60 no longer counts
    assert w.entries() == [(10.0, 4)]
    assert w.wait(60.0, 6) == 0.0
    assert w.wait(60.0, 7) == pytest.approx(10.0)  # the 4 at t=10 expires at 70
    assert w.total(70.0) == 0
    assert w.entries() == []
    assert w.wait(70.0, 10) == 0.0


def test_trailing_window_same_timestamp_and_clock_step_back_merge() -> None:
    w = TrailingWindow(60.0, 100)
    w.add(5.0, 1)
    w.add(5.0, 2)
    assert w.entries() == [(5.0, 3)]
    w.add(4.0, 1)  # clock stepped back: merged into the newest entry, which expires no earlier
    assert w.entries() == [(5.0, 4)]
    assert w.total(64.9) == 4
    assert w.total(65.0) == 0


def test_trailing_window_keeps_every_entry_until_it_expires() -> None:
    # Entries leave by expiring only, never because of the limit: a limit raised later must still see them.
    w = TrailingWindow(60.0, 5)
    w.add(0.0, 1)
    w.add(1.0, 5)
    w.add(2.0, 1)
    assert w.entries() == [(0.0, 1), (1.0, 5), (2.0, 1)]
    assert w.wait(2.0, 0) == pytest.approx(59.0)  # the 1 at t=0 and the 5 at t=1 must go
    assert w.wait(2.0, 5) == pytest.approx(60.0)
    assert w.entries() == [(0.0, 1), (1.0, 5), (2.0, 1)]
    assert w.total(60.0) == 6


def test_trailing_window_granularity_buckets() -> None:
    w = TrailingWindow(DAY, 1_000, granularity=60.0)
    w.add(1.0, 1)
    w.add(30.0, 1)
    w.add(59.999, 1)
    assert w.entries() == [(60.0, 3)]  # stamped at the end of their minute
    w.add(60.0, 1)
    assert w.entries() == [(60.0, 3), (120.0, 1)]
    assert w.total(60.0 + DAY - 0.001) == 4
    assert w.total(60.0 + DAY) == 1
    later = 60.0 + DAY
    for minute in range(3 * 24 * 60):
        w.add(later + minute * 60.0 + 0.5, 1)
        assert len(w) <= int(DAY / 60.0) + 1


def test_trailing_window_max_entries_merges_the_oldest_conservatively() -> None:
    w = TrailingWindow(60.0, 1_000, max_entries=3)
    for t in (0.0, 1.0, 2.0, 3.0):
        w.add(t, 1)
    assert len(w) == 3
    assert w.entries() == [(1.0, 2), (2.0, 1), (3.0, 1)]
    assert w.total(3.0) == 4  # nothing is forgotten
    assert w.total(60.5) == 4  # the merged unit counts a little longer (conservative)
    assert w.total(61.0) == 2


def test_trailing_window_refill_copies_entries() -> None:
    source = TrailingWindow(60.0, 10)
    for t, amount in [(0.0, 2), (5.0, 3), (5.0, 1), (20.0, 4)]:
        source.add(t, amount)
    held = source.entries()
    assert held == [(0.0, 2), (5.0, 4), (20.0, 4)]
    copy = TrailingWindow(60.0, 10)
    copy.refill(held)
    assert copy.entries() == held
    for now in (20.0, 59.0, 60.0, 65.0, 79.0, 80.0):
        for amount in range(12):
            assert copy.wait(now, amount) == source.wait(now, amount)
    # Refilling into a smaller limit keeps everything: the larger limit may come back.
    small = TrailingWindow(60.0, 4)
    small.refill(held)
    assert small.entries() == held
    # Zero amounts are skipped.
    empty = TrailingWindow(60.0, 4)
    empty.refill([(1.0, 0)])
    assert empty.entries() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0.0, "limit": 1},
        {"window": 60.0, "limit": 0},
        {"window": -1.0, "limit": 1},
        {"window": 60.0, "limit": 1, "granularity": -1.0},
        {"window": 60.0, "limit": 1, "max_entries": 1},
    ],
)
def test_trailing_window_rejects_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        TrailingWindow(**kwargs)


@SETTINGS
@given(
    limit=st.integers(min_value=1, max_value=50),
    ops=st.lists(
        st.tuples(small_advance, st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=60)),
        min_size=1,
        max_size=80,
    ),
)
@example(limit=5, ops=[(0.0, 1, 0), (1.0, 5, 0), (0.0, 1, 5), (59.0, 0, 5), (1.0, 0, 5)])
def test_trailing_window_matches_the_oracle(limit: int, ops: list[tuple[float, int, int]]) -> None:
    """Without granularity (and under max_entries) the window's answers are exact: wait() is the oracle's wait,
    and total() is exact up to the limit (entries dropped only once the newer ones alone exceed it)."""
    window = TrailingWindow(MINUTE, limit)
    events: list[tuple[float, int]] = []
    now = START
    for advance, amount, probe in ops:
        now += advance
        window.add(now, amount)
        if amount > 0:
            events.append((now, amount))
        live = [(t, k) for t, k in events if now - t < MINUTE]
        exact_total = sum(k for _, k in live)
        total = window.total(now)
        assert min(total, limit + 1) == min(exact_total, limit + 1)
        assert total <= exact_total
        assert sum(k for _, k in window.entries()) == total
        expected = _wait_for_tokens(live, limit, probe, now)
        got = window.wait(now, probe)
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=ABS)


@SETTINGS
@given(
    limit=st.integers(min_value=1, max_value=20),
    ops=st.lists(
        st.tuples(
            st.one_of(small_advance, st.floats(min_value=0, max_value=5_000, allow_nan=False)),
            st.integers(min_value=0, max_value=3),
        ),
        min_size=1,
        max_size=80,
    ),
)
def test_bucketed_window_is_conservative_by_at_most_one_bucket(limit: int, ops: list[tuple[float, int]]) -> None:
    window = TrailingWindow(3_600.0, limit, granularity=60.0)
    events: list[tuple[float, int]] = []
    now = START
    for advance, amount in ops:
        now += advance
        window.add(now, amount)
        if amount > 0:
            events.append((now, amount))
        exact = sum(k for t, k in events if now - t < 3_600.0)
        wide = sum(k for t, k in events if now - t < 3_600.0 + 60.0 + 1e-3)
        total = window.total(now)
        # Never forgets what the exact window holds (up to the limit), never counts beyond one bucket more.
        assert min(total, limit + 1) >= min(exact, limit + 1)
        assert total <= wide
        assert len(window) <= 3_600 // 60 + 1


def test_a_limiter_whose_windows_were_taken_over_holds_nothing() -> None:
    # A changed limit takes the old limiter's entries (and open reservations); the old one is left empty and
    # consistent, not with counters that still count entries it no longer holds.
    from noa_ai_provider.ratelimit import ModelLimiter
    from noa_ai_provider.schemas import RateLimitConfig

    old = ModelLimiter(RateLimitConfig(requests_per_minute=10, tokens_per_minute=1_000))
    for n in range(5):
        old.record(1_000.0 + n, 10, 5)
    cancelled = old.reserve(1_009.0, 7, 0)
    held = old.reserve(1_010.0, 20, 0)
    assert not isinstance(held, RateLimitCheck)
    assert not isinstance(cancelled, RateLimitCheck)
    ModelLimiter.release(cancelled)  # not the newest entry: it stays as a zero until compacted
    new = ModelLimiter(RateLimitConfig(requests_per_minute=8, tokens_per_minute=1_000), previous=old)
    assert old.entry_count() == 0
    assert new.totals(1_011.0) == {"requests_per_minute": 6, "tokens_per_minute": 95}
    ModelLimiter.release(held)
    assert new.totals(1_011.0) == {"requests_per_minute": 5, "tokens_per_minute": 75}
