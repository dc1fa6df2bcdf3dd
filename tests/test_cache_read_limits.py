"""Limits that count what providers count: cache reads out of the token limits where the model says so
(Anthropic's input-tokens-per-minute), and the limits learned from headers visible through
``effective_rate_limit``."""

from __future__ import annotations

import pytest

from noa_ai_provider import EnhancedModelRegistry, ModelNotFoundError, RateLimitConfig
from tests.samples import limited

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)

ITPM = {"inputTokensPerMinute": 10_000, "outputTokensPerMinute": 2_000, "countCacheReads": False}


def test_cache_reads_do_not_count_toward_the_input_limit(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited(ITPM, provider="claude"))
    # 9,000 input of which 8,000 read from the cache: 1,000 count.
    registry.record_usage(key, 9_000, 100, cached_input_tokens=8_000)
    assert registry.check_rate_limit(key, 9_000).allowed  # 1,000 + 9,000 fits 10,000
    assert not registry.check_rate_limit(key, 9_001).allowed


def test_cache_writes_still_count(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited(ITPM, provider="claude"))
    registry.record_usage(key, 9_000, 100, cache_write_tokens=8_000)
    assert not registry.check_rate_limit(key, 1_001).allowed


def test_a_commit_settles_without_the_cache_reads(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited(ITPM, provider="claude"))
    reservation = registry.acquire(key, 9_000, 500)  # the caller cannot know the cache hits before the call
    assert not registry.check_rate_limit(key, 1_001).allowed
    reservation.commit(100, cached_input_tokens=8_500)
    assert registry.check_rate_limit(key, 9_500).allowed  # 500 counted
    assert not registry.check_rate_limit(key, 9_501).allowed


def test_by_default_cache_reads_count(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"inputTokensPerMinute": 10_000}))
    registry.record_usage(key, 9_000, 0, cached_input_tokens=8_000)
    assert not registry.check_rate_limit(key, 1_001).allowed


def test_the_combined_token_limit_leaves_cache_reads_out_too(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 10_000, "countCacheReads": False}))
    registry.record_usage(key, 9_000, 1_000, cached_input_tokens=8_000)  # 1,000 in + 1,000 out count
    assert registry.check_rate_limit(key, 8_000).allowed
    assert not registry.check_rate_limit(key, 8_001).allowed


def test_effective_rate_limit_shows_limits_learned_from_headers(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 50}))
    assert registry.effective_rate_limit(key) == RateLimitConfig(requests_per_minute=50)
    registry.update_rate_limits_from_headers(
        key,
        {
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149000",
            "x-ratelimit-reset-tokens": "6s",
        },
    )
    assert registry.effective_rate_limit(key) == RateLimitConfig(requests_per_minute=50, tokens_per_minute=150_000)
    entry = registry.get_model(key)
    assert entry is not None
    assert entry.rate_limit == RateLimitConfig(requests_per_minute=50)  # the definition stays as configured


def test_effective_rate_limit_of_an_unlimited_model(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited(None))
    assert registry.effective_rate_limit(key) is None
    with pytest.raises(ModelNotFoundError):
        registry.effective_rate_limit("openai:nope")
