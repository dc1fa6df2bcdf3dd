#!/usr/bin/env python
"""What metering adds to a call of the official SDKs (issue 14): the bare client against the metered one
(``noa_ai_provider.integrations.openai.meter`` / ``.anthropic.meter``), on the same ``httpx2.MockTransport``.

The issue: "The overhead a metered call adds over the bare client on the same mock transport: at most 10% of the
bare client's own per-call time, reported in docs/performance.md."

    python bench/bench_integrations.py                    # full run: 9 rows, 400 calls x 11 blocks a side (~2 min)
    python bench/bench_integrations.py --quick            # smoke run: 150 calls x 3 blocks (~30 s)
    python bench/bench_integrations.py --rows openai,anthropic --repeats 31   # a subset, more blocks
    python bench/bench_integrations.py --rows all         # also the anthropic-helper row
    python bench/bench_integrations.py --profile all      # cProfile every row (default: the rows over target)
    python bench/bench_integrations.py --profile none --no-breakdown   # the table alone
    python bench/bench_integrations.py --check            # exit 1 when a row is over the 10% target

What is measured. Each row makes the same call through two clients that share one SDK client object and so one
``httpx2.MockTransport``: the bare SDK client, and ``meter(client, registry)`` wrapping it (the metered proxy
delegates to the very client it wraps, so both sides send through the same transport and connection pool). Rows:

- ``openai``: ``chat.completions.create`` (sync, non-streamed);
- ``openai-stream``: the same with ``stream=True, stream_options={"include_usage": True}``, iterated to the end
  inside ``with`` (the metered stream commits the usage chunk when it ends);
- ``openai-stream-long``: the same streamed call answered with 200 pieces of text (203 chunks): what metering adds
  per chunk (each chunk passes through the metered stream, which watches for the usage), over the per-call cost;
- ``openai-async``: ``AsyncOpenAI`` over ``httpx2.AsyncClient``, non-streamed, awaited in a loop on one event loop;
- ``anthropic``: ``messages.create`` (sync, non-streamed);
- ``anthropic-stream``: ``messages.create(stream=True)`` iterated to the end inside ``with``;
- ``anthropic-stream-long``: the same answered with 200 text deltas (206 events);
- ``anthropic-async``: ``AsyncAnthropic`` ``messages.create``, non-streamed;
- ``openai-budget``: the ``openai`` row on a second registry that also has budgets (a global monthly one and a
  daily one on the model): every acquire reserves the worst-case cost against both, every commit charges them.
- ``anthropic-helper`` (not in the default set): the ``messages.stream()`` helper, iterated inside ``with``.

Every call goes through the attribute chain a caller writes (``client.chat.completions.create(...)``) on both
sides. The responses are recorded-shaped (the JSON, SSE streams and rate-limit headers of the integration tests),
built once as bytes; the mock handler of a row only wraps them in an ``httpx2.Response``. The registry is an
in-memory ``EnhancedModelRegistry`` (default memory store) holding both models with limits of 10^9 per minute (no
call is refused, so every metered call is resolved, estimated, admitted, sent through ``with_raw_response``,
committed with its usage, priced, and its rate-limit headers applied: everything a production call does except
waiting). After each row the registry's counters are checked: as many requests recorded as metered calls made,
none failed, and each priced at what ``estimate_cost`` gives for the response's usage.

How. Per row, both sides are warmed up (``--warmup`` calls each), then timed in blocks of ``--calls`` calls,
``--repeats`` blocks per side (the long-stream rows, each call about 20 short ones' work, run a twentieth of the
calls per block and of the warm-up), alternating sides and swapping which side goes first on every repeat (bare,
metered, metered, bare, ...), so drift on a shared machine hits both alike. ``gc.collect()`` runs before every
block of either side; the collector stays on while timing (the extra allocations of metering, and the collections
they cause, are part of its cost; ``--gc off`` disables it inside the blocks). The table reports the median µs
per call of each side, the overhead (median metered - median bare) in µs and as a percentage of the bare call, the
ratio metered / bare, and the range of the overhead over the adjacent bare/metered block pairs (a noise figure).

Target: overhead at most 10% of the bare call, on every row. The mock transport costs nothing like a network: the
bare call here is the SDK's own work alone (building, sending and parsing), so the percentage is a worst case; the
same µs against a real API call of a few hundred ms is a few hundredths of a percent.

Where the time goes. ``--breakdown`` (on by default) splits the overhead of the two sync non-streamed rows
without a profiler. A fresh metered client has each piece of its calls timed where it runs, by a ``perf_counter``
pair: the SDK's ``with_raw_response.create(...)`` + ``.parse()`` (the metered call sends through the raw-response
path to read the headers; counted over the whole bare call), the input estimate (passed to
``meter(estimate=...)``), ``resolve_key``, ``acquire``, ``Reservation.commit`` (the registry's
``_settle_reservation``), the usage reader and ``update_rate_limits_from_headers`` (registry methods wrapped on
the instance; the sender and usage reader on the proxies, private attributes: a piece whose attribute is gone is
reported missing). It runs in alternating blocks (``--breakdown-repeats``, default half of ``--repeats``) against
its bare client and against the SDK's raw path alone on the bare client; the timers add to the metered call, so
its overhead there is above the row's. Then each piece runs alone in a hot loop, by the same timers: the "in call
/ alone" column shows how much more a piece costs inside a real call, where the SDK's work has just filled the
caches with other things. What remains of the overhead (proxies, ``Meter`` glue, the timers) is by difference.

With ``--profile`` (default ``missed``: the rows over target) each such row is also run under cProfile, bare and
metered: noa's functions by cumulative µs per call, and the functions whose own time grows most from bare to
metered (cProfile inflates code made of small Python calls, noa's included, about 3x: read its µs as shares).

``--sdk-retries N`` gives the SDK clients ``max_retries=N`` (default 0, as in the tests; then the metered side
sends through the client itself, with N > 0 through its ``with_options(max_retries=0)`` copy; the transport never
fails, so nothing is retried either way).

Needs the SDKs: ``pip install -e '.[openai,anthropic]'`` (openai >= 3.63, anthropic >= 2.17, both on httpx2).
Prints Markdown (progress goes to stderr), so the output can be pasted into docs/performance.md; exits 2 when a
registry check fails, and with ``--check`` 1 when a row misses the target.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import noa_ai_provider
from _common import cpu_model  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.usage import usage_from_anthropic, usage_from_openai

try:
    import anthropic
    import httpx2
    import openai

    from noa_ai_provider.integrations import anthropic as metered_anthropic
    from noa_ai_provider.integrations import openai as metered_openai
except ImportError as exc:
    raise SystemExit(f"error: this benchmark needs the SDKs ({exc}): pip install -e '.[openai,anthropic]'") from None

TARGET = 0.10  # the overhead, as a share of the bare call's time
BIG = 10**9  # every rate limit and budget: far above what a run uses

# --------------------------------------------------------------------------- models, requests, recorded answers

GPT: dict[str, Any] = {
    "id": "gpt-4o",
    "name": "GPT-4o",
    "provider": "openai",
    "version": "4.0.0",
    "contextWindow": 128000,
    "maxTokens": 16384,
    "capabilities": ["chat_completion", "function_calling"],
    "cost": {"inputTokens": "2.5", "outputTokens": "10", "cachedInputTokens": "1.25", "per": 1_000_000},
    "rateLimit": {"requestsPerMinute": BIG, "tokensPerMinute": BIG},
}
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
    # The four limits Anthropic reports: configured, so none is learned from the headers (a learned limit would
    # be the header's real-world figure and refuse calls within seconds at this rate).
    "rateLimit": {
        "requestsPerMinute": BIG,
        "tokensPerMinute": BIG,
        "inputTokensPerMinute": BIG,
        "outputTokensPerMinute": BIG,
    },
}
GPT_KEY = "openai:gpt-4o"
SONNET_KEY = "anthropic:claude-sonnet-4-5"

CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "max_completion_tokens": 1000,
    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
}
CHAT_STREAM: dict[str, Any] = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
MESSAGE_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "Say hello."}],
}

# OpenAI: the shapes of tests/integrations/test_openai_meter.py. The header figures are a high tier's; what they
# leave remaining always covers the next call's reservation, so applying them never refuses anything.
OPENAI_HEADERS = {
    "content-type": "application/json",
    "x-request-id": "req_0c0a9c1c6e0d4b1b9d1c6f0e2a7b3c4d",
    "openai-processing-ms": "412",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": "29998500",
    "x-ratelimit-reset-tokens": "3ms",
}
OPENAI_USAGE: dict[str, Any] = {
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
    "model": "gpt-4o-2024-08-06",
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
    "usage": OPENAI_USAGE,
}


def _chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": COMPLETION["id"],
        "object": "chat.completion.chunk",
        "created": COMPLETION["created"],
        "model": COMPLETION["model"],
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": choices,
        "usage": usage,
    }


COMPLETION_JSON = json.dumps(COMPLETION).encode()


def completion_sse(pieces: list[str]) -> bytes:
    """A streamed chat completion: the role, one chunk per piece of text, the finish reason, then (include_usage)
    a chunk with no choices and the usage, then ``[DONE]``."""
    chunks = [_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    chunks += [_chunk([{"index": 0, "delta": {"content": text}, "finish_reason": None}]) for text in pieces]
    chunks += [_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]), _chunk([], OPENAI_USAGE)]
    return ("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n").encode()


LONG = 200  # pieces of text in the long streams: the per-chunk cost of a metered stream, over its per-call cost
COMPLETION_SSE = completion_sse(["Hel", "lo!"])
COMPLETION_SSE_LONG = completion_sse([" tok"] * LONG)

# Anthropic: the shapes of tests/integrations/test_anthropic_meter.py, with the full set of rate-limit headers a
# response carries (requests, tokens, input tokens, output tokens).
ANTHROPIC_HEADERS = {
    "content-type": "application/json",
    "request-id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    "anthropic-ratelimit-requests-limit": "4000",
    "anthropic-ratelimit-requests-remaining": "3999",
    "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
    "anthropic-ratelimit-tokens-limit": "2400000",
    "anthropic-ratelimit-tokens-remaining": "2394000",
    "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:00Z",
    "anthropic-ratelimit-input-tokens-limit": "2000000",
    "anthropic-ratelimit-input-tokens-remaining": "1995000",
    "anthropic-ratelimit-input-tokens-reset": "2030-01-01T00:00:00Z",
    "anthropic-ratelimit-output-tokens-limit": "400000",
    "anthropic-ratelimit-output-tokens-remaining": "399000",
    "anthropic-ratelimit-output-tokens-reset": "2030-01-01T00:00:00Z",
}
ANTHROPIC_USAGE: dict[str, Any] = {
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
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hello!"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": ANTHROPIC_USAGE,
}
MESSAGE_JSON = json.dumps(MESSAGE).encode()


def message_sse(pieces: list[str]) -> bytes:
    """A streamed message: message_start (usage with output_tokens 1), a text block with one delta per piece of
    text (and a ping), message_delta (cumulative output_tokens), message_stop."""
    start = {**MESSAGE, "content": [], "stop_reason": None, "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}} for text in pieces
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 200},
        },
        {"type": "message_stop"},
    ]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


MESSAGE_SSE = message_sse(["Hel", "lo!"])
MESSAGE_SSE_LONG = message_sse([" tok"] * LONG)

Handler = Callable[[httpx2.Request], httpx2.Response]


def answering(content: bytes, headers: dict[str, str], *, stream: bool = False) -> Handler:
    """A mock handler that answers every request with ``content`` (prebuilt bytes) and ``headers``."""
    items = list({**headers, "content-type": "text/event-stream"}.items() if stream else headers.items())

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=items, content=content)

    return handler


# --------------------------------------------------------------------------- registries and clients


def new_registry(*, budgets: bool = False) -> EnhancedModelRegistry:
    """An in-memory registry (default store, nothing persisted) with both models; with ``budgets``, also a global
    monthly budget and a daily one on gpt-4o, both far above what a run spends."""
    registry = EnhancedModelRegistry(auto_save=False, auto_load_config=False)
    registry.register_model(GPT)
    registry.register_model(SONNET)
    if budgets:
        registry.set_budget(BIG, period="month")
        registry.set_budget(BIG, period="day", key=GPT_KEY)
    return registry


def openai_client(handler: Handler, retries: int) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test-key", max_retries=retries, http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )


def async_openai_client(handler: Handler, retries: int) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="test-key",
        max_retries=retries,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )


def anthropic_client(handler: Handler, retries: int) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test-key", max_retries=retries, http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )


def async_anthropic_client(handler: Handler, retries: int) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="test-key",
        max_retries=retries,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )


def drain(stream: Any) -> None:
    """Iterate a stream (bare or metered) to its end inside ``with``, as a caller would."""
    with stream:
        for _ in stream:
            pass


def drain_helper(manager: Any) -> None:
    """Enter a ``messages.stream()`` manager (bare or metered) and iterate its stream to the end."""
    with manager as stream:
        for _ in stream:
            pass


# --------------------------------------------------------------------------- rows


@dataclass
class Row:
    """One benchmark row: the same call made bare and metered (sync callables, or coroutine functions when
    ``is_async``), the registry the metered side records into, and what each call should cost there."""

    ident: str
    label: str
    bare: Callable[[], Any]
    metered: Callable[[], Any]
    registry: EnhancedModelRegistry
    key: str
    expected_cost: Decimal
    is_async: bool = False
    weight: int = 1  # a call is about this many short calls' work: blocks (and warm-ups) are that many times shorter
    chunks: int = 0  # chunks or events per call, in a long-stream row
    bare_times: list[float] = field(default_factory=list)  # seconds per call, one per timed block
    metered_times: list[float] = field(default_factory=list)
    metered_calls: int = 0  # warm-up included: what the registry must have recorded
    checked: str = ""

    @property
    def bare_us(self) -> float:
        return statistics.median(self.bare_times) * 1e6

    @property
    def metered_us(self) -> float:
        return statistics.median(self.metered_times) * 1e6

    @property
    def overhead_us(self) -> float:
        return self.metered_us - self.bare_us

    @property
    def share(self) -> float:
        return self.overhead_us / self.bare_us

    @property
    def pair_shares(self) -> list[float]:
        """Overhead as a share of bare, per adjacent (bare, metered) block pair."""
        return [(m - b) / b for b, m in zip(self.bare_times, self.metered_times, strict=True)]

    @property
    def met(self) -> bool:
        return self.share <= TARGET


ROW_IDS = [
    "openai",
    "openai-stream",
    "openai-stream-long",
    "openai-async",
    "anthropic",
    "anthropic-stream",
    "anthropic-stream-long",
    "anthropic-async",
    "openai-budget",
    "anthropic-helper",
]
DEFAULT_ROWS = [r for r in ROW_IDS if r != "anthropic-helper"]


def expected_costs(registry: EnhancedModelRegistry) -> tuple[Decimal, Decimal]:
    """What one call costs at the recorded usage: gpt-4o's, claude-sonnet-4-5's (as the SDKs parse the answers)."""
    completion = openai.types.chat.ChatCompletion.model_validate(COMPLETION)
    message = anthropic.types.Message.model_validate(MESSAGE)
    return (
        registry.estimate_cost(GPT_KEY, **usage_from_openai(completion)),
        registry.estimate_cost(SONNET_KEY, **usage_from_anthropic(message)),
    )


def sides(bare: Any, metered: Any, call: Callable[[Any], Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``call`` on the bare client and on the metered one: the same code, one frame deep on both sides."""
    return (lambda: call(bare)), (lambda: call(metered))


def build_rows(idents: list[str], retries: int) -> list[Row]:
    """The rows named by ``idents``: each has its own SDK client over its own mock transport, the metered side
    wrapping that very client; all but ``openai-budget`` record into one shared registry."""
    registry = new_registry()
    gpt_cost, sonnet_cost = expected_costs(registry)
    rows: list[Row] = []
    for ident in idents:
        on, key, cost, is_async, weight, chunks = registry, GPT_KEY, gpt_cost, False, 1, 0
        client: Any
        if ident in ("openai", "openai-budget"):
            client = openai_client(answering(COMPLETION_JSON, OPENAI_HEADERS), retries)
            if ident == "openai":
                label = "OpenAI chat, sync"
            else:
                label, on = "OpenAI chat, sync, registry with 2 budgets", new_registry(budgets=True)
            bare, metered = sides(client, metered_openai.meter(client, on), lambda c: c.chat.completions.create(**CHAT))
        elif ident in ("openai-stream", "openai-stream-long"):
            if ident == "openai-stream":
                label, body = "OpenAI chat, streamed (include_usage), iterated", COMPLETION_SSE
            else:
                body, weight, chunks = COMPLETION_SSE_LONG, 20, LONG + 3
                label = f"OpenAI chat, streamed, {chunks} chunks"
            client = openai_client(answering(body, OPENAI_HEADERS, stream=True), retries)
            bare, metered = sides(
                client,
                metered_openai.meter(client, on),
                lambda c: drain(c.chat.completions.create(**CHAT_STREAM)),
            )
        elif ident == "openai-async":
            label, is_async = "OpenAI chat, async", True
            client = async_openai_client(answering(COMPLETION_JSON, OPENAI_HEADERS), retries)
            bare, metered = sides(client, metered_openai.meter(client, on), lambda c: c.chat.completions.create(**CHAT))
        else:
            key, cost = SONNET_KEY, sonnet_cost
            if ident == "anthropic":
                label = "Anthropic messages.create, sync"
                client = anthropic_client(answering(MESSAGE_JSON, ANTHROPIC_HEADERS), retries)
                call: Callable[[Any], Any] = lambda c: c.messages.create(**MESSAGE_REQUEST)  # noqa: E731
            elif ident in ("anthropic-stream", "anthropic-stream-long"):
                if ident == "anthropic-stream":
                    label, body = "Anthropic messages.create(stream=True), iterated", MESSAGE_SSE
                else:
                    body, weight, chunks = MESSAGE_SSE_LONG, 20, LONG + 6
                    label = f"Anthropic messages.create(stream=True), {chunks} events"
                client = anthropic_client(answering(body, ANTHROPIC_HEADERS, stream=True), retries)
                call = lambda c: drain(c.messages.create(**MESSAGE_REQUEST, stream=True))  # noqa: E731
            elif ident == "anthropic-async":
                label, is_async = "Anthropic messages.create, async", True
                client = async_anthropic_client(answering(MESSAGE_JSON, ANTHROPIC_HEADERS), retries)
                call = lambda c: c.messages.create(**MESSAGE_REQUEST)  # noqa: E731
            elif ident == "anthropic-helper":
                label = "Anthropic messages.stream() helper, iterated"
                client = anthropic_client(answering(MESSAGE_SSE, ANTHROPIC_HEADERS, stream=True), retries)
                call = lambda c: drain_helper(c.messages.stream(**MESSAGE_REQUEST))  # noqa: E731
            else:  # parse_rows checked the names
                raise SystemExit(f"error: unknown row {ident!r}")
            bare, metered = sides(client, metered_anthropic.meter(client, on), call)
        rows.append(Row(ident, label, bare, metered, on, key, cost, is_async, weight, chunks))
    return rows


# --------------------------------------------------------------------------- timing


def run_block(
    call: Callable[[], Any], calls: int, is_async: bool, loop: asyncio.AbstractEventLoop, collector: bool
) -> float:
    """Seconds per call over ``calls`` calls of ``call`` (awaited when ``is_async``), after a full collection;
    with ``collector`` False the garbage collector is off while the block runs."""
    gc.collect()
    if not collector:
        gc.disable()
    try:
        if is_async:

            async def body() -> float:
                perf = time.perf_counter
                start = perf()
                for _ in range(calls):
                    await call()
                return perf() - start

            return loop.run_until_complete(body()) / calls
        perf = time.perf_counter
        start = perf()
        for _ in range(calls):
            call()
        return (perf() - start) / calls
    finally:
        if not collector:
            gc.enable()


def measure(row: Row, args: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> None:
    """Warm both sides up, then time ``--repeats`` blocks per side, alternating, the first side swapped on every
    repeat (B M, M B, B M, ...)."""
    collector = args.gc == "on"
    warm, calls = max(args.warmup // 2 // row.weight, 1), max(args.calls // row.weight, 1)
    for _ in range(2):  # twice each, interleaved: connection pools, caches and lazily built proxies are ready
        run_block(row.bare, warm, row.is_async, loop, collector)
        run_block(row.metered, warm, row.is_async, loop, collector)
        row.metered_calls += warm
    for repeat in range(args.repeats):
        order = [(row.bare, row.bare_times), (row.metered, row.metered_times)]
        if repeat % 2:
            order.reverse()
        for call, out in order:
            out.append(run_block(call, calls, row.is_async, loop, collector))
        row.metered_calls += calls


def usage_counts(registry: EnhancedModelRegistry, key: str) -> tuple[int, int, Decimal]:
    stats = registry.get_usage_stats(key)
    if stats is None:
        raise SystemExit(f"error: {key} has no usage stats")
    return stats.request_count, stats.failed_requests, stats.total_cost


def verify(row: Row, before: tuple[int, int, Decimal]) -> str:
    """That the registry recorded exactly ``row.metered_calls`` requests since ``before``, none failed, each at the
    expected price: what was found, starting ``**CHECK FAILED**`` when it was not so."""
    count, failed, cost = usage_counts(row.registry, row.key)
    recorded, failures, spent = count - before[0], failed - before[1], cost - before[2]
    problems = []
    if recorded != row.metered_calls:
        problems.append(f"recorded {recorded:,} requests for {row.metered_calls:,} metered calls")
    if failures:
        problems.append(f"{failures:,} failed requests")
    if spent != row.expected_cost * row.metered_calls:
        problems.append(f"cost {spent} USD, expected {row.expected_cost * row.metered_calls} USD")
    if problems:
        return "**CHECK FAILED**: " + "; ".join(problems)
    return (
        f"{recorded:,} metered calls recorded, none failed, each priced {row.expected_cost.normalize()} USD "
        f"({spent.normalize()} USD in all)"
    )


# --------------------------------------------------------------------------- breakdown: in the call and alone

PIECES = ["sdk", "estimate", "resolve_key", "acquire", "commit", "usage", "headers"]


class Clocks:
    """Seconds spent inside wrapped callables, by piece: a ``perf_counter`` pair around each call (a wrapper costs
    ~0.2 µs a call in a hot loop, more inside a real call; a part of it lands inside its own reading)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = dict.fromkeys(PIECES, 0.0)

    def wrap(self, piece: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        spent, perf = self.spent, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[piece] += perf() - start

        return timed

    def reset(self) -> None:
        for piece in self.spent:
            self.spent[piece] = 0.0


def instrumented_registry(clocks: Clocks, missing: set[str]) -> EnhancedModelRegistry:
    """A registry whose methods a metered call uses are timed (wrapped on the instance): ``resolve_key``,
    ``acquire``, ``update_rate_limits_from_headers`` and ``_settle_reservation`` (what ``Reservation.commit``
    calls). A method not found (the library changed) is left alone and its piece reported missing."""
    registry = new_registry()
    for method, piece in (
        ("resolve_key", "resolve_key"),
        ("acquire", "acquire"),
        ("_settle_reservation", "commit"),
        ("update_rate_limits_from_headers", "headers"),
    ):
        found = getattr(registry, method, None)
        if found is None:
            missing.add(piece)
        else:
            setattr(registry, method, clocks.wrap(piece, found))
    return registry


def instrument_sender(resource: Any, clocks: Clocks, missing: set[str]) -> None:
    """Time the SDK's part of a metered call: the raw-response ``create`` the metered resource sends through (its
    ``_create``) and the ``parse()`` of the raw response it returns."""
    send = getattr(resource, "_create", None)
    if send is None:
        missing.add("sdk")
        return
    spent, perf = clocks.spent, time.perf_counter

    def sending(**kwargs: Any) -> Any:
        start = perf()
        raw = send(**kwargs)
        parse = raw.parse

        def parsing(*args: Any, **kw: Any) -> Any:
            begin = perf()
            try:
                return parse(*args, **kw)
            finally:
                spent["sdk"] += perf() - begin

        raw.parse = parsing
        spent["sdk"] += perf() - start
        return raw

    resource._create = sending


def breakdown(row: Row, args: argparse.Namespace, loop: asyncio.AbstractEventLoop, out: list[str]) -> None:
    """Where a metered sync call's extra time goes, without a profiler (``row``: ``openai`` or ``anthropic``).

    In the call: a fresh metered client whose pieces are timed where they run (registry methods wrapped on the
    instance, the estimate passed to ``meter``, the usage reader and the SDK sender wrapped on the proxies), timed
    in alternating blocks against its bare client like a row. Alone: each piece in a hot loop of its own."""
    clocks, missing = Clocks(), set[str]()
    registry = instrumented_registry(clocks, missing)
    if row.ident == "openai":
        client: Any = openai_client(answering(COMPLETION_JSON, OPENAI_HEADERS), args.sdk_retries)
        estimate: Callable[[Any], int] = metered_openai.estimate_input_tokens
        usage_of: Callable[[Any], dict[str, Any]] = usage_from_openai
        metered: Any = metered_openai.meter(client, registry, estimate=clocks.wrap("estimate", estimate))
        request, cap, resource = CHAT, CHAT["max_completion_tokens"], metered.chat.completions
        bare, call = sides(client, metered, lambda c: c.chat.completions.create(**CHAT))
    else:
        client = anthropic_client(answering(MESSAGE_JSON, ANTHROPIC_HEADERS), args.sdk_retries)
        estimate, usage_of = metered_anthropic.estimate_input_tokens, usage_from_anthropic
        metered = metered_anthropic.meter(client, registry, estimate=clocks.wrap("estimate", estimate))
        request, cap, resource = MESSAGE_REQUEST, MESSAGE_REQUEST["max_tokens"], metered.messages
        bare, call = sides(client, metered, lambda c: c.messages.create(**MESSAGE_REQUEST))
    core = getattr(metered, "_meter", None)
    if core is not None and hasattr(core, "usage_of"):
        core.usage_of = clocks.wrap("usage", core.usage_of)
    else:
        missing.add("usage")
    instrument_sender(resource, clocks, missing)

    # In the call: alternating blocks, bare, instrumented metered, and the SDK's raw path alone on the bare client
    # (``with_raw_response.create(...).parse()``, what the metered call sends through), the order rotated every
    # repeat; the pieces read after each metered block.
    if row.ident == "openai":
        raw_call: Callable[[], Any] = lambda: client.chat.completions.with_raw_response.create(**CHAT).parse()  # noqa: E731
    else:
        raw_call = lambda: client.messages.with_raw_response.create(**MESSAGE_REQUEST).parse()  # noqa: E731
    collector = args.gc == "on"
    blocks = args.breakdown_repeats
    timed_sides = [("bare", bare), ("metered", call), ("raw", raw_call)]
    for _ in range(2):
        for _, side in timed_sides:
            run_block(side, max(args.warmup // 2, 1), False, loop, collector)
    times: dict[str, list[float]] = {name: [] for name, _ in timed_sides}
    inside: dict[str, list[float]] = {piece: [] for piece in PIECES}
    for repeat in range(blocks):
        turn = repeat % len(timed_sides)
        for name, side in timed_sides[turn:] + timed_sides[:turn]:
            clocks.reset()
            times[name].append(run_block(side, args.calls, False, loop, collector))
            if name == "metered":
                for piece in PIECES:
                    inside[piece].append(clocks.spent[piece] / args.calls)

    # Alone: each piece in a loop of its own, timed by the same wrappers (on other registries: these calls stay
    # out of the one above; the headers on a third, where applied over and over their remaining counts would cap
    # the acquires; in a call they are applied after its commit and never add up).
    solo, solo_missing = Clocks(), set[str]()
    alone_registry = instrumented_registry(solo, solo_missing)
    reported = instrumented_registry(solo, solo_missing)
    raw = client.chat.completions.with_raw_response.create(**request) if row.ident == "openai" else None
    if raw is None:
        raw = client.messages.with_raw_response.create(**request)
    result, headers = raw.parse(), raw.headers
    model, tokens, counts = request["model"], estimate(request), usage_of(result)
    key = registry.resolve_key(model)
    timed_estimate, timed_usage = solo.wrap("estimate", estimate), solo.wrap("usage", usage_of)
    loops: list[tuple[tuple[str, ...], Callable[[], Any]]] = [
        (("estimate",), lambda: timed_estimate(request)),
        (("resolve_key",), lambda: alone_registry.resolve_key(model)),
        (("acquire", "commit"), lambda: alone_registry.acquire(key, tokens, cap).commit(**counts)),
        (("usage",), lambda: timed_usage(result)),
        (("headers",), lambda: reported.update_rate_limits_from_headers(key, headers)),
    ]
    alone: dict[str, list[float]] = {piece: [] for piece in PIECES}
    for _, body in loops:
        run_block(body, max(args.breakdown_ops // 10, 1), False, loop, collector)
    for _ in range(blocks):
        for pieces, body in loops:
            solo.reset()
            run_block(body, args.breakdown_ops, False, loop, collector)
            for piece in pieces:
                alone[piece].append(solo.spent[piece] / args.breakdown_ops)

    def us(values: list[float]) -> float:
        return statistics.median(values) * 1e6 if values else math.nan

    bare_us, metered_us = us(times["bare"]), us(times["metered"])
    overhead = metered_us - bare_us
    alone["sdk"] = [raw - bare_us / 1e6 for raw in times["raw"]]
    labels = {
        "sdk": "SDK: `with_raw_response.create()` + `.parse()`, over the bare `create()`",
        "estimate": f"input estimate (`{estimate.__module__.rsplit('.', 1)[-1]}.estimate_input_tokens`, chars / 4)",
        "resolve_key": "`registry.resolve_key(model)`",
        "acquire": "`registry.acquire(key, estimate, cap)`: admit against 2–4 windows, hold the reservation",
        "commit": "`Reservation.commit(**usage)`: settle the windows, price, record, emit",
        "usage": f"`{usage_of.__name__}(response)`",
        "headers": f"`registry.update_rate_limits_from_headers(key, headers)` "
        f"({sum(1 for h in headers if 'ratelimit' in h)} rate-limit headers)",
    }
    out.append(f"\n### {row.label}\n")
    out.append(
        f"Instrumented run: bare {bare_us:.1f} µs per call, metered {metered_us:.1f} µs, overhead {overhead:.1f} µs "
        f"({overhead / bare_us:.1%}; the uninstrumented row above: {row.overhead_us:.1f} µs). "
        f"{blocks} alternating blocks of {args.calls:,} a side; alone: {args.breakdown_ops:,} calls × "
        f"{blocks} blocks; medians."
    )
    out.append("\n| piece | µs in the metered call | share of the overhead | µs alone, hot loop | in call / alone |")
    out.append("|---|--:|--:|--:|--:|")
    accounted = 0.0
    for piece in PIECES:
        if piece in missing:
            out.append(f"| {labels[piece]} | not found (the library changed) | | | |")
            continue
        value = us(inside[piece]) - (bare_us if piece == "sdk" else 0.0)
        accounted += value
        solo_us = us(alone[piece])
        # The SDK's figures are differences of two ~0.3-0.6 ms calls: a ratio of them would be noise.
        ratio = f"{value / solo_us:.1f}×" if piece != "sdk" and solo_us > 0.3 else ""
        out.append(f"| {labels[piece]} | {value:.1f} | {value / overhead:.0%} | {solo_us:.1f} | {ratio} |")
    rest = overhead - accounted
    out.append(
        f"| the rest, by difference: proxies, `Meter` glue, the timers themselves | {rest:.1f} | "
        f"{rest / overhead:.0%} | | |"
    )
    out.append(f"| **overhead of the instrumented call** | **{overhead:.1f}** | 100% | | |")


# --------------------------------------------------------------------------- cProfile


def profile_side(
    call: Callable[[], Any], calls: int, is_async: bool, loop: asyncio.AbstractEventLoop
) -> dict[Any, Any]:
    """cProfile ``calls`` calls: pstats' raw table (function -> (cc, nc, tottime, cumtime, callers))."""
    gc.collect()  # otherwise a collection of earlier garbage lands on whatever function runs then
    prof = cProfile.Profile()
    if is_async:

        async def body() -> None:
            for _ in range(calls):
                await call()

        prof.enable()
        loop.run_until_complete(body())
    else:
        prof.enable()
        for _ in range(calls):
            call()
    prof.disable()
    raw: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    # This file's lambdas differ between the sides (one per side, each its own code object): merged under one
    # name, so the bare one and the metered one compare (the attribute chain they run is the callers' own cost).
    merged: dict[Any, Any] = {}
    for func, (cc, nc, tt, ct, callers) in raw.items():
        if func[0] == __file__ or os.path.basename(func[0]) == os.path.basename(__file__):
            func = ("bench_integrations.py", 0, "<the row's call>" if func[2] == "<lambda>" else func[2])
        if func in merged:
            old = merged[func]
            merged[func] = (old[0] + cc, old[1] + nc, old[2] + tt, old[3] + ct, old[4])
        else:
            merged[func] = (cc, nc, tt, ct, callers)
    return merged


def short(func: tuple[str, int, str]) -> str:
    """``noa_ai_provider/integrations/metering.py:107 send``, ``openai/_legacy_response.py:198 _parse``."""
    path, line, name = func
    if path == "~":
        return name
    if line == 0:
        return f"{path} {name}"
    for marker in ("/site-packages/", "/src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = os.path.basename(path)  # the standard library's (typing.py, asyncio/...), or this file
    return f"{path}:{line} {name}"


def profile_row(row: Row, args: argparse.Namespace, loop: asyncio.AbstractEventLoop, out: list[str]) -> None:
    n = max(args.profile_calls // row.weight, 1)
    before = usage_counts(row.registry, row.key)
    for _ in range(2):
        run_block(row.bare, max(n // 10, 1), row.is_async, loop, True)
        run_block(row.metered, max(n // 10, 1), row.is_async, loop, True)
    bare = profile_side(row.bare, n, row.is_async, loop)
    metered = profile_side(row.metered, n, row.is_async, loop)
    row.metered_calls = 2 * max(n // 10, 1) + n
    checked = verify(row, before)
    bare_total = sum(v[2] for v in bare.values()) / n * 1e6
    metered_total = sum(v[2] for v in metered.values()) / n * 1e6
    extra = metered_total - bare_total
    out.append(f"\n### {row.label}\n")
    out.append(
        f"Under cProfile ({n:,} calls a side): bare {bare_total:.0f} µs per call, metered {metered_total:.0f} µs, "
        f"extra {extra:.0f} µs, against {row.overhead_us:.1f} µs measured without the profiler "
        f"(x{extra / row.overhead_us:.1f}: "
        "the profiler's own cost per Python call weighs most on code made of many small calls; read the µs below as "
        "shares)."
    )
    top = args.profile_top
    noa = sorted(((v[3], v[2], v[1], f) for f, v in metered.items() if "noa_ai_provider" in f[0]), reverse=True)[:top]
    out.append("\nnoa's functions in the metered call, by cumulative time:\n")
    out.append("| function | cumulative µs/call | own µs/call | calls/call |")
    out.append("|---|--:|--:|--:|")
    for cum, own, count, f in noa:
        out.append(f"| `{short(f)}` | {cum / n * 1e6:.1f} | {own / n * 1e6:.1f} | {count / n:g} |")
    deltas = sorted(
        (
            ((metered.get(f, (0, 0, 0.0))[2] - bare.get(f, (0, 0, 0.0))[2]) / n * 1e6, f)
            for f in set(metered) | set(bare)
        ),
        reverse=True,
    )
    out.append("\nOwn time that grows most from bare to metered (every function, SDK and standard library too):\n")
    out.append("| function | own µs/call bare | own µs/call metered | extra µs/call |")
    out.append("|---|--:|--:|--:|")
    for delta, f in deltas[:top]:
        b = bare.get(f, (0, 0, 0.0))[2] / n * 1e6
        m = metered.get(f, (0, 0, 0.0))[2] / n * 1e6
        out.append(f"| `{short(f)}` | {b:.1f} | {m:.1f} | {delta:+.1f} |")
    sdk_only = sum(v[2] for f, v in metered.items() if f not in bare and "noa_ai_provider" not in f[0] and f[0] != "~")
    out.append(
        f"\nFunctions outside noa that only the metered path calls (the SDK's raw-response path and stream "
        f"`__next__`, and what noa's own code calls into, e.g. pydantic's `__getattr__` on a missing attribute) take "
        f"{sdk_only / n * 1e6:.1f} µs of own time per call under the profiler."
    )
    out.append(f"\nChecked after profiling: {checked}")
    if checked.startswith("**CHECK"):
        row.checked = checked


# --------------------------------------------------------------------------- report


def machine_lines(args: argparse.Namespace) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable)",
        f"- noa-ai-provider {getattr(noa_ai_provider, '__version__', '?')}, openai {openai.__version__}, "
        f"anthropic {anthropic.__version__}, httpx2 {httpx2.__version__}",
        f"- {args.calls:,} calls per block, {args.repeats} blocks per side (alternating, the first side swapped "
        f"every repeat), after {args.warmup:,} warm-up calls a side; median; collector "
        f"{'on (collected before each block)' if args.gc == 'on' else 'off inside blocks'}; SDK max_retries="
        f"{args.sdk_retries}",
    ]


def table(rows: list[Row]) -> list[str]:
    out = [
        "| call | bare µs/call | metered µs/call | overhead µs | overhead % of bare | metered / bare "
        "| overhead % per block pair (min – max) | target ≤ 10% |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        pairs = r.pair_shares
        out.append(
            f"| {r.label} | {r.bare_us:.1f} | {r.metered_us:.1f} | {r.overhead_us:.1f} | {r.share:.1%} "
            f"| {r.metered_us / r.bare_us:.3f}× | {min(pairs):.1%} – {max(pairs):.1%} "
            f"| {'met' if r.met else '**missed**'} |"
        )
    return out


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    rows = build_rows(args.rows, args.sdk_retries)
    loop = asyncio.new_event_loop()
    try:
        for i, row in enumerate(rows, 1):
            progress(f"[{i}/{len(rows)}] {row.label} ...")
            before = usage_counts(row.registry, row.key)
            measure(row, args, loop)
            row.checked = verify(row, before)
            progress(f"    bare {row.bare_us:.1f} µs, metered {row.metered_us:.1f} µs: +{row.share:.1%}")

        out = ["## Metered SDK calls: bare client vs `meter(client, registry)` on the same MockTransport\n"]
        out += machine_lines(args)
        out.append("")
        out += table(rows)
        missed = [r for r in rows if not r.met]
        weighted = [r for r in rows if r.weight > 1]
        if weighted:
            out.append(
                "\nThe long-stream rows ("
                + ", ".join(r.label for r in weighted)
                + f") run {max(args.calls // weighted[0].weight, 1):,} calls per block; per chunk or event, their "
                "overhead is "
                + ", ".join(f"{r.overhead_us / r.chunks:.1f} µs" for r in weighted)
                + " (bare: "
                + ", ".join(f"{r.bare_us / r.chunks:.1f} µs" for r in weighted)
                + ")."
            )
        out.append(
            f"\nTarget (overhead ≤ {TARGET:.0%} of the bare call on every row): "
            f"**{'met' if not missed else 'missed on ' + ', '.join(r.label for r in missed)}**."
        )
        if args.calls * args.repeats < 4000 or args.repeats < 5:
            out.append(f"This run did {args.calls:,} calls × {args.repeats} blocks: read it as a smoke test.")
        out.append("\nChecked after each row (the metered side's registry):")
        out += [f"- {r.label}: {r.checked}" for r in rows]
        failed_checks = [r for r in rows if r.checked.startswith("**CHECK")]

        by_ident = {r.ident: r for r in rows}
        if args.breakdown and ("openai" in by_ident or "anthropic" in by_ident):
            out.append("\n## Where the overhead goes: the pieces of a metered sync call, timed where they run\n")
            out.append(
                "No profiler. A fresh metered client whose pieces are timed in place (a `perf_counter` pair around "
                "each: the registry's methods wrapped on the instance, the estimate passed to `meter`, the usage "
                "reader and the SDK sender wrapped on the proxies), in alternating blocks against its bare client; "
                "then each piece alone in a hot loop. The SDK's share is its raw-response `create` + `parse` inside "
                "the metered call minus the whole bare call; the rest is by difference (and carries the noise of "
                "both sides). The timers add to the call: its overhead here is above the row's. A piece costs more "
                "in the call than alone because it runs with caches the SDK's work has just filled with other things."
            )
            for ident in ("openai", "anthropic"):
                if ident in by_ident:
                    progress(f"[breakdown] {by_ident[ident].label} ...")
                    breakdown(by_ident[ident], args, loop, out)

        profiled = rows if args.profile == "all" else missed if args.profile == "missed" else []
        if profiled:
            out.append(
                "\n## cProfile of the metered path" + (" (rows over target)" if args.profile == "missed" else "")
            )
            for row in profiled:
                progress(f"[profile] {row.label} ...")
                profile_row(row, args, loop, out)
            failed_checks = [r for r in rows if r.checked.startswith("**CHECK")]
        out.append(f"\nWhole run: {time.perf_counter() - started:.0f} s.")
        print("\n".join(out))
    finally:
        loop.close()
    if failed_checks:
        progress(
            "error: the registry's counters do not match the calls made: " + ", ".join(r.label for r in failed_checks)
        )
        return 2
    return 1 if args.check and missed else 0


def parse_rows(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(ROW_IDS)
    unknown = [n for n in names if n not in ROW_IDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown row(s) {unknown}; choose from {', '.join(ROW_IDS)} (or all)")
    return [r for r in ROW_IDS if r in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=None, help="calls per timed block (default 400; quick 150)")
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per side (default 11; quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per side (default 200; quick 50)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 150 calls x 3 blocks")
    parser.add_argument(
        "--rows",
        type=parse_rows,
        default=list(DEFAULT_ROWS),
        help=f"comma-separated subset of {', '.join(ROW_IDS)}, or all (default: all but anthropic-helper)",
    )
    parser.add_argument("--gc", choices=["on", "off"], default="on", help="the collector inside timed blocks (on)")
    parser.add_argument(
        "--sdk-retries",
        type=int,
        default=0,
        metavar="N",
        help="the SDK clients' max_retries (default 0; the metered side then sends through the client itself, "
        "with N > 0 through a with_options(max_retries=0) copy; no call fails, so nothing is retried either way)",
    )
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the pieces a metered sync call adds, alone (default: on)",
    )
    parser.add_argument(
        "--breakdown-ops", type=int, default=None, metavar="N", help="calls per block of each piece (default 3000)"
    )
    parser.add_argument(
        "--breakdown-repeats",
        type=int,
        default=None,
        metavar="N",
        help="blocks per side in the breakdown (default: half of --repeats, at least 3)",
    )
    parser.add_argument(
        "--profile",
        choices=["missed", "all", "none"],
        default="missed",
        help="cProfile the rows over target (default), every row, or none",
    )
    parser.add_argument("--profile-calls", type=int, default=None, metavar="N", help="calls profiled a side (300)")
    parser.add_argument("--profile-top", type=int, default=12, metavar="N", help="rows per profile table (12)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a row is over the 10%% target")
    args = parser.parse_args(argv)
    quick = args.quick
    args.calls = args.calls or (150 if quick else 400)
    args.repeats = args.repeats or (3 if quick else 11)
    args.breakdown_repeats = args.breakdown_repeats or max(3, (args.repeats + 1) // 2)
    args.warmup = args.warmup if args.warmup is not None else (50 if quick else 200)
    args.breakdown_ops = args.breakdown_ops or (500 if quick else 3000)
    args.profile_calls = args.profile_calls or (150 if quick else 300)
    if args.calls < 1 or args.repeats < 1 or args.warmup < 0 or args.sdk_retries < 0:
        parser.error("--calls and --repeats must be >= 1, --warmup and --sdk-retries >= 0")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
