"""The registry's rate limits and reservations: checking, acquiring (sync and async), settling and releasing a
reservation, and the provider's rate-limit headers. A part of
:class:`~noa_ai_provider.registry.EnhancedModelRegistry` (a mixin): it checks arguments and emits events; the
wait queue (:mod:`noa_ai_provider.waiting`) and the store do the work.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from decimal import Decimal

from .catalog import Catalog
from .checks import acquire_args, usage_args
from .cost import check_token_count, request_cost
from .errors import InvalidUsageError, PersistenceError, RateLimitHeaderWarning, UnpricedModelError
from .headers import ProviderLimits, read_rate_limit_headers
from .persistence.definitions import DefinitionSync
from .persistence.sync import SnapshotSync
from .reservation import Reservation
from .schemas import (
    MAX_INT,
    ExtendedModelInfo,
    ModelCost,
    RateLimitCheck,
    RateLimitConfig,
    shallow_copy,
    validate_or_raise,
)
from .stores.base import Recorded, RequestUsage, Store
from .waiting import WaitQueue

__all__ = ["Limiting", "price"]

_ZERO = Decimal(0)


class Limiting:
    """Rate limits and reservations of :class:`~noa_ai_provider.registry.EnhancedModelRegistry`."""

    _catalog: Catalog
    _store: Store
    _queue: WaitQueue
    _sync: SnapshotSync | DefinitionSync
    _now: Callable[[], float]
    _model: Callable[[str], tuple[str, ExtendedModelInfo]]
    _checked_request: Callable[[str, int, int], tuple[str, ExtendedModelInfo]]
    _journal_or_undo: Callable[[str, RequestUsage, Decimal, Recorded], None]
    _emit_usage: Callable[[str, RequestUsage, Decimal, Recorded], None]

    def check_rate_limit(self, key: str, tokens_to_send: int, *, output_tokens: int | None = None) -> RateLimitCheck:
        """Whether one more request of ``tokens_to_send`` tokens (input plus expected output) keeps every limit.

        Read-only: reserves nothing, but counts open reservations. ``output_tokens`` says how much of
        ``tokens_to_send`` is expected output (for separate input/output limits; default: all of it is input).
        ``reason`` names the binding limit, ``retry_after`` the seconds until it would pass (``None``: never, the
        request alone is over a limit). To check and reserve in one step, use :meth:`acquire`.
        """
        tokens = check_token_count("tokens_to_send", tokens_to_send)
        out = 0 if output_tokens is None else check_token_count("output_tokens", output_tokens)
        if out > tokens:
            raise InvalidUsageError(f"output_tokens ({out}) cannot exceed tokens_to_send ({tokens})")
        key, _ = self._model(key)
        return self._store.check(key, tokens - out, out)

    def acquire(
        self,
        key: str,
        input_tokens: int,
        max_output_tokens: int = 0,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Reservation:
        """Check every limit of ``key`` and reserve one request plus ``input_tokens + max_output_tokens`` tokens,
        all at once or nothing. Returns a :class:`Reservation` to commit (or cancel) when the call is done.

        Not admitted and ``wait=False``: raises :class:`RateLimitExceeded` (``.limit``, ``.retry_after``) and emits
        ``rate-limited``. ``wait=True``: blocks until admitted or until ``timeout`` seconds of the registry's clock
        have passed (:class:`RateLimitTimeout`); waiters are served first come, first served, so a big request is not
        starved by small ones (and a non-waiting call does not overtake them). A request that can never fit (over a
        per-minute limit by itself) raises at once. Thread-safe; see :meth:`acquire_async` for event loops.

        With budgets set (:meth:`set_budget`), the worst-case cost of the request (every input token at full price
        plus ``max_output_tokens``) is reserved against each budget that applies, in the same step: when it could
        cross one, :class:`BudgetExceededError` is raised at once (waiting would not help) and nothing is taken.

        .. versionchanged:: 0.2.0
           A request over the model's context window or ``maxTokens`` is refused (or warned about, per
           ``on_context_overflow``); ``timeout`` also bounds real time.
        """
        defined = self._catalog.defs.get(key)
        if (  # the common case, checked in place: an exact key, plain counts that fit the model
            defined is not None
            and timeout is None
            and type(input_tokens) is int
            and type(max_output_tokens) is int
            and 0 <= input_tokens <= MAX_INT
            and 0 <= max_output_tokens <= MAX_INT
        ):
            model = defined.model
            window, most = model.context_window, model.max_tokens
            if (window is None or input_tokens <= window) and (most is None or max_output_tokens <= most):
                hold = self._queue.acquire(key, input_tokens, max_output_tokens, model.cost, wait=wait, timeout=None)
                return Reservation(self, hold, input_tokens, max_output_tokens)
        inp, out, timeout = acquire_args(input_tokens, max_output_tokens, timeout)
        key, model = self._checked_request(key, inp, out)
        hold = self._queue.acquire(key, inp, out, model.cost, wait=wait, timeout=timeout)
        return Reservation(self, hold, inp, out)

    async def acquire_async(
        self,
        key: str,
        input_tokens: int,
        max_output_tokens: int = 0,
        *,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Reservation:
        """:meth:`acquire` for event loops: waiting awaits instead of blocking the loop (same queue, same order).

        .. versionchanged:: 0.2.0
           As for :meth:`acquire`: a request over the context window or ``maxTokens`` is refused (or warned
           about), and ``timeout`` also bounds real time.
        """
        inp, out, timeout = acquire_args(input_tokens, max_output_tokens, timeout)
        key, model = self._checked_request(key, inp, out)
        hold = await self._queue.acquire_async(key, inp, out, model.cost, wait=wait, timeout=timeout)
        return Reservation(self, hold, inp, out)

    def _settle_reservation(
        self,
        reservation: Reservation,
        input_tokens: int | None,
        output_tokens: int,
        success: bool,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
        service_tier: str | None = None,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal:
        inp = reservation.input_tokens if input_tokens is None else input_tokens
        if (  # the common case, checked in place: plain counts, no cache or service tier
            type(inp) is int
            and type(output_tokens) is int
            and 0 <= inp <= MAX_INT
            and 0 <= output_tokens <= MAX_INT
            and (success is True or success is False)
            and not (cached_input_tokens or cache_write_tokens or cache_write_1h_tokens or service_tier is not None)
        ):
            usage = RequestUsage(inp, output_tokens, success)
        else:
            usage = usage_args(
                inp,
                output_tokens,
                success,
                cached_input_tokens,
                cache_write_tokens,
                service_tier,
                cache_write_1h_tokens,
            )
        hold = reservation._hold
        state = hold.state
        if state == "committed" and reservation.cost is not None:
            return reservation.cost  # committed before: idempotent
        # At the prices the reservation was admitted (and its budget holds sized) at; may raise (unpriced): the
        # reservation then stays open.
        cost = price(hold.key, hold.cost, usage) if state != "cancelled" else _ZERO
        recorded = self._store.settle(hold, usage, cost)
        if recorded is None:  # settled before: by another thread, or by an earlier send of this commit (its id)
            if reservation.cost is None:
                reservation.cost = cost
            return reservation.cost
        reservation.cost = cost
        if self._sync.journal is not None:
            self._journal_settled(reservation, usage, cost, recorded)
        self._emit_usage(reservation.key, usage, cost, recorded)
        return cost

    def _journal_settled(
        self, reservation: Reservation, usage: RequestUsage, cost: Decimal, recorded: Recorded
    ) -> None:
        # _journal_or_undo for a reservation just settled: when the append fails, nothing was recorded and the
        # reservation is given back (its windows keep the request), and the call raises.
        try:
            self._journal_or_undo(reservation.key, usage, cost, recorded)
        except PersistenceError:
            reservation.cost = None
            self._store.void(reservation._hold)
            raise

    def _release_reservation(self, reservation: Reservation, failed: bool = False) -> None:
        recorded = self._store.release(reservation._hold, failed=failed)
        if recorded is None:
            return
        usage = RequestUsage(0, 0, False)
        reservation.cost = Decimal(0)
        if self._sync.journal is not None:
            self._journal_settled(reservation, usage, Decimal(0), recorded)
        self._emit_usage(reservation.key, usage, Decimal(0), recorded)

    def update_rate_limits_from_headers(self, key: str, headers: Mapping[str, str]) -> ProviderLimits:
        """Tighten the local windows of ``key`` to what the provider reported in a response's headers.

        Reads OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, Anthropic's
        ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`` and
        ``retry-after``. When the provider reports less remaining than the local window, the window counts the
        difference until the provider's reset; a limit the model does not configure is learned from the header.
        After a ``retry-after`` nothing is admitted until then. Returns what was read.

        A value that cannot be read (a malformed ``retry-after``, a non-numeric remaining count) is skipped with a
        :class:`RateLimitHeaderWarning` naming the header, and the rest is applied: a provider's odd header never
        fails the caller's request. Raises :class:`ModelNotFoundError` for an unknown key.

        .. versionchanged:: 0.2.0
           A value that cannot be read is skipped with a :class:`RateLimitHeaderWarning` and the rest applied
           (it raised before).
        """
        now = self._now()
        report, problems = read_rate_limit_headers(headers, now)
        for problem in problems:
            warnings.warn(f"{key}: {problem}; ignored", RateLimitHeaderWarning, stacklevel=2)
        key, _ = self._model(key)
        self._store.apply_report(key, report, now)
        return report

    def effective_rate_limit(self, key: str) -> RateLimitConfig | None:
        """The limits ``acquire`` and ``check_rate_limit`` enforce on ``key`` now: the configured ``rate_limit``
        plus every limit learned from the provider's headers (:meth:`update_rate_limits_from_headers`) for a kind
        the configuration leaves unset. ``None`` when there are none. ``get_model(key).rate_limit`` stays the
        definition as configured. Raises :class:`ModelNotFoundError` for an unknown key.

        .. versionadded:: 0.2.0
        """
        key, model = self._model(key)
        learned = self._store.learned_limits(key)
        configured = model.rate_limit
        if not learned:
            return None if configured is None else shallow_copy(configured)
        fields = configured.model_dump(by_alias=False, exclude_unset=True) if configured is not None else {}
        fields.update(learned)
        return validate_or_raise(RateLimitConfig, fields, f"effective rate limit of {key!r}")


def price(key: str, cost: ModelCost | None, usage: RequestUsage) -> Decimal:
    """The exact cost of ``usage`` at ``cost`` (see :func:`noa_ai_provider.cost.request_cost`); a model without a
    price raises :class:`UnpricedModelError` (never $0)."""
    if cost is None:
        raise UnpricedModelError(f"{key} has no price (cost is null); set one to record or estimate its cost")
    return request_cost(
        cost,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_write_tokens - usage.cache_write_1h_tokens,
        usage.service_tier,
        usage.cache_write_1h_tokens,
    )
