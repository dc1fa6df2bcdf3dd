"""All or nothing, always: a duplicate key or a value that would fail later is a ConfigError naming the file, the
index, the id and the field, raised before any model is applied, by every way models come in."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry
from noa_ai_provider.testing import EventRecorder

from .samples import GPT4, model

pytestmark = pytest.mark.usefixtures("store")  # every test runs on every store (conftest.STORES)


def define(model_id: str, **changes: Any) -> dict[str, Any]:
    return model(id=model_id, name=model_id, **changes)


HOSTILE_TEXT = {
    # A JSON fragment for one model's fields, and what the error must name.
    "huge exponent price": ('"cost": {"inputTokens": 1e999999999, "outputTokens": 1}', "cost.inputTokens"),
    "tiny exponent price": ('"cost": {"inputTokens": 1e-999999999, "outputTokens": 1}', "cost.inputTokens"),
    "5,000-digit price": ('"cost": {"inputTokens": ' + "9" * 5000 + ', "outputTokens": 1}', "cost.inputTokens"),
    "5,000-digit context": ('"contextWindow": ' + "9" * 5000, "contextWindow"),
    "5,000-digit limit": ('"rateLimit": {"requestsPerMinute": ' + "1" * 5000 + "}", "rateLimit.requestsPerMinute"),
    "price of 100 digits": ('"cost": {"inputTokens": 0.' + "1" * 100 + ', "outputTokens": 1}', "cost.inputTokens"),
    "5,000-digit metadata": ('"metadata": {"n": ' + "9" * 5000 + "}", "metadata"),
    "tier price overflow": (
        '"cost": {"inputTokens": 1, "outputTokens": 1, "tiers": [{"aboveInputTokens": 10, "outputTokens": 1e400}]}',
        "cost.tiers",
    ),
}


def config_text(fields: str) -> str:
    good = json.dumps(define("good"))
    cost = "" if '"cost"' in fields else '"cost": null, '
    bad = '{"id": "bad", "name": "Bad", "provider": "openai", "version": "1.0.0", ' + cost + fields + "}"
    return '{"models": [' + good + ", " + bad + "]}"


@pytest.mark.parametrize("case", list(HOSTILE_TEXT))
def test_a_value_that_would_fail_later_is_refused_before_anything_is_applied(
    registry: EnhancedModelRegistry, events: EventRecorder, tmp_path: Path, case: str
) -> None:
    fields, field = HOSTILE_TEXT[case]
    path = tmp_path / "models-config.json"
    path.write_text(config_text(fields))
    registry.register_model(GPT4)
    with pytest.raises(ConfigError) as info:
        registry.load_from_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: models[1] (id 'bad'): {field}"), message
    assert len(message) < 400  # a 5,000-digit value is not repeated in full
    assert [e.key for e in registry.list_models()] == ["openai:gpt-4-turbo-preview"]
    assert events.names() == ["model-registered"]
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        registry.import_from_json('{"models": [' + config_text(fields).split('"models": [', 1)[1])


def test_recover_and_hot_reload_treat_it_as_a_bad_file(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    path = tmp_path / "models-config.json"
    path.write_text(json.dumps({"models": [define("good")]}))
    assert registry.load_from_config(path) == 1
    events = EventRecorder().attach(registry)
    with registry.watch_config(path, interval=0.01, debounce=0.02):
        path.write_text(config_text(HOSTILE_TEXT["huge exponent price"][0]))
        deadline = time.monotonic() + 10
        while not events.of("config-reload-failed") and time.monotonic() < deadline:
            time.sleep(0.01)
    failed = events.of("config-reload-failed")
    assert failed
    assert "cost.inputTokens" in str(failed[0]["error"])
    assert [e.key for e in registry.list_models()] == ["openai:good"]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([define("a"), define("a")], "models[1] (id 'a'): duplicates models[0] (key openai:a)"),
        ([define("a"), define("b"), define("a", provider="OpenAI")], "models[2] (id 'a'): duplicates models[0]"),
        ([define("a", provider="anthropic"), define("a", provider="claude")], "(key claude:a)"),
    ],
)
def test_duplicate_keys_in_one_batch_are_refused(
    registry: EnhancedModelRegistry, tmp_path: Path, models: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        registry.register_models(models)
    assert message in str(info.value)
    assert len(registry) == 0
    path = tmp_path / "models-config.json"
    path.write_text(json.dumps({"models": models}))
    with pytest.raises(ConfigError) as info:
        registry.load_from_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert len(registry) == 0


def test_the_same_model_in_two_calls_is_a_redefinition(registry: EnhancedModelRegistry) -> None:
    registry.register_models([define("a")])
    registry.register_models([define("a", version="2.0.0")])
    entry = registry.get_model("openai:a")
    assert entry is not None
    assert entry.version == "2.0.0"
