"""The usage journal of ``durability="journal"``: ``<persistence_path>.journal``, one JSON record a line.

Appends are durable before they return, safe across threads and processes (an exclusive ``flock``), and repair a
torn tail; readers skip lines that are not records. See ``docs/durability.md`` ("Journal mode").
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: appends are then serialised only within a process
    fcntl = None  # type: ignore[assignment]

from .. import jsonio
from ..errors import PersistenceError
from .files import atomic_write_text

__all__ = ["Journal", "JournalRead"]

logger = logging.getLogger("noa_ai_provider.persistence")  # (the journal's messages kept their logger name)


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
