#!/usr/bin/env python
"""Benchmark of loading LiteLLM's catalogue (~4,900 entries) into the registry, against a bare parse + validation.

Times, as medians of several runs:

- (a) the baseline: read the file, ``json.loads`` it and validate it with pydantic against a minimal model of a
  LiteLLM entry (the fields the importer maps, prices as ``Decimal``, every other field kept as an extra);
- (b) ``load_litellm_catalog(path)``: read, strict parse (``jsonio``), convert and validate every entry;
- (c) (b) plus ``EnhancedModelRegistry(auto_save=False).register_models(...)`` into a fresh registry;
- (d) ``registry.import_litellm_catalog(path)``: the same models in one step (no defensive copy, the garbage
  collector paused);

and reports (b)/(a), (c)/(a) and (d)/(a) against the target of 3x (``--check`` holds (b) and (d) to it),
with a breakdown of (c): the strict parse, the conversion and validation of the parsed mapping, and the
registration.

    python bench/bench_catalog_load.py                  # 9 runs of each
    python bench/bench_catalog_load.py --repeats 21     # steadier medians
    python bench/bench_catalog_load.py --catalog PATH   # another copy of model_prices_and_context_window.json

Uses only the standard library, pydantic (a dependency of the package) and the package; writes nothing but a
temporary directory (the registry never saves).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from _common import add_catalog_argument, require_catalog  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry, jsonio
from noa_ai_provider.importers import load_litellm_catalog

TARGET = 3.0


class LiteLLMEntry(BaseModel):
    """A minimal model of a catalogue entry: what the importer maps, typed; the rest kept as extras."""

    model_config = ConfigDict(extra="allow")

    litellm_provider: str | None = None
    mode: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_tokens: int | None = None
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    cache_read_input_token_cost: Decimal | None = None
    cache_creation_input_token_cost: Decimal | None = None
    supports_function_calling: bool | None = None
    supports_vision: bool | None = None
    supports_response_schema: bool | None = None
    supports_native_streaming: bool | None = None
    deprecation_date: date | None = None


CATALOG_ADAPTER: TypeAdapter[dict[str, LiteLLMEntry]] = TypeAdapter(dict[str, LiteLLMEntry])


def baseline(path: Path) -> dict[str, LiteLLMEntry]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.pop("sample_spec", None)  # documentation with strings for numbers; the importer skips it too
    return CATALOG_ADAPTER.validate_python(raw)


def new_registry(tmp: Path) -> EnhancedModelRegistry:
    return EnhancedModelRegistry(persistence_path=tmp / "registry.json", auto_save=False)


def median_ms(body: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``body``; ``setup`` runs before each, untimed. A collection
    runs before each call; the collector stays enabled (its cost is part of the real cost of allocating)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        body()
        times.append((time.perf_counter() - start) * 1000)
    return times


def fmt(times: list[float]) -> str:
    return f"{statistics.median(times):,.1f} ms (min {min(times):,.1f}, max {max(times):,.1f})"


def run(args: argparse.Namespace) -> int:
    path: Path = args.catalog
    require_catalog(path)
    repeats: int = args.repeats

    import pydantic

    print("## Machine\n")
    print(f"- Python {platform.python_version()}, {platform.platform()}, pydantic {pydantic.VERSION}")

    models = load_litellm_catalog(path)
    priced = sum(1 for m in models if m.cost is not None)
    entries = len(json.loads(path.read_text(encoding="utf-8")))
    print("\n## Catalogue\n")
    print(
        f"- {path.name}: {entries:,} entries; {len(models):,} imported ({priced:,} priced, "
        f"{len(models) - priced:,} unpriced), {len(models.skipped):,} skipped"
    )
    for reason, count in Counter(s.reason.split(":")[0] for s in models.skipped).most_common():
        print(f"  - skipped {count:,}: {reason}")

    # warm-up: imports, pydantic's schema caches, the version cache
    baseline(path)
    with tempfile.TemporaryDirectory(prefix="noa-bench-") as tmp_name:
        tmp = Path(tmp_name)
        new_registry(tmp).register_models(models)

        holder: dict[str, Any] = {}

        def fresh() -> None:
            holder["registry"] = new_registry(tmp)

        def load_and_register() -> None:
            holder["registry"].register_models(load_litellm_catalog(path))

        def import_in_one_step() -> None:
            holder["registry"].import_litellm_catalog(path)

        text = path.read_text(encoding="utf-8")
        parsed = jsonio.loads(text)

        a = median_ms(lambda: baseline(path), repeats)
        b = median_ms(lambda: load_litellm_catalog(path), repeats)
        c = median_ms(load_and_register, repeats, setup=fresh)
        d = median_ms(import_in_one_step, repeats, setup=fresh)
        parse = median_ms(lambda: jsonio.loads(path.read_text(encoding="utf-8")), repeats)
        convert = median_ms(lambda: load_litellm_catalog(parsed), repeats)
        register = median_ms(lambda: holder["registry"].register_models(models), repeats, setup=fresh)

    base = statistics.median(a)
    print(f"\n## Timings (median of {repeats} runs)\n")
    print("| Step | Time | × (a) |")
    print("|---|--:|--:|")
    rows = [
        ("(a) read + json.loads + pydantic validation (baseline)", a),
        ("(b) load_litellm_catalog(path)", b),
        ("(c) load_litellm_catalog(path) + register_models", c),
        ("(d) registry.import_litellm_catalog(path) (one step)", d),
        ("  read + jsonio.loads (strict parse)", parse),
        ("  load_litellm_catalog(mapping) (convert + validate)", convert),
        ("  register_models (already-converted models)", register),
    ]
    for name, times in rows:
        print(f"| {name} | {fmt(times)} | {statistics.median(times) / base:.2f} |")
    print()
    ok = True
    for label, times, target in (("(b)/(a)", b, True), ("(c)/(a)", c, False), ("(d)/(a)", d, True)):
        ratio = statistics.median(times) / base
        verdict = "within" if ratio <= TARGET else "OVER"
        if target:  # (c) is reported for comparison: (d) is the path that loads a catalogue into a registry
            ok = ok and ratio <= TARGET
        print(f"- {label} = {ratio:.2f} ({verdict} the {TARGET:g}x target)")
    return 0 if ok or not args.check else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_catalog_argument(parser)
    parser.add_argument("--repeats", type=int, default=9, help="runs of each step (default: 9)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio is over the target")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
