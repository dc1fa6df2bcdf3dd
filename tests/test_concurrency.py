"""The registry under real threads: exact totals, exact access and event counts, no deadlock, no exception.

Threads start together on a barrier. Writers record random usage on shared models while readers call the getters,
searches, statistics and rate-limit checks; at the end every counter must equal the sum of what the threads did.
Joins use a timeout so that a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import decimal
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, ModelNotFoundError

JOIN_TIMEOUT = 30.0  # for all threads of one run together; far above the normal run time (about a second)
WRITERS = 8
RECORDS_PER_WRITER = 2_000

PRICES = {
    "alpha": (Decimal("0.0015"), Decimal("0.002"), 1000),
    "beta": (Decimal("0.00000037"), Decimal("12.5"), 1_000_000),
}


def model(model_id: str, pin: Decimal, pout: Decimal, per: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id.title(),
        "provider": "openai",
        "version": "1.0.0",
        "capabilities": ["chat_completion"],
        "cost": {"inputTokens": str(pin), "outputTokens": str(pout), "per": per},
        **extra,
    }


def cost(i: int, o: int, pin: Decimal, pout: Decimal, per: int) -> Decimal:
    with decimal.localcontext(prec=60):
        return (i * pin + o * pout) / per


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond (default 5 ms) so that unsynchronised read-modify-write races show."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def new_registry(tmp_path: Path, backend: str) -> EnhancedModelRegistry:
    """A registry on the real clock and ``backend`` (the test's ``store``)."""
    return EnhancedModelRegistry(persistence_path=tmp_path / "registry.json", auto_save=False, backend=backend)


class Workers:
    """Threads that start together and report exceptions instead of dying silently."""

    def __init__(self) -> None:
        self.targets: list[tuple[str, Callable[[], None]]] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.stop = threading.Event()

    def add(self, name: str, target: Callable[[], None]) -> None:
        self.targets.append((name, target))

    def run(self, *, stop_after: set[str] | None = None) -> None:
        """Run all targets; when the ones named in ``stop_after`` finish, set ``stop`` for the others."""
        barrier = threading.Barrier(len(self.targets))
        finishers = [name for name, _ in self.targets if stop_after is None or name in stop_after]
        remaining = [len(finishers)]
        lock = threading.Lock()

        def wrap(name: str, target: Callable[[], None]) -> Callable[[], None]:
            def body() -> None:
                try:
                    barrier.wait(timeout=JOIN_TIMEOUT)
                    target()
                except BaseException as exc:
                    self.errors.append((name, exc))
                    self.stop.set()
                finally:
                    if name in finishers:
                        with lock:
                            remaining[0] -= 1
                            if remaining[0] == 0:
                                self.stop.set()

            return body

        threads = [threading.Thread(target=wrap(n, t), name=n, daemon=True) for n, t in self.targets]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + JOIN_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        stuck = [t.name for t in threads if t.is_alive()]
        self.stop.set()
        assert not stuck, f"threads did not finish (deadlock?): {stuck}"
        assert not self.errors, f"exceptions in threads: {self.errors!r}"


def test_concurrent_recording_and_reading_keeps_exact_totals(tmp_path: Path, store: str) -> None:
    registry = new_registry(tmp_path, store)
    keys = {
        "alpha": registry.register_model(
            model(
                "alpha",
                *PRICES["alpha"],
                rateLimit={"requestsPerMinute": 1_000, "tokensPerMinute": 10**9, "requestsPerDay": 10**6},
            )
        ),
        "beta": registry.register_model(model("beta", *PRICES["beta"], rateLimit={"tokensPerMinute": 5_000})),
    }
    key_list = list(keys.values())
    price_by_key = {keys[name]: PRICES[name] for name in keys}

    events: list[int] = [0]
    event_cost: dict[str, Decimal] = {k: Decimal(0) for k in key_list}
    event_lock = threading.Lock()

    handler_errors: list[BaseException] = []

    @registry.on("usage-recorded")
    def count(sender: EnhancedModelRegistry, **payload: Any) -> None:
        # The registry logs and swallows handler exceptions; keep them to fail the test.
        try:
            assert sender is registry
            expected = cost(payload["input_tokens"], payload["output_tokens"], *price_by_key[payload["key"]])
            assert payload["cost"] == expected
            with event_lock:
                events[0] += 1
                event_cost[payload["key"]] += payload["cost"]
        except BaseException as exc:
            handler_errors.append(exc)

    recorded: list[list[tuple[str, int, int, bool, Decimal]]] = [[] for _ in range(WRITERS)]
    accesses: list[Counter[str]] = []
    workers = Workers()
    # (A round trip per call on a server store: a quarter of the records, still thousands interleaved with reads.)
    records_per_writer = RECORDS_PER_WRITER if store.startswith("memory") else RECORDS_PER_WRITER // 4

    def writer(n: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(1_000 + n)
            mine = recorded[n]
            for _ in range(records_per_writer):
                key = rng.choice(key_list)
                i = rng.choice((0, rng.randrange(5_000), rng.randrange(10**9)))
                o = rng.randrange(4_000)
                ok = rng.random() < 0.8
                returned = registry.record_usage(key, i, o, success=ok)
                mine.append((key, i, o, ok, returned))

        return run

    def reader(n: int) -> Callable[[], None]:
        counter: Counter[str] = Counter()
        accesses.append(counter)

        def run() -> None:
            rng = random.Random(n)
            while not workers.stop.is_set():
                op = rng.randrange(7)
                key = rng.choice(key_list)
                if op == 0:
                    entry = registry.get_model(key)
                    assert entry is not None
                    counter[key] += 1
                    assert entry.access_count >= counter[key]
                elif op == 1:
                    entry = registry.get_model_by_provider_and_id("openai", key.split(":", 1)[1])
                    assert entry is not None
                    counter[key] += 1
                elif op == 2:
                    listed = registry.list_models()
                    assert [e.key for e in listed] == key_list
                    for e in listed:  # a snapshot is internally consistent
                        u = e.usage_stats
                        assert u.successful_requests + u.failed_requests == u.request_count
                elif op == 3:
                    check = registry.check_rate_limit(key, rng.randrange(6_000))
                    assert check.allowed or check.reason is not None
                elif op == 4:
                    found = registry.search_models(capability="chat_completion", provider="openai")
                    assert [e.key for e in found] == key_list
                elif op == 5:
                    stats = registry.get_statistics()
                    assert stats.total_models == 2
                    assert stats.total_input_tokens >= 0
                else:
                    usage = registry.get_usage_stats(key)
                    assert usage is not None
                    assert usage.successful_requests + usage.failed_requests == usage.request_count

        return run

    for n in range(WRITERS):
        workers.add(f"writer-{n}", writer(n))
    for n in range(4):
        workers.add(f"reader-{n}", reader(n))
    workers.run(stop_after={f"writer-{n}" for n in range(WRITERS)})

    assert not handler_errors
    everything = [r for rs in recorded for r in rs]
    assert len(everything) == WRITERS * records_per_writer
    assert events[0] == len(everything)
    for key in key_list:
        mine = [r for r in everything if r[0] == key]
        usage = registry.get_usage_stats(key)
        assert usage is not None
        assert usage.request_count == len(mine)
        assert usage.successful_requests == sum(1 for r in mine if r[3])
        assert usage.failed_requests == sum(1 for r in mine if not r[3])
        assert usage.total_input_tokens == sum(r[1] for r in mine)
        assert usage.total_output_tokens == sum(r[2] for r in mine)
        expected = Decimal(0)
        with decimal.localcontext(prec=60):
            for _, i, o, _, returned in mine:
                assert returned == cost(i, o, *price_by_key[key])
                expected += returned
        assert usage.total_cost == expected
        assert event_cost[key] == expected
    statistics = registry.get_statistics()
    with decimal.localcontext(prec=60):
        assert statistics.total_cost == sum((r[4] for r in everything), Decimal(0))
    assert statistics.total_requests == len(everything)
    # Access counts: exactly the get_model calls made (listing, search, statistics record none).
    expected_access = sum(accesses, Counter())
    entries = {e.key: e for e in registry.list_models()}
    for key in key_list:
        assert entries[key].access_count == expected_access[key]
    assert statistics.total_accesses == sum(expected_access.values())
    assert sum(expected_access.values()) > 0


def test_handler_calling_the_registry_does_not_deadlock(tmp_path: Path, store: str) -> None:
    """Events are emitted after the lock is released: a handler may read and even write the registry."""
    registry = new_registry(tmp_path, store)
    outer = registry.register_model(model("outer", Decimal("0.01"), Decimal("0.03"), 1000))
    inner = registry.register_model(
        model("inner", Decimal("0.001"), Decimal("0.002"), 1000, rateLimit={"requestsPerMinute": 5})
    )
    seen: Counter[str] = Counter()
    seen_lock = threading.Lock()
    handler_errors: list[BaseException] = []

    def handler(sender: EnhancedModelRegistry, **payload: Any) -> None:
        try:
            key = payload["key"]
            with seen_lock:
                seen[key] += 1
            stats = sender.get_usage_stats(key)
            assert stats is not None
            assert stats.total_cost >= payload["total_cost"]  # others may have added more since
            sender.get_model(key)
            sender.list_models()
            sender.get_statistics()
            sender.check_rate_limit(key, 10)
            sender.search_models(name_pattern="o")
            if key == outer:
                sender.record_usage(inner, 1, 1)  # re-entrant write: emits its own event from inside this one
        except BaseException as exc:  # the registry would log and swallow it
            handler_errors.append(exc)

    registry.on("usage-recorded", handler)
    per_thread = 300

    def work() -> None:
        for n in range(per_thread):
            registry.record_usage(outer, n, n, success=n % 5 != 0)

    workers = Workers()
    for n in range(4):
        workers.add(f"worker-{n}", work)
    workers.run()

    assert not handler_errors
    assert seen[outer] == 4 * per_thread
    assert seen[inner] == 4 * per_thread
    out_stats, in_stats = registry.get_usage_stats(outer), registry.get_usage_stats(inner)
    assert out_stats is not None
    assert in_stats is not None
    assert out_stats.request_count == in_stats.request_count == 4 * per_thread
    assert out_stats.failed_requests == 4 * (per_thread // 5)
    assert in_stats.total_cost == 4 * per_thread * Decimal("0.000003")
    # get_model in the handler counted one access per event.
    assert registry.get_model(outer).access_count == 4 * per_thread + 1  # type: ignore[union-attr]


def test_single_thread_handler_sees_the_state_after_the_change(tmp_path: Path, store: str) -> None:
    registry = new_registry(tmp_path, store)
    key = registry.register_model(model("m", Decimal("0.01"), Decimal("0.03"), 1000))
    observed: list[tuple[Decimal, Decimal, int]] = []
    registry.on(
        "usage-recorded",
        lambda sender, **p: observed.append(
            (
                p["total_cost"],
                sender.get_usage_stats(p["key"]).total_cost,
                sender.get_usage_stats(p["key"]).request_count,
            )
        ),
    )
    done = threading.Event()

    def run() -> None:
        for _ in range(10):
            registry.record_usage(key, 1000, 1000)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=JOIN_TIMEOUT)
    assert done.is_set(), "record_usage from a handler-carrying registry deadlocked"
    assert observed == [(Decimal("0.04") * n, Decimal("0.04") * n, n) for n in range(1, 11)]


def test_register_unregister_churn_against_recording(tmp_path: Path, store: str) -> None:
    registry = new_registry(tmp_path, store)
    stable = registry.register_model(model("stable", Decimal("0.5"), Decimal("0.25"), 1))
    lifecycle: Counter[str] = Counter()
    lifecycle_lock = threading.Lock()

    def on_event(name: str) -> Callable[..., None]:
        def handler(sender: EnhancedModelRegistry, **payload: Any) -> None:
            with lifecycle_lock:
                lifecycle[name] += 1

        return handler

    for name in ("model-registered", "model-updated", "model-unregistered"):
        registry.on(name, on_event(name))

    churners, cycles = 3, 400
    final_present: dict[str, bool] = {}
    recorded: list[list[tuple[int, int]]] = [[] for _ in range(4)]
    updates = [0] * churners
    workers = Workers()

    def churn(n: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(n)
            for c in range(cycles):
                model_id = f"churn-{n}-{c % 7}"
                key = registry.register_model(model(model_id, Decimal("0.1"), Decimal("0.1"), 1000))
                if rng.random() < 0.5:
                    registry.update_model_status(key, "deprecated")
                    updates[n] += 1
                removed = registry.unregister_model(key)
                assert removed
                assert not registry.unregister_model(key)
            # Leave one model registered at the end.
            final_present[registry.register_model(model(f"churn-{n}-last", Decimal(0), Decimal(0), 1))] = True

        return run

    def record(n: int) -> Callable[[], None]:
        def run() -> None:
            rng = random.Random(100 + n)
            for _ in range(1_500):
                i, o = rng.randrange(10_000), rng.randrange(10_000)
                registry.record_usage(stable, i, o)
                recorded[n].append((i, o))
                # A churning model may vanish between any two calls: that is a clean ModelNotFoundError.
                with contextlib.suppress(ModelNotFoundError):
                    registry.record_usage(f"openai:churn-0-{rng.randrange(7)}", 1, 1)

        return run

    def browse() -> None:
        while not workers.stop.is_set():
            for entry in registry.list_models():
                assert entry.key == f"{entry.provider}:{entry.id}"
            assert registry.get_model(stable) is not None
            stats = registry.get_statistics()
            assert stats.total_models >= 1
            registry.search_models(exclude_deprecated=True)
            registry.get_most_used_models(limit=3)

    for n in range(churners):
        workers.add(f"churn-{n}", churn(n))
    for n in range(4):
        workers.add(f"record-{n}", record(n))
    workers.add("browse", browse)
    workers.run(stop_after={f"churn-{n}" for n in range(churners)} | {f"record-{n}" for n in range(4)})

    rows = [r for rs in recorded for r in rs]
    usage = registry.get_usage_stats(stable)
    assert usage is not None
    assert usage.request_count == len(rows) == 4 * 1_500
    assert usage.total_input_tokens == sum(i for i, _ in rows)
    assert usage.total_output_tokens == sum(o for _, o in rows)
    assert usage.total_cost == sum(
        (Decimal(i) * Decimal("0.5") + Decimal(o) * Decimal("0.25") for i, o in rows), Decimal(0)
    )
    keys = [e.key for e in registry.list_models()]
    assert keys[0] == stable
    assert sorted(keys[1:]) == sorted(final_present)
    assert lifecycle["model-registered"] == churners * (cycles + 1)  # the stable model came before the handler
    assert lifecycle["model-unregistered"] == churners * cycles
    assert lifecycle["model-updated"] == sum(updates)


@pytest.mark.parametrize("threads", [2, 8])
def test_concurrent_reset_and_record_lose_nothing_after_the_last_reset(
    tmp_path: Path, store: str, threads: int
) -> None:
    """Resets race with records; after the resets stop, every later record counts exactly once."""
    registry = new_registry(tmp_path, store)
    key = registry.register_model(model("m", Decimal("1"), Decimal("1"), 1))
    workers = Workers()

    def resetter() -> None:
        for _ in range(200):
            registry.reset_usage_stats(key)

    def writer() -> None:
        for _ in range(500):
            registry.record_usage(key, 1, 2)

    workers.add("reset", resetter)
    for n in range(threads):
        workers.add(f"writer-{n}", writer)
    workers.run()
    usage = registry.get_usage_stats(key)
    assert usage is not None
    assert usage.request_count <= threads * 500
    assert usage.total_input_tokens == usage.request_count
    assert usage.total_output_tokens == 2 * usage.request_count
    assert usage.total_cost == 3 * usage.request_count
    registry.reset_usage_stats(key)
    for _ in range(10):
        registry.record_usage(key, 1, 2)
    assert registry.get_usage_stats(key).total_cost == Decimal(30)  # type: ignore[union-attr]
