"""Process lifecycle of registries: fork safety and saving at interpreter exit.

A registry enrols here when it is made (:func:`enrol`) and, with autosave, when it should be closed at exit
(:func:`close_at_exit`). Around ``os.fork`` every enrolled registry's locks are taken, so that no thread is halfway
through a change when the process is copied; the child then rebuilds what it cannot share (locks held by threads
that did not come along, waiters, background threads, its writer identity).
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Participant", "close_at_exit", "enrol", "new_writer_id", "weak_callback", "writer_alive"]

logger = logging.getLogger("noa_ai_provider.registry")

FORK_LOCK_TIMEOUT = 1.0  # seconds a fork waits, in all, for the locks of one registry


class Participant(Protocol):
    """What a registry offers the lifecycle hooks."""

    _closed: bool

    @property
    def _writer_id(self) -> str: ...

    def _fork_locks(self) -> list[Any]: ...

    def _after_fork_in_child(self) -> None: ...

    def close(self) -> None: ...


_ALL: weakref.WeakSet[Any] = weakref.WeakSet()  # every live registry (fork safety, writer liveness)
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()  # registries to close at interpreter exit
_HELD: list[Any] = []  # the locks the forking thread holds


def enrol(participant: Participant) -> None:
    """Take part in fork safety (held weakly)."""
    _ALL.add(participant)


def close_at_exit(participant: Participant, wanted: bool = True) -> None:
    """Close ``participant`` at interpreter exit (or no longer, with ``wanted=False``)."""
    if wanted:
        _OPEN.add(participant)
    else:
        _OPEN.discard(participant)


def _before_fork() -> None:
    # A lock is held for microseconds at a time; one held longer (a thread stuck inside, which must not stall the
    # fork for ever) is left as it was, and the child replaces it as it always does.
    held = []
    for participant in sorted(_ALL, key=id):
        deadline = time.monotonic() + FORK_LOCK_TIMEOUT
        for lock in participant._fork_locks():
            if lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
                held.append(lock)
    _HELD[:] = held


def _after_fork_in_parent() -> None:
    for lock in reversed(_HELD):
        lock.release()
    _HELD.clear()


def _after_fork_in_child() -> None:
    _HELD.clear()
    for participant in list(_ALL):
        participant._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@atexit.register
def _close_all_at_exit() -> None:
    for participant in list(_OPEN):
        try:
            participant.close()
        except Exception:  # pragma: no cover - nobody is left to raise to at exit
            logger.exception("saving %r at interpreter exit failed", participant)


def new_writer_id() -> str:
    """An id unique per process and registry (a fork gets a new one); the pid leads, for whoever reads a file."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def writer_alive(writer: str) -> bool:
    """Whether ``writer`` is a live registry: one of this process, or another process still running (a recycled
    pid reads as alive, which only delays a replay of its journal)."""
    if any(p._writer_id == writer and not p._closed for p in list(_ALL)):
        return True
    pid_text = writer.partition("-")[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    return True


def weak_callback(method: Callable[..., Any], default: Callable[[], Any] | None = None) -> Callable[..., Any]:
    """``method`` called through a weak reference: the parts of a registry that call back into it hold no reference
    to it, so a registry nobody holds is freed at once, without waiting for the cycle collector (and a writer
    that is gone reads as gone). Once the registry is gone, ``default()`` (or ``None``) is returned."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        target = ref()
        if target is not None:
            return target(*args)
        return default() if default is not None else None

    return call
