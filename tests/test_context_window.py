"""A request over the model's context window or maximum output is refused before it costs anything (or warned
about, with ``on_context_overflow="warn"``); recording what a provider already took is never refused."""

from __future__ import annotations

import asyncio
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import ConfigError, ContextWindowWarning, EnhancedModelRegistry, InvalidUsageError
from noa_ai_provider.testing import FakeClock
from tests.samples import model

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)

SMALL = model(id="small", contextWindow=8_000, maxTokens=1_000, rateLimit={"requestsPerMinute": 10})
KEY = "openai:small"


def test_estimate_over_the_context_window_raises(registry: EnhancedModelRegistry) -> None:
    registry.register_model(SMALL)
    assert registry.estimate_cost(KEY, 8_000, 1_000) == Decimal("0.11")  # at the limits: fine
    with pytest.raises(InvalidUsageError, match=r"8,001 input tokens exceed the context window of 8,000"):
        registry.estimate_cost(KEY, 8_001, 0)
    with pytest.raises(InvalidUsageError, match=r"1,001 output tokens exceed the model's maximum output of 1,000"):
        registry.estimate_cost(KEY, 10, 1_001)


def test_acquire_over_the_context_window_raises_and_reserves_nothing(registry: EnhancedModelRegistry) -> None:
    registry.register_model(SMALL)
    with pytest.raises(InvalidUsageError, match="context window"):
        registry.acquire(KEY, 9_000, 10)
    with pytest.raises(InvalidUsageError, match="maximum output"):
        registry.acquire(KEY, 10, 5_000, wait=True, timeout=1)
    for _ in range(10):  # every one of the 10 requests per minute is still free
        registry.acquire(KEY, 10, 10).commit(10)
    assert not registry.check_rate_limit(KEY, 1).allowed


def test_acquire_async_checks_too(registry: EnhancedModelRegistry) -> None:
    registry.register_model(SMALL)
    with pytest.raises(InvalidUsageError, match="context window"):
        asyncio.run(registry.acquire_async(KEY, 9_000, 10))


def test_record_usage_records_whatever_the_size(registry: EnhancedModelRegistry) -> None:
    registry.register_model(SMALL)
    assert registry.record_usage(KEY, 20_000, 2_000) == Decimal("0.26")


def test_warn_mode_warns_and_estimates(tmp_path: Path, store: str) -> None:
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json",
        auto_save=False,
        clock=FakeClock(0),
        on_context_overflow="warn",
        backend=store,
    ) as registry:
        registry.register_model(SMALL)
        with pytest.warns(ContextWindowWarning, match="context window"):
            assert registry.estimate_cost(KEY, 9_000, 0) == Decimal("0.09")
        with pytest.warns(ContextWindowWarning, match="maximum output"):
            registry.acquire(KEY, 10, 2_000).cancel()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            registry.estimate_cost(KEY, 8_000, 1_000)  # within the limits: no warning


def test_a_model_without_limits_is_never_checked(registry: EnhancedModelRegistry) -> None:
    registry.register_model(model(id="open", contextWindow=None, maxTokens=None))
    assert registry.estimate_cost("openai:open", 10**9, 10**9) == Decimal(40_000)


def test_bad_mode_is_a_config_error(tmp_path: Path, store: str) -> None:
    with pytest.raises(ConfigError, match="on_context_overflow"):
        EnhancedModelRegistry(
            persistence_path=tmp_path / "r.json", auto_save=False, on_context_overflow="ignore", backend=store
        )
