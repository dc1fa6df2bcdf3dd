"""Changing a limit, or removing a model and defining it again, never forgets the traffic of the window."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, RateLimitExceeded
from noa_ai_provider.testing import EventRecorder, FakeClock

from .samples import limited

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)

KEY = "openai:limited"


def admitted_in(registry: EnhancedModelRegistry, tries: int = 30) -> int:
    """How many requests acquire admits now (each committed at once)."""
    count = 0
    for _ in range(tries):
        try:
            registry.acquire(KEY, 1, 0).commit(0)
        except RateLimitExceeded:
            continue
        count += 1
    return count


def write_config(path: Path, *models: dict[str, Any]) -> None:
    path.write_text(json.dumps({"models": list(models)}))


def wait_for(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_lowering_and_raising_a_limit_forgets_nothing(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    registry.register_model(limited({"requestsPerMinute": 10}))
    assert admitted_in(registry) == 10
    clock.advance(0.5)
    registry.update_model(KEY, {"rateLimit": {"requestsPerMinute": 2}})
    assert admitted_in(registry) == 0
    clock.advance(0.5)
    registry.update_model(KEY, {"rateLimit": {"requestsPerMinute": 10}})
    assert admitted_in(registry) == 0  # the 10 of this minute still count (17 were admitted before the fix)
    clock.advance(60)
    assert admitted_in(registry) == 10


def test_the_same_through_a_hot_reload(tmp_path: Path, clock: FakeClock, store: str) -> None:
    config = tmp_path / "models-config.json"
    write_config(config, limited({"requestsPerMinute": 10}))
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, clock=clock, backend=store
    ) as registry:
        events = EventRecorder().attach(registry)
        with registry.watch_config(config, interval=0.01, debounce=0.02):
            base = len(events.of("config-reloaded"))  # watching a file not loaded yet loads it
            assert admitted_in(registry) == 10
            for limit, reloads in ((2, 1), (10, 2)):
                write_config(config, limited({"requestsPerMinute": limit}))
                wait_for(lambda n=base + reloads: len(events.of("config-reloaded")) >= n)
                entry = registry.get_model(KEY)
                assert entry is not None
                assert entry.rate_limit is not None
                assert entry.rate_limit.requests_per_minute == limit
                assert admitted_in(registry) == 0
        clock.advance(60)
        assert admitted_in(registry) == 10


def test_a_day_limit_lowered_and_raised_forgets_nothing(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    registry.register_model(limited({"tokensPerDay": 1_000}))
    registry.acquire(KEY, 900, 0).commit(0)
    clock.advance(120)
    registry.update_model(KEY, {"rateLimit": {"tokensPerDay": 100}})
    registry.update_model(KEY, {"rateLimit": {"tokensPerDay": 1_000}})
    assert registry.check_rate_limit(KEY, 100).allowed
    assert not registry.check_rate_limit(KEY, 101).allowed


@pytest.mark.parametrize("how", ["unregister", "clear"])
def test_removing_and_defining_again_keeps_the_windows(
    registry: EnhancedModelRegistry, clock: FakeClock, tmp_path: Path, how: str
) -> None:
    config = tmp_path / "models-config.json"
    write_config(config, limited({"requestsPerMinute": 3}))
    registry.load_from_config(config)
    assert admitted_in(registry) == 3
    clock.advance(1)
    if how == "unregister":
        registry.unregister_model(KEY)
        registry.register_model(limited({"requestsPerMinute": 3}))
    else:
        registry.clear_registry()
        registry.load_from_config(config)
    assert admitted_in(registry) == 0  # 6 were admitted in one minute before the fix
    clock.advance(60)
    assert admitted_in(registry) == 3


def test_a_hot_reload_that_drops_and_restores_a_model_keeps_its_windows(
    tmp_path: Path, clock: FakeClock, store: str
) -> None:
    config = tmp_path / "models-config.json"
    other = limited({"requestsPerMinute": 3}) | {"id": "other"}
    write_config(config, limited({"requestsPerMinute": 3}), other)
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, clock=clock, backend=store
    ) as registry:
        events = EventRecorder().attach(registry)
        with registry.watch_config(config, interval=0.01, debounce=0.02):
            base = len(events.of("config-reloaded"))  # watching a file not loaded yet loads it
            assert admitted_in(registry) == 3
            write_config(config, other)
            wait_for(lambda: len(events.of("config-reloaded")) >= base + 1)
            assert KEY not in registry
            write_config(config, limited({"requestsPerMinute": 3}), other)
            wait_for(lambda: len(events.of("config-reloaded")) >= base + 2)
            assert KEY in registry
            assert admitted_in(registry) == 0


def test_windows_of_a_model_removed_a_day_ago_are_not_revived(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    registry.register_model(limited({"requestsPerDay": 3}))
    assert admitted_in(registry) == 3
    registry.unregister_model(KEY)
    clock.advance(86_400 + 60)
    registry.register_model(limited({"requestsPerDay": 3}))
    assert admitted_in(registry) == 3


def test_a_limit_removed_and_set_again_forgets_nothing(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    registry.register_model(limited({"requestsPerMinute": 2, "tokensPerMinute": 1_000}))
    assert admitted_in(registry) == 2
    clock.advance(1)
    registry.update_model(KEY, {"rateLimit": {"tokensPerMinute": 1_000}})  # no request limit for a moment
    assert admitted_in(registry, tries=3) == 3  # unlimited requests now: these count too
    clock.advance(1)
    registry.update_model(KEY, {"rateLimit": {"requestsPerMinute": 2, "tokensPerMinute": 1_000}})
    assert admitted_in(registry) == 0  # the 5 of this minute still count
    clock.advance(60)
    assert admitted_in(registry) == 2


def test_a_window_compacted_while_over_its_entry_cap_keeps_its_traffic(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    # Regression: the trim went on with the deque it had before compacting cancelled entries away, raising
    # IndexError mid-record and forgetting the window's traffic.
    registry.register_model(limited({"requestsPerMinute": 10}))
    held = []
    for _ in range(10):
        held.append(registry.acquire(KEY, 10))
        clock.advance(0.1)
    for reservation in held[:9]:
        reservation.cancel()
    registry.update_model(KEY, {"rateLimit": {"requestsPerMinute": 2}})
    held[9].commit(0, input_tokens=10)
    for _ in range(3):
        clock.advance(0.1)
        registry.record_usage(KEY, 10, 0)
    assert not registry.check_rate_limit(KEY, 0).allowed
    assert admitted_in(registry) == 0
