"""noa-ai-provider: one registry for the AI models you call.

Model metadata with versions, exact ``Decimal`` cost tracking, rate limits over trailing windows, performance
metrics, search and ranking, JSON persistence with autosave, config loading, and events. See the README.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    AmbiguousModelError,
    BackendError,
    BudgetExceededError,
    ConfigError,
    ContextWindowWarning,
    InvalidUsageError,
    InvalidVersionError,
    ModelNotFoundError,
    PersistenceError,
    RateLimitExceeded,
    RateLimitHeaderWarning,
    RateLimitTimeout,
    RegistryError,
    UnpricedModelError,
)
from .legacy import ModelRegistry
from .registry import EnhancedModelRegistry
from .reservation import Reservation
from .schemas import (
    BudgetStatus,
    EnhancedModelRegistryConfig,
    EnhancedModelRegistryEntry,
    EnhancedModelSearchQuery,
    EnhancedRegistryStatistics,
    ExtendedModelInfo,
    ModelCapability,
    ModelCost,
    ModelInfo,
    ModelPerformanceMetrics,
    ModelStatus,
    ModelUsageStats,
    PriceTier,
    ProviderType,
    RateLimitCheck,
    RateLimitConfig,
    ServiceTierPrices,
    UsageHistoryEntry,
)
from .usage import usage_from_anthropic, usage_from_openai
from .versions import compare_versions

try:
    __version__ = version("noa-ai-provider")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "AmbiguousModelError",
    "BackendError",
    "BudgetExceededError",
    "BudgetStatus",
    "ConfigError",
    "ContextWindowWarning",
    "EnhancedModelRegistry",
    "EnhancedModelRegistryConfig",
    "EnhancedModelRegistryEntry",
    "EnhancedModelSearchQuery",
    "EnhancedRegistryStatistics",
    "ExtendedModelInfo",
    "InvalidUsageError",
    "InvalidVersionError",
    "ModelCapability",
    "ModelCost",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelPerformanceMetrics",
    "ModelRegistry",
    "ModelStatus",
    "ModelUsageStats",
    "PersistenceError",
    "PriceTier",
    "ProviderType",
    "RateLimitCheck",
    "RateLimitConfig",
    "RateLimitExceeded",
    "RateLimitHeaderWarning",
    "RateLimitTimeout",
    "RegistryError",
    "Reservation",
    "ServiceTierPrices",
    "UnpricedModelError",
    "UsageHistoryEntry",
    "__version__",
    "compare_versions",
    "usage_from_anthropic",
    "usage_from_openai",
]
