#!/usr/bin/env python
"""Start-up time of the ``noa-registry`` command (issue 15): ``--version`` and ``models`` against what they cannot
avoid, ``python -c "import rich"`` plus ``python -c "import noa_ai_provider"``. Target: at most 1.5x that sum.

    python bench/bench_cli.py            # 15 rounds, each command once per round, in turn; medians
    python bench/bench_cli.py --rounds 40

Each round runs every command once, in the same order, so a busy machine slows all of them alike; the medians are
reported with the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common

ROOT = _common.REPO_ROOT
SCRIPT = str(Path(sys.executable).parent / "noa-registry")
CONFIG = str(ROOT / "config" / "models-config.json")
COMMANDS = {
    "import rich": [sys.executable, "-c", "import rich"],
    "import noa_ai_provider": [sys.executable, "-c", "import noa_ai_provider"],
    "import rich, noa_ai_provider": [sys.executable, "-c", "import rich, noa_ai_provider"],
    "noa-registry --version": [SCRIPT, "--version"],
    "noa-registry models": [SCRIPT, "models", "--config", CONFIG],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    base = median["import rich"] + median["import noa_ai_provider"]
    print(f"{args.rounds} rounds, median ms\n")
    print("| command | ms | / (import rich + import noa_ai_provider) | target ≤ 1.5 |")
    print("|---|--:|--:|---|")
    for name, value in median.items():
        ratio = value / base
        verdict = ("met" if ratio <= 1.5 else "missed") if name.startswith("noa-registry") else ""
        print(f"| `{name}` | {value:.0f} | {ratio:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
