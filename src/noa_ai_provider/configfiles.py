"""The registry's models-config files: loading, watching and reloading them, and which keys each defines. A part of
:class:`~noa_ai_provider.registry.EnhancedModelRegistry` (a mixin), kept apart so the front door stays small.

A models-config file is the source of truth for the definitions it holds: a reload adds, updates and removes
models to match it, a saved snapshot never replaces its definitions, and models the snapshot holds that no loaded
config defines are kept and reported once (``model-not-in-config``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .catalog import Catalog
from .config import ConfigWatcher
from .errors import ConfigError, PersistenceError
from .events import EventBus
from .persistence.definitions import DefinitionSync
from .persistence.sync import SnapshotSync
from .schemas import EnhancedModelRegistryConfig, ExtendedModelInfo, model_key

__all__ = ["ConfigFiles"]

logger = logging.getLogger("noa_ai_provider.registry")


class ConfigFiles:
    """Models-config files of :class:`~noa_ai_provider.registry.EnhancedModelRegistry`."""

    _catalog: Catalog
    _events: EventBus
    _sync: SnapshotSync | DefinitionSync
    _lock: threading.Lock
    config: EnhancedModelRegistryConfig
    _change: Callable[..., tuple[list[str], list[tuple[str, str]]]]
    _read_config: Callable[[Path], list[ExtendedModelInfo]]

    def __init__(self) -> None:
        self._config_keys: dict[Path, set[str]] = {}  # per models-config file, the keys it defined
        self._reported_orphans: set[str] = set()
        self._watchers: list[ConfigWatcher] = []

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
            file_keys = self._sync.file_keys
            orphans = [k for k in self._catalog.defs if k in file_keys and k not in defined]
            orphans = [k for k in orphans if k not in self._reported_orphans]
            self._reported_orphans.update(orphans)
            configs = [str(p) for p in self._config_keys]
        for key in orphans:
            logger.warning(
                "%s is in %s but in no models-config file (%s): kept", key, self.config.persistence_path, configs
            )
            self._events.emit(self, "model-not-in-config", key=key, configs=configs)

    def load_from_config(self, config_path: str | Path | None = None) -> int:
        """Register every model of a models-config file (default ``models_config_path``); return how many.

        All or nothing: an invalid model registers none (:class:`ConfigError` naming file, index, id and field);
        a missing or unreadable file raises :class:`PersistenceError`. Models already registered under the same
        key are replaced and keep their usage; others stay. Emits the model events, then ``config-loaded``.

        .. versionchanged:: 0.2.0
           Its definitions win whatever the order of :meth:`load` and this call; a key defined twice raises
           :class:`ConfigError`; a past ``deprecationDate`` deprecates the model; emits ``model-not-in-config``.
        """
        path = Path(config_path) if config_path is not None else self.config.models_config_path
        models = self._read_config(path)
        self._change(models)
        with self._lock:  # what this file defined, so that a reload knows what it removed
            self._config_keys[path.resolve()] = {model_key(m.provider, m.id) for m in models}
        self._events.emit(self, "config-loaded", path=str(path), model_count=len(models))
        self._report_not_in_config()
        return len(models)

    async def aload_from_config(self, config_path: str | Path | None = None) -> int:
        """:meth:`load_from_config` in a worker thread."""
        import asyncio  # (only here: importing asyncio costs about 10 ms, and most users never call this)

        return await asyncio.to_thread(self.load_from_config, config_path)

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

        .. versionchanged:: 0.2.0
           A file that defines a key twice changes nothing (``config-reload-failed``), like any invalid file.
        """
        target = Path(path) if path is not None else self.config.models_config_path
        with self._lock:
            known = target.resolve() in self._config_keys
        if not known:
            self._reload_config(target)
        watcher = ConfigWatcher(target, lambda: self._reload_config(target), interval=interval, debounce=debounce)
        self._watchers.append(watcher)
        return watcher

    def _reload_config(self, path: Path) -> None:
        try:
            models = self._read_config(path)
        except (ConfigError, PersistenceError) as exc:
            self._events.emit(self, "config-reload-failed", path=str(path), error=exc)
            return
        resolved = path.resolve()
        wanted = {model_key(m.provider, m.id) for m in models}

        def gone() -> Iterable[str]:
            # Under the lock, in the same step as the additions: the keys this file defined and no longer does.
            before = self._config_keys.get(resolved, set())
            self._config_keys[resolved] = set(wanted)
            return [key for key in before if key not in wanted]

        _, emitted = self._change(models, gone, reload=True)
        changes: dict[str, list[str]] = {"model-registered": [], "model-updated": [], "model-unregistered": []}
        for event, key in emitted:
            changes[event].append(key)
        self._events.emit(
            self,
            "config-reloaded",
            path=str(path),
            added=changes["model-registered"],
            updated=changes["model-updated"],
            removed=changes["model-unregistered"],
        )

    def _stop_watchers(self, timeout: float) -> None:
        for watcher in self._watchers:
            watcher.stop(timeout)

    def _forget_watchers(self) -> None:
        # In a forked child: the watcher threads did not come along.
        self._watchers = []
