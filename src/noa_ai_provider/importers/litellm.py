"""Import LiteLLM's model catalogue (``model_prices_and_context_window.json``) as model definitions.

Each entry becomes an :class:`~noa_ai_provider.schemas.ExtendedModelInfo` whose ``id`` and ``name`` are the
catalogue key (kept exactly, ``/`` and ``:`` included) and whose version is ``1.0.0``:

- ``provider``: ``litellm_provider``, with ``anthropic`` as ``claude`` and ``:`` replaced by ``-``;
- ``context_window``: ``max_input_tokens``, else the legacy ``max_tokens``; ``max_tokens``: ``max_output_tokens``
  (a limit of 0, LiteLLM's "unknown", is left out and kept in the metadata);
- ``capabilities``: ``mode`` (``chat`` and ``responses`` give ``chat_completion``, ``completion``
  ``text_generation``, ``embedding`` ``embeddings``) and the flags ``supports_function_calling``,
  ``supports_vision``, ``supports_response_schema`` (``json_mode``) and ``supports_native_streaming``
  (``streaming``);
- ``status``: ``deprecated`` from the ``deprecation_date`` on (compared with ``today``), else ``available``;
- ``cost``: USD per million tokens, converted exactly from LiteLLM's per-token numbers (``2.5e-06`` becomes
  ``Decimal("2.5")``), described below; ``None`` (unpriced) when the entry has no per-token input and output price;
- ``metadata``: ``source`` (``"litellm"``), ``mode``, ``deprecation_date``, ``alias_of``, ``tags`` (from
  ``supports_reasoning``, ``supports_prompt_caching`` and similar flags) and ``litellm``: every field of the entry
  that was not mapped, as it came (prices of other units such as images or seconds, flags, sources...).

Prices follow LiteLLM's own cost calculation (``generic_cost_per_token``), which the engine's rules
(:func:`noa_ai_provider.cost.request_rates`) equal; the importer states what the entry states and no more:

- ``input_cost_per_token`` and ``output_cost_per_token`` are the base prices, ``cache_read_input_token_cost`` the
  cache-read price, ``cache_creation_input_token_cost`` the (5-minute) cache-write price and
  ``cache_creation_input_token_cost_above_1hr`` the 1-hour cache-write price (``cache_write_1h_tokens``). An
  embedding model with only an input price gets an output price of 0 (embeddings produce no output tokens); any
  other entry missing one of the two comes in unpriced, its prices kept in ``metadata["litellm"]``.
- ``*_above_<N>k_tokens`` (or ``_above_<N>_tokens``) are long-context prices. Each kind starts its own tier: there is
  a tier at every threshold where any kind has a price (``output_cost_per_token_above_32k_tokens`` alone makes
  one), stating only the prices the entry gives there. The engine carries every other price upward from below, as
  LiteLLM does. A tier bills every token of a request whose input exceeds ``N*1000`` tokens (reaches it, for
  ``xai``, as LiteLLM bills xAI).
- ``*_batches``, ``*_flex`` and ``*_priority`` (and their long-context forms such as
  ``input_cost_per_token_above_272k_tokens_priority`` or ``cache_creation_input_token_cost_above_1hr_flex``) are the
  ``batch``, ``flex`` and ``priority`` service tiers. A service tier exists where the entry prices any kind for it,
  and states only those prices: a price it leaves out is the standard one of that kind and threshold, as LiteLLM
  falls back (and ``batch`` follows the engine's batch rules).
- ``fireworks_ai`` entries without a cache-read price (and not priced by ``tiered_pricing``) get half the input
  price for cache reads, LiteLLM's default for Fireworks (``with_default_cache_read_rate``);
  ``metadata["price_note"]`` says so.
- ``tiered_pricing`` (a list of ``range``\\ s with prices, all-or-nothing by input tokens, as LiteLLM bills it)
  replaces all of the above when present: its first range gives the base prices, the others tiers. A range that
  leaves out a cache price bills it at that range's input price in LiteLLM (a 1-hour write at its write price),
  so where a lower range's price would carry upward the tier states the fallback itself.

Everything else (12-hour cache writes, ``_ultrafast``, ``_balanced`` and other tiers we do not model, off-peak
prices, per-image, per-second or per-query prices) stays in ``metadata["litellm"]`` and is not part of cost
estimates.

Entries that cannot be converted are skipped and listed in the result's ``skipped`` with the reason:
``sample_spec`` (the field documentation), entries without a provider, bad values (a negative price, a string
context window, an invalid date...) and, when reading JSON text, duplicate keys (the first one is kept).
``{"alias_of": "other"}`` entries import the entry they name, under their own key.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Container, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from .. import jsonio
from ..errors import ConfigError, PersistenceError
from ..schemas import (
    KNOWN_PROVIDERS,
    MAX_INT,
    MONEY_CONTEXT,
    PRICE_KINDS,
    ExtendedModelInfo,
    ModelCapability,
    ModelCost,
    ModelStatus,
    PriceTier,
    ProviderType,
    ServiceTierPrices,
    build_trusted,
)
from ..versions import validate_version
from ._common import (
    FAST_PATH,
    CatalogImport,
    EntryError,
    ModelCollector,
    describe,
    map_provider,
    price_value,
    shift,
)

__all__ = ["load_litellm_catalog"]

_PLACES: Final = 6
_PER: Final = 10**_PLACES  # prices per million tokens
_VERSION: Final = validate_version("1.0.0")

_PRICE_FIELDS: Final = {
    "input_cost_per_token": "input_tokens",
    "output_cost_per_token": "output_tokens",
    "cache_read_input_token_cost": "cached_input_tokens",
    "cache_creation_input_token_cost": "cache_write_tokens",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h_tokens",
}
_SERVICE_TIERS: Final = {"batches": "batch", "flex": "flex", "priority": "priority"}
_PRICE_KEY: Final = re.compile(
    r"(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost(?:_above_1hr)?)"
    r"(?:_above_(\d+)(k?)_tokens)?(?:_(batches|flex|priority))?"
)
_INCLUSIVE_THRESHOLD_PROVIDERS: Final = frozenset({"xai"})  # LiteLLM bills xAI's tier once the input reaches it
# LiteLLM's share of the input price for the cache reads an entry leaves unpriced (its
# FIREWORKS_AI_DEFAULT_CACHE_READ_RATE_RATIO)
_DEFAULT_CACHE_READ_SHARE: Final = {"fireworks_ai": Decimal("0.5")}
_DEFAULT_CACHE_READ_NOTE: Final = (
    "cache reads priced at {share} of the input price: LiteLLM's default for {provider} entries without a "
    "cache-read price"
)

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
_TIER_FIELDS: Final = frozenset({"range", *_PRICE_FIELDS})
_RANGE_FALLBACKS: Final = ("cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens")  # in this order
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_SAMPLE_SPEC: Final = "sample_spec"
_EMBEDDING_NOTE: Final = "LiteLLM lists no output price; embeddings produce no output tokens"
_MAX_ALIAS_HOPS: Final = 8

# Key kinds. A price key is (field, threshold or None, service tier or None).
_REST: Final = 0  # kept in metadata["litellm"]
_HANDLED: Final = 1  # read with entry.get()
_FLAG: Final = 2  # a capability flag
_Kind = int | tuple[str, int | None, str | None]
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
    match = _PRICE_KEY.fullmatch(key)
    if match is None:
        return _REST
    field, number, thousands, service = match.groups()
    threshold = None if number is None else int(number) * (1000 if thousands else 1)
    return (_PRICE_FIELDS[field], threshold, None if service is None else _SERVICE_TIERS[service])


def load_litellm_catalog(
    source: str | os.PathLike[str] | Mapping[str, Any], *, today: date | None = None
) -> CatalogImport:
    """Convert LiteLLM's catalogue: a path to its JSON file, or the already-parsed mapping of name to entry.

    ``today`` (default: the current UTC date) decides which ``deprecation_date``\\ s are past. Returns the models
    in catalogue order as a :class:`~noa_ai_provider.importers.CatalogImport` (a list) whose ``skipped`` names
    every entry left out and why. Raises :class:`~noa_ai_provider.errors.PersistenceError` when the file cannot be
    read and :class:`~noa_ai_provider.errors.ConfigError` when it is not a JSON object.
    """
    if today is None:
        today = datetime.now(UTC).date()
    elif isinstance(today, datetime):
        today = today.date()
    catalog, duplicates, copy_values = _read(source)
    converter = _Converter(catalog, today, copy_values)
    convert = converter.convert
    providers = converter.provider_values
    collector = ModelCollector()
    add_model = collector.add_model
    for name, entry in catalog.items():
        if not isinstance(name, str):
            collector.skip(str(name), f"the name must be a string, got {describe(name)}")
            continue
        if name == _SAMPLE_SPEC:
            collector.skip(name, "sample_spec documents LiteLLM's fields; it is not a model")
            continue
        try:
            values = convert(name, entry)
        except EntryError as exc:
            collector.skip(name, str(exc))
            continue
        model = _trusted_model(values, providers)
        if model is not None:
            add_model(name, model)
        else:  # a value only pydantic's validation can judge (and word the reason for)
            collector.add(name, _set_fields(values))
    for name in duplicates:
        collector.skip(name, "duplicate key in the JSON text: the first entry with it was kept")
    return collector.result


# --------------------------------------------------------------------------- reading


def _read(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Mapping[Any, Any], list[str], bool]:
    """The catalogue mapping, the names repeated in the JSON text, and whether values must be copied."""
    if isinstance(source, Mapping):
        return source, [], True  # the caller's mapping: metadata must not share its lists and dicts
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"expected a path or a mapping, got {type(source).__name__}")
    path = Path(source)
    text = jsonio.read_text(path)
    if text is None:
        raise PersistenceError(f"{path}: no such file")
    duplicates: list[str] = []
    try:
        data = jsonio.loads(text, str(path))
    except ConfigError:
        lenient = _loads_keeping_first(text)
        if lenient is None:  # the error was not (only) a duplicate key
            raise
        data, duplicates = lenient
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of model entries, got {type(data).__name__}")
    return data, duplicates, False


class _Repeated(dict[str, Any]):
    """A JSON object that had duplicate keys; the first value of each was kept."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: dict[str, Any], repeated: list[str]) -> None:
        super().__init__(pairs)
        self.repeated = repeated


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _loads_keeping_first(text: str) -> tuple[dict[str, Any], list[str]] | None:
    """Parse ``text`` keeping the first of duplicate keys: the catalogue and its repeated names, with every entry
    that has a duplicate key inside replaced by a ``_Repeated`` marker. ``None`` when there is no duplicate key or
    the text is invalid for another reason (the caller re-raises jsonio's error)."""
    found: list[int] = []

    def keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        repeated: list[str] = []
        for key, value in pairs:
            if key in out:
                repeated.append(key)
            else:
                out[key] = value
        if not repeated:
            return out
        found.append(1)
        return _Repeated(out, repeated)

    decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=keep_first)
    try:
        data = decoder.decode(text)
    except (ValueError, RecursionError):
        return None
    if not found or not isinstance(data, dict):
        return None
    try:  # whatever else jsonio checks (nesting depth) must still hold once the duplicates are gone
        jsonio.loads(jsonio.dumps(data, indent=None))
    except ConfigError:
        return None
    names = data.repeated if isinstance(data, _Repeated) else []
    catalog = {
        name: _Repeated({}, repeated) if (repeated := _repeated_inside(entry)) else entry
        for name, entry in data.items()
    }
    return catalog, names


def _repeated_inside(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = list(value.repeated) if isinstance(value, _Repeated) else []
        return own + [key for item in value.values() for key in _repeated_inside(item)]
    if isinstance(value, list):
        return [key for item in value for key in _repeated_inside(item)]
    return []


# --------------------------------------------------------------------------- conversion


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
    number = _non_negative_int(value, key)
    if number == 0:
        rest[key] = value
        return None
    return number


_PriceKind = tuple[str, int | None, str | None]  # (field, threshold or None, service tier or None)
_Found = tuple[str, Decimal]  # (the LiteLLM key, the price per million tokens)


class _Plan:
    """How to convert entries with a given sequence of keys (many entries share one)."""

    __slots__ = ("flags", "prices", "rest", "simple", "simple_prices", "tags")

    def __init__(self, keys: tuple[str, ...], kinds: dict[str, _Kind]) -> None:
        rest: list[str] = []
        flags: list[tuple[str, ModelCapability]] = []
        tags: list[tuple[str, str]] = []
        prices: list[tuple[str, _PriceKind]] = []
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
        self.prices: tuple[tuple[str, _PriceKind], ...] = tuple(prices)
        self.simple = all(kind[1] is None and kind[2] is None for _key, kind in prices)
        # (key, field) of a simple plan's prices: one key per field
        self.simple_prices = tuple([(key, kind[0]) for key, kind in prices]) if self.simple else ()


class _Converter:
    """Converts entries; remembers key plans, prices and dates across entries (they repeat a lot)."""

    def __init__(self, catalog: Mapping[Any, Any], today: date, copy_values: bool) -> None:
        self.catalog = catalog
        self.today = today
        self.copy_values = copy_values
        self.kinds: dict[str, _Kind] = dict(_FIXED_KINDS)
        self.plans: dict[tuple[str, ...], _Plan] = {}
        self.prices: dict[tuple[type, Any], Decimal] = {}
        self.dates: dict[str, date] = {}
        self.providers: dict[str, str] = {}
        # our provider names as schemas.Provider validates them (known ones as ProviderType); None when invalid
        self.provider_values: dict[str, ProviderType | str | None] = {}

    def price(self, value: Any, key: str) -> Decimal:
        """A per-token price as an exact price per million tokens."""
        cache_key = (type(value), value)
        try:
            return self.prices[cache_key]
        except KeyError:
            pass
        except TypeError:  # unhashable: a list or dict
            raise EntryError(f"{key}: must be a number, got {describe(value)}") from None
        price = price_value(value, key, _PLACES)
        self.prices[cache_key] = price
        return price

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
        if isinstance(entry, _Repeated):
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
        if not isinstance(current, Mapping) or isinstance(current, _Repeated):
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
                if _free_output(cost, mode):
                    cost["output_tokens"] = Decimal(0)
                    cost["note"] = _EMBEDDING_NOTE
                else:
                    for key, _field in plan.simple_prices:
                        rest[key] = entry[key]
                    cost = None
            if cost is not None:
                cost["per"] = _PER
                cost["currency"] = "USD"
                if provider in _DEFAULT_CACHE_READ_SHARE and "cached_input_tokens" not in cost:
                    _default_cache_read(cost, provider, metadata)
        else:
            price = self.price
            found = {kind: (key, price(entry[key], key)) for key, kind in plan.prices}
            used: set[str] = set()
            cost = self.cost(entry, provider, mode, found, used, rest)
            if (
                cost is not None
                and provider in _DEFAULT_CACHE_READ_SHARE
                and "cached_input_tokens" not in cost
                and "tiered_pricing" not in entry
            ):
                _default_cache_read(cost, provider, metadata)
            for key, _price in found.values():
                if key not in used:
                    rest[key] = entry[key]
        # an alias shares its target's values: copy them, as those of a caller's mapping
        metadata["litellm"] = _copy(rest) if self.copy_values or alias_of is not None else rest
        return {
            "id": name,
            "name": name,
            "provider": provider,
            "version": _VERSION,
            "aliases": [],
            "context_window": context,
            "max_tokens": max_output,
            "capabilities": capabilities,
            "cost": cost,
            "rate_limit": None,
            "metadata": metadata,
            "status": status,
        }

    # ------------------------------------------------------------------ prices

    def cost(
        self,
        entry: Mapping[str, Any],
        provider: str,
        mode: str | None,
        price_keys: dict[_PriceKind, _Found],
        used: set[str],
        rest: dict[str, Any],
    ) -> dict[str, Any] | None:
        """The ``cost`` fields, or ``None`` when unpriced; adds the keys it consumed to ``used``."""
        tiered = entry.get("tiered_pricing")
        if tiered is not None:
            if _is_token_tiers(tiered):
                return self.tiered_cost(tiered, price_keys, used, rest)
            rest["tiered_pricing"] = tiered  # e.g. per-query prices by result count
        # levels[service][threshold][field] = (key, price)
        levels: dict[str | None, dict[int | None, dict[str, _Found]]] = {}
        for (field, threshold, service), found in price_keys.items():
            levels.setdefault(service, {}).setdefault(threshold, {})[field] = found
        standard = levels.pop(None, {})
        base = standard.get(None, {})
        if _free_output(base, mode):
            note = _EMBEDDING_NOTE
            base = {**base, "output_tokens": ("", Decimal(0))}
        else:
            note = None
        if "input_tokens" not in base or "output_tokens" not in base:
            return None  # unpriced: every price stays in metadata
        inclusive = provider in _INCLUSIVE_THRESHOLD_PROVIDERS
        cost = _level(standard, base, inclusive, used)
        cost["per"] = _PER
        cost["currency"] = "USD"
        if note is not None:
            cost["note"] = note
        service_tiers: dict[str, dict[str, Any]] = {}
        for service, prices in levels.items():
            assert service is not None
            # only what the entry states: the engine falls back to the standard prices as LiteLLM does
            service_tiers[service] = _level(prices, prices.get(None, {}), inclusive, used)
        if service_tiers:
            cost["service_tiers"] = service_tiers
        return cost

    def tiered_cost(
        self,
        tiered: list[Any],
        price_keys: dict[_PriceKind, _Found],
        used: set[str],
        rest: dict[str, Any],
    ) -> dict[str, Any]:
        """Prices from ``tiered_pricing``: the first range's are the base, each later range a tier."""
        model_output = price_keys.get(("output_tokens", None, None))
        rows: list[tuple[int, int, dict[str, Decimal]]] = []
        for index, tier in enumerate(tiered):
            where = f"tiered_pricing[{index}]"
            if not isinstance(tier, Mapping):
                raise EntryError(f"{where}: expected an object, got {describe(tier)}")
            bounds = tier.get("range")
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise EntryError(f"{where}.range: expected [start, end], got {describe(bounds)}")
            start = _non_negative_int(bounds[0], f"{where}.range")
            end = _non_negative_int(bounds[1], f"{where}.range")
            if end <= start:
                raise EntryError(f"{where}.range: the end must be above the start, got {[start, end]}")
            prices: dict[str, Decimal] = {}
            for key, field in _PRICE_FIELDS.items():
                if key in tier:
                    prices[field] = self.price(tier[key], f"{where}.{key}")
            if "input_tokens" not in prices:
                raise EntryError(f"{where}: no input_cost_per_token")
            if "output_tokens" not in prices:
                if model_output is None:
                    raise EntryError(f"{where}: no output_cost_per_token (and none for the model)")
                prices["output_tokens"] = model_output[1]
                used.add(model_output[0])
            rows.append((start, end, prices))
        rows.sort(key=lambda row: row[0])
        if not rows or rows[0][0] != 0:
            raise EntryError("tiered_pricing: the first range must start at 0")
        for (_, end, _p), (start, _e, _q) in itertools.pairwise(rows):
            if start != end:
                raise EntryError(f"tiered_pricing: ranges must follow each other, got a gap or overlap at {start}")
        if any(not _TIER_FIELDS.issuperset(tier) for tier in tiered):
            rest["tiered_pricing"] = tiered  # priced from it, but it holds more (e.g. reasoning prices)
        cost: dict[str, Any] = {**rows[0][2], "per": _PER, "currency": "USD"}
        if len(rows) > 1:
            tiers: list[dict[str, Any]] = []
            stated = set(rows[0][2])  # the kinds some range up to this one prices
            for start, _end, prices in rows[1:]:
                above: dict[str, Any] = {"above_input_tokens": start, **prices}
                # LiteLLM bills a range's missing cache price at that range's own input price (a missing 1-hour
                # write at its write price), never at a lower range's: state it where one would carry upward
                for field in _RANGE_FALLBACKS:
                    if field not in prices and field in stated:
                        fallback = "cache_write_tokens" if field == "cache_write_1h_tokens" else "input_tokens"
                        above[field] = above.get(fallback, prices["input_tokens"])
                stated.update(prices)
                tiers.append(above)
            cost["tiers"] = tiers
        return cost


def _free_output(prices: Container[str], mode: str | None) -> bool:
    # An embedding model priced for its input only: its outputs (vectors) are free, not unknown.
    return mode == "embedding" and "input_tokens" in prices and "output_tokens" not in prices


# --------------------------------------------------------------------------- models


# A model's capabilities never repeat (what ExtendedModelInfo._dedupe removes): a mode gives at most one, each flag
# key (distinct in an entry) its own, and no flag gives a mode's.
_DISTINCT_CAPABILITIES: Final = len(set(_FLAG_CAPABILITIES.values())) == len(_FLAG_CAPABILITIES) and not (
    set(_MODE_CAPABILITIES.values()) & set(_FLAG_CAPABILITIES.values())
)
_TRUSTED: Final = FAST_PATH and _DISTINCT_CAPABILITIES
"""Whether models are built without pydantic (see ``_trusted_model``); else every one is validated."""


def _set_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``values`` (as ``convert`` makes them) that the entry sets: the input for validation (the
    importer gives no aliases: the empty list is the default, not a field set)."""
    return {
        field: value
        for field, value in values.items()
        if (value is not None or field == "cost") and not (field == "aliases" and not value)
    }


def _trusted_model(values: dict[str, Any], providers: dict[str, ProviderType | str | None]) -> ExtendedModelInfo | None:
    """The :class:`ExtendedModelInfo` that validating ``_set_fields(values)`` would give, built from ``values``
    (which it takes over); or ``None`` when a value needs validation's verdict (then pydantic decides, and words
    the reason).

    The converter has checked most values the way the schemas do: every price went through ``price`` (a finite
    ``Decimal`` >= 0), limits through ``_limit`` (positive ``int``\\ s), capabilities are ``ModelCapability``
    members that cannot repeat (``_DISTINCT_CAPABILITIES``), the metadata keys are ours and its tags strings,
    ``status`` a ``ModelStatus``, service tiers only ``batch``, ``flex`` and ``priority``. What is left is checked
    here: the name, the provider, the version, the limits' upper bound, the tiers' thresholds, the required prices,
    that every tier and service tier states a price, and that there are no aliases (an empty list, left out of the
    fields set as validation leaves a default out).
    """
    if not _TRUSTED:
        return None
    name = values["id"]
    provider = providers.get(values["provider"])
    context = values["context_window"]
    max_tokens = values["max_tokens"]
    if (
        type(name) is not str
        or not name
        or values["name"] is not name
        or provider is None
        or values["version"] is not _VERSION
        or values["aliases"] != []
        or (context is not None and not (type(context) is int and 0 < context <= MAX_INT))
        or (max_tokens is not None and not (type(max_tokens) is int and 0 < max_tokens <= MAX_INT))
    ):
        return None
    cost = values["cost"]
    if cost is not None and (cost := _trusted_cost(cost)) is None:
        return None
    given = {"id", "name", "provider", "version", "capabilities", "cost", "metadata"}
    if context is not None:
        given.add("context_window")
    if max_tokens is not None:
        given.add("max_tokens")
    if values["status"] is None:
        values["status"] = ModelStatus.AVAILABLE
    else:
        given.add("status")
    values["provider"] = provider
    values["cost"] = cost
    return build_trusted(ExtendedModelInfo, values, given)


# Every field of each price schema in field order, with its default (required ones: PydanticUndefined): a copy
# updated with what the converter gave is the __dict__ validation would build, once the required prices are there
# (a Decimal) and the length is the template's (else the converter gave a key that is not a field).
_COST_FIELDS: Final = {name: info.default for name, info in ModelCost.model_fields.items()}
_SERVICE_FIELDS: Final = {name: info.default for name, info in ServiceTierPrices.model_fields.items()}
_TIER_FIELDS_DEFAULTS: Final = {name: info.default for name, info in PriceTier.model_fields.items()}


def _filled(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any] | None:
    """``template`` updated with ``given``; ``None`` when ``given`` has a key that is not a field."""
    values = dict(template)
    values.update(given)
    return values if len(values) == len(template) else None


def _states_a_price(values: dict[str, Any]) -> bool:
    return any(type(values[kind]) is Decimal for kind in PRICE_KINDS)


def _trusted_cost(cost: dict[str, Any]) -> ModelCost | None:
    values = _filled(_COST_FIELDS, cost)
    if (
        values is None
        or type(values["input_tokens"]) is not Decimal
        or type(values["output_tokens"]) is not Decimal
        or not _tiers_trusted(values)
    ):
        return None
    service_tiers = values["service_tiers"]
    if service_tiers is not None:
        built: dict[str, ServiceTierPrices] = {}
        for service, prices in service_tiers.items():
            own = _filled(_SERVICE_FIELDS, prices)
            if own is None or not (_states_a_price(own) or own["tiers"]) or not _tiers_trusted(own):
                return None  # schemas.ServiceTiers: a service tier states a price (or has tiers)
            built[service] = build_trusted(ServiceTierPrices, own, set(prices))
        values["service_tiers"] = built
    return build_trusted(ModelCost, values, set(cost))


def _tiers_trusted(values: dict[str, Any]) -> bool:
    # Builds the price tiers of `values` in place; False when they need pydantic's validation.
    tiers = values["tiers"]
    if tiers is None:
        return True
    built = _trusted_tiers(tiers)
    values["tiers"] = built
    return built is not None


def _trusted_tiers(tiers: list[dict[str, Any]]) -> list[PriceTier] | None:
    """The tiers, when their thresholds are whole numbers up to MAX_INT in strictly increasing order (so distinct
    and already sorted) and each states a price, as ``schemas.Tiers`` wants them; else ``None``."""
    built: list[PriceTier] = []
    below = -1
    for tier in tiers:
        above = tier["above_input_tokens"]
        if type(above) is not int or not below < above <= MAX_INT:
            return None
        below = above
        values = _filled(_TIER_FIELDS_DEFAULTS, tier)
        if values is None or not _states_a_price(values):
            return None
        built.append(build_trusted(PriceTier, values, set(tier)))
    return built


def _is_token_tiers(tiered: Any) -> bool:
    """Whether ``tiered_pricing`` prices tokens by input ranges (rather than, e.g., queries by result count)."""
    return isinstance(tiered, list) and any(isinstance(t, Mapping) and "range" in t for t in tiered)


def _non_negative_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise EntryError(f"{key}: must be a whole number, got {describe(value)}")
    whole = (
        isinstance(value, int)
        or (isinstance(value, float) and value.is_integer())
        or (isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value())
    )
    if not whole:
        raise EntryError(f"{key}: must be a whole number, got {describe(value)}")
    number = int(value)
    if number < 0:
        raise EntryError(f"{key}: must be >= 0, got {number}")
    return number


def _level(
    prices: dict[int | None, dict[str, tuple[str, Decimal]]],
    base: dict[str, tuple[str, Decimal]],
    inclusive: bool,
    used: set[str],
) -> dict[str, Any]:
    """One level's prices (standard or a service tier): ``base`` plus a tier at every threshold of ``prices``
    where any kind has a price, stating only those kinds (the engine carries the others upward)."""
    out: dict[str, Any] = {}
    for field, (key, price) in base.items():
        out[field] = price
        used.add(key)
    tiers: list[dict[str, Any]] = []
    for threshold, tier_prices in prices.items():
        if threshold is None:
            continue
        tier: dict[str, Any] = {"above_input_tokens": threshold - 1 if inclusive and threshold else threshold}
        for field in _PRICE_FIELDS.values():
            found = tier_prices.get(field)
            if found is not None:
                tier[field] = found[1]
                used.add(found[0])
        tiers.append(tier)
    if tiers:
        out["tiers"] = sorted(tiers, key=lambda t: t["above_input_tokens"])
    return out


def _default_cache_read(cost: dict[str, Any], provider: str, metadata: dict[str, Any]) -> None:
    """Price cache reads as LiteLLM does for ``provider`` when the entry has no cache-read price: a share of the
    input price (Fireworks AI: half, ``litellm/llms/fireworks_ai/cache_pricing.py``)."""
    share = _DEFAULT_CACHE_READ_SHARE[provider]
    cost["cached_input_tokens"] = shift(MONEY_CONTEXT.multiply(cost["input_tokens"], share), 0)
    metadata["price_note"] = _DEFAULT_CACHE_READ_NOTE.format(share=f"{shift(share, 2)}%", provider=provider)
