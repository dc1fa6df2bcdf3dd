"""The Redis store keeps every time on the server's clock (``TIME``), whatever the hosts' clocks say: a registry
whose own clock is years behind still gets the server's time for admissions, access times and counter resets."""

from __future__ import annotations

import time
from pathlib import Path

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import FakeClock

from ..conftest import fresh
from ..samples import limited

BEHIND = 1_000_000_000.0  # 2001: a host clock far behind the server's


def test_times_come_from_the_server_not_the_host(tmp_path: Path) -> None:
    url = fresh("redis://").replace("&clock=registry", "")  # the server's clock, as in production
    with EnhancedModelRegistry(
        persistence_path=tmp_path / "r.json", auto_save=False, clock=FakeClock(BEHIND), backend=url
    ) as registry:
        key = registry.register_model(limited({"requestsPerMinute": 10}))
        server_now = time.time()  # (the server runs on this machine: its clock is this one)
        reservation = registry.acquire(key, 10)
        assert abs(reservation.timestamp - server_now) < 60
        reservation.commit(5)
        entry = registry.get_model(key)
        assert entry is not None
        entry = registry.get_model(key)  # (the access above is counted by now)
        assert entry is not None
        assert entry.last_accessed is not None
        assert abs(entry.last_accessed.timestamp() - server_now) < 60
        assert abs(entry.usage_stats.last_reset.timestamp() - server_now) < 60
        registry.reset_usage_stats(key)
        stats = registry.get_usage_stats(key)
        assert stats is not None
        assert abs(stats.last_reset.timestamp() - server_now) < 60
