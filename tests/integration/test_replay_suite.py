"""The replay suite: 16 threads drive one rate-limited model at random, every admission is checked offline.

What runs. One model with the four per-minute limits (``requestsPerMinute``, ``tokensPerMinute``,
``inputTokensPerMinute``, ``outputTokensPerMinute``), all small. 16 threads, each with its own seeded
``random.Random``, do at random: ``acquire`` (waiting and not), ``commit`` below and above the reservation,
``cancel``, ``fail``, ``record_usage``, ``reset_usage_stats``, and (one at a time, see "admin" below) limit changes
lowering and raising any of the four limits, ``unregister_model`` + ``register_model`` of the same key, ``save`` and
``load``. A thread keeps up to three reservations open and settles them in random order, so some outlive
``reservation_timeout`` and expire. The registry's clock runs ``SPEED`` times faster than real time, so the
windows slide many times during a run of about two seconds.

The log. The injected clock is strictly increasing (every reading is at least ``STEP`` after the previous one) and
remembers, per thread, the readings made during a call. The registry reads its clock inside its lock when it
changes a window (asserted: commit, cancel, fail, ``record_usage``, ``update_model``, ``register_model`` and
``load`` read it exactly once, and an admission's ``timestamp`` is the last reading of its ``acquire``): so the
readings order the calls exactly as the registry's lock did, and each logged event carries the reading of the call
that made it. Only the public API is used (the ``clock`` keyword, ``Reservation.timestamp`` and ``expires_at``).

- ``admit``: a reservation's ``timestamp``, its reserved ``input + max_output`` tokens and its ``expires_at``;
- ``commit``: the commit's reading and the tokens used (below or above the reservation);
- ``release``: ``cancel``, ``fail``, or a commit/fail refused with ``ModelNotFoundError`` (the reservation is
  given back);
- ``record``: ``record_usage`` (its reading and tokens);
- ``limits``: ``update_model(rateLimit=...)``, the ``register_model`` that ends an unregister/register pair, and a
  ``load`` that brings back the limits of the last ``save`` (each with its new limits);
- ``unregister``: the start of a pair (the model's record is replaced when it is registered again).

The oracle (exactly the documented promise). Replaying the log in that order, the oracle keeps what every window
holds *at each instant*:

- a ``record_usage`` at time ``r`` counts one request and its tokens at ``r``;
- a reservation admitted at ``a`` counts one request and its reserved tokens at ``a`` while it is open and its
  ``expires_at`` is later than the instant considered (the registry sweeps expired reservations before deciding:
  one with ``expires_at <= now`` no longer counts);
- committed at ``c`` while it was still held (``c < expires_at`` and the model not registered again since ``a``),
  it counts what was used, still at ``a``: MORE than reserved when the commit used more;
- committed after it expired, or after the model was unregistered and registered again, it counts what was used
  at ``c`` (documented for expiry: "counted at the time of the commit"; the same path is taken for a model
  registered again, whose windows took the reservation back);
- cancelled, failed, or expired and never committed: it counts nothing from then on.

**The rule**, checked at every admission at time ``t`` with the limits ``L`` in force at ``t``: for each of the
four per-minute limits, what the window holds at that instant for the events at times in ``(t - 60, t]`` (as
above, with the amounts known at ``t``) plus the new request's amount (1 request, ``input + max_output`` tokens,
the input, the output) must be ``<= L``.

Why "amounts known at ``t``" and not the final history: a commit above its reservation is the one documented way
past a limit. It raises the window at the reservation's time, after the admissions that were decided with the
reserved amount; those were right and are not violations. But any admission decided after that commit must fit
the limit counting the larger amount. Likewise ``record_usage`` never enforces and may push a window over its limit
(never a violation by itself: only admissions are checked), and afterwards nothing may be admitted until the
window has room for the new request on top of that traffic. A limit lowered applies from the instant of the change
to all the traffic of the window, including what was admitted under the higher limit (windows keep their
traffic across limit changes, registrations and loads), and a limit raised again allows exactly the new limit.

Per-minute limits are exact: an event ``age`` seconds old counts while ``age < 60`` (the oracle's ``ts > t - 60``
is the registry's cutoff). The registry may merge old token entries into newer timestamps beyond its entry caps;
that only counts them longer (it can refuse early, never admit late), so the oracle stays exact for admissions.

Admin. Limit changes, unregister/register pairs, ``save`` and ``load`` are made one at a time (a test-side lock),
so the test knows what the last ``save`` wrote (the limits ``load`` brings back) and, after each, checks that
``effective_rate_limit`` is what it expects. The model is unregistered only inside a pair; threads that call in
the gap get ``ModelNotFoundError``. Acquire, commit, cancel, fail, record and reset run concurrently with them.

The checker can fail: ``test_the_checker_finds_violations_when_it_believes_smaller_limits`` replays a run with an
oracle that believes every limit is half the real one and must report violations; one that believes every limit is
one smaller must flag exactly the admissions that filled a window to its limit (the checker is tight to the unit).

The default run replays ``SEEDS`` (3) seeds plus a smaller run of the heavy variant (one seed, 24 threads, 1.5 s);
``NOA_STRESS=1`` replays 12 seeds and runs the heavy variant at full size (four seeds, 32 threads, 8 s each).

The last test is a deterministic reproducer of a registry bug the replay found (a window compacting its cancelled
entries while over its entry cap went on trimming the old log: ``IndexError`` from ``record_usage``, ``commit`` or
``acquire``, and a window that forgot its traffic and admitted past the limit).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import (
    EnhancedModelRegistry,
    ModelNotFoundError,
    RateLimitExceeded,
    Reservation,
)
from noa_ai_provider.testing import FakeClock

STRESS = bool(os.environ.get("NOA_STRESS"))
SEEDS = list(range(12)) if STRESS else [0, 1, 2]
THREADS = 16
RUN_SECONDS = 2.0
SPEED = 600.0  # registry seconds per real second: 2 s of real time are 20 minutes of windows
START = 1_700_000_000.0  # every double near here is a multiple of 2**-22: t - 60 is exact
STEP = 2.0**-18  # the clock's least step (about 4 µs: distinct microseconds in saved datetimes)
MINUTE = 60.0
RESERVATION_TIMEOUT = 20.0  # registry seconds (about 33 ms of real time)
PRICE = {"inputTokens": "0.01", "outputTokens": "0.03"}
KEY_ID = "replayed"

FIELDS = ("requestsPerMinute", "tokensPerMinute", "inputTokensPerMinute", "outputTokensPerMinute")
CHOICES = {
    "requestsPerMinute": (4, 6, 10, 15, 24),
    "tokensPerMinute": (2_000, 4_000, 6_000, 10_000, 16_000),
    "inputTokensPerMinute": (1_500, 3_000, 5_000, 9_000),
    "outputTokensPerMinute": (1_000, 2_000, 4_000, 7_000),
}
INITIAL = {
    "requestsPerMinute": 10,
    "tokensPerMinute": 6_000,
    "inputTokensPerMinute": 5_000,
    "outputTokensPerMinute": 4_000,
}

Limits = dict[str, int]


# --------------------------------------------------------------------------- the clock


class ReplayClock:
    """A fast clock for the registry: ``SPEED`` times real time, strictly increasing across threads, and each
    thread can see the readings it made during a call (``watch``)."""

    def __init__(self, speed: float = SPEED) -> None:
        self.speed = speed
        self.origin = time.monotonic()
        self._last = START
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self) -> float:
        with self._lock:
            now = max(self._last + STEP, START + (time.monotonic() - self.origin) * self.speed)
            self._last = now
        seen = getattr(self._local, "seen", None)
        if seen is not None:
            seen.append(now)
        return now

    @contextlib.contextmanager
    def watch(self) -> Iterator[list[float]]:
        seen: list[float] = []
        self._local.seen = seen
        try:
            yield seen
        finally:
            self._local.seen = None


# --------------------------------------------------------------------------- the log and the oracle

# (time, kind, *payload); times are clock readings, all distinct.
Event = tuple[Any, ...]


@dataclass(eq=False)
class _Held:
    """One thing a window holds: a recorded request, or a reservation (``expires_at`` finite while open)."""

    ts: float
    amounts: tuple[int, int, int, int]  # requests, tokens, input, output
    expires_at: float = math.inf  # while open: no longer counted from this instant
    open: bool = False
    epoch: int = 0

    def at(self, now: float) -> tuple[int, int, int, int]:
        if self.open and now >= self.expires_at:
            return (0, 0, 0, 0)
        return self.amounts


def amounts(inp: int, out: int) -> tuple[int, int, int, int]:
    return (1, inp + out, inp, out)


@dataclass
class Verdict:
    admissions: int = 0
    violations: list[str] = field(default_factory=list)
    filled: int = 0  # admissions that left some window exactly at its limit (the checker is tight there)
    counted_over: int = 0  # admissions decided while a commit above its reservation was in their window
    after_lowering: int = 0  # admissions within 60 s after a limit was lowered
    pushed_over: int = 0  # record_usage calls (and late commits) that left a window over its limit


def check_replay(log: list[Event], shrink: float = 1.0, minus: int = 0) -> Verdict:
    """Replay ``log`` in clock order and check every admission against the limits in force (times ``shrink``,
    less ``minus``: an oracle deliberately wrong, to show that the checker can fail)."""
    events = sorted(log, key=lambda e: e[0])
    times = [e[0] for e in events]
    assert len(set(times)) == len(times), "clock readings must be distinct"
    verdict = Verdict()
    limits: Limits | None = None
    epoch = 0
    held: list[_Held] = []  # in time order (events are replayed in time order)
    start = 0
    by_id: dict[int, _Held] = {}
    over: set[int] = set()  # ids of holds whose commit used more than reserved
    lowered_at = -math.inf

    def window(now: float) -> list[int]:
        nonlocal start
        while start < len(held) and held[start].ts <= now - MINUTE:
            start += 1
        totals = [0, 0, 0, 0]
        for item in held[start:]:
            for i, value in enumerate(item.at(now)):
                totals[i] += value
        return totals

    def pushed(now: float) -> None:
        assert limits is not None
        totals = window(now)
        verdict.pushed_over += any(totals[i] > limits[name] for i, name in enumerate(FIELDS))

    for event in events:
        now, kind = event[0], event[1]
        if kind == "limits":
            new_limits = {name: max(1, math.floor(value * shrink) - minus) for name, value in event[2].items()}
            if limits is not None and any(new_limits[name] < limits[name] for name in FIELDS):
                lowered_at = now
            limits = new_limits
        elif kind == "unregister":
            epoch += 1
        elif kind == "record":
            held.append(_Held(now, amounts(event[2], event[3])))
            pushed(now)
        elif kind == "admit":
            _, _, rid, inp, out, expires_at = event
            assert limits is not None
            totals = window(now)
            new = amounts(inp, out)
            verdict.after_lowering += now - lowered_at < MINUTE
            verdict.admissions += 1
            full = False
            for i, name in enumerate(FIELDS):
                if totals[i] + new[i] > limits[name]:
                    verdict.violations.append(
                        f"t={now - START:.6f} {name}: window {totals[i]} + request {new[i]} > limit {limits[name]}"
                    )
                full = full or totals[i] + new[i] == limits[name]
            verdict.filled += full
            if any(id(h) in over and h.ts > now - MINUTE for h in held[start:]):
                verdict.counted_over += 1
            hold = _Held(now, new, expires_at, open=True, epoch=epoch)
            held.append(hold)
            by_id[rid] = hold
        elif kind == "commit":
            _, _, rid, inp, out = event
            hold = by_id[rid]
            used = amounts(inp, out)
            if hold.open and now < hold.expires_at and hold.epoch == epoch:
                if used[1] > hold.amounts[1] or used[2] > hold.amounts[2] or used[3] > hold.amounts[3]:
                    over.add(id(hold))
                hold.amounts, hold.open = used, False  # corrected at the reservation's time
            else:  # expired, or the model was registered again: the release, and the usage counted now
                hold.amounts, hold.open = (0, 0, 0, 0), False
                held.append(_Held(now, used))
                pushed(now)
        elif kind == "release":
            hold = by_id[event[2]]
            hold.amounts, hold.open = (0, 0, 0, 0), False
        else:  # pragma: no cover - a typo in the log
            raise AssertionError(kind)
    return verdict


# --------------------------------------------------------------------------- the run


def model(limits: Limits) -> dict[str, Any]:
    return {
        "id": KEY_ID,
        "name": "Replayed",
        "provider": "openai",
        "version": "1.0.0",
        "cost": PRICE,
        "rateLimit": dict(limits),
    }


class Cadence:
    """At most one action every ``low``..``high`` seconds of the registry's clock, across threads."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        self.next = START
        self._lock = threading.Lock()

    def ready(self, now: float, rng: random.Random) -> bool:
        with self._lock:
            if now < self.next:
                return False
            self.next = now + rng.uniform(self.low, self.high)
            return True


@dataclass
class Run:
    registry: EnhancedModelRegistry
    key: str
    clock: ReplayClock
    seed: int
    seconds: float
    threads: int
    limits: Limits
    saved: Limits | None = None
    admin: threading.Lock = field(default_factory=threading.Lock)
    admin_cadence: Cadence = field(default_factory=lambda: Cadence(3.0, 12.0))
    record_cadence: Cadence = field(default_factory=lambda: Cadence(8.0, 20.0))
    logs: list[list[Event]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            self.counts[name] = self.counts.get(name, 0) + n


def one(seen: list[float], what: str) -> float:
    assert len(seen) == 1, f"{what} read the clock {len(seen)} times: {seen}"
    return seen[0]


def changed(limits: Limits, rng: random.Random, run: Run) -> Limits:
    new = dict(limits)
    for name in rng.sample(FIELDS, rng.randint(1, len(FIELDS))):
        value = rng.choice([v for v in CHOICES[name] if v != limits[name]])
        run.count("lowered" if value < limits[name] else "raised")
        new[name] = value
    return new


def admin_step(run: Run, rng: random.Random, log: list[Event]) -> None:
    registry, key, clock = run.registry, run.key, run.clock
    with run.admin:
        action = rng.choices(("limits", "pair", "save", "load"), (5, 2, 2, 2))[0]
        if action == "limits":
            new = changed(run.limits, rng, run)
            with clock.watch() as seen:
                registry.update_model(key, {"rateLimit": new})
            log.append((one(seen, "update_model"), "limits", new))
            run.limits = new
        elif action == "pair":
            with clock.watch() as seen:
                assert registry.unregister_model(key)
            log.append((seen[0], "unregister"))
            time.sleep(rng.uniform(0.0, 0.002))  # other threads meet the gap
            new = changed(run.limits, rng, run) if rng.random() < 0.5 else dict(run.limits)
            with clock.watch() as seen:
                assert registry.register_model(model(new)) == key
            log.append((one(seen, "register_model"), "limits", new))
            run.limits = new
        elif action == "save":
            registry.save()
            run.saved = dict(run.limits)
        else:
            with clock.watch() as seen:
                registry.load()
            if run.saved is not None:
                log.append((one(seen, "load"), "limits", dict(run.saved)))
                if run.saved != run.limits:
                    run.count("load changed limits")
                run.limits = dict(run.saved)
        run.count(action)
        effective = registry.effective_rate_limit(key)
        assert effective is not None
        got = {
            "requestsPerMinute": effective.requests_per_minute,
            "tokensPerMinute": effective.tokens_per_minute,
            "inputTokensPerMinute": effective.input_tokens_per_minute,
            "outputTokensPerMinute": effective.output_tokens_per_minute,
        }
        assert got == run.limits, (action, got, run.limits)


def settle(run: Run, rng: random.Random, log: list[Event], rid: int, reservation: Reservation) -> None:
    clock = run.clock
    fate = rng.choices(("below", "above", "cancel", "fail"), (10, 4, 3, 2))[0]
    inp, out = reservation.input_tokens, reservation.max_output_tokens
    with clock.watch() as seen:
        try:
            if fate == "below":
                used = (rng.randint(0, inp), rng.randint(0, out))
                reservation.commit(used[1], input_tokens=used[0])
            elif fate == "above":
                used = (inp + rng.choice((0, rng.randint(1, 600))), out + rng.randint(1, 900))
                reservation.commit(used[1], input_tokens=used[0])
            elif fate == "cancel":
                reservation.cancel()
            else:
                reservation.fail()
        except ModelNotFoundError:  # in the gap of an unregister/register pair: the reservation is given back
            log.append((one(seen, fate), "release", rid))
            run.count("settled in the gap")
            return
    when = one(seen, fate)
    if fate in ("below", "above"):
        if when >= reservation.expires_at:
            run.count("committed after expiry")
        log.append((when, "commit", rid, *used))
    else:
        log.append((when, "release", rid))
    run.count(fate)


def worker(run: Run, n: int, barrier: threading.Barrier, stop_at: list[float]) -> None:
    rng = random.Random(run.seed * 1_000 + n)
    registry, key, clock = run.registry, run.key, run.clock
    log: list[Event] = []
    run.logs.append(log)
    pool: list[tuple[int, Reservation]] = []
    try:
        barrier.wait(timeout=10)
        while time.monotonic() < stop_at[0]:
            action = rng.choices(
                ("acquire", "wait", "settle", "record", "reset", "admin", "pause"), (30, 12, 25, 6, 1, 4, 4)
            )[0]
            if action == "settle" or len(pool) >= 3:
                if pool:
                    rid, reservation = pool.pop(rng.randrange(len(pool)))
                    settle(run, rng, log, rid, reservation)
                continue
            if action in ("acquire", "wait"):
                inp = rng.choice((0, rng.randint(1, 150), rng.randint(150, 900)))
                out = rng.choice((0, rng.randint(1, 150), rng.randint(150, 700)))
                wait = action == "wait"
                with clock.watch() as seen:
                    try:
                        if wait:
                            reservation = registry.acquire(key, inp, out, wait=True, timeout=rng.uniform(0.0, 6.0))
                        else:
                            reservation = registry.acquire(key, inp, out)
                    except RateLimitExceeded as exc:
                        run.count("never fits" if exc.retry_after is None else "timed out" if wait else "refused")
                        continue
                    except ModelNotFoundError:
                        run.count("acquire in the gap")
                        continue
                assert seen, "acquire did not read the clock"
                assert reservation.timestamp == seen[-1], (reservation.timestamp, seen)
                rid = next(run.ids)
                log.append((reservation.timestamp, "admit", rid, inp, out, reservation.expires_at))
                pool.append((rid, reservation))
                run.count("admitted after waiting" if wait else "admitted")
            elif action == "record":
                if not run.record_cadence.ready(clock(), rng):
                    continue
                big = rng.random() < 0.2  # now and then enough to push a window over its limit
                inp = rng.randint(0, 3_000 if big else 200)
                out = rng.randint(0, 2_500 if big else 150)
                with clock.watch() as seen:
                    try:
                        registry.record_usage(key, inp, out)
                    except ModelNotFoundError:
                        run.count("record in the gap")
                        continue
                log.append((one(seen, "record_usage"), "record", inp, out))
                run.count("record")
            elif action == "reset":
                with contextlib.suppress(ModelNotFoundError):
                    registry.reset_usage_stats(key)
                    run.count("reset")
            elif action == "admin":
                if run.admin_cadence.ready(clock(), rng):
                    admin_step(run, rng, log)
            else:
                time.sleep(rng.uniform(0.0, 0.01))  # let reservations age (some expire)
        while pool:
            rid, reservation = pool.pop()
            with clock.watch() as seen, contextlib.suppress(ModelNotFoundError):
                reservation.cancel()
            log.append((one(seen, "cancel"), "release", rid))
    except BaseException as exc:
        exc.add_note(traceback.format_exc())  # where, in the assertion message
        run.errors.append(exc)
        # Give the rest back (not to the garbage collector), logged as released: if a cancel fails too, the oracle
        # then counts less than the registry may, which can hide a violation but never invent one.
        for rid, reservation in pool:
            with clock.watch() as seen, contextlib.suppress(Exception):
                reservation.cancel()
            log.append((seen[-1] if seen else clock(), "release", rid))


def replay(tmp_path: Path, seed: int, seconds: float = RUN_SECONDS, threads: int = THREADS) -> Run:
    clock = ReplayClock()
    registry = EnhancedModelRegistry(
        persistence_path=tmp_path / f"replay-{seed}.json",
        auto_save=False,
        clock=clock,
        reservation_timeout=RESERVATION_TIMEOUT,
    )
    with registry:
        with clock.watch() as seen:
            key = registry.register_model(model(INITIAL))
        run = Run(registry, key, clock, seed, seconds, threads, dict(INITIAL))
        first: list[Event] = [(one(seen, "register_model"), "limits", dict(INITIAL))]
        run.logs.append(first)
        barrier = threading.Barrier(threads)
        stop_at = [time.monotonic() + seconds + 0.5]  # the barrier releases them together, well before this
        workers = [
            threading.Thread(target=worker, args=(run, n, barrier, stop_at), daemon=True) for n in range(threads)
        ]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=60)
        assert not [t for t in workers if t.is_alive()], "threads did not finish (deadlock?)"
    return run


def log_of(run: Run) -> list[Event]:
    return [event for log in run.logs for event in log]


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def summary(run: Run, verdict: Verdict) -> str:
    log = log_of(run)
    span = max(e[0] for e in log) - min(e[0] for e in log)
    return (
        f"seed {run.seed}: {verdict.admissions} admissions checked over {span:.0f} s of windows, "
        f"{len(verdict.violations)} violations, {verdict.filled} filled a window exactly, "
        f"{verdict.counted_over} decided after a commit above its reservation, {verdict.after_lowering} within 60 s "
        f"after a lowering, {verdict.pushed_over} records left a window over its limit; {sorted(run.counts.items())}"
    )


def assert_clean(run: Run, verdict: Verdict) -> None:
    """No call raised unexpectedly and no admission broke a limit (a run whose threads met errors is still judged:
    what was logged before them is exact)."""
    errors = [note for exc in run.errors for note in getattr(exc, "__notes__", [repr(exc)])]
    message = f"{len(errors)} thread(s) failed, {len(verdict.violations)} violation(s): {summary(run, verdict)}"
    assert not verdict.violations, (message, verdict.violations[:10], errors[:2])
    assert not errors, (message, errors[:2])


def check_run(run: Run) -> Verdict:
    verdict = check_replay(log_of(run))
    print(summary(run, verdict))
    assert_clean(run, verdict)
    # The run covered what it is meant to: windows slid, limits were reached, every kind of step happened.
    counts = run.counts
    assert verdict.admissions > 3 * INITIAL["requestsPerMinute"], summary(run, verdict)
    assert verdict.filled > 0, summary(run, verdict)
    assert counts.get("refused", 0) + counts.get("timed out", 0) > 0, summary(run, verdict)
    for step in ("admitted after waiting", "below", "above", "cancel", "fail", "record", "lowered", "raised"):
        assert counts.get(step, 0) > 0, (step, summary(run, verdict))
    return verdict


@pytest.mark.usefixtures("frequent_thread_switches")
@pytest.mark.parametrize("seed", SEEDS)
def test_sixteen_threads_never_admit_past_a_limit(tmp_path: Path, seed: int) -> None:
    run = replay(tmp_path, seed)
    check_run(run)
    counts = run.counts
    for step in ("pair", "save", "load"):
        assert counts.get(step, 0) > 0, (step, counts)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_heavy_replay(tmp_path: Path) -> None:
    """More of everything with ``NOA_STRESS=1`` (32 threads, 8 s, four seeds); a smaller run by default."""
    seeds, seconds, threads = ([100, 101, 102, 103], 8.0, 32) if STRESS else ([100], 1.5, 24)
    for seed in seeds:
        check_run(replay(tmp_path, seed, seconds, threads))


@pytest.mark.usefixtures("frequent_thread_switches")
def test_the_checker_finds_violations_when_it_believes_smaller_limits(tmp_path: Path) -> None:
    """The same replay judged by an oracle that believes every limit is half the real one: violations."""
    run = replay(tmp_path, 7)
    exact = check_replay(log_of(run))
    assert_clean(run, exact)
    halved = check_replay(log_of(run), shrink=0.5)
    print(f"halved limits: {len(halved.violations)} violations in {halved.admissions} admissions")
    # Tight to the unit: believing every limit one smaller flags exactly the admissions that filled a window.
    off_by_one = check_replay(log_of(run), minus=1)
    flagged = {v.split()[0] for v in off_by_one.violations}
    print(f"limits one smaller: {len(off_by_one.violations)} violations, {len(flagged)} admissions flagged")
    assert len(flagged) == exact.filled > 0
    assert halved.admissions == exact.admissions
    assert len(halved.violations) > halved.admissions // 10, (len(halved.violations), halved.admissions)
    assert any(v.split()[1] == "requestsPerMinute:" for v in halved.violations)
    assert any(v.split()[1] == "tokensPerMinute:" for v in halved.violations)


def test_a_window_compacted_while_over_its_entry_cap_keeps_its_traffic(tmp_path: Path) -> None:
    """Found by the replay: cancelled reservations leave zero entries; once they are more than half of a window that
    goes over its entry cap (a limit lowered, then recorded traffic), the window compacts and must go on trimming
    the compacted log. It must neither raise nor forget the minute's traffic."""
    clock = FakeClock(START)
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, clock=clock) as registry:
        key = registry.register_model(model({"requestsPerMinute": 10}))
        held = []
        for _ in range(10):
            held.append(registry.acquire(key, 10))
            clock.advance(0.1)
        for reservation in held[:9]:
            reservation.cancel()  # not the newest: each leaves a zero entry behind
        registry.update_model(key, {"rateLimit": {"requestsPerMinute": 2}})
        held[9].commit(0, input_tokens=10)
        for _ in range(3):
            clock.advance(0.1)
            registry.record_usage(key, 10, 0)  # not enforced: the minute now holds 4 requests
        assert not registry.check_rate_limit(key, 10).allowed
        with pytest.raises(RateLimitExceeded):
            registry.acquire(key, 10).cancel()
