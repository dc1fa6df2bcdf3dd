"""The read commands of ``noa-registry``: models, search, show, estimate, report, budgets, watch. Built on the
public API only. Each takes the parsed arguments and returns the exit status."""

from __future__ import annotations

import argparse
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import bundled_config_path
from ..errors import PersistenceError
from ..registry import EnhancedModelRegistry
from ..schemas import EnhancedModelRegistryEntry
from .render import console, money, print_json, table

DEFAULT_CONFIG = Path("config/models-config.json")
DEFAULT_PERSISTENCE = Path("data/enhanced-model-registry.json")

_LIMITS = (
    ("requests_per_minute", "rpm"),
    ("tokens_per_minute", "tpm"),
    ("input_tokens_per_minute", "itpm"),
    ("output_tokens_per_minute", "otpm"),
    ("requests_per_day", "rpd"),
    ("tokens_per_day", "tpd"),
)
_PRICES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached input", "cached_input_tokens"),
    ("cache write 5m", "cache_write_tokens"),
    ("cache write 1h", "cache_write_1h_tokens"),
)


def config_path(given: str | None) -> Path:
    """``--config``, else ./config/models-config.json when it exists, else the bundled catalogue."""
    if given is not None:
        return Path(given)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else bundled_config_path()


def catalogue(args: argparse.Namespace) -> EnhancedModelRegistry:
    """A registry holding the models of ``--config`` (nothing saved)."""
    registry = EnhancedModelRegistry(auto_save=False, models_config_path=config_path(args.config))
    registry.load_from_config()
    return registry


def opened(args: argparse.Namespace) -> EnhancedModelRegistry:
    """The registry a read command looks at: ``--backend URL`` (a shared store; definitions from ``--config``), or
    the saved file ``--persistence`` (default ./data/enhanced-model-registry.json)."""
    backend = getattr(args, "backend", None)
    if backend:
        registry = EnhancedModelRegistry(auto_save=False, backend=backend, models_config_path=config_path(args.config))
        registry.load_from_config()
        return registry
    path = Path(args.persistence)
    if not path.is_file():
        raise PersistenceError(f"{path}: no saved registry (run your application with this persistence path)")
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    registry.load()
    return registry


def per_million(price: Decimal | None, per: int) -> Decimal | None:
    return None if price is None else price * 1_000_000 / per


def limits_text(entry: EnhancedModelRegistryEntry) -> str:
    limit = entry.rate_limit
    if limit is None:
        return "-"
    parts = [f"{getattr(limit, name):,} {unit}" for name, unit in _LIMITS if getattr(limit, name)]
    return ", ".join(parts) or "-"


def model_json(entry: EnhancedModelRegistryEntry) -> dict[str, Any]:
    """An entry as JSON: the definition in the config's camelCase plus ``key`` and ``usage``."""
    data = entry.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def _models_table(entries: list[EnhancedModelRegistryEntry], title: str | None) -> None:
    rows = [
        [
            e.key,
            e.name,
            e.version,
            f"{e.context_window:,}" if e.context_window else "-",
            money(per_million(e.cost.input_tokens, e.cost.per)) if e.cost else "?",
            money(per_million(e.cost.output_tokens, e.cost.per)) if e.cost else "?",
            e.cost.currency if e.cost else "-",
            limits_text(e),
            e.status.value,
        ]
        for e in entries
    ]
    headers = ["KEY", "NAME", "VERSION", "CONTEXT", "IN/1M", "OUT/1M", "CUR", "LIMITS", "STATUS"]
    table(title, headers, rows, right=(3, 4, 5))


def cmd_models(args: argparse.Namespace) -> int:
    """The catalogue: key, name, version, context, prices per 1M tokens, limits, status."""
    path = config_path(args.config)
    entries = catalogue(args).list_models()
    if args.json:
        print_json([model_json(e) for e in entries])
        return 0
    _models_table(entries, None)
    console().print(f"\n{len(entries)} models from {path}", markup=False, highlight=False)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Models matching every filter given (the filters of ``search_models``); exit 1 when none matches."""
    filters: dict[str, Any] = {}
    for name in ("provider", "capability", "status", "min_version", "max_version", "name_pattern"):
        value = getattr(args, name)
        if value is not None:
            filters[name] = value
    if args.min_context is not None:
        filters["min_context_window"] = args.min_context
    if args.max_context is not None:
        filters["max_context_window"] = args.max_context
    if args.max_cost_per_token is not None:
        filters["max_cost_per_token"] = args.max_cost_per_token
    if args.tag:
        filters["tags"] = args.tag
    if args.exclude_deprecated:
        filters["exclude_deprecated"] = True
    found = catalogue(args).search_models(**filters)
    if args.json:
        print_json([model_json(e) for e in found])
    elif found:
        _models_table(found, None)
        console().print(f"\n{len(found)} models match", markup=False)
    else:
        console().print("no model matches", markup=False)
    return 0 if found else 1


def cmd_show(args: argparse.Namespace) -> int:
    """One model: definition, every price kind with tiers and service tiers, limits (configured and learned from
    headers), usage."""
    registry = opened(args) if (args.persistence or args.backend) else catalogue(args)
    key = registry.resolve_key(args.key)
    entry = registry.get_model(key)
    assert entry is not None
    effective = registry.effective_rate_limit(key)
    if args.json:
        data = model_json(entry)
        data["effectiveRateLimit"] = (
            effective.model_dump(mode="json", by_alias=True, exclude_none=True) if effective else None
        )
        print_json(data)
        return 0
    fields = [
        ("key", entry.key),
        ("name", entry.name),
        ("provider", str(entry.provider)),
        ("version", entry.version),
        ("status", entry.status.value),
        ("context window", f"{entry.context_window:,}" if entry.context_window else None),
        ("max output tokens", f"{entry.max_tokens:,}" if entry.max_tokens else None),
        ("capabilities", ", ".join(c.value for c in entry.capabilities) or None),
        ("aliases", ", ".join(entry.aliases) or None),
    ]
    table(entry.key, ["FIELD", "VALUE"], [(n, v) for n, v in fields if v is not None])
    cost = entry.cost
    if cost is None:
        console().print("\nno price: usage is counted, never its cost", markup=False)
    else:
        rows = [["standard", *(money(per_million(getattr(cost, f), cost.per)) for _, f in _PRICES)]]
        for tier in cost.tiers or ():
            rows.append(
                [
                    f"input > {tier.above_input_tokens:,}",
                    *(money(per_million(getattr(tier, f), cost.per)) for _, f in _PRICES),
                ]
            )
        for name, prices in (cost.service_tiers or {}).items():
            rows.append([f"tier {name}", *(money(per_million(getattr(prices, f), cost.per)) for _, f in _PRICES)])
            for tier in prices.tiers or ():
                rows.append(
                    [
                        f"tier {name}, input > {tier.above_input_tokens:,}",
                        *(money(per_million(getattr(tier, f), cost.per)) for _, f in _PRICES),
                    ]
                )
        table(
            f"prices per 1M tokens ({cost.currency})",
            ["", *(label for label, _ in _PRICES)],
            rows,
            right=(1, 2, 3, 4, 5),
        )
    configured = entry.rate_limit
    limit_rows = [
        (
            unit,
            f"{getattr(configured, name):,}" if configured and getattr(configured, name) else "-",
            f"{getattr(effective, name):,}" if effective and getattr(effective, name) else "-",
        )
        for name, unit in _LIMITS
    ]
    table(
        "rate limits (effective includes limits learned from headers)",
        ["LIMIT", "CONFIGURED", "EFFECTIVE"],
        limit_rows,
        right=(1, 2),
    )
    usage = entry.usage_stats
    table(
        "usage",
        ["REQUESTS", "FAILED", "INPUT", "CACHED", "CACHE WRITE", "OUTPUT", "COST"],
        [
            [
                f"{usage.request_count:,}",
                f"{usage.failed_requests:,}",
                f"{usage.total_input_tokens:,}",
                f"{usage.total_cached_input_tokens:,}",
                f"{usage.total_cache_write_tokens:,}",
                f"{usage.total_output_tokens:,}",
                f"{money(usage.total_cost)} {usage.currency}",
            ]
        ],
        right=range(7),
    )
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    """The exact cost of one request of INPUT and OUTPUT tokens on KEY."""
    registry = catalogue(args)
    cost = registry.estimate_cost(
        args.key,
        args.input_tokens,
        args.output_tokens,
        cached_input_tokens=args.cached,
        cache_write_tokens=args.cache_write,
        cache_write_1h_tokens=args.cache_write_1h,
        service_tier=args.service_tier,
    )
    entry = registry.get_model(args.key)
    currency = entry.cost.currency if entry is not None and entry.cost is not None else ""
    if args.json:
        key = registry.resolve_key(args.key)
        print_json({"key": key, "cost": cost, "currency": currency})
    else:
        print(f"{cost} {currency}".rstrip())
    return 0


def _since(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since must be a date YYYY-MM-DD, got {text!r}") from None


def cmd_report(args: argparse.Namespace) -> int:
    """Totals, cost by model (with keys), and cost by day from the usage history, of a saved registry or a
    shared store."""
    registry = opened(args)
    since = _since(args.since)
    stats = registry.get_statistics()
    models = sorted(registry.list_models(), key=lambda e: e.usage_stats.total_cost, reverse=True)
    history = registry.get_usage_history(since=since)
    days: dict[date, list[Any]] = {}
    for row in history:
        day = days.setdefault(row.date, [0, 0, 0, 0, Decimal(0)])
        day[0] += row.requests
        day[1] += row.input_tokens
        day[2] += row.cached_input_tokens
        day[3] += row.output_tokens
        day[4] += row.cost
    if args.json:
        print_json(
            {
                "totalCost": stats.total_cost,
                "costByCurrency": stats.cost_by_currency,
                "totalInputTokens": stats.total_input_tokens,
                "totalOutputTokens": stats.total_output_tokens,
                "totalRequests": stats.total_requests,
                "models": [
                    {
                        "key": e.key,
                        "name": e.name,
                        "requests": e.usage_stats.request_count,
                        "failedRequests": e.usage_stats.failed_requests,
                        "inputTokens": e.usage_stats.total_input_tokens,
                        "cachedInputTokens": e.usage_stats.total_cached_input_tokens,
                        "outputTokens": e.usage_stats.total_output_tokens,
                        "cost": e.usage_stats.total_cost,
                        "currency": e.usage_stats.currency,
                    }
                    for e in models
                    if e.usage_stats.request_count
                ],
                "days": [
                    {
                        "date": d,
                        "requests": v[0],
                        "inputTokens": v[1],
                        "cachedInputTokens": v[2],
                        "outputTokens": v[3],
                        "cost": v[4],
                    }
                    for d, v in sorted(days.items())
                ],
            }
        )
        return 0
    out = console()
    out.print("\n=== Cost Report ===", markup=False)
    out.print(f"Total Cost: ${stats.total_cost:.2f}", markup=False)
    out.print(f"Total Input Tokens: {stats.total_input_tokens:,}", markup=False)
    out.print(f"Total Output Tokens: {stats.total_output_tokens:,}", markup=False)
    out.print(f"Total Requests: {stats.total_requests:,}", markup=False)
    out.print("", markup=False)
    rows = [
        [
            e.key,
            e.name,
            f"{e.usage_stats.request_count:,}",
            f"{e.usage_stats.failed_requests:,}",
            f"{e.usage_stats.total_input_tokens:,}",
            f"{e.usage_stats.total_cached_input_tokens:,}",
            f"{e.usage_stats.total_output_tokens:,}",
            money(e.usage_stats.total_cost),
            e.usage_stats.currency,
        ]
        for e in models
        if e.usage_stats.request_count
    ]
    table(
        "Cost by model",
        ["KEY", "NAME", "REQUESTS", "FAILED", "INPUT", "CACHED", "OUTPUT", "COST", "CUR"],
        rows,
        right=range(2, 8),
    )
    if days:
        out.print("", markup=False)
        day_rows = [
            [d.isoformat(), f"{v[0]:,}", f"{v[1]:,}", f"{v[2]:,}", f"{v[3]:,}", money(v[4])]
            for d, v in sorted(days.items())
        ]
        title = "Cost by day (UTC)" + (f" since {since}" if since else "")
        table(title, ["DAY", "REQUESTS", "INPUT", "CACHED", "OUTPUT", "COST"], day_rows, right=range(1, 6))
    return 0


def cmd_budgets(args: argparse.Namespace) -> int:
    """Every budget of a shared store (budgets are kept in the store, not in a saved file)."""
    registry = opened(args)
    budgets = registry.get_budget_status()
    if args.json:
        print_json([b.model_dump(mode="json", by_alias=True) for b in budgets])
        return 0
    if not budgets:
        console().print("no budget set", markup=False)
        return 0
    rows = [
        [
            b.key or "(all models)",
            b.period,
            money(b.limit),
            money(b.spent),
            money(b.reserved),
            money(b.remaining),
            b.period_end.isoformat() if b.period_end else "-",
        ]
        for b in budgets
    ]
    table("Budgets", ["MODEL", "PERIOD", "LIMIT", "SPENT", "RESERVED", "REMAINING", "ENDS"], rows, right=range(2, 6))
    return 0


def _usage_rows(registry: EnhancedModelRegistry) -> list[list[str]]:
    return [
        [
            e.key,
            f"{e.usage_stats.request_count:,}",
            f"{e.usage_stats.failed_requests:,}",
            f"{e.usage_stats.total_input_tokens:,}",
            f"{e.usage_stats.total_output_tokens:,}",
            f"{money(e.usage_stats.total_cost)} {e.usage_stats.currency}",
        ]
        for e in sorted(registry.list_models(), key=lambda e: e.usage_stats.total_cost, reverse=True)
    ]


def cmd_watch(args: argparse.Namespace) -> int:
    """A live table of usage by model while an application runs: the saved file re-read when it changes, or the
    shared store read every ``--interval`` seconds. ``--once`` prints one frame and exits."""
    headers = ["KEY", "REQUESTS", "FAILED", "INPUT", "OUTPUT", "COST"]
    right = range(1, 6)
    if args.once:
        registry = opened(args)
        if args.json:
            print_json(
                [
                    e.model_dump(mode="json", by_alias=True)["usageStats"] | {"key": e.key}
                    for e in registry.list_models()
                ]
            )
        else:
            table("usage", headers, _usage_rows(registry), right=right)
        return 0
    from rich.live import Live
    from rich.table import Table

    def frame() -> Table:
        grid = Table(title=f"usage ({time.strftime('%H:%M:%S')}, every {args.interval:g} s; Ctrl-C to stop)")
        for index, header in enumerate(headers):
            grid.add_column(header, justify="right" if index in right else "left")
        for row in _usage_rows(opened(args)):
            grid.add_row(*row)
        return grid

    try:
        with Live(frame(), console=console(), refresh_per_second=4) as live:
            while True:
                time.sleep(args.interval)
                live.update(frame())
    except KeyboardInterrupt:
        return 0
