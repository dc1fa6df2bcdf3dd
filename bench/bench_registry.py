#!/usr/bin/env python
"""Benchmark of ``EnhancedModelRegistry`` on LiteLLM's model catalogue (~4,900 models).

Converts LiteLLM's ``model_prices_and_context_window.json`` into models-config dicts, registers them, and times
the registry's hot paths (lookups, usage recording, cost estimates, rate-limit checks), its scans (search,
ranking, statistics, listing) and its persistence (save/load, export/import). Prints the machine, the catalogue
conversion summary, memory figures and a Markdown table of medians.

    python bench/bench_registry.py                 # full run (about a minute on 2 cores)
    python bench/bench_registry.py --quick         # smoke run, a few seconds
    python bench/bench_registry.py --profile       # also print cProfile hotspots of each operation

Only standard-library tooling: ``time.perf_counter`` for timing, ``tracemalloc`` and ``/proc/self/status`` for
memory, ``cProfile`` for hotspots. The registry runs with ``auto_save=False`` and persists into a temporary
directory; nothing outside it is written.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import noa_ai_provider
from _common import add_catalog_argument, cpu_model, require_catalog  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry, ExtendedModelInfo

# --------------------------------------------------------------------------- catalogue conversion

PER = 1_000_000
BIG_RATE_LIMIT = {"requestsPerMinute": 10_000_000, "tokensPerMinute": 10**12}
"""High enough never to refuse in this benchmark, so check_rate_limit walks real windows but always allows."""

MODE_CAPABILITIES = {
    "chat": "chat_completion",
    "responses": "chat_completion",
    "completion": "text_generation",
    "embedding": "embeddings",
}
FLAG_CAPABILITIES = {
    "supports_function_calling": "function_calling",
    "supports_vision": "vision",
    "supports_response_schema": "json_mode",
    "supports_native_streaming": "streaming",
}
FLAG_TAGS = {
    "supports_reasoning": "reasoning",
    "supports_prompt_caching": "prompt-caching",
    "supports_pdf_input": "pdf-input",
    "supports_web_search": "web-search",
    "supports_audio_input": "audio-input",
    "supports_computer_use": "computer-use",
}


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _price(value: Any) -> Decimal:
    """Price per token from LiteLLM -> exact price per million tokens (a missing price is 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Decimal(0)
    return Decimal(str(value)) * PER


def convert_entry(name: str, entry: dict[str, Any], rate_limited: bool) -> dict[str, Any]:
    """One LiteLLM catalogue entry as a models-config dict (camelCase, as in the seed's JSON)."""
    provider = entry.get("litellm_provider")
    if isinstance(provider, str):
        provider = provider.replace(":", "-")
    mode = entry.get("mode")
    capabilities: list[str] = []
    if isinstance(mode, str) and mode in MODE_CAPABILITIES:
        capabilities.append(MODE_CAPABILITIES[mode])
    capabilities += [cap for flag, cap in FLAG_CAPABILITIES.items() if entry.get(flag) is True]
    tags = [t for t in (provider, mode) if isinstance(t, str)]
    tags += [cap for flag, cap in FLAG_CAPABILITIES.items() if entry.get(flag) is True]
    tags += [tag for flag, tag in FLAG_TAGS.items() if entry.get(flag) is True]
    model: dict[str, Any] = {
        "id": name,
        "name": name,
        "provider": provider,
        "version": "1.0.0",
        "capabilities": capabilities,
        "cost": {
            "inputTokens": _price(entry.get("input_cost_per_token")),
            "outputTokens": _price(entry.get("output_cost_per_token")),
            "currency": "USD",
            "per": PER,
        },
        "metadata": {"tags": tags, "mode": mode},
    }
    context = _positive_int(entry.get("max_input_tokens")) or _positive_int(entry.get("max_tokens"))
    if context is not None:
        model["contextWindow"] = context
    max_tokens = _positive_int(entry.get("max_output_tokens"))
    if max_tokens is not None:
        model["maxTokens"] = max_tokens
    if rate_limited:
        model["rateLimit"] = dict(BIG_RATE_LIMIT)
    return model


@dataclass
class Catalogue:
    models: list[dict[str, Any]]
    total: int
    skipped: Counter[str]
    seconds: float


def load_catalogue(path: Path, rate_limited_share: float, rng: random.Random) -> Catalogue:
    """Read and convert the catalogue; entries that fail validation are skipped and counted by reason."""
    start = time.perf_counter()
    try:
        with path.open(encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read the catalogue {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise SystemExit(f"error: {path}: expected a JSON object keyed by model name, got {type(raw).__name__}")
    raw.pop("sample_spec", None)
    models: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            skipped["not an object"] += 1
            continue
        model = convert_entry(name, entry, rng.random() < rate_limited_share)
        try:
            ExtendedModelInfo.model_validate(model)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", None)
            first = errors()[0] if callable(errors) else {"loc": ("?",), "type": str(exc)}
            skipped[f"{'.'.join(map(str, first['loc']))}: {first['type']}"] += 1
            continue
        models.append(model)
    return Catalogue(models, len(raw), skipped, time.perf_counter() - start)


# --------------------------------------------------------------------------- machine


def rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_lines() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    import pydantic

    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable)",
        f"- pydantic {pydantic.VERSION}, noa-ai-provider {getattr(noa_ai_provider, '__version__', '?')}",
    ]


# --------------------------------------------------------------------------- timing


@dataclass
class Result:
    name: str
    ops: int  # operations per repeat
    repeats: int
    seconds: list[float]  # per repeat
    items: int | None = None  # models handled per operation (for bulk operations)
    note: str = ""

    @property
    def us_per_op(self) -> float:
        return statistics.median(self.seconds) / self.ops * 1e6

    @property
    def spread(self) -> float:
        """(max - min) / median of the per-repeat times: a rough noise figure."""
        med = statistics.median(self.seconds)
        return (max(self.seconds) - min(self.seconds)) / med if med else 0.0


def timed(
    name: str,
    body: Callable[[int], Any],
    ops: int,
    repeats: int,
    *,
    setup: Callable[[], Any] | None = None,
    items: int | None = None,
    note: str = "",
) -> Result:
    """Median-of-``repeats`` timing of ``body(ops)``, which must perform ``ops`` operations.

    ``setup`` runs before each repeat, outside the timed region. The garbage collector stays enabled (it is part
    of the real cost of allocating snapshots) but a collection runs before each repeat.
    """
    seconds = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        body(ops)
        seconds.append(time.perf_counter() - start)
    return Result(name, ops, repeats, seconds, items, note)


def calls(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[int], None]:
    """A body for :func:`timed` calling ``fn(*args, **kwargs)`` ``ops`` times, dropping each result at once
    (keeping them would make the collector walk thousands of live snapshots and skew the timing)."""

    def body(ops: int) -> None:
        for _ in range(ops):
            fn(*args, **kwargs)

    return body


def fmt_us(us: float) -> str:
    if us >= 100_000:
        return f"{us / 1000:,.0f} ms"
    if us >= 10_000:
        return f"{us / 1000:,.1f} ms"
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def fmt_ops(ops: float) -> str:
    if ops >= 100:
        return f"{ops:,.0f}"
    if ops >= 10:
        return f"{ops:.1f}"
    return f"{ops:.2f}"


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| Operation | ops × repeats | µs/op (median) | ops/s | µs/model | spread | notes |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        us = r.us_per_op
        per_model = f"{us / r.items:.2f}" if r.items else ""
        lines.append(
            f"| {r.name} | {r.ops:,} × {r.repeats} | {fmt_us(us)} | {fmt_ops(1e6 / us)} | {per_model} "
            f"| {r.spread:.0%} | {r.note} |"
        )
    return "\n".join(lines)


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Sizes:
    ops: int  # per-call operations (get_model, record_usage, ...)
    cheap_ops: int  # estimate_cost
    search_ops: int
    scan_ops: int  # get_most_cost_effective_models, get_statistics
    list_ops: int
    repeats: int
    bulk_repeats: int  # register_models, save, load, export, import


FULL = Sizes(ops=20_000, cheap_ops=50_000, search_ops=20, scan_ops=20, list_ops=5, repeats=7, bulk_repeats=5)
QUICK = Sizes(ops=2_000, cheap_ops=5_000, search_ops=3, scan_ops=3, list_ops=1, repeats=3, bulk_repeats=2)


def new_registry(path: Path) -> EnhancedModelRegistry:
    return EnhancedModelRegistry(persistence_path=path, auto_save=False, auto_load_config=False)


def run(args: argparse.Namespace) -> int:
    catalog_path: Path = args.catalog
    require_catalog(catalog_path)
    sizes = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    out = sys.stdout

    print("## Machine\n", file=out)
    print("\n".join(machine_lines()), file=out)

    catalogue = load_catalogue(catalog_path, args.rate_limited_share, rng)
    models = catalogue.models
    n = len(models)
    print("\n## Catalogue\n", file=out)
    print(
        f"- {catalog_path.name}: {catalogue.total:,} entries (sample_spec excluded); {n:,} converted, "
        f"{sum(catalogue.skipped.values()):,} skipped as invalid; read + convert + validate "
        f"{catalogue.seconds * 1000:,.0f} ms",
        file=out,
    )
    for reason, count in catalogue.skipped.most_common():
        print(f"  - skipped {count:,}: {reason}", file=out)
    limited = sum(1 for m in models if "rateLimit" in m)
    print(f"- rate-limited models: {limited:,} ({args.rate_limited_share:.0%} share requested)", file=out)
    if not models:
        print("error: no model survived conversion", file=sys.stderr)
        return 1

    results: list[Result] = []
    profiles: dict[str, str] = {}

    def profile(name: str, body: Callable[[], Any]) -> None:
        if not args.profile:
            return
        gc.collect()  # otherwise a collection of earlier garbage lands on whatever function runs then
        prof = cProfile.Profile()
        prof.enable()
        body()
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(args.profile_top)
        profiles[name] = buf.getvalue()

    with tempfile.TemporaryDirectory(prefix="noa-bench-") as tmp:
        tmpdir = Path(tmp)

        # ---- register_models (fresh registry each repeat); RSS delta from the first one
        holder: dict[str, EnhancedModelRegistry] = {}

        def fresh() -> None:
            holder["r"] = new_registry(tmpdir / "scratch.json")

        rss_before = rss_bytes()
        fresh()
        holder["r"].register_models(models)
        rss_after = rss_bytes()
        results.append(
            timed(
                f"register_models ({n:,} models)",
                lambda _ops: holder["r"].register_models(models),
                1,
                sizes.bulk_repeats,
                setup=fresh,
                items=n,
                note="validation + records",
            )
        )
        profile("register_models", lambda: new_registry(tmpdir / "p.json").register_models(models))
        holder.clear()

        # ---- memory of the registered registry (tracemalloc). The input is converted afresh under tracing and
        # dropped afterwards, so the strings and Decimals the registry shares with it are counted as its own.
        gc.collect()
        tracemalloc.start()
        fresh_models = load_catalogue(catalog_path, args.rate_limited_share, random.Random(args.seed)).models
        gc.collect()
        before_register, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        reg_mem = new_registry(tmpdir / "mem.json")
        reg_mem.register_models(fresh_models)
        _, register_peak = tracemalloc.get_traced_memory()
        del fresh_models
        gc.collect()
        retained, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del reg_mem
        gc.collect()

        # ---- the registry everything else runs on
        reg = new_registry(tmpdir / "registry.json")
        keys = reg.register_models(models)
        limited_keys = [k for k, m in zip(keys, models, strict=True) if "rateLimit" in m] or keys
        count = max(sizes.ops, sizes.cheap_ops)
        rand_keys = [rng.choice(keys) for _ in range(count)]
        rand_limited = [rng.choice(limited_keys) for _ in range(count)]
        rand_in = [rng.randint(1, 20_000) for _ in range(count)]
        rand_out = [rng.randint(1, 4_000) for _ in range(count)]

        def get_models(ops: int) -> None:
            get = reg.get_model
            for key in rand_keys[:ops]:
                get(key)

        def record(ops: int) -> None:
            rec = reg.record_usage
            for key, i, o in zip(rand_keys[:ops], rand_in, rand_out, strict=False):
                rec(key, i, o)

        def estimate(ops: int) -> None:
            est = reg.estimate_cost
            for key, i, o in zip(rand_keys[:ops], rand_in, rand_out, strict=False):
                est(key, i, o)

        def check(ops: int) -> None:
            chk = reg.check_rate_limit
            for key, i in zip(rand_limited[:ops], rand_in, strict=False):
                chk(key, i)

        def record_limited(ops: int) -> None:
            rec = reg.record_usage
            for key, i, o in zip(rand_limited[:ops], rand_in, rand_out, strict=False):
                rec(key, i, o)

        results.append(timed("get_model (random key)", get_models, sizes.ops, sizes.repeats, note="snapshot + access"))
        profile("get_model", lambda: get_models(sizes.ops))
        results.append(timed("record_usage (random key, tokens)", record, sizes.ops, sizes.repeats))
        profile("record_usage", lambda: record(sizes.ops))
        results.append(timed("estimate_cost", estimate, sizes.cheap_ops, sizes.repeats))
        profile("estimate_cost", lambda: estimate(sizes.cheap_ops))
        # Give the windows of the rate-limited models some history, then check against it.
        record_limited(sizes.ops)
        results.append(
            timed(
                "check_rate_limit (rate-limited model)",
                check,
                sizes.ops,
                sizes.repeats,
                note=f"after {sizes.ops:,} requests recorded on them",
            )
        )
        profile("check_rate_limit", lambda: check(sizes.ops))

        # ---- scans
        queries: list[tuple[str, dict[str, Any]]] = [
            ("provider='openai'", {"provider": "openai"}),
            (
                "capability=function_calling, max_cost_per_token=$2/M",
                {"capability": "function_calling", "max_cost_per_token": Decimal("0.000002")},
            ),
            ("name_pattern='gpt-4o'", {"name_pattern": "gpt-4o"}),
            ("tags=['reasoning', 'vision']", {"tags": ["reasoning", "vision"]}),
        ]
        for label, query in queries:
            hits = len(reg.search_models(**query))
            results.append(
                timed(
                    f"search_models({label})",
                    calls(reg.search_models, **query),
                    sizes.search_ops,
                    sizes.repeats,
                    items=n,
                    note=f"{hits:,} hits",
                )
            )
            profile(f"search_models({label})", partial(calls(reg.search_models, **query), sizes.search_ops))
        results.append(
            timed(
                "get_most_cost_effective_models(10)",
                calls(reg.get_most_cost_effective_models, 10),
                sizes.scan_ops,
                sizes.repeats,
                items=n,
            )
        )
        profile(
            "get_most_cost_effective_models",
            lambda: calls(reg.get_most_cost_effective_models, 10)(sizes.scan_ops),
        )
        results.append(
            timed(
                "get_statistics",
                calls(reg.get_statistics),
                sizes.scan_ops,
                sizes.repeats,
                items=n,
            )
        )
        profile("get_statistics", lambda: calls(reg.get_statistics)(sizes.scan_ops))
        results.append(
            timed(
                "list_models",
                calls(reg.list_models),
                sizes.list_ops,
                sizes.repeats,
                items=n,
                note=f"{n:,} snapshots",
            )
        )
        profile("list_models", lambda: calls(reg.list_models)(sizes.list_ops))

        # ---- persistence
        results.append(
            timed("save()", lambda _ops: reg.save(), 1, sizes.bulk_repeats, items=n, note="encode + atomic write")
        )
        profile("save", reg.save)
        file_size = reg.persistence_path.stat().st_size
        results[-1].note += f", {fmt_bytes(file_size)}"

        target: dict[str, EnhancedModelRegistry] = {}

        def fresh_target() -> None:
            target["r"] = new_registry(reg.persistence_path)

        results.append(
            timed(
                "load() into an empty registry",
                lambda _ops: target["r"].load(),
                1,
                sizes.bulk_repeats,
                setup=fresh_target,
                items=n,
                note="read + parse + validate",
            )
        )
        profile("load", lambda: new_registry(reg.persistence_path).load())
        assert len(target["r"]) == n, (len(target["r"]), n)

        text_holder: dict[str, str] = {}

        def export(_ops: int) -> None:
            text_holder["t"] = reg.export_to_json()

        results.append(timed("export_to_json()", export, 1, sizes.bulk_repeats, items=n))
        profile("export_to_json", reg.export_to_json)
        text = text_holder["t"]
        results[-1].note = f"{fmt_bytes(len(text.encode()))} of JSON"
        results.append(
            timed(
                "import_from_json() into an empty registry",
                lambda _ops: target["r"].import_from_json(text),
                1,
                sizes.bulk_repeats,
                setup=lambda: target.update(r=new_registry(tmpdir / "imported.json")),
                items=n,
            )
        )
        profile("import_from_json", lambda: new_registry(tmpdir / "p2.json").import_from_json(text))
        assert len(target["r"]) == n

        # ---- memory of a loaded registry (usage stats, windows and bookkeeping restored from the snapshot)
        target.clear()
        gc.collect()
        tracemalloc.start()
        fresh_loaded = new_registry(reg.persistence_path)
        fresh_loaded.load()
        gc.collect()
        loaded_retained, loaded_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del fresh_loaded

    print("\n## Memory\n", file=out)
    print(
        f"- registered ({n:,} models, input dropped): retained {fmt_bytes(retained)} "
        f"({retained / n / 1024:.1f} KiB/model); register_models allocated at most "
        f"{fmt_bytes(register_peak - before_register)} on top of its input (tracemalloc)",
        file=out,
    )
    print(
        f"- loaded from the snapshot into an empty registry: retained {fmt_bytes(loaded_retained)} "
        f"({loaded_retained / n / 1024:.1f} KiB/model), peak during load() {fmt_bytes(loaded_peak)} (tracemalloc)",
        file=out,
    )
    if rss_before is not None and rss_after is not None:
        print(
            f"- RSS growth over the first register_models (no tracing, input already in memory): "
            f"{fmt_bytes(rss_after - rss_before)}",
            file=out,
        )

    mode = "quick" if args.quick else "full"
    print(f"\n## Timings ({mode} run, seed {args.seed}, median of repeats)\n", file=out)
    print(markdown_table(results), file=out)

    if profiles:
        print("\n## cProfile hotspots (by own time)\n", file=out)
        for name, text_ in profiles.items():
            print(f"### {name}\n\n```\n{text_.strip()}\n```\n", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_catalog_argument(parser)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with fewer iterations")
    parser.add_argument("--seed", type=int, default=1234, help="random seed (default: 1234)")
    parser.add_argument(
        "--rate-limited-share",
        type=float,
        default=0.5,
        metavar="FRACTION",
        help="share of models given a (never binding) rate limit (default: 0.5)",
    )
    parser.add_argument("--profile", action="store_true", help="also print cProfile hotspots of each operation")
    parser.add_argument("--profile-top", type=int, default=8, metavar="N", help="rows per profile (default: 8)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.rate_limited_share <= 1.0:
        parser.error("--rate-limited-share must be between 0 and 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
