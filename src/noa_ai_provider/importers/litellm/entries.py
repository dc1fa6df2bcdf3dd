"""One LiteLLM entry as the fields of an :class:`~noa_ai_provider.schemas.ExtendedModelInfo`: ``alias_of``
resolved, the provider, the mode and capability flags, token limits, deprecation, metadata (tags and every field
not mapped) and the prices (:mod:`.prices`); or the reason to skip it, raised as ``EntryError``.

Entries share a few key sequences, prices and dates, so :class:`Converter` plans each sequence of keys once
(:class:`_Plan`) and remembers what it converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from ...schemas import KNOWN_PROVIDERS, ModelCapability, ModelStatus, ProviderType
from ...versions import validate_version
from ..common import EntryError, describe, map_provider
from .prices import (
    DEFAULT_CACHE_READ_SHARE,
    EMBEDDING_NOTE,
    PER,
    PriceConverter,
    PriceKind,
    default_cache_read,
    free_output,
    non_negative_int,
    price_kind,
)
from .reading import Repeated

__all__ = ["DISTINCT_CAPABILITIES", "VERSION", "Converter"]

VERSION: Final = validate_version("1.0.0")

_MODE_CAPABILITIES: Final = {
    "chat": ModelCapability.CHAT_COMPLETION,
    "responses": ModelCapability.CHAT_COMPLETION,
    "completion": ModelCapability.TEXT_GENERATION,
    "embedding": ModelCapability.EMBEDDINGS,
}
_FLAG_CAPABILITIES: Final = {
    "supports_function_calling": ModelCapability.FUNCTION_CALLING,
    "supports_vision": ModelCapability.VISION,
    "supports_response_schema": ModelCapability.JSON_MODE,
    "supports_native_streaming": ModelCapability.STREAMING,
}
_FLAG_TAGS: Final = {
    "supports_reasoning": "reasoning",
    "supports_prompt_caching": "prompt-caching",
    "supports_pdf_input": "pdf-input",
    "supports_audio_input": "audio-input",
    "supports_audio_output": "audio-output",
    "supports_web_search": "web-search",
    "supports_computer_use": "computer-use",
}
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_ALIAS_HOPS: Final = 8

# A model's capabilities never repeat (what ExtendedModelInfo._dedupe removes): a mode gives at most one, each flag
# key (distinct in an entry) its own, and no flag gives a mode's.
DISTINCT_CAPABILITIES: Final = len(set(_FLAG_CAPABILITIES.values())) == len(_FLAG_CAPABILITIES) and not (
    set(_MODE_CAPABILITIES.values()) & set(_FLAG_CAPABILITIES.values())
)

# Key kinds. A price key is (field, threshold or None, service tier or None).
_REST: Final = 0  # kept in metadata["litellm"]
_HANDLED: Final = 1  # read with entry.get()
_FLAG: Final = 2  # a capability flag
_Kind = int | PriceKind
_FIXED_KINDS: Final[dict[str, _Kind]] = {
    "litellm_provider": _HANDLED,
    "mode": _HANDLED,
    "max_input_tokens": _HANDLED,
    "max_output_tokens": _HANDLED,
    "max_tokens": _HANDLED,
    "deprecation_date": _HANDLED,
    "tiered_pricing": _HANDLED,
    **dict.fromkeys(_FLAG_CAPABILITIES, _FLAG),
}


def _classify(key: str) -> _Kind:
    kind = price_kind(key)
    return _REST if kind is None else kind


_SCALARS: Final = frozenset({str, int, float, bool, Decimal, type(None)})


def _copy(value: Any) -> Any:
    # A copy of the dicts and lists inside (the JSON scalars, the bulk of them, are returned without a call).
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _SCALARS else _copy(v) for v in value]
    return value


def _limit(entry: Mapping[str, Any], key: str, rest: dict[str, Any]) -> int | None:
    """A token limit: a positive whole number. 0 means "unknown" in LiteLLM: ``None``, the 0 kept in ``rest``."""
    value = entry.get(key)
    if value is None:
        return None
    number = non_negative_int(value, key)
    if number == 0:
        rest[key] = value
        return None
    return number


class _Plan:
    """How to convert entries with a given sequence of keys (many entries share one)."""

    __slots__ = ("flags", "prices", "rest", "simple", "simple_prices", "tags")

    def __init__(self, keys: tuple[str, ...], kinds: dict[str, _Kind]) -> None:
        rest: list[str] = []
        flags: list[tuple[str, ModelCapability]] = []
        tags: list[tuple[str, str]] = []
        prices: list[tuple[str, PriceKind]] = []
        for key in keys:
            kind = kinds.get(key)
            if kind is None:
                kind = kinds[key] = _classify(key)
            if kind == _REST:
                rest.append(key)
            elif kind == _FLAG:
                flags.append((key, _FLAG_CAPABILITIES[key]))
            elif type(kind) is tuple:
                prices.append((key, kind))
            if key in _FLAG_TAGS:
                tags.append((key, _FLAG_TAGS[key]))
        self.rest = tuple(rest)
        self.flags = tuple(flags)
        self.tags = tuple(tags)
        self.prices: tuple[tuple[str, PriceKind], ...] = tuple(prices)
        self.simple = all(kind[1] is None and kind[2] is None for _key, kind in prices)
        # (key, field) of a simple plan's prices: one key per field
        self.simple_prices = tuple([(key, kind[0]) for key, kind in prices]) if self.simple else ()


class Converter(PriceConverter):
    """Converts entries; remembers key plans, prices and dates across entries (they repeat a lot)."""

    def __init__(self, catalog: Mapping[Any, Any], today: date, copy_values: bool) -> None:
        super().__init__()
        self.catalog = catalog
        self.today = today
        self.copy_values = copy_values
        self.kinds: dict[str, _Kind] = dict(_FIXED_KINDS)
        self.plans: dict[tuple[str, ...], _Plan] = {}
        self.dates: dict[str, date] = {}
        self.providers: dict[str, str] = {}
        # our provider names as schemas.Provider validates them (known ones as ProviderType); None when invalid
        self.provider_values: dict[str, ProviderType | str | None] = {}

    def parse_date(self, value: Any) -> date:
        """A ``deprecation_date``."""
        if isinstance(value, str):
            found = self.dates.get(value)
            if found is not None:
                return found
            if _DATE.fullmatch(value):
                try:
                    found = self.dates[value] = date.fromisoformat(value)
                except ValueError:
                    raise EntryError(f"deprecation_date: not a valid date, got {value!r}") from None
                return found
        raise EntryError(f"deprecation_date: must be a YYYY-MM-DD date, got {describe(value)}")

    def resolve(self, name: str, entry: Any) -> tuple[Mapping[str, Any], str | None]:
        """The entry to convert: ``entry`` itself, or the one an ``{"alias_of": ...}`` entry names."""
        if not isinstance(entry, Mapping):
            raise EntryError(f"expected an object, got {describe(entry)}")
        if isinstance(entry, Repeated):
            raise EntryError(f"duplicate key {entry.repeated[0]!r} inside the entry")
        if "alias_of" not in entry or "litellm_provider" in entry:
            return entry, None
        seen = {name}
        current: Any = entry
        target: Any = None
        while isinstance(current, Mapping) and "alias_of" in current and "litellm_provider" not in current:
            target = current["alias_of"]
            if not isinstance(target, str):
                raise EntryError(f"alias_of: must be a string, got {describe(target)}")
            if target in seen or len(seen) > _MAX_ALIAS_HOPS:
                raise EntryError(f"alias_of {target!r}: the aliases form a loop")
            if target not in self.catalog:
                raise EntryError(f"alias_of {target!r}: no such entry in the catalogue")
            seen.add(target)
            current = self.catalog[target]
        if not isinstance(current, Mapping) or isinstance(current, Repeated):
            raise EntryError(f"alias_of {target!r}: that entry is not a valid object")
        own = {k: v for k, v in entry.items() if k != "alias_of"}
        return {**current, **own}, target

    def provider(self, value: Any) -> str:
        """Our provider name for a ``litellm_provider``."""
        if type(value) is str:
            found = self.providers.get(value)
            if found is not None:
                return found
            if value.strip():
                found = self.providers[value] = map_provider(value)
                valid = found.strip() and ":" not in found
                self.provider_values[found] = KNOWN_PROVIDERS.get(found, found) if valid else None
                return found
        if value is None:
            raise EntryError("no litellm_provider")
        raise EntryError(f"litellm_provider: must be a non-empty string, got {describe(value)}")

    def convert(self, name: str, raw: Any) -> dict[str, Any]:
        """Every ``ExtendedModelInfo`` field of one entry, in field order: ``None`` where the entry sets none (but
        ``cost``, ``None`` for an unpriced model); raises :class:`EntryError` with the reason to skip it."""
        if type(raw) is dict and ("alias_of" not in raw or "litellm_provider" in raw):
            entry: Mapping[str, Any] = raw
            alias_of = None
        else:
            entry, alias_of = self.resolve(name, raw)
        get = entry.get
        value = get("litellm_provider")
        provider = self.providers.get(value) if type(value) is str else None
        if provider is None:
            provider = self.provider(value)
        mode = get("mode")
        if mode is not None and type(mode) is not str:
            raise EntryError(f"mode: must be a string, got {describe(mode)}")

        keys = tuple(entry)
        plan = self.plans.get(keys)
        if plan is None:
            plan = self.plans[keys] = _Plan(keys, self.kinds)
        capabilities: list[ModelCapability] = [_MODE_CAPABILITIES[mode]] if mode in _MODE_CAPABILITIES else []
        for key, capability in plan.flags:
            value = entry[key]
            if value is True:
                capabilities.append(capability)
            elif value is not False and value is not None:
                raise EntryError(f"{key}: must be true or false, got {describe(value)}")
        rest = {key: entry[key] for key in plan.rest}

        # token limits: a positive int as it is, anything else through _limit (which also takes 0 as unknown)
        context = get("max_input_tokens")
        if context is not None and (type(context) is not int or context <= 0):
            context = _limit(entry, "max_input_tokens", rest)
        if context is None and "max_input_tokens" not in rest:
            context = get("max_tokens")  # LiteLLM's legacy field
            if context is not None and (type(context) is not int or context <= 0):
                context = _limit(entry, "max_tokens", rest)
        max_output = get("max_output_tokens")
        if max_output is not None and (type(max_output) is not int or max_output <= 0):
            max_output = _limit(entry, "max_output_tokens", rest)

        metadata: dict[str, Any] = {"source": "litellm"}
        if mode is not None:
            metadata["mode"] = mode
        status = None
        deprecation = get("deprecation_date")
        if deprecation is not None:
            if self.parse_date(deprecation) <= self.today:
                status = ModelStatus.DEPRECATED
            metadata["deprecation_date"] = deprecation
        if alias_of is not None:
            metadata["alias_of"] = alias_of
        if plan.tags and (tags := [tag for key, tag in plan.tags if entry[key] is True]):
            metadata["tags"] = tags

        cost: dict[str, Any] | None
        if plan.simple and "tiered_pricing" not in entry:
            cost = {}
            prices = self.prices
            for key, field in plan.simple_prices:
                value = entry[key]
                try:
                    cost[field] = prices[type(value), value]
                except (KeyError, TypeError):  # not seen yet, or unhashable (then price() says why)
                    cost[field] = self.price(value, key)
            if "input_tokens" not in cost or "output_tokens" not in cost:
                if free_output(cost, mode):
                    cost["output_tokens"] = Decimal(0)
                    cost["note"] = EMBEDDING_NOTE
                else:
                    for key, _field in plan.simple_prices:
                        rest[key] = entry[key]
                    cost = None
            if cost is not None:
                cost["per"] = PER
                cost["currency"] = "USD"
                if provider in DEFAULT_CACHE_READ_SHARE and "cached_input_tokens" not in cost:
                    default_cache_read(cost, provider, metadata)
        else:
            price = self.price
            found = {kind: (key, price(entry[key], key)) for key, kind in plan.prices}
            used: set[str] = set()
            cost = self.cost(entry, provider, mode, found, used, rest)
            if (
                cost is not None
                and provider in DEFAULT_CACHE_READ_SHARE
                and "cached_input_tokens" not in cost
                and "tiered_pricing" not in entry
            ):
                default_cache_read(cost, provider, metadata)
            for key, _price in found.values():
                if key not in used:
                    rest[key] = entry[key]
        # an alias shares its target's values: copy them, as those of a caller's mapping
        metadata["litellm"] = _copy(rest) if self.copy_values or alias_of is not None else rest
        return {
            "id": name,
            "name": name,
            "provider": provider,
            "version": VERSION,
            "aliases": [],
            "context_window": context,
            "max_tokens": max_output,
            "capabilities": capabilities,
            "cost": cost,
            "rate_limit": None,
            "metadata": metadata,
            "status": status,
        }
