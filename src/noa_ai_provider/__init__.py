"""noa-ai-provider: one registry for the AI models you call.

Model metadata with versions, exact ``Decimal`` cost tracking, rate limits over trailing windows, performance
metrics, search and ranking, JSON persistence with autosave, config loading, and events. See the README.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    ConfigError,
    InvalidUsageError,
    InvalidVersionError,
    ModelNotFoundError,
    PersistenceError,
    RateLimitExceeded,
    RateLimitTimeout,
    RegistryError,
)
from .legacy import ModelRegistry
from .registry import EnhancedModelRegistry
from .reservation import Reservation
from .schemas import (
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
    ProviderType,
    RateLimitCheck,
    RateLimitConfig,
)
from .versions import compare_versions

try:
    __version__ = version("noa-ai-provider")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "ConfigError",
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
    "ProviderType",
    "RateLimitCheck",
    "RateLimitConfig",
    "RateLimitExceeded",
    "RateLimitTimeout",
    "RegistryError",
    "Reservation",
    "__version__",
    "compare_versions",
]
