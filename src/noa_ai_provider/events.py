"""Registry events: the only module that imports ``blinker``.

Each registry owns an :class:`EventBus` with its own signals, so handlers of one registry never see another's
events. Handlers are held strongly (a lambda keeps working) and called as ``handler(registry, **payload)`` with
snake_case payload keys, in the thread that made the change, after the registry's lock is released.

A handler that raises does not undo the change (it has happened) and does not stop the other handlers: its
exception is logged on the ``noa_ai_provider.events`` logger and swallowed, so that e.g. a failing metrics hook
can never make the caller believe a request was not recorded (and record it twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from blinker import Signal

__all__ = ["EVENTS", "EventBus", "Handler"]

logger = logging.getLogger("noa_ai_provider.events")

Handler = Callable[..., Any]

EVENTS: dict[str, str] = {
    "model-registered": "a new key was registered; payload: key, model (the entry)",
    "model-updated": "a model's definition or status changed; payload: key, model (the entry)",
    "model-unregistered": "a model was removed; payload: key",
    "usage-recorded": "usage was recorded; payload: key, input_tokens, output_tokens, cost, total_cost",
    "usage-reset": "a model's usage counters were reset; payload: key",
    "config-loaded": "a models-config file was loaded; payload: path, model_count",
    "registry-saved": "the registry was written; payload: path",
    "registry-loaded": "a saved registry was read; payload: path, model_count",
    "rate-limited": "acquire refused a request or made it wait; payload: key, limit, retry_after",
    "config-reloaded": "a watched models-config file was applied; payload: path, added, updated, removed (keys)",
    "config-reload-failed": "a watched models-config file was invalid and changed nothing; payload: path, error",
    "model-not-in-config": "a model of the saved file is in no loaded models-config file; it is kept; payload: key, "
    "configs (the paths)",
    "save-failed": "an autosave (or the save at close) failed; the changes stay pending; payload: path, error",
    "budget-warning": "a budget's spend reached its warn_at share; payload: key (None: global), period, limit, spent",
    "budget-exceeded": "a budget's spend passed its limit; payload: key (None: global), period, limit, spent",
}
"""Every event name and what its payload holds."""


class EventBus:
    """Per-registry signals, one per event name. Thread-safe (blinker's connect/disconnect are)."""

    __slots__ = ("_signals",)

    def __init__(self) -> None:
        self._signals = {name: Signal(doc) for name, doc in EVENTS.items()}

    def check(self, event: str) -> None:
        """Raise ``ValueError`` naming the known events when ``event`` is not one of them."""
        self._signal(event)

    def _signal(self, event: str) -> Signal:
        try:
            return self._signals[event]
        except KeyError:
            raise ValueError(f"unknown event {event!r}; known events: {', '.join(sorted(EVENTS))}") from None

    def connect(self, event: str, handler: Handler) -> Handler:
        """Connect ``handler`` to ``event``, strongly; returns ``handler``. Unknown event: ``ValueError``."""
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        self._signal(event).connect(handler, weak=False)
        return handler

    def disconnect(self, event: str, handler: Handler) -> None:
        """Disconnect ``handler`` from ``event`` (nothing happens when it was not connected)."""
        self._signal(event).disconnect(handler)

    def wants(self, event: str) -> bool:
        """Whether anyone listens to ``event`` (lets callers skip building a payload)."""
        return bool(self._signals[event].receivers)

    def emit(self, sender: object, event: str, **payload: Any) -> None:
        """Call every handler of ``event`` as ``handler(sender, **payload)``; log and swallow their errors."""
        signal = self._signals[event]
        if not signal.receivers:
            return
        for receiver in signal.receivers_for(sender):
            try:
                receiver(sender, **payload)
            except Exception:
                logger.exception("handler %r of event %r raised", receiver, event)
