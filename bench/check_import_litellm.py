#!/usr/bin/env python
"""``noa-registry import litellm`` and ``noa-registry validate`` on LiteLLM's whole price map (issue 15), run on
demand (never by the test suite: a clone has no copy of the map).

    python bench/check_import_litellm.py                       # the copy in ../shared/data
    python bench/check_import_litellm.py --catalog model_prices_and_context_window.json --rounds 10

Each round runs the installed console script in a fresh process: ``import litellm MAP --out CONFIG --json``, then
``validate CONFIG --json``, then ``validate MAP`` (which must name the import command in one short line). It checks
that the counts agree, that the file written loads with ``EnhancedModelRegistry(...).load_from_config()``, and
prints Markdown: the machine, the counts and the median wall time of each step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

SCRIPT = str(Path(sys.executable).parent / "noa-registry")


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_catalog_argument(parser)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _common.require_catalog(args.catalog)
    from noa_ai_provider import EnhancedModelRegistry

    steps: dict[str, list[float]] = {"import litellm MAP --out CONFIG": [], "validate CONFIG": [], "validate MAP": []}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "models-config.json"
        for _ in range(args.rounds):
            command = [SCRIPT, "import", "litellm", str(args.catalog), "--out", str(out), "--force", "--json"]
            seconds, imported = timed(command)
            if imported.returncode != 0:
                raise SystemExit(f"import failed ({imported.returncode}): {imported.stderr}")
            steps["import litellm MAP --out CONFIG"].append(seconds)
            summary = json.loads(imported.stdout)
            seconds, validated = timed([SCRIPT, "validate", str(out), "--json"])
            report = json.loads(validated.stdout)
            if validated.returncode != 0 or report["models"] != summary["imported"]:
                raise SystemExit(f"validate disagrees with import: {validated.stdout[:2000]}")
            steps["validate CONFIG"].append(seconds)
            seconds, raw = timed([SCRIPT, "validate", str(args.catalog)])
            if raw.returncode != 1 or "noa-registry import litellm" not in raw.stdout or len(raw.stdout) > 1000:
                raise SystemExit(f"validate of the map itself: {raw.returncode} {raw.stdout[:2000]!r}")
            steps["validate MAP"].append(seconds)
        start = time.perf_counter()
        loaded = EnhancedModelRegistry(auto_save=False, models_config_path=out).load_from_config()
        load_seconds = time.perf_counter() - start
        size = out.stat().st_size
    if loaded != summary["imported"]:
        raise SystemExit(f"load_from_config loaded {loaded} models, import reported {summary['imported']}")

    print(f"Machine: {_common.cpu_model()}, Python {sys.version.split()[0]}; {args.rounds} rounds\n")
    print(f"Catalogue: {args.catalog} ({args.catalog.stat().st_size:,} bytes)")
    reasons = ", ".join(f"{r['count']} {r['reason']}" for r in summary["reasons"])
    print(
        f"Imported {summary['imported']:,} models, skipped {summary['skipped']:,} ({reasons}); "
        f"the models-config file is {size:,} bytes and loads in {load_seconds * 1000:.0f} ms in process\n"
    )
    print("| step (a fresh `noa-registry` process) | median ms | min ms |")
    print("|---|--:|--:|")
    for name, values in steps.items():
        print(f"| `{name}` | {statistics.median(values) * 1000:.0f} | {min(values) * 1000:.0f} |")


if __name__ == "__main__":
    main()
