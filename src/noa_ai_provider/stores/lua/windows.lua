-- Trailing windows of one model, exact sliding logs, for the Redis store: reserve every limit at once or none,
-- settle or release a reservation. The same rule as noa_ai_provider.ratelimit (an entry `age` seconds old counts
-- while age < window; the windows' time never goes back), kept in keys that all share the caller's hash tag:
--
--   <base>:t          HASH   limit name -> amount counted; "latest" -> the latest time seen
--   <base>:z:<name>   ZSET   entry -> timestamp
--   <base>:a:<name>   HASH   entry -> amount
--   <base>:r:<id>     HASH   limit name -> "entry|amount" a reservation holds (until settled or released)
--   <base>:learned    ZSET   limit name -> order learned (limits a provider's headers stated, not configured)
--   <base>:ll         HASH   limit name -> learned limit
--   in <base>:t, "ph:<name>" and "phu:<name>": a provider's report counted as used (a phantom) until then
--
-- An entry of an exact window is one reservation (its id). A window with a granularity (per-day limits, 60 s)
-- counts in buckets: a timestamp is rounded up to the end of its bucket and the reservations in one bucket share
-- it (conservative: they may refuse up to one bucket early, never late).
--
-- KEYS[1] is <base> (a hash tag and the model key). Amounts are integers below 2^53 (Lua numbers are doubles).

local base = KEYS[1]
local totals = base .. ":t"

-- What each limit counts (an index into the request's amounts: requests, tokens, input, output), its window in
-- seconds and its bucket (0: exact), as noa_ai_provider.ratelimit.REASONS says.
local SPEC = {
  requests_per_minute = { 1, 60, 0 },
  tokens_per_minute = { 2, 60, 0 },
  input_tokens_per_minute = { 3, 60, 0 },
  output_tokens_per_minute = { 4, 60, 0 },
  requests_per_day = { 1, 86400, 60 },
  tokens_per_day = { 2, 86400, 60 },
}

-- The clock never goes back: a reading before the latest one is taken as the latest.
local function at(now)
  local latest = tonumber(redis.call("HGET", totals, "latest") or "-inf")
  if latest ~= nil and now < latest then
    return latest
  end
  redis.call("HSET", totals, "latest", string.format("%.17g", now))
  return now
end

-- The provider-reported phantom of `name` still counted at `now`, and until when.
local function phantom(name, now)
  local amount = tonumber(redis.call("HGET", totals, "ph:" .. name) or "0")
  if amount == 0 then
    return 0, 0
  end
  local until_ = tonumber(redis.call("HGET", totals, "phu:" .. name))
  if now >= until_ then
    redis.call("HDEL", totals, "ph:" .. name, "phu:" .. name)
    return 0, 0
  end
  return amount, until_
end

-- Drop the entries that left the window of `name` at `now`; return the amount it still counts.
local function expire(name, span, now)
  local z, a = base .. ":z:" .. name, base .. ":a:" .. name
  local cutoff = now - span
  local total = tonumber(redis.call("HGET", totals, name) or "0")
  local gone = redis.call("ZRANGEBYSCORE", z, "-inf", string.format("%.17g", cutoff))
  if #gone > 0 then
    local amounts = redis.call("HMGET", a, unpack(gone))
    for _, amount in ipairs(amounts) do
      total = total - tonumber(amount or "0")
    end
    redis.call("HDEL", a, unpack(gone))
    redis.call("ZREMRANGEBYSCORE", z, "-inf", string.format("%.17g", cutoff))
    redis.call("HSET", totals, name, total)
  end
  return total
end

-- Seconds until `amount` more fits in the window of `name` (counting `total` and the phantom `ph` until `phu`),
-- walking the entries oldest first.
local function wait(name, span, limit, total, ph, phu, amount, now)
  local excess = total + ph + amount - limit
  local z, a = base .. ":z:" .. name, base .. ":a:" .. name
  local entries = redis.call("ZRANGE", z, 0, -1, "WITHSCORES")
  local freed = 0
  for i = 1, #entries, 2 do
    local expires = tonumber(entries[i + 1]) + span
    if ph > 0 and phu <= expires then
      freed = freed + ph
      ph = 0
      if freed >= excess then
        return math.max(phu - now, 0)
      end
    end
    freed = freed + tonumber(redis.call("HGET", a, entries[i]) or "0")
    if freed >= excess then
      return math.max(expires - now, 0)
    end
  end
  if ph > 0 then
    return math.max(phu - now, 0)
  end
  return 0
end

-- The limits in force: the configured ones from ARGV (from `first` on, (name, limit) pairs, in the rule's order),
-- then the learned ones, in the order they were learned.
local function in_force(first)
  local limits, named = {}, {}
  for i = first, #ARGV, 2 do
    limits[#limits + 1] = { ARGV[i], tonumber(ARGV[i + 1]) }
    named[ARGV[i]] = true
  end
  for _, name in ipairs(redis.call("ZRANGE", base .. ":learned", 0, -1)) do
    if not named[name] then
      limits[#limits + 1] = { name, tonumber(redis.call("HGET", base .. ":ll", name)) }
    end
  end
  return limits
end

-- Whether one more request of these amounts ({1, tokens, input, output}) fits every limit in force at `now`
-- (limits from ARGV `first` on: see in_force); then the binding limit and its retry_after ("never": the amount
-- alone is over it; on a tie the first limit binds; a cooldown binds as "retry-after").
local function verdict(now, first, amounts)
  local worst, reason = 0, nil
  local blocked = tonumber(redis.call("HGET", totals, "blocked") or "0")
  if now < blocked then
    worst, reason = blocked - now, "retry-after"
  end
  local limits = {}
  for _, spec in ipairs(in_force(first)) do
    local name, limit = spec[1], spec[2]
    local kind, span, granularity = SPEC[name][1], SPEC[name][2], SPEC[name][3]
    local amount = amounts[kind]
    local total = expire(name, span, now)
    local ph, phu = phantom(name, now)
    limits[#limits + 1] = { name, amount, total, granularity }
    if amount > limit then
      if worst ~= "never" then
        worst, reason = "never", name
      end
    elseif total + ph + amount > limit then
      local seconds = wait(name, span, limit, total, ph, phu, amount, now)
      if worst ~= "never" and (reason == nil or seconds > worst) then
        worst, reason = seconds, name
      end
    end
  end
  return reason == nil, reason, worst, limits
end

local function amounts_at(i)
  local tokens, input, output = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  return { 1, tokens, input, output }
end

local function refusal(now, reason, worst)
  return { 0, string.format("%.17g", now), reason, worst == "never" and "never" or string.format("%.17g", worst) }
end

-- check: ARGV = now, tokens, input tokens, output tokens, then the configured limits as (name, limit) pairs. Reads
-- only (the windows' expired entries go, and the clock moves on). Returns {1, now}, or the refusal as reserve does.
local function check()
  local now = at(tonumber(ARGV[1]))
  local fits, reason, worst = verdict(now, 5, amounts_at(2))
  if fits then
    return { 1, string.format("%.17g", now) }
  end
  return refusal(now, reason, worst)
end

-- block: ARGV = until. Nothing is admitted before then (a provider's retry-after); never shortens a cooldown.
local function block()
  local blocked = tonumber(redis.call("HGET", totals, "blocked") or "0")
  if tonumber(ARGV[1]) > blocked then
    redis.call("HSET", totals, "blocked", ARGV[1])
  end
  return 1
end

-- reserve: ARGV = now, reservation id, tokens, input tokens, output tokens, then the configured limits as (name,
-- limit) pairs. Returns {1, now} when every window in force took its amount, else {0, now, name, retry_after} for
-- the binding limit.
local function reserve()
  local now = at(tonumber(ARGV[1]))
  local id = ARGV[2]
  local fits, reason, worst, limits = verdict(now, 6, amounts_at(3))
  if not fits then
    return refusal(now, reason, worst)
  end
  local held = base .. ":r:" .. id
  for _, entry in ipairs(limits) do
    local name, amount, total, granularity = entry[1], entry[2], entry[3], entry[4]
    local member, stamp = id, now
    if granularity > 0 then
      stamp = (math.floor(now / granularity) + 1) * granularity
      member = string.format("%.17g", stamp)
    end
    redis.call("ZADD", base .. ":z:" .. name, string.format("%.17g", stamp), member)
    redis.call("HINCRBY", base .. ":a:" .. name, member, amount)
    redis.call("HSET", totals, name, total + amount)
    redis.call("HSET", held, name, member .. "|" .. amount)
  end
  return { 1, string.format("%.17g", now) }
end

-- settle: ARGV = reservation id, requests (1, or 0 to give it back), tokens, input tokens, output tokens: what the
-- reservation holds in each window becomes these amounts, at its original time. What already left its window
-- changes nothing. Returns how many of its entries were still held.
local function settle()
  local id = ARGV[1]
  local held = base .. ":r:" .. id
  local amounts = { tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]) }
  local count = 0
  local specs = redis.call("HGETALL", held)
  for i = 1, #specs, 2 do
    local name = specs[i]
    local member, reserved = string.match(specs[i + 1], "^(.*)|(%d+)$")
    local amount = amounts[SPEC[name][1]]
    local a = base .. ":a:" .. name
    if redis.call("HEXISTS", a, member) == 1 then
      count = count + 1
      local delta = amount - tonumber(reserved)
      redis.call("HINCRBY", a, member, delta)
      redis.call("HSET", totals, name, tonumber(redis.call("HGET", totals, name) or "0") + delta)
      if amount == 0 and member == id then -- a reservation's own entry, given back: it goes
        redis.call("HDEL", a, member)
        redis.call("ZREM", base .. ":z:" .. name, member)
      end
    end
  end
  redis.call("DEL", held)
  return count
end

-- report: ARGV = now, limit name, its configured limit ("" when none), the provider's limit ("" when not stated),
-- remaining, reset time. The window counts no more than `remaining` as free until the reset (a phantom; a newer
-- report replaces it, and it never loosens below what was counted here). Without a configured limit, one is
-- learned from the provider's limit (and follows it when it changes).
local function report()
  local now = at(tonumber(ARGV[1]))
  local name, configured, stated = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  local remaining, reset_at = tonumber(ARGV[5]), tonumber(ARGV[6])
  local limit = configured
  if limit == nil then
    local learned = tonumber(redis.call("HGET", base .. ":ll", name))
    if stated ~= nil and stated > 0 then
      if learned == nil then
        redis.call("ZADD", base .. ":learned", redis.call("HINCRBY", totals, "learned-seq", 1), name)
      end
      redis.call("HSET", base .. ":ll", name, stated)
      limit = stated
    else
      limit = learned
    end
    if limit == nil then
      return 0
    end
  end
  local span = SPEC[name][2]
  local total = expire(name, span, now)
  phantom(name, now)
  redis.call("HDEL", totals, "ph:" .. name, "phu:" .. name)
  local missing = limit - math.max(remaining, 0) - total
  if missing > 0 and reset_at > now then
    redis.call("HSET", totals, "ph:" .. name, missing, "phu:" .. name, string.format("%.17g", math.min(reset_at, now + span)))
  end
  return 1
end
