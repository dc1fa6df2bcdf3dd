"""Model definitions in the seed's camelCase, shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

GPT4: dict[str, Any] = {
    "id": "gpt-4-turbo-preview",
    "name": "GPT-4 Turbo",
    "provider": "openai",
    "version": "1.0.0",
    "contextWindow": 128000,
    "maxTokens": 4096,
    "capabilities": ["chat_completion", "function_calling", "json_mode"],
    "cost": {"inputTokens": 0.01, "outputTokens": 0.03, "currency": "USD", "per": 1000},
    "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 150000, "requestsPerDay": 10000},
    "metadata": {"tags": ["recommended", "production"]},
}

OPUS: dict[str, Any] = {
    "id": "claude-3-opus-20240229",
    "name": "Claude 3 Opus",
    "provider": "claude",
    "version": "3.0.0",
    "contextWindow": 200000,
    "maxTokens": 4096,
    "capabilities": ["chat_completion", "vision", "function_calling"],
    "cost": {"inputTokens": 0.015, "outputTokens": 0.075, "currency": "USD", "per": 1000},
    "rateLimit": {"requestsPerMinute": 50, "tokensPerMinute": 40000, "requestsPerDay": 1000},
    "metadata": {"tags": ["flagship", "high-performance"]},
}

LLAMA: dict[str, Any] = {
    "id": "llama-3.1-8b-instruct",
    "name": "Llama 3.1 8B Instruct",
    "provider": "llama.cpp",
    "version": "3.1.0",
    "contextWindow": 128000,
    "maxTokens": 4096,
    "capabilities": ["chat_completion", "text_generation"],
    "cost": {"inputTokens": 0, "outputTokens": 0, "currency": "USD", "per": 1000, "note": "Self-hosted"},
    "rateLimit": {"requestsPerMinute": 1000, "tokensPerMinute": 100000},
    "metadata": {"tags": ["self-hosted", "open-source", "local"]},
}


def model(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` (default GPT4) with top-level ``changes``."""
    out = copy.deepcopy(base if base is not None else GPT4)
    out.update(changes)
    return out


def limited(rate_limit: dict[str, int] | None, provider: str = "openai") -> dict[str, Any]:
    """A model ``limited`` of ``provider`` at 0.01 / 0.03 per 1000 tokens, with ``rate_limit`` unless None."""
    out: dict[str, Any] = {
        "id": "limited",
        "name": "Limited",
        "provider": provider,
        "version": "1.0.0",
        "cost": {"inputTokens": "0.01", "outputTokens": "0.03", "per": 1000},
    }
    if rate_limit is not None:
        out["rateLimit"] = rate_limit
    return out


HELD: list[Any] = []
"""Reservations a test keeps open on purpose (to fill a window); conftest cancels them after each test."""


def hold(reservation: Any) -> Any:
    """Keep ``reservation`` open until the test ends: one that is garbage-collected while open is released."""
    HELD.append(reservation)
    return reservation
