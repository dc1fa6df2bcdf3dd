"""The registry's JSON snapshot format, atomic file writes, the sidecar lock and the autosave thread (the usage
journal is :mod:`noa_ai_provider.persistence.journal`).

Nothing here knows the registry: it encodes and decodes entries, and writes and reads files.

A snapshot file is ``{"format": "noa-ai-provider/registry", "formatVersion": 1, "savedAt": ..., "models": [...]}``
where each model is an :class:`~noa_ai_provider.schemas.EnhancedModelRegistryEntry` in camelCase; prices and costs
are exact decimal strings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .. import jsonio
from ..background import Worker
from ..errors import ConfigError, PersistenceError
from ..schemas import (
    MAX_INT,
    EnhancedModelRegistryEntry,
    ExtendedModelInfo,
    UsageHistoryEntry,
    item_label,
    validate_or_raise,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AutoSaver",
    "FileStamp",
    "atomic_write_text",
    "backup_path",
    "decode_entries",
    "decode_history",
    "decode_meta",
    "encode_entries",
    "file_stamp",
    "holds_save",
    "keep_backup",
    "locked",
    "read_stamped",
    "remove_leftovers",
]

logger = logging.getLogger("noa_ai_provider.persistence")

FORMAT = "noa-ai-provider/registry"
FORMAT_VERSION = 1
LOCK_TIMEOUT = 30.0
"""Seconds to wait for another process holding the sidecar lock before giving up with PersistenceError."""

_ENTRY_MARKERS = frozenset({"key", "usageStats", "usage_stats", "registeredAt", "registered_at"})


def encode_entries(
    entries: Sequence[EnhancedModelRegistryEntry | ExtendedModelInfo],
    saved_at: datetime,
    history: Sequence[UsageHistoryEntry] = (),
    writers: Mapping[str, tuple[int, datetime]] | None = None,
    removed: Mapping[str, datetime] | None = None,
    save_id: str | None = None,
) -> str:
    """The snapshot document for ``entries`` (and their daily usage ``history``) as JSON text: camelCase, exact
    decimals, no nulls. ``writers`` (each writer's newest saved batch and when) and ``removed`` (tombstones) are
    what lets several processes merge into one file (see :mod:`noa_ai_provider.merge`); ``save_id``, written near
    the start, lets a writer recognise its own file cheaply (:func:`holds_save`)."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
    }
    if save_id is not None:
        doc["saveId"] = save_id
    doc["savedAt"] = saved_at.isoformat()
    doc["models"] = models = []
    for entry in entries:
        try:
            models.append(_dump(entry))
        except (TypeError, ValueError, RecursionError) as exc:
            # Unreachable through the registry's checks (every value is checked when it enters); still a clear
            # PersistenceError naming the model rather than a serialiser's traceback.
            name = entry.key if isinstance(entry, EnhancedModelRegistryEntry) else entry.id
            raise PersistenceError(f"{name}: cannot be saved as JSON: {exc}") from exc
    if history:
        doc["usageHistory"] = [h.model_dump(mode="json", by_alias=True) for h in history]
    if writers:
        doc["writers"] = {w: {"seq": seq, "savedAt": at.isoformat()} for w, (seq, at) in writers.items()}
    if removed:
        doc["removed"] = {key: at.isoformat() for key, at in removed.items()}
    # Compact: with an indent the standard library falls back to its pure-Python encoder (about 4x slower).
    try:
        return jsonio.dumps(doc, indent=None)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PersistenceError(f"the registry cannot be saved as JSON: {exc}") from exc


def _dump(entry: EnhancedModelRegistryEntry | ExtendedModelInfo) -> dict[str, Any]:
    data = entry.model_dump(mode="json", by_alias=True, exclude_none=True)
    if entry.cost is None:
        data["cost"] = None  # required even when unknown: null says "unpriced"
    return data


def decode_entries(
    data: Any, source: str, error: type[Exception] = PersistenceError
) -> list[EnhancedModelRegistryEntry | ExtendedModelInfo]:
    """Validate a parsed snapshot (or a bare list of models) into entries and plain model definitions.

    An item that carries registry bookkeeping (``key``, ``usageStats``, ``registeredAt``) is read as a full entry;
    any other item as a model definition. A full entry's ``key`` must be ``provider:id``. Raises ``error`` (with the
    source, the model's index and id and the field path) on anything invalid; nothing is partially returned.
    """
    if isinstance(data, dict):
        unknown = set(data) - {
            "format",
            "formatVersion",
            "saveId",
            "savedAt",
            "models",
            "usageHistory",
            "writers",
            "removed",
        }
        if unknown:
            raise error(f"{source}: unknown top-level field(s) {sorted(unknown)}")
        if data.get("format", FORMAT) != FORMAT:
            raise error(f"{source}: not a registry snapshot (format {data.get('format')!r})")
        version = data.get("formatVersion", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise error(f"{source}: unsupported formatVersion {version!r} (this version reads 1)")
        if "models" not in data:
            raise error(f"{source}: missing field 'models'")
        items = data["models"]
    else:
        items = data
    if not isinstance(items, list):
        raise error(f"{source}: expected a list of models, got {type(items).__name__}")
    out: list[EnhancedModelRegistryEntry | ExtendedModelInfo] = []
    for index, item in enumerate(items):
        label = item_label(f"{source}: models", index, item)
        is_entry = isinstance(item, dict) and bool(_ENTRY_MARKERS & item.keys())
        try:
            if is_entry:
                entry = validate_or_raise(EnhancedModelRegistryEntry, item, label)
                expected = f"{entry.provider}:{entry.id}"
                if entry.key != expected:
                    raise ConfigError(f"{label}: key {entry.key!r} should be {expected!r}")
                out.append(entry)
            else:
                out.append(validate_or_raise(ExtendedModelInfo, item, label))
        except ConfigError as exc:
            raise error(str(exc)) from None
    return out


def decode_history(data: Any, source: str, error: type[Exception] = PersistenceError) -> list[UsageHistoryEntry]:
    """The validated ``usageHistory`` of a parsed snapshot (empty when it has none)."""
    if not isinstance(data, dict) or "usageHistory" not in data:
        return []
    rows = data["usageHistory"]
    if not isinstance(rows, list):
        raise error(f"{source}: usageHistory: expected a list, got {type(rows).__name__}")
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(validate_or_raise(UsageHistoryEntry, row, f"{source}: usageHistory[{index}]"))
        except ConfigError as exc:
            raise error(str(exc)) from None
    return out


def decode_meta(
    data: Any, source: str, error: type[Exception] = PersistenceError
) -> tuple[dict[str, tuple[int, datetime]], dict[str, datetime]]:
    """The validated ``writers`` watermarks and ``removed`` tombstones of a parsed snapshot (empty when absent)."""
    if not isinstance(data, dict):
        return {}, {}
    writers: dict[str, tuple[int, datetime]] = {}
    raw = data.get("writers", {})
    if not isinstance(raw, dict):
        raise error(f"{source}: writers: expected an object, got {type(raw).__name__}")
    for writer, mark in raw.items():
        seq = mark.get("seq") if isinstance(mark, dict) else None
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_INT:
            raise error(f"{source}: writers.{writer}.seq: expected a non-negative integer")
        writers[writer] = (seq, _stamp(mark.get("savedAt"), f"{source}: writers.{writer}.savedAt", error))
    raw = data.get("removed", {})
    if not isinstance(raw, dict):
        raise error(f"{source}: removed: expected an object, got {type(raw).__name__}")
    removed = {key: _stamp(at, f"{source}: removed.{key}", error) for key, at in raw.items()}
    return writers, removed


def _stamp(value: Any, where: str, error: type[Exception]) -> datetime:
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise error(f"{where}: expected an ISO 8601 time with a UTC offset, got {value!r}")
    return stamp


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the sidecar lock ``<path>.lock`` (never the file that ``os.replace`` swaps), creating its folder.

    Serialises writers across processes; acquired and released in the calling thread.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock", timeout=timeout)
        lock.acquire()
    except Timeout as exc:
        raise PersistenceError(f"{path}: lock {path}.lock still held after {timeout} s") from exc
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot lock: {exc.strerror or exc}") from exc
    try:
        yield
    finally:
        lock.release()


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: a reader sees the old file or the new one, never a mix.

    Writes a temporary file in the same folder, flushes and fsyncs it, keeps the old file's permission bits,
    ``os.replace``-s it over ``path`` and fsyncs the folder. The temporary file is removed on any failure, and the
    old file is then untouched. Raises :class:`PersistenceError` naming the file.
    """
    jsonio.check_regular(path)
    if path.is_symlink():
        path = path.resolve()  # write through the link to its target: replacing the link would cut it
    folder = path.parent
    tmp_name: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:  # the old file's permission bits; a new file gets what open() would give (0666 less the umask)
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~current_umask()
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(folder)
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


FileStamp = tuple[int, int, int, int]
"""A file's identity and version: device, inode, size, modification time in ns. ``os.replace`` always gives a
new inode, so a snapshot another writer saved has another stamp."""


def file_stamp(path: Path) -> FileStamp | None:
    """The :data:`FileStamp` of ``path`` (following a symlink), or ``None`` when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PersistenceError(f"{path}: cannot stat: {exc.strerror or exc}") from exc
    return _stamp_of(st)


def holds_save(path: Path, save_id: str) -> bool:
    """Whether the snapshot at ``path`` is the one written with ``save_id`` (read from its first bytes only)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    # (Written by encode_entries through json.dumps: ids are letters, digits, '-' and ':', never escaped.)
    return f'"saveId": "{save_id}"'.encode() in head


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else set and restored."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_stamped(path: Path, max_bytes: int | None = None) -> tuple[str, FileStamp] | None:
    """The UTF-8 text of ``path`` and the stamp of exactly the file read; ``None`` when it does not exist.
    Raises :class:`PersistenceError` naming the file (also when it is not a regular file, or larger than
    ``max_bytes``)."""
    read = jsonio.read_text_and_stat(path, max_bytes)
    return None if read is None else (read[0], _stamp_of(read[1]))


def _stamp_of(st: os.stat_result) -> FileStamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def backup_path(path: Path) -> Path:
    """Where the previous snapshot is kept: ``<path>.bak``."""
    return path.with_name(path.name + ".bak")


def keep_backup(path: Path) -> None:
    """Make ``<path>.bak`` the current ``path`` (before it is replaced), atomically and without copying: a hard
    link under a temporary name, renamed over the old backup. Nothing happens when ``path`` does not exist; a
    filesystem without hard links gets a copy. Raises :class:`PersistenceError`."""
    if path.is_symlink():
        path = path.resolve()
    if not path.exists():
        return
    bak = backup_path(path)
    with contextlib.suppress(OSError):
        if os.path.samefile(path, bak):
            # Already the backup (a save failed after keeping it): renaming another link of the same file over it
            # would be a no-op under POSIX and leave the temporary link behind.
            return
    tmp = path.with_name(f".{path.name}.bak.{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copy2(path, tmp)
        os.replace(tmp, bak)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PersistenceError(f"{bak}: cannot keep the previous snapshot: {exc.strerror or exc}") from exc


def remove_leftovers(path: Path) -> list[Path]:
    """Remove temporary files that crashed writers of ``path`` left in its folder; return them.

    Call it holding :func:`locked` (a live writer holds the lock while its temporary file exists).
    """
    removed: list[Path] = []
    folder = path.parent
    if not folder.is_dir():
        return removed
    for leftover in folder.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed.append(leftover)
    return removed


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AutoSaver(Worker):
    """A named daemon thread calling ``save`` every ``interval`` seconds until :meth:`stop`
    (:class:`~noa_ai_provider.background.Worker`).

    ``save`` decides itself whether anything needs writing. An exception from it is logged and kept in
    :attr:`last_error` (cleared by the next success); the thread keeps going, so a full disk that frees up later
    loses nothing. A second :meth:`start` raises ``RuntimeError``.
    """

    expected = (PersistenceError,)

    def __init__(self, save: Callable[[], None], interval: float, name: str = "noa-registry-autosave") -> None:
        super().__init__(name, interval, logger)
        self._save = save

    def tick(self) -> None:
        self._save()
