"""The catalogue: the model definitions a registry holds, by key, and the one way to define or remove one.

A definition is an :class:`~noa_ai_provider.schemas.ExtendedModelInfo` the catalogue owns (its own copy, never
changed in place: a change replaces it), with when it was registered and last updated. Every change goes through
:meth:`Catalog.put` (register or redefine) and :meth:`Catalog.remove`, which keep the store's live state in step
(:meth:`~noa_ai_provider.stores.Store.define`, :meth:`~noa_ai_provider.stores.Store.forget`).

Not thread-safe by itself: the registry holds :attr:`Catalog.lock` around every call (and takes the store's lock,
if ever, only after it).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from .errors import AmbiguousModelError, ModelNotFoundError
from .names import NameIndex
from .schemas import (
    SERVICE_TIERS,
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    ModelCapability,
    ModelCost,
    ModelPerformanceMetrics,
    ModelStatus,
    ModelUsageStats,
    PriceTier,
    RateLimitConfig,
    ServiceTierPrices,
    construct_trusted,
    shallow_copy,
    utc_from_timestamp,
)
from .search import cost_per_token
from .stores.base import Store

__all__ = ["Catalog", "Defined", "currency_of", "make_entry", "own_copy", "validated_instance"]

_INFINITY = Decimal("Infinity")

_ATOMIC = frozenset({str, int, float, bool, Decimal, type(None)})


def _copy_value(value: Any) -> Any:
    # Metadata is JSON-like almost always; copying dicts and lists by hand is ~10x faster than deepcopy, and the
    # scalars inside them (the bulk of it) are taken as they are, without a call each.
    if isinstance(value, dict):
        return {k: v if type(v) in _ATOMIC else _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _ATOMIC else _copy_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | Decimal | bool):
        return value
    return copy.deepcopy(value)


_P = TypeVar("_P", ModelCost, ServiceTierPrices)


def _clone_prices(prices: _P) -> _P:
    # Prices hold containers (tiers, service tiers): those are copied one level down too.
    fields = dict(prices.__dict__)
    if prices.tiers is not None:
        fields["tiers"] = [shallow_copy(tier) for tier in prices.tiers]
    service = fields.get("service_tiers")
    if service is not None:
        fields["service_tiers"] = {name: _clone_prices(tier) for name, tier in service.items()}
    return construct_trusted(type(prices), fields)


def _ordered_tiers(tiers: object) -> bool:
    # What schemas.Tiers leaves after validation: PriceTier instances (validate_assignment guards their fields)
    # with strictly increasing thresholds. A list changed in place may have lost that: then the full way, which
    # sorts it (or rejects a repeated threshold).
    if tiers is None:
        return True
    if type(tiers) is not list:
        return False
    below = -1
    for tier in tiers:
        if type(tier) is not PriceTier or tier.above_input_tokens <= below:
            return False
        below = tier.above_input_tokens
    return True


def _validated_prices(cost: object) -> bool:
    if cost is None:
        return True
    if type(cost) is not ModelCost or not _ordered_tiers(cost.tiers):
        return False
    service = cost.service_tiers
    return service is None or (
        type(service) is dict
        and all(
            type(name) is str and name in SERVICE_TIERS and type(prices) is ServiceTierPrices
            for name, prices in service.items()
        )
        and all(_ordered_tiers(prices.tiers) for prices in service.values())
    )


def validated_instance(item: object) -> bool:
    # An ExtendedModelInfo was validated when built, and validate_assignment guards its attributes; what a caller
    # can still change unchecked is inside containers, so those are checked here (catalogue imports hand us
    # thousands of fresh instances, and validating each again would double the cost of loading them): the
    # capabilities (members, no repeats), the tags, the price tiers (order) and service tiers (names).
    if type(item) is not ExtendedModelInfo:
        return False
    capabilities = item.capabilities
    tags = item.metadata.get("tags") if isinstance(item.metadata, dict) else None
    return (
        all(type(c) is ModelCapability for c in capabilities)
        and len(set(capabilities)) == len(capabilities)
        and isinstance(item.metadata, dict)
        and (tags is None or (isinstance(tags, list) and all(isinstance(t, str) for t in tags)))
        and _validated_prices(item.cost)
        and (item.rate_limit is None or type(item.rate_limit) is RateLimitConfig)
        and type(item.status) is ModelStatus
    )


def own_copy(model: ExtendedModelInfo) -> ExtendedModelInfo:
    # The registry keeps its own copy, so the caller changing their instance later changes nothing here.
    fields = dict(model.__dict__)
    fields["capabilities"] = list(model.capabilities)
    fields["metadata"] = _copy_value(model.metadata)
    fields["cost"] = None if model.cost is None else _clone_prices(model.cost)
    fields["rate_limit"] = None if model.rate_limit is None else shallow_copy(model.rate_limit)
    return construct_trusted(ExtendedModelInfo, fields)


def _rank_cost(model: ExtendedModelInfo) -> Decimal:
    # Ranked on often and changed only with the definition, so kept per definition; an unpriced model ranks last.
    unit = cost_per_token(model.cost)
    return _INFINITY if unit is None else unit


def currency_of(model: ExtendedModelInfo) -> str:
    """The currency of ``model``'s prices (USD when it has none)."""
    return "USD" if model.cost is None else model.cost.currency


def make_entry(
    key: str,
    model: ExtendedModelInfo,
    registered_at: datetime,
    updated_at: datetime,
    last_accessed: datetime | None,
    access_count: int,
    usage_stats: ModelUsageStats,
    metrics: ModelPerformanceMetrics | None,
) -> EnhancedModelRegistryEntry:
    """An entry as callers get it: everything in here was validated when it came in; only containers and nested
    models are copied, so changing the entry never changes the registry."""
    return construct_trusted(
        EnhancedModelRegistryEntry,
        {
            "id": model.id,
            "name": model.name,
            "provider": model.provider,
            "version": model.version,
            "aliases": list(model.aliases),
            "context_window": model.context_window,
            "max_tokens": model.max_tokens,
            "capabilities": list(model.capabilities),
            "cost": None if model.cost is None else _clone_prices(model.cost),
            "rate_limit": None if model.rate_limit is None else shallow_copy(model.rate_limit),
            "metadata": _copy_value(model.metadata),
            "status": model.status,
            "key": key,
            "registered_at": registered_at,
            "updated_at": updated_at,
            "last_accessed": last_accessed,
            "access_count": access_count,
            "usage_stats": usage_stats,
            "performance_metrics": None if metrics is None else shallow_copy(metrics),
        },
    )


class Defined:
    """One model's definition in the catalogue: the model, when registered and last updated, its rank cost."""

    __slots__ = ("model", "rank_cost", "registered_at", "updated_at")

    def __init__(self, model: ExtendedModelInfo, now: float) -> None:
        stamp = utc_from_timestamp(now)
        self.model = model
        self.registered_at = stamp
        self.updated_at = stamp
        self.rank_cost = _rank_cost(model)


class Catalog:
    """The definitions of a registry, by key, in registration order. Callers hold :attr:`lock`."""

    def __init__(self, store: Store) -> None:
        self.lock = threading.Lock()
        self.store = store
        self.defs: dict[str, Defined] = {}
        self.version = 0  # bumped by every change of a definition
        self._names: NameIndex | None = None  # every name of every model (aliases...): see resolve
        self._generation = 0  # bumped when a model comes, goes or changes its aliases
        self._names_stamp: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.defs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.defs)

    def put(self, key: str, model: ExtendedModelInfo, now: float) -> tuple[bool, Defined]:
        """Register ``model`` under ``key``, or replace its definition (its usage, metrics and windows stay);
        ``(True, ...)`` when the key is new. The store learns the model's limits."""
        self.store.define(key, model.rate_limit, now)  # first: a store that cannot take it changes nothing here
        defined = self.defs.get(key)
        new = defined is None
        if defined is None:
            defined = self.defs[key] = Defined(model, now)
            self._generation += 1
        else:
            if model.aliases != defined.model.aliases:
                self._generation += 1
            defined.model = model
            defined.rank_cost = _rank_cost(model)
            defined.updated_at = utc_from_timestamp(now)
        self.version += 1
        return new, defined

    def remove(self, key: str, now: float, *, retire: bool = False) -> Defined | None:
        """Remove ``key`` (``None`` when absent). The store forgets its usage (``retire``: keeps it in the
        totals) and keeps its windows for a day."""
        defined = self.defs.pop(key, None)
        if defined is not None:
            self._generation += 1
            self.store.forget(key, now, retire=currency_of(defined.model) if retire else None)
            self.version += 1
        return defined

    def get(self, key: str) -> Defined:
        """The definition under the exact ``key``, or :class:`ModelNotFoundError`."""
        defined = self.defs.get(key)
        if defined is None:
            raise ModelNotFoundError(key)
        return defined

    def lookup(self, name: str) -> tuple[str, Defined]:
        """The key and definition ``name`` stands for (a key, an alias, a dated snapshot...), or
        :class:`ModelNotFoundError` (with suggestions) / :class:`AmbiguousModelError`."""
        defined = self.defs.get(name)
        if defined is not None:
            return name, defined
        key = self.resolve(name)
        return key, self.defs[key]

    def find(self, name: str) -> tuple[str, Defined] | None:
        """:meth:`lookup` for getters: ``None`` when nothing fits (an ambiguous name still raises)."""
        try:
            return self.lookup(name)
        except AmbiguousModelError:
            raise
        except ModelNotFoundError:
            return None

    def resolve(self, name: object) -> str:
        """The key ``name`` stands for (see :mod:`noa_ai_provider.names`)."""
        if not isinstance(name, str):
            raise ModelNotFoundError(repr(name))
        if name in self.defs:
            return name
        index = self._name_index()
        found = index.resolve(name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousModelError(name, found)
        raise ModelNotFoundError(name, index.suggestions(name))

    def _name_index(self) -> NameIndex:
        # Rebuilt when a model came, went or changed its aliases since the last build.
        stamp = (self._generation, len(self.defs))
        if self._names is None or self._names_stamp != stamp:
            self._names = NameIndex((key, defined.model) for key, defined in self.defs.items())
            self._names_stamp = stamp
        return self._names

    def currencies(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """The currency of each key's prices (USD when unpriced)."""
        defs = self.defs
        return {k: currency_of(defs[k].model) for k in (defs if keys is None else keys) if k in defs}
