"""The Python twin of every code example of the seed document (the TypeScript ``@noa/ai-provider`` docs).

One test per ```typescript / ```json block, in document order; each docstring quotes the seed heading. The four
JSON configuration examples are copied verbatim into ``tests/fixtures/seed/``. Every file lives in ``tmp_path``,
every registry uses ``auto_save=False`` unless the example is about autosave, and time comes from a fake clock.
Money is ``Decimal`` and compared exactly.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import gc
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import (
    ConfigError,
    EnhancedModelRegistry,
    EnhancedModelRegistryConfig,
    EnhancedModelRegistryEntry,
    EnhancedModelSearchQuery,
    EnhancedRegistryStatistics,
    ModelCapability,
    ModelCost,
    ModelNotFoundError,
    ModelPerformanceMetrics,
    ModelRegistry,
    ModelStatus,
    ModelUsageStats,
    PersistenceError,
    ProviderType,
    RateLimitCheck,
    RateLimitConfig,
)
from noa_ai_provider.testing import FakeClock

from . import samples

FIXTURES = Path(__file__).parent / "fixtures" / "seed"
SEED_JSON = {
    "openai": "openai-model.json",
    "claude": "claude-model.json",
    "llama": "llama-cpp-model.json",
    "custom": "custom-model.json",
}
T0 = 1_700_000_000.0  # where the conftest clock starts


# --------------------------------------------------------------------------- helpers


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def seed_text(name: str) -> str:
    """The text of one seed JSON configuration example, exactly as in the seed."""
    return (FIXTURES / SEED_JSON[name]).read_text(encoding="utf-8")


def seed_model(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(seed_text(name))
    return data


def write_models_config(path: Path, *names: str) -> Path:
    """A models-config file (a JSON list) holding the seed examples ``names``, their text unchanged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(seed_text(n) for n in names) + "\n]\n", encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def out_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


# The Quick Start model (seed: "Register a model").
GPT4_TURBO: dict[str, Any] = {
    "id": "gpt-4-turbo-preview",
    "name": "GPT-4 Turbo",
    "provider": ProviderType.OPENAI,
    "version": "1.0.0",
    "contextWindow": 128000,
    "maxTokens": 4096,
    "capabilities": [
        ModelCapability.CHAT_COMPLETION,
        ModelCapability.FUNCTION_CALLING,
        ModelCapability.JSON_MODE,
    ],
    "cost": {"inputTokens": 0.01, "outputTokens": 0.03, "currency": "USD", "per": 1000},
    "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 150000, "requestsPerDay": 10000},
}

# The registerModel example.
CLAUDE_OPUS: dict[str, Any] = {
    "id": "claude-3-opus-20240229",
    "name": "Claude 3 Opus",
    "provider": ProviderType.CLAUDE,
    "version": "3.0.0",
    "contextWindow": 200000,
    "maxTokens": 4096,
    "capabilities": [ModelCapability.CHAT_COMPLETION, ModelCapability.VISION],
    "cost": {"inputTokens": 0.015, "outputTokens": 0.075, "currency": "USD", "per": 1000},
    "rateLimit": {"requestsPerMinute": 50, "tokensPerMinute": 40000},
}

# 'openai:gpt-4' of the API reference examples: 0.01 / 0.03 USD per 1000 tokens.
GPT4: dict[str, Any] = {
    "id": "gpt-4",
    "name": "GPT-4",
    "provider": "openai",
    "version": "1.0.0",
    "contextWindow": 8192,
    "maxTokens": 4096,
    "capabilities": ["chat_completion", "function_calling"],
    "cost": {"inputTokens": 0.01, "outputTokens": 0.03, "currency": "USD", "per": 1000},
    "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 40000, "requestsPerDay": 10000},
}


def simple_model(
    model_id: str,
    provider: str = "openai",
    *,
    version: str = "1.0.0",
    input_price: str = "0.001",
    output_price: str = "0.002",
    capabilities: tuple[str, ...] = ("chat_completion",),
    context_window: int = 8192,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id.upper(),
        "provider": provider,
        "version": version,
        "contextWindow": context_window,
        "maxTokens": 1024,
        "capabilities": list(capabilities),
        "cost": {"inputTokens": input_price, "outputTokens": output_price, "per": 1000},
        **extra,
    }


@pytest.fixture
def make_registry(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., EnhancedModelRegistry]]:
    """Registries with every file in ``tmp_path``, ``auto_save=False`` and the fake clock; closed afterwards."""
    made: list[EnhancedModelRegistry] = []

    def make(**kwargs: Any) -> EnhancedModelRegistry:
        kwargs.setdefault("persistence_path", tmp_path / "data" / "model-registry.json")
        kwargs.setdefault("models_config_path", tmp_path / "config" / "models-config.json")
        kwargs.setdefault("auto_save", False)
        kwargs.setdefault("clock", clock)
        registry = EnhancedModelRegistry(**kwargs)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def registry(make_registry: Callable[..., EnhancedModelRegistry]) -> EnhancedModelRegistry:
    return make_registry()


# --------------------------------------------------------------------------- Quick Start


def test_quick_start_basic_usage(tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    """Seed: "### Basic Usage" (Quick Start) - constructor with autosave and auto-loaded config, registerModel."""
    config_path = write_models_config(tmp_path / "config" / "models-config.json", "claude")
    persistence_path = tmp_path / "data" / "model-registry.json"

    with EnhancedModelRegistry(
        persistence_path=persistence_path,
        auto_save=True,
        auto_save_interval=60.0,  # 1 minute (the seed's 60000 ms)
        models_config_path=config_path,
        auto_load_config=True,
        clock=clock,
    ) as registry:
        assert registry.config.auto_save is True
        assert registry.config.auto_save_interval == 60.0
        assert registry.persistence_path == persistence_path
        assert registry.models_config_path == config_path
        # auto_load_config loaded the models-config file in the constructor.
        assert [m.key for m in registry.list_models()] == ["claude:claude-3-opus-20240229"]

        model_key = registry.register_model(copy.deepcopy(GPT4_TURBO))
        print(f"Registered model: {model_key}")

        assert model_key == "openai:gpt-4-turbo-preview"
        entry = registry.get_model(model_key)
        assert entry is not None
        assert entry.provider is ProviderType.OPENAI
        assert entry.capabilities == [
            ModelCapability.CHAT_COMPLETION,
            ModelCapability.FUNCTION_CALLING,
            ModelCapability.JSON_MODE,
        ]
        assert entry.cost == ModelCost(input_tokens=Decimal("0.01"), output_tokens=Decimal("0.03"))
        assert entry.rate_limit == RateLimitConfig(
            requests_per_minute=500, tokens_per_minute=150000, requests_per_day=10000
        )
        assert entry.registered_at == utc(T0)
        # The 60 s interval has not elapsed: nothing written yet.
        assert not persistence_path.exists()

    assert out_lines(capsys) == ["Registered model: openai:gpt-4-turbo-preview"]
    # Leaving the `with` block saved what was pending.
    assert persistence_path.is_file()
    with EnhancedModelRegistry(persistence_path=persistence_path, auto_save=False, clock=clock) as reloaded:
        assert reloaded.load() == 2
        assert [m.key for m in reloaded.list_models()] == [
            "claude:claude-3-opus-20240229",
            "openai:gpt-4-turbo-preview",
        ]


def test_quick_start_loading_from_configuration(
    tmp_path: Path, make_registry: Callable[..., EnhancedModelRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "### Loading from Configuration" - loadFromConfig then getModelByProviderAndId."""
    config_path = write_models_config(tmp_path / "config" / "models-config.json", "openai", "claude")
    registry = make_registry()

    assert registry.load_from_config(config_path) == 2

    gpt4 = registry.get_model_by_provider_and_id(ProviderType.OPENAI, "gpt-4-turbo-preview")
    print(f"Found model: {gpt4.name if gpt4 else None}")

    assert out_lines(capsys) == ["Found model: GPT-4 Turbo"]
    assert gpt4 is not None
    assert gpt4.key == "openai:gpt-4-turbo-preview"
    assert gpt4.access_count == 1
    # The async twin does the same.
    assert asyncio.run(registry.aload_from_config(config_path)) == 2
    assert registry.get_model_by_provider_and_id(ProviderType.OPENAI, "no-such-model") is None


# --------------------------------------------------------------------------- API reference


def test_constructor_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """Seed: "#### Constructor" - constructor(config?: EnhancedModelRegistryConfig) and its defaults."""
    monkeypatch.chdir(tmp_path)

    defaults = EnhancedModelRegistryConfig()
    assert defaults.persistence_path == Path("./data/enhanced-model-registry.json")
    assert defaults.auto_save is True
    assert defaults.auto_save_interval == 60.0
    assert defaults.models_config_path == Path("./config/models-config.json")
    assert defaults.auto_load_config is False

    with EnhancedModelRegistry(clock=clock) as registry:
        assert registry.config == defaults
        assert len(registry) == 0
    # Nothing changed, so closing the autosaving registry wrote nothing.
    assert list(tmp_path.iterdir()) == []

    config = EnhancedModelRegistryConfig(persistence_path=tmp_path / "a.json", auto_save=False)
    with EnhancedModelRegistry(config=config, clock=clock) as registry:
        assert registry.persistence_path == tmp_path / "a.json"
        assert registry.config.auto_save is False
    # An explicit keyword wins over `config`.
    with EnhancedModelRegistry(config=config, persistence_path=tmp_path / "b.json", clock=clock) as registry:
        assert registry.persistence_path == tmp_path / "b.json"

    with pytest.raises(TypeError):
        EnhancedModelRegistry(config)  # type: ignore[call-arg]  # every argument is keyword-only


def test_register_model_claude_opus(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### registerModel(model: ExtendedModelInfo): string"."""
    key = registry.register_model(copy.deepcopy(CLAUDE_OPUS))

    assert key == "claude:claude-3-opus-20240229"
    entry = registry.get_model(key)
    assert entry is not None
    assert entry.provider is ProviderType.CLAUDE
    assert entry.version == "3.0.0"
    assert entry.context_window == 200000
    assert entry.max_tokens == 4096
    assert entry.capabilities == [ModelCapability.CHAT_COMPLETION, ModelCapability.VISION]
    assert entry.cost.input_tokens == Decimal("0.015")
    assert entry.cost.output_tokens == Decimal("0.075")
    assert entry.cost.currency == "USD"
    assert entry.cost.per == 1000
    assert entry.rate_limit == RateLimitConfig(requests_per_minute=50, tokens_per_minute=40000)
    assert entry.rate_limit.requests_per_day is None
    assert entry.status is ModelStatus.AVAILABLE
    assert entry.usage_stats.request_count == 0


def test_register_models_batch(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### registerModels(models: ExtendedModelInfo[]): string[]"."""
    model1, model2, model3 = copy.deepcopy(GPT4), copy.deepcopy(CLAUDE_OPUS), seed_model("llama")

    keys = registry.register_models([model1, model2, model3])

    assert keys == ["openai:gpt-4", "claude:claude-3-opus-20240229", "llama.cpp:llama-3.1-8b-instruct"]
    assert [m.key for m in registry.list_models()] == keys
    # All or nothing: one invalid model registers none.
    bad = simple_model("broken", capabilities=("telepathy",))
    with pytest.raises(ConfigError):
        registry.register_models([simple_model("fine"), bad])
    assert [m.key for m in registry.list_models()] == keys


def test_get_model_context_window(registry: EnhancedModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    """Seed: "##### getModel(key: string): EnhancedModelRegistryEntry | undefined"."""
    registry.register_model(copy.deepcopy(GPT4))

    model = registry.get_model("openai:gpt-4")
    print(f"Context window: {model.context_window if model else None}")

    assert out_lines(capsys) == ["Context window: 8192"]
    assert model is not None
    # Getting a model records an access, and the snapshot already counts it.
    assert model.access_count == 1
    assert model.last_accessed == utc(T0)
    assert registry.get_model("openai:gpt-4").access_count == 2  # type: ignore[union-attr]
    assert registry.get_model("openai:missing") is None


def test_get_model_by_provider_and_id_claude(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getModelByProviderAndId(provider: ProviderType, modelId: string): ..."."""
    registry.register_model(copy.deepcopy(CLAUDE_OPUS))

    claude = registry.get_model_by_provider_and_id(ProviderType.CLAUDE, "claude-3-opus-20240229")

    assert claude is not None
    assert claude.key == "claude:claude-3-opus-20240229"
    assert claude.name == "Claude 3 Opus"
    assert claude.access_count == 1
    assert registry.get_model_by_provider_and_id(ProviderType.OPENAI, "claude-3-opus-20240229") is None


def test_update_model_metadata(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    """Seed: "##### updateModel(key: string, updates: Partial<EnhancedModelRegistryEntry>): void"."""
    registry.register_model(copy.deepcopy(GPT4))
    updated: list[str] = []
    registry.on("model-updated", lambda sender, key, model: updated.append(key))
    clock.advance(5)

    registry.update_model(
        "openai:gpt-4",
        {
            "metadata": {
                "tags": ["production", "recommended"],
                "customField": "value",
            }
        },
    )

    entry = registry.get_model("openai:gpt-4")
    assert entry is not None
    assert entry.metadata == {"tags": ["production", "recommended"], "customField": "value"}
    assert entry.updated_at == utc(T0 + 5)
    assert entry.registered_at == utc(T0)
    assert entry.cost.input_tokens == Decimal("0.01")  # other fields unchanged
    assert updated == ["openai:gpt-4"]
    assert [m.key for m in registry.search_models(tags=["recommended"])] == ["openai:gpt-4"]
    with pytest.raises(ModelNotFoundError):
        registry.update_model("openai:missing", {"metadata": {}})


def test_update_model_status_deprecated(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### updateModelStatus(key: string, status: ModelStatus): void"."""
    registry.register_model(simple_model("gpt-3"))

    registry.update_model_status("openai:gpt-3", ModelStatus.DEPRECATED)

    entry = registry.get_model("openai:gpt-3")
    assert entry is not None
    assert entry.status is ModelStatus.DEPRECATED
    assert registry.search_models(exclude_deprecated=True) == []
    assert [s.value for s in ModelStatus] == ["available", "loading", "loaded", "failed", "unloaded", "deprecated"]
    with pytest.raises(ModelNotFoundError):
        registry.update_model_status("openai:missing", ModelStatus.DEPRECATED)


def test_unregister_model_old_model(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### unregisterModel(key: string): boolean"."""
    registry.register_models([simple_model("old-model"), simple_model("new-model")])

    removed = registry.unregister_model("openai:old-model")

    assert removed is True
    assert [m.key for m in registry.list_models()] == ["openai:new-model"]
    assert registry.unregister_model("openai:old-model") is False


def test_record_usage_success_and_failure(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### recordUsage(key: string, inputTokens: number, outputTokens: number, success: boolean): void"."""
    registry.register_model(copy.deepcopy(GPT4))

    # Record successful request
    first = registry.record_usage("openai:gpt-4", 1500, 800, True)
    # Record failed request
    second = registry.record_usage("openai:gpt-4", 100, 0, False)

    assert first == Decimal("0.039")  # 1500 * 0.01 / 1000 + 800 * 0.03 / 1000
    assert second == Decimal("0.001")  # a failed request's tokens are charged
    assert isinstance(first, Decimal)
    assert isinstance(second, Decimal)
    stats = registry.get_usage_stats("openai:gpt-4")
    assert stats is not None
    assert stats.total_cost == Decimal("0.040")
    assert isinstance(stats.total_cost, Decimal)
    assert stats.total_input_tokens == 1600
    assert stats.total_output_tokens == 800
    assert stats.request_count == 2
    assert stats.successful_requests == 1
    assert stats.failed_requests == 1
    with pytest.raises(ModelNotFoundError):
        registry.record_usage("openai:missing", 1, 1, True)


def test_get_usage_stats_printed_lines(registry: EnhancedModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    """Seed: "##### getUsageStats(key: string): ModelUsageStats | undefined" - the four console lines."""
    registry.register_model(copy.deepcopy(GPT4))
    registry.record_usage("openai:gpt-4", 1500, 800, True)
    registry.record_usage("openai:gpt-4", 100, 0, False)

    stats = registry.get_usage_stats("openai:gpt-4")
    assert stats is not None
    print(f"Total cost: ${stats.total_cost:.4f}")
    print(f"Input tokens: {stats.total_input_tokens}")
    print(f"Output tokens: {stats.total_output_tokens}")
    print(f"Success rate: {stats.successful_requests / stats.request_count * 100:.2f}%")

    assert out_lines(capsys) == [
        "Total cost: $0.0400",
        "Input tokens: 1600",
        "Output tokens: 800",
        "Success rate: 50.00%",
    ]
    assert registry.get_usage_stats("openai:missing") is None


def test_get_usage_stats_interface_fields(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    """Seed: "##### getUsageStats(...)" - the ``ModelUsageStats`` interface."""
    registry.register_model(copy.deepcopy(GPT4))
    clock.advance(30)
    registry.record_usage("openai:gpt-4", 1500, 800, True)

    stats = registry.get_usage_stats("openai:gpt-4")

    assert isinstance(stats, ModelUsageStats)
    assert stats == ModelUsageStats(
        total_input_tokens=1500,
        total_output_tokens=800,
        total_cost=Decimal("0.039"),
        currency="USD",
        last_reset=utc(T0),  # counted since registration
        request_count=1,
        successful_requests=1,
        failed_requests=0,
    )
    assert stats.last_reset.tzinfo is not None
    # A snapshot: changing it never changes the registry.
    stats.total_cost = Decimal(0)
    assert registry.get_usage_stats("openai:gpt-4").total_cost == Decimal("0.039")  # type: ignore[union-attr]


def test_estimate_cost_gpt4(registry: EnhancedModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    """Seed: "##### estimateCost(key: string, inputTokens: number, outputTokens: number): number"."""
    registry.register_model(copy.deepcopy(GPT4))

    estimated_cost = registry.estimate_cost("openai:gpt-4", 2000, 1000)
    print(f"Estimated cost: ${estimated_cost:.4f}")

    assert estimated_cost == Decimal("0.05")
    assert isinstance(estimated_cost, Decimal)
    assert f"{estimated_cost:.4f}" == "0.0500"
    assert out_lines(capsys) == ["Estimated cost: $0.0500"]
    # Estimating records nothing.
    assert registry.get_usage_stats("openai:gpt-4").request_count == 0  # type: ignore[union-attr]
    with pytest.raises(ModelNotFoundError):
        registry.estimate_cost("openai:missing", 1, 1)


def test_reset_usage_stats(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    """Seed: "##### resetUsageStats(key: string): void"."""
    registry.register_model(simple_model("gpt-4", rateLimit={"requestsPerMinute": 2}))
    registry.record_usage("openai:gpt-4", 1500, 800, True)
    registry.record_usage("openai:gpt-4", 100, 0, False)
    resets: list[str] = []
    registry.on("usage-reset", lambda sender, key: resets.append(key))
    clock.advance(10)

    registry.reset_usage_stats("openai:gpt-4")

    stats = registry.get_usage_stats("openai:gpt-4")
    assert stats is not None
    assert (stats.total_input_tokens, stats.total_output_tokens, stats.total_cost) == (0, 0, Decimal(0))
    assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (0, 0, 0)
    assert stats.last_reset == utc(T0 + 10)
    assert resets == ["openai:gpt-4"]
    # The counters are reset, not the rate-limit windows: the two requests really happened.
    check = registry.check_rate_limit("openai:gpt-4", 0)
    assert check.allowed is False
    assert check.reason == "requests per minute"
    with pytest.raises(ModelNotFoundError):
        registry.reset_usage_stats("openai:missing")


def test_check_rate_limit_before_request(
    registry: EnhancedModelRegistry, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "##### checkRateLimit(key: string, tokensToSend: number): { allowed: boolean; reason?: string }"."""
    registry.register_model(copy.deepcopy(GPT4))  # 40000 tokens per minute
    requests_made: list[str] = []

    async def make_request() -> None:
        requests_made.append("request")

    def guarded_request() -> RateLimitCheck:
        check = registry.check_rate_limit("openai:gpt-4", 10000)
        if check.allowed:
            asyncio.run(make_request())  # Proceed with request
        else:
            print(f"Rate limit exceeded: {check.reason}", file=sys.stderr)
        return check

    assert guarded_request() == RateLimitCheck(allowed=True, reason=None, retry_after=None)
    assert requests_made == ["request"]

    # 35000 tokens in the last minute: 10000 more would exceed 40000 tokens per minute.
    registry.record_usage("openai:gpt-4", 30000, 5000, True)
    clock.advance(20)
    check = guarded_request()
    assert check.allowed is False
    assert check.reason == "tokens per minute"
    assert check.retry_after == pytest.approx(40.0)
    assert requests_made == ["request"]
    assert capsys.readouterr().err.splitlines() == ["Rate limit exceeded: tokens per minute"]

    clock.advance(40)  # the 35000 tokens are now 60 s old
    assert guarded_request().allowed is True
    assert requests_made == ["request", "request"]
    # A request larger than the per-minute token limit can never pass.
    never = registry.check_rate_limit("openai:gpt-4", 40001)
    assert never == RateLimitCheck(allowed=False, reason="tokens per minute", retry_after=None)


def test_compare_versions(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### compareVersions(version1: string, version2: string): number"."""
    result = registry.compare_versions("2.0.0", "1.5.0")

    assert result == 1  # v1 > v2
    assert registry.compare_versions("1.5.0", "1.5.0") == 0
    assert registry.compare_versions("1.5.0", "2.0.0") == -1
    assert registry.compare_versions("1.10.0", "1.9.0") == 1  # numeric, not lexicographic


def test_get_models_by_version_range(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getModelsByVersionRange(minVersion: string, maxVersion: string): ..."."""
    for model_id, version in [("a", "1.0.0"), ("b", "2.0.0"), ("c", "2.10.1"), ("d", "3.0.0"), ("e", "3.0.1")]:
        registry.register_model(simple_model(model_id, version=version))

    models = registry.get_models_by_version_range("2.0.0", "3.0.0")

    assert [m.key for m in models] == ["openai:b", "openai:c", "openai:d"]  # both bounds inclusive


def _search_fixture(registry: EnhancedModelRegistry) -> None:
    both_tags = {"tags": ["recommended", "production"]}
    registry.register_models(
        [
            simple_model(
                "gpt-4-turbo-preview",
                input_price="0.01",
                output_price="0.03",
                capabilities=("chat_completion", "function_calling"),
                context_window=128000,
                metadata=both_tags,
            ),
            # Only one of the two tags.
            simple_model(
                "gpt-4-one-tag",
                capabilities=("function_calling",),
                context_window=128000,
                metadata={"tags": ["production"]},
            ),
            # Deprecated.
            simple_model(
                "gpt-4-0314",
                capabilities=("function_calling",),
                context_window=8192,
                metadata=both_tags,
                status="deprecated",
            ),
            # Another provider.
            simple_model(
                "claude-3-opus",
                provider="claude",
                capabilities=("function_calling",),
                context_window=200000,
                metadata=both_tags,
            ),
            # Context window too small.
            simple_model("gpt-small", capabilities=("function_calling",), context_window=4096, metadata=both_tags),
            # (30 + 60) / 2000 = 0.045 per token > 0.02.
            simple_model(
                "gpt-expensive",
                input_price="30",
                output_price="60",
                capabilities=("function_calling",),
                context_window=32000,
                metadata=both_tags,
            ),
            # Version below 1.0.0.
            simple_model(
                "gpt-beta",
                version="0.9.0",
                capabilities=("function_calling",),
                context_window=32000,
                metadata=both_tags,
            ),
            # No function calling.
            simple_model("gpt-chat", capabilities=("chat_completion",), context_window=32000, metadata=both_tags),
            # Exactly at every bound: matches.
            simple_model(
                "gpt-edge",
                input_price="20",
                output_price="20",
                capabilities=("function_calling",),
                context_window=8000,
                metadata={"tags": ["production", "recommended", "extra"]},
            ),
        ]
    )


def test_search_models_with_filters(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### searchModels(query: EnhancedModelSearchQuery): EnhancedModelRegistryEntry[]"."""
    _search_fixture(registry)

    models = registry.search_models(
        provider=ProviderType.OPENAI,
        capability=ModelCapability.FUNCTION_CALLING,
        min_context_window=8000,
        max_cost_per_token=0.02,
        min_version="1.0.0",
        exclude_deprecated=True,
        tags=["recommended", "production"],
    )

    assert [m.key for m in models] == ["openai:gpt-4-turbo-preview", "openai:gpt-edge"]
    # The same query as a dict in the seed's camelCase, and as an EnhancedModelSearchQuery.
    seed_query = {
        "provider": "openai",
        "capability": "function_calling",
        "minContextWindow": 8000,
        "maxCostPerToken": 0.02,
        "minVersion": "1.0.0",
        "excludeDeprecated": True,
        "tags": ["recommended", "production"],
    }
    assert registry.search_models(seed_query) == models
    assert registry.search_models(EnhancedModelSearchQuery.model_validate(seed_query)) == models


def test_search_models_query_options(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### searchModels(...)" - the ``EnhancedModelSearchQuery`` interface, one option at a time."""
    _search_fixture(registry)

    def keys(**filters: Any) -> list[str]:
        return [m.key.split(":")[1] for m in registry.search_models(EnhancedModelSearchQuery(**filters))]

    assert keys(provider=ProviderType.CLAUDE) == ["claude-3-opus"]
    assert keys(capability=ModelCapability.CHAT_COMPLETION) == ["gpt-4-turbo-preview", "gpt-chat"]
    assert keys(min_context_window=128000) == ["gpt-4-turbo-preview", "gpt-4-one-tag", "claude-3-opus"]
    assert keys(max_context_window=8000) == ["gpt-small", "gpt-edge"]
    assert keys(name_pattern="^GPT-4-") == ["gpt-4-turbo-preview", "gpt-4-one-tag", "gpt-4-0314"]
    assert keys(tags=["extra"]) == ["gpt-edge"]
    assert keys(status=ModelStatus.DEPRECATED) == ["gpt-4-0314"]
    # The default prices (0.001 + 0.002) / 2000 = 0.0000015 are exactly at the bound: included.
    assert keys(max_cost_per_token=Decimal("0.0000015")) == [
        "gpt-4-one-tag",
        "gpt-4-0314",
        "claude-3-opus",
        "gpt-small",
        "gpt-beta",
        "gpt-chat",
    ]
    assert keys(min_version="1.0.0", max_version="1.0.0") == [
        "gpt-4-turbo-preview",
        "gpt-4-one-tag",
        "gpt-4-0314",
        "claude-3-opus",
        "gpt-small",
        "gpt-expensive",
        "gpt-chat",
        "gpt-edge",
    ]
    assert keys(max_version="0.9.0") == ["gpt-beta"]
    assert "gpt-4-0314" not in keys(exclude_deprecated=True)
    assert len(keys()) == 9  # no filter: everything


def test_get_models_by_provider_claude(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getModelsByProvider(provider: ProviderType): EnhancedModelRegistryEntry[]"."""
    registry.register_models(
        [seed_model("claude"), seed_model("openai"), simple_model("claude-3-haiku", provider="claude")]
    )

    claude_models = registry.get_models_by_provider(ProviderType.CLAUDE)

    assert [m.key for m in claude_models] == ["claude:claude-3-opus-20240229", "claude:claude-3-haiku"]
    assert registry.get_models_by_provider(ProviderType.LLAMA_CPP) == []


def test_get_models_by_capability_vision(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getModelsByCapability(capability: ModelCapability): EnhancedModelRegistryEntry[]"."""
    registry.register_models([seed_model(name) for name in SEED_JSON])

    vision_models = registry.get_models_by_capability(ModelCapability.VISION)

    assert [m.key for m in vision_models] == ["claude:claude-3-opus-20240229"]
    assert [m.key for m in registry.get_models_by_capability(ModelCapability.CHAT_COMPLETION)] == [
        "openai:gpt-4-turbo-preview",
        "claude:claude-3-opus-20240229",
        "llama.cpp:llama-3.1-8b-instruct",
        "llama.cpp:my-custom-model",
    ]


def test_get_most_cost_effective_models_avg_cost(
    registry: EnhancedModelRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "##### getMostCostEffectiveModels(limit?: number): ..." - with the avgCost lines."""
    registry.register_models(
        [
            seed_model("openai"),  # (0.01 + 0.03) / 2000 = 0.00002
            seed_model("claude"),  # (0.015 + 0.075) / 2000 = 0.000045
            simple_model("gpt-4", input_price="0.03", output_price="0.06"),  # 0.000045, ties with claude
            seed_model("llama"),  # 0
            simple_model("gpt-3.5-turbo", input_price="0.0005", output_price="0.0015"),  # 0.000001
            seed_model("custom"),  # 0
        ]
    )

    cheap_models = registry.get_most_cost_effective_models(5)
    for m in cheap_models:
        avg_cost = (m.cost.input_tokens + m.cost.output_tokens) / (2 * m.cost.per)
        print(f"{m.name}: ${avg_cost:.6f} per token")

    assert out_lines(capsys) == [
        "Llama 3.1 8B Instruct: $0.000000 per token",
        "My Custom Model: $0.000000 per token",
        "GPT-3.5-TURBO: $0.000001 per token",
        "GPT-4 Turbo: $0.000020 per token",
        "Claude 3 Opus: $0.000045 per token",  # the tie keeps registration order; GPT-4 is cut by the limit
    ]
    assert len(registry.get_most_cost_effective_models()) == 6


def test_get_top_performing_models(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getTopPerformingModels(limit?: number): EnhancedModelRegistryEntry[]"."""
    registry.register_models([simple_model(name) for name in ("no-metrics", "fast", "steady", "new", "tie")])
    # score = 0.4 * success_rate + 0.3 * min(tps / 100, 1) + 0.3 * min(inferences / 1000, 1)
    registry.update_performance_metrics("openai:fast", success_rate=0.9, tokens_per_second=150, total_inferences=500)
    # 0.36 + 0.3 + 0.15 = 0.81
    registry.update_performance_metrics("openai:steady", success_rate=1.0, tokens_per_second=50, total_inferences=2000)
    # 0.4 + 0.15 + 0.3 = 0.85
    registry.update_performance_metrics("openai:new", success_rate=1.0, tokens_per_second=10, total_inferences=10)
    # 0.4 + 0.03 + 0.003 = 0.433
    registry.update_performance_metrics("openai:tie", success_rate=0.9, tokens_per_second=150, total_inferences=500)
    # 0.81, ties with "fast" (registered earlier)

    top_models = registry.get_top_performing_models(10)

    assert [m.key for m in top_models] == ["openai:steady", "openai:fast", "openai:tie", "openai:new"]
    assert [m.key for m in registry.get_top_performing_models(1)] == ["openai:steady"]


def test_get_most_used_models(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getMostUsedModels(limit?: number): EnhancedModelRegistryEntry[]"."""
    counts = {"a": 1, "b": 4, "c": 0, "d": 2, "e": 4, "f": 3}
    registry.register_models([simple_model(name) for name in counts])
    for name, count in counts.items():
        for _ in range(count):
            registry.record_usage(f"openai:{name}", 10, 10, True)

    popular_models = registry.get_most_used_models(5)

    assert [m.key for m in popular_models] == ["openai:b", "openai:e", "openai:f", "openai:d", "openai:a"]
    assert [m.usage_stats.request_count for m in popular_models] == [4, 4, 3, 2, 1]


def _statistics_fixture(registry: EnhancedModelRegistry) -> None:
    registry.register_models([copy.deepcopy(GPT4), seed_model("openai"), seed_model("claude")])
    registry.record_usage("openai:gpt-4", 1500, 800, True)  # 0.039
    registry.record_usage("openai:gpt-4", 100, 0, False)  # 0.001
    registry.record_usage("claude:claude-3-opus-20240229", 1000, 200, True)  # 0.015 + 0.015


def test_get_statistics_printed_lines(registry: EnhancedModelRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    """Seed: "##### getStatistics(): EnhancedRegistryStatistics" - the printed lines."""
    _statistics_fixture(registry)

    stats = registry.get_statistics()
    print(f"Total models: {stats.total_models}")
    print(f"Total cost: ${stats.total_cost:.2f}")
    print(f"Total tokens: {stats.total_input_tokens + stats.total_output_tokens}")
    print("Providers:", stats.provider_counts)
    print("Capabilities:", stats.capability_counts)

    lines = out_lines(capsys)
    assert lines[:3] == ["Total models: 3", "Total cost: $0.07", "Total tokens: 3600"]
    assert lines[3:] == [f"Providers: {stats.provider_counts}", f"Capabilities: {stats.capability_counts}"]
    assert stats.total_cost == Decimal("0.070")
    assert stats.provider_counts == {"openai": 2, "claude": 1}
    assert stats.capability_counts == {"chat_completion": 3, "function_calling": 3, "json_mode": 1, "vision": 1}


def test_get_statistics_interface_fields(registry: EnhancedModelRegistry) -> None:
    """Seed: "##### getStatistics()" - the ``EnhancedRegistryStatistics`` interface."""
    _statistics_fixture(registry)
    registry.update_model_status("openai:gpt-4-turbo-preview", ModelStatus.DEPRECATED)
    registry.get_model("openai:gpt-4")
    registry.get_model("openai:gpt-4")
    registry.get_model("claude:claude-3-opus-20240229")
    registry.list_models()  # listing records no access

    stats = registry.get_statistics()

    assert isinstance(stats, EnhancedRegistryStatistics)
    assert stats.total_models == 3
    assert stats.provider_counts == {"openai": 2, "claude": 1}
    assert stats.capability_counts == {"chat_completion": 3, "function_calling": 3, "json_mode": 1, "vision": 1}
    assert stats.status_counts == {"available": 2, "deprecated": 1}
    assert stats.total_accesses == 3
    assert stats.average_access_count == pytest.approx(1.0)
    assert stats.total_cost == Decimal("0.070")
    assert isinstance(stats.total_cost, Decimal)
    assert stats.total_input_tokens == 2600
    assert stats.total_output_tokens == 1000


def test_update_performance_metrics(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    """Seed: "##### updatePerformanceMetrics(key: string, metrics: Partial<ModelPerformanceMetrics>): void"."""
    registry.register_model(copy.deepcopy(GPT4))
    clock.advance(7)

    registry.update_performance_metrics(
        "openai:gpt-4",
        {
            "averageLatency": 250,
            "tokensPerSecond": 45,
            "totalInferences": 1000,
            "successRate": 0.99,
            "memoryUsage": 512,
        },
    )

    metrics = registry.get_model("openai:gpt-4").performance_metrics  # type: ignore[union-attr]
    assert metrics == ModelPerformanceMetrics(
        average_latency=250.0,
        tokens_per_second=45.0,
        total_inferences=1000,
        success_rate=0.99,
        memory_usage=512.0,
        last_updated=utc(T0 + 7),
    )
    # A partial update (keyword form) keeps the other fields.
    registry.update_performance_metrics("openai:gpt-4", average_latency=300)
    metrics = registry.get_model("openai:gpt-4").performance_metrics  # type: ignore[union-attr]
    assert metrics is not None
    assert (metrics.average_latency, metrics.tokens_per_second, metrics.total_inferences) == (300.0, 45.0, 1000)
    assert metrics.success_rate == 0.99
    with pytest.raises(ConfigError):
        registry.update_performance_metrics("openai:gpt-4", success_rate=1.5)
    with pytest.raises(ModelNotFoundError):
        registry.update_performance_metrics("openai:missing", success_rate=0.5)


def test_save_writes_registry(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "##### save(): Promise<void>" - plain ``save()`` and the async twin ``asave()``."""
    path = tmp_path / "data" / "model-registry.json"
    registry = make_registry(persistence_path=path)
    registry.register_model(copy.deepcopy(GPT4))
    registry.record_usage("openai:gpt-4", 1500, 800, True)
    saved: list[str] = []
    registry.on("registry-saved", lambda sender, path: saved.append(path))

    registry.save()

    assert path.is_file()
    assert saved == [str(path)]
    json.loads(path.read_text(encoding="utf-8"))  # valid JSON
    registry.record_usage("openai:gpt-4", 100, 0, False)
    asyncio.run(registry.asave())
    assert saved == [str(path), str(path)]

    reloaded = make_registry(persistence_path=path)
    assert reloaded.load() == 1
    assert reloaded.get_usage_stats("openai:gpt-4").total_cost == Decimal("0.040")  # type: ignore[union-attr]


def test_load_reads_saved_registry(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path, clock: FakeClock
) -> None:
    """Seed: "##### load(): Promise<void>" - plain ``load()`` and the async twin ``aload()``."""
    path = tmp_path / "data" / "model-registry.json"
    empty = make_registry(persistence_path=path)
    assert empty.load() == 0  # no file yet: nothing loaded

    source = make_registry(persistence_path=path)
    _statistics_fixture(source)
    source.update_performance_metrics("openai:gpt-4", success_rate=0.99, tokens_per_second=45)
    source.save()
    clock.advance(3600)

    registry = make_registry(persistence_path=path)
    loaded: list[tuple[str, int]] = []
    registry.on("registry-loaded", lambda sender, path, model_count: loaded.append((path, model_count)))
    assert registry.load() == 3
    assert loaded == [(str(path), 3)]
    for original, restored in zip(source.list_models(), registry.list_models(), strict=True):
        assert restored.key == original.key
        assert restored.usage_stats == original.usage_stats
        assert restored.performance_metrics == original.performance_metrics
        assert restored.registered_at == original.registered_at
    assert registry.get_usage_stats("openai:gpt-4").total_cost == Decimal("0.040")  # type: ignore[union-attr]

    async_registry = make_registry(persistence_path=path)
    assert asyncio.run(async_registry.aload()) == 3
    assert [m.key for m in async_registry.list_models()] == [m.key for m in source.list_models()]

    # A corrupt file raises PersistenceError and changes nothing.
    path.write_text('{"models": [', encoding="utf-8")
    with pytest.raises(PersistenceError):
        registry.load()
    assert len(registry) == 3


def test_load_from_config_file(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "##### loadFromConfig(configPath?: string): Promise<void>"."""
    config_path = write_models_config(tmp_path / "config" / "models-config.json", *SEED_JSON)
    registry = make_registry(models_config_path=config_path)
    loaded: list[tuple[str, int]] = []
    registry.on("config-loaded", lambda sender, path, model_count: loaded.append((path, model_count)))

    assert registry.load_from_config(str(config_path)) == 4

    assert [m.key for m in registry.list_models()] == [
        "openai:gpt-4-turbo-preview",
        "claude:claude-3-opus-20240229",
        "llama.cpp:llama-3.1-8b-instruct",
        "llama.cpp:my-custom-model",
    ]
    assert loaded == [(str(config_path), 4)]
    # Default path: models_config_path; async twin.
    assert registry.load_from_config() == 4
    assert asyncio.run(registry.aload_from_config()) == 4
    assert len(registry) == 4
    # The {"models": [...]} shape works too, and keeps the models already registered.
    wrapped = write_json(tmp_path / "other.json", {"models": [simple_model("extra")]})
    assert registry.load_from_config(wrapped) == 1
    assert len(registry) == 5


def test_export_to_json_backup_file(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    """Seed: "##### exportToJSON(): string"."""
    _statistics_fixture(registry)

    json_text = registry.export_to_json()
    (tmp_path / "backup.json").write_text(json_text, encoding="utf-8")

    assert isinstance(json_text, str)
    backup = (tmp_path / "backup.json").read_text(encoding="utf-8")
    assert backup == json_text
    json.loads(backup)  # valid JSON
    for key in ("openai:gpt-4", "openai:gpt-4-turbo-preview", "claude:claude-3-opus-20240229"):
        assert key in backup


def test_import_from_json_restores_backup(
    make_registry: Callable[..., EnhancedModelRegistry],
    tmp_path: Path,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Seed: "##### importFromJSON(json: string): number" - a full round trip of exportToJSON."""
    source = make_registry()
    _statistics_fixture(source)
    source.update_performance_metrics("openai:gpt-4", success_rate=0.99, tokens_per_second=45, total_inferences=7)
    source.get_model("openai:gpt-4")
    (tmp_path / "backup.json").write_text(source.export_to_json(), encoding="utf-8")
    clock.advance(86_400)

    registry = make_registry()
    registry.register_model(simple_model("kept"))
    json_text = (tmp_path / "backup.json").read_text(encoding="utf-8")
    count = registry.import_from_json(json_text)
    print(f"Imported {count} models")

    assert out_lines(capsys) == ["Imported 3 models"]
    assert [m.key for m in registry.list_models()] == ["openai:kept"] + [m.key for m in source.list_models()]
    for original in source.list_models():
        restored = registry.list_models()[[m.key for m in registry.list_models()].index(original.key)]
        assert restored.usage_stats == original.usage_stats
        assert restored.performance_metrics == original.performance_metrics
        assert restored.access_count == original.access_count
        assert restored.registered_at == original.registered_at
        assert restored.last_accessed == original.last_accessed
        assert restored.cost == original.cost
        assert restored.rate_limit == original.rate_limit
    stats = registry.get_usage_stats("openai:gpt-4")
    assert stats is not None
    assert stats.total_cost == Decimal("0.040")
    assert isinstance(stats.total_cost, Decimal)
    assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (2, 1, 1)
    # Bad JSON raises ConfigError and changes nothing.
    with pytest.raises(ConfigError):
        registry.import_from_json("{not json")
    assert len(registry) == 4


# --------------------------------------------------------------------------- Configuration Examples


def _load_seed_config(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path, name: str
) -> tuple[EnhancedModelRegistry, EnhancedModelRegistryEntry]:
    config_path = write_models_config(tmp_path / "config" / f"{name}.json", name)
    registry = make_registry()
    assert registry.load_from_config(config_path) == 1
    (entry,) = registry.list_models()
    return registry, entry


def test_configuration_openai_model(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "### OpenAI Models" (Configuration Examples)."""
    registry, entry = _load_seed_config(make_registry, tmp_path, "openai")

    assert entry.key == "openai:gpt-4-turbo-preview"
    assert entry.name == "GPT-4 Turbo"
    assert entry.provider is ProviderType.OPENAI
    assert entry.version == "1.0.0"
    assert (entry.context_window, entry.max_tokens) == (128000, 4096)
    assert entry.capabilities == [
        ModelCapability.CHAT_COMPLETION,
        ModelCapability.FUNCTION_CALLING,
        ModelCapability.JSON_MODE,
    ]
    assert entry.cost == ModelCost(
        input_tokens=Decimal("0.01"), output_tokens=Decimal("0.03"), currency="USD", per=1000
    )
    assert entry.rate_limit == RateLimitConfig(
        requests_per_minute=500, tokens_per_minute=150000, requests_per_day=10000
    )
    assert entry.metadata == {
        "tags": ["recommended", "production"],
        "apiEndpoint": "https://api.openai.com/v1/chat/completions",
    }
    assert entry.status is ModelStatus.AVAILABLE
    assert registry.estimate_cost(entry.key, 1000, 1000) == Decimal("0.04")


def test_configuration_claude_model(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "### Claude Models" (Configuration Examples)."""
    registry, entry = _load_seed_config(make_registry, tmp_path, "claude")

    assert entry.key == "claude:claude-3-opus-20240229"
    assert entry.name == "Claude 3 Opus"
    assert entry.provider is ProviderType.CLAUDE
    assert entry.version == "3.0.0"
    assert (entry.context_window, entry.max_tokens) == (200000, 4096)
    assert entry.capabilities == [
        ModelCapability.CHAT_COMPLETION,
        ModelCapability.VISION,
        ModelCapability.FUNCTION_CALLING,
    ]
    assert entry.cost == ModelCost(
        input_tokens=Decimal("0.015"), output_tokens=Decimal("0.075"), currency="USD", per=1000
    )
    assert entry.rate_limit == RateLimitConfig(requests_per_minute=50, tokens_per_minute=40000, requests_per_day=1000)
    assert entry.metadata == {
        "tags": ["flagship", "high-performance"],
        "apiEndpoint": "https://api.anthropic.com/v1/messages",
    }
    assert registry.estimate_cost(entry.key, 1000, 1000) == Decimal("0.090")


def test_configuration_llama_cpp_model(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "### llama.cpp (Self-Hosted) Models" (Configuration Examples)."""
    registry, entry = _load_seed_config(make_registry, tmp_path, "llama")

    assert entry.key == "llama.cpp:llama-3.1-8b-instruct"
    assert entry.name == "Llama 3.1 8B Instruct"
    assert entry.provider is ProviderType.LLAMA_CPP
    assert entry.version == "3.1.0"
    assert (entry.context_window, entry.max_tokens) == (128000, 4096)
    assert entry.capabilities == [ModelCapability.CHAT_COMPLETION, ModelCapability.TEXT_GENERATION]
    assert entry.cost == ModelCost(
        input_tokens=Decimal(0), output_tokens=Decimal(0), currency="USD", per=1000, note="Self-hosted, no API costs"
    )
    assert entry.rate_limit == RateLimitConfig(
        requests_per_minute=1000, tokens_per_minute=100000, note="Limited by hardware capabilities"
    )
    assert entry.metadata == {
        "tags": ["self-hosted", "open-source", "local"],
        "modelFile": "llama-3.1-8b-instruct-q5_k_m.gguf",
        "quantization": "Q5_K_M",
        "fileSize": "5.73GB",
        "requiredRAM": "8GB",
        "apiEndpoint": "http://localhost:8080/v1/chat/completions",
    }
    assert registry.record_usage(entry.key, 5000, 1000, True) == Decimal(0)


def test_configuration_custom_model(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "### Custom Models" (Configuration Examples)."""
    registry, entry = _load_seed_config(make_registry, tmp_path, "custom")

    assert entry.key == "llama.cpp:my-custom-model"
    assert entry.name == "My Custom Model"
    assert entry.provider is ProviderType.LLAMA_CPP
    assert entry.version == "1.0.0"
    assert (entry.context_window, entry.max_tokens) == (8192, 2048)
    assert entry.capabilities == [ModelCapability.CHAT_COMPLETION]
    assert entry.cost == ModelCost(input_tokens=Decimal(0), output_tokens=Decimal(0), currency="USD", per=1000)
    assert entry.rate_limit == RateLimitConfig(requests_per_minute=500, tokens_per_minute=50000)
    assert entry.metadata == {
        "tags": ["custom"],
        "modelFile": "/path/to/my-model.gguf",
        "apiEndpoint": "http://localhost:8080/v1/chat/completions",
    }
    assert [m.key for m in registry.search_models(tags=["custom"])] == ["llama.cpp:my-custom-model"]


# --------------------------------------------------------------------------- Usage Examples


def test_usage_cost_monitoring_dashboard(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "### Cost Monitoring Dashboard" - load the saved registry and print the cost report."""
    path = tmp_path / "data" / "model-registry.json"
    producer = make_registry(persistence_path=path)
    producer.register_models([seed_model("llama"), seed_model("claude"), seed_model("openai")])
    producer.record_usage("openai:gpt-4-turbo-preview", 1500, 800, True)  # 0.039
    producer.record_usage("openai:gpt-4-turbo-preview", 100, 0, False)  # 0.001
    producer.record_usage("claude:claude-3-opus-20240229", 1000, 200, True)  # 0.030
    producer.record_usage("llama.cpp:llama-3.1-8b-instruct", 5000, 1000, True)  # free
    producer.save()

    registry = make_registry(persistence_path=path)
    # Load existing registry
    registry.load()

    def generate_cost_report() -> None:
        stats = registry.get_statistics()
        models = registry.list_models()

        print("\n=== Cost Report ===")
        print(f"Total Cost: ${stats.total_cost:.2f}")
        print(f"Total Input Tokens: {stats.total_input_tokens:,}")
        print(f"Total Output Tokens: {stats.total_output_tokens:,}")

        print("\n=== Cost by Model ===")
        for m in sorted(models, key=lambda m: m.usage_stats.total_cost, reverse=True):
            usage = m.usage_stats
            if usage and usage.total_cost > 0:
                print(f"{m.name}: ${usage.total_cost:.4f} ({usage.request_count} requests)")

    generate_cost_report()

    assert out_lines(capsys) == [
        "",
        "=== Cost Report ===",
        "Total Cost: $0.07",
        "Total Input Tokens: 7,600",
        "Total Output Tokens: 2,000",
        "",
        "=== Cost by Model ===",
        "GPT-4 Turbo: $0.0400 (2 requests)",
        "Claude 3 Opus: $0.0300 (1 requests)",
    ]


@dataclass
class FakeResponse:
    output_tokens: int
    text: str


def test_usage_rate_limit_protection_make_safe_request(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    """Seed: "### Rate Limit Protection" - makeSafeRequest: success, API failure, rate limited, over budget."""
    registry.register_model(samples.model(GPT4, rateLimit={"requestsPerMinute": 3, "tokensPerMinute": 40000}))
    budget_threshold = Decimal("0.10")
    api_calls: list[tuple[str, int]] = []
    api_failure: list[Exception] = []

    async def make_api_request(model_key: str, input_tokens: int) -> FakeResponse:
        api_calls.append((model_key, input_tokens))
        if api_failure:
            raise api_failure.pop()
        return FakeResponse(output_tokens=400, text="ok")

    async def make_safe_request(model_key: str, input_tokens: int, output_tokens: int) -> FakeResponse:
        # Check rate limits (tokens_to_send includes the expected output, as the contract asks)
        rate_limit_check = registry.check_rate_limit(model_key, input_tokens + output_tokens)
        if not rate_limit_check.allowed:
            raise RuntimeError(f"Rate limit exceeded: {rate_limit_check.reason}")

        # Estimate cost
        estimated_cost = registry.estimate_cost(model_key, input_tokens, output_tokens)
        if estimated_cost > budget_threshold:
            raise RuntimeError(f"Cost ${estimated_cost:.4f} exceeds budget")

        try:
            # Make actual API request
            response = await make_api_request(model_key, input_tokens)
        except Exception:
            # Record failed usage
            registry.record_usage(model_key, input_tokens, 0, False)
            raise
        # Record successful usage
        registry.record_usage(model_key, input_tokens, response.output_tokens, True)
        return response

    key = "openai:gpt-4"

    # Success: the response's output tokens are recorded (1000 * 0.01 + 400 * 0.03) / 1000 = 0.022.
    response = asyncio.run(make_safe_request(key, 1000, 500))
    assert response == FakeResponse(output_tokens=400, text="ok")
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.successful_requests, stats.total_output_tokens) == (1, 1, 400)
    assert stats.total_cost == Decimal("0.022")

    # Failure: the input tokens are charged as a failed request and the error propagates.
    api_failure.append(ConnectionError("upstream timeout"))
    with pytest.raises(ConnectionError, match="upstream timeout"):
        asyncio.run(make_safe_request(key, 1000, 500))
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert (stats.request_count, stats.failed_requests, stats.total_input_tokens) == (2, 1, 2000)
    assert stats.total_cost == Decimal("0.032")

    # Over budget: (3000 * 0.01 + 3000 * 0.03) / 1000 = 0.12 > 0.10; nothing is sent or recorded.
    with pytest.raises(RuntimeError, match=r"^Cost \$0\.1200 exceeds budget$"):
        asyncio.run(make_safe_request(key, 3000, 3000))
    assert len(api_calls) == 2

    # Third request of the minute passes; the fourth is rate limited before reaching the API.
    asyncio.run(make_safe_request(key, 1000, 500))
    assert len(api_calls) == 3
    with pytest.raises(RuntimeError, match=r"^Rate limit exceeded: requests per minute$"):
        asyncio.run(make_safe_request(key, 1000, 500))
    assert len(api_calls) == 3
    assert registry.get_usage_stats(key).request_count == 3  # type: ignore[union-attr]
    assert registry.check_rate_limit(key, 1500).retry_after == pytest.approx(60.0)

    # A minute later the window has moved on.
    clock.advance(60)
    asyncio.run(make_safe_request(key, 1000, 500))
    assert len(api_calls) == 4
    stats = registry.get_usage_stats(key)
    assert stats is not None
    assert stats.request_count == 4
    assert stats.total_cost == Decimal("0.076")  # 0.022 * 3 + 0.010


def test_usage_select_optimal_model_with_calculate_score(registry: EnhancedModelRegistry) -> None:
    """Seed: "### Model Selection Based on Cost and Performance" - selectOptimalModel and calculateScore."""

    def calculate_score(m: EnhancedModelRegistryEntry) -> float:
        metrics = m.performance_metrics
        assert metrics is not None
        success_score = metrics.success_rate * 0.4
        speed_score = min(metrics.tokens_per_second / 100, 1) * 0.3
        usage_score = min(metrics.total_inferences / 1000, 1) * 0.3
        return success_score + speed_score + usage_score

    def select_optimal_model(
        required_capability: ModelCapability, max_cost_per_token: Decimal, min_context_window: int
    ) -> EnhancedModelRegistryEntry:
        # Find models matching requirements
        candidates = registry.search_models(
            capability=required_capability,
            max_cost_per_token=max_cost_per_token,
            min_context_window=min_context_window,
            exclude_deprecated=True,
            status=ModelStatus.AVAILABLE,
        )
        if not candidates:
            raise LookupError("No suitable models found")

        # Sort by performance score (if metrics available) or cost
        def sign(x: float | Decimal) -> int:
            return (x > 0) - (x < 0)

        def compare(a: EnhancedModelRegistryEntry, b: EnhancedModelRegistryEntry) -> int:
            if a.performance_metrics is not None and b.performance_metrics is not None:
                return sign(calculate_score(b) - calculate_score(a))
            # Fallback to cost comparison
            cost_a = (a.cost.input_tokens + a.cost.output_tokens) / (2 * a.cost.per)
            cost_b = (b.cost.input_tokens + b.cost.output_tokens) / (2 * b.cost.per)
            return sign(cost_a - cost_b)

        ranked = sorted(candidates, key=functools.cmp_to_key(compare))
        return ranked[0]

    fc = ("chat_completion", "function_calling")
    registry.register_models(
        [
            simple_model(
                "gpt-4o-mini", input_price="0.00015", output_price="0.0006", capabilities=fc, context_window=128000
            ),
            simple_model(
                "claude-3-haiku",
                provider="claude",
                input_price="0.00025",
                output_price="0.00125",
                capabilities=fc,
                context_window=200000,
            ),
            simple_model("gpt-3.5-turbo", input_price="0", output_price="0", capabilities=fc, context_window=128000),
            simple_model("gpt-4o-loading", input_price="0", output_price="0", capabilities=fc, context_window=128000),
            simple_model(
                "claude-3-opus", provider="claude", input_price="0.015", output_price="0.075", capabilities=fc
            ),
            simple_model(
                "mistral", provider="custom", input_price="0.0001", output_price="0.0001", context_window=32000
            ),
            simple_model("llama", provider="llama.cpp", input_price="0", output_price="0", context_window=128000),
        ]
    )
    registry.update_performance_metrics(
        "openai:gpt-4o-mini", success_rate=0.95, tokens_per_second=45, total_inferences=1000
    )
    registry.update_performance_metrics(
        "claude:claude-3-haiku", success_rate=0.99, tokens_per_second=120, total_inferences=5000
    )
    # Perfect, but deprecated / not available: never chosen.
    for key in ("openai:gpt-3.5-turbo", "openai:gpt-4o-loading"):
        registry.update_performance_metrics(key, success_rate=1.0, tokens_per_second=500, total_inferences=9000)
    registry.update_model_status("openai:gpt-3.5-turbo", ModelStatus.DEPRECATED)
    registry.update_model_status("openai:gpt-4o-loading", ModelStatus.LOADING)

    haiku = registry.get_model("claude:claude-3-haiku")
    mini = registry.get_model("openai:gpt-4o-mini")
    assert haiku is not None
    assert mini is not None
    assert calculate_score(haiku) == pytest.approx(0.396 + 0.3 + 0.3)
    assert calculate_score(mini) == pytest.approx(0.38 + 0.135 + 0.3)

    # Both candidates have metrics: the best score wins although gpt-4o-mini is cheaper.
    best = select_optimal_model(ModelCapability.FUNCTION_CALLING, Decimal("0.00005"), 100000)
    assert best.key == "claude:claude-3-haiku"
    # The library's ranking uses the same score.
    assert [m.key for m in registry.get_top_performing_models()][:2] == [
        "openai:gpt-3.5-turbo",
        "openai:gpt-4o-loading",
    ]
    assert [m.key for m in registry.get_top_performing_models()][2:] == ["claude:claude-3-haiku", "openai:gpt-4o-mini"]

    # No candidate has metrics: the cheapest wins (llama is free, mistral is not).
    cheapest = select_optimal_model(ModelCapability.CHAT_COMPLETION, Decimal("0.0000001"), 32000)
    assert cheapest.key == "llama.cpp:llama"

    # Claude 3 Opus is too expensive for the budget and too small for the window.
    with pytest.raises(LookupError, match="No suitable models found"):
        select_optimal_model(ModelCapability.FUNCTION_CALLING, Decimal("0.00001"), 300000)


def test_usage_hot_reload_configuration(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "### Hot-Reload Configuration" - clearRegistry() + loadFromConfig() when the file changes."""
    config_path = write_models_config(tmp_path / "config" / "models-config.json", "openai", "claude")
    registry = make_registry(models_config_path=config_path)

    # Initial load
    asyncio.run(registry.aload_from_config())
    assert [m.key for m in registry.list_models()] == ["openai:gpt-4-turbo-preview", "claude:claude-3-opus-20240229"]
    registry.record_usage("openai:gpt-4-turbo-preview", 1000, 1000, True)

    # The watch callback, called directly instead of by a file watcher.
    async def on_config_change(event_type: str) -> None:
        if event_type == "change":
            print("Config file changed, reloading...")

            # Clear and reload
            registry.clear_registry()
            await registry.aload_from_config()

            print("Registry reloaded successfully")

    # The file is rewritten: a new price for GPT-4 Turbo, Claude removed, llama.cpp added.
    new_openai = seed_model("openai")
    new_openai["cost"]["inputTokens"] = "0.005"
    new_openai["cost"]["outputTokens"] = "0.015"
    write_json(config_path, [new_openai, seed_model("llama")])

    asyncio.run(on_config_change("rename"))  # not a change: nothing happens
    assert [m.key for m in registry.list_models()] == ["openai:gpt-4-turbo-preview", "claude:claude-3-opus-20240229"]
    assert out_lines(capsys) == []

    asyncio.run(on_config_change("change"))

    assert out_lines(capsys) == ["Config file changed, reloading...", "Registry reloaded successfully"]
    assert [m.key for m in registry.list_models()] == [
        "openai:gpt-4-turbo-preview",
        "llama.cpp:llama-3.1-8b-instruct",
    ]
    assert registry.estimate_cost("openai:gpt-4-turbo-preview", 1000, 1000) == Decimal("0.020")
    # clear_registry() dropped the usage recorded before the reload.
    assert registry.get_usage_stats("openai:gpt-4-turbo-preview").request_count == 0  # type: ignore[union-attr]
    assert registry.get_model("claude:claude-3-opus-20240229") is None


# --------------------------------------------------------------------------- Migration Guide


def test_migration_hardcoded_models_before() -> None:
    """Seed: "### From Hardcoded Models" - **Before:** a hardcoded dict and getModel(name)."""
    models = {
        "GPT4": {"id": "gpt-4", "provider": "openai", "contextWindow": 8192},
        "CLAUDE": {"id": "claude-3-opus", "provider": "claude", "contextWindow": 200000},
    }

    def get_model(name: str) -> dict[str, Any] | None:
        return models.get(name)

    assert get_model("GPT4") == {"id": "gpt-4", "provider": "openai", "contextWindow": 8192}
    assert get_model("CLAUDE") == {"id": "claude-3-opus", "provider": "claude", "contextWindow": 200000}
    assert get_model("LLAMA") is None


def test_migration_hardcoded_models_after(make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path) -> None:
    """Seed: "### From Hardcoded Models" - **After:** the registry with autoLoadConfig."""
    config_path = write_json(
        tmp_path / "config" / "models-config.json",
        {
            "models": [
                simple_model("gpt-4", context_window=8192),
                simple_model("claude-3-opus", provider="claude", context_window=200000),
            ]
        },
    )
    registry = make_registry(models_config_path=config_path, auto_load_config=True)

    def get_model(provider: ProviderType, model_id: str) -> EnhancedModelRegistryEntry | None:
        return registry.get_model_by_provider_and_id(provider, model_id)

    gpt4 = get_model(ProviderType.OPENAI, "gpt-4")
    claude = get_model(ProviderType.CLAUDE, "claude-3-opus")
    assert gpt4 is not None
    assert claude is not None
    assert (gpt4.id, gpt4.provider, gpt4.context_window) == ("gpt-4", "openai", 8192)
    assert (claude.id, claude.provider, claude.context_window) == ("claude-3-opus", "claude", 200000)
    assert get_model(ProviderType.OPENAI, "claude-3-opus") is None
    # Benefits: cost tracking is right there.
    assert registry.estimate_cost("openai:gpt-4", 1000, 1000) == Decimal("0.003")


def test_migration_legacy_model_registry_to_enhanced(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path
) -> None:
    """Seed: "### From Legacy ModelRegistry to EnhancedModelRegistry"."""
    # Old registry
    old_registry = ModelRegistry()
    assert json.loads(old_registry.export_to_json()) == []  # the seed's freshly created registry is empty
    old_registry.register_model({"id": "gpt-4", "provider": "openai", "contextWindow": 8192})
    old_registry.register_model(
        {"id": "claude-3-opus", "provider": "claude", "name": "Claude 3 Opus", "version": "3.0.0"}
    )

    # Export data
    data = old_registry.export_to_json()
    models = json.loads(data)

    # Migrate to enhanced registry
    path = tmp_path / "data" / "enhanced-model-registry.json"
    new_registry = make_registry(persistence_path=path)

    # Add cost and rate limit info during migration
    enhanced_models = [
        {
            **m,
            "version": m.get("version") or "1.0.0",
            "cost": {"inputTokens": 0.01, "outputTokens": 0.03, "currency": "USD", "per": 1000},
            "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 100000},
        }
        for m in models
    ]

    keys = new_registry.register_models(enhanced_models)
    asyncio.run(new_registry.asave())

    assert keys == ["openai:gpt-4", "claude:claude-3-opus"]
    assert path.is_file()
    reloaded = make_registry(persistence_path=path)
    assert reloaded.load() == 2
    gpt4, claude = reloaded.list_models()
    assert (gpt4.key, gpt4.name, gpt4.version, gpt4.context_window) == ("openai:gpt-4", "gpt-4", "1.0.0", 8192)
    assert (claude.key, claude.name, claude.version) == ("claude:claude-3-opus", "Claude 3 Opus", "3.0.0")
    for entry in (gpt4, claude):
        assert entry.cost == ModelCost(input_tokens=Decimal("0.01"), output_tokens=Decimal("0.03"))
        assert entry.rate_limit == RateLimitConfig(requests_per_minute=500, tokens_per_minute=100000)


# --------------------------------------------------------------------------- Events


def test_events_handlers_receive_payloads(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "## Events" - every event, handlers called as handler(sender, **payload) with snake_case keys."""
    config_path = write_models_config(tmp_path / "config" / "models-config.json", "openai")
    persistence_path = tmp_path / "data" / "model-registry.json"
    registry = make_registry(persistence_path=persistence_path, models_config_path=config_path)

    # Lambdas: held strongly, so they keep working after a garbage collection.
    registry.on("model-registered", lambda sender, key, model: print(f"Model registered: {key}"))
    registry.on("model-updated", lambda sender, key, model: print(f"Model updated: {key}"))
    registry.on("model-unregistered", lambda sender, key: print(f"Model unregistered: {key}"))
    registry.on(
        "usage-recorded",
        lambda sender, key, input_tokens, output_tokens, total_cost, **rest: print(f"Usage: {key} - ${total_cost:.4f}"),
    )
    registry.on("usage-reset", lambda sender, key: print(f"Usage reset: {key}"))
    registry.on(
        "config-loaded",
        lambda sender, path, model_count: print(f"Config loaded: {model_count} models from {path}"),
    )
    registry.on("registry-saved", lambda sender, path: print(f"Registry saved to {path}"))
    registry.on(
        "registry-loaded",
        lambda sender, path, model_count: print(f"Registry loaded: {model_count} models from {path}"),
    )
    gc.collect()

    payloads: list[tuple[object, dict[str, Any]]] = []
    registered: list[Any] = []
    registry.on("model-registered", lambda sender, **payload: registered.append(payload["model"]))

    @registry.on("usage-recorded")
    def capture(sender: object, **payload: Any) -> None:
        payloads.append((sender, payload))

    registry.load_from_config()
    assert out_lines(capsys) == [
        "Model registered: openai:gpt-4-turbo-preview",
        f"Config loaded: 1 models from {config_path}",
    ]

    registry.register_model(copy.deepcopy(CLAUDE_OPUS))
    registry.update_model_status("claude:claude-3-opus-20240229", ModelStatus.DEPRECATED)
    registry.record_usage("openai:gpt-4-turbo-preview", 1500, 800, True)
    registry.record_usage("openai:gpt-4-turbo-preview", 100, 0, False)
    registry.reset_usage_stats("openai:gpt-4-turbo-preview")
    registry.save()
    registry.unregister_model("claude:claude-3-opus-20240229")
    assert out_lines(capsys) == [
        "Model registered: claude:claude-3-opus-20240229",
        "Model updated: claude:claude-3-opus-20240229",
        "Usage: openai:gpt-4-turbo-preview - $0.0390",
        "Usage: openai:gpt-4-turbo-preview - $0.0400",
        "Usage reset: openai:gpt-4-turbo-preview",
        f"Registry saved to {persistence_path}",
        "Model unregistered: claude:claude-3-opus-20240229",
    ]

    # The model-registered payload carries the entry.
    assert [(type(m), m.key) for m in registered] == [
        (EnhancedModelRegistryEntry, "openai:gpt-4-turbo-preview"),
        (EnhancedModelRegistryEntry, "claude:claude-3-opus-20240229"),
    ]
    # Registering a key that exists is an update.
    registry.register_model(copy.deepcopy(GPT4_TURBO))
    assert out_lines(capsys) == ["Model updated: openai:gpt-4-turbo-preview"]

    registry.load()
    lines = out_lines(capsys)
    assert lines[-1] == f"Registry loaded: 2 models from {persistence_path}"

    # The full usage-recorded payload, snake_case, with this request's cost and the running total.
    assert payloads == [
        (
            registry,
            {
                "key": "openai:gpt-4-turbo-preview",
                "input_tokens": 1500,
                "output_tokens": 800,
                "cost": Decimal("0.039"),
                "total_cost": Decimal("0.039"),
            },
        ),
        (
            registry,
            {
                "key": "openai:gpt-4-turbo-preview",
                "input_tokens": 100,
                "output_tokens": 0,
                "cost": Decimal("0.001"),
                "total_cost": Decimal("0.040"),
            },
        ),
    ]
    registry.off("usage-recorded", capture)
    registry.record_usage("openai:gpt-4-turbo-preview", 1, 1, True)
    assert len(payloads) == 2
    with pytest.raises(ValueError, match="no-such-event"):
        registry.on("no-such-event", lambda sender, **payload: None)


# --------------------------------------------------------------------------- Troubleshooting


def test_troubleshooting_registry_not_persisting(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path
) -> None:
    """Seed: "### Registry not persisting" - the folder of persistencePath."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    registry = make_registry(persistence_path=data_dir / "model-registry.json")
    registry.register_model(copy.deepcopy(GPT4))
    registry.save()
    assert (data_dir / "model-registry.json").is_file()

    # save() creates a missing folder itself.
    nested = tmp_path / "does" / "not" / "exist" / "model-registry.json"
    assert not nested.parent.exists()
    registry_nested = make_registry(persistence_path=nested)
    registry_nested.register_model(copy.deepcopy(GPT4))
    registry_nested.save()
    assert nested.is_file()
    assert make_registry(persistence_path=nested).load() == 1


def test_troubleshooting_config_file_not_loading(
    registry: EnhancedModelRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "### Config file not loading" - bad JSON, invalid model and missing file."""
    registry.register_model(copy.deepcopy(GPT4))
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    bad_json = config_dir / "bad-json.json"
    bad_json.write_text('[{"id": "gpt-4",}]', encoding="utf-8")
    bad_model = write_json(
        config_dir / "bad-model.json", [simple_model("fine"), simple_model("odd", capabilities=("telepathy",))]
    )
    missing = config_dir / "missing.json"

    def try_load(config_path: Path) -> Exception | None:
        try:
            registry.load_from_config(config_path)
        except (ConfigError, PersistenceError) as error:
            print("Failed to load config:", error, file=sys.stderr)
            return error
        return None

    error = try_load(bad_json)
    assert isinstance(error, ConfigError)
    assert isinstance(error, ValueError)
    assert str(bad_json) in str(error)
    assert "line 1" in str(error)

    error = try_load(bad_model)
    assert isinstance(error, ConfigError)
    assert "capabilities" in str(error)
    assert "chat_completion" in str(error)  # the valid values are listed

    error = try_load(missing)
    assert isinstance(error, PersistenceError)
    assert isinstance(error, OSError)
    assert str(missing) in str(error)

    assert len(capsys.readouterr().err.splitlines()) == 3
    # Nothing was registered: all or nothing.
    assert [m.key for m in registry.list_models()] == ["openai:gpt-4"]


def test_troubleshooting_high_memory_usage_manual_save(
    make_registry: Callable[..., EnhancedModelRegistry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seed: "### High memory usage" - autoSave: false, then save periodically by hand."""
    path = tmp_path / "data" / "model-registry.json"
    registry = make_registry(persistence_path=path, auto_save=False)  # Manually save when needed
    registry.register_model(copy.deepcopy(GPT4))
    registry.record_usage("openai:gpt-4", 1500, 800, True)

    def save_periodically(target: EnhancedModelRegistry) -> None:
        # The setInterval callback, called directly instead of every 5 minutes.
        try:
            target.save()
        except PersistenceError as error:
            print(error, file=sys.stderr)

    # With auto_save=False nothing is written unless save() is called, not even by close().
    closed = make_registry(persistence_path=tmp_path / "other" / "registry.json", auto_save=False)
    closed.register_model(copy.deepcopy(GPT4))
    closed.close()
    assert not (tmp_path / "other").exists()
    assert not path.exists()

    save_periodically(registry)
    assert path.is_file()
    assert make_registry(persistence_path=path).load() == 1

    # A failing save is reported, not raised, by the periodic callback.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    broken = make_registry(persistence_path=blocker / "model-registry.json")
    broken.register_model(copy.deepcopy(GPT4))
    save_periodically(broken)
    assert str(blocker / "model-registry.json") in capsys.readouterr().err
