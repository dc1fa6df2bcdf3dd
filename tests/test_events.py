"""Events: per-registry signals, strong handlers, decorator form, payloads, failing handlers, lock released."""

from __future__ import annotations

import gc
import logging
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry

from .samples import GPT4

K_GPT = "openai:gpt-4-turbo-preview"


def test_lambda_handlers_are_held_strongly(registry: EnhancedModelRegistry) -> None:
    seen: list[str] = []
    registry.on("model-registered", lambda sender, key, model: seen.append(key))
    gc.collect()
    registry.register_model(GPT4)
    assert seen == [K_GPT]


def test_decorator_form_and_sender(registry: EnhancedModelRegistry) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []

    @registry.on("usage-recorded")
    def handler(sender: Any, **payload: Any) -> None:
        seen.append((sender, payload))

    registry.register_model(GPT4)
    registry.record_usage(K_GPT, 10, 10)
    assert seen[0][0] is registry
    assert set(seen[0][1]) == {"key", "input_tokens", "output_tokens", "cost", "total_cost"}
    assert handler.__name__ == "handler"  # the decorator returns the function


def test_off_disconnects(registry: EnhancedModelRegistry) -> None:
    seen: list[str] = []

    def handler(sender: Any, key: str, model: Any) -> None:
        seen.append(key)

    registry.on("model-registered", handler)
    registry.off("model-registered", handler)
    registry.register_model(GPT4)
    assert seen == []


def test_unknown_event_names_raise_value_error(registry: EnhancedModelRegistry) -> None:
    with pytest.raises(ValueError, match="unknown event 'model-created'"):
        registry.on("model-created", print)
    with pytest.raises(ValueError, match=r"known events: .*config-loaded"):
        registry.on("usage_recorded")
    with pytest.raises(ValueError, match="unknown event 'nope'"):
        registry.off("nope", print)


def test_handlers_belong_to_one_registry(tmp_path: Any) -> None:
    seen: list[str] = []
    with (
        EnhancedModelRegistry(persistence_path=tmp_path / "a.json", auto_save=False) as a,
        EnhancedModelRegistry(persistence_path=tmp_path / "b.json", auto_save=False) as b,
    ):
        a.on("model-registered", lambda sender, **kw: seen.append("a"))
        b.register_model(GPT4)
        assert seen == []
        a.register_model(GPT4)
        assert seen == ["a"]


def test_a_failing_handler_is_logged_and_does_not_stop_others_or_undo(
    registry: EnhancedModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(sender: Any, **payload: Any) -> None:
        raise RuntimeError("handler bug")

    registry.on("usage-recorded", broken)
    registry.on("usage-recorded", lambda sender, **kw: seen.append(kw["key"]))
    registry.register_model(GPT4)
    with caplog.at_level(logging.ERROR, logger="noa_ai_provider.events"):
        cost = registry.record_usage(K_GPT, 1000, 0)
    assert cost > 0
    assert seen == [K_GPT]
    assert registry.get_usage_stats(K_GPT).request_count == 1  # type: ignore[union-attr]
    assert "handler bug" in caplog.text


def test_handlers_run_after_the_lock_is_released(registry: EnhancedModelRegistry) -> None:
    inside: list[object] = []

    def reentrant(sender: EnhancedModelRegistry, **payload: Any) -> None:
        # Would deadlock if the registry's (non-reentrant) lock were still held.
        inside.append(sender.get_usage_stats(payload["key"]))
        inside.append(sender.list_models())

    registry.on("usage-recorded", reentrant)
    registry.register_model(GPT4)
    registry.record_usage(K_GPT, 1, 1)
    stats = inside[0]
    assert stats is not None
    assert stats.request_count == 1


def test_model_payload_is_a_snapshot(registry: EnhancedModelRegistry) -> None:
    models: list[Any] = []
    registry.on("model-registered", lambda sender, key, model: models.append(model))
    registry.register_model(GPT4)
    models[0].name = "changed"
    assert registry.list_models()[0].name == GPT4["name"]
