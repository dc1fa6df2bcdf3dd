"""The notebook extra (#15), through the public API: ``to_dataframe``, ``usage_dataframe``, ``plot_costs`` and the
``_repr_html_`` views of the registry, its statistics, entries, budgets and usage history.

Money is compared exactly (``Decimal``) wherever the API gives it exactly; plots are rendered to PNG on the Agg
backend and read back."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from io import BytesIO
from typing import Any

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")  # before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.image import imread

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import InvalidUsageError
from noa_ai_provider.notebook import MODEL_COLUMNS, USAGE_COLUMNS
from noa_ai_provider.testing import FakeClock

DAY = 86_400
START = datetime(2025, 6, 2, 12, tzinfo=UTC).timestamp()  # a Monday, noon UTC
DAYS = [date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)]
GPT, SONNET, LOCAL = "openai:gpt", "claude:sonnet", "llama.cpp:local"
HOSTILE_NAME = "<script>alert(1)</script> & Co"
HOSTILE_KEY = "openai:<script>alert(2)</script>&"  # a key is provider:id, and an id may hold anything


def definition(ident: str, provider: str, cost: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident.title(), "provider": provider, "version": "1.0.0", "cost": cost, **extra}


GPT_DEF = definition(
    "gpt",
    "openai",
    {"inputTokens": "0.0025", "outputTokens": "0.01", "cachedInputTokens": "0.00125", "per": 1000},
    rateLimit={"requestsPerMinute": 500, "tokensPerMinute": 30_000},
    contextWindow=128_000,
    maxTokens=4096,
)
SONNET_DEF = definition(
    "sonnet", "claude", {"inputTokens": "3", "outputTokens": "15", "cacheWriteTokens": "3.75", "per": 1_000_000}
)
LOCAL_DEF = definition("local", "llama.cpp", {"inputTokens": "0", "outputTokens": "0", "per": 1000})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def empty(clock: FakeClock) -> Iterator[EnhancedModelRegistry]:
    with EnhancedModelRegistry(auto_save=False, clock=clock) as registry:
        yield registry


@pytest.fixture
def used(empty: EnhancedModelRegistry, clock: FakeClock) -> EnhancedModelRegistry:
    """GPT, SONNET and LOCAL (registered in that order, not alphabetical) used over three UTC days; day one also
    has a failed request recorded with ``success=False`` and one counted by ``Reservation.fail()``."""
    registry = empty
    assert registry.register_models([GPT_DEF, SONNET_DEF, LOCAL_DEF]) == [GPT, SONNET, LOCAL]
    registry.record_usage(GPT, 10, 0, success=False)
    registry.acquire(GPT, 100, 10).fail()
    for day in range(3):
        registry.record_usage(GPT, 1000 + day, 200, cached_input_tokens=100)
        registry.record_usage(SONNET, 3000, 100 * (day + 1), cache_write_tokens=1000)
        registry.record_usage(LOCAL, 50, 50)
        clock.advance(DAY)
    return registry


def gpt_cost(day: int) -> Decimal:
    # (1000 + day - 100) input at 0.0025/1000, 100 cached at 0.00125/1000, 200 output at 0.01/1000
    return (Decimal(900 + day) * Decimal("0.0025") + 100 * Decimal("0.00125") + 200 * Decimal("0.01")) / 1000


def sonnet_cost(day: int) -> Decimal:
    # 2000 input at 3/1M, 1000 cache writes at 3.75/1M, 100 * (day + 1) output at 15/1M
    return (2000 * Decimal(3) + 1000 * Decimal("3.75") + 100 * (day + 1) * Decimal(15)) / 1_000_000


FAILED_COST = 10 * Decimal("0.0025") / 1000  # a failed request's tokens are charged


# ---------------------------------------------------------------------------------------------------- to_dataframe


def test_model_frame_index_columns_and_dtypes(used: EnhancedModelRegistry) -> None:
    frame = used.to_dataframe()
    assert frame.index.name == "key"
    assert list(frame.index) == [GPT, SONNET, LOCAL]
    assert tuple(frame.columns) == MODEL_COLUMNS
    assert all(c == c.lower() and " " not in c and "-" not in c for c in frame.columns)
    money = ["input_per_1m", "output_per_1m", "cached_input_per_1m", "cache_write_per_1m", "cache_write_1h_per_1m"]
    for column in [*money, "cost"]:
        assert frame[column].dtype == "float64", column
    limits = [
        "requests_per_minute",
        "tokens_per_minute",
        "input_tokens_per_minute",
        "output_tokens_per_minute",
        "requests_per_day",
        "tokens_per_day",
    ]
    for column in [*limits, "context_window", "max_tokens"]:
        assert frame[column].dtype == "Int64", column
    counts = ["requests", "successful_requests", "failed_requests", "input_tokens", "output_tokens"]
    for column in [*counts, "cached_input_tokens", "cache_write_tokens"]:
        assert frame[column].dtype == "int64", column


def test_model_frame_missing_limits_are_na(used: EnhancedModelRegistry) -> None:
    frame = used.to_dataframe()
    assert frame.loc[GPT, "requests_per_minute"] == 500
    assert frame.loc[GPT, "tokens_per_minute"] == 30_000
    assert pd.isna(frame.loc[GPT, "requests_per_day"])
    assert frame["requests_per_minute"].isna().tolist() == [False, True, True]
    assert frame.loc[GPT, "context_window"] == 128_000
    assert pd.isna(frame.loc[SONNET, "context_window"])
    assert frame.loc[GPT, "max_tokens"] == 4096


def test_model_frame_descriptive_columns(used: EnhancedModelRegistry) -> None:
    frame = used.to_dataframe()
    assert frame["provider"].tolist() == ["openai", "claude", "llama.cpp"]
    assert frame["name"].tolist() == ["Gpt", "Sonnet", "Local"]
    assert frame["version"].tolist() == ["1.0.0"] * 3
    assert frame["status"].tolist() == ["available"] * 3
    assert frame["currency"].tolist() == ["USD"] * 3


def test_model_frame_prices_per_million_exact(used: EnhancedModelRegistry) -> None:
    exact = used.to_dataframe(exact=True)
    assert exact.loc[GPT, "input_per_1m"] == Decimal("2.5")  # 0.0025 per 1,000 tokens
    assert exact.loc[GPT, "output_per_1m"] == Decimal(10)
    assert exact.loc[GPT, "cached_input_per_1m"] == Decimal("1.25")
    assert exact.loc[SONNET, "input_per_1m"] == Decimal(3)  # already per 1M
    assert exact.loc[SONNET, "cache_write_per_1m"] == Decimal("3.75")
    assert exact.loc[LOCAL, "output_per_1m"] == Decimal(0)
    for column in ("input_per_1m", "cost"):
        assert exact[column].dtype == object
    assert all(isinstance(v, Decimal) for v in exact.loc[GPT, ["input_per_1m", "output_per_1m", "cost"]])
    assert exact.loc[SONNET, "cached_input_per_1m"] is None  # not stated: missing, not the input price
    floats = used.to_dataframe()
    assert floats.loc[GPT, "input_per_1m"] == 2.5
    assert floats.loc[GPT, "cached_input_per_1m"] == 1.25
    assert pd.isna(floats.loc[SONNET, "cached_input_per_1m"])
    assert pd.isna(floats.loc[GPT, "cache_write_per_1m"])


def test_model_frame_prices_of_an_odd_per(empty: EnhancedModelRegistry) -> None:
    empty.register_model(definition("odd", "openai", {"inputTokens": "0.0004", "outputTokens": "0.2", "per": 250}))
    exact = empty.to_dataframe(exact=True)
    assert exact.loc["openai:odd", "input_per_1m"] == Decimal("1.6")
    assert exact.loc["openai:odd", "output_per_1m"] == Decimal(800)


def test_model_frame_usage_counts_and_cost(used: EnhancedModelRegistry) -> None:
    frame = used.to_dataframe(exact=True)
    gpt = frame.loc[GPT]
    assert gpt["requests"] == 5  # 3 successful, 1 success=False, 1 Reservation.fail()
    assert gpt["successful_requests"] == 3
    assert gpt["failed_requests"] == 2
    assert gpt["input_tokens"] == 10 + 1000 + 1001 + 1002
    assert gpt["output_tokens"] == 600
    assert gpt["cached_input_tokens"] == 300
    assert gpt["cache_write_tokens"] == 0
    assert gpt["cost"] == FAILED_COST + sum(gpt_cost(d) for d in range(3))
    sonnet = frame.loc[SONNET]
    assert sonnet["cache_write_tokens"] == 3000
    assert sonnet["output_tokens"] == 600
    assert sonnet["cost"] == sum(sonnet_cost(d) for d in range(3))
    assert frame.loc[LOCAL, "cost"] == 0
    for key in (GPT, SONNET, LOCAL):
        assert frame.loc[key, "cost"] == used.get_model(key).usage_stats.total_cost  # type: ignore[union-attr]
    assert sum(frame["cost"]) == used.get_statistics().total_cost
    floats = used.to_dataframe()
    assert floats.loc[GPT, "cost"] == pytest.approx(float(gpt["cost"]))
    assert floats.loc[GPT, "requests"] == 5


def test_model_frame_of_an_unpriced_model_and_of_an_empty_registry(empty: EnhancedModelRegistry) -> None:
    frame = empty.to_dataframe()
    assert tuple(frame.columns) == MODEL_COLUMNS
    assert len(frame) == 0
    assert frame.index.name == "key"
    empty.register_model(definition("free", "mistral", None))
    frame = empty.to_dataframe(exact=True)
    assert frame.loc["mistral:free", "input_per_1m"] is None
    assert frame.loc["mistral:free", "currency"] == "USD"
    assert empty.to_dataframe()[list(MODEL_COLUMNS[7:12])].isna().all(axis=None)


def test_model_frame_plots(used: EnhancedModelRegistry) -> None:
    # What the user hit with Decimal columns: "no numeric data to plot".
    ax = used.to_dataframe().plot(y="cost", kind="bar")
    try:
        assert isinstance(ax, plt.Axes)
    finally:
        plt.close(ax.figure)


# ------------------------------------------------------------------------------------------------ usage_dataframe


def test_usage_frame_by_day_rows_sorted_by_date_then_key(used: EnhancedModelRegistry) -> None:
    frame = used.usage_dataframe()
    assert tuple(frame.columns) == USAGE_COLUMNS
    assert list(frame.index) == list(range(9))
    rows = [(d.date(), k) for d, k in zip(frame["date"], frame["key"], strict=True)]
    assert rows == [(d, k) for d in DAYS for k in sorted([GPT, SONNET, LOCAL])]
    assert frame["cost"].dtype == "float64"
    assert str(frame["date"].dtype).startswith("datetime64")
    for column in ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"):
        assert frame[column].dtype == "int64", column
    first = frame[(frame["key"] == GPT)].iloc[0]
    assert first["provider"] == "openai"
    assert first["currency"] == "USD"
    assert first["requests"] == 3  # both failures and a success, all on the first day
    assert first["cached_input_tokens"] == 100
    assert first["input_tokens"] == 1010


def test_usage_frame_exact_sums_equal_the_statistics(used: EnhancedModelRegistry) -> None:
    frame = used.usage_dataframe(exact=True)
    stats = used.get_statistics()
    assert frame["cost"].dtype == object
    assert all(isinstance(v, Decimal) for v in frame["cost"])
    assert sum(frame["cost"]) == stats.total_cost
    assert sum(frame["cost"]) == FAILED_COST + sum(gpt_cost(d) + sonnet_cost(d) for d in range(3))
    assert int(frame["input_tokens"].sum()) == stats.total_input_tokens
    assert int(frame["output_tokens"].sum()) == stats.total_output_tokens
    assert int(frame["requests"].sum()) == stats.total_requests
    assert int(frame["cached_input_tokens"].sum()) == 300
    assert int(frame["cache_write_tokens"].sum()) == 3000
    sonnet = frame[frame["key"] == SONNET]
    assert sonnet["cost"].tolist() == [sonnet_cost(d) for d in range(3)]
    assert sonnet["output_tokens"].tolist() == [100, 200, 300]


@pytest.mark.parametrize(
    ("since", "until", "days"),
    [
        (date(2025, 6, 3), None, DAYS[1:]),
        (None, date(2025, 6, 3), DAYS[:2]),
        (date(2025, 6, 3), date(2025, 6, 3), DAYS[1:2]),
        ("2025-06-04", "2025-06-04", DAYS[2:]),
        (datetime(2025, 6, 3, 23, 59, tzinfo=UTC), None, DAYS[1:]),  # a datetime stands for its whole UTC day
        (None, datetime(2025, 6, 3, 0, 0, tzinfo=UTC), DAYS[:2]),
        (datetime(2025, 6, 4, 1, 0, tzinfo=timezone(timedelta(hours=2))), None, DAYS[1:]),  # 3 June 23:00 UTC
        (date(2025, 6, 5), None, []),
        (None, date(2025, 6, 1), []),
    ],
)
def test_usage_frame_since_until_inclusive(
    used: EnhancedModelRegistry, since: Any, until: Any, days: list[date]
) -> None:
    frame = used.usage_dataframe(since=since, until=until, exact=True)
    assert sorted({d.date() for d in frame["date"]}) == days
    assert len(frame) == 3 * len(days)
    assert tuple(frame.columns) == USAGE_COLUMNS
    expected = sum((gpt_cost(DAYS.index(d)) + sonnet_cost(DAYS.index(d)) for d in days), Decimal(0))
    if DAYS[0] in days:
        expected += FAILED_COST
    assert sum(frame["cost"], Decimal(0)) == expected


def test_usage_frame_by_provider(used: EnhancedModelRegistry) -> None:
    frame = used.usage_dataframe(by="provider", exact=True)
    assert tuple(frame.columns) == tuple(c for c in USAGE_COLUMNS if c != "key")
    rows = [(d.date(), p) for d, p in zip(frame["date"], frame["provider"], strict=True)]
    assert rows == [(d, p) for d in DAYS for p in ("claude", "llama.cpp", "openai")]
    openai = frame[frame["provider"] == "openai"]
    assert openai["cost"].tolist() == [FAILED_COST + gpt_cost(0), gpt_cost(1), gpt_cost(2)]
    assert openai["requests"].tolist() == [3, 1, 1]
    assert sum(frame["cost"]) == used.get_statistics().total_cost


def test_usage_frame_by_provider_adds_the_models_of_a_provider(empty: EnhancedModelRegistry) -> None:
    empty.register_models([GPT_DEF, definition("mini", "openai", {"inputTokens": "0.001", "outputTokens": "0"})])
    empty.record_usage(GPT, 1000, 0)
    empty.record_usage("openai:mini", 3000, 0)
    frame = empty.usage_dataframe(by="provider", exact=True)
    assert len(frame) == 1
    assert frame.loc[0, "cost"] == Decimal("0.0025") + Decimal("0.003")
    assert frame.loc[0, "input_tokens"] == 4000
    assert frame.loc[0, "requests"] == 2


def test_usage_frame_by_model(used: EnhancedModelRegistry) -> None:
    frame = used.usage_dataframe(by="model", exact=True)
    assert tuple(frame.columns) == tuple(c for c in USAGE_COLUMNS if c != "date")
    assert frame["key"].tolist() == sorted([GPT, SONNET, LOCAL])
    for _, row in frame.iterrows():
        stats = used.get_model(row["key"]).usage_stats  # type: ignore[union-attr]
        assert row["cost"] == stats.total_cost
        assert row["requests"] == stats.request_count
        assert row["input_tokens"] == stats.total_input_tokens
        assert row["output_tokens"] == stats.total_output_tokens
        assert row["cached_input_tokens"] == stats.total_cached_input_tokens
        assert row["cache_write_tokens"] == stats.total_cache_write_tokens
    later = used.usage_dataframe(by="model", since=date(2025, 6, 4), exact=True)
    assert later.set_index("key")["cost"].to_dict() == {GPT: gpt_cost(2), SONNET: sonnet_cost(2), LOCAL: 0}
    assert used.usage_dataframe(by="model")["cost"].dtype == "float64"


@pytest.mark.parametrize("by", ["day", "provider", "model"])
def test_usage_frame_of_an_empty_registry(empty: EnhancedModelRegistry, by: str) -> None:
    frame = empty.usage_dataframe(by=by)
    assert len(frame) == 0
    leave_out = {"day": "", "provider": "key", "model": "date"}[by]
    assert tuple(frame.columns) == tuple(c for c in USAGE_COLUMNS if c != leave_out)
    assert frame["cost"].dtype == "float64"


def test_usage_frame_of_models_never_used_is_empty(empty: EnhancedModelRegistry) -> None:
    empty.register_models([GPT_DEF, SONNET_DEF])
    frame = empty.usage_dataframe(exact=True)
    assert len(frame) == 0
    assert tuple(frame.columns) == USAGE_COLUMNS


@pytest.mark.parametrize("by", ["week", "Day", "", None, 1])
def test_usage_frame_bad_by_names_the_argument(used: EnhancedModelRegistry, by: Any) -> None:
    with pytest.raises(InvalidUsageError, match="by"):
        used.usage_dataframe(by=by)


@pytest.mark.parametrize(
    ("since", "until"),
    [(date(2025, 6, 4), date(2025, 6, 3)), ("2025-06-04", datetime(2025, 6, 3, 23, 59, tzinfo=UTC))],
)
def test_usage_frame_since_after_until(used: EnhancedModelRegistry, since: Any, until: Any) -> None:
    with pytest.raises(InvalidUsageError, match="since") as caught:
        used.usage_dataframe(since=since, until=until)
    assert "until" in str(caught.value)


@pytest.mark.parametrize("argument", ["since", "until"])
def test_usage_frame_bad_date_names_the_argument(used: EnhancedModelRegistry, argument: str) -> None:
    with pytest.raises(InvalidUsageError, match=argument):
        used.usage_dataframe(**{argument: "June the 3rd"})
    with pytest.raises(InvalidUsageError, match=argument):
        used.usage_dataframe(**{argument: 20250603})


@pytest.mark.parametrize("by", ["day", "provider"])
def test_usage_frame_plots_with_pandas(used: EnhancedModelRegistry, by: str) -> None:
    frame = used.usage_dataframe(by=by)
    ax = frame.plot(x="date", y="cost")
    try:
        assert isinstance(ax, plt.Axes)
        assert len(ax.get_lines()) == 1
        assert len(ax.get_lines()[0].get_ydata()) == len(frame)
    finally:
        plt.close(ax.figure)
    pivot = frame.pivot_table(index="date", columns="key" if by == "day" else "provider", values="cost", aggfunc="sum")
    ax = pivot.plot(kind="bar", stacked=True)
    try:
        assert isinstance(ax, plt.Axes)
    finally:
        plt.close(ax.figure)


# ----------------------------------------------------------------------------------------------------- plot_costs


def png_pixels(figure: Figure) -> Any:
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    buffer.seek(0)
    return imread(buffer, format="png")


def texts(items: Any) -> list[str]:
    return [item.get_text() for item in items]


@pytest.mark.parametrize("by", ["model", "provider", "day"])
def test_plot_costs_renders_a_non_blank_figure(used: EnhancedModelRegistry, by: str) -> None:
    figure = used.plot_costs(by=by)
    assert isinstance(figure, Figure)
    pixels = png_pixels(figure)
    assert pixels.ndim == 3
    assert pixels.var() > 0
    ax = figure.axes[0]
    assert ax.get_title()
    assert "USD" in ax.get_title()
    label = ax.get_ylabel() if by == "day" else ax.get_xlabel()
    assert "Cost (USD)" in label


def test_plot_costs_by_model_labels(used: EnhancedModelRegistry) -> None:
    ax = used.plot_costs(by="model").axes[0]
    assert "model" in ax.get_title().lower()
    ticks = texts(ax.get_yticklabels())
    assert GPT in ticks
    assert SONNET in ticks
    assert "other" not in ticks
    assert len(ax.patches) == 2  # the free model costs nothing: no bar
    widths = {t: p.get_width() for t, p in zip(ticks, ax.patches, strict=True)}
    total = used.get_model(GPT).usage_stats.total_cost  # type: ignore[union-attr]
    assert widths[GPT] == pytest.approx(float(total))


def test_plot_costs_by_provider_labels(used: EnhancedModelRegistry) -> None:
    ax = used.plot_costs(by="provider").axes[0]
    assert "provider" in ax.get_title().lower()
    ticks = texts(ax.get_yticklabels())
    assert "openai" in ticks
    assert "claude" in ticks


def test_plot_costs_top_one_puts_the_rest_in_other(used: EnhancedModelRegistry) -> None:
    stats = {k: used.get_model(k).usage_stats.total_cost for k in (GPT, SONNET)}  # type: ignore[union-attr]
    dearest, cheaper = sorted(stats, key=stats.__getitem__, reverse=True)
    ax = used.plot_costs(by="model", top=1).axes[0]
    ticks = texts(ax.get_yticklabels())
    assert dearest in ticks
    assert "other" in ticks
    assert cheaper not in ticks
    widths = {t: p.get_width() for t, p in zip(ticks, ax.patches, strict=True)}
    assert widths["other"] == pytest.approx(float(stats[cheaper]))


def test_plot_costs_other_is_never_merged_with_a_provider_called_other(empty: EnhancedModelRegistry) -> None:
    # A provider is any string: one called "other" must not share its bar with the rest beyond ``top``.
    for ident, provider, tokens in (("x", "other", 3000), ("y", "openai", 2000), ("z", "claude", 1000)):
        empty.register_model(definition(ident, provider, {"inputTokens": "1", "outputTokens": "1"}))
        empty.record_usage(f"{provider}:{ident}", tokens, 0)
    ax = empty.plot_costs(by="provider", top=1).axes[0]
    assert sorted(p.get_width() for p in ax.patches) == [3.0, 3.0]  # "other" the provider, and openai + claude
    positions = {round(p.get_y(), 6) for p in ax.patches}
    assert len(positions) == len(ax.patches), "two bars drawn on one row"
    assert len(texts(ax.get_yticklabels())) == len(ax.patches)


def test_plot_costs_by_day_labels_and_legend(used: EnhancedModelRegistry) -> None:
    ax = used.plot_costs(by="day").axes[0]
    assert "day" in ax.get_title().lower()
    assert [t for t in texts(ax.get_xticklabels()) if t] == [d.isoformat() for d in DAYS]
    legend = ax.get_legend()
    assert legend is not None
    assert set(texts(legend.get_texts())) == {GPT, SONNET}  # the free model draws nothing
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(float(used.get_statistics().total_cost))


def test_plot_costs_by_day_top_puts_the_rest_in_other(used: EnhancedModelRegistry) -> None:
    ax = used.plot_costs(by="day", top=1).axes[0]
    legend = texts(ax.get_legend().get_texts())
    assert len(legend) == 2
    assert "other" in legend
    assert legend[0] in (GPT, SONNET)
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(float(used.get_statistics().total_cost))


@pytest.mark.parametrize("by", ["model", "provider", "day"])
def test_plot_costs_on_a_given_axes(used: EnhancedModelRegistry, by: str) -> None:
    figure = Figure()
    left, right = figure.subplots(1, 2)
    returned = used.plot_costs(by=by, ax=right)
    assert returned is figure
    assert right.patches
    assert not left.patches
    assert png_pixels(figure).var() > 0


def test_plot_costs_on_an_axes_of_a_subfigure_returns_the_figure(used: EnhancedModelRegistry) -> None:
    figure = Figure()
    _, right = figure.subfigures(1, 2)
    ax = right.subplots()
    returned = used.plot_costs(by="day", ax=ax)
    assert returned is figure  # the Figure that renders, not the SubFigure
    assert isinstance(returned, Figure)
    assert ax.patches
    assert png_pixels(returned).var() > 0


def test_plot_costs_on_a_pyplot_axes(used: EnhancedModelRegistry) -> None:
    figure, ax = plt.subplots()
    try:
        assert used.plot_costs(ax=ax) is figure
    finally:
        plt.close(figure)


def test_plot_costs_of_an_empty_registry(empty: EnhancedModelRegistry) -> None:
    for by in ("model", "provider", "day"):
        figure = empty.plot_costs(by=by)
        assert isinstance(figure, Figure)
        assert png_pixels(figure).var() > 0


@pytest.fixture
def two_currencies(used: EnhancedModelRegistry) -> EnhancedModelRegistry:
    used.register_model(definition("large", "mistral", {"inputTokens": "2", "outputTokens": "6", "currency": "EUR"}))
    used.record_usage("mistral:large", 1000, 1000)
    return used


@pytest.mark.parametrize("by", ["model", "provider", "day"])
def test_plot_costs_never_adds_currencies(two_currencies: EnhancedModelRegistry, by: str) -> None:
    with pytest.raises(InvalidUsageError, match="currenc") as caught:
        two_currencies.plot_costs(by=by)
    assert "EUR" in str(caught.value)
    assert "USD" in str(caught.value)
    eur = two_currencies.plot_costs(by=by, currency="EUR").axes[0]
    label = eur.get_ylabel() if by == "day" else eur.get_xlabel()
    assert "Cost (EUR)" in label
    assert "EUR" in eur.get_title()
    usd = two_currencies.plot_costs(by=by, currency="USD").axes[0]
    if by == "model":
        assert "mistral:large" in texts(eur.get_yticklabels())
        assert "mistral:large" not in texts(usd.get_yticklabels())
        assert sum(p.get_width() for p in eur.patches) == pytest.approx(
            8.0
        )  # 1000 tokens each way at 2 and 6 EUR per 1,000
    if by == "day":
        assert texts(eur.get_legend().get_texts()) == ["mistral:large"]
        assert "mistral:large" not in texts(usd.get_legend().get_texts())


@pytest.mark.parametrize("top", [0, -1, True, 1.5, "3"])
def test_plot_costs_bad_top(used: EnhancedModelRegistry, top: Any) -> None:
    with pytest.raises(InvalidUsageError, match="top"):
        used.plot_costs(top=top)


def test_plot_costs_bad_by(used: EnhancedModelRegistry) -> None:
    with pytest.raises(InvalidUsageError, match="by"):
        used.plot_costs(by="week")


@pytest.mark.parametrize("exact", ["no", 0, 1, None])
def test_frames_refuse_an_exact_that_is_not_a_bool(used: EnhancedModelRegistry, exact: Any) -> None:
    # exact="no" is truthy: taken as a flag it would silently give Decimal columns
    with pytest.raises(InvalidUsageError, match="exact must be a bool"):
        used.to_dataframe(exact=exact)
    with pytest.raises(InvalidUsageError, match="exact must be a bool"):
        used.usage_dataframe(exact=exact)


@pytest.mark.parametrize("ax", ["axes", Figure()])
def test_plot_costs_refuses_an_ax_that_is_not_axes(used: EnhancedModelRegistry, ax: Any) -> None:
    with pytest.raises(InvalidUsageError, match="ax must be a matplotlib Axes"):
        used.plot_costs(ax=ax)


@pytest.mark.parametrize("currency", [840, b"USD"])
def test_plot_costs_refuses_a_currency_that_is_not_a_str(used: EnhancedModelRegistry, currency: Any) -> None:
    with pytest.raises(InvalidUsageError, match="currency must be a str"):
        used.plot_costs(currency=currency)


EXTRA = "pip install 'noa-ai-provider[notebook]'"


def test_frames_without_pandas_name_the_extra(used: EnhancedModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what an environment without pandas looks like to import
    for make in (used.to_dataframe, used.usage_dataframe):
        with pytest.raises(ImportError) as caught:
            make()
        assert EXTRA in str(caught.value)
        assert "pandas" in str(caught.value)


@pytest.mark.parametrize("by", ["model", "provider", "day"])
def test_plots_without_matplotlib_name_the_extra(
    used: EnhancedModelRegistry, monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    for module in ("matplotlib", "matplotlib.axes", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as caught:
        used.plot_costs(by=by)
    assert EXTRA in str(caught.value)
    assert "matplotlib" in str(caught.value)


# ----------------------------------------------------------------------------------------------------------- HTML


@pytest.fixture
def hostile(used: EnhancedModelRegistry) -> EnhancedModelRegistry:
    used.register_model(
        definition(
            HOSTILE_KEY.partition(":")[2],
            "openai",
            {"inputTokens": "0.001", "outputTokens": "0.002"},
            name=HOSTILE_NAME,
            aliases=["a&b"],
        )
    )
    used.record_usage(HOSTILE_KEY, 1_234_567, 1000)
    used.set_budget("1234.5", period="month")
    used.set_budget("7", period="day", key=HOSTILE_KEY)
    return used


def html_views(registry: EnhancedModelRegistry) -> dict[str, str]:
    views = {
        "registry": registry._repr_html_(),
        "statistics": registry.get_statistics()._repr_html_(),
        "entry": registry.get_model(HOSTILE_KEY)._repr_html_(),  # type: ignore[union-attr]
        "history": registry.get_usage_history()._repr_html_(),
    }
    for status in registry.get_budget_status():
        views[f"budget {status.key}"] = status._repr_html_()
    return views


def test_every_html_view_is_a_table_with_nothing_unescaped(hostile: EnhancedModelRegistry) -> None:
    views = html_views(hostile)
    assert len(views) == 6
    for name, markup in views.items():
        assert isinstance(markup, str), name
        assert markup.startswith("<table>"), name
        assert markup.count("<table>") == markup.count("</table>"), name
        assert "<script" not in markup.lower(), name
        assert " & " not in markup, name
        assert "a&b" not in markup, name
        assert not re.search(r"&(?!amp;|lt;|gt;|quot;|#x27;)", markup), name
    for name in ("registry", "entry"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in views[name]
    assert "a&amp;b" in views["entry"]
    for name in ("registry", "history", f"budget {HOSTILE_KEY}"):
        assert td(ESCAPED_KEY) in views[name], name
    assert f"<caption>{ESCAPED_KEY}</caption>" in views["entry"]


ESCAPED_KEY = "openai:&lt;script&gt;alert(2)&lt;/script&gt;&amp;"


def td(value: str) -> str:
    return f'">{value}</td>'


def test_registry_html_values(hostile: EnhancedModelRegistry) -> None:
    markup = hostile._repr_html_()
    for key in (GPT, SONNET, LOCAL):
        assert td(key) in markup
    assert td(ESCAPED_KEY) in markup
    assert td("1,234,567") in markup  # ints with thousands separators
    gpt_total = hostile.get_model(GPT).usage_stats.total_cost  # type: ignore[union-attr]
    assert td(f"{gpt_total.normalize():f}") in markup
    assert td(f"{hostile.get_statistics().total_cost.normalize():f}") in markup
    assert "4 models" in markup
    assert "memory://" in markup


def test_statistics_html_values(hostile: EnhancedModelRegistry) -> None:
    stats = hostile.get_statistics()
    markup = stats._repr_html_()
    assert td(f"{stats.total_cost.normalize():f}") in markup
    assert "E-" not in markup
    assert "E+" not in markup
    assert td(f"{stats.total_input_tokens:,}") in markup
    assert "," in f"{stats.total_input_tokens:,}"
    assert td(f"{stats.total_requests:,}") in markup
    assert td("openai") in markup
    assert td("USD") in markup


def test_entry_html_values(hostile: EnhancedModelRegistry) -> None:
    markup = hostile.get_model(GPT)._repr_html_()  # type: ignore[union-attr]
    assert "<table>" in markup
    assert td("128,000") in markup  # context window
    assert td("4,096") in markup
    assert td("2.5") in markup  # input per 1M (0.0025 per 1,000)
    assert td("10") in markup  # output per 1M
    assert td("1.25") in markup  # cached input per 1M
    assert td("500") in markup  # requests per minute
    assert td("30,000") in markup
    assert td("3,013") in markup  # input tokens used (10 + 1000 + 1001 + 1002; a failed reservation none)
    total = hostile.get_model(GPT).usage_stats.total_cost  # type: ignore[union-attr]
    assert td(f"{total.normalize():f}") in markup
    hostile_markup = hostile.get_model(HOSTILE_KEY)._repr_html_()  # type: ignore[union-attr]
    assert td("1,234,567") in hostile_markup
    assert td(f"{Decimal('1234.567') * Decimal('0.001') + Decimal('0.002'):f}") in hostile_markup


def test_entry_html_of_an_unpriced_model(empty: EnhancedModelRegistry) -> None:
    empty.register_model(definition("free", "mistral", None))
    markup = empty.get_model("mistral:free")._repr_html_()  # type: ignore[union-attr]
    assert markup.startswith("<table>")
    assert "No price" in markup


def test_budget_html_values(hostile: EnhancedModelRegistry) -> None:
    statuses = {s.key: s for s in hostile.get_budget_status()}
    overall = statuses[None]._repr_html_()
    assert overall.startswith("<table>")
    assert td("1234.5") in overall
    assert td("month") in overall
    assert td("0.8") in overall
    assert td(f"{statuses[None].spent.normalize():f}") in overall
    assert statuses[None].spent == hostile.get_statistics().total_cost  # everything was spent this month
    assert td(f"{statuses[None].remaining.normalize():f}") in overall
    assert td("2025-07-01T00:00:00+00:00") in overall
    per_model = statuses[HOSTILE_KEY]._repr_html_()
    assert td(ESCAPED_KEY) in per_model
    assert td("7") in per_model
    assert td("day") in per_model


def test_usage_history_html_values(used: EnhancedModelRegistry) -> None:
    history = used.get_usage_history()
    markup = history._repr_html_()
    assert markup.startswith("<table>")
    assert markup.count("<tr>") == 1 + len(history) == 10
    assert td("2025-06-02") in markup
    assert td(SONNET) in markup
    assert td(f"{sonnet_cost(2).normalize():f}") in markup
    assert td("1,010") in markup  # GPT's input tokens on day one
    assert "9 rows" in markup
    assert used.get_usage_history(GPT, since=date(2025, 6, 4))._repr_html_().count("<tr>") == 2


def test_usage_history_is_a_plain_list(used: EnhancedModelRegistry) -> None:
    history = used.get_usage_history()
    assert isinstance(history, list)
    plain = list(history)
    assert type(plain) is list
    assert history == plain
    assert plain == history
    assert len(history) == 9
    assert [e.date for e in history] == sorted(e.date for e in history)
    assert sum((e.cost for e in history), Decimal(0)) == used.get_statistics().total_cost
    assert used.get_usage_history(GPT) == [e for e in plain if e.key == GPT]
    assert history[1:3] == plain[1:3]


# -------------------------------------------------------------------------------------------------------- imports


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_package_imports_neither_pandas_nor_matplotlib() -> None:
    code = (
        "import sys, noa_ai_provider, noa_ai_provider.notebook\n"
        "r = noa_ai_provider.EnhancedModelRegistry(auto_save=False)\n"
        "r._repr_html_(); r.get_usage_history()._repr_html_()\n"
        "print('pandas' in sys.modules, 'matplotlib' in sys.modules)\n"
        "r.to_dataframe()\n"
        "print('pandas' in sys.modules, 'matplotlib' in sys.modules)\n"
        "r.plot_costs()\n"
        "print('pandas' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    assert run(code).splitlines() == ["False False", "True False", "True True"]
