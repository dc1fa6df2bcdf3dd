"""Stores chosen by URL (``noa_ai_provider.stores``): ``store_from_url``, the ``backend=`` argument, and the store
guarantees (``stores/base.py``) as the registry shows them, on every store of ``conftest.STORES``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

import noa_ai_provider.stores
from noa_ai_provider import BudgetExceededError, ConfigError, EnhancedModelRegistry, RateLimitExceeded
from noa_ai_provider.stores import SCHEMES, Scheme, Store, store_from_url
from noa_ai_provider.stores.memory import MemoryStore
from noa_ai_provider.testing import FakeClock, window_totals

from .conftest import STORES, store_id
from .samples import limited

ROOT = Path(__file__).resolve().parent.parent
MISSING = "a_package_that_does_not_exist"


def new_registry(tmp_path: Path, clock: FakeClock, backend: object, **kwargs: object) -> EnhancedModelRegistry:
    return EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json",
        auto_save=False,
        clock=clock,
        backend=backend,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- store_from_url


@pytest.mark.parametrize("url", ["memory://", "MEMORY://", "Memory://"])
def test_memory_url_makes_a_memory_store_whatever_the_case_of_its_scheme(url: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, MemoryStore)
    assert store.url == "memory://"
    assert store_from_url(url) is not store  # a new store each time


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("nosuch://host", "'nosuch'"),
        ("memcached://localhost", "'memcached'"),
        ("memory", "'(none)'"),
        ("", "'(none)'"),
        ("localhost:6379", "'(none)'"),
    ],
)
def test_an_unknown_scheme_is_refused_naming_the_known_ones(url: str, scheme: str) -> None:
    with pytest.raises(ConfigError) as info:
        store_from_url(url)
    message = str(info.value)
    assert f"backend {url!r}: unknown store scheme {scheme}; known: " in message, message
    assert "known:" in message
    for name in SCHEMES:
        assert f"'{name}://'" in message, message


@pytest.mark.parametrize("url", [None, 42, b"memory://", ["memory://"], MemoryStore])
def test_a_url_that_is_not_a_string_is_refused(url: object) -> None:
    with pytest.raises(ConfigError, match="backend must be a store URL such as 'memory://' or a Store"):
        store_from_url(url)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["memory://something", "memory://localhost:6379/0", "memory:///tmp/state", "memory://?size=1", "memory:"]
)
def test_a_memory_url_takes_nothing_after_the_scheme(url: str) -> None:
    with pytest.raises(ConfigError, match=r"use 'memory://'|unknown store scheme"):
        store_from_url(url)


def test_memory_urls_with_more_are_refused_by_the_registry_too(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="memory store takes no host"):
        new_registry(tmp_path, clock, "memory://something")


@pytest.mark.parametrize(("extra", "named"), [("fake", "fake"), (None, MISSING)])
def test_a_store_whose_package_is_missing_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, extra: str | None, named: str
) -> None:
    scheme = Scheme("noa_ai_provider.stores.memory:MemoryStore.from_url", requires=(MISSING,), extra=extra)
    monkeypatch.setitem(noa_ai_provider.stores.SCHEMES, "fake", scheme)
    with pytest.raises(ConfigError) as info:
        store_from_url("fake://host")
    message = str(info.value)
    assert f"pip install 'noa-ai-provider[{named}]'" in message, message
    assert repr(MISSING) in message
    assert isinstance(info.value.__cause__, ImportError)
    assert MISSING not in sys.modules


def test_the_registry_passes_the_missing_package_error_on(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheme = Scheme("noa_ai_provider.stores.memory:MemoryStore.from_url", requires=(MISSING,), extra="fake")
    monkeypatch.setitem(noa_ai_provider.stores.SCHEMES, "fake", scheme)
    with pytest.raises(ConfigError, match=r"pip install 'noa-ai-provider\[fake\]'"):
        new_registry(tmp_path, clock, "fake://host")


def test_a_scheme_whose_factory_makes_no_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(noa_ai_provider.stores.SCHEMES, "fake", Scheme("builtins:str"))
    with pytest.raises(ConfigError, match="builtins:str made str, not a Store"):
        store_from_url("fake://host")


def test_every_url_the_suite_runs_over_makes_a_store(store: str) -> None:
    made = store_from_url(store)
    assert isinstance(made, Store)
    assert made.url.partition("://")[0] == store.partition("://")[0].lower()
    made.close()


def test_every_extra_a_scheme_names_is_declared() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, scheme in SCHEMES.items():
        assert isinstance(scheme, Scheme), name
        if scheme.requires:
            assert (scheme.extra or scheme.requires[0]) in declared, (name, scheme)


# --------------------------------------------------------------------------- backend=


def test_a_store_instance_given_as_backend_is_the_one_used(tmp_path: Path, clock: FakeClock) -> None:
    store = MemoryStore()
    with new_registry(tmp_path, clock, store) as registry:
        key = registry.register_model(limited({"requestsPerMinute": 5, "tokensPerMinute": 1_000}))
        reservation = registry.acquire(key, 300, 100)
        assert store.window_totals(key) == {"requests_per_minute": 1, "tokens_per_minute": 400}
        assert window_totals(registry, key) == store.window_totals(key)
        reservation.commit(50)
        assert store.window_totals(key) == {"requests_per_minute": 1, "tokens_per_minute": 350}
        assert store.usage_totals()[key][:3] == (300, 50, 1)
        assert "backend='memory://'" in repr(registry)


def test_the_same_store_cannot_serve_two_registries(tmp_path: Path, clock: FakeClock) -> None:
    store = MemoryStore()
    with new_registry(tmp_path, clock, store) as first:
        key = first.register_model(limited({"requestsPerMinute": 1}))
        with pytest.raises(ConfigError, match="already serves another registry"):
            new_registry(tmp_path / "other", clock, store)
        first.acquire(key, 0).commit(0)  # the first registry is untouched
        assert store.window_totals(key) == {"requests_per_minute": 1}


@pytest.mark.parametrize("backend", [object(), MemoryStore, None, 42, b"memory://", {"url": "memory://"}])
def test_a_backend_that_is_neither_a_url_nor_a_store_is_refused(
    tmp_path: Path, clock: FakeClock, backend: object
) -> None:
    with pytest.raises(ConfigError, match="backend must be a store URL such as 'memory://' or a Store"):
        new_registry(tmp_path, clock, backend)


@pytest.mark.parametrize("url", ["nosuch://host", "memory"])
def test_an_unknown_backend_url_is_refused_by_the_registry(tmp_path: Path, clock: FakeClock, url: str) -> None:
    with pytest.raises(ConfigError, match="unknown store scheme"):
        new_registry(tmp_path, clock, url)


def test_repr_names_the_backend(store: str, registry: EnhancedModelRegistry) -> None:
    assert f"backend='{store_id(store)}://" in repr(registry)


def test_the_default_backend_is_memory(tmp_path: Path, clock: FakeClock) -> None:
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, clock=clock) as registry:
        assert "backend='memory://'" in repr(registry)


def test_importing_the_package_imports_no_optional_store_package(tmp_path: Path) -> None:
    # A stand-in `redis` first on the path: were the package to import redis (even inside try/except ImportError),
    # this one would load and show in sys.modules, whether or not the real one is installed.
    fake = tmp_path / "redis"
    fake.mkdir()
    (fake / "__init__.py").write_text("IMPORTED = True\n")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import noa_ai_provider, noa_ai_provider.stores; "
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the guarantees, on every store

LIMITS = {"requestsPerMinute": 2, "tokensPerMinute": 600}  # samples.limited: 0.01 in, 0.03 out per 1,000 tokens


def reserved(registry: EnhancedModelRegistry) -> dict[tuple[str | None, str], Decimal]:
    return {(s.key, s.period): s.reserved for s in registry.get_budget_status()}


def spent(registry: EnhancedModelRegistry) -> dict[tuple[str | None, str], Decimal]:
    return {(s.key, s.period): s.spent for s in registry.get_budget_status()}


@pytest.fixture
def budgeted(registry: EnhancedModelRegistry) -> tuple[EnhancedModelRegistry, str]:
    """``limited`` with LIMITS, a global day budget of 0.012 and its own total budget of 0.007 (on the test's store:
    the tests taking it use the ``store`` fixture)."""
    key = registry.register_model(limited(LIMITS))
    registry.set_budget(Decimal("0.012"), period="day")
    registry.set_budget(Decimal("0.007"), period="total", key=key)
    return registry, key


@pytest.mark.usefixtures("store")
def test_a_reservation_takes_every_limit_and_budget_or_nothing(budgeted: tuple[EnhancedModelRegistry, str]) -> None:
    registry, key = budgeted
    first = registry.acquire(key, 500, 0)  # 0.005
    taken = {"requests_per_minute": 1, "tokens_per_minute": 500}
    holds = {(None, "day"): Decimal("0.005"), (key, "total"): Decimal("0.005")}
    assert (window_totals(registry, key), reserved(registry)) == (taken, holds)
    # The windows admit 100 more tokens, the model's budget does not (0.005 + 0.003 > 0.007; the global one would).
    with pytest.raises(BudgetExceededError) as refused:
        registry.acquire(key, 0, 100)
    assert (refused.value.budget_key, refused.value.period) == (key, "total")
    assert (window_totals(registry, key), reserved(registry)) == (taken, holds)
    # Both budgets admit 101 input tokens (0.00101), the token window does not (601 > 600).
    with pytest.raises(RateLimitExceeded) as limited_by:
        registry.acquire(key, 101, 0)
    assert limited_by.value.limit == "tokens per minute"
    assert (window_totals(registry, key), reserved(registry)) == (taken, holds)
    second = registry.acquire(key, 100, 0)  # fits everything: the refusals left nothing behind
    # The request window is full now: refused, and a request of no cost takes no budget either.
    with pytest.raises(RateLimitExceeded) as full:
        registry.acquire(key, 0, 0)
    assert full.value.limit == "requests per minute"
    assert window_totals(registry, key) == {"requests_per_minute": 2, "tokens_per_minute": 600}
    assert reserved(registry) == {(None, "day"): Decimal("0.006"), (key, "total"): Decimal("0.006")}
    first.cancel()
    second.cancel()
    assert window_totals(registry, key) == {"requests_per_minute": 0, "tokens_per_minute": 0}
    assert reserved(registry) == {(None, "day"): 0, (key, "total"): 0}
    assert spent(registry) == {(None, "day"): 0, (key, "total"): 0}
    registry.acquire(key, 0, 100).cancel()  # 0.003: fits the model's budget again


@pytest.mark.usefixtures("store")
def test_a_commit_is_settled_once_whoever_asks(budgeted: tuple[EnhancedModelRegistry, str]) -> None:
    registry, key = budgeted
    reservation = registry.acquire(key, 100, 100)  # worst case 0.001 + 0.003
    assert reserved(registry)[(key, "total")] == Decimal("0.004")
    first = reservation.commit(30)
    assert first == Decimal("0.0019")  # 100 * 0.01 / 1000 + 30 * 0.03 / 1000
    state = (window_totals(registry, key), reserved(registry), spent(registry), registry.get_usage_stats(key))
    assert state[:3] == (
        {"requests_per_minute": 1, "tokens_per_minute": 130},
        {(None, "day"): 0, (key, "total"): 0},
        {(None, "day"): first, (key, "total"): first},
    )
    assert reservation.commit(99, input_tokens=1, success=False) == first  # again: the first result
    reservation.cancel()  # after the commit: nothing
    reservation.fail()
    assert reservation.state == "committed"
    assert (window_totals(registry, key), reserved(registry), spent(registry), registry.get_usage_stats(key)) == state
    stats = state[3]
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens, stats.total_output_tokens) == (1, 100, 30)


def test_an_expired_reservation_gives_its_holds_back(tmp_path: Path, clock: FakeClock, store: str) -> None:
    with new_registry(tmp_path, clock, store, reservation_timeout=30) as registry:
        key = registry.register_model(limited(LIMITS))
        registry.set_budget(Decimal("0.012"), period="day")
        reservation = registry.acquire(key, 500, 100)  # 0.005 + 0.003
        assert reservation.expires_at == clock() + 30
        assert window_totals(registry, key) == {"requests_per_minute": 1, "tokens_per_minute": 600}
        assert reserved(registry) == {(None, "day"): Decimal("0.008")}
        clock.advance(29)
        assert reservation.open
        clock.advance(1)  # expired, within the minute the windows would still count it
        assert reserved(registry) == {(None, "day"): 0}  # get_budget_status gives the expired holds back
        assert reservation.state == "expired"
        assert window_totals(registry, key) == {"requests_per_minute": 0, "tokens_per_minute": 0}
        registry.acquire(key, 600, 0).cancel()  # the whole minute's tokens fit again
        reservation.cancel()  # a no-op now
        assert reservation.state == "expired"
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert stats.request_count == 0


@pytest.mark.parametrize("how", ["expired", "collected"])
def test_window_totals_leave_out_a_reservation_no_longer_open(
    tmp_path: Path, clock: FakeClock, store: str, how: str
) -> None:
    """window_totals count open reservations (stores/base.py): not one that expired or was garbage-collected open,
    even when no other operation has given its holds back yet."""
    with new_registry(tmp_path, clock, store, reservation_timeout=30) as registry:
        key = registry.register_model(limited(LIMITS))
        if how == "expired":
            reservation = registry.acquire(key, 500, 100)
            clock.advance(30)
        else:
            with pytest.warns(ResourceWarning, match="garbage-collected while open"):
                registry.acquire(key, 500, 100)
        assert window_totals(registry, key) == {"requests_per_minute": 0, "tokens_per_minute": 0}
        if how == "expired":
            assert reservation.state == "expired"


@pytest.mark.usefixtures("store")
def test_window_totals_count_open_reservations(registry: EnhancedModelRegistry, clock: FakeClock) -> None:
    key = registry.register_model(
        limited(
            {
                "requestsPerMinute": 5,
                "tokensPerMinute": 1_000,
                "inputTokensPerMinute": 800,
                "outputTokensPerMinute": 400,
                "requestsPerDay": 10,
            }
        )
    )
    names = ("requests_per_minute", "tokens_per_minute", "input_tokens_per_minute", "output_tokens_per_minute")

    def totals(*values: int) -> dict[str, int]:
        return dict(zip((*names, "requests_per_day"), values, strict=True))

    assert window_totals(registry, key) == totals(0, 0, 0, 0, 0)
    first = registry.acquire(key, 300, 200)
    assert window_totals(registry, key) == totals(1, 500, 300, 200, 1)
    clock.advance(1)
    second = registry.acquire(key, 100, 50)
    assert window_totals(registry, key) == totals(2, 650, 400, 250, 2)
    first.commit(20)  # corrected to what was used
    assert window_totals(registry, key) == totals(2, 470, 400, 70, 2)
    second.cancel()  # given back
    assert window_totals(registry, key) == totals(1, 320, 300, 20, 1)
    registry.record_usage(key, 10, 5)  # recorded traffic counts too
    assert window_totals(registry, key) == totals(2, 335, 310, 25, 2)
    clock.advance(60)  # the minute is over; the day is not
    assert window_totals(registry, key) == totals(0, 0, 0, 0, 2)


def test_the_store_list_is_what_the_fixture_runs_over(request: pytest.FixtureRequest, store: str) -> None:
    assert STORES, "no store to run the suite over"
    assert len(set(STORES)) == len(STORES)
    param = request.node.callspec.params["store"]
    assert param in STORES
    assert request.node.callspec.id == store_id(param) == store_id(store)
    assert store == param or store.startswith(f"{param}127.0.0.1:")  # redis://: the session's server, a namespace
