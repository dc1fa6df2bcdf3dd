#!/usr/bin/env python
"""Import time of ``noa_ai_provider`` against its own dependencies plus one pydantic model built.

Two commands, each run as a fresh process (``sys.executable``), in turn (A B, then B A, ...) so that a drift of the
machine's speed weighs on both alike:

- (a) the package: ``import noa_ai_provider``;
- (b) the baseline: ``import pydantic, packaging.version, blinker, filelock`` (the core dependencies), then one
  small ``pydantic.BaseModel`` class built and one instance validated.

Each run gives its wall time (measured around the whole process), its CPU time (user + system, from the operating
system's accounting of the finished child) and the time of the imports alone measured inside the process (without
the interpreter's start-up). The figures are medians; the ratios are (a)/(b) of the medians. The target of issue 12
is a whole-process wall ratio of at most 1.5x (``--check`` exits 1 above it). Bytecode is cached, as in an
installed package: every run uses one temporary ``PYTHONPYCACHEPREFIX`` (and ignores ``PYTHONDONTWRITEBYTECODE``),
filled by the warm-up runs.

Validators and serializers of the package's models are built on first use, not at import; the last table shows
what that moves there: the first validation of a model definition, and a first registry's construction and
``register_model`` (in-process times after the import, in separate fresh processes).

    python bench/bench_import.py            # 20 runs of each command
    python bench/bench_import.py --quick    # 5 runs of each
    python bench/bench_import.py --repeats 50 --check

Uses only the standard library; writes nothing outside a temporary directory. Prints Markdown.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import cpu_model  # also makes the package importable

TARGET = 1.5

# Each command prints, as its last line, the seconds its imports took inside the process.
PACKAGE_CODE = """\
import time
_start = time.perf_counter()
import noa_ai_provider
print(time.perf_counter() - _start)
"""

BASELINE_CODE = """\
import time
_start = time.perf_counter()
import pydantic, packaging.version, blinker, filelock

class Model(pydantic.BaseModel):
    name: str
    count: int = 0

Model.model_validate({"name": "a", "count": 1})
print(time.perf_counter() - _start)
"""

# The first uses that build validators: printed as JSON, seconds each, after the import.
FIRST_USE_CODE = """\
import json, sys, tempfile, time
from noa_ai_provider import EnhancedModelRegistry, ExtendedModelInfo
from noa_ai_provider.schemas import validate_or_raise

MODEL = {
    "id": "gpt-x", "name": "X", "provider": "openai", "version": "1.0.0", "capabilities": ["chat_completion"],
    "cost": {"inputTokens": "0.0025", "outputTokens": "0.01"}, "rateLimit": {"requestsPerMinute": 60},
}
out = {}
with tempfile.TemporaryDirectory() as tmp:
    if sys.argv[1:] == ["validate"]:
        start = time.perf_counter()
        validate_or_raise(ExtendedModelInfo, MODEL)
        out["validate"] = time.perf_counter() - start
    else:
        start = time.perf_counter()
        registry = EnhancedModelRegistry(persistence_path=tmp + "/registry.json", auto_save=False)
        out["construct"] = time.perf_counter() - start
        start = time.perf_counter()
        registry.register_model(MODEL)
        out["register"] = time.perf_counter() - start
        start = time.perf_counter()
        registry.register_model({**MODEL, "id": "gpt-y"})
        out["register again"] = time.perf_counter() - start
        registry.close()
print(json.dumps(out))
"""


@dataclass
class Samples:
    """The figures of one command's runs, in seconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    inside: list[float] = field(default_factory=list)


def child_env(cache_dir: Path) -> dict[str, str]:
    """The environment of every run: bytecode cached in ``cache_dir``; the package found where this script finds it."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    spec = importlib.util.find_spec("noa_ai_provider")
    if spec is not None and spec.submodule_search_locations:
        package_parent = str(Path(next(iter(spec.submodule_search_locations))).parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def run_once(code: str, env: dict[str, str], cwd: str, *args: str) -> tuple[float, float, str]:
    """Run ``code`` in a fresh interpreter in ``cwd``: its wall seconds, CPU seconds and the last line it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"error: the command failed ({done.returncode}):\n{code}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.strip().splitlines()[-1]


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def fmt(values: list[float], digits: int = 1) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{median_ms(values):,.{digits}f} ms ({low:,.{digits}f}–{high:,.{digits}f})"


def machine_lines() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    versions = []
    for name in ("pydantic", "packaging", "blinker", "filelock", "noa-ai-provider"):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable)",
        f"- {', '.join(versions)}",
    ]


def run(args: argparse.Namespace) -> int:
    repeats: int = args.repeats
    print("## Machine\n")
    print("\n".join(machine_lines()))

    with tempfile.TemporaryDirectory(prefix="noa-bench-import-") as tmp:
        env = child_env(Path(tmp) / "pycache")  # the runs' working directory is ``tmp`` too

        commands = {"package": PACKAGE_CODE, "baseline": BASELINE_CODE}
        for _ in range(args.warmup):  # writes the bytecode cache, warms the file system cache
            for code in commands.values():
                run_once(code, env, tmp)

        samples = {name: Samples() for name in commands}
        for index in range(repeats):
            order = list(commands) if index % 2 == 0 else list(reversed(commands))
            for name in order:
                wall, cpu, last = run_once(commands[name], env, tmp)
                samples[name].wall.append(wall)
                samples[name].cpu.append(cpu)
                samples[name].inside.append(float(last))

        first_use: dict[str, list[float]] = {}
        for _ in range(max(3, repeats // 4)):
            for mode in ("validate", "registry"):
                _, _, last = run_once(FIRST_USE_CODE, env, tmp, mode)
                for key, seconds in json.loads(last).items():
                    first_use.setdefault(key, []).append(seconds)

    a, b = samples["package"], samples["baseline"]
    print(f"\n## Import time (median of {repeats} runs of each, in turn; min–max in brackets)\n")
    print("| Figure | (a) `import noa_ai_provider` | (b) dependencies + one model | (a)/(b) |")
    print("|---|--:|--:|--:|")
    ratios = {}
    for label, key in (("whole process, wall", "wall"), ("whole process, CPU", "cpu"), ("imports alone", "inside")):
        xa, xb = getattr(a, key), getattr(b, key)
        ratios[key] = statistics.median(xa) / statistics.median(xb)
        print(f"| {label} | {fmt(xa)} | {fmt(xb)} | {ratios[key]:.2f} |")

    print(f"\n## First uses after the import (median of {len(first_use['validate'])} fresh processes)\n")
    print("| Step | Time |")
    print("|---|--:|")
    steps = {
        "validate": "first `validate_or_raise(ExtendedModelInfo, ...)`",
        "construct": "first `EnhancedModelRegistry(...)`",
        "register": "its first `register_model(...)`",
        "register again": "a second `register_model(...)`",
    }
    for key, label in steps.items():
        print(f"| {label} | {fmt(first_use[key], 2)} |")

    ratio = ratios["wall"]
    verdict = "within" if ratio <= TARGET else "OVER"
    print(
        f"\n- (a)/(b) = {ratio:.2f} whole-process wall time ({verdict} the {TARGET:g}x target); CPU time "
        f"{ratios['cpu']:.2f}; the imports alone, without the interpreter's start-up, {ratios['inside']:.2f}"
    )
    return 0 if ratio <= TARGET or not args.check else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=None, help="runs of each command (default: 20)")
    parser.add_argument("--quick", action="store_true", help="5 runs of each command (a smoke run)")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted runs of each command first (default: 2)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the wall-time ratio is over the target")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 5 if args.quick else 20
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (the first run writes the bytecode cache)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
