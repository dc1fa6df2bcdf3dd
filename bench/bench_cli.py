#!/usr/bin/env python
"""Start-up time of ``noa-registry`` (issue 15), run on demand (never by the test suite).

    python bench/bench_cli.py               # 21 rounds
    python bench/bench_cli.py --rounds 41

Each round runs every command below once, each in a fresh process, in an order shuffled per round (interleaved,
so that a slow spell of the machine falls on every command alike):

- ``python -c "import rich"``
- ``python -c "import noa_ai_provider"``
- ``python -c "import rich; import noa_ai_provider"``
- ``noa-registry --version``
- ``noa-registry models --config config/models-config.json > /dev/null``
- the same with ``FORCE_COLOR=1``: the terminal's layout, drawn with rich (piped output is written without it)

and prints Markdown: the machine, the median wall time of each, and its ratio to two baselines: the issue's, the
medians of ``import rich`` and ``import noa_ai_provider`` added (the target of issue 15 is at most 1.5 times that
for ``--version`` and ``models``); and a stricter one, both imported in one process (one interpreter start, not
two). It also lists the modules ``--version`` imports beyond what ``import noa_ai_provider`` loads (``-X
importtime``): rich and the CLI's command modules must not be among them.

Bytecode is cached, as in an installed package: every run uses one temporary ``PYTHONPYCACHEPREFIX`` (and ignores
``PYTHONDONTWRITEBYTECODE``), filled by a warm-up round. Uses only the standard library; writes nothing outside a
temporary directory.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

SCRIPT = str(Path(sys.executable).parent / "noa-registry")
CONFIG = str(_common.REPO_ROOT / "config" / "models-config.json")

RICH = 'python -c "import rich"'
PACKAGE = 'python -c "import noa_ai_provider"'
BOTH = 'python -c "import rich; import noa_ai_provider"'
VERSION = "noa-registry --version"
MODELS = "noa-registry models --config config/models-config.json > /dev/null"
DRAWN = "FORCE_COLOR=1 noa-registry models --config config/models-config.json > /dev/null"

COMMANDS: dict[str, list[str]] = {
    RICH: [sys.executable, "-c", "import rich"],
    PACKAGE: [sys.executable, "-c", "import noa_ai_provider"],
    BOTH: [sys.executable, "-c", "import rich; import noa_ai_provider"],
    VERSION: [SCRIPT, "--version"],
    MODELS: [SCRIPT, "models", "--config", CONFIG],
    DRAWN: [SCRIPT, "models", "--config", CONFIG],
}


def child_env(cache_dir: Path) -> dict[str, str]:
    """The environment of every run: bytecode cached in ``cache_dir``, no colour settings of the caller's."""
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "FORCE_COLOR", "NO_COLOR"):
        env.pop(name, None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def timed(name: str, env: dict[str, str]) -> float:
    """Wall seconds of one run of ``COMMANDS[name]``, stdout to /dev/null; a failing command stops the benchmark."""
    command = COMMANDS[name]
    if name == DRAWN:
        env = env | {"FORCE_COLOR": "1", "COLUMNS": "200"}
    start = time.perf_counter()
    result = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, cwd=_common.REPO_ROOT, env=env
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command}: exit {result.returncode}: {result.stderr.decode()[:500]}")
    return elapsed


def imported_by_version(env: dict[str, str]) -> set[str]:
    """Modules ``noa-registry --version`` imports that ``import noa_ai_provider`` does not."""

    def modules(command: list[str]) -> set[str]:
        result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}

    version = modules([sys.executable, "-X", "importtime", SCRIPT, "--version"])
    package = modules([sys.executable, "-X", "importtime", "-c", "import noa_ai_provider"])
    return version - package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seed", type=int, default=15, help="of the per-round shuffle")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = child_env(Path(tmp) / "pycache")
        order = list(COMMANDS)
        for name in order:  # warm-up: fills the bytecode cache and the file cache
            timed(name, env)
        shuffle = random.Random(args.seed).shuffle
        times: dict[str, list[float]] = {name: [] for name in order}
        for _ in range(args.rounds):
            shuffle(order)
            for name in order:
                times[name].append(timed(name, env))
        extra = sorted(imported_by_version(env))

    median = {name: statistics.median(values) for name, values in times.items()}
    summed = median[RICH] + median[PACKAGE]
    together = median[BOTH]
    print(f"Machine: {_common.cpu_model()}; Python {sys.version.split()[0]}; {args.rounds} rounds, interleaved\n")
    print("| command | median (ms) | min-max (ms) | / (import rich + import noa_ai_provider) | / both in one process |")
    print("|---|---:|---:|---:|---:|")
    for name in COMMANDS:
        low, high = min(times[name]) * 1000, max(times[name]) * 1000
        ms, ratio, strict = median[name] * 1000, median[name] / summed, median[name] / together
        print(f"| `{name}` | {ms:.1f} | {low:.0f}-{high:.0f} | {ratio:.2f} | {strict:.2f} |")
    print()
    print(f"Modules `--version` imports beyond `import noa_ai_provider`: {', '.join(extra) or 'none'}")
    worst = max(median[VERSION], median[MODELS])
    verdict = "met" if worst / summed <= 1.5 else "MISSED"
    print(f"Worst ratio: {worst / summed:.2f} of the issue's baseline (target: at most 1.5: {verdict});", end=" ")
    print(f"{worst / together:.2f} of both imports in one process")


if __name__ == "__main__":
    main()
