"""The public names are exactly the curated ones, and the error tree matches the contract."""

from __future__ import annotations

import noa_ai_provider
from noa_ai_provider import errors

CONTRACT = {
    "EnhancedModelRegistry",
    "EnhancedModelRegistryConfig",
    "ModelRegistry",
    "ProviderType",
    "ModelCapability",
    "ModelStatus",
    "ExtendedModelInfo",
    "ModelCost",
    "RateLimitConfig",
    "EnhancedModelRegistryEntry",
    "ModelUsageStats",
    "ModelPerformanceMetrics",
    "EnhancedModelSearchQuery",
    "EnhancedRegistryStatistics",
    "RateLimitCheck",
    "RegistryError",
    "ModelNotFoundError",
    "ConfigError",
    "InvalidVersionError",
    "PersistenceError",
}
EXTRA = {
    "AmbiguousModelError",
    "BackendError",
    "RateLimitHeaderWarning",
    "ContextWindowWarning",
    "BudgetExceededError",
    "BudgetStatus",
    "PriceTier",
    "ServiceTierPrices",
    "UnpricedModelError",
    "UsageHistoryEntry",
    "usage_from_anthropic",
    "usage_from_openai",
    "InvalidUsageError",
    "ModelInfo",
    "RateLimitExceeded",
    "RateLimitTimeout",
    "Reservation",
    "compare_versions",
    "__version__",
}


def test_all_is_sorted_and_exactly_the_public_names() -> None:
    assert noa_ai_provider.__all__ == sorted(noa_ai_provider.__all__)
    assert set(noa_ai_provider.__all__) == CONTRACT | EXTRA
    for name in noa_ai_provider.__all__:
        assert hasattr(noa_ai_provider, name), name


def test_error_tree() -> None:
    assert issubclass(errors.ModelNotFoundError, errors.RegistryError)
    assert issubclass(errors.ModelNotFoundError, KeyError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.InvalidVersionError, ValueError)
    assert issubclass(errors.InvalidUsageError, ValueError)
    assert issubclass(errors.PersistenceError, OSError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RegistryError)


def test_enums_are_str_enums_with_the_seeds_values() -> None:
    from enum import StrEnum

    from noa_ai_provider import ModelCapability, ModelStatus, ProviderType

    assert issubclass(ProviderType, StrEnum)
    assert [p.value for p in ProviderType] == ["openai", "claude", "llama.cpp", "custom"]
    assert {s.name: s.value for s in ModelStatus} == {
        "AVAILABLE": "available",
        "LOADING": "loading",
        "LOADED": "loaded",
        "FAILED": "failed",
        "UNLOADED": "unloaded",
        "DEPRECATED": "deprecated",
    }
    assert ModelCapability.CHAT_COMPLETION == "chat_completion"


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert noa_ai_provider.__version__ == version("noa-ai-provider")


def test_the_package_does_not_import_the_cli_or_pytest_plugin() -> None:
    import subprocess
    import sys

    code = "import sys, noa_ai_provider; print(sorted(m for m in sys.modules if m.startswith('noa_ai_provider.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "noa_ai_provider.cli" not in out
    assert "noa_ai_provider.pytest_plugin" not in out


def test_the_package_root_never_imports_an_sdk_or_its_integration() -> None:
    import subprocess
    import sys

    code = (
        "import sys, noa_ai_provider, noa_ai_provider.integrations; "
        "print(sorted(m.split('.')[0] if not m.startswith('noa_ai_provider') else m for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ("'openai'", "'anthropic'", "'httpx2'", "'httpx'", "'tiktoken'", "integrations.openai'"):
        assert name not in out, name
