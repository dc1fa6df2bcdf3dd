"""The names users write resolve to keys: aliases, dated snapshots, LiteLLM strings, provider synonyms; ambiguous
names raise naming the candidates; unknown ones suggest the closest keys."""

from __future__ import annotations

import pickle
from decimal import Decimal
from pathlib import Path

import pytest

from noa_ai_provider import (
    AmbiguousModelError,
    ConfigError,
    EnhancedModelRegistry,
    ModelNotFoundError,
    ProviderType,
)
from noa_ai_provider.names import undated
from tests.samples import model

M = 1_000_000


def _model(model_id: str, provider: str = "openai", aliases: list[str] | None = None, price: str = "2.5") -> dict:
    return model(
        id=model_id,
        name=model_id,
        provider=provider,
        aliases=aliases or [],
        cost={"inputTokens": price, "outputTokens": "10", "per": M},
        rateLimit=None,
        contextWindow=200_000,
        maxTokens=16_384,
    )


@pytest.fixture
def named(registry: EnhancedModelRegistry) -> EnhancedModelRegistry:
    registry.register_models(
        [
            _model("gpt-4o", aliases=["gpt-4o-2024-08-06"]),
            _model("gpt-4o-2024-05-13", price="5"),  # a snapshot with its own prices is its own model
            _model("claude-sonnet-4-5", provider="claude", aliases=["claude-sonnet-4-5-20250929"], price="3"),
            _model("gemini-2.5-pro", provider="gemini", price="1.25"),
        ]
    )
    return registry


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("openai:gpt-4o", "openai:gpt-4o"),
        ("gpt-4o", "openai:gpt-4o"),  # the id alone
        ("gpt-4o-2024-08-06", "openai:gpt-4o"),  # an alias: what response.model says
        ("openai:gpt-4o-2024-08-06", "openai:gpt-4o"),  # an alias after its provider
        ("gpt-4o-2024-05-13", "openai:gpt-4o-2024-05-13"),  # a model of its own wins over the undated guess
        ("gpt-4o-2024-11-20", "openai:gpt-4o"),  # an unknown dated snapshot: the undated model
        ("claude-sonnet-4-5-20250929", "claude:claude-sonnet-4-5"),
        ("anthropic:claude-sonnet-4-5", "claude:claude-sonnet-4-5"),  # LiteLLM's / Anthropic's provider name
        ("Anthropic:claude-sonnet-4-5-20250929", "claude:claude-sonnet-4-5"),
        ("anthropic/claude-sonnet-4-5", "claude:claude-sonnet-4-5"),  # a LiteLLM model string
        ("gemini/gemini-2.5-pro", "gemini:gemini-2.5-pro"),
        ("OpenAI:gpt-4o", "openai:gpt-4o"),
    ],
)
def test_names_resolve_to_keys(named: EnhancedModelRegistry, name: str, key: str) -> None:
    assert named.resolve_key(name) == key
    entry = named.get_model(name)
    assert entry is not None
    assert entry.key == key


def test_every_key_taking_method_resolves_and_reports_the_key(named: EnhancedModelRegistry) -> None:
    seen: list[str] = []
    named.on("usage-recorded", lambda sender, **kw: seen.append(kw["key"]))
    name = "claude-sonnet-4-5-20250929"
    assert named.estimate_cost(name, 100_000, 0) == Decimal("0.3")
    assert named.record_usage(name, 100_000, 0) == Decimal("0.3")
    with named.acquire(name, 1000, 10) as reservation:
        assert reservation.key == "claude:claude-sonnet-4-5"
        reservation.commit(10)
    assert seen == ["claude:claude-sonnet-4-5", "claude:claude-sonnet-4-5"]
    stats = named.get_usage_stats(name)
    assert stats is not None
    assert stats.request_count == 2
    assert [e.key for e in named.get_usage_history(name)] == ["claude:claude-sonnet-4-5"]
    assert named.check_rate_limit(name, 10).allowed
    named.update_model_status(name, "deprecated")
    entry = named.get_model("claude:claude-sonnet-4-5")
    assert entry is not None
    assert entry.status == "deprecated"


def test_an_ambiguous_name_raises_naming_the_candidates(named: EnhancedModelRegistry) -> None:
    named.register_model(_model("gpt-4o", provider="azure"))
    with pytest.raises(AmbiguousModelError) as info:
        named.estimate_cost("gpt-4o", 10, 10)
    assert info.value.candidates == ("openai:gpt-4o", "azure:gpt-4o")
    assert "openai:gpt-4o" in str(info.value)
    assert "azure:gpt-4o" in str(info.value)
    with pytest.raises(AmbiguousModelError):
        named.get_model("gpt-4o")  # a getter does not guess either
    assert isinstance(info.value, ModelNotFoundError)  # one except clause catches both
    assert named.resolve_key("azure:gpt-4o") == "azure:gpt-4o"  # keys stay exact
    # An alias two models share is ambiguous too, and recording changes nothing.
    named.register_model(_model("gpt-4o-copy", aliases=["gpt-4o-2024-08-06"]))
    with pytest.raises(AmbiguousModelError):
        named.record_usage("gpt-4o-2024-08-06", 10, 10)
    assert named.get_statistics().total_requests == 0


def test_an_unknown_name_suggests_the_closest_keys(named: EnhancedModelRegistry) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        named.estimate_cost("claude-sonet-4-5", 10, 10)
    assert "did you mean claude:claude-sonnet-4-5?" in str(info.value)
    assert info.value.suggestions[0] == "claude:claude-sonnet-4-5"
    assert named.get_model("nothing-like-it") is None
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


def test_aliases_follow_redefinition_and_removal(named: EnhancedModelRegistry) -> None:
    assert named.resolve_key("gpt-4o-2024-08-06") == "openai:gpt-4o"
    named.update_model("openai:gpt-4o", {"aliases": ["gpt-4o-latest"]})
    assert named.resolve_key("gpt-4o-latest") == "openai:gpt-4o"
    assert named.resolve_key("gpt-4o-2024-08-06") == "openai:gpt-4o"  # still, as a dated name of gpt-4o
    named.unregister_model("openai:gpt-4o")
    with pytest.raises(ModelNotFoundError):
        named.resolve_key("gpt-4o-latest")
    named.register_model(_model("gpt-4o", aliases=["gpt-4o-latest"]))
    assert named.resolve_key("gpt-4o-latest") == "openai:gpt-4o"


def test_unregister_takes_exact_keys_only(named: EnhancedModelRegistry) -> None:
    assert named.unregister_model("gpt-4o") is False
    assert named.get_model("openai:gpt-4o") is not None


def test_aliases_are_saved_and_loaded(named: EnhancedModelRegistry, tmp_path: Path) -> None:
    named.save()
    with EnhancedModelRegistry(persistence_path=named.persistence_path, auto_save=False) as other:
        other.load()
        assert other.resolve_key("claude-sonnet-4-5-20250929") == "claude:claude-sonnet-4-5"
        entry = other.get_model("claude:claude-sonnet-4-5")
        assert entry is not None
        assert entry.aliases == ["claude-sonnet-4-5-20250929"]
    with EnhancedModelRegistry(persistence_path=tmp_path / "x.json", auto_save=False) as other:
        other.import_from_json(named.export_to_json())
        assert other.resolve_key("gpt-4o-2024-08-06") == "openai:gpt-4o"


@pytest.mark.parametrize("spelling", ["Anthropic", "anthropic", "CLAUDE", "Claude"])
def test_known_providers_spelled_otherwise_are_normalised(registry: EnhancedModelRegistry, spelling: str) -> None:
    key = registry.register_model(_model("claude-haiku-4-5", provider=spelling))
    assert key == "claude:claude-haiku-4-5"
    entry = registry.get_model(key)
    assert entry is not None
    assert entry.provider is ProviderType.CLAUDE
    assert registry.get_statistics().provider_counts == {"claude": 1}


def test_openai_spelled_otherwise_is_openai(registry: EnhancedModelRegistry) -> None:
    assert registry.register_model(_model("o3", provider="OpenAI")) == "openai:o3"
    assert registry.register_model(_model("llama", provider="llama_cpp")) == "llama.cpp:llama"
    assert registry.register_model(_model("m", provider="Mistral")) == "Mistral:m"  # custom: kept as written


@pytest.mark.parametrize("aliases", [[""], [" padded "], "not-a-list", [1]])
def test_bad_aliases_are_config_errors(registry: EnhancedModelRegistry, aliases: object) -> None:
    with pytest.raises(ConfigError, match="aliases"):
        registry.register_model(_model("x") | {"aliases": aliases})
    assert len(registry) == 0


def test_undated() -> None:
    assert undated("gpt-4o-2024-08-06") == "gpt-4o"
    assert undated("claude-3-opus-20240229") == "claude-3-opus"
    assert undated("claude-sonnet-4-5@20250929") == "claude-sonnet-4-5"
    assert undated("o3") is None
    assert undated("gpt-4-0613") is None  # a 4-digit suffix is a version, not a date
