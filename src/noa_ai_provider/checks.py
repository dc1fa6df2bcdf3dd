"""Argument checks of the registry's front door: each turns a caller's values into checked ones or raises an error
that names the argument. Pure; no state."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from .cost import SERVICE_TIER_NAMES, check_token_count
from .errors import ConfigError, InvalidUsageError
from .schemas import EnhancedModelRegistryConfig, ExtendedModelInfo, validate_or_raise
from .stores.base import RequestUsage

__all__ = [
    "acquire_args",
    "as_list",
    "checked_clock",
    "context_overflow",
    "decimal_arg",
    "positive_int",
    "registry_settings",
    "seconds_arg",
    "usage_args",
]


def usage_args(
    input_tokens: int,
    output_tokens: int,
    success: bool,
    cached_input_tokens: int,
    cache_write_tokens: int,
    service_tier: str | None,
    cache_write_1h_tokens: int = 0,
) -> RequestUsage:
    """One request's usage, checked: counts are integers >= 0, the cache reads and writes fit in the input, the
    service tier is a known name. Raises :class:`InvalidUsageError`."""
    inp = check_token_count("input_tokens", input_tokens)
    out = check_token_count("output_tokens", output_tokens)
    cached = check_token_count("cached_input_tokens", cached_input_tokens) if cached_input_tokens else 0
    written = check_token_count("cache_write_tokens", cache_write_tokens) if cache_write_tokens else 0
    written_1h = check_token_count("cache_write_1h_tokens", cache_write_1h_tokens) if cache_write_1h_tokens else 0
    if not isinstance(success, bool):
        raise InvalidUsageError(f"success must be a bool, got {type(success).__name__}")
    if cached + written + written_1h > inp:
        raise InvalidUsageError(
            f"cached_input_tokens ({cached}) + cache_write_tokens ({written}) + cache_write_1h_tokens "
            f"({written_1h}) exceed input_tokens ({inp}); input_tokens includes them"
        )
    if service_tier is not None and (
        not isinstance(service_tier, str) or service_tier.strip().lower() not in SERVICE_TIER_NAMES
    ):
        raise InvalidUsageError(
            f"service_tier must be one of {', '.join(SERVICE_TIER_NAMES)} or None, got {service_tier!r}"
        )
    return RequestUsage(inp, out, success, cached, written + written_1h, service_tier, written_1h)


def acquire_args(input_tokens: int, max_output_tokens: int, timeout: float | None) -> tuple[int, int, float | None]:
    """The checked token counts and timeout of an ``acquire``. Raises :class:`InvalidUsageError`."""
    inp = check_token_count("input_tokens", input_tokens)
    out = check_token_count("max_output_tokens", max_output_tokens)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise InvalidUsageError(f"timeout must be a number >= 0 or None, got {timeout!r}")
        timeout = float(timeout)
    return inp, out, timeout


def context_overflow(key: str, model: ExtendedModelInfo, inp: int, out: int) -> str | None:
    """What a request of ``inp`` input and ``out`` output tokens exceeds of ``model``'s limits, or ``None``."""
    if model.context_window is not None and inp > model.context_window:
        return f"{key}: {inp:,} input tokens exceed the context window of {model.context_window:,} tokens"
    if model.max_tokens is not None and out > model.max_tokens:
        return f"{key}: {out:,} output tokens exceed the model's maximum output of {model.max_tokens:,} tokens"
    return None


def decimal_arg(name: str, value: object) -> Decimal:
    """``value`` as a finite ``Decimal`` >= 0 (a float through its shortest repr). Raises :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def positive_int(name: str, value: object) -> int:
    """``value`` when it is an integer > 0. Raises :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def seconds_arg(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as finite seconds > 0 (>= 0 with ``zero``). Raises :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{name} must be a number of seconds {'>=' if zero else '>'} 0, got {value!r}")
    return float(value)


def as_list(models: Iterable[Any]) -> list[Any]:
    """``models`` as a list; a mapping or a string (a common mistake) raises :class:`ConfigError`."""
    if isinstance(models, dict | str | bytes) or hasattr(models, "keys"):
        raise ConfigError(f"models must be a list of models, got {type(models).__name__}")
    return list(models)


_MAX_CLOCK = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last second a datetime can hold


def checked_clock(clock: Callable[[], Any]) -> Callable[[], float]:
    """``clock`` with every reading checked (:class:`ConfigError` for a bad one)."""

    # Every reading of the clock goes through this, before any state changes: a reading that is not a finite time
    # between 1970 and 9999 (NaN, infinity, milliseconds instead of seconds) is refused (ConfigError), so a bad
    # clock can neither poison state nor half-record a request. A reading before an earlier one is accepted
    # (history may be recorded on any day), but the rate-limit windows never go back (ratelimit.ModelLimiter), and
    # budgets only ever roll forward. (A function, not a method: the parts that read the clock hold no reference
    # to the registry, so a registry nobody holds is freed at once, without waiting for the cycle collector.)
    def now() -> float:
        raw = clock()
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"the registry's clock returned {raw!r}, not seconds since the epoch") from None
        if not 0.0 <= value <= _MAX_CLOCK:
            raise ConfigError(
                f"the registry's clock returned {raw!r}: not a time between 1970 and 9999 in seconds since the "
                "epoch; nothing was changed"
            )
        return value

    return now


def registry_settings(config: EnhancedModelRegistryConfig | Mapping[str, Any] | None, **explicit: Any) -> Any:
    """The registry's settings: ``config`` (a model or a mapping in either spelling), then the explicit arguments
    that are not ``None``. Raises :class:`ConfigError` naming the field."""
    settings: dict[str, Any] = {}
    if isinstance(config, EnhancedModelRegistryConfig):
        settings.update(config.model_dump(by_alias=False, exclude_unset=True))
    elif config is not None:
        checked = validate_or_raise(EnhancedModelRegistryConfig, dict(config), "config")
        settings.update(checked.model_dump(by_alias=False, exclude_unset=True))
    settings.update({k: v for k, v in explicit.items() if v is not None})
    return validate_or_raise(EnhancedModelRegistryConfig, settings, "EnhancedModelRegistry")
