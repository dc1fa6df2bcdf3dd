"""``integrations.openai.meter``: the real SDK over an ``httpx2.MockTransport`` answering with recorded-shaped JSON,
headers and SSE streams."""

from __future__ import annotations

import array
import asyncio
import base64
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import openai
import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import RateLimitExceeded
from noa_ai_provider.integrations.openai import estimate_input_tokens, meter
from noa_ai_provider.testing import EventRecorder, FakeClock, window_totals

GPT4O: dict[str, Any] = {
    "id": "gpt-4o",
    "name": "GPT-4o",
    "provider": "openai",
    "version": "4.0.0",
    "contextWindow": 128000,
    "maxTokens": 16384,
    "capabilities": ["chat_completion", "function_calling"],
    "cost": {"inputTokens": "2.5", "outputTokens": "10", "cachedInputTokens": "1.25", "per": 1_000_000},
    "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 30_000},
}
EMBEDDING: dict[str, Any] = {
    "id": "text-embedding-3-small",
    "name": "text-embedding-3-small",
    "provider": "openai",
    "version": "3.0.0",
    "contextWindow": 8191,
    "capabilities": ["embeddings"],
    "cost": {"inputTokens": "0.02", "outputTokens": "0", "per": 1_000_000},
}
KEY = "openai:gpt-4o"
DATED = "gpt-4o-2024-08-06"  # what the API answers with

USAGE: dict[str, Any] = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": DATED,
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
}
HEADERS = {
    "x-request-id": "req_0c0a9c1c6e0d4b1b9d1c6f0e2a7b3c4d",
    "openai-processing-ms": "412",
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-limit-tokens": "30000",
    "x-ratelimit-remaining-tokens": "28500",
    "x-ratelimit-reset-tokens": "3s",
}
REQUEST: dict[str, Any] = {
    "model": "gpt-4o",
    "max_completion_tokens": 1000,
    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
}
STREAM_REQUEST: dict[str, Any] = {**REQUEST, "stream": True, "stream_options": {"include_usage": True}}

Handler = Callable[[httpx2.Request], httpx2.Response]


def sse(chunks: list[dict[str, Any]], *, done: bool = True) -> bytes:
    """Chat completion chunks as the API sends them: ``data:`` lines only, then ``data: [DONE]``."""
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": COMPLETION["id"],
        "object": "chat.completion.chunk",
        "created": COMPLETION["created"],
        "model": DATED,
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": choices,
        "usage": usage,
    }


def chunks(include_usage: bool = True) -> list[dict[str, Any]]:
    """A streamed completion: the role, two pieces of text, the finish reason, then (with include_usage) a chunk
    with no choices and the usage."""
    out = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
        chunk([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]),
        chunk([{"index": 0, "delta": {"content": "lo!"}, "finish_reason": None}]),
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    ]
    if include_usage:
        out.append(chunk([], USAGE))
    return out


RESPONSE: dict[str, Any] = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "model": DATED,
    "service_tier": "default",
    "output": [
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1500,
    },
}


def response_events() -> list[dict[str, Any]]:
    pending = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}
    return [
        {"type": "response.created", "sequence_number": 0, "response": pending},
        {"type": "response.in_progress", "sequence_number": 1, "response": pending},
        {
            "type": "response.output_text.delta",
            "sequence_number": 2,
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hello!",
            "logprobs": [],
        },
        {"type": "response.completed", "sequence_number": 3, "response": RESPONSE},
    ]


def named_sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def embeddings(request: httpx2.Request, body: dict[str, Any]) -> httpx2.Response:
    vector = [0.25, -0.5, 0.125]
    encoded: Any = vector
    if body.get("encoding_format") == "base64":  # the SDK asks for base64 unless told otherwise
        encoded = base64.b64encode(array.array("f", vector).tobytes()).decode()
    return httpx2.Response(
        200,
        headers=HEADERS,
        json={
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": encoded}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        },
    )


def answer(request: httpx2.Request) -> httpx2.Response:
    """A completion, a response or embeddings; their SSE streams when the request asks to stream."""
    body = json.loads(request.content)
    path = request.url.path
    if path == "/v1/embeddings":
        return embeddings(request, body)
    stream_headers = {**HEADERS, "content-type": "text/event-stream; charset=utf-8"}
    if path == "/v1/responses":
        if body.get("stream"):
            return httpx2.Response(200, headers=stream_headers, content=named_sse(response_events()))
        return httpx2.Response(200, headers=HEADERS, json=RESPONSE)
    if body.get("stream"):
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        return httpx2.Response(200, headers=stream_headers, content=sse(chunks(include)))
    return httpx2.Response(200, headers=HEADERS, json=COMPLETION)


def client(handler: Handler = answer) -> openai.OpenAI:
    # max_retries=0: the SDK would otherwise retry a 429 itself, sleeping its retry-after (up to 2 minutes).
    return openai.OpenAI(
        api_key="test-key", http_client=httpx2.Client(transport=httpx2.MockTransport(handler)), max_retries=0
    )


def async_client(handler: Handler = answer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="test-key", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)), max_retries=0
    )


@pytest.fixture
def gpt(registry: EnhancedModelRegistry) -> EnhancedModelRegistry:
    registry.register_model(GPT4O)
    return registry


def billed(registry: EnhancedModelRegistry) -> Decimal:
    """The exact cost of USAGE at GPT4O's prices."""
    return registry.estimate_cost(KEY, 1200, 300, cached_input_tokens=1024, service_tier="default")


def cost(registry: EnhancedModelRegistry, key: str = KEY) -> Decimal:
    stats = registry.get_usage_stats(key)
    assert stats is not None
    return stats.total_cost


def test_billed_is_the_hand_computed_cost(gpt: EnhancedModelRegistry) -> None:
    # 176 * 2.5 + 1024 * 1.25 + 300 * 10, per million
    assert billed(gpt) == Decimal("0.00472")


def test_chat_completion(gpt: EnhancedModelRegistry, events: EventRecorder) -> None:
    completion = meter(client(), gpt).chat.completions.create(**REQUEST)
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.choices[0].message.content == "Hello!"
    stats = gpt.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 1
    assert stats.total_cost == billed(gpt)
    (recorded,) = events.of("usage-recorded")
    assert recorded["input_tokens"] == 1200
    assert recorded["output_tokens"] == 300
    assert window_totals(gpt, KEY)["tokens_per_minute"] == 1500  # the reservation corrected to the real usage


def test_dated_model_name_resolves(gpt: EnhancedModelRegistry) -> None:
    meter(client(), gpt).chat.completions.create(**{**REQUEST, "model": DATED})
    assert cost(gpt) == billed(gpt)


def test_streamed_chat_completion_with_usage(gpt: EnhancedModelRegistry) -> None:
    with meter(client(), gpt).chat.completions.create(**STREAM_REQUEST) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello!"
    assert cost(gpt) == billed(gpt)


def test_streamed_chat_completion_read_without_a_with_block(gpt: EnhancedModelRegistry) -> None:
    stream = meter(client(), gpt).chat.completions.create(**STREAM_REQUEST)
    assert sum(1 for _ in stream) == 5
    assert cost(gpt) == billed(gpt)
    assert window_totals(gpt, KEY)["tokens_per_minute"] == 1500


def test_streamed_chat_completion_without_usage_commits_the_estimate(gpt: EnhancedModelRegistry) -> None:
    request = {**REQUEST, "stream": True}
    with meter(client(), gpt).chat.completions.create(**request) as stream:
        list(stream)
    # the input estimate (chars/4 of the messages) and one token per chunk with content ("Hel", "lo!")
    assert cost(gpt) == gpt.estimate_cost(KEY, estimate_input_tokens(request), 2)


def test_responses(gpt: EnhancedModelRegistry) -> None:
    metered = meter(client(), gpt)
    response = metered.responses.create(model="gpt-4o", input="Say hello.", instructions="You are terse.")
    assert response.output_text == "Hello!"
    with metered.responses.create(model="gpt-4o", input="Say hello.", stream=True) as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.completed"
    assert cost(gpt) == 2 * billed(gpt)


def test_embeddings(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(EMBEDDING)
    result = meter(client(), registry).embeddings.create(model="text-embedding-3-small", input="hello world")
    assert result.data[0].embedding == [0.25, -0.5, 0.125]
    assert cost(registry, key) == registry.estimate_cost(key, 8, 0) == Decimal("0.00000016")


def test_async_chat_completion_and_stream(gpt: EnhancedModelRegistry) -> None:
    async def main() -> str:
        async with async_client() as inner:
            metered = meter(inner, gpt)
            completion = await metered.chat.completions.create(**REQUEST)
            assert completion.usage is not None
            async with await metered.chat.completions.create(**STREAM_REQUEST) as stream:
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(main()) == "Hello!"
    stats = gpt.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 2
    assert stats.total_cost == 2 * billed(gpt)


def test_async_responses_stream(gpt: EnhancedModelRegistry) -> None:
    async def main() -> list[str]:
        async with async_client() as inner:
            stream = await meter(inner, gpt).responses.create(model="gpt-4o", input="Say hello.", stream=True)
            return [event.type async for event in stream]

    assert asyncio.run(main())[-1] == "response.completed"
    assert cost(gpt) == billed(gpt)


def rate_limited(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(
        429,
        headers={"x-request-id": "req_429", "retry-after": "20"},
        json={
            "error": {
                "message": "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM).",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
    )


def test_429_bills_nothing_and_starts_a_cooldown(gpt: EnhancedModelRegistry, clock: FakeClock) -> None:
    metered = meter(client(rate_limited), gpt)
    with pytest.raises(openai.RateLimitError) as caught:
        metered.chat.completions.create(**REQUEST)
    assert caught.value.response.headers["retry-after"] == "20"
    assert caught.value.code == "rate_limit_exceeded"
    stats = gpt.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == 0
    assert stats.failed_requests == 1
    assert window_totals(gpt, KEY)["tokens_per_minute"] == 0  # the reservation given back
    with pytest.raises(RateLimitExceeded) as refused:
        gpt.acquire(KEY, 10, 10)
    assert refused.value.limit == "retry-after"
    with pytest.raises(RateLimitExceeded):  # nothing is sent while the cooldown lasts
        metered.chat.completions.create(**REQUEST)
    clock.advance(21)
    gpt.acquire(KEY, 10, 10).cancel()


def test_500_async_bills_nothing(gpt: EnhancedModelRegistry) -> None:
    def broken(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(500, json={"error": {"message": "The server had an error", "type": "server_error"}})

    async def main() -> None:
        async with async_client(broken) as inner:
            await meter(inner, gpt).chat.completions.create(**REQUEST)

    with pytest.raises(openai.InternalServerError):
        asyncio.run(main())
    stats = gpt.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == 0
    assert stats.failed_requests == 1
    assert window_totals(gpt, KEY)["tokens_per_minute"] == 0


def test_stream_broken_off_midway(gpt: EnhancedModelRegistry) -> None:
    metered = meter(client(), gpt)
    request = {**STREAM_REQUEST, "max_completion_tokens": 16_000}
    with metered.chat.completions.create(**request) as stream:
        for c in stream:
            if c.choices and c.choices[0].delta.content:
                break  # after "Hel": no usage reported yet
        assert window_totals(gpt, KEY)["tokens_per_minute"] >= 16_000  # held while open
        assert not gpt.check_rate_limit(KEY, 20_000).allowed
    assert cost(gpt) == gpt.estimate_cost(KEY, estimate_input_tokens(request), 1)
    assert gpt.check_rate_limit(KEY, 20_000).allowed  # the capacity is back
    assert window_totals(gpt, KEY)["tokens_per_minute"] == 1500  # what the provider reported


def test_stream_closed_before_the_first_chunk_is_a_failed_request(gpt: EnhancedModelRegistry) -> None:
    meter(client(), gpt).chat.completions.create(**STREAM_REQUEST).close()
    stats = gpt.get_usage_stats(KEY)
    assert stats is not None
    assert stats.failed_requests == 1
    assert stats.total_cost == 0
    # the reservation is given back; what is left is the provider's count from the stream's headers (30,000 -
    # 28,500 remaining), which the window keeps until the provider's reset
    assert window_totals(gpt, KEY)["tokens_per_minute"] == 1500


def test_stream_cut_by_the_server_commits_what_was_seen(gpt: EnhancedModelRegistry) -> None:
    def cut(request: httpx2.Request) -> httpx2.Response:
        # an error object mid-stream: the SDK raises openai.APIError
        body = sse(chunks()[:2], done=False) + b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    with pytest.raises(openai.APIError), meter(client(cut), gpt).chat.completions.create(**STREAM_REQUEST) as s:
        list(s)
    assert cost(gpt) == gpt.estimate_cost(KEY, estimate_input_tokens(STREAM_REQUEST), 1)
    assert (
        window_totals(gpt, KEY)["tokens_per_minute"] == estimate_input_tokens(STREAM_REQUEST) + 1
    )  # no rate-limit headers


def test_over_the_limit_nothing_is_sent(gpt: EnhancedModelRegistry) -> None:
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return answer(request)

    metered = meter(client(handler), gpt)
    with pytest.raises(RateLimitExceeded):
        metered.chat.completions.create(**{**REQUEST, "messages": [{"role": "user", "content": "x" * 200_000}]})
    assert sent == []


def test_output_cap_defaults_to_the_models_max_tokens(gpt: EnhancedModelRegistry) -> None:
    request = {key: value for key, value in REQUEST.items() if key != "max_completion_tokens"}
    with meter(client(), gpt).chat.completions.create(**request, stream=True) as stream:
        next(stream)
        assert window_totals(gpt, KEY)["tokens_per_minute"] == estimate_input_tokens(request) + 16384


def test_n_choices_reserve_n_caps_up_to_the_models_max_tokens(gpt: EnhancedModelRegistry) -> None:
    metered = meter(client(), gpt)
    estimate = estimate_input_tokens(REQUEST)
    for n, cap, reserved in ((2, 1000, 2000), (2, 10_000, 16384), (3, None, 16384)):
        request = {**REQUEST, "n": n, "max_completion_tokens": cap}
        if cap is None:
            del request["max_completion_tokens"]
        # Was refused before sending ("20,000 output tokens exceed the model's maximum output"): maxTokens is per
        # choice, the registry checks a request's whole output against it.
        before = window_totals(gpt, KEY).get("tokens_per_minute", 0)
        with metered.chat.completions.create(**request, stream=True) as stream:
            next(stream)
            assert window_totals(gpt, KEY)["tokens_per_minute"] - before == estimate + reserved
            for _ in stream:
                pass


def test_the_metered_client_is_a_context_manager(gpt: EnhancedModelRegistry) -> None:
    with meter(client(), gpt) as metered:
        assert metered.chat.completions.create(**REQUEST).usage is not None
    assert metered.is_closed()

    async def main() -> bool:
        async with meter(async_client(), gpt) as metered:
            await metered.chat.completions.create(**REQUEST)
        return bool(metered.is_closed())

    assert asyncio.run(main())
    assert cost(gpt) == 2 * billed(gpt)


def test_estimate_hook_and_one_shot_messages(gpt: EnhancedModelRegistry) -> None:
    seen: list[int] = []

    def estimate(request: Any) -> int:
        seen.append(len(request["messages"]))
        return 7

    metered = meter(client(), gpt, estimate=estimate)
    metered.chat.completions.create(**{**REQUEST, "messages": iter(REQUEST["messages"])})
    assert seen == [2]


def test_default_estimate() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 1_000_000}}
    request = {"messages": [{"role": "user", "content": [image, {"type": "text", "text": "x" * 400}]}]}
    assert estimate_input_tokens(request) == 1_000 + 100 + 1  # the image, the text, "user"
    assert estimate_input_tokens({"input": [[1, 2, 3], [4]], "model": "text-embedding-3-small"}) == 4


def test_everything_else_is_delegated(gpt: EnhancedModelRegistry) -> None:
    inner = client()
    metered = meter(inner, gpt)
    assert metered.api_key == "test-key"
    assert metered.chat.completions.messages is inner.chat.completions.messages
    assert metered.models is inner.models
    completion = metered.with_options(timeout=5).chat.completions.create(**REQUEST)
    assert completion.id == COMPLETION["id"]
    assert cost(gpt) == billed(gpt)


def test_meter_refuses_what_is_not_an_openai_client(gpt: EnhancedModelRegistry) -> None:
    with pytest.raises(TypeError, match=r"chat\.completions\.create"):
        meter(object(), gpt)
