"""Pure filters and rankings over model definitions: no state, no locks.

The registry applies these to its records under its lock and hands out snapshots of the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from typing import TypeVar

from .schemas import (
    MONEY_CONTEXT,
    EnhancedModelSearchQuery,
    ExtendedModelInfo,
    ModelCost,
    ModelPerformanceMetrics,
    ModelStatus,
)
from .versions import parse_version

__all__ = ["cost_per_token", "matches", "performance_score", "top"]

_CTX = MONEY_CONTEXT

_T = TypeVar("_T")


def cost_per_token(cost: ModelCost | None) -> Decimal | None:
    """The seed's average price of one token, ``(input + output) / (2 * per)``: what searches filter and rankings
    sort on; ``None`` for an unpriced model."""
    if cost is None:
        return None
    return _CTX.divide(_CTX.add(cost.input_tokens, cost.output_tokens), 2 * cost.per)


def matches(query: EnhancedModelSearchQuery, model: ExtendedModelInfo) -> bool:
    """Whether ``model`` satisfies every filter set in ``query``.

    - ``provider``, ``capability``, ``status``: equality / membership;
    - ``min_context_window``/``max_context_window``: inclusive; a model without a context window fails them;
    - ``name_pattern``: a case-insensitive regular expression searched in the name and in the id;
    - ``tags``: the model's ``metadata["tags"]`` holds all of them;
    - ``max_cost_per_token``: the seed's ``(input + output) / (2 * per)`` is at most this;
    - ``min_version``/``max_version``: inclusive, compared as versions;
    - ``exclude_deprecated``: drops ``DEPRECATED`` models.
    """
    if query.provider is not None and model.provider != query.provider:
        return False
    if query.capability is not None and query.capability not in model.capabilities:
        return False
    if query.status is not None and model.status != query.status:
        return False
    if query.exclude_deprecated and model.status == ModelStatus.DEPRECATED:
        return False
    if query.min_context_window is not None and (
        model.context_window is None or model.context_window < query.min_context_window
    ):
        return False
    if query.max_context_window is not None and (
        model.context_window is None or model.context_window > query.max_context_window
    ):
        return False
    if query.name_pattern is not None:
        pattern = _compiled(query.name_pattern)
        if not (pattern.search(model.name) or pattern.search(model.id)):
            return False
    if query.tags:
        have = model.metadata.get("tags") or []
        if not all(tag in have for tag in query.tags):
            return False
    if query.max_cost_per_token is not None:
        unit = cost_per_token(model.cost)
        if unit is None or unit > query.max_cost_per_token:  # an unpriced model is not known to be cheap
            return False
    if query.min_version is not None and parse_version(model.version) < parse_version(query.min_version):
        return False
    return not (query.max_version is not None and parse_version(model.version) > parse_version(query.max_version))


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def performance_score(metrics: ModelPerformanceMetrics) -> float:
    """The seed's score: ``0.4 * success_rate + 0.3 * min(tps / 100, 1) + 0.3 * min(inferences / 1000, 1)``."""
    return (
        0.4 * metrics.success_rate
        + 0.3 * min(metrics.tokens_per_second / 100, 1.0)
        + 0.3 * min(metrics.total_inferences / 1000, 1.0)
    )


def top(
    items: Iterable[_T],
    key: Callable[[_T], object],
    limit: int | None,
    *,
    descending: bool,
) -> list[_T]:
    """``items`` sorted by ``key`` (stable: ties keep their order), cut to ``limit`` when given.

    Raises ``ValueError`` for a negative ``limit``.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    ranked = sorted(items, key=key, reverse=descending)  # type: ignore[arg-type]
    return ranked if limit is None else ranked[:limit]
