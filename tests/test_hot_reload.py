"""watch_config: in-place writes, write-then-rename, bad files, removed models whose cost still counts."""

from __future__ import annotations

import json
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry

from .samples import GPT4, LLAMA, OPUS, model

K_GPT, K_OPUS, K_LLAMA = (
    "openai:gpt-4-turbo-preview",
    "claude:claude-3-opus-20240229",
    "llama.cpp:llama-3.1-8b-instruct",
)


class Events:
    def __init__(self, registry: EnhancedModelRegistry) -> None:
        self.reloaded: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self._changed = threading.Event()
        registry.on("config-reloaded", self._on_reloaded)
        registry.on("config-reload-failed", self._on_failed)

    def _on_reloaded(self, sender: object, **payload: Any) -> None:
        self.reloaded.append(payload)
        self._changed.set()

    def _on_failed(self, sender: object, **payload: Any) -> None:
        self.failed.append(payload)
        self._changed.set()

    def wait(self, count: int, kind: str = "reloaded") -> None:
        deadline = time.monotonic() + 10
        while len(getattr(self, kind)) < count:
            assert time.monotonic() < deadline, f"no {kind} event after 10 s"
            self._changed.wait(0.05)
            self._changed.clear()


def write(path: Path, models: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"models": models}))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "models-config.json"
    write(path, [GPT4, OPUS])
    return path


@pytest.mark.timeout(60)
def test_in_place_write_applies_changes_and_keeps_usage(registry: EnhancedModelRegistry, config: Path) -> None:
    registry.load_from_config(config)
    registry.record_usage(K_GPT, 1500, 800)
    registry.record_usage(K_OPUS, 1000, 1000)  # 0.015 + 0.075 = 0.09
    before = registry.get_statistics()
    events = Events(registry)
    with registry.watch_config(config, interval=0.02, debounce=0.05) as watcher:
        time.sleep(0.1)  # the first poll sees the file as it was loaded: nothing to do
        assert events.reloaded == []
        write(config, [model(name="GPT-4 Turbo (renamed)"), LLAMA])  # OPUS removed, LLAMA added
        events.wait(1)
        assert watcher.alive
    assert events.reloaded == [{"path": str(config), "added": [K_LLAMA], "updated": [K_GPT], "removed": [K_OPUS]}]
    entry = registry.get_model(K_GPT)
    assert entry is not None
    assert entry.name == "GPT-4 Turbo (renamed)"
    assert entry.usage_stats.request_count == 1
    assert entry.usage_stats.total_cost == Decimal("0.039")
    assert registry.get_model(K_OPUS) is None
    stats = registry.get_statistics()
    assert stats.total_cost == before.total_cost == Decimal("0.129")  # OPUS's cost still counts
    assert (stats.total_input_tokens, stats.total_output_tokens) == (2500, 1800)
    assert stats.total_models == 2


@pytest.mark.timeout(60)
def test_write_then_rename_is_noticed(registry: EnhancedModelRegistry, config: Path) -> None:
    registry.load_from_config(config)
    events = Events(registry)
    with registry.watch_config(config, interval=0.02, debounce=0.05):
        tmp = config.with_name("models-config.json.tmp")
        write(tmp, [GPT4, OPUS, LLAMA])
        os.replace(tmp, config)
        events.wait(1)
    assert events.reloaded[0]["added"] == [K_LLAMA]
    assert events.reloaded[0]["removed"] == []


@pytest.mark.timeout(60)
def test_a_bad_file_changes_nothing_and_a_fixed_one_applies(registry: EnhancedModelRegistry, config: Path) -> None:
    registry.load_from_config(config)
    before = registry.list_models()
    events = Events(registry)
    with registry.watch_config(config, interval=0.02, debounce=0.05):
        write(config, [GPT4, model(OPUS, cost={"inputTokens": -1, "outputTokens": 0})])
        events.wait(1, "failed")
        assert isinstance(events.failed[0]["error"], ConfigError)
        assert "cost.inputTokens" in str(events.failed[0]["error"])
        assert registry.list_models() == before
        write(config, [GPT4])
        events.wait(1)
    assert events.reloaded[0]["removed"] == [K_OPUS]
    assert [e.key for e in registry.list_models()] == [K_GPT]


@pytest.mark.timeout(60)
def test_watching_a_file_not_loaded_before_loads_it(registry: EnhancedModelRegistry, config: Path) -> None:
    events = Events(registry)
    with registry.watch_config(config, interval=0.02, debounce=0.05):
        assert [e.key for e in registry.list_models()] == [K_GPT, K_OPUS]
        assert events.reloaded[0]["added"] == [K_GPT, K_OPUS]


def test_close_stops_the_watchers(tmp_path: Path, config: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    reg = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, models_config_path=config)
    watcher = reg.watch_config(interval=0.02)
    assert watcher.alive
    reg.close()
    assert not watcher.alive
    watcher.stop()  # idempotent
    assert {t.ident for t in threading.enumerate()} <= before
