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
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as date_type
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

from .errors import ConfigError
from .versions import validate_version

_S = TypeVar("_S", bound=BaseModel)

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


class ProviderType(StrEnum):
    """Known providers. A model's ``provider`` may also be any other non-empty string without ``:``."""

    OPENAI = "openai"
    CLAUDE = "claude"
    LLAMA_CPP = "llama.cpp"
    CUSTOM = "custom"


class ModelCapability(StrEnum):
    """What a model can do. An unknown capability in input is an error listing these values."""

    CHAT_COMPLETION = "chat_completion"
    TEXT_GENERATION = "text_generation"
    FUNCTION_CALLING = "function_calling"
    JSON_MODE = "json_mode"
    VISION = "vision"
    EMBEDDINGS = "embeddings"
    STREAMING = "streaming"


class ModelStatus(StrEnum):
    """Availability of a model."""

    AVAILABLE = "available"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"
    UNLOADED = "unloaded"
    DEPRECATED = "deprecated"


# --------------------------------------------------------------------------- field types


def _to_price(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, Decimal):
        price = value
    elif isinstance(value, int):
        price = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be finite (NaN and Infinity are not prices)")
        # repr is the shortest string that round-trips, so 0.01 becomes Decimal("0.01"), not 0.01000000000000000020...
        price = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            price = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"must be a decimal number, got {value!r}") from None
    else:
        raise ValueError(f"must be a number or a decimal string, got {type(value).__name__}")
    if not price.is_finite():
        raise ValueError("must be finite (NaN and Infinity are not prices)")
    if price < 0:
        raise ValueError(f"must be >= 0, got {short_repr(price)}")
    if price and not MIN_PRICE_EXPONENT <= price.adjusted() <= MAX_PRICE_EXPONENT:
        raise ValueError(
            f"must be between 1e{MIN_PRICE_EXPONENT} and 1e{MAX_PRICE_EXPONENT + 1} (or 0), got {short_repr(price)}"
        )
    if len(price.as_tuple().digits) > MAX_PRICE_DIGITS:
        raise ValueError(f"must have at most {MAX_PRICE_DIGITS} significant digits, got {short_repr(price)}")
    return price


MAX_PRICE_EXPONENT = 17
MIN_PRICE_EXPONENT = -40
MAX_PRICE_DIGITS = 40
"""Bounds of a price: below 1e18, at least 1e-40 unless 0, at most 40 significant digits. Within them every cost
of up to 2**63-1 tokens is exact in the 60-digit money context; beyond them arithmetic would overflow or round."""


Price = Annotated[Decimal, PlainValidator(_to_price), PlainSerializer(str, when_used="json")]
"""A non-negative, finite ``Decimal``; JSON numbers or decimal strings in, decimal strings out."""


def _real_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"must be a number, got {type(value).__name__}")
    return float(value)


NonNegativeFloat = Annotated[float, BeforeValidator(_real_number), Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, BeforeValidator(_real_number), Field(ge=0, le=1, allow_inf_nan=False)]
MONEY_CONTEXT = Context(prec=60)
"""The decimal context of every sum and product of money: 60 significant digits, so no realistic total rounds."""

MAX_INT = 2**63 - 1
"""The largest integer accepted in a definition or a saved file (a signed 64-bit integer)."""
PositiveInt = Annotated[int, Strict(), Field(gt=0, le=MAX_INT)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0, le=MAX_INT)]
NonEmptyStr = Annotated[str, Strict(), Field(min_length=1)]
Version = Annotated[str, Strict(), AfterValidator(validate_version)]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def _to_provider(value: object) -> ProviderType | str:
    if isinstance(value, ProviderType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError("must be a non-empty string")
    if ":" in value:
        # The key is f"{provider}:{id}"; a colon in the provider would make two models share a key.
        raise ValueError(f"must not contain ':', got {value!r}")
    known = _known_provider(value)
    return value if known is None else known  # anything else is a custom provider, kept as written


KNOWN_PROVIDERS: dict[str, ProviderType] = {p.value: p for p in ProviderType}
"""The built-in providers by name; any other name is a custom provider."""

PROVIDER_SYNONYMS: dict[str, ProviderType] = {
    **{p.value: p for p in ProviderType},
    "anthropic": ProviderType.CLAUDE,
    "llama-cpp": ProviderType.LLAMA_CPP,
    "llama_cpp": ProviderType.LLAMA_CPP,
    "llamacpp": ProviderType.LLAMA_CPP,
}
"""Other spellings of the built-in providers, lower case: ``Anthropic``, ``OpenAI`` or ``llama_cpp`` name a built-in
provider, never a new custom one."""


def normalize_provider(value: str) -> str:
    """The provider name ``value`` stands for: a built-in provider's value for any case or synonym of it
    (``"Anthropic"`` -> ``"claude"``), else ``value`` itself.

    >>> normalize_provider("OpenAI"), normalize_provider("anthropic"), normalize_provider("mistral")
    ('openai', 'claude', 'mistral')
    """
    known = _known_provider(value)
    return value if known is None else known.value


def _known_provider(value: str) -> ProviderType | None:
    return KNOWN_PROVIDERS.get(value) or PROVIDER_SYNONYMS.get(value.strip().lower())


Provider = Annotated[ProviderType | str, PlainValidator(_to_provider), PlainSerializer(str, when_used="json")]


def construct_trusted(cls: type[_S], fields: dict[str, Any]) -> _S:
    """An instance of ``cls`` holding ``fields`` (every field, already valid) without validation.

    For snapshots of state the registry validated when it came in: several times faster than
    ``model_construct``, which re-derives defaults and the fields set. ``fields`` is owned by the result.
    """
    return build_trusted(cls, fields, set(fields))


# BaseModel's slots, set directly: an instance is built without going through pydantic's __setattr__.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def build_trusted(schema: type[_S], values: dict[str, Any], fields_set: set[str]) -> _S:
    """An instance of ``schema`` as validation would leave it: ``values`` (every field, in field order, already
    checked) as its ``__dict__``, ``fields_set`` (the fields the input gave) as its fields set; both are owned by
    the result. Like :func:`construct_trusted`, with the fields set of validation (for importers)."""
    obj = object.__new__(schema)
    _set_dict(obj, values)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def schema_shape(schema: type[BaseModel]) -> tuple[Any, ...]:
    """A fingerprint of ``schema``: each field's name, default and default factory, and its field validators;
    ``()`` when it has model validators or allows extra fields. Code that mirrors a schema's rules (an importer
    building models without validation) compares it with the shape it was written for."""
    decorators = schema.__pydantic_decorators__
    fields = tuple(
        (name, ... if info.default is PydanticUndefined else info.default, info.default_factory)
        for name, info in schema.model_fields.items()
    )
    hooks = (decorators.model_validators, decorators.validators, decorators.root_validators)
    if any(hooks) or schema.model_config.get("extra") != "forbid":
        return ()  # never what is mirrored
    return (*fields, tuple(decorators.field_validators))


def shallow_copy(model: _S) -> _S:
    """A copy of a validated model sharing its field values: independent when they are all immutable (Decimal,
    int, str, datetime, enums); containers inside are shared."""
    return construct_trusted(type(model), dict(model.__dict__))


def field_names(schema: type[BaseModel]) -> dict[str, str]:
    """Each field's snake_case name by that name and by its camelCase alias (for updates in either spelling)."""
    names: dict[str, str] = {}
    for name, info in schema.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
    return names


def merge_arguments(
    what: str, given: BaseModel | Mapping[str, Any] | None, schema: type[BaseModel], keywords: dict[str, Any]
) -> dict[str, Any]:
    """The fields a caller set: an instance of ``schema`` or a mapping (or ``None``), overridden by ``keywords``.

    Raises :class:`ConfigError` when ``given`` is neither.
    """
    data: dict[str, Any] = {}
    if isinstance(given, schema):
        data.update(given.model_dump(by_alias=False, exclude_unset=True))
    elif given is not None:
        if not isinstance(given, Mapping):
            raise ConfigError(f"{what} must be a mapping, got {type(given).__name__}")
        data.update(given)
    data.update(keywords)
    return data


def model_key(provider: str, model_id: str) -> str:
    """The registry key of a model: ``f"{provider}:{id}"``, e.g. ``"openai:gpt-4o"``."""
    return f"{provider}:{model_id}"


def utc_from_timestamp(seconds: float) -> datetime:
    """The timezone-aware UTC ``datetime`` for ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


def _camel(name: str) -> str:
    # pydantic's to_camel gives "cacheWrite1HTokens" for cache_write_1h_tokens; the JSON name is cacheWrite1hTokens.
    return to_camel(name).replace("1H", "1h")


_BUILD_LOCK = threading.RLock()
"""Held while a schema's validator and serializer are built, so that concurrent first uses build each once."""


class _Schema(BaseModel):
    """Common configuration: camelCase aliases, both spellings accepted, unknown fields rejected.

    Validators and serializers are built on a schema's first use, not at import (``defer_build``): building all of
    them at import cost about 10 ms, most of the package's import time beyond its dependencies'. The first
    validation, serialization, validated assignment or JSON schema of a model builds it, through
    :meth:`model_rebuild`, once and under a lock; instances made without validation (:func:`construct_trusted`,
    ``model_construct``) need no validator until then.
    """

    model_config = ConfigDict(
        alias_generator=_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        validate_assignment=True,
        use_enum_values=False,
        defer_build=True,
    )

    @classmethod
    def model_rebuild(
        cls,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Mapping[str, Any] | None = None,
    ) -> bool | None:
        """Build the schema's validator and serializer (pydantic's deferred build calls this on first use).

        Serialised by a lock: two threads using a model for the first time at once must not build it at once
        (pydantic before 2.14 is not thread-safe there). Names in annotations resolve in this module alone, as
        they did when every model was built at import, never in the namespace of the caller's frame (where a
        ``Version`` or a ``Price`` of its own would otherwise take precedence).
        """
        if cls.__pydantic_complete__ and not force:
            return None
        with _BUILD_LOCK:
            return super().model_rebuild(
                force=force,
                raise_errors=raise_errors,
                _parent_namespace_depth=0,
                _types_namespace={} if _types_namespace is None else _types_namespace,
            )


# --------------------------------------------------------------------------- model definitions


class PriceTier(_Schema):
    """Long-context prices: when a request's input exceeds ``above_input_tokens`` (strictly), its tokens bill at
    these prices. A tier may change only some prices: each price it leaves out is the one in force below it (the
    base price, or that of the highest lower tier the request also crosses), so each kind of price carries upward
    across every threshold the request crosses. A tier states at least one price."""

    above_input_tokens: NonNegativeInt
    input_tokens: Price | None = None
    output_tokens: Price | None = None
    cached_input_tokens: Price | None = None
    cache_write_tokens: Price | None = None
    cache_write_1h_tokens: Price | None = None


PRICE_KINDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
)
"""The price fields a price level (base, tier, service tier) can state, in this order."""


def _check_tiers(tiers: list[PriceTier] | None) -> list[PriceTier] | None:
    if tiers:
        thresholds = [t.above_input_tokens for t in tiers]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError(f"tier thresholds must be distinct, got {thresholds}")
        for index, tier in enumerate(tiers):
            if all(getattr(tier, kind) is None for kind in PRICE_KINDS):
                raise ValueError(f"tier [{index}] (above {tier.above_input_tokens}) states no price")
        tiers = sorted(tiers, key=lambda t: t.above_input_tokens)
    return tiers


Tiers = Annotated[list[PriceTier] | None, AfterValidator(_check_tiers)]


class ServiceTierPrices(_Schema):
    """Prices of a service tier (``batch``, ``flex``, ``priority``), in the model's ``per``.

    A price the service tier leaves out, at its base or at a long-context threshold, is the standard one (see
    :func:`noa_ai_provider.cost.request_rates`; ``batch`` has rules of its own). At least one price is stated.
    """

    input_tokens: Price | None = None
    output_tokens: Price | None = None
    cached_input_tokens: Price | None = None
    cache_write_tokens: Price | None = None
    cache_write_1h_tokens: Price | None = None
    tiers: Tiers = None


ServiceTier = Literal["batch", "flex", "priority"]
SERVICE_TIERS: tuple[str, ...] = ("batch", "flex", "priority")


def _check_service_tiers(value: dict[str, ServiceTierPrices] | None) -> dict[str, ServiceTierPrices] | None:
    for name, prices in (value or {}).items():
        if all(getattr(prices, kind) is None for kind in PRICE_KINDS) and not prices.tiers:
            raise ValueError(f"service tier {name!r} states no price")
    return value


ServiceTiers = Annotated[dict[ServiceTier, ServiceTierPrices] | None, AfterValidator(_check_service_tiers)]


class ModelCost(_Schema):
    """Prices of a model, per ``per`` tokens.

    ``input_tokens`` and ``output_tokens`` are the base prices; ``cached_input_tokens`` (cache reads) and
    ``cache_write_tokens`` (cache creation, the default 5-minute lifetime) default to the input price when missing
    (an explicit 0 means free); ``cache_write_1h_tokens`` (Anthropic's 1-hour cache writes) defaults to the cache
    write price; ``tiers`` are long-context prices; ``service_tiers`` prices for ``batch``, ``flex`` and
    ``priority``. The rules are those of :func:`noa_ai_provider.cost.request_rates`.
    """

    input_tokens: Price
    output_tokens: Price
    cached_input_tokens: Price | None = None
    cache_write_tokens: Price | None = None
    cache_write_1h_tokens: Price | None = None
    tiers: Tiers = None
    service_tiers: ServiceTiers = None
    currency: NonEmptyStr = "USD"
    per: PositiveInt = 1000
    note: str | None = None


class RateLimitConfig(_Schema):
    """Limits of a model over trailing windows; every limit is optional.

    ``tokens_*`` count input plus output tokens; ``input_tokens_per_minute`` and ``output_tokens_per_minute``
    count them apart (as Anthropic does). ``count_cache_reads=False`` (JSON ``countCacheReads``) leaves the tokens
    read from the provider's cache out of every token limit, as Anthropic's input-tokens-per-minute limit does on
    current models; cache writes always count.
    """

    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None
    requests_per_day: PositiveInt | None = None
    tokens_per_day: PositiveInt | None = None
    input_tokens_per_minute: PositiveInt | None = None
    output_tokens_per_minute: PositiveInt | None = None
    count_cache_reads: Annotated[bool, Strict()] = True
    note: str | None = None


def _check_aliases(value: list[str]) -> list[str]:
    for alias in value:
        if alias != alias.strip() or not alias:
            raise ValueError(f"an alias must be a non-empty name without surrounding spaces, got {alias!r}")
    return list(dict.fromkeys(value))


Aliases = Annotated[list[NonEmptyStr], AfterValidator(_check_aliases)]


class ExtendedModelInfo(_Schema):
    """A model definition as it appears in a models-config file.

    ``aliases`` are other names the registry resolves to this model (a dated snapshot name, a catalogue's name);
    see :meth:`~noa_ai_provider.EnhancedModelRegistry.resolve_key`.
    """

    id: NonEmptyStr
    name: NonEmptyStr
    provider: Provider
    version: Version
    aliases: Aliases = Field(default_factory=list)
    context_window: PositiveInt | None = None
    max_tokens: PositiveInt | None = None
    capabilities: list[ModelCapability] = Field(default_factory=list)
    cost: ModelCost | None  # required; null marks a model whose price is unknown (estimates raise, never $0)
    rate_limit: RateLimitConfig | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: ModelStatus = ModelStatus.AVAILABLE

    @field_validator("capabilities")
    @classmethod
    def _dedupe(cls, value: list[ModelCapability]) -> list[ModelCapability]:
        return list(dict.fromkeys(value))

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        tags = value.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise ValueError("tags must be a list of strings")
        problem = json_problem(value, MAX_METADATA_DEPTH)
        if problem is not None:
            raise ValueError(problem)
        return value


MAX_METADATA_DEPTH = 48
"""How deep ``metadata`` may nest (objects and lists): what the saved file's reader allows, with room to spare."""

_JSON_SCALARS = (str, bool, type(None))


def json_problem(value: Any, max_depth: int, where: str = "") -> str | None:
    """Why ``value`` cannot be saved as JSON and read back the same (a set, a NaN, a non-string key, an integer
    beyond 64 bits, nesting deeper than ``max_depth``), naming where; ``None`` when it can.

    >>> json_problem({"a": [1, {"b": float("nan")}]}, 10)
    'a[1].b: NaN and Infinity cannot be saved (JSON has no such numbers)'
    """
    stack: list[tuple[Any, str, int]] = [(value, where, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, _JSON_SCALARS):
            continue
        if isinstance(item, int):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                return f"{path or '(value)'}: integers beyond 64 bits cannot be saved, got {short_repr(item)}"
            continue
        if isinstance(item, float | Decimal):
            finite = math.isfinite(item) if isinstance(item, float) else item.is_finite()
            if not finite:
                return f"{path or '(value)'}: NaN and Infinity cannot be saved (JSON has no such numbers)"
            if isinstance(item, Decimal) and (len(item.as_tuple().digits) > 100 or abs(item.adjusted()) > 1000):
                return f"{path or '(value)'}: a number this large cannot be saved and read back, got {short_repr(item)}"
            continue
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"{path or '(value)'}: nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        return f"{path or '(value)'}: keys must be strings, got {short_repr(key)}"
                    stack.append((child, f"{path}.{key}" if path else key, depth + 1))
            else:
                stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
            continue
        return f"{path or '(value)'}: a {type(item).__name__} cannot be saved as JSON"
    return None


class ModelInfo(_Schema):
    """A model of the legacy :class:`~noa_ai_provider.ModelRegistry`: no cost, no rate limit."""

    id: NonEmptyStr
    provider: Provider
    name: NonEmptyStr | None = None
    version: Version | None = None
    context_window: PositiveInt | None = None
    max_tokens: PositiveInt | None = None
    capabilities: list[ModelCapability] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: ModelStatus = ModelStatus.AVAILABLE

    @model_validator(mode="after")
    def _default_name(self) -> ModelInfo:
        if self.name is None:
            self.__dict__["name"] = self.id  # bypass validate_assignment's re-entry
        return self


class ModelUsageStats(_Schema):
    """Usage counters of one model since ``last_reset``."""

    total_input_tokens: NonNegativeInt = 0
    total_output_tokens: NonNegativeInt = 0
    total_cached_input_tokens: NonNegativeInt = 0  # part of total_input_tokens read from the provider's cache
    total_cache_write_tokens: NonNegativeInt = 0  # part of total_input_tokens written to the cache
    total_cost: Price = Decimal(0)
    currency: NonEmptyStr = "USD"
    last_reset: UtcDatetime
    request_count: NonNegativeInt = 0
    successful_requests: NonNegativeInt = 0
    failed_requests: NonNegativeInt = 0


class ModelPerformanceMetrics(_Schema):
    """Performance figures reported by the application (the registry does not measure them)."""

    average_latency: NonNegativeFloat = 0.0
    tokens_per_second: NonNegativeFloat = 0.0
    total_inferences: NonNegativeInt = 0
    success_rate: Fraction = 0.0
    memory_usage: NonNegativeFloat = 0.0
    last_updated: UtcDatetime | None = None


class EnhancedModelRegistryEntry(ExtendedModelInfo):
    """A registered model: its definition plus the registry's bookkeeping. Handed out as a snapshot."""

    key: NonEmptyStr
    registered_at: UtcDatetime
    updated_at: UtcDatetime
    last_accessed: UtcDatetime | None = None
    access_count: NonNegativeInt = 0
    usage_stats: ModelUsageStats
    performance_metrics: ModelPerformanceMetrics | None = None


# --------------------------------------------------------------------------- queries and results


def _valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


class EnhancedModelSearchQuery(_Schema):
    """Search filters; every given filter must hold. See :func:`noa_ai_provider.search.matches`."""

    provider: Provider | None = None
    capability: ModelCapability | None = None
    min_context_window: NonNegativeInt | None = None
    max_context_window: NonNegativeInt | None = None
    name_pattern: Annotated[str | None, AfterValidator(_valid_regex)] = None
    tags: list[Annotated[str, Strict()]] | None = None
    status: ModelStatus | None = None
    max_cost_per_token: Price | None = None
    min_version: Version | None = None
    max_version: Version | None = None
    exclude_deprecated: Annotated[bool, Strict()] = False


class EnhancedRegistryStatistics(_Schema):
    """Aggregate figures over every registered model.

    ``total_cost`` adds every model's cost whatever its currency (as the seed does); ``cost_by_currency`` keeps
    them apart.
    """

    total_models: int
    provider_counts: dict[str, int]
    capability_counts: dict[str, int]
    status_counts: dict[str, int]
    total_accesses: int
    average_access_count: float
    total_cost: Decimal
    total_input_tokens: int
    total_output_tokens: int
    total_requests: int = 0
    cost_by_currency: dict[str, Decimal] = Field(default_factory=dict)


class BudgetStatus(_Schema):
    """Where a budget stands: ``spent`` in the current period, ``reserved`` by open reservations (worst case)."""

    key: str | None  # the model key, or None for the global budget
    period: Literal["day", "week", "month", "total"]
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    remaining: Decimal  # limit - spent - reserved (may be negative once exceeded)
    warn_at: Decimal
    period_start: datetime | None
    period_end: datetime | None


class UsageHistoryEntry(_Schema):
    """One model's usage on one UTC day."""

    key: str
    date: date_type
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cached_input_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0
    requests: NonNegativeInt = 0
    cost: Price = Decimal(0)


@dataclass(frozen=True, slots=True)
class RateLimitCheck:
    """The answer of ``check_rate_limit``.

    ``reason`` names the limit that would be exceeded (``"requests per minute"``, ``"tokens per minute"``,
    ``"requests per day"``); ``retry_after`` is the number of seconds until the request would be allowed, or
    ``None`` when it never can be (more tokens than the per-minute token limit).
    """

    allowed: bool
    reason: str | None = None
    retry_after: float | None = None


class EnhancedModelRegistryConfig(_Schema):
    """Constructor settings of :class:`~noa_ai_provider.EnhancedModelRegistry` (the seed's defaults)."""

    persistence_path: Path = Path("./data/enhanced-model-registry.json")
    auto_save: Annotated[bool, Strict()] = True
    auto_save_interval: Annotated[float, BeforeValidator(_real_number), Field(gt=0)] = 60.0
    models_config_path: Path = Path("./config/models-config.json")
    auto_load_config: Annotated[bool, Strict()] = False


# --------------------------------------------------------------------------- errors


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in {"json-or-python[json=...]"}:
            continue  # pydantic's internal validator names are not part of the field path
        else:
            out += f".{part}" if out else part
    return out or "(root)"


def short_repr(value: object) -> str:
    """``repr(value)`` cut to 40 characters, for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_validation_error(exc: ValidationError, where: str = "") -> str:
    """One readable message for ``exc``: every failing field as ``path: problem``, prefixed by ``where``."""
    lines = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the schema)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"].endswith("_type") or err["type"] in {"enum", "literal_error"}:
            msg = f"{msg} (got {type(err['input']).__name__} {short_repr(err['input'])})"
        lines.append(f"{_path(err['loc'])}: {msg}")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(lines)


def validate_models(schema: type[_S], items: object, where: str = "models") -> list[_S]:
    """Validate a list of models, all or nothing; the error names ``where[index] (id ...)`` and the field.

    Raises :class:`ConfigError` when ``items`` is not a list or any item is invalid.
    """
    if isinstance(items, tuple):
        items = list(items)
    if not isinstance(items, list):
        raise ConfigError(f"{where}: expected a list of models, got {type(items).__name__}")
    models = [validate_or_raise(schema, item, item_label(where, index, item)) for index, item in enumerate(items)]
    check_unique_keys(models, where)
    return models


def check_unique_keys(models: list[Any], where: str = "models") -> None:
    """Raise :class:`ConfigError` when two of ``models`` (validated: their providers normalised) share a key,
    naming both: ``models[1] (id 'a'): duplicates models[0] (key openai:a)``. One list defining a model twice is
    a mistake (which one was meant?), never silently resolved by the last one winning."""
    first: dict[str, int] = {}
    for index, model in enumerate(models):
        provider = getattr(model, "provider", None)
        if provider is None:
            continue  # legacy models without a provider are keyed by their callers
        key = model_key(str(provider), model.id)
        seen = first.setdefault(key, index)
        if seen != index:
            listed = where.rsplit(": ", 1)[-1]  # "models", also when `where` starts with the file's name
            raise ConfigError(f"{item_label(where, index, model)}: duplicates {listed}[{seen}] (key {key})")


def item_label(where: str, index: int | None, item: object) -> str:
    """``where[index] (id 'x')``: how errors name one model of a list (``where (id 'x')`` without an index)."""
    ident = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
    place = where if index is None else f"{where}[{index}]"
    return place + (f" (id {ident!r})" if ident is not None else "")


def validate_or_raise(schema: type[_S], data: object, where: str = "") -> _S:
    """Validate ``data`` (a mapping or an instance) as ``schema``; raise ``ConfigError`` naming each field.

    An instance of ``schema`` is re-validated from its dump, so one built with ``model_construct`` or changed
    attribute by attribute cannot slip past the rules.
    """
    if isinstance(data, BaseModel):
        data = data.model_dump(by_alias=False, include=set(schema.model_fields) & set(type(data).model_fields))
    elif not isinstance(data, dict):
        raise ConfigError(f"{where + ': ' if where else ''}expected an object, got {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


_DEFINITION_FIELDS = tuple(ExtendedModelInfo.model_fields)


def definition_of(entry: EnhancedModelRegistryEntry) -> ExtendedModelInfo:
    """The model definition inside a validated registry entry: its values shared, not validated again."""
    return construct_trusted(ExtendedModelInfo, {f: entry.__dict__[f] for f in _DEFINITION_FIELDS})
