"""The legacy ModelRegistry and the seed's migration path to EnhancedModelRegistry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, ModelRegistry


def test_register_get_list_unregister() -> None:
    old = ModelRegistry()
    assert old.register_model({"id": "gpt-4", "provider": "openai", "contextWindow": 8192}) == "openai:gpt-4"
    info = old.get_model("openai:gpt-4")
    assert info is not None
    assert info.name == "gpt-4"
    assert info.context_window == 8192
    info.name = "changed"
    assert old.get_model("openai:gpt-4").name == "gpt-4"  # type: ignore[union-attr]
    assert [m.id for m in old.list_models()] == ["gpt-4"]
    assert old.unregister_model("openai:gpt-4") is True
    assert old.unregister_model("openai:gpt-4") is False


@pytest.mark.parametrize(
    "bad",
    [
        {"provider": "openai"},
        {"id": "x"},
        {"id": "x", "provider": "openai", "cost": {"inputTokens": 1}},
        {"id": "x", "provider": "openai", "version": "?"},
    ],
)
def test_invalid_models_raise(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ModelRegistry().register_model(bad)


def test_export_import_round_trip() -> None:
    old = ModelRegistry()
    old.register_model({"id": "gpt-4", "provider": "openai", "contextWindow": 8192})
    old.register_model({"id": "claude-3-opus", "provider": "claude", "name": "Claude 3 Opus", "contextWindow": 200000})
    text = old.export_to_json()
    assert json.loads(text) == [
        {
            "id": "gpt-4",
            "provider": "openai",
            "name": "gpt-4",
            "contextWindow": 8192,
            "capabilities": [],
            "metadata": {},
            "status": "available",
        },
        {
            "id": "claude-3-opus",
            "provider": "claude",
            "name": "Claude 3 Opus",
            "contextWindow": 200000,
            "capabilities": [],
            "metadata": {},
            "status": "available",
        },
    ]
    other = ModelRegistry()
    assert other.import_from_json(text) == 2
    assert [m.key if hasattr(m, "key") else m.id for m in other.list_models()] == ["gpt-4", "claude-3-opus"]
    with pytest.raises(ConfigError):
        other.import_from_json('[{"id": "x"}]')
    assert len(other.list_models()) == 2


def test_seed_migration(tmp_path: Path) -> None:
    old = ModelRegistry()
    old.register_model({"id": "gpt-4", "provider": "openai", "contextWindow": 8192})
    models = json.loads(old.export_to_json())
    enhanced = [
        {
            **m,
            "version": m.get("version") or "1.0.0",
            "cost": {"inputTokens": 0.01, "outputTokens": 0.03, "currency": "USD", "per": 1000},
            "rateLimit": {"requestsPerMinute": 500, "tokensPerMinute": 100000},
        }
        for m in models
    ]
    path = tmp_path / "data" / "enhanced-model-registry.json"
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as new:
        assert new.register_models(enhanced) == ["openai:gpt-4"]
        new.save()
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as check:
        assert check.load() == 1
        assert check.get_model("openai:gpt-4").rate_limit.requests_per_minute == 500  # type: ignore[union-attr]
