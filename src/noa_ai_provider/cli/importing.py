"""``noa-registry import litellm PATH --out CONFIG`` and ``noa-registry import genai-prices --out CONFIG``: convert
another project's catalogue into a models-config file, the file ``EnhancedModelRegistry.load_from_config`` loads.

The conversion is the importers' (:mod:`noa_ai_provider.importers`); this command filters by provider, writes the
models as a models-config file, checks that the text loads exactly as the registry would load it (nothing is
written otherwise), and replaces ``--out`` atomically. It prints what was imported and a summary of what was
skipped and why (``--verbose``: every skipped entry; ``--json``: all of it as JSON). A progress display goes to
stderr when stderr is a terminal. ``rich``, ``litellm`` data and ``genai_prices`` are imported only when run.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from .. import jsonio
from ..config import MAX_CONFIG_BYTES, parse_models_config
from ..errors import ConfigError, PersistenceError
from ..persistence.files import atomic_write_text

if TYPE_CHECKING:
    from ..importers import CatalogImport, SkippedEntry
    from ..schemas import ExtendedModelInfo

__all__ = ["ImportSummary", "add_parser", "cmd_import", "summarise_skipped"]

TOP_REASONS: Final = 5
"""Kinds of reason listed in the text summary of skipped entries (``--verbose`` lists every entry)."""

MAX_LINE: Final = 300
"""Characters of a skipped entry's name or reason beyond which it is cut."""

_LABELS: Final = {"litellm": "LiteLLM's price map", "genai-prices": "the genai-prices database"}

EPILOG: Final = """\
examples:
  noa-registry import litellm model_prices_and_context_window.json --out config/models-config.json
  noa-registry import litellm prices.json --out openai.json --provider openai --provider anthropic
  noa-registry import genai-prices --out config/models-config.json --force
  noa-registry import genai-prices --out models.json --json | jq .reasons

Prices become USD per 1,000,000 tokens, converted exactly. The file written loads with
EnhancedModelRegistry(models_config_path=CONFIG).load_from_config() and passes noa-registry validate.
LiteLLM's map: https://github.com/BerriAI/litellm (model_prices_and_context_window.json).
genai-prices: the data bundled with the installed package (pip install 'noa-ai-provider[genai-prices]').

exit status: 0 written; 1 nothing written (--out exists without --force, nothing to import, an
unreadable or invalid catalogue, genai-prices not installed); 2 wrong arguments (--out a directory
or the catalogue itself).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``import`` (with ``litellm`` and ``genai-prices``) on the ``noa-registry`` parser's subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, metavar="CONFIG", help="the models-config file to write")
    common.add_argument("--force", action="store_true", help="replace CONFIG when it exists")
    common.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="import only this provider's models (repeat for several; 'anthropic' and 'claude' are the same)",
    )
    common.add_argument("--json", action="store_true", help="print the counts and skipped entries as JSON")
    common.add_argument("-v", "--verbose", action="store_true", help="list every skipped entry with its reason")

    parser = subparsers.add_parser(
        "import",
        help="convert a LiteLLM or genai-prices catalogue into a models-config file",
        description="Convert another project's catalogue into a models-config file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    catalogs = parser.add_subparsers(dest="catalog", required=True, metavar="{litellm,genai-prices}")
    litellm = catalogs.add_parser(
        "litellm",
        parents=[common],
        help="LiteLLM's model_prices_and_context_window.json",
        description="Convert LiteLLM's price map (model_prices_and_context_window.json) into a models-config\n"
        "file: print what was imported and why entries were skipped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    litellm.add_argument("path", metavar="PATH", help="LiteLLM's model_prices_and_context_window.json")
    litellm.set_defaults(func=cmd_import)
    genai = catalogs.add_parser(
        "genai-prices",
        parents=[common],
        help="the database bundled with the installed genai-prices package",
        description="Convert the database bundled with the installed genai-prices package (no network) into a\n"
        "models-config file, with the prices in force now.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    genai.set_defaults(func=cmd_import, path=None)


class ImportSummary:
    """What one import did: the counts, and the skipped entries grouped by kind of reason."""

    def __init__(
        self, catalog: str, source: str, out: str, imported: int, filtered: int, skipped: Sequence[SkippedEntry]
    ) -> None:
        self.catalog = catalog
        self.source = source
        self.out = out
        self.imported = imported
        self.filtered = filtered
        self.skipped = list(skipped)

    def as_json(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "source": self.source,
            "out": self.out,
            "imported": self.imported,
            "filtered": self.filtered,
            "skipped": len(self.skipped),
            "reasons": [
                {"reason": kind, "count": len(names), "examples": names[:3]}
                for kind, names in summarise_skipped(self.skipped)
            ],
            "skippedEntries": [{"name": _cut(s.name), "reason": _cut(s.reason)} for s in self.skipped],
        }


def _cut(text: str, limit: int = MAX_LINE) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


_QUOTED = re.compile(r"'[^']*'")
_GOT = re.compile(r"\bgot .*$")


def reason_kind(reason: str) -> str:
    """``reason`` without the particulars (quoted names, the value after ``got``), to count alike reasons together.

    >>> reason_kind("duplicate key 'openai:x': the first entry with it was kept")
    "duplicate key '…': the first entry with it was kept"
    >>> reason_kind("input_cost_per_token: must be >= 0, got -1")
    'input_cost_per_token: must be >= 0, got …'
    """
    return _cut(_GOT.sub("got …", _QUOTED.sub("'…'", reason)))


def summarise_skipped(skipped: Sequence[SkippedEntry]) -> list[tuple[str, list[str]]]:
    """The kinds of reason (:func:`reason_kind`) with the names of their entries, the most frequent first (ties in
    the order first seen)."""
    groups: dict[str, list[str]] = {}
    for entry in skipped:
        groups.setdefault(reason_kind(entry.reason), []).append(_cut(entry.name))
    return sorted(groups.items(), key=lambda item: -len(item[1]))


class _Progress:
    # A transient progress display on stderr, or nothing (rich is imported only when it is shown).
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
            from rich.text import Text

            class Counts(ProgressColumn):
                # "1,200/4,876", or nothing while a step has no count (rich's MofN would show "0/?")
                def render(self, task: Task) -> Text:
                    return Text("" if task.total is None else f"{int(task.completed):,}/{int(task.total):,}")

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                Counts(),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,
            )
            self._bar.start()
        return self

    def phase(self, description: str, total: int | None = None) -> None:
        if self._bar is None:
            return
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, steps)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()


def cmd_import(args: argparse.Namespace) -> int:
    """Run ``import litellm`` / ``import genai-prices``: 0 when CONFIG was written, 1 when nothing was."""
    out = Path(args.out)
    if args.path is not None and _same_file(Path(args.path), out):
        _error(f"--out {out} is the catalogue being imported; write the models-config file elsewhere")
        return 2
    if out.is_dir():
        _error(f"--out {out} is a directory; name the models-config file to write")
        return 2
    if (out.exists() or out.is_symlink()) and not args.force:
        _error(f"{out} exists; add --force to replace it")
        return 1
    with _Progress(sys.stderr.isatty()) as progress:
        try:
            result, source = _load(args, progress)
            models, filtered = _filter(result, args.provider)
            if not models:
                _error(_nothing_imported(args, result, filtered))
                return 1
            text = _config_text(models, args.catalog, source, args.provider, progress)
            progress.phase(f"Checking that {out} loads")
            _check_loads(text, out)
            progress.phase(f"Writing {out}")
            atomic_write_text(out, text)
        except (ConfigError, PersistenceError, ImportError) as exc:
            # An unreadable or invalid catalogue, genai-prices not installed (the message names the extra), a
            # file that cannot be written: nothing was written.
            _error(_cut(str(exc), 2 * MAX_LINE))
            return 1
    summary = ImportSummary(args.catalog, source, str(out), len(models), filtered, result.skipped)
    if args.json:
        from .render import print_json

        print_json(summary.as_json())
    else:
        _print(summary, args.verbose)
    return 0


def _error(message: str) -> None:
    from .render import error

    error(message)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _load(args: argparse.Namespace, progress: _Progress) -> tuple[CatalogImport, str]:
    if args.catalog == "litellm":
        from ..importers import load_litellm_catalog

        progress.phase(f"Converting {args.path}")
        return load_litellm_catalog(args.path), str(args.path)
    from importlib.metadata import PackageNotFoundError, version

    from ..importers import load_genai_prices_catalog

    progress.phase("Converting the genai-prices database")
    result = load_genai_prices_catalog()
    try:
        source = f"genai-prices {version('genai-prices')}"
    except PackageNotFoundError:  # pragma: no cover - importable but not installed as a distribution
        source = "genai-prices"
    return result, source


def _wanted(providers: Sequence[str]) -> set[str]:
    from ..importers.common import map_provider
    from ..schemas import normalize_provider

    # As the importers name providers (anthropic is claude, ':' is '-'), any case or synonym of a built-in one.
    return {normalize_provider(map_provider(name.strip())) for name in providers} | set(providers)


def _filter(result: CatalogImport, providers: Sequence[str] | None) -> tuple[list[ExtendedModelInfo], int]:
    if not providers:
        return list(result), 0
    wanted = _wanted(providers)
    kept = [model for model in result if str(model.provider) in wanted]
    return kept, len(result) - len(kept)


def _nothing_imported(args: argparse.Namespace, result: CatalogImport, filtered: int) -> str:
    label = _LABELS[args.catalog]
    if filtered:
        counts = Counter(str(model.provider) for model in result)
        known = ", ".join(name for name, _ in counts.most_common(12))
        more = f" and {len(counts) - 12:,} more" if len(counts) > 12 else ""
        return (
            f"no model of provider {', '.join(args.provider)} in {label}; nothing written "
            f"(its providers include {known}{more})"
        )
    reason = ""
    if any(entry.name == "models" for entry in result.skipped):
        reason = f"; {args.path} looks like a models-config file already (check it with noa-registry validate)"
    return f"no model could be imported from {label} ({len(result.skipped):,} entries skipped); nothing written{reason}"


def _config_text(
    models: Sequence[ExtendedModelInfo],
    catalog: str,
    source: str,
    providers: Sequence[str] | None,
    progress: _Progress,
) -> str:
    today = datetime.now(UTC).date().isoformat()
    only = f", providers {', '.join(providers)} only" if providers else ""
    description = (
        f"Imported from {_LABELS[catalog]} ({source}{only}) by noa-registry import {catalog} on {today}. "
        "Prices in USD per 1,000,000 tokens."
    )
    progress.phase(f"Preparing {len(models):,} models", total=len(models))
    dumped: list[dict[str, Any]] = []
    for number, model in enumerate(models, 1):
        data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        if model.cost is None:
            data["cost"] = None  # required: null says "unpriced"
        dumped.append(data)
        if number % 100 == 0 or number == len(models):
            progress.advance(100 if number % 100 == 0 else number % 100)
    return jsonio.dumps({"description": description, "models": dumped}) + "\n"


def _check_loads(text: str, out: Path) -> None:
    # What was converted must load exactly as the registry loads it; else nothing is written.
    size = len(text.encode("utf-8"))
    if size > MAX_CONFIG_BYTES:
        raise PersistenceError(
            f"{out}: the converted catalogue is {size:,} bytes, above the {MAX_CONFIG_BYTES:,}-byte limit of "
            "models-config files; nothing written (use --provider to import fewer models)"
        )
    try:
        parse_models_config(jsonio.loads(text, str(out)), str(out))
    except ConfigError as exc:  # a bug of the importer: say so, briefly
        raise ConfigError(f"the converted catalogue would not load, nothing written: {_cut(str(exc))}") from exc


def _print(summary: ImportSummary, verbose: bool) -> None:
    from rich.text import Text

    from .render import console as stdout_console

    console = stdout_console()
    label = _LABELS[summary.catalog]
    filtered = f" ({summary.filtered:,} of other providers left out)" if summary.filtered else ""
    console.print(
        Text.assemble(
            ("Imported ", "green"),
            (f"{summary.imported:,} model{_s(summary.imported)}", "bold green"),
            f" from {label} ({summary.source}) into ",
            (summary.out, "bold"),
            filtered,
        )
    )
    if not summary.skipped:
        return
    console.print(Text(f"Skipped {len(summary.skipped):,} entr{'y' if len(summary.skipped) == 1 else 'ies'}:"))
    if verbose:
        for entry in summary.skipped:
            console.print(Text.assemble("  ", (_cut(entry.name), "yellow"), ": ", _cut(entry.reason)))
        return
    groups = summarise_skipped(summary.skipped)
    width = len(f"{len(groups[0][1]):,}")
    for kind, names in groups[:TOP_REASONS]:
        example = f" (e.g. {names[0]})" if len(names) > 1 else f" ({names[0]})"
        console.print(Text.assemble(f"  {len(names):>{width},}  ", kind, (example, "dim")))
    rest = groups[TOP_REASONS:]
    if rest:
        count = sum(len(names) for _, names in rest)
        console.print(Text(f"  {count:>{width},}  other reasons ({len(rest):,} kinds)", "dim"))
    console.print(Text("--verbose lists every skipped entry with its reason", "dim"))


def _s(count: int) -> str:
    return "" if count == 1 else "s"
