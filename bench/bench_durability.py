"""save() and load() of 5,000 models with usage, a save that merges another writer's, and record_usage latency
while autosave runs every 0.1 s.

Run: python bench/bench_durability.py [--models 5000] [--records 200000]
Prints Markdown. The registry's lock is held only to capture state (never while building entries, serialising or
writing), so record_usage's p99 with autosave should stay within 2x of its p99 without.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from noa_ai_provider import EnhancedModelRegistry


def make_models(count: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"model-{i}",
            "name": f"Model {i}",
            "provider": ("openai", "claude", "llama.cpp", "custom")[i % 4],
            "version": f"1.{i % 10}.0",
            "contextWindow": 8192 * (1 + i % 16),
            "capabilities": ["chat_completion", "function_calling"][: 1 + i % 2],
            "cost": {"inputTokens": "0.0025", "outputTokens": "0.01", "cachedInputTokens": "0.00125"},
            "rateLimit": {"requestsPerMinute": 10_000, "tokensPerMinute": 10_000_000} if i % 2 else None,
            "metadata": {"tags": ["bench", f"group-{i % 7}"], "owner": "bench"},
        }
        for i in range(count)
    ]


def timed(fn: object, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def latencies(registry: EnhancedModelRegistry, keys: list[str], records: int) -> list[float]:
    out = []
    clock = time.perf_counter
    for i in range(records):
        key = keys[i % len(keys)]
        start = clock()
        registry.record_usage(key, 1000, 200)
        out.append(clock() - start)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="noa-bench-") as name:
        run(args, Path(name))


def run(args: argparse.Namespace, folder: Path) -> None:
    models = make_models(args.models)

    path = folder / "registry.json"
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as registry:
        keys = registry.register_models(models)
        for i, key in enumerate(keys):
            registry.record_usage(key, 1000 + i, 200)
        save_median, save_best = timed(registry.save, 5)
    size = path.stat().st_size

    def load_once() -> None:
        with EnhancedModelRegistry(persistence_path=path, auto_save=False) as fresh:
            fresh.load()

    load_median, load_best = timed(load_once, 5)

    # A merging save: another writer saved since, so the file is read, merged and written under the lock.
    other = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    this = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    other.load()
    this.load()
    merge_times = []
    for round_ in range(5):
        other.record_usage(keys[round_], 10, 10)
        other.save()
        this.record_usage(keys[round_], 10, 10)
        start = time.perf_counter()
        this.save()
        merge_times.append(time.perf_counter() - start)
    other.close()
    this.close()
    merge_median, merge_best = statistics.median(merge_times), min(merge_times)

    print(f"## Durability benchmark ({args.models:,} models with usage)\n")
    print("| operation | median | best | notes |\n|---|--:|--:|---|")
    print(f"| save() | {save_median * 1000:.0f} ms | {save_best * 1000:.0f} ms | {size / 2**20:.1f} MiB, fsynced |")
    print(f"| load() into an empty registry | {load_median * 1000:.0f} ms | {load_best * 1000:.0f} ms | |")
    print(
        f"| save() merging another writer's save | {merge_median * 1000:.0f} ms | {merge_best * 1000:.0f} ms "
        "| read + merge + write |"
    )

    rows = []
    for label, auto in (("without autosave", False), ("autosave every 0.1 s", True)):
        target = folder / f"latency-{int(auto)}.json"
        registry = EnhancedModelRegistry(persistence_path=target, auto_save=auto, auto_save_interval=0.1)
        saves = [0]
        registry.on("registry-saved", lambda sender, saves=saves, **kw: saves.__setitem__(0, saves[0] + 1))
        keys = registry.register_models(models)
        values = latencies(registry, keys, args.records)
        registry.close()
        rows.append((label, values, saves[0]))
    print("\n### record_usage latency while saving\n")
    print("| run | p50 | p99 | p99.9 | max | saves during the run |\n|---|--:|--:|--:|--:|--:|")
    for label, values, saves in rows:
        print(
            f"| {label} | {pct(values, 0.5) * 1e6:.1f} µs | {pct(values, 0.99) * 1e6:.1f} µs | "
            f"{pct(values, 0.999) * 1e6:.1f} µs | {max(values) * 1e6:.0f} µs | {saves} |"
        )
    ratio = pct(rows[1][1], 0.99) / pct(rows[0][1], 0.99)
    verdict = "met" if ratio <= 2 else "NOT met"
    print(f"\np99 with autosave / p99 without: {ratio:.2f} (target <= 2: {verdict})")
    print(f"\n(threads alive at the end: {threading.active_count()})")


if __name__ == "__main__":
    main()
