-- Trailing windows of one model, exact sliding logs, for the Redis store: reserve every limit at once or none,
-- settle or release a reservation. The same rule as noa_ai_provider.ratelimit (an entry `age` seconds old counts
-- while age < window; the windows' time never goes back), kept in keys that all share the caller's hash tag:
--
--   <base>:t          HASH   limit name -> amount counted; "latest" -> the latest time seen
--   <base>:z:<name>   ZSET   entry -> timestamp
--   <base>:a:<name>   HASH   entry -> amount
--   <base>:r:<id>     HASH   limit name -> "entry|amount" a reservation holds (until settled or released)
--
-- An entry of an exact window is one reservation (its id). A window with a granularity (per-day limits, 60 s)
-- counts in buckets: a timestamp is rounded up to the end of its bucket and the reservations in one bucket share
-- it (conservative: they may refuse up to one bucket early, never late).
--
-- KEYS[1] is <base> (a hash tag and the model key). Amounts are integers below 2^53 (Lua numbers are doubles).

local base = KEYS[1]
local totals = base .. ":t"

-- The clock never goes back: a reading before the latest one is taken as the latest.
local function at(now)
  local latest = tonumber(redis.call("HGET", totals, "latest") or "-inf")
  if latest ~= nil and now < latest then
    return latest
  end
  redis.call("HSET", totals, "latest", string.format("%.17g", now))
  return now
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

-- Seconds until `amount` more fits in the window of `name` (counting `total`), walking the entries oldest first.
local function wait(name, span, limit, total, amount, now)
  local excess = total + amount - limit
  local z, a = base .. ":z:" .. name, base .. ":a:" .. name
  local entries = redis.call("ZRANGE", z, 0, -1, "WITHSCORES")
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(redis.call("HGET", a, entries[i]) or "0")
    if freed >= excess then
      return math.max(tonumber(entries[i + 1]) + span - now, 0)
    end
  end
  return 0
end

-- Whether one more request fits every limit at `now`: the limits read from ARGV from `first` on, as (name, limit,
-- span, granularity, amount), in the rule's order; then the binding limit and its retry_after ("never": the amount
-- alone is over it; on a tie the first limit binds; a cooldown binds as "retry-after").
local function verdict(now, first)
  local worst, reason = 0, nil
  local blocked = tonumber(redis.call("HGET", totals, "blocked") or "0")
  if now < blocked then
    worst, reason = blocked - now, "retry-after"
  end
  local limits = {}
  for i = first, #ARGV, 5 do
    local name, limit, span = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local granularity, amount = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    local total = expire(name, span, now)
    limits[#limits + 1] = { name, amount, total, granularity }
    if amount > limit then
      if worst ~= "never" then
        worst, reason = "never", name
      end
    elseif total + amount > limit then
      local seconds = wait(name, span, limit, total, amount, now)
      if worst ~= "never" and (reason == nil or seconds > worst) then
        worst, reason = seconds, name
      end
    end
  end
  return reason == nil, reason, worst, limits
end

local function refusal(now, reason, worst)
  return { 0, string.format("%.17g", now), reason, worst == "never" and "never" or string.format("%.17g", worst) }
end

-- check: ARGV = now, then the limits as for verdict. Reads only (the windows' expired entries go, and the clock
-- moves on). Returns {1, now}, or the refusal as reserve returns it.
local function check()
  local now = at(tonumber(ARGV[1]))
  local fits, reason, worst = verdict(now, 2)
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

-- reserve: ARGV = now, reservation id, then the limits as for verdict. Returns {1, now} when every window took its
-- amount, else {0, now, name, retry_after} for the binding limit.
local function reserve()
  local now = at(tonumber(ARGV[1]))
  local id = ARGV[2]
  local fits, reason, worst, limits = verdict(now, 3)
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

-- settle: ARGV = reservation id, then (name, amount) per limit: what the reservation holds becomes these amounts,
-- at its original time (0 gives it back). What already left its window changes nothing. Returns how many of its
-- entries were still held.
local function settle()
  local id = ARGV[1]
  local held = base .. ":r:" .. id
  local count = 0
  for i = 2, #ARGV, 2 do
    local name, amount = ARGV[i], tonumber(ARGV[i + 1])
    local spec = redis.call("HGET", held, name)
    if spec then
      local member, reserved = string.match(spec, "^(.*)|(%d+)$")
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
  end
  redis.call("DEL", held)
  return count
end
