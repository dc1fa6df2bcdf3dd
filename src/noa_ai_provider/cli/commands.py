"""The read commands of ``noa-registry``: models, search, show, estimate, report, budgets, watch. Built on the
public API. Each takes the parsed arguments and returns the exit status; the JSON shapes are in docs/cli.md."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import bundled_config_path
from ..cost import request_rates
from ..errors import ConfigError, PersistenceError, RegistryError
from ..registry import EnhancedModelRegistry
from ..schemas import EnhancedModelRegistryEntry, ModelCost, ServiceTierPrices
from .render import Column, console, grid, is_terminal, line, money, print_json, styled, table

DEFAULT_CONFIG = Path("config/models-config.json")
DEFAULT_PERSISTENCE = Path("data/enhanced-model-registry.json")

LIMITS = (
    ("requests_per_minute", "rpm"),
    ("tokens_per_minute", "tpm"),
    ("input_tokens_per_minute", "itpm"),
    ("output_tokens_per_minute", "otpm"),
    ("requests_per_day", "rpd"),
    ("tokens_per_day", "tpd"),
)
"""The limits of a ``RateLimitConfig`` and their short names in tables."""

PRICE_COLUMNS = (
    ("input", "input"),
    ("output", "output"),
    ("cached input", "cachedInput"),
    ("cache write 5m", "cacheWrite"),
    ("cache write 1h", "cacheWrite1h"),
)
"""The kinds of price (as :class:`noa_ai_provider.cost.Rates` orders them): table headers and JSON keys."""

SEARCH_FILTERS = (
    "provider",
    "capability",
    "status",
    "name_pattern",
    "tags",
    "min_context_window",
    "max_context_window",
    "max_cost_per_token",
    "min_version",
    "max_version",
    "exclude_deprecated",
)
"""Every field of ``EnhancedModelSearchQuery``, each an option of ``models`` and ``search``."""


# ---------------------------------------------------------------------------------------------------- sources


class FileProblem(Exception):
    """A file the command reads is invalid (exit status 1, a finding, where the same ``ConfigError`` raised by a
    value given on the command line is a usage error, 2)."""


def config_path(given: str | None) -> Path:
    """``--config``, else ./config/models-config.json when it exists, else the bundled catalogue."""
    if given is not None:
        return Path(given)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else bundled_config_path()


def catalogue(args: argparse.Namespace) -> EnhancedModelRegistry:
    """A registry holding the models of ``--config`` (nothing saved)."""
    registry = EnhancedModelRegistry(auto_save=False, models_config_path=config_path(args.config))
    _load_config(registry)
    return registry


def _load_config(registry: EnhancedModelRegistry) -> None:
    try:
        registry.load_from_config()
    except ConfigError as exc:
        raise FileProblem(str(exc)) from exc


def opened(args: argparse.Namespace) -> EnhancedModelRegistry:
    """The registry a read command looks at: ``--backend URL`` (a shared store; definitions from ``--config``), or
    the saved file ``--persistence`` (default ./data/enhanced-model-registry.json). Nothing is ever written."""
    backend = getattr(args, "backend", None)
    if backend:
        registry = EnhancedModelRegistry(auto_save=False, backend=backend, models_config_path=config_path(args.config))
        _load_config(registry)
        return registry
    path = Path(args.persistence)
    if not path.is_file():
        raise PersistenceError(f"{path}: no saved registry (run your application with this persistence path)")
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    registry.load()
    return registry


# ---------------------------------------------------------------------------------------------------- helpers


def per_million(price: Decimal | None, per: int) -> Decimal | None:
    """A price per ``per`` tokens as a price per 1M tokens (exact)."""
    return None if price is None else price * 1_000_000 / per


def limits_text(entry: EnhancedModelRegistryEntry) -> str:
    limit = entry.rate_limit
    if limit is None:
        return "-"
    parts = [f"{getattr(limit, name):,} {unit}" for name, unit in LIMITS if getattr(limit, name)]
    return ", ".join(parts) or "-"


_REGISTRY_FIELDS = {
    "key",
    "registered_at",
    "updated_at",
    "last_accessed",
    "access_count",
    "usage_stats",
    "performance_metrics",
}


def _dump(entry: EnhancedModelRegistryEntry, exclude: set[str]) -> dict[str, Any]:
    # Optional fields left out are left out (as a models-config file states them), except the cost: an unpriced
    # model says "cost": null, as its config does.
    trimmed = entry.model_dump(by_alias=True, exclude_none=True, exclude=exclude)
    order = entry.model_dump(by_alias=True, exclude=exclude)
    return {name: trimmed.get(name) for name in order if name in trimmed or name == "cost"}


def definition_json(entry: EnhancedModelRegistryEntry) -> dict[str, Any]:
    """A model's definition as a models-config file states it (camelCase), with its ``key`` first."""
    return {"key": entry.key, **_dump(entry, _REGISTRY_FIELDS)}


def entry_json(entry: EnhancedModelRegistryEntry) -> dict[str, Any]:
    """A registry entry: the definition plus what the registry keeps about it (timestamps, usage, metrics)."""
    return {"key": entry.key, **_dump(entry, {"key"})}


def _count(value: int) -> str:
    return f"{value:,}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------------------------------- models


def _search_filters(args: argparse.Namespace) -> dict[str, Any]:
    filters = {name: getattr(args, name) for name in SEARCH_FILTERS}
    return {name: value for name, value in filters.items() if value not in (None, False)}


def _models_table(entries: list[EnhancedModelRegistryEntry], note: str) -> None:
    currencies = {e.cost.currency for e in entries if e.cost is not None}
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
            styled(e.status.value, "yellow") if e.status.value != "available" else e.status.value,
        ]
        for e in entries
    ]
    limit_words = [part for e in entries for part in limits_text(e).split(", ")]
    columns = [
        Column("KEY", style="cyan"),
        Column("NAME", wrap=True, drop=4),
        Column("VERSION", drop=5),
        Column("CONTEXT", right=True),
        Column("IN/1M", right=True, style="green"),
        Column("OUT/1M", right=True, style="green"),
        Column("CUR", drop=3 if len(currencies) <= 1 else 0),
        Column("LIMITS", wrap=True, drop=2, min_width=max(map(len, limit_words), default=1) + 1),
        Column("STATUS", drop=1),
    ]
    if any(e.cost is None for e in entries):
        note += " (? = no price)"
    table(None, columns, rows, note=note)


def cmd_models(args: argparse.Namespace) -> int:
    """The catalogue (or the models matching the filters given): key, name, version, context, prices per 1M tokens,
    limits, status."""
    path = config_path(args.config)
    filters = _search_filters(args)
    registry = catalogue(args)
    entries = registry.search_models(**filters) if filters else registry.list_models()
    if args.json:
        print_json([definition_json(e) for e in entries])
    else:
        _models_table(entries, f"{_plural(len(entries), 'model')} from {path}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Models matching every filter given (the filters of ``search_models``); exit 1 when none matches."""
    found = catalogue(args).search_models(**_search_filters(args))
    if args.json:
        print_json([definition_json(e) for e in found])
    elif found:
        _models_table(found, f"{_plural(len(found), 'model')} match" + ("es" if len(found) == 1 else ""))
    else:
        line("no model matches")
    return 0 if found else 1


# ---------------------------------------------------------------------------------------------------- show


def billed_prices(cost: ModelCost) -> Iterator[tuple[str, int | None, list[Decimal]]]:
    """Every price level of ``cost`` as billed, per 1M tokens: ``(service tier, above input tokens, prices)`` for
    the standard prices, ``batch`` (always billable: half price where the model states none), each service tier it
    prices, each at its base and above each long-context threshold. Prices a level leaves out are the ones the rules
    give (``noa_ai_provider.cost.request_rates``)."""
    standard = {t.above_input_tokens for t in cost.tiers or ()}
    service = cost.service_tiers or {}
    levels: list[tuple[str, ServiceTierPrices | None]] = [("standard", None), ("batch", service.get("batch"))]
    levels += [(name, prices) for name, prices in service.items() if name != "batch"]
    for name, own in levels:
        tier = None if name == "standard" else name
        thresholds = sorted(standard | {t.above_input_tokens for t in (own.tiers if own else None) or ()})
        for above in (None, *thresholds):
            rates = request_rates(cost, 0 if above is None else above + 1, tier)
            prices = [rates.input, rates.output, rates.cache_read, rates.cache_write, rates.cache_write_1h]
            yield name, above, [p * 1_000_000 / cost.per for p in prices]


def cmd_show(args: argparse.Namespace) -> int:
    """One model: definition, every price kind as billed (with long-context tiers and service tiers), limits
    (configured, and effective: with those learned from providers' headers), usage."""
    registry = opened(args) if (args.persistence or args.backend) else catalogue(args)
    key = registry.resolve_key(args.key)
    entry = registry.get_model(key)
    if entry is None:  # unregistered between the two calls (a shared store): as unknown
        registry.resolve_key(key)
        raise PersistenceError(f"{key}: not found")
    effective = registry.effective_rate_limit(key)
    cost = entry.cost
    prices = list(billed_prices(cost)) if cost is not None else None
    if args.json:
        data = entry_json(entry)
        data["effectiveRateLimit"] = effective.model_dump(by_alias=True, exclude_none=True) if effective else None
        data["pricesPer1M"] = (
            None
            if prices is None
            else [
                {"serviceTier": name, "aboveInputTokens": above}
                | {k: v for (_, k), v in zip(PRICE_COLUMNS, values, strict=True)}
                for name, above, values in prices
            ]
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
        ("tags", ", ".join(str(t) for t in entry.metadata.get("tags", ())) or None),
    ]
    table(
        entry.key,
        [Column("FIELD", style="bold"), Column("VALUE", wrap=True)],
        [(n, v) for n, v in fields if v is not None],
    )
    if cost is None or prices is None:
        line()
        line("no price: usage is counted, never its cost", "yellow")
    else:
        rows = [
            [name if above is None else f"{name} > {above:,}", *(money(v) for v in values)]
            for name, above, values in prices
        ]
        line()
        table(
            f"prices per 1M tokens ({cost.currency}), as billed",
            [Column(""), *(Column(label, right=True, style="green") for label, _ in PRICE_COLUMNS)],
            rows,
            note="> N: a request of more than N input tokens" if any(a for _, a, _ in prices) else None,
        )
    configured = entry.rate_limit
    limit_rows = [
        (
            unit,
            f"{getattr(configured, name):,}" if configured and getattr(configured, name) else "-",
            f"{getattr(effective, name):,}" if effective and getattr(effective, name) else "-",
        )
        for name, unit in LIMITS
    ]
    line()
    table(
        "rate limits (effective: with limits learned from providers' headers)",
        [Column("LIMIT"), Column("CONFIGURED", right=True), Column("EFFECTIVE", right=True)],
        limit_rows,
    )
    usage = entry.usage_stats
    line()
    table(
        "usage",
        [
            Column("REQUESTS", right=True),
            Column("FAILED", right=True),
            Column("INPUT", right=True),
            Column("CACHED", right=True),
            Column("CACHE WRITE", right=True),
            Column("OUTPUT", right=True),
            Column("COST", right=True, style="green"),
        ],
        [
            [
                _count(usage.request_count),
                _failed(usage.failed_requests),
                _count(usage.total_input_tokens),
                _count(usage.total_cached_input_tokens),
                _count(usage.total_cache_write_tokens),
                _count(usage.total_output_tokens),
                f"{money(usage.total_cost)} {usage.currency}",
            ]
        ],
    )
    return 0


def _failed(count: int) -> Any:
    return styled(f"{count:,}", "red") if count else "0"


# ---------------------------------------------------------------------------------------------------- estimate


def cmd_estimate(args: argparse.Namespace) -> int:
    """The exact cost of one request of INPUT and OUTPUT tokens on KEY."""
    registry = catalogue(args)
    key = registry.resolve_key(args.key)
    cost = registry.estimate_cost(
        key,
        args.input_tokens,
        args.output_tokens,
        cached_input_tokens=args.cached,
        cache_write_tokens=args.cache_write,
        cache_write_1h_tokens=args.cache_write_1h,
        service_tier=args.service_tier,
    )
    entry = registry.get_model(key)
    currency = entry.cost.currency if entry is not None and entry.cost is not None else ""
    if args.json:
        print_json(
            {
                "key": key,
                "inputTokens": args.input_tokens,
                "outputTokens": args.output_tokens,
                "cachedInputTokens": args.cached,
                "cacheWriteTokens": args.cache_write,
                "cacheWrite1hTokens": args.cache_write_1h,
                "serviceTier": args.service_tier,
                "cost": cost,
                "currency": currency,
            }
        )
    else:
        line(f"{money(cost)} {currency}".rstrip())
    return 0


# ---------------------------------------------------------------------------------------------------- report


def _since(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since must be a date YYYY-MM-DD, got {text!r}") from None


_DAY_FIELDS = ("requests", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "cost")


def cmd_report(args: argparse.Namespace) -> int:
    """Totals, cost by model (with keys, failed requests, cached tokens), and cost by UTC day from the usage
    history (``--since`` its first day), of a saved registry or a shared store."""
    since = _since(args.since)  # a bad date is a usage error before any file is read
    registry = opened(args)
    stats = registry.get_statistics()
    entries = registry.list_models()
    currency_of = {e.key: e.usage_stats.currency for e in entries}
    used = sorted((e for e in entries if e.usage_stats.request_count), key=lambda e: -e.usage_stats.total_cost)
    failed = sum(e.usage_stats.failed_requests for e in entries)
    cached = sum(e.usage_stats.total_cached_input_tokens for e in entries)
    written = sum(e.usage_stats.total_cache_write_tokens for e in entries)
    days: dict[tuple[date, str], dict[str, Any]] = {}
    for row in registry.get_usage_history(since=since):
        day = days.setdefault((row.date, currency_of.get(row.key, "USD")), dict.fromkeys(_DAY_FIELDS, 0))
        for name in _DAY_FIELDS:
            day[name] += getattr(row, name)
    by_currency = dict(sorted((stats.cost_by_currency or {}).items()))
    if args.json:
        print_json(
            {
                "since": since,
                "totalCost": stats.total_cost,
                "costByCurrency": by_currency,
                "totalRequests": stats.total_requests,
                "failedRequests": failed,
                "totalInputTokens": stats.total_input_tokens,
                "cachedInputTokens": cached,
                "cacheWriteTokens": written,
                "totalOutputTokens": stats.total_output_tokens,
                "models": [
                    {
                        "key": e.key,
                        "name": e.name,
                        "requests": e.usage_stats.request_count,
                        "failedRequests": e.usage_stats.failed_requests,
                        "inputTokens": e.usage_stats.total_input_tokens,
                        "cachedInputTokens": e.usage_stats.total_cached_input_tokens,
                        "cacheWriteTokens": e.usage_stats.total_cache_write_tokens,
                        "outputTokens": e.usage_stats.total_output_tokens,
                        "cost": e.usage_stats.total_cost,
                        "currency": e.usage_stats.currency,
                    }
                    for e in used
                ],
                "days": [
                    {
                        "date": day,
                        "currency": currency,
                        "requests": v["requests"],
                        "inputTokens": v["input_tokens"],
                        "cachedInputTokens": v["cached_input_tokens"],
                        "cacheWriteTokens": v["cache_write_tokens"],
                        "outputTokens": v["output_tokens"],
                        "cost": v["cost"],
                    }
                    for (day, currency), v in sorted(days.items())
                ],
            }
        )
        return 0
    line()
    line("=== Cost Report ===", "bold")
    if set(by_currency) <= {"USD"}:  # the seed's line, rounded to cents for display only; then the exact amount
        rounded = f"{stats.total_cost:.2f}"
        exact = "" if Decimal(rounded) == stats.total_cost else f" ({money(stats.total_cost)} exactly)"
        line(f"Total Cost: ${rounded}{exact}")
    else:  # amounts in different currencies are never added
        line("Total Cost: " + ", ".join(f"{money(v)} {c}" for c, v in by_currency.items()))
    line(f"Total Input Tokens: {stats.total_input_tokens:,}")
    line(f"Total Output Tokens: {stats.total_output_tokens:,}")
    line(f"Total Requests: {stats.total_requests:,}")
    line(f"Failed Requests: {failed:,}")
    line(f"Cached Input Tokens: {cached:,} (read from a cache; part of the input)")
    line(f"Cache Write Tokens: {written:,} (written to a cache; part of the input)")
    line()
    counts = [
        Column(h, right=True, drop=1 if h == "FAILED" else 0)
        for h in ("REQUESTS", "FAILED", "INPUT", "CACHED", "OUTPUT")
    ]
    rows = [
        [
            e.key,
            e.name,
            _count(e.usage_stats.request_count),
            _failed(e.usage_stats.failed_requests),
            _count(e.usage_stats.total_input_tokens),
            _count(e.usage_stats.total_cached_input_tokens),
            _count(e.usage_stats.total_output_tokens),
            money(e.usage_stats.total_cost),
            e.usage_stats.currency,
        ]
        for e in used
    ]
    money_columns = [Column("COST", right=True, style="green"), Column("CUR")]
    table(
        "Cost by model",
        [Column("KEY", style="cyan"), Column("NAME", wrap=True, drop=2), *counts, *money_columns],
        rows,
        note=None if rows else "no usage recorded",
    )
    if days:
        line()
        day_rows: list[list[Any]] = [
            [
                d.isoformat(),
                _count(v["requests"]),
                _count(v["input_tokens"]),
                _count(v["cached_input_tokens"]),
                _count(v["output_tokens"]),
                money(v["cost"]),
                currency,
            ]
            for (d, currency), v in sorted(days.items())
        ]
        for currency in sorted({c for _, c in days}):
            total = [v for (_, c), v in days.items() if c == currency]
            day_rows.append(
                [
                    styled("total", "bold"),
                    *(_count(sum(v[n] for v in total)) for n in ("requests", "input_tokens", "cached_input_tokens")),
                    _count(sum(v["output_tokens"] for v in total)),
                    styled(money(sum((v["cost"] for v in total), Decimal(0))), "bold"),
                    currency,
                ]
            )
        title = "Cost by day (UTC)" + (f" since {since}" if since else "")
        day_columns = [Column(h, right=True) for h in ("REQUESTS", "INPUT", "CACHED", "OUTPUT")]
        table(title, [Column("DAY"), *day_columns, *money_columns], day_rows)
    return 0


# ---------------------------------------------------------------------------------------------------- budgets


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def cmd_budgets(args: argparse.Namespace) -> int:
    """Every budget of a shared store (budgets are kept in the store that enforces them, not in a saved file)."""
    registry = opened(args)
    budgets = registry.get_budget_status()
    if args.json:
        print_json([b.model_dump(by_alias=True) for b in budgets])
        return 0
    if not budgets:
        line("no budget set")
        return 0
    rows = [
        [
            b.key or "(all models)",
            b.period,
            money(b.limit),
            money(b.spent),
            money(b.reserved),
            styled(money(b.remaining), "red") if b.remaining <= 0 else money(b.remaining),
            _when(b.period_end),
        ]
        for b in budgets
    ]
    columns = [
        Column("MODEL", style="cyan"),
        Column("PERIOD"),
        *(Column(h, right=True, style="green") for h in ("LIMIT", "SPENT", "RESERVED", "REMAINING")),
        Column("ENDS", drop=1),
    ]
    table("Budgets", columns, rows)
    return 0


# ---------------------------------------------------------------------------------------------------- watch

_WATCH_COLUMNS = [
    Column("KEY", style="cyan"),
    *(Column(h, right=True, drop=int(h == "CACHED")) for h in ("REQUESTS", "FAILED", "INPUT", "CACHED", "OUTPUT")),
    Column("COST", right=True, style="green"),
]


def _usage_rows(registry: EnhancedModelRegistry | None) -> tuple[list[list[Any]], str | None]:
    """The rows of the models that have usage, dearest first, and a note counting those without."""
    entries = registry.list_models() if registry is not None else []
    used = [e for e in entries if e.usage_stats.request_count]
    rows = [
        [
            e.key,
            _count(e.usage_stats.request_count),
            _failed(e.usage_stats.failed_requests),
            _count(e.usage_stats.total_input_tokens),
            _count(e.usage_stats.total_cached_input_tokens),
            _count(e.usage_stats.total_output_tokens),
            f"{money(e.usage_stats.total_cost)} {e.usage_stats.currency}",
        ]
        for e in sorted(used, key=lambda e: (-e.usage_stats.total_cost, -e.usage_stats.request_count))
    ]
    idle = len(entries) - len(used)
    if registry is None:
        note = None
    elif not used:
        note = f"no usage recorded yet ({_plural(idle, 'model')})"
    else:
        note = f"and {_plural(idle, 'model')} without usage" if idle else None
    return rows, note


def cmd_watch(args: argparse.Namespace) -> int:
    """A live table of usage by model while an application runs: the saved file read again whenever it changes,
    or the shared store read every ``--interval`` seconds. ``--once`` prints one frame and exits."""
    if args.once:
        return _watch_once(args)
    path = None if args.backend else Path(args.persistence)
    source = args.backend or str(path)
    seen: tuple[int, int] | None = None
    registry: EnhancedModelRegistry | None = None
    problem = ""

    def read() -> None:
        nonlocal registry, seen, problem
        if path is None and registry is not None:  # a store's registry reads the live counts itself
            return
        current = _signature(path)
        if registry is not None and current == seen:  # a saved file is read again only when it changed
            return
        try:
            registry = opened(args)
            seen, problem = current, ""
        except (
            RegistryError,
            FileProblem,
        ) as exc:  # keep the last table; say why it is not new (the file may not exist yet)
            problem = " ".join(str(exc).split())[:200]

    read()
    if not is_terminal():  # piped or logged: a new table each time the usage changed, nothing redrawn
        last: Any = None
        try:
            while True:
                rows, note = _usage_rows(registry)
                if (rows, note, problem) != last:
                    title = f"usage of {source} at {time.strftime('%Y-%m-%d %H:%M:%S')}"
                    table(title, _WATCH_COLUMNS, rows, note=note)
                    if problem:
                        line(f"not read: {problem}")
                    sys.stdout.flush()
                    last = (rows, note, problem)
                time.sleep(args.interval)
                read()
        except KeyboardInterrupt:
            return 0

    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    def frame() -> Any:
        title = Text(f"usage of {source} at {time.strftime('%H:%M:%S')}", style="bold")
        rows, note = _usage_rows(registry)
        parts = [title, grid(_WATCH_COLUMNS, rows)]
        if note:
            parts.append(Text(note, style="dim"))
        if problem:
            parts.append(Text(f"not read: {problem}", style="yellow"))
        parts.append(Text(f"every {args.interval:g} s; Ctrl-C stops", style="dim"))
        return Group(*parts)

    try:
        with Live(frame(), console=console(), auto_refresh=False) as live:
            while True:
                time.sleep(args.interval)
                read()
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        return 0


def _watch_once(args: argparse.Namespace) -> int:
    registry = opened(args)
    if args.json:
        print_json(
            [
                {"key": e.key, **e.usage_stats.model_dump(by_alias=True)}
                for e in sorted(registry.list_models(), key=lambda e: -e.usage_stats.total_cost)
            ]
        )
    else:
        rows, note = _usage_rows(registry)
        table("usage", _WATCH_COLUMNS, rows, note=note)
    return 0


def _signature(path: Path | None) -> tuple[int, int] | None:
    """What tells a saved file changed: its modification time and size (``None`` without a file)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
