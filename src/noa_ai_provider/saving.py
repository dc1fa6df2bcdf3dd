"""The registry's snapshot file: save, load, export and import. A part of
:class:`~noa_ai_provider.registry.EnhancedModelRegistry` (a mixin) that checks arguments, keeps the saved version
and emits the events; :class:`~noa_ai_provider.persistence.sync.SnapshotSync` does the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import jsonio
from .bulk import gc_paused
from .errors import ConfigError, PersistenceError
from .events import EventBus
from .persistence.definitions import DefinitionSync
from .persistence.files import decode_entries, decode_history
from .persistence.sync import SnapshotSync
from .schemas import EnhancedModelRegistryConfig

__all__ = ["Saving"]


class Saving:
    """Save, load, export and import of :class:`~noa_ai_provider.registry.EnhancedModelRegistry`."""

    _sync: SnapshotSync | DefinitionSync
    _events: EventBus
    _lock: threading.Lock
    _saved_version: int
    _version: Callable[[], int]
    _report_not_in_config: Callable[[], None]
    config: EnhancedModelRegistryConfig

    @property
    def dirty(self) -> bool:
        """Whether something changed since the last successful save (or since creation)."""
        return self._version() != self._saved_version

    def save(self) -> None:
        """Write the registry to ``persistence_path`` atomically (creating its folder); emit ``registry-saved``.

        When other processes (or forks) save to the same path, the file is merged, not overwritten: under the
        sidecar lock ``<path>.lock`` this process's usage recorded since it last saved is added to what the file
        holds (exactly once, even when an earlier save failed after replacing the file), model definitions take
        the newer ``updated_at``, and removed models stay removed. Afterwards this registry holds the merged
        totals (plus what was recorded meanwhile). The state lock is held only to capture; reading, merging,
        serialising and writing happen outside it. Raises :class:`PersistenceError` when the file cannot be read
        or written: the old file is then untouched and nothing recorded is dropped (the next save writes it).

        .. versionchanged:: 0.2.0
           The snapshot, ``.bak`` and journal files get the umask's mode.
        """
        version = self._sync.save(self._version)
        with self._lock:
            self._saved_version = max(self._saved_version, version)
        self._events.emit(self, "registry-saved", path=str(self.config.persistence_path))

    def _save_if_dirty(self) -> None:
        if self.dirty:
            try:
                self.save()
            except PersistenceError as exc:
                # The changes stay pending (still dirty): the next tick, or close(), tries again.
                self._events.emit(self, "save-failed", path=str(self.config.persistence_path), error=exc)
                raise

    def load(self, *, recover: bool = False) -> int:
        """Read ``persistence_path``: add or replace its models by key (usage stats, metrics and bookkeeping
        included), keeping the others. Returns the number of models read; a missing file reads 0.

        Usage this process recorded and has not saved yet is kept on top of what the file holds, and models the
        file says were removed (by another process) are removed here too. A corrupt file raises
        :class:`PersistenceError` naming the file and position and changes nothing. With ``recover=True`` the
        previous snapshot ``<path>.bak`` (kept by every save) is read instead, and only when both are unreadable
        does it raise; the next save then replaces the corrupt file. Emits ``registry-loaded`` with
        ``path, model_count``. The garbage collector is paused while the file is read (it would otherwise walk
        the new objects again and again: about 45% of the time of a large file).

        .. versionchanged:: 0.2.0
           Writes nothing; a loaded models-config file's definitions win over the saved ones; ``registry-loaded``
           is emitted after the save lock is released; a file over ``max_snapshot_bytes`` is refused.
        """
        with gc_paused(), self._sync.save_lock:  # (a save in between would see a half-taken file state)
            with self._lock:
                was_clean = self._version() == self._saved_version
            loaded = self._sync.load(recover)
            if was_clean:
                # Reading does not write: what came from the file is what the file holds, so a registry opened to
                # inspect a saved file leaves the file (and its .bak) as they are.
                with self._lock:
                    self._saved_version = self._version()
        if loaded is None:
            return 0
        count, source = loaded  # emitted once the locks are released: a handler may save or load
        self._events.emit(self, "registry-loaded", path=str(source), model_count=count)
        self._report_not_in_config()
        return count

    def export_to_json(self) -> str:
        """A full backup as JSON text: models, usage stats, metrics and bookkeeping (exact decimals)."""
        return self._sync.export()

    def import_from_json(self, json_text: str) -> int:
        """Restore from :meth:`export_to_json` text (or a JSON list of model definitions); return the count.

        Models are added or replaced by key; the others stay. Bad JSON or an invalid model raises
        :class:`ConfigError` and changes nothing.
        """
        if not isinstance(json_text, str | bytes):
            raise ConfigError(f"json_text must be a string, got {type(json_text).__name__}")
        data = jsonio.loads(json_text, "import_from_json")
        items = decode_entries(data, "import_from_json", error=ConfigError)
        self._sync.restore(items, decode_history(data, "import_from_json", error=ConfigError))
        return len(items)

    async def asave(self) -> None:
        """:meth:`save` in a worker thread, so the event loop is not blocked."""
        import asyncio  # (only here: importing asyncio costs about 10 ms, and most users never call this)

        await asyncio.to_thread(self.save)

    async def aload(self) -> int:
        """:meth:`load` in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.load)
