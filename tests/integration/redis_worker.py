"""One worker process of tests/integration/test_redis_multiprocess.py: a registry of its own on a shared Redis
namespace, hammering one model with reservations until its time is up or the budget is spent.

Run as a fresh interpreter, by path (it imports nothing from the tests)::

    python tests/integration/redis_worker.py --url redis://127.0.0.1:PORT/0 --namespace NS --index I \
        --folder DIR --mode limits|budget --seconds S --seed N [--wait]

It writes ``DIR/ready-I`` once its registry is built and starts when ``DIR/go`` exists (so the workers start
together). For every admitted request it writes one JSON line to ``DIR/admitted-I.jsonl``: the reservation's
timestamp (the Redis server's time at admission), the Redis TIME read just before and after ``acquire`` returned,
the reserved and settled token counts, the Redis TIME read just before and after the commit or cancel (so the test
can tell, in Redis time, which admissions the settlement certainly preceded or followed) and the returned cost. At
the end it writes ``DIR/summary-I.json``: refusals by reason, budget refusals with the amounts they stated.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from noa_ai_provider import (
    BudgetExceededError,
    EnhancedModelRegistry,
    RateLimitExceeded,
    RateLimitTimeout,
)

RPM = 20
TPM = 300
MAX_IN, MAX_OUT = 10, 10
"""Most requests (limits mode) reserve 1..MAX_IN input tokens and 0..MAX_OUT output tokens..."""
BIG, BIG_IN, BIG_OUT = 0.08, 60, 40
"""... and a share BIG of them 1..BIG_IN and 0..BIG_OUT: with these, either limit may bind first."""
OVER = 8
"""A commit above the reservation adds 1..OVER tokens to what was reserved."""
BUDGET_MAX_IN = 40
BUDGET_MAX_OUT = 40
CANCEL = 0.2
"""The share of admitted requests that are cancelled instead of committed."""

PRICES: dict[str, Any] = {"inputTokens": "0.00317", "outputTokens": "0.01271", "currency": "USD", "per": 1000}
"""Prices per 1000 tokens: every cost has up to 8 decimals, none a binary fraction."""

LIMITED: dict[str, Any] = {
    "id": "mp-limited",
    "name": "Multi-process limited",
    "provider": "openai",
    "version": "1.0.0",
    "cost": PRICES,
    "rateLimit": {"requestsPerMinute": RPM, "tokensPerMinute": TPM},
}
LIMITED_KEY = "openai:mp-limited"

BUDGETED: dict[str, Any] = {
    "id": "mp-budgeted",
    "name": "Multi-process budgeted",
    "provider": "openai",
    "version": "1.0.0",
    "cost": PRICES,
    "rateLimit": {"requestsPerMinute": 10_000_000, "tokensPerMinute": 1_000_000_000},
}
BUDGETED_KEY = "openai:mp-budgeted"


def redis_time(client: redis.Redis) -> int:
    """The Redis server's TIME, in microseconds."""
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


def wait_for_go(folder: Path, index: int) -> None:
    (folder / f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while not (folder / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"worker {index} was never released")
        time.sleep(0.001)


def run_limits(
    registry: EnhancedModelRegistry, clock: redis.Redis, rng: random.Random, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Acquire (waiting, or polling on RateLimitExceeded), hold for a moment, then commit above, at or below the
    reservation, or cancel; until the time is up."""
    admitted: list[dict[str, Any]] = []
    refused: dict[str, int] = {}
    timeouts = 0
    attempts = 0
    deadline = time.monotonic() + args.seconds
    while (left := deadline - time.monotonic()) > 0:
        big = rng.random() < BIG
        inp, out = rng.randint(1, BIG_IN if big else MAX_IN), rng.randint(0, BIG_OUT if big else MAX_OUT)
        attempts += 1
        before = redis_time(clock)
        try:
            if args.wait:
                reservation = registry.acquire(LIMITED_KEY, inp, out, wait=True, timeout=min(0.4, left))
            else:
                reservation = registry.acquire(LIMITED_KEY, inp, out)
        except RateLimitTimeout:
            timeouts += 1
            continue
        except RateLimitExceeded as exc:
            refused[exc.limit] = refused.get(exc.limit, 0) + 1
            if exc.retry_after is None or exc.retry_after < 0:
                raise SystemExit(f"a refusal without a usable retry_after: {exc!r} ({exc.retry_after})") from exc
            time.sleep(min(exc.retry_after, 0.03, max(left, 0.0)))
            continue
        after = redis_time(clock)
        row: dict[str, Any] = {
            "seq": len(admitted),
            "at": reservation.timestamp,
            "acquire_lo": before,
            "acquire_hi": after,
            "in": inp,
            "out": out,
        }
        time.sleep(rng.uniform(0, 0.02))  # the provider call, while the others compete
        if rng.random() < CANCEL:
            row["lo"] = redis_time(clock)
            reservation.cancel()
            row["hi"] = redis_time(clock)
            row.update(settled="cancel", c_in=0, c_out=0, cost=None)
        else:
            c_in = None if rng.random() < 0.5 else rng.randint(max(1, inp - OVER), inp + OVER)
            c_out = rng.choice((rng.randint(0, out), out, out + rng.randint(1, OVER)))
            row["lo"] = redis_time(clock)
            cost = reservation.commit(c_out, input_tokens=c_in)
            row["hi"] = redis_time(clock)
            row.update(settled="commit", c_in=inp if c_in is None else c_in, c_out=c_out, cost=str(cost))
            if reservation.commit(c_out, input_tokens=c_in) != cost:  # a second commit counts nothing more
                raise SystemExit("a second commit returned another cost")
        admitted.append(row)
    return admitted, {"refused": refused, "timeouts": timeouts, "attempts": attempts}


def run_budget(
    registry: EnhancedModelRegistry, clock: redis.Redis, rng: random.Random, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Acquire until the budget refuses even the smallest request with nothing held; commit at or below the
    reservation (never above: that would overspend legitimately, the provider billed it), or cancel. A refused
    worker asks for less next time."""
    admitted: list[dict[str, Any]] = []
    refusals: list[dict[str, Any]] = []
    refused: dict[str, int] = {}
    cap_in, cap_out = BUDGET_MAX_IN, BUDGET_MAX_OUT
    exhausted = False
    attempts = 0
    deadline = time.monotonic() + args.seconds
    while (left := deadline - time.monotonic()) > 0:
        inp, out = rng.randint(1, cap_in), rng.randint(0, cap_out)
        attempts += 1
        before = redis_time(clock)
        try:
            reservation = registry.acquire(BUDGETED_KEY, inp, out)
        except BudgetExceededError as exc:
            refusals.append(
                {
                    "in": inp,
                    "out": out,
                    "budget_key": exc.budget_key,
                    "period": exc.period,
                    "limit": str(exc.limit),
                    "spent": str(exc.spent),
                    "reserved": str(exc.reserved),
                    "needed": str(exc.needed),
                }
            )
            if (inp, out) == (1, 0) and Decimal(str(exc.reserved)) == 0:
                exhausted = True  # nothing is held anywhere and the smallest request does not fit: spent for good
                break
            cap_in, cap_out = max(1, cap_in // 2), cap_out // 2
            time.sleep(0.001)
            continue
        except RateLimitExceeded as exc:  # not expected with these limits; counted, and the test says so
            refused[exc.limit] = refused.get(exc.limit, 0) + 1
            time.sleep(min(exc.retry_after or 0.01, 0.01, max(left, 0.0)))
            continue
        after = redis_time(clock)
        row: dict[str, Any] = {
            "seq": len(admitted),
            "at": reservation.timestamp,
            "acquire_lo": before,
            "acquire_hi": after,
            "in": inp,
            "out": out,
        }
        time.sleep(rng.uniform(0, 0.004))
        if rng.random() < CANCEL / 2:
            row["lo"] = redis_time(clock)
            reservation.cancel()
            row["hi"] = redis_time(clock)
            row.update(settled="cancel", c_in=0, c_out=0, cost=None)
        else:
            full = rng.random() < 0.3  # the worst case exactly, sometimes
            c_in = inp if full else rng.randint(0, inp)
            c_out = out if full else rng.randint(0, out)
            row["lo"] = redis_time(clock)
            cost = reservation.commit(c_out, input_tokens=c_in)
            row["hi"] = redis_time(clock)
            row.update(settled="commit", c_in=c_in, c_out=c_out, cost=str(cost))
        admitted.append(row)
    summary = {"refused": refused, "budget_refusals": refusals, "exhausted": exhausted, "attempts": attempts}
    return admitted, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--mode", choices=("limits", "budget"), required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--wait", action="store_true", help="acquire(wait=True) instead of polling")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    folder: Path = args.folder
    with (
        redis.Redis.from_url(args.url) as clock,
        EnhancedModelRegistry(
            persistence_path=folder / f"{args.index}.json",
            auto_save=False,
            backend=f"{args.url}?namespace={args.namespace}",
        ) as registry,
    ):
        registry.register_model(LIMITED if args.mode == "limits" else BUDGETED)
        wait_for_go(folder, args.index)
        started = redis_time(clock)
        run = run_limits if args.mode == "limits" else run_budget
        admitted, summary = run(registry, clock, rng, args)
        summary.update(started=started, stopped=redis_time(clock), admitted=len(admitted))
    with (folder / f"admitted-{args.index}.jsonl").open("w") as out:
        for row in admitted:
            out.write(json.dumps(row) + "\n")
    (folder / f"summary-{args.index}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
