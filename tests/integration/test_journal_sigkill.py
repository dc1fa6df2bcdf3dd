"""Journal mode: a writer killed with SIGKILL right after record_usage returned loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from noa_ai_provider import EnhancedModelRegistry

from ..samples import GPT4

WRITER = r"""
import json, sys
from noa_ai_provider import EnhancedModelRegistry

path, model = sys.argv[1], json.loads(sys.argv[2])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal")
registry.register_model(model)
registry.save()
n = 0
while True:
    registry.record_usage("openai:gpt-4-turbo-preview", 10, 5)
    n += 1
    print(n, flush=True)  # acknowledged: record_usage has returned
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("acknowledged", [1, 37, 250])
def test_sigkill_after_record_usage_returns_loses_nothing(tmp_path: Path, acknowledged: int) -> None:
    path = tmp_path / "registry.json"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), json.dumps(GPT4)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    try:
        for line in writer.stdout:
            if int(line) >= acknowledged:
                os.kill(writer.pid, signal.SIGKILL)
                break
    finally:
        writer.wait(30)
        writer.stdout.close()
    with EnhancedModelRegistry(persistence_path=path, auto_save=False, durability="journal") as fresh:
        fresh.load()
        stats = fresh.get_usage_stats("openai:gpt-4-turbo-preview")
        assert stats is not None
        # Everything acknowledged is there; at most the one record in flight when the signal came is extra.
        assert acknowledged <= stats.request_count <= acknowledged + 1
