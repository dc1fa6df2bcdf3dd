"""The Redis store on a real Redis Cluster (three masters, tests/redis_cluster.py): every key of a namespace is under
one hash tag, so one namespace lives in one slot and every script runs there. Registries on the same namespace
share rate-limit windows, usage and budgets, exactly; namespaces on different nodes are independent."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

from noa_ai_provider import BudgetExceededError, EnhancedModelRegistry, RateLimitExceeded, Reservation
from noa_ai_provider.stores.redis import RedisStore
from tests.redis_cluster import RedisCluster

KEY = "openai:clustered"

MODEL: dict[str, Any] = {
    "id": "clustered",
    "name": "Clustered",
    "provider": "openai",
    "version": "1.0.0",
    "cost": {"inputTokens": "3", "outputTokens": "15", "currency": "USD", "per": 1_000_000},
    "rateLimit": {"requestsPerMinute": 5, "tokensPerMinute": 1000},
}
"""$3 / $15 per million tokens, five requests and 1000 tokens a minute."""

ROOMY: dict[str, Any] = MODEL | {"rateLimit": {"requestsPerMinute": 10_000, "tokensPerMinute": 10_000_000}}
"""The same prices under limits a budget test never reaches."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    started = RedisCluster()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def client(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    host, port = cluster.nodes[0]
    with redis.cluster.RedisCluster(host=host, port=port, decode_responses=True) as made:
        yield made


Registry = Callable[..., EnhancedModelRegistry]


@pytest.fixture
def make_registry(cluster: RedisCluster, tmp_path: Path) -> Iterator[Registry]:
    """``make_registry(namespace, kind)``: a registry on the cluster, through its URL (``kind="url"``) or a
    ``RedisStore`` on a redis-py cluster client of its own (``kind="client"``), as another process would have; each
    with its own files. Every registry (and client) is closed after the test."""
    with ExitStack() as stack:
        made = 0

        def make(namespace: str, kind: str = "url", model: dict[str, Any] | None = None) -> EnhancedModelRegistry:
            nonlocal made
            made += 1
            backend: str | RedisStore
            if kind == "url":
                backend = f"{cluster.url}?namespace={namespace}"
            else:
                host, port = cluster.nodes[made % len(cluster.nodes)]  # each client starts from another node
                own = stack.enter_context(redis.cluster.RedisCluster(host=host, port=port))
                backend = RedisStore(own, namespace=namespace)
            folder = tmp_path / f"registry{made}"
            registry = EnhancedModelRegistry(
                persistence_path=folder / "registry.json",
                models_config_path=folder / "models-config.json",
                auto_save=False,
                backend=backend,
            )
            stack.enter_context(registry)
            assert registry.register_model(MODEL if model is None else model) == KEY
            return registry

        yield make


def slot_owner(client: redis.cluster.RedisCluster, namespace: str) -> tuple[int, tuple[str, int]]:
    """The slot of ``namespace``'s hash tag, as the server computes it (CLUSTER KEYSLOT), and the node serving it."""
    slot = int(client.cluster_keyslot(f"{{noa:{namespace}}}"))
    for (start, end), served in slots(client).items():
        if start <= slot <= end:
            return slot, served["primary"]
    raise AssertionError(f"slot {slot} of namespace {namespace!r} is not served")


def slots(client: redis.cluster.RedisCluster) -> dict[tuple[int, int], dict[str, Any]]:
    """CLUSTER SLOTS as one node answers it: ``{(start, end): {"primary": (host, port), "replicas": [...]}}``."""
    answer: Any = client.cluster_slots(target_nodes=client.get_random_node())  # parsed by redis-py into that dict
    return {(int(a), int(b)): {**v, "primary": (v["primary"][0], int(v["primary"][1]))} for (a, b), v in answer.items()}


def spread_namespaces(client: redis.cluster.RedisCluster, count: int) -> list[str]:
    """``count`` namespaces whose hash tags are served by ``count`` different nodes."""
    by_node: dict[tuple[str, int], str] = {}
    for i in range(1000):
        name = f"spread{i}"
        by_node.setdefault(slot_owner(client, name)[1], name)
        if len(by_node) == count:
            return list(by_node.values())
    raise AssertionError(f"no {count} namespaces on {count} different nodes")


def counters(registry: EnhancedModelRegistry) -> dict[str, Any]:
    """The usage counters of KEY in ``registry`` (``last_reset`` apart: when this process registered the model)."""
    stats = registry.get_usage_stats(KEY)
    assert stats is not None
    return stats.model_dump(exclude={"last_reset"})


def fill(registry: EnhancedModelRegistry, count: int, inp: int = 100, out: int = 50) -> list[Reservation]:
    return [registry.acquire(KEY, inp, out) for _ in range(count)]


# ---------------------------------------------------------------------------------------------------- the cluster


def test_the_cluster_is_three_masters_covering_every_slot(
    cluster: RedisCluster, client: redis.cluster.RedisCluster
) -> None:
    primaries = client.get_primaries()
    assert sorted((n.host, n.port) for n in primaries) == sorted(cluster.nodes)
    assert len(primaries) == 3
    assert client.get_replicas() == []
    served = slots(client)
    covered = sorted(served)
    owners = {v["primary"] for v in served.values()}
    assert all(v["replicas"] == [] for v in served.values())
    assert covered[0][0] == 0
    assert covered[-1][1] == 16383
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(covered))
    assert owners == set(cluster.nodes)
    for host, port in cluster.nodes:
        with redis.Redis(host=host, port=port, decode_responses=True) as node:
            info = node.execute_command("CLUSTER INFO")
            assert info["cluster_state"] == "ok"
            assert int(info["cluster_slots_ok"]) == 16384
            assert int(info["cluster_known_nodes"]) == 3
            assert int(info["cluster_size"]) == 3
    assert cluster.url == f"redis+cluster://{cluster.nodes[0][0]}:{cluster.nodes[0][1]}"


# ---------------------------------------------------------------------------------------------------- the store


@pytest.mark.parametrize(("namespace", "kind"), [("t1", "url"), ("t2", "client")])
def test_limits_and_usage_are_shared_and_exact(
    make_registry: Registry, client: redis.cluster.RedisCluster, namespace: str, kind: str
) -> None:
    first = make_registry(namespace, kind)
    # Up to the limit, then refused, naming the limit, with a time to wait.
    held = fill(first, 5)
    with pytest.raises(RateLimitExceeded) as refused:
        first.acquire(KEY, 100, 50)
    assert refused.value.limit == "requests per minute"
    assert refused.value.retry_after is not None
    assert 0 < refused.value.retry_after <= 60
    # Commits record exact costs: what estimate_cost says, to the last digit.
    actual = [(100, 7), (100, 13), (99, 50), (1, 0), (100, 33)]
    costs = [r.commit(out, input_tokens=inp) for r, (inp, out) in zip(held, actual, strict=True)]
    assert costs == [first.estimate_cost(KEY, inp, out) for inp, out in actual]
    assert costs[0] == Decimal("0.000405")  # (100 * 3 + 7 * 15) / 1e6
    assert held[0].commit(999) == costs[0]  # committed twice: counted once, the first cost
    stats = first.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == sum(costs)
    assert stats.total_input_tokens == sum(inp for inp, _ in actual)
    assert stats.total_output_tokens == sum(out for _, out in actual)
    assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (5, 5, 0)
    # Another registry on the same namespace: the same usage, the same (full) window.
    second = make_registry(namespace, kind)
    assert counters(second) == counters(first)
    with pytest.raises(RateLimitExceeded) as also:
        second.acquire(KEY, 1, 0)
    assert also.value.limit == "requests per minute"
    # The keys are all under the namespace's hash tag, on the node serving its slot.
    _, owner = slot_owner(client, namespace)
    node = client.get_node(host=owner[0], port=owner[1])
    keys = client.keys(f"*noa:{namespace}*", target_nodes=node)
    assert keys
    assert all(f"{{noa:{namespace}}}" in key for key in keys)
    for other in client.get_primaries():
        if (other.host, other.port) != owner:
            assert client.keys(f"*noa:{namespace}*", target_nodes=other) == []


def test_a_url_and_a_client_registry_share_one_namespace(make_registry: Registry) -> None:
    by_url, by_client = make_registry("t3", "url"), make_registry("t3", "client")
    done = fill(by_url, 4)
    open_one = by_client.acquire(KEY, 100, 50)
    with pytest.raises(RateLimitExceeded) as refused:
        by_url.acquire(KEY, 1, 0)
    assert refused.value.limit == "requests per minute"
    open_one.cancel()  # given back: the other registry gets its place
    last = by_url.acquire(KEY, 100, 50)
    with pytest.raises(RateLimitExceeded):
        by_client.acquire(KEY, 1, 0)
    costs = [r.commit(10) for r in [*done, last]]
    assert counters(by_client) == counters(by_url)
    stats = by_url.get_usage_stats(KEY)
    assert stats is not None
    assert stats.request_count == 5
    assert stats.total_cost == sum(costs) == 5 * Decimal("0.00045")


def test_the_token_limit_is_shared(make_registry: Registry) -> None:
    first, second = make_registry("t4"), make_registry("t4", "client")
    held = first.acquire(KEY, 600, 0)
    with pytest.raises(RateLimitExceeded) as refused:
        second.acquire(KEY, 300, 200)
    assert refused.value.limit == "tokens per minute"
    assert refused.value.retry_after is not None
    with pytest.raises(RateLimitExceeded) as never:
        second.acquire(KEY, 1001, 0)  # over the limit by itself
    assert never.value.retry_after is None
    other = second.acquire(KEY, 300, 100)  # 600 + 400 = 1000: exactly the limit
    assert held.commit(0) == Decimal("0.0018")
    assert other.commit(100) == Decimal("0.0024")


@pytest.mark.parametrize(("namespace", "kind"), [("b1", "url"), ("b2", "client")])
def test_a_daily_budget_is_never_overspent(make_registry: Registry, namespace: str, kind: str) -> None:
    first = make_registry(namespace, kind, ROOMY)
    second = make_registry(namespace, kind, ROOMY)
    limit = Decimal("0.01")
    first.set_budget("0.01", period="day")
    worst = first.estimate_cost(KEY, 100, 20)  # 0.0006
    assert worst == Decimal("0.0006")
    # Two worst cases in flight would not fit a budget with 0.001 left: the second is refused at once.
    filler = first.acquire(KEY, 3000, 0)  # worst case 0.009
    assert filler.commit(0) == Decimal("0.009")
    one = first.acquire(KEY, 100, 20)
    with pytest.raises(BudgetExceededError) as refused:
        second.acquire(KEY, 100, 20)
    error = refused.value
    assert (error.budget_key, error.period) == (None, "day")
    assert Decimal(str(error.limit)) == limit
    assert Decimal(str(error.spent)) == Decimal("0.009")
    assert Decimal(str(error.reserved)) == worst
    assert Decimal(str(error.needed)) == worst
    (status,) = second.get_budget_status()
    assert (status.key, status.period, status.limit) == (None, "day", limit)
    assert (status.spent, status.reserved, status.remaining) == (Decimal("0.009"), worst, Decimal("0.0004"))
    assert status.period_start is not None
    assert status.period_end is not None
    assert status.period_end - status.period_start == timedelta(days=1)
    assert (status.period_start.hour, status.period_start.minute, status.period_start.second) == (0, 0, 0)
    # The commit corrects the hold to the actual cost; the freed room is seen by the other registry.
    assert one.commit(5) == Decimal("0.000375")
    (status,) = second.get_budget_status()
    assert (status.spent, status.reserved, status.remaining) == (Decimal("0.009375"), Decimal(0), Decimal("0.000625"))
    two = second.acquire(KEY, 100, 20)
    assert (first.get_budget_status()[0].reserved, first.get_budget_status()[0].spent) == (worst, Decimal("0.009375"))
    two.cancel()
    (status,) = first.get_budget_status()
    assert (status.spent, status.reserved) == (Decimal("0.009375"), Decimal(0))


def test_a_budget_shared_by_racing_registries_is_never_crossed(make_registry: Registry) -> None:
    registries = [make_registry("b3", kind, ROOMY) for kind in ("url", "client", "url", "client")]
    limit = Decimal("0.3")  # about 170 requests of 8 threads on 4 registries
    registries[0].set_budget(limit, period="day")
    costs: list[Decimal] = []
    refusals: list[BudgetExceededError] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def spend(registry: EnhancedModelRegistry, seed: int) -> None:
        try:
            for step in range(200):
                try:
                    reservation = registry.acquire(KEY, 100, 200)  # worst case 0.0033
                except BudgetExceededError as exc:
                    with lock:
                        refusals.append(exc)
                    return
                cost = reservation.commit((seed * 37 + step * 11) % 201)  # 0 to 200 of the 200 allowed
                with lock:
                    costs.append(cost)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=spend, args=(r, i)) for i, r in enumerate(registries * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(refusals) == len(threads)
    for registry in registries:
        (status,) = registry.get_budget_status()
        assert status.spent == sum(costs)
        assert status.reserved == 0
        assert status.spent <= limit
        assert status.spent + Decimal("0.0033") > limit  # the last refusal was due: the worst case did not fit
        stats = registry.get_usage_stats(KEY)
        assert stats is not None
        assert stats.total_cost == sum(costs)
        assert stats.request_count == len(costs)
    for exc in refusals:
        assert Decimal(str(exc.spent)) + Decimal(str(exc.reserved)) + Decimal(str(exc.needed)) > limit


def test_namespaces_on_different_nodes_are_independent(
    make_registry: Registry, client: redis.cluster.RedisCluster
) -> None:
    names = spread_namespaces(client, 3)
    owners = {slot_owner(client, name)[1] for name in names}
    assert len(owners) == 3  # CLUSTER KEYSLOT puts them on three different masters
    first, second, third = (
        make_registry(name, kind) for name, kind in zip(names, ("url", "client", "url"), strict=True)
    )
    full = fill(first, 5)
    with pytest.raises(RateLimitExceeded):
        first.acquire(KEY, 1, 0)
    second.set_budget("0.0025", period="day")
    with pytest.raises(BudgetExceededError):
        second.acquire(KEY, 900, 0)  # 0.0027 worst case: over the second namespace's budget only
    others = [
        *fill(second, 5, 100, 10),
        *fill(third, 5),
    ]  # 5 * 0.00045 fits the second namespace's budget  # the first namespace's window is not theirs
    with pytest.raises(RateLimitExceeded):
        third.acquire(KEY, 1, 0)
    first_costs = [r.commit(1) for r in full]
    other_costs = [r.commit(2) for r in others]
    assert first.get_budget_status() == []
    assert third.get_budget_status() == []
    (status,) = second.get_budget_status()
    assert status.spent == sum(other_costs[:5])
    stats = [registry.get_usage_stats(KEY) for registry in (first, second, third)]
    assert [s.request_count for s in stats if s is not None] == [5, 5, 5]
    assert [s.total_cost for s in stats if s is not None] == [
        sum(first_costs),
        sum(other_costs[:5]),
        sum(other_costs[5:]),
    ]
    for name, owner in zip(names, (slot_owner(client, name)[1] for name in names), strict=True):
        node = client.get_node(host=owner[0], port=owner[1])
        assert client.keys(f"*{{noa:{name}}}*", target_nodes=node)
