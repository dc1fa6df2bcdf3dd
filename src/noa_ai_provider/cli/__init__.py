"""The ``noa-registry`` command, built on the public API (rich draws its tables on a terminal, imported only then).
Run ``noa-registry --help`` or see docs/cli.md.

Exit status: 0 done; 1 a finding (a file missing, unreadable or invalid, a store out of reach, a search with no
match, a config with problems); 2 a usage error (bad arguments, an unknown model, an invalid value); 130 after
Ctrl-C. A closed pipe (``| head``) ends quietly with 0. Colours only on a terminal (rich's rules: ``FORCE_COLOR``
forces one), never with ``NO_COLOR`` set. Errors are one line on stderr, cut to a sane length, never a traceback
(``NOA_REGISTRY_TRACEBACK=1`` shows that of an unexpected error).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

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


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its usage errors one line on stderr (exit status 2); subcommands' parsers are of this
    class too (``add_subparsers`` makes them with the parent's class)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        if len(text) > 500:
            text = text[:460] + f" ... ({len(text):,} characters in all)"
        self.exit(2, f"{self.prog}: {text} (see {self.prog} --help)\n")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``noa-registry``."""
    parser = _Parser(
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
        )
        + "\n\n"
        + "exit status: 0 done; 1 a finding (a file missing or invalid, no match, problems found);\n"
        + "  2 a usage error (bad arguments, an unknown model, an invalid value)\n"
        + "colours: on a terminal (or with FORCE_COLOR=1), never with NO_COLOR set; piped: plain columns\n"
        + "--json: on every command that reads something; money as exact decimal strings (docs/cli.md)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_FORMATTER, epilog=_examples(*examples)
        )

    def config_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            metavar="PATH",
            help="models-config file (default: ./config/models-config.json, else the bundled one)",
        )

    def json_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON (money as exact decimal strings)")

    def source_options(p: argparse.ArgumentParser, default: str | None) -> None:
        p.add_argument(
            "--persistence", metavar="PATH", default=default, help=f"a saved registry file (default: {default})"
        )
        p.add_argument("--backend", metavar="URL", help="a shared store (redis://...); the models from --config")
        config_option(p)

    from ..schemas import ModelCapability, ModelStatus
    from . import importing, validating
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

    def filter_options(p: argparse.ArgumentParser) -> None:
        f = p.add_argument_group("filters (every one given must hold; the fields of EnhancedModelSearchQuery)")
        f.add_argument("--provider", help="openai, claude, llama.cpp, ... or a custom provider's name")
        f.add_argument("--capability", help=", ".join(c.value for c in ModelCapability))
        f.add_argument("--status", help=", ".join(s.value for s in ModelStatus))
        f.add_argument("--name", dest="name_pattern", metavar="REGEX", help="a regular expression on name and id")
        f.add_argument("--tag", dest="tags", metavar="TAG", action="append", help="a tag the model has (repeat: all)")
        f.add_argument("--min-context", dest="min_context_window", type=_count, metavar="TOKENS")
        f.add_argument("--max-context", dest="max_context_window", type=_count, metavar="TOKENS")
        f.add_argument(
            "--max-cost-per-token",
            metavar="PRICE",
            help="the most the mean of the input and output prices per token may be, (input + output) / (2 *"
            " per): 0.00001 is $10 per 1M tokens",
        )
        f.add_argument("--min-version", metavar="VERSION", help="the lowest version (inclusive)")
        f.add_argument("--max-version", metavar="VERSION", help="the highest version (inclusive)")
        f.add_argument("--exclude-deprecated", action="store_true", help="leave out deprecated models")

    p = command(
        "models",
        "print the model catalogue (or the models matching the filters given)",
        "noa-registry models",
        "noa-registry models --provider openai --capability vision",
        "noa-registry models --config my-models.json --json",
        "noa-registry models | grep -i mini",
    )
    config_option(p)
    filter_options(p)
    json_option(p)
    p.set_defaults(func=cmd_models)

    p = command(
        "search",
        "the models matching every filter given (exit 1 when none matches)",
        "noa-registry search --provider openai --min-context 100000",
        "noa-registry search --capability function_calling --max-cost-per-token 0.00001 --json",
        "noa-registry search --name 'sonnet|opus' --exclude-deprecated",
        "noa-registry search --tag production --min-version 4.0.0 --max-version 4.99.0",
    )
    config_option(p)
    filter_options(p)
    json_option(p)
    p.set_defaults(func=cmd_search)

    p = command(
        "show",
        "one model: prices of every kind, tiers, service tiers, limits (configured and learned), usage",
        "noa-registry show gpt-4o",
        "noa-registry show claude-sonnet-4-5 --persistence data/model-registry.json --json",
    )
    p.add_argument(
        "key", metavar="KEY", help="a key or another name of it: openai:gpt-4o, gpt-4o-2024-08-06, anthropic/claude-..."
    )
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
        "key", metavar="KEY", help="a key or another name of it: openai:gpt-4o, gpt-4o-2024-08-06, anthropic/claude-..."
    )
    p.add_argument("input_tokens", type=_count, metavar="INPUT", help="input tokens (cache reads and writes included)")
    p.add_argument("output_tokens", type=_count, metavar="OUTPUT", help="output tokens")
    p.add_argument("--cached", type=_count, default=0, metavar="TOKENS", help="of INPUT, tokens read from the cache")
    p.add_argument(
        "--cache-write", type=_count, default=0, metavar="TOKENS", help="of INPUT, tokens written to the cache"
    )
    p.add_argument(
        "--cache-write-1h",
        type=_count,
        default=0,
        metavar="TOKENS",
        help="of INPUT, tokens written to the 1-hour cache",
    )
    p.add_argument(
        "--service-tier",
        metavar="TIER",
        help="price at this service tier (batch, flex, priority, or a name providers report)",
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
    p.add_argument("--since", metavar="YYYY-MM-DD", help="the first UTC day of the by-day table")
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
    p.add_argument("--interval", metavar="SECONDS", type=_seconds, default=2.0, help="between reads (default 2)")
    p.add_argument("--once", action="store_true", help="print one table (with --json: the usage counters) and exit")
    json_option(p)
    p.set_defaults(func=cmd_watch)

    validating.add_parser(sub)
    importing.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``noa-registry``; returns the exit status (0 done, 1 a finding, 2 a usage error; 130 after Ctrl-C)."""
    if argv is None and sys.argv[1:] == ["--version"]:  # answer before building anything
        sys.stdout.write(f"noa-registry {__version__}\n")
        return 0
    from ..errors import (
        AmbiguousModelError,
        ConfigError,
        InvalidUsageError,
        InvalidVersionError,
        ModelNotFoundError,
        RegistryError,
        UnpricedModelError,
    )
    from .commands import FileProblem
    from .render import error

    usage_errors = (
        argparse.ArgumentTypeError,
        AmbiguousModelError,
        ConfigError,
        InvalidUsageError,
        InvalidVersionError,
        ModelNotFoundError,
        UnpricedModelError,
    )
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
    except usage_errors as exc:  # a ConfigError here is an invalid value given on the command line
        error(str(exc))
        return 2
    except (FileProblem, RegistryError, OSError) as exc:  # a file missing, unreadable or invalid; no store
        error(str(exc))
        return 1
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("NOA_REGISTRY_TRACEBACK"):
            raise
        error(f"internal error, please report it: {type(exc).__name__}: {exc} (NOA_REGISTRY_TRACEBACK=1 shows where)")
        return 1
    return status
