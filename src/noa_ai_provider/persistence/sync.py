"""Keeping a registry in step with its snapshot file and journal: save (merging with other writers), load,
replay of dead writers' journal records, export and import.

:class:`SnapshotSync` works on the registry's :class:`~noa_ai_provider.catalog.Catalog` (definitions) and its
:class:`~noa_ai_provider.stores.memory.MemoryStore` (usage): it holds the catalogue's lock, then the store's, only
to capture or apply in memory; reading, merging, serialising and writing happen outside both. See
:mod:`noa_ai_provider.persistence.merge` for what a merge guarantees, and ``docs/durability.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from .. import jsonio
from ..catalog import Catalog, Defined, make_entry
from ..cost import UsageHistory
from ..errors import PersistenceError
from ..lifecycle import writer_alive
from ..schemas import (
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    UsageHistoryEntry,
    definition_of,
    model_key,
    utc_from_timestamp,
)
from ..stores.base import RequestUsage
from ..stores.memory import MemoryStore
from .files import (
    FileStamp,
    atomic_write_text,
    backup_path,
    decode_entries,
    decode_history,
    decode_meta,
    encode_entries,
    file_stamp,
    holds_save,
    keep_backup,
    locked,
    read_stamped,
)
from .journal import Journal
from .merge import Batch, Definition, Delta, Replayed, Row, Snapshot, merge, merge_meta

__all__ = ["SnapshotSync"]


class _DiskState(NamedTuple):
    # What the snapshot file held when this process last wrote or read it.
    stamp: FileStamp | None
    writers: dict[str, tuple[int, datetime]]
    removed: dict[str, datetime]
    save_id: str | None  # this writer's save id in the file, when this writer wrote it


class _Read(NamedTuple):
    # A snapshot file as read: its entries and history, its watermarks and tombstones, and what it was.
    entries: list[EnhancedModelRegistryEntry | ExtendedModelInfo]
    history: list[UsageHistoryEntry]
    writers: dict[str, tuple[int, datetime]]
    removed: dict[str, datetime]
    disk: _DiskState


class _Frozen(NamedTuple):
    # A definition's fields at capture time (the Defined object itself changes with redefinitions).
    model: ExtendedModelInfo
    registered_at: datetime
    updated_at: datetime
    origin: Defined


_Captured = tuple[list[tuple[str, _Frozen, Any]], dict[str, UsageHistory]]


class SnapshotSync:
    """The snapshot file (and journal) of one registry: this writer's identity, the batches it sealed that are
    not known to be in the file, its tombstones, and what the file held when it last wrote or read it."""

    def __init__(
        self,
        path: Path,
        catalog: Catalog,
        store: MemoryStore,
        now: Callable[[], float],
        writer: str,
        *,
        journal: Journal | None,
        max_snapshot_bytes: int,
        config_defined: Callable[[], set[str]],
    ) -> None:
        self.path = path
        self.catalog = catalog
        self.store = store
        self.now = now
        self.writer = writer
        self.journal = journal
        self.max_snapshot_bytes = max_snapshot_bytes
        self.config_defined = config_defined  # under the catalogue's lock: keys a models-config file defines
        self.save_lock = threading.Lock()  # orders whole saves; never taken while holding the catalogue's lock
        self.unacked: list[Batch] = []
        self.removed: dict[str, datetime] = {}  # tombstones not sealed into a batch yet
        self.disk: _DiskState | None = None
        self.file_keys: set[str] = set()  # keys read from the file (models kept though no config defines them)
        store.numbered = journal is not None

    def after_fork(self, writer: str) -> None:
        """In a forked child: a writer of its own. The parent's unsaved usage stays the parent's to save, so the
        child drops it (from its pending deltas and its totals). Catalogue and store locks are already new."""
        self.save_lock = threading.Lock()
        self.writer = writer
        self.removed = {}
        store = self.store
        with store.holding():
            unsaved = store.pending()
            for batch in self.unacked:
                unsaved.extend(batch.deltas.items())
                unsaved.extend((r.key, r.delta) for r in batch.replayed)
            unsaved.extend((r.key, r.delta) for r in store.replayed)
            if self.unacked:
                self.disk = None  # whether those landed is unknown here: merge with the file on the next save
            self.unacked = []
            store.replayed = []
            store.drop_unsaved(unsaved)
        if self.journal is not None:
            self.journal.after_fork()

    # ------------------------------------------------------------------ journal

    def journal_record(self, seq: int, key: str, usage: RequestUsage, cost: Decimal, now: float) -> None:
        """Append one recorded request to the journal (outside every lock: the append and its fsync must not
        stop other threads). Raises :class:`PersistenceError` when it cannot be written."""
        if self.journal is not None:
            self.journal.append(
                {
                    "writer": self.writer,
                    "seq": seq,
                    "key": key,
                    "at": now,
                    "inputTokens": usage.input_tokens,
                    "outputTokens": usage.output_tokens,
                    "cachedInputTokens": usage.cached_input_tokens,
                    "cacheWriteTokens": usage.cache_write_tokens,
                    "success": usage.success,
                    "cost": cost,
                }
            )

    # ------------------------------------------------------------------ capture

    def capture(self, keys: Sequence[str] | None = None) -> _Captured:
        """Under the catalogue's lock, only a cheap capture (about 2 µs a model); building entries from it, like
        serialising and writing, happens outside (see :meth:`built`), so recording never waits for a save."""
        defs = self.catalog.defs
        chosen = list(defs) if keys is None else [k for k in keys if k in defs]
        currencies = self.catalog.currencies(chosen)
        with self.store.holding():
            live = self.store.live(chosen, currencies)
            histories = self.store.histories(chosen)
        # Definitions are replaced, never changed in place: capture the objects' current fields.
        return [(k, _frozen(defs[k]), live[k]) for k in chosen if k in live], histories

    @staticmethod
    def built(captured: _Captured) -> tuple[list[EnhancedModelRegistryEntry], list[UsageHistoryEntry]]:
        """The entries and history rows of a capture."""
        rows, histories = captured
        entries = [
            make_entry(
                key,
                d.model,
                d.registered_at,
                d.updated_at,
                live.last_accessed,
                live.access_count,
                live.usage,
                live.metrics,
            )
            for key, d, live in rows
        ]
        return entries, [h for key, _, _ in rows for h in histories[key].entries(key)]

    def export(self) -> str:
        """A full backup as JSON text."""
        with self.catalog.lock:
            captured = self.capture()
        entries, history = self.built(captured)
        return encode_entries(entries, utc_from_timestamp(self.now()), history)

    # ------------------------------------------------------------------ save

    def _seal(self) -> tuple[dict[str, _Frozen], dict[str, Definition]]:
        # Under the catalogue's lock: this process's pending deltas, tombstones and journal folds become a numbered
        # batch (kept until a save is known to have written it), and the definitions are captured.
        store = self.store
        with store.holding():
            store.seq += 1
            deltas, replayed = store.take_pending()
            batch = Batch(store.seq, deltas, self.removed, replayed)
        self.removed = {}
        self.unacked.append(batch)
        defs = self.catalog.defs
        with store.holding():
            metrics = {k: store.metrics(k) for k in defs}
        definitions = {key: Definition(d.model, d.registered_at, d.updated_at, metrics[key]) for key, d in defs.items()}
        return {k: _frozen(d) for k, d in defs.items()}, definitions

    def save(self, version: Callable[[], int]) -> int:
        """Write the snapshot, merged with what other writers saved (see :meth:`EnhancedModelRegistry.save`).
        Returns the registry version the file now holds. Raises :class:`PersistenceError`."""
        path = self.path
        catalog = self.catalog
        with self.save_lock, locked(path):
            disk = self.disk
            stamp = file_stamp(path)
            # Nobody else wrote the file since this process did (or it vanished): it holds this process's view
            # minus what is pending, so the current view is the merge. Otherwise read it and merge.
            # (An inode can be reused and a size and mtime repeated, so the file must also carry this writer's save
            # id: a few hundred bytes read.)
            fast = disk is not None and (
                (stamp is None and disk.stamp is not None)
                or (stamp == disk.stamp and (disk.save_id is None or holds_save(path, disk.save_id)))
            )
            try:
                snapshot = None if fast else self._read_for_merge(path)
            except PersistenceError as exc:
                raise PersistenceError(
                    f"{exc}; not overwritten (load(recover=True) reads the previous snapshot, and the next save "
                    "then replaces this file)"
                ) from exc
            with catalog.lock:
                saved_version = version()
                captured_defs, definitions = self._seal()
                batches = list(self.unacked)
                captured = self.capture() if fast else None
            now = utc_from_timestamp(self.now())
            if captured is not None:
                assert disk is not None
                writers, removed = merge_meta(disk.writers, disk.removed, batches, self.writer, now)
                entries, history = self.built(captured)
                merged = None
            else:
                merged = merge(snapshot or Snapshot(), definitions, batches, self.writer, now)
                writers, removed = merged.writers, merged.removed
                entries = [row.entry(key) for key, row in merged.rows.items()]
                history = [h for key, row in merged.rows.items() for h in row.history.entries(key)]
            save_id = f"{self.writer}:{batches[-1].seq}"
            try:
                text = encode_entries(entries, now, history, writers, removed, save_id)
            except OSError as exc:  # e.g. ENOSPC from a serialiser that spools: a failed save like any other
                raise PersistenceError(f"{path}: cannot serialise the snapshot: {exc.strerror or exc}") from exc
            keep_backup(path)  # the previous good snapshot survives as <path>.bak
            atomic_write_text(path, text)
            written = _DiskState(file_stamp(path), writers, removed, save_id)
            if self.journal is not None:
                # Folded into the snapshot: drop them (a crash before this replays nothing twice: the snapshot's
                # watermarks say which records it holds).
                self.journal.truncate({w: mark[0] for w, mark in writers.items()})
            with catalog.lock, self.store.holding():
                self.unacked = [b for b in self.unacked if b.seq > batches[-1].seq]
                self.disk = written
                clean = version() == saved_version  # nothing changed since the capture
                if merged is not None:
                    self._adopt(merged.rows, captured_defs)
                if clean:  # what was adopted is what the file holds
                    saved_version = version()
        return saved_version

    def _read_for_merge(self, path: Path) -> Snapshot | None:
        read = self._read_snapshot(path)
        if read is None:
            return None
        return Snapshot(self._rows(read.entries, read.history), read.writers, read.removed)

    def _rows(
        self, entries: list[EnhancedModelRegistryEntry | ExtendedModelInfo], history: list[UsageHistoryEntry]
    ) -> dict[str, Row]:
        by_key: dict[str, list[UsageHistoryEntry]] = {}
        for day in history:
            by_key.setdefault(day.key, []).append(day)
        rows = {}
        for item in entries:
            if isinstance(item, EnhancedModelRegistryEntry):
                rows[item.key] = Row.from_entry(item, by_key.get(item.key, []))
            else:  # a bare model definition (a hand-written file): no usage yet
                stamp = utc_from_timestamp(self.now())
                rows[model_key(item.provider, item.id)] = Row(item, stamp, stamp)
        return rows

    def _adopt(self, rows: dict[str, Row], captured: dict[str, _Frozen]) -> None:
        # Under the catalogue's lock, after a merge was written: take what the file now holds. Changes made since
        # the capture win: a newer definition, a reset, a removal, a model registered again. A models-config
        # file's definitions are never replaced by the file's.
        catalog, store = self.catalog, self.store
        now = self.now()
        config_defined = self.config_defined()
        with store.holding():
            for key, row in rows.items():
                if key in self.removed:
                    continue  # removed here since the capture (and maybe registered again, afresh)
                defined = catalog.defs.get(key)
                if defined is None:
                    if key in captured:
                        continue  # removed here since the capture
                    _, defined = catalog.put(key, row.model, now)
                    defined.updated_at = row.updated_at
                elif row.updated_at > defined.updated_at and key not in config_defined:
                    catalog.put(key, row.model, now)
                    defined.updated_at = row.updated_at
                    defined.registered_at = row.registered_at  # (maybe another model: registered again elsewhere)
                state = store.state(key)
                if state is not None:
                    state.adopt(row)
                    defined.registered_at = min(defined.registered_at, row.registered_at)
            for key in [k for k, d in captured.items() if k not in rows and catalog.defs.get(k) is d.origin]:
                catalog.remove(key, now)  # removed by another writer after this definition

    # ------------------------------------------------------------------ load

    def load(self, recover: bool) -> tuple[int, Path] | None:
        """Read the snapshot (or, with ``recover`` and a corrupt file, its backup) into the catalogue and store,
        then replay the journal; ``(count, source)``, or ``None`` when there is no file."""
        path = self.path
        try:
            read = self._read_snapshot(path)
            source = path
        except PersistenceError:
            if not recover:
                raise
            source = backup_path(path)
            read = self._read_snapshot(source)
            if read is not None:  # the corrupt file is what the next save replaces, without merging it
                read = read._replace(disk=_DiskState(file_stamp(path), read.writers, read.removed, None))
        if read is None:
            if self.journal is not None:
                self._replay(self.journal.read(self._replay_marks({})))
            return None
        entries, history, writers, removed, disk = read
        rows = self._rows(entries, history)
        catalog, store = self.catalog, self.store
        with catalog.lock, store.holding():
            config_defined = self.config_defined()
            self.file_keys.update(rows)
            landed = writers.get(self.writer, (0, None))[0]
            self.unacked = [b for b in self.unacked if b.seq > landed]
            now = self.now()
            for key, row in rows.items():
                removed_here = self.removed.get(key)
                if key not in catalog.defs and removed_here is not None and removed_here >= row.updated_at:
                    continue  # removed here after the file's definition, not saved yet: it stays removed
                for batch in self.unacked:  # sealed but not in the file: still this process's to add
                    delta = batch.deltas.get(key)
                    if delta is not None:
                        row.apply(delta)
                from_config = key in config_defined
                if key not in catalog.defs or not from_config:
                    _, defined = catalog.put(key, row.model, now)
                else:
                    defined = catalog.defs[key]
                # The file's definition and bookkeeping replace this process's (but a models-config file is the
                # source of truth for the definitions it holds: those stay); its own accesses stay on top.
                if not from_config:
                    defined.updated_at = row.updated_at
                defined.registered_at = min(defined.registered_at, row.registered_at)
                state = store.state(key)
                assert state is not None
                state.last_accessed = state.pending.last_accessed if state.pending is not None else None
                state.adopt(row)
                state.metrics = row.metrics
            for key, when in removed.items():
                present = catalog.defs.get(key)
                if present is not None and key not in rows and present.updated_at <= when:
                    catalog.remove(key, now)
            self.disk = disk if not self.unacked else None
            store.bump()
        if self.journal is not None:
            self._replay(self.journal.read(self._replay_marks(writers)))
        return len(entries), source

    def _replay_marks(self, writers: dict[str, tuple[int, datetime]]) -> dict[str, int]:
        # Per writer, the newest journal record already counted: in the file, or replayed here before.
        marks = {w: mark[0] for w, mark in writers.items()}
        with self.catalog.lock:
            for replayed in [self.store.replayed, *(b.replayed for b in self.unacked)]:
                for record in replayed:
                    marks[record.writer] = max(marks.get(record.writer, 0), record.seq)
        return marks

    def _replay(self, lines: list[dict[str, Any]]) -> None:
        # Journal records the snapshot does not hold, written by writers that died before saving them: counted
        # again as they were recorded (their cost included), and carried by this process's next batch, which the
        # merge applies only where the file does not hold them yet (another process may replay them too).
        # Records of live writers are theirs to save (this process's own are in memory already): left alone.
        alive = {writer: writer_alive(writer) for writer in {line["writer"] for line in lines}}
        store = self.store
        with self.catalog.lock, store.holding():
            for line in lines:
                writer = line["writer"]
                if writer == self.writer or alive[writer]:
                    continue
                usage = RequestUsage(
                    line["inputTokens"],
                    line["outputTokens"],
                    bool(line["success"]),
                    line["cachedInputTokens"],
                    line["cacheWriteTokens"],
                )
                cost = Decimal(str(line["cost"]))
                now = float(line["at"])
                delta = Delta()
                delta.add_request(
                    store.utc_day(now),
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cached_input_tokens,
                    usage.cache_write_tokens,
                    cost,
                    usage.success,
                )
                store.replay(line["key"], usage, cost, now, Replayed(writer, line["seq"], line["key"], delta))

    def _read_snapshot(self, path: Path) -> _Read | None:
        read = read_stamped(path, self.max_snapshot_bytes)
        if read is None:
            return None
        text, stamp = read
        data = jsonio.loads(text, str(path), error=PersistenceError)
        entries = decode_entries(data, str(path), error=PersistenceError)
        writers, removed = decode_meta(data, str(path), error=PersistenceError)
        save_id = data.get("saveId") if isinstance(data, dict) else None
        return _Read(
            entries,
            decode_history(data, str(path), error=PersistenceError),
            writers,
            removed,
            _DiskState(stamp, writers, removed, save_id if isinstance(save_id, str) else None),
        )

    # ------------------------------------------------------------------ import

    def restore(
        self, items: list[EnhancedModelRegistryEntry | ExtendedModelInfo], history: Sequence[UsageHistoryEntry] = ()
    ) -> list[str]:
        """Add or replace ``items`` by key: entries with their usage and bookkeeping (the next save puts them,
        not adds them), bare definitions as registered. Returns the keys."""
        by_key: dict[str, list[UsageHistoryEntry]] = {}
        for row in history:
            by_key.setdefault(row.key, []).append(row)
        catalog, store = self.catalog, self.store
        keys = []
        with catalog.lock, store.holding():
            now = self.now()
            for item in items:
                # An entry was validated by decode_entries; its definition part needs no second pass.
                model = definition_of(item) if isinstance(item, EnhancedModelRegistryEntry) else item
                key = model_key(model.provider, model.id)
                _, defined = catalog.put(key, model, now)
                keys.append(key)
                if isinstance(item, EnhancedModelRegistryEntry):
                    defined.registered_at = item.registered_at
                    defined.updated_at = item.updated_at
                    store.restore(key, item.usage_stats, item, by_key.get(key, []))
        return keys


def _frozen(defined: Defined) -> _Frozen:
    return _Frozen(defined.model, defined.registered_at, defined.updated_at, defined)
