"""EnhancedModelRegistry: model management, usage, rate limits, search, rankings, statistics, metrics."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import (
    ConfigError,
    EnhancedModelRegistry,
    EnhancedModelRegistryConfig,
    EnhancedModelSearchQuery,
    ExtendedModelInfo,
    InvalidUsageError,
    InvalidVersionError,
    ModelCapability,
    ModelNotFoundError,
    ModelStatus,
    ProviderType,
)
from noa_ai_provider.testing import EventRecorder, FakeClock

from .samples import GPT4, LLAMA, OPUS, model

K_GPT, K_OPUS, K_LLAMA = (
    "openai:gpt-4-turbo-preview",
    "claude:claude-3-opus-20240229",
    "llama.cpp:llama-3.1-8b-instruct",
)


# ------------------------------------------------------------------ construction


def test_defaults_are_the_seeds(tmp_path: Path) -> None:
    with EnhancedModelRegistry(auto_save=False) as reg:
        assert reg.persistence_path == Path("./data/enhanced-model-registry.json")
        assert reg.models_config_path == Path("./config/models-config.json")
        assert reg.config.auto_save_interval == 60.0
        assert reg.config.auto_load_config is False


def test_config_object_and_camel_case_mapping(tmp_path: Path) -> None:
    cfg = EnhancedModelRegistryConfig(persistence_path=tmp_path / "a.json", auto_save=False)
    with EnhancedModelRegistry(config=cfg) as reg:
        assert reg.persistence_path == tmp_path / "a.json"
    with EnhancedModelRegistry(config={"persistencePath": str(tmp_path / "b.json"), "autoSave": False}) as reg:
        assert reg.persistence_path == tmp_path / "b.json"
    # An explicit keyword wins over config.
    with EnhancedModelRegistry(config=cfg, persistence_path=tmp_path / "c.json") as reg:
        assert reg.persistence_path == tmp_path / "c.json"


def test_constructor_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        EnhancedModelRegistry("./x.json")  # type: ignore[misc]


def test_bad_constructor_settings_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="auto_save_interval"):
        EnhancedModelRegistry(persistence_path=tmp_path / "x.json", auto_save_interval=-1)
    with pytest.raises(ConfigError, match="unknown field"):
        EnhancedModelRegistry(config={"persistencePth": "x"})


def test_auto_load_config_loads_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text('{"models": [' + __import__("json").dumps(GPT4) + "]}")
    with EnhancedModelRegistry(models_config_path=path, auto_load_config=True, auto_save=False) as reg:
        assert [e.key for e in reg.list_models()] == [K_GPT]


def test_auto_load_config_with_missing_file_raises(tmp_path: Path) -> None:
    from noa_ai_provider import PersistenceError

    with pytest.raises(PersistenceError, match="not found"):
        EnhancedModelRegistry(models_config_path=tmp_path / "nope.json", auto_load_config=True, auto_save=False)


# ------------------------------------------------------------------ model management


def test_register_returns_provider_colon_id(registry: EnhancedModelRegistry) -> None:
    assert registry.register_model(GPT4) == K_GPT
    assert registry.register_model(LLAMA) == K_LLAMA
    assert registry.register_model(model(provider="acme", id="m:1")) == "acme:m:1"


def test_register_accepts_model_instances_and_entries(registry: EnhancedModelRegistry) -> None:
    registry.register_model(ExtendedModelInfo.model_validate(GPT4))
    entry = registry.get_model(K_GPT)
    assert entry is not None
    other_key = registry.register_model(entry)  # an entry of another registry works too
    assert other_key == K_GPT


def test_registering_an_existing_key_replaces_definition_and_keeps_usage(
    registry: EnhancedModelRegistry, clock: FakeClock
) -> None:
    events = EventRecorder().attach(registry)
    registry.register_model(GPT4)
    registry.record_usage(K_GPT, 1000, 1000)
    registered_at = registry.list_models()[0].registered_at
    clock.advance(10)
    registry.register_model(model(name="GPT-4 Turbo v2", cost={"inputTokens": 1, "outputTokens": 1}))
    (entry,) = registry.list_models()
    assert entry.name == "GPT-4 Turbo v2"
    assert entry.usage_stats.request_count == 1
    assert entry.usage_stats.total_cost == Decimal("0.04")
    assert entry.registered_at == registered_at
    assert entry.updated_at > registered_at
    assert events.names() == ["model-registered", "usage-recorded", "model-updated"]


def test_register_models_is_all_or_nothing(registry: EnhancedModelRegistry) -> None:
    bad = model(OPUS, cost={"inputTokens": -1, "outputTokens": 0})
    with pytest.raises(ConfigError, match=r"models\[1\] \(id 'claude-3-opus-20240229'\): cost.inputTokens"):
        registry.register_models([GPT4, bad, LLAMA])
    assert registry.list_models() == []
    assert registry.register_models([GPT4, OPUS]) == [K_GPT, K_OPUS]


def test_register_rejects_non_models(registry: EnhancedModelRegistry) -> None:
    with pytest.raises(ConfigError, match="expected an object"):
        registry.register_model("gpt-4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        registry.register_models(GPT4)  # type: ignore[arg-type]


def test_get_model_records_an_access_and_the_snapshot_counts_it(
    loaded: EnhancedModelRegistry, clock: FakeClock
) -> None:
    first = loaded.get_model(K_GPT)
    assert first is not None
    assert first.access_count == 1
    assert first.last_accessed is not None
    assert first.last_accessed.timestamp() == clock()
    clock.advance(5)
    second = loaded.get_model_by_provider_and_id(ProviderType.OPENAI, "gpt-4-turbo-preview")
    assert second is not None
    assert second.access_count == 2
    assert loaded.get_model_by_provider_and_id("openai", "gpt-4-turbo-preview").access_count == 3  # type: ignore[union-attr]
    assert loaded.get_model("openai:nothing") is None
    # Listing records no access.
    assert [e.access_count for e in loaded.list_models()] == [3, 0, 0]


def test_snapshots_are_independent(loaded: EnhancedModelRegistry) -> None:
    entry = loaded.get_model(K_GPT)
    assert entry is not None
    entry.name = "changed"
    entry.metadata["tags"].append("mutated")
    entry.capabilities.append(ModelCapability.VISION)
    entry.cost.input_tokens = Decimal(99)
    entry.usage_stats.request_count = 42
    fresh = loaded.list_models()[0]
    assert fresh.name == "GPT-4 Turbo"
    assert fresh.metadata["tags"] == ["recommended", "production"]
    assert ModelCapability.VISION not in fresh.capabilities
    assert fresh.cost.input_tokens == Decimal("0.01")
    assert fresh.usage_stats.request_count == 0


def test_list_models_in_registration_order(registry: EnhancedModelRegistry) -> None:
    registry.register_models([LLAMA, GPT4, OPUS])
    registry.register_model(GPT4)  # replacing keeps the position
    assert [e.key for e in registry.list_models()] == [K_LLAMA, K_GPT, K_OPUS]


def test_update_model_replaces_fields_in_either_spelling(loaded: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(loaded)
    loaded.update_model(K_GPT, {"metadata": {"tags": ["production"], "customField": "value"}})
    loaded.update_model(K_GPT, {"contextWindow": 64000, "max_tokens": 2048})
    entry = loaded.list_models()[0]
    assert entry.metadata == {"tags": ["production"], "customField": "value"}
    assert (entry.context_window, entry.max_tokens) == (64000, 2048)
    assert events.names() == ["model-updated", "model-updated"]
    assert events.of("model-updated")[1]["model"].context_window == 64000


@pytest.mark.parametrize(
    ("updates", "words"),
    [
        ({"id": "other"}, "part of the key"),
        ({"provider": "claude"}, "part of the key"),
        ({"usageStats": {}}, "unknown model field"),
        ({"colour": "blue"}, "unknown model field"),
        ({"cost": {"inputTokens": -1, "outputTokens": 0}}, "cost.inputTokens"),
        ({"version": "banana"}, "version"),
    ],
)
def test_update_model_rejects_bad_updates_and_changes_nothing(
    loaded: EnhancedModelRegistry, updates: dict[str, object], words: str
) -> None:
    before = loaded.list_models()
    with pytest.raises(ConfigError, match=words):
        loaded.update_model(K_GPT, updates)
    assert loaded.list_models() == before


def test_update_unknown_key_raises_model_not_found(loaded: EnhancedModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError):
        loaded.update_model("openai:nope", {"name": "x"})
    with pytest.raises(KeyError):
        loaded.update_model_status("openai:nope", ModelStatus.DEPRECATED)


def test_update_model_status(loaded: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(loaded)
    loaded.update_model_status(K_GPT, ModelStatus.DEPRECATED)
    loaded.update_model_status(K_OPUS, "loaded")
    assert [e.status for e in loaded.list_models()] == [
        ModelStatus.DEPRECATED,
        ModelStatus.LOADED,
        ModelStatus.AVAILABLE,
    ]
    assert events.names() == ["model-updated", "model-updated"]
    with pytest.raises(ConfigError, match="unknown status 'gone'"):
        loaded.update_model_status(K_GPT, "gone")


def test_unregister_and_clear(loaded: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(loaded)
    assert loaded.unregister_model(K_GPT) is True
    assert loaded.unregister_model(K_GPT) is False
    assert events.of("model-unregistered") == [{"key": K_GPT}]
    loaded.clear_registry()
    assert loaded.list_models() == []
    assert events.names() == ["model-unregistered"] * 3


# ------------------------------------------------------------------ cost tracking


def test_record_usage_exact_decimal_and_counters(loaded: EnhancedModelRegistry) -> None:
    assert loaded.record_usage(K_GPT, 1500, 800, True) == Decimal("0.039")
    assert loaded.record_usage(K_GPT, 100, 0, False) == Decimal("0.001")
    stats = loaded.get_usage_stats(K_GPT)
    assert stats is not None
    assert stats.total_cost == Decimal("0.040")
    assert (stats.total_input_tokens, stats.total_output_tokens) == (1600, 800)
    assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (2, 1, 1)
    assert stats.currency == "USD"


def test_float_drift_does_not_happen(loaded: EnhancedModelRegistry) -> None:
    for _ in range(1000):
        loaded.record_usage(K_GPT, 1, 0)
    stats = loaded.get_usage_stats(K_GPT)
    assert stats is not None
    assert stats.total_cost == Decimal("0.01")


def test_usage_recorded_payload(loaded: EnhancedModelRegistry) -> None:
    events = EventRecorder().attach(loaded)
    loaded.record_usage(K_GPT, 1500, 800)
    loaded.record_usage(K_GPT, 1000, 0, success=False)
    assert events.of("usage-recorded") == [
        {
            "key": K_GPT,
            "input_tokens": 1500,
            "output_tokens": 800,
            "cost": Decimal("0.039"),
            "total_cost": Decimal("0.039"),
        },
        {
            "key": K_GPT,
            "input_tokens": 1000,
            "output_tokens": 0,
            "cost": Decimal("0.01"),
            "total_cost": Decimal("0.049"),
        },
    ]


@pytest.mark.parametrize("args", [(-1, 0), (0, -1), (1.5, 0), ("10", 0), (True, 0), (None, 0)])
def test_record_usage_rejects_bad_token_counts_and_records_nothing(
    loaded: EnhancedModelRegistry, args: tuple[object, object]
) -> None:
    with pytest.raises(InvalidUsageError):
        loaded.record_usage(K_GPT, *args)  # type: ignore[arg-type]
    stats = loaded.get_usage_stats(K_GPT)
    assert stats is not None
    assert stats.request_count == 0


def test_unknown_keys(loaded: EnhancedModelRegistry) -> None:
    for call in (
        lambda: loaded.record_usage("x:y", 1, 1),
        lambda: loaded.estimate_cost("x:y", 1, 1),
        lambda: loaded.reset_usage_stats("x:y"),
        lambda: loaded.check_rate_limit("x:y", 1),
        lambda: loaded.update_performance_metrics("x:y", success_rate=1),
    ):
        with pytest.raises(ModelNotFoundError) as caught:
            call()
        assert "x:y" in str(caught.value)
    assert loaded.get_usage_stats("x:y") is None
    assert loaded.get_model("x:y") is None


def test_estimate_cost_formula(loaded: EnhancedModelRegistry) -> None:
    assert loaded.estimate_cost(K_GPT, 2000, 1000) == Decimal("0.05")
    assert loaded.estimate_cost(K_OPUS, 200_000, 1) == Decimal("3.000075")  # the whole context window
    assert loaded.estimate_cost(K_LLAMA, 8192, 4096) == 0
    assert loaded.get_usage_stats(K_GPT).request_count == 0  # type: ignore[union-attr]


def test_reset_usage_stats_keeps_rate_limit_windows(loaded: EnhancedModelRegistry, clock: FakeClock) -> None:
    loaded.update_model(K_GPT, {"rateLimit": {"requestsPerMinute": 2}})
    loaded.record_usage(K_GPT, 10, 10)
    loaded.record_usage(K_GPT, 10, 10)
    events = EventRecorder().attach(loaded)
    clock.advance(1)
    loaded.reset_usage_stats(K_GPT)
    stats = loaded.get_usage_stats(K_GPT)
    assert stats is not None
    assert stats.request_count == 0
    assert stats.total_cost == 0
    assert stats.last_reset.timestamp() == clock()
    assert events.names() == ["usage-reset"]
    assert loaded.check_rate_limit(K_GPT, 0).allowed is False


# ------------------------------------------------------------------ rate limits


def test_rate_limit_reasons_and_retry_after(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(
        model(rateLimit={"requestsPerMinute": 2, "tokensPerMinute": 1000, "requestsPerDay": 3})
    )
    assert registry.check_rate_limit(key, 1000).allowed
    check = registry.check_rate_limit(key, 1001)
    assert (check.allowed, check.reason, check.retry_after) == (False, "tokens per minute", None)
    registry.record_usage(key, 600, 0)
    clock.advance(10)
    check = registry.check_rate_limit(key, 500)
    assert (check.allowed, check.reason) == (False, "tokens per minute")
    assert check.retry_after == pytest.approx(50)
    registry.record_usage(key, 1, 0)
    check = registry.check_rate_limit(key, 0)
    assert (check.allowed, check.reason, check.retry_after) == (False, "requests per minute", pytest.approx(50))
    clock.advance(50)  # the first request is exactly 60 s old: no longer counted
    assert registry.check_rate_limit(key, 0).allowed
    registry.record_usage(key, 1, 0)
    clock.advance(60)
    check = registry.check_rate_limit(key, 0)
    assert (check.allowed, check.reason) == (False, "requests per day")
    assert check.retry_after is not None
    assert 86_400 - 130 - 60 <= check.retry_after <= 86_400 - 120 + 60


def test_per_minute_window_is_exact_at_the_edges(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(model(rateLimit={"requestsPerMinute": 1}))
    registry.record_usage(key, 1, 1)
    clock.advance(59.9)
    assert not registry.check_rate_limit(key, 0).allowed
    clock.advance(0.2)
    assert registry.check_rate_limit(key, 0).allowed


def test_check_rate_limit_is_read_only(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(model(rateLimit={"requestsPerMinute": 1}))
    for _ in range(5):
        assert registry.check_rate_limit(key, 10).allowed


def test_model_without_rate_limit_is_always_allowed(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(model(rateLimit=None))
    for _ in range(100):
        registry.record_usage(key, 10**6, 10**6)
    assert registry.check_rate_limit(key, 10**9).allowed


def test_changing_limits_keeps_the_traffic_history(registry: EnhancedModelRegistry) -> None:
    key = registry.register_model(model(rateLimit={"requestsPerMinute": 10}))
    for _ in range(3):
        registry.record_usage(key, 1, 1)
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 3}})
    assert not registry.check_rate_limit(key, 0).allowed
    registry.update_model(key, {"rateLimit": {"requestsPerMinute": 4}})
    assert registry.check_rate_limit(key, 0).allowed


def test_check_rate_limit_rejects_bad_token_counts(loaded: EnhancedModelRegistry) -> None:
    with pytest.raises(InvalidUsageError):
        loaded.check_rate_limit(K_GPT, -5)


# ------------------------------------------------------------------ versions


def test_compare_versions(registry: EnhancedModelRegistry) -> None:
    assert registry.compare_versions("2.0.0", "1.5.0") == 1
    assert registry.compare_versions("1.5.0", "2.0.0") == -1
    assert registry.compare_versions("1.0", "1.0.0") == 0
    assert registry.compare_versions("1.10.0", "1.9.0") == 1
    with pytest.raises(InvalidVersionError):
        registry.compare_versions("one", "1.0.0")


def test_models_by_version_range_is_inclusive(loaded: EnhancedModelRegistry) -> None:
    assert [e.key for e in loaded.get_models_by_version_range("1.0.0", "3.0.0")] == [K_GPT, K_OPUS]
    assert [e.key for e in loaded.get_models_by_version_range("3.0.0", "3.1.0")] == [K_OPUS, K_LLAMA]
    assert loaded.get_models_by_version_range("4", "5") == []
    with pytest.raises(InvalidVersionError):
        loaded.get_models_by_version_range("x", "1")


# ------------------------------------------------------------------ search and rankings


def test_search_filters(loaded: EnhancedModelRegistry) -> None:
    def keys(**filters: object) -> list[str]:
        return [e.key for e in loaded.search_models(**filters)]

    assert keys() == [K_GPT, K_OPUS, K_LLAMA]
    assert keys(provider="claude") == [K_OPUS]
    assert keys(provider=ProviderType.LLAMA_CPP) == [K_LLAMA]
    assert keys(capability="vision") == [K_OPUS]
    assert keys(capability=ModelCapability.FUNCTION_CALLING) == [K_GPT, K_OPUS]
    assert keys(min_context_window=150000) == [K_OPUS]
    assert keys(max_context_window=128000) == [K_GPT, K_LLAMA]
    assert keys(name_pattern="LLAMA") == [K_LLAMA]
    assert keys(name_pattern=r"^claude-3") == [K_OPUS]  # the id counts too
    assert keys(tags=["recommended", "production"]) == [K_GPT]
    assert keys(tags=["recommended", "local"]) == []
    assert keys(max_cost_per_token=Decimal("0.00002")) == [K_GPT, K_LLAMA]  # (0.01+0.03)/2000 = 0.00002
    assert keys(max_cost_per_token=0.0000199) == [K_LLAMA]
    assert keys(min_version="3.0.0") == [K_OPUS, K_LLAMA]
    assert keys(max_version="3.0.0") == [K_GPT, K_OPUS]
    assert keys(status="available") == [K_GPT, K_OPUS, K_LLAMA]
    loaded.update_model_status(K_GPT, ModelStatus.DEPRECATED)
    assert keys(exclude_deprecated=True) == [K_OPUS, K_LLAMA]
    assert keys(provider="openai", exclude_deprecated=True) == []


def test_search_with_query_object_dict_and_keywords(loaded: EnhancedModelRegistry) -> None:
    query = EnhancedModelSearchQuery(capability=ModelCapability.CHAT_COMPLETION, min_context_window=150000)
    assert [e.key for e in loaded.search_models(query)] == [K_OPUS]
    assert [e.key for e in loaded.search_models({"minContextWindow": 150000})] == [K_OPUS]
    assert [e.key for e in loaded.search_models({"provider": "openai"}, provider="claude")] == [K_OPUS]


@pytest.mark.parametrize(
    ("filters", "words"),
    [
        ({"bogus": 1}, "bogus: unknown field"),
        ({"name_pattern": "("}, "invalid regular expression"),
        ({"capability": "telepathy"}, "capability"),
        ({"min_version": "x"}, "invalid version"),
        ({"min_context_window": "big"}, "integer"),
        ({"exclude_deprecated": "yes"}, "boolean"),
    ],
)
def test_search_rejects_bad_filters(loaded: EnhancedModelRegistry, filters: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        loaded.search_models(**filters)


def test_by_provider_and_capability(loaded: EnhancedModelRegistry) -> None:
    assert [e.key for e in loaded.get_models_by_provider(ProviderType.CLAUDE)] == [K_OPUS]
    assert [e.key for e in loaded.get_models_by_capability(ModelCapability.TEXT_GENERATION)] == [K_LLAMA]
    with pytest.raises(ConfigError):
        loaded.get_models_by_capability("telepathy")


def test_rankings(loaded: EnhancedModelRegistry) -> None:
    assert [e.key for e in loaded.get_most_cost_effective_models()] == [K_LLAMA, K_GPT, K_OPUS]
    assert [e.key for e in loaded.get_most_cost_effective_models(2)] == [K_LLAMA, K_GPT]
    assert loaded.get_most_cost_effective_models(0) == []
    with pytest.raises(ValueError, match="non-negative integer"):
        loaded.get_most_cost_effective_models(-1)

    loaded.record_usage(K_OPUS, 1, 1)
    loaded.record_usage(K_OPUS, 1, 1)
    loaded.record_usage(K_LLAMA, 1, 1)
    assert [e.key for e in loaded.get_most_used_models()] == [K_OPUS, K_LLAMA, K_GPT]
    assert [e.key for e in loaded.get_most_used_models(1)] == [K_OPUS]

    assert loaded.get_top_performing_models() == []
    loaded.update_performance_metrics(K_GPT, success_rate=0.99, tokens_per_second=45, total_inferences=1000)
    loaded.update_performance_metrics(K_LLAMA, success_rate=1.0, tokens_per_second=200, total_inferences=10)
    # scores: GPT 0.396 + 0.135 + 0.3 = 0.831; LLAMA 0.4 + 0.3 + 0.003 = 0.703
    assert [e.key for e in loaded.get_top_performing_models()] == [K_GPT, K_LLAMA]
    assert [e.key for e in loaded.get_top_performing_models(1)] == [K_GPT]


def test_ranking_ties_keep_registration_order(registry: EnhancedModelRegistry) -> None:
    keys = registry.register_models([model(id=f"m{i}") for i in range(5)])
    assert [e.key for e in registry.get_most_cost_effective_models()] == keys
    assert [e.key for e in registry.get_most_used_models()] == keys


# ------------------------------------------------------------------ statistics and metrics


def test_statistics(loaded: EnhancedModelRegistry) -> None:
    loaded.get_model(K_GPT)
    loaded.get_model(K_GPT)
    loaded.get_model(K_OPUS)
    loaded.record_usage(K_GPT, 1500, 800)
    loaded.record_usage(K_OPUS, 1000, 1000)
    loaded.update_model_status(K_LLAMA, "deprecated")
    stats = loaded.get_statistics()
    assert stats.total_models == 3
    assert stats.provider_counts == {"openai": 1, "claude": 1, "llama.cpp": 1}
    assert stats.capability_counts == {
        "chat_completion": 3,
        "function_calling": 2,
        "json_mode": 1,
        "vision": 1,
        "text_generation": 1,
    }
    assert stats.status_counts == {"available": 2, "deprecated": 1}
    assert stats.total_accesses == 3
    assert stats.average_access_count == 1.0
    assert stats.total_cost == Decimal("0.039") + Decimal("0.09")
    assert (stats.total_input_tokens, stats.total_output_tokens, stats.total_requests) == (2500, 1800, 2)
    assert stats.cost_by_currency == {"USD": Decimal("0.129")}


def test_statistics_of_an_empty_registry(registry: EnhancedModelRegistry) -> None:
    stats = registry.get_statistics()
    assert (stats.total_models, stats.average_access_count, stats.total_cost) == (0, 0.0, 0)


def test_performance_metrics_partial_updates(loaded: EnhancedModelRegistry, clock: FakeClock) -> None:
    loaded.update_performance_metrics(
        K_GPT,
        {
            "averageLatency": 250,
            "tokensPerSecond": 45,
            "totalInferences": 1000,
            "successRate": 0.99,
            "memoryUsage": 512,
        },
    )
    clock.advance(1)
    loaded.update_performance_metrics(K_GPT, average_latency=300.5)
    metrics = loaded.list_models()[0].performance_metrics
    assert metrics is not None
    assert (metrics.average_latency, metrics.tokens_per_second, metrics.total_inferences) == (300.5, 45.0, 1000)
    assert (metrics.success_rate, metrics.memory_usage) == (0.99, 512.0)
    assert metrics.last_updated is not None
    assert metrics.last_updated.timestamp() == clock()


@pytest.mark.parametrize(
    "fields",
    [
        {"success_rate": 1.5},
        {"success_rate": -0.1},
        {"average_latency": float("nan")},
        {"total_inferences": 1.5},
        {"speed": 1},
        {"tokens_per_second": "fast"},
    ],
)
def test_performance_metrics_validation_changes_nothing(
    loaded: EnhancedModelRegistry, fields: dict[str, object]
) -> None:
    loaded.update_performance_metrics(K_GPT, success_rate=0.5)
    with pytest.raises(ConfigError):
        loaded.update_performance_metrics(K_GPT, **fields)
    metrics = loaded.list_models()[0].performance_metrics
    assert metrics is not None
    assert metrics.success_rate == 0.5
    assert metrics.average_latency == 0


def test_len_contains_repr(loaded: EnhancedModelRegistry) -> None:
    assert len(loaded) == 3
    assert K_GPT in loaded
    assert "x" not in loaded
    assert "3 models" in repr(loaded)


def test_snapshots_are_complete_valid_models(loaded: EnhancedModelRegistry) -> None:
    from noa_ai_provider import EnhancedModelRegistryEntry

    loaded.record_usage(K_GPT, 10, 20)
    loaded.update_performance_metrics(K_GPT, success_rate=0.5)
    for entry in loaded.list_models():
        again = EnhancedModelRegistryEntry.model_validate(entry.model_dump())
        assert again == entry
        assert entry.model_fields_set == set(EnhancedModelRegistryEntry.model_fields)
        assert entry.model_copy(deep=True) == entry
        assert EnhancedModelRegistryEntry.model_validate_json(entry.model_dump_json()) == entry
