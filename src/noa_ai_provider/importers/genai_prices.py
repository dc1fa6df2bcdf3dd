"""Import the price database of the ``genai-prices`` package as model definitions.

``genai-prices`` is optional: ``pip install 'noa-ai-provider[genai-prices]'``. It is imported when
:func:`load_genai_prices_catalog` runs, never with this module.

Each model of each provider becomes an :class:`~noa_ai_provider.schemas.ExtendedModelInfo`: ``id`` the model's id,
``name`` its name (else the id), ``provider`` the provider's id (``anthropic`` as ``claude``, ``:`` as ``-``),
version ``1.0.0``, ``context_window`` when known, ``status`` ``deprecated`` when the package flags the model, no
capabilities (the package does not record them) and ``metadata`` with ``source`` (``"genai-prices"``) and
``genai_prices``: the provider's id and name, the description, the price comments and the prices that were not
mapped.

Prices are per million tokens, in USD, as the package has them, taken at ``at`` (default: now):

- ``input_mtok``, ``output_mtok``, ``cache_read_mtok``, ``cache_write_mtok`` and ``cache_write_1h_mtok`` become
  the input, output, cache-read, cache-write and 1-hour cache-write prices. A missing input or output price is 0,
  as the package bills it.
- Tiered prices (the package bills every token of a request at the tier its input tokens exceed) become our
  long-context ``tiers``, one per distinct threshold.
- Price variants for ``{"processing": "batch"}``, ``{"service_tier": "flex"}`` and
  ``{"service_tier": "priority"}`` become the ``batch``, ``flex`` and ``priority`` service tiers (overriding the
  standard prices key by key, as the package does: each service tier states every price it bills, at its base
  and at every long-context threshold of the standard prices, so none of the standard long-context prices the
  variant replaces comes back through the engine's fallback); other variants (``fast``, regional routes...) are
  listed in the metadata.
- Prices dated to start later than ``at`` are ignored; the latest started ones apply.
- Prices of other token kinds (audio, image, reasoning...) and of optional tool use (web
  searches) are kept in ``metadata["genai_prices"]["other_prices"]`` and are not part of cost estimates.
- A model the package lists without any price (``:free`` models, subscriptions, unknown prices) comes in unpriced
  (``cost`` ``None``).

A model is skipped, with the reason, when its prices cannot be represented: time-of-day prices (off-peak
discounts), a price per request, per character, per audio hour, per page or per message, or prices for other
token kinds only. A service tier that cannot be represented is left out and named in
``metadata["genai_prices"]["left_out"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from ..schemas import ModelStatus
from .common import CatalogImport, EntryError, ModelCollector, describe, map_provider, price_value

__all__ = ["load_genai_prices_catalog"]

_EXTRA_HINT: Final = "pip install 'noa-ai-provider[genai-prices]'"
_PER: Final = 1_000_000
_MAPPED: Final = {
    "input_mtok": "input_tokens",
    "output_mtok": "output_tokens",
    "cache_read_mtok": "cached_input_tokens",
    "cache_write_mtok": "cache_write_tokens",
    "cache_write_1h_mtok": "cache_write_1h_tokens",
}
_OPTIONAL_USE: Final = frozenset({"web_searches_kcount", "storage_searches_kcount"})
_SERVICE_TIERS: Final = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}


def load_genai_prices_catalog(*, at: datetime | None = None, providers: Iterable[Any] | None = None) -> CatalogImport:
    """Convert the ``genai-prices`` database (or ``providers``, a list of its ``Provider`` objects).

    ``at`` (default: now; a naive datetime is UTC) picks the prices in force. Returns a
    :class:`~noa_ai_provider.importers.CatalogImport` (a list of models) whose ``skipped`` names every model left
    out as ``provider/model`` with the reason. Raises :class:`ImportError` naming the ``genai-prices`` extra when
    the package is not installed.

    .. versionchanged:: 0.2.0
       Follows the 0.2.0 pricing rules (prices a tier leaves out carry upward) and reads 1-hour cache-write prices.
    """
    try:
        from genai_prices import data_snapshot, types
    except ImportError as exc:
        raise ImportError(f"load_genai_prices_catalog needs the genai-prices package: {_EXTRA_HINT} ({exc})") from exc
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if providers is None:
        providers = data_snapshot.get_snapshot().providers
    converter = _Converter(types, at)
    collector = ModelCollector()
    for provider in providers:
        for model in provider.models:
            label = f"{provider.id}/{model.id}"
            try:
                fields = converter.convert(provider, model)
            except EntryError as exc:
                collector.skip(label, str(exc))
                continue
            collector.add(label, fields)
    return collector.result


def _price(value: Any, key: str) -> Decimal:
    return price_value(value, key, 0)


class _Converter:
    def __init__(self, types: Any, at: datetime) -> None:
        self.types = types
        self.at = at

    def convert(self, provider: Any, model: Any) -> dict[str, Any]:
        prices = _set_prices(self.current_prices(model))
        notes: dict[str, Any] = {}
        cost: dict[str, Any] | None
        if prices:
            cost, other = self.cost(prices)
            standard = [tier["above_input_tokens"] for tier in cost.get("tiers", ())]
            self.add_service_tiers(model, prices, cost, notes, standard)
            cost["per"] = _PER
            cost["currency"] = "USD"
        else:  # the package lists no price: free (":free" models, subscriptions) or unknown, so unpriced here
            cost, other = None, {}
            notes["no_prices"] = "genai-prices lists no prices for this model"
        details: dict[str, Any] = {"provider": provider.id}
        for key, value in (
            ("provider_name", getattr(provider, "name", None)),
            ("description", getattr(model, "description", None)),
            ("price_comments", getattr(model, "price_comments", None)),
        ):
            if value is not None:
                details[key] = value
        if other:
            details["other_prices"] = other
        details.update(notes)
        fields: dict[str, Any] = {
            "id": model.id,
            "name": getattr(model, "name", None) or model.id,
            "provider": _provider(provider.id),
            "version": "1.0.0",
            "capabilities": [],
            "cost": cost,
            "metadata": {"source": "genai-prices", "genai_prices": details},
        }
        context_window = getattr(model, "context_window", None)
        if context_window is not None:
            if isinstance(context_window, bool) or not isinstance(context_window, int) or context_window < 0:
                raise EntryError(f"context_window: must be a positive integer, got {describe(context_window)}")
            if context_window > 0:
                fields["context_window"] = context_window
        if getattr(model, "deprecated", None):
            fields["status"] = ModelStatus.DEPRECATED
        return fields

    def add_service_tiers(
        self, model: Any, prices: dict[str, Any], cost: dict[str, Any], notes: dict[str, Any], thresholds: list[int]
    ) -> None:
        """Add the ``batch``, ``flex`` and ``priority`` price variants of ``model`` to ``cost``, each with a tier at
        every standard threshold (``thresholds``); note the other variants."""
        service_tiers: dict[str, Any] = {}
        variants = getattr(model, "price_variants", None) or []
        for tier, context in _SERVICE_TIERS.items():
            overrides, timed = self.variant_prices(variants, context)
            if timed:
                notes.setdefault("left_out", []).append(f"{tier}: time-of-day prices")
            elif overrides:
                try:
                    tier_cost, _other = self.cost({**prices, **overrides}, thresholds)
                except EntryError as exc:
                    notes.setdefault("left_out", []).append(f"{tier}: {exc}")
                    continue
                tier_cost.pop("note", None)
                service_tiers[tier] = tier_cost
        if service_tiers:
            cost["service_tiers"] = service_tiers
        mapped_contexts = list(_SERVICE_TIERS.values())
        unmapped = [dict(v.when) for v in variants if dict(v.when) not in mapped_contexts and _has_prices(v.prices)]
        if unmapped:
            notes["unmapped_variants"] = unmapped

    def current_prices(self, model: Any) -> Any:
        """The model's standard prices at ``at``: the latest started of its dated prices."""
        prices = model.prices
        if isinstance(prices, self.types.ModelPrice):
            return prices
        if not isinstance(prices, list) or not prices:
            raise EntryError(f"prices: expected prices or a list of conditional prices, got {describe(prices)}")
        start_date = self.types.StartDateConstraint
        chosen = 0  # the package falls back to the first when none applies
        for index in range(len(prices) - 1, -1, -1):
            constraint = prices[index].constraint
            if constraint is None or (isinstance(constraint, start_date) and constraint.active(self.at)):
                chosen = index
                break
        for conditional in prices[chosen:]:
            constraint = conditional.constraint
            if constraint is not None and not isinstance(constraint, start_date):
                if isinstance(constraint, self.types.TimeOfDateConstraint):
                    raise EntryError("time-of-day prices (e.g. off-peak discounts) cannot be represented")
                raise EntryError(f"prices under a {type(constraint).__name__} cannot be represented")
        return prices[chosen].prices

    def variant_prices(self, variants: list[Any], context: dict[str, str]) -> tuple[dict[str, Any], bool]:
        """The prices the variants matching ``context`` override (first match wins per price, as in the package),
        and whether a matching variant depends on the time of day."""
        overrides: dict[str, Any] = {}
        timed = False
        for variant in variants:
            if not all(context.get(key) == value for key, value in variant.when.items()):
                continue
            constraint = variant.constraint
            if constraint is not None:
                if not isinstance(constraint, self.types.StartDateConstraint):
                    timed = True
                    continue
                if not constraint.active(self.at):
                    continue
            for key, price in _set_prices(variant.prices).items():
                overrides.setdefault(key, price)
        return overrides, timed

    def cost(self, prices: dict[str, Any], thresholds: Iterable[int] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
        """The token prices (``cost`` fields without ``per``, ``currency`` and service tiers) of one set of package
        prices, and the other prices kept for the metadata. Every tier states every price; there is one at each
        threshold of the tiered prices and of ``thresholds``."""
        tiered_type = self.types.TieredPrices
        mapped: dict[str, Any] = {}
        other: dict[str, Any] = {}
        cannot: list[str] = []
        for key, value in prices.items():
            if key in _MAPPED:
                mapped[_MAPPED[key]] = value
            elif key.endswith("_mtok") or key in _OPTIONAL_USE:
                other[key] = _plain(value, tiered_type)
            else:
                cannot.append(key)
        if cannot:
            raise EntryError(f"priced per {', '.join(sorted(cannot))}, which token prices cannot express")
        if "input_tokens" not in mapped and "output_tokens" not in mapped:
            kinds = ", ".join(sorted(other)) or "none"
            raise EntryError(f"no input or output token price (prices: {kinds})")
        missing = [field for field in ("input_tokens", "output_tokens") if field not in mapped]

        thresholds = set(thresholds)
        for field, value in mapped.items():
            if isinstance(value, tiered_type):
                for step in value.tiers:
                    start = step.start
                    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
                        raise EntryError(f"{field}: a tier must start at a whole number >= 0, got {describe(start)}")
                    thresholds.add(start)
        cost: dict[str, Any] = {
            field: _price(_applicable(value, None, tiered_type), field) for field, value in mapped.items()
        }
        for field in missing:
            cost[field] = Decimal(0)
        if missing:
            cost["note"] = f"genai-prices lists no {' or '.join(f.split('_')[0] for f in missing)} price (billed as 0)"
        if thresholds:
            tiers = []
            for threshold in sorted(thresholds):
                tier: dict[str, Any] = {"above_input_tokens": threshold}
                for field, value in mapped.items():
                    tier[field] = _price(_applicable(value, threshold, tiered_type), field)
                for field in missing:
                    tier[field] = Decimal(0)
                tiers.append(tier)
            cost["tiers"] = tiers
        return cost, other


def _provider(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise EntryError(f"provider id: must be a non-empty string, got {describe(name)}")
    return map_provider(name)


def _set_prices(model_price: Any) -> dict[str, Any]:
    """The prices a package ``ModelPrice`` sets, by key."""
    return {k: v for k, v in vars(model_price).items() if v is not None and not k.startswith("_")}


def _has_prices(model_price: Any) -> bool:
    return bool(_set_prices(model_price))


def _applicable(value: Any, threshold: int | None, tiered_type: type[Any]) -> Any:
    """The price that applies to a request whose input exceeds ``threshold`` (``None``: below every tier)."""
    if not isinstance(value, tiered_type):
        return value
    price = value.base
    if threshold is not None:
        for tier in sorted(value.tiers, key=lambda t: t.start):
            if tier.start <= threshold:
                price = tier.price
    return price


def _plain(value: Any, tiered_type: type[Any]) -> Any:
    """A price for the metadata: a ``Decimal``, or ``{"base": ..., "tiers": [{"start": ..., "price": ...}]}``."""
    if isinstance(value, tiered_type):
        return {"base": value.base, "tiers": [{"start": t.start, "price": t.price} for t in value.tiers]}
    return value
