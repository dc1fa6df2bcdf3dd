"""Building the converted models without pydantic's validation: :func:`trusted_model` checks what the converter
(:mod:`.entries`, :mod:`.prices`) has not already checked the way the schemas do, and builds the
:class:`~noa_ai_provider.schemas.ExtendedModelInfo` that validation would give; else says the values need
validation (:func:`set_fields` gives its input). Validating thousands of entries costs as much as converting them.

Only valid while ``common.FAST_PATH`` and ``entries.DISTINCT_CAPABILITIES`` hold: the package's ``TRUSTED``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from ...schemas import (
    MAX_INT,
    PRICE_KINDS,
    ExtendedModelInfo,
    ModelCost,
    ModelStatus,
    PriceTier,
    ProviderType,
    ServiceTierPrices,
    build_trusted,
)
from .entries import VERSION

__all__ = ["set_fields", "trusted_model"]


def set_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``values`` (as ``convert`` makes them) that the entry sets: the input for validation (the
    importer gives no aliases: the empty list is the default, not a field set)."""
    return {
        field: value
        for field, value in values.items()
        if (value is not None or field == "cost") and not (field == "aliases" and not value)
    }


def trusted_model(values: dict[str, Any], providers: dict[str, ProviderType | str | None]) -> ExtendedModelInfo | None:
    """The :class:`ExtendedModelInfo` that validating ``set_fields(values)`` would give, built from ``values``
    (which it takes over); or ``None`` when a value needs validation's verdict (then pydantic decides, and words
    the reason). The caller uses it only while the package's ``TRUSTED`` holds.

    The converter has checked most values the way the schemas do: every price went through ``price`` (a finite
    ``Decimal`` >= 0), limits through ``_limit`` (positive ``int``\\ s), capabilities are ``ModelCapability``
    members that cannot repeat (``DISTINCT_CAPABILITIES``), the metadata keys are ours and its tags strings,
    ``status`` a ``ModelStatus``, service tiers only ``batch``, ``flex`` and ``priority``. What is left is checked
    here: the name, the provider, the version, the limits' upper bound, the tiers' thresholds, the required prices,
    that every tier and service tier states a price, and that there are no aliases (an empty list, left out of the
    fields set as validation leaves a default out).
    """
    name = values["id"]
    provider = providers.get(values["provider"])
    context = values["context_window"]
    max_tokens = values["max_tokens"]
    if (
        type(name) is not str
        or not name
        or values["name"] is not name
        or provider is None
        or values["version"] is not VERSION
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
