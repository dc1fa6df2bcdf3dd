"""How the Redis store talks to its script: the script's text (the Lua libraries in ``stores/lua``, with the
prelude that unpacks the arguments), the arguments packed into one string, money and counters as the script
writes and reads them. No connection, no state."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any

from ...schemas import ModelUsageStats, utc_from_timestamp

__all__ = ["argv", "plain", "script", "text", "usage_stats"]

LIBRARIES = ("decimal", "budgets", "usage", "windows", "store")
SEP = "\x1f"  # the arguments of a call travel as one string (redis-py encodes each argument separately: ~0.6 µs)
PRELUDE = """-- The call's arguments: one string, split at \\31 (see stores/redis/wire.py), or as sent.
local ARGV = (function(argv)
  local packed = argv[1]
  if #argv ~= 1 or not string.find(packed, "\\31", 1, true) then
    return argv
  end
  local out, from = {}, 1
  while true do
    local at = string.find(packed, "\\31", from, true)
    if at == nil then
      out[#out + 1] = string.sub(packed, from)
      return out
    end
    out[#out + 1] = string.sub(packed, from, at - 1)
    from = at + 1
  end
end)(ARGV)
"""


def script() -> str:
    folder = resources.files("noa_ai_provider.stores").joinpath("lua")
    return PRELUDE + "\n".join(folder.joinpath(f"{name}.lua").read_text(encoding="utf-8") for name in LIBRARIES)


def argv(op: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    # One packed string, unless an argument holds the separator itself (then each argument as it is).
    text = SEP.join([op, *(a if type(a) is str else str(a) for a in args)])
    if text.count(SEP) != len(args):
        return (op, *args)
    return (text,)


def plain(value: Decimal) -> str:
    # Money as a script reads it: a plain decimal string, never an exponent.
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def usage_stats(u: dict[str, str], currency: str, now: float) -> ModelUsageStats:
    reset = u.get("reset")
    return ModelUsageStats(
        total_input_tokens=int(u.get("input", 0)),
        total_output_tokens=int(u.get("output", 0)),
        total_cached_input_tokens=int(u.get("cached", 0)),
        total_cache_write_tokens=int(u.get("written", 0)),
        total_cost=Decimal(u.get("cost", "0")),
        currency=currency,
        last_reset=utc_from_timestamp(float(reset) if reset else now),
        request_count=int(u.get("requests", 0)),
        successful_requests=int(u.get("ok", 0)),
        failed_requests=int(u.get("failed", 0)),
    )
