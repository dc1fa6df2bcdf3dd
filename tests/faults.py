"""Fault injection into save(), shared by tests/test_fault_injection.py and the persistence state machine.

Only the failing call is patched, and only inside :func:`inject`:

- ``os.replace`` of the snapshot over its path (``replace``), or of the hard link over ``<path>.bak`` (``backup``);
- ``os.fsync`` of the temporary file (``fsync-file``), or of the folder once ``os.replace`` succeeded (``fsync-dir``);
- the serialiser: ``noa_ai_provider.persistence.sync.encode_entries`` (``encode``) or ``noa_ai_provider.jsonio.dumps``
  (``dumps``), raising ``OSError(ENOSPC)``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import noa_ai_provider.jsonio as jsonio_module
import noa_ai_provider.persistence.sync as sync_module
from noa_ai_provider import EnhancedModelRegistry

K_GPT = "openai:gpt-4-turbo-preview"
K_OPUS = "claude:claude-3-opus-20240229"
PRICES = {  # per 1000 tokens, as in tests/samples.py
    K_GPT: (Decimal("0.01"), Decimal("0.03")),
    K_OPUS: (Decimal("0.015"), Decimal("0.075")),
}

Totals = tuple[int, int, int, int, Decimal]  # requests, successful requests, input tokens, output tokens, cost

_real_replace = os.replace
_real_fsync = os.fsync


def shown(reg: EnhancedModelRegistry, key: str) -> Totals:
    """What ``reg`` shows for ``key``: requests, successes, input tokens, output tokens, exact cost."""
    stats = reg.get_usage_stats(key)
    assert stats is not None, key
    return (
        stats.request_count,
        stats.successful_requests,
        stats.total_input_tokens,
        stats.total_output_tokens,
        stats.total_cost,
    )


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def faulty(
    kind: str, path: Path, fired: list[str], *, fsync_file_errno: int = errno.ENOSPC
) -> tuple[Any, str, Callable[..., Any]]:
    """(object, attribute, replacement) injecting ``kind`` into saves of ``path``; each hit appends to ``fired``.

    The fsync of the folder fails with ``EIO``, that of the temporary file with ``fsync_file_errno``, every other
    fault with ``ENOSPC``."""
    target = os.fspath(path)
    backup = target + ".bak"

    if kind in ("replace", "backup"):
        victim = target if kind == "replace" else backup

        def replace(src: Any, dst: Any, **kwargs: Any) -> None:
            if os.fspath(dst) == victim:
                fired.append(kind)
                raise _error(errno.ENOSPC)
            _real_replace(src, dst, **kwargs)

        return os, "replace", replace

    if kind in ("fsync-file", "fsync-dir"):
        want_dir = kind == "fsync-dir"

        def fsync(fd: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode) == want_dir:
                fired.append(kind)
                raise _error(errno.EIO if want_dir else fsync_file_errno)
            _real_fsync(fd)

        return os, "fsync", fsync

    if kind == "encode":

        def encode(*args: Any, **kwargs: Any) -> str:
            fired.append(kind)
            raise _error(errno.ENOSPC)

        return sync_module, "encode_entries", encode

    if kind == "dumps":

        def dumps(*args: Any, **kwargs: Any) -> str:
            fired.append(kind)
            raise _error(errno.ENOSPC)

        return jsonio_module, "dumps", dumps

    raise AssertionError(f"unknown fault {kind}")


@contextlib.contextmanager
def inject(kind: str, path: Path, *, fsync_file_errno: int = errno.ENOSPC) -> Iterator[list[str]]:
    """Make saves of ``path`` fail at ``kind`` inside the block (see :func:`faulty`); yields the list of hits."""
    fired: list[str] = []
    obj, name, replacement = faulty(kind, path, fired, fsync_file_errno=fsync_file_errno)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(obj, name, replacement)
        yield fired
