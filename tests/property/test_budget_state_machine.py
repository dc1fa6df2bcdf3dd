"""A state machine over acquire / commit / cancel / fail / expiry / garbage collection / price changes / budget
periods, on an injected clock. After every step: no budget has spent more than its limit through requests that
were committed while their reservation was open, and no trailing minute holds more admitted requests or tokens than
the model's limits.

A reservation committed after it expired is still recorded (the provider billed it) but was not held by any
budget or window when it was: those commits are tracked apart and allowed on top of the limits.
"""

from __future__ import annotations

import gc
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from noa_ai_provider import BudgetExceededError, EnhancedModelRegistry, RateLimitExceeded, Reservation
from noa_ai_provider.testing import FakeClock

from ..conftest import STORES, fresh, store_id

START = 1_710_287_400.0  # 2024-03-13 00:30 UTC
RPM, TPM = 4, 3_000
DAY_BUDGET = Decimal("0.006")
TIMEOUT = 120.0
M = 1_000_000
# A lower tier dearer than the one above it (a volume discount on input): the worst case must cover both.
PRICES = [
    {"inputTokens": 3, "outputTokens": 12, "per": M, "tiers": [{"aboveInputTokens": 1_000, "inputTokens": "0.5"}]},
    {"inputTokens": 1, "outputTokens": 2, "per": M, "cachedInputTokens": "0.1"},
    {"inputTokens": 6, "outputTokens": 30, "per": M, "cacheWriteTokens": "7.5", "cacheWrite1hTokens": 12},
]


@dataclass
class Admitted:
    """An acquire that succeeded, as the oracle counts it in the windows."""

    at: float
    tokens: int  # reserved until committed, then what was used (nothing once given back)
    counts: bool = True  # False once given back (cancelled, failed, expired, collected)


class BudgetMachine(RuleBasedStateMachine):
    """The machine on the store ``backend`` (one of conftest.STORES)."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.clock = FakeClock(START)
        self.registry = EnhancedModelRegistry(
            persistence_path=Path(self.folder.name) / "r.json",
            auto_save=False,
            clock=self.clock,
            reservation_timeout=TIMEOUT,
            backend=fresh(backend),
        )
        self.open: list[tuple[Reservation, Admitted]] = []
        self.admitted: list[Admitted] = []
        self.late: dict[date, Decimal] = {}  # cost of commits made after expiry, per UTC day

    @initialize(prices=st.sampled_from(PRICES))
    def setup(self, prices: dict[str, object]) -> None:
        self.key = self.registry.register_model(
            {
                "id": "m",
                "name": "M",
                "provider": "openai",
                "version": "1.0.0",
                "cost": prices,
                "rateLimit": {"requestsPerMinute": RPM, "tokensPerMinute": TPM},
            }
        )
        self.registry.set_budget(DAY_BUDGET, period="day")

    def teardown(self) -> None:
        for reservation, _ in self.open:
            reservation.cancel()
        self.registry.close()
        self.folder.cleanup()

    # ------------------------------------------------------------------ rules

    @rule(inp=st.integers(0, 2_500), out=st.integers(0, 800))
    def acquire(self, inp: int, out: int) -> None:
        try:
            reservation = self.registry.acquire(self.key, inp, out)
        except (RateLimitExceeded, BudgetExceededError):
            return
        admitted = Admitted(self.clock(), inp + out)
        self.admitted.append(admitted)
        self.open.append((reservation, admitted))

    @precondition(lambda self: self.open)
    @rule(
        data=st.data(),
        share_in=st.fractions(0, 1),
        share_out=st.fractions(0, 1),
        cache=st.sampled_from(["none", "read", "write", "write_1h"]),
        tier=st.sampled_from([None, "batch", "default", "priority"]),
    )
    def commit(self, data: st.DataObject, share_in: object, share_out: object, cache: str, tier: str | None) -> None:
        index = data.draw(st.integers(0, len(self.open) - 1))
        reservation, admitted = self.open.pop(index)
        expired = reservation.state == "expired"
        inp = int(reservation.input_tokens * share_in)  # type: ignore[operator]
        out = int(reservation.max_output_tokens * share_out)  # type: ignore[operator]
        extra = {"cached_input_tokens": inp // 2} if cache == "read" else {}
        if cache == "write":
            extra = {"cache_write_tokens": inp // 3}
        elif cache == "write_1h":
            extra = {"cache_write_1h_tokens": inp // 3}
        cost = reservation.commit(out, input_tokens=inp, service_tier=tier, **extra)  # type: ignore[arg-type]
        if expired:
            day = datetime.fromtimestamp(self.clock(), UTC).date()
            self.late[day] = self.late.get(day, Decimal(0)) + cost
        else:
            admitted.tokens = inp + out

    @precondition(lambda self: self.open)
    @rule(data=st.data(), how=st.sampled_from(["cancel", "fail", "collect"]))
    def give_back(self, data: st.DataObject, how: str) -> None:
        index = data.draw(st.integers(0, len(self.open) - 1))
        reservation, admitted = self.open.pop(index)
        if how == "cancel":
            reservation.cancel()
        elif how == "fail":
            reservation.fail()
        else:
            del reservation
            gc.collect()
        admitted.counts = False

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 5.0, 30.0, 61.0, TIMEOUT + 1, 6 * 3_600.0, 86_400.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for reservation, admitted in self.open:
            if self.clock() >= reservation.expires_at:
                admitted.counts = False  # expired: its holds are given back

    @rule(prices=st.sampled_from(PRICES))
    def change_price(self, prices: dict[str, object]) -> None:
        self.registry.update_model(self.key, {"cost": prices})

    @rule(record=st.booleans())
    def touch(self, record: bool) -> None:
        # Reading (budget status, rate checks) runs the expiry sweep at any point.
        if record:
            self.registry.get_budget_status()
        else:
            self.registry.check_rate_limit(self.key, 0)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def budget_never_overspent(self) -> None:
        if not hasattr(self, "key"):
            return
        (status,) = self.registry.get_budget_status()
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        assert status.spent <= status.limit + self.late.get(today, Decimal(0)), (status, self.late)
        assert status.reserved >= 0

    @invariant()
    def no_trailing_minute_over_the_limits(self) -> None:
        # Checked at every admission time: the window that ends there holds at most the limits.
        counted = sorted((a.at, a.tokens) for a in self.admitted if a.counts)
        for i, (end, _) in enumerate(counted):
            window = [(at, tokens) for at, tokens in counted[: i + 1] if at > end - 60]
            assert len(window) <= RPM, window
            assert sum(tokens for _, tokens in window) <= TPM, window


SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("store", STORES, ids=store_id)  # a fresh registry on the store for every example
def test_budget_machine(store: str) -> None:
    run_state_machine_as_test(lambda: BudgetMachine(store), settings=SETTINGS)
