"""The snapshot file of a registry whose usage lives in a shared store (Redis): model definitions only.

Under a shared store the usage counters, history, metrics and budgets are the store's, shared by every process;
writing them to each process's file as well would be a second, stale copy. :class:`DefinitionSync` keeps what
:class:`~noa_ai_provider.persistence.sync.SnapshotSync` keeps for the memory store, minus the usage: ``save``
writes the definitions (merged with the file: models other writers saved stay, models removed here go),
``load`` reads them, ``export_to_json`` still writes a full backup (definitions and the store's usage), and
``import_from_json`` takes the definitions (usage stays the store's: it is never overwritten from a file).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import jsonio
from ..catalog import Catalog, make_entry
from ..errors import PersistenceError
from ..schemas import (
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    UsageHistoryEntry,
    definition_of,
    model_key,
    utc_from_timestamp,
)
from ..stores.base import RequestUsage, Store
from .files import (
    atomic_write_text,
    backup_path,
    decode_entries,
    decode_meta,
    encode_entries,
    keep_backup,
    locked,
    read_stamped,
)

__all__ = ["DefinitionSync"]


class DefinitionSync:
    """The definitions-only snapshot file of one registry on a shared store (same interface as
    :class:`~noa_ai_provider.persistence.sync.SnapshotSync`, without a journal)."""

    journal = None

    def __init__(
        self,
        path: Path,
        catalog: Catalog,
        store: Store,
        now: Callable[[], float],
        writer: str,
        *,
        max_snapshot_bytes: int,
        config_defined: Callable[[], set[str]],
    ) -> None:
        self.path = path
        self.catalog = catalog
        self.store = store
        self.now = now
        self.writer = writer
        self.max_snapshot_bytes = max_snapshot_bytes
        self.config_defined = config_defined
        self.save_lock = threading.Lock()
        self.removed: dict[str, datetime] = {}  # removed here since the last save: they go from the file too
        self.file_keys: set[str] = set()

    def after_fork(self, writer: str) -> None:
        """In a forked child: a writer of its own."""
        self.save_lock = threading.Lock()
        self.writer = writer
        self.removed = {}

    def journal_record(self, seq: int, key: str, usage: RequestUsage, cost: Any, now: float) -> None:
        """No journal under a shared store (the store is where usage is durable)."""

    def export(self) -> str:
        """A full backup: definitions with the store's usage, metrics and daily history."""
        with self.catalog.lock:
            defs = dict(self.catalog.defs)
            currencies = self.catalog.currencies(list(defs))
        live = self.store.live(list(defs), currencies)
        entries = [
            make_entry(key, d.model, d.registered_at, d.updated_at, *live[key])
            for key, d in defs.items()
            if key in live
        ]
        history = self.store.history([e.key for e in entries])
        return encode_entries(entries, utc_from_timestamp(self.now()), history)

    def save(self, version: Callable[[], int]) -> int:
        """Write the definitions, merged with the file's (other writers' models stay; models removed here go)."""
        path = self.path
        with self.save_lock, locked(path):
            read = self._read(path)
            with self.catalog.lock:
                saved_version = version()
                mine = {key: d.model for key, d in self.catalog.defs.items()}
                gone = dict(self.removed)
                self.removed = {}
            removed = dict(read[1]) if read is not None else {}
            removed.update(gone)
            merged: list[ExtendedModelInfo] = []
            if read is not None:  # other writers' models stay (as definitions: usage is the store's)
                for item in read[0]:
                    key = _key(item)
                    if key not in mine and key not in gone:
                        merged.append(definition_of(item) if isinstance(item, EnhancedModelRegistryEntry) else item)
            merged.extend(mine.values())
            for key in mine:
                removed.pop(key, None)
            text = encode_entries(merged, utc_from_timestamp(self.now()), (), None, removed)
            keep_backup(path)
            atomic_write_text(path, text)
        return saved_version

    def load(self, recover: bool) -> tuple[int, Path] | None:
        """Read the file's definitions into the catalogue (a models-config file's definitions stay as they are)."""
        source = self.path
        try:
            read = self._read(source)
        except PersistenceError:
            if not recover:
                raise
            source = backup_path(self.path)
            read = self._read(source)
        if read is None:
            return None
        items, removed = read
        catalog = self.catalog
        with catalog.lock:
            config_defined = self.config_defined()
            now = self.now()
            for item in items:
                key = _key(item)
                self.file_keys.add(key)
                if key in config_defined and key in catalog.defs:
                    continue
                model = definition_of(item) if isinstance(item, EnhancedModelRegistryEntry) else item
                _, defined = catalog.put(key, model, now)
                if isinstance(item, EnhancedModelRegistryEntry):
                    defined.registered_at = item.registered_at
                    defined.updated_at = item.updated_at
            for key, when in removed.items():
                present = catalog.defs.get(key)
                if present is not None and key not in config_defined and present.updated_at <= when:
                    catalog.remove(key, now)
        return len(items), source

    def restore(
        self, items: list[EnhancedModelRegistryEntry | ExtendedModelInfo], history: Sequence[UsageHistoryEntry] = ()
    ) -> list[str]:
        """Add or replace ``items`` by key: definitions, and for full entries their usage, bookkeeping and history,
        which replace what the shared store holds for them (an explicit import of a backup)."""
        by_key: dict[str, list[UsageHistoryEntry]] = {}
        for row in history:
            by_key.setdefault(row.key, []).append(row)
        keys = []
        entries = []
        with self.catalog.lock:
            now = self.now()
            for item in items:
                model = definition_of(item) if isinstance(item, EnhancedModelRegistryEntry) else item
                key = model_key(model.provider, model.id)
                _, defined = self.catalog.put(key, model, now)
                if isinstance(item, EnhancedModelRegistryEntry):
                    defined.registered_at = item.registered_at
                    defined.updated_at = item.updated_at
                    entries.append((key, item))
                keys.append(key)
        for key, item in entries:  # (outside the catalogue's lock: round trips)
            restore = getattr(self.store, "restore", None)
            if restore is not None:
                restore(key, item.usage_stats, item, by_key.get(key, []))
        return keys

    def _read(
        self, path: Path
    ) -> tuple[list[EnhancedModelRegistryEntry | ExtendedModelInfo], dict[str, datetime]] | None:
        read = read_stamped(path, self.max_snapshot_bytes)
        if read is None:
            return None
        data = jsonio.loads(read[0], str(path), error=PersistenceError)
        entries = decode_entries(data, str(path), error=PersistenceError)
        _, removed = decode_meta(data, str(path), error=PersistenceError)
        return entries, removed


def _key(item: EnhancedModelRegistryEntry | ExtendedModelInfo) -> str:
    return item.key if isinstance(item, EnhancedModelRegistryEntry) else model_key(item.provider, item.id)
