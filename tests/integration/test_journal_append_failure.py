"""A failed journal append counts nothing: the call raises and no trace of the request remains, so a caller that
retries counts it once. The failure is real: a subprocess whose file-size limit (RLIMIT_FSIZE) stops the append."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    from decimal import Decimal
    from noa_ai_provider import EnhancedModelRegistry, PersistenceError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    path = sys.argv[1]
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal")
    key = registry.register_model({
        "id": "m", "name": "M", "provider": "openai", "version": "1.0.0",
        "cost": {"inputTokens": 1, "outputTokens": 2, "per": 1000},
    })
    registry.set_budget(1000)
    journal = path + ".journal"
    registry.record_usage(key, 10, 10)  # the journal exists now
    size = os.path.getsize(journal)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * size + size // 2, resource.RLIM_INFINITY))  # one more line fits
    registry.record_usage(key, 10, 10)
    before = registry.get_usage_stats(key)
    spent_before = registry.get_budget_status()[0].spent
    failures = 0
    try:
        registry.record_usage(key, 10, 10)
    except PersistenceError as error:
        failures += 1
        message = str(error)
    after = registry.get_usage_stats(key)
    spent_after = registry.get_budget_status()[0].spent
    reservation = registry.acquire(key, 10, 10)
    try:
        reservation.commit(10)
    except PersistenceError:
        failures += 1
    state = reservation.state
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    registry.record_usage(key, 10, 10)  # the retry
    history = registry.get_usage_history(key)
    print(json.dumps({
        "failures": failures,
        "message": message,
        "before": before.request_count, "after": after.request_count,
        "cost_before": str(before.total_cost), "cost_after": str(after.total_cost),
        "spent_before": str(spent_before), "spent_after": str(spent_after),
        "state": state,
        "final": registry.get_usage_stats(key).request_count,
        "history_requests": sum(h.requests for h in history),
    }))
    registry.save()
    """
)


def test_a_failed_append_counts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["failures"] == 2, out
    assert "cannot append" in out["message"]
    assert (out["before"], out["cost_before"], out["spent_before"]) == (2, "0.06", "0.06")
    assert (out["after"], out["cost_after"], out["spent_after"]) == (2, "0.06", "0.06")  # nothing of it remains
    assert out["state"] == "cancelled"  # the commit recorded nothing; the reservation was given back
    assert out["final"] == 3  # the retry counts once
    assert out["history_requests"] == 3
    # What was saved, and what the journal holds, say the same: three requests.
    from noa_ai_provider import EnhancedModelRegistry

    with EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal") as reader:
        reader.load()
        stats = reader.get_usage_stats("openai:m")
        assert stats is not None
        assert stats.request_count == 3
