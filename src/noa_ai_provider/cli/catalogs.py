"""``noa-registry validate`` and ``noa-registry import``: checking a models-config file (every error, not the
first) and writing one from LiteLLM's price map or genai-prices."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..schemas import ExtendedModelInfo
from ..schemas.base import check_unique_keys, item_label, validate_or_raise
from .render import console, print_json

_MAX_MESSAGE = 400


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 30] + f" ... ({len(text):,} characters)"


def looks_like_litellm(data: Any) -> bool:
    """LiteLLM's ``model_prices_and_context_window.json``: an object of entries with ``litellm_provider`` or
    per-token prices, or its ``sample_spec``."""
    if not isinstance(data, dict) or "models" in data:
        return False
    if "sample_spec" in data:
        return True
    values = [v for v in list(data.values())[:20] if isinstance(v, dict)]
    return bool(values) and sum("litellm_provider" in v or "input_cost_per_token" in v for v in values) * 2 >= len(
        values
    )


def config_errors(data: Any, source: str) -> tuple[int, list[dict[str, Any]]]:
    """``(models checked, errors)`` of a parsed models-config: each error with file, index, id and message (the
    message names the field path)."""
    errors: list[dict[str, Any]] = []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"models", "$schema", "version", "description"})
        if unknown:
            errors.append(
                {"file": source, "index": None, "id": None, "message": f"unknown top-level field(s) {unknown}"}
            )
        items = data.get("models")
        if items is None:
            errors.append({"file": source, "index": None, "id": None, "message": "missing field 'models'"})
            return 0, errors
    else:
        items = data
    if not isinstance(items, list):
        message = f'expected a list of models or {{"models": [...]}}, got {type(items).__name__}'
        errors.append({"file": source, "index": None, "id": None, "message": message})
        return 0, errors
    valid: list[Any] = []
    where = f"{source}: models"
    for index, item in enumerate(items):
        ident = item.get("id") if isinstance(item, dict) else None
        try:
            valid.append(validate_or_raise(ExtendedModelInfo, item, item_label(where, index, item)))
        except ConfigError as exc:
            errors.append({"file": source, "index": index, "id": ident, "message": _short(str(exc))})
    try:
        check_unique_keys(valid, where)
    except ConfigError as exc:
        errors.append({"file": source, "index": None, "id": None, "message": _short(str(exc))})
    return len(items), errors


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a models-config file; print every error; exit 1 when there is one."""
    path = Path(args.config_file)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return _finding(
            args, [{"file": source, "index": None, "id": None, "message": f"cannot read: {exc.strerror}"}], 0
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        return _finding(args, [{"file": source, "index": None, "id": None, "message": message}], 0)
    if looks_like_litellm(data):
        message = (
            f"this is LiteLLM's price map ({len(data):,} entries), not a models-config file; convert it with: "
            f"noa-registry import litellm {source} --out models-config.json"
        )
        return _finding(args, [{"file": source, "index": None, "id": None, "message": message}], 0)
    count, errors = config_errors(data, source)
    if errors:
        return _finding(args, errors, count)
    if args.json:
        print_json({"file": source, "models": count, "valid": True, "errors": []})
    else:
        console().print(f"{source}: {count} models, all valid", markup=False)
    return 0


def _finding(args: argparse.Namespace, errors: list[dict[str, Any]], count: int) -> int:
    if args.json:
        print_json({"file": errors[0]["file"], "models": count, "valid": False, "errors": errors})
    else:
        for error in errors:
            message = error["message"]
            named = message if message.startswith(error["file"]) else f"{error['file']}: {message}"
            sys.stderr.write(named + "\n")
        sys.stderr.write(f"{len(errors)} error(s)\n")
    return 1


def _write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cmd_import(args: argparse.Namespace) -> int:
    """Convert LiteLLM's price map or genai-prices' catalogue into a models-config file."""
    out_path = Path(args.out)
    if out_path.exists() and not args.force:
        sys.stderr.write(f"noa-registry: {out_path} exists; pass --force to replace it\n")
        return 1
    progress = _progress(args)
    if args.source == "litellm":
        from ..importers import load_litellm_catalog

        with progress("reading LiteLLM's price map"):
            models = load_litellm_catalog(args.path)
    else:
        from ..importers import load_genai_prices_catalog

        with progress("reading genai-prices"):
            models = load_genai_prices_catalog()
    if args.provider:
        wanted = set(args.provider)
        models = type(models)([m for m in models if str(m.provider) in wanted], models.skipped)
    with progress(f"writing {len(models):,} models"):
        payload = {"models": [_config_entry(m) for m in models]}
        _write_atomically(out_path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    reasons = Counter(_reason(s.reason) for s in models.skipped)
    if args.json:
        print_json(
            {
                "out": str(out_path),
                "imported": len(models),
                "skipped": len(models.skipped),
                "reasons": dict(reasons.most_common()),
                **(
                    {"skippedEntries": [{"name": s.name, "reason": s.reason} for s in models.skipped]}
                    if args.verbose
                    else {}
                ),
            }
        )
        return 0
    out = console()
    out.print(f"{out_path}: {len(models):,} models imported, {len(models.skipped):,} entries skipped", markup=False)
    for reason, count in reasons.most_common(8 if not args.verbose else None):
        out.print(f"  {count:>6,}  {reason}", markup=False)
    if args.verbose:
        for skipped in models.skipped:
            out.print(f"  skipped {skipped.name}: {skipped.reason}", markup=False)
    return 0


def _config_entry(model: ExtendedModelInfo) -> dict[str, Any]:
    # None-valued fields are left out, except the cost: a config states an unpriced model as "cost": null (a
    # missing cost is an error), so the written file loads back as it was imported.
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    if model.cost is None:
        data["cost"] = None
    return data


def _reason(text: str) -> str:
    # Group skip reasons by their first clause (they often end with the entry's own values).
    return text.split(":")[0].split(" (")[0][:100]


def _progress(args: argparse.Namespace) -> Any:
    """A context manager factory: a rich spinner with the step's name on stderr when it is a terminal, else
    nothing (an import's one conversion step has no count to show a bar for)."""
    import contextlib

    if not sys.stderr.isatty() or args.json:
        return lambda label: contextlib.nullcontext()
    from rich.console import Console

    err = Console(stderr=True)
    return lambda label: err.status(label)
