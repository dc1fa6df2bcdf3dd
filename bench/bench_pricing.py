#!/usr/bin/env python
"""Throughput of noa's pricing against genai-prices' ``calc_price`` and LiteLLM's ``cost_per_token``.

One run, same machine, same model and usage for every library:

- noa ``registry.estimate_cost`` and ``registry.record_usage`` on a registry holding LiteLLM's catalogue (loaded
  with ``noa_ai_provider.importers.load_litellm_catalog``), and ``cost.request_cost`` (the arithmetic alone);
- ``genai_prices.calc_price(usage, model_ref=..., provider_id=...)`` with a ``Usage`` built once (the cheapest way
  to call it) and built per call, and ``ModelPrice.calc_price`` on the model resolved in advance;
- ``litellm.cost_per_token(model=..., prompt_tokens=..., completion_tokens=..., cache_read_input_tokens=...,
  cache_creation_input_tokens=...)``.

Scenarios: gpt-4o with 1,000 in + 500 out, gpt-4o with 10,000 in (8,000 cache reads) + 500 out, and
claude-sonnet-4-5 with 10,000 in (6,000 cache reads, 2,000 cache writes) + 500 out. Every variant is warmed up
(the first calls of genai-prices and LiteLLM load their data), its loop length calibrated to about
``--target-ms`` per repeat, and the repeats interleaved across variants; the figures are medians. The target is
``estimate_cost`` at least 20x the throughput of ``calc_price``.

    python bench/bench_pricing.py                 # full run
    python bench/bench_pricing.py --quick         # smoke run
    python bench/bench_pricing.py --profile       # also print cProfile hotspots of estimate_cost and calc_price

Needs ``pip install genai-prices litellm`` (benchmark only; the package depends on neither). Prints Markdown.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

# LiteLLM fetches its price map from GitHub at import unless told to use the copy it ships.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


import noa_ai_provider
from _common import add_catalog_argument, cpu_model, require_catalog  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.cost import request_cost
from noa_ai_provider.importers import load_litellm_catalog

TARGET_RATIO = 20.0


@dataclass(frozen=True)
class Scenario:
    title: str
    noa_key: str  # registry key
    litellm_model: str
    genai_ref: str
    genai_provider: str
    input_tokens: int
    output_tokens: int
    cached: int = 0
    written: int = 0


SCENARIOS = (
    Scenario("gpt-4o, 1,000 in + 500 out", "openai:gpt-4o", "gpt-4o", "gpt-4o", "openai", 1_000, 500),
    Scenario(
        "gpt-4o, 10,000 in (8,000 cache read) + 500 out",
        "openai:gpt-4o",
        "gpt-4o",
        "gpt-4o",
        "openai",
        10_000,
        500,
        cached=8_000,
    ),
    Scenario(
        "claude-sonnet-4-5, 10,000 in (6,000 cache read, 2,000 cache write) + 500 out",
        "claude:claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "anthropic",
        10_000,
        500,
        cached=6_000,
        written=2_000,
    ),
)


@dataclass
class Variant:
    name: str
    call: Callable[[], Any]
    value: Decimal | None = None  # the price it computes, for the sanity table
    ops: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def per_op(self) -> float:
        return statistics.median(self.seconds) / self.ops

    @property
    def best(self) -> float:
        return min(self.seconds) / self.ops

    @property
    def spread(self) -> float:
        med = statistics.median(self.seconds)
        return (max(self.seconds) - min(self.seconds)) / med if med else 0.0


# --------------------------------------------------------------------------- setup


def load_registry(catalog: Path, tmpdir: Path) -> Any:
    require_catalog(catalog)
    registry = EnhancedModelRegistry(persistence_path=tmpdir / "registry.json", auto_save=False, auto_load_config=False)
    registry.register_models(load_litellm_catalog(catalog))
    return registry


def variants_for(s: Scenario, registry: Any, include_litellm: bool) -> list[Variant]:
    from genai_prices import Usage, calc_price

    key, inp, out, cached, written = s.noa_key, s.input_tokens, s.output_tokens, s.cached, s.written
    if key not in registry:
        raise SystemExit(f"error: {key} is not in the registry built from the catalogue")
    cost = registry.get_model(key).cost
    estimate, record = registry.estimate_cost, registry.record_usage
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached, cache_write_tokens=written)
    ref, provider = s.genai_ref, s.genai_provider
    resolved = calc_price(usage, model_ref=ref, provider_id=provider)
    model_price = resolved.model_price

    result = [
        Variant(
            "noa estimate_cost",
            lambda: estimate(key, inp, out, cached_input_tokens=cached, cache_write_tokens=written),
        ),
        Variant(
            "noa record_usage",
            lambda: record(key, inp, out, cached_input_tokens=cached, cache_write_tokens=written),
        ),
        Variant("noa cost.request_cost (arithmetic only)", lambda: request_cost(cost, inp, out, cached, written)),
        Variant("genai-prices calc_price", lambda: calc_price(usage, model_ref=ref, provider_id=provider)),
        Variant(
            "genai-prices calc_price, Usage built per call",
            lambda: calc_price(
                Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached, cache_write_tokens=written),
                model_ref=ref,
                provider_id=provider,
            ),
        ),
        Variant("genai-prices ModelPrice.calc_price (model resolved)", lambda: model_price.calc_price(usage)),
    ]
    if include_litellm:
        import litellm

        litellm.suppress_debug_info = True
        model = s.litellm_model
        result.append(
            Variant(
                "litellm cost_per_token",
                lambda: litellm.cost_per_token(
                    model=model,
                    prompt_tokens=inp,
                    completion_tokens=out,
                    cache_read_input_tokens=cached,
                    cache_creation_input_tokens=written,
                ),
            )
        )
    return result


def as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, tuple):  # litellm: (prompt cost, completion cost) floats
        return Decimal(repr(float(value[0]))) + Decimal(repr(float(value[1])))
    for attr in ("total_price",):  # genai-prices PriceCalculation
        if hasattr(value, attr):
            return Decimal(getattr(value, attr))
    if isinstance(value, dict) and "total_price" in value:  # ModelPrice.calc_price
        return Decimal(value["total_price"])
    raise TypeError(f"unexpected result {value!r}")


def same_price(v: Variant, exact: Decimal | None) -> bool:
    """Exactly ``exact``; within a relative 1e-9 for LiteLLM, which computes in floats."""
    if v.value is None or exact is None:
        return False
    if v.name.startswith("litellm"):
        return abs(exact - v.value) <= Decimal("1e-9") * max(abs(exact), abs(v.value))
    return v.value == exact


# --------------------------------------------------------------------------- timing


def calibrate(v: Variant, target_s: float, min_ops: int, max_ops: int) -> int:
    n = 50
    while True:
        start = time.perf_counter()
        for _ in range(n):
            v.call()
        took = time.perf_counter() - start
        if took > 0.02 or n >= max_ops:
            break
        n *= 4
    ops = int(target_s * n / took) if took > 0 else max_ops
    return max(min_ops, min(max_ops, ops))


def timed(call: Callable[[], Any], ops: int) -> float:
    loop = range(ops)
    gc.collect()
    start = time.perf_counter()
    for _ in loop:
        call()
    return time.perf_counter() - start


def run_scenario(variants: list[Variant], args: argparse.Namespace) -> None:
    for v in variants:  # warm up: first calls load data and fill caches
        v.value = as_decimal(v.call())
        for _ in range(args.warmup):
            v.call()
        v.ops = calibrate(v, args.target_ms / 1000, args.min_ops, args.max_ops)
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        for v in variants:
            v.seconds.append(timed(v.call, v.ops))


def profile(call: Callable[[], Any], ops: int, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(ops):
        call()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    lines = [line for line in buf.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[max(start - 1, 0) :])


# --------------------------------------------------------------------------- report


def version_of(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.2f}" if us < 10 else f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def report(results: list[tuple[Scenario, list[Variant]]], args: argparse.Namespace, setup_s: float) -> bool:
    p = print
    p("## Pricing throughput: noa vs genai-prices and LiteLLM\n")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    p(f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}")
    p(f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable)")
    p(
        f"- noa-ai-provider {getattr(noa_ai_provider, '__version__', '?')}, genai-prices "
        f"{version_of('genai-prices')}, litellm {version_of('litellm')}"
    )
    p(
        f"- registry: LiteLLM's catalogue ({args.catalog.name}), built in {setup_s:.1f} s; "
        f"{args.repeats} interleaved repeats of about {args.target_ms:g} ms per variant after {args.warmup:,} "
        "warm-up calls; median"
    )
    p("")
    met = True
    ratio_rows: list[str] = []
    for s, variants in results:
        p(f"### {s.title}\n")
        by_name = {v.name: v for v in variants}
        p("| variant | ops × repeats | µs/op (median) | ops/s | µs/op (best) | spread | price computed |")
        p("|---|--:|--:|--:|--:|--:|--:|")
        for v in variants:
            p(
                f"| {v.name} | {v.ops:,} × {len(v.seconds)} | {fmt_us(v.per_op)} | {1 / v.per_op:,.0f} | "
                f"{fmt_us(v.best)} | {100 * v.spread:.0f}% | "
                f"${format(v.value.normalize(), 'f') if v.value is not None else '?'} |"
            )
        est = by_name["noa estimate_cost"]
        calc = by_name["genai-prices calc_price"]
        ratio = calc.per_op / est.per_op
        met = met and ratio >= TARGET_RATIO
        extra = []
        if "litellm cost_per_token" in by_name:
            extra.append(f"{by_name['litellm cost_per_token'].per_op / est.per_op:,.0f}× litellm cost_per_token")
        extra.append(
            f"{by_name['genai-prices ModelPrice.calc_price (model resolved)'].per_op / est.per_op:,.1f}× "
            "ModelPrice.calc_price"
        )
        rec = by_name["noa record_usage"]
        ratio_rows.append(
            f"| {s.title} | **{ratio:,.1f}×** | {calc.best / est.best:,.1f}× | {calc.per_op / rec.per_op:,.1f}× | "
            f"{', '.join(extra)} | {'met' if ratio >= TARGET_RATIO else '**missed**'} |"
        )
        exact = est.value
        off = [v for v in variants if not same_price(v, exact)]
        if off:
            p(f"\n**Prices differ** from estimate_cost's ${exact}: " + "; ".join(f"{v.name} ${v.value}" for v in off))
        else:
            p("\nAll variants compute the same price (LiteLLM's float within a relative 1e-9, the others exactly).")
        p("")
    p("### Ratios and target\n")
    p(
        "estimate_cost / calc_price is the ratio of throughputs (calc_price's median µs/op over estimate_cost's); "
        f'the target, judged on medians, is at least {TARGET_RATIO:g}×. "Best repeats" divides the fastest '
        "repeat of each, the figure least disturbed by other load on the machine.\n"
    )
    p(
        "| scenario | estimate_cost / calc_price (median) | same, best repeats | record_usage / calc_price | "
        "estimate_cost against the others | target |"
    )
    p("|---|--:|--:|--:|---|---|")
    for row in ratio_rows:
        p(row)
    p(f"\nTarget (estimate_cost ≥ {TARGET_RATIO:g}× calc_price in every scenario): **{'met' if met else 'missed'}**\n")
    return met


def run(args: argparse.Namespace) -> int:
    try:
        import genai_prices  # noqa: F401
    except ImportError:
        raise SystemExit("error: genai-prices is not installed: pip install genai-prices") from None
    include_litellm = not args.no_litellm
    if include_litellm:
        try:
            import litellm  # noqa: F401
        except ImportError:
            raise SystemExit("error: litellm is not installed: pip install litellm (or pass --no-litellm)") from None
    with tempfile.TemporaryDirectory(prefix="noa-bench-pricing-") as tmp:
        start = time.perf_counter()
        registry = load_registry(args.catalog, Path(tmp))
        setup_s = time.perf_counter() - start
        results = []
        for s in SCENARIOS:
            variants = variants_for(s, registry, include_litellm)
            run_scenario(variants, args)
            results.append((s, variants))
        met = report(results, args, setup_s)
        if args.profile or not met:
            s = SCENARIOS[0]
            by_name = {v.name: v for v in results[0][1]}
            p = print
            p(f"### cProfile: {s.title}\n")
            for name in ("noa estimate_cost", "noa record_usage", "genai-prices calc_price"):
                p(f"{name}, {args.profile_ops:,} calls, sorted by own time:\n")
                p("```")
                p(profile(by_name[name].call, args.profile_ops, args.profile_top))
                p("```\n")
        registry.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_catalog_argument(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 repeats of about 50 ms")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per variant, median taken (default: 9)")
    parser.add_argument("--target-ms", type=float, default=None, help="time per repeat and variant (default: 300)")
    parser.add_argument("--warmup", type=int, default=2_000, help="warm-up calls per variant (default: 2000)")
    parser.add_argument("--min-ops", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--max-ops", type=int, default=2_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile hotspots (always when the target is missed)"
    )
    parser.add_argument("--profile-ops", type=int, default=50_000, metavar="N", help="calls profiled (default: 50000)")
    parser.add_argument("--profile-top", type=int, default=15, metavar="N", help="rows per profile (default: 15)")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 9
    if args.target_ms is None:
        args.target_ms = 50.0 if args.quick else 300.0
    if args.quick:
        args.warmup = min(args.warmup, 500)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
