"""Validation of model definitions: camelCase and snake_case in, strict types, errors naming the field path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from noa_ai_provider import (
    ConfigError,
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    ModelCapability,
    ModelCost,
    ModelStatus,
    ProviderType,
    RateLimitConfig,
)
from noa_ai_provider.schemas import validate_or_raise

from .samples import GPT4, model


def check(data: dict[str, Any]) -> ExtendedModelInfo:
    return validate_or_raise(ExtendedModelInfo, data, "model")


def test_camel_case_in_snake_case_attributes_decimal_prices() -> None:
    info = check(GPT4)
    assert info.context_window == 128000
    assert info.max_tokens == 4096
    assert info.cost.input_tokens == Decimal("0.01")
    assert str(info.cost.input_tokens) == "0.01"  # exact, not 0.01000000000000000020816...
    assert info.cost.per == 1000
    assert info.rate_limit is not None
    assert info.rate_limit.requests_per_minute == 500
    assert info.provider is ProviderType.OPENAI
    assert info.capabilities == [
        ModelCapability.CHAT_COMPLETION,
        ModelCapability.FUNCTION_CALLING,
        ModelCapability.JSON_MODE,
    ]
    assert info.status is ModelStatus.AVAILABLE


def test_snake_case_input_is_accepted_too() -> None:
    data = model(context_window=8192, max_tokens=100, rate_limit={"requests_per_minute": 5})
    del data["contextWindow"], data["maxTokens"], data["rateLimit"]
    data["cost"] = {"input_tokens": "0.5", "output_tokens": 1, "per": 1_000_000}
    info = check(data)
    assert (info.context_window, info.max_tokens) == (8192, 100)
    assert info.cost.input_tokens == Decimal("0.5")
    assert info.rate_limit == RateLimitConfig(requests_per_minute=5)


def test_json_output_is_camel_case_with_exact_decimal_strings() -> None:
    dumped = check(GPT4).model_dump(mode="json")
    assert dumped["contextWindow"] == 128000
    assert dumped["cost"]["inputTokens"] == "0.01"
    assert dumped["rateLimit"]["requestsPerMinute"] == 500
    assert "context_window" not in dumped


def test_custom_provider_string_is_kept_and_known_values_become_the_enum() -> None:
    assert check(model(provider="mistral")).provider == "mistral"
    assert check(model(provider="llama.cpp")).provider is ProviderType.LLAMA_CPP


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"cost": {"inputTokens": float("nan"), "outputTokens": 1}}, "cost.inputTokens", "finite"),
        ({"cost": {"inputTokens": "Infinity", "outputTokens": 1}}, "cost.inputTokens", "finite"),
        ({"cost": {"inputTokens": -0.01, "outputTokens": 1}}, "cost.inputTokens", ">= 0"),
        ({"cost": {"inputTokens": 1, "outputTokens": "abc"}}, "cost.outputTokens", "decimal"),
        ({"cost": {"inputTokens": True, "outputTokens": 1}}, "cost.inputTokens", "boolean"),
        ({"cost": {"inputTokens": 1, "outputTokens": 1, "per": 0}}, "cost.per", "greater than 0"),
        ({"cost": {"inputTokens": 1, "outputTokens": 1, "per": -5}}, "cost.per", "greater than 0"),
        ({"cost": {"inputTokens": 1, "outputTokens": 1, "per": 1000.0}}, "cost.per", "integer"),
        ({"cost": {"inputToken": 1, "outputTokens": 1}}, "cost.inputToken", "unknown field"),
        ({"cost": {"inputTokens": 1, "outputTokens": 1, "cachedInput": 1}}, "cost.cachedInput", "unknown field"),
        ({"rateLimit": {"requestPerMinute": 5}}, "rateLimit.requestPerMinute", "unknown field"),
        ({"rateLimit": {"requestsPerMinute": 0}}, "rateLimit.requestsPerMinute", "greater than 0"),
        ({"rateLimit": {"requestsPerMinute": "500"}}, "rateLimit.requestsPerMinute", "integer"),
        ({"capabilities": ["chat_completion", "telepathy"]}, "capabilities[1]", "'vision'"),
        ({"capabilities": "chat_completion"}, "capabilities", "list"),
        ({"version": "not-a-version"}, "version", "invalid version"),
        ({"version": 1}, "version", "string"),
        ({"contextWindow": "128000"}, "contextWindow", "integer"),
        ({"contextWindow": True}, "contextWindow", "integer"),
        ({"contextWindow": 1.5}, "contextWindow", "integer"),
        ({"maxTokens": -1}, "maxTokens", "greater than 0"),
        ({"provider": ""}, "provider", "non-empty"),
        ({"provider": "open:ai"}, "provider", "':'"),
        ({"id": ""}, "id", "at least 1"),
        ({"status": "retired"}, "status", "'deprecated'"),
        ({"metadata": {"tags": "production"}}, "metadata", "tags must be a list"),
        ({"colour": "blue"}, "colour", "unknown field"),
    ],
)
def test_bad_input_names_the_field_path(changes: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check(model(**changes))
    message = str(caught.value)
    assert message.startswith("model: "), message
    assert f"{path}: " in message, message
    assert words in message, message


def test_unknown_capability_error_lists_every_valid_value() -> None:
    with pytest.raises(ConfigError) as caught:
        check(model(capabilities=["telepathy"]))
    for capability in ModelCapability:
        assert repr(capability.value) in str(caught.value)


@pytest.mark.parametrize("field", ["id", "name", "provider", "version", "cost"])
def test_missing_required_field(field: str) -> None:
    data = model()
    del data[field]
    with pytest.raises(ConfigError, match=f"{field}: required field is missing"):
        check(data)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid version"):
        check(model(version="x"))


def test_optional_fields_default() -> None:
    data = {
        "id": "m",
        "name": "M",
        "provider": "custom",
        "version": "1.0.0",
        "cost": {"inputTokens": 0, "outputTokens": 0},
    }
    info = check(data)
    assert info.context_window is None
    assert info.rate_limit is None
    assert info.capabilities == []
    assert info.metadata == {}
    assert info.cost.currency == "USD"
    assert info.cost.per == 1000


def test_duplicate_capabilities_are_merged_in_order() -> None:
    info = check(model(capabilities=["vision", "chat_completion", "vision"]))
    assert info.capabilities == [ModelCapability.VISION, ModelCapability.CHAT_COMPLETION]


def test_metadata_is_free_form() -> None:
    info = check(model(metadata={"anything": {"nested": [1, 2.5, None]}, "tags": []}))
    assert info.metadata["anything"] == {"nested": [1, 2.5, None]}


def test_an_instance_is_revalidated() -> None:
    info = check(GPT4)
    broken = ModelCost.model_construct(input_tokens=Decimal(-1), output_tokens=Decimal(1), currency="USD", per=1000)
    object.__setattr__(info, "cost", broken)
    with pytest.raises(ConfigError, match=r"cost\.input_tokens"):  # errors name the field as the input spelled it
        check(info)  # type: ignore[arg-type]


def test_assignment_is_validated_on_snapshots() -> None:
    info = check(GPT4)
    with pytest.raises(ValueError, match="valid integer"):
        info.context_window = "big"  # type: ignore[assignment]


def test_entry_requires_aware_datetimes() -> None:
    data = model(
        key="openai:gpt-4-turbo-preview",
        registeredAt="2024-01-01T00:00:00",
        updatedAt="2024-01-01T00:00:00Z",
        usageStats={"lastReset": "2024-01-01T00:00:00Z"},
    )
    with pytest.raises(ConfigError, match="registeredAt"):
        validate_or_raise(EnhancedModelRegistryEntry, data)


def test_integers_beyond_sane_bounds_are_rejected() -> None:
    with pytest.raises(ConfigError, match="contextWindow: Input should be less than or equal to"):
        check(model(contextWindow=2**64))
    with pytest.raises(ConfigError, match=r"rateLimit\.requestsPerMinute"):
        check(model(rateLimit={"requestsPerMinute": 10**30}))
