"""Catalogue importers: LiteLLM's price list and the genai-prices package, on small catalogues written here."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from noa_ai_provider import (
    ConfigError,
    EnhancedModelRegistry,
    ExtendedModelInfo,
    ModelCapability,
    ModelStatus,
    PersistenceError,
    ProviderType,
)
from noa_ai_provider.cost import request_cost, request_rates
from noa_ai_provider.importers import (
    CatalogImport,
    SkippedEntry,
    common,
    load_genai_prices_catalog,
    load_litellm_catalog,
)
from noa_ai_provider.importers import litellm as litellm_importer
from noa_ai_provider.schemas import MAX_INT, ModelCost, PriceTier, ServiceTierPrices, schema_shape

TODAY = date(2025, 6, 1)
M = 1_000_000


def entry(**fields: Any) -> dict[str, Any]:
    """A LiteLLM chat entry priced 2.5/10 per million tokens, with ``fields`` added or replaced."""
    base: dict[str, Any] = {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def load(catalog: dict[str, Any], today: date = TODAY) -> CatalogImport:
    return load_litellm_catalog(catalog, today=today)


def one(catalog_entry: dict[str, Any], name: str = "m") -> ExtendedModelInfo:
    result = load({name: catalog_entry})
    assert result.skipped == []
    [model] = result
    return model


def skipped(catalog_entry: Any, name: str = "m") -> str:
    result = load({name: catalog_entry})
    assert list(result) == []
    [skip] = result.skipped
    assert skip.name == name
    return skip.reason


# ------------------------------------------------------------------ prices


def test_prices_per_token_become_exact_prices_per_million() -> None:
    model = one(entry(input_cost_per_token=2.5e-06, output_cost_per_token=1e-05))
    assert model.cost is not None
    assert model.cost.input_tokens == Decimal("2.5")
    assert model.cost.output_tokens == Decimal("10")
    assert (str(model.cost.input_tokens), str(model.cost.output_tokens)) == ("2.5", "10")  # normalised, no E+1
    assert model.cost.per == M
    assert model.cost.currency == "USD"
    assert model.cost.tiers is None
    assert model.cost.service_tiers is None


@pytest.mark.parametrize(
    ("per_token", "per_million"),
    [
        (1.5e-08, "0.015"),
        (3e-07, "0.3"),
        (0.00012, "120"),
        (1.1e-07, "0.11"),  # 1.1e-07 * 1e6 is 0.10999999999999999 in floats
        (0, "0"),
        (0.0, "0"),
        (2, "2000000"),
    ],
)
def test_price_conversion_is_exact(per_token: float, per_million: str) -> None:
    model = one(entry(input_cost_per_token=per_token))
    assert model.cost is not None
    assert model.cost.input_tokens == Decimal(per_million)
    assert str(model.cost.input_tokens) == per_million


def test_cache_prices() -> None:
    model = one(entry(cache_read_input_token_cost=1.25e-06, cache_creation_input_token_cost=3.75e-06))
    assert model.cost is not None
    assert model.cost.cached_input_tokens == Decimal("1.25")
    assert model.cost.cache_write_tokens == Decimal("3.75")
    assert "cache_read_input_token_cost" not in model.metadata["litellm"]


def test_cache_prices_default_to_none_and_explicit_zero_stays_zero() -> None:
    model = one(entry(cache_creation_input_token_cost=0.0))
    assert model.cost is not None
    assert model.cost.cached_input_tokens is None
    assert model.cost.cache_write_tokens == Decimal(0)


def test_long_context_tiers() -> None:
    model = one(
        entry(
            input_cost_per_token=3e-06,
            output_cost_per_token=1.5e-05,
            cache_read_input_token_cost=3e-07,
            cache_creation_input_token_cost=3.75e-06,
            input_cost_per_token_above_200k_tokens=6e-06,
            output_cost_per_token_above_200k_tokens=2.25e-05,
            cache_read_input_token_cost_above_200k_tokens=6e-07,
            cache_creation_input_token_cost_above_200k_tokens=7.5e-06,
            input_cost_per_token_above_128k_tokens=4e-06,  # only an input price: the others carry upward
        )
    )
    assert model.cost is not None
    # each tier states only the prices the entry gives at its threshold; the engine carries the others upward
    assert model.cost.tiers == [
        PriceTier(above_input_tokens=128_000, input_tokens=Decimal(4)),
        PriceTier(
            above_input_tokens=200_000,
            input_tokens=Decimal(6),
            output_tokens=Decimal("22.5"),
            cached_input_tokens=Decimal("0.6"),
            cache_write_tokens=Decimal("7.5"),
        ),
    ]
    assert not any("above" in key for key in model.metadata["litellm"])


def test_threshold_without_k_and_xai_inclusive_thresholds() -> None:
    plain = one(entry(input_cost_per_token_above_128_tokens=5e-06))
    assert plain.cost is not None
    assert plain.cost.tiers is not None
    assert plain.cost.tiers[0].above_input_tokens == 128
    xai = one(entry(litellm_provider="xai", input_cost_per_token_above_128k_tokens=5e-06))
    assert xai.cost is not None
    assert xai.cost.tiers is not None
    assert xai.cost.tiers[0].above_input_tokens == 127_999  # LiteLLM bills xAI's tier from 128k tokens on


def test_each_kind_starts_its_own_tier() -> None:
    # LiteLLM applies a kind's price above a threshold whether or not the threshold has an input price
    model = one(
        entry(
            input_cost_per_token=1e-06,
            output_cost_per_token=2e-06,
            output_cost_per_token_above_32k_tokens=1.8e-05,
            cache_read_input_token_cost_above_200k_tokens=6e-07,
            input_cost_per_token_above_200k_tokens=3e-06,
            cache_creation_input_token_cost_above_1hr_above_64k_tokens=5e-06,
        )
    )
    assert model.cost is not None
    assert model.cost.tiers == [
        PriceTier(above_input_tokens=32_000, output_tokens=Decimal(18)),
        PriceTier(above_input_tokens=64_000, cache_write_1h_tokens=Decimal(5)),
        PriceTier(above_input_tokens=200_000, input_tokens=Decimal(3), cached_input_tokens=Decimal("0.6")),
    ]
    assert model.metadata["litellm"] == {}
    assert request_cost(model.cost, 40_000, 1_000) == Decimal("0.058")  # was 0.042 with the output price ignored


def test_xai_thresholds_of_every_kind_are_inclusive() -> None:
    model = one(entry(litellm_provider="xai", output_cost_per_token_above_128k_tokens=2e-05))
    assert model.cost is not None
    assert model.cost.tiers == [PriceTier(above_input_tokens=127_999, output_tokens=Decimal(20))]


def test_service_tiers() -> None:
    model = one(
        entry(
            cache_read_input_token_cost=1.25e-06,
            input_cost_per_token_batches=1.25e-06,
            output_cost_per_token_batches=5e-06,
            input_cost_per_token_flex=1.25e-06,
            output_cost_per_token_flex=5e-06,
            cache_read_input_token_cost_flex=6.25e-07,
            input_cost_per_token_priority=4.25e-06,  # no output price: the standard one applies
            input_cost_per_token_ultrafast=9e-06,  # a tier we do not model
        )
    )
    assert model.cost is not None
    # only the prices the entry states: the engine falls back to the standard ones as LiteLLM does
    assert model.cost.service_tiers == {
        "batch": ServiceTierPrices(input_tokens=Decimal("1.25"), output_tokens=Decimal(5)),
        "flex": ServiceTierPrices(
            input_tokens=Decimal("1.25"), output_tokens=Decimal(5), cached_input_tokens=Decimal("0.625")
        ),
        "priority": ServiceTierPrices(input_tokens=Decimal("4.25")),
    }
    rates = request_rates(model.cost, 1_000, "priority")
    assert (rates.input, rates.output, rates.cache_read) == (Decimal("4.25"), Decimal(10), Decimal("1.25"))
    assert model.metadata["litellm"] == {"input_cost_per_token_ultrafast": 9e-06}


def test_service_tier_long_context_tiers_come_from_its_own_keys() -> None:
    model = one(
        entry(
            input_cost_per_token=5e-06,
            output_cost_per_token=3e-05,
            input_cost_per_token_above_272k_tokens=1e-05,
            output_cost_per_token_above_272k_tokens=4.5e-05,
            input_cost_per_token_priority=1e-05,
            output_cost_per_token_priority=6e-05,
            input_cost_per_token_above_272k_tokens_priority=2e-05,
            output_cost_per_token_above_272k_tokens_priority=9e-05,
            input_cost_per_token_batches=2.5e-06,
            output_cost_per_token_batches=1.5e-05,
        )
    )
    assert model.cost is not None
    assert model.cost.service_tiers is not None
    priority = model.cost.service_tiers["priority"]
    assert priority.tiers == [
        PriceTier(above_input_tokens=272_000, input_tokens=Decimal(20), output_tokens=Decimal(90))
    ]
    assert model.cost.service_tiers["batch"].tiers is None


def test_a_service_tier_with_only_a_cache_price_prices_that_kind_only() -> None:
    # LiteLLM bills a flex request at this cache price and the standard input and output prices
    model = one(entry(cache_read_input_token_cost_flex=1e-07))
    assert model.cost is not None
    assert model.cost.service_tiers == {"flex": ServiceTierPrices(cached_input_tokens=Decimal("0.1"))}
    assert model.metadata["litellm"] == {}
    rates = request_rates(model.cost, 1_000, "flex")
    assert (rates.input, rates.output, rates.cache_read) == (Decimal("2.5"), Decimal(10), Decimal("0.1"))


def test_service_tier_long_context_prices_of_any_kind_and_one_hour_writes() -> None:
    model = one(
        entry(
            cache_creation_input_token_cost=3.75e-06,
            cache_creation_input_token_cost_above_1hr=6e-06,
            cache_creation_input_token_cost_above_1hr_priority=1e-05,
            output_cost_per_token_above_272k_tokens_priority=9e-05,
            cache_read_input_token_cost_above_272k_tokens_batches=1e-07,
        )
    )
    assert model.cost is not None
    assert model.cost.cache_write_1h_tokens == Decimal(6)
    assert model.cost.service_tiers == {
        "priority": ServiceTierPrices(
            cache_write_1h_tokens=Decimal(10),
            tiers=[PriceTier(above_input_tokens=272_000, output_tokens=Decimal(90))],
        ),
        "batch": ServiceTierPrices(tiers=[PriceTier(above_input_tokens=272_000, cached_input_tokens=Decimal("0.1"))]),
    }
    assert model.metadata["litellm"] == {}


def test_tiered_pricing_ranges() -> None:
    tiered = [
        {"input_cost_per_token": 2.5e-07, "output_cost_per_token": 2e-06, "range": [256000.0, 1000000.0]},
        {"input_cost_per_token": 5e-08, "output_cost_per_token": 4e-07, "range": [0, 256000.0]},
    ]
    model = one(entry(input_cost_per_token=None, output_cost_per_token=None, tiered_pricing=tiered))
    assert model.cost is not None
    assert (model.cost.input_tokens, model.cost.output_tokens) == (Decimal("0.05"), Decimal("0.4"))
    assert model.cost.tiers == [
        PriceTier(above_input_tokens=256_000, input_tokens=Decimal("0.25"), output_tokens=Decimal(2))
    ]
    assert "tiered_pricing" not in model.metadata["litellm"]


def test_tiered_pricing_with_other_prices_is_also_kept_in_metadata() -> None:
    tiered = [
        {"input_cost_per_token": 1e-06, "output_cost_per_reasoning_token": 8e-06, "range": [0, 32000]},
        {"input_cost_per_token": 2e-06, "range": [32000, 128000]},
    ]
    model = one(entry(input_cost_per_token=None, tiered_pricing=tiered))  # outputs: the model's own price
    assert model.cost is not None
    assert model.cost.output_tokens == Decimal(10)
    assert model.cost.tiers == [
        PriceTier(above_input_tokens=32_000, input_tokens=Decimal(2), output_tokens=Decimal(10))
    ]
    assert model.metadata["litellm"]["tiered_pricing"] == tiered


def test_a_range_without_a_cache_price_bills_its_own_input_price() -> None:
    # LiteLLM bills a range's missing cache price at that range's input price (a 1-hour write at its write price),
    # not at a lower range's: the tier states it where the engine would otherwise carry the lower price upward
    tiered = [
        {
            "range": [0, 32000],
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 4e-06,
            "cache_read_input_token_cost": 1e-07,
            "cache_creation_input_token_cost": 1.25e-06,
            "cache_creation_input_token_cost_above_1hr": 2e-06,
        },
        {"range": [32000, 128000], "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06},
        {
            "range": [128000, 256000],
            "input_cost_per_token": 3e-06,
            "output_cost_per_token": 1.2e-05,
            "cache_creation_input_token_cost": 4e-06,
        },
    ]
    model = one(entry(input_cost_per_token=None, output_cost_per_token=None, tiered_pricing=tiered))
    assert model.cost is not None
    assert model.cost.cache_write_1h_tokens == Decimal(2)
    assert model.cost.tiers == [
        PriceTier(
            above_input_tokens=32_000,
            input_tokens=Decimal(2),
            output_tokens=Decimal(8),
            cached_input_tokens=Decimal(2),
            cache_write_tokens=Decimal(2),
            cache_write_1h_tokens=Decimal(2),
        ),
        PriceTier(
            above_input_tokens=128_000,
            input_tokens=Decimal(3),
            output_tokens=Decimal(12),
            cached_input_tokens=Decimal(3),
            cache_write_tokens=Decimal(4),
            cache_write_1h_tokens=Decimal(4),
        ),
    ]
    first = {"range": [0, 128000], "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06}
    plain = one(entry(input_cost_per_token=None, output_cost_per_token=None, tiered_pricing=[first, tiered[2]]))
    assert plain.cost is not None
    assert plain.cost.tiers == [  # nothing to carry from below the first range: nothing stated
        PriceTier(
            above_input_tokens=128_000,
            input_tokens=Decimal(3),
            output_tokens=Decimal(12),
            cache_write_tokens=Decimal(4),
        )
    ]


def test_per_query_tiered_pricing_is_metadata_only() -> None:
    tiered = [{"input_cost_per_query": 0.005, "max_results_range": [0, 25]}]
    model = one(entry(input_cost_per_token=None, output_cost_per_token=None, mode="search", tiered_pricing=tiered))
    assert model.cost is None
    assert model.metadata["litellm"] == {"tiered_pricing": tiered}


@pytest.mark.parametrize(
    ("tiered", "reason"),
    [
        ([{"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06, "range": [10, 20]}], "must start at 0"),
        (
            [
                {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06, "range": [0, 10]},
                {"input_cost_per_token": 2e-06, "output_cost_per_token": 1e-06, "range": [20, 30]},
            ],
            "gap or overlap at 20",
        ),
        ([{"output_cost_per_token": 1e-06, "range": [0, 10]}], r"tiered_pricing\[0\]: no input_cost_per_token"),
        ([{"input_cost_per_token": -1e-06, "range": [0, 10]}], r"tiered_pricing\[0\]\.input_cost_per_token: .*>= 0"),
        ([{"input_cost_per_token": 1e-06, "range": [0, 10.5]}], "whole number"),
    ],
)
def test_bad_tiered_pricing_skips_the_entry(tiered: list[dict[str, Any]], reason: str) -> None:
    assert re.search(reason, skipped(entry(tiered_pricing=tiered)))


def test_fireworks_entries_without_a_cache_read_price_get_litellms_default() -> None:
    model = one(entry(litellm_provider="fireworks_ai", input_cost_per_token=9e-07, output_cost_per_token=9e-07))
    assert model.cost is not None
    assert model.cost.cached_input_tokens == Decimal("0.45")  # half the input price, as LiteLLM bills them
    assert "50%" in model.metadata["price_note"]
    assert "fireworks_ai" in model.metadata["price_note"]
    own = one(entry(litellm_provider="fireworks_ai", cache_read_input_token_cost=1e-07))
    assert own.cost is not None
    assert own.cost.cached_input_tokens == Decimal("0.1")
    assert "price_note" not in own.metadata
    long_context = one(entry(litellm_provider="fireworks_ai", input_cost_per_token_above_128k_tokens=5e-06))
    assert long_context.cost is not None  # the default is a base price; the tier's reads carry it upward
    assert long_context.cost.cached_input_tokens == Decimal("1.25")
    tiered = [
        {"range": [0, 1000], "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
        {"range": [1000, 5000], "input_cost_per_token": 2e-06, "output_cost_per_token": 2e-06},
    ]
    ranges = one(entry(litellm_provider="fireworks_ai", tiered_pricing=tiered))
    assert ranges.cost is not None  # LiteLLM's ranges bill reads at each range's input price: no default
    assert ranges.cost.cached_input_tokens is None
    assert "price_note" not in ranges.metadata
    assert one(entry(litellm_provider="fireworks_ai", output_cost_per_token=None)).cost is None


# ------------------------------------------------------------------ unpriced, embeddings


def test_an_entry_without_prices_is_unpriced() -> None:
    model = one(entry(input_cost_per_token=None, output_cost_per_token=None, mode="image_generation"))
    assert model.cost is None
    assert model.status is ModelStatus.AVAILABLE


def test_an_entry_with_one_price_is_unpriced_and_keeps_it_in_metadata() -> None:
    model = one(entry(output_cost_per_token=None, mode="image_generation", output_cost_per_image=0.04))
    assert model.cost is None
    assert model.metadata["litellm"] == {"input_cost_per_token": 2.5e-06, "output_cost_per_image": 0.04}


def test_an_embedding_model_with_only_an_input_price_has_free_outputs() -> None:
    model = one(entry(mode="embedding", input_cost_per_token=1e-07, output_cost_per_token=None))
    assert model.cost is not None
    assert (model.cost.input_tokens, model.cost.output_tokens) == (Decimal("0.1"), Decimal(0))
    assert model.cost.note is not None
    assert "embeddings" in model.cost.note
    assert model.capabilities == [ModelCapability.EMBEDDINGS]


# ------------------------------------------------------------------ other fields


def test_limits() -> None:
    model = one(entry(max_input_tokens=128000, max_output_tokens=16384, max_tokens=16384))
    assert (model.context_window, model.max_tokens) == (128000, 16384)
    assert "max_tokens" not in model.metadata["litellm"]
    legacy = one(entry(max_tokens=8192))
    assert (legacy.context_window, legacy.max_tokens) == (8192, None)


def test_a_zero_limit_means_unknown() -> None:
    model = one(entry(max_input_tokens=0, max_output_tokens=0, max_tokens=4096))
    assert (model.context_window, model.max_tokens) == (None, None)
    assert model.metadata["litellm"] == {"max_input_tokens": 0, "max_output_tokens": 0}


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", ProviderType.OPENAI),
        ("anthropic", ProviderType.CLAUDE),
        ("vertex_ai-language-models", "vertex_ai-language-models"),
        ("bedrock:converse", "bedrock-converse"),
    ],
)
def test_provider_mapping(provider: str, expected: str) -> None:
    model = one(entry(litellm_provider=provider), name="vendor/model:v1")
    assert model.provider == expected
    assert (model.id, model.name, model.version) == ("vendor/model:v1", "vendor/model:v1", "1.0.0")


@pytest.mark.parametrize(
    ("mode", "capability"),
    [
        ("chat", ModelCapability.CHAT_COMPLETION),
        ("responses", ModelCapability.CHAT_COMPLETION),
        ("completion", ModelCapability.TEXT_GENERATION),
        ("embedding", ModelCapability.EMBEDDINGS),
    ],
)
def test_mode_capabilities(mode: str, capability: ModelCapability) -> None:
    assert one(entry(mode=mode)).capabilities == [capability]


def test_flag_capabilities_and_tags() -> None:
    model = one(
        entry(
            supports_function_calling=True,
            supports_vision=True,
            supports_response_schema=True,
            supports_native_streaming=True,
            supports_reasoning=True,
            supports_prompt_caching=False,
            supports_pdf_input=True,
        )
    )
    assert model.capabilities == [
        ModelCapability.CHAT_COMPLETION,
        ModelCapability.FUNCTION_CALLING,
        ModelCapability.VISION,
        ModelCapability.JSON_MODE,
        ModelCapability.STREAMING,
    ]
    assert model.metadata["tags"] == ["reasoning", "pdf-input"]
    assert model.metadata["litellm"] == {
        "supports_reasoning": True,
        "supports_prompt_caching": False,
        "supports_pdf_input": True,
    }
    assert one(entry(mode=None, supports_vision=False)).capabilities == []


def test_metadata_keeps_the_unmapped_fields() -> None:
    model = one(
        entry(
            source="https://example.com/pricing",
            supported_endpoints=["/v1/chat/completions"],
            input_cost_per_audio_token=4e-05,
            search_context_cost_per_query={"search_context_size_low": 0.03},
            cache_creation_input_token_cost_above_12hr=6e-06,  # no 12-hour writes in our prices
            metadata={"notes": "x"},
            rpm=10000,
        )
    )
    assert model.metadata == {
        "source": "litellm",
        "mode": "chat",
        "litellm": {
            "source": "https://example.com/pricing",
            "supported_endpoints": ["/v1/chat/completions"],
            "input_cost_per_audio_token": 4e-05,
            "search_context_cost_per_query": {"search_context_size_low": 0.03},
            "cache_creation_input_token_cost_above_12hr": 6e-06,
            "metadata": {"notes": "x"},
            "rpm": 10000,
        },
    }
    assert model.rate_limit is None


@pytest.mark.parametrize(
    ("deprecation", "status"),
    [
        ("2025-05-31", ModelStatus.DEPRECATED),
        ("2025-06-01", ModelStatus.DEPRECATED),  # deprecated from that day on
        ("2025-06-02", ModelStatus.AVAILABLE),
    ],
)
def test_deprecation_date_against_an_injected_today(deprecation: str, status: ModelStatus) -> None:
    model = one(entry(deprecation_date=deprecation))
    assert model.status is status
    assert model.metadata["deprecation_date"] == deprecation
    later = load({"m": entry(deprecation_date=deprecation)}, today=datetime(2030, 1, 1, tzinfo=UTC))
    assert later[0].status is ModelStatus.DEPRECATED


def test_aliases_import_the_entry_they_name() -> None:
    catalog = {
        "claude-x-latest": {"alias_of": "claude-x-1"},
        "claude-x-1": entry(litellm_provider="anthropic"),
        "chain": {"alias_of": "claude-x-latest"},
    }
    result = load(catalog)
    assert result.skipped == []
    latest, target, chain = result
    assert (latest.id, latest.provider, latest.cost) == ("claude-x-latest", ProviderType.CLAUDE, target.cost)
    assert latest.metadata["alias_of"] == "claude-x-1"
    assert chain.metadata["alias_of"] == "claude-x-1"


def test_an_alias_does_not_share_metadata_with_its_target(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    catalog = {"latest": {"alias_of": "v1"}, "v1": entry(supported_endpoints=["/v1/chat/completions"])}
    path.write_text(json.dumps(catalog), encoding="utf-8")
    latest, target = load_litellm_catalog(path, today=TODAY)
    latest.metadata["litellm"]["supported_endpoints"].append("/v1/batch")
    assert target.metadata["litellm"]["supported_endpoints"] == ["/v1/chat/completions"]


# ------------------------------------------------------------------ skipped entries


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry(input_cost_per_token=-1e-06), "input_cost_per_token: must be >= 0, got -0.000001"),
        (entry(output_cost_per_token="0.00001"), "output_cost_per_token: must be a number, got str '0.00001'"),
        (entry(input_cost_per_token=float("nan")), "input_cost_per_token: must be finite, got nan"),
        (entry(input_cost_per_token=True), "input_cost_per_token: must be a number, got bool True"),
        (entry(input_cost_per_token_batches=[1]), "input_cost_per_token_batches: must be a number, got list [1]"),
        (entry(max_input_tokens="128k"), "max_input_tokens: must be a whole number, got str '128k'"),
        (entry(max_output_tokens=-5), "max_output_tokens: must be >= 0, got -5"),
        (entry(max_input_tokens=1.5), "max_input_tokens: must be a whole number, got float 1.5"),
        (entry(deprecation_date="soon"), "deprecation_date: must be a YYYY-MM-DD date, got str 'soon'"),
        (entry(deprecation_date="2025-02-30"), "deprecation_date: not a valid date, got '2025-02-30'"),
        (entry(supports_vision="yes"), "supports_vision: must be true or false, got str 'yes'"),
        (entry(mode=3), "mode: must be a string, got int 3"),
        (entry(litellm_provider=None), "no litellm_provider"),
        (entry(litellm_provider=" "), "litellm_provider: must be a non-empty string, got str ' '"),
        ({"alias_of": "nowhere"}, "alias_of 'nowhere': no such entry in the catalogue"),
        ({"alias_of": "m"}, "alias_of 'm': the aliases form a loop"),
        ("not an entry", "expected an object, got str 'not an entry'"),
    ],
)
def test_bad_entries_are_skipped_with_the_reason(bad: Any, reason: str) -> None:
    assert skipped(bad) == reason


def test_schema_violations_are_skipped_with_the_schema_message() -> None:
    result = load({"": entry()})
    assert list(result) == []
    [skip] = result.skipped
    assert skip.name == ""
    assert skip.reason.startswith("invalid: ")
    assert "id" in skip.reason


def test_sample_spec_is_skipped_and_the_rest_imported() -> None:
    catalog = {
        "sample_spec": {"max_input_tokens": "max input tokens, if the provider specifies it", "mode": "one of: chat"},
        "good": entry(),
        "bad": entry(input_cost_per_token=-1.0),
        "unpriced": entry(input_cost_per_token=None, output_cost_per_token=None),
    }
    result = load(catalog)
    assert isinstance(result, list)
    assert [m.id for m in result] == ["good", "unpriced"]
    assert [s.name for s in result.skipped] == ["sample_spec", "bad"]
    assert "documents LiteLLM's fields" in result.skipped[0].reason
    assert all(isinstance(s, SkippedEntry) for s in result.skipped)


# ------------------------------------------------------------------ sources


def test_path_and_mapping_give_the_same_models(tmp_path: Path) -> None:
    catalog = {
        "gpt-x": entry(cache_read_input_token_cost=1.25e-06, input_cost_per_token_above_200k_tokens=5e-06),
        "emb": entry(mode="embedding", output_cost_per_token=None, supported_endpoints=["/v1/embeddings"]),
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(catalog), encoding="utf-8")
    from_path = load_litellm_catalog(path, today=TODAY)
    from_str = load_litellm_catalog(str(path), today=TODAY)
    from_mapping = load(catalog)
    assert from_path == from_mapping == from_str
    # jsonio reads JSON numbers exactly (as Decimal): the unmapped numbers in metadata are Decimals
    assert from_path[1].metadata["litellm"] == {"supported_endpoints": ["/v1/embeddings"]}
    assert from_path[0].cost is not None
    assert from_path[0].cost.cached_input_tokens == Decimal("1.25")


def test_values_read_from_json_stay_exact_beyond_float_precision(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        '{"m": {"litellm_provider": "openai", "input_cost_per_token": 0.0000012345678901234567890123,'
        ' "output_cost_per_token": 1e-05}}',
        encoding="utf-8",
    )
    [model] = load_litellm_catalog(path, today=TODAY)
    assert model.cost is not None
    assert model.cost.input_tokens == Decimal("1.2345678901234567890123")


def test_the_callers_mapping_is_neither_changed_nor_shared() -> None:
    endpoints = ["/v1/chat/completions"]
    catalog = {"m": entry(supported_endpoints=endpoints)}
    before = json.dumps(catalog)
    [model] = load(catalog)
    assert json.dumps(catalog) == before
    model.metadata["litellm"]["supported_endpoints"].append("/v1/batch")
    assert endpoints == ["/v1/chat/completions"]


def test_duplicate_keys_in_the_json_text_keep_the_first(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        '{"a": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},'
        ' "b": {"litellm_provider": "openai", "mode": "chat", "mode": "completion"},'
        ' "a": {"litellm_provider": "openai", "input_cost_per_token": 9e-06, "output_cost_per_token": 9e-06},'
        ' "c": {"litellm_provider": "openai", "tiered_pricing": [{"range": [0, 1], "range": [0, 2]}]}}',
        encoding="utf-8",
    )
    result = load_litellm_catalog(path, today=TODAY)
    [a] = result
    assert a.cost is not None
    assert a.cost.input_tokens == Decimal(1)
    assert [(s.name, s.reason) for s in result.skipped] == [
        ("b", "duplicate key 'mode' inside the entry"),
        ("c", "duplicate key 'range' inside the entry"),
        ("a", "duplicate key in the JSON text: the first entry with it was kept"),
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"a": 1,}', "invalid JSON at line 1"),
        ('{"a": NaN, "a": 1}', "not allowed"),
        ("[1, 2]", "expected a JSON object of model entries, got list"),
        ("[" * 70 + "]" * 70, "nested"),
        ('{"a": 1, "a": 2, "b": ' + "[" * 70 + "]" * 70 + "}", "duplicate key 'a'"),  # too deep as well
    ],
)
def test_unreadable_catalogues_raise(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_litellm_catalog(path)


def test_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(PersistenceError, match="no such file"):
        load_litellm_catalog(tmp_path / "missing.json")
    with pytest.raises(TypeError, match="path or a mapping"):
        load_litellm_catalog(42)  # type: ignore[arg-type]


def test_today_defaults_to_the_current_utc_date() -> None:
    [past, future] = load_litellm_catalog(
        {"past": entry(deprecation_date="2000-01-01"), "future": entry(deprecation_date="2999-01-01")}
    )
    assert (past.status, future.status) == (ModelStatus.DEPRECATED, ModelStatus.AVAILABLE)


# ------------------------------------------------------------------ into a registry


def test_the_result_registers_and_prices_requests(tmp_path: Path) -> None:
    catalog = {
        "gpt-x": entry(cache_read_input_token_cost=1.25e-06, input_cost_per_token_batches=1.25e-06),
        "anthropic/claude-x": entry(litellm_provider="anthropic", input_cost_per_token=3e-06),
        "emb": entry(mode="embedding", input_cost_per_token=2e-08, output_cost_per_token=None),
        "img": entry(input_cost_per_token=None, output_cost_per_token=None, mode="image_generation"),
    }
    result = load(catalog)
    with EnhancedModelRegistry(persistence_path=tmp_path / "registry.json", auto_save=False) as registry:
        keys = registry.register_models(result)
        assert keys == ["openai:gpt-x", "claude:anthropic/claude-x", "openai:emb", "openai:img"]
        assert registry.estimate_cost("openai:gpt-x", 1000, 500) == Decimal("0.0075")
        assert registry.estimate_cost("claude:anthropic/claude-x", 1_000_000, 0) == Decimal(3)
        assert registry.estimate_cost("openai:emb", 50_000, 0) == Decimal("0.001")
        entry_ = registry.get_model("openai:gpt-x")
        assert entry_ is not None
        assert entry_.metadata["source"] == "litellm"


# ------------------------------------------------------------------ models built without pydantic's validation


def state(value: Any) -> Any:
    """All that validation leaves in a value: each model's type, fields set and ``__dict__`` (in order), the type
    and repr of every scalar (``Decimal("1.0")`` is not ``Decimal("1")``), recursively."""
    if isinstance(value, BaseModel):
        return (type(value), sorted(value.model_fields_set), [(k, state(v)) for k, v in value.__dict__.items()])
    if isinstance(value, dict):
        return (type(value), [(k, state(v)) for k, v in value.items()])
    if isinstance(value, list):
        return (type(value), [state(v) for v in value])
    return (type(value), repr(value))


VARIED = {
    "simple": entry(
        cache_read_input_token_cost=1.25e-06,
        max_input_tokens=128_000,
        max_output_tokens=4096,
        supports_vision=True,
        supports_function_calling=False,
        supports_reasoning=True,
        supported_endpoints=["/v1/chat/completions"],
    ),
    "anthropic/claude-x": entry(litellm_provider="anthropic", cache_creation_input_token_cost=3.75e-06),
    "vendor/model": entry(litellm_provider="vertex_ai:language", mode="completion", max_tokens=8192),
    "emb": entry(mode="embedding", output_cost_per_token=None, max_input_tokens=0),
    "unpriced": entry(input_cost_per_token=None, output_cost_per_token=None, output_cost_per_image=0.04),
    "old": entry(deprecation_date="2024-01-01"),
    "later": entry(deprecation_date="2030-01-01", max_input_tokens=1e5),
    "tiers": entry(
        input_cost_per_token_above_200k_tokens=6e-06,
        output_cost_per_token_above_200k_tokens=2.25e-05,
        input_cost_per_token_above_128k_tokens=4e-06,
    ),
    "xai": entry(litellm_provider="xai", input_cost_per_token_above_128k_tokens=5e-06),
    "services": entry(
        input_cost_per_token_batches=1.25e-06,
        output_cost_per_token_batches=5e-06,
        input_cost_per_token_priority=5e-06,
        input_cost_per_token_above_272k_tokens_priority=1e-05,
        cache_read_input_token_cost_flex=1e-07,
        output_cost_per_token_flex=4e-06,
    ),
    "ranges": entry(
        tiered_pricing=[
            {"range": [0, 1000], "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
            {"range": [1000, 5000], "input_cost_per_token": 2e-06, "output_cost_per_reasoning_token": 1e-06},
        ]
    ),
    "latest": {"alias_of": "simple", "max_output_tokens": 8192},
    "per-kind": entry(
        output_cost_per_token_above_32k_tokens=1.8e-05,
        cache_creation_input_token_cost_above_1hr=6e-06,
        cache_creation_input_token_cost_above_1hr_above_200k_tokens=1.2e-05,
        cache_read_input_token_cost_flex=1e-07,
        output_cost_per_token_above_272k_tokens_priority=9e-05,
    ),
    "fireworks": entry(litellm_provider="fireworks_ai"),
    "ranges-cache": entry(
        tiered_pricing=[
            {"range": [0, 1000], "input_cost_per_token": 1e-06, "cache_read_input_token_cost": 1e-07},
            {"range": [1000, 5000], "input_cost_per_token": 2e-06, "output_cost_per_token": 3e-06},
        ]
    ),
}


@pytest.mark.parametrize("from_json", [False, True], ids=["mapping", "json file"])
def test_models_are_built_exactly_as_validation_builds_them(
    from_json: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the importer's own checks mirror the schemas as they are (a changed schema turns them off: see below)
    assert common.FAST_PATH
    assert litellm_importer.TRUSTED
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(VARIED), encoding="utf-8")  # read back, prices are Decimals rather than floats
    source: Any = path if from_json else VARIED
    validations: list[Any] = []
    validate = common.validate_or_raise
    monkeypatch.setattr(common, "validate_or_raise", lambda *args: validations.append(args) or validate(*args))
    built = load_litellm_catalog(source, today=TODAY)
    assert validations == []  # not one through pydantic
    monkeypatch.setattr(litellm_importer, "TRUSTED", False)  # every model through pydantic's validation
    validated = load_litellm_catalog(source, today=TODAY)
    assert built.skipped == validated.skipped == []
    assert len(built) == len(VARIED)
    assert [state(m) for m in built] == [state(m) for m in validated]
    assert [m.model_dump(mode="json") for m in built] == [m.model_dump(mode="json") for m in validated]
    assert built == validated


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry(max_input_tokens=MAX_INT + 1), "context_window: Input should be less than or equal to"),
        (entry(max_output_tokens=float(MAX_INT + 1)), "max_tokens: Input should be less than or equal to"),
        (
            entry(input_cost_per_token_above_9223372036854776k_tokens=1e-06),
            "cost.tiers[0].above_input_tokens: Input should be less than or equal to",
        ),
        (
            entry(
                litellm_provider="xai",
                input_cost_per_token_above_0k_tokens=1e-06,
                input_cost_per_token_above_1_tokens=2e-06,
            ),
            "cost.tiers: tier thresholds must be distinct, got [0, 0]",
        ),
    ],
)
def test_values_only_validation_can_judge_are_skipped_with_its_reason(bad: dict[str, Any], reason: str) -> None:
    assert skipped(bad).startswith(f"invalid: {reason}")


def test_a_changed_schema_turns_the_fast_path_off() -> None:
    class MoreCost(ModelCost):
        surcharge: int = 0

    class OtherDefault(ModelCost):
        per: int = 1

    assert schema_shape(ModelCost) == common.MIRRORED[ModelCost]
    assert schema_shape(MoreCost) != common.MIRRORED[ModelCost]
    assert schema_shape(OtherDefault) != common.MIRRORED[ModelCost]


# ------------------------------------------------------------------ genai-prices


@pytest.fixture
def gp() -> Any:
    """genai_prices.types (the package is a dev dependency through the genai-prices extra)."""
    from genai_prices import types

    return types


def gp_provider(gp: Any, *models: Any, provider_id: str = "openai") -> Any:
    return gp.Provider(id=provider_id, name=provider_id.title(), api_pattern="x", models=list(models))


def gp_model(gp: Any, model_id: str, prices: Any, **fields: Any) -> Any:
    return gp.ModelInfo(id=model_id, match=gp.ClauseEquals(equals=model_id), prices=prices, **fields)


AT = datetime(2026, 1, 1, 12, tzinfo=UTC)


def gp_load(gp: Any, *providers: Any, at: datetime = AT) -> CatalogImport:
    return load_genai_prices_catalog(providers=list(providers), at=at)


def test_genai_prices_bundled_data_has_sensible_prices() -> None:
    result = load_genai_prices_catalog()
    assert len(result) > 500
    by_key = {f"{m.provider}:{m.id}": m for m in result}
    gpt4o = by_key["openai:gpt-4o"]
    assert gpt4o.cost is not None
    assert (gpt4o.cost.input_tokens, gpt4o.cost.output_tokens, gpt4o.cost.per) == (Decimal("2.5"), Decimal(10), M)
    assert gpt4o.metadata["source"] == "genai-prices"
    assert any(m.provider == ProviderType.CLAUDE for m in result)
    for model in result:
        assert model.cost is None or model.cost.per == M
    assert all(s.reason for s in result.skipped)


def test_genai_prices_basic_mapping(gp: Any) -> None:
    prices = gp.ModelPrice(
        input_mtok=Decimal("2.50"),
        output_mtok=Decimal(10),
        cache_read_mtok=Decimal("1.25"),
        cache_write_mtok=Decimal("3.125"),
        web_searches_kcount=Decimal(10),
        input_audio_mtok=Decimal(40),
    )
    model = gp_model(
        gp, "gpt-x", prices, name="GPT X", context_window=128000, description="d", price_comments="c", deprecated=True
    )
    [imported] = gp_load(gp, gp_provider(gp, model))
    assert (imported.id, imported.name, imported.provider) == ("gpt-x", "GPT X", ProviderType.OPENAI)
    assert (imported.context_window, imported.status) == (128000, ModelStatus.DEPRECATED)
    cost = imported.cost
    assert cost is not None
    assert (cost.input_tokens, cost.output_tokens) == (Decimal("2.5"), Decimal(10))
    assert (cost.cached_input_tokens, cost.cache_write_tokens) == (Decimal("1.25"), Decimal("3.125"))
    assert (cost.per, cost.currency, cost.note) == (M, "USD", None)
    assert imported.metadata == {
        "source": "genai-prices",
        "genai_prices": {
            "provider": "openai",
            "provider_name": "Openai",
            "description": "d",
            "price_comments": "c",
            "other_prices": {"web_searches_kcount": Decimal(10), "input_audio_mtok": Decimal(40)},
        },
    }


def test_genai_prices_tiers(gp: Any) -> None:
    prices = gp.ModelPrice(
        input_mtok=gp.TieredPrices(base=Decimal(3), tiers=[gp.Tier(start=200_000, price=Decimal(6))]),
        output_mtok=Decimal(15),
        cache_read_mtok=gp.TieredPrices(
            base=Decimal("0.3"),
            tiers=[gp.Tier(start=200_000, price=Decimal("0.6")), gp.Tier(start=128_000, price=Decimal("0.5"))],
        ),
    )
    [model] = gp_load(gp, gp_provider(gp, gp_model(gp, "claude-x", prices), provider_id="anthropic"))
    assert model.provider == ProviderType.CLAUDE
    assert model.cost is not None
    assert (model.cost.input_tokens, model.cost.cached_input_tokens) == (Decimal(3), Decimal("0.3"))
    assert model.cost.tiers == [
        PriceTier(
            above_input_tokens=128_000,
            input_tokens=Decimal(3),
            output_tokens=Decimal(15),
            cached_input_tokens=Decimal("0.5"),
        ),
        PriceTier(
            above_input_tokens=200_000,
            input_tokens=Decimal(6),
            output_tokens=Decimal(15),
            cached_input_tokens=Decimal("0.6"),
        ),
    ]


def test_genai_prices_variants_become_service_tiers(gp: Any) -> None:
    variants = [
        gp.PriceVariant(when={"service_tier": "default"}, prices=gp.ModelPrice()),
        gp.PriceVariant(
            when={"service_tier": "flex"},
            prices=gp.ModelPrice(input_mtok=Decimal("0.625"), output_mtok=Decimal(5)),
            constraint=gp.StartDateConstraint(start_date=date(2027, 1, 1)),  # not yet at AT
        ),
        gp.PriceVariant(
            when={"service_tier": "priority"},
            prices=gp.ModelPrice(input_mtok=Decimal("2.5"), cache_read_mtok=Decimal("0.25")),
        ),
        gp.PriceVariant(when={"processing": "batch"}, prices=gp.ModelPrice(input_mtok=Decimal("0.625"))),
        gp.PriceVariant(when={"processing": "batch"}, prices=gp.ModelPrice(input_mtok=Decimal(9))),  # later loses
        gp.PriceVariant(when={"service_tier": "fast"}, prices=gp.ModelPrice(input_mtok=Decimal(3))),
    ]
    prices = gp.ModelPrice(input_mtok=Decimal("1.25"), output_mtok=Decimal(10), cache_read_mtok=Decimal("0.125"))
    [model] = gp_load(gp, gp_provider(gp, gp_model(gp, "gpt-y", prices, price_variants=variants)))
    assert model.cost is not None
    assert model.cost.service_tiers == {
        "batch": ServiceTierPrices(
            input_tokens=Decimal("0.625"), output_tokens=Decimal(10), cached_input_tokens=Decimal("0.125")
        ),
        "priority": ServiceTierPrices(
            input_tokens=Decimal("2.5"), output_tokens=Decimal(10), cached_input_tokens=Decimal("0.25")
        ),
    }
    assert model.metadata["genai_prices"]["unmapped_variants"] == [{"service_tier": "fast"}]
    [later] = gp_load(
        gp, gp_provider(gp, gp_model(gp, "gpt-y", prices, price_variants=variants)), at=datetime(2027, 1, 2)
    )
    assert later.cost is not None
    assert later.cost.service_tiers is not None
    assert later.cost.service_tiers["flex"].input_tokens == Decimal("0.625")


def test_genai_prices_one_hour_writes_and_service_tiers_above_thresholds(gp: Any) -> None:
    prices = gp.ModelPrice(
        input_mtok=gp.TieredPrices(base=Decimal(3), tiers=[gp.Tier(start=200_000, price=Decimal(6))]),
        output_mtok=Decimal(15),
        cache_write_mtok=Decimal("3.75"),
        cache_write_1h_mtok=Decimal(6),
    )
    variants = [gp.PriceVariant(when={"service_tier": "flex"}, prices=gp.ModelPrice(input_mtok=Decimal("1.5")))]
    [model] = gp_load(gp, gp_provider(gp, gp_model(gp, "claude-y", prices, price_variants=variants)))
    cost = model.cost
    assert cost is not None
    assert (cost.cache_write_tokens, cost.cache_write_1h_tokens) == (Decimal("3.75"), Decimal(6))
    assert "other_prices" not in model.metadata["genai_prices"]
    assert cost.service_tiers is not None
    # the variant's flat input price replaces the tiered one at every threshold, as the package bills it: the
    # flex tier states it above 200k too, so the standard long-context price does not come back as a fallback
    assert cost.service_tiers["flex"].tiers == [
        PriceTier(
            above_input_tokens=200_000,
            input_tokens=Decimal("1.5"),
            output_tokens=Decimal(15),
            cache_write_tokens=Decimal("3.75"),
            cache_write_1h_tokens=Decimal(6),
        )
    ]
    assert request_cost(cost, 250_000, 0, service_tier="flex") == Decimal("0.375")
    assert request_cost(cost, 10_000, 0, cache_write_1h_tokens=2_000) == Decimal("0.036")


def test_genai_prices_dated_prices_follow_at(gp: Any) -> None:
    prices = [
        gp.ConditionalPrice(prices=gp.ModelPrice(input_mtok=Decimal(1), output_mtok=Decimal(2))),
        gp.ConditionalPrice(
            constraint=gp.StartDateConstraint(start_date=date(2026, 6, 1)),
            prices=gp.ModelPrice(input_mtok=Decimal(3), output_mtok=Decimal(4)),
        ),
    ]
    provider = gp_provider(gp, gp_model(gp, "dated", prices))
    [before] = gp_load(gp, provider, at=datetime(2026, 5, 31, 23, 59))
    [after] = gp_load(gp, provider, at=datetime(2026, 6, 1, tzinfo=UTC))
    assert before.cost is not None
    assert after.cost is not None
    assert (before.cost.input_tokens, after.cost.input_tokens) == (Decimal(1), Decimal(3))


def test_genai_prices_skips_what_token_prices_cannot_express(gp: Any) -> None:
    off_peak = [
        gp.ConditionalPrice(prices=gp.ModelPrice(input_mtok=Decimal("0.28"), output_mtok=Decimal("0.42"))),
        gp.ConditionalPrice(
            constraint=gp.TimeOfDateConstraint(start_time=time(16, 30), end_time=time(0, 30)),
            prices=gp.ModelPrice(input_mtok=Decimal("0.14"), output_mtok=Decimal("0.21")),
        ),
    ]
    provider = gp_provider(
        gp,
        gp_model(gp, "off-peak", off_peak),
        gp_model(gp, "per-request", gp.ModelPrice(input_mtok=Decimal(1), requests_kcount=Decimal(5))),
        gp_model(gp, "tts", gp.ModelPrice(input_mchars=Decimal(15))),
        gp_model(gp, "audio", gp.ModelPrice(input_audio_mtok=Decimal(6))),
        gp_model(gp, "free", gp.ModelPrice()),
        gp_model(gp, "ok", gp.ModelPrice(input_mtok=Decimal(1), output_mtok=Decimal(2))),
        gp_model(gp, "ok", gp.ModelPrice(input_mtok=Decimal(5), output_mtok=Decimal(5))),
        provider_id="deepseek",
    )
    result = gp_load(gp, provider)
    assert [m.id for m in result] == ["free", "ok"]
    free, ok = result
    assert free.cost is None
    assert "no prices" in free.metadata["genai_prices"]["no_prices"]
    assert ok.cost is not None
    assert ok.cost.input_tokens == Decimal(1)
    assert [(s.name, s.reason) for s in result.skipped] == [
        ("deepseek/off-peak", "time-of-day prices (e.g. off-peak discounts) cannot be represented"),
        ("deepseek/per-request", "priced per requests_kcount, which token prices cannot express"),
        ("deepseek/tts", "priced per input_mchars, which token prices cannot express"),
        ("deepseek/audio", "no input or output token price (prices: input_audio_mtok)"),
        ("deepseek/ok", "duplicate key 'deepseek:ok': the first entry with it was kept"),
    ]


def test_genai_prices_missing_output_price_is_zero_as_the_package_bills_it(gp: Any) -> None:
    [model] = gp_load(gp, gp_provider(gp, gp_model(gp, "embed", gp.ModelPrice(input_mtok=Decimal("0.02")))))
    assert model.cost is not None
    assert (model.cost.input_tokens, model.cost.output_tokens) == (Decimal("0.02"), Decimal(0))
    assert model.cost.note == "genai-prices lists no output price (billed as 0)"


def test_genai_prices_registers_into_a_registry(gp: Any, tmp_path: Path) -> None:
    prices = gp.ModelPrice(input_mtok=Decimal("2.5"), output_mtok=Decimal(10))
    result = gp_load(gp, gp_provider(gp, gp_model(gp, "gpt-z", prices)))
    with EnhancedModelRegistry(persistence_path=tmp_path / "registry.json", auto_save=False) as registry:
        assert registry.register_models(result) == ["openai:gpt-z"]
        assert registry.estimate_cost("openai:gpt-z", 1000, 500) == Decimal("0.0075")


def test_genai_prices_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # makes `import genai_prices` fail
    with pytest.raises(ImportError, match=r"noa-ai-provider\[genai-prices\]"):
        load_genai_prices_catalog()
