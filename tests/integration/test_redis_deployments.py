"""The Redis store on real deployments other than one plain server (tests/redis_deploy.py): a master found through a
Sentinel (``redis+sentinel://``), a server that speaks TLS only (``rediss://``, certificates made by ``openssl``),
and a server with an ACL user, whose password stays out of every ``repr`` and URL the store shows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from noa_ai_provider import BackendError, ConfigError, EnhancedModelRegistry, ModelNotFoundError, RateLimitExceeded
from noa_ai_provider.stores.redis import RedisStore
from tests.redis_deploy import RedisSentinel, TlsRedisServer, make_ca
from tests.redis_server import RedisServer
from tests.samples import limited

KEY = "openai:limited"
MODEL: dict[str, Any] = limited({"requestsPerMinute": 3, "tokensPerMinute": 100_000})
"""0.01 / 0.03 per 1000 tokens, three requests a minute."""

ACTUAL = [(100, 7), (250, 0), (1, 999)]
"""(input, output) tokens of the three requests each test commits."""

Registry = Callable[[str], EnhancedModelRegistry]


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Registry]:
    """``make_registry(backend)``: a registry on ``backend`` with files of its own; all closed after the test."""
    with ExitStack() as stack:
        made = 0

        def make(backend: str) -> EnhancedModelRegistry:
            nonlocal made
            made += 1
            folder = tmp_path / f"registry{made}"
            registry = EnhancedModelRegistry(
                persistence_path=folder / "registry.json",
                models_config_path=folder / "models-config.json",
                auto_save=False,
                backend=backend,
            )
            return stack.enter_context(registry)

        yield make


def limits_and_usage_are_exact(make_registry: Registry, backend: str) -> None:
    """On ``backend`` (an empty namespace): up to the limit then refused, exact costs, and a second registry on
    the same URL sees the same usage and the same full window."""
    first = make_registry(backend)
    assert first.register_model(MODEL) == KEY
    held = [first.acquire(KEY, 100, 1000) for _ in range(3)]
    with pytest.raises(RateLimitExceeded) as refused:
        first.acquire(KEY, 1, 0)
    assert refused.value.limit == "requests per minute"
    assert refused.value.retry_after is not None
    assert 0 < refused.value.retry_after <= 60
    costs = [r.commit(out, input_tokens=inp) for r, (inp, out) in zip(held, ACTUAL, strict=True)]
    assert costs == [first.estimate_cost(KEY, inp, out) for inp, out in ACTUAL]
    assert costs == [Decimal("0.00121"), Decimal("0.0025"), Decimal("0.02998")]  # (inp * 0.01 + out * 0.03) / 1000
    assert held[0].commit(5) == costs[0]  # committed twice: counted once, at the first cost
    stats = first.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_cost == sum(costs) == Decimal("0.03369")
    assert (stats.total_input_tokens, stats.total_output_tokens) == (351, 1006)
    assert (stats.request_count, stats.successful_requests, stats.failed_requests) == (3, 3, 0)

    second = make_registry(backend)
    assert second.register_model(MODEL) == KEY
    other = second.get_usage_stats(KEY)
    assert other is not None
    assert other.model_dump(exclude={"last_reset"}) == stats.model_dump(exclude={"last_reset"})
    with pytest.raises(RateLimitExceeded) as also:
        second.acquire(KEY, 1, 0)
    assert also.value.limit == "requests per minute"


# ---------------------------------------------------------------------------------------------------- Sentinel


@pytest.fixture(scope="module")
def sentinel() -> Iterator[tuple[RedisServer, RedisSentinel]]:
    """A master (no replica) and one sentinel monitoring it as ``mymaster``."""
    master = RedisServer()
    try:
        watcher = RedisSentinel(master.port)
        try:
            yield master, watcher
        finally:
            watcher.stop()
    finally:
        master.stop()


def test_the_sentinel_names_the_master(sentinel: tuple[RedisServer, RedisSentinel]) -> None:
    master, watcher = sentinel
    assert watcher.master_address() == ("127.0.0.1", master.port)


def test_sentinel_limits_and_usage_are_shared_and_exact(
    sentinel: tuple[RedisServer, RedisSentinel], make_registry: Registry
) -> None:
    master, watcher = sentinel
    url = f"redis+sentinel://127.0.0.1:{watcher.port}/mymaster/0?namespace=s1&socket_timeout=2"
    limits_and_usage_are_exact(make_registry, url)
    # Every key is on the master the sentinel names, under the namespace's hash tag.
    with redis.Redis(host="127.0.0.1", port=master.port, db=0, decode_responses=True) as client:
        keys = list(client.scan_iter(match="{noa:s1}:*", count=1000))
        assert keys
        assert any(KEY in key for key in keys)
        assert all(key.startswith("{noa:s1}:") for key in client.scan_iter(match="*noa:s1*", count=1000))


def test_a_sentinel_url_refuses_an_unknown_option(
    sentinel: tuple[RedisServer, RedisSentinel], make_registry: Registry
) -> None:
    _, watcher = sentinel
    # ssl_cert_reqs is a redis-py option of rediss:// URLs, but not one a redis+sentinel:// URL passes on.
    for option in ("bogus_option=1", "ssl_cert_reqs=required"):
        url = f"redis+sentinel://127.0.0.1:{watcher.port}/mymaster/0?namespace=s2&{option}"
        with pytest.raises(ConfigError) as refused:
            make_registry(url)
        name = option.partition("=")[0]
        assert f"unknown option {name!r}" in str(refused.value)


@pytest.mark.parametrize("path", ["", "/", "//"])
def test_a_sentinel_url_must_name_the_service(
    sentinel: tuple[RedisServer, RedisSentinel], make_registry: Registry, path: str
) -> None:
    _, watcher = sentinel
    with pytest.raises(ConfigError) as refused:
        make_registry(f"redis+sentinel://127.0.0.1:{watcher.port}{path}?namespace=s3")
    assert "names the service" in str(refused.value)


def test_a_sentinel_url_naming_an_unknown_service_fails_at_first_use(
    sentinel: tuple[RedisServer, RedisSentinel], make_registry: Registry
) -> None:
    _, watcher = sentinel
    registry = make_registry(f"redis+sentinel://127.0.0.1:{watcher.port}/nosuchmaster/0?namespace=s4")
    with pytest.raises(BackendError) as failed:
        registry.register_model(MODEL)
    assert "nosuchmaster" in str(failed.value)


# ---------------------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsRedisServer]:
    server = TlsRedisServer()
    try:
        yield server
    finally:
        server.stop()


def test_the_tls_server_speaks_tls_only(tls: TlsRedisServer) -> None:
    with redis.Redis(
        host="127.0.0.1", port=tls.port, ssl=True, ssl_ca_certs=str(tls.ca.cert), decode_responses=True
    ) as client:
        assert client.ping()
        assert client.config_get("port") == {"port": "0"}  # no plain-text listener
        assert client.config_get("tls-port") == {"tls-port": str(tls.port)}
        assert client.config_get("tls-auth-clients") == {"tls-auth-clients": "no"}


def test_tls_limits_and_usage_are_shared_and_exact(tls: TlsRedisServer, make_registry: Registry) -> None:
    url = f"rediss://127.0.0.1:{tls.port}/0?namespace=t1&ssl_ca_certs={tls.ca.cert}&ssl_cert_reqs=required"
    limits_and_usage_are_exact(make_registry, url)
    with redis.Redis(host="127.0.0.1", port=tls.port, ssl=True, ssl_ca_certs=str(tls.ca.cert)) as client:
        assert any(KEY.encode() in key for key in client.scan_iter(match="{noa:t1}:*", count=1000))


def test_tls_with_a_wrong_ca_fails_at_first_use(tls: TlsRedisServer, make_registry: Registry, tmp_path: Path) -> None:
    wrong = make_ca(tmp_path / "wrong-ca", "wrong-ca")  # another self-signed CA: the server's certificate fails
    url = f"rediss://127.0.0.1:{tls.port}/0?namespace=t2&ssl_ca_certs={wrong.cert}&ssl_cert_reqs=required"
    registry = make_registry(url)  # nothing connects yet
    with pytest.raises(BackendError) as failed:
        registry.register_model(MODEL)  # the first operation that reaches Redis
    assert "certificate verify failed" in str(failed.value)
    assert len(registry) == 0  # the registration that could not reach Redis changed nothing
    with pytest.raises(ModelNotFoundError):
        registry.acquire(KEY, 1, 0)
    with redis.Redis(host="127.0.0.1", port=tls.port, ssl=True, ssl_ca_certs=str(tls.ca.cert)) as client:
        assert list(client.scan_iter(match="{noa:t2}:*")) == []  # nothing written


# ---------------------------------------------------------------------------------------------------- passwords


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    """A server with a user ``user`` whose password is ``secret`` (the default user stays open, for the probe)."""
    server = RedisServer("--user", "user", "on", ">secret", "~*", "&*", "+@all")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:secret@127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0"),
        ("redis://:secret@127.0.0.1:{port}/0?namespace=p0", "redis://127.0.0.1:{port}/0?namespace=p0"),
        ("rediss://user:secret@127.0.0.1:{port}/0", "rediss://127.0.0.1:{port}/0"),
        ("redis+sentinel://user:secret@127.0.0.1:{port}/mymaster/0", "redis+sentinel://127.0.0.1:{port}/mymaster/0"),
    ],
)
def test_the_store_never_shows_the_password(acl_server: RedisServer, url: str, shown: str) -> None:
    store = RedisStore.from_url(url.format(port=acl_server.port))  # none of them connects yet
    try:
        assert store.url == shown.format(port=acl_server.port)
        assert "secret" not in repr(store)
        assert repr(store) == f"<RedisStore {store.url}>"
    finally:
        store.close()


def test_a_registry_uses_the_password_and_never_shows_it(
    acl_server: RedisServer, make_registry: Registry, tmp_path: Path
) -> None:
    port = acl_server.port
    registry = make_registry(f"redis://user:secret@127.0.0.1:{port}/0?namespace=p1")
    assert "secret" not in repr(registry)
    assert f"redis://127.0.0.1:{port}/0?namespace=p1" in repr(registry)
    assert registry.register_model(MODEL) == KEY
    assert registry.acquire(KEY, 100, 7).commit(7) == Decimal("0.00121")
    assert "secret" not in repr(registry)
    with redis.Redis(host="127.0.0.1", port=port, decode_responses=True) as client:
        users = {client_info["user"] for client_info in client.client_list()}
        assert "user" in users  # the store's connection authenticated as the URL's user
    # A wrong password: refused at first use, the password in no message.
    wrong = make_registry(f"redis://user:notsecret@127.0.0.1:{port}/0?namespace=p2")
    assert "notsecret" not in repr(wrong)
    with pytest.raises(BackendError) as failed:
        wrong.register_model(MODEL)
    assert "notsecret" not in str(failed.value)
    assert "secret" not in str(failed.value)
