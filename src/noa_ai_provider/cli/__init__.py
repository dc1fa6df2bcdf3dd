"""The ``noa-registry`` command, built on the public API only (rich for its tables, imported when a command
prints). Run ``noa-registry --help`` or see docs/cli.md.

Exit status: 0 done; 1 a finding (a file missing or unreadable, a config with errors, a search with no match);
2 a usage error (bad arguments, an unknown model, an invalid value). A closed pipe (``| head``) ends quietly.
Colours only on a terminal, never with ``NO_COLOR`` set. Errors are one line on stderr, cut to a sane length.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__

__all__ = ["build_parser", "main"]

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``noa-registry``."""
    parser = argparse.ArgumentParser(
        prog="noa-registry",
        description="Inspect AI model catalogues, costs, budgets and saved usage.",
        formatter_class=_FORMATTER,
        epilog=_examples(
            "noa-registry models",
            "noa-registry search --provider openai --capability vision --json",
            "noa-registry show gpt-4o",
            "noa-registry estimate gpt-4o 12000 800 --cached 8000",
            "noa-registry report --persistence data/model-registry.json --since 2025-06-01",
            "noa-registry validate config/models-config.json",
            "noa-registry import litellm model_prices_and_context_window.json --out models-config.json",
            "",
            "exit status: 0 done, 1 a finding (missing file, errors, no match), 2 a usage error",
            "colours: only on a terminal, never with NO_COLOR set",
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_FORMATTER, epilog=_examples(*examples)
        )

    def config_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config", help="models-config file (default: ./config/models-config.json, else the bundled one)"
        )

    def json_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON (money as exact decimal strings)")

    def source_options(p: argparse.ArgumentParser, default: str | None) -> None:
        p.add_argument("--persistence", default=default, help=f"a saved registry file (default: {default})")
        p.add_argument("--backend", help="a shared store URL (redis://...), the models from --config")
        config_option(p)

    from .catalogs import cmd_import, cmd_validate
    from .commands import (
        DEFAULT_PERSISTENCE,
        cmd_budgets,
        cmd_estimate,
        cmd_models,
        cmd_report,
        cmd_search,
        cmd_show,
        cmd_watch,
    )

    saved = str(DEFAULT_PERSISTENCE)
    p = command(
        "models",
        "print the model catalogue",
        "noa-registry models",
        "noa-registry models --config my-models.json --json",
    )
    config_option(p)
    json_option(p)
    p.set_defaults(func=cmd_models)

    p = command(
        "search",
        "models matching every filter given (exit 1 when none matches)",
        "noa-registry search --provider openai --min-context 100000",
        "noa-registry search --capability function_calling --max-cost-per-token 0.00001 --json",
    )
    p.add_argument("--provider")
    p.add_argument("--capability")
    p.add_argument("--status")
    p.add_argument("--name", dest="name_pattern", help="a regular expression on the name")
    p.add_argument("--tag", action="append", help="a tag the model must have (repeat for several)")
    p.add_argument("--min-context", type=_count)
    p.add_argument("--max-context", type=_count)
    p.add_argument("--max-cost-per-token", help="the most an input or output token may cost")
    p.add_argument("--min-version")
    p.add_argument("--max-version")
    p.add_argument("--exclude-deprecated", action="store_true")
    config_option(p)
    json_option(p)
    p.set_defaults(func=cmd_search)

    p = command(
        "show",
        "one model: prices of every kind, tiers, service tiers, limits (configured and learned), usage",
        "noa-registry show gpt-4o",
        "noa-registry show claude-sonnet-4-5 --persistence data/model-registry.json --json",
    )
    p.add_argument("key", help="a key or another name of it: openai:gpt-4o, gpt-4o-2024-08-06, anthropic/claude-...")
    source_options(p, None)
    json_option(p)
    p.set_defaults(func=cmd_show)

    p = command(
        "estimate",
        "the exact cost of one request",
        "noa-registry estimate gpt-4o 12000 800",
        "noa-registry estimate claude-sonnet-4-5 20000 1000 --cached 15000 --cache-write-1h 2000",
    )
    p.add_argument(
        "key", help="model key or another name of it: openai:gpt-4o, gpt-4o-2024-08-06, anthropic/claude-..."
    )
    p.add_argument("input_tokens", type=_count, metavar="INPUT")
    p.add_argument("output_tokens", type=_count, metavar="OUTPUT")
    p.add_argument("--cached", type=_count, default=0, help="of INPUT, tokens read from the cache")
    p.add_argument("--cache-write", type=_count, default=0, help="of INPUT, tokens written to the cache")
    p.add_argument("--cache-write-1h", type=_count, default=0, help="of INPUT, tokens written to the 1-hour cache")
    p.add_argument(
        "--service-tier", help="price at this service tier (batch, flex, priority, ... as providers name them)"
    )
    config_option(p)
    json_option(p)
    p.set_defaults(func=cmd_estimate)

    p = command(
        "report",
        "totals, cost by model and cost by day of a saved registry or a shared store",
        "noa-registry report --persistence data/model-registry.json",
        "noa-registry report --since 2025-06-01 --json",
    )
    source_options(p, saved)
    p.add_argument("--since", help="the first UTC day of the by-day table (YYYY-MM-DD)")
    json_option(p)
    p.set_defaults(func=cmd_report)

    p = command(
        "budgets",
        "every budget: spend, reservations, what remains (budgets live in a shared store, not in a saved file)",
        "noa-registry budgets --backend redis://localhost:6379/0 --config config/models-config.json",
    )
    source_options(p, saved)
    json_option(p)
    p.set_defaults(func=cmd_budgets)

    p = command(
        "watch",
        "a live table of usage by model while an application runs",
        "noa-registry watch --persistence data/model-registry.json --interval 2",
        "noa-registry watch --backend redis://localhost:6379/0 --once --json",
    )
    source_options(p, saved)
    p.add_argument("--interval", type=_seconds, default=2.0, help="seconds between reads (default 2)")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    json_option(p)
    p.set_defaults(func=cmd_watch)

    p = command(
        "validate",
        "check a models-config file and print every error (exit 1 when there is one)",
        "noa-registry validate config/models-config.json",
        "noa-registry validate my-models.json --json",
    )
    p.add_argument("config_file", metavar="CONFIG")
    json_option(p)
    p.set_defaults(func=cmd_validate)

    p = command(
        "import",
        "write a models-config file from LiteLLM's price map or genai-prices",
        "noa-registry import litellm model_prices_and_context_window.json --out models-config.json",
        "noa-registry import genai-prices --out models-config.json --provider openai --force",
    )
    kinds = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, help_text in (
        ("litellm", "LiteLLM's model_prices_and_context_window.json"),
        ("genai-prices", "the genai-prices package's catalogue"),
    ):
        k = kinds.add_parser(name, help=help_text, description=help_text)
        if name == "litellm":
            k.add_argument("path", metavar="PATH")
        k.add_argument("--out", required=True, metavar="CONFIG", help="the models-config file to write")
        k.add_argument("--force", action="store_true", help="replace --out if it exists")
        k.add_argument("--provider", action="append", help="keep only this provider (repeat for several)")
        k.add_argument("--verbose", action="store_true", help="list every skipped entry")
        json_option(k)
        k.set_defaults(func=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``noa-registry``; returns the exit status (0 done, 1 a finding, 2 a usage error)."""
    if argv is None and len(sys.argv) == 2 and sys.argv[1] == "--version":  # answer without building anything
        sys.stdout.write(f"noa-registry {__version__}\n")
        return 0
    from ..errors import (
        AmbiguousModelError,
        ConfigError,
        InvalidUsageError,
        ModelNotFoundError,
        RegistryError,
        UnpricedModelError,
    )
    from .render import error

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except argparse.ArgumentTypeError as exc:
        error(str(exc))
        return 2
    except (ModelNotFoundError, AmbiguousModelError, ConfigError, InvalidUsageError, UnpricedModelError) as exc:
        error(str(exc))
        return 2
    except RegistryError as exc:  # PersistenceError, BackendError
        error(str(exc))
        return 1
    return status
