"""Provider rate-limit headers: parsing (OpenAI, Anthropic, ``retry-after``) and what they do to the local windows.

Header values follow the providers' documentation: OpenAI's ``x-ratelimit-*`` example (limit 60 requests and
150000 tokens, 59 and 149984 remaining, resets ``1s`` and ``6m0s``) and Anthropic's ``anthropic-ratelimit-*``
headers with RFC 3339 reset times, plus ``retry-after`` as sent with a 429.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, InvalidUsageError, ModelNotFoundError, RateLimitHeaderWarning
from noa_ai_provider.errors import RateLimitExceeded
from noa_ai_provider.headers import LimitReport, ProviderLimits, parse_duration, parse_rate_limit_headers
from noa_ai_provider.testing import FakeClock

from .samples import hold, limited

NOON = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()  # 1714564800.0
RPM, TPM, ITPM, OTPM = "requests per minute", "tokens per minute", "input tokens per minute", "output tokens per minute"

OPENAI = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}

ANTHROPIC = {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-requests-reset": "2024-05-01T12:00:30Z",
    "anthropic-ratelimit-tokens-limit": "40000",
    "anthropic-ratelimit-tokens-remaining": "39000",
    "anthropic-ratelimit-tokens-reset": "2024-05-01T12:00:10Z",
    "anthropic-ratelimit-input-tokens-limit": "30000",
    "anthropic-ratelimit-input-tokens-remaining": "29500",
    "anthropic-ratelimit-input-tokens-reset": "2024-05-01T12:00:05Z",
    "anthropic-ratelimit-output-tokens-limit": "8000",
    "anthropic-ratelimit-output-tokens-remaining": "7500",
    "anthropic-ratelimit-output-tokens-reset": "2024-05-01T12:00:02Z",
    "retry-after": "20",
}


def refusal(registry: EnhancedModelRegistry, key: str, *args: Any) -> RateLimitExceeded:
    with pytest.raises(RateLimitExceeded) as info:
        registry.acquire(key, *args)
    return info.value


def capacity(registry: EnhancedModelRegistry, key: str, upper: int, output: bool = False) -> int:
    """The most tokens (input, or output with ``output``) one request may carry now; -1 when none fits."""

    def fits(n: int) -> bool:
        return registry.check_rate_limit(key, n, output_tokens=n if output else None).allowed

    if not fits(0):
        return -1
    lo, hi = 0, upper + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


@pytest.fixture
def noon(clock: FakeClock) -> FakeClock:
    clock.set(NOON)
    return clock


# --------------------------------------------------------------------------- parsing


def test_openai_documentation_example() -> None:
    report = parse_rate_limit_headers(OPENAI, 1000.0)
    assert report == ProviderLimits(
        requests=LimitReport(limit=60, remaining=59, reset_at=1001.0),
        tokens=LimitReport(limit=150000, remaining=149984, reset_at=1360.0),
    )
    assert report.input_tokens is None
    assert report.output_tokens is None
    assert report.retry_after is None


def test_anthropic_headers() -> None:
    report = parse_rate_limit_headers(ANTHROPIC, NOON)
    assert report.requests == LimitReport(limit=50, remaining=49, reset_at=NOON + 30)
    assert report.tokens == LimitReport(limit=40000, remaining=39000, reset_at=NOON + 10)
    assert report.input_tokens == LimitReport(limit=30000, remaining=29500, reset_at=NOON + 5)
    assert report.output_tokens == LimitReport(limit=8000, remaining=7500, reset_at=NOON + 2)
    assert report.retry_after == 20.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("59.5s", 59.5),
        ("1m30ms", 60.03),
        ("2h", 7200.0),
        ("0s", 0.0),
        ("0.5", 0.5),
        ("17", 17.0),
        (" 6m0s ", 360.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    "text", ["", "s", "6x", "1h 2m", "6m0", "1.5.5s", "-1s", "ms20", "1d", "abc", "nan", "inf", "-inf", "-5"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidUsageError):
        parse_duration(text)


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-05-01T12:00:30Z",
        "2024-05-01T12:00:30+00:00",
        "2024-05-01T14:00:30+02:00",
        "2024-05-01T07:00:30-05:00",
        "2024-05-01T12:00:30.000Z",
    ],
)
def test_rfc3339_reset_times(stamp: str) -> None:
    headers = {"anthropic-ratelimit-tokens-remaining": "5", "anthropic-ratelimit-tokens-reset": stamp}
    report = parse_rate_limit_headers(headers, NOON)
    assert report.tokens == LimitReport(limit=None, remaining=5, reset_at=NOON + 30)


def test_fractional_rfc3339_reset_time() -> None:
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2024-05-01T12:00:00.25Z",
    }
    report = parse_rate_limit_headers(headers, NOON)
    assert report.requests is not None
    assert report.requests.reset_at == NOON + 0.25


def test_header_names_are_case_insensitive() -> None:
    mixed = {
        "X-RateLimit-Limit-Tokens": "150000",
        "X-RATELIMIT-REMAINING-TOKENS": "149984",
        "x-RateLimit-Reset-Tokens": "6m0s",
        "Anthropic-RateLimit-Output-Tokens-Remaining": "7",
        "Anthropic-Ratelimit-Output-Tokens-Reset": "2024-05-01T12:00:02Z",
        "Retry-After": "20",
    }
    report = parse_rate_limit_headers(mixed, NOON)
    assert report.tokens == LimitReport(limit=150000, remaining=149984, reset_at=NOON + 360)
    assert report.output_tokens == LimitReport(limit=None, remaining=7, reset_at=NOON + 2)
    assert report.retry_after == 20.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "Wed, 01 May 2024 12:00:20 GMT"}, 20.0),
        ({"retry-after": "Wed, 01 May 2024 11:59:00 GMT"}, 0.0),  # in the past: no wait
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),  # the precise one wins
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float) -> None:
    assert parse_rate_limit_headers(headers, NOON).retry_after == seconds


def test_missing_pieces() -> None:
    # Nothing about rate limits: nothing reported.
    assert parse_rate_limit_headers({"content-type": "application/json"}, NOON) == ProviderLimits()
    # A limit without a remaining count says nothing to act on.
    assert parse_rate_limit_headers({"x-ratelimit-limit-tokens": "10"}, NOON).tokens is None
    # A remaining count without a reset: a minute (providers' limits are per minute).
    report = parse_rate_limit_headers({"x-ratelimit-remaining-requests": "3"}, NOON)
    assert report.requests == LimitReport(limit=None, remaining=3, reset_at=NOON + 60)


def test_anthropic_headers_win_over_openai_ones_for_the_same_dimension() -> None:
    headers = {
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "1s",
        "anthropic-ratelimit-tokens-remaining": "7",
        "anthropic-ratelimit-tokens-reset": "2024-05-01T12:00:10Z",
    }
    assert parse_rate_limit_headers(headers, NOON).tokens == LimitReport(limit=None, remaining=7, reset_at=NOON + 10)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-ratelimit-remaining-tokens", "lots"),
        ("x-ratelimit-remaining-tokens", "1.5"),
        ("x-ratelimit-remaining-tokens", ""),
        ("x-ratelimit-limit-tokens", "150k"),
        ("anthropic-ratelimit-input-tokens-remaining", "many"),
        ("anthropic-ratelimit-requests-limit", "5.0"),
        ("retry-after", "soon"),
        ("retry-after", "20s"),
        ("retry-after-ms", "1.5"),
        # Regression: reset values raised "not a duration" / "not an RFC 3339 time" without the header's name.
        ("x-ratelimit-reset-tokens", "soon"),
        ("x-ratelimit-reset-requests", "6m0"),
        ("anthropic-ratelimit-tokens-reset", "tomorrow"),
        ("x-ratelimit-reset-tokens", "nan"),
        ("x-ratelimit-reset-requests", "inf"),
        ("x-ratelimit-reset-requests", "-5"),
    ],
)
def test_bad_values_raise_naming_the_header(name: str, value: str) -> None:
    headers = dict(OPENAI) | dict(ANTHROPIC)
    headers[name] = value
    with pytest.raises(InvalidUsageError, match=name):
        parse_rate_limit_headers(headers, NOON)


def learned(registry: EnhancedModelRegistry, key: str) -> dict[str, int]:
    """The limits of ``key`` learned from headers: what it enforces beyond what it configures (public API only)."""
    entry = registry.get_model(key)
    assert entry is not None
    effective = registry.effective_rate_limit(key)
    configured = entry.rate_limit.model_dump(by_alias=False, exclude_none=True) if entry.rate_limit else {}
    enforced = effective.model_dump(by_alias=False, exclude_none=True) if effective else {}
    return {
        name: value
        for name, value in enforced.items()
        if name not in configured and name not in {"note", "count_cache_reads"}
    }


# --------------------------------------------------------------------------- the registry: tightening


@pytest.mark.usefixtures("store")
def test_openai_example_tightens_the_local_windows(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 500, "tokensPerMinute": 150_000}))
    report = registry.update_rate_limits_from_headers(key, OPENAI)
    assert report == parse_rate_limit_headers(OPENAI, NOON)
    # 149984 tokens remain (not 150000) until the reset, which is capped at the 60 s window.
    assert capacity(registry, key, 150_000) == 149_984
    error = refusal(registry, key, 149_985)
    assert (error.limit, error.retry_after) == (TPM, 60.0)
    # 59 requests remain (not 500) for 1 s.
    reservations = [registry.acquire(key, 0) for _ in range(59)]
    error = refusal(registry, key, 0)
    assert (error.limit, error.retry_after) == (RPM, 1.0)
    noon.advance(1)
    reservations.append(registry.acquire(key, 0))  # the provider's minute is over: only the local count is left
    noon.advance(59)
    assert capacity(registry, key, 150_000) == 150_000
    for reservation in reservations:
        reservation.cancel()


@pytest.mark.usefixtures("store")
def test_remaining_lower_than_local_refuses_until_the_reset(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    registry.record_usage(key, 100, 0)  # local: 100 used at noon
    noon.advance(10)
    registry.update_rate_limits_from_headers(
        key, {"x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "30s"}
    )
    assert capacity(registry, key, 1_000) == 500
    error = refusal(registry, key, 501)
    assert (error.key, error.limit, error.retry_after) == (key, TPM, 30.0)
    check = registry.check_rate_limit(key, 501)
    assert (check.allowed, check.reason, check.retry_after) == (False, TPM, 30.0)
    reservation = registry.acquire(key, 500)
    assert capacity(registry, key, 1_000) == 0  # a request of no tokens still fits
    noon.advance(30)  # the provider's reset: only what was counted here remains (100 + 500)
    assert capacity(registry, key, 1_000) == 400
    noon.set(NOON + 60)  # the 100 recorded at noon leave
    assert capacity(registry, key, 1_000) == 500
    reservation.cancel()
    assert capacity(registry, key, 1_000) == 1_000


@pytest.mark.parametrize(
    ("reset", "wait"), [("20ms", 0.02), ("20s", 20.0), ("59s", 59.0), ("6m0s", 60.0), ("1h", 60.0)]
)
@pytest.mark.usefixtures("store")
def test_retry_after_is_the_time_to_the_reset_capped_at_the_window(
    registry: EnhancedModelRegistry, noon: FakeClock, reset: str, wait: float
) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 150_000}))
    registry.update_rate_limits_from_headers(
        key, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": reset}
    )
    error = refusal(registry, key, 1)
    assert error.limit == TPM
    assert error.retry_after == pytest.approx(wait, abs=1e-6)
    registry.acquire(key, 0).cancel()  # a request of no tokens still fits
    noon.advance(error.retry_after)
    registry.acquire(key, 150_000).cancel()


@pytest.mark.usefixtures("store")
def test_remaining_higher_than_local_loosens_nothing(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 3, "tokensPerMinute": 1_500}))
    registry.record_usage(key, 1_000, 0)
    held = registry.acquire(key, 200)
    for headers in (
        {"x-ratelimit-remaining-tokens": "1400", "x-ratelimit-reset-tokens": "1s"},
        {"x-ratelimit-remaining-tokens": "150000", "x-ratelimit-limit-tokens": "150000"},
        {"x-ratelimit-remaining-requests": "100", "x-ratelimit-limit-requests": "100"},
    ):
        registry.update_rate_limits_from_headers(key, headers)
        assert capacity(registry, key, 2_000) == 300
        registry.acquire(key, 0).cancel()
    error = refusal(registry, key, 301)
    assert (error.limit, error.retry_after) == (TPM, 60.0)
    # The configured limits stay (a header limit replaces only limits learned from headers).
    assert learned(registry, key) == {}
    held.cancel()


@pytest.mark.usefixtures("store")
def test_a_limit_the_model_does_not_configure_is_learned(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 500}))
    assert registry.check_rate_limit(key, 10**9).allowed
    registry.update_rate_limits_from_headers(key, OPENAI)
    assert learned(registry, key) == {"tokens_per_minute": 150_000}
    assert capacity(registry, key, 10**6) == 149_984
    error = refusal(registry, key, 149_985)
    assert (error.limit, error.retry_after) == (TPM, 60.0)
    noon.advance(60)
    assert capacity(registry, key, 10**6) == 150_000
    error = refusal(registry, key, 150_001)  # the learned limit stays
    assert (error.limit, error.retry_after) == (TPM, None)
    # A changed definition keeps what was learned, unless it now configures the limit itself.
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 400}})
    assert capacity(registry, key, 10**6) == 150_000
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 400, "tokensPerMinute": 1_000}})
    assert capacity(registry, key, 10**6) == 1_000
    assert learned(registry, key) == {}


@pytest.mark.usefixtures("store")
def test_a_model_without_rate_limits_learns_them(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited(None))
    registry.update_rate_limits_from_headers(
        key,
        {"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"},
    )
    error = refusal(registry, key, 0)
    assert (error.limit, error.retry_after) == (RPM, 5.0)
    noon.advance(5)
    first, second = registry.acquire(key, 0), registry.acquire(key, 0)
    assert refusal(registry, key, 0).limit == RPM
    first.cancel()
    second.cancel()


@pytest.mark.usefixtures("store")
def test_a_remaining_count_without_a_limit_teaches_nothing(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 5}))
    registry.update_rate_limits_from_headers(key, {"x-ratelimit-remaining-tokens": "0"})
    assert learned(registry, key) == {}
    assert registry.check_rate_limit(key, 10**6).allowed


@pytest.mark.usefixtures("store")
def test_anthropic_input_and_output_limits(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(
        limited({"requestsPerMinute": 50, "inputTokensPerMinute": 30_000, "outputTokensPerMinute": 8_000}, "claude")
    )
    headers = {
        "anthropic-ratelimit-input-tokens-limit": "30000",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2024-05-01T12:00:30Z",
        "anthropic-ratelimit-output-tokens-limit": "8000",
        "anthropic-ratelimit-output-tokens-remaining": "7500",
        "anthropic-ratelimit-output-tokens-reset": "2024-05-01T12:00:02Z",
    }
    registry.update_rate_limits_from_headers(key, headers)
    error = refusal(registry, key, 1, 0)
    assert (error.limit, error.retry_after) == (ITPM, 30.0)
    assert capacity(registry, key, 1_000) == 0  # no input token left
    assert capacity(registry, key, 8_000, output=True) == 7_500
    # Output alone: 7500 until 12:00:02.
    assert registry.check_rate_limit(key, 7_500, output_tokens=7_500).allowed
    check = registry.check_rate_limit(key, 7_501, output_tokens=7_501)
    assert (check.reason, check.retry_after) == (OTPM, 2.0)
    registry.acquire(key, 0, 7_500).cancel()
    noon.advance(30)
    registry.acquire(key, 30_000, 8_000).cancel()


@pytest.mark.usefixtures("store")
def test_anthropic_example_on_a_model_with_token_limits(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 50, "tokensPerMinute": 40_000}, "claude"))
    registry.update_rate_limits_from_headers(key, {k: v for k, v in ANTHROPIC.items() if k != "retry-after"})
    # Configured: requests and tokens tightened; input and output limits learned from the headers.
    assert learned(registry, key) == {
        "input_tokens_per_minute": 30_000,
        "output_tokens_per_minute": 8_000,
    }
    assert capacity(registry, key, 40_000) == 29_500  # the input limit binds first
    check = registry.check_rate_limit(key, 29_501)
    assert (check.reason, check.retry_after) == (ITPM, 5.0)
    noon.advance(5)  # 12:00:05: the input and output resets have passed (39000 tokens remain until 12:00:10)
    registry.acquire(key, 30_000, 8_000).cancel()
    check = registry.check_rate_limit(key, 30_001)
    assert (check.reason, check.retry_after) == (ITPM, None)  # learned: 30000 input tokens a minute


@pytest.mark.usefixtures("store")
def test_a_reset_in_the_past_changes_nothing(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}, "claude"))
    registry.update_rate_limits_from_headers(
        key,
        {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "2024-05-01T11:59:59Z"},
    )
    assert capacity(registry, key, 1_000) == 1_000


@pytest.mark.usefixtures("store")
def test_case_insensitive_headers_tighten_too(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"tokensPerMinute": 1_000}))
    registry.update_rate_limits_from_headers(
        key, {"X-RateLimit-Remaining-Tokens": "10", "X-RateLimit-Reset-Tokens": "20s"}
    )
    assert capacity(registry, key, 1_000) == 10
    assert registry.check_rate_limit(key, 11).retry_after == 20.0


# --------------------------------------------------------------------------- the registry: retry-after


@pytest.mark.parametrize("rate_limit", [None, {"requestsPerMinute": 100, "tokensPerMinute": 10**6}])
@pytest.mark.usefixtures("store")
def test_retry_after_admits_nothing_until_then(
    registry: EnhancedModelRegistry, noon: FakeClock, rate_limit: dict[str, int] | None
) -> None:
    key = registry.register_model(limited(rate_limit))
    report = registry.update_rate_limits_from_headers(key, {"retry-after": "20"})
    assert report.retry_after == 20.0
    check = registry.check_rate_limit(key, 0)
    assert (check.allowed, check.reason, check.retry_after) == (False, "retry-after", 20.0)
    error = refusal(registry, key, 0)
    assert (error.key, error.limit, error.retry_after) == (key, "retry-after", 20.0)
    noon.advance(19.5)
    assert refusal(registry, key, 0).retry_after == 0.5
    noon.advance(0.5)
    registry.acquire(key, 1_000).commit(10)


@pytest.mark.usefixtures("store")
def test_retry_after_as_an_http_date_and_in_milliseconds(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 100}))
    registry.update_rate_limits_from_headers(key, {"Retry-After": "Wed, 01 May 2024 12:00:20 GMT"})
    assert refusal(registry, key, 0).retry_after == 20.0
    # A shorter retry-after later does not shorten the block.
    registry.update_rate_limits_from_headers(key, {"retry-after-ms": "1500"})
    assert refusal(registry, key, 0).retry_after == 20.0
    noon.advance(20)
    registry.acquire(key, 0).cancel()
    registry.update_rate_limits_from_headers(key, {"retry-after-ms": "1500"})
    assert refusal(registry, key, 0).retry_after == 1.5


@pytest.mark.usefixtures("store")
def test_retry_after_yields_to_a_longer_local_wait(registry: EnhancedModelRegistry, noon: FakeClock) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    hold(registry.acquire(key, 0))
    registry.update_rate_limits_from_headers(key, {"retry-after": "20"})
    error = refusal(registry, key, 0)
    assert (error.limit, error.retry_after) == (RPM, 60.0)
    registry.update_rate_limits_from_headers(key, {"retry-after": "90"})
    error = refusal(registry, key, 0)
    assert (error.limit, error.retry_after) == ("retry-after", 90.0)


@pytest.mark.usefixtures("store")
def test_a_zero_retry_after_blocks_nothing(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(limited({"requestsPerMinute": 1}))
    registry.update_rate_limits_from_headers(key, {"retry-after": "0"})
    registry.acquire(key, 0).cancel()


# --------------------------------------------------------------------------- the registry: bad values are skipped


@pytest.mark.parametrize(
    ("bad", "skipped"),
    [
        ({"x-ratelimit-remaining-tokens": "lots"}, "tokens"),
        ({"anthropic-ratelimit-output-tokens-remaining": "1.5"}, "output_tokens"),
        ({"retry-after": "later"}, "retry_after"),
        ({"x-ratelimit-reset-tokens": "soon"}, "tokens"),
        ({"anthropic-ratelimit-input-tokens-reset": "tomorrow"}, "input_tokens"),
    ],
)
@pytest.mark.usefixtures("store")
def test_a_bad_header_is_skipped_with_a_warning_and_the_rest_applies(
    registry: EnhancedModelRegistry, noon: FakeClock, bad: dict[str, str], skipped: str
) -> None:
    # A provider's malformed header must never fail the caller's request: the value that cannot be read is
    # skipped (named in a RateLimitHeaderWarning), everything readable is applied.
    key = registry.register_model(limited({"requestsPerMinute": 5, "tokensPerMinute": 1_000}))
    registry.record_usage(key, 100, 0)
    headers = {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "50s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "50s",
        "anthropic-ratelimit-input-tokens-limit": "10",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2024-05-01T12:00:50Z",
        "anthropic-ratelimit-output-tokens-limit": "10",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2024-05-01T12:00:50Z",
        "retry-after": "50",
    } | bad
    with pytest.warns(RateLimitHeaderWarning, match=next(iter(bad))):
        report = registry.update_rate_limits_from_headers(key, headers)
    assert getattr(report, skipped) is None
    dimensions = {"requests", "tokens", "input_tokens", "output_tokens"}
    assert {d for d in dimensions if getattr(report, d) is not None} == dimensions - {skipped}
    assert not registry.check_rate_limit(key, 0).allowed  # the requests header (nothing left) still applied


@pytest.mark.usefixtures("store")
def test_headers_for_an_unknown_model(registry: EnhancedModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.update_rate_limits_from_headers("openai:nope", OPENAI)


@pytest.mark.parametrize("value", ["inf", "Infinity", "nan"])
@pytest.mark.usefixtures("store")
def test_non_finite_retry_after_is_skipped(registry: EnhancedModelRegistry, value: str) -> None:
    """Regression: "inf" blocked the model forever, "nan" was accepted silently."""
    key = registry.register_model(limited({"requestsPerMinute": 5}))
    with pytest.warns(RateLimitHeaderWarning, match="retry-after"):
        registry.update_rate_limits_from_headers(key, {"retry-after": value})
    check = registry.check_rate_limit(key, 0)
    assert check.allowed, check
