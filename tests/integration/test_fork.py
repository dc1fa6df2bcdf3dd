"""A forked child gets fresh locks and its own autosave thread: a lock held by another thread of the parent at the
moment of the fork does not deadlock it. Runs in a subprocess, so that the fork happens outside pytest's threads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..samples import GPT4

SCRIPT = r"""
import json, os, sys, threading, time
from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.testing import busy

path, model = sys.argv[1], json.loads(sys.argv[2])
registry = EnhancedModelRegistry(persistence_path=path, auto_save=True, auto_save_interval=0.05)
key = registry.register_model(model)
held, release = threading.Event(), threading.Event()

def hold_the_lock():
    with busy(registry):  # another thread is inside the registry at the moment of the fork
        held.set()
        release.wait()

threading.Thread(target=hold_the_lock).start()
held.wait()
pid = os.fork()
if pid == 0:
    registry.record_usage(key, 100, 50)  # would hang forever with the parent's lock
    alive = [t.name for t in threading.enumerate() if t.name == "noa-registry-autosave"]
    registry.close()
    saved = json.load(open(path))["models"][0]["usageStats"]["requestCount"]
    print(json.dumps({"autosave_threads": alive, "saved_requests": saved}), flush=True)
    os._exit(0)
release.set()
_, status = os.waitpid(pid, 0)
registry.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.timeout(60)
def test_forked_child_has_fresh_locks_and_its_own_autosave(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), json.dumps(GPT4)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"autosave_threads": ["noa-registry-autosave"], "saved_requests": 1}
