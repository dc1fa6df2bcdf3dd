"""Reading models-config files: a JSON list of models, or ``{"models": [...]}``.

Nothing here knows the registry: it turns a file into validated :class:`ExtendedModelInfo` objects, all or
nothing, with errors that name the file, the model's index and id, and the field path. A model whose
``metadata.deprecationDate`` (an ISO ``YYYY-MM-DD`` date) has come is loaded as ``deprecated``
(:func:`apply_deprecation`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from . import jsonio
from .background import Worker
from .errors import ConfigError, PersistenceError
from .schemas import ExtendedModelInfo, ModelStatus, item_label, short_repr, validate_models

__all__ = [
    "DEPRECATION_DATE_KEY",
    "MAX_CONFIG_BYTES",
    "ConfigWatcher",
    "apply_deprecation",
    "bundled_config_path",
    "parse_models_config",
    "read_models_config",
]

logger = logging.getLogger("noa_ai_provider.config")

MAX_CONFIG_BYTES = 32 * 1024 * 1024
"""Config files larger than this are refused (a catalogue of every model known today is ~4 MB)."""

_TOP_LEVEL = frozenset({"models", "$schema", "description"})


DEPRECATION_DATE_KEY = "deprecationDate"
"""The ``metadata`` item holding the date (``YYYY-MM-DD``) from which a model is deprecated."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _utc_today() -> date:
    return datetime.now(UTC).date()


def _as_date(today: date) -> date:
    if isinstance(today, datetime):  # a datetime is a date too, but does not compare with one
        return (today.astimezone(UTC) if today.tzinfo is not None else today).date()
    if not isinstance(today, date):
        raise TypeError(f"today must be a date, got {type(today).__name__}")
    return today


def apply_deprecation(
    models: Iterable[ExtendedModelInfo], today: date, where: str = "models"
) -> list[ExtendedModelInfo]:
    """``models`` with ``status`` ``deprecated`` for each one whose ``metadata["deprecationDate"]`` is ``today`` or
    earlier; the others as they are. Pure: the models given are not changed (a deprecated one is a copy).

    A ``deprecationDate`` must be an ISO date string ``YYYY-MM-DD`` (``null`` counts as none); anything else raises
    :class:`ConfigError` naming ``where``, the model's index and id, and the field. ``today`` is a ``date`` (a
    ``datetime`` counts by its UTC date).

    >>> m = ExtendedModelInfo(id="m", name="M", provider="openai", version="1.0.0", cost=None,
    ...                       metadata={"deprecationDate": "2026-01-31"})
    >>> [x.status.value for x in apply_deprecation([m], date(2026, 1, 30)) + apply_deprecation([m], date(2026, 1, 31))]
    ['available', 'deprecated']
    """
    today = _as_date(today)
    result: list[ExtendedModelInfo] = []
    for index, model in enumerate(models):
        value = model.metadata.get(DEPRECATION_DATE_KEY)
        if value is not None:
            field = f"{item_label(where, index, model)}: metadata.{DEPRECATION_DATE_KEY}"
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
                raise ConfigError(f"{field}: must be a YYYY-MM-DD date, got {short_repr(value)}")
            try:
                deprecated_from = date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"{field}: not a valid date, got {value!r}") from None
            if deprecated_from <= today and model.status is not ModelStatus.DEPRECATED:
                model = model.model_copy(update={"status": ModelStatus.DEPRECATED})
        result.append(model)
    return result


def parse_models_config(data: Any, source: str, *, today: date | None = None) -> list[ExtendedModelInfo]:
    """Validate parsed models-config JSON; raise :class:`ConfigError` naming ``source`` and the field.

    Models whose ``metadata.deprecationDate`` is ``today`` (default: the current UTC date) or earlier come back
    ``deprecated`` (:func:`apply_deprecation`).
    """
    if isinstance(data, dict):
        unknown = set(data) - _TOP_LEVEL
        if unknown:
            names = ", ".join(_cut_name(name) for name in sorted(unknown)[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ConfigError(f"{source}: unknown top-level field(s) {names}{more}; expected 'models'")
        if "models" not in data:
            raise ConfigError(f"{source}: missing field 'models'")
        data = data["models"]
    if not isinstance(data, list):
        raise ConfigError(f'{source}: expected a list of models or {{"models": [...]}}, got {type(data).__name__}')
    where = f"{source}: models"
    models = validate_models(ExtendedModelInfo, data, where)
    return apply_deprecation(models, _utc_today() if today is None else today, where)


def _cut_name(name: str) -> str:
    # A field name as an error shows it: a user's file may hold a name of any length.
    text = repr(name)
    return text if len(text) <= 80 else f"{text[:77]}... ({len(name):,} characters)"


def read_models_config(
    path: str | Path, max_bytes: int = MAX_CONFIG_BYTES, *, today: date | None = None
) -> list[ExtendedModelInfo]:
    """Read and validate the models-config file at ``path``; a model whose ``metadata.deprecationDate`` is
    ``today`` (default: the current UTC date) or earlier comes back ``deprecated``.

    Raises :class:`PersistenceError` when the file is missing, unreadable or larger than ``max_bytes``, and
    :class:`ConfigError` when its content is not valid JSON or a model is invalid.
    """
    path = Path(path)
    text = jsonio.read_text(path, max_bytes)
    if text is None:
        raise PersistenceError(f"{path}: models-config file not found")
    return parse_models_config(jsonio.loads(text, str(path)), str(path), today=today)


def bundled_config_path() -> Path:
    """The catalogue shipped with the package (``config/models-config.json`` in a source checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "data" / "models-config.json"
    if installed.is_file():
        return installed
    return here.parents[1] / "config" / "models-config.json"


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigWatcher(Worker):
    """Polls a models-config file and calls ``on_change`` once a change has settled
    (a :class:`~noa_ai_provider.background.Worker`, started when made).

    Polling (``os.stat`` every ``interval`` seconds) rather than inotify: no extra dependency, and it sees both
    in-place writes and editors' write-then-rename (the inode changes), on every filesystem including network
    ones. A burst of writes is applied once: the file must look the same for ``debounce`` seconds first.
    ``on_change`` runs in the watcher's named daemon thread; its exceptions are logged and kept in
    :attr:`last_error`, and the watching goes on. Use :meth:`stop` or a ``with`` block to end it.
    """

    def __init__(
        self, path: str | Path, on_change: Callable[[], None], *, interval: float = 0.5, debounce: float = 0.2
    ) -> None:
        if interval <= 0 or debounce < 0:
            raise ValueError("interval must be > 0 and debounce >= 0")
        super().__init__("noa-registry-config-watcher", interval, logger)
        self.path = Path(path)
        self._on_change = on_change
        self._debounce = debounce
        self._seen = _signature(self.path)
        self.start()

    def tick(self) -> None:
        current = _signature(self.path)
        if current == self._seen:
            return
        # Settle: wait until the file stops changing (a writer may still be at it).
        while not self.sleep(self._debounce):
            later = _signature(self.path)
            if later == current:
                break
            current = later
        if self.stopping:
            return
        self._seen = current
        if current is not None:  # gone for now (mid-rename, or deleted): wait for it to come back
            self._on_change()
