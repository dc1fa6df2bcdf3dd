#!/usr/bin/env python
"""Side-by-side benchmark of noa's rate limiting against the ``limits`` library (5.x, in memory).

The spec: against ``limits``' ``MovingWindowRateLimiter`` and ``SlidingWindowCounterRateLimiter`` on
``MemoryStorage``, 200k operations on one key that always passes, at cost 1 and cost 500: throughput overall and
for the first and last 20k. Targets: at least 3x the moving window overall at cost 1, at least 10x at cost 500,
and the last 20k no slower than 0.8x the first 20k.

    python bench/bench_ratelimit.py                 # full run: 200k ops per variant, costs 1 and 500, 3 repeats
    python bench/bench_ratelimit.py --quick         # smoke run: 20k ops, 1 repeat
    python bench/bench_ratelimit.py --profile       # also print cProfile hotspots of noa's acquire + commit
    python bench/bench_ratelimit.py --before 27eb60c  # also run noa's variants on that commit's src: before/after

Every variant runs in a fresh subprocess of the same interpreter (so peak memory is its own and no variant
inherits another's heap), one after the other on the same machine, interleaved across repeats. All operations of
a run fall within one 60 s window: a variant still running after ``--budget`` seconds (default 50) is stopped and
reported, with its op count, as capped; ratios against it then compare throughput over the same number of
operations. Needs ``limits>=5,<6`` (``pip install 'limits>=5,<6'``); the package itself does not depend on it.

``--before REF`` extracts ``src/`` of that git ref into a temporary directory (``git archive REF src | tar -x``) and
runs every noa variant a second time on it, labelled ``[before: REF]``: in a fresh subprocess of the same
interpreter whose ``PYTHONPATH`` puts the old ``src`` first (the worker checks, and prints, that
``noa_ai_provider`` was imported from there), each right next to its counterpart on the working tree (in turn first
and second over the repeats). The report then gains a before/after table: the ratio after/before of each noa
variant and cost, over the same number of operations. Issue 12: the store split must not cost the hot path.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import noa_ai_provider
from _common import REPO_ROOT, cpu_model  # also makes the package importable
from noa_ai_provider import EnhancedModelRegistry, RateLimitCheck, RateLimitConfig, RateLimitExceeded
from noa_ai_provider.ratelimit import ModelLimiter

try:
    import limits
    import limits.storage.memory
    from limits import RateLimitItem, RateLimitItemPerMinute
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter
except ImportError:
    raise SystemExit("error: this benchmark needs the limits library: pip install 'limits>=5,<6'") from None

CHUNK = 20_000  # "the first and the last 20k"
STEP = 500  # a timestamp every STEP operations (throughput over any prefix, and the budget check)
WINDOW = 60.0
IDENT = "bench"  # the one key of the limits variants

# --------------------------------------------------------------------------- the variants


@dataclass(frozen=True)
class Variant:
    name: str  # command-line / JSON id
    label: str  # shown in the tables
    side: str  # "limits" or "noa"
    before: str | None = None  # the git ref whose src/ this variant runs on (None: the working tree)
    base: str = ""  # for a before variant: the name of the variant it repeats (what its worker runs)

    @property
    def worker_name(self) -> str:
        return self.base or self.name

    def on_before(self, ref: str) -> Variant:
        """The same variant on the ``src`` of git ref ``ref``."""
        return Variant(f"{self.name}@before", f"{self.label} [before: {ref}]", self.side, ref, self.name)


VARIANTS = [
    Variant("mw", "limits MovingWindowRateLimiter.hit", "limits"),
    Variant("swc", "limits SlidingWindowCounterRateLimiter.hit", "limits"),
    Variant("acquire-commit", "noa registry.acquire + commit(0)", "noa"),
    Variant("acquire-cancel", "noa registry.acquire + cancel()", "noa"),
    Variant("reserve-settle", "noa ModelLimiter.reserve + settle", "noa"),
    Variant("record-usage", "noa registry.record_usage", "noa"),
]
BY_NAME = {v.name: v for v in VARIANTS}
HEADLINE = "acquire-commit"  # noa's full admit + record path: what the targets are judged on
ANCHOR_MW, ANCHOR_SWC = "mw", "swc"


class BenchError(RuntimeError):
    """A hit that should have passed was refused, or a check after the run failed."""


def _noa_model(ops: int, cost: int) -> dict[str, Any]:
    return {
        "id": "bench-model",
        "name": "bench-model",
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": "2.5", "outputTokens": "10", "currency": "USD", "per": 1_000_000},
        "rateLimit": {"requestsPerMinute": ops + 1, "tokensPerMinute": ops * cost + 1},
    }


Body = Callable[[int], None]  # performs n operations


@dataclass
class Prepared:
    body: Body
    verify: Callable[[int], str]  # after `done` operations: what was checked (raises BenchError when wrong)
    cleanup: Callable[[], None] = lambda: None


def prepare(variant: str, ops: int, cost: int, tmpdir: Path) -> Prepared:
    """Build the limiter or registry of ``variant`` for ``ops`` operations of ``cost`` that must all pass."""
    if variant in (ANCHOR_MW, ANCHOR_SWC):
        storage = MemoryStorage()
        limiter: RateLimiter = (
            MovingWindowRateLimiter(storage) if variant == ANCHOR_MW else SlidingWindowCounterRateLimiter(storage)
        )
        item = RateLimitItemPerMinute(ops * cost + 1)
        hit = limiter.hit

        def limits_body(n: int) -> None:
            for _ in range(n):
                if not hit(item, IDENT, cost=cost):
                    raise BenchError(f"limits {variant} refused a hit that fits")

        def limits_verify(done: int) -> str:
            remaining = limiter.get_window_stats(item, IDENT).remaining
            expected = item.amount - done * cost
            if variant == ANCHOR_MW:
                if remaining != expected:
                    raise BenchError(f"moving window holds {item.amount - remaining}, expected {done * cost}")
                return f"all {done:,} hits True; the window still holds all {done * cost:,} units"
            return f"all {done:,} hits True; window stats remaining {remaining:,} (exact would be {expected:,})"

        def limits_cleanup() -> None:
            storage.reset()

        return Prepared(limits_body, limits_verify, limits_cleanup)

    if variant == "reserve-settle":
        model_limiter = ModelLimiter(RateLimitConfig(requests_per_minute=ops + 1, tokens_per_minute=ops * cost + 1))
        reserve, settle, clock = model_limiter.reserve, model_limiter.settle, time.time

        def primitive_body(n: int) -> None:
            for _ in range(n):
                handle = reserve(clock(), cost, 0)
                if isinstance(handle, RateLimitCheck):
                    raise BenchError(f"ModelLimiter refused a reservation that fits: {handle}")
                settle(handle, cost, 0)

        def primitive_verify(done: int) -> str:
            entries = model_limiter.entry_count()
            if entries != 2 * done:
                raise BenchError(f"the windows hold {entries} entries, expected {2 * done}")
            return f"all {done:,} reservations admitted; the windows still hold all {entries:,} entries"

        return Prepared(primitive_body, primitive_verify)

    registry = EnhancedModelRegistry(persistence_path=tmpdir / "registry.json", auto_save=False, auto_load_config=False)
    key = registry.register_model(_noa_model(ops, cost))
    acquire, record_usage = registry.acquire, registry.record_usage
    if variant == "acquire-commit":

        def body(n: int) -> None:
            for _ in range(n):
                acquire(key, cost).commit(0)  # raises RateLimitExceeded when refused

    elif variant == "acquire-cancel":

        def body(n: int) -> None:
            for _ in range(n):
                acquire(key, cost).cancel()

    elif variant == "record-usage":

        def body(n: int) -> None:
            for _ in range(n):
                record_usage(key, cost, 0)

    else:
        raise SystemExit(f"error: unknown variant {variant!r}")

    def registry_verify(done: int) -> str:
        # The token window must hold exactly done * cost: the rest of the limit fits, one token more does not.
        limit = ops * cost + 1
        held = 0 if variant == "acquire-cancel" else done * cost
        if not registry.check_rate_limit(key, limit - held).allowed or (
            registry.check_rate_limit(key, limit - held + 1).allowed
        ):
            raise BenchError(f"the token window does not hold {held} tokens: entries expired or leaked")
        if variant == "acquire-cancel":
            return f"all {done:,} acquires admitted; the windows are empty afterwards"
        stats = registry.get_usage_stats(key)
        assert stats is not None
        if stats.request_count != done:
            raise BenchError(f"usage counts {stats.request_count} requests, expected {done}")
        what = "acquires admitted and recorded" if variant == "acquire-commit" else "requests recorded"
        return f"all {done:,} {what}; the token window still holds all {held:,} tokens"

    return Prepared(body, registry_verify, registry.close)


# --------------------------------------------------------------------------- the worker (one variant, one run)


def proc_status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib() -> int:
    hwm = proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def imported_from(expect_src: str | None) -> str:
    """Where ``noa_ai_provider`` was imported from; with ``expect_src``, stop unless it is inside that tree."""
    noa_file = str(Path(noa_ai_provider.__file__ or "?").resolve())
    if expect_src is not None:
        print(f"worker: noa_ai_provider imported from {noa_file}", file=sys.stderr, flush=True)
        if not Path(noa_file).is_relative_to(Path(expect_src).resolve()):
            raise SystemExit(f"error: noa_ai_provider was imported from {noa_file}, not from {expect_src}")
    return noa_file


def worker(
    variant: str, ops: int, cost: int, step: int, budget: float, expect_src: str | None = None
) -> dict[str, Any]:
    """Run ``ops`` operations (or fewer when past ``budget`` seconds) and return the timings as JSON data."""
    noa_file = imported_from(expect_src)
    with tempfile.TemporaryDirectory(prefix="noa-bench-rl-") as tmp:
        prepared = prepare(variant, ops, cost, Path(tmp))
        body = prepared.body
        gc.collect()
        rss_before = proc_status_kib("VmRSS") or 0
        perf = time.perf_counter
        marks = [0.0]
        done = 0
        full_gcs: list[tuple[float, float]] = []  # (start, seconds) of each full (generation 2) collection
        gc_start = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if info["generation"] == 2:
                if phase == "start":
                    gc_start[0] = perf()
                else:
                    full_gcs.append((gc_start[0] - start, perf() - gc_start[0]))

        gc.callbacks.append(on_gc)
        start = perf()
        while done < ops:
            body(step)
            done += step
            marks.append(perf() - start)
            if marks[-1] > budget and done < ops:
                break
        gc.callbacks.remove(on_gc)
        hwm = peak_rss_kib()
        verified = prepared.verify(done)
        prepared.cleanup()
    return {
        "variant": variant,
        "cost": cost,
        "ops": ops,
        "done": done,
        "step": step,
        "marks": marks,
        "rss_before_kib": rss_before,
        "peak_rss_kib": hwm,
        "verified": verified,
        "full_gcs": full_gcs,
        "noa_file": noa_file,
    }


# --------------------------------------------------------------------------- aggregation


@dataclass
class Run:
    done: int
    step: int
    marks: list[float]  # marks[i]: seconds after i * step operations
    rss_before_kib: int
    peak_rss_kib: int
    verified: str
    full_gcs: list[tuple[float, float]]  # (start, seconds) of the full collections during the timed loop
    noa_file: str = ""  # where the worker imported noa_ai_provider from

    def seconds(self, n: int) -> float:
        """Seconds taken by the first ``n`` operations (``n`` a multiple of ``step``)."""
        return self.marks[n // self.step]

    def gc_seconds(self, lo: int, hi: int) -> float:
        """Seconds of full collections that started while operations ``lo`` to ``hi`` ran."""
        t_lo, t_hi = self.seconds(lo), self.seconds(hi)
        return sum(secs for at, secs in self.full_gcs if t_lo <= at < t_hi)

    def rate(self, lo: int, hi: int, *, without_gc: bool = False) -> float:
        """Operations per second over operations ``lo`` to ``hi`` (optionally not counting full-GC pauses)."""
        pause = self.gc_seconds(lo, hi) if without_gc else 0.0
        return (hi - lo) / (self.seconds(hi) - self.seconds(lo) - pause)


@dataclass
class Summary:
    variant: Variant
    cost: int
    ops: int  # operations compared (the minimum over repeats)
    requested: int
    chunk: int
    runs: list[Run] = field(default_factory=list)

    @property
    def capped(self) -> bool:
        return self.ops < self.requested

    def rate_at(self, n: int) -> float:
        """Median over repeats of the throughput of the first ``n`` operations."""
        return statistics.median(n / run.seconds(n) for run in self.runs)

    @property
    def overall(self) -> float:
        return self.rate_at(self.ops)

    @property
    def first(self) -> float:
        return statistics.median(run.rate(0, self.chunk) for run in self.runs)

    @property
    def last(self) -> float:
        return statistics.median(run.rate(self.ops - self.chunk, self.ops) for run in self.runs)

    def last_first_without_gc(self) -> float:
        """The last/first ratio when the full-GC pauses inside the two chunks are not counted."""
        first = statistics.median(run.rate(0, self.chunk, without_gc=True) for run in self.runs)
        last = statistics.median(run.rate(self.ops - self.chunk, self.ops, without_gc=True) for run in self.runs)
        return last / first

    @property
    def full_gcs(self) -> str:
        """Median count and seconds of the full collections over the compared operations."""
        counts = [sum(1 for at, _ in run.full_gcs if at < run.seconds(self.ops)) for run in self.runs]
        secs = [run.gc_seconds(0, self.ops) for run in self.runs]
        return f"{statistics.median(counts):g} / {statistics.median(secs):.2f} s"

    @property
    def elapsed(self) -> float:
        return max(run.seconds(self.ops) for run in self.runs)

    @property
    def peak_mib(self) -> float:
        return max(run.peak_rss_kib for run in self.runs) / 1024

    @property
    def growth_mib(self) -> float:
        return max(run.peak_rss_kib - run.rss_before_kib for run in self.runs) / 1024


def chunk_for(ops: int, step: int) -> int:
    """20k when the run has room for two of them, else a tenth of the run (a multiple of ``step``)."""
    if ops >= 2 * CHUNK:
        return CHUNK
    return max(step, ops // 10 // step * step)


# --------------------------------------------------------------------------- the correctness contrast


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:  # stands in for the `time` module seen by limits.storage.memory
        return self.now

    def __call__(self) -> float:  # noa's clock
        return self.now


@contextmanager
def limits_clock(clock: FakeClock) -> Iterator[None]:
    """limits takes no clock argument: ``MemoryStorage`` calls ``time.time()`` of its module, so swap that."""
    with mock.patch.object(limits.storage.memory, "time", clock):
        yield


def _max_in_window(times: list[float]) -> int:
    return max((sum(1 for s in times if t - WINDOW < s <= t) for t in times), default=0)


def contrast_window(out: list[str]) -> None:
    t0 = 1_700_000_040.0  # a minute boundary: limits' counter windows are fixed minutes of the epoch
    limit = 10
    phases = [(59.0, 10), (61.0, 10), (118.0, 10)]  # (seconds after t0, attempts)
    rows: list[tuple[str, list[int], int]] = []
    for name in (ANCHOR_SWC, ANCHOR_MW):
        clock = FakeClock(t0)
        with limits_clock(clock):
            storage = MemoryStorage()
            limiter: RateLimiter = (
                SlidingWindowCounterRateLimiter(storage) if name == ANCHOR_SWC else MovingWindowRateLimiter(storage)
            )
            item = RateLimitItemPerMinute(limit)
            admitted_at: list[float] = []
            counts = []
            for offset, attempts in phases:
                clock.now = t0 + offset
                n = sum(limiter.hit(item, "k") for _ in range(attempts))
                counts.append(n)
                admitted_at += [offset] * n
            storage.reset()
        rows.append((BY_NAME[name].label.removesuffix(".hit"), counts, _max_in_window(admitted_at)))
    clock = FakeClock(t0)
    with tempfile.TemporaryDirectory(prefix="noa-bench-rl-") as tmp:
        registry = EnhancedModelRegistry(
            persistence_path=Path(tmp) / "r.json", auto_save=False, auto_load_config=False, clock=clock
        )
        model = _noa_model(0, 0)
        model["rateLimit"] = {"requestsPerMinute": limit}
        key = registry.register_model(model)
        admitted_at = []
        counts = []
        for offset, attempts in phases:
            clock.now = t0 + offset
            n = 0
            for _ in range(attempts):
                try:
                    registry.acquire(key, 1).commit(0)
                except RateLimitExceeded:
                    continue
                n += 1
            counts.append(n)
            admitted_at += [offset] * n
        registry.close()
    rows.append(("noa registry.acquire", counts, _max_in_window(admitted_at)))

    out.append(f"### A limit of {limit} requests per minute, 10 attempts at each of t = 59 s, 61 s and 118 s\n")
    out.append(
        "limits has no clock parameter: the demo swaps the `time` module that `limits.storage.memory` calls "
        "(`unittest.mock.patch.object`); noa's registry takes `clock=`. t = 0 is a minute boundary of the epoch "
        "(the sliding window counter's fixed windows are minutes of the epoch).\n"
    )
    out.append("| limiter | admitted at 59 s | at 61 s | at 118 s | most admitted in one 60 s window |")
    out.append("|---|--:|--:|--:|--:|")
    for label, counts, most in rows:
        flag = f"**{most}** (limit {limit})" if most > limit else str(most)
        out.append(f"| {label} | {counts[0]} | {counts[1]} | {counts[2]} | {flag} |")
    out.append(
        "\nThe sliding window counter weights the previous fixed minute as if its hits were spread evenly: at 61 s "
        "it counts the 10 hits of 59 s as 10 × 59/60 = 9.8 (floored to 9) and admits one more; at 118 s as "
        "10 × 2/60 = 0.3 and admits 9 more, so the window (58 s, 118 s] holds twice the limit. The moving window "
        "and noa keep an exact log and admit nothing until the 59 s hits leave the window.\n"
    )


def contrast_atomic(out: list[str]) -> None:
    clock = FakeClock(1_700_000_040.0)
    rpm, tpm = 5, 1000
    requests = [900, 200, 200, 200, 200, 50]  # tokens per request
    with limits_clock(clock):
        storage = MemoryStorage()
        limiter = MovingWindowRateLimiter(storage)
        per_request: RateLimitItem = RateLimitItemPerMinute(rpm)
        per_token: RateLimitItem = RateLimitItemPerMinute(tpm)
        limits_outcome = []
        for tokens in requests:
            # One limit after the other, as limits #328 suggests for several limits: all() stops at the first
            # refusal, but the limits before it have already been hit.
            ok = all(limiter.hit(item, "tenant", cost=c) for item, c in ((per_request, 1), (per_token, tokens)))
            limits_outcome.append(ok)
        used_requests = rpm - limiter.get_window_stats(per_request, "tenant").remaining
        used_tokens = tpm - limiter.get_window_stats(per_token, "tenant").remaining
        storage.reset()
    with tempfile.TemporaryDirectory(prefix="noa-bench-rl-") as tmp:
        registry = EnhancedModelRegistry(
            persistence_path=Path(tmp) / "r.json", auto_save=False, auto_load_config=False, clock=clock
        )
        model = _noa_model(0, 0)
        model["rateLimit"] = {"requestsPerMinute": rpm, "tokensPerMinute": tpm}
        key = registry.register_model(model)
        noa_outcome = []
        reasons = []
        for tokens in requests:
            try:
                registry.acquire(key, tokens).commit(0)
            except RateLimitExceeded as exc:
                noa_outcome.append(False)
                reasons.append(exc.limit)
                continue
            noa_outcome.append(True)
        stats = registry.get_usage_stats(key)
        assert stats is not None
        noa_requests = stats.request_count
        noa_tokens = stats.total_input_tokens
        room = registry.check_rate_limit(key, 0).allowed
        registry.close()

    def show(outcome: list[bool]) -> str:
        return ", ".join(f"{t} {'✓' if ok else '✗'}" for t, ok in zip(requests, outcome, strict=True))

    out.append(f"### Two limits at once: {rpm} requests and {tpm:,} tokens per minute\n")
    out.append(
        f"Six requests in the same instant, of {', '.join(map(str, requests))} tokens. limits has no multi-limit "
        "hit (issue #328: iterate over the limits), so each request hits the request limit, then the token limit. "
        "noa's `acquire` takes every limit of the model at once or none.\n"
    )
    out.append("| limiter | admitted (tokens ✓/✗) | requests counted | tokens counted |")
    out.append("|---|---|--:|--:|")
    out.append(
        f"| limits MovingWindowRateLimiter, hit one limit after the other | {show(limits_outcome)} "
        f"| {used_requests} of {rpm} | {used_tokens:,} |"
    )
    out.append(f"| noa registry.acquire | {show(noa_outcome)} | {noa_requests} of {rpm} | {noa_tokens:,} |")
    served = sum(limits_outcome)
    out.append(
        f"\nWith limits the four refused 200-token requests each consumed a request slot, so {used_requests} of "
        f"{rpm} slots are gone after {served} served request{'s' if served != 1 else ''} and the 50-token request, "
        f"which fits the token limit, is refused. noa refused them on `{reasons[0] if reasons else '-'}` without "
        f"touching the request window and admitted the 50-token request; {rpm - noa_requests} request slots are "
        f"still free (`check_rate_limit(key, 0)`: {'allowed' if room else 'refused'}). Calling `test()` on every "
        "limit before hitting them avoids the waste in one thread, but test-then-hit is two steps: another thread "
        "can take the capacity in between.\n"
    )


def machine_lines() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    total = ""
    try:
        mem_kib = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
        )
        total = f", {mem_kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable){total}",
        f"- limits {limits.__version__}, noa-ai-provider {getattr(noa_ai_provider, '__version__', '?')}",
    ]


def run_worker(variant: str, ops: int, cost: int, step: int, budget: float, src: Path | None = None) -> Run:
    """Run ``variant`` in a fresh subprocess of this interpreter; with ``src``, on the package in that tree."""
    env = None
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        variant,
        "--ops",
        str(ops),
        "--costs",
        str(cost),
        "--step",
        str(step),
        "--budget",
        str(budget),
    ]
    if src is not None:
        cmd += ["--expect-src", str(src)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 600, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"error: worker {variant} cost {cost} failed:\n{proc.stderr}")
    if src is not None:
        sys.stderr.write(textwrap.indent(proc.stderr, "    "))
    data = json.loads(proc.stdout)
    return Run(
        data["done"],
        data["step"],
        data["marks"],
        data["rss_before_kib"],
        data["peak_rss_kib"],
        data["verified"],
        [(at, secs) for at, secs in data["full_gcs"]],
        data.get("noa_file", ""),
    )


def git(*args: str) -> str:
    """Output of a read-only git command on this repository."""
    try:
        proc = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SystemExit(f"error: --before needs git: {exc}") from None
    if proc.returncode != 0:
        raise SystemExit(f"error: git {' '.join(args)} failed:\n{proc.stderr.strip()}")
    return proc.stdout.strip()


def extract_src(ref: str, into: Path) -> tuple[Path, str]:
    """``git archive REF src | tar -x -C into``: the ``src`` of ``ref`` and a description of the commit."""
    try:
        sha = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SystemExit:
        raise SystemExit(f"error: --before {ref}: not a commit of {REPO_ROOT}") from None
    describe = git("show", "-s", "--format=%h %s", sha)
    archive = subprocess.Popen(["git", "-C", str(REPO_ROOT), "archive", sha, "src"], stdout=subprocess.PIPE)
    assert archive.stdout is not None
    try:
        untarred = subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=False).returncode
    except OSError as exc:  # no tar
        archive.kill()
        raise SystemExit(f"error: --before needs tar: {exc}") from None
    finally:
        archive.stdout.close()
    if archive.wait() != 0 or untarred != 0:
        raise SystemExit(f"error: could not extract src/ of {ref} ({sha[:12]}) into {into}")
    src = into / "src"
    if not (src / "noa_ai_provider" / "__init__.py").is_file():
        raise SystemExit(f"error: {ref} ({sha[:12]}) has no src/noa_ai_provider/__init__.py")
    return src, describe


def working_tree() -> str:
    """HEAD and whether ``src`` has changes on top of it (read-only: takes no index lock, writes nothing)."""
    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("--no-optional-locks", "status", "--porcelain", "--", "src").splitlines()
    except SystemExit:
        return "the working tree"
    if not changed:
        return f"the working tree (HEAD {head}, src unchanged)"
    return f"the working tree (HEAD {head} + {len(changed)} changed or new file(s) in src)"


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ops(n: int) -> str:
    return f"{n // 1000:,}k" if n % 1000 == 0 else f"{n:,}"


def profile_headline(costs: list[int], ops: int, top: int) -> list[str]:
    out = []
    for cost in costs:
        with tempfile.TemporaryDirectory(prefix="noa-bench-rl-") as tmp:
            prepared = prepare(HEADLINE, ops, cost, Path(tmp))
            gc.collect()
            prof = cProfile.Profile()
            prof.enable()
            prepared.body(ops)
            prof.disable()
            prepared.cleanup()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
        out.append(f"### {BY_NAME[HEADLINE].label}, cost {cost}, {ops:,} ops (cProfile, by own time)\n")
        out.append("```\n" + buf.getvalue().strip() + "\n```\n")
    return out


@dataclass(frozen=True)
class Before:
    ref: str  # as given to --before
    src: Path  # its src/, extracted into a temporary directory
    commit: str  # abbreviated hash and subject


def run(args: argparse.Namespace) -> int:
    if args.before is None:
        return run_variants(args, None)
    with tempfile.TemporaryDirectory(prefix="noa-bench-rl-before-") as tmp:
        src, commit = extract_src(args.before, Path(tmp))
        return run_variants(args, Before(args.before, src, commit))


def run_order(pairs: dict[str, Variant], rep: int) -> list[Variant]:
    """The variants of one repeat: each before variant right next to its own, first on every other repeat."""
    order: list[Variant] = []
    for variant in VARIANTS:
        order.append(variant)
        if variant.name in pairs:
            order.insert(len(order) - (rep % 2 == 1), pairs[variant.name])
    return order


def run_variants(args: argparse.Namespace, before: Before | None) -> int:
    ops: int = args.ops
    costs: list[int] = args.costs
    step = math.gcd(STEP, ops, chunk_for(ops, STEP))
    repeats: int = args.repeats
    out: list[str] = []
    # With --before: every noa variant again on the old src (table order: each right after its own).
    pairs = {v.name: v.on_before(before.ref) for v in VARIANTS if v.side == "noa"} if before is not None else {}
    variants = run_order(pairs, 0)

    def emit(*lines: str) -> None:
        print(*lines, sep="\n", flush=True)

    emit("## Machine\n", *machine_lines())
    emit(
        "",
        f"- {fmt_ops(ops)} operations per variant and cost, costs {', '.join(map(str, costs))}; median of "
        f"{repeats} repeat(s), each variant in a fresh subprocess; budget {args.budget:g} s per run",
    )
    if before is not None:
        emit(
            f"- before: `{before.ref}` = {before.commit} (its src/ extracted with `git archive`); "
            f"after: {working_tree()}"
        )

    summaries: dict[tuple[str, int], Summary] = {}
    for rep in range(repeats):
        for cost in costs:
            for variant in run_order(pairs, rep):
                key = (variant.name, cost)
                summary = summaries.get(key)
                want = ops if summary is None else summary.ops  # a capped variant reruns its first count
                print(f"[{rep + 1}/{repeats}] cost {cost}: {variant.label} ({want:,} ops) ...", file=sys.stderr)
                src = before.src if before is not None and variant.before is not None else None
                result = run_worker(variant.worker_name, want, cost, step, args.budget, src)
                if summary is None:
                    summary = summaries[key] = Summary(variant, cost, result.done, ops, 0)
                summary.runs.append(result)
                summary.ops = min(summary.ops, result.done)
    for summary in summaries.values():
        summary.chunk = chunk_for(summary.ops, step)

    # ---- throughput table
    out.append(f"\n## Throughput ({fmt_ops(ops)} operations on one key that always passes)\n")
    out.append(
        "| cost | variant | ops | seconds | ops/s overall | first chunk ops/s | last chunk ops/s | last/first "
        "| full GCs | peak RSS | RSS growth |"
    )
    out.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    notes: list[str] = []
    for cost in costs:
        for variant in variants:
            s = summaries[(variant.name, cost)]
            ops_cell = fmt_ops(s.ops) + (" (capped)" if s.capped else "")
            chunk = "" if s.chunk == CHUNK else f" ({fmt_ops(s.chunk)})"
            out.append(
                f"| {cost} | {variant.label} | {ops_cell} | {s.elapsed:.2f} | {fmt_rate(s.overall)} "
                f"| {fmt_rate(s.first)}{chunk} | {fmt_rate(s.last)}{chunk} | {s.last / s.first:.2f} "
                f"| {s.full_gcs} | {s.peak_mib:,.0f} MiB | {s.growth_mib:,.0f} MiB |"
            )
            if s.capped:
                notes.append(
                    f"- {variant.label} at cost {cost} was stopped after {s.ops:,} of {ops:,} operations "
                    f"({s.elapsed:.1f} s, budget {args.budget:g} s): all {ops:,} would not fit in one 60 s window. "
                    "Its ratios below compare the same number of operations."
                )
            elif s.elapsed > WINDOW - 5:
                notes.append(f"- {variant.label} at cost {cost} took {s.elapsed:.1f} s, close to the 60 s window.")
    out.append(
        f"\nChunks are the first and last {fmt_ops(CHUNK)} operations (a tenth of the run, in brackets, when the run "
        "has fewer than 40k). Full GCs: the count and seconds of the cyclic garbage collector's full (generation 2) "
        "collections during the timed loop (the collector stays on, as in real use). Peak RSS is the worker "
        "process's high-water mark (interpreter and imports included); growth is that peak minus the RSS just "
        "before the timed loop."
    )
    out.extend(notes)
    out.append("\nChecked after each run:")
    for cost in costs:
        for variant in variants:
            s = summaries[(variant.name, cost)]
            out.append(f"- cost {cost}, {variant.label}: {s.runs[-1].verified}")

    # ---- ratios
    out.append("\n## noa against limits (overall ops/s, over the same number of operations)\n")
    out.append("| cost | noa variant | × moving window | × sliding window counter | last/first |")
    out.append("|--:|---|--:|--:|--:|")
    ratios: dict[tuple[str, int], tuple[float, float]] = {}
    for cost in costs:
        mw, swc = summaries[(ANCHOR_MW, cost)], summaries[(ANCHOR_SWC, cost)]
        for variant in variants:
            if variant.side != "noa":
                continue
            s = summaries[(variant.name, cost)]
            r_mw = s.rate_at(mw.ops) / mw.overall
            r_swc = s.rate_at(swc.ops) / swc.overall
            ratios[(variant.name, cost)] = (r_mw, r_swc)
            at = f" (first {fmt_ops(mw.ops)})" if mw.capped else ""
            out.append(f"| {cost} | {variant.label} | {r_mw:.2f}×{at} | {r_swc:.2f}× | {s.last / s.first:.2f} |")

    if before is not None:
        before_after(out, summaries, pairs, costs, before)

    # ---- targets
    out.append(f"\n## Targets (judged on {BY_NAME[HEADLINE].label}, the full admit + record path)\n")
    wanted = {1: 3.0, 500: 10.0}
    if ops != 200_000:
        out.append(
            f"The targets are set for 200k operations; this run did {fmt_ops(ops)}, so read these as a smoke test.\n"
        )
    for cost in costs:
        s = summaries[(HEADLINE, cost)]
        mw = summaries[(ANCHOR_MW, cost)]
        if cost in wanted:
            r_mw = ratios[(HEADLINE, cost)][0]
            met = "met" if r_mw >= wanted[cost] else "NOT met"
            at = f"; both over the first {mw.ops:,} operations, the moving window being capped" if mw.capped else ""
            out.append(
                f"- cost {cost}: at least {wanted[cost]:g}× the moving window overall: **{met}**, "
                f"{r_mw:.2f}× ({fmt_rate(s.rate_at(mw.ops))} vs {fmt_rate(mw.overall)} ops/s{at})"
            )
        ratio = s.last / s.first
        met = "met" if ratio >= 0.8 else "NOT met"
        out.append(
            f"- cost {cost}: last {fmt_ops(s.chunk)} no slower than 0.8× the first: **{met}**, {ratio:.2f} "
            f"({fmt_rate(s.last)} vs {fmt_rate(s.first)} ops/s); not counting the full-GC pauses inside the two "
            f"chunks: {s.last_first_without_gc():.2f}"
        )
    others = []
    for cost in costs:
        for variant in VARIANTS:
            if variant.side == "noa" and variant.name != HEADLINE and cost in wanted:
                r_mw = ratios[(variant.name, cost)][0]
                s = summaries[(variant.name, cost)]
                others.append(
                    f"  - cost {cost}, {variant.label}: {r_mw:.2f}× the moving window "
                    f"({'met' if r_mw >= wanted[cost] else 'not met'}), last/first {s.last / s.first:.2f}"
                )
    if others:
        out.append("- The same targets for the other noa variants (for reference):")
        out.extend(others)

    # ---- correctness
    out.append("\n## Correctness contrast (deterministic, injected clocks)\n")
    contrast_window(out)
    contrast_atomic(out)

    if args.profile:
        out.append("\n## cProfile hotspots\n")
        out.extend(profile_headline(costs, args.profile_ops, args.profile_top))
    emit(*out)
    return 0


def before_after(
    out: list[str],
    summaries: dict[tuple[str, int], Summary],
    pairs: dict[str, Variant],
    costs: list[int],
    before: Before,
) -> None:
    """The before/after table: each noa variant on the working tree against the same on ``before``'s src."""
    out.append(
        f"\n## Before/after: `{before.ref}` against the working tree (overall ops/s, over the same number of "
        "operations)\n"
    )
    out.append(
        "| cost | variant | ops | before ops/s | after ops/s | after/before | after/before per repeat "
        "| last/first before | last/first after |"
    )
    out.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for cost in costs:
        for name, old in pairs.items():
            a, b = summaries[(name, cost)], summaries[(old.name, cost)]
            n = min(a.ops, b.ops)
            per_repeat = ", ".join(
                f"{rb.seconds(n) / ra.seconds(n):.2f}" for ra, rb in zip(a.runs, b.runs, strict=True)
            )
            capped = " (capped)" if a.capped or b.capped else ""
            out.append(
                f"| {cost} | {BY_NAME[name].label} | {fmt_ops(n)}{capped} | {fmt_rate(b.rate_at(n))} "
                f"| {fmt_rate(a.rate_at(n))} | **{a.rate_at(n) / b.rate_at(n):.2f}×** | {per_repeat} "
                f"| {b.last / b.first:.2f} | {a.last / a.first:.2f} |"
            )
    old_files = sorted(
        {run.noa_file for (name, _), s in summaries.items() if name.endswith("@before") for run in s.runs}
    )
    new_files = sorted({run.noa_file for (name, _), s in summaries.items() if name in pairs for run in s.runs})
    out.append(
        f"\nAbove 1× the working tree is faster. Before: `{before.ref}` = {before.commit}; its workers imported "
        f"noa_ai_provider from {', '.join(f'`{f}`' for f in old_files)} (checked in each worker; a temporary "
        f"directory, removed after the run). After: {working_tree()}, imported from "
        f"{', '.join(f'`{f}`' for f in new_files)}. Each before run ran right next to its after run in the same "
        "repeat (second on odd repeats, first on even ones); the per-repeat ratios compare those neighbours."
    )


def parse_costs(text: str) -> list[int]:
    try:
        costs = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not costs or any(c <= 0 for c in costs):
        raise argparse.ArgumentTypeError("costs must be positive integers")
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=None, help="operations per variant and cost (default: 200000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20000 operations, 1 repeat")
    parser.add_argument(
        "--costs", type=parse_costs, default=[1, 500], help="comma-separated costs per hit (default: 1,500)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs per variant, median taken (default: 3)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a variant after this long, so every run stays within one 60 s window (default: 50, quick: 10)",
    )
    parser.add_argument("--profile", action="store_true", help="also print cProfile hotspots of acquire + commit")
    parser.add_argument("--profile-ops", type=int, default=50_000, metavar="N", help="ops profiled (default: 50000)")
    parser.add_argument("--profile-top", type=int, default=25, metavar="N", help="rows per profile (default: 25)")
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also run noa's variants on the src/ of this git ref (e.g. 27eb60c) and compare: before/after",
    )
    parser.add_argument("--worker", choices=sorted(BY_NAME), help=argparse.SUPPRESS)
    parser.add_argument("--expect-src", help=argparse.SUPPRESS)  # worker: noa_ai_provider must come from here
    parser.add_argument("--step", type=int, default=STEP, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ops is None:
        args.ops = 20_000 if args.quick else 200_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.budget is None:
        args.budget = 10.0 if args.quick else 50.0
    if args.ops < 10 or args.repeats < 1 or args.budget <= 0:
        parser.error("--ops must be >= 10, --repeats >= 1 and --budget > 0")
    if args.worker is not None:
        json.dump(worker(args.worker, args.ops, args.costs[0], args.step, args.budget, args.expect_src), sys.stdout)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
