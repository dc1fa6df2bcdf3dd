"""Many callers through ONE metered client (8 threads on a sync client, 50 asyncio tasks on an async one; OpenAI and
Anthropic) never overrun a model's rate limits or a budget.

The mock transport plays the provider: it logs each request's arrival on the registry's clock and the usage it
answers with (input near the registry's estimate, output up to the request's max tokens and never above it, so
never more than was reserved), and the checks read that log: no trailing 60 seconds ever held more requests or
tokens than the model's limits, counted as the registry counts them (committed input plus output, at the moment
the request was admitted).

Time is a ``FakeClock(auto_advance=True)``: when every waiter sleeps, the registry moves it to the next wake-up, so
minutes of rate-limited traffic run in well under a second of real time. The clock is kept still while any call has
been admitted but has not reached the provider (:class:`ProviderClock`): a provider without network latency. A jump
in between would move that request's arrival past its admission, which no client-side limiter can prevent (the
guarantee is about admissions), and the log would no longer show what the registry admitted. That is exact when
a caller's admission and its leaving the wait queue are one step, as on the memory store and in threads on Redis.
Not for asyncio callers on Redis: ``acquire_async`` takes its capacity in a round trip while still counted among the
waiters, and the auto-advancing clock can jump meanwhile (the reservation then returns stamped a window before the
clock), so that combination is checked for budgets only.

:func:`test_the_same_traffic_without_a_meter_overruns` runs the same traffic through the bare clients: there the
provider's log shows the limits and the budget overrun, so the checks are not vacuous.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from noa_ai_provider import BudgetExceededError, EnhancedModelRegistry
from noa_ai_provider.integrations import anthropic as metered_anthropic
from noa_ai_provider.integrations import openai as metered_openai
from noa_ai_provider.testing import EventRecorder, FakeClock, waiting, window_totals

from ..conftest import STORES, fresh, store_id
from . import test_anthropic_meter as claude
from . import test_openai_meter as gpt

START = 1_700_000_000.0
MINUTE = 60.0
M = Decimal(1_000_000)

THREADS, CALLS_PER_THREAD = 8, 15
TASKS, CALLS_PER_TASK = 50, 4
REAL_TIMEOUT = 60.0  # real seconds for a whole run; a run takes well under one

# Small limits, so that the callers spend most of the run queued. Anthropic's input and output are limited apart.
GPT: dict[str, Any] = {**gpt.GPT4O, "rateLimit": {"requestsPerMinute": 20, "tokensPerMinute": 4_000}}
SONNET: dict[str, Any] = {
    **claude.SONNET,
    "rateLimit": {"requestsPerMinute": 15, "inputTokensPerMinute": 3_000, "outputTokensPerMinute": 1_500},
}
PRICES = {"openai": (Decimal("2.5"), Decimal(10)), "anthropic": (Decimal(3), Decimal(15))}  # input, output per 1M
KEYS = {"openai": gpt.KEY, "anthropic": claude.KEY}

# What a logged request counts for each limit, by the name window_totals gives the limit.
COUNTS: dict[str, Callable[[Served], int]] = {
    "requests_per_minute": lambda s: 1,
    "tokens_per_minute": lambda s: s.input_tokens + s.output_tokens,
    "input_tokens_per_minute": lambda s: s.input_tokens,
    "output_tokens_per_minute": lambda s: s.output_tokens,
}
CONFIGURED = {
    "openai": {"requests_per_minute": 20, "tokens_per_minute": 4_000},
    "anthropic": {"requests_per_minute": 15, "input_tokens_per_minute": 3_000, "output_tokens_per_minute": 1_500},
}

BUDGET = Decimal("0.05")  # a fraction of what the traffic below costs: 0.11 to 0.36 USD

SIZES = (20, 60, 200, 800, 2_400)  # characters of a request's user message
CAPS = (16, 32, 64, 160, 400)  # its max tokens


@dataclass(frozen=True)
class Shape:
    sdk: str  # "openai" or "anthropic"
    callers: str  # "threads" (on a sync client) or "tasks" (on an async client)

    @property
    def calls(self) -> int:
        return THREADS * CALLS_PER_THREAD if self.callers == "threads" else TASKS * CALLS_PER_TASK


SHAPES = [Shape(sdk, callers) for sdk in ("openai", "anthropic") for callers in ("threads", "tasks")]


def shape_id(shape: Shape) -> str:
    return f"{shape.sdk}-{shape.callers}"


# --------------------------------------------------------------------------- the provider


@dataclass(frozen=True)
class Served:
    """A request as the provider saw it: when it arrived and the usage it was answered with."""

    at: float
    input_tokens: int
    output_tokens: int
    cost: Decimal


@dataclass
class Provider:
    """The provider's side of the wire, shared by every caller: answers each request with a usage of its own
    choosing and logs it (:class:`Served`). It also counts the calls in transit, for :class:`ProviderClock`: the
    callers say when a call starts (:meth:`start`) and when one ended without being sent (:meth:`unsent`)."""

    sdk: str
    clock: FakeClock
    seed: int
    log: list[Served] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: int = 0
    arrived: int = 0
    not_sent: int = 0
    registry: EnhancedModelRegistry | None = None  # whose waiters are not in transit
    key: str = ""  # the model's key in that registry
    budget_seen: list[tuple[Decimal, Decimal]] = field(default_factory=list)  # (spent, reserved) at each arrival
    watch_budget: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def start(self) -> None:
        with self.lock:
            self.started += 1

    def unsent(self) -> None:
        with self.lock:
            self.not_sent += 1

    def may_jump(self, queued: int) -> bool:
        """(Under ``lock``.) Whether every call started is answered, given up, or one of the ``queued`` waiters."""
        return self.started - self.arrived - self.not_sent <= queued

    def serve(self, estimate: int, cap: int, *, exact_input: bool = False) -> Served:
        """Log an arrival and choose its usage: input within 3 tokens of ``estimate`` (never above it for
        Anthropic, whose input is limited apart), output up to ``cap`` less what the input went over, so the
        total never passes the reservation; ``exact_input`` (a stream that reports no usage, which the registry
        commits at its estimate and one token per chunk of content): the estimate and a few tokens."""
        with self.lock:
            self.arrived += 1
            at = self.clock()
            if exact_input:
                inp, out = estimate, self.rng.randint(1, min(6, cap))
            else:
                over = self.rng.randint(-3, 3 if self.sdk == "openai" else 0)
                inp = max(estimate + over, 1)
                room = cap - max(over, 0)
                out = room if self.rng.random() < 0.25 else self.rng.randint(1, room)
            price_in, price_out = PRICES[self.sdk]
            served = Served(at, inp, out, (inp * price_in + out * price_out) / M)
            self.log.append(served)
        if self.watch_budget and self.registry is not None:
            (status,) = self.registry.get_budget_status()
            with self.lock:
                self.budget_seen.append((status.spent, status.reserved))
        return served


class ProviderClock(FakeClock):
    """An auto-advancing FakeClock that does not jump while a call is in transit (admitted, not yet arrived)."""

    def __init__(self) -> None:
        super().__init__(START, auto_advance=True)
        self.provider: Provider | None = None

    def advance_to(self, when: float) -> None:
        provider = self.provider
        if provider is None or provider.registry is None:
            super().advance_to(when)
            return
        # Called by the registry's wait queue with its lock held: the waiters counted here cannot change meanwhile.
        queued = waiting(provider.registry).get(provider.key, 0)
        with provider.lock:  # and no call starts or arrives while the clock moves
            if provider.may_jump(queued):
                super().advance_to(when)
        # else: the waiters are woken, sleep again, and the next jump is asked for once the call has arrived


def openai_answer(provider: Provider, request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    stream = bool(body.get("stream"))
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    served = provider.serve(metered_openai.estimate_input_tokens(body), cap, exact_input=stream and not with_usage)
    usage = {
        "prompt_tokens": served.input_tokens,
        "completion_tokens": served.output_tokens,
        "total_tokens": served.input_tokens + served.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    headers = {"x-request-id": f"req_{len(provider.log)}"}  # no rate-limit headers: the registry's own windows
    if not stream:
        return httpx2.Response(200, headers=headers, json={**gpt.COMPLETION, "usage": usage})
    pieces = 3 if with_usage else served.output_tokens  # without usage, the registry counts the content chunks
    chunks = [
        gpt.chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
        *[gpt.chunk([{"index": 0, "delta": {"content": "tok"}, "finish_reason": None}]) for _ in range(pieces)],
        gpt.chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    ]
    if with_usage:
        chunks.append(gpt.chunk([], usage))
    return httpx2.Response(200, headers={**headers, "content-type": "text/event-stream"}, content=gpt.sse(chunks))


def anthropic_answer(provider: Provider, request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    served = provider.serve(metered_anthropic.estimate_input_tokens(body), body["max_tokens"])
    usage = {
        "input_tokens": served.input_tokens,
        "output_tokens": served.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "service_tier": "standard",
    }
    headers = {"request-id": f"req_{len(provider.log)}"}
    if not body.get("stream"):
        return httpx2.Response(200, headers=headers, json={**claude.MESSAGE, "usage": usage})
    message = {**claude.MESSAGE, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": served.output_tokens},
        },
        {"type": "message_stop"},
    ]
    return httpx2.Response(200, headers={**headers, "content-type": "text/event-stream"}, content=claude.sse(events))


def bare_client(shape: Shape, provider: Provider) -> Any:
    """The SDK's client over a mock transport answering as ``provider`` (max_retries=0: no retry sleeps)."""
    answer = openai_answer if shape.sdk == "openai" else anthropic_answer

    def handler(request: httpx2.Request) -> httpx2.Response:
        return answer(provider, request)

    transport = httpx2.MockTransport(handler)
    if shape.callers == "threads":
        http: Any = httpx2.Client(transport=transport)
        kind: Any = openai.OpenAI if shape.sdk == "openai" else anthropic.Anthropic
    else:
        http = httpx2.AsyncClient(transport=transport)
        kind = openai.AsyncOpenAI if shape.sdk == "openai" else anthropic.AsyncAnthropic
    return kind(api_key="test-key", http_client=http, max_retries=0)


# --------------------------------------------------------------------------- the callers


def text(rng: random.Random) -> str:
    return ("lorem ipsum dolor sit amet " * 100)[: rng.choice(SIZES)]


def request(sdk: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A call: its kind and keyword arguments, with varied message sizes and max tokens."""
    cap = rng.choice(CAPS)
    if sdk == "openai":
        kind = rng.choice(("plain", "usage", "no-usage"))
        cap_name = "max_tokens" if rng.random() < 0.2 else "max_completion_tokens"
        messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text(rng)}]
        return kind, {"model": "gpt-4o", cap_name: cap, "messages": messages}
    kind = rng.choice(("plain", "stream", "helper"))
    messages = [{"role": "user", "content": text(rng)}]
    return kind, {"model": "claude-sonnet-4-5", "max_tokens": cap, "system": "You are terse.", "messages": messages}


def call(sdk: str, client: Any, kind: str, kwargs: dict[str, Any]) -> None:
    if sdk == "openai":
        completions = client.chat.completions
        if kind == "plain":
            assert completions.create(**kwargs).usage is not None
        elif kind == "usage":
            with completions.create(**kwargs, stream=True, stream_options={"include_usage": True}) as stream:
                assert list(stream)[-1].usage is not None
        else:  # no usage reported; read to the end without a with block
            assert [c for c in completions.create(**kwargs, stream=True) if c.choices and c.choices[0].delta.content]
    elif kind == "plain":
        assert client.messages.create(**kwargs).usage.output_tokens >= 1
    elif kind == "stream":
        with client.messages.create(**kwargs, stream=True) as stream:
            assert [event.type for event in stream][-1] == "message_stop"
    else:
        with client.messages.stream(**kwargs) as stream:
            assert "".join(stream.text_stream) == "Hello!"
            assert stream.get_final_message().usage.output_tokens >= 1


async def call_async(sdk: str, client: Any, kind: str, kwargs: dict[str, Any]) -> None:
    if sdk == "openai":
        completions = client.chat.completions
        if kind == "plain":
            assert (await completions.create(**kwargs)).usage is not None
        elif kind == "usage":
            stream = await completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
            async with stream:
                assert [c async for c in stream][-1].usage is not None
        else:
            stream = await completions.create(**kwargs, stream=True)
            assert [c async for c in stream if c.choices and c.choices[0].delta.content]
    elif kind == "plain":
        assert (await client.messages.create(**kwargs)).usage.output_tokens >= 1
    elif kind == "stream":
        async with await client.messages.create(**kwargs, stream=True) as stream:
            assert [event.type async for event in stream][-1] == "message_stop"
    else:
        async with client.messages.stream(**kwargs) as stream:
            assert "".join([piece async for piece in stream.text_stream]) == "Hello!"
            assert (await stream.get_final_message()).usage.output_tokens >= 1


@dataclass
class Outcome:
    done: int = 0  # calls that returned
    refused: list[BudgetExceededError] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run(shape: Shape, registry: EnhancedModelRegistry | None, provider: Provider, seed: int) -> Outcome:
    """The shape's callers, each making its calls through ONE client: metered by ``registry`` (waiting for
    capacity), or the bare client when ``registry`` is None. Budget refusals are counted, not raised."""
    outcome = Outcome()

    def settle(error: BaseException | None) -> None:
        with outcome.lock:
            if error is None:
                outcome.done += 1
            elif isinstance(error, BudgetExceededError):
                outcome.refused.append(error)
            else:
                outcome.errors.append(error)
        if error is not None:
            provider.unsent()  # a budget refusal sends nothing (and any other error fails the test anyway)

    if shape.callers == "threads":
        inner = bare_client(shape, provider)
        client = inner if registry is None else wrap(shape.sdk, inner, registry)
        barrier = threading.Barrier(THREADS)

        def worker(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            barrier.wait(REAL_TIMEOUT)
            for _ in range(CALLS_PER_THREAD):
                kind, kwargs = request(shape.sdk, rng)
                provider.start()
                try:
                    call(shape.sdk, client, kind, kwargs)
                except BaseException as error:
                    settle(error)
                    if not isinstance(error, BudgetExceededError):
                        return
                else:
                    settle(None)

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(REAL_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a caller is stuck"
        inner.close()
    else:

        async def task(client: Any, number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            for _ in range(CALLS_PER_TASK):
                kind, kwargs = request(shape.sdk, rng)
                provider.start()
                try:
                    await call_async(shape.sdk, client, kind, kwargs)
                except Exception as error:
                    settle(error)
                    if not isinstance(error, BudgetExceededError):
                        return
                else:
                    settle(None)

        async def main() -> None:
            async with bare_client(shape, provider) as inner:
                client = inner if registry is None else wrap(shape.sdk, inner, registry)
                async with asyncio.timeout(REAL_TIMEOUT):
                    await asyncio.gather(*(task(client, n) for n in range(TASKS)))

        asyncio.run(main())
    if outcome.errors:
        raise outcome.errors[0]
    return outcome


def wrap(sdk: str, client: Any, registry: EnhancedModelRegistry) -> Any:
    module: Any = metered_openai if sdk == "openai" else metered_anthropic
    return module.meter(client, registry, wait=True)


# --------------------------------------------------------------------------- the checks


def busiest(log: list[Served], count: Callable[[Served], int]) -> int:
    """The most that any trailing 60 seconds of ``log`` counts (a window ending at an arrival: where it peaks)."""
    return max((sum(count(s) for s in log if end.at - MINUTE < s.at <= end.at) for end in log), default=0)


def trailing(log: list[Served], now: float, count: Callable[[Served], int]) -> int:
    return sum(count(s) for s in log if now - MINUTE < s.at <= now)


def make(tmp_path: Path, clock: FakeClock, store: str, model: dict[str, Any]) -> EnhancedModelRegistry:
    registry = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, clock=clock, backend=store)
    registry.register_model(model)
    return registry


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every 50 µs (default 5 ms), so that the callers interleave inside the meter and the SDK."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


RATE_LIMITED = [
    pytest.param(url, shape, id=f"{store_id(url)}-{shape_id(shape)}")
    for url in STORES
    for shape in SHAPES
    if not (url.startswith("redis") and shape.callers == "tasks")  # see the module's docstring
]


@pytest.mark.parametrize(("url", "shape"), RATE_LIMITED)
def test_concurrent_callers_never_overrun_a_rate_limit(url: str, shape: Shape, tmp_path: Path) -> None:
    clock = ProviderClock()
    provider = Provider(shape.sdk, clock, seed=7)
    clock.provider = provider
    key = KEYS[shape.sdk]
    with make(tmp_path, clock, fresh(url), GPT if shape.sdk == "openai" else SONNET) as registry:
        provider.registry, provider.key = registry, registry.resolve_key(key)
        events = EventRecorder().attach(registry)
        outcome = run(shape, registry, provider, seed=11)

        log = provider.log
        assert outcome.done == len(log) == shape.calls  # every call went through, each sent once
        limits = CONFIGURED[shape.sdk]
        for name, limit in limits.items():
            assert busiest(log, COUNTS[name]) <= limit, f"{name} overrun"
        # And the checks are sharp: callers waited, each limit was approached (in most runs a window holds the
        # request limit exactly and 90% of each token limit; interleavings vary, hence the margin), over many
        # minutes of the registry's clock. So the meter does not hold callers back far more than it must.
        assert events.of("rate-limited")
        for name, limit in limits.items():
            assert busiest(log, COUNTS[name]) >= 0.6 * limit, f"{name} never approached"
        assert clock() - START >= (shape.calls / limits["requests_per_minute"] - 1) * MINUTE

        # The registry billed exactly what the provider answered with, at the hand-computed prices.
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (len(log), len(log), 0)
        assert stats.total_input_tokens == sum(s.input_tokens for s in log)
        assert stats.total_output_tokens == sum(s.output_tokens for s in log)
        assert stats.total_cost == sum((s.cost for s in log), Decimal(0))

        # Nothing is left open or queued: each window holds what the provider's log says, not a reservation more.
        assert waiting(registry) == {}
        now = clock()
        expected = {name: trailing(log, now, COUNTS[name]) for name in CONFIGURED[shape.sdk]}
        assert window_totals(registry, key) == expected
        assert expected["requests_per_minute"] > 0


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_racing_callers_never_overspend_a_budget(shape: Shape, tmp_path: Path, store: str) -> None:
    clock = FakeClock(START)  # no rate limits: nobody waits and the clock stands still
    provider = Provider(shape.sdk, clock, seed=5, watch_budget=True)
    model = {**(GPT if shape.sdk == "openai" else SONNET), "rateLimit": None}
    key = KEYS[shape.sdk]
    with make(tmp_path, clock, store, model) as registry:
        provider.registry, provider.key = registry, registry.resolve_key(key)
        registry.set_budget(BUDGET, period="total")
        events = EventRecorder().attach(registry)
        outcome = run(shape, registry, provider, seed=11)

        log = provider.log
        # Only part of the calls fit; the refused ones were never sent (the provider saw exactly the others).
        assert outcome.refused
        assert outcome.done == len(log) > 0
        assert outcome.done + len(outcome.refused) == shape.calls
        # The spend never passed the budget, even counting what was reserved at each arrival.
        (status,) = registry.get_budget_status()
        spent = sum((s.cost for s in log), Decimal(0))  # hand-computed from the per-1M prices
        assert status.spent == spent <= BUDGET
        assert spent >= Decimal("0.8") * BUDGET  # and it was nearly used up: refusals came only near the end
        assert status.reserved == 0  # no reservation left open
        assert all(seen + reserved <= BUDGET for seen, reserved in provider.budget_seen)
        assert len(provider.budget_seen) == len(log)
        assert events.of("budget-exceeded") == []
        for refusal in outcome.refused:
            assert refusal.limit == BUDGET
            assert refusal.spent + refusal.reserved + refusal.needed > BUDGET  # type: ignore[operator]
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert stats.total_cost == spent
        assert (stats.request_count, stats.failed_requests) == (len(log), 0)
        assert stats.total_input_tokens == sum(s.input_tokens for s in log)
        assert stats.total_output_tokens == sum(s.output_tokens for s in log)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_the_same_traffic_without_a_meter_overruns(shape: Shape) -> None:
    """The control: the traffic of the tests above through the bare client overruns every limit and the budget,
    as the provider's log shows (nothing waits, so the clock never moves)."""
    clock = ProviderClock()
    provider = Provider(shape.sdk, clock, seed=7)
    clock.provider = provider
    outcome = run(shape, None, provider, seed=11)
    log = provider.log
    assert outcome.done == len(log) == shape.calls
    for name, limit in CONFIGURED[shape.sdk].items():
        assert busiest(log, COUNTS[name]) > limit, f"{name} not overrun"
    assert sum((s.cost for s in log), Decimal(0)) > BUDGET
