"""A writer killed with SIGKILL at random moments never leaves an unreadable snapshot, never loses saved usage
(counters never go backwards), and its temporary files do not survive the next open.

A fork server (one subprocess that has already imported the package and runs no threads) forks each writer, so
200 kills take seconds rather than 200 interpreter starts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from noa_ai_provider import EnhancedModelRegistry

from ..samples import GPT4

KEY = "openai:gpt-4-turbo-preview"

FORK_SERVER = r"""
import os, sys
from noa_ai_provider import EnhancedModelRegistry

path, model = sys.argv[1], sys.argv[2]
import json
model = json.loads(model)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        registry = EnhancedModelRegistry(persistence_path=path, auto_save=False)
        registry.load()
        registry.register_model(model)
        while True:  # record and save until killed
            for _ in range(5):
                registry.record_usage("openai:gpt-4-turbo-preview", 100, 50)
            registry.save()
    print(pid, flush=True)
    os.waitpid(pid, 0)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_loop_never_corrupts_or_loses_saved_usage(tmp_path: Path) -> None:
    path = tmp_path / "data" / "registry.json"
    server = subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER, str(path), json.dumps(GPT4)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    rng = random.Random(20261128)
    last_requests = 0
    kills = 0
    try:
        while kills < 200:
            server.stdin.write("go\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            time.sleep(rng.uniform(0.0, 0.04))
            os.kill(pid, signal.SIGKILL)
            kills += 1
            # The server reaps the child before reading the next line; make sure it is gone before we look.
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                assert time.monotonic() < deadline, "killed writer still running"
                time.sleep(0.001)
            if not path.exists():
                continue  # killed before its first save
            with EnhancedModelRegistry(persistence_path=path, auto_save=False) as check:
                assert check.load() == 1  # parses: a reader sees the old file or the new one, never a mix
                stats = check.get_usage_stats(KEY)
                assert stats is not None
                assert stats.request_count >= last_requests  # saved usage is never lost
                last_requests = stats.request_count
            leftovers = sorted(p.name for p in path.parent.glob(".registry.json.*.tmp"))
            assert leftovers == []  # opening the registry removed any temporary file of the killed writer
    finally:
        server.stdin.close()
        server.kill()
        server.wait(10)
        server.stdout.close()
    assert last_requests > 0, "no writer ever saved: the test exercised nothing"
