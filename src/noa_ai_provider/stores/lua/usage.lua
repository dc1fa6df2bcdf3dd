-- Usage counters and daily history of one model, for the Redis store (needs decimal.lua before it). The same
-- bookkeeping as noa_ai_provider.cost.UsageCounters and UsageHistory, in keys under the caller's hash tag:
--
--   <base>:u        HASH   input, output, cached, written, requests, ok, failed (integers), cost (decimal)
--   <base>:h        HASH   "<day>:input" ... "<day>:cost" per UTC day (days since 1970-01-01)
--   <base>:days     ZSET   day -> day (the days held, oldest first; at most MAX_DAYS)
--
-- Counts are passed as decimal strings and added with HINCRBY (64-bit, exact), never through Lua numbers.

local MAX_DAYS = 400
local COUNTS = { "input", "output", "cached", "written" }

-- usage_add(base, day, counts, cost, success): count one request (counts: input, output, cached, written).
local function usage_add(base, day, counts, cost, success)
  local u, h = base .. ":u", base .. ":h"
  for i, name in ipairs(COUNTS) do
    redis.call("HINCRBY", u, name, counts[i])
    redis.call("HINCRBY", h, day .. ":" .. name, counts[i])
  end
  redis.call("HINCRBY", u, "requests", 1)
  redis.call("HINCRBY", u, success and "ok" or "failed", 1)
  redis.call("HINCRBY", h, day .. ":requests", 1)
  redis.call("HSET", u, "cost", dec_add(redis.call("HGET", u, "cost") or "0", cost))
  redis.call("HSET", h, day .. ":cost", dec_add(redis.call("HGET", h, day .. ":cost") or "0", cost))
  local days = base .. ":days"
  if redis.call("ZADD", days, day, day) == 1 and redis.call("ZCARD", days) > MAX_DAYS then -- the oldest day goes
    local oldest = redis.call("ZRANGE", days, 0, 0)[1]
    redis.call("ZREM", days, oldest)
    for _, name in ipairs({ "input", "output", "cached", "written", "requests", "cost" }) do
      redis.call("HDEL", h, oldest .. ":" .. name)
    end
  end
end
