"""Four processes share one Redis namespace: the admitted history, in Redis time and checked offline, never
exceeds a rate limit in any trailing window nor a budget, and usage totals and Decimal costs across processes are
exact.

Real processes (fresh interpreters running tests/integration/redis_worker.py, released together through a ``go``
file) against a real redis-server. Each worker writes what it was admitted: the reservation's timestamp (the
server's time at admission) and the Redis TIME read just before and after each commit or cancel. The test then
replays the history: at each admission, the amount the window counted is what every admission in the trailing
window held as far as the store could know then (the settled amount when the settlement certainly came first, the
reserved amount when it certainly came later, the smaller of the two when they may have overlapped), and that
must stay within the limit.

Each test runs about ``NOA_MP_SECONDS`` seconds (default 10; more than 60 lets the per-minute windows slide).
``NOA_MP_SEED`` fixes the workers' random draws (their timing still varies).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.schemas import MONEY_CONTEXT
from noa_ai_provider.testing import window_totals
from tests.redis_server import RedisServer

from . import redis_worker as worker

PROCESSES = 4
SECONDS = float(os.environ.get("NOA_MP_SECONDS", "10"))
SEED = int(os.environ.get("NOA_MP_SEED", str(random.SystemRandom().randrange(10**9))))
MINUTE_US = 60_000_000
WORKER = Path(__file__).with_name("redis_worker.py")
INPUT_PRICE = Decimal(worker.PRICES["inputTokens"])
OUTPUT_PRICE = Decimal(worker.PRICES["outputTokens"])
PER = Decimal(worker.PRICES["per"])
BUDGET = Decimal("0.4938271") * max(1, int(SECONDS // 10))
"""The global total budget: a few thousand requests' worth (per 10 s of the run), spent in the first seconds."""
DAY_BUDGET = Decimal("1000")
"""The model's daily budget: never binding, but held and charged by the same scripts."""

Amounts = dict[str, Any]  # amount name ("requests", "tokens", "cost") -> int or Decimal


# ------------------------------------------------------------------------------------------ the offline check


@dataclass(frozen=True)
class Admission:
    """One admitted request: when (microseconds of Redis time), what it reserved and what it settled to, and the
    Redis time bracketing its settlement (``settled`` None: never settled)."""

    at: int
    reserved: Amounts
    settled: Amounts | None = None
    lo: int = 0
    hi: int = 0
    name: str = ""
    order: tuple[int, ...] = field(default=(), compare=False)


@dataclass
class Replay:
    """What the replay found: the amounts counted at each admission (in admission order), the violations, and
    the largest amount counted of each kind."""

    counted: list[Amounts]
    violations: list[str]
    peak: Amounts


def known(admission: Admission, now: int) -> Amounts:
    """What ``admission`` counted at ``now`` (after it was admitted), as far as Redis could know: its reservation
    while its settlement certainly had not come (before ``lo``; a settlement in the microsecond of its admission is
    taken as after it), its settled amount once it certainly had (after ``hi``), the smaller of the two between."""
    settled = admission.settled
    if settled is None:
        return admission.reserved
    start = max(admission.lo, admission.at + 1)
    if now < start:
        return admission.reserved
    if now >= max(admission.hi + 1, start):
        return settled
    return {k: min(v, settled[k]) for k, v in admission.reserved.items()}


def in_window(j: Admission, now: int, span: int | None) -> bool:
    return span is None or j.at > now - span


def replay_naive(admissions: Sequence[Admission], limits: Amounts, span: int | None) -> list[Amounts]:
    """The definition, quadratic: at each admission, every earlier admission still in its window (ties in time by
    ``order``), at what it counted then, plus this one's reservation."""
    ordered = sorted(admissions, key=lambda a: (a.at, a.order))
    out: list[Amounts] = []
    for i, a in enumerate(ordered):
        total = dict.fromkeys(limits, 0)
        for j in ordered[:i]:
            if in_window(j, a.at, span):
                for k, v in known(j, a.at).items():
                    total[k] += v
        for k, v in a.reserved.items():
            total[k] += v
        out.append(total)
    return out


def replay(admissions: Sequence[Admission], limits: Amounts, span: int | None) -> Replay:
    """:func:`replay_naive`, in one sweep over the events in time order (fast enough for thousands of admissions).

    Every admission counts its reservation from ``at``, ``min(reserved, settled)`` from ``lo`` and its settled
    amount after ``hi`` (a settlement in the same microsecond as the admission is taken as after it), until it
    leaves the window at ``at + span``."""
    with localcontext(MONEY_CONTEXT):
        return _replay(admissions, limits, span)


def _replay(admissions: Sequence[Admission], limits: Amounts, span: int | None) -> Replay:
    ordered = sorted(admissions, key=lambda a: (a.at, a.order))
    events: list[tuple[int, int, int, int]] = []  # (time, phase: 0 change 1 admission, index, what)
    for i, a in enumerate(ordered):
        events.append((a.at, 1, i, 0))
        if a.settled is not None:
            start = max(a.lo, a.at + 1)
            events.append((start, 0, i, 1))  # from lo: the smaller of the two
            events.append((max(a.hi + 1, start), 0, i, 2))  # after hi: settled
        if span is not None:
            events.append((a.at + span, 0, i, 3))  # no longer in the window from at + span
    events.sort()
    totals: Amounts = dict.fromkeys(limits, 0)
    peak: Amounts = dict.fromkeys(limits, 0)
    current: dict[int, Amounts] = {}
    gone: set[int] = set()
    counted: list[Amounts] = [{} for _ in ordered]
    violations: list[str] = []

    def become(i: int, value: Amounts) -> None:
        for k in limits:
            totals[k] += value[k] - current[i][k]
        current[i] = value

    for when, _, i, what in events:
        a = ordered[i]
        if what == 0:
            current[i] = dict.fromkeys(limits, 0)
            become(i, a.reserved)
            counted[i] = dict(totals)
            for k, limit in limits.items():
                peak[k] = max(peak[k], totals[k])
                if totals[k] > limit:
                    violations.append(
                        f"{a.name or i} admitted at {when} us: {k} counted {totals[k]} > {limit} in the window"
                    )
        elif i in gone:
            continue
        elif what == 3:
            become(i, dict.fromkeys(limits, 0))
            gone.add(i)
        else:
            assert a.settled is not None
            settled = a.settled
            become(i, settled if what == 2 else {k: min(v, settled[k]) for k, v in a.reserved.items()})
    return Replay(counted, violations, peak)


def test_the_replay_finds_what_a_window_counted() -> None:
    limits = {"tokens": 25}
    r = {"tokens": 10}

    def admitted(at: int, settled: int | None = None, lo: int = 0, hi: int = 0) -> Admission:
        return Admission(at, r, None if settled is None else {"tokens": settled}, lo, hi, f"@{at}", (at,))

    assert replay([admitted(0), admitted(1), admitted(2)], limits, None).violations == [
        "@2 admitted at 2 us: tokens counted 30 > 25 in the window"
    ]
    # A commit below the reservation that certainly came first leaves room; one that may overlap counts the smaller.
    assert not replay([admitted(0, 0, 2, 3), admitted(1), admitted(4)], limits, None).violations
    assert not replay([admitted(0, 0, 2, 5), admitted(1), admitted(4)], limits, None).violations
    assert replay([admitted(0, 0, 5, 6), admitted(1), admitted(4)], limits, None).violations  # committed later
    # A commit above it that certainly came first counts in full; one that may overlap counts the reservation.
    assert replay([admitted(0, 16, 1, 2), admitted(4)], limits, None).peak == {"tokens": 26}
    assert replay([admitted(0, 16, 1, 4), admitted(4)], limits, None).peak == {"tokens": 20}
    # A settlement in the same microsecond as its own admission: the admission counted the reservation.
    assert replay([admitted(0, 0, 0, 0)], limits, None).counted == [{"tokens": 10}]
    # An admission leaves the window exactly `span` later (an entry `age` old counts while age < window).
    assert not replay([admitted(0), admitted(59), admitted(60)], {"tokens": 20}, 60).violations
    assert replay([admitted(0), admitted(5), admitted(60)], {"tokens": 20}, 60).counted[2] == {"tokens": 20}
    assert replay([admitted(0), admitted(5), admitted(59)], {"tokens": 20}, 60).counted[2] == {"tokens": 30}
    assert replay([admitted(0, 3, 1, 2), admitted(5), admitted(60)], limits, 60).counted[2] == {"tokens": 20}

    rng = random.Random(7)
    for span in (None, 50):
        history = []
        for n in range(300):
            at = rng.randint(0, 400)
            reserved = {"tokens": rng.randint(0, 9), "requests": 1}
            lo = at + rng.choice((0, rng.randint(0, 30)))
            settled = rng.choice((None, {"tokens": rng.randint(0, 14), "requests": rng.randint(0, 1)}))
            history.append(Admission(at, reserved, settled, lo, lo + rng.randint(0, 5), str(n), (at, n)))
        limits = {"tokens": 10**9, "requests": 10**9}
        assert replay(history, limits, span).counted == replay_naive(history, limits, span), span


# ------------------------------------------------------------------------------------------ running the workers


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Run:
    rows: list[dict[str, Any]]  # every admission, with "worker"
    summaries: list[dict[str, Any]]
    wall: float


def run_workers(url: str, namespace: str, mode: str, folder: Path, seconds: float = SECONDS) -> Run:
    folder.mkdir()
    procs = []
    for index in range(PROCESSES):
        args = [sys.executable, str(WORKER), "--url", url, "--namespace", namespace, "--index", str(index)]
        args += ["--folder", str(folder), "--mode", mode, "--seconds", str(seconds), "--seed", str(SEED + index)]
        if mode == "limits" and index % 2 == 0:
            args.append("--wait")  # half of them wait in acquire, the others poll on RateLimitExceeded
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 60
        while sum(1 for _ in folder.glob("ready-*")) < PROCESSES:
            for proc in procs:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"a worker exited before the start (rc {proc.returncode}): {out}\n{err}")
            assert time.monotonic() < deadline, "the workers never became ready"
            time.sleep(0.005)
        started = time.monotonic()
        (folder / "go").touch()
        for index, proc in enumerate(procs):
            out, err = proc.communicate(timeout=seconds + 60)
            assert proc.returncode == 0, f"worker {index} failed (rc {proc.returncode}, seed {SEED}):\n{out}\n{err}"
        wall = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    rows: list[dict[str, Any]] = []
    summaries = []
    for index in range(PROCESSES):
        for line in (folder / f"admitted-{index}.jsonl").read_text().splitlines():
            rows.append({"worker": index, **json.loads(line)})
        summaries.append(json.loads((folder / f"summary-{index}.json").read_text()))
    return Run(rows, summaries, wall)


def micros(timestamp: float) -> int:
    """A reservation's timestamp (float seconds of Redis time) in microseconds, as Redis TIME gives them."""
    return round(timestamp * 1_000_000)


def cost(input_tokens: int, output_tokens: int) -> Decimal:
    """The exact cost of a request, computed here from the model's prices per ``per`` tokens."""
    with localcontext(MONEY_CONTEXT):
        return (input_tokens * INPUT_PRICE + output_tokens * OUTPUT_PRICE) / PER


def money_sum(amounts: Iterable[Decimal]) -> Decimal:
    with localcontext(MONEY_CONTEXT):
        return sum(amounts, Decimal(0))


def settled_cost(row: dict[str, Any]) -> Decimal:
    """The cost of what ``row`` committed, computed here from the token counts and the price."""
    return Decimal(0) if row["settled"] == "cancel" else cost(row["c_in"], row["c_out"])


def check_redis_time(rows: list[dict[str, Any]]) -> None:
    """Every reservation's timestamp is the Redis server's time, read while acquire ran."""
    for row in rows:
        where = (row["worker"], row["seq"])
        assert row["acquire_lo"] <= micros(row["at"]) <= row["acquire_hi"], where
        assert micros(row["at"]) <= row["lo"] <= row["hi"], where


def check_usage(registry: EnhancedModelRegistry, key: str, rows: list[dict[str, Any]]) -> Decimal:
    """Usage counters, daily history and cost, read from Redis by a fresh registry, are exactly the sum of what the
    workers committed: the costs they were returned, and the same costs computed here from tokens and price."""
    committed = [row for row in rows if row["settled"] == "commit"]
    returned = money_sum(Decimal(row["cost"]) for row in committed)
    computed = money_sum(settled_cost(row) for row in committed)
    for row in committed:
        assert Decimal(row["cost"]) == settled_cost(row), row
    assert returned == computed
    stats = registry.get_usage_stats(key)
    assert stats is not None
    got = (
        stats.request_count,
        stats.successful_requests,
        stats.failed_requests,
        stats.total_input_tokens,
        stats.total_output_tokens,
        stats.total_cost,
    )
    inp = sum(row["c_in"] for row in committed)
    out = sum(row["c_out"] for row in committed)
    assert got == (len(committed), len(committed), 0, inp, out, returned)
    assert isinstance(stats.total_cost, Decimal)
    history = registry.get_usage_history(key)
    assert sum(h.requests for h in history) == len(committed)
    assert sum(h.input_tokens for h in history) == inp
    assert sum(h.output_tokens for h in history) == out
    assert money_sum(h.cost for h in history) == returned
    return returned


def fresh_registry(tmp_path: Path, url: str, namespace: str, model: dict[str, Any]) -> EnhancedModelRegistry:
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / "test.json", auto_save=False, backend=f"{url}?namespace={namespace}"
    )
    registry.register_model(model)
    return registry


# ------------------------------------------------------------------------------------------ the tests


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 150)
def test_four_processes_never_exceed_a_limit_in_redis_time(tmp_path: Path, redis_url: str) -> None:
    run = run_workers(redis_url, "mplimits", "limits", tmp_path / "run")
    rows = run.rows
    check_redis_time(rows)

    admissions = [
        Admission(
            at=micros(row["at"]),
            reserved={"requests": 1, "tokens": row["in"] + row["out"]},
            settled={"requests": int(row["settled"] == "commit"), "tokens": row["c_in"] + row["c_out"]},
            lo=row["lo"],
            hi=row["hi"],
            name=f"worker {row['worker']} request {row['seq']}",
            order=(row["worker"], row["seq"]),
        )
        for row in rows
    ]
    limits = {"requests": worker.RPM, "tokens": worker.TPM}
    found = replay(admissions, limits, MINUTE_US)
    context = f"seed {SEED}, {len(rows)} admitted, peak {found.peak}, summaries {run.summaries}"
    assert not found.violations, f"{found.violations[:10]} ({context})"

    # The limits were reached: there was contention, and at the end the windows were full.
    refused = sum(sum(s["refused"].values()) + s["timeouts"] for s in run.summaries)
    assert refused > 0, context
    # A non-waiting caller may also be refused behind another process's waiter (the cross-process FIFO): seen when
    # the machine is loaded and a waiter's claim outlives its first refusal.
    reasons = {"requests per minute", "tokens per minute", "queued behind earlier waiters"}
    assert {r for s in run.summaries for r in s["refused"]} <= reasons
    assert len(rows) >= 10, context
    assert any(row["settled"] == "cancel" for row in rows)
    assert any(row["settled"] == "commit" and row["c_out"] > row["out"] for row in rows)
    assert any(row["settled"] == "commit" and row["c_in"] + row["c_out"] < row["in"] + row["out"] for row in rows)
    end = max(s["stopped"] for s in run.summaries)
    final = replay([*admissions, Admission(end, {"requests": 0, "tokens": 0})], limits, MINUTE_US).counted[-1]
    if end - min(s["started"] for s in run.summaries) < MINUTE_US - 5_000_000:  # nothing left a window
        assert final["requests"] == sum(row["settled"] == "commit" for row in rows)
        assert final["requests"] == worker.RPM or final["tokens"] > worker.TPM - worker.MAX_IN - worker.MAX_OUT, (
            final,
            context,
        )

    with fresh_registry(tmp_path, redis_url, "mplimits", worker.LIMITED) as registry:
        check_usage(registry, worker.LIMITED_KEY, rows)
        if end - min(s["started"] for s in run.summaries) < MINUTE_US - 5_000_000:
            assert window_totals(registry, worker.LIMITED_KEY) == {
                "requests_per_minute": final["requests"],
                "tokens_per_minute": final["tokens"],
            }
    print(f"\n{len(rows)} admitted in {run.wall:.1f} s, peak {found.peak}, final {final}, seed {SEED}")


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 150)
def test_four_processes_never_overspend_a_budget(tmp_path: Path, redis_url: str) -> None:
    with fresh_registry(tmp_path, redis_url, "mpbudget", worker.BUDGETED) as registry:
        registry.set_budget(BUDGET, period="total")
        registry.set_budget(DAY_BUDGET, period="day", key=worker.BUDGETED_KEY)
    run = run_workers(redis_url, "mpbudget", "budget", tmp_path / "run")
    rows = run.rows
    check_redis_time(rows)
    context = f"seed {SEED}, {len(rows)} admitted, summaries without refusals " + str(
        [{k: v for k, v in s.items() if k != "budget_refusals"} for s in run.summaries]
    )
    for row in rows:  # what this test commits never exceeds the reservation (a commit above it may overspend)
        assert row["c_in"] <= row["in"]
        assert row["c_out"] <= row["out"]

    admissions = [
        Admission(
            at=micros(row["at"]),
            reserved={"cost": cost(row["in"], row["out"])},
            settled={"cost": settled_cost(row)},
            lo=row["lo"],
            hi=row["hi"],
            name=f"worker {row['worker']} request {row['seq']}",
            order=(row["worker"], row["seq"]),
        )
        for row in rows
    ]
    found = replay(admissions, {"cost": BUDGET}, None)
    assert not found.violations, f"{found.violations[:10]} ({context})"

    refusals = [r for s in run.summaries for r in s["budget_refusals"]]
    assert refusals, context
    assert not any(s["refused"] for s in run.summaries), context
    for refusal in refusals:
        assert (refusal["budget_key"], refusal["period"], Decimal(refusal["limit"])) == (None, "total", BUDGET)
        assert Decimal(refusal["needed"]) == cost(refusal["in"], refusal["out"]), refusal
        assert Decimal(refusal["spent"]) + Decimal(refusal["reserved"]) + Decimal(refusal["needed"]) > BUDGET
    assert all(s["exhausted"] for s in run.summaries), context

    with fresh_registry(tmp_path, redis_url, "mpbudget", worker.BUDGETED) as registry:
        spent = check_usage(registry, worker.BUDGETED_KEY, rows)
        status = {(b.key, b.period): b for b in registry.get_budget_status()}
        total = status[(None, "total")]
        assert (total.limit, total.spent, total.reserved) == (BUDGET, spent, Decimal(0))
        assert spent <= BUDGET
        assert spent + cost(1, 0) > BUDGET, "the budget was not spent"
        day = status[(worker.BUDGETED_KEY, "day")]
        if len({time.gmtime(row["at"])[:3] for row in rows}) == 1:  # the run did not cross midnight UTC
            assert (day.spent, day.reserved) == (spent, Decimal(0))
    print(f"\n{len(rows)} admitted in {run.wall:.1f} s, spent {spent} of {BUDGET}, seed {SEED}")
