"""``noa-registry validate CONFIG``: check a models-config file and report every problem, not only the first.

Whether a file is valid is decided by the loader itself (:func:`noa_ai_provider.config.parse_models_config`, what
``EnhancedModelRegistry.load_from_config`` runs): a file it accepts is valid. Only when it refuses one is the file
gone through again model by model, with the same schema and the same wording, to list each problem with the file,
the model's index and id and the field path. Messages are bounded (a field name, a value or an id of any length is
cut), and a file that is another catalogue (LiteLLM's price map, genai-prices' data, a saved registry) is named as
such with the command that reads it, rather than reported as thousands of errors.

Exit status: 0 valid, 1 problems found (a missing or unreadable file and invalid JSON included), 2 wrong arguments.
``rich`` is imported only to print text output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from .. import jsonio
from ..config import MAX_CONFIG_BYTES, apply_deprecation, parse_models_config
from ..errors import ConfigError, PersistenceError
from ..schemas import ExtendedModelInfo, format_validation_error, model_key

__all__ = ["ConfigCheck", "Problem", "add_parser", "check_config", "cmd_validate"]

MAX_MESSAGE: Final = 300
"""Characters of one problem's message (and of a field path) beyond which it is cut."""

MAX_ID: Final = 60
"""Characters of an id's ``repr`` beyond which it is cut in a problem's location."""

DEFAULT_MAX_ERRORS: Final = 100
"""Problems printed as text before the rest are only counted (``--max-errors``; ``--json`` lists all)."""

_TOP_LEVEL: Final = ("models", "$schema", "description")  # as config.parse_models_config accepts
_LITELLM_FIELDS: Final = frozenset(
    {"litellm_provider", "input_cost_per_token", "output_cost_per_token", "max_input_tokens", "max_output_tokens"}
)
_SNAPSHOT_FORMAT: Final = "noa-ai-provider/registry"

EPILOG: Final = """\
examples:
  noa-registry validate config/models-config.json
  noa-registry validate models.json --json | jq '.errors[] | .message'
  noa-registry validate models.json --max-errors 0          # print every problem

Every problem is printed as FILE: models[INDEX] (id 'ID'): FIELD.PATH: MESSAGE, in the words loading the
file would use. A LiteLLM price map is recognised and not validated: convert it with
  noa-registry import litellm model_prices_and_context_window.json --out models-config.json

exit status: 0 the file is valid; 1 problems found (a missing or unreadable file and invalid JSON
included); 2 wrong arguments.
"""


def _cut(text: str, limit: int = MAX_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def _id_repr(ident: object) -> str:
    text = repr(ident)
    return text if len(text) <= MAX_ID else text[: MAX_ID - 3] + "..."


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a models-config file: where it is (``index`` and ``id`` of the model, ``path`` of the field;
    ``None`` where it does not apply) and what is wrong (``message``, bounded)."""

    file: str
    index: int | None
    id: str | None
    path: str | None
    message: str
    id_repr: str | None = None  # how the location shows the id (a non-string id is not quoted)

    def location(self) -> str:
        """``models[3] (id 'x')``, or ``""`` for a problem of the whole file."""
        if self.index is None:
            return ""
        return f"models[{self.index}]" + (f" (id {self.id_repr})" if self.id_repr is not None else "")

    def line(self) -> str:
        """``FILE: models[3] (id 'x'): cost.inputTokens: must be >= 0, got Decimal('-1')``: as loading words it."""
        parts = [self.file, self.location(), self.path or "", self.message]
        return ": ".join(part for part in parts if part)

    def as_json(self) -> dict[str, Any]:
        ident = self.id if self.id is None or len(self.id) <= MAX_MESSAGE else _cut(self.id)
        return {"file": self.file, "index": self.index, "id": ident, "path": self.path, "message": self.message}


@dataclass(slots=True)
class ConfigCheck:
    """What :func:`check_config` found: ``models`` (how many the file lists; ``None`` when it lists none it could
    read), ``problems`` (empty when valid) and ``detected`` (``"litellm"``, ``"genai-prices"`` or
    ``"registry-snapshot"`` when the file is one of those instead)."""

    file: str
    models: int | None = None
    problems: list[Problem] = field(default_factory=list)
    detected: str | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def add(self, message: str, index: int | None = None, ident: object = None, path: str | None = None) -> None:
        shown = None if ident is None else ident if isinstance(ident, str) else repr(ident)
        self.problems.append(
            Problem(
                self.file,
                index,
                shown,
                None if path is None else _cut(path),
                _cut(message.strip()),
                None if ident is None else _id_repr(ident),
            )
        )

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.file, "valid": self.valid, "models": self.models}
        if self.detected is not None:
            data["detected"] = self.detected
        data["errors"] = [problem.as_json() for problem in self.problems]
        return data


def check_config(path: str | Path, *, today: date | None = None) -> ConfigCheck:
    """Check the models-config file at ``path`` as ``load_from_config`` would read it, collecting every problem.

    ``today`` (default: the current UTC date) is the date ``metadata.deprecationDate`` is compared with, as when
    loading. Never raises for a bad file: a missing or unreadable file, invalid JSON and invalid models are all
    problems in the result.
    """
    path = Path(path)
    source = str(path)
    check = ConfigCheck(source)
    try:
        text = jsonio.read_text(path, MAX_CONFIG_BYTES)
    except PersistenceError as exc:
        check.add(_unprefixed(str(exc), source))
        return check
    if text is None:
        check.add("file not found")
        return check
    try:
        data = jsonio.loads(text, source)
    except ConfigError as exc:
        # Another catalogue is recognised even when strict parsing refuses it (LiteLLM's map has had duplicate
        # keys): its import command is the useful answer, not the JSON error.
        if not _detect_other(_lenient(text), check):
            check.add(_unprefixed(str(exc), source))
        return check
    if _detect_other(data, check):
        return check
    if today is None:
        today = datetime.now(UTC).date()
    try:
        models = parse_models_config(data, source, today=today)
    except ConfigError as exc:
        _collect(data, check, today)
        if not check.problems:  # a rule the model-by-model pass does not know: the loader's own words
            check.add(_unprefixed(str(exc), source))
        return check
    check.models = len(models)
    return check


def _lenient(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _unprefixed(message: str, source: str) -> str:
    return message.removeprefix(f"{source}: ")


def _detect_other(data: Any, check: ConfigCheck) -> bool:
    # Another kind of file than a models-config: say what it is and which command reads it (one problem).
    if isinstance(data, dict) and "models" not in data:
        values = list(_first(data.values(), 200))
        if "sample_spec" in data or any(isinstance(v, dict) and _LITELLM_FIELDS & v.keys() for v in values):
            check.detected = "litellm"
            check.add(
                f"this is a LiteLLM price map ({len(data):,} entries), not a models-config file; convert it with: "
                f"noa-registry import litellm {_quoted(check.file)} --out models-config.json"
            )
            return True
    if isinstance(data, dict) and data.get("format") == _SNAPSHOT_FORMAT:
        check.detected = "registry-snapshot"
        check.add(
            "this is a saved registry (a persistence file), not a models-config file; read it with: "
            f"noa-registry report --persistence {_quoted(check.file)}"
        )
        return True
    if (
        isinstance(data, list)
        and data
        and all(isinstance(item, dict) and "api_pattern" in item and "models" in item for item in _first(data, 20))
    ):
        check.detected = "genai-prices"
        check.add(
            "this is genai-prices' provider data, not a models-config file; the data bundled with the installed "
            "package converts with: noa-registry import genai-prices --out models-config.json"
        )
        return True
    return False


def _first(items: Any, count: int) -> Iterator[Any]:
    for number, item in enumerate(items):
        if number >= count:
            return
        yield item


def _quoted(path: str) -> str:
    import shlex

    return shlex.quote(path)


def _collect(data: Any, check: ConfigCheck, today: date) -> None:
    # The loader refused the file: every problem, model by model, in the loader's words.
    if isinstance(data, dict):
        unknown = [key for key in data if key not in _TOP_LEVEL]
        if unknown:
            shown = ", ".join(_id_repr(key) for key in unknown[:5])
            more = f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
            check.add(f"unknown top-level field(s) {shown}{more}; expected 'models'")
        if "models" not in data:
            check.add("missing field 'models'")
            return
        data = data["models"]
    if not isinstance(data, list):
        check.add(f'expected a list of models or {{"models": [...]}}, got {type(data).__name__}')
        return
    check.models = len(data)
    where = f"{check.file}: models"
    first_of: dict[str, int] = {}
    for index, item in enumerate(data):
        ident = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item, dict):
            check.add(f"expected an object, got {type(item).__name__}", index)
            continue
        try:
            model = ExtendedModelInfo.model_validate(item)
        except ValueError as exc:  # pydantic's ValidationError (only schemas.base imports pydantic)
            for path, message in _field_problems(exc):
                check.add(message, index, ident, path)
            continue
        key = model_key(str(model.provider), model.id)
        seen = first_of.setdefault(key, index)
        if seen != index:
            check.add(f"duplicates models[{seen}] (key {key})", index, ident)
            continue
        try:
            apply_deprecation([model], today, where)
        except ConfigError as exc:
            path, message = _split(_unprefixed(str(exc), f"{where}[0] (id {model.id!r})"))
            check.add(message, index, ident, path)


class _OneError:
    # One error of a ValidationError, in the shape format_validation_error reads, so that each field's message is
    # worded exactly as loading words it.
    __slots__ = ("error",)

    def __init__(self, error: Mapping[str, Any]) -> None:
        self.error = error

    def errors(self, include_url: bool = True) -> list[Mapping[str, Any]]:
        return [self.error]


def _field_problems(exc: ValueError) -> list[tuple[str | None, str]]:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return [(None, str(exc))]
    problems: list[tuple[str | None, str]] = []
    for error in errors(include_url=False):
        path = _path(error.get("loc", ()))
        text = format_validation_error(_OneError(error))  # type: ignore[arg-type]  # duck-typed ValidationError
        problems.append((path, text.removeprefix(f"{path}: ")))
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    # The field path as format_validation_error writes it (schemas.base._path), to split its "path: problem".
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part == "json-or-python[json=...]":
            continue
        else:
            out += f".{part}" if out else part
    return out or "(root)"


def _split(text: str) -> tuple[str | None, str]:
    path, sep, message = text.partition(": ")
    return (path, message) if sep and " " not in path else (None, text)


# --------------------------------------------------------------------------- the command


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``validate`` on the ``noa-registry`` parser's subcommands."""
    parser = subparsers.add_parser(
        "validate",
        help="check a models-config file and report every problem",
        description="Check a models-config file (what load_from_config reads): print every problem on stdout with\n"
        "the file, the model's index and id and the field path, or a one-line summary when it is valid.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", metavar="CONFIG", help="the models-config file to check")
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON: {file, valid, models, errors: [...]}"
    )
    parser.add_argument(
        "--max-errors",
        type=_count,
        default=DEFAULT_MAX_ERRORS,
        metavar="N",
        help=f"print at most N problems, then count the rest (default {DEFAULT_MAX_ERRORS}; 0: all; --json lists all)",
    )
    parser.set_defaults(func=cmd_validate)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def cmd_validate(args: argparse.Namespace) -> int:
    """Run ``validate``: 0 when the file is valid, 1 when it has problems."""
    check = check_config(args.config)
    if args.json:
        from .render import print_json

        print_json(check.as_json())
    else:
        _print(check, args.max_errors)
    return 0 if check.valid else 1


def _print(check: ConfigCheck, max_errors: int) -> None:
    from rich.text import Text

    from .render import console as stdout_console

    console = stdout_console()
    if check.valid:
        summary = Text.assemble(
            (check.file, "bold"), ": ", (f"{check.models:,} model{_s(check.models)} valid", "green")
        )
        console.print(summary)
        return
    shown = check.problems if max_errors == 0 else check.problems[:max_errors]
    for problem in shown:
        console.print(
            Text.assemble(
                (problem.file, "bold"),
                ": ",
                *((problem.location(), "cyan"), ": ") if problem.index is not None else (),
                *((problem.path, "yellow"), ": ") if problem.path else (),
                (problem.message, "red"),
            )
        )
    if check.models is None:  # a problem of the whole file (unreadable, not JSON, another catalogue): said once
        return
    count = len(check.problems)
    with_problems = len({p.index for p in check.problems if p.index is not None})
    scope = f" in {with_problems:,} of {check.models:,} model{_s(check.models)}" if with_problems else ""
    rest = f" (the first {len(shown):,} shown; --max-errors 0 shows all)" if len(shown) < count else ""
    console.print(Text(f"{count:,} problem{_s(count)}{scope}{rest}", "bold red"))


def _s(count: int | None) -> str:
    return "" if count == 1 else "s"
