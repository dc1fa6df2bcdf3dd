"""Notebook helpers: DataFrames, cost plots and HTML views (pandas and matplotlib, the ``notebook`` extra)."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure
from matplotlib.image import imread

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.errors import InvalidUsageError
from noa_ai_provider.notebook import MODEL_COLUMNS, USAGE_COLUMNS
from noa_ai_provider.testing import FakeClock

DAY = 86_400
START = datetime(2025, 6, 2, 12, tzinfo=UTC).timestamp()


def model(ident: str, provider: str, cost: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident.upper(), "provider": provider, "version": "1.0.0", "cost": cost, **extra}


@pytest.fixture
def reg() -> EnhancedModelRegistry:
    """Three models over three UTC days (2, 3, 4 June 2025), with cache reads, writes and a failed request."""
    clock = FakeClock(START)
    registry = EnhancedModelRegistry(auto_save=False, clock=clock)
    registry.register_model(
        model(
            "gpt",
            "openai",
            {"inputTokens": "0.0025", "outputTokens": "0.01", "cachedInputTokens": "0.00125", "per": 1000},
            rateLimit={"requestsPerMinute": 500, "tokensPerMinute": 30_000},
            contextWindow=128_000,
        )
    )
    registry.register_model(
        model(
            "sonnet",
            "anthropic",
            {"inputTokens": "3", "outputTokens": "15", "cacheWriteTokens": "3.75", "per": 1_000_000},
        )
    )
    registry.register_model(model("local", "llama.cpp", {"inputTokens": "0", "outputTokens": "0", "per": 1000}))
    registry.record_usage("openai:gpt", 10, 0, success=False)
    for day in range(3):
        registry.record_usage("openai:gpt", 1000 + day, 200, cached_input_tokens=100)
        registry.record_usage("claude:sonnet", 3000, 100 * (day + 1), cache_write_tokens=1000)
        registry.record_usage("llama.cpp:local", 50, 50)
        clock.advance(DAY)
    return registry


def test_to_dataframe_one_row_per_model_snake_case_float_costs(reg: EnhancedModelRegistry) -> None:
    frame = reg.to_dataframe()
    assert list(frame.columns) == list(MODEL_COLUMNS)
    assert frame.index.name == "key"
    assert list(frame.index) == ["openai:gpt", "claude:sonnet", "llama.cpp:local"]
    assert frame["cost"].dtype == "float64"
    assert frame["input_per_1m"].dtype == "float64"
    assert frame.loc["openai:gpt", "input_per_1m"] == 2.5  # 0.0025 per 1,000 tokens
    assert pd.isna(frame.loc["claude:sonnet", "cached_input_per_1m"])
    assert frame.loc["openai:gpt", "requests_per_minute"] == 500
    assert pd.isna(frame.loc["claude:sonnet", "requests_per_minute"])
    assert frame.loc["openai:gpt", "requests"] == 4
    assert frame.loc["openai:gpt", "failed_requests"] == 1
    assert frame.loc["openai:gpt", "cached_input_tokens"] == 300
    assert frame.loc["claude:sonnet", "cache_write_tokens"] == 3000
    assert frame["requests"].dtype == "int64"
    # What the user hit with Decimal columns: "no numeric data to plot".
    assert frame.plot(y="cost", kind="bar") is not None


def test_to_dataframe_exact_keeps_decimal(reg: EnhancedModelRegistry) -> None:
    frame = reg.to_dataframe(exact=True)
    assert frame["cost"].dtype == object
    assert all(isinstance(v, Decimal) for v in frame["cost"])
    assert sum(frame["cost"]) == reg.get_statistics().total_cost
    assert frame.loc["openai:gpt", "input_per_1m"] == Decimal("2.5")


def test_usage_dataframe_by_day_sums_equal_the_statistics_exactly(reg: EnhancedModelRegistry) -> None:
    frame = reg.usage_dataframe(exact=True)
    assert list(frame.columns) == list(USAGE_COLUMNS)
    assert len(frame) == 9
    assert [d.date() for d in frame["date"].drop_duplicates()] == [date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 4)]
    stats = reg.get_statistics()
    assert sum(frame["cost"]) == stats.total_cost
    assert int(frame["input_tokens"].sum()) == stats.total_input_tokens
    assert int(frame["output_tokens"].sum()) == stats.total_output_tokens
    first = frame[(frame["key"] == "claude:sonnet")].iloc[0]
    assert first["provider"] == "claude"
    assert first["cost"] == reg.estimate_cost("claude:sonnet", 3000, 100, cache_write_tokens=1000)
    assert reg.usage_dataframe()["cost"].dtype == "float64"


def test_usage_dataframe_since_until_and_groupings(reg: EnhancedModelRegistry) -> None:
    middle = reg.usage_dataframe(since=date(2025, 6, 3), until=datetime(2025, 6, 3, 23, tzinfo=UTC))
    assert {d.date() for d in middle["date"]} == {date(2025, 6, 3)}
    by_provider = reg.usage_dataframe(by="provider", exact=True)
    assert "key" not in by_provider.columns
    assert len(by_provider) == 9  # three providers, three days
    by_model = reg.usage_dataframe(by="model", exact=True)
    assert list(by_model["key"]) == sorted(["openai:gpt", "claude:sonnet", "llama.cpp:local"])
    assert sum(by_model["cost"]) == reg.get_statistics().total_cost
    gpt = by_model[by_model["key"] == "openai:gpt"].iloc[0]
    assert (gpt["input_tokens"], gpt["cached_input_tokens"]) == (3013, 300)
    with pytest.raises(InvalidUsageError, match="by must be one of"):
        reg.usage_dataframe(by="week")
    with pytest.raises(InvalidUsageError, match="since"):
        reg.usage_dataframe(since=date(2025, 6, 4), until=date(2025, 6, 2))
    empty = EnhancedModelRegistry(auto_save=False).usage_dataframe()
    assert list(empty.columns) == list(USAGE_COLUMNS)
    assert empty.empty


def png(figure: Figure) -> Any:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    buffer.seek(0)
    return imread(buffer)


def texts(figure: Figure) -> set[str]:
    ax = figure.axes[0]
    found = {ax.get_title(), ax.get_xlabel(), ax.get_ylabel()}
    found |= {t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()}
    legend = ax.get_legend()
    if legend is not None:
        found |= {t.get_text() for t in legend.get_texts()}
    return found


@pytest.mark.parametrize("by", ["model", "provider", "day"])
def test_plot_costs_renders_labelled_figures(reg: EnhancedModelRegistry, by: str) -> None:
    figure = reg.plot_costs(by=by)
    assert isinstance(figure, Figure)
    pixels = png(figure)
    assert pixels.std() > 0.01  # not blank
    labels = texts(figure)
    assert "Cost (USD)" in labels
    if by == "model":
        assert {"openai:gpt", "claude:sonnet"} <= labels
        assert "llama.cpp:local" not in labels  # cost 0: nothing to draw
    elif by == "provider":
        assert {"openai", "claude"} <= labels
    else:
        assert {"2025-06-02", "2025-06-04", "openai:gpt", "claude:sonnet"} <= labels


def test_plot_costs_top_groups_the_rest_and_draws_on_a_given_axes(reg: EnhancedModelRegistry) -> None:
    assert "other" in texts(reg.plot_costs(by="model", top=1))
    assert "other" in texts(reg.plot_costs(by="day", top=1))
    figure = Figure()
    ax = figure.subplots()
    assert reg.plot_costs(ax=ax) is figure
    with pytest.raises(InvalidUsageError, match="top"):
        reg.plot_costs(top=0)
    with pytest.raises(InvalidUsageError, match="by must be one of"):
        reg.plot_costs(by="week")


def test_plot_costs_never_adds_currencies(reg: EnhancedModelRegistry) -> None:
    reg.register_model(
        model("euro", "mistral", {"inputTokens": "1", "outputTokens": "1", "currency": "EUR", "per": 1000})
    )
    reg.record_usage("mistral:euro", 1000, 0)
    with pytest.raises(InvalidUsageError, match="EUR, USD"):
        reg.plot_costs()
    assert "Cost (EUR)" in texts(reg.plot_costs(currency="EUR"))


def test_plot_costs_by_day_reads_currencies_from_the_history_not_the_counters(reg: EnhancedModelRegistry) -> None:
    # reset_usage_stats zeroes the counters; the history keeps its days, and the daily plot shows the history.
    reg.register_model(
        model("euro", "mistral", {"inputTokens": "1", "outputTokens": "1", "currency": "EUR", "per": 1000})
    )
    reg.record_usage("mistral:euro", 1000, 0)
    reg.reset_usage_stats("mistral:euro")
    with pytest.raises(InvalidUsageError, match="EUR, USD"):  # still two currencies in the history
        reg.plot_costs(by="day")
    euro = reg.plot_costs(by="day", currency="EUR")
    assert {"Cost (EUR)", "mistral:euro"} <= texts(euro)
    assert "openai:gpt" not in texts(euro)
    only = EnhancedModelRegistry(auto_save=False, clock=FakeClock(START))
    only.register_model(
        model("euro", "mistral", {"inputTokens": "1", "outputTokens": "1", "currency": "EUR", "per": 1000})
    )
    only.record_usage("mistral:euro", 1000, 0)
    only.reset_usage_stats("mistral:euro")
    assert {"Cost (EUR)", "mistral:euro", "2025-06-02"} <= texts(only.plot_costs(by="day"))


def test_html_views_are_tables_with_escaped_values(reg: EnhancedModelRegistry) -> None:
    reg.register_model(model("evil", "openai", None, name="<script>alert(1)</script> & co"))
    reg.set_budget("5", period="day")
    views = {
        "registry": reg._repr_html_(),
        "statistics": reg.get_statistics()._repr_html_(),
        "entry": reg.get_model("openai:evil")._repr_html_(),  # type: ignore[union-attr]
        "gpt": reg.get_model("openai:gpt")._repr_html_(),  # type: ignore[union-attr]
        "budget": reg.get_budget_status()[0]._repr_html_(),
        "history": reg.get_usage_history()._repr_html_(),
    }
    for name, view in views.items():
        assert view.startswith("<table>"), name
        assert "<script>" not in view, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in views["registry"]
    assert "&lt;script&gt;" in views["entry"]
    assert "No price" in views["entry"]
    assert str(reg.get_statistics().total_cost) in views["statistics"]
    assert ">2.5<" in views["gpt"]  # input per 1M, exact
    assert ">30,000<" in views["gpt"]  # tokens per minute
    assert ">5<" in views["budget"]
    assert "2025-06-03" in views["history"]


def test_usage_history_is_still_a_list(reg: EnhancedModelRegistry) -> None:
    history = reg.get_usage_history()
    assert isinstance(history, list)
    assert history == list(history)
    assert len(history) == 9


def test_importing_the_package_imports_neither_pandas_nor_matplotlib() -> None:
    code = (
        "import sys, noa_ai_provider\n"
        "r = noa_ai_provider.EnhancedModelRegistry(auto_save=False)\n"
        "print('pandas' in sys.modules, 'matplotlib' in sys.modules)\n"
        "r.to_dataframe(); print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]
