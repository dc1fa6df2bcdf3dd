"""A models-config error message stays readable whatever the file holds: a field name, a value or an id of any
length is cut (saying how long it was), and a model with many problems lists twenty and counts the rest. Library
callers (``load_from_config``, ``parse_models_config``) get the same bounded message the command line prints."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry
from noa_ai_provider.config import parse_models_config
from noa_ai_provider.errors import ConfigError

HUGE = 100_000
BASE = {
    "id": "a",
    "name": "A",
    "provider": "openai",
    "version": "1.0.0",
    "cost": {"inputTokens": "1", "outputTokens": "1"},
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"models": [], "y" * HUGE: 1}, "unknown top-level field(s) 'yyy"),
        ([{**BASE, "x" * HUGE: 1}], "unknown field (not part of the schema)"),
        ([{**BASE, "id": "i" * HUGE, "version": "bad"}], "invalid version 'bad'"),
        ([{**BASE, "cost": {"inputTokens": "z" * HUGE, "outputTokens": "1"}}], "cost.inputTokens: must be a decimal"),
    ],
    ids=["top-level-name", "field-name", "id", "value"],
)
def test_a_huge_name_id_or_value_is_cut(data: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_models_config(data, "models.json")
    message = str(caught.value)
    assert expected in message
    assert len(message) < 1_000
    assert re.search(r"\.\.\. \(100,0\d\d characters\)", message)  # says how long the cut text was


def test_many_problems_are_counted_not_listed(tmp_path: Any) -> None:
    model = {**BASE, **{f"extra{n}": n for n in range(50)}}
    path = tmp_path / "models.json"
    path.write_text(json.dumps([model]))
    registry = EnhancedModelRegistry(models_config_path=path, auto_save=False)
    with pytest.raises(ConfigError, match="and 30 more") as caught:
        registry.load_from_config()
    assert str(caught.value).count("unknown field") == 20
    assert registry.list_models() == []  # nothing loaded
