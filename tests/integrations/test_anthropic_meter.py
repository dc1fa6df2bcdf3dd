"""``integrations.anthropic.meter``: the real SDK over an ``httpx2.MockTransport`` answering with recorded-shaped
JSON, headers and SSE streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import RateLimitExceeded
from noa_ai_provider.integrations.anthropic import estimate_input_tokens, meter
from noa_ai_provider.testing import EventRecorder, FakeClock, window_totals

SONNET: dict[str, Any] = {
    "id": "claude-sonnet-4-5",
    "name": "Claude Sonnet 4.5",
    "provider": "anthropic",
    "version": "4.5.0",
    "contextWindow": 200000,
    "maxTokens": 64000,
    "capabilities": ["chat_completion"],
    "cost": {
        "inputTokens": "3",
        "outputTokens": "15",
        "cachedInputTokens": "0.3",
        "cacheWriteTokens": "3.75",
        "cacheWrite1hTokens": "6",
        "per": 1_000_000,
    },
    "rateLimit": {"requestsPerMinute": 50, "tokensPerMinute": 100_000},
}
KEY = "anthropic:claude-sonnet-4-5"
DATED = "claude-sonnet-4-5-20250929"  # what the API answers with

USAGE: dict[str, Any] = {
    "input_tokens": 50,
    "output_tokens": 200,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 3000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
    "service_tier": "standard",
}
MESSAGE: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": DATED,
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": USAGE,
}
HEADERS = {
    "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-requests-reset": "2023-11-14T22:14:00Z",
}
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "Say hello."}],
}

Handler = Callable[[httpx2.Request], httpx2.Response]


def sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def stream_events(output_tokens: int = 200) -> list[dict[str, Any]]:
    """A streamed message as the API sends it: message_start (usage with output_tokens 1), ping, one text block
    in two deltas, message_delta (cumulative output_tokens), message_stop."""
    start_usage = {**USAGE, "output_tokens": 1}
    return [
        {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None, "usage": start_usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]


def answer(request: httpx2.Request) -> httpx2.Response:
    """A message, or its SSE stream when the request asks to stream."""
    body = json.loads(request.content)
    if body.get("stream"):
        return httpx2.Response(
            200, headers={**HEADERS, "content-type": "text/event-stream"}, content=sse(stream_events())
        )
    return httpx2.Response(200, headers=HEADERS, json=MESSAGE)


def client(handler: Handler = answer) -> anthropic.Anthropic:
    # max_retries=0: the SDK would otherwise retry a 429 itself, sleeping its retry-after.
    return anthropic.Anthropic(
        api_key="test-key", http_client=httpx2.Client(transport=httpx2.MockTransport(handler)), max_retries=0
    )


def async_client(handler: Handler = answer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="test-key", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)), max_retries=0
    )


@pytest.fixture
def sonnet(registry: EnhancedModelRegistry) -> EnhancedModelRegistry:
    registry.register_model(SONNET)
    return registry


def billed(registry: EnhancedModelRegistry) -> Decimal:
    """The exact cost of USAGE (200 output tokens) at SONNET's prices."""
    return registry.estimate_cost(
        KEY, 4050, 200, cached_input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=2000
    )


def test_billed_is_the_hand_computed_cost(sonnet: EnhancedModelRegistry) -> None:
    # 50 * 3 + 1000 * 0.3 + 1000 * 3.75 + 2000 * 6 + 200 * 15, per million
    assert billed(sonnet) == Decimal("0.0192")


def test_message_with_cache_reads_and_writes(sonnet: EnhancedModelRegistry, events: EventRecorder) -> None:
    metered = meter(client(), sonnet)
    message = metered.messages.create(**REQUEST)
    assert isinstance(message, anthropic.types.Message)
    assert message.usage.cache_creation is not None
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 1
    assert stats.total_cost == billed(sonnet)
    (recorded,) = events.of("usage-recorded")
    assert recorded["input_tokens"] == 4050
    assert recorded["output_tokens"] == 200
    assert window_totals(sonnet, KEY)["tokens_per_minute"] == 4250  # the reservation corrected to the real usage


def test_dated_model_name_and_alias_resolve(sonnet: EnhancedModelRegistry) -> None:
    metered = meter(client(), sonnet)
    metered.messages.create(**{**REQUEST, "model": DATED})
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 1


def test_streamed_message(sonnet: EnhancedModelRegistry) -> None:
    metered = meter(client(), sonnet)
    with metered.messages.create(**REQUEST, stream=True) as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == billed(sonnet)


def test_streamed_message_read_without_a_with_block(sonnet: EnhancedModelRegistry) -> None:
    stream = meter(client(), sonnet).messages.create(**REQUEST, stream=True)
    assert sum(1 for _ in stream) == 7  # the ping is dropped by the SDK
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == billed(sonnet)


def test_stream_helper(sonnet: EnhancedModelRegistry) -> None:
    metered = meter(client(), sonnet)
    with metered.messages.stream(**REQUEST) as stream:
        assert "".join(stream.text_stream) == "Hello!"
        final = stream.get_final_message()
    assert final.usage.output_tokens == 200
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == billed(sonnet)


def test_stream_helper_async(sonnet: EnhancedModelRegistry) -> None:
    async def main() -> str:
        async with async_client() as inner:
            metered = meter(inner, sonnet)
            async with metered.messages.stream(**REQUEST) as stream:
                return "".join([text async for text in stream.text_stream])

    assert asyncio.run(main()) == "Hello!"
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == billed(sonnet)


def test_async_create_and_stream(sonnet: EnhancedModelRegistry) -> None:
    async def main() -> list[str]:
        async with async_client() as inner:
            metered = meter(inner, sonnet)
            await metered.messages.create(**REQUEST)
            async with await metered.messages.create(**REQUEST, stream=True) as stream:
                return [event.type async for event in stream]

    assert asyncio.run(main())[-1] == "message_stop"
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 2
    assert stats.total_cost == 2 * billed(sonnet)


def rate_limited(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        429,
        headers={"request-id": "req_429", "retry-after": "20"},
        json={"type": "error", "error": {"type": "rate_limit_error", "message": "Number of requests exceeded."}},
    )


def test_429_bills_nothing_and_starts_a_cooldown(
    sonnet: EnhancedModelRegistry, clock: FakeClock, events: EventRecorder
) -> None:
    metered = meter(client(rate_limited), sonnet)
    with pytest.raises(anthropic.RateLimitError) as caught:
        metered.messages.create(**REQUEST)
    assert caught.value.response.headers["retry-after"] == "20"
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == 0
    assert stats.failed_requests == 1
    assert window_totals(sonnet, KEY)["tokens_per_minute"] == 0  # the reservation given back
    with pytest.raises(RateLimitExceeded) as refused:
        sonnet.acquire(KEY, 10, 10)
    assert refused.value.limit == "retry-after"
    with pytest.raises(RateLimitExceeded):  # nothing is sent while the cooldown lasts
        metered.messages.create(**REQUEST)
    clock.advance(21)
    sonnet.acquire(KEY, 10, 10).cancel()


def overloaded(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        529,
        headers={"retry-after": "5", "x-should-retry": "false"},
        json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )


def test_529_async_bills_nothing(sonnet: EnhancedModelRegistry) -> None:
    async def main() -> None:
        async with async_client(overloaded) as inner:
            await meter(inner, sonnet).messages.create(**REQUEST)

    with pytest.raises(anthropic.OverloadedError):
        asyncio.run(main())
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == 0
    with pytest.raises(RateLimitExceeded) as refused:
        sonnet.acquire(KEY, 10, 10)
    assert refused.value.limit == "retry-after"


def test_stream_abandoned_midway(sonnet: EnhancedModelRegistry) -> None:
    metered = meter(client(), sonnet)
    with metered.messages.create(**{**REQUEST, "max_tokens": 60_000}, stream=True) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break  # after message_start: its usage (1 output token so far) is what is billed
        assert window_totals(sonnet, KEY)["tokens_per_minute"] > 60_000  # held while open
        assert not sonnet.check_rate_limit(KEY, 90_000).allowed
    assert window_totals(sonnet, KEY)["tokens_per_minute"] == 4051
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == sonnet.estimate_cost(
        KEY, 4050, 1, cached_input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=2000
    )
    assert sonnet.check_rate_limit(KEY, 90_000).allowed  # the capacity is back


def test_stream_helper_left_before_reading(sonnet: EnhancedModelRegistry) -> None:
    with meter(client(), sonnet).messages.stream(**REQUEST):
        pass  # nothing read: no usage reported, a failed request at $0
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.failed_requests == 1
    assert stats.total_cost == 0
    assert window_totals(sonnet, KEY)["tokens_per_minute"] == 0


def test_stream_error_event_commits_what_was_reported(sonnet: EnhancedModelRegistry) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        events = [*stream_events()[:4], {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}]
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse(events))

    metered = meter(client(handler), sonnet)
    with pytest.raises(anthropic.APIStatusError), metered.messages.stream(**REQUEST) as stream:
        stream.until_done()
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == sonnet.estimate_cost(
        KEY, 4050, 1, cached_input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=2000
    )


def test_over_the_limit_nothing_is_sent(sonnet: EnhancedModelRegistry) -> None:
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return answer(request)

    metered = meter(client(handler), sonnet)
    with pytest.raises(RateLimitExceeded):
        metered.messages.create(**{**REQUEST, "max_tokens": 64_000, "system": "x" * 200_000})
    assert sent == []


def test_estimate_hook_and_one_shot_messages(sonnet: EnhancedModelRegistry) -> None:
    seen: list[int] = []

    def estimate(request: Any) -> int:
        seen.append(len(request["messages"]))
        return 7

    metered = meter(client(), sonnet, estimate=estimate)
    metered.messages.create(**{**REQUEST, "messages": iter(REQUEST["messages"])})
    assert seen == [1]


def test_default_estimate() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 1_000_000}}
    request = {"messages": [{"role": "user", "content": [image, {"type": "text", "text": "x" * 400}]}]}
    assert estimate_input_tokens(request) == 1_600 + 100 + 1  # the image, the text, "user"


def test_everything_else_is_delegated(sonnet: EnhancedModelRegistry) -> None:
    inner = client()
    metered = meter(inner, sonnet)
    assert metered.api_key == "test-key"
    assert metered.messages.batches is inner.messages.batches
    assert meter(client(), sonnet).with_options(timeout=5).messages.create(**REQUEST).id == MESSAGE["id"]
    stats = sonnet.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 1
