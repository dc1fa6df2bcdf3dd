"""Forks while other threads record, in snapshot mode: no child hangs, and the file ends with exactly the requests
that were recorded (a child never inherits a half-recorded request it would then save twice).

The default run makes 150 forks; ``NOA_STRESS=1`` makes 600.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from noa_ai_provider import EnhancedModelRegistry
from tests.integration.forks import reap

FORKS = 600 if os.environ.get("NOA_STRESS") else 150
KEY = "openai:m"


def _model() -> dict[str, object]:
    return {
        "id": "m",
        "name": "M",
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": 1, "outputTokens": 2, "per": 1000},
    }


def test_forks_while_threads_record_count_every_request_once(tmp_path: Path) -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: forks land mid-record
    try:
        _run(tmp_path)
    finally:
        sys.setswitchinterval(previous)


def _run(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    registry = EnhancedModelRegistry(persistence_path=path, auto_save=False)
    registry.register_model(_model())
    registry.save()
    stop = threading.Event()
    recorded = [0, 0]

    def record(slot: int) -> None:
        while not stop.is_set():
            registry.record_usage(KEY, 1, 1)
            recorded[slot] += 1

    threads = [threading.Thread(target=record, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    pids: dict[int, float] = {}
    try:
        for _ in range(FORKS):
            pid = os.fork()
            if pid == 0:  # the child: one request of its own, merged into the file, then out
                code = 1
                try:
                    registry.record_usage(KEY, 1, 1)
                    registry.save()
                    code = 0
                finally:
                    os._exit(code)
            pids[pid] = time.monotonic()
            if len(pids) >= 8:  # a few children at a time: the machine has two cores
                problems = reap(pids)
                assert not problems, problems
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    problems = reap(pids)
    assert not problems, problems
    registry.save()
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as reader:
        reader.load()
        stats = reader.get_usage_stats(KEY)
        assert stats is not None
        assert stats.request_count == sum(recorded) + FORKS
        assert stats.total_input_tokens == sum(recorded) + FORKS
