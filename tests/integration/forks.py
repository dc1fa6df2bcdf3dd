"""Waiting for forked children, each bounded in time: a hang is a failure, not a stuck test run."""

from __future__ import annotations

import os
import signal
import time

CHILD_DEADLINE = 20.0  # seconds a child may take before it counts as hung


def reap(pids: dict[int, float], deadline: float = CHILD_DEADLINE) -> list[str]:
    """Wait for every child of ``pids`` (pid to the ``time.monotonic()`` it started at), killing one that runs
    longer than ``deadline`` seconds; return the problems found (a hang, a non-zero exit)."""
    problems = []
    while pids:
        for pid, since in list(pids.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del pids[pid]
                if os.waitstatus_to_exitcode(status) != 0:
                    problems.append(f"child {pid} exited with {os.waitstatus_to_exitcode(status)}")
            elif time.monotonic() - since > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del pids[pid]
                problems.append(f"child {pid} hung")
        time.sleep(0.001)
    return problems
