"""Strict JSON: Decimal numbers, no NaN/Infinity, no duplicate keys, bounded depth, positions in errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from noa_ai_provider import ConfigError, PersistenceError
from noa_ai_provider.jsonio import MAX_DEPTH, dumps, loads


def test_floats_become_exact_decimals_and_ints_stay_ints() -> None:
    assert loads('{"a": 0.1, "b": 1e-7, "c": 3}') == {"a": Decimal("0.1"), "b": Decimal("1e-7"), "c": 3}


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_non_finite_constants_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        loads(text, "f.json")


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        loads('{"a": 1, "a": 2}')


def test_depth_is_bounded() -> None:
    loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(ConfigError, match="nested"):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(ConfigError, match="nested"):
        loads("[" * 100_000 + "]" * 100_000)


def test_errors_name_source_and_position_and_use_the_given_class() -> None:
    with pytest.raises(PersistenceError, match=r"^f.json: invalid JSON at line 2, column 1"):
        loads('{"a": 1,\n}', "f.json", error=PersistenceError)
    with pytest.raises(ConfigError, match="UTF-8"):
        loads(b"\xff")


def test_dumps_writes_decimals_exactly() -> None:
    assert dumps({"p": Decimal("0.1000")}, indent=None) == '{"p": "0.1000"}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps({"x": float("nan")})
