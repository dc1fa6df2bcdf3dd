"""The errors raised by ``noa_ai_provider``.

Every error subclasses :class:`RegistryError` and also the builtin exception that fits, so a caller can catch
either: ``except KeyError`` still catches :class:`ModelNotFoundError`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmbiguousModelError",
    "BackendError",
    "BudgetExceededError",
    "ConfigError",
    "ContextWindowWarning",
    "InvalidUsageError",
    "InvalidVersionError",
    "ModelNotFoundError",
    "PersistenceError",
    "RateLimitExceeded",
    "RateLimitHeaderWarning",
    "RateLimitTimeout",
    "RegistryError",
    "UnpricedModelError",
]


class RegistryError(Exception):
    """Base class of every error raised by this package."""


class ModelNotFoundError(RegistryError, KeyError):
    """No model is registered under the given key.

    ``str()`` gives a readable message (``KeyError`` would quote it).

    .. versionchanged:: 0.2.0
       The ``suggestions`` argument: the closest keys, named in the message; the error pickles with them.
    """

    def __init__(self, key: str, suggestions: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__(key)
        self.key = key
        self.suggestions = tuple(suggestions)

    def __str__(self) -> str:
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        return f"no model registered under key {self.key!r}{hint}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.suggestions))


class AmbiguousModelError(ModelNotFoundError):
    """A name (an alias, an id, a dated snapshot) fits several models; ``candidates`` are their keys.

    A :class:`ModelNotFoundError`, since no single model is found: ``except ModelNotFoundError`` catches both.

    .. versionadded:: 0.2.0
    """

    def __init__(self, key: str, candidates: tuple[str, ...] | list[str] = ()) -> None:
        super().__init__(key)
        self.candidates = tuple(candidates)

    def __str__(self) -> str:
        return f"{self.key!r} is ambiguous: it names {', '.join(self.candidates)}; use one of these keys"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.candidates))


class ConfigError(RegistryError, ValueError):
    """Invalid model definition, query or configuration; the message names the field's path."""


class InvalidVersionError(RegistryError, ValueError):
    """A string is not a valid version."""


class InvalidUsageError(RegistryError, ValueError):
    """Invalid arguments to a usage, metrics or rate-limit call (e.g. negative token counts)."""


class PersistenceError(RegistryError, OSError):
    """A file could not be read, written or parsed; the message names the file."""


class BackendError(RegistryError, ConnectionError):
    """The store that keeps the registry's live state (a Redis server) could not be reached or refused the work;
    chained from the store client's error. With ``on_backend_error="raise"`` (the default) every operation that
    needs the store raises it, and nothing of that operation was counted unless the store says so (see
    ``docs/redis.md``).

    .. versionadded:: 0.2.0
    """


class RateLimitExceeded(RegistryError):
    """A request would exceed a rate limit (or a provider's ``retry-after``) and was not admitted.

    ``limit`` names the binding limit (``"requests per minute"``, ``"tokens per minute"``, ``"requests per day"``,
    ``"tokens per day"``, ``"input tokens per minute"``, ``"output tokens per minute"``, ``"retry-after"``);
    ``retry_after`` is the number of seconds until it would be admitted, ``None`` when it never can be (the request
    alone is over a limit).

    .. versionchanged:: 0.2.0
       Survives pickling with its attributes (``key``, ``limit``, ``retry_after``, ``message``).
    """

    def __init__(self, key: str, limit: str, retry_after: float | None, message: str | None = None) -> None:
        self.key = key
        self.limit = limit
        self.retry_after = retry_after
        if message is None:
            when = "never (the request alone exceeds it)" if retry_after is None else f"in {retry_after:.3f} s"
            message = f"{key}: {limit} limit reached; admitted {when}"
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from every argument, so the error survives pickling (worker pools send it across processes).
        return (type(self), (self.key, self.limit, self.retry_after, self.message))


class RateLimitTimeout(RateLimitExceeded, TimeoutError):
    """A waiting ``acquire`` reached its ``timeout`` before it was admitted.

    .. versionchanged:: 0.2.0
       Survives pickling with its attributes, as :class:`RateLimitExceeded` does.
    """


class UnpricedModelError(RegistryError, ValueError):
    """The model has no known price (``cost`` is null), so a cost cannot be computed; it is never taken as $0."""


class BudgetExceededError(RegistryError):
    """A request would take a budget past its limit (counting the worst case of open reservations).

    ``budget_key`` is the model key of the budget (``None`` for the global one), ``period`` its period, ``limit`` and
    ``spent`` and ``reserved`` the amounts, ``needed`` the worst-case cost of the refused request.

    .. versionchanged:: 0.2.0
       Survives pickling with its attributes.
    """

    def __init__(
        self,
        key: str,
        budget_key: str | None,
        period: str,
        limit: object,
        spent: object,
        reserved: object,
        needed: object,
    ) -> None:
        self.key = key
        self.budget_key = budget_key
        self.period = period
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.needed = needed
        scope = "global" if budget_key is None else f"{budget_key}"
        self._arguments = (key, budget_key, period, limit, spent, reserved, needed)
        super().__init__(
            f"{key}: the {period} budget ({scope}) of {limit} would be exceeded: spent {spent}, reserved {reserved}, "
            f"this request up to {needed}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._arguments)


class ContextWindowWarning(RegistryError, UserWarning):
    """A request estimated or acquired with more input than the model's context window, or more output than its
    ``max_tokens``, under ``on_context_overflow="warn"`` (the default raises :class:`InvalidUsageError`).

    .. versionadded:: 0.2.0
    """


class RateLimitHeaderWarning(RegistryError, UserWarning):
    """A provider's rate-limit header could not be read; ``update_rate_limits_from_headers`` skipped it and applied
    the rest (a malformed header never fails the caller's request).

    .. versionadded:: 0.2.0
    """
