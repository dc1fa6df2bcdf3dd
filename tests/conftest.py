"""Shared fixtures: a registry on tmp_path with a fake clock, and the events it emits. A run that skips any test
fails.

Every store is tested by one suite: the rate-limit, reservation, budget, waiting, header and concurrency tests take
the ``store`` fixture, parametrized over :data:`STORES` (as ``limits`` runs its behaviour tests over every storage).
A module opts in with ``pytestmark = pytest.mark.usefixtures("store")`` (then the ``registry`` fixture is built on
that store) and passes ``backend=store`` to every registry it builds itself; a Hypothesis test, which cannot take a
function-scoped fixture, takes ``@pytest.mark.parametrize("store", STORES, ids=store_id)`` instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import EventRecorder, FakeClock

from .redis_server import RedisServer
from .samples import GPT4, HELD, LLAMA, OPUS

DEFAULT_STORE = "memory://"
"""The store of tests that do not take the ``store`` fixture: the registry's default."""

STORES: list[str] = ["memory://", "redis://"]
"""The URL of every store the suite runs over, one test id each (``memory``, from the scheme).

To add a store, append its URL here, e.g. ``"redis://localhost:6379/15"`` for the Redis store, and start what it
needs in a session fixture (a redis-server on a free port, whose URL then replaces the fixed one) that the
``store`` fixture requests for that parameter, emptying the store's state before each test. A store whose server
cannot start must fail the run, not skip it (see ``pytest_sessionfinish``). Note for a store shared through its URL:
a few tests build a second registry from the same ``store`` (a twin to compare with, a registry that loads what
another saved) and expect it to start empty, as ``memory://`` gives it.
"""


def store_id(url: str) -> str:
    """The test id of a store URL: its scheme (``memory://`` -> ``memory``)."""
    return url.partition("://")[0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _SERVER:
        _SERVER.pop().stop()
    # Every test must run (CI included): a skip means a missing dependency or service, which is a failure here.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: every test must run; install the dev extra", red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _release_held() -> Iterator[None]:
    """Cancel the reservations a test kept open with ``samples.hold`` once it is over."""
    yield
    while HELD:
        HELD.pop().cancel()


_NAMESPACES = itertools.count(1)
_SERVER: list[RedisServer] = []  # the session's redis-server, started on first use


def session_redis() -> RedisServer:
    """The redis-server of this test session (started on first use, stopped when the session ends)."""
    if not _SERVER:
        _SERVER.append(RedisServer())
    return _SERVER[0]


def fresh(url: str) -> str:
    """The backend URL a registry of a store test gets: ``memory://`` as it is; ``redis://`` becomes the session's
    redis-server with a namespace of its own (so it starts empty) and the registry's clock (``clock=registry``: the
    tests drive time with a FakeClock). A Hypothesis test calls it once per example; a test that builds a twin of its
    registry (to compare with, from empty) passes ``fresh(store)`` to the twin."""
    if url.startswith("redis://"):  # the placeholder, or a test's store: another namespace (a twin starts empty)
        return f"{session_redis().url}?namespace=t{next(_NAMESPACES)}&clock=registry"
    return url


@pytest.fixture(params=STORES, ids=store_id)
def store(request: pytest.FixtureRequest) -> str:
    """What to pass as ``backend=`` to every registry a store test builds: one store of :data:`STORES` per run
    (:func:`fresh`: a Redis namespace of the test's own)."""
    return fresh(str(request.param))


def backend_of(request: pytest.FixtureRequest) -> str:
    """The store of the test ``request`` serves: its ``store`` when it takes that fixture, else the default."""
    return str(request.getfixturevalue("store")) if "store" in request.fixturenames else DEFAULT_STORE


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def registry(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[EnhancedModelRegistry]:
    """A registry on ``tmp_path`` with ``clock``; on the test's ``store`` when it takes that fixture."""
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "data" / "registry.json",
        models_config_path=tmp_path / "models-config.json",
        auto_save=False,
        clock=clock,
        backend=backend_of(request),
    ) as reg:
        yield reg


@pytest.fixture
def events(registry: EnhancedModelRegistry) -> EventRecorder:
    """Every event ``registry`` emits from now on."""
    return EventRecorder().attach(registry)


@pytest.fixture
def loaded(registry: EnhancedModelRegistry) -> EnhancedModelRegistry:
    """The registry with GPT4, OPUS and LLAMA registered, in that order."""
    registry.register_models([GPT4, OPUS, LLAMA])
    return registry


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server started for this test session on a free loopback port (see tests/redis_server.py); it
    fails, never skips, when redis-server is missing."""
    return session_redis()


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A redis-py client of the session's redis-server. Tests keep their keys under a hash tag of their own."""
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        yield client
