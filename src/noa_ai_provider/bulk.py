"""Bulk loads: the garbage collector paused while tens of thousands of long-lived objects are made."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the garbage collector for the ``with`` block, and restore it to what it was (it stays off when a
    caller had switched it off).

    Loading a catalogue or a snapshot allocates tens of thousands of containers that all stay alive: each
    collection the allocations trigger walks them again for nothing (a fifth to a half of such a load). Nothing
    made inside the block may form reference cycles that need collecting promptly.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
