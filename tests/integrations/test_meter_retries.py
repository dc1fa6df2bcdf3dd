"""Metered retries, dropped streams, unrecordable usage and the tokenizer estimate, through the real SDKs over an
``httpx2.MockTransport``.

Retries run on the real clock (the SDK sleeps real seconds between attempts): the delays here are kept to a few
hundred milliseconds with ``retry-after-ms``.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import RateLimitExceeded
from noa_ai_provider.integrations import anthropic as metered_anthropic
from noa_ai_provider.integrations import openai as metered_openai
from noa_ai_provider.integrations.estimates import tokenizer_estimate
from noa_ai_provider.testing import busy, window_totals

from . import test_anthropic_meter as claude
from . import test_openai_meter as gpt

tiktoken = pytest.importorskip("tiktoken")  # a dev dependency: .ci/run installs it, so this always runs there


class Provider:
    """A mock provider answering each request with the next of ``script`` (a status, or an exception to raise),
    then with ``answer``; it logs each request's retry count and arrival time."""

    def __init__(self, script: list[Any], answer: Any, headers: dict[str, str] | None = None) -> None:
        self.script = list(script)
        self.answer = answer
        self.headers = headers or {}
        self.seen: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        with self.lock:
            self.seen.append((request.headers.get("x-stainless-retry-count", "?"), time.monotonic()))
            step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, int):
            body = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}
            return httpx2.Response(step, headers=self.headers, json=body)
        return self.answer(request)  # type: ignore[no-any-return]


def openai_client(provider: Provider, retries: int = 2) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test-key", max_retries=retries, http_client=httpx2.Client(transport=httpx2.MockTransport(provider))
    )


def anthropic_client(provider: Provider, retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test-key", max_retries=retries, http_client=httpx2.Client(transport=httpx2.MockTransport(provider))
    )


@pytest.fixture
def live() -> EnhancedModelRegistry:
    """A registry on the real clock (the SDK's retry waits are real seconds)."""
    registry = EnhancedModelRegistry()
    registry.register_model(gpt.GPT4O)
    registry.register_model(claude.SONNET)
    return registry


def stats(registry: EnhancedModelRegistry, key: str) -> tuple[int, int, Decimal]:
    found = registry.get_usage_stats(key)
    assert found is not None
    return found.request_count, found.failed_requests, found.total_cost


def test_a_429_is_retried_through_the_registry_and_cools_the_model_down_for_everyone(
    live: EnhancedModelRegistry,
) -> None:
    provider = Provider([429], gpt.answer, {"retry-after-ms": "600"})
    metered = metered_openai.meter(openai_client(provider), live)
    results: list[Any] = []
    caller = threading.Thread(target=lambda: results.append(metered.chat.completions.create(**gpt.REQUEST)))
    caller.start()
    # While the first caller sleeps before its retry, another caller is refused without a request being sent:
    # the 429's retry-after is the registry's, not only the SDK's.
    deadline = time.monotonic() + 5
    while not provider.seen and time.monotonic() < deadline:
        time.sleep(0.005)
    refused = None
    while refused is None and time.monotonic() < deadline:
        try:
            live.acquire(gpt.KEY, 1, 1).cancel()
            time.sleep(0.005)
        except RateLimitExceeded as error:
            refused = error
    assert refused is not None
    assert refused.limit == "retry-after"
    with pytest.raises(RateLimitExceeded):
        metered.chat.completions.create(**gpt.REQUEST)
    caller.join(10)
    assert results
    assert results[0].usage.prompt_tokens == 1200
    assert [count for count, _ in provider.seen] == ["0", "1"]  # one retry, numbered as the SDK numbers them
    assert provider.seen[1][1] - provider.seen[0][1] >= 0.55  # it waited the retry-after
    # The 429 is a failed request at $0; the retry is billed exactly once.
    assert stats(live, gpt.KEY) == (2, 1, gpt.billed(live))
    assert window_totals(live, gpt.KEY)["requests_per_minute"] == 1  # a failed request gives its slot back


def test_a_5xx_then_a_connection_error_are_retried_with_backoff(live: EnhancedModelRegistry) -> None:
    provider = Provider([500, httpx2.ConnectError("connection refused")], gpt.answer)
    metered = metered_openai.meter(openai_client(provider, retries=2), live)
    started = time.monotonic()
    completion = metered.chat.completions.create(**gpt.REQUEST)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 300
    assert time.monotonic() - started >= 0.375 + 0.75  # backoff 0.5 s then 1 s, less at most 25% jitter
    assert [count for count, _ in provider.seen] == ["0", "1", "2"]
    assert stats(live, gpt.KEY) == (3, 2, gpt.billed(live))


def test_retries_stop_at_max_retries_and_raise_the_last_error(live: EnhancedModelRegistry) -> None:
    provider = Provider([503, 503], gpt.answer, {"retry-after-ms": "10"})
    metered = metered_openai.meter(openai_client(provider, retries=1), live)
    with pytest.raises(openai.InternalServerError):
        metered.chat.completions.create(**gpt.REQUEST)
    assert len(provider.seen) == 2
    assert stats(live, gpt.KEY) == (2, 2, Decimal(0))
    assert window_totals(live, gpt.KEY)["tokens_per_minute"] == 0  # no reservation left open


def test_with_options_max_retries_zero_and_x_should_retry_false_are_not_retried(
    live: EnhancedModelRegistry,
) -> None:
    provider = Provider([429, 429], gpt.answer, {"retry-after-ms": "10"})
    metered = metered_openai.meter(openai_client(provider), live)
    with pytest.raises(openai.RateLimitError):
        metered.with_options(max_retries=0).chat.completions.create(**gpt.REQUEST)
    assert len(provider.seen) == 1

    time.sleep(0.05)  # past the first 429's 10 ms cooldown
    refused = Provider([429], gpt.answer, {"x-should-retry": "false"})
    with pytest.raises(openai.RateLimitError):
        metered_openai.meter(openai_client(refused), live).chat.completions.create(**gpt.REQUEST)
    assert len(refused.seen) == 1


def test_a_retry_after_over_a_minute_is_raised_at_once_and_keeps_the_model_cooled(
    live: EnhancedModelRegistry,
) -> None:
    provider = Provider([429], gpt.answer, {"retry-after": "90"})
    metered = metered_openai.meter(openai_client(provider), live)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        metered.chat.completions.create(**gpt.REQUEST)
    assert time.monotonic() - started < 5
    with pytest.raises(RateLimitExceeded) as refused:
        metered.chat.completions.create(**gpt.REQUEST)
    assert refused.value.limit == "retry-after"
    assert refused.value.retry_after > 80
    assert len(provider.seen) == 1


def test_anthropic_529_overloaded_is_retried_and_the_stream_helper_too(live: EnhancedModelRegistry) -> None:
    provider = Provider([529, 529], claude.answer, {"retry-after-ms": "50"})
    metered = metered_anthropic.meter(anthropic_client(provider), live)
    message = metered.messages.create(**claude.REQUEST)
    assert message.usage.output_tokens == claude.USAGE["output_tokens"]
    assert stats(live, claude.KEY) == (3, 2, claude.billed(live))

    provider.script = [429]
    with metered.messages.stream(**claude.REQUEST) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens > 0
    assert [count for count, _ in provider.seen[-2:]] == ["0", "1"]
    requests, failed, _ = stats(live, claude.KEY)
    assert (requests, failed) == (5, 3)
    assert window_totals(live, claude.KEY)["requests_per_minute"] == 2


def test_async_retry(live: EnhancedModelRegistry) -> None:
    import asyncio

    provider = Provider([429], gpt.answer, {"retry-after-ms": "100"})
    client = openai.AsyncOpenAI(
        api_key="test-key", max_retries=2, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(provider))
    )
    metered = metered_openai.meter(client, live)
    completion = asyncio.run(metered.chat.completions.create(**gpt.REQUEST))
    assert completion.usage is not None
    assert stats(live, gpt.KEY) == (2, 1, gpt.billed(live))


def test_a_stream_dropped_unclosed_is_committed_with_what_it_reported(live: EnhancedModelRegistry) -> None:
    metered = metered_anthropic.meter(claude.client(), live)
    stream = metered.messages.create(**{**claude.REQUEST, "max_tokens": 60_000}, stream=True)
    for event in stream:
        if event.type == "content_block_delta":
            break
    # Dropped while the registry's locks are held, as a collection may happen anywhere: the finalizer must not
    # take them (it would deadlock); the commit happens once they are free.
    with busy(live):
        del stream, event
        gc.collect()
    deadline = time.monotonic() + 5
    while stats(live, claude.KEY)[0] == 0 and time.monotonic() < deadline:  # the settling thread's commit
        time.sleep(0.01)
    assert stats(live, claude.KEY)[2] == live.estimate_cost(
        claude.KEY, 4050, 1, cached_input_tokens=1000, cache_write_tokens=1000, cache_write_1h_tokens=2000
    )
    assert window_totals(live, claude.KEY)["tokens_per_minute"] == 4051


def test_an_unrecordable_usage_returns_the_response_and_logs(
    live: EnhancedModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    def flex(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=gpt.HEADERS, json={**gpt.COMPLETION, "service_tier": "flex"})

    metered = metered_openai.meter(openai_client(Provider([], flex)), live)
    with caplog.at_level(logging.ERROR, logger="noa_ai_provider.integrations"):
        completion = metered.chat.completions.create(**gpt.REQUEST)
    assert completion.service_tier == "flex"  # the paid answer reaches the caller
    assert "could not be recorded" in caplog.text
    assert "flex" in caplog.text
    # Not billed (its cost cannot be stated), but the windows keep what the provider processed.
    assert stats(live, gpt.KEY) == (0, 0, Decimal(0))
    assert window_totals(live, gpt.KEY) == {"requests_per_minute": 1, "tokens_per_minute": 1500}


def byte_level() -> Any:
    """A real tiktoken encoding (tiktoken's own BPE engine) with a small vocabulary, built here because the
    published ones are downloaded on first use: every byte is a token, and ``"he"`` and ``"llo"`` merge."""
    ranks = {bytes([i]): i for i in range(256)}
    ranks[b"he"] = 256
    ranks[b"ll"] = 257
    ranks[b"llo"] = 258
    return tiktoken.Encoding(name="test-bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})


def test_tokenizer_estimate_counts_tokens_and_message_framing(live: EnhancedModelRegistry) -> None:
    encoding = byte_level()
    assert encoding.encode_ordinary("hello") == [256, 258]
    estimate = tokenizer_estimate(encoding.encode_ordinary)
    request = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}
    # role texts: "user" 4 + "assistant" 9 bytes; "hello" 2 tokens, "hi" 2; 3 per message + 3 for the reply
    assert estimate(request) == 4 + 2 + 9 + 2 + 3 * 2 + 3
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert estimate({"messages": [{"role": "user", "content": [image]}]}) == 4 + 1_000 + 3 + 3
    assert tokenizer_estimate(encoding.encode_ordinary, per_message=0)({"input": "hello"}) == 2
    with pytest.raises(ValueError, match="per_message"):
        tokenizer_estimate(encoding.encode_ordinary, per_message=-1)

    seen: list[dict[str, Any]] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return gpt.answer(request)

    metered = metered_openai.meter(openai_client(Provider([], record)), live, estimate=estimate)
    with metered.chat.completions.create(
        model="gpt-4o", max_completion_tokens=10, messages=request["messages"], stream=True
    ) as stream:
        assert window_totals(live, gpt.KEY)["tokens_per_minute"] == 26 + 10  # what the tokenizer counted, reserved
        for _ in stream:
            pass
    assert seen
    assert seen[0]["messages"] == request["messages"]
    assert window_totals(live, gpt.KEY)["tokens_per_minute"] == 1500  # corrected to the usage reported
