"""Merging one writer's unsaved changes into a snapshot that other processes write too.

Several processes (or forks) may share one ``persistence_path``. Each keeps, per model, the usage it recorded since
it last synchronised with the file (a :class:`Delta`). Saving seals those deltas into a numbered :class:`Batch`
and, under the sidecar lock, adds every batch the file does not hold yet to what the file holds:

- **usage adds up**: tokens, requests, cost, daily history and access counts are sums, so no increment is lost;
- **a batch is applied once**: the file keeps, per writer, the sequence number of the newest batch it holds (the
  *watermark*), so a batch whose save failed after ``os.replace`` is recognised and skipped when it is retried;
- **definitions converge**: the newer ``updated_at`` wins, per model;
- **removals survive**: a removed model leaves a tombstone (key and time) that drops copies other writers still
  have, unless they were redefined after the removal.

Nothing here knows the registry or files: it works on :class:`Row` values (one model as saved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from ..cost import UsageCounters, UsageHistory
from ..delta import Delta, later, newer_metrics
from ..schemas import (
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    ModelPerformanceMetrics,
    UsageHistoryEntry,
    construct_trusted,
    definition_of,
)

__all__ = [
    "KEEP_FOR",
    "MAX_TOMBSTONES",
    "MAX_WRITERS",
    "Batch",
    "Definition",
    "Delta",
    "Replayed",
    "Row",
    "Snapshot",
    "later",
    "merge",
    "merge_meta",
    "newer_metrics",
]

KEEP_FOR = timedelta(days=30)
"""How long a snapshot keeps a writer's watermark after its last save, and a removal's tombstone."""

MAX_WRITERS = 1000
"""At most this many watermarks are kept, the most recent (every process start is a new writer; a watermark matters
only to a writer retrying a save that failed after ``os.replace``, which it does at its next save)."""

MAX_TOMBSTONES = 10_000
"""At most this many tombstones are kept, the most recent."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Replayed(NamedTuple):
    """A journal record of another (dead) writer that this writer replayed: applied by a merge only when the file
    does not hold it yet (its writer's watermark is below ``seq``), so two writers replaying it count it once."""

    writer: str
    seq: int
    key: str
    delta: Delta


@dataclass
class Batch:
    """Deltas sealed by one save, numbered per writer; kept until a save is known to have written them."""

    seq: int
    deltas: dict[str, Delta] = field(default_factory=dict)
    removed: dict[str, datetime] = field(default_factory=dict)  # tombstones: key -> when it was removed
    replayed: list[Replayed] = field(default_factory=list)  # other writers' journal records it carries


class Row:
    """One model as a snapshot holds it: definition, bookkeeping, usage and daily history."""

    __slots__ = (
        "access_count",
        "history",
        "last_accessed",
        "metrics",
        "model",
        "registered_at",
        "updated_at",
        "usage",
    )

    def __init__(
        self,
        model: ExtendedModelInfo,
        registered_at: datetime,
        updated_at: datetime,
        metrics: ModelPerformanceMetrics | None = None,
    ) -> None:
        self.model = model
        self.registered_at = registered_at
        self.updated_at = updated_at
        self.metrics = metrics
        self.last_accessed: datetime | None = None
        self.access_count = 0
        self.usage = UsageCounters(registered_at)
        self.history = UsageHistory()

    @classmethod
    def from_entry(cls, entry: EnhancedModelRegistryEntry, history: list[UsageHistoryEntry]) -> Row:
        """The row of a validated snapshot entry and its history."""
        row = cls(definition_of(entry), entry.registered_at, entry.updated_at, entry.performance_metrics)
        row.last_accessed = entry.last_accessed
        row.access_count = entry.access_count
        row.usage = UsageCounters.from_stats(entry.usage_stats)
        row.history.load(history)
        return row

    def apply(self, delta: Delta) -> None:
        """Add (or, when absolute, put) ``delta``."""
        if delta.absolute:
            self.usage = delta.usage.copy()
        else:
            self.usage.add_counters(delta.usage)
        if delta.absolute_history:
            self.history = delta.history.copy()
        else:
            self.history.add_history(delta.history)
        self.access_count += delta.accesses
        self.last_accessed = later(self.last_accessed, delta.last_accessed)

    def entry(self, key: str) -> EnhancedModelRegistryEntry:
        """The snapshot entry (sharing the row's immutable values; only for writing)."""
        currency = "USD" if self.model.cost is None else self.model.cost.currency
        fields: dict[str, Any] = dict(self.model.__dict__)
        fields.update(
            key=key,
            registered_at=self.registered_at,
            updated_at=self.updated_at,
            last_accessed=self.last_accessed,
            access_count=self.access_count,
            usage_stats=self.usage.snapshot(currency),
            performance_metrics=self.metrics,
        )
        return construct_trusted(EnhancedModelRegistryEntry, fields)


@dataclass
class Snapshot:
    """What a snapshot file holds: rows by key, each writer's watermark (``seq``, when it saved), tombstones."""

    rows: dict[str, Row] = field(default_factory=dict)
    writers: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    removed: dict[str, datetime] = field(default_factory=dict)


class Definition(NamedTuple):
    """A writer's current definition of one model, as :func:`merge` takes it."""

    model: ExtendedModelInfo
    registered_at: datetime
    updated_at: datetime
    metrics: ModelPerformanceMetrics | None


def merge(disk: Snapshot, local: dict[str, Definition], batches: list[Batch], writer: str, now: datetime) -> Snapshot:
    """``disk`` with this writer's changes merged in; ``disk`` is consumed (its rows are changed in place).

    ``local`` holds this writer's current definitions (their usage is ignored: usage travels in ``batches``,
    oldest first). Batches at or below the writer's watermark in ``disk`` are already in it and skipped, their
    tombstones included (a model defined again since must not be dropped by a retry). A key only ``local`` has
    starts from zero usage.
    """
    landed = disk.writers.get(writer, (0, _EPOCH))[0]
    todo = [batch for batch in batches if batch.seq > landed]
    rows = disk.rows
    removed = dict(disk.removed)
    last_removal: dict[str, int] = {}  # per key, the index in todo of the newest batch that removed it
    for index, batch in enumerate(todo):
        for key, when in batch.removed.items():
            last_removal[key] = index
            removed[key] = max(removed.get(key, when), when)
            row = rows.get(key)
            if row is not None and row.updated_at <= when:
                del rows[key]  # removed here after that copy was defined
    stale: set[str] = set()  # keys whose copy here predates a removal elsewhere: its usage went with it
    for key, mine in local.items():
        row = rows.get(key)
        gone = removed.get(key)
        if gone is not None and gone > mine.updated_at:
            stale.add(key)  # removed by another writer after this definition (and maybe registered again)
            continue
        if row is None:
            rows[key] = Row(mine.model, mine.registered_at, mine.updated_at, mine.metrics)
            continue
        if mine.updated_at > row.updated_at:
            row.model = mine.model
            row.updated_at = mine.updated_at
        row.registered_at = min(row.registered_at, mine.registered_at)
        row.metrics = newer_metrics(row.metrics, mine.metrics)
    for index, batch in enumerate(todo):
        for key, delta in batch.deltas.items():
            row = rows.get(key)
            # Usage sealed before a later batch's removal of the key belongs to the model that was removed.
            if row is not None and last_removal.get(key, -1) <= index and key not in stale:
                row.apply(delta)
        for record in batch.replayed:
            row = rows.get(record.key)
            if (
                row is not None
                and last_removal.get(record.key, -1) <= index
                and record.key not in stale
                and record.seq > disk.writers.get(record.writer, (0, now))[0]
            ):
                row.apply(record.delta)
    writers, removed = merge_meta(disk.writers, removed, batches, writer, now)
    return Snapshot(rows, writers, removed)


def merge_meta(
    writers: dict[str, tuple[int, datetime]],
    removed: dict[str, datetime],
    batches: list[Batch],
    writer: str,
    now: datetime,
) -> tuple[dict[str, tuple[int, datetime]], dict[str, datetime]]:
    """The watermarks and tombstones a snapshot written now holds: this writer's newest batch, the journal
    records its batches replayed, and the batches' tombstones; entries older than :data:`KEEP_FOR` are dropped,
    and beyond :data:`MAX_WRITERS` and :data:`MAX_TOMBSTONES` the oldest.

    A tombstone outlives a model registered again under its key: it still tells writers holding a copy from
    before the removal that their copy (and its unsaved usage) is gone."""
    out = {w: mark for w, mark in writers.items() if now - mark[1] <= KEEP_FOR}
    if batches:
        out[writer] = (max(out.get(writer, (0, now))[0], batches[-1].seq), now)
    for batch in batches:
        for record in batch.replayed:
            out[record.writer] = (max(out.get(record.writer, (0, now))[0], record.seq), now)
    tombs = dict(removed)
    for batch in batches:
        for key, when in batch.removed.items():
            tombs[key] = max(tombs.get(key, when), when)
    tombs = {key: when for key, when in tombs.items() if now - when <= KEEP_FOR}
    if len(out) > MAX_WRITERS:
        out = dict(sorted(out.items(), key=lambda item: item[1][1])[-MAX_WRITERS:])
    if len(tombs) > MAX_TOMBSTONES:
        tombs = dict(sorted(tombs.items(), key=lambda item: item[1])[-MAX_TOMBSTONES:])
    return out, tombs
