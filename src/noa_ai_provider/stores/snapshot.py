"""The part of :class:`~noa_ai_provider.stores.memory.MemoryStore` that the registry's snapshot file uses: the
usage recorded since the last synchronisation with the file (pending deltas), sealed into batches, adopted back
after a merge, restored from a backup, replayed from dead writers' journals. Called by
:mod:`noa_ai_provider.persistence.sync` only, inside :meth:`MemoryStore.holding`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from ..cost import UsageCounters
from ..delta import Delta
from ..errors import ModelNotFoundError
from ..schemas import ModelUsageStats, UsageHistoryEntry
from .base import Recorded, RequestUsage
from .state import ModelState

__all__ = ["SnapshotUsage"]


class SnapshotUsage:
    """Snapshot methods of :class:`~noa_ai_provider.stores.memory.MemoryStore` (a mixin)."""

    _states: dict[str, ModelState]
    _version: int
    seq: int
    replayed: list[Any]
    _utc_day: Callable[[float], date]
    _charge: Callable[..., Recorded]

    def _state(self, key: str) -> ModelState:
        state = self._states.get(key)
        if state is None:
            raise ModelNotFoundError(key)
        return state

    def take_pending(self) -> tuple[dict[str, Delta], list[Any]]:
        """Inside :meth:`holding`: every model's pending delta (the whole usage, marked absolute, after a reset or an
        import) and the replayed journal records, handed over for a batch; nothing is pending afterwards."""
        deltas: dict[str, Delta] = {}
        replayed, self.replayed = self.replayed, []
        for key, state in self._states.items():
            pending = state.pending
            if state.absolute or state.absolute_history:
                delta = pending if pending is not None else Delta()
                if state.absolute:  # the whole usage replaces the file's
                    delta.absolute = True
                    delta.usage = state.usage.copy()
                if state.absolute_history:
                    delta.absolute_history = True
                    delta.history = state.history.copy()
                deltas[key] = delta
            elif pending is not None:
                deltas[key] = pending
            state.pending = None
            state.absolute = state.absolute_history = False
        return deltas, replayed

    def state(self, key: str) -> ModelState | None:
        """Inside :meth:`holding`: the state of ``key`` (for persistence's multi-step work), or ``None``."""
        return self._states.get(key)

    def restore(self, key: str, usage: ModelUsageStats, entry: Any, history: list[UsageHistoryEntry]) -> None:
        """Inside :meth:`holding`: put a backup's usage, bookkeeping, metrics and history for ``key``; the next save
        writes them as they are, not added to the file's."""
        state = self._state(key)
        state.last_accessed = entry.last_accessed
        state.access_count = entry.access_count
        state.usage = UsageCounters.from_stats(usage)
        state.metrics = entry.performance_metrics
        state.history.load(history)
        state.room = 0
        state.absolute = state.absolute_history = True
        self._version += 1

    def replay(self, key: str, usage: RequestUsage, cost: Decimal, now: float, replayed: object) -> bool:
        """Inside :meth:`holding`: count another writer's journal record (``replayed``, kept for the next batch:
        :meth:`take_pending`); ``False`` when ``key`` is not defined."""
        state = self._states.get(key)
        if state is None:
            return False
        state.room = 0  # (counted without the room check: the next request checks exactly)
        self._charge(key, state, usage, cost, now, self._utc_day(now), pending=False)
        self.replayed.append(replayed)
        return True

    def utc_day(self, now: float) -> date:
        """Inside :meth:`holding`: the UTC date of ``now``."""
        return self._utc_day(now)

    def drop_unsaved(self, unsaved: list[tuple[str, Delta]]) -> None:
        """Inside :meth:`holding`, in a forked child: take the parent's unsaved usage out of the totals."""
        for key, delta in unsaved:
            state = self._states.get(key)
            if state is None:
                continue
            if not (state.absolute or delta.absolute):
                state.usage.add_counters(delta.usage, -1)
            if not (state.absolute_history or delta.absolute_history):
                state.history.add_history(delta.history, -1)
            state.access_count -= delta.accesses
        for state in self._states.values():
            state.pending = None
            state.absolute = state.absolute_history = False
        self.seq = 0

    def pending(self) -> list[tuple[str, Delta]]:
        """Inside :meth:`holding`: the pending delta of every model that has one."""
        return [(k, s.pending) for k, s in self._states.items() if s.pending is not None]

    def bump(self) -> None:
        """Inside :meth:`holding`: note a change made through :meth:`state`."""
        self._version += 1
