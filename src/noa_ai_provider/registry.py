"""``EnhancedModelRegistry``: the front door. It checks arguments, keeps the catalogue of model definitions, emits
events once every lock is released, and delegates the rest: live state (windows, reservations, usage, budgets)
to a store chosen by URL (:mod:`noa_ai_provider.stores`), waiting to :mod:`noa_ai_provider.waiting`, the snapshot
file and journal to :mod:`noa_ai_provider.persistence`, fork and exit handling to :mod:`noa_ai_provider.lifecycle`.

Concurrency: the catalogue's lock guards the definitions and is taken before the store's (never after); neither
is held while a handler runs, while a file is read or written, or while JSON is (de)serialised. Readers get
snapshots, so changing one never changes the registry. Events are emitted in the thread that made the change.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, TypeVar, overload

from . import jsonio, lifecycle
from .bulk import gc_paused
from .catalog import Catalog, make_entry, own_copy, validated_instance
from .checks import (
    as_list,
    checked_clock,
    context_overflow,
    positive_int,
    registry_settings,
    seconds_arg,
    usage_args,
)
from .config import MAX_CONFIG_BYTES, read_models_config
from .configfiles import ConfigFiles
from .errors import ConfigError, ContextWindowWarning, InvalidUsageError, PersistenceError
from .events import EventBus, Handler
from .importers import CatalogLoad, load_genai_prices_catalog, load_litellm_catalog
from .limiting import Limiting, price
from .persistence.definitions import DefinitionSync
from .persistence.files import AutoSaver, locked, remove_leftovers
from .persistence.journal import Journal
from .persistence.sync import SnapshotSync
from .queries import Queries
from .saving import Saving
from .schemas import (
    MONEY_CONTEXT,
    EnhancedModelRegistryConfig,
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    ModelStatus,
    ModelUsageStats,
    RateLimitCheck,
    check_unique_keys,
    field_names,
    html,
    item_label,
    model_key,
    utc_from_timestamp,
    validate_or_raise,
)
from .stores import Store, store_from_url
from .stores.base import Recorded, RequestUsage
from .stores.memory import MemoryStore
from .waiting import WaitQueue

__all__ = ["EnhancedModelRegistry"]

_H = TypeVar("_H", bound=Handler)
_FIELD_BY_NAME = field_names(ExtendedModelInfo)
_JOIN_TIMEOUT = 10.0  # seconds close() waits for a background thread before going on without it

_ZERO = Decimal(0)
_MONEY = MONEY_CONTEXT

MAX_SNAPSHOT_BYTES = 1 << 30
"""The default ``max_snapshot_bytes``: a saved registry larger than 1 GiB is refused rather than read."""


class EnhancedModelRegistry(Limiting, Queries, ConfigFiles, Saving):
    """A thread-safe registry of AI models with cost tracking, rate limits, metrics, search and persistence.

    Every argument is keyword-only and optional (the seed's defaults); ``config`` may carry them instead, and an
    explicit argument wins. ``clock`` returns seconds since the epoch (default :func:`time.time`) and is the
    only source of time, so tests can move it. ``backend`` is where live state is kept: a store URL
    (``"memory://"``, the default; see :mod:`noa_ai_provider.stores`) or a :class:`~noa_ai_provider.stores.Store`.

    With ``auto_save`` (the default) a background thread writes ``persistence_path`` every ``auto_save_interval``
    seconds when something changed, and :meth:`close` (also on leaving a ``with`` block and at interpreter exit)
    saves what is pending. With ``auto_load_config`` the models-config file is loaded here, and a missing or
    invalid file raises.

    .. versionchanged:: 0.2.0
       The ``backend``, ``on_backend_error``, ``on_context_overflow``, ``reservation_timeout`` and
       ``max_snapshot_bytes`` keywords; every ``key`` argument takes any name :meth:`resolve_key` resolves; a
       ``clock`` reading outside 1970-9999 raises :class:`ConfigError` before anything changes; a
       ``persistence_path`` that is not a regular file is refused at once.
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
        backend: str | Store = "memory://",
        on_backend_error: str = "raise",
    ) -> None:
        self.config: EnhancedModelRegistryConfig = registry_settings(
            config,
            persistence_path=persistence_path,
            auto_save=auto_save,
            auto_save_interval=auto_save_interval,
            models_config_path=models_config_path,
            auto_load_config=auto_load_config,
        )
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds since the epoch")
        self._clock = clock
        self._now = checked_clock(clock)
        if durability not in ("snapshot", "journal"):
            raise ConfigError(f"durability must be 'snapshot' or 'journal', got {durability!r}")
        fsync_interval = seconds_arg("journal_fsync_interval", journal_fsync_interval, zero=True)
        self._max_config_bytes = positive_int("max_config_bytes", max_config_bytes)  # larger configs: refused
        max_snapshot_bytes = positive_int("max_snapshot_bytes", max_snapshot_bytes)  # larger snapshots: refused
        if on_context_overflow not in ("raise", "warn"):
            raise ConfigError(f"on_context_overflow must be 'raise' or 'warn', got {on_context_overflow!r}")
        self._on_context_overflow = on_context_overflow
        self._reservation_timeout = seconds_arg("reservation_timeout", reservation_timeout)
        path = self.config.persistence_path
        journal_path = path.with_name(path.name + ".journal")
        # A path that is not a regular file (a directory, a FIFO, /dev/zero, a symlink loop) is refused at once,
        # not when the first save or load meets it.
        jsonio.check_regular(path)
        if durability == "journal":
            jsonio.check_regular(journal_path)
        if on_backend_error not in ("raise", "allow", "deny"):
            raise ConfigError(f"on_backend_error must be 'raise', 'allow' or 'deny', got {on_backend_error!r}")
        store = _store(backend)
        shared = not isinstance(store, MemoryStore)
        if shared and durability == "journal":
            raise ConfigError(
                f"durability='journal' keeps usage in a local journal; with backend {store.url!r} usage lives in "
                "the store (see docs/redis.md for making it durable there)"
            )
        store.bind(self, self._now)
        store.on_backend_error = on_backend_error
        self._owns_store = isinstance(backend, str)  # made here from a URL: closed with the registry
        self._store = store
        self._catalog = Catalog(store)
        self._lock = self._catalog.lock  # the catalogue's lock: taken before the store's, never after
        self._events = EventBus()
        # A test clock that jumps to the next wake-up when every waiter sleeps (testing.FakeClock(auto_advance=True)).
        # Read at every wait, not once here: a test may switch auto_advance on after creating the registry.
        auto_advance = _advancer(clock) if callable(getattr(clock, "advance_to", None)) else None
        self._queue = WaitQueue(
            store,
            self._now,
            self._reservation_timeout,
            lifecycle.weak_callback(self._rate_limited),
            auto_advance=auto_advance,
            real_clock=clock is time.time,
        )
        # With a journal every usage record is appended (and fsynced) to <path>.journal before it returns.
        journal = Journal(journal_path, fsync_interval) if durability == "journal" else None
        config_defined = lifecycle.weak_callback(self._config_defined, set)
        self._sync: SnapshotSync | DefinitionSync
        if isinstance(store, MemoryStore):
            self._sync = SnapshotSync(
                path,
                self._catalog,
                store,
                self._now,
                lifecycle.new_writer_id(),
                journal=journal,
                max_snapshot_bytes=max_snapshot_bytes,
                config_defined=config_defined,
            )
        else:  # usage lives in the shared store: the file holds the definitions only
            self._sync = DefinitionSync(
                path,
                self._catalog,
                store,
                self._now,
                lifecycle.new_writer_id(),
                max_snapshot_bytes=max_snapshot_bytes,
                config_defined=config_defined,
            )
        self._saved_version = 0
        self._closed = False
        self._autosaver: AutoSaver | None = None
        ConfigFiles.__init__(self)
        lifecycle.enrol(self)
        if path.parent.is_dir() and any(path.parent.glob(f".{path.name}.*.tmp")):
            with locked(path):  # only then: opening a registry must not litter folders with lock files
                remove_leftovers(path)  # temporary files of writers that crashed
        if self.config.auto_load_config:
            self.load_from_config()
        if self.config.auto_save:
            self._autosaver = AutoSaver(self._save_if_dirty, self.config.auto_save_interval)
            self._autosaver.start()
            lifecycle.close_at_exit(self)

    # ------------------------------------------------------------------ properties and lifecycle

    @property
    def persistence_path(self) -> Path:
        """Where :meth:`save` writes and :meth:`load` reads."""
        return self.config.persistence_path

    @property
    def models_config_path(self) -> Path:
        """The default file of :meth:`load_from_config`."""
        return self.config.models_config_path

    def _version(self) -> int:
        return self._catalog.version + self._store.version

    @property
    def _writer_id(self) -> str:
        # This registry's id in the snapshot file it shares with other processes (a fork gets a new one).
        return self._sync.writer

    def close(self) -> None:
        """Stop the background threads and, when ``auto_save`` is on, save pending changes. Idempotent.

        Raises :class:`PersistenceError` when that final save fails (the changes stay in memory).
        """
        if self._closed:
            return
        self._closed = True
        lifecycle.close_at_exit(self, False)
        self._stop_watchers(_JOIN_TIMEOUT)  # a watcher wedged in a read must not hold close() for ever
        if self._autosaver is not None:
            self._autosaver.stop(_JOIN_TIMEOUT)
            self._save_if_dirty()
        if self._sync.journal is not None:
            self._sync.journal.close()
        if self._owns_store:
            self._store.close()

    def _fork_locks(self) -> list[Any]:
        # The locks a fork takes, in the order every thread takes them (see lifecycle).
        return [self._catalog.lock, *self._queue.fork_locks(), *self._store.fork_locks()]

    def _after_fork_in_child(self) -> None:
        # In a forked child only the forking thread exists: replace the locks, drop the waiters, become a writer of
        # its own (the parent's unsaved usage stays the parent's to save), restart the autosave thread.
        self._catalog.lock = self._lock = threading.Lock()
        self._queue.after_fork()
        self._store.after_fork()
        self._forget_watchers()
        self._sync.after_fork(lifecycle.new_writer_id())
        if self._autosaver is not None and not self._closed:
            self._autosaver = AutoSaver(self._save_if_dirty, self.config.auto_save_interval)
            self._autosaver.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<EnhancedModelRegistry {len(self._catalog)} models, path={str(self.persistence_path)!r}, "
            f"backend={self._store.url!r}>"
        )

    def _repr_html_(self) -> str:
        """The registry in a notebook: one row per model (key, name, provider, status, requests, failed, tokens,
        cost) and the totals. Every value is escaped.

        .. versionadded:: 0.2.0"""
        entries = self.list_models()
        rows = [
            (
                e.key,
                e.name,
                str(e.provider),
                e.status.value,
                e.usage_stats.request_count,
                e.usage_stats.failed_requests,
                e.usage_stats.total_input_tokens,
                e.usage_stats.total_output_tokens,
                e.usage_stats.total_cost,
                e.usage_stats.currency,
            )
            for e in entries
        ]
        headers = ("key", "name", "provider", "status", "requests", "failed", "input tokens", "output tokens")
        caption = f"EnhancedModelRegistry: {len(rows)} models, backend {self._store.url}"
        stats = self.get_statistics()
        return html.table(caption, (*headers, "cost", "currency"), rows, right=range(4, 9)) + stats._repr_html_()

    def __len__(self) -> int:
        return len(self._catalog)

    def __contains__(self, key: object) -> bool:
        return key in self._catalog.defs

    def resolve_key(self, name: str) -> str:
        """The registry key that ``name`` stands for: the key itself, an alias of a model (alone or after its
        provider), its id alone, a dated snapshot name a provider returns (``gpt-4o-2024-08-06`` resolves to the
        model of that alias, else to ``gpt-4o``), a LiteLLM ``provider/model`` string, or a key whose provider is
        spelled otherwise (``anthropic:claude-sonnet-4-5``). See :mod:`noa_ai_provider.names`.

        Raises :class:`ModelNotFoundError` (its message suggests the closest keys) when nothing fits, and
        :class:`AmbiguousModelError` (naming the candidates) when several models do. ``get_model``,
        ``estimate_cost``, ``record_usage``, ``acquire`` and every other method that takes a key resolve it this
        way; ``unregister_model`` takes exact keys only.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            return self._catalog.resolve(name)

    def _model(self, name: str) -> tuple[str, ExtendedModelInfo]:
        # The key and current definition `name` stands for. A definition is replaced, never changed in place, and a
        # dict read is atomic: an exact key needs no lock.
        defined = self._catalog.defs.get(name)
        if defined is not None:
            return name, defined.model
        with self._lock:
            key, defined = self._catalog.lookup(name)
            return key, defined.model

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

    def _rate_limited(self, key: str, check: RateLimitCheck) -> None:
        self._events.emit(self, "rate-limited", key=key, limit=check.reason, retry_after=check.retry_after)

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
        :meth:`import_litellm_catalog`).

        .. versionchanged:: 0.2.0
           A batch that defines a key twice raises :class:`ConfigError` naming both entries.
        """
        items = as_list(models)
        with gc_paused() if len(items) >= 1000 else contextlib.nullcontext():
            validated = [
                own_copy(item)
                if validated_instance(item)
                else validate_or_raise(ExtendedModelInfo, item, item_label("models", index, item))
                for index, item in enumerate(items)
            ]
            check_unique_keys(validated)  # one batch defining a key twice is refused, not resolved by order
            return self._put_models(validated)

    def import_litellm_catalog(
        self, source: str | Path | Mapping[str, Any], *, today: date | None = None
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

    def import_genai_prices_catalog(self, *, at: Any = None) -> CatalogLoad:
        """Import the installed ``genai-prices`` database (prices in force ``at``, default now) and register its
        models in one step, as :meth:`import_litellm_catalog` does; raises :class:`ImportError` naming the extra
        when the package is missing."""
        with gc_paused():
            catalog = load_genai_prices_catalog(at=at)
            keys = self._put_models(list(catalog))
        return CatalogLoad(keys, catalog.skipped)

    def _put_models(self, models: list[ExtendedModelInfo]) -> list[str]:
        return self._change(models)[0]

    def _change(
        self,
        models: Iterable[ExtendedModelInfo] = (),
        removals: Callable[[], Iterable[str]] | None = None,
        *,
        reload: bool = False,
    ) -> tuple[list[str], list[tuple[str, str]]]:
        # The one register-or-redefine (and remove) path: in one step under the lock, every model under its key,
        # then every key `removals()` names (evaluated under the lock) removed, leaving a tombstone (other writers
        # of the file drop it too). A config reload (`reload`) leaves a definition equal to the current one alone,
        # and the usage of the models it removes stays in the totals. Events are emitted once the lock is released.
        # Returns the keys of `models` and the (event, key) pairs emitted.
        emitted: list[tuple[str, str, EnhancedModelRegistryEntry | None]] = []
        keys: list[str] = []
        wants = reload or self._events.wants("model-registered") or self._events.wants("model-updated")
        with self._lock, self._store.holding():  # the clock is read where traffic cannot slip in between
            now = self._now()
            defs = self._catalog.defs
            for model in models:
                key = model_key(model.provider, model.id)
                keys.append(key)
                current = defs.get(key)
                if reload and current is not None and current.model.model_dump() == model.model_dump():
                    continue
                new, _ = self._catalog.put(key, model, now)
                emitted.append(
                    ("model-registered" if new else "model-updated", key, self._entry(key) if wants else None)
                )
            if removals is not None:
                stamp = utc_from_timestamp(now)
                for key in removals():
                    if isinstance(key, str) and self._catalog.remove(key, now, retire=reload) is not None:
                        self._sync.removed[key] = stamp
                        emitted.append(("model-unregistered", key, None))
        for event, key, snapshot in emitted:
            if snapshot is None and event == "model-unregistered":
                self._events.emit(self, event, key=key)
            else:
                self._events.emit(self, event, key=key, model=snapshot)
        return keys, [(event, key) for event, key, _ in emitted]

    def _entry(self, key: str) -> EnhancedModelRegistryEntry:
        # Under the catalogue's lock: the entry of `key` as it is now.
        defined = self._catalog.get(key)
        live = self._store.live((key,), self._catalog.currencies((key,)))[key]
        return make_entry(
            key,
            defined.model,
            defined.registered_at,
            defined.updated_at,
            live.last_accessed,
            live.access_count,
            live.usage,
            live.metrics,
        )

    def get_model(self, key: str) -> EnhancedModelRegistryEntry | None:
        """The entry under ``key`` (or ``None``), recording an access; the snapshot already counts it.

        ``key`` may be any name :meth:`resolve_key` resolves (an alias, a dated snapshot name...); a name that fits
        several models raises :class:`AmbiguousModelError`."""
        with self._lock:
            found = self._catalog.find(key)
            if found is None:
                return None
            key = found[0]
            self._store.touch(key, self._now())
            return self._entry(key)

    def get_model_by_provider_and_id(self, provider: str, model_id: str) -> EnhancedModelRegistryEntry | None:
        """The entry of ``provider`` and ``model_id`` (or ``None``), recording an access."""
        return self.get_model(model_key(provider, model_id))

    def update_model(self, key: str, updates: Mapping[str, Any]) -> None:
        """Replace the given model fields (either spelling) and emit ``model-updated``.

        ``id`` and ``provider`` cannot change (they make the key); other fields are validated like a new model.
        Raises :class:`ModelNotFoundError` for an unknown key and :class:`ConfigError` for invalid updates, which
        change nothing.

        .. versionchanged:: 0.2.0
           A rate limit lowered and raised again still counts the traffic already in its windows.
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
            key, defined = self._catalog.lookup(key)
            merged = defined.model.model_dump(by_alias=False) | fields
            model = validate_or_raise(ExtendedModelInfo, merged, f"update of {key!r}")
            with self._store.holding():
                self._catalog.put(key, model, self._now())
            snapshot = self._entry(key)
        self._events.emit(self, "model-updated", key=key, model=snapshot)

    def update_model_status(self, key: str, status: ModelStatus | str) -> None:
        """Set the status of ``key`` and emit ``model-updated``. Unknown key: :class:`ModelNotFoundError`."""
        try:
            status = ModelStatus(status)
        except ValueError:
            valid = ", ".join(repr(s.value) for s in ModelStatus)
            raise ConfigError(f"status: unknown status {status!r}; valid: {valid}") from None
        with self._lock, self._store.holding():
            key, defined = self._catalog.lookup(key)
            self._catalog.put(key, defined.model.model_copy(update={"status": status}), self._now())
            snapshot = self._entry(key)
        self._events.emit(self, "model-updated", key=key, model=snapshot)

    def unregister_model(self, key: str) -> bool:
        """Remove ``key``; ``True`` (and ``model-unregistered``) when something was removed.

        .. versionchanged:: 0.2.0
           A model removed and defined again within a day takes its rate-limit windows back.
        """
        return bool(self._change(removals=lambda: (key,))[1])

    def clear_registry(self) -> None:
        """Remove every model (emitting ``model-unregistered`` for each)."""
        self._change(removals=lambda: list(self._catalog))

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

        .. versionchanged:: 0.2.0
           The ``cache_write_1h_tokens`` parameter; ``service_tier`` takes the names providers report; a failed
           journal append raises with the request taken back; counts beyond ``2**63 - 1`` are refused here.
        """
        usage = usage_args(
            input_tokens,
            output_tokens,
            success,
            cached_input_tokens,
            cache_write_tokens,
            service_tier,
            cache_write_1h_tokens,
        )
        key, model = self._model(key)
        cost = price(key, model.cost, usage)
        recorded = self._store.record(key, usage, cost)
        if self._sync.journal is not None:
            self._journal_or_undo(key, usage, cost, recorded)
        self._emit_usage(key, usage, cost, recorded)
        return cost

    def _journal_or_undo(self, key: str, usage: RequestUsage, cost: Decimal, recorded: Recorded) -> None:
        # Journal mode: append the request (counted in the store just before). When the append fails, the call
        # raises and nothing of the request remains (counters, history, pending delta, budgets), so a caller that
        # retries counts it once; the rate-limit windows keep it (it happened at the provider: counting it can only
        # refuse earlier). If a save sealed it into a batch meanwhile, it is on its way into the file: then it
        # counts and the call does not raise (a warning says the journal missed it).
        try:
            self._sync.journal_record(recorded.seq, key, usage, cost, recorded.at)
        except PersistenceError:
            if self._store.undo(key, usage, cost, recorded):
                raise
            lifecycle.logger.warning("%s: the journal append failed, but a save already holds the request", key)

    def _emit_usage(self, key: str, usage: RequestUsage, cost: Decimal, recorded: Recorded) -> None:
        if self._events.wants("usage-recorded"):  # skip building the payload when nobody listens
            self._events.emit(
                self,
                "usage-recorded",
                key=key,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost=cost,
                total_cost=recorded.total,
            )
        for event, payload in recorded.budget_events:
            self._events.emit(self, event, **payload)

    def get_usage_stats(self, key: str) -> ModelUsageStats | None:
        """A snapshot of the usage counters of ``key`` (any name :meth:`resolve_key` resolves), or ``None``."""
        with self._lock:
            found = self._catalog.find(key)
            if found is None:
                return None
            key = found[0]
            return self._store.live((key,), self._catalog.currencies((key,)))[key].usage

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
        :meth:`record_usage`. Raises :class:`UnpricedModelError` for a model without a price (never $0).

        .. versionchanged:: 0.2.0
           The ``cache_write_1h_tokens`` parameter; ``service_tier`` takes the names providers report; a
           request over the context window or ``maxTokens`` is refused (or warned about, per ``on_context_overflow``).
        """
        usage = usage_args(
            input_tokens,
            output_tokens,
            True,
            cached_input_tokens,
            cache_write_tokens,
            service_tier,
            cache_write_1h_tokens,
        )
        key, model = self._checked_request(key, usage.input_tokens, usage.output_tokens)
        return price(key, model.cost, usage)

    def _checked_request(self, name: str, inp: int, out: int) -> tuple[str, ExtendedModelInfo]:
        # The key and model `name` resolves to, once the request is checked against the model's context window.
        key, model = self._model(name)
        overflow = context_overflow(key, model, inp, out)
        if overflow is not None:  # outside the lock: a warning filter may run code (or raise)
            if self._on_context_overflow == "raise":
                raise InvalidUsageError(overflow + " (on_context_overflow='warn' makes this a warning)")
            warnings.warn(overflow, ContextWindowWarning, stacklevel=3)
        return key, model

    def _read_config(self, path: Path) -> list[ExtendedModelInfo]:
        return read_models_config(path, self._max_config_bytes, today=utc_from_timestamp(self._now()).date())


def _store(backend: object) -> Store:
    # The store `backend` names: a URL (memory://, redis://...) or a Store instance.
    store = store_from_url(backend) if isinstance(backend, str) else backend
    if not isinstance(store, Store):
        raise ConfigError(f"backend must be a store URL such as 'memory://' or a Store, got {type(backend).__name__}")
    return store


def _advancer(clock: Any) -> Callable[[], Callable[[float], None] | None]:
    # The wait queue's view of a test clock: its advance_to while its auto_advance is True, else None.
    def current() -> Callable[[float], None] | None:
        return clock.advance_to if getattr(clock, "auto_advance", False) is True else None

    return current
