"""The registry's reads and bookkeeping over the catalogue and the store: listing, versions, search and ranking,
statistics, performance metrics, budgets and usage history. A part of
:class:`~noa_ai_provider.registry.EnhancedModelRegistry` (a mixin), kept apart so the front door stays small.

Each method holds the catalogue's lock (and, through the store's own methods, the store's) only to capture;
entries are built outside, and events are emitted after both are released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from .budget import PERIODS
from .catalog import Catalog, Defined, make_entry
from .checks import decimal_arg
from .errors import AmbiguousModelError, ConfigError, InvalidUsageError, ModelNotFoundError
from .events import EventBus
from .schemas import (
    BudgetStatus,
    EnhancedModelRegistryEntry,
    EnhancedModelSearchQuery,
    EnhancedRegistryStatistics,
    ModelCapability,
    ModelPerformanceMetrics,
    UsageHistory,
    field_names,
    merge_arguments,
    utc_from_timestamp,
    validate_or_raise,
)
from .search import matches, performance_score, top
from .stores.base import Store
from .versions import compare_versions as _compare_versions
from .versions import parse_version

__all__ = ["Queries"]

_METRIC_BY_NAME = field_names(ModelPerformanceMetrics)


class Queries:
    """Reads and bookkeeping of :class:`~noa_ai_provider.registry.EnhancedModelRegistry`."""

    _catalog: Catalog
    _store: Store
    _events: EventBus
    _now: Callable[[], float]

    def _entries(self, chosen: Iterable[tuple[str, Defined]]) -> list[EnhancedModelRegistryEntry]:
        # Under the catalogue's lock, capture; build outside. `chosen` is evaluated under the lock.
        with self._catalog.lock:
            picked = [(key, d.model, d.registered_at, d.updated_at) for key, d in chosen]
            live = self._store.live((p[0] for p in picked), self._catalog.currencies(p[0] for p in picked))
        return [
            make_entry(key, model, registered, updated, lv.last_accessed, lv.access_count, lv.usage, lv.metrics)
            for key, model, registered, updated in picked
            if (lv := live.get(key)) is not None
        ]

    def list_models(self) -> list[EnhancedModelRegistryEntry]:
        """Every entry, in registration order. Records no access."""
        return self._entries(_Items(self._catalog))

    # ------------------------------------------------------------------ versions

    def compare_versions(self, version1: str, version2: str) -> int:
        """1, 0 or -1 as ``version1`` is above, equal to or below ``version2``; invalid: InvalidVersionError."""
        return _compare_versions(version1, version2)

    def get_models_by_version_range(self, min_version: str, max_version: str) -> list[EnhancedModelRegistryEntry]:
        """Models whose version lies in ``[min_version, max_version]``, in registration order."""
        low, high = parse_version(min_version), parse_version(max_version)
        return self._entries(_Items(self._catalog, lambda d: low <= parse_version(d.model.version) <= high))

    # ------------------------------------------------------------------ search and ranking

    def search_models(
        self,
        query: EnhancedModelSearchQuery | Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> list[EnhancedModelRegistryEntry]:
        """Models matching every given filter, in registration order.

        ``query`` is an :class:`EnhancedModelSearchQuery` or a dict (either spelling); keyword ``filters`` are its
        fields and override it. An unknown filter or invalid value raises :class:`ConfigError`.
        """
        data = merge_arguments("query", query, EnhancedModelSearchQuery, filters)
        checked = validate_or_raise(EnhancedModelSearchQuery, data, "search query")
        return self._entries(_Items(self._catalog, lambda d: matches(checked, d.model)))

    def get_models_by_provider(self, provider: str) -> list[EnhancedModelRegistryEntry]:
        """Models of ``provider``, in registration order."""
        return self.search_models(provider=provider)

    def get_models_by_capability(self, capability: ModelCapability | str) -> list[EnhancedModelRegistryEntry]:
        """Models with ``capability``; an unknown capability raises :class:`ConfigError`."""
        return self.search_models(capability=capability)

    def get_most_cost_effective_models(self, limit: int | None = None) -> list[EnhancedModelRegistryEntry]:
        """Models by ascending cost per token ``(input + output) / (2 * per)``; ties keep registration order."""
        with self._catalog.lock:
            ranked = top(self._catalog.defs.items(), lambda item: item[1].rank_cost, limit, descending=False)
        return self._entries(ranked)

    def get_top_performing_models(self, limit: int | None = None) -> list[EnhancedModelRegistryEntry]:
        """Models with performance metrics, by descending seed score (see :func:`search.performance_score`)."""
        with self._catalog.lock:
            defs = self._catalog.defs
            live = self._store.live(defs, self._catalog.currencies())
            scored = [(k, defs[k], lv.metrics) for k, lv in live.items() if lv.metrics is not None]
            ranked = top(scored, lambda item: performance_score(item[2]), limit, descending=True)
        return self._entries((k, d) for k, d, _ in ranked)

    def get_most_used_models(self, limit: int | None = None) -> list[EnhancedModelRegistryEntry]:
        """Models by descending request count; ties keep registration order."""
        with self._catalog.lock:
            totals = self._store.usage_totals()
            items = [(k, d) for k, d in self._catalog.defs.items() if k in totals]
            ranked = top(items, lambda item: totals[item[0]][2], limit, descending=True)
        return self._entries(ranked)

    # ------------------------------------------------------------------ statistics and performance

    def get_statistics(self) -> EnhancedRegistryStatistics:
        """Counts by provider, capability and status, accesses, and cost and token totals."""
        providers: dict[str, int] = {}
        capabilities: dict[str, int] = {}
        statuses: dict[str, int] = {}
        by_currency: dict[str, Decimal] = {}
        tokens_in = tokens_out = requests = 0
        total = Decimal(0)
        with self._catalog.lock:
            defs = self._catalog.defs
            totals = self._store.usage_totals()
            accesses = 0
            retired_cost, *retired_counts = self._store.retired()
            count = len(defs)
            for key, defined in defs.items():
                model = defined.model
                provider = str(model.provider)
                providers[provider] = providers.get(provider, 0) + 1
                # _value_ is a plain attribute; .value goes through the enum's descriptor (3x slower here).
                for capability in model.capabilities:
                    capabilities[capability._value_] = capabilities.get(capability._value_, 0) + 1
                status = model.status._value_
                statuses[status] = statuses.get(status, 0) + 1
                used = totals.get(key)
                if used is None:
                    continue
                accesses += used[4]
                tokens_in += used[0]
                tokens_out += used[1]
                requests += used[2]
                total += used[3]
                currency = "USD" if model.cost is None else model.cost.currency
                by_currency[currency] = by_currency.get(currency, Decimal(0)) + used[3]
        for currency, cost in retired_cost.items():
            total += cost
            by_currency[currency] = by_currency.get(currency, Decimal(0)) + cost
        return EnhancedRegistryStatistics.model_construct(
            total_models=count,
            provider_counts=providers,
            capability_counts=capabilities,
            status_counts=statuses,
            total_accesses=accesses,
            average_access_count=accesses / count if count else 0.0,
            total_cost=total,
            total_input_tokens=tokens_in + retired_counts[0],
            total_output_tokens=tokens_out + retired_counts[1],
            total_requests=requests + retired_counts[2],
            cost_by_currency=by_currency,
        )

    def update_performance_metrics(
        self,
        key: str,
        metrics: ModelPerformanceMetrics | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Update some of ``average_latency``, ``tokens_per_second``, ``total_inferences``, ``success_rate``
        (0..1) and ``memory_usage``; fields not given keep their value (0 the first time).

        Raises :class:`ModelNotFoundError` for an unknown key and :class:`ConfigError` for an unknown field or
        invalid value, changing nothing.
        """
        given = merge_arguments("metrics", metrics, ModelPerformanceMetrics, fields)
        updates: dict[str, Any] = {}
        for name, value in given.items():
            field = _METRIC_BY_NAME.get(name)
            if field is None or field == "last_updated":
                raise ConfigError(f"performance metrics of {key!r}: {name}: unknown field")
            updates[field] = value
        with self._catalog.lock:
            key, _ = self._catalog.lookup(key)
            current = self._store.metrics(key)
            base = current.model_dump(by_alias=False) if current is not None else {}
            merged = base | updates | {"last_updated": utc_from_timestamp(self._now())}
            self._store.set_metrics(
                key, validate_or_raise(ModelPerformanceMetrics, merged, f"performance metrics of {key!r}")
            )

    # ------------------------------------------------------------------ budgets and history

    def set_budget(
        self,
        amount: Decimal | int | float | str,
        *,
        period: str = "month",
        key: str | None = None,
        warn_at: Decimal | float | str = Decimal("0.8"),
    ) -> None:
        """Set (or replace) the budget of ``key`` (``None``: every model together) for ``period``: ``"day"``,
        ``"week"``, ``"month"`` (UTC calendar periods; weeks start on Monday) or ``"total"``.

        What was already recorded in the current period (from the daily usage history) counts at once.
        ``budget-warning`` is emitted when spend reaches ``warn_at * amount``, ``budget-exceeded`` when it passes
        ``amount`` (each once per period). :meth:`acquire` reserves the worst case of a request against every
        budget that applies and raises :class:`BudgetExceededError` when it could cross one. Raises
        :class:`ConfigError` for a bad amount, period or threshold, and :class:`ModelNotFoundError` for an
        unknown key.
        """
        limit = decimal_arg("amount", amount)
        threshold = decimal_arg("warn_at", warn_at)
        if threshold > 1:
            raise ConfigError(f"warn_at must be between 0 and 1, got {threshold}")
        if period not in PERIODS:
            raise ConfigError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
        with self._catalog.lock:
            if key is not None:
                key = self._catalog.resolve(key)
            self._store.set_budget(limit, period, key, threshold, self._now())

    def remove_budget(self, *, period: str = "month", key: str | None = None) -> bool:
        """Remove a budget; ``True`` when there was one. ``key`` is resolved like :meth:`set_budget`'s (an alias
        or provider spelling finds the budget set under the model's key); a key no longer registered is taken as
        written, so a removed model's budget can still be removed. An ambiguous name raises
        :class:`AmbiguousModelError`.

        .. versionchanged:: 0.2.0 resolves the key like set_budget: an alias or another spelling finds the budget
        """
        if key is not None:
            with self._catalog.lock:
                try:
                    key = self._catalog.resolve(key)
                except AmbiguousModelError:
                    raise
                except ModelNotFoundError:
                    pass  # not registered (any more): the budget may still be stored under the key as written
        return self._store.remove_budget(period, key)

    def get_budget_status(self) -> list[BudgetStatus]:
        """Every budget: spend and reservations in its current period, the limit and the period's end."""
        return self._store.budget_status(self._now())

    def get_usage_history(self, key: str | None = None, *, since: date | datetime | str | None = None) -> UsageHistory:
        """Per model and UTC day: tokens, requests and cost, oldest day first (for ``key``, or every model in
        registration order within a day). ``since`` (a date, a datetime's UTC day or an ISO date string such as
        ``"2025-06-09"``, inclusive) drops earlier days; a bad one raises :class:`InvalidUsageError`. Kept across
        save and load; at most :data:`~noa_ai_provider.cost.MAX_HISTORY_DAYS` days per model. The list is a
        :class:`~noa_ai_provider.schemas.UsageHistory`, which notebooks show as a table.

        .. versionchanged:: 0.2.0 returns a :class:`UsageHistory` (a ``list`` subclass) instead of a plain list."""
        first = _day("since", since)
        with self._catalog.lock:
            if key is not None:
                key, _ = self._catalog.lookup(key)
                return UsageHistory(self._store.history((key,), first))
            rows = self._store.history(list(self._catalog.defs), first)
        return UsageHistory(sorted(rows, key=lambda e: e.date))  # stable: registration order within a day

    # ------------------------------------------------------------------ notebooks (the notebook extra)

    def to_dataframe(self, exact: bool = False) -> Any:
        """A pandas DataFrame with one row per model, indexed by key: provider, name, version, status, context
        window, prices per 1M tokens by kind, limits, request and token counts, and cost (columns:
        :data:`noa_ai_provider.notebook.MODEL_COLUMNS`). Money is ``float64``, or exact ``Decimal`` values with
        ``exact=True``. Raises :class:`InvalidUsageError` when ``exact`` is not a bool. Needs the ``notebook`` extra
        (pandas); raises ``ImportError`` naming it otherwise.

        .. versionadded:: 0.2.0"""
        from . import notebook

        return notebook.models_frame(self.list_models(), exact=_flag("exact", exact))

    def usage_dataframe(
        self,
        since: date | datetime | str | None = None,
        until: date | datetime | str | None = None,
        by: str = "day",
        exact: bool = False,
    ) -> Any:
        """The daily usage history as a pandas DataFrame. ``by="day"``: one row per model per UTC day (date, key,
        provider, currency, requests, token counts, cost: :data:`noa_ai_provider.notebook.USAGE_COLUMNS`);
        ``by="provider"``: one row per provider per day; ``by="model"``: one row per model over the period.
        ``since`` and ``until`` (dates, inclusive) bound the days. With ``exact=True`` costs are ``Decimal`` and
        their sum over every row equals the history's exactly (and :meth:`get_statistics`'s ``total_cost`` when
        the history covers every recorded day). Raises :class:`InvalidUsageError` for a bad ``by``, a bad date,
        ``since`` after ``until`` or an ``exact`` that is not a bool; ``ImportError`` naming the extra without pandas.

        .. versionadded:: 0.2.0"""
        from . import notebook

        notebook.check_by(by, notebook.BY_VALUES)
        exact = _flag("exact", exact)
        first, last = _day("since", since), _day("until", until)
        if first is not None and last is not None and first > last:
            raise InvalidUsageError(f"since ({first}) is after until ({last})")
        rows = [e for e in self.get_usage_history(since=first) if last is None or e.date <= last]
        providers, currencies = self._labels()
        return notebook.usage_frame(rows, providers, currencies, by=by, exact=exact)

    def plot_costs(self, by: str = "model", top: int = 10, ax: Any = None, *, currency: str | None = None) -> Any:
        """A matplotlib ``Figure`` of costs: ``by="model"`` or ``"provider"``, horizontal bars of the ``top``
        dearest (the rest as "other"); ``by="day"``, one bar per day of the usage history stacked by model (the
        ``top`` dearest models, the rest as "other"). Axes carry titles, units and the currency. Drawn on ``ax``
        when given. Costs in several currencies are not added up: pass ``currency`` to plot one of them
        (otherwise :class:`InvalidUsageError` names them). Raises :class:`InvalidUsageError` for a bad ``by``,
        ``top`` < 1, an ``ax`` that is not a matplotlib ``Axes`` or a ``currency`` that is not a str; ``ImportError``
        naming the extra without matplotlib.

        .. versionadded:: 0.2.0"""
        from . import notebook

        notebook.check_by(by, ("model", "provider", "day"))
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise InvalidUsageError(f"top must be an int >= 1, got {top!r}")
        if currency is not None and not isinstance(currency, str):
            raise InvalidUsageError(f"currency must be a str or None, got {type(currency).__name__}")
        if by == "day":
            # The history, not the counters: a day stays in it after reset_usage_stats zeroes the counters.
            _, currencies = self._labels()
            history = [h for h in self.get_usage_history() if h.cost and h.key in currencies]
            currency = _one_currency(currency, {currencies[h.key] for h in history})
            daily = [(h.date, h.key, h.cost) for h in history if currencies[h.key] == currency]
            return notebook.cost_figure((), daily, by=by, top=top, currency=currency, ax=ax)
        entries = self.list_models()
        currency = _one_currency(currency, {e.usage_stats.currency for e in entries if e.usage_stats.total_cost})
        chosen = [e for e in entries if e.usage_stats.currency == currency]
        totals: dict[str, Decimal] = {}
        for entry in chosen:
            label = entry.key if by == "model" else str(entry.provider)
            totals[label] = totals.get(label, Decimal(0)) + entry.usage_stats.total_cost
        pairs = [(label, cost) for label, cost in totals.items() if cost]
        return notebook.cost_figure(pairs, None, by=by, top=top, currency=currency, ax=ax)

    def _labels(self) -> tuple[dict[str, str], dict[str, str]]:
        # Each model's provider and currency, for the history's rows.
        with self._catalog.lock:
            defs = dict(self._catalog.defs)
        providers = {k: str(d.model.provider) for k, d in defs.items()}
        currencies = {k: d.model.cost.currency if d.model.cost else "USD" for k, d in defs.items()}
        return providers, currencies

    def reset_usage_stats(self, key: str) -> None:
        """Zero the usage counters of ``key`` (not its rate-limit windows) and emit ``usage-reset``."""
        with self._catalog.lock:
            key, _ = self._catalog.lookup(key)
            self._store.reset_usage(key, self._now())
        self._events.emit(self, "usage-reset", key=key)


def _one_currency(given: str | None, used: set[str]) -> str:
    # The currency a plot shows: the one asked for, else the only one costs are in (USD when there are none).
    if given is not None:
        return given
    if len(used) > 1:
        raise InvalidUsageError(f"costs are in several currencies ({', '.join(sorted(used))}): pass currency=")
    return next(iter(used), "USD")


def _flag(name: str, value: object) -> bool:
    # A yes/no argument: a bool, not anything truthy (exact="no" must not mean exact).
    if not isinstance(value, bool):
        raise InvalidUsageError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _day(name: str, value: object) -> date | None:
    # A date argument: a date, a datetime (its UTC day), an ISO date string ("2025-06-09") or None.
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidUsageError(f"{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from None
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo is not None else value).date()
    if value is None or isinstance(value, date):
        return value
    raise InvalidUsageError(f"{name} must be a date, a datetime, an ISO date or None, got {type(value).__name__}")


class _Items:
    # The catalogue's (key, definition) pairs, optionally filtered; iterated under the lock by _entries.
    def __init__(self, catalog: Catalog, keep: Callable[[Defined], bool] | None = None) -> None:
        self._catalog = catalog
        self._keep = keep

    def __iter__(self) -> Any:
        keep = self._keep
        return iter([(k, d) for k, d in self._catalog.defs.items() if keep is None or keep(d)])
