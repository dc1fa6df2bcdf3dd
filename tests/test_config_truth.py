"""The models-config file is the source of truth for definitions, the saved file for usage, whatever the order
they are read in."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import EventRecorder, FakeClock

M = 1_000_000


def definition(model_id: str, price: int | str) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id,
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": price, "outputTokens": price, "per": M},
    }


def write(path: Path, *models: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"models": list(models)}))
    return path


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Path]:
    """A saved registry of models a (price 1) and b (price 1) with usage, written from a config at price 1."""
    config = write(tmp_path / "models-config.json", definition("a", 1), definition("b", 1))
    path = tmp_path / "registry.json"
    clock = FakeClock(1_700_000_000)
    with EnhancedModelRegistry(
        persistence_path=path, models_config_path=config, auto_load_config=True, auto_save=False, clock=clock
    ) as registry:
        registry.record_usage("openai:a", 1_000_000, 0)  # $1
        registry.record_usage("openai:b", 1_000_000, 0)
        registry.save()
    return config, path


def test_a_price_edited_in_the_config_wins_after_a_restart(saved: tuple[Path, Path]) -> None:
    config, path = saved
    write(config, definition("a", 2), definition("b", 1))  # the price of a doubles
    clock = FakeClock(1_700_000_100)
    with EnhancedModelRegistry(
        persistence_path=path, models_config_path=config, auto_load_config=True, auto_save=False, clock=clock
    ) as registry:
        registry.load()  # the documented pattern: the config first (constructor), then the saved usage
        assert registry.estimate_cost("openai:a", 1_000_000, 0) == Decimal(2)
        stats = registry.get_usage_stats("openai:a")
        assert stats is not None
        assert (stats.request_count, stats.total_cost) == (1, Decimal(1))  # usage from the file
        registry.save()
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as reader:
        reader.load()
        assert reader.estimate_cost("openai:a", 1_000_000, 0) == Decimal(2)  # and the file now says so too


def test_the_config_wins_in_the_other_order_too(saved: tuple[Path, Path]) -> None:
    config, path = saved
    write(config, definition("a", 3), definition("b", 1))
    with EnhancedModelRegistry(persistence_path=path, models_config_path=config, auto_save=False) as registry:
        registry.load()
        registry.load_from_config()
        assert registry.estimate_cost("openai:a", 1_000_000, 0) == Decimal(3)
        registry.load()  # reading the file again does not bring the old price back
        assert registry.estimate_cost("openai:a", 1_000_000, 0) == Decimal(3)


def test_a_model_dropped_from_the_config_is_kept_and_reported(
    saved: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    config, path = saved
    write(config, definition("a", 1))  # b is gone from the config
    registry = EnhancedModelRegistry(
        persistence_path=path, models_config_path=config, auto_load_config=True, auto_save=False
    )
    events = EventRecorder().attach(registry)
    with caplog.at_level(logging.WARNING, logger="noa_ai_provider"):
        registry.load()
    assert events.of("model-not-in-config") == [{"key": "openai:b", "configs": [str(config.resolve())]}]
    assert any("openai:b" in r.getMessage() for r in caplog.records)
    stats = registry.get_usage_stats("openai:b")
    assert stats is not None
    assert stats.total_cost == Decimal(1)  # kept, with its usage
    registry.load()
    assert len(events.of("model-not-in-config")) == 1  # reported once
    registry.close()


def test_a_merging_save_keeps_the_configs_definitions(saved: tuple[Path, Path]) -> None:
    config, path = saved
    write(config, definition("a", 2), definition("b", 1))
    clock = FakeClock(1_700_000_100)
    fresh = EnhancedModelRegistry(
        persistence_path=path, models_config_path=config, auto_load_config=True, auto_save=False, clock=clock
    )
    fresh.load()
    # Another writer, without the config, redefines a later with the old price and saves.
    other = EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=FakeClock(1_700_000_200))
    other.load()
    other.register_model(definition("a", 1))
    other.save()
    fresh.record_usage("openai:b", 10, 0)
    fresh.save()  # merges the other writer's file
    assert fresh.estimate_cost("openai:a", 1_000_000, 0) == Decimal(2)
    fresh.close()
    other.close()


def test_load_does_not_bring_back_a_model_removed_since_the_last_save(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    clock = FakeClock(1_700_000_000)
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=clock) as registry:
        registry.register_model(definition("a", 1))
        registry.register_model(definition("b", 1))
        registry.save()
        clock.advance(1)
        registry.unregister_model("openai:a")
        registry.load()
        assert "openai:a" not in registry
        assert "openai:b" in registry
        registry.save()
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as reader:
        reader.load()
        assert "openai:a" not in reader
