"""The ``noa-registry`` command, built on the public API only.

- ``noa-registry models [--config PATH]``: the catalogue as a table;
- ``noa-registry estimate KEY INPUT OUTPUT [--cached N] [--cache-write N] [--cache-write-1h N] [--service-tier T]
  [--config PATH]``: the exact cost of one request (INPUT includes cached and cache-write tokens); KEY may be any
  name the registry resolves (an alias, a dated snapshot, ``anthropic:...``, a LiteLLM ``provider/model``);
- ``noa-registry report [--persistence PATH]``: the seed's cost report of a saved registry.

Without ``--config``, ``./config/models-config.json`` is used when it exists, else the catalogue bundled with the
package. Errors print one line on stderr and exit with status 2 (bad input) or 1 (files).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from . import __version__
from .config import bundled_config_path
from .cost import SERVICE_TIER_NAMES
from .errors import (
    ConfigError,
    InvalidUsageError,
    ModelNotFoundError,
    PersistenceError,
    RegistryError,
    UnpricedModelError,
)
from .registry import EnhancedModelRegistry
from .schemas import EnhancedModelRegistryEntry

__all__ = ["main"]

DEFAULT_CONFIG = Path("config/models-config.json")
DEFAULT_PERSISTENCE = Path("data/enhanced-model-registry.json")


def _config_path(given: str | None) -> Path:
    if given is not None:
        return Path(given)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else bundled_config_path()


def _registry(**kwargs: object) -> EnhancedModelRegistry:
    return EnhancedModelRegistry(auto_save=False, **kwargs)  # type: ignore[arg-type]


def _per_million(price: Decimal, per: int) -> str:
    value = price * 1_000_000 / per
    return f"{value.normalize():f}" if value else "0"


def _limits(entry: EnhancedModelRegistryEntry) -> str:
    limit = entry.rate_limit
    if limit is None:
        return "-"
    parts = [
        f"{value:,} {unit}"
        for value, unit in (
            (limit.requests_per_minute, "rpm"),
            (limit.tokens_per_minute, "tpm"),
            (limit.input_tokens_per_minute, "itpm"),
            (limit.output_tokens_per_minute, "otpm"),
            (limit.requests_per_day, "rpd"),
            (limit.tokens_per_day, "tpd"),
        )
        if value
    ]
    return ", ".join(parts) or "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def cmd_models(args: argparse.Namespace) -> int:
    """Print the catalogue: key, name, version, context, prices per 1M tokens, limits."""
    path = _config_path(args.config)
    registry = _registry(models_config_path=path)
    registry.load_from_config()
    rows = [
        [
            e.key,
            e.name,
            e.version,
            f"{e.context_window:,}" if e.context_window else "-",
            _per_million(e.cost.input_tokens, e.cost.per) if e.cost else "?",
            _per_million(e.cost.output_tokens, e.cost.per) if e.cost else "?",
            e.cost.currency if e.cost else "-",
            _limits(e),
            e.status.value,
        ]
        for e in registry.list_models()
    ]
    headers = ["KEY", "NAME", "VERSION", "CONTEXT", "IN/1M", "OUT/1M", "CUR", "LIMITS", "STATUS"]
    print("\n".join(_table(headers, rows, right={3, 4, 5})))
    print(f"\n{len(rows)} models from {path}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    """Print the exact cost of one request of INPUT and OUTPUT tokens on KEY."""
    registry = _registry(models_config_path=_config_path(args.config))
    registry.load_from_config()
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
    print(f"{cost} {currency}".rstrip())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print the seed's cost report (total cost and tokens, cost by model) of a saved registry."""
    path = Path(args.persistence)
    if not path.is_file():
        raise PersistenceError(f"{path}: no saved registry (run your application with this persistence path)")
    registry = _registry(persistence_path=path)
    registry.load()
    stats = registry.get_statistics()
    print("\n=== Cost Report ===")
    print(f"Total Cost: ${stats.total_cost:.2f}")
    print(f"Total Input Tokens: {stats.total_input_tokens:,}")
    print(f"Total Output Tokens: {stats.total_output_tokens:,}")
    print(f"Total Requests: {stats.total_requests:,}")
    print("\n=== Cost by Model ===")
    models = sorted(registry.list_models(), key=lambda e: e.usage_stats.total_cost, reverse=True)
    for model in models:
        usage = model.usage_stats
        if usage.total_cost > 0:
            print(f"{model.name}: ${usage.total_cost:.4f} ({usage.request_count} requests)")
    return 0


def _token_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``noa-registry``."""
    parser = argparse.ArgumentParser(
        prog="noa-registry", description="Inspect AI model catalogues, costs and saved usage."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="print the model catalogue as a table")
    models.add_argument("--config", help="models-config file (default: ./config/models-config.json or bundled)")
    models.set_defaults(func=cmd_models)

    estimate = sub.add_parser("estimate", help="print the exact cost of one request")
    estimate.add_argument(
        "key", help="model key or another name of it: openai:gpt-4o, gpt-4o-2024-08-06, anthropic/claude-sonnet-4-5"
    )
    estimate.add_argument("input_tokens", type=_token_count, metavar="INPUT")
    estimate.add_argument("output_tokens", type=_token_count, metavar="OUTPUT")
    estimate.add_argument("--cached", type=_token_count, default=0, help="of INPUT, tokens read from the cache")
    estimate.add_argument("--cache-write", type=_token_count, default=0, help="of INPUT, tokens written to the cache")
    estimate.add_argument(
        "--cache-write-1h", type=_token_count, default=0, help="of INPUT, tokens written to the 1-hour cache"
    )
    estimate.add_argument(
        "--service-tier", choices=list(SERVICE_TIER_NAMES), help="price at this service tier (as providers name them)"
    )
    estimate.add_argument("--config", help="models-config file (default: ./config/models-config.json or bundled)")
    estimate.set_defaults(func=cmd_estimate)

    report = sub.add_parser("report", help="print the cost report of a saved registry")
    report.add_argument(
        "--persistence", default=str(DEFAULT_PERSISTENCE), help=f"saved registry (default: {DEFAULT_PERSISTENCE})"
    )
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``noa-registry``; returns the exit status (0 ok, 1 file problem, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except (ModelNotFoundError, ConfigError, InvalidUsageError, UnpricedModelError) as exc:
        print(f"noa-registry: {exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:  # PersistenceError included
        print(f"noa-registry: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
