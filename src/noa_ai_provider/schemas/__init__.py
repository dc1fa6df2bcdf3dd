"""The shapes of the registry: enums, model definitions, costs, limits, stats, queries.

JSON uses the seed's camelCase (``contextWindow``, ``rateLimit.requestsPerMinute``); Python attributes are
snake_case. Both spellings are accepted on input. Validation is strict where a silent coercion would cost money or
hide a typo:

- unknown fields are rejected everywhere except inside ``metadata``;
- integers must be real integers (no strings, booleans or floats such as ``1.0``);
- prices are :class:`~decimal.Decimal`, given as numbers or decimal strings, finite and ``>= 0``; a float is
  converted through its shortest ``repr`` so ``0.01`` becomes ``Decimal("0.01")`` exactly.

:func:`validate_or_raise` turns pydantic's errors into one :class:`~noa_ai_provider.errors.ConfigError` whose
message names every failing field by its JSON path.

The package's modules, each re-exported here: :mod:`.base` (the common base class, validation and its errors,
construction without validation, the money context), :mod:`.enums`, :mod:`.fields` (the field types: prices,
strict integers, versions, providers), :mod:`.prices` (costs, long-context tiers, service tiers), :mod:`.limits`
(rate limits), :mod:`.stats` (usage, performance, statistics, budgets, history), :mod:`.models` (model definitions
and registry entries), :mod:`.queries` (the search query) and :mod:`.config` (the registry's settings).
"""

# Re-exported names outside __all__ (field types, bounds, helpers) are imported "as" themselves.
from .base import MAX_INT as MAX_INT
from .base import MONEY_CONTEXT as MONEY_CONTEXT
from .base import build_trusted as build_trusted
from .base import (
    check_unique_keys,
    construct_trusted,
    field_names,
    format_validation_error,
    item_label,
    merge_arguments,
    model_key,
    shallow_copy,
    short_repr,
    utc_from_timestamp,
    validate_models,
    validate_or_raise,
)
from .base import schema_shape as schema_shape
from .config import EnhancedModelRegistryConfig
from .enums import ModelCapability, ModelStatus, ProviderType
from .fields import KNOWN_PROVIDERS, PROVIDER_SYNONYMS, normalize_provider
from .fields import MAX_PRICE_DIGITS as MAX_PRICE_DIGITS
from .fields import MAX_PRICE_EXPONENT as MAX_PRICE_EXPONENT
from .fields import MIN_PRICE_EXPONENT as MIN_PRICE_EXPONENT
from .fields import Fraction as Fraction
from .fields import NonEmptyStr as NonEmptyStr
from .fields import NonNegativeFloat as NonNegativeFloat
from .fields import NonNegativeInt as NonNegativeInt
from .fields import PositiveInt as PositiveInt
from .fields import Price as Price
from .fields import Provider as Provider
from .fields import UtcDatetime as UtcDatetime
from .fields import Version as Version
from .limits import RateLimitCheck, RateLimitConfig
from .models import MAX_METADATA_DEPTH as MAX_METADATA_DEPTH
from .models import Aliases as Aliases
from .models import EnhancedModelRegistryEntry, ExtendedModelInfo, ModelInfo, definition_of, json_problem
from .prices import PRICE_KINDS, ModelCost, PriceTier, ServiceTierPrices
from .prices import SERVICE_TIERS as SERVICE_TIERS
from .prices import ServiceTier as ServiceTier
from .prices import ServiceTiers as ServiceTiers
from .prices import Tiers as Tiers
from .queries import EnhancedModelSearchQuery
from .stats import (
    BudgetStatus,
    EnhancedRegistryStatistics,
    ModelPerformanceMetrics,
    ModelUsageStats,
    UsageHistory,
    UsageHistoryEntry,
)

__all__ = [
    "KNOWN_PROVIDERS",
    "PRICE_KINDS",
    "PROVIDER_SYNONYMS",
    "BudgetStatus",
    "EnhancedModelRegistryConfig",
    "EnhancedModelRegistryEntry",
    "EnhancedModelSearchQuery",
    "EnhancedRegistryStatistics",
    "ExtendedModelInfo",
    "ModelCapability",
    "ModelCost",
    "ModelInfo",
    "ModelPerformanceMetrics",
    "ModelStatus",
    "ModelUsageStats",
    "PriceTier",
    "ProviderType",
    "RateLimitCheck",
    "RateLimitConfig",
    "ServiceTierPrices",
    "UsageHistory",
    "UsageHistoryEntry",
    "check_unique_keys",
    "construct_trusted",
    "definition_of",
    "field_names",
    "format_validation_error",
    "item_label",
    "json_problem",
    "merge_arguments",
    "model_key",
    "normalize_provider",
    "shallow_copy",
    "short_repr",
    "utc_from_timestamp",
    "validate_models",
    "validate_or_raise",
]
