"""The Redis store's money arithmetic (stores/lua/decimal.lua), run by a real redis-server: exact against Decimal."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.redis_server import lua, plain

LIBRARY = lua("decimal")
SCRIPT = (
    LIBRARY
    + """
local op, a, b = ARGV[1], ARGV[2], ARGV[3]
if op == "add" then return dec_add(a, b) end
if op == "sub" then return dec_sub(a, b) end
if op == "cmp" then return dec_cmp(a, b) end
return dec_norm(a)
"""
)


EXACT = Context(prec=200)  # wide enough that no sum here rounds

amounts = st.decimals(min_value=0, max_value=Decimal("1e18"), allow_nan=False, allow_infinity=False, places=None)
money = st.one_of(
    amounts.map(lambda d: d.normalize()),
    st.integers(0, 10**30).map(Decimal),
    st.builds(lambda n, e: Decimal(n).scaleb(-e), st.integers(0, 10**12), st.integers(0, 40)),
)


@settings(max_examples=300, deadline=None)
@given(a=money, b=money)
def test_add_sub_and_compare_are_exact(redis_client: redis.Redis, a: Decimal, b: Decimal) -> None:
    run = redis_client.register_script(SCRIPT)
    x, y = plain(a), plain(b)
    assert Decimal(run(args=["add", x, y])) == EXACT.add(a, b)
    assert Decimal(run(args=["sub", x, y])) == max(EXACT.subtract(a, b), Decimal(0))
    assert int(run(args=["cmp", x, y])) == (a > b) - (a < b)
    assert run(args=["norm", x]) == plain(a) if a else run(args=["norm", x]) == "0"


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        ("add", "0.1", "0.2", "0.3"),
        ("add", "999.999", "0.001", "1000"),
        ("add", "0", "0", "0"),
        ("sub", "1", "0.0000000000000000000000000000000000001", "0.9999999999999999999999999999999999999"),
        ("sub", "5", "7", "0"),
        ("norm", "007.500", "", "7.5"),
        ("norm", ".5", "", "0.5"),
        ("norm", "", "", "0"),
        ("add", "12345678901234567890123456789", "98765432109876543210987654321", "111111111011111111101111111110"),
    ],
)
def test_worked_examples(redis_client: redis.Redis, op: str, a: str, b: str, expected: str) -> None:
    assert redis_client.register_script(SCRIPT)(args=[op, a, b]) == expected


def test_an_amount_that_is_not_a_plain_decimal_is_refused(redis_client: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="not a decimal amount"):
        redis_client.register_script(SCRIPT)(args=["add", "1e-7", "1"])
