#!/usr/bin/env python
"""What metering adds to a call of the official SDKs (issue 14): the bare client against the metered one
(``noa_ai_provider.integrations.openai.meter`` / ``.anthropic.meter``), on the same ``httpx2.MockTransport``.

The issue: "The overhead a metered call adds over the bare client on the same mock transport: at most 10% of the
bare client's own per-call time, reported in docs/performance.md."

    python bench/bench_integrations.py                # 2,000 calls per block, 5 repeats (~1 minute)
    python bench/bench_integrations.py --calls 300 --repeats 2   # smoke run
    python bench/bench_integrations.py --profile      # also cProfile the metered OpenAI chat call

Rows: OpenAI chat completion (sync, streamed with include_usage, async), Anthropic messages.create (sync, streamed,
async). Each row times blocks of ``--calls`` calls, bare then metered then bare..., alternating which goes first,
``--repeats`` times, and reports the median µs per call of each side, the overhead (metered - bare) in µs and as a
percentage of the bare call (target: at most 10%), and the ratio metered / bare.

Both sides use clients with the SDK's default ``max_retries`` (the metered side turns the SDK's retries off and does
its own: the transport never fails, so no retry happens), the same prebuilt response bytes, and the garbage
collector collected before each block. The registry is in memory with limits far above what a run uses (nothing is
refused; every call is admitted, committed and priced), so the metered side does everything a production call does
except waiting. The mock transport itself costs nothing like a network: the percentage is the worst case, against
the fastest possible call; against a real API call of ~300 ms the same overhead is ~0.01%.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai

import _common  # noqa: F401  (makes noa_ai_provider importable from a checkout)
from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.integrations import anthropic as metered_anthropic
from noa_ai_provider.integrations import openai as metered_openai

BIG = 10**9
GPT: dict[str, Any] = {
    "id": "gpt-4o",
    "name": "GPT-4o",
    "provider": "openai",
    "version": "4.0.0",
    "contextWindow": 128000,
    "maxTokens": 16384,
    "cost": {"inputTokens": "2.5", "outputTokens": "10", "cachedInputTokens": "1.25", "per": 1_000_000},
    "rateLimit": {"requestsPerMinute": BIG, "tokensPerMinute": BIG},
}
CLAUDE: dict[str, Any] = {
    "id": "claude-sonnet-4-5",
    "name": "Claude Sonnet 4.5",
    "provider": "anthropic",
    "version": "4.5.0",
    "contextWindow": 200000,
    "maxTokens": 64000,
    "cost": {
        "inputTokens": "3",
        "outputTokens": "15",
        "cachedInputTokens": "0.3",
        "cacheWriteTokens": "3.75",
        "cacheWrite1hTokens": "6",
        "per": 1_000_000,
    },
    "rateLimit": {"requestsPerMinute": BIG, "tokensPerMinute": BIG},
}

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
CHAT = {"model": "gpt-4o", "max_completion_tokens": 1000, "messages": MESSAGES}
CHAT_STREAM = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
CLAUDE_REQUEST = {"model": "claude-sonnet-4-5", "max_tokens": 1000, "messages": MESSAGES[1:], "system": "Be terse."}

OPENAI_HEADERS = {
    "content-type": "application/json",
    "x-request-id": "req_0c0a9c1c6e0d4b1b9d1c6f0e2a7b3c4d",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": "29998500",
    "x-ratelimit-reset-tokens": "3ms",
}
ANTHROPIC_HEADERS = {
    "content-type": "application/json",
    "request-id": "req_011CTest",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
}
USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024},
}


def _chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "choices": choices,
        "usage": usage,
    }


COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"},
        ],
        "usage": USAGE,
    }
).encode()
COMPLETION_SSE = (
    "".join(
        f"data: {json.dumps(c)}\n\n"
        for c in (
            _chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
            _chunk([{"index": 0, "delta": {"content": "Hello!"}, "finish_reason": None}]),
            _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            _chunk([], USAGE),
        )
    ).encode()
    + b"data: [DONE]\n\n"
)
CLAUDE_USAGE = {
    "input_tokens": 50,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 3000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
    "output_tokens": 200,
    "service_tier": "standard",
}
MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": CLAUDE_USAGE,
}
MESSAGE_JSON = json.dumps(MESSAGE).encode()
MESSAGE_SSE = "".join(
    f"event: {e['type']}\ndata: {json.dumps(e)}\n\n"
    for e in (
        {"type": "message_start", "message": {**MESSAGE, "content": [], "usage": {**CLAUDE_USAGE, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 200},
        },
        {"type": "message_stop"},
    )
).encode()


def _openai_answer(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content or b'"stream": true' in request.content:
        return httpx2.Response(
            200, headers={**OPENAI_HEADERS, "content-type": "text/event-stream"}, content=COMPLETION_SSE
        )
    return httpx2.Response(200, headers=OPENAI_HEADERS, content=COMPLETION)


def _anthropic_answer(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content or b'"stream": true' in request.content:
        return httpx2.Response(
            200, headers={**ANTHROPIC_HEADERS, "content-type": "text/event-stream"}, content=MESSAGE_SSE
        )
    return httpx2.Response(200, headers=ANTHROPIC_HEADERS, content=MESSAGE_JSON)


def _registry() -> EnhancedModelRegistry:
    registry = EnhancedModelRegistry()
    registry.register_model(GPT)
    registry.register_model(CLAUDE)
    return registry


class Row:
    """One benchmark row: a bare and a metered way of making the same call (sync callables, or coroutine
    functions when ``is_async``)."""

    def __init__(self, name: str, bare: Callable[[], Any], metered: Callable[[], Any], is_async: bool = False):
        self.name = name
        self.bare = bare
        self.metered = metered
        self.is_async = is_async


def rows(registry: EnhancedModelRegistry) -> list[Row]:
    oa = openai.OpenAI(api_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(_openai_answer)))
    moa = metered_openai.meter(oa, registry)
    aoa = openai.AsyncOpenAI(
        api_key="k", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(_openai_answer))
    )
    maoa = metered_openai.meter(aoa, registry)
    an = anthropic.Anthropic(api_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(_anthropic_answer)))
    man = metered_anthropic.meter(an, registry)
    aan = anthropic.AsyncAnthropic(
        api_key="k", http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(_anthropic_answer))
    )
    maan = metered_anthropic.meter(aan, registry)

    def drain(stream: Any) -> None:
        with stream:
            for _ in stream:
                pass

    return [
        Row("openai chat", lambda: oa.chat.completions.create(**CHAT), lambda: moa.chat.completions.create(**CHAT)),
        Row(
            "openai chat, streamed",
            lambda: drain(oa.chat.completions.create(**CHAT_STREAM)),
            lambda: drain(moa.chat.completions.create(**CHAT_STREAM)),
        ),
        Row(
            "openai chat, async",
            lambda: aoa.chat.completions.create(**CHAT),
            lambda: maoa.chat.completions.create(**CHAT),
            is_async=True,
        ),
        Row(
            "anthropic messages",
            lambda: an.messages.create(**CLAUDE_REQUEST),
            lambda: man.messages.create(**CLAUDE_REQUEST),
        ),
        Row(
            "anthropic messages, streamed",
            lambda: drain(an.messages.create(**CLAUDE_REQUEST, stream=True)),
            lambda: drain(man.messages.create(**CLAUDE_REQUEST, stream=True)),
        ),
        Row(
            "anthropic messages, async",
            lambda: aan.messages.create(**CLAUDE_REQUEST),
            lambda: maan.messages.create(**CLAUDE_REQUEST),
            is_async=True,
        ),
    ]


def _block(call: Callable[[], Any], calls: int, is_async: bool, loop: asyncio.AbstractEventLoop) -> float:
    """Seconds per call over ``calls`` calls."""
    gc.collect()
    if is_async:

        async def run() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                await call()
            return time.perf_counter() - start

        return loop.run_until_complete(run()) / calls
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def measure(row: Row, calls: int, repeats: int, loop: asyncio.AbstractEventLoop) -> tuple[float, float]:
    """Median seconds per call of the bare and the metered side, in alternating blocks."""
    warm = max(calls // 10, 20)
    _block(row.bare, warm, row.is_async, loop)
    _block(row.metered, warm, row.is_async, loop)
    bare: list[float] = []
    metered: list[float] = []
    for repeat in range(repeats):
        order = [(row.bare, bare), (row.metered, metered)]
        if repeat % 2:
            order.reverse()
        for call, out in order:
            out.append(_block(call, calls, row.is_async, loop))
    return statistics.median(bare), statistics.median(metered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed block (default 2000)")
    parser.add_argument("--repeats", type=int, default=5, help="blocks per side (default 5)")
    parser.add_argument("--profile", action="store_true", help="cProfile 2,000 metered OpenAI chat calls")
    args = parser.parse_args()

    registry = _registry()
    loop = asyncio.new_event_loop()
    print(f"openai {openai.__version__}, anthropic {anthropic.__version__}, httpx2 {httpx2.__version__}; ", end="")
    print(f"{args.calls} calls per block, {args.repeats} blocks per side, median\n")
    print("| call | bare µs/call | metered µs/call | overhead µs | overhead % of bare | metered / bare |")
    print("|---|--:|--:|--:|--:|--:|")
    table = rows(registry)
    for row in table:
        bare, metered = measure(row, args.calls, args.repeats, loop)
        extra = metered - bare
        print(
            f"| {row.name} | {bare * 1e6:.1f} | {metered * 1e6:.1f} | {extra * 1e6:.1f} | "
            f"{100 * extra / bare:.1f}% | {metered / bare:.3f}x |"
        )
    stats = registry.get_statistics()
    print(f"\nregistry: {stats.total_requests:,} metered requests recorded, {stats.total_cost} USD")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(2000):
            table[0].metered()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    loop.close()


if __name__ == "__main__":
    main()
