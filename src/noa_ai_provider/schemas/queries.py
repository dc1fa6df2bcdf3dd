"""The search query of the registry."""

from __future__ import annotations

import re
from typing import Annotated

from .base import AfterValidator, Strict, _Schema
from .enums import ModelCapability, ModelStatus
from .fields import NonNegativeInt, Price, Provider, Version

__all__ = ["EnhancedModelSearchQuery"]


def _valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


class EnhancedModelSearchQuery(_Schema):
    """Search filters; every given filter must hold. See :func:`noa_ai_provider.search.matches`."""

    provider: Provider | None = None
    capability: ModelCapability | None = None
    min_context_window: NonNegativeInt | None = None
    max_context_window: NonNegativeInt | None = None
    name_pattern: Annotated[str | None, AfterValidator(_valid_regex)] = None
    tags: list[Annotated[str, Strict()]] | None = None
    status: ModelStatus | None = None
    max_cost_per_token: Price | None = None
    min_version: Version | None = None
    max_version: Version | None = None
    exclude_deprecated: Annotated[bool, Strict()] = False
