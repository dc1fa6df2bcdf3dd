"""Write the saved registry that examples/cost-inspection.ipynb inspects: four models (OpenAI, Anthropic and a
local llama.cpp server) and two weeks of usage, with cache reads and writes and some failed requests.

    python examples/make_sample_registry.py [PATH]

PATH defaults to examples/data/model-registry.json (beside this script); an existing file there is replaced. The
output is the same on every run: the clock is a FakeClock starting on Monday 2025-06-02 00:00 UTC, and the traffic
comes from a seeded generator that only calls ``random()`` (the one method whose sequence Python keeps stable
across versions). The file is the one committed in examples/data/; tests/test_example_notebook.py checks that this
script still writes it.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import FakeClock

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "data" / "model-registry.json"
START = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
DAYS = 14
SEED = 15

# Prices per million tokens as the providers published them (mid-2025).
MODELS = [
    {
        "id": "gpt-4o",
        "name": "GPT-4o",
        "provider": "openai",
        "version": "2024.8.6",
        "contextWindow": 128000,
        "maxTokens": 16384,
        "capabilities": ["chat_completion", "function_calling", "json_mode", "vision", "streaming"],
        "cost": {"inputTokens": "2.5", "outputTokens": "10", "cachedInputTokens": "1.25", "per": 1000000},
        "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 30000},
        "metadata": {"tags": ["hosted", "flagship"]},
    },
    {
        "id": "gpt-4o-mini",
        "name": "GPT-4o mini",
        "provider": "openai",
        "version": "2024.7.18",
        "contextWindow": 128000,
        "maxTokens": 16384,
        "capabilities": ["chat_completion", "function_calling", "json_mode", "streaming"],
        "cost": {"inputTokens": "0.15", "outputTokens": "0.6", "cachedInputTokens": "0.075", "per": 1000000},
        "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 200000, "requestsPerDay": 10000},
        "metadata": {"tags": ["hosted", "cheap"]},
    },
    {
        "id": "claude-sonnet-4-5",
        "name": "Claude Sonnet 4.5",
        "provider": "claude",
        "version": "4.5.0",
        "contextWindow": 200000,
        "maxTokens": 64000,
        "capabilities": ["chat_completion", "function_calling", "vision", "streaming"],
        "cost": {
            "inputTokens": "3",
            "outputTokens": "15",
            "cachedInputTokens": "0.3",
            "cacheWriteTokens": "3.75",
            "cacheWrite1hTokens": "6",
            "per": 1000000,
        },
        "rateLimit": {
            "requestsPerMinute": 50,
            "inputTokensPerMinute": 30000,
            "outputTokensPerMinute": 8000,
            "countCacheReads": False,
        },
        "metadata": {"tags": ["hosted", "flagship"]},
    },
    {
        "id": "llama-3.1-8b-instruct",
        "name": "Llama 3.1 8B Instruct (local)",
        "provider": "llama.cpp",
        "version": "3.1.0",
        "contextWindow": 131072,
        "maxTokens": 4096,
        "capabilities": ["chat_completion", "text_generation", "streaming"],
        "cost": {"inputTokens": 0, "outputTokens": 0, "per": 1000000, "note": "Self-hosted, no API costs"},
        "metadata": {"tags": ["local"]},
    },
]

# Per model: requests on a weekday, on a weekend day, the input and output token ranges, and how often a request
# fails (the provider answered with an error; its tokens are still charged).
TRAFFIC = {
    "openai:gpt-4o": (18, 4, (1500, 9000), (150, 1200), 0.05),
    "openai:gpt-4o-mini": (60, 15, (400, 3000), (50, 600), 0.03),
    "claude:claude-sonnet-4-5": (12, 2, (4000, 20000), (300, 2500), 0.08),
    "llama.cpp:llama-3.1-8b-instruct": (40, 30, (200, 2500), (50, 800), 0.02),
}

PERFORMANCE = {
    "openai:gpt-4o": {"average_latency": 1850.0, "tokens_per_second": 92.0, "success_rate": 0.95},
    "openai:gpt-4o-mini": {"average_latency": 720.0, "tokens_per_second": 140.0, "success_rate": 0.97},
    "claude:claude-sonnet-4-5": {"average_latency": 2400.0, "tokens_per_second": 78.0, "success_rate": 0.92},
    "llama.cpp:llama-3.1-8b-instruct": {"average_latency": 410.0, "tokens_per_second": 55.0, "success_rate": 0.98},
}


def between(rng: random.Random, low: int, high: int) -> int:
    """An integer in [low, high] from ``rng.random()`` alone (stable across Python versions)."""
    return low + int(rng.random() * (high - low + 1))


def requests_of_day(rng: random.Random, day: int) -> list[tuple[float, str, dict[str, Any]]]:
    """The day's requests as (seconds after midnight, key, record_usage arguments), in time order."""
    weekend = day % 7 >= 5
    requests: list[tuple[float, str, dict[str, Any]]] = []
    for key, (weekday_count, weekend_count, (in_low, in_high), (out_low, out_high), failure_rate) in TRAFFIC.items():
        count = weekend_count if weekend else weekday_count
        count = between(rng, count * 3 // 4, count * 5 // 4)
        for index in range(count):
            at = 8 * 3600 + rng.random() * 10 * 3600  # office hours, 08:00 to 18:00 UTC
            input_tokens = between(rng, in_low, in_high)
            usage: dict[str, Any] = {
                "input_tokens": input_tokens,
                "output_tokens": between(rng, out_low, out_high),
                "success": rng.random() >= failure_rate,
            }
            if key.startswith("openai:") and input_tokens >= 1024 and rng.random() < 0.6:
                # OpenAI caches prompt prefixes in blocks of 128 tokens beyond the first 1024.
                usage["cached_input_tokens"] = 1024 + 128 * int(rng.random() * (input_tokens - 1024) / 128)
            elif key.startswith("claude:"):
                system_prompt = 3000  # a long system prompt, cached explicitly
                if index == 0:
                    usage["cache_write_1h_tokens"] = system_prompt  # the day's first request writes the 1-hour cache
                elif rng.random() < 0.1:
                    usage["cache_write_tokens"] = system_prompt  # a tool schema changed: a 5-minute cache write
                else:
                    usage["cached_input_tokens"] = system_prompt
            requests.append((at, key, usage))
    requests.sort(key=lambda request: request[0])
    return requests


def build(path: Path) -> Decimal:
    """Write the sample registry to ``path`` (replacing it) and return its total cost."""
    with tempfile.TemporaryDirectory() as folder:
        # Saved in a fresh folder: a save into an existing file would merge with it, and the save's lock file
        # (model-registry.json.lock) stays behind there, not beside the result.
        saved = Path(folder) / path.name
        total = _record(saved)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(saved, path)
    return total


def _record(path: Path) -> Decimal:
    rng = random.Random(SEED)
    clock = FakeClock(START.timestamp())
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock) as registry:
        registry.register_models(MODELS)
        for day in range(DAYS):
            midnight = START.timestamp() + day * 86400
            for at, key, usage in requests_of_day(rng, day):
                clock.advance_to(midnight + at)
                registry.record_usage(key, **usage)
        clock.advance_to(START.timestamp() + DAYS * 86400 - 60)  # 23:59 on the last day
        for key, metrics in PERFORMANCE.items():
            requests = registry.get_usage_stats(key)
            assert requests is not None
            registry.update_performance_metrics(key, total_inferences=requests.request_count, **metrics)
        registry.save()
        return registry.get_statistics().total_cost


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    total = build(path)
    print(f"wrote {path}: {len(MODELS)} models, {DAYS} days of usage, total cost ${total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
