"""The catalogue shipped in ``config/models-config.json``: it loads, keeps the seed's examples, and its prices are
the published ones (spot checks, written here by hand from the providers' pricing pages)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, ModelCapability, ModelStatus, ProviderType

CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "models-config.json"
SEED_KEYS = (
    "openai:gpt-4-turbo-preview",
    "claude:claude-3-opus-20240229",
    "llama.cpp:llama-3.1-8b-instruct",
    "llama.cpp:my-custom-model",
)
PER_MILLION = 1_000_000


@pytest.fixture(scope="module")
def raw_models() -> list[dict[str, Any]]:
    data = json.loads(CONFIG_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert isinstance(data["models"], list)
    return data["models"]


@pytest.fixture
def registry(tmp_path: Path) -> EnhancedModelRegistry:
    reg = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)
    reg.load_from_config(CONFIG_PATH)
    return reg


def test_loads_every_model(tmp_path: Path, raw_models: list[dict[str, Any]]) -> None:
    reg = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)
    assert reg.load_from_config(CONFIG_PATH) == len(raw_models)
    assert len(reg.list_models()) == len(raw_models)
    assert not (tmp_path / "r.json").exists()


def test_keys_are_unique(raw_models: list[dict[str, Any]]) -> None:
    keys = Counter(f"{m['provider']}:{m['id']}" for m in raw_models)
    assert [k for k, n in keys.items() if n > 1] == []


# Every attribute checked, per seed model: a dotted path into the entry (``metadata.<key>`` is an item of
# ``metadata``), and its expected value (``None``: checked with ``is None``).
SEED_MODELS = [
    pytest.param(
        "openai:gpt-4-turbo-preview",
        {
            "name": "GPT-4 Turbo",
            "provider": ProviderType.OPENAI,
            "version": "1.0.0",
            "context_window": 128000,
            "max_tokens": 4096,
            "capabilities": [
                ModelCapability.CHAT_COMPLETION,
                ModelCapability.FUNCTION_CALLING,
                ModelCapability.JSON_MODE,
            ],
            "cost.input_tokens": Decimal("0.01"),
            "cost.output_tokens": Decimal("0.03"),
            "cost.currency": "USD",
            "cost.per": 1000,
            "cost.note": None,
            "rate_limit.requests_per_minute": 500,
            "rate_limit.tokens_per_minute": 150000,
            "rate_limit.requests_per_day": 10000,
            "metadata.tags": ["recommended", "production"],
            "metadata.apiEndpoint": "https://api.openai.com/v1/chat/completions",
        },
        id="gpt-4-turbo-preview",
    ),
    pytest.param(
        "claude:claude-3-opus-20240229",
        {
            "name": "Claude 3 Opus",
            "provider": ProviderType.CLAUDE,
            "version": "3.0.0",
            "context_window": 200000,
            "max_tokens": 4096,
            "capabilities": [
                ModelCapability.CHAT_COMPLETION,
                ModelCapability.VISION,
                ModelCapability.FUNCTION_CALLING,
            ],
            "cost.input_tokens": Decimal("0.015"),
            "cost.output_tokens": Decimal("0.075"),
            "cost.currency": "USD",
            "cost.per": 1000,
            "rate_limit.requests_per_minute": 50,
            "rate_limit.tokens_per_minute": 40000,
            "rate_limit.requests_per_day": 1000,
            "metadata.tags": ["flagship", "high-performance"],
            "metadata.apiEndpoint": "https://api.anthropic.com/v1/messages",
        },
        id="claude-3-opus",
    ),
    pytest.param(
        "llama.cpp:llama-3.1-8b-instruct",
        {
            "name": "Llama 3.1 8B Instruct",
            "provider": ProviderType.LLAMA_CPP,
            "version": "3.1.0",
            "context_window": 128000,
            "max_tokens": 4096,
            "capabilities": [ModelCapability.CHAT_COMPLETION, ModelCapability.TEXT_GENERATION],
            "cost.input_tokens": Decimal(0),
            "cost.output_tokens": Decimal(0),
            "cost.currency": "USD",
            "cost.per": 1000,
            "cost.note": "Self-hosted, no API costs",
            "rate_limit.requests_per_minute": 1000,
            "rate_limit.tokens_per_minute": 100000,
            "rate_limit.requests_per_day": None,
            "rate_limit.note": "Limited by hardware capabilities",
            "metadata.tags": ["self-hosted", "open-source", "local"],
            "metadata.modelFile": "llama-3.1-8b-instruct-q5_k_m.gguf",
            "metadata.quantization": "Q5_K_M",
            "metadata.fileSize": "5.73GB",
            "metadata.requiredRAM": "8GB",
            "metadata.apiEndpoint": "http://localhost:8080/v1/chat/completions",
        },
        id="llama-3.1-8b",
    ),
    pytest.param(
        "llama.cpp:my-custom-model",
        {
            "name": "My Custom Model",
            "provider": ProviderType.LLAMA_CPP,
            "version": "1.0.0",
            "context_window": 8192,
            "max_tokens": 2048,
            "capabilities": [ModelCapability.CHAT_COMPLETION],
            "cost.input_tokens": Decimal(0),
            "cost.output_tokens": Decimal(0),
            "cost.per": 1000,
            "rate_limit.requests_per_minute": 500,
            "rate_limit.tokens_per_minute": 50000,
            "rate_limit.requests_per_day": None,
            "metadata.tags": ["custom"],
            "metadata.modelFile": "/path/to/my-model.gguf",
            "metadata.apiEndpoint": "http://localhost:8080/v1/chat/completions",
        },
        id="custom-model",
    ),
]


@pytest.mark.parametrize(("key", "expected"), SEED_MODELS)
def test_seed_model(registry: EnhancedModelRegistry, key: str, expected: dict[str, Any]) -> None:
    e = registry.get_model(key)
    assert e is not None
    assert e.rate_limit is not None
    for path, want in expected.items():
        value: Any = e
        for part in path.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        if want is None:
            assert value is None, path
        else:
            assert value == want, path


def test_every_model_names_its_price_source_and_date(registry: EnhancedModelRegistry) -> None:
    for e in registry.list_models():
        source = e.metadata.get("source")
        assert isinstance(source, str), e.key
        assert source.strip(), e.key
        price_date = e.metadata.get("priceDate")
        assert isinstance(price_date, str), e.key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price_date), e.key
        assert date.fromisoformat(price_date) >= date(2024, 1, 1), e.key
        tags = e.metadata.get("tags")
        assert isinstance(tags, list), e.key
        assert tags, e.key


def test_prices_are_exact_decimals(registry: EnhancedModelRegistry) -> None:
    """No float artefacts (0.15 must be 0.15, not 0.1499999...), and new entries are quoted per 1M tokens."""
    for e in registry.list_models():
        for price in (e.cost.input_tokens, e.cost.output_tokens):
            assert price >= 0, e.key
            assert price == price.quantize(Decimal("0.000001")), (e.key, price)
        assert e.cost.currency == "USD", e.key
        if e.key not in SEED_KEYS:
            assert e.cost.per == PER_MILLION, e.key


def test_enough_models_per_provider(registry: EnhancedModelRegistry) -> None:
    assert len(registry.get_models_by_provider(ProviderType.OPENAI)) >= 10
    assert len(registry.get_models_by_provider(ProviderType.CLAUDE)) >= 4
    assert len(registry.get_models_by_provider(ProviderType.LLAMA_CPP)) >= 5


def test_self_hosted_models_are_free_and_local(registry: EnhancedModelRegistry) -> None:
    local = registry.get_models_by_provider(ProviderType.LLAMA_CPP)
    for e in local:
        assert e.cost.input_tokens == 0, e.key
        assert e.cost.output_tokens == 0, e.key
        assert e.metadata["apiEndpoint"] == "http://localhost:8080/v1/chat/completions", e.key
        assert "modelFile" in e.metadata, e.key
        assert registry.estimate_cost(e.key, 1_000_000, 1_000_000) == 0
    for e in local:
        if e.key not in SEED_KEYS:
            assert e.metadata["modelFile"].endswith(".gguf"), e.key
            for field in ("quantization", "fileSize", "requiredRAM"):
                assert e.metadata[field], (e.key, field)


def test_api_models_carry_tier_1_rate_limits(registry: EnhancedModelRegistry) -> None:
    for provider in (ProviderType.OPENAI, ProviderType.CLAUDE):
        for e in registry.get_models_by_provider(provider):
            if e.key in SEED_KEYS:
                continue
            assert e.rate_limit is not None, e.key
            assert e.rate_limit.requests_per_minute, e.key
            assert e.rate_limit.tokens_per_minute, e.key
            assert e.rate_limit.note is not None, e.key
            assert "Tier 1" in e.rate_limit.note, e.key


@pytest.mark.parametrize(
    ("key", "input_per_1m", "output_per_1m"),
    [
        ("openai:gpt-4o", "2.5", "10"),
        ("openai:gpt-4o-mini", "0.15", "0.6"),
        ("openai:gpt-4.1", "2", "8"),
        ("openai:gpt-4.1-mini", "0.4", "1.6"),
        ("openai:o3", "2", "8"),
        ("openai:gpt-5", "1.25", "10"),
        ("openai:gpt-5-mini", "0.25", "2"),
        ("openai:gpt-5-nano", "0.05", "0.4"),
        ("openai:text-embedding-3-small", "0.02", "0"),
        ("claude:claude-opus-4-5", "5", "25"),
        ("claude:claude-sonnet-4-5", "3", "15"),
        ("claude:claude-haiku-4-5", "1", "5"),
        ("claude:claude-opus-4-1", "15", "75"),
        # the seed's per-1K prices give the same published per-1M prices
        ("openai:gpt-4-turbo-preview", "10", "30"),
        ("claude:claude-3-opus-20240229", "15", "75"),
    ],
)
def test_published_prices(registry: EnhancedModelRegistry, key: str, input_per_1m: str, output_per_1m: str) -> None:
    assert registry.estimate_cost(key, 1_000_000, 0) == Decimal(input_per_1m)
    assert registry.estimate_cost(key, 0, 1_000_000) == Decimal(output_per_1m)


def test_estimate_for_a_typical_request(registry: EnhancedModelRegistry) -> None:
    # 1,234 input + 567 output tokens on gpt-4o: (1234 * 2.5 + 567 * 10) / 1e6 = 0.008755
    assert registry.estimate_cost("openai:gpt-4o", 1234, 567) == Decimal("0.008755")


@pytest.mark.parametrize(
    ("key", "context_window", "max_tokens"),
    [
        ("openai:gpt-4o", 128000, 16384),
        ("openai:gpt-4.1", 1047576, 32768),
        ("openai:o3", 200000, 100000),
        ("openai:gpt-5", 400000, 128000),
        ("claude:claude-opus-4-5", 200000, 64000),
        ("claude:claude-sonnet-4-5", 200000, 64000),
        ("claude:claude-haiku-4-5", 200000, 64000),
        ("claude:claude-opus-4-1", 200000, 32000),
    ],
)
def test_published_context_windows(
    registry: EnhancedModelRegistry, key: str, context_window: int, max_tokens: int
) -> None:
    e = registry.get_model(key)
    assert e is not None
    assert e.context_window == context_window
    assert e.max_tokens == max_tokens


def test_embeddings_models(registry: EnhancedModelRegistry) -> None:
    embedders = registry.get_models_by_capability(ModelCapability.EMBEDDINGS)
    assert {e.key for e in embedders} >= {"openai:text-embedding-3-small", "openai:text-embedding-3-large"}
    for e in embedders:
        assert ModelCapability.CHAT_COMPLETION not in e.capabilities, e.key
        assert e.cost.output_tokens == 0, e.key


def test_deprecated_models_are_marked(registry: EnhancedModelRegistry) -> None:
    deprecated = registry.search_models(status=ModelStatus.DEPRECATED)
    for e in deprecated:
        assert "deprecationDate" in e.metadata or "lifecycleNote" in e.metadata, e.key
    live = {e.key for e in registry.search_models(exclude_deprecated=True)}
    assert {e.key for e in deprecated}.isdisjoint(live)
    assert {"openai:gpt-5", "claude:claude-sonnet-4-5", "llama.cpp:qwen3-8b"} <= live


def test_cheapest_models_are_self_hosted(registry: EnhancedModelRegistry) -> None:
    ranked = registry.get_most_cost_effective_models()
    free = [e for e in ranked if e.cost.input_tokens == 0 and e.cost.output_tokens == 0]
    assert ranked[: len(free)] == free
    assert all(e.provider == ProviderType.LLAMA_CPP for e in free)
