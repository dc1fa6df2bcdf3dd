"""The catalogue shipped in ``config/models-config.json``: it loads, keeps the seed's examples, and its prices are
the published ones (spot checks, written here by hand from the providers' pricing pages)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, ExtendedModelInfo, ModelCapability, ModelStatus, ProviderType
from noa_ai_provider.config import read_models_config
from noa_ai_provider.cost import billed_service_tier, request_cost, request_rates
from noa_ai_provider.importers import load_litellm_catalog
from noa_ai_provider.schemas import ModelCost

CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "models-config.json"
SEED_KEYS = (
    "openai:gpt-4-turbo-preview",
    "claude:claude-3-opus-20240229",
    "llama.cpp:llama-3.1-8b-instruct",
    "llama.cpp:my-custom-model",
)
PER_MILLION = 1_000_000


@pytest.fixture(scope="module")
def raw_models() -> list[dict[str, Any]]:
    data = json.loads(CONFIG_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert isinstance(data["models"], list)
    return data["models"]


@pytest.fixture
def registry(tmp_path: Path) -> EnhancedModelRegistry:
    reg = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)
    reg.load_from_config(CONFIG_PATH)
    return reg


def test_loads_every_model(tmp_path: Path, raw_models: list[dict[str, Any]]) -> None:
    reg = EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False)
    assert reg.load_from_config(CONFIG_PATH) == len(raw_models)
    assert len(reg.list_models()) == len(raw_models)
    assert not (tmp_path / "r.json").exists()


def test_keys_are_unique(raw_models: list[dict[str, Any]]) -> None:
    keys = Counter(f"{m['provider']}:{m['id']}" for m in raw_models)
    assert [k for k, n in keys.items() if n > 1] == []


# Every attribute checked, per seed model: a dotted path into the entry (``metadata.<key>`` is an item of
# ``metadata``), and its expected value (``None``: checked with ``is None``).
SEED_MODELS = [
    pytest.param(
        "openai:gpt-4-turbo-preview",
        {
            "name": "GPT-4 Turbo",
            "provider": ProviderType.OPENAI,
            "version": "1.0.0",
            "context_window": 128000,
            "max_tokens": 4096,
            "capabilities": [
                ModelCapability.CHAT_COMPLETION,
                ModelCapability.FUNCTION_CALLING,
                ModelCapability.JSON_MODE,
            ],
            "cost.input_tokens": Decimal("0.01"),
            "cost.output_tokens": Decimal("0.03"),
            "cost.currency": "USD",
            "cost.per": 1000,
            "cost.note": None,
            "rate_limit.requests_per_minute": 500,
            "rate_limit.tokens_per_minute": 150000,
            "rate_limit.requests_per_day": 10000,
            "metadata.tags": ["recommended", "production"],
            "metadata.apiEndpoint": "https://api.openai.com/v1/chat/completions",
        },
        id="gpt-4-turbo-preview",
    ),
    pytest.param(
        "claude:claude-3-opus-20240229",
        {
            "name": "Claude 3 Opus",
            "provider": ProviderType.CLAUDE,
            "version": "3.0.0",
            "context_window": 200000,
            "max_tokens": 4096,
            "capabilities": [
                ModelCapability.CHAT_COMPLETION,
                ModelCapability.VISION,
                ModelCapability.FUNCTION_CALLING,
            ],
            "cost.input_tokens": Decimal("0.015"),
            "cost.output_tokens": Decimal("0.075"),
            "cost.currency": "USD",
            "cost.per": 1000,
            "rate_limit.requests_per_minute": 50,
            "rate_limit.tokens_per_minute": 40000,
            "rate_limit.requests_per_day": 1000,
            "metadata.tags": ["flagship", "high-performance"],
            "metadata.apiEndpoint": "https://api.anthropic.com/v1/messages",
        },
        id="claude-3-opus",
    ),
    pytest.param(
        "llama.cpp:llama-3.1-8b-instruct",
        {
            "name": "Llama 3.1 8B Instruct",
            "provider": ProviderType.LLAMA_CPP,
            "version": "3.1.0",
            "context_window": 128000,
            "max_tokens": 4096,
            "capabilities": [ModelCapability.CHAT_COMPLETION, ModelCapability.TEXT_GENERATION],
            "cost.input_tokens": Decimal(0),
            "cost.output_tokens": Decimal(0),
            "cost.currency": "USD",
            "cost.per": 1000,
            "cost.note": "Self-hosted, no API costs",
            "rate_limit.requests_per_minute": 1000,
            "rate_limit.tokens_per_minute": 100000,
            "rate_limit.requests_per_day": None,
            "rate_limit.note": "Limited by hardware capabilities",
            "metadata.tags": ["self-hosted", "open-source", "local"],
            "metadata.modelFile": "llama-3.1-8b-instruct-q5_k_m.gguf",
            "metadata.quantization": "Q5_K_M",
            "metadata.fileSize": "5.73GB",
            "metadata.requiredRAM": "8GB",
            "metadata.apiEndpoint": "http://localhost:8080/v1/chat/completions",
        },
        id="llama-3.1-8b",
    ),
    pytest.param(
        "llama.cpp:my-custom-model",
        {
            "name": "My Custom Model",
            "provider": ProviderType.LLAMA_CPP,
            "version": "1.0.0",
            "context_window": 8192,
            "max_tokens": 2048,
            "capabilities": [ModelCapability.CHAT_COMPLETION],
            "cost.input_tokens": Decimal(0),
            "cost.output_tokens": Decimal(0),
            "cost.per": 1000,
            "rate_limit.requests_per_minute": 500,
            "rate_limit.tokens_per_minute": 50000,
            "rate_limit.requests_per_day": None,
            "metadata.tags": ["custom"],
            "metadata.modelFile": "/path/to/my-model.gguf",
            "metadata.apiEndpoint": "http://localhost:8080/v1/chat/completions",
        },
        id="custom-model",
    ),
]


@pytest.mark.parametrize(("key", "expected"), SEED_MODELS)
def test_seed_model(registry: EnhancedModelRegistry, key: str, expected: dict[str, Any]) -> None:
    e = registry.get_model(key)
    assert e is not None
    assert e.rate_limit is not None
    for path, want in expected.items():
        value: Any = e
        for part in path.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        if want is None:
            assert value is None, path
        else:
            assert value == want, path


def test_every_model_names_its_price_source_and_date(registry: EnhancedModelRegistry) -> None:
    for e in registry.list_models():
        source = e.metadata.get("source")
        assert isinstance(source, str), e.key
        assert source.strip(), e.key
        price_date = e.metadata.get("priceDate")
        assert isinstance(price_date, str), e.key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price_date), e.key
        assert date.fromisoformat(price_date) >= date(2024, 1, 1), e.key
        tags = e.metadata.get("tags")
        assert isinstance(tags, list), e.key
        assert tags, e.key


def test_prices_are_exact_decimals(registry: EnhancedModelRegistry) -> None:
    """No float artefacts (0.15 must be 0.15, not 0.1499999...), and new entries are quoted per 1M tokens."""
    for e in registry.list_models():
        assert e.cost is not None, e.key
        for price in (e.cost.input_tokens, e.cost.output_tokens):
            assert price >= 0, e.key
            assert price == price.quantize(Decimal("0.000001")), (e.key, price)
        assert e.cost.currency == "USD", e.key
        if e.key not in SEED_KEYS:
            assert e.cost.per == PER_MILLION, e.key


def test_enough_models_per_provider(registry: EnhancedModelRegistry) -> None:
    assert len(registry.get_models_by_provider(ProviderType.OPENAI)) >= 10
    assert len(registry.get_models_by_provider(ProviderType.CLAUDE)) >= 4
    assert len(registry.get_models_by_provider(ProviderType.LLAMA_CPP)) >= 5


def test_self_hosted_models_are_free_and_local(registry: EnhancedModelRegistry) -> None:
    local = registry.get_models_by_provider(ProviderType.LLAMA_CPP)
    for e in local:
        assert e.cost is not None, e.key
        assert e.cost.input_tokens == 0, e.key
        assert e.cost.output_tokens == 0, e.key
        assert e.metadata["apiEndpoint"] == "http://localhost:8080/v1/chat/completions", e.key
        assert "modelFile" in e.metadata, e.key
        assert registry.estimate_cost(e.key, e.context_window or 1, e.max_tokens or 1) == 0
    for e in local:
        if e.key not in SEED_KEYS:
            assert e.metadata["modelFile"].endswith(".gguf"), e.key
            for field in ("quantization", "fileSize", "requiredRAM"):
                assert e.metadata[field], (e.key, field)


def test_api_models_carry_tier_1_rate_limits(registry: EnhancedModelRegistry) -> None:
    for provider in (ProviderType.OPENAI, ProviderType.CLAUDE):
        for e in registry.get_models_by_provider(provider):
            if e.key in SEED_KEYS:
                continue
            assert e.rate_limit is not None, e.key
            assert e.rate_limit.requests_per_minute, e.key
            if provider == ProviderType.OPENAI:
                assert e.rate_limit.tokens_per_minute, e.key
            assert e.rate_limit.note is not None, e.key
            assert "Tier 1" in e.rate_limit.note, e.key


def test_claude_limits_are_input_and_output_tokens_per_minute_without_cache_reads(
    registry: EnhancedModelRegistry,
) -> None:
    """Anthropic limits input (ITPM) and output (OTPM) tokens per minute apart, and on current models cache reads
    do not count toward the ITPM: no combined tokensPerMinute, countCacheReads false, Tier 1 figures."""
    claude = [e for e in registry.get_models_by_provider(ProviderType.CLAUDE) if e.key not in SEED_KEYS]
    assert len(claude) >= 4
    tier_1 = {"haiku": (50, 50_000, 10_000), "sonnet": (50, 30_000, 8_000), "opus": (50, 30_000, 8_000)}
    for e in claude:
        limits = e.rate_limit
        assert limits is not None, e.key
        assert limits.tokens_per_minute is None, e.key
        assert limits.tokens_per_day is None, e.key
        assert limits.count_cache_reads is False, e.key
        family = next(f for f in tier_1 if f in e.id)
        assert (
            limits.requests_per_minute,
            limits.input_tokens_per_minute,
            limits.output_tokens_per_minute,
        ) == tier_1[family], e.key
        assert limits.note is not None
        assert "Tier 1" in limits.note, e.key
        assert "outputTokensPerMinute" not in e.metadata, e.key  # a limit, not metadata text


def test_claude_cache_reads_do_not_use_up_the_input_limit(registry: EnhancedModelRegistry) -> None:
    # 25,000 fresh + 100,000 cache-read input tokens fit Tier 1's 30,000 ITPM: the cache reads are not counted.
    key = "claude:claude-opus-4-5"
    assert registry.check_rate_limit(key, 30_000).allowed
    registry.record_usage(key, 125_000, 1_000, cached_input_tokens=100_000)
    assert registry.check_rate_limit(key, 5_000).allowed
    assert not registry.check_rate_limit(key, 5_001).allowed


@pytest.mark.parametrize(
    ("key", "input_per_1m", "output_per_1m"),
    [
        ("openai:gpt-4o", "2.5", "10"),
        ("openai:gpt-4o-mini", "0.15", "0.6"),
        ("openai:gpt-4.1", "2", "8"),
        ("openai:gpt-4.1-mini", "0.4", "1.6"),
        ("openai:o3", "2", "8"),
        ("openai:gpt-5", "1.25", "10"),
        ("openai:gpt-5-mini", "0.25", "2"),
        ("openai:gpt-5-nano", "0.05", "0.4"),
        ("openai:text-embedding-3-small", "0.02", "0"),
        ("claude:claude-opus-4-5", "5", "25"),
        ("claude:claude-sonnet-4-5", "3", "15"),
        ("claude:claude-haiku-4-5", "1", "5"),
        ("claude:claude-opus-4-1", "15", "75"),
        # the seed's per-1K prices give the same published per-1M prices
        ("openai:gpt-4-turbo-preview", "10", "30"),
        ("claude:claude-3-opus-20240229", "15", "75"),
    ],
)
def test_published_prices(registry: EnhancedModelRegistry, key: str, input_per_1m: str, output_per_1m: str) -> None:
    # The base prices per 1M tokens (a request of 1M tokens would exceed most context windows, and bill
    # long-context prices where the model has them).
    e = registry.get_model(key)
    assert e is not None
    assert e.cost is not None
    base = request_rates(e.cost, 0)
    assert base.input * PER_MILLION / e.cost.per == Decimal(input_per_1m)
    assert base.output * PER_MILLION / e.cost.per == Decimal(output_per_1m)
    assert registry.estimate_cost(key, 1_000, 0) * 1_000 == Decimal(input_per_1m)
    assert registry.estimate_cost(key, 0, 1_000) * 1_000 == Decimal(output_per_1m)


def test_estimate_for_a_typical_request(registry: EnhancedModelRegistry) -> None:
    # 1,234 input + 567 output tokens on gpt-4o: (1234 * 2.5 + 567 * 10) / 1e6 = 0.008755
    assert registry.estimate_cost("openai:gpt-4o", 1234, 567) == Decimal("0.008755")


@pytest.mark.parametrize(
    ("key", "context_window", "max_tokens"),
    [
        ("openai:gpt-4o", 128000, 16384),
        ("openai:gpt-4.1", 1047576, 32768),
        ("openai:o3", 200000, 100000),
        ("openai:gpt-5", 400000, 128000),
        ("claude:claude-opus-4-5", 200000, 64000),
        ("claude:claude-sonnet-4-5", 200000, 64000),
        ("claude:claude-haiku-4-5", 200000, 64000),
        ("claude:claude-opus-4-1", 200000, 32000),
    ],
)
def test_published_context_windows(
    registry: EnhancedModelRegistry, key: str, context_window: int, max_tokens: int
) -> None:
    e = registry.get_model(key)
    assert e is not None
    assert e.context_window == context_window
    assert e.max_tokens == max_tokens


def test_embeddings_models(registry: EnhancedModelRegistry) -> None:
    embedders = registry.get_models_by_capability(ModelCapability.EMBEDDINGS)
    assert {e.key for e in embedders} >= {"openai:text-embedding-3-small", "openai:text-embedding-3-large"}
    for e in embedders:
        assert ModelCapability.CHAT_COMPLETION not in e.capabilities, e.key
        assert e.cost is not None, e.key
        assert e.cost.output_tokens == 0, e.key


def test_deprecated_models_are_marked(registry: EnhancedModelRegistry) -> None:
    # The registry loads the file with today's UTC date: a model is deprecated when the file says so or its
    # deprecationDate has come (claude-sonnet-4-5's is 2026-11-30).
    today = datetime.now(UTC).date()
    for e in registry.list_models():
        stated = e.metadata.get("deprecationDate")
        due = stated is not None and date.fromisoformat(stated) <= today
        assert (e.status == ModelStatus.DEPRECATED) == (due or e.key in LISTED_DEPRECATED), e.key
    deprecated = registry.search_models(status=ModelStatus.DEPRECATED)
    for e in deprecated:
        assert "deprecationDate" in e.metadata or "lifecycleNote" in e.metadata, e.key
    live = {e.key for e in registry.search_models(exclude_deprecated=True)}
    assert {e.key for e in deprecated}.isdisjoint(live)
    assert {"claude:claude-sonnet-4-5", "openai:gpt-4.1-nano", "openai:o4-mini"} <= {e.key for e in deprecated}
    assert {"claude:claude-opus-4-5", "claude:claude-haiku-4-5", "llama.cpp:qwen3-8b"} <= live


LISTED_DEPRECATED = frozenset({"openai:gpt-4.1-nano", "openai:o4-mini", "claude:claude-sonnet-4-5"})
"""Models the file itself marks ``"status": "deprecated"`` (each past its deprecationDate)."""


def test_cheapest_models_are_self_hosted(registry: EnhancedModelRegistry) -> None:
    ranked = registry.get_most_cost_effective_models()
    free = [e for e in ranked if e.cost is not None and e.cost.input_tokens == 0 and e.cost.output_tokens == 0]
    assert ranked[: len(free)] == free
    assert all(e.provider == ProviderType.LLAMA_CPP for e in free)


# --------------------------------------------------------------------------- every price against LiteLLM's map


def litellm_catalog_path() -> Path:
    """LiteLLM's shipped price map, found without importing litellm (slow): the package directory of its spec."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("litellm is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"


LITELLM_KEYS: dict[str, str | None] = {
    # The seed's GPT-4 Turbo: LiteLLM has no gpt-4-turbo-preview entry; gpt-4-turbo is the same list price.
    "openai:gpt-4-turbo-preview": "gpt-4-turbo",
    # LiteLLM has no direct-API (anthropic) entry for these two; their Bedrock entries carry Anthropic's list price.
    "claude:claude-3-opus-20240229": "anthropic.claude-3-opus-20240229-v1:0",
    "claude:claude-opus-4-1": "anthropic.claude-opus-4-1-20250805-v1:0",
}
"""The LiteLLM entry each bundled model is compared with, where it is not the model's id: every other API model
is compared with LiteLLM's entry of the same (undated) name, e.g. ``claude-sonnet-4-5`` with ``claude-sonnet-4-5``
and ``gpt-4o`` with ``gpt-4o``; ``test_dated_litellm_entries_price_the_same`` checks that the dated entry of each
alias (``claude-sonnet-4-5-20250929``, ``gpt-4o-2024-08-06``) prices the same. Self-hosted models (llama.cpp,
free) have no LiteLLM entry and are not compared."""

KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")

_ANTHROPIC_BATCH_1H = (
    "Anthropic bills 1-hour cache writes in a batch at 2x the batch input price; LiteLLM states no batch 1-hour "
    "price, so its batch 1-hour write falls back to its batch (5-minute) cache-write price (1.25x batch input)"
)
_SEED_NO_CACHE_PRICES = (
    "seed example kept exactly as the seed has it: no cache prices, so cache reads and writes bill at the input "
    "price; LiteLLM's Bedrock entry has Anthropic's cache read (0.1x) and write (1.25x) prices"
)
_SONNET_LONG_CONTEXT = (
    "Anthropic's long-context price (requests above 200,000 input tokens: $6 in / $22.50 out / $0.60 cache read / "
    "$7.50 cache write / $12 1-hour write per 1M, half in batches); LiteLLM 1.110.2 has no long-context price "
    "for claude-sonnet-4-5"
)

KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    **{
        ("claude:claude-3-opus-20240229", f"{tier}/base/{kind}"): _SEED_NO_CACHE_PRICES
        for tier in ("standard", "batch")
        for kind in ("cache_read", "cache_write", "cache_write_1h")
    },
    ("claude:claude-opus-4-5", "batch/base/cache_write_1h"): _ANTHROPIC_BATCH_1H,
    ("claude:claude-sonnet-4-5", "batch/base/cache_write_1h"): _ANTHROPIC_BATCH_1H,
    ("claude:claude-haiku-4-5", "batch/base/cache_write_1h"): _ANTHROPIC_BATCH_1H,
    ("claude:claude-opus-4-1", "batch/base/cache_write_1h"): _ANTHROPIC_BATCH_1H,
    ("claude:claude-opus-4-1", "standard/base/cache_write_1h"): (
        "Anthropic's 1-hour cache write is 2x input ($30); LiteLLM's Bedrock entry has no 1-hour price, so it "
        "falls back to the 5-minute write price ($18.75)"
    ),
    **{
        ("claude:claude-sonnet-4-5", f"{tier}/above_200000/{kind}"): _SONNET_LONG_CONTEXT
        for tier in ("standard", "batch")
        for kind in KINDS
    },
}
"""Every price of the catalogue that differs from the pinned LiteLLM map, by (model key, field), with its reason.
A field is ``<service tier>/<level>/<kind>``: the service tier (``standard``, ``batch``, ``flex``,
``priority``), the level (``base``, or ``above_<N>`` for a request of N+1 input tokens, at every threshold either
side has), and the kind of price."""


def price_table(cost: ModelCost, thresholds: list[int], tiers: list[str]) -> dict[str, Decimal | None]:
    """Every price a request can bill at, per 1M tokens, by field (see KNOWN_DIFFERENCES); ``None`` where the
    service tier is not offered (flex on a model without flex prices)."""
    table: dict[str, Decimal | None] = {}
    scale = Decimal(PER_MILLION) / cost.per
    for tier in tiers:
        name = None if tier == "standard" else tier
        for level, size in [("base", 0), *((f"above_{t}", t + 1) for t in thresholds)]:
            if name == "flex" and "flex" not in (cost.service_tiers or {}):
                rates = None
            else:
                rates = request_rates(cost, size, billed_service_tier(cost, name))
            for kind in KINDS:
                table[f"{tier}/{level}/{kind}"] = None if rates is None else getattr(rates, kind) * scale
    return table


def all_thresholds(cost: ModelCost) -> set[int]:
    found = {t.above_input_tokens for t in cost.tiers or ()}
    for prices in (cost.service_tiers or {}).values():
        found.update(t.above_input_tokens for t in prices.tiers or ())
    return found


@pytest.fixture(scope="module")
def litellm_map() -> dict[str, Any]:
    data = json.loads(litellm_catalog_path().read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def bundled() -> list[ExtendedModelInfo]:
    return read_models_config(CONFIG_PATH, today=date(2026, 12, 4))


def litellm_cost(litellm_map: dict[str, Any], name: str) -> ModelCost:
    imported = load_litellm_catalog({name: litellm_map[name]}, today=date(2026, 12, 4))
    assert len(imported) == 1, imported.skipped
    cost = imported[0].cost
    assert cost is not None, name
    return cost


def price_differences(litellm_map: dict[str, Any], models: list[ExtendedModelInfo]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for model in models:
        key = f"{model.provider}:{model.id}"
        if model.provider == ProviderType.LLAMA_CPP:
            continue
        assert model.cost is not None, key
        theirs = litellm_cost(litellm_map, LITELLM_KEYS.get(key) or model.id)
        thresholds = sorted(all_thresholds(model.cost) | all_thresholds(theirs))
        tiers = sorted({"batch", *(model.cost.service_tiers or {}), *(theirs.service_tiers or {})})
        ours_table = price_table(model.cost, thresholds, ["standard", *tiers])
        theirs_table = price_table(theirs, thresholds, ["standard", *tiers])
        for field, price in ours_table.items():
            if price != theirs_table[field]:
                found[(key, field)] = f"ours {price}, LiteLLM {theirs_table[field]}"
    return found


def test_every_price_agrees_with_litellm_or_is_explained(
    litellm_map: dict[str, Any], bundled: list[ExtendedModelInfo]
) -> None:
    """Every price of every API model (each kind, long-context tiers, batch / flex / priority, 1-hour writes) as the
    engine bills it, against the same request priced from LiteLLM's entry (converted by the LiteLLM importer, whose
    agreement with LiteLLM's own calculation test_litellm_agreement checks)."""
    found = price_differences(litellm_map, bundled)
    unexplained = {field: what for field, what in found.items() if field not in KNOWN_DIFFERENCES}
    assert unexplained == {}, "prices that differ from LiteLLM 1.110.2 without a reason in KNOWN_DIFFERENCES"
    stale = sorted(set(KNOWN_DIFFERENCES) - set(found))
    assert stale == [], "KNOWN_DIFFERENCES lists prices that now agree with LiteLLM: remove them"


def test_every_api_model_has_a_litellm_entry(litellm_map: dict[str, Any], bundled: list[ExtendedModelInfo]) -> None:
    for model in bundled:
        key = f"{model.provider}:{model.id}"
        if model.provider == ProviderType.LLAMA_CPP:
            assert model.cost is not None
            assert model.cost.input_tokens == 0, key
            assert model.cost.output_tokens == 0, key
            continue
        assert (LITELLM_KEYS.get(key) or model.id) in litellm_map, key


def test_dated_litellm_entries_price_the_same(litellm_map: dict[str, Any], bundled: list[ExtendedModelInfo]) -> None:
    checked = 0
    for model in bundled:
        key = f"{model.provider}:{model.id}"
        for alias in model.aliases:
            if alias in litellm_map and key not in LITELLM_KEYS:
                assert litellm_cost(litellm_map, alias) == litellm_cost(litellm_map, model.id), (key, alias)
                checked += 1
    assert checked >= 10


def test_the_comparison_sees_a_wrong_price(litellm_map: dict[str, Any], bundled: list[ExtendedModelInfo]) -> None:
    # A 1-hour write price off by a cent, on a model that otherwise agrees, is reported by its field.
    haiku = next(m for m in bundled if m.id == "claude-haiku-4-5")
    assert haiku.cost is not None
    wrong = haiku.model_copy(update={"cost": haiku.cost.model_copy(update={"cache_write_1h_tokens": Decimal("2.01")})})
    found = price_differences(litellm_map, [wrong])
    assert found[("claude:claude-haiku-4-5", "standard/base/cache_write_1h")] == "ours 2.01, LiteLLM 2"
    assert ("claude:claude-haiku-4-5", "standard/base/input") not in found


# --------------------------------------------------------------------------- prices live in cost, with a source


LONG_CONTEXT_TEXT = re.compile(r"long.?context|above.?\d|over.?\d+\s*k|\d+\s*k\s+input", re.IGNORECASE)
PRICE_TEXT = re.compile(r"\$\s*\d|\d\s*(usd|dollars)\b|per\s*1\s*m\b|per\s+million", re.IGNORECASE)


def test_no_price_lives_in_metadata_text(raw_models: list[dict[str, Any]]) -> None:
    """Long-context and 1-hour cache-write prices are ``cost`` fields the engine bills, never metadata text."""
    for m in raw_models:
        for name, value in m["metadata"].items():
            if name in {"source", "priceDate", "priceCrossCheck"}:
                continue  # where and when the price was checked: they may quote it
            assert not re.search(r"price|cost|long.?context", name, re.IGNORECASE), (m["id"], name)
            text = json.dumps(value)
            assert not (LONG_CONTEXT_TEXT.search(text) and PRICE_TEXT.search(text)), (m["id"], name, value)


def test_raw_file_names_a_source_and_date_for_every_price(raw_models: list[dict[str, Any]]) -> None:
    for m in raw_models:
        assert m["cost"] is not None, m["id"]
        metadata = m["metadata"]
        assert isinstance(metadata.get("source"), str), m["id"]
        assert metadata["source"].strip(), m["id"]
        assert date.fromisoformat(metadata["priceDate"]) >= date(2024, 1, 1), m["id"]


def test_every_claude_model_prices_1_hour_cache_writes(bundled: list[ExtendedModelInfo]) -> None:
    """At twice the input price, in the standard and the batch prices; batch cache writes at 1.25x (5-minute) and
    2x (1-hour) the batch input price, as Anthropic bills them."""
    claude = [m for m in bundled if m.provider == ProviderType.CLAUDE and m.id != "claude-3-opus-20240229"]
    assert len(claude) >= 4
    for m in claude:
        cost = m.cost
        assert cost is not None
        assert cost.cache_write_1h_tokens == 2 * cost.input_tokens, m.id
        assert cost.cache_write_tokens == Decimal("1.25") * cost.input_tokens, m.id
        assert cost.cached_input_tokens == Decimal("0.1") * cost.input_tokens, m.id
        batch = (cost.service_tiers or {})["batch"]
        assert batch.input_tokens == cost.input_tokens / 2, m.id
        assert batch.cache_write_tokens == Decimal("1.25") * batch.input_tokens, m.id
        assert batch.cache_write_1h_tokens == 2 * batch.input_tokens, m.id
        assert "cacheWrite1hPricePer1M" not in m.metadata, m.id


def test_claude_sonnet_4_5_1_hour_writes(registry: EnhancedModelRegistry) -> None:
    key = "claude:claude-sonnet-4-5"
    assert registry.estimate_cost(key, 100_000, 0, cache_write_1h_tokens=100_000) == Decimal("0.60")
    assert registry.estimate_cost(key, 100_000, 0, cache_write_tokens=100_000) == Decimal("0.375")
    assert registry.estimate_cost(key, 100_000, 0, cache_write_1h_tokens=100_000, service_tier="batch") == Decimal(
        "0.30"
    )


def test_claude_sonnet_4_5_long_context_prices(registry: EnhancedModelRegistry) -> None:
    e = registry.get_model("claude:claude-sonnet-4-5")
    assert e is not None
    assert e.cost is not None
    # At 200,000 input tokens: the base prices; one token more and every token bills the long-context prices.
    assert request_cost(e.cost, 200_000, 1_000) == Decimal("0.615")
    assert request_cost(e.cost, 200_001, 1_000) == Decimal("1.222506")
    over = request_rates(e.cost, 200_001)
    assert (over.input, over.output, over.cache_read, over.cache_write, over.cache_write_1h) == tuple(
        Decimal(p) for p in ("6", "22.5", "0.6", "7.5", "12")
    )
    batch = request_rates(e.cost, 200_001, "batch")
    assert (batch.input, batch.output, batch.cache_read, batch.cache_write, batch.cache_write_1h) == tuple(
        Decimal(p) for p in ("3", "11.25", "0.3", "3.75", "6")
    )
    # Recorded usage (what the provider billed) is never refused for its size: 300,000 tokens, 1M-context beta.
    assert registry.record_usage("claude:claude-sonnet-4-5", 300_000, 0) == Decimal("1.8")


def test_openai_service_tiers(registry: EnhancedModelRegistry) -> None:
    assert registry.estimate_cost("openai:gpt-5", 1_000, 1_000, service_tier="priority") == Decimal("0.0225")
    assert registry.estimate_cost("openai:gpt-5", 1_000, 1_000, service_tier="flex") == Decimal("0.005625")
    assert registry.estimate_cost("openai:gpt-4o", 1_000, 0, cached_input_tokens=1_000, service_tier="priority") == (
        Decimal("0.002125")
    )
    assert registry.estimate_cost("openai:o3", 1_000, 0, cached_input_tokens=1_000, service_tier="flex") == Decimal(
        "0.00025"
    )


def test_dated_snapshot_names_are_aliases(registry: EnhancedModelRegistry, raw_models: list[dict[str, Any]]) -> None:
    with_snapshot = [m for m in raw_models if "snapshot" in m["metadata"]]
    assert len(with_snapshot) >= 14
    for m in with_snapshot:
        assert m["metadata"]["snapshot"] in m["aliases"], m["id"]
    assert registry.resolve_key("claude-sonnet-4-5-20250929") == "claude:claude-sonnet-4-5"
    assert registry.resolve_key("gpt-4o-2024-08-06") == "openai:gpt-4o"
    assert registry.resolve_key("claude-opus-4-1-20250805") == "claude:claude-opus-4-1"
