"""A model whose ``metadata.deprecationDate`` has come is loaded as ``deprecated`` (config.apply_deprecation)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import ConfigError, EnhancedModelRegistry, ExtendedModelInfo, ModelStatus
from noa_ai_provider.config import apply_deprecation, bundled_config_path, parse_models_config, read_models_config
from noa_ai_provider.testing import FakeClock

BUNDLED = Path(__file__).resolve().parents[1] / "config" / "models-config.json"


def definition(model_id: str, deprecation: object = None, **fields: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"source": "test", "priceDate": "2026-01-01"}
    if deprecation is not None:
        metadata["deprecationDate"] = deprecation
    return {
        "id": model_id,
        "name": model_id,
        "provider": "openai",
        "version": "1.0.0",
        "cost": {"inputTokens": 1, "outputTokens": 2, "per": 1_000_000},
        "metadata": metadata,
        **fields,
    }


def write_config(path: Path, *models: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"models": list(models)}), encoding="utf-8")
    return path


@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "models-config.json",
        definition("past", "2000-01-01"),
        definition("future", "2999-12-31"),
        definition("undated"),
        definition("on-the-day", "2026-03-01"),
        definition("already", "2999-12-31", status="deprecated"),
    )


def statuses(models: list[ExtendedModelInfo]) -> dict[str, str]:
    return {m.id: m.status.value for m in models}


def test_a_past_date_deprecates_at_load(fixture_file: Path) -> None:
    assert statuses(read_models_config(fixture_file, today=date(2026, 3, 1))) == {
        "past": "deprecated",
        "future": "available",
        "undated": "available",
        "on-the-day": "deprecated",  # deprecated from its date on
        "already": "deprecated",  # a status the file states stays
    }
    assert statuses(read_models_config(fixture_file, today=date(2026, 2, 28)))["on-the-day"] == "available"


def test_the_default_today_is_the_current_utc_date(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    path = write_config(
        tmp_path / "c.json",
        definition("today", today.isoformat()),
        definition("tomorrow", (today + timedelta(days=1)).isoformat()),
    )
    assert statuses(read_models_config(path)) == {"today": "deprecated", "tomorrow": "available"}


def test_a_datetime_counts_by_its_utc_date(fixture_file: Path) -> None:
    # 2026-03-01 00:30 in UTC+02:00 is still 2026-02-28 in UTC.
    early = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert statuses(read_models_config(fixture_file, today=early))["on-the-day"] == "available"
    assert statuses(read_models_config(fixture_file, today=datetime(2026, 3, 1, tzinfo=UTC)))["on-the-day"] == (
        "deprecated"
    )


def test_the_registry_loads_a_past_date_as_deprecated(tmp_path: Path, fixture_file: Path) -> None:
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False) as registry:
        assert registry.load_from_config(fixture_file) == 5
        past = registry.get_model("openai:past")
        future = registry.get_model("openai:future")
        assert past is not None
        assert future is not None
        assert past.status == ModelStatus.DEPRECATED
        assert future.status == ModelStatus.AVAILABLE
        live = {e.key for e in registry.search_models(exclude_deprecated=True)}
        assert "openai:past" not in live
        assert "openai:future" in live


def test_apply_deprecation_is_pure(fixture_file: Path) -> None:
    models = read_models_config(fixture_file, today=date(1999, 1, 1))
    assert statuses(models)["past"] == "available"
    before = [m.model_dump() for m in models]
    result = apply_deprecation(models, date(2026, 3, 1))
    assert [m.model_dump() for m in models] == before  # the models given are not changed
    assert result is not models
    assert statuses(result)["past"] == "deprecated"
    assert result[1] is models[1]  # unchanged models are passed through
    assert result[0].metadata == models[0].metadata
    assert apply_deprecation([], date(2026, 3, 1)) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("soon", "must be a YYYY-MM-DD date, got 'soon'"),
        ("2025-02-30", "not a valid date, got '2025-02-30'"),
        ("2025-1-5", "must be a YYYY-MM-DD date, got '2025-1-5'"),
        (20250101, "must be a YYYY-MM-DD date, got 20250101"),
        ("2025-01-01T00:00:00Z", "must be a YYYY-MM-DD date"),
    ],
)
def test_a_malformed_date_is_an_error_naming_the_model(tmp_path: Path, value: object, problem: str) -> None:
    path = write_config(tmp_path / "bad.json", definition("ok"), definition("bad", value))
    with pytest.raises(ConfigError) as info:
        read_models_config(path, today=date(2026, 1, 1))
    message = str(info.value)
    assert message.startswith(f"{path}: models[1] (id 'bad'): metadata.deprecationDate: ")
    assert problem in message


def test_a_null_date_is_no_date() -> None:
    data = [definition("m")]
    data[0]["metadata"]["deprecationDate"] = None
    assert statuses(parse_models_config(data, "inline", today=date(2026, 1, 1))) == {"m": "available"}


def test_the_bundled_catalogue_by_date() -> None:
    assert bundled_config_path() == BUNDLED or bundled_config_path().read_bytes() == BUNDLED.read_bytes()

    def deprecated_on(day: date) -> set[str]:
        return {m.id for m in read_models_config(BUNDLED, today=day) if m.status == ModelStatus.DEPRECATED}

    marked = {"gpt-4.1-nano", "o4-mini", "claude-sonnet-4-5"}  # past their dates; the file says so itself
    assert deprecated_on(date(2026, 1, 1)) == marked
    assert deprecated_on(date(2026, 12, 10)) == marked
    openai_2026_12_11 = {"o3", "gpt-5", "gpt-5-mini", "gpt-5-nano"}
    assert deprecated_on(date(2026, 12, 11)) == marked | openai_2026_12_11
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"} <= deprecated_on(date(2027, 1, 14))
    assert "gpt-5.1" not in deprecated_on(date(2027, 3, 31))
    assert "gpt-5.1" in deprecated_on(date(2027, 4, 1))
    # The seed's examples and models without a date never are.
    never = {"gpt-4-turbo-preview", "claude-3-opus-20240229", "claude-opus-4-5", "claude-haiku-4-5", "qwen3-8b"}
    assert never.isdisjoint(deprecated_on(date(2999, 1, 1)))


def test_the_registry_loads_the_bundled_catalogue_with_todays_date(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    raw = json.loads(BUNDLED.read_text(encoding="utf-8"))["models"]
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False) as registry:
        registry.load_from_config(BUNDLED)
        for m in raw:
            stated = m["metadata"].get("deprecationDate")
            due = stated is not None and date.fromisoformat(stated) <= today
            entry = registry.get_model(f"{m['provider']}:{m['id']}")
            assert entry is not None
            expected = due or m.get("status") == "deprecated"
            assert (entry.status == ModelStatus.DEPRECATED) == expected, m["id"]


@pytest.mark.parametrize(("day", "status"), [((2026, 2, 28), "available"), ((2026, 3, 1), "deprecated")])
def test_the_registry_decides_by_its_own_clock(
    tmp_path: Path, fixture_file: Path, day: tuple[int, int, int], status: str
) -> None:
    # The date comes from the registry's clock (a test's FakeClock), not the machine's.
    clock = FakeClock(datetime(*day, 12, tzinfo=UTC).timestamp())
    with EnhancedModelRegistry(persistence_path=tmp_path / "r.json", auto_save=False, clock=clock) as registry:
        registry.load_from_config(fixture_file)
        entry = registry.get_model("openai:on-the-day")
        assert entry is not None
        assert entry.status == status
