"""Schemas are built on first use (``defer_build``): many threads using the models for the first time at once, in a
fresh process, must each get the right result (pydantic before 2.14 is not thread-safe there; the schemas package builds
each model once, under a lock)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys, threading
from datetime import UTC, datetime
from decimal import Decimal
from noa_ai_provider import schemas as s
from noa_ai_provider.errors import ConfigError

N = int(sys.argv[1]) if len(sys.argv) > 1 else 16
MODEL = {
    "id": "m", "name": "M", "provider": "openai", "version": "1.0.0",
    "cost": {"inputTokens": "0.01", "outputTokens": 1, "tiers": [{"aboveInputTokens": 10, "inputTokens": 2}]},
    "rateLimit": {"requestsPerMinute": 5},
}
barrier = threading.Barrier(N)
errors = []

def work(i):
    try:
        barrier.wait()
        kind = i % 9
        if kind == 0:
            m = s.validate_or_raise(s.ExtendedModelInfo, MODEL)
            assert m.cost.tiers[0].input_tokens == Decimal(2), m
        elif kind == 1:
            c = s.ModelCost.model_validate(MODEL["cost"])
            assert c.input_tokens == Decimal("0.01")
        elif kind == 2:
            try:
                s.validate_or_raise(s.ExtendedModelInfo, {**MODEL, "contextWindow": "5"})
                raise AssertionError("accepted")
            except ConfigError as e:
                assert "contextWindow" in str(e) or "context_window" in str(e), str(e)
                assert "extra" not in str(e).lower() and "unknown field" not in str(e), str(e)
        elif kind == 3:
            fields = dict.fromkeys(("tokens_per_minute", "requests_per_day", "tokens_per_day"))
            fields.update(input_tokens_per_minute=None, output_tokens_per_minute=None, note=None)
            fields.update(requests_per_minute=1, count_cache_reads=True)
            t = s.construct_trusted(s.RateLimitConfig, fields)
            assert t.model_dump()["requestsPerMinute"] == 1
            t.requests_per_minute = 3
        elif kind == 4:
            r = s.RateLimitConfig(requestsPerMinute=2)
            assert r.requests_per_minute == 2
        elif kind == 5:
            q = s.ModelInfo(id="x", provider="claude")
            assert q.name == "x"
        elif kind == 6:
            u = s.ModelUsageStats.model_construct(last_reset=datetime(2020, 1, 1, tzinfo=UTC))
            assert '"totalCost":"0"' in u.model_dump_json(), u.model_dump_json()
        elif kind == 7:
            day = "2020-01-01T00:00:00Z"
            stamps = {"registeredAt": day, "updatedAt": day, "usageStats": {"lastReset": day}}
            e = s.EnhancedModelRegistryEntry.model_validate({**MODEL, "key": "openai:m", **stamps})
            assert e.usage_stats.total_cost == 0 and e.key == "openai:m"
        else:
            js = s.ExtendedModelInfo.model_json_schema()
            assert "contextWindow" in js["properties"], js
    except BaseException as e:
        errors.append(f"thread {i}: {type(e).__name__}: {e}")

threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
for t in threads: t.start()
for t in threads: t.join()
print("ERRORS" if errors else "ok", len(errors))
for e in errors[:5]: print(e)
"""


@pytest.mark.parametrize("run", range(4))
def test_concurrent_first_use_of_deferred_schemas_is_correct(run: int) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT, "27"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok 0"), result.stdout + result.stderr
