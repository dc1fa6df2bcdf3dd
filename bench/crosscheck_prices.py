#!/usr/bin/env python
"""Cross-check of noa's request prices against genai-prices (and LiteLLM's own ``cost_per_token``).

Loads LiteLLM's price catalogue with ``noa_ai_provider.importers.load_litellm_catalog`` into an
``EnhancedModelRegistry``, resolves every model in genai-prices (pydantic/genai-prices, its bundled data) by provider
and model name, and compares ``registry.estimate_cost`` with ``genai_prices.calc_price`` on the same usage:

    (a) 1,000 input + 500 output
    (b) 10,000 input of which 8,000 are cache reads, + 500 output
    (c) 10,000 input of which 2,000 are cache writes, + 500 output
    (d) at and one token above every long-context threshold of any kind (noa's tiers, genai-prices' tiered
        prices, and every ``*_above_<N>k_tokens`` key of the LiteLLM entry: output-only, cache-only, service-tier
        and 1-hour-write thresholds included), e.g. 200,000 and 200,001 input, plus one token above it with a
        quarter of the input read from the cache and a tenth written to it
    (e) the flex and priority service tiers noa prices for the model (genai-prices'
        ``price_context={"service_tier": ...}``, LiteLLM's ``service_tier=``): (a), (b) and one token above every
        long-context threshold of the standard prices and of the service tier's own

Both sides bill at one fixed moment, ``--at`` (default ``BILLING_TIME``, a weekday peak hour): LiteLLM's
``off_peak_pricing`` and genai-prices' time-of-day prices follow the clock, so without it the figures would change
with the hour of the run. LiteLLM's calls run inside ``litellm._internal_context.pinned_billing_time(at)``, the
billing moment its cost code reads (``current_billing_time``); genai-prices gets ``genai_request_timestamp=at``.

Agreement is ``Decimal`` equality (genai-prices computes in ``Decimal`` too). Every mismatch is classified by the
price component that explains it. LiteLLM's ``cost_per_token`` on the same catalogue (float arithmetic, compared
with a relative tolerance of 1e-9) is a third opinion: where noa disagrees with it, the importer or the library
is suspect; where noa agrees with it but not with genai-prices, the two catalogues disagree.

    python bench/crosscheck_prices.py                    # prints Markdown
    python bench/crosscheck_prices.py --catalog PATH     # another copy of model_prices_and_context_window.json
    python bench/crosscheck_prices.py --no-litellm       # skip the LiteLLM third opinion
    python bench/crosscheck_prices.py --at 2026-12-02T18:00Z  # bill at another moment (here DeepSeek off-peak)

Needs ``pip install genai-prices`` (and ``litellm`` for the third opinion); neither is a dependency of the package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

# LiteLLM fetches its price map from GitHub at import unless told to use the copy it ships; that copy is the
# catalogue this script reads by default (checked below).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


import noa_ai_provider
from _common import add_catalog_argument, require_catalog  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.cost import billed_service_tier, request_rates
from noa_ai_provider.importers import load_litellm_catalog

try:
    import genai_prices
    from genai_prices import Usage, calc_price
    from genai_prices.types import ModelPrice, TieredPrices
except ImportError:
    raise SystemExit("error: genai-prices is not installed: pip install genai-prices") from None

MILLION = Decimal(1_000_000)
BILLING_TIME = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
"""The moment every comparison bills at, unless ``--at`` says otherwise: a Wednesday, 08:00 UTC (16:00 in Shanghai),
peak hours for every ``off_peak_pricing`` in LiteLLM's catalogue (off-peak there: weekdays 00:00-01:00, 04:00-06:00
and 10:00-00:00 UTC, all weekend) and for genai-prices' DeepSeek time-of-day prices (off-peak 16:30-00:30 UTC)."""
_CTX = Context(prec=60)
FLOAT_RTOL = Decimal("1e-9")

# LiteLLM's provider names -> genai-prices' provider ids. Names not listed here are passed to genai-prices as they
# are, so its own provider matching (``provider_match``) gets a chance to resolve them.
PROVIDER_MAP: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai-language-models": "google",
    "vertex_ai-anthropic_models": "google",
    "vertex_ai-vision-models": "google",
    "vertex_ai-embedding-models": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "azure": "azure",
    "azure_ai": "azure",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "groq": "groq",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "moonshot": "moonshotai",
    "novita": "novita",
    "databricks": "databricks",
    "cloudflare": "cloudflare",
    "voyage": "voyageai",
    "zai": "zai",
    "minimax": "minimax",
    "ovhcloud": "ovhcloud",
    "github_copilot": "github-copilot",
    "meta_llama": "meta",
    "baseten": "baseten",
    "elevenlabs": "elevenlabs",
    "huggingface": "huggingface",
}
# Path segments that only route a request (region, data zone), dropped after the provider prefix.
_ROUTE_SEGMENT = re.compile(r"^(?:[a-z]{2}(?:-gov)?-[a-z]+-\d|us|eu|global|apac|jp|au)$")

_LITELLM_NAMES = {"claude": "anthropic"}  # noa's provider names back to LiteLLM's

TOKEN_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    input_tokens: int
    output_tokens: int
    cached: int = 0
    written: int = 0
    service_tier: str | None = None  # flex or priority (noa's service_tier, genai-prices' price_context)

    def label(self) -> str:
        parts = [self.service_tier] if self.service_tier else []
        parts.append(f"{self.input_tokens:,} in")
        if self.cached:
            parts.append(f"{self.cached:,} cache read")
        if self.written:
            parts.append(f"{self.written:,} cache write")
        parts.append(f"{self.output_tokens:,} out")
        return ", ".join(parts)


FIXED_CASES = (
    Case("a", 1_000, 500),
    Case("b", 10_000, 500, cached=8_000),
    Case("c", 10_000, 500, written=2_000),
)
CASE_TITLES = {
    "a": "(a) 1,000 in + 500 out",
    "b": "(b) 10,000 in (8,000 cache read) + 500 out",
    "c": "(c) 10,000 in (2,000 cache write) + 500 out",
    "d-at": "(d) at a tier threshold T",
    "d-above": "(d) T + 1",
    "d-above-cache": "(d) T + 1 with T/4 cache read, T/10 cache write",
    "e": "(e) flex / priority: 1,000 in + 500 out",
    "e-cache": "(e) flex / priority: 10,000 in (8,000 cache read) + 500 out",
    "e-above": "(e) flex / priority: T + 1",
}
SERVICE_TIERS = ("flex", "priority")  # the ones genai-prices selects with price_context={"service_tier": ...}


def service_cases(cost: Any) -> list[Case]:
    """Case (e): each of flex and priority that noa prices for the model, plain, cached, and one token above every
    long-context threshold of the standard prices or of the service tier's own."""
    cases: list[Case] = []
    for tier in SERVICE_TIERS:
        prices = (cost.service_tiers or {}).get(tier)
        if prices is None:
            continue
        cases.append(Case("e", 1_000, 500, service_tier=tier))
        cases.append(Case("e-cache", 10_000, 500, cached=8_000, service_tier=tier))
        thresholds = ours_thresholds(cost) | {t.above_input_tokens for t in prices.tiers or ()}
        for threshold in sorted(thresholds):
            cases.append(Case("e-above", threshold + 1, 500, service_tier=tier))
    return cases


_THRESHOLD_KEY = re.compile(r"_above_(\d+)(k?)_tokens")


def entry_thresholds(entry: Any, provider: str) -> set[int]:
    """Every long-context threshold a LiteLLM entry prices any kind at (any ``*_above_<N>k_tokens`` key, service
    tiers and 1-hour writes included), as noa's ``above_input_tokens`` (one less for xAI, whose tiers LiteLLM bills
    from the threshold on)."""
    found: set[int] = set()
    if isinstance(entry, dict):
        for key in entry:
            m = _THRESHOLD_KEY.search(key)
            if m:
                n = int(m.group(1)) * (1000 if m.group(2) else 1)
                found.add(n - 1 if provider == "xai" and n else n)
    return found


def tier_cases(thresholds: Iterable[int]) -> list[Case]:
    cases: list[Case] = []
    for t in sorted(set(thresholds)):
        cases.append(Case("d-at", t, 500))
        cases.append(Case("d-above", t + 1, 500))
        cases.append(Case("d-above-cache", t + 1, 500, cached=(t + 1) // 4, written=(t + 1) // 10))
    return cases


# --------------------------------------------------------------------------- effective rates of each side


@dataclass
class Rates:
    """The per-million prices one side applies to one request, and the tier that chose them."""

    input: Decimal | None
    output: Decimal | None
    cache_read: Decimal | None  # None: not priced, cache reads bill as input
    cache_write: Decimal | None
    tier: int | None  # threshold of the tier in force (None: base prices)
    request_fee: Decimal = Decimal(0)  # per request, in currency units


def ours_rates(cost: Any, input_tokens: int, service_tier: str | None = None) -> Rates:
    """The prices noa bills (``noa_ai_provider.cost.request_rates``), per million; a cache price is ``None`` where
    no level in force states one (the engine then bills the input price), ``tier`` the highest threshold crossed."""
    scale = _CTX.divide(MILLION, cost.per)
    billed = billed_service_tier(cost, service_tier)
    rates = request_rates(cost, input_tokens, billed)
    levels: list[Any] = [cost]
    service = (cost.service_tiers or {}).get(billed) if billed else None
    if service is not None:
        levels.append(service)
    threshold = None
    for level in list(levels):
        for tier in level.tiers or ():
            if input_tokens > tier.above_input_tokens:
                levels.append(tier)
                threshold = max(threshold or 0, tier.above_input_tokens)

    def stated(kind: str) -> bool:
        return billed == "batch" or any(getattr(level, kind) is not None for level in levels)

    def per_m(value: Decimal) -> Decimal:
        return _CTX.multiply(value, scale)

    return Rates(
        per_m(rates.input),
        per_m(rates.output),
        per_m(rates.cache_read) if stated("cached_input_tokens") else None,
        per_m(rates.cache_write) if stated("cache_write_tokens") else None,
        threshold,
    )


def genai_rates(price: ModelPrice, input_tokens: int) -> Rates:
    values: dict[str, Decimal | None] = {}
    tier_used: int | None = None
    for key in TOKEN_KEYS:
        value = getattr(price, key, None)
        if isinstance(value, TieredPrices):
            chosen = value.base
            for tier in value.tiers:
                if input_tokens > tier.start:
                    chosen = tier.price
                    if key == "input_mtok" or tier_used is None:
                        tier_used = tier.start
            values[key] = chosen
        else:
            values[key] = value
    fee = getattr(price, "requests_kcount", None)
    return Rates(
        values["input_mtok"] or Decimal(0),
        values["output_mtok"] or Decimal(0),
        values["cache_read_mtok"],
        values["cache_write_mtok"],
        tier_used,
        Decimal(0) if fee is None else _CTX.divide(fee, 1000),
    )


def ours_thresholds(cost: Any) -> set[int]:
    """The thresholds of noa's standard long-context tiers (one per threshold where any kind changes)."""
    return {t.above_input_tokens for t in cost.tiers or ()}


def genai_thresholds(price: ModelPrice) -> set[int]:
    found: set[int] = set()
    for key in TOKEN_KEYS:
        value = getattr(price, key, None)
        if isinstance(value, TieredPrices):
            found.update(t.start for t in value.tiers)
    return found


# --------------------------------------------------------------------------- mismatch kinds


@dataclass(frozen=True)
class Kind:
    title: str
    explanation: str


KINDS: dict[str, Kind] = {
    "float-artefact": Kind(
        "Float artefacts in LiteLLM's numbers",
        "LiteLLM stores per-token prices as JSON floats, and some were written from a float computation: "
        "`9.499999999999999e-07` for $0.95/M, `1.6000000000000001e-06` for $1.60/M. noa's importer converts "
        "the number exactly as written (its shortest repr), so the cost differs from genai-prices' decimal "
        "`0.95` in the 16th significant digit. Relative difference below 1e-9.",
    ),
    "rounded-price": Kind(
        "Rounded derived prices (relative difference under 0.1%)",
        "The per-token prices differ in the 4th-6th significant digit: LiteLLM's Databricks prices are derived "
        "from DBU rates (`input_dbu_cost_per_token` × the $/DBU) and rounded (0.10003 vs 0.1 $/M), Cloudflare's "
        "from neurons (0.0509 vs 0.051).",
    ),
    "time-of-day": Kind(
        "Time-of-day prices",
        "DeepSeek's models (and their Azure copies in genai-prices) have time-of-day prices: genai-prices "
        "picks the peak or off-peak rate from the request time (here the time of the run), LiteLLM keeps the "
        "peak rate as the price and the off-peak one in `off_peak_pricing`, which noa's importer does not "
        "model. Which rate genai-prices applies changes with the hour of the run, and the peak rates can differ "
        "too (`deepseek-chat`: $0.27/$1.10 in genai-prices, $0.28/$0.42 in LiteLLM).",
    ),
    "list-price-regional": Kind(
        "Different list prices: regional or data-zone name",
        "The LiteLLM name routes to a region or data zone (`azure/eu/...`, `azure/us/...`, "
        "`bedrock/us-gov-west-1/...`, Bedrock `us.`/`eu.`/`apac.` inference profiles) that carries a surcharge "
        "in LiteLLM (Azure data zones +10%, GovCloud), while genai-prices resolves it to the model's global "
        "price (or the reverse: genai-prices' `regional.*` Bedrock price against LiteLLM's base one).",
    ),
    "list-price-alias": Kind(
        "Different list prices: genai-prices resolved the name to another model",
        "genai-prices matches names with patterns and aliases, and resolved the LiteLLM name to a model with a "
        "different id (a `-latest` alias to a dated version, a variant such as `-cyber` or `-vision-exp` to "
        "its base model, `mistral-medium` to `mistral-medium-3-1`, `azure_ai/deepseek-r1` to "
        "`deepseek-reasoner`...). The two then price different models, or the same model at different dates.",
    ),
    "list-price": Kind(
        "Different list prices (same model name)",
        "Both catalogues name the same model and publish different base per-token prices: a price change one "
        "of them has not picked up (`gpt-4o-mini-tts` output $10 vs $12/M), or a reseller's own price (Azure "
        "AI Foundry, OVHcloud, Cloudflare, Together).",
    ),
    "tier-price": Kind(
        "Different long-context (tier) prices",
        "Both sides are in a long-context tier for this request, but the tier prices differ.",
    ),
    "tiers-one-side": Kind(
        "Long-context tiers only on one side",
        "One catalogue prices the model higher above an input threshold and the other does not, so above the "
        "threshold one side bills the tier price and the other the base price. Below it both agree.",
    ),
    "tier-threshold": Kind(
        "Different tier thresholds (including ≥ vs > at the boundary)",
        "Both sides have tiers but switch at different input counts. genai-prices encodes a tier that starts AT "
        "N tokens as `start = N - 1` (it compares `input > start`), e.g. xAI's 199,999; LiteLLM's "
        "`*_above_200k_tokens` is strictly above 200,000 (LiteLLM's own cost code makes it inclusive for xAI "
        "only). Exactly at the threshold one side bills the tier, the other the base price.",
    ),
    "service-tier-long-context": Kind(
        "Service tier above a long-context threshold",
        "A flex / priority request above a threshold where the LiteLLM entry has no long-context price of that "
        "service tier (`gpt-5.4`: `*_priority` prices, `*_above_272k_tokens` prices, no "
        "`*_above_272k_tokens_priority`): noa bills the standard long-context price there, as LiteLLM does "
        "(the engine's service-tier rule), while genai-prices keeps the service tier's flat price for every token.",
    ),
    "cache-read-missing": Kind(
        "Cache-read price missing on one side",
        "One side has a cache-read price and the other has none, so its cache reads bill at the full input "
        "price (both noa and genai-prices fall back to the input price when no cache price is published).",
    ),
    "cache-read-price": Kind(
        "Different cache-read prices",
        "Both sides price cache reads, at different rates.",
    ),
    "cache-write-missing": Kind(
        "Cache-write price missing on one side",
        "One side has a cache-write price (Anthropic-style cache creation at 1.25× input, or an explicit 0 in "
        "LiteLLM for providers that do not charge writes, such as DeepSeek and Z.ai) and the other has none, so "
        "its written tokens bill at the plain input price.",
    ),
    "cache-write-price": Kind(
        "Different cache-write prices",
        "Both sides price cache writes, at different rates.",
    ),
    "request-fee": Kind(
        "Per-request fee in genai-prices",
        "genai-prices adds a fixed price per request (`requests_kcount`) that LiteLLM's token prices do not "
        "carry, so genai-prices is higher by that fee on every request.",
    ),
    "service-tier-one-side": Kind(
        "Service tier priced on one side only",
        "noa (from LiteLLM's `*_flex` / `*_priority` prices) has the service tier, genai-prices has no variant "
        "for it and bills the standard price.",
    ),
    "unexplained": Kind(
        "Unexplained by the price components",
        "The per-token prices both sides apply agree, yet the totals differ.",
    ),
}
KIND_ORDER = list(KINDS)


def closeness(pairs: Iterable[tuple[Decimal | None, Decimal | None]]) -> str | None:
    """``float-artefact`` or ``rounded-price`` when every differing pair is that close, else ``None``."""
    worst = Decimal(0)
    for a, b in pairs:
        if a == b:
            continue
        if a is None or b is None or not a or not b:
            return None
        worst = max(worst, abs(a - b) / max(abs(a), abs(b)))
    if worst <= FLOAT_RTOL:
        return "float-artefact"
    if worst <= Decimal("0.001"):
        return "rounded-price"
    return None


def list_kind(match: Match, pairs: list[tuple[Decimal | None, Decimal | None]]) -> str:
    near = closeness(pairs)
    if near:
        return near
    if match.timed:
        return "time-of-day"
    if match.regional:
        return "list-price-regional"
    if match.genai_model.lower() != match.ref.lower():
        return "list-price-alias"
    return "list-price"


def classify(
    match: Match,
    case: Case,
    ours: Rates,
    theirs: Rates,
    ours_tiers: set[int],
    their_tiers: set[int],
) -> list[str]:
    """The mismatch kinds that explain a difference in ``case``, most fundamental first."""
    kinds: list[str] = []
    if ours.tier != theirs.tier and case.service_tier and theirs.tier is None:
        kinds.append("service-tier-long-context")
    elif ours.tier != theirs.tier:
        kinds.append("tier-threshold" if ours_tiers and their_tiers else "tiers-one-side")
    in_tier = ours.tier is not None or theirs.tier is not None
    uncached = case.input_tokens - case.cached - case.written
    if not kinds and ((uncached and ours.input != theirs.input) or ours.output != theirs.output):
        pairs = [(ours.output, theirs.output)] + ([(ours.input, theirs.input)] if uncached else [])
        kinds.append((closeness(pairs) or "tier-price") if in_tier else list_kind(match, pairs))
    for tokens, mine, other, name in (
        (case.cached, ours.cache_read, theirs.cache_read, "cache-read"),
        (case.written, ours.cache_write, theirs.cache_write, "cache-write"),
    ):
        if not tokens or (kinds and kinds[0] in ("tier-threshold", "tiers-one-side", "service-tier-long-context")):
            continue  # nothing to bill, or already explained by the tier choice
        if mine is None and other is None:
            continue  # both bill these tokens as input: any difference is the input price's
        eff_mine = ours.input if mine is None else mine
        eff_other = theirs.input if other is None else other
        if eff_mine == eff_other:
            continue
        if ours.input and theirs.input and eff_mine / ours.input == eff_other / theirs.input:
            continue  # the same share of each side's input price: the input price explains it
        if (mine is None) == (other is None):
            kinds.append(closeness([(mine, other)]) or f"{name}-price")
        else:
            kinds.append(f"{name}-missing")
    if theirs.request_fee:
        kinds.append("request-fee")
    return kinds or ["unexplained"]


# --------------------------------------------------------------------------- matching


@dataclass
class Match:
    key: str
    model_id: str
    litellm_provider: str
    genai_provider: str
    genai_model: str
    ref: str
    price: ModelPrice
    cost: Any
    regional: bool = False  # the LiteLLM name routes to a region or data zone (Azure eu/us, Bedrock us./eu....)
    timed: bool = False  # a time-of-day price on either side (genai-prices' TimeOfDateConstraint, LiteLLM off-peak)


_GEO_PREFIX = re.compile(r"^(?:us|eu|apac|au|jp|ca|in|global|us-gov)\.")


def is_regional(model_id: str, ref: str) -> bool:
    """Whether a LiteLLM name carries a region or data zone that genai-prices' name does not."""
    dropped = model_id.split("/")[:-1]
    return any(_ROUTE_SEGMENT.match(part) for part in dropped[1:]) or bool(_GEO_PREFIX.match(ref))


def has_time_of_day(model: Any) -> bool:
    """Whether genai-prices prices the model differently by time of day (e.g. DeepSeek's off-peak hours)."""
    prices = getattr(model, "prices", None)
    return isinstance(prices, list) and any(
        type(getattr(c, "constraint", None)).__name__ == "TimeOfDateConstraint" for c in prices
    )


def ref_candidates(model_id: str, litellm_provider: str, route_names: set[str]) -> list[str]:
    """Names to try in genai-prices: the LiteLLM key without its provider route prefix, then the key itself."""
    parts = model_id.split("/")
    if len(parts) > 1 and (parts[0] in route_names or parts[0] == litellm_provider):
        parts = parts[1:]
        while len(parts) > 1 and _ROUTE_SEGMENT.match(parts[0]):
            parts = parts[1:]
    stripped = "/".join(parts)
    return [stripped] if stripped == model_id else [stripped, model_id]


def resolve(model_id: str, litellm_provider: str, route_names: set[str], when: datetime) -> tuple[Any, str] | None:
    """genai-prices' model for a LiteLLM entry, found by its own matching (``calc_price`` with zero usage)."""
    provider = PROVIDER_MAP.get(litellm_provider, litellm_provider)
    for ref in ref_candidates(model_id, litellm_provider, route_names):
        try:
            calc = calc_price(
                Usage(input_tokens=0, output_tokens=0),
                model_ref=ref,
                provider_id=provider,
                genai_request_timestamp=when,
            )
        except LookupError:
            continue
        except ValueError:
            continue
        return calc, ref
    return None


def genai_priced(price: ModelPrice) -> bool:
    return getattr(price, "input_mtok", None) is not None or getattr(price, "output_mtok", None) is not None


# --------------------------------------------------------------------------- LiteLLM third opinion


LITELLM_SIGN_IN = frozenset({"github_copilot", "chatgpt", "gigachat"})
"""Providers whose LiteLLM code paths start an OAuth sign-in (network, token files): never asked."""


def litellm_pricer(catalog_path: Path, at: datetime) -> tuple[Callable[[str, str, Case], Decimal | None] | None, str]:
    """LiteLLM's ``cost_per_token`` for a case, billed at ``at``: LiteLLM applies an entry's ``off_peak_pricing`` by
    the clock (``_internal_context.current_billing_time``), so every call runs inside ``pinned_billing_time(at)``
    and the comparison does not depend on the hour of the run."""
    try:
        import litellm
        from litellm._internal_context import pinned_billing_time
    except ImportError:
        return None, "litellm not installed"
    litellm.suppress_debug_info = True  # no "Provider List" banners on stdout
    shipped = Path(litellm.__file__).parent / "model_prices_and_context_window_backup.json"
    note = f"litellm {getattr(litellm, 'version', None) or _dist_version('litellm')}"
    try:
        same = shipped.read_bytes() == catalog_path.read_bytes()
    except OSError:
        same = False
    if not same:
        # Price from the catalogue this run reads, not the copy LiteLLM ships.
        litellm.model_cost = json.loads(catalog_path.read_text(encoding="utf-8"))
        note += " (model_cost replaced by --catalog)"
    else:
        note += " (its shipped catalogue, identical to --catalog)"

    def price(key: str, provider: str, case: Case) -> Decimal | None:
        if provider in LITELLM_SIGN_IN:
            return None
        try:
            with pinned_billing_time(at):
                prompt, completion = litellm.cost_per_token(
                    model=key,
                    custom_llm_provider=provider,
                    prompt_tokens=case.input_tokens,
                    completion_tokens=case.output_tokens,
                    cache_read_input_tokens=case.cached,
                    cache_creation_input_tokens=case.written,
                    service_tier=case.service_tier,
                )
        except Exception:
            return None
        return Decimal(repr(float(prompt))) + Decimal(repr(float(completion)))

    return price, note


def _utc_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def float_close(exact: Decimal, approx: Decimal) -> bool:
    return abs(exact - approx) <= FLOAT_RTOL * max(abs(exact), abs(approx), Decimal("1e-30"))


# --------------------------------------------------------------------------- run


@dataclass
class Outcome:
    match: Match
    case: Case
    ours: Decimal
    theirs: Decimal
    litellm: Decimal | None
    kinds: list[str] = field(default_factory=list)
    ours_rates: Rates | None = None
    their_rates: Rates | None = None


def fmt_money(value: Decimal | None) -> str:
    if value is None:
        return "–"
    text = format(value.normalize(), "f")
    return f"${text}"


def fmt_rate(value: Decimal | None) -> str:
    return "none" if value is None else format(value.normalize(), "f")


def rate_summary(r: Rates) -> str:
    tier = "base" if r.tier is None else f"tier >{r.tier:,}"
    text = (
        f"{tier}: in {fmt_rate(r.input)}, out {fmt_rate(r.output)}, cache read {fmt_rate(r.cache_read)}, "
        f"cache write {fmt_rate(r.cache_write)}"
    )
    if r.request_fee:
        text += f", per request ${fmt_rate(r.request_fee)}"
    return text


def load_registry(catalog: Path, tmpdir: Path) -> tuple[Any, list[Any], Any]:
    models = load_litellm_catalog(catalog)
    # prices, not context windows, are compared here: a request beyond a model's window is only a warning
    registry = EnhancedModelRegistry(
        persistence_path=tmpdir / "registry.json", auto_save=False, auto_load_config=False, on_context_overflow="warn"
    )
    registry.register_models(models)
    return registry, list(models), models


def run(args: argparse.Namespace) -> int:
    catalog: Path = args.catalog
    require_catalog(catalog)
    try:
        raw = json.loads(catalog.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read the catalogue {catalog}: {exc}") from None
    if not isinstance(raw, dict):
        raise SystemExit(f"error: {catalog}: expected a JSON object keyed by model name")
    route_names = {v.get("litellm_provider") for v in raw.values() if isinstance(v, dict)} | set(PROVIDER_MAP)
    route_names.discard(None)
    route_names |= {"vertex_ai", "bedrock", "azure", "azure_ai"}

    when: datetime = args.at
    litellm_price, litellm_note = (None, "LiteLLM left out (--no-litellm)")
    if not args.no_litellm:
        litellm_price, litellm_note = litellm_pricer(catalog, when)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="noa-crosscheck-") as tmp:
        registry, models, imported = load_registry(catalog, Path(tmp))
        skipped = len(getattr(imported, "skipped", ()))

        # ---- match
        matches: list[Match] = []
        unmatched_provider: Counter[str] = Counter()
        unmatched_model: Counter[str] = Counter()
        genai_unpriced = 0
        ours_unpriced = 0
        no_provider = 0  # alias entries (e.g. bedrock/claude-opus-latest) that name no litellm_provider
        provider_pairs: Counter[tuple[str, str]] = Counter()
        for model in models:
            if model.cost is None:
                ours_unpriced += 1
                continue
            entry = raw.get(model.id)
            lp = entry.get("litellm_provider") if isinstance(entry, dict) else None
            if not isinstance(lp, str):
                no_provider += 1
                continue
            found = resolve(model.id, lp, route_names, when)
            if found is None:
                gp = PROVIDER_MAP.get(lp, lp)
                try:
                    calc_price(Usage(input_tokens=0, output_tokens=0), model_ref="x", provider_id=gp)
                    provider_known = True
                except LookupError as exc:
                    provider_known = "Unable to find provider" not in str(exc)
                except ValueError:
                    provider_known = True
                (unmatched_model if provider_known else unmatched_provider)[lp] += 1
                continue
            calc, ref = found
            if not genai_priced(calc.model_price):
                genai_unpriced += 1
                continue
            key = f"{model.provider}:{model.id}"
            matches.append(
                Match(
                    key,
                    model.id,
                    lp,
                    calc.provider.id,
                    calc.model.id,
                    ref,
                    calc.model_price,
                    model.cost,
                    is_regional(model.id, ref),
                    has_time_of_day(calc.model) or bool(entry.get("off_peak_pricing")),
                )
            )
            provider_pairs[(lp, calc.provider.id)] += 1

        # ---- compare
        outcomes: list[Outcome] = []
        errors: list[tuple[str, str, str]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for m in matches:
                thresholds = ours_thresholds(m.cost) | genai_thresholds(m.price)
                cases = list(FIXED_CASES) + tier_cases(
                    thresholds | entry_thresholds(raw_entry(raw, m.model_id), m.litellm_provider)
                )
                cases += service_cases(m.cost)
                for case in cases:
                    try:
                        ours = registry.estimate_cost(
                            m.key,
                            case.input_tokens,
                            case.output_tokens,
                            cached_input_tokens=case.cached,
                            cache_write_tokens=case.written,
                            service_tier=case.service_tier,
                        )
                    except Exception as exc:
                        errors.append((m.key, case.label(), f"noa: {type(exc).__name__}: {exc}"))
                        continue
                    try:
                        calc = calc_price(
                            Usage(
                                input_tokens=case.input_tokens,
                                output_tokens=case.output_tokens,
                                cache_read_tokens=case.cached,
                                cache_write_tokens=case.written,
                            ),
                            model_ref=m.ref,
                            provider_id=m.genai_provider,
                            genai_request_timestamp=when,
                            price_context={"service_tier": case.service_tier} if case.service_tier else None,
                        )
                    except Exception as exc:
                        errors.append((m.key, case.label(), f"genai-prices: {type(exc).__name__}: {exc}"))
                        continue
                    theirs = Decimal(calc.total_price)
                    lite = litellm_price(m.model_id, m.litellm_provider, case) if litellm_price else None
                    out = Outcome(m, case, ours, theirs, lite)
                    if ours != theirs:
                        out.ours_rates = ours_rates(m.cost, case.input_tokens, case.service_tier)
                        out.their_rates = genai_rates(calc.model_price, case.input_tokens)
                        out.kinds = classify(
                            m,
                            case,
                            out.ours_rates,
                            out.their_rates,
                            ours_thresholds(m.cost),
                            genai_thresholds(m.price),
                        )
                        if case.service_tier and calc.model_price == m.price:
                            out.kinds = ["service-tier-one-side"]  # genai-prices billed its standard price
                    outcomes.append(out)
        # ---- noa against LiteLLM's own cost_per_token, over every priced model
        lite_all: list[Outcome] = []
        lite_skipped = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if litellm_price is not None:
                for model in models:
                    if model.cost is None:
                        continue
                    lp = _LITELLM_NAMES.get(str(model.provider), str(model.provider))
                    if lp in LITELLM_SIGN_IN:
                        lite_skipped += 1
                        continue
                    key = f"{model.provider}:{model.id}"
                    stub = Match(key, model.id, lp, "", "", model.id, ModelPrice(), model.cost)
                    thresholds = ours_thresholds(model.cost) | entry_thresholds(raw_entry(raw, model.id), lp)
                    cases = list(FIXED_CASES) + tier_cases(thresholds) + service_cases(model.cost)
                    for case in cases:
                        ours = registry.estimate_cost(
                            key,
                            case.input_tokens,
                            case.output_tokens,
                            cached_input_tokens=case.cached,
                            cache_write_tokens=case.written,
                            service_tier=case.service_tier,
                        )
                        out = Outcome(stub, case, ours, ours, litellm_price(model.id, lp, case))
                        out.ours_rates = ours_rates(model.cost, case.input_tokens, case.service_tier)
                        lite_all.append(out)
        registry.close()
    seconds = time.perf_counter() - start
    report(
        args,
        catalog,
        raw,
        models,
        skipped,
        matches,
        outcomes,
        errors,
        litellm_note,
        seconds,
        when,
        extra={
            "unmatched_provider": unmatched_provider,
            "unmatched_model": unmatched_model,
            "genai_unpriced": genai_unpriced,
            "ours_unpriced": ours_unpriced,
            "no_provider": no_provider,
            "provider_pairs": provider_pairs,
            "lite_all": lite_all,
            "lite_skipped": lite_skipped,
        },
    )
    return 0


# --------------------------------------------------------------------------- report

LITELLM_REASONS = {
    "fireworks-service-tier": "flex / priority request on Fireworks AI: LiteLLM's Fireworks cost function "
    "(`llms/fireworks_ai/cost_calculator.py`) passes no service tier on to `generic_cost_per_token` and bills the "
    "standard prices; noa bills the entry's own `*_priority` / `*_flex` prices",
    "provider-code": "LiteLLM's Perplexity cost function takes the cost Perplexity reports (`usage.cost`); its "
    "fallback, used here, bills only the base input, output and cache-read prices: no long-context tier "
    "(`*_above_<N>k_tokens`) and no cache-write price, both of which noa bills from the entry",
    "lookup": "LiteLLM's `cost_per_token` priced another entry than the key given: it looks up "
    "`<provider>/<key>` before `<key>` and drops a repeated provider prefix (`deepseek-chat` from "
    "`deepseek/deepseek-chat`, `perplexity/perplexity/sonar` from `perplexity/sonar`, `gemini-exp-1206` from "
    "`gemini/gemini-exp-1206`); noa priced the entry named",
    "off-peak": "LiteLLM applies the entry's `off_peak_pricing` at the billing time (`--at` falls in an off-peak "
    "window); noa has no time-of-day prices (the importer keeps them in metadata)",
    "litellm-error": "LiteLLM raised an error for the entry",
    "unexplained": "none of the above: a disagreement to look into",
}


def raw_entry(raw: dict[str, Any], model_id: str) -> Any:
    """The catalogue entry of ``model_id``, or the one its ``alias_of`` names."""
    entry = raw.get(model_id)
    if isinstance(entry, dict) and isinstance(entry.get("alias_of"), str) and "litellm_provider" not in entry:
        entry = raw.get(entry["alias_of"], entry)
    return entry


def litellm_entry_key(model_id: str, provider: str, raw: dict[str, Any]) -> str:
    """The catalogue entry ``litellm.cost_per_token(model=model_id, custom_llm_provider=provider)`` prices."""
    prefix = f"{provider}/"
    model = model_id
    while model.startswith(prefix) and model[len(prefix) :].startswith(prefix):
        model = model[len(prefix) :]
    with_provider = model if model.startswith(prefix) else prefix + model
    return with_provider if with_provider in raw else model


def litellm_reason(raw: dict[str, Any], o: Outcome, at: datetime) -> str:
    """Why noa and LiteLLM differ on ``o``: a key of ``LITELLM_REASONS``."""
    entry = raw_entry(raw, o.match.model_id)
    provider = o.match.litellm_provider
    if o.litellm is None:
        return "litellm-error"
    if litellm_entry_key(o.match.model_id, provider, raw) != o.match.model_id:
        return "lookup"
    if isinstance(entry, dict) and entry.get("off_peak_pricing") and at != BILLING_TIME:
        return "off-peak"
    if o.case.service_tier and provider == "fireworks_ai":
        return "fireworks-service-tier"
    crosses = isinstance(entry, dict) and any(o.case.input_tokens > t for t in entry_thresholds(entry, provider))
    if (
        provider == "perplexity"
        and isinstance(entry, dict)
        and (crosses or (o.case.written and entry.get("cache_creation_input_token_cost") is not None))
    ):
        return "provider-code"
    return "unexplained"


def pick_examples(rows: list[Outcome], n: int) -> list[Outcome]:
    """Up to ``n`` rows, one model each, spread over as many LiteLLM providers as possible (OpenAI first)."""
    by_provider: dict[str, list[Outcome]] = defaultdict(list)
    seen: set[str] = set()
    for o in sorted(rows, key=lambda o: o.match.key):
        if o.match.key not in seen:
            seen.add(o.match.key)
            by_provider[o.match.litellm_provider].append(o)
    order = sorted(by_provider, key=lambda lp: (lp != "openai", lp != "anthropic", -len(by_provider[lp]), lp))
    picked: list[Outcome] = []
    depth = 0
    while len(picked) < n and any(len(v) > depth for v in by_provider.values()):
        for lp in order:
            if len(by_provider[lp]) > depth and len(picked) < n:
                picked.append(by_provider[lp][depth])
        depth += 1
    return picked


def float_artefacts(raw: dict[str, Any]) -> tuple[int, int]:
    """(entries, prices) of the catalogue whose per-token price is a float artefact (16+ significant digits)."""
    entries = prices = 0
    for entry in raw.values():
        if not isinstance(entry, dict):
            continue
        hits = sum(
            1
            for k, v in entry.items()
            if ("cost_per_token" in k or k.endswith("_token_cost")) and isinstance(v, float) and _sig_digits(v) >= 16
        )
        entries += bool(hits)
        prices += hits
    return entries, prices


def _sig_digits(value: float) -> int:
    return len(Decimal(repr(value)).normalize().as_tuple().digits)


def report(
    args: argparse.Namespace,
    catalog: Path,
    raw: dict[str, Any],
    models: list[Any],
    skipped: int,
    matches: list[Match],
    outcomes: list[Outcome],
    errors: list[tuple[str, str, str]],
    litellm_note: str,
    seconds: float,
    when: datetime,
    extra: dict[str, Any],
) -> None:
    p = print
    p("## Cross-check of prices: noa vs genai-prices (and LiteLLM)\n")
    p(
        f"- noa-ai-provider {noa_ai_provider.__version__}, genai-prices {genai_prices.__version__} (bundled data, "
        f"prices as of {when:%Y-%m-%d}), {litellm_note}; both priced at {when:%Y-%m-%d %H:%M} UTC (`--at`), so "
        "time-of-day prices (LiteLLM's `off_peak_pricing`, genai-prices' DeepSeek hours) bill the same on every run"
    )
    p(
        f"- catalogue `{catalog.name}`: {len(raw) - ('sample_spec' in raw):,} entries, {len(models):,} imported "
        f"({skipped:,} skipped by the importer), {extra['ours_unpriced']:,} of them without a price (cost null)"
    )
    n_models = len(models) - extra["ours_unpriced"]
    p(
        f"- matched in genai-prices: **{len(matches):,}** of {n_models:,} priced models "
        f"({sum(extra['unmatched_provider'].values()):,} on providers genai-prices does not cover, "
        f"{sum(extra['unmatched_model'].values()):,} names it does not resolve, "
        f"{extra['genai_unpriced']:,} resolved to a model without token prices, "
        f"{extra['no_provider']:,} alias entries without a litellm_provider to look up)"
    )
    fa_entries, fa_prices = float_artefacts(raw)
    p(
        f"- {fa_prices:,} per-token prices in {fa_entries:,} catalogue entries are float artefacts (16 or more "
        "significant digits, such as `9.499999999999999e-07`); noa imports them exactly as written"
    )
    p(f"- {len(outcomes):,} comparisons, {len(errors):,} errors, {seconds:.1f} s\n")

    p("### Matching\n")
    p("| LiteLLM provider | genai-prices provider | models matched |")
    p("|---|---|--:|")
    for (lp, gp), n in extra["provider_pairs"].most_common():
        p(f"| {lp} | {gp} | {n:,} |")
    top_unmatched = ", ".join(f"{lp} {n}" for lp, n in extra["unmatched_provider"].most_common(12))
    p(f"\nProviders genai-prices does not cover (top): {top_unmatched}.")
    top_names = ", ".join(f"{lp} {n}" for lp, n in extra["unmatched_model"].most_common(12))
    p(f"Covered providers, names not resolved (top): {top_names}.\n")

    # ---- agreement per case
    by_case: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_case[o.case.name].append(o)
    models_agree_all = {m.key for m in matches}
    for o in outcomes:
        if o.ours != o.theirs:
            models_agree_all.discard(o.match.key)
    p("### Agreement\n")
    p("| case | comparisons | exact agreement | mismatches | noa = LiteLLM (1e-9) |")
    p("|---|--:|--:|--:|--:|")
    for name in CASE_TITLES:
        rows = by_case.get(name, [])
        if not rows:
            continue
        agree = sum(o.ours == o.theirs for o in rows)
        lite = [o for o in rows if o.litellm is not None]
        lite_ok = sum(float_close(o.ours, o.litellm) for o in lite if o.litellm is not None)
        p(
            f"| {CASE_TITLES[name]} | {len(rows):,} | {agree:,} ({100 * agree / len(rows):.1f}%) | "
            f"{len(rows) - agree:,} | {lite_ok:,} / {len(lite):,} |"
        )
    total_agree = sum(o.ours == o.theirs for o in outcomes)
    p(
        f"| **all** | {len(outcomes):,} | {total_agree:,} ({100 * total_agree / max(len(outcomes), 1):.1f}%) | "
        f"{len(outcomes) - total_agree:,} | |"
    )
    p(f"\n{len(models_agree_all):,} of {len(matches):,} matched models agree exactly in every case.\n")

    # ---- kinds
    kind_models: dict[str, set[str]] = defaultdict(set)
    kind_rows: dict[str, list[Outcome]] = defaultdict(list)
    primary_models: dict[str, set[str]] = defaultdict(set)
    for o in outcomes:
        if o.ours == o.theirs:
            continue
        for k in o.kinds:
            kind_models[k].add(o.match.key)
            kind_rows[k].append(o)
        primary_models[o.kinds[0]].add(o.match.key)
    p("### Mismatch kinds\n")
    p(
        "A mismatching comparison can show several kinds (e.g. a different list price and a missing cache-write "
        'price). "Models" counts the models with at least one comparison of that kind; "as first kind" those '
        "where it is the first (most fundamental) kind of at least one comparison.\n"
    )
    p("| kind | models | comparisons | models, as first kind |")
    p("|---|--:|--:|--:|")
    for k in KIND_ORDER:
        if k in kind_rows:
            p(f"| {KINDS[k].title} | {len(kind_models[k]):,} | {len(kind_rows[k]):,} | {len(primary_models[k]):,} |")
    p("")
    for k in KIND_ORDER:
        rows = kind_rows.get(k)
        if not rows:
            continue
        p(f"#### {KINDS[k].title}\n")
        p(KINDS[k].explanation + "\n")
        for o in pick_examples(rows, args.examples):
            lite = "" if o.litellm is None else f", LiteLLM {fmt_money(o.litellm)}"
            assert o.ours_rates is not None
            assert o.their_rates is not None
            p(
                f"- `{o.match.key}` → genai-prices `{o.match.genai_provider}/{o.match.genai_model}`, "
                f"{o.case.label()}: noa {fmt_money(o.ours)}, genai-prices {fmt_money(o.theirs)}{lite}  \n"
                f"  noa {rate_summary(o.ours_rates)}; genai-prices {rate_summary(o.their_rates)} (per million)"
            )
        by_provider = Counter(o.match.litellm_provider for o in rows if o.match.key in kind_models[k])
        p(f"\nBy LiteLLM provider (comparisons): {', '.join(f'{a} {n}' for a, n in by_provider.most_common(10))}\n")

    # ---- noa vs LiteLLM, whole catalogue
    lite_all: list[Outcome] = extra["lite_all"]
    if lite_all:
        bad = [o for o in lite_all if o.litellm is None or not float_close(o.ours, o.litellm)]
        n_models = len({o.match.key for o in lite_all})
        p("### noa against LiteLLM's own `cost_per_token`, whole catalogue\n")
        p(
            f"Every priced model noa imported ({n_models:,}; {extra['lite_skipped']:,} GitHub Copilot / ChatGPT "
            "models left out, because LiteLLM's code for them starts an OAuth sign-in), cases (a)-(c), (d) at "
            f"every threshold of any kind and (e), billed at {when:%Y-%m-%d %H:%M} UTC: {len(lite_all):,} "
            "comparisons. "
            f"**{len(lite_all) - len(bad):,} agree** within a relative 1e-9 (LiteLLM computes in floats); "
            f"{len(bad):,} differ, on {len({o.match.key for o in bad}):,} models, for these reasons:\n"
        )
        if bad:
            groups: dict[str, list[Outcome]] = defaultdict(list)
            for o in bad:
                groups[litellm_reason(raw, o, when)].append(o)
            p("| reason | models | comparisons | examples (noa / LiteLLM) |")
            p("|---|--:|--:|---|")
            for reason, rows in sorted(groups.items(), key=lambda item: -len(item[1])):
                ex = "; ".join(
                    f"`{o.match.key}` {o.case.label()}: {fmt_money(o.ours)} / {fmt_money(o.litellm)}"
                    for o in pick_examples(rows, min(args.examples, 3))
                )
                p(f"| {LITELLM_REASONS[reason]} | {len({o.match.key for o in rows}):,} | {len(rows):,} | {ex} |")
            p("")
            if args.all_litellm:
                for o in bad:
                    p(f"- `{o.match.key}` {o.case.label()}: noa {fmt_money(o.ours)}, LiteLLM {fmt_money(o.litellm)}")
                p("")
    if errors:
        p("### Errors\n")
        for key, label, message in errors[: args.examples * 3]:
            p(f"- `{key}` {label}: {message}")
        p("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_catalog_argument(parser)
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's cost_per_token as a third opinion")
    parser.add_argument("--examples", type=int, default=4, metavar="N", help="examples per mismatch kind (default: 4)")
    parser.add_argument("--all-litellm", action="store_true", help="list every noa/LiteLLM difference")
    parser.add_argument(
        "--at",
        type=_utc_time,
        default=BILLING_TIME,
        metavar="ISO",
        help=f"the moment both sides bill at (time-of-day prices, dated prices; default {BILLING_TIME:%Y-%m-%d %H:%M} "
        "UTC, a weekday peak hour)",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
