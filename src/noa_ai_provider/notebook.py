"""Notebook helpers behind the ``notebook`` extra: pandas DataFrames of the catalogue and of the usage history, and
matplotlib figures of costs. The registry's :meth:`~EnhancedModelRegistry.to_dataframe`,
:meth:`~EnhancedModelRegistry.usage_dataframe` and :meth:`~EnhancedModelRegistry.plot_costs` call these with
plain data (entries, history rows); nothing here knows the registry.

pandas and matplotlib are imported inside the functions that use them, so importing the package never imports
them. Conventions of every frame: snake_case columns; money as ``float64`` by default (what ``DataFrame.plot``
and ``describe`` need) or, with ``exact=True``, as :class:`~decimal.Decimal` values (``object`` dtype) whose sums
are exact; token and request counts as ``int64``; a limit or price a model does not state as a missing value
(``NaN`` / ``<NA>``, or ``None`` with ``exact=True``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from .errors import InvalidUsageError
from .schemas import EnhancedModelRegistryEntry, UsageHistoryEntry

__all__ = ["MODEL_COLUMNS", "USAGE_COLUMNS", "cost_figure", "models_frame", "usage_frame"]

_EXTRA = "pip install 'noa-ai-provider[notebook]'"

_PRICES = (
    ("input_per_1m", "input_tokens"),
    ("output_per_1m", "output_tokens"),
    ("cached_input_per_1m", "cached_input_tokens"),
    ("cache_write_per_1m", "cache_write_tokens"),
    ("cache_write_1h_per_1m", "cache_write_1h_tokens"),
)
_LIMITS = (
    "requests_per_minute",
    "tokens_per_minute",
    "input_tokens_per_minute",
    "output_tokens_per_minute",
    "requests_per_day",
    "tokens_per_day",
)
_COUNTS = (
    "requests",
    "successful_requests",
    "failed_requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
)

MODEL_COLUMNS = (
    "provider",
    "name",
    "version",
    "status",
    "context_window",
    "max_tokens",
    "currency",
    *(name for name, _ in _PRICES),
    *_LIMITS,
    *_COUNTS,
    "cost",
)
"""The columns of :meth:`~EnhancedModelRegistry.to_dataframe`, in order (the index is ``key``).

.. versionadded:: 0.2.0
"""

USAGE_COLUMNS = (
    "date",
    "key",
    "provider",
    "currency",
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cost",
)
"""The columns of :meth:`~EnhancedModelRegistry.usage_dataframe` with ``by="day"``, in order (``by="provider"``
has no ``key``; ``by="model"`` has no ``date``).

.. versionadded:: 0.2.0
"""

BY_VALUES = ("day", "provider", "model")


def _pandas() -> Any:
    try:
        import pandas  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(f"DataFrames need pandas: {_EXTRA}") from exc
    return pandas


def _money(values: list[Decimal | None], exact: bool, pd: Any) -> Any:
    if exact:
        return pd.Series(values, dtype=object)
    return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")


def _per_million(price: Decimal | None, per: int) -> Decimal | None:
    return None if price is None else price * 1_000_000 / per


def models_frame(entries: Sequence[EnhancedModelRegistryEntry], *, exact: bool = False) -> Any:
    """One row per model, indexed by key: see :data:`MODEL_COLUMNS`.

    .. versionadded:: 0.2.0
    """
    pd = _pandas()
    columns: dict[str, Any] = {}
    columns["provider"] = pd.Series([str(e.provider) for e in entries], dtype=object)
    columns["name"] = pd.Series([e.name for e in entries], dtype=object)
    columns["version"] = pd.Series([e.version for e in entries], dtype=object)
    columns["status"] = pd.Series([e.status.value for e in entries], dtype=object)
    columns["context_window"] = pd.Series([e.context_window for e in entries], dtype="Int64")
    columns["max_tokens"] = pd.Series([e.max_tokens for e in entries], dtype="Int64")
    columns["currency"] = pd.Series(
        [e.cost.currency if e.cost else e.usage_stats.currency for e in entries], dtype=object
    )
    for name, field in _PRICES:
        values = [_per_million(getattr(e.cost, field), e.cost.per) if e.cost else None for e in entries]
        columns[name] = _money(values, exact, pd)
    for name in _LIMITS:
        columns[name] = pd.Series(
            [getattr(e.rate_limit, name) if e.rate_limit else None for e in entries], dtype="Int64"
        )
    usage = [e.usage_stats for e in entries]
    counts = {
        "requests": [u.request_count for u in usage],
        "successful_requests": [u.successful_requests for u in usage],
        "failed_requests": [u.failed_requests for u in usage],
        "input_tokens": [u.total_input_tokens for u in usage],
        "output_tokens": [u.total_output_tokens for u in usage],
        "cached_input_tokens": [u.total_cached_input_tokens for u in usage],
        "cache_write_tokens": [u.total_cache_write_tokens for u in usage],
    }
    for name, numbers in counts.items():
        columns[name] = pd.Series(numbers, dtype="int64")
    columns["cost"] = _money([u.total_cost for u in usage], exact, pd)
    frame = pd.DataFrame(columns)
    frame.index = pd.Index([e.key for e in entries], name="key", dtype=object)
    return frame[list(MODEL_COLUMNS)]


def usage_frame(
    history: Iterable[UsageHistoryEntry],
    providers: Mapping[str, str],
    currencies: Mapping[str, str],
    *,
    by: str = "day",
    exact: bool = False,
) -> Any:
    """The usage history as a frame: ``by="day"`` one row per model per day (:data:`USAGE_COLUMNS`),
    ``by="provider"`` one row per provider (and currency) per day, ``by="model"`` one row per model over the
    whole period. Rows sorted by date, then key or provider; a default integer index.

    .. versionadded:: 0.2.0
    """
    pd = _pandas()
    rows = [
        {
            "date": e.date,
            "key": e.key,
            "provider": providers.get(e.key, ""),
            "currency": currencies.get(e.key, "USD"),
            "requests": e.requests,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "cached_input_tokens": e.cached_input_tokens,
            "cache_write_tokens": e.cache_write_tokens,
            "cost": e.cost,
        }
        for e in history
    ]
    columns: tuple[str, ...]
    if by == "day":
        group: tuple[str, ...] = ()
        columns = USAGE_COLUMNS
    elif by == "provider":
        group = ("date", "provider", "currency")
        columns = tuple(c for c in USAGE_COLUMNS if c != "key")
    else:
        group = ("key", "provider", "currency")
        columns = tuple(c for c in USAGE_COLUMNS if c != "date")
    if group:  # summed here, in Decimal: pandas would sum object columns in float only by accident
        summed: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            ident = tuple(row[g] for g in group)
            into = summed.get(ident)
            if into is None:
                summed[ident] = {c: row[c] for c in columns}
            else:
                for name in (
                    "requests",
                    "input_tokens",
                    "output_tokens",
                    "cached_input_tokens",
                    "cache_write_tokens",
                    "cost",
                ):
                    into[name] += row[name]
        rows = list(summed.values())
    order = ("date", "key") if by == "day" else ("date", "provider") if by == "provider" else ("key",)
    rows.sort(key=lambda r: tuple(r[o] for o in order))
    data: dict[str, Any] = {}
    for name in columns:
        values: list[Any] = [r[name] for r in rows]
        if name == "date":
            data[name] = (
                pd.Series(pd.to_datetime(values), dtype="datetime64[ns]")
                if values
                else pd.Series([], dtype="datetime64[ns]")
            )
        elif name == "cost":
            data[name] = _money(values, exact, pd)
        elif name in ("key", "provider", "currency"):
            data[name] = pd.Series(values, dtype=object)
        else:
            data[name] = pd.Series(values, dtype="int64")
    return pd.DataFrame(data, columns=list(columns))


def cost_figure(
    totals: Sequence[tuple[str, Decimal]],
    daily: Sequence[tuple[date, str, Decimal]] | None,
    *,
    by: str,
    top: int,
    currency: str,
    ax: Any = None,
) -> Any:
    """A matplotlib :class:`~matplotlib.figure.Figure` of costs.

    ``totals`` are ``(label, cost)`` pairs (by model or provider): a horizontal bar chart of the ``top`` dearest,
    the rest summed as "other". ``daily`` (``by="day"``) are ``(day, model, cost)`` triples: one stacked bar per
    day, one colour per model among the ``top`` dearest over the period, the rest stacked as "other". Drawn on
    ``ax`` when given (its root figure is returned), else on a new figure made without pyplot (no global state).
    Raises :class:`InvalidUsageError` when ``ax`` is not a matplotlib ``Axes``.

    .. versionadded:: 0.2.0
    """
    try:
        from matplotlib.axes import Axes
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plots need matplotlib: {_EXTRA}") from exc
    if ax is not None and not isinstance(ax, Axes):
        raise InvalidUsageError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    if ax is None:
        figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
        ax = figure.subplots()
    else:
        parent = ax.figure
        figure = parent if isinstance(parent, Figure) else parent.figure  # an Axes of a SubFigure: its root Figure
    unit = f"Cost ({currency})"
    if by == "day":
        assert daily is not None
        overall: dict[str, Decimal] = {}
        for _, model, cost in daily:
            overall[model] = overall.get(model, Decimal(0)) + cost
        priced = [(m, c) for m, c in overall.items() if c]  # a model that cost nothing draws nothing
        kept = [m for m, _ in sorted(priced, key=lambda item: (-item[1], item[0]))[:top]]
        days = sorted({d for d, _, _ in daily})
        series: dict[str, dict[date, Decimal]] = {m: {} for m in kept}
        other: dict[date, Decimal] = {}
        for day, model, cost in daily:
            if not overall[model]:
                continue
            into = series.get(model, other)
            into[day] = into.get(day, Decimal(0)) + cost
        if any(other.values()):
            series["other"] = other
        positions = list(range(len(days)))
        bottom = [0.0] * len(days)
        for model, by_day in series.items():
            heights = [float(by_day.get(d, 0)) for d in days]
            ax.bar(positions, heights, bottom=bottom, label=model)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(positions, [d.isoformat() for d in days], rotation=45, ha="right")
        ax.set_xlabel("Day (UTC)")
        ax.set_ylabel(unit)
        ax.set_title(f"Cost per day by model, {currency}")
        if series:
            ax.legend(title="model", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if not days:
            ax.text(0.5, 0.5, "no usage recorded", ha="center", va="center", transform=ax.transAxes)
        return figure
    ranked = sorted(totals, key=lambda item: (-item[1], item[0]))
    shown = list(ranked[:top])
    rest = sum((cost for _, cost in ranked[top:]), Decimal(0))
    if rest:  # a provider may be called "other": the rest then gets a label no bar has
        label = "other" if all(name != "other" for name, _ in shown) else "(other)"
        shown.append((label, rest))
    labels = [label for label, _ in reversed(shown)]  # the dearest on top
    ax.barh(labels, [float(cost) for _, cost in reversed(shown)])
    ax.set_xlabel(unit)
    ax.set_ylabel("model" if by == "model" else "provider")
    ax.set_title(f"Cost by {'model' if by == 'model' else 'provider'}, {currency}")
    if not shown:
        ax.text(0.5, 0.5, "no usage recorded", ha="center", va="center", transform=ax.transAxes)
    return figure


def check_by(by: object, allowed: Sequence[str], name: str = "by") -> str:
    """``by`` when it is one of ``allowed``, else :class:`InvalidUsageError` naming them."""
    if not isinstance(by, str) or by not in allowed:
        raise InvalidUsageError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {by!r}")
    return by
