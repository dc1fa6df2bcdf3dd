"""One pattern for the package's background threads (the autosave thread, the models-config watcher).

A :class:`Worker` is a named daemon thread that calls :meth:`Worker.tick` every ``interval`` seconds, sleeping
with ``stop_event.wait(interval)`` so :meth:`Worker.stop` ends it at once. A tick's exception is logged (once while
it repeats) and kept in :attr:`Worker.last_error` (cleared by the next good tick); the thread goes on, so a full
disk that frees up later loses nothing. :meth:`Worker.stop` returns the kept error, and leaving a ``with`` block
raises it. A second :meth:`Worker.start` raises ``RuntimeError``.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Self

__all__ = ["Worker"]


class Worker:
    """A background thread calling :meth:`tick` every ``interval`` seconds until :meth:`stop`. Subclasses
    implement :meth:`tick`; ``expected`` names the exception types logged in one line (others with their
    traceback, once)."""

    expected: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, interval: float, logger: logging.Logger) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self.interval = interval
        self._logger = logger
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        self.last_error: BaseException | None = None

    def tick(self) -> None:
        """One round of the work (called in the worker's thread)."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start the thread; returns ``self``. Raises ``RuntimeError`` when already started."""
        if self._started:
            raise RuntimeError(f"{self._thread.name} already started")
        self._started = True
        self._thread.start()
        return self

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` inside a tick; ``True`` when :meth:`stop` was called meanwhile."""
        return self._stop_event.wait(seconds)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop_event.is_set()

    def _run(self) -> None:
        logged: str | None = None  # the last error logged: the same error every tick is logged once
        while not self._stop_event.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:
                self.last_error = exc
                text = f"{type(exc).__name__}: {exc}"
                if text != logged:
                    if isinstance(exc, self.expected):  # an expected failure (a file): one line
                        self._logger.error("%s failed, retrying every %s s: %s", self._thread.name, self.interval, exc)
                    else:  # a bug: its traceback, once
                        self._logger.exception("%s failed, retrying every %s s", self._thread.name, self.interval)
                    logged = text
            else:
                self.last_error = None
                if logged is not None:
                    self._logger.warning("%s works again", self._thread.name)
                    logged = None

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> BaseException | None:
        """Ask the thread to stop and wait for it, at most ``timeout`` seconds (idempotent; safe from the thread
        itself). Returns the error of the last tick when it failed, else ``None``."""
        self._stop_event.set()
        if self._started and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return self.last_error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        error = self.stop()
        if error is not None and exc_type is None:
            raise error
