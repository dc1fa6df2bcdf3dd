"""What save() writes, load() reads: values a saved registry cannot hold are refused when they enter, and a save
that keeps failing is reported quietly."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, InvalidUsageError
from noa_ai_provider.testing import EventRecorder, FakeClock

from .samples import GPT4, model

MAX_INT = 2**63 - 1
KEY = "openai:gpt-4-turbo-preview"


def nested(levels: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    inner = out
    for _ in range(levels - 1):
        inner["k"] = {}
        inner = inner["k"]
    return out


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"when": float("nan")}, "NaN"),
        ({"limit": float("inf")}, "NaN and Infinity"),
        ({"ids": {1, 2}}, "a set cannot be saved"),
        ({"by_number": {1: "one"}}, "keys must be strings"),
        ({"big": 2**64}, "beyond 64 bits"),
        ({"path": Path("/tmp")}, "cannot be saved as JSON"),
        (nested(49), "nested deeper than 48"),
    ],
    ids=["nan", "inf", "set", "int-key", "big-int", "object", "too-deep"],
)
def test_metadata_a_saved_file_cannot_hold_is_refused(
    registry: EnhancedModelRegistry, metadata: dict[str, Any], message: str
) -> None:
    registry.register_model(GPT4)
    with pytest.raises(ConfigError, match=message):
        registry.register_model(model(id="other", metadata=metadata))
    with pytest.raises(ConfigError, match=message):
        registry.update_model(KEY, {"metadata": metadata})
    assert len(registry) == 1
    entry = registry.get_model(KEY)
    assert entry is not None
    assert entry.metadata == GPT4["metadata"]


def test_metadata_at_the_depth_limit_round_trips(registry: EnhancedModelRegistry, tmp_path: Path) -> None:
    registry.register_model(model(metadata=nested(48) | {"n": 2**63 - 1, "d": Decimal("0.1")}))
    registry.save()
    again = EnhancedModelRegistry(persistence_path=registry.persistence_path, auto_save=False)
    assert again.load() == 1


def test_counters_never_pass_what_a_saved_file_holds(registry: EnhancedModelRegistry) -> None:
    registry.register_model(GPT4)
    registry.record_usage(KEY, MAX_INT - 10, 0)
    with pytest.raises(InvalidUsageError, match="total_input_tokens past 2\\*\\*63-1"):
        registry.record_usage(KEY, 11, 0)
    with pytest.raises(InvalidUsageError, match="2\\*\\*63-1"):
        registry.record_usage(KEY, MAX_INT + 1, 0)
    stats = registry.get_usage_stats(KEY)
    assert stats is not None
    assert (stats.request_count, stats.total_input_tokens) == (1, MAX_INT - 10)
    registry.record_usage(KEY, 10, 0)  # exactly at the limit: fine
    registry.save()
    assert EnhancedModelRegistry(persistence_path=registry.persistence_path, auto_save=False).load() == 1


def test_the_check_holds_across_many_requests_and_after_a_load(tmp_path: Path) -> None:
    # The exact check is skipped while a request surely fits (the room left is known); a load that brings larger
    # counters from the file must make the next request check again.
    path = tmp_path / "registry.json"
    first = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    first.register_model(GPT4)
    for _ in range(7):
        first.record_usage(KEY, 2**60, 0)
    with pytest.raises(InvalidUsageError, match="total_input_tokens past"):
        first.record_usage(KEY, 2**60, 0)  # 8 * 2**60 = 2**63
    first.save()
    second = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    second.register_model(GPT4)
    second.record_usage(KEY, 1, 0)  # its room is measured on its own, small counters
    second.load()  # now it holds 7 * 2**60 + 1 input tokens
    with pytest.raises(InvalidUsageError, match="total_input_tokens past"):
        second.record_usage(KEY, 2**60, 0)
    stats = second.get_usage_stats(KEY)
    assert stats is not None
    assert stats.total_input_tokens == 7 * 2**60 + 1


def test_a_day_of_history_never_passes_it_either(registry: EnhancedModelRegistry) -> None:
    registry.register_model(GPT4)
    registry.record_usage(KEY, MAX_INT - 10, 0)
    registry.reset_usage_stats(KEY)  # the counters start again; the day's history does not
    with pytest.raises(InvalidUsageError, match="input tokens of"):
        registry.record_usage(KEY, 11, 0)


def test_a_save_that_keeps_failing_is_logged_once_and_reported_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "registry.json"
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, clock=FakeClock()) as first:
        first.register_model(GPT4)
        first.save()
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=True, auto_save_interval=0.01, clock=FakeClock())
    events = EventRecorder().attach(registry)
    path.write_text("{ not json")  # corrupt: a merging save cannot read what is there
    with caplog.at_level(logging.ERROR, logger="noa_ai_provider"):
        registry.register_model(model(id="new"))
        deadline = time.monotonic() + 10
        while len(events.of("save-failed")) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(events.of("save-failed")) >= 5
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert errors[0].exc_info is None  # one line, no traceback
        assert str(path) in errors[0].getMessage()
    path.unlink()  # the file is gone: the next tick saves
    deadline = time.monotonic() + 10
    while registry.dirty and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not registry.dirty
    registry.close()
