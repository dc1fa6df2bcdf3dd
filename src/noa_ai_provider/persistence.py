"""The registry's JSON snapshot format, atomic file writes, the sidecar lock and the autosave thread.

Nothing here knows the registry: it encodes and decodes entries, and writes and reads files.

A snapshot file is ``{"format": "noa-ai-provider/registry", "formatVersion": 1, "savedAt": ..., "models": [...]}``
where each model is an :class:`~noa_ai_provider.schemas.EnhancedModelRegistryEntry` in camelCase; prices and costs
are exact decimal strings.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from filelock import FileLock, Timeout

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: appends are then serialised only within a process
    fcntl = None  # type: ignore[assignment]

from . import jsonio
from .errors import ConfigError, PersistenceError
from .schemas import (
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
    "Journal",
    "JournalRead",
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
    entries: Sequence[EnhancedModelRegistryEntry],
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
            raise PersistenceError(f"{entry.key}: cannot be saved as JSON: {exc}") from exc
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


def _dump(entry: EnhancedModelRegistryEntry) -> dict[str, Any]:
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


class AutoSaver:
    """A named daemon thread calling ``save`` every ``interval`` seconds until :meth:`stop`.

    ``save`` decides itself whether anything needs writing. An exception from it is logged and kept in
    :attr:`last_error` (cleared by the next success); the thread keeps going, so a full disk that frees up later
    loses nothing. A second :meth:`start` raises ``RuntimeError``.
    """

    def __init__(self, save: Callable[[], None], interval: float, name: str = "noa-registry-autosave") -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self._save = save
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self.last_error: BaseException | None = None

    def start(self) -> None:
        """Start the thread; raises ``RuntimeError`` when already started."""
        if self._started:
            raise RuntimeError("autosave thread already started")
        self._started = True
        self._thread.start()

    def _run(self) -> None:
        logged: str | None = None  # the last error logged: the same error every tick is logged once
        while not self._stop.wait(self._interval):
            try:
                self._save()
                self.last_error = None
                if logged is not None:
                    logger.warning("autosave works again")
                    logged = None
            except Exception as exc:
                self.last_error = exc
                text = f"{type(exc).__name__}: {exc}"
                if text != logged:
                    if isinstance(exc, PersistenceError):  # an expected failure (a file): one line
                        logger.error("autosave failed, retrying every %s s: %s", self._interval, exc)
                    else:  # a bug: its traceback, once
                        logger.exception("autosave failed, retrying every %s s", self._interval)
                    logged = text

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop and wait for it (idempotent; safe from the thread itself)."""
        self._stop.set()
        if self._started and threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class JournalRead(NamedTuple):
    """What one pass over the journal found (see :meth:`Journal.scan`)."""

    records: list[dict[str, Any]]
    """The records above their writer's mark, in file order."""
    skipped: tuple[int, ...]
    """The numbers (from 1) of the lines that are not journal records: torn by a writer killed mid-append (and
    ended by the next append's repair), garbled, or JSON of another shape. Never replayed; dropped by
    :meth:`Journal.truncate`."""
    kept: list[bytes]
    """The raw text of :attr:`records`, each without its newline (what a truncation writes back verbatim)."""
    unterminated: bool
    """Whether the file ends with a line that has no newline and is not a record: an append in flight (when read
    without the append lock) or torn. Not in :attr:`skipped`; :meth:`Journal.truncate`, which holds the lock,
    counts it there."""


class Journal:
    """An append-only log of usage records next to the snapshot: ``<persistence_path>.journal``, one JSON object
    a line, each with its ``writer`` and that writer's sequence number ``seq``.

    :meth:`append` writes a line and fsyncs it (at most every ``fsync_interval`` seconds; 0 means every line)
    before returning. :meth:`read` returns the records a snapshot does not hold yet. :meth:`truncate` drops the
    records a saved snapshot holds. Thread-safe, and safe across processes: an append holds an exclusive ``flock``
    on the file, and :meth:`truncate` replaces the file while holding it, so an appender that waited finds the new
    file and appends there (no line lands in a replaced file).

    **Torn lines.** A writer killed mid-append leaves a partial last line with no newline. Every append starts on
    a line of its own: under the lock, when the file does not end with a newline, the append writes one first, so
    the torn fragment becomes a line of its own instead of swallowing the record. A reader skips any line that is
    not a journal record, wherever it is, counts it (:attr:`skipped`) and logs one warning naming the file and the
    line numbers (logger ``noa_ai_provider.persistence``). A line written before that repair existed (a torn
    fragment with a whole record glued to its end) gives back the record at its end. So a torn line never blocks a
    load or a save, and no record whose :meth:`append` returned is lost.

    **Failed appends.** An append that raises takes back what it wrote (the file is cut back to its size before,
    under the lock; best effort), so a record whose append raised is not replayed later.

    **Forks.** The file is written with plain ``os.write`` calls on a descriptor (no Python buffer): there is no
    buffered data a forked child could flush, and no buffer lock a thread of the parent could hold at the fork.
    :meth:`after_fork` abandons the inherited descriptor without touching the file or its ``flock``.
    """

    _MAX_LOGGED = 20
    """At most this many line numbers in one warning (then how many more)."""

    def __init__(self, path: Path, fsync_interval: float = 0.0) -> None:
        self.path = path
        self.fsync_interval = fsync_interval
        self.skipped: tuple[int, ...] = ()
        """The numbers of the lines the most recent :meth:`read` or :meth:`truncate` of this object skipped (see
        :attr:`JournalRead.skipped`); empty when every line was a record."""
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._last_sync = 0.0

    def append(self, line: dict[str, Any]) -> None:
        """Write ``line`` durably (see the class doc), on a line of its own. Raises :class:`PersistenceError`;
        the file then holds nothing of ``line`` (unless even cutting it back failed)."""
        data = (jsonio.dumps(line, indent=None) + "\n").encode("utf-8")
        with self._lock:
            try:
                fd, size = self._locked_fd()
            except OSError as exc:
                raise PersistenceError(f"{self.path}: cannot append: {exc.strerror or exc}") from exc
            try:
                # Under the flock nobody else writes: a last byte that is not a newline is a torn line of a
                # writer that died mid-append. End it, so this record does not become part of it.
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                view = memoryview(data)
                while view:  # a regular file may take fewer bytes than asked (a signal, a size limit)
                    written = os.write(fd, view)
                    if written <= 0:
                        raise OSError(errno.EIO, "write took no bytes")
                    view = view[written:]
                now = time.monotonic()
                if self.fsync_interval <= 0 or now - self._last_sync >= self.fsync_interval:
                    os.fsync(fd)
                    self._last_sync = now
            except OSError as exc:
                # The caller is told the record is not written (the registry takes it back): leave no part of it,
                # or a later replay would count a request whose call raised.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise PersistenceError(f"{self.path}: cannot append: {exc.strerror or exc}") from exc
            finally:
                self._funlock(fd)

    def _locked_fd(self) -> tuple[int, int]:
        # The open journal, flocked, still the file at self.path (another process may have replaced it), and its
        # size. Raises OSError or PersistenceError.
        while True:
            if self._fd is None:
                jsonio.check_regular(self.path)  # opening a FIFO to append would block
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Read-write so that the tail can be checked (pread); O_APPEND so that every write lands at the end.
                # (os.open makes it non-inheritable: a subprocess does not get it; a fork does, see after_fork.)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
                self._fd = fd
                # Closed with the journal even when nobody calls close() (a registry never closed).
                self._finalizer = weakref.finalize(self, os.close, fd)
            fd = self._fd
            self._flock(fd)
            try:
                current = os.stat(self.path)
                here = (current.st_dev, current.st_ino)
            except FileNotFoundError:
                here = (-1, -1)
            st = os.fstat(fd)
            if here == (st.st_dev, st.st_ino):
                return fd, st.st_size
            self._close_fd()  # replaced by a truncate (closing drops the flock): append to the new file

    def _close_fd(self) -> None:
        # Forget the descriptor before closing it: a fork in between leaves the child a leaked descriptor rather
        # than a number that may be reused for another file by the time the child closes it.
        fd, self._fd = self._fd, None
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def scan(self, marks: Mapping[str, int] | None = None) -> JournalRead:
        """One pass over the file (without the append lock; nothing is logged): the records above their writer's
        mark in ``marks`` (all when ``None``), and the lines skipped. A missing file is empty. Raises
        :class:`PersistenceError` only when the file cannot be read at all."""
        return _journal_lines(self._read_bytes(), marks or {})

    def read(self, marks: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        """The records whose ``seq`` is above their writer's mark in ``marks`` (all records when ``None``), in file
        order. Lines that are not records are skipped, counted in :attr:`skipped` and logged (one warning); an
        unterminated last line that is not a record is ignored silently (it may be an append in progress).
        Raises :class:`PersistenceError` only when the file cannot be read at all."""
        found = self.scan(marks)
        self.skipped = found.skipped
        self._warn(found.skipped, "skipped")
        return found.records

    def truncate(self, marks: Mapping[str, int]) -> None:
        """Drop the records at or below their writer's mark (a snapshot holding them was written), and every line
        that is not a record (counted in :attr:`skipped` and logged first; under the append lock an unterminated
        last line is torn, not in flight, so it counts too). The records kept are written back verbatim. Call it
        holding the snapshot's sidecar lock. Raises :class:`PersistenceError`."""
        with self._lock:
            try:
                fd, size = self._locked_fd()
            except OSError as exc:
                raise PersistenceError(f"{self.path}: cannot lock: {exc.strerror or exc}") from exc
            try:
                try:
                    data = self._pread_all(fd, size)
                except OSError as exc:
                    raise PersistenceError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
                found = _journal_lines(data, marks)
                skipped = found.skipped
                if found.unterminated:
                    skipped = (*skipped, data.count(b"\n") + 1)
                self.skipped = skipped
                self._warn(skipped, "dropped")
                atomic_write_text(self.path, "".join(raw.decode("utf-8") + "\n" for raw in found.kept))
            finally:
                self._funlock(fd)
                self._close_fd()  # replaced: the next append opens the new file

    def after_fork(self) -> None:
        """In a forked child: a lock of its own, and no descriptor of the parent's (a flock belongs to the file
        description, which parent and child would otherwise share; the next append opens a description of its
        own). Never blocks: another thread of the parent may have been inside :meth:`append` at the fork, holding
        the lock, the flock, or half a line; the inherited descriptor is closed without unlocking or writing (the
        parent still holds the description, so its flock stands), and nothing the parent was writing is written
        by the child."""
        self._lock = threading.Lock()
        self._close_fd()

    def close(self) -> None:
        """Close the file (appending opens it again)."""
        with self._lock:
            self._close_fd()

    def _read_bytes(self) -> bytes | None:
        # The whole file as bytes (decoded line by line: a torn line may cut a character in two), or None when it
        # does not exist. Opened without blocking (a FIFO must not hang a load) and read only if regular.
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PersistenceError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PersistenceError(f"{self.path}: not a regular file; refusing to read it")
            return self._pread_all(fd, st.st_size)
        except OSError as exc:
            raise PersistenceError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    @staticmethod
    def _pread_all(fd: int, size: int) -> bytes:
        # The first ``size`` bytes (fewer if the file is shorter: it may have been cut meanwhile).
        chunks = []
        offset = 0
        while offset < size:
            chunk = os.pread(fd, min(size - offset, 1 << 24), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def _warn(self, numbers: tuple[int, ...], verb: str) -> None:
        if not numbers:
            return
        shown = ", ".join(str(n) for n in numbers[: self._MAX_LOGGED])
        more = len(numbers) - self._MAX_LOGGED
        if more > 0:
            shown += f" and {more} more"
        logger.warning(
            "%s: %s %d line(s) that are not journal records (torn by a writer killed mid-append, or garbled): "
            "line(s) %s",
            self.path,
            verb,
            len(numbers),
            shown,
        )

    @staticmethod
    def _flock(fd: int) -> None:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)

    @staticmethod
    def _funlock(fd: int) -> None:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)


_RECORD_START = b'{"writer":'
"""How every record starts (the registry writes ``writer`` first): where a record glued to a torn fragment by an
older version begins."""
_RECORD_INTS = ("seq", "inputTokens", "outputTokens", "cachedInputTokens", "cacheWriteTokens")


def _journal_record(raw: bytes) -> dict[str, Any] | None:
    # The record on one line, or None when it is not one: not UTF-8, not JSON, or not the shape replay reads.
    try:
        line = jsonio.loads(raw.decode("utf-8"), "journal line", error=PersistenceError)
    except (UnicodeDecodeError, PersistenceError):
        return None
    if not (isinstance(line, dict) and isinstance(line.get("writer"), str) and isinstance(line.get("key"), str)):
        return None
    for name in _RECORD_INTS:
        value = line.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
    if not isinstance(line.get("success"), bool):
        return None
    for name in ("at", "cost"):
        value = line.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
            return None
        try:
            if not Decimal(str(value)).is_finite():
                return None
        except ArithmeticError:
            return None
    return line


def _journal_lines(data: bytes | None, marks: Mapping[str, int]) -> JournalRead:
    """Parse the journal's bytes (see :class:`JournalRead`). A line is read on its own (a torn one may end inside
    a character), and one that is not a record is skipped wherever it is; an unterminated last line that is a
    record counts (a writer killed between its record and its newline). Never raises on content."""
    out: list[dict[str, Any]] = []
    kept: list[bytes] = []
    skipped: list[int] = []
    unterminated = False
    if not data:
        return JournalRead(out, (), kept, False)
    lines = data.split(b"\n")
    last = len(lines)  # the part after the final newline: empty when the file ends with one
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        line = _journal_record(raw)
        if line is None:
            if number == last:  # no newline yet: in flight, or torn (only the caller knows whether it holds the lock)
                unterminated = True
                continue
            skipped.append(number)
            # Written before appends ended a torn line first: a fragment with a whole record glued to its end.
            start = raw.rfind(_RECORD_START, 1)
            if start < 0:
                continue
            raw = raw[start:]
            line = _journal_record(raw)
            if line is None:
                continue
        if line["seq"] > marks.get(line["writer"], 0):
            out.append(line)
            kept.append(raw)
    return JournalRead(out, tuple(skipped), kept, unterminated)
