"""The fixtures shipped for downstream test suites, exercised the way a user's suite would use them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import EventRecorder, FakeClock

from .samples import GPT4

pytest_plugins = ["pytester"]


def test_fixtures_work_together(
    noa_registry: EnhancedModelRegistry, noa_clock: FakeClock, noa_events: EventRecorder
) -> None:
    key = noa_registry.register_model({**GPT4, "rateLimit": {"requestsPerMinute": 1}})
    noa_registry.record_usage(key, 1000, 1000)
    assert not noa_registry.check_rate_limit(key, 0).allowed
    noa_clock.advance(60)
    assert noa_registry.check_rate_limit(key, 0).allowed
    assert noa_events.names() == ["model-registered", "usage-recorded"]
    assert noa_events.of("usage-recorded")[0]["cost"] == Decimal("0.04")


def test_plugin_is_registered_through_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_user(noa_registry, noa_clock):
            assert noa_registry.list_models() == []
            assert noa_clock() == 1_700_000_000.0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_fake_clock_refuses_to_go_back() -> None:
    clock = FakeClock(10)
    with pytest.raises(ValueError, match="does not go backwards"):
        clock.advance(-1)
    clock.set(5)
    assert clock() == 5
