"""The seed's "Rate Limit Protection", with the guarantees the seed's check-then-record lacked.

``acquire`` checks every rate limit and every budget and reserves the request in one step (concurrent callers
cannot pass together); the reservation is committed with the usage the provider reported, or given back and
counted as a failed $0 request when the call raises. The provider is a stub and the clock a ``FakeClock``, so the
script runs offline, instantly and always prints the same thing: ``python examples/rate_limit_protection.py``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from noa_ai_provider import BudgetExceededError, EnhancedModelRegistry, RateLimitExceeded
from noa_ai_provider.testing import FakeClock

MODEL = {
    "id": "gpt-4",
    "name": "GPT-4",
    "provider": "openai",
    "version": "1.0.0",
    "contextWindow": 8192,
    "maxTokens": 4096,
    "capabilities": ["chat_completion"],
    "cost": {"inputTokens": "0.01", "outputTokens": "0.03", "currency": "USD", "per": 1000},
    "rateLimit": {"requestsPerMinute": 3, "tokensPerMinute": 40000},
}


@dataclass
class Response:
    output_tokens: int
    text: str


failures: list[Exception] = []


def make_api_request(key: str, input_tokens: int) -> Response:
    """The provider: answers 400 output tokens, or raises the next scripted failure."""
    if failures:
        raise failures.pop()
    return Response(output_tokens=400, text="ok")


def make_safe_request(registry: EnhancedModelRegistry, key: str, input_tokens: int, max_output: int) -> Response:
    # Limits and budgets are checked and reserved together: RateLimitExceeded or BudgetExceededError, nothing sent.
    with registry.acquire(key, input_tokens, max_output) as reservation:
        response = make_api_request(key, input_tokens)  # an exception here gives the reservation back
        reservation.commit(response.output_tokens)  # billed exactly, windows corrected to the real usage
        return response


def attempt(registry: EnhancedModelRegistry, key: str, input_tokens: int, max_output: int) -> None:
    try:
        response = make_safe_request(registry, key, input_tokens, max_output)
    except RateLimitExceeded as exc:
        print(f"refused: {exc.limit}, retry in {exc.retry_after:.0f}s")
    except BudgetExceededError as exc:
        print(f"refused: {exc}")
    except ConnectionError as exc:
        print(f"failed: {exc}")
    else:
        print(f"ok: {response.output_tokens} tokens out")


def main() -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        registry = EnhancedModelRegistry(persistence_path=Path(tmp) / "registry.json", auto_save=False, clock=clock)
        with registry:
            key = registry.register_model(MODEL)
            registry.set_budget(Decimal("0.10"), period="day")

            attempt(registry, key, 1000, 500)  # (1000 x 0.01 + 400 x 0.03) / 1000 = $0.022 committed
            failures.append(ConnectionError("upstream timeout"))
            attempt(registry, key, 1000, 500)  # raised inside: given back, counted as a failed request at $0
            attempt(registry, key, 1000, 500)  # the second request the window holds
            attempt(registry, key, 1000, 500)  # the third
            attempt(registry, key, 1000, 500)  # a fourth within the minute: refused before anything is sent
            clock.advance(60)
            attempt(registry, key, 1000, 500)  # a minute later the window has moved on: $0.088 spent today
            attempt(registry, key, 3000, 1000)  # worst case $0.06 on top of $0.088: over the $0.10 day budget

            stats = registry.get_usage_stats(key)
            assert stats is not None
            print(f"{stats.request_count} requests ({stats.failed_requests} failed), ${stats.total_cost} spent")


if __name__ == "__main__":
    main()
