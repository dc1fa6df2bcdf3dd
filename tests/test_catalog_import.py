"""The registry's one-step catalogue imports: the same models and events as register_models(load_*_catalog(...)),
without the defensive copy, with the garbage collector paused and restored."""

from __future__ import annotations

import gc
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry
from noa_ai_provider.importers import CatalogLoad, load_genai_prices_catalog, load_litellm_catalog

TODAY = date(2025, 6, 1)

CATALOG: dict[str, Any] = {
    "sample_spec": {"input_cost_per_token": "see docs"},
    "gpt-4o": {
        "litellm_provider": "openai",
        "mode": "chat",
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
        "supports_function_calling": True,
        "supports_vision": True,
    },
    "gemini-1.5-pro": {
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
        "max_input_tokens": 2097152,
        "input_cost_per_token": 1.25e-06,
        "output_cost_per_token": 5e-06,
        "input_cost_per_token_above_128k_tokens": 2.5e-06,
        "output_cost_per_token_above_128k_tokens": 1e-05,
        "deprecation_date": "2025-01-01",
    },
    "claude-x": {  # a tier of output prices only, 1-hour cache writes, a priority tier stating one price
        "litellm_provider": "anthropic",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "input_cost_per_token_priority": 6e-06,
    },
    "fireworks_ai/accounts/fireworks/models/y": {  # cache reads at LiteLLM's default: half the input price
        "litellm_provider": "fireworks_ai",
        "input_cost_per_token": 9e-07,
        "output_cost_per_token": 9e-07,
    },
    "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 2e-08},
    "mystery": {"mode": "chat"},
}


def registry(tmp_path: Path) -> EnhancedModelRegistry:
    return EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)


def dumps(reg: EnhancedModelRegistry) -> list[dict[str, Any]]:
    return [m.model_dump(exclude={"registered_at", "updated_at", "usage_stats"}) for m in reg.list_models()]


def test_same_models_and_events_as_the_two_step_path(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CATALOG))
    one, two = registry(tmp_path), registry(tmp_path)
    seen: list[str] = []
    one.on("model-registered", lambda sender, **p: seen.append(p["key"]))
    result = one.import_litellm_catalog(path, today=TODAY)
    expected = load_litellm_catalog(path, today=TODAY)
    assert two.register_models(expected) == result.keys
    assert isinstance(result, CatalogLoad)
    assert (
        result.keys
        == seen
        == [
            "openai:gpt-4o",
            "vertex_ai-language-models:gemini-1.5-pro",
            "claude:claude-x",
            "fireworks_ai:fireworks_ai/accounts/fireworks/models/y",
            "openai:text-embedding-3-small",
        ]
    )
    assert [s.name for s in result.skipped] == ["sample_spec", "mystery"]
    assert dumps(one) == dumps(two)
    assert one.estimate_cost("vertex_ai-language-models:gemini-1.5-pro", 200_000, 1000) == two.estimate_cost(
        "vertex_ai-language-models:gemini-1.5-pro", 200_000, 1000
    )
    for registry_ in (one, two):
        # 200,001 in at $3 and 1,000 out at $22.50 per million (the output tier alone); 1-hour writes at $6
        assert registry_.estimate_cost("claude:claude-x", 200_001, 1000) == Decimal("0.622503")
        assert registry_.estimate_cost("claude:claude-x", 10_000, 0, cache_write_1h_tokens=2_000) == Decimal("0.036")
        assert registry_.estimate_cost("claude:claude-x", 1_000, 1_000, service_tier="priority") == Decimal("0.021")
        fireworks = "fireworks_ai:fireworks_ai/accounts/fireworks/models/y"
        assert registry_.estimate_cost(fireworks, 10_000, 0, cached_input_tokens=8_000) == Decimal("0.0054")


def test_the_registry_owns_what_it_imported(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    reg.import_litellm_catalog(CATALOG, today=TODAY)
    snapshot = reg.get_model("openai:gpt-4o")
    assert snapshot is not None
    snapshot.metadata["tags"] = ["changed"]
    snapshot.capabilities.clear()
    again = reg.get_model("openai:gpt-4o")
    assert again is not None
    assert again.capabilities
    assert again.metadata.get("tags") != ["changed"]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_restored(tmp_path: Path, enabled: bool) -> None:
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        registry(tmp_path).import_litellm_catalog(CATALOG, today=TODAY)
        assert gc.isenabled() is enabled
        bad = tmp_path / "bad.json"
        bad.write_text("[1, 2]")
        with pytest.raises(ConfigError):
            registry(tmp_path).import_litellm_catalog(bad, today=TODAY)  # fails inside: restored all the same
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


def test_an_unreadable_catalogue_registers_nothing(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError):
        reg.import_litellm_catalog(bad)
    assert len(reg) == 0


def test_genai_prices_in_one_step(tmp_path: Path) -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    one, two = registry(tmp_path), registry(tmp_path)
    result = one.import_genai_prices_catalog(at=at)
    catalog = load_genai_prices_catalog(at=at)
    assert two.register_models(catalog) == result.keys
    assert len(result.skipped) == len(catalog.skipped)
    assert dumps(one) == dumps(two)
