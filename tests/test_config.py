"""load_from_config: list or {"models": [...]}, all or nothing, errors naming file, index, id and field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, PersistenceError
from noa_ai_provider.config import bundled_config_path, read_models_config
from noa_ai_provider.testing import EventRecorder

from .samples import GPT4, LLAMA, OPUS, model


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_list_and_object_forms(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    events = EventRecorder().attach(registry)
    a = write(tmp_path / "a.json", [GPT4])
    b = write(tmp_path / "b.json", {"models": [OPUS, LLAMA]})
    assert registry.load_from_config(a) == 1
    assert registry.load_from_config(str(b)) == 2
    assert len(registry.list_models()) == 3
    assert events.of("config-loaded") == [
        {"path": str(a), "model_count": 1},
        {"path": str(b), "model_count": 2},
    ]
    assert events.names().count("model-registered") == 3


def test_default_path_is_models_config_path(registry: EnhancedModelRegistry) -> None:
    write(registry.models_config_path, {"models": [GPT4]})
    assert registry.load_from_config() == 1


def test_prices_in_files_are_exact_decimals(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        '[{"id": "m", "name": "M", "provider": "custom", "version": "1.0.0",'
        ' "cost": {"inputTokens": 0.1, "outputTokens": 0.2, "per": 3}}]'
    )
    registry.load_from_config(path)
    entry = registry.list_models()[0]
    assert str(entry.cost.input_tokens) == "0.1"
    assert registry.estimate_cost("custom:m", 3, 3) == Decimal("0.3")


def test_reload_keeps_usage_of_models_that_stay(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [GPT4])
    registry.load_from_config(path)
    registry.record_usage("openai:gpt-4-turbo-preview", 1000, 1000)
    write(path, [model(name="renamed")])
    registry.load_from_config(path)
    entry = registry.list_models()[0]
    assert entry.name == "renamed"
    assert entry.usage_stats.request_count == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{", "line 1, column 2"),
        ('{"models": [], "models": []}', "duplicate key"),
        ('[{"cost": {"inputTokens": NaN}}]', "NaN"),
        ('{"modles": []}', "unknown top-level"),
        ('{"description": "x"}', "missing field 'models'"),
        ('"models"', "expected a list"),
        ("[1]", r"models\[0\]: expected an object"),
    ],
)
def test_bad_files_raise_config_error_naming_the_file(
    registry: EnhancedModelRegistry, tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=words) as caught:
        registry.load_from_config(path)
    assert str(caught.value).startswith(str(path))


def test_one_bad_model_loads_none_and_names_index_id_and_field(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    registry.register_model(LLAMA)
    before = registry.list_models()
    path = write(tmp_path / "c.json", {"models": [GPT4, model(OPUS, rateLimit={"requestsPerMinut": 5})]})
    with pytest.raises(ConfigError) as caught:
        registry.load_from_config(path)
    assert str(caught.value) == (
        f"{path}: models[1] (id 'claude-3-opus-20240229'): "
        "rateLimit.requestsPerMinut: unknown field (not part of the schema)"
    )
    assert registry.list_models() == before


def test_missing_or_unreadable_files_raise_persistence_error(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    with pytest.raises(PersistenceError, match="not found"):
        registry.load_from_config(tmp_path / "missing.json")
    with pytest.raises(PersistenceError, match="cannot read"):
        registry.load_from_config(tmp_path)  # a folder


def test_size_cap(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [GPT4])
    with pytest.raises(PersistenceError, match="limit"):
        read_models_config(path, max_bytes=10)


def test_bundled_config_exists_and_loads(registry: EnhancedModelRegistry) -> None:
    path = bundled_config_path()
    assert path.is_file()
    assert registry.load_from_config(path) >= 4


async def _aload(registry: EnhancedModelRegistry, path: Path) -> int:
    return await registry.aload_from_config(path)


def test_async_load_from_config(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    import asyncio

    assert asyncio.run(_aload(registry, write(tmp_path / "c.json", [GPT4]))) == 1


def test_the_size_cap_is_configurable_on_the_registry(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", [GPT4])
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, max_config_bytes=100) as reg:
        with pytest.raises(PersistenceError, match="100-byte limit"):
            reg.load_from_config(path)
        assert reg.list_models() == []
    with pytest.raises(ConfigError, match="max_config_bytes"):
        EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, max_config_bytes=0)
