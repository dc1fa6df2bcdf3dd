#!/usr/bin/env python
"""The registry's hot paths in two source trees, side by side in one run: a git ref (before) and the working tree.

Issue 12 split the registry and put its live state behind a store; the split must not cost the hot path. This
times ``acquire + commit(0)``, ``acquire + cancel()`` and ``record_usage`` at cost 1 (one model with request and
token limits that never bind, as in ``bench_ratelimit.py``), each variant in a fresh subprocess whose
``PYTHONPATH`` puts the tree's ``src`` first, the two trees interleaved over the repeats; and ``limits``'
``MovingWindowRateLimiter.hit`` in the same run, for the ratio against the anchor.

    python bench/bench_before_after.py                    # before = 27eb60c (the commit before the split)
    python bench/bench_before_after.py --before HEAD~3 --ops 100000 --repeats 7
    python bench/bench_before_after.py --quick            # 20k operations, 3 repeats

The ``before`` tree is extracted with ``git archive`` into a temporary folder; each worker prints where it imported
``noa_ai_provider`` from, and the run stops if that is not the tree it was meant to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from _common import cpu_model

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("acquire-commit", "acquire-cancel", "record-usage")

WORKER = r"""
import json, sys, tempfile, time
from pathlib import Path
variant, ops = sys.argv[1], int(sys.argv[2])
if variant == "limits":
    from limits import RateLimitItemPerMinute
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter
    hit, item = MovingWindowRateLimiter(MemoryStorage()).hit, RateLimitItemPerMinute(ops + 1)
    start = time.perf_counter()
    for _ in range(ops):
        if not hit(item, "bench"):
            raise SystemExit("limits refused a hit that fits")
    print(json.dumps({"seconds": time.perf_counter() - start, "from": "limits"}))
    raise SystemExit(0)
import noa_ai_provider
from noa_ai_provider import EnhancedModelRegistry
registry = EnhancedModelRegistry(
    persistence_path=Path(tempfile.mkdtemp()) / "r.json", auto_save=False, auto_load_config=False
)
key = registry.register_model({
    "id": "m", "name": "m", "provider": "openai", "version": "1.0.0",
    "cost": {"inputTokens": "2.5", "outputTokens": "10", "currency": "USD", "per": 1000000},
    "rateLimit": {"requestsPerMinute": ops + 1, "tokensPerMinute": ops + 1},
})
acquire, record = registry.acquire, registry.record_usage
start = time.perf_counter()
if variant == "acquire-commit":
    for _ in range(ops):
        acquire(key, 1).commit(0)
elif variant == "acquire-cancel":
    for _ in range(ops):
        acquire(key, 1).cancel()
else:
    for _ in range(ops):
        record(key, 1, 0)
seconds = time.perf_counter() - start
assert registry.get_usage_stats(key).request_count == (0 if variant == "acquire-cancel" else ops)
print(json.dumps({"seconds": seconds, "from": noa_ai_provider.__file__}))
"""


def run(variant: str, ops: int, src: Path | None) -> float:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", WORKER, variant, str(ops)], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    if src is not None and not result["from"].startswith(str(src)):
        raise SystemExit(f"error: the worker imported {result['from']}, not the tree under {src}")
    return float(result["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="27eb60c", help="git ref of the tree to compare with (default 27eb60c)")
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20k operations, 3 repeats")
    args = parser.parse_args()
    ops, repeats = (20_000, 3) if args.quick else (args.ops, args.repeats)
    with tempfile.TemporaryDirectory(prefix="noa-before-") as tmp:
        archive = Path(tmp) / "before.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), args.before, "src"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        trees = {"before": Path(tmp) / "src", "after": ROOT / "src"}
        times: dict[tuple[str, str], list[float]] = {}
        for repeat in range(repeats):
            order = list(trees.items()) if repeat % 2 == 0 else list(reversed(trees.items()))
            times.setdefault(("limits", "limits"), []).append(run("limits", ops, None))
            for variant in VARIANTS:
                for name, src in order:
                    times.setdefault((variant, name), []).append(run(variant, ops, src))
            print(f"[{repeat + 1}/{repeats}] done", file=sys.stderr)
    rate = {k: ops / statistics.median(v) for k, v in times.items()}
    anchor = rate[("limits", "limits")]
    print(f"# Before/after: {args.before} against the working tree\n")
    print(f"- {cpu_model()}, Python {sys.version.split()[0]}; {ops:,} operations per run, median of {repeats}")
    print(f"- limits MovingWindowRateLimiter.hit, same run: {anchor:,.0f} ops/s\n")
    print("| variant (cost 1) | before ops/s | after ops/s | after/before | after × limits moving window |")
    print("|---|--:|--:|--:|--:|")
    for variant in VARIANTS:
        before, after = rate[(variant, "before")], rate[(variant, "after")]
        print(f"| {variant} | {before:,.0f} | {after:,.0f} | {after / before:.2f} | {after / anchor:.2f}× |")


if __name__ == "__main__":
    main()
