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

The package's modules: :mod:`.reading` (the catalogue from a mapping or a JSON file, duplicate keys and all),
:mod:`.entries` (one entry's fields: aliases, provider, capabilities, limits, status, metadata), :mod:`.prices`
(the ``cost``: prices, tiers, service tiers, ``tiered_pricing``) and :mod:`.trusted` (building the models without
pydantic's validation); this module walks the catalogue and skips what cannot be imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

from ..common import FAST_PATH, CatalogImport, EntryError, ModelCollector, describe
from .entries import DISTINCT_CAPABILITIES, Converter
from .reading import read_catalog
from .trusted import set_fields, trusted_model

__all__ = ["TRUSTED", "load_litellm_catalog"]

_SAMPLE_SPEC: Final = "sample_spec"
# Read on every entry (not inside trusted_model) so that a test can turn it off here.
TRUSTED: Final = FAST_PATH and DISTINCT_CAPABILITIES
"""Whether models are built without pydantic (see ``trusted.trusted_model``, while the schemas keep the shapes the
importer mirrors); else every one is validated. Tests turn it off to compare both ways."""


def load_litellm_catalog(
    source: str | os.PathLike[str] | Mapping[str, Any], *, today: date | None = None
) -> CatalogImport:
    """Convert LiteLLM's catalogue: a path to its JSON file, or the already-parsed mapping of name to entry.

    ``today`` (default: the current UTC date) decides which ``deprecation_date``\\ s are past. Returns the models
    in catalogue order as a :class:`~noa_ai_provider.importers.CatalogImport` (a list) whose ``skipped`` names
    every entry left out and why. Raises :class:`~noa_ai_provider.errors.PersistenceError` when the file cannot be
    read and :class:`~noa_ai_provider.errors.ConfigError` when it is not a JSON object.

    .. versionchanged:: 0.2.0
       Follows the 0.2.0 pricing rules: each price kind starts its own long-context tier, service tiers keep
       only the prices they state, and 1-hour cache-write prices are read.
    """
    if today is None:
        today = datetime.now(UTC).date()
    elif isinstance(today, datetime):
        today = today.date()
    catalog, duplicates, copy_values = read_catalog(source)
    converter = Converter(catalog, today, copy_values)
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
        model = trusted_model(values, providers) if TRUSTED else None
        if model is not None:
            add_model(name, model)
        else:  # a value only pydantic's validation can judge (and word the reason for)
            collector.add(name, set_fields(values))
    for name in duplicates:
        collector.skip(name, "duplicate key in the JSON text: the first entry with it was kept")
    return collector.result
