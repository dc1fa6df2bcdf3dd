"""The price of a request with cache tokens on a model without long-context tiers (a short path of
``cost.request_cost`` since 0.2.0) is the one its stated rules give: uncached input at the input price, cache reads
at the cache-read price (else the input price), 5-minute writes at the cache-write price (else the input price),
1-hour writes at the 1-hour price (else the 5-minute write price), output at the output price; a zero price is a
price, not a missing one. The reference is computed here in an 80-digit context, independently of the library."""

from __future__ import annotations

import decimal
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from noa_ai_provider.cost import request_cost, request_rates
from noa_ai_provider.schemas import ModelCost

price = st.one_of(
    st.just(Decimal(0)),
    st.decimals(min_value=0, max_value=1000, places=8, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=100).map(Decimal),
)
optional = st.one_of(st.none(), price)


@settings(max_examples=400, deadline=None)
@given(
    pin=price,
    pout=price,
    read=optional,
    write=optional,
    write_1h=optional,
    per=st.sampled_from([1, 1000, 1_000_000]),
    output=st.integers(min_value=0, max_value=10**9),
    parts=st.tuples(*(st.integers(min_value=0, max_value=10**8) for _ in range(4))),
)
def test_a_cached_request_bills_the_stated_prices(
    pin: Decimal,
    pout: Decimal,
    read: Decimal | None,
    write: Decimal | None,
    write_1h: Decimal | None,
    per: int,
    output: int,
    parts: tuple[int, int, int, int],
) -> None:
    cost = ModelCost(
        input_tokens=pin,
        output_tokens=pout,
        cached_input_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        per=per,
    )
    uncached, cached, written, written_1h = parts
    total_input = uncached + cached + written + written_1h
    got = request_cost(cost, total_input, output, cached, written, None, written_1h)
    read_at = pin if read is None else read
    write_at = pin if write is None else write
    write_1h_at = write_at if write_1h is None else write_1h
    with decimal.localcontext(prec=80):
        expected = (
            uncached * pin + cached * read_at + written * write_at + written_1h * write_1h_at + output * pout
        ) / per
    assert got == expected
    rates = request_rates(cost, total_input)  # the general rule gives the same prices
    assert (rates.input, rates.cache_read, rates.cache_write, rates.cache_write_1h) == (
        pin,
        read_at,
        write_at,
        write_1h_at,
    )
