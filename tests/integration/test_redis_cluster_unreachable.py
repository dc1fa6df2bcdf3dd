"""A ``redis+cluster://`` store reaches its cluster when it is made (redis-py learns the slots then): with no node
reachable that is an outage, :class:`BackendError`, as every other Redis failure is, never redis-py's own
exception (which is neither a ``ConnectionError`` nor a ``RegistryError``) and never the password."""

from __future__ import annotations

import socket

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import BackendError, RegistryError


def closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_cluster_is_a_backend_error_without_the_password() -> None:
    url = f"redis+cluster://:s3cret-pw@127.0.0.1:{closed_port()}/0?namespace=app"
    with pytest.raises(BackendError, match="unavailable") as caught:
        EnhancedModelRegistry(backend=url, auto_save=False)
    assert isinstance(caught.value, RegistryError)
    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
