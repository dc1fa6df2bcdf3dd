"""Every error survives pickling with its attributes and message: worker pools send errors across processes."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from noa_ai_provider import errors

EXAMPLES: list[errors.RegistryError] = [
    errors.RegistryError("base"),
    errors.ModelNotFoundError("openai:gpt-4"),
    errors.ModelNotFoundError("claude-sonet", ["claude:claude-sonnet-4-5"]),
    errors.AmbiguousModelError("gpt-4o", ["openai:gpt-4o", "azure:gpt-4o"]),
    errors.ConfigError("models[0] (id 'x'): cost: required field is missing"),
    errors.InvalidVersionError("not a version"),
    errors.InvalidUsageError("input_tokens must be >= 0, got -1"),
    errors.PersistenceError("data/r.json: no such file"),
    errors.BackendError("redis://127.0.0.1:6379/0: Redis is unavailable: Connection refused"),
    errors.RateLimitExceeded("openai:gpt-4o", "tokens per minute", 1.25),
    errors.RateLimitExceeded("openai:gpt-4o", "tokens per minute", None),
    errors.RateLimitTimeout("openai:gpt-4o", "requests per minute", 0.5, "timed out after 5 s"),
    errors.UnpricedModelError("openai:x has no price"),
    errors.BudgetExceededError(
        "openai:gpt-4o", None, "month", Decimal("100"), Decimal("99.5"), Decimal("0.25"), Decimal("0.5")
    ),
    errors.ContextWindowWarning("too long"),
    errors.RateLimitHeaderWarning("header retry-after: neither seconds nor an HTTP date: 'soon'"),
]


def test_every_error_class_has_an_example() -> None:
    assert {type(e).__name__ for e in EXAMPLES} == set(errors.__all__)


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(error: errors.RegistryError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.args == error.args
    assert vars(again) == vars(error)
