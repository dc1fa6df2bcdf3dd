"""The errors raised by ``noa_ai_provider``.

Every error subclasses :class:`RegistryError` and also the builtin exception that fits, so a caller can catch
either: ``except KeyError`` still catches :class:`ModelNotFoundError`.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InvalidUsageError",
    "InvalidVersionError",
    "ModelNotFoundError",
    "PersistenceError",
    "RegistryError",
]


class RegistryError(Exception):
    """Base class of every error raised by this package."""


class ModelNotFoundError(RegistryError, KeyError):
    """No model is registered under the given key.

    ``str()`` gives a readable message (``KeyError`` would quote it).
    """

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no model registered under key {self.key!r}"


class ConfigError(RegistryError, ValueError):
    """Invalid model definition, query or configuration; the message names the field's path."""


class InvalidVersionError(RegistryError, ValueError):
    """A string is not a valid version."""


class InvalidUsageError(RegistryError, ValueError):
    """Invalid arguments to a usage, metrics or rate-limit call (e.g. negative token counts)."""


class PersistenceError(RegistryError, OSError):
    """A file could not be read, written or parsed; the message names the file."""
