"""noa's bills against LiteLLM's own cost calculation (``litellm.cost_per_token``), on the catalogue LiteLLM ships.

Every priced model the LiteLLM importer makes of ``model_prices_and_context_window_backup.json`` (the catalogue in
the ``litellm`` package, the same bytes as the pinned copy the benchmarks read) is priced by
``EnhancedModelRegistry.estimate_cost`` and by ``litellm.cost_per_token`` on the cases of
``bench/crosscheck_prices.py``: a plain request, cache reads, cache writes, 1-hour cache writes (where the entry
prices them), at and one token above every long-context threshold of any kind, and each flex / priority service
tier noa prices. LiteLLM computes in floats: the two agree when they are within a relative 1e-9.

Every mismatch must fall in a category explained below (``EXPLAINED``); an unexplained one fails, with examples.
LiteLLM bills ``off_peak_pricing`` by the clock: every call is billed at ``BILLING_TIME``, a weekday peak hour.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm is imported: its shipped map, no download

import json
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest
from litellm._internal_context import pinned_billing_time
from litellm.types.utils import CacheCreationTokenDetails, PromptTokensDetailsWrapper, Usage

from noa_ai_provider import EnhancedModelRegistry, ExtendedModelInfo
from noa_ai_provider.cost import request_cost
from noa_ai_provider.importers import load_litellm_catalog

CATALOG = Path(litellm.__file__).parent / "model_prices_and_context_window_backup.json"
TODAY = datetime(2026, 12, 2, tzinfo=UTC)
BILLING_TIME = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
"""A Wednesday, 08:00 UTC (16:00 in Shanghai): peak hours for every ``off_peak_pricing`` in the catalogue (off-peak
there: weekdays 00:00-01:00, 04:00-06:00 and 10:00-00:00 UTC, and all weekend)."""
RTOL = Decimal("1e-9")
AGREEMENT_FLOOR = Decimal("0.9907")
"""The share of comparisons that agree: 15,162 of 15,303 with litellm 1.110.2 (99.08%). The 141 others are the
LiteLLM behaviours of ``EXPLAINED`` (98 Fireworks service-tier, 37 Perplexity fallback, 6 other-entry
comparisons); a lower share means a new disagreement."""
SIGN_IN = frozenset({"github_copilot", "chatgpt", "gigachat"})
"""Providers whose LiteLLM code starts an OAuth sign-in (network, token files): never asked."""
LITELLM_PROVIDER = {"claude": "anthropic"}  # noa's provider names back to LiteLLM's


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    input_tokens: int
    output_tokens: int
    cached: int = 0
    written: int = 0
    written_1h: int = 0
    service_tier: str | None = None

    def label(self) -> str:
        parts = [self.service_tier] if self.service_tier else []
        parts.append(f"{self.input_tokens:,} in")
        for count, what in ((self.cached, "cache read"), (self.written, "cache write"), (self.written_1h, "1h write")):
            if count:
                parts.append(f"{count:,} {what}")
        parts.append(f"{self.output_tokens:,} out")
        return ", ".join(parts)


_THRESHOLD_KEY = re.compile(r"_above_(\d+)(k?)_tokens")


def entry_thresholds(entry: dict[str, Any], provider: str) -> set[int]:
    """Every threshold the entry prices any kind at (``*_above_<N>k_tokens``, service tiers and 1-hour writes
    included), as our ``above_input_tokens`` (one less for xAI, billed from the threshold on)."""
    found: set[int] = set()
    for key in entry:
        m = _THRESHOLD_KEY.search(key)
        if m:
            n = int(m.group(1)) * (1000 if m.group(2) else 1)
            found.add(n - 1 if provider == "xai" and n else n)
    return found


def cases(model: ExtendedModelInfo, entry: dict[str, Any], provider: str) -> list[Case]:
    """The cases of bench/crosscheck_prices.py, with 1-hour cache writes where the entry prices them."""
    assert model.cost is not None
    hour = any("_above_1hr" in key for key in entry)
    out = [Case(1_000, 500), Case(10_000, 500, cached=8_000), Case(10_000, 500, written=2_000)]
    if hour:
        out.append(Case(10_000, 500, written=1_000, written_1h=2_000))
    standard = {t.above_input_tokens for t in model.cost.tiers or ()}
    for t in sorted(standard | entry_thresholds(entry, provider)):
        out += [Case(t, 500), Case(t + 1, 500), Case(t + 1, 500, cached=(t + 1) // 4, written=(t + 1) // 10)]
        if hour:
            out.append(Case(t + 1, 500, written_1h=(t + 1) // 10))
    for tier in ("flex", "priority"):
        prices = (model.cost.service_tiers or {}).get(tier)
        if prices is None:
            continue
        out += [Case(1_000, 500, service_tier=tier), Case(10_000, 500, cached=8_000, service_tier=tier)]
        for t in sorted(standard | {t.above_input_tokens for t in prices.tiers or ()}):
            out.append(Case(t + 1, 500, service_tier=tier))
    return out


# --------------------------------------------------------------------------- the two sides


def litellm_cost(key: str, provider: str, case: Case) -> Decimal | None:
    """LiteLLM's bill, at BILLING_TIME; ``None`` when it raises."""
    usage = None
    if case.written_1h:
        written = case.written + case.written_1h
        usage = Usage(
            prompt_tokens=case.input_tokens,
            completion_tokens=case.output_tokens,
            cache_creation_input_tokens=written,
            cache_read_input_tokens=case.cached,
            prompt_tokens_details=PromptTokensDetailsWrapper(
                cache_creation_tokens=written,
                cached_tokens=case.cached or None,
                cache_creation_token_details=CacheCreationTokenDetails(
                    ephemeral_5m_input_tokens=case.written, ephemeral_1h_input_tokens=case.written_1h
                ),
            ),
        )
    try:
        with pinned_billing_time(BILLING_TIME):
            prompt, completion = litellm.cost_per_token(
                model=key,
                custom_llm_provider=provider,
                prompt_tokens=case.input_tokens,
                completion_tokens=case.output_tokens,
                cache_read_input_tokens=case.cached,
                cache_creation_input_tokens=case.written,
                service_tier=case.service_tier,
                usage_object=usage,
            )
    except Exception:
        return None
    return Decimal(repr(float(prompt))) + Decimal(repr(float(completion)))


def close(ours: Decimal, theirs: Decimal) -> bool:
    return abs(ours - theirs) <= RTOL * max(abs(ours), abs(theirs), Decimal("1e-30"))


@dataclass(frozen=True)
class Comparison:
    key: str
    model: ExtendedModelInfo
    provider: str  # LiteLLM's
    entry: dict[str, Any]
    case: Case
    ours: Decimal
    theirs: Decimal | None

    @property
    def agrees(self) -> bool:
        return self.theirs is not None and close(self.ours, self.theirs)


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    data = json.loads(CATALOG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def models() -> list[ExtendedModelInfo]:
    return list(load_litellm_catalog(CATALOG, today=TODAY))


@pytest.fixture(scope="module")
def comparisons(
    models: list[ExtendedModelInfo], catalog: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> list[Comparison]:
    litellm.suppress_debug_info = True
    path = tmp_path_factory.mktemp("agreement") / "registry.json"
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, on_context_overflow="warn")
    registry.register_models(models)
    out: list[Comparison] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # requests beyond a context window (prices are compared, not limits)
        for model in models:
            provider = LITELLM_PROVIDER.get(str(model.provider), str(model.provider))
            if model.cost is None or provider in SIGN_IN:
                continue
            key = f"{model.provider}:{model.id}"
            entry = resolved_entry(catalog, model.id)
            for case in cases(model, entry, provider):
                ours = registry.estimate_cost(
                    key,
                    case.input_tokens,
                    case.output_tokens,
                    cached_input_tokens=case.cached,
                    cache_write_tokens=case.written,
                    cache_write_1h_tokens=case.written_1h,
                    service_tier=case.service_tier,
                )
                out.append(Comparison(key, model, provider, entry, case, ours, litellm_cost(model.id, provider, case)))
    registry.close()
    return out


def resolved_entry(catalog: dict[str, Any], name: str) -> dict[str, Any]:
    entry = catalog[name]
    while "alias_of" in entry and "litellm_provider" not in entry:
        entry = {**catalog[entry["alias_of"]], **{k: v for k, v in entry.items() if k != "alias_of"}}
    return dict(entry)


# --------------------------------------------------------------------------- why they differ

EXPLAINED = {
    "fireworks-service-tier": "LiteLLM's Fireworks AI cost function (llms/fireworks_ai/cost_calculator.py) passes no "
    "service tier on to generic_cost_per_token, so it bills a flex or priority request at the standard prices; noa "
    "bills the entry's own *_priority / *_flex prices",
    "perplexity-fallback": "LiteLLM's Perplexity cost function takes the cost Perplexity reports (usage.cost); its "
    "fallback, used here (no reported cost), bills only the base input, output and cache-read prices: no "
    "long-context tier and no cache-write price, both of which noa bills from the entry",
    "other-entry": "cost_per_token looks the model up as '<provider>/<key>' before '<key>' (and drops a repeated "
    "provider prefix first), so for this key it priced another catalogue entry than the one noa priced",
}


def litellm_entry_key(model_id: str, provider: str, catalog: dict[str, Any]) -> str:
    """The catalogue entry ``litellm.cost_per_token(model=model_id, custom_llm_provider=provider)`` prices."""
    prefix = f"{provider}/"
    model = model_id
    while model.startswith(prefix) and model[len(prefix) :].startswith(prefix):
        model = model[len(prefix) :]
    with_provider = model if model.startswith(prefix) else prefix + model
    return with_provider if with_provider in catalog else model


def crosses_a_threshold(c: Comparison) -> bool:
    return any(c.case.input_tokens > t for t in entry_thresholds(c.entry, c.provider))


def explain(c: Comparison, catalog: dict[str, Any]) -> str | None:
    """The category of ``EXPLAINED`` a mismatch falls in, or ``None``."""
    if c.theirs is None:
        return None
    if litellm_entry_key(c.model.id, c.provider, catalog) != c.model.id:
        return "other-entry"
    if c.provider == "fireworks_ai" and c.case.service_tier is not None:
        return "fireworks-service-tier"
    if c.provider == "perplexity" and (
        crosses_a_threshold(c)
        or ((c.case.written or c.case.written_1h) and c.entry.get("cache_creation_input_token_cost") is not None)
    ):
        return "perplexity-fallback"
    return None


def test_noa_agrees_with_litellm_on_the_shipped_catalogue(
    comparisons: list[Comparison], catalog: dict[str, Any]
) -> None:
    agree = sum(c.agrees for c in comparisons)
    assert len(comparisons) > 15_000
    share = Decimal(agree) / len(comparisons)
    mismatches = [c for c in comparisons if not c.agrees]
    by_reason: dict[str | None, list[Comparison]] = defaultdict(list)
    for c in mismatches:
        by_reason[explain(c, catalog)].append(c)
    unexplained = by_reason.pop(None, [])
    examples = "\n".join(f"  {c.key} {c.case.label()}: noa {c.ours}, LiteLLM {c.theirs}" for c in unexplained[:15])
    assert not unexplained, f"{len(unexplained)} unexplained mismatches, e.g.:\n{examples}"
    counts = Counter({reason: len(rows) for reason, rows in by_reason.items()})
    assert share >= AGREEMENT_FLOOR, f"{agree:,} of {len(comparisons):,} agree ({share:.4%}); mismatches: {counts}"


def test_every_case_kind_is_compared(comparisons: list[Comparison]) -> None:
    # the comparison covers what it claims: thresholds of every kind, service tiers, 1-hour writes
    cases_seen = [c.case for c in comparisons]
    assert any(case.written_1h for case in cases_seen)
    assert {case.service_tier for case in cases_seen} == {None, "flex", "priority"}
    assert sum(c.case.input_tokens > 200_000 for c in comparisons) > 500
    hour = [c for c in comparisons if c.case.written_1h]
    assert sum(c.agrees for c in hour) == len(hour)


# --------------------------------------------------------------------------- regressions


def test_an_output_price_alone_starts_a_tier() -> None:
    # output_cost_per_token_above_32k_tokens applies although that threshold has no input price (was 0.042)
    [model] = load_litellm_catalog(
        {
            "m": {
                "litellm_provider": "openai",
                "mode": "chat",
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "output_cost_per_token_above_32k_tokens": 18e-6,
            }
        }
    )
    assert model.cost is not None
    assert request_cost(model.cost, 40_000, 1_000) == Decimal("0.058")
    assert request_cost(model.cost, 32_000, 1_000) == Decimal("0.034")


def test_gpt_5_5_priority_above_272k_bills_as_litellm(models: list[ExtendedModelInfo], tmp_path: Path) -> None:
    # priority has no long-context price of its own: above 272k the standard long-context price applies
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False) as registry:
        registry.register_models([m for m in models if m.id == "gpt-5.5"])
        assert registry.estimate_cost("openai:gpt-5.5", 300_000, 1_000, service_tier="priority") == Decimal("3.045")
    theirs = litellm_cost("gpt-5.5", "openai", Case(300_000, 1_000, service_tier="priority"))
    assert theirs is not None
    assert close(Decimal("3.045"), theirs)


def test_one_hour_cache_writes_are_imported(models: list[ExtendedModelInfo]) -> None:
    [model] = load_litellm_catalog(
        {
            "claude-x": {
                "litellm_provider": "anthropic",
                "input_cost_per_token": 3e-06,
                "output_cost_per_token": 1.5e-05,
                "cache_creation_input_token_cost": 3.75e-06,
                "cache_creation_input_token_cost_above_1hr": 6e-06,
                "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
                "cache_creation_input_token_cost_above_1hr_priority": 9e-06,
            }
        }
    )
    cost = model.cost
    assert cost is not None
    assert cost.cache_write_1h_tokens == Decimal(6)
    assert cost.tiers is not None
    assert [(t.above_input_tokens, t.cache_write_1h_tokens, t.input_tokens) for t in cost.tiers] == [
        (200_000, Decimal(12), None)
    ]
    assert cost.service_tiers is not None
    assert cost.service_tiers["priority"].cache_write_1h_tokens == Decimal(9)
    assert "litellm" not in model.metadata or not any("1hr" in k for k in model.metadata["litellm"])
    # 8,000 in at $3 + 2,000 one-hour writes at $6 per million, 500 out at $15
    assert request_cost(cost, 10_000, 500, cache_write_1h_tokens=2_000) == Decimal("0.0435")
    assert request_cost(cost, 300_000, 0, cache_write_1h_tokens=100_000) == Decimal("1.8")
    shipped = next(m for m in models if m.id == "claude-sonnet-4-5")
    assert shipped.cost is not None
    assert shipped.cost.cache_write_1h_tokens == Decimal(6)


def test_fireworks_cache_reads_default_to_half_the_input_price(tmp_path: Path) -> None:
    catalog = {
        "fireworks_ai/accounts/fireworks/models/x": {
            "litellm_provider": "fireworks_ai",
            "mode": "chat",
            "input_cost_per_token": 9e-07,
            "output_cost_per_token": 9e-07,
        },
        "fireworks_ai/priced": {
            "litellm_provider": "fireworks_ai",
            "input_cost_per_token": 9e-07,
            "output_cost_per_token": 9e-07,
            "cache_read_input_token_cost": 1e-07,
        },
        "other/x": {"litellm_provider": "together_ai", "input_cost_per_token": 9e-07, "output_cost_per_token": 9e-07},
    }
    default, priced, other = load_litellm_catalog(catalog)
    assert default.cost is not None
    assert default.cost.cached_input_tokens == Decimal("0.45")
    assert "half" in default.metadata["price_note"] or "50%" in default.metadata["price_note"]
    assert priced.cost is not None
    assert priced.cost.cached_input_tokens == Decimal("0.1")
    assert "price_note" not in priced.metadata
    assert other.cost is not None
    assert other.cost.cached_input_tokens is None
    # 2,000 in at $0.9, 8,000 cache reads at $0.45, 500 out at $0.9 per million
    assert request_cost(default.cost, 10_000, 500, cached_input_tokens=8_000) == Decimal("0.00585")


def test_shipped_fireworks_entries_all_price_cache_reads(models: list[ExtendedModelInfo]) -> None:
    fireworks = [m for m in models if m.provider == "fireworks_ai" and m.cost is not None]
    assert len(fireworks) > 300
    assert all(m.cost is not None and m.cost.cached_input_tokens is not None for m in fireworks)
