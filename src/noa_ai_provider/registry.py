"""``EnhancedModelRegistry``: composes schemas, cost, rate limits, search, events and persistence.

Concurrency: one lock guards all state and is held only for in-memory work: never while a handler runs, while a
file is read or written, or while JSON is (de)serialised. Readers get snapshots built under the lock, so a snapshot
is a consistent view and changing it never changes the registry. Events are emitted after the lock is released, in
the thread that made the change.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import copy
import heapq
import itertools
import logging
import math
import os
import threading
import time
import uuid
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Self, TypeVar, overload

from . import jsonio
from .budget import PERIODS, BudgetState
from .bulk import gc_paused
from .config import MAX_CONFIG_BYTES, ConfigWatcher, read_models_config
from .cost import (
    SERVICE_TIER_NAMES,
    UsageCounters,
    UsageHistory,
    check_token_count,
    request_cost,
    worst_case_cost,
)
from .errors import (
    AmbiguousModelError,
    BudgetExceededError,
    ConfigError,
    ContextWindowWarning,
    InvalidUsageError,
    ModelNotFoundError,
    PersistenceError,
    RateLimitExceeded,
    RateLimitHeaderWarning,
    RateLimitTimeout,
    UnpricedModelError,
)
from .events import EventBus, Handler
from .headers import ProviderLimits, read_rate_limit_headers
from .importers import CatalogLoad, load_genai_prices_catalog, load_litellm_catalog
from .journal import Journal
from .merge import Batch, Definition, Delta, Replayed, Row, Snapshot, later, merge, merge_meta, newer_metrics
from .names import NameIndex
from .persistence import (
    AutoSaver,
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
    remove_leftovers,
)
from .ratelimit import DAY, ModelLimiter
from .reservation import CANCELLED, COMMITTED, EXPIRED, OPEN, Hold, Reservation
from .schemas import (
    SERVICE_TIERS,
    BudgetStatus,
    EnhancedModelRegistryConfig,
    EnhancedModelRegistryEntry,
    EnhancedModelSearchQuery,
    EnhancedRegistryStatistics,
    ExtendedModelInfo,
    ModelCapability,
    ModelCost,
    ModelPerformanceMetrics,
    ModelStatus,
    ModelUsageStats,
    PriceTier,
    RateLimitCheck,
    RateLimitConfig,
    ServiceTierPrices,
    UsageHistoryEntry,
    check_unique_keys,
    construct_trusted,
    definition_of,
    field_names,
    item_label,
    merge_arguments,
    model_key,
    shallow_copy,
    utc_from_timestamp,
    validate_or_raise,
)
from .search import cost_per_token, matches, performance_score, top
from .versions import compare_versions as _compare_versions
from .versions import parse_version

__all__ = ["EnhancedModelRegistry"]

logger = logging.getLogger("noa_ai_provider.registry")

_H = TypeVar("_H", bound=Handler)

_INFINITY = Decimal("Infinity")


_FIELD_BY_NAME = field_names(ExtendedModelInfo)
_METRIC_BY_NAME = field_names(ModelPerformanceMetrics)


_ATOMIC = frozenset({str, int, float, bool, Decimal, type(None)})


def _copy_value(value: Any) -> Any:
    # Metadata is JSON-like almost always; copying dicts and lists by hand is ~10x faster than deepcopy, and the
    # scalars inside them (the bulk of it) are taken as they are, without a call each.
    if isinstance(value, dict):
        return {k: v if type(v) in _ATOMIC else _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _ATOMIC else _copy_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | Decimal | bool):
        return value
    return copy.deepcopy(value)


_P = TypeVar("_P", ModelCost, ServiceTierPrices)


def _clone_prices(prices: _P) -> _P:
    # Prices hold containers (tiers, service tiers): those are copied one level down too.
    fields = dict(prices.__dict__)
    if prices.tiers is not None:
        fields["tiers"] = [shallow_copy(tier) for tier in prices.tiers]
    service = fields.get("service_tiers")
    if service is not None:
        fields["service_tiers"] = {name: _clone_prices(tier) for name, tier in service.items()}
    return construct_trusted(type(prices), fields)


def _ordered_tiers(tiers: object) -> bool:
    # What schemas.Tiers leaves after validation: PriceTier instances (validate_assignment guards their fields)
    # with strictly increasing thresholds. A list changed in place may have lost that: then the full way, which
    # sorts it (or rejects a repeated threshold).
    if tiers is None:
        return True
    if type(tiers) is not list:
        return False
    below = -1
    for tier in tiers:
        if type(tier) is not PriceTier or tier.above_input_tokens <= below:
            return False
        below = tier.above_input_tokens
    return True


def _validated_prices(cost: object) -> bool:
    if cost is None:
        return True
    if type(cost) is not ModelCost or not _ordered_tiers(cost.tiers):
        return False
    service = cost.service_tiers
    return service is None or (
        type(service) is dict
        and all(
            type(name) is str and name in SERVICE_TIERS and type(prices) is ServiceTierPrices
            for name, prices in service.items()
        )
        and all(_ordered_tiers(prices.tiers) for prices in service.values())
    )


def _validated_instance(item: object) -> bool:
    # An ExtendedModelInfo was validated when built, and validate_assignment guards its attributes; what a caller
    # can still change unchecked is inside containers, so those are checked here (catalogue imports hand us
    # thousands of fresh instances, and validating each again would double the cost of loading them): the
    # capabilities (members, no repeats), the tags, the price tiers (order) and service tiers (names).
    if type(item) is not ExtendedModelInfo:
        return False
    capabilities = item.capabilities
    tags = item.metadata.get("tags") if isinstance(item.metadata, dict) else None
    return (
        all(type(c) is ModelCapability for c in capabilities)
        and len(set(capabilities)) == len(capabilities)
        and isinstance(item.metadata, dict)
        and (tags is None or (isinstance(tags, list) and all(isinstance(t, str) for t in tags)))
        and _validated_prices(item.cost)
        and (item.rate_limit is None or type(item.rate_limit) is RateLimitConfig)
        and type(item.status) is ModelStatus
    )


def _own_copy(model: ExtendedModelInfo) -> ExtendedModelInfo:
    # The registry keeps its own copy, so the caller changing their instance later changes nothing here.
    fields = dict(model.__dict__)
    fields["capabilities"] = list(model.capabilities)
    fields["metadata"] = _copy_value(model.metadata)
    fields["cost"] = None if model.cost is None else _clone_prices(model.cost)
    fields["rate_limit"] = None if model.rate_limit is None else shallow_copy(model.rate_limit)
    return construct_trusted(ExtendedModelInfo, fields)


def _rank_cost(model: ExtendedModelInfo) -> Decimal:
    # Ranked on often and changed only with the definition, so kept per record; an unpriced model ranks last.
    unit = cost_per_token(model.cost)
    return _INFINITY if unit is None else unit


def _currency(model: ExtendedModelInfo) -> str:
    return "USD" if model.cost is None else model.cost.currency


MAX_SNAPSHOT_BYTES = 1 << 30
"""The default ``max_snapshot_bytes``: a saved registry larger than 1 GiB is refused rather than read."""

_GENERATIONS = itertools.count(1)
_generation = 0  # the last value taken: changes whenever any record is created or redefined (for the name index)


def _bump_generation() -> None:
    global _generation
    _generation = next(_GENERATIONS)  # next() is atomic; any new value differs from a stamp taken before


class _Record:
    """The registry's mutable state for one model. Only touched under the registry's lock."""

    __slots__ = (
        "absolute",
        "absolute_history",
        "access_count",
        "history",
        "last_accessed",
        "limiter",
        "metrics",
        "model",
        "pending",
        "rank_cost",
        "registered_at",
        "updated_at",
        "usage",
    )

    def __init__(self, model: ExtendedModelInfo, now: float, windows: ModelLimiter | None = None) -> None:
        stamp = utc_from_timestamp(now)
        _bump_generation()
        self.model = model
        self.registered_at = stamp
        self.updated_at = stamp
        self.last_accessed: datetime | None = None
        self.access_count = 0
        self.usage = UsageCounters(stamp)
        self.history = UsageHistory()
        self.metrics: ModelPerformanceMetrics | None = None
        # `windows`: the limiter of a model removed under this key within the last day, whose traffic still counts.
        self.limiter = ModelLimiter(model.rate_limit, previous=windows)
        self.rank_cost = _rank_cost(model)
        # What this process added since it last synchronised with the snapshot file (None: nothing), and whether
        # its usage was reset or imported since: then the whole usage replaces the file's (see merge.py).
        self.pending: Delta | None = None
        self.absolute = False
        self.absolute_history = False  # its daily history too (an import; a reset keeps the history)

    def delta(self) -> Delta:
        """The pending delta, created on first use."""
        pending = self.pending
        if pending is None:
            pending = self.pending = Delta()
        return pending

    def adopt(self, row: Row) -> None:
        """Take the saved usage and bookkeeping of ``row`` (what the file now holds), plus what is pending."""
        pending = self.pending
        if not self.absolute:
            if pending is not None:
                row.usage.add_counters(pending.usage)
            self.usage = row.usage
        if not self.absolute_history:
            if pending is not None:
                row.history.add_history(pending.history)
            self.history = row.history
        self.access_count = row.access_count + (self.pending.accesses if self.pending is not None else 0)
        self.last_accessed = later(self.last_accessed, row.last_accessed)
        self.registered_at = min(self.registered_at, row.registered_at)
        self.metrics = newer_metrics(self.metrics, row.metrics)

    def redefine(self, model: ExtendedModelInfo, now: float) -> None:
        if model.rate_limit != self.model.rate_limit:
            self.limiter = ModelLimiter(model.rate_limit, previous=self.limiter)
        if model.aliases != self.model.aliases:
            _bump_generation()
        self.model = model
        self.rank_cost = _rank_cost(model)
        self.updated_at = utc_from_timestamp(now)

    def snapshot(self, key: str) -> EnhancedModelRegistryEntry:
        return _make_entry(*self.capture(key))

    def capture(self, key: str) -> tuple[Any, ...]:
        # The record's state at this instant, cheaply (under the registry's lock): the model and metrics objects
        # are never changed in place (changes replace them), so they are shared; the counters are copied.
        return (
            key,
            self.model,
            self.registered_at,
            self.updated_at,
            self.last_accessed,
            self.access_count,
            self.usage.snapshot(_currency(self.model)),
            self.metrics,
        )


def _make_entry(
    key: str,
    model: ExtendedModelInfo,
    registered_at: datetime,
    updated_at: datetime,
    last_accessed: datetime | None,
    access_count: int,
    usage_stats: ModelUsageStats,
    metrics: ModelPerformanceMetrics | None,
) -> EnhancedModelRegistryEntry:
    # Everything in here was validated when it came in; only containers and nested models are copied.
    return construct_trusted(
        EnhancedModelRegistryEntry,
        {
            "id": model.id,
            "name": model.name,
            "provider": model.provider,
            "version": model.version,
            "aliases": list(model.aliases),
            "context_window": model.context_window,
            "max_tokens": model.max_tokens,
            "capabilities": list(model.capabilities),
            "cost": None if model.cost is None else _clone_prices(model.cost),
            "rate_limit": None if model.rate_limit is None else shallow_copy(model.rate_limit),
            "metadata": _copy_value(model.metadata),
            "status": model.status,
            "key": key,
            "registered_at": registered_at,
            "updated_at": updated_at,
            "last_accessed": last_accessed,
            "access_count": access_count,
            "usage_stats": usage_stats,
            "performance_metrics": None if metrics is None else shallow_copy(metrics),
        },
    )


_OPEN: weakref.WeakSet[EnhancedModelRegistry] = weakref.WeakSet()
_ALL: weakref.WeakSet[EnhancedModelRegistry] = weakref.WeakSet()  # for fork safety


_FORK_LOCK_TIMEOUT = 1.0  # seconds a fork waits for a registry's lock
_FORKING: list[EnhancedModelRegistry] = []  # the registries whose locks the forking thread holds


def _before_fork() -> None:
    # Take every registry's lock, so that no thread is halfway through a change when the process is copied: a
    # child then never inherits a request in its counters but not in the pending delta it subtracts.
    # A lock is held for microseconds at a time; one held longer (a thread stuck inside, which must not stall the
    # fork for ever) is left as it was, and the child replaces it as it always does.
    held = [registry for registry in sorted(_ALL, key=id) if registry._lock.acquire(timeout=_FORK_LOCK_TIMEOUT)]
    _FORKING[:] = held


def _after_fork_in_parent() -> None:
    for registry in reversed(_FORKING):
        registry._lock.release()
    _FORKING.clear()


def _after_fork_in_child() -> None:
    _FORKING.clear()
    for registry in list(_ALL):
        registry._reinit_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@atexit.register
def _close_all_at_exit() -> None:
    for registry in list(_OPEN):
        try:
            registry.close()
        except Exception:  # pragma: no cover - nobody is left to raise to at exit
            logger.exception("saving %r at interpreter exit failed", registry)


class EnhancedModelRegistry:
    """A thread-safe registry of AI models with cost tracking, rate limits, metrics, search and persistence.

    Every argument is keyword-only and optional (the seed's defaults); ``config`` may carry them instead, and an
    explicit keyword wins over it. ``clock`` returns seconds since the epoch (default :func:`time.time`) and is the
    only source of time, so tests can move it.

    With ``auto_save`` (the default) a background thread writes ``persistence_path`` every ``auto_save_interval``
    seconds when something changed, and :meth:`close` (also on leaving a ``with`` block and at interpreter exit)
    saves what is pending. With ``auto_load_config`` the models-config file is loaded here, and a missing or
    invalid file raises.
    """

    def __init__(
        self,
        *,
        config: EnhancedModelRegistryConfig | Mapping[str, Any] | None = None,
        persistence_path: str | Path | None = None,
        auto_save: bool | None = None,
        auto_save_interval: float | None = None,
        models_config_path: str | Path | None = None,
        auto_load_config: bool | None = None,
        clock: Callable[[], float] = time.time,
        durability: str = "snapshot",
        journal_fsync_interval: float = 0.0,
        max_config_bytes: int = MAX_CONFIG_BYTES,
        on_context_overflow: str = "raise",
        reservation_timeout: float = 900.0,
        max_snapshot_bytes: int = MAX_SNAPSHOT_BYTES,
    ) -> None:
        settings: dict[str, Any] = {}
        if isinstance(config, EnhancedModelRegistryConfig):
            settings.update(config.model_dump(by_alias=False, exclude_unset=True))
        elif config is not None:
            settings.update(
                validate_or_raise(EnhancedModelRegistryConfig, dict(config), "config").model_dump(
                    by_alias=False, exclude_unset=True
                )
            )
        explicit = {
            "persistence_path": persistence_path,
            "auto_save": auto_save,
            "auto_save_interval": auto_save_interval,
            "models_config_path": models_config_path,
            "auto_load_config": auto_load_config,
        }
        settings.update({k: v for k, v in explicit.items() if v is not None})
        self.config: EnhancedModelRegistryConfig = validate_or_raise(
            EnhancedModelRegistryConfig, settings, "EnhancedModelRegistry"
        )
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds since the epoch")
        self._clock = clock
        # A test clock that jumps to the next wake-up when every waiter sleeps (testing.FakeClock(auto_advance=True)).
        self._auto_advance: Callable[[float], None] | None = (
            getattr(clock, "advance_to", None) if getattr(clock, "auto_advance", False) is True else None
        )
        if durability not in ("snapshot", "journal"):
            raise ConfigError(f"durability must be 'snapshot' or 'journal', got {durability!r}")
        if isinstance(journal_fsync_interval, bool) or not journal_fsync_interval >= 0:
            raise ConfigError(f"journal_fsync_interval must be a number >= 0, got {journal_fsync_interval!r}")
        # With a journal every usage record is appended (and fsynced) to <path>.journal before it returns.
        self._journal = (
            Journal(
                self.config.persistence_path.with_name(self.config.persistence_path.name + ".journal"),
                float(journal_fsync_interval),
            )
            if durability == "journal"
            else None
        )
        # Sharing persistence_path with other processes (see merge.py): this writer's id, its last sequence
        # number (of batches, and of journal records), batches whose save is not known to have landed,
        # tombstones and replayed journal records of dead writers not sealed into a batch yet, and what the file
        # held when this process last wrote or read it (its stamp, watermarks, tombstones): while the file keeps
        # that stamp, nobody else wrote it.
        self._writer = _new_writer_id()
        self._seq = 0
        self._unacked: list[Batch] = []
        self._removed: dict[str, datetime] = {}
        self._replayed: list[Replayed] = []
        self._disk: _DiskState | None = None
        if isinstance(max_config_bytes, bool) or not isinstance(max_config_bytes, int) or max_config_bytes <= 0:
            raise ConfigError(f"max_config_bytes must be a positive integer, got {max_config_bytes!r}")
        self._max_config_bytes = max_config_bytes  # models-config files larger than this are refused
        if isinstance(max_snapshot_bytes, bool) or not isinstance(max_snapshot_bytes, int) or max_snapshot_bytes <= 0:
            raise ConfigError(f"max_snapshot_bytes must be a positive integer, got {max_snapshot_bytes!r}")
        self._max_snapshot_bytes = max_snapshot_bytes  # saved snapshots larger than this are refused
        # A path that is not a regular file (a directory, a FIFO, /dev/zero, a symlink loop) is refused at once,
        # not when the first save or load meets it.
        jsonio.check_regular(self.config.persistence_path)
        if durability == "journal":
            jsonio.check_regular(self.config.persistence_path.with_name(self.config.persistence_path.name + ".journal"))
        if on_context_overflow not in ("raise", "warn"):
            raise ConfigError(f"on_context_overflow must be 'raise' or 'warn', got {on_context_overflow!r}")
        self._on_context_overflow = on_context_overflow
        if (
            isinstance(reservation_timeout, bool)
            or not isinstance(reservation_timeout, int | float)
            or not 0 < reservation_timeout < math.inf
        ):
            raise ConfigError(f"reservation_timeout must be a number of seconds > 0, got {reservation_timeout!r}")
        self._reservation_timeout = float(reservation_timeout)
        self._expiries: list[Hold] = []  # open reservations' holds by expiry (a heap; released ones wait there)
        self._released_in_heap = 0  # how many of them were released (the heap is compacted when half are)
        self._collected: deque[Hold] = deque()  # holds of reservations garbage-collected while open
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # acquire(wait=True) sleeps on it
        self._waiters: dict[str, deque[_Waiter]] = {}
        self._budgets: dict[tuple[str | None, str], BudgetState] = {}
        self._day: tuple[float, float, date] = (0.0, 0.0, date(1970, 1, 1))
        self._config_keys: dict[Path, set[str]] = {}  # per models-config file, the keys it defined
        self._file_keys: set[str] = set()  # keys read from the saved file (see _report_not_in_config)
        self._kept_windows: dict[str, tuple[float, ModelLimiter]] = {}  # removed models' windows (_new_record)
        self._reported_orphans: set[str] = set()
        self._watchers: list[ConfigWatcher] = []
        self._retired_cost: dict[str, Decimal] = {}  # usage of models a config reload removed, by currency
        self._retired_counts = [0, 0, 0]  # their input tokens, output tokens, requests
        self._save_lock = threading.Lock()  # orders whole saves; never taken while holding _lock
        self._records: dict[str, _Record] = {}
        self._names: NameIndex | None = None  # every name of every model (aliases...): see _resolve
        self._names_stamp: tuple[int, int] | None = None
        self._version = 0  # bumped by every change; autosave writes when it differs from _saved_version
        self._saved_version = 0
        self._events = EventBus()
        self._closed = False
        self._autosaver: AutoSaver | None = None
        _ALL.add(self)
        path = self.persistence_path
        if path.parent.is_dir() and any(path.parent.glob(f".{path.name}.*.tmp")):
            with locked(path):  # only then: opening a registry must not litter folders with lock files
                remove_leftovers(path)  # temporary files of writers that crashed
        if self.config.auto_load_config:
            self.load_from_config()
        if self.config.auto_save:
            self._autosaver = AutoSaver(self._save_if_dirty, self.config.auto_save_interval)
            self._autosaver.start()
            _OPEN.add(self)

    # ------------------------------------------------------------------ properties and lifecycle

    @property
    def persistence_path(self) -> Path:
        """Where :meth:`save` writes and :meth:`load` reads."""
        return self.config.persistence_path

    @property
    def models_config_path(self) -> Path:
        """The default file of :meth:`load_from_config`."""
        return self.config.models_config_path

    @property
    def dirty(self) -> bool:
        """Whether something changed since the last successful save (or since creation)."""
        return self._version != self._saved_version

    def close(self) -> None:
        """Stop the autosave thread and, when ``auto_save`` is on, save pending changes. Idempotent.

        Raises :class:`PersistenceError` when that final save fails (the changes stay in memory).
        """
        if self._closed:
            return
        self._closed = True
        _OPEN.discard(self)
        for watcher in self._watchers:
            watcher.stop(_JOIN_TIMEOUT)  # a watcher wedged in a read must not hold close() for ever
        if self._autosaver is not None:
            self._autosaver.stop(_JOIN_TIMEOUT)
            self._save_if_dirty()
        if self._journal is not None:
            self._journal.close()

    def _reinit_after_fork(self) -> None:
        # In a forked child only the forking thread exists: a lock another thread held at the fork would stay
        # held forever, waiters belong to threads that are gone, and the autosave thread did not come along.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._save_lock = threading.Lock()
        self._waiters = {}
        self._watchers = []
        # The child is a writer of its own: the parent's unsaved usage stays the parent's to save, so the child
        # drops it (from its pending deltas and from its totals) and starts its own sequence.
        self._writer = _new_writer_id()
        self._seq = 0
        self._removed = {}
        # Unsaved: pending deltas, sealed batches not known to be in the file (a save that failed, or one the
        # autosave thread was in the middle of), and replayed records.
        unsaved: list[tuple[str, Delta]] = [(k, r.pending) for k, r in self._records.items() if r.pending is not None]
        for batch in self._unacked:
            unsaved.extend(batch.deltas.items())
            unsaved.extend((r.key, r.delta) for r in batch.replayed)
        unsaved.extend((r.key, r.delta) for r in self._replayed)
        if self._unacked:
            self._disk = None  # whether those landed is unknown here: merge with the file on the next save
        self._unacked = []
        self._replayed = []
        for key, delta in unsaved:
            record = self._records.get(key)
            if record is None:
                continue
            if not (record.absolute or delta.absolute):
                record.usage.add_counters(delta.usage, -1)
            if not (record.absolute_history or delta.absolute_history):
                record.history.add_history(delta.history, -1)
            record.access_count -= delta.accesses
        for record in self._records.values():
            record.pending = None
            record.absolute = record.absolute_history = False
        if self._journal is not None:
            self._journal.after_fork()
        if self._autosaver is not None and not self._closed:
            self._autosaver = AutoSaver(self._save_if_dirty, self.config.auto_save_interval)
            self._autosaver.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EnhancedModelRegistry {len(self._records)} models, path={str(self.persistence_path)!r}>"

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def _now(self) -> float:
        # Every reading of the clock goes through here, before any state changes: a reading that is not a finite
        # time between 1970 and 9999 (NaN, infinity, milliseconds instead of seconds) is refused (ConfigError), so
        # a bad clock can neither poison state nor half-record a request. A reading before an earlier one is
        # accepted (history may be recorded on any day), but the rate-limit windows never go back
        # (ratelimit.ModelLimiter), and budgets only ever roll forward.
        raw = self._clock()
        try:
            now = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"the registry's clock returned {raw!r}, not seconds since the epoch") from None
        if not 0.0 <= now <= _MAX_CLOCK:
            raise ConfigError(
                f"the registry's clock returned {raw!r}: not a time between 1970 and 9999 in seconds since the "
                "epoch; nothing was changed"
            )
        return now

    def _get(self, key: str) -> _Record:
        # Callers hold the lock; `key` is a registry key (see _lookup for the other names of a model).
        record = self._records.get(key)
        if record is None:
            raise ModelNotFoundError(key)
        return record

    def _lookup(self, name: str) -> tuple[str, _Record]:
        # Callers hold the lock. The key and record `name` stands for (a key, an alias, a dated snapshot...), or
        # ModelNotFoundError (with suggestions) / AmbiguousModelError.
        record = self._records.get(name)
        if record is not None:
            return name, record
        key = self._resolve(name)
        return key, self._records[key]

    def _find(self, name: str) -> tuple[str, _Record] | None:
        # Callers hold the lock. _lookup for getters: None when nothing fits (an ambiguous name still raises).
        try:
            return self._lookup(name)
        except AmbiguousModelError:
            raise
        except ModelNotFoundError:
            return None

    def _resolve(self, name: object) -> str:
        # Callers hold the lock.
        if not isinstance(name, str):
            raise ModelNotFoundError(repr(name))
        if name in self._records:
            return name
        index = self._name_index()
        found = index.resolve(name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousModelError(name, found)
        raise ModelNotFoundError(name, index.suggestions(name))

    def _name_index(self) -> NameIndex:
        # Rebuilt when a model came, went or changed its aliases since the last build.
        stamp = (_generation, len(self._records))
        if self._names is None or self._names_stamp != stamp:
            self._names = NameIndex((key, record.model) for key, record in self._records.items())
            self._names_stamp = stamp
        return self._names

    def resolve_key(self, name: str) -> str:
        """The registry key that ``name`` stands for: the key itself, an alias of a model (alone or after its
        provider), its id alone, a dated snapshot name a provider returns (``gpt-4o-2024-08-06`` resolves to the
        model of that alias, else to ``gpt-4o``), a LiteLLM ``provider/model`` string, or a key whose provider is
        spelled otherwise (``anthropic:claude-sonnet-4-5``). See :mod:`noa_ai_provider.names`.

        Raises :class:`ModelNotFoundError` (its message suggests the closest keys) when nothing fits, and
        :class:`AmbiguousModelError` (naming the candidates) when several models do. ``get_model``,
        ``estimate_cost``, ``record_usage``, ``acquire`` and every other method that takes a key resolve it this
        way; ``unregister_model`` takes exact keys only.
        """
        with self._lock:
            return self._resolve(name)

    # ------------------------------------------------------------------ events

    @overload
    def on(self, event: str, handler: None = None) -> Callable[[_H], _H]: ...

    @overload
    def on(self, event: str, handler: _H) -> _H: ...

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Connect ``handler`` to ``event``; without ``handler``, return a decorator.

        Handlers are held strongly and called as ``handler(registry, **payload)`` after the change, outside the
        lock; an exception in a handler is logged and swallowed. Unknown event names raise ``ValueError``.
        """
        if handler is None:

            def decorator(func: _H) -> _H:
                self._events.connect(event, func)
                return func

            self._events.check(event)  # fail at the decorator line, not later
            return decorator
        return self._events.connect(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        """Disconnect ``handler`` from ``event``."""
        self._events.disconnect(event, handler)

    # ------------------------------------------------------------------ model management

    def register_model(self, model: ExtendedModelInfo | Mapping[str, Any]) -> str:
        """Register ``model`` (camelCase dict, snake_case dict or :class:`ExtendedModelInfo`); return its key.

        A new key emits ``model-registered``. An existing key has its definition replaced, keeps its usage stats,
        metrics and rate-limit history, and emits ``model-updated``. Invalid input raises :class:`ConfigError`
        naming the field, and changes nothing.
        """
        label = item_label("model", None, model)
        return self._put_models([validate_or_raise(ExtendedModelInfo, model, label)])[0]

    def register_models(self, models: Iterable[ExtendedModelInfo | Mapping[str, Any]]) -> list[str]:
        """Register several models, all or nothing: one invalid model registers none. Returns their keys.

        The garbage collector is paused while a thousand models or more are registered (see
        :meth:`import_litellm_catalog`)."""
        items = _as_list(models)
        with gc_paused() if len(items) >= 1000 else contextlib.nullcontext():
            validated = [
                _own_copy(item)
                if _validated_instance(item)
                else validate_or_raise(ExtendedModelInfo, item, item_label("models", index, item))
                for index, item in enumerate(items)
            ]
            check_unique_keys(validated)  # one batch defining a key twice is refused, not resolved by order
            return self._put_models(validated)

    def import_litellm_catalog(
        self, source: str | os.PathLike[str] | Mapping[str, Any], *, today: date | None = None
    ) -> CatalogLoad:
        """Import LiteLLM's catalogue and register its models in one step; return their keys and the entries left
        out with their reasons.

        The same models as ``register_models(load_litellm_catalog(source, today=today))`` (see
        :func:`noa_ai_provider.importers.load_litellm_catalog` for the conversion and the errors), and the same
        events, but faster: the models never leave the library, so the registry keeps them without the defensive
        copy and checks ``register_models`` makes of a caller's instances, and the garbage collector is paused
        during the bulk load (nothing in it makes cycles).
        """
        with gc_paused():
            catalog = load_litellm_catalog(source, today=today)
            keys = self._put_models(list(catalog))
        return CatalogLoad(keys, catalog.skipped)

    def import_genai_prices_catalog(self, *, at: datetime | None = None) -> CatalogLoad:
        """Import the installed ``genai-prices`` database (prices in force ``at``, default now) and register its
        models in one step, as :meth:`import_litellm_catalog` does; raises :class:`ImportError` naming the extra
        when the package is missing."""
        with gc_paused():
            catalog = load_genai_prices_catalog(at=at)
            keys = self._put_models(list(catalog))
        return CatalogLoad(keys, catalog.skipped)

    def _put_models(self, models: list[ExtendedModelInfo]) -> list[str]:
        events: list[tuple[str, str, EnhancedModelRegistryEntry | None]] = []
        keys: list[str] = []
        wants = self._events.wants("model-registered") or self._events.wants("model-updated")
        with self._lock:
            now = self._now()
            for model in models:
                key = model_key(model.provider, model.id)
                record = self._records.get(key)
                if record is None:
                    record = self._records[key] = self._new_record(key, model, now)
                    event = "model-registered"
                else:
                    record.redefine(model, now)
                    event = "model-updated"
                    self._wake(key)  # limits may have changed
                keys.append(key)
                events.append((event, key, record.snapshot(key) if wants else None))
            self._version += 1
        for event, key, snapshot in events:
            self._events.emit(self, event, key=key, model=snapshot)
        return keys

    def get_model(self, key: str) -> EnhancedModelRegistryEntry | None:
        """The entry under ``key`` (or ``None``), recording an access; the snapshot already counts it.

        ``key`` may be any name :meth:`resolve_key` resolves (an alias, a dated snapshot name...); a name that fits
        several models raises :class:`AmbiguousModelError`."""
        with self._lock:
            found = self._find(key)
            if found is None:
                return None
            key, record = found
            record.access_count += 1
            record.last_accessed = utc_from_timestamp(self._now())
            pending = record.delta()
            pending.accesses += 1
            pending.last_accessed = record.last_accessed
            self._version += 1
            return record.snapshot(key)

    def get_model_by_provider_and_id(self, provider: str, model_id: str) -> EnhancedModelRegistryEntry | None:
        """The entry of ``provider`` and ``model_id`` (or ``None``), recording an access."""
        return self.get_model(model_key(provider, model_id))

    def list_models(self) -> list[EnhancedModelRegistryEntry]:
        """Every entry, in registration order. Records no access."""
        with self._lock:
            captures = [record.capture(key) for key, record in self._records.items()]
        return [_make_entry(*capture) for capture in captures]  # built outside the lock

    def update_model(self, key: str, updates: Mapping[str, Any]) -> None:
        """Replace the given model fields (either spelling) and emit ``model-updated``.

        ``id`` and ``provider`` cannot change (they make the key); other fields are validated like a new model.
        Raises :class:`ModelNotFoundError` for an unknown key and :class:`ConfigError` for invalid updates, which
        change nothing.
        """
        if not isinstance(updates, Mapping):
            raise ConfigError(f"updates must be a mapping, got {type(updates).__name__}")
        fields: dict[str, Any] = {}
        for name, value in updates.items():
            field = _FIELD_BY_NAME.get(name)
            if field is None:
                raise ConfigError(f"update of {key!r}: {name}: unknown model field")
            if field in {"id", "provider"}:
                raise ConfigError(
                    f"update of {key!r}: {name}: cannot be changed (it is part of the key); "
                    "register the model under its new key instead"
                )
            fields[field] = value
        with self._lock:
            key, record = self._lookup(key)
            merged = record.model.model_dump(by_alias=False) | fields
            model = validate_or_raise(ExtendedModelInfo, merged, f"update of {key!r}")
            record.redefine(model, self._now())
            self._version += 1
            self._wake(key)
            snapshot = record.snapshot(key)
        self._events.emit(self, "model-updated", key=key, model=snapshot)

    def update_model_status(self, key: str, status: ModelStatus | str) -> None:
        """Set the status of ``key`` and emit ``model-updated``. Unknown key: :class:`ModelNotFoundError`."""
        try:
            status = ModelStatus(status)
        except ValueError:
            valid = ", ".join(repr(s.value) for s in ModelStatus)
            raise ConfigError(f"status: unknown status {status!r}; valid: {valid}") from None
        with self._lock:
            key, record = self._lookup(key)
            record.redefine(record.model.model_copy(update={"status": status}), self._now())
            self._version += 1
            snapshot = record.snapshot(key)
        self._events.emit(self, "model-updated", key=key, model=snapshot)

    def unregister_model(self, key: str) -> bool:
        """Remove ``key``; ``True`` (and ``model-unregistered``) when something was removed."""
        with self._lock:
            gone = self._records.pop(key, None)
            removed = gone is not None
            if gone is not None:
                self._keep_windows(key, gone)
            if removed:
                self._removed[key] = utc_from_timestamp(self._now())  # a tombstone: other writers drop it too
                self._version += 1
                self._wake(key)  # its waiters learn that it is gone
        if removed:
            self._events.emit(self, "model-unregistered", key=key)
        return removed

    def clear_registry(self) -> None:
        """Remove every model (emitting ``model-unregistered`` for each)."""
        with self._lock:
            keys = list(self._records)
            for key, record in self._records.items():
                self._keep_windows(key, record)
            self._records.clear()
            stamp = utc_from_timestamp(self._now())
            self._removed.update(dict.fromkeys(keys, stamp))
            if keys:
                self._version += 1
            for key in keys:
                self._wake(key)
        for key in keys:
            self._events.emit(self, "model-unregistered", key=key)

    # ------------------------------------------------------------------ cost tracking

    def record_usage(
        self,
        key: str,
        input_tokens: int,
        output_tokens: int,
        success: bool = True,
        *,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal:
        """Record one request: tokens, exact cost, request counters, rate-limit windows, budgets, daily history.
        Returns its cost.

        ``input_tokens`` includes ``cached_input_tokens`` (cache reads), ``cache_write_tokens`` (5-minute cache
        writes) and ``cache_write_1h_tokens`` (1-hour cache writes); each bills at its price (see
        :func:`noa_ai_provider.cost.request_rates`), and the usage counters count both kinds of write as cache
        writes. ``service_tier`` picks the ``batch``, ``flex`` or ``priority`` prices; the names providers report
        back (``default``, ``auto``, ``standard``, ``scale``) are accepted too
        (:func:`noa_ai_provider.cost.billed_service_tier`). A failed request (``success=False``) counts as a
        request and its tokens are charged. ``key`` may be any name :meth:`resolve_key` resolves; the usage is
        recorded whatever the model's context window (the provider took the request). Emits ``usage-recorded``
        with ``key, input_tokens, output_tokens, cost, total_cost`` (the model's running total), and
        ``budget-warning`` / ``budget-exceeded`` when a budget crosses a threshold.
        Raises :class:`ModelNotFoundError` for an unknown key, :class:`UnpricedModelError` for a model without
        a price, and :class:`InvalidUsageError` for bad token counts or tiers, recording nothing.
        """
        usage = _usage_args(
            input_tokens,
            output_tokens,
            success,
            cached_input_tokens,
            cache_write_tokens,
            service_tier,
            cache_write_1h_tokens,
        )
        with self._lock:
            key, record = self._lookup(key)
            now = self._now()
            cost = self._price(key, record, usage)
            self._check_room(key, record, usage, now)
            record.limiter.record(now, _limited_input(record.model, usage), usage.output_tokens)
            total, budget_events = self._charge(key, record, usage, cost, now)
            seq = self._next_seq()
            delta = record.pending
        if self._journal is not None:
            self._journal_or_undo(seq, key, record, delta, usage, cost, now)
        self._emit_usage(key, usage, cost, total, budget_events)
        return cost

    def _journal_or_undo(
        self, seq: int, key: str, record: _Record, delta: Delta | None, usage: _Usage, cost: Decimal, now: float
    ) -> None:
        # Journal mode: append the request (counted in memory just before). When the append fails, the call raises
        # and nothing of the request remains (counters, history, pending delta, budgets), so a caller that retries
        # counts it once; the rate-limit windows keep it (it happened at the provider: counting it can only refuse
        # earlier). If a save sealed it into a batch meanwhile, it is on its way into the file: then it counts and
        # the call does not raise (a warning says the journal missed it).
        try:
            self._journal_usage(seq, key, usage, cost, now)
        except PersistenceError:
            with self._lock:
                undone = record.pending is delta and delta is not None and not record.absolute
                if undone:
                    assert delta is not None
                    self._undo(key, record, delta, usage, cost, now)
            if undone:
                raise
            logger.warning("%s: the journal append failed, but a save already holds the request", key)

    def _undo(self, key: str, record: _Record, delta: Delta, usage: _Usage, cost: Decimal, now: float) -> None:
        # Under the lock: take back what _charge counted for one request.
        args = (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens)
        record.usage.remove(usage.input_tokens, usage.output_tokens, cost, usage.success, *args[2:])
        day = self._utc_day(now)
        record.history.remove(day, *args, cost)
        delta.remove_request(day, *args, cost, usage.success)
        stamp = utc_from_timestamp(now)
        for budget in self._budgets.values():
            if budget.applies(key) and (budget.start is None or budget.start <= stamp):
                budget.uncharge(cost)  # (a budget that rolled into a new period since no longer holds it)
        self._version += 1

    def _next_seq(self) -> int:
        # Under the lock.
        if self._journal is None:
            return 0
        self._seq += 1
        return self._seq

    def _journal_usage(self, seq: int, key: str, usage: _Usage, cost: Decimal, now: float) -> None:
        # Outside the registry's lock: the append and its fsync must not stop other threads.
        if self._journal is not None:
            self._journal.append(
                {
                    "writer": self._writer,
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

    def _price(self, key: str, record: _Record, usage: _Usage, reserved: ModelCost | None = None) -> Decimal:
        cost = record.model.cost if reserved is None else reserved
        if cost is None:
            raise UnpricedModelError(f"{key} has no price (cost is null); set one to record or estimate its cost")
        return request_cost(
            cost,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_tokens - usage.cache_write_1h_tokens,
            usage.service_tier,
            usage.cache_write_1h_tokens,
        )

    def _check_room(self, key: str, record: _Record, usage: _Usage, now: float) -> None:
        # Under the lock, before anything changes: what save() writes, load() must read, so no count may pass the
        # largest integer a saved registry holds.
        args = (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens)
        full = record.usage.overflow(*args) or record.history.overflow(self._utc_day(now), *args)
        if full is not None:
            raise InvalidUsageError(
                f"{key}: recording this request would take {full} past 2**63-1, the largest count a saved registry "
                "holds; nothing was recorded (reset_usage_stats starts the counters again)"
            )

    def _charge(
        self, key: str, record: _Record, usage: _Usage, cost: Decimal, now: float, *, pending: bool = True
    ) -> tuple[Decimal, list[tuple[str, dict[str, Any]]]]:
        # Under the lock: counters, daily history and budgets take one request. Returns the model's new total and
        # the budget events to emit once the lock is released.
        record.usage.add(
            usage.input_tokens,
            usage.output_tokens,
            cost,
            usage.success,
            usage.cached_input_tokens,
            usage.cache_write_tokens,
        )
        day = self._utc_day(now)
        record.history.add(
            day, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cache_write_tokens, cost
        )
        if pending:  # this process's own request (a replayed one travels as a Replayed record)
            record.delta().add_request(
                day,
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.cache_write_tokens,
                cost,
                usage.success,
            )
        events: list[tuple[str, dict[str, Any]]] = []
        if self._budgets:
            stamp = utc_from_timestamp(now)  # once, not per budget
            for budget in self._budgets.values():
                if budget.applies(key):
                    budget.roll(stamp)
                    for event in budget.charge(cost):
                        payload = {
                            "key": budget.key,
                            "period": budget.period,
                            "limit": budget.limit,
                            "spent": budget.spent,
                        }
                        events.append((event, payload))
        self._version += 1
        return record.usage.total_cost, events

    def _utc_day(self, now: float) -> date:
        # The UTC date of `now`, cached for the current day: building a datetime per request is measurable.
        start, end, day = self._day
        if not start <= now < end:
            day = utc_from_timestamp(now).date()
            start = (now // 86_400) * 86_400
            self._day = (start, start + 86_400, day)
        return day

    def _emit_usage(
        self, key: str, usage: _Usage, cost: Decimal, total: Decimal, budget_events: list[tuple[str, dict[str, Any]]]
    ) -> None:
        if self._events.wants("usage-recorded"):  # skip building the payload when nobody listens
            self._events.emit(
                self,
                "usage-recorded",
                key=key,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost=cost,
                total_cost=total,
            )
        for event, payload in budget_events:
            self._events.emit(self, event, **payload)

    def get_usage_stats(self, key: str) -> ModelUsageStats | None:
        """A snapshot of the usage counters of ``key`` (any name :meth:`resolve_key` resolves), or ``None``."""
        with self._lock:
            found = self._find(key)
            return None if found is None else found[1].usage.snapshot(_currency(found[1].model))

    def estimate_cost(
        self,
        key: str,
        input_tokens: int,
        output_tokens: int,
        *,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal:
        """The exact cost of a request, without recording it: ``(input * input price + output * output price) /
        per`` in the simple case; cache reads and writes, long-context tiers and service tiers as for
        :meth:`record_usage`. Raises :class:`UnpricedModelError` for a model without a price (never $0)."""
        usage = _usage_args(
            input_tokens,
            output_tokens,
            True,
            cached_input_tokens,
            cache_write_tokens,
            service_tier,
            cache_write_1h_tokens,
        )
        key = self._checked_request(key, usage.input_tokens, usage.output_tokens)
        with self._lock:
            key, record = self._lookup(key)
            return self._price(key, record, usage)

    def _checked_request(self, name: str, inp: int, out: int) -> str:
        # The key `name` resolves to, once the request is checked against the model's context window.
        record = self._records.get(name)  # the common case, without the lock: a key whose model the request fits
        if record is not None and _context_overflow(name, record.model, inp, out) is None:
            return name  # (a dict read is atomic, and a model is replaced, never changed in place)
        with self._lock:
            key, record = self._lookup(name)
            overflow = _context_overflow(key, record.model, inp, out)
        if overflow is not None:
            self._context_overflow(overflow)
        return key

    def _context_overflow(self, message: str) -> None:
        # Outside the lock: a warning filter may run code (or turn the warning into an exception).
        if self._on_context_overflow == "raise":
            raise InvalidUsageError(message + " (on_context_overflow='warn' makes this a warning)")
        warnings.warn(message, ContextWindowWarning, stacklevel=4)

    # ------------------------------------------------------------------ budgets and history

    def set_budget(
        self,
        amount: Decimal | int | float | str,
        *,
        period: str = "month",
        key: str | None = None,
        warn_at: Decimal | float | str = Decimal("0.8"),
    ) -> None:
        """Set (or replace) the budget of ``key`` (``None``: every model together) for ``period``: ``"day"``,
        ``"week"``, ``"month"`` (UTC calendar periods; weeks start on Monday) or ``"total"``.

        What was already recorded in the current period (from the daily usage history) counts at once.
        ``budget-warning`` is emitted when spend reaches ``warn_at * amount``, ``budget-exceeded`` when it passes
        ``amount`` (each once per period). :meth:`acquire` reserves the worst case of a request against every
        budget that applies and raises :class:`BudgetExceededError` when it could cross one. Raises
        :class:`ConfigError` for a bad amount, period or threshold, and :class:`ModelNotFoundError` for an
        unknown key.
        """
        limit = _decimal_arg("amount", amount)
        threshold = _decimal_arg("warn_at", warn_at)
        if threshold > 1:
            raise ConfigError(f"warn_at must be between 0 and 1, got {threshold}")
        if period not in PERIODS:
            raise ConfigError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
        with self._lock:
            if key is not None:
                key = self._resolve(key)
            stamp = utc_from_timestamp(self._now())
            budget = BudgetState(limit, period, key, threshold, stamp)
            start = budget.start.date() if budget.start is not None else None
            end = budget.end.date() if budget.end is not None else None
            for model_key_, record in self._records.items():
                if budget.applies(model_key_):
                    budget.charge(record.history.cost_between(start, end))
            # charge() above already marked the thresholds the existing spend has passed: no event for the past.
            old = self._budgets.get((key, period))
            if old is not None:  # a changed amount or threshold: the same budget, with its open reservations
                budget.reserved = old.reserved
                budget.ident = old.ident
            self._budgets[(key, period)] = budget

    def remove_budget(self, *, period: str = "month", key: str | None = None) -> bool:
        """Remove a budget; ``True`` when there was one."""
        with self._lock:
            return self._budgets.pop((key, period), None) is not None

    def get_budget_status(self) -> list[BudgetStatus]:
        """Every budget: spend and reservations in its current period, the limit and the period's end."""
        with self._lock:
            now = self._now()
            self._sweep(now)  # holds of expired or forgotten reservations are not "reserved" any more
            stamp = utc_from_timestamp(now)
            out = []
            for budget in self._budgets.values():
                budget.roll(stamp)
                out.append(budget.status())
            return out

    def get_usage_history(
        self, key: str | None = None, *, since: date | datetime | None = None
    ) -> list[UsageHistoryEntry]:
        """Per model and UTC day: tokens, requests and cost, oldest day first (for ``key``, or every model in
        registration order within a day). ``since`` (a date, inclusive) drops earlier days. Kept across save and
        load; at most :data:`~noa_ai_provider.cost.MAX_HISTORY_DAYS` days per model."""
        if isinstance(since, datetime):
            first: date | None = (since.astimezone(UTC) if since.tzinfo is not None else since).date()
        elif since is None or isinstance(since, date):
            first = since
        else:
            raise InvalidUsageError(f"since must be a date, a datetime or None, got {type(since).__name__}")
        with self._lock:
            if key is not None:
                key, record = self._lookup(key)
                return record.history.entries(key, first)
            rows = [e for k, r in self._records.items() for e in r.history.entries(k, first)]
        return sorted(rows, key=lambda e: e.date)  # stable: registration order within a day

    def reset_usage_stats(self, key: str) -> None:
        """Zero the usage counters of ``key`` (not its rate-limit windows) and emit ``usage-reset``."""
        with self._lock:
            key, record = self._lookup(key)
            record.usage.reset(utc_from_timestamp(self._now()))
            record.absolute = True  # the file's usage of this model is replaced on the next save, not added to
            self._version += 1
        self._events.emit(self, "usage-reset", key=key)

    # ------------------------------------------------------------------ rate limiting

    def check_rate_limit(self, key: str, tokens_to_send: int, *, output_tokens: int | None = None) -> RateLimitCheck:
        """Whether one more request of ``tokens_to_send`` tokens (input plus expected output) keeps every limit.

        Read-only: reserves nothing, but counts open reservations. ``output_tokens`` says how much of
        ``tokens_to_send`` is expected output (for separate input/output limits; default: all of it is input).
        ``reason`` names the binding limit, ``retry_after`` the seconds until it would pass (``None``: never, the
        request alone is over a limit). To check and reserve in one step, use :meth:`acquire`.
        """
        tokens = check_token_count("tokens_to_send", tokens_to_send)
        out = 0 if output_tokens is None else check_token_count("output_tokens", output_tokens)
        if out > tokens:
            raise InvalidUsageError(f"output_tokens ({out}) cannot exceed tokens_to_send ({tokens})")
        with self._lock:
            now = self._now()
            self._sweep(now)
            return self._lookup(key)[1].limiter.check(now, tokens - out, out)

    def acquire(
        self,
        key: str,
        input_tokens: int,
        max_output_tokens: int = 0,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Reservation:
        """Check every limit of ``key`` and reserve one request plus ``input_tokens + max_output_tokens`` tokens,
        all at once or nothing. Returns a :class:`Reservation` to commit (or cancel) when the call is done.

        Not admitted and ``wait=False``: raises :class:`RateLimitExceeded` (``.limit``, ``.retry_after``) and emits
        ``rate-limited``. ``wait=True``: blocks until admitted or until ``timeout`` seconds of the registry's clock
        have passed (:class:`RateLimitTimeout`); waiters are served first come, first served, so a big request is not
        starved by small ones (and a non-waiting call does not overtake them). A request that can never fit (over a
        per-minute limit by itself) raises at once. Thread-safe; see :meth:`acquire_async` for event loops.

        With budgets set (:meth:`set_budget`), the worst-case cost of the request (every input token at full price
        plus ``max_output_tokens``) is reserved against each budget that applies, in the same step: when it could
        cross one, :class:`BudgetExceededError` is raised at once (waiting would not help) and nothing is taken.
        """
        acq = _Acquisition(key, *_acquire_args(input_tokens, max_output_tokens, timeout), wait)
        key = acq.key = self._checked_request(key, acq.inp, acq.out)
        try:
            while True:
                step = self._acquire_step(acq, block=True)
                if isinstance(step, Reservation):
                    return step
        finally:
            if acq.waiter is not None:
                self._drop_waiter(key, acq.waiter)

    async def acquire_async(
        self,
        key: str,
        input_tokens: int,
        max_output_tokens: int = 0,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Reservation:
        """:meth:`acquire` for event loops: waiting awaits instead of blocking the loop (same queue, same order)."""
        acq = _Acquisition(key, *_acquire_args(input_tokens, max_output_tokens, timeout), wait)
        key = acq.key = self._checked_request(key, acq.inp, acq.out)
        acq.loop = asyncio.get_running_loop()
        try:
            while True:
                step = self._acquire_step(acq, block=False)
                if isinstance(step, Reservation):
                    return step
                if step is not None and acq.waiter is not None and acq.waiter.event is not None:
                    try:
                        await asyncio.wait_for(acq.waiter.event.wait(), step)
                    except TimeoutError:
                        if self._auto_advance is not None:
                            with self._lock:
                                self._autojump()
                    acq.waiter.event.clear()
        finally:
            if acq.waiter is not None:
                self._drop_waiter(key, acq.waiter)

    def _acquire_step(self, acq: _Acquisition, *, block: bool) -> Reservation | float | None:
        # One attempt of acquire/acquire_async: the reservation; or the seconds to sleep before the next attempt
        # (async), or None to attempt again (after announcing the wait, or after a blocking wait). Raises the
        # refusal after emitting `rate-limited`.
        with self._lock:
            now = self._now()
            if acq.deadline is None and acq.timeout is not None:
                acq.deadline = now + acq.timeout
            result = self._attempt(acq.key, acq.inp, acq.out, acq.waiter, now)
            if isinstance(result, Reservation):
                return result
            failure = _failure(acq.key, result, acq.wait, acq.deadline, now, acq.timeout, acq.real_deadline)
            if failure is None:
                if acq.waiter is None:
                    acq.waiter = _Waiter(acq.inp, acq.out, acq.loop)
                    self._waiters.setdefault(acq.key, deque()).append(acq.waiter)
                if acq.announced:
                    delay = self._delay(result, acq.deadline, now)
                    if self._auto_advance is not None:
                        # An auto-advancing clock: sleep briefly in real time; if nothing wakes us, move the clock
                        # to the earliest wake-up of all waiters (see testing.FakeClock).
                        wanted = result.retry_after if result.retry_after else 0.0
                        if acq.deadline is not None:
                            wanted = min(wanted, max(acq.deadline - now, 0.0))
                        acq.waiter.wake_at = now + wanted if wanted > 0 else None
                        delay = _AUTOJUMP_GRACE
                    if not block:
                        return delay
                    woken = self._cond.wait(delay)  # releases the lock while waiting: no wake-up is missed
                    if not woken and self._auto_advance is not None:
                        self._autojump()
                    return None
        self._events.emit(self, "rate-limited", key=acq.key, limit=result.reason, retry_after=result.retry_after)
        if failure is not None:
            raise failure
        acq.announced = True
        return None

    def _attempt(
        self, key: str, inp: int, out: int, waiter: _Waiter | None, now: float
    ) -> Reservation | RateLimitCheck:
        # Under the lock. First come, first served: only the head of the queue (or anyone when nobody waits) may
        # take capacity; the others hear the head's reason.
        self._sweep(now)
        record = self._get(key)
        queue = self._waiters.get(key)
        if queue and queue[0] is not waiter:
            own = record.limiter.check(now, inp, out)
            if own.retry_after is None and not own.allowed:
                return own  # can never fit: say so now rather than queue it forever
            head = queue[0]
            check = record.limiter.check(now, head.input_tokens, head.output_tokens)
            if check.allowed:  # the head is about to be admitted: wait for it
                return RateLimitCheck(allowed=False, reason="queued behind earlier waiters", retry_after=0.0)
            return check
        cost = record.model.cost
        holds = self._hold_budgets(key, cost, inp, out, now) if self._budgets else []
        result = record.limiter.reserve(now, inp, out)
        if isinstance(result, RateLimitCheck):
            return result
        if queue:
            queue.popleft()
            if not queue:
                del self._waiters[key]
            self._wake(key)  # the next waiter may fit too
        hold = Hold(key, record, result, cost, now + self._reservation_timeout)
        by_ident = {budget.ident: budget for budget in self._budgets.values()}
        for ident, amount in holds:
            by_ident[ident].hold(amount)
        hold.budgets = holds
        hold.collected = self._collected.append
        heapq.heappush(self._expiries, hold)
        return Reservation(self, hold, inp, out, now)

    def _autojump(self) -> None:
        # Under the lock, with an auto-advancing clock: every waiter slept through its grace period, so move the
        # clock to the earliest time one of them waits for.
        times = [w.wake_at for queue in self._waiters.values() for w in queue if w.wake_at is not None]
        if times and self._auto_advance is not None:
            self._auto_advance(min(times))
            for queue in self._waiters.values():
                for waiter in queue:
                    waiter.wake_at = None
            self._cond.notify_all()
            for queue in self._waiters.values():
                for waiter in queue:
                    waiter.wake()

    def _delay(self, check: RateLimitCheck, deadline: float | None, now: float) -> float:
        # Seconds of real time to sleep before trying again. With an injected clock we cannot know how fast it
        # moves, so we look again soon; commits, cancels and header updates wake waiters at once anyway.
        delay = check.retry_after if check.retry_after else _POLL
        if deadline is not None:
            delay = min(delay, max(deadline - now, 0.0))
        if self._clock is not time.time:
            delay = min(delay, _POLL)
        return max(delay, 0.0005)

    def _wake(self, key: str) -> None:
        # Under the lock: every waiter of `key` looks again (thread waiters via the condition, async ones via
        # their loop).
        queue = self._waiters.get(key)
        if not queue:
            return
        self._cond.notify_all()
        for waiter in queue:
            waiter.wake()

    def _drop_waiter(self, key: str, waiter: _Waiter) -> None:
        with self._lock:
            queue = self._waiters.get(key)
            if queue is not None and waiter in queue:
                was_head = queue[0] is waiter
                queue.remove(waiter)
                if not queue:
                    del self._waiters[key]
                elif was_head:
                    self._wake(key)

    def _settle_reservation(
        self,
        reservation: Reservation,
        input_tokens: int | None,
        output_tokens: int,
        success: bool,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal:
        inp = reservation.input_tokens if input_tokens is None else input_tokens
        usage = _usage_args(
            inp, output_tokens, success, cached_input_tokens, cache_write_tokens, service_tier, cache_write_1h_tokens
        )
        key = reservation.key
        hold = reservation._hold
        with self._lock:
            now = self._now()
            self._sweep(now)
            state = hold.state
            if state == COMMITTED:
                assert reservation.cost is not None
                return reservation.cost  # committed before: idempotent
            if state == CANCELLED:
                raise InvalidUsageError(f"reservation for {key} was cancelled; it cannot be committed")
            record = self._records.get(key)
            if record is None:
                self._release_hold(hold)
                hold.state = CANCELLED
                raise ModelNotFoundError(key)
            # At the prices the reservation was admitted (and its budget holds sized) at; may raise (unpriced):
            # the reservation then stays open.
            cost = self._price(key, record, usage, hold.cost)
            self._check_room(key, record, usage, now)
            limited = _limited_input(record.model, usage)
            if not hold.released and record is hold.record:
                ModelLimiter.settle(hold.handle, limited, usage.output_tokens)
            else:  # expired, or unregistered and registered again meanwhile: count it in the windows now
                ModelLimiter.release(hold.handle)
                record.limiter.record(now, limited, usage.output_tokens)
            self._release_budgets(hold)
            self._mark_released(hold)
            total, budget_events = self._charge(key, record, usage, cost, now)
            reservation.cost = cost
            hold.state = COMMITTED
            if key in self._waiters:
                self._wake(key)
            seq = self._next_seq()
            delta = record.pending
        if self._journal is not None:
            self._journal_settled(reservation, seq, record, delta, usage, cost, now)
        self._emit_usage(key, usage, cost, total, budget_events)
        return cost

    def _journal_settled(
        self,
        reservation: Reservation,
        seq: int,
        record: _Record,
        delta: Delta | None,
        usage: _Usage,
        cost: Decimal,
        now: float,
    ) -> None:
        # _journal_or_undo for a reservation just settled: when the append fails, nothing was recorded and the
        # reservation is given back (its windows keep the request), and the call raises.
        try:
            self._journal_or_undo(seq, reservation.key, record, delta, usage, cost, now)
        except PersistenceError:
            with self._lock:
                reservation.cost = None
                reservation._hold.state = CANCELLED
            raise

    def _release_hold(self, hold: Hold) -> None:
        # Under the lock: give back what an open reservation holds in the windows and budgets, once.
        if hold.released:
            return
        ModelLimiter.release(hold.handle)
        self._release_budgets(hold)
        self._mark_released(hold)

    def _mark_released(self, hold: Hold) -> None:
        # Under the lock. A released hold stays in the expiry heap until it would expire; when half of the heap is
        # released ones, it is rebuilt without them, so memory follows the open reservations, not the traffic.
        hold.released = True
        self._released_in_heap += 1
        heap = self._expiries
        if self._released_in_heap > 64 and self._released_in_heap * 2 > len(heap):
            heap[:] = [h for h in heap if not h.released]
            heapq.heapify(heap)
            self._released_in_heap = 0

    def _release_budgets(self, hold: Hold) -> None:
        # Budgets are found again by identity: set_budget may have replaced the object (keeping the identity and
        # the reservations), while a budget removed and set again is a new one that never held them.
        for ident, amount in hold.budgets:
            for budget in self._budgets.values():
                if budget.ident == ident:
                    budget.release(amount)
        hold.budgets = []

    def _sweep(self, now: float) -> None:
        # Under the lock: give back the holds of reservations garbage-collected while open, and of those open past
        # their expiry (their state becomes "expired").
        collected = self._collected
        while collected:
            hold = collected.popleft()
            if not hold.released:
                self._release_hold(hold)
                self._wake(hold.key)
        heap = self._expiries
        while heap and heap[0].expires_at <= now:
            hold = heapq.heappop(heap)
            if hold.released:
                self._released_in_heap -= 1
                continue
            self._release_hold(hold)
            self._released_in_heap -= 1  # (it left the heap)
            if hold.state == OPEN:
                hold.state = EXPIRED
            self._wake(hold.key)

    def _hold_budgets(
        self, key: str, cost: ModelCost | None, inp: int, out: int, now: float
    ) -> list[tuple[Any, Decimal]]:
        # Under the lock: the worst case of the request against every budget that applies, or BudgetExceededError.
        # Nothing is taken here; the caller adds the amounts once the rate limits admitted the request.
        applying = [(bid, b) for bid, b in self._budgets.items() if b.applies(key)]
        if not applying:
            return []
        if cost is None:
            raise UnpricedModelError(f"{key} has no price, so a budget cannot be checked; set one (0 if free)")
        worst = worst_case_cost(cost, inp, out)
        stamp = utc_from_timestamp(now)
        for _, budget in applying:
            budget.roll(stamp)
            if not budget.fits(worst):
                raise BudgetExceededError(
                    key, budget.key, budget.period, budget.limit, budget.spent, budget.reserved, worst
                )
        return [(budget.ident, worst) for _, budget in applying]

    def _release_reservation(self, reservation: Reservation, failed: bool = False) -> None:
        key = reservation.key
        with self._lock:
            now = self._now()
            self._sweep(now)
            if reservation.state != OPEN:
                return
            self._release_hold(reservation._hold)
            reservation.state = CANCELLED
            self._wake(key)
            if not failed:
                return
            record = self._records.get(key)
            if record is None:
                raise ModelNotFoundError(key)
            if record.model.cost is None:
                return  # an unpriced model's request is never counted at $0: given back only
            # A failed request at $0: counted (requests, failed requests, history), billed nothing.
            usage = _Usage(0, 0, False, 0, 0, None)
            total, budget_events = self._charge(key, record, usage, Decimal(0), now)
            reservation.cost = Decimal(0)
            reservation.state = COMMITTED
            seq = self._next_seq()
            delta = record.pending
        if self._journal is not None:
            self._journal_settled(reservation, seq, record, delta, usage, Decimal(0), now)
        self._emit_usage(key, usage, Decimal(0), total, budget_events)

    def update_rate_limits_from_headers(self, key: str, headers: Mapping[str, str]) -> ProviderLimits:
        """Tighten the local windows of ``key`` to what the provider reported in a response's headers.

        Reads OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, Anthropic's
        ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`` and
        ``retry-after``. When the provider reports less remaining than the local window, the window counts the
        difference until the provider's reset; a limit the model does not configure is learned from the header.
        After a ``retry-after`` nothing is admitted until then. Returns what was read.

        A value that cannot be read (a malformed ``retry-after``, a non-numeric remaining count) is skipped with a
        :class:`RateLimitHeaderWarning` naming the header, and the rest is applied: a provider's odd header never
        fails the caller's request. Raises :class:`ModelNotFoundError` for an unknown key.
        """
        now = self._now()
        report, problems = read_rate_limit_headers(headers, now)
        for problem in problems:
            warnings.warn(f"{key}: {problem}; ignored", RateLimitHeaderWarning, stacklevel=2)
        with self._lock:
            key, record = self._lookup(key)
            limiter = record.limiter
            for field_name, dim in _REPORTED:
                got = getattr(report, dim)
                if got is not None:
                    limiter.apply_report(now, field_name, got.limit, got.remaining, got.reset_at)
            if report.retry_after:
                limiter.block_until(now + report.retry_after)
            self._wake(key)
        return report

    def effective_rate_limit(self, key: str) -> RateLimitConfig | None:
        """The limits ``acquire`` and ``check_rate_limit`` enforce on ``key`` now: the configured ``rate_limit``
        plus every limit learned from the provider's headers (:meth:`update_rate_limits_from_headers`) for a kind
        the configuration leaves unset. ``None`` when there are none. ``get_model(key).rate_limit`` stays the
        definition as configured. Raises :class:`ModelNotFoundError` for an unknown key."""
        with self._lock:
            _, record = self._lookup(key)
            learned = record.limiter.learned_limits()
            configured = record.model.rate_limit
        if not learned:
            return None if configured is None else shallow_copy(configured)
        fields = configured.model_dump(by_alias=False, exclude_unset=True) if configured is not None else {}
        fields.update(learned)
        return validate_or_raise(RateLimitConfig, fields, f"effective rate limit of {key!r}")

    # ------------------------------------------------------------------ versions

    def compare_versions(self, version1: str, version2: str) -> int:
        """1, 0 or -1 as ``version1`` is above, equal to or below ``version2``; invalid: InvalidVersionError."""
        return _compare_versions(version1, version2)

    def get_models_by_version_range(self, min_version: str, max_version: str) -> list[EnhancedModelRegistryEntry]:
        """Models whose version lies in ``[min_version, max_version]``, in registration order."""
        low, high = parse_version(min_version), parse_version(max_version)
        with self._lock:
            return [
                record.snapshot(key)
                for key, record in self._records.items()
                if low <= parse_version(record.model.version) <= high
            ]

    # ------------------------------------------------------------------ search and ranking

    def search_models(
        self,
        query: EnhancedModelSearchQuery | Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> list[EnhancedModelRegistryEntry]:
        """Models matching every given filter, in registration order.

        ``query`` is an :class:`EnhancedModelSearchQuery` or a dict (either spelling); keyword ``filters`` are its
        fields and override it. An unknown filter or invalid value raises :class:`ConfigError`.
        """
        data = merge_arguments("query", query, EnhancedModelSearchQuery, filters)
        checked = validate_or_raise(EnhancedModelSearchQuery, data, "search query")
        with self._lock:
            captures = [record.capture(key) for key, record in self._records.items() if matches(checked, record.model)]
        return [_make_entry(*capture) for capture in captures]

    def get_models_by_provider(self, provider: str) -> list[EnhancedModelRegistryEntry]:
        """Models of ``provider``, in registration order."""
        return self.search_models(provider=provider)

    def get_models_by_capability(self, capability: ModelCapability | str) -> list[EnhancedModelRegistryEntry]:
        """Models with ``capability``; an unknown capability raises :class:`ConfigError`."""
        return self.search_models(capability=capability)

    def get_most_cost_effective_models(self, limit: int | None = None) -> list[EnhancedModelRegistryEntry]:
        """Models by ascending cost per token ``(input + output) / (2 * per)``; ties keep registration order."""
        with self._lock:
            ranked = top(
                self._records.items(),
                lambda item: item[1].rank_cost,
                limit,
                descending=False,
            )
            captures = [record.capture(key) for key, record in ranked]
        return [_make_entry(*capture) for capture in captures]

    def get_top_performing_models(self, limit: int | None = None) -> list[EnhancedModelRegistryEntry]:
        """Models with performance metrics, by descending seed score (see :func:`search.performance_score`)."""
        with self._lock:
            scored = [(k, r, r.metrics) for k, r in self._records.items() if r.metrics is not None]
            ranked = top(
                scored,
                lambda item: performance_score(item[2]),
                limit,
                descending=True,
            )
            captures = [record.capture(key) for key, record, _ in ranked]
        return [_make_entry(*capture) for capture in captures]

    def get_most_used_models(self, limit: int | None = None) -> list[EnhancedModelRegistryEntry]:
        """Models by descending request count; ties keep registration order."""
        with self._lock:
            ranked = top(
                self._records.items(),
                lambda item: item[1].usage.request_count,
                limit,
                descending=True,
            )
            captures = [record.capture(key) for key, record in ranked]
        return [_make_entry(*capture) for capture in captures]

    # ------------------------------------------------------------------ statistics and performance

    def get_statistics(self) -> EnhancedRegistryStatistics:
        """Counts by provider, capability and status, accesses, and cost and token totals."""
        providers: dict[str, int] = {}
        capabilities: dict[str, int] = {}
        statuses: dict[str, int] = {}
        by_currency: dict[str, Decimal] = {}
        accesses = tokens_in = tokens_out = requests = 0
        total = Decimal(0)
        with self._lock:
            for record in self._records.values():
                model, usage = record.model, record.usage
                provider = str(model.provider)
                providers[provider] = providers.get(provider, 0) + 1
                # _value_ is a plain attribute; .value goes through the enum's descriptor (3x slower here).
                for capability in model.capabilities:
                    capabilities[capability._value_] = capabilities.get(capability._value_, 0) + 1
                status = model.status._value_
                statuses[status] = statuses.get(status, 0) + 1
                accesses += record.access_count
                tokens_in += usage.total_input_tokens
                tokens_out += usage.total_output_tokens
                requests += usage.request_count
                total += usage.total_cost
                currency = _currency(model)
                by_currency[currency] = by_currency.get(currency, Decimal(0)) + usage.total_cost
            count = len(self._records)
            for currency, cost in self._retired_cost.items():
                total += cost
                by_currency[currency] = by_currency.get(currency, Decimal(0)) + cost
            tokens_in += self._retired_counts[0]
            tokens_out += self._retired_counts[1]
            requests += self._retired_counts[2]
        return EnhancedRegistryStatistics.model_construct(
            total_models=count,
            provider_counts=providers,
            capability_counts=capabilities,
            status_counts=statuses,
            total_accesses=accesses,
            average_access_count=accesses / count if count else 0.0,
            total_cost=total,
            total_input_tokens=tokens_in,
            total_output_tokens=tokens_out,
            total_requests=requests,
            cost_by_currency=by_currency,
        )

    def update_performance_metrics(
        self,
        key: str,
        metrics: ModelPerformanceMetrics | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Update some of ``average_latency``, ``tokens_per_second``, ``total_inferences``, ``success_rate``
        (0..1) and ``memory_usage``; fields not given keep their value (0 the first time).

        Raises :class:`ModelNotFoundError` for an unknown key and :class:`ConfigError` for an unknown field or
        invalid value, changing nothing.
        """
        given = merge_arguments("metrics", metrics, ModelPerformanceMetrics, fields)
        updates: dict[str, Any] = {}
        for name, value in given.items():
            field = _METRIC_BY_NAME.get(name)
            if field is None or field == "last_updated":
                raise ConfigError(f"performance metrics of {key!r}: {name}: unknown field")
            updates[field] = value
        with self._lock:
            key, record = self._lookup(key)
            base = record.metrics.model_dump(by_alias=False) if record.metrics is not None else {}
            merged = base | updates | {"last_updated": utc_from_timestamp(self._now())}
            record.metrics = validate_or_raise(ModelPerformanceMetrics, merged, f"performance metrics of {key!r}")
            self._version += 1

    # ------------------------------------------------------------------ persistence

    @staticmethod
    def _capture(records: dict[str, _Record]) -> tuple[list[tuple[Any, ...]], list[tuple[str, UsageHistory]]]:
        # Under the lock, only a cheap capture (about 2 µs a model); building the entries from it, like
        # serialising and writing, happens outside (see _built), so recording never waits for a save.
        return [r.capture(k) for k, r in records.items()], [(k, r.history.copy()) for k, r in records.items()]

    @staticmethod
    def _built(
        captured: tuple[list[tuple[Any, ...]], list[tuple[str, UsageHistory]]],
    ) -> tuple[list[EnhancedModelRegistryEntry], list[UsageHistoryEntry]]:
        captures, histories = captured
        return [_make_entry(*c) for c in captures], [h for k, days in histories for h in days.entries(k)]

    def _seal(self) -> tuple[int, dict[str, _Record], dict[str, Definition]]:
        # Under the lock: this process's pending deltas, tombstones and journal folds become a numbered batch
        # (kept until a save is known to have written it), and the definitions are captured.
        self._seq += 1
        batch = Batch(self._seq, removed=self._removed, replayed=self._replayed)
        self._removed = {}
        self._replayed = []
        definitions: dict[str, Definition] = {}
        for key, record in self._records.items():
            pending = record.pending
            if record.absolute or record.absolute_history:
                delta = pending if pending is not None else Delta()
                if record.absolute:  # the whole usage replaces the file's
                    delta.absolute = True
                    delta.usage = record.usage.copy()
                if record.absolute_history:
                    delta.absolute_history = True
                    delta.history = record.history.copy()
                batch.deltas[key] = delta
            elif pending is not None:
                batch.deltas[key] = pending
            record.pending = None
            record.absolute = record.absolute_history = False
            definitions[key] = Definition(record.model, record.registered_at, record.updated_at, record.metrics)
        self._unacked.append(batch)
        return self._version, dict(self._records), definitions

    def save(self) -> None:
        """Write the registry to ``persistence_path`` atomically (creating its folder); emit ``registry-saved``.

        When other processes (or forks) save to the same path, the file is merged, not overwritten: under the
        sidecar lock ``<path>.lock`` this process's usage recorded since it last saved is added to what the file
        holds (exactly once, even when an earlier save failed after replacing the file), model definitions take
        the newer ``updated_at``, and removed models stay removed. Afterwards this registry holds the merged
        totals (plus what was recorded meanwhile). The state lock is held only to capture; reading, merging,
        serialising and writing happen outside it. Raises :class:`PersistenceError` when the file cannot be read
        or written: the old file is then untouched and nothing recorded is dropped (the next save writes it).
        """
        path = self.persistence_path
        with self._save_lock, locked(path):
            disk = self._disk
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
            with self._lock:
                version, records, definitions = self._seal()
                batches = list(self._unacked)
                captured = self._capture(records) if fast else None
            now = utc_from_timestamp(self._now())
            if captured is not None:
                assert disk is not None
                writers, removed = merge_meta(disk.writers, disk.removed, batches, self._writer, now)
                entries, history = self._built(captured)
                merged = None
            else:
                merged = merge(snapshot or Snapshot(), definitions, batches, self._writer, now)
                writers, removed = merged.writers, merged.removed
                entries = [row.entry(key) for key, row in merged.rows.items()]
                history = [h for key, row in merged.rows.items() for h in row.history.entries(key)]
            save_id = f"{self._writer}:{batches[-1].seq}"
            try:
                text = encode_entries(entries, now, history, writers, removed, save_id)
            except OSError as exc:  # e.g. ENOSPC from a serialiser that spools: a failed save like any other
                raise PersistenceError(f"{path}: cannot serialise the snapshot: {exc.strerror or exc}") from exc
            keep_backup(path)  # the previous good snapshot survives as <path>.bak
            atomic_write_text(path, text)
            written = _DiskState(file_stamp(path), writers, removed, save_id)
            if self._journal is not None:
                # Folded into the snapshot: drop them (a crash before this replays nothing twice: the snapshot's
                # watermarks say which records it holds).
                self._journal.truncate({w: mark[0] for w, mark in writers.items()})
            with self._lock:
                self._unacked = [b for b in self._unacked if b.seq > batches[-1].seq]
                self._disk = written
                if merged is not None:
                    self._adopt(merged.rows, records)
                self._saved_version = max(self._saved_version, version)
        self._events.emit(self, "registry-saved", path=str(path))

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
                stamp = utc_from_timestamp(self._now())
                rows[model_key(item.provider, item.id)] = Row(item, stamp, stamp)
        return rows

    def _adopt(self, rows: dict[str, Row], captured: dict[str, _Record]) -> None:
        # Under the lock, after a merge was written: take what the file now holds. Changes made since the capture
        # win: a newer definition, a reset, a removal, a model registered again. A models-config file's
        # definitions are never replaced by the file's.
        now = self._now()
        config_defined = self._config_defined()
        for key, row in rows.items():
            if key in self._removed:
                continue  # removed here since the capture (and maybe registered again, afresh)
            record = self._records.get(key)
            if record is None:
                if key in captured:
                    continue  # removed here since the capture
                record = self._records[key] = self._new_record(key, row.model, now)
                record.updated_at = row.updated_at
            elif row.updated_at > record.updated_at and key not in config_defined:
                record.redefine(row.model, now)
                record.updated_at = row.updated_at
                record.registered_at = row.registered_at  # (maybe another model: registered again elsewhere)
                self._wake(key)
            record.adopt(row)
        for key in [k for k, r in captured.items() if k not in rows and self._records.get(k) is r]:
            self._keep_windows(key, self._records.pop(key))  # removed by another writer after this definition
            self._wake(key)

    def _save_if_dirty(self) -> None:
        if self.dirty:
            try:
                self.save()
            except PersistenceError as exc:
                # The changes stay pending (still dirty): the next tick, or close(), tries again.
                self._events.emit(self, "save-failed", path=str(self.persistence_path), error=exc)
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
        """
        with gc_paused(), self._save_lock:  # (a save in between would see a half-taken file state)
            with self._lock:
                was_clean = self._version == self._saved_version
            loaded = self._load(recover)
            if was_clean:
                # Reading does not write: what came from the file is what the file holds, so a registry opened to
                # inspect a saved file leaves the file (and its .bak) as they are.
                with self._lock:
                    self._saved_version = self._version
        if loaded is not None:  # emitted once the locks are released: a handler may save or load
            count, source = loaded
            self._events.emit(self, "registry-loaded", path=str(source), model_count=count)
            self._report_not_in_config()
            return count
        return 0

    def _config_defined(self) -> set[str]:
        # Under the lock: every key a loaded models-config file defines.
        return set().union(*self._config_keys.values()) if self._config_keys else set()

    def _report_not_in_config(self) -> None:
        # Models the saved file holds that no loaded models-config file defines (any more): kept, with their usage,
        # and reported once each (a warning and `model-not-in-config`), never silently dropped or revived.
        with self._lock:
            if not self._config_keys:
                return
            defined = self._config_defined()
            orphans = [k for k in self._records if k in self._file_keys and k not in defined]
            orphans = [k for k in orphans if k not in self._reported_orphans]
            self._reported_orphans.update(orphans)
            configs = [str(p) for p in self._config_keys]
        for key in orphans:
            logger.warning("%s is in %s but in no models-config file (%s): kept", key, self.persistence_path, configs)
            self._events.emit(self, "model-not-in-config", key=key, configs=configs)

    def _load(self, recover: bool) -> tuple[int, Path] | None:
        path = self.persistence_path
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
            if self._journal is not None:
                self._replay(self._journal.read(self._replay_marks({})))
            return None
        entries, history, writers, removed, disk = read
        rows = self._rows(entries, history)
        with self._lock:
            config_defined = self._config_defined()
            self._file_keys.update(rows)
            landed = writers.get(self._writer, (0, None))[0]
            self._unacked = [b for b in self._unacked if b.seq > landed]
            now = self._now()
            for key, row in rows.items():
                removed_here = self._removed.get(key)
                if key not in self._records and removed_here is not None and removed_here >= row.updated_at:
                    continue  # removed here after the file's definition, not saved yet: it stays removed
                for batch in self._unacked:  # sealed but not in the file: still this process's to add
                    delta = batch.deltas.get(key)
                    if delta is not None:
                        row.apply(delta)
                record = self._records.get(key)
                from_config = key in config_defined
                if record is None:
                    record = self._records[key] = self._new_record(key, row.model, now)
                elif not from_config:
                    record.redefine(row.model, now)
                    self._wake(key)
                # The file's definition and bookkeeping replace this process's (but a models-config file is the
                # source of truth for the definitions it holds: those stay); its own accesses stay on top.
                if not from_config:
                    record.updated_at = row.updated_at
                record.registered_at = min(record.registered_at, row.registered_at)
                record.last_accessed = record.pending.last_accessed if record.pending is not None else None
                record.adopt(row)
                record.metrics = row.metrics
            for key, when in removed.items():
                record = self._records.get(key)
                if record is not None and key not in rows and record.updated_at <= when:
                    self._keep_windows(key, self._records.pop(key))
                    self._wake(key)
            self._disk = disk if not self._unacked else None
            self._version += 1
        if self._journal is not None:
            self._replay(self._journal.read(self._replay_marks(writers)))
        return len(entries), source

    def _replay_marks(self, writers: dict[str, tuple[int, datetime]]) -> dict[str, int]:
        # Per writer, the newest journal record already counted: in the file, or replayed here before.
        marks = {w: mark[0] for w, mark in writers.items()}
        with self._lock:
            for replayed in [self._replayed, *(b.replayed for b in self._unacked)]:
                for record in replayed:
                    marks[record.writer] = max(marks.get(record.writer, 0), record.seq)
        return marks

    def _replay(self, lines: list[dict[str, Any]]) -> None:
        # Journal records the snapshot does not hold, written by writers that died before saving them: counted
        # again as they were recorded (their cost included), and carried by this process's next batch, which the
        # merge applies only where the file does not hold them yet (another process may replay them too).
        # Records of live writers are theirs to save (this process's own are in memory already): left alone.
        alive = {writer: _writer_alive(writer) for writer in {line["writer"] for line in lines}}
        with self._lock:
            for line in lines:
                writer = line["writer"]
                if writer == self._writer or alive[writer]:
                    continue
                record = self._records.get(line["key"])
                if record is None:
                    continue  # a model no longer defined: nothing to add it to
                usage = _Usage(
                    line["inputTokens"],
                    line["outputTokens"],
                    bool(line["success"]),
                    line["cachedInputTokens"],
                    line["cacheWriteTokens"],
                    None,
                )
                cost = Decimal(str(line["cost"]))
                now = float(line["at"])
                delta = Delta()
                delta.add_request(
                    self._utc_day(now),
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cached_input_tokens,
                    usage.cache_write_tokens,
                    cost,
                    usage.success,
                )
                self._charge(line["key"], record, usage, cost, now, pending=False)
                self._replayed.append(Replayed(writer, line["seq"], line["key"], delta))
            if lines:
                self._version += 1

    def _read_snapshot(self, path: Path) -> _Read | None:
        read = read_stamped(path, self._max_snapshot_bytes)
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

    def _apply(
        self, items: list[EnhancedModelRegistryEntry | ExtendedModelInfo], history: Sequence[UsageHistoryEntry] = ()
    ) -> None:
        by_key: dict[str, list[UsageHistoryEntry]] = {}
        for row in history:
            by_key.setdefault(row.key, []).append(row)
        with self._lock:
            now = self._now()
            for item in items:
                # An entry was validated by decode_entries; its definition part needs no second pass.
                model = definition_of(item) if isinstance(item, EnhancedModelRegistryEntry) else item
                key = model_key(model.provider, model.id)
                record = self._records.get(key)
                if record is None:
                    record = self._records[key] = self._new_record(key, model, now)
                else:
                    record.redefine(model, now)
                    self._wake(key)
                if isinstance(item, EnhancedModelRegistryEntry):
                    record.registered_at = item.registered_at
                    record.updated_at = item.updated_at
                    record.last_accessed = item.last_accessed
                    record.access_count = item.access_count
                    record.usage = UsageCounters.from_stats(item.usage_stats)
                    record.metrics = item.performance_metrics
                    record.history.load(by_key.get(key, []))
                    # A restore: the next save puts this usage and history, not adds them.
                    record.absolute = record.absolute_history = True
            self._version += 1

    def load_from_config(self, config_path: str | Path | None = None) -> int:
        """Register every model of a models-config file (default ``models_config_path``); return how many.

        All or nothing: an invalid model registers none (:class:`ConfigError` naming file, index, id and field);
        a missing or unreadable file raises :class:`PersistenceError`. Models already registered under the same
        key are replaced and keep their usage; others stay. Emits the model events, then ``config-loaded``.
        """
        path = Path(config_path) if config_path is not None else self.models_config_path
        models = read_models_config(path, self._max_config_bytes, today=utc_from_timestamp(self._now()).date())
        self._put_models(models)
        with self._lock:  # what this file defined, so that a reload knows what it removed
            self._config_keys[path.resolve()] = {model_key(m.provider, m.id) for m in models}
        self._events.emit(self, "config-loaded", path=str(path), model_count=len(models))
        self._report_not_in_config()
        return len(models)

    def watch_config(
        self, path: str | Path | None = None, *, interval: float = 0.5, debounce: float = 0.2
    ) -> ConfigWatcher:
        """Reload the models-config file at ``path`` (default ``models_config_path``) whenever it changes.

        A polling thread notices in-place writes and editors' write-then-rename, and waits until a burst of
        writes settles (``debounce`` seconds). Each change is applied atomically: added models are registered,
        changed ones updated, and models the file no longer defines unregistered; models that stay keep their
        usage stats and metrics, and the cost and tokens of removed ones still count in :meth:`get_statistics`.
        A file that fails validation changes nothing and emits ``config-reload-failed`` (``path, error``); a
        good one emits ``config-reloaded`` (``path, added, updated, removed``). When the file was not loaded
        before, it is loaded now. Stop it with ``.stop()``, a ``with`` block, or :meth:`close`.
        """
        target = Path(path) if path is not None else self.models_config_path
        with self._lock:
            known = target.resolve() in self._config_keys
        if not known:
            self._reload_config(target)
        watcher = ConfigWatcher(target, lambda: self._reload_config(target), interval=interval, debounce=debounce)
        self._watchers.append(watcher)
        return watcher

    def _reload_config(self, path: Path) -> None:
        try:
            models = read_models_config(path, self._max_config_bytes, today=utc_from_timestamp(self._now()).date())
        except (ConfigError, PersistenceError) as exc:
            self._events.emit(self, "config-reload-failed", path=str(path), error=exc)
            return
        wanted = {model_key(m.provider, m.id): m for m in models}
        added: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        events: list[tuple[str, str, EnhancedModelRegistryEntry | None]] = []
        with self._lock:
            resolved = path.resolve()
            before = self._config_keys.get(resolved, set())
            now = self._now()
            for key, model in wanted.items():
                record = self._records.get(key)
                if record is None:
                    record = self._records[key] = self._new_record(key, model, now)
                    added.append(key)
                    events.append(("model-registered", key, record.snapshot(key)))
                elif record.model.model_dump() != model.model_dump():
                    record.redefine(model, now)
                    updated.append(key)
                    events.append(("model-updated", key, record.snapshot(key)))
                    self._wake(key)
            for key in before - wanted.keys():
                record = self._records.pop(key, None)
                if record is not None:
                    self._keep_windows(key, record)
                if record is not None:
                    self._removed[key] = utc_from_timestamp(now)
                    self._retire(record)
                    removed.append(key)
                    events.append(("model-unregistered", key, None))
                    self._wake(key)
            self._config_keys[resolved] = set(wanted)
            self._version += 1
        for event, key, snapshot in events:
            if event == "model-unregistered":
                self._events.emit(self, event, key=key)
            else:
                self._events.emit(self, event, key=key, model=snapshot)
        self._events.emit(self, "config-reloaded", path=str(path), added=added, updated=updated, removed=removed)

    def _new_record(self, key: str, model: ExtendedModelInfo, now: float) -> _Record:
        # Under the lock: the record of a model (re)defined under `key`; it takes over the windows of a model
        # removed under that key less than a day ago, so removing and defining it again forgets no traffic.
        kept = self._kept_windows.pop(key, None)
        windows = kept[1] if kept is not None and now - kept[0] < DAY else None
        return _Record(model, now, windows)

    def _keep_windows(self, key: str, record: _Record) -> None:
        # Under the lock: keep the windows of a removed model for a day (see _new_record); older ones go.
        now = self._now()
        self._kept_windows[key] = (now, record.limiter)
        if len(self._kept_windows) > 64:
            for old in [k for k, (at, _) in self._kept_windows.items() if now - at >= DAY]:
                del self._kept_windows[old]

    def _retire(self, record: _Record) -> None:
        # Under the lock: a model removed by a config reload leaves its usage in the registry's totals.
        usage = record.usage
        currency = _currency(record.model)
        self._retired_cost[currency] = self._retired_cost.get(currency, Decimal(0)) + usage.total_cost
        self._retired_counts[0] += usage.total_input_tokens
        self._retired_counts[1] += usage.total_output_tokens
        self._retired_counts[2] += usage.request_count

    def export_to_json(self) -> str:
        """A full backup as JSON text: models, usage stats, metrics and bookkeeping (exact decimals)."""
        with self._lock:
            captured = self._capture(self._records)
        entries, history = self._built(captured)
        return encode_entries(entries, utc_from_timestamp(self._now()), history)

    def import_from_json(self, json_text: str) -> int:
        """Restore from :meth:`export_to_json` text (or a JSON list of model definitions); return the count.

        Models are added or replaced by key; the others stay. Bad JSON or an invalid model raises
        :class:`ConfigError` and changes nothing.
        """
        if not isinstance(json_text, str | bytes):
            raise ConfigError(f"json_text must be a string, got {type(json_text).__name__}")
        data = jsonio.loads(json_text, "import_from_json")
        items = decode_entries(data, "import_from_json", error=ConfigError)
        self._apply(items, decode_history(data, "import_from_json", error=ConfigError))
        return len(items)

    async def asave(self) -> None:
        """:meth:`save` in a worker thread, so the event loop is not blocked."""
        await asyncio.to_thread(self.save)

    async def aload(self) -> int:
        """:meth:`load` in a worker thread."""
        return await asyncio.to_thread(self.load)

    async def aload_from_config(self, config_path: str | Path | None = None) -> int:
        """:meth:`load_from_config` in a worker thread."""
        return await asyncio.to_thread(self.load_from_config, config_path)


class _Read(NamedTuple):
    # A snapshot file as read: its entries and history, its watermarks and tombstones, and what it was.
    entries: list[EnhancedModelRegistryEntry | ExtendedModelInfo]
    history: list[UsageHistoryEntry]
    writers: dict[str, tuple[int, datetime]]
    removed: dict[str, datetime]
    disk: _DiskState


class _DiskState(NamedTuple):
    # What the snapshot file held when this process last wrote or read it.
    stamp: FileStamp | None
    writers: dict[str, tuple[int, datetime]]
    removed: dict[str, datetime]
    save_id: str | None  # this writer's save id in the file, when this writer wrote it


def _writer_alive(writer: str) -> bool:
    # Whether the writer of journal records is a live registry: one of this process, or another process still
    # running (its pid leads the id; a recycled pid reads as alive, which only delays the replay).
    if any(r._writer == writer and not r._closed for r in list(_ALL)):
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


def _new_writer_id() -> str:
    # Unique per process and registry (a fork gets a new one); the pid helps whoever reads the file.
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


class _Usage(NamedTuple):
    input_tokens: int
    output_tokens: int
    success: bool
    cached_input_tokens: int
    cache_write_tokens: int  # every cache write: 5-minute and 1-hour (what the counters count)
    service_tier: str | None
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written for an hour (priced apart)


def _usage_args(
    input_tokens: int,
    output_tokens: int,
    success: bool,
    cached_input_tokens: int,
    cache_write_tokens: int,
    service_tier: str | None,
    cache_write_1h_tokens: int = 0,
) -> _Usage:
    inp = check_token_count("input_tokens", input_tokens)
    out = check_token_count("output_tokens", output_tokens)
    cached = check_token_count("cached_input_tokens", cached_input_tokens) if cached_input_tokens else 0
    written = check_token_count("cache_write_tokens", cache_write_tokens) if cache_write_tokens else 0
    written_1h = check_token_count("cache_write_1h_tokens", cache_write_1h_tokens) if cache_write_1h_tokens else 0
    if not isinstance(success, bool):
        raise InvalidUsageError(f"success must be a bool, got {type(success).__name__}")
    if cached + written + written_1h > inp:
        raise InvalidUsageError(
            f"cached_input_tokens ({cached}) + cache_write_tokens ({written}) + cache_write_1h_tokens "
            f"({written_1h}) exceed input_tokens ({inp}); input_tokens includes them"
        )
    if service_tier is not None and (
        not isinstance(service_tier, str) or service_tier.strip().lower() not in SERVICE_TIER_NAMES
    ):
        raise InvalidUsageError(
            f"service_tier must be one of {', '.join(SERVICE_TIER_NAMES)} or None, got {service_tier!r}"
        )
    return _Usage(inp, out, success, cached, written + written_1h, service_tier, written_1h)


def _limited_input(model: ExtendedModelInfo, usage: _Usage) -> int:
    """The input tokens of ``usage`` that count toward ``model``'s token limits: all of them, or without the cache
    reads when its ``rate_limit.count_cache_reads`` is false (Anthropic's input-tokens-per-minute limit)."""
    if not usage.cached_input_tokens:
        return usage.input_tokens  # the common case, without looking at the limits
    limits = model.rate_limit
    if limits is None or limits.count_cache_reads:
        return usage.input_tokens
    return usage.input_tokens - usage.cached_input_tokens


def _context_overflow(key: str, model: ExtendedModelInfo, inp: int, out: int) -> str | None:
    """What a request of ``inp`` input and ``out`` output tokens exceeds of ``model``'s limits, or ``None``."""
    if model.context_window is not None and inp > model.context_window:
        return f"{key}: {inp:,} input tokens exceed the context window of {model.context_window:,} tokens"
    if model.max_tokens is not None and out > model.max_tokens:
        return f"{key}: {out:,} output tokens exceed the model's maximum output of {model.max_tokens:,} tokens"
    return None


def _decimal_arg(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


_POLL = 0.05
_JOIN_TIMEOUT = 10.0  # seconds close() waits for a background thread before going on without it
_AUTOJUMP_GRACE = 0.002  # real seconds every waiter sleeps before an auto-advancing clock jumps
_MAX_CLOCK = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last second a datetime can hold
_REPORTED = (
    ("requests_per_minute", "requests"),
    ("tokens_per_minute", "tokens"),
    ("input_tokens_per_minute", "input_tokens"),
    ("output_tokens_per_minute", "output_tokens"),
)


class _Acquisition:
    """The state of one acquire call across its attempts."""

    __slots__ = ("announced", "deadline", "inp", "key", "loop", "out", "real_deadline", "timeout", "wait", "waiter")

    def __init__(self, key: str, inp: int, out: int, timeout: float | None, wait: bool) -> None:
        self.key = key
        self.inp = inp
        self.out = out
        self.timeout = timeout
        self.wait = wait
        self.deadline: float | None = None
        # `timeout` bounds real time too, so a frozen (or slow) injected clock cannot keep a waiter for ever.
        self.real_deadline = None if timeout is None else time.monotonic() + timeout
        self.waiter: _Waiter | None = None
        self.announced = False
        self.loop: asyncio.AbstractEventLoop | None = None


class _Waiter:
    """A caller queued in ``acquire(wait=True)``; async ones are woken through their event loop."""

    __slots__ = ("event", "input_tokens", "loop", "output_tokens", "wake_at")

    def __init__(self, input_tokens: int, output_tokens: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.loop = loop
        self.wake_at: float | None = None  # registry-clock time it sleeps until (for an auto-advancing clock)
        self.event = asyncio.Event() if loop is not None else None

    def wake(self) -> None:
        if self.loop is not None and self.event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody to wake
                self.loop.call_soon_threadsafe(self.event.set)


def _acquire_args(input_tokens: int, max_output_tokens: int, timeout: float | None) -> tuple[int, int, float | None]:
    inp = check_token_count("input_tokens", input_tokens)
    out = check_token_count("max_output_tokens", max_output_tokens)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise InvalidUsageError(f"timeout must be a number >= 0 or None, got {timeout!r}")
        timeout = float(timeout)
    return inp, out, timeout


def _failure(
    key: str,
    check: RateLimitCheck,
    wait: bool,
    deadline: float | None,
    now: float,
    timeout: float | None,
    real_deadline: float | None = None,
) -> RateLimitExceeded | None:
    reason = check.reason or "rate limit"
    if check.retry_after is None:
        return RateLimitExceeded(key, reason, None)
    if not wait:
        return RateLimitExceeded(key, reason, check.retry_after)
    if (deadline is not None and now >= deadline) or (real_deadline is not None and time.monotonic() >= real_deadline):
        return RateLimitTimeout(
            key, reason, check.retry_after, f"{key}: not admitted within {timeout} s ({reason} limit)"
        )
    return None


def _as_list(models: Iterable[Any]) -> list[Any]:
    if isinstance(models, Mapping | str | bytes):
        raise ConfigError(f"models must be a list of models, got {type(models).__name__}")
    return list(models)
