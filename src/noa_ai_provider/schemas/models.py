"""Model definitions: a models-config file's definition, the legacy registry's model, a registered entry."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any

from . import html
from .base import (
    MAX_INT,
    AfterValidator,
    Field,
    _Schema,
    construct_trusted,
    field_validator,
    model_validator,
    short_repr,
)
from .enums import ModelCapability, ModelStatus
from .fields import NonEmptyStr, NonNegativeInt, PositiveInt, Provider, UtcDatetime, Version
from .limits import RateLimitConfig
from .prices import ModelCost
from .stats import ModelPerformanceMetrics, ModelUsageStats

__all__ = [
    "MAX_METADATA_DEPTH",
    "Aliases",
    "EnhancedModelRegistryEntry",
    "ExtendedModelInfo",
    "ModelInfo",
    "definition_of",
    "json_problem",
]


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

    .. versionchanged:: 0.2.0
       The ``aliases`` field; ``metadata`` that JSON cannot hold or that nests too deep is refused.
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


class EnhancedModelRegistryEntry(ExtendedModelInfo):
    """A registered model: its definition plus the registry's bookkeeping. Handed out as a snapshot.

    .. versionchanged:: 0.2.0
       Carries ``aliases`` (see :class:`ExtendedModelInfo`); shown as HTML in Jupyter.
    """

    key: NonEmptyStr
    registered_at: UtcDatetime
    updated_at: UtcDatetime
    last_accessed: UtcDatetime | None = None
    access_count: NonNegativeInt = 0
    usage_stats: ModelUsageStats
    performance_metrics: ModelPerformanceMetrics | None = None

    def _repr_html_(self) -> str:
        """The model as HTML: its definition, prices per 1M tokens, limits and usage."""
        return entry_html(self)


_DEFINITION_FIELDS = tuple(ExtendedModelInfo.model_fields)


def definition_of(entry: EnhancedModelRegistryEntry) -> ExtendedModelInfo:
    """The model definition inside a validated registry entry: its values shared, not validated again."""
    return construct_trusted(ExtendedModelInfo, {f: entry.__dict__[f] for f in _DEFINITION_FIELDS})


_PRICE_KINDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached input", "cached_input_tokens"),
    ("cache write (5 min)", "cache_write_tokens"),
    ("cache write (1 h)", "cache_write_1h_tokens"),
)
_LIMITS = (
    ("requests / min", "requests_per_minute"),
    ("tokens / min", "tokens_per_minute"),
    ("input tokens / min", "input_tokens_per_minute"),
    ("output tokens / min", "output_tokens_per_minute"),
    ("requests / day", "requests_per_day"),
    ("tokens / day", "tokens_per_day"),
)


def entry_html(entry: EnhancedModelRegistryEntry) -> str:
    """An entry as HTML tables: the model, its prices per 1M tokens (standard, long-context tiers and service
    tiers), its configured limits, and its usage."""
    usage = entry.usage_stats
    parts = [
        html.fields_table(
            entry.key,
            [
                ("name", entry.name),
                ("provider", str(entry.provider)),
                ("version", entry.version),
                ("status", entry.status.value),
                ("context window", entry.context_window),
                ("max output tokens", entry.max_tokens),
                ("capabilities", ", ".join(c.value for c in entry.capabilities) or None),
                ("aliases", ", ".join(entry.aliases) if entry.aliases else None),
            ],
        )
    ]
    cost = entry.cost
    if cost is None:
        parts.append("<p>No price: its usage is counted, never its cost.</p>")
    else:
        header = ("prices per 1M tokens", *(label for label, _ in _PRICE_KINDS))
        rows: list[list[Any]] = [["standard", *(html.per_million(getattr(cost, f), cost.per) for _, f in _PRICE_KINDS)]]
        for tier in cost.tiers or ():
            prices = (html.per_million(getattr(tier, f), cost.per) for _, f in _PRICE_KINDS)
            rows.append([f"input above {tier.above_input_tokens:,}", *prices])
        for name, prices_of in (cost.service_tiers or {}).items():
            prices = (html.per_million(getattr(prices_of, f), cost.per) for _, f in _PRICE_KINDS)
            rows.append([f"service tier {name}", *prices])
        parts.append(html.table(f"Prices ({cost.currency})", header, rows, right=range(1, 6)))
    limit = entry.rate_limit
    if limit is not None:
        parts.append(html.fields_table("Rate limits", [(label, getattr(limit, f)) for label, f in _LIMITS]))
    parts.append(
        html.fields_table(
            "Usage",
            [
                ("requests", usage.request_count),
                ("failed", usage.failed_requests),
                ("input tokens", usage.total_input_tokens),
                ("cached input tokens", usage.total_cached_input_tokens),
                ("cache write tokens", usage.total_cache_write_tokens),
                ("output tokens", usage.total_output_tokens),
                (f"cost ({usage.currency})", usage.total_cost),
            ],
        )
    )
    return "".join(parts)
