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
-- Every function takes <base> (a hash tag and the model key) first, so one script can work on several models
-- (an expiry sweep releases other models' reservations). The functions without the win_ prefix at the end are the
-- single operations, reading KEYS[1] and ARGV (the differential tests call them). Amounts are integers below 2^53
-- (Lua numbers are doubles). Configured limits travel as a list of {name, limit}; limit false is a shadow: a limit
-- removed from the configuration whose window still counts traffic, unenforced, in case it comes back.

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
local KEEP = 86460 -- seconds a model's window bookkeeping outlives its last write (the longest window and a bucket)
local MAX_ENTRIES = 10000 -- entries of an exact window without a request limit to bound it

-- Fold the oldest entries of `name` into the next one until it holds `cap`: counted a little longer (never less),
-- as the memory store does. An open reservation's own entry is never folded (its settle must find it).
local function fold(base, name, cap)
  local z, a = base .. ":z:" .. name, base .. ":a:" .. name
  local excess = redis.call("ZCARD", z) - cap
  while excess > 0 do
    local two = redis.call("ZRANGE", z, 0, 1)
    if #two < 2 or redis.call("EXISTS", base .. ":r:" .. two[1]) == 1 then
      return
    end
    redis.call("HINCRBY", a, two[2], redis.call("HGET", a, two[1]) or "0")
    redis.call("HDEL", a, two[1])
    redis.call("ZREM", z, two[1])
    excess = excess - 1
  end
end

local function fmt(x)
  return string.format("%.17g", x)
end

-- An integer amount as Redis reads one (a Lua number passed to redis.call is written "%.14g": 1e+15, not an integer).
local function int(x)
  return string.format("%d", x)
end

-- <base>:t read once per script (one HGETALL instead of a call per field); the fields changed are written back in
-- one HSET by tflush(), which every operation calls before it returns.
local REFRESH = 600 -- seconds between refreshes of the window keys' expiry (each key outlives a refresh by more)
local T = {}
local DIRTY = {} -- base -> {field -> true}
local RENEW = {} -- bases whose <base>:t gets its expiry pushed back when flushed

local function tget(base, field)
  local t = T[base]
  if t == nil then
    t = {}
    local all = redis.call("HGETALL", base .. ":t")
    for i = 1, #all, 2 do
      t[all[i]] = all[i + 1]
    end
    T[base] = t
  end
  return t[field]
end

local function tset(base, field, value)
  tget(base, field)
  T[base][field] = value
  local dirty = DIRTY[base]
  if dirty == nil then
    dirty = {}
    DIRTY[base] = dirty
  end
  dirty[field] = true
end

local function tdel(base, ...)
  tget(base, "latest")
  local dirty = DIRTY[base]
  for _, field in ipairs({ ... }) do
    T[base][field] = nil
    if dirty then
      dirty[field] = nil
    end
  end
  redis.call("HDEL", base .. ":t", ...)
end

-- Write every changed field of every <base>:t back (one HSET per model).
local function tflush()
  for base, dirty in pairs(DIRTY) do
    local args = {}
    for field, _ in pairs(dirty) do
      args[#args + 1] = field
      args[#args + 1] = T[base][field]
    end
    if #args > 0 then
      redis.call("HSET", base .. ":t", unpack(args))
    end
  end
  for base, _ in pairs(RENEW) do -- (after the HSET: a new hash gets its expiry too)
    redis.call("EXPIRE", base .. ":t", KEEP + REFRESH)
  end
  DIRTY = {}
  RENEW = {}
end

-- Whether the expiry of <base>'s window keys is due for a refresh (then noted as done at `now`).
local function refresh_due(base, now)
  local last = tonumber(tget(base, "refreshed") or "-inf")
  if now >= last + REFRESH or now < last then
    tset(base, "refreshed", fmt(now))
    RENEW[base] = true
    return true
  end
  return false
end

-- The clock never goes back: a reading before the latest one is taken as the latest.
local function win_at(base, now)
  local latest = tonumber(tget(base, "latest") or "-inf")
  if latest ~= nil and now < latest then
    return latest
  end
  tset(base, "latest", fmt(now))
  refresh_due(base, now)
  return now
end

-- The provider-reported phantom of `name` still counted at `now`, and until when.
local function phantom(base, name, now)
  local amount = tonumber(tget(base, "ph:" .. name) or "0")
  if amount == 0 then
    return 0, 0
  end
  local until_ = tonumber(tget(base, "phu:" .. name))
  if now >= until_ then
    tdel(base, "ph:" .. name, "phu:" .. name)
    return 0, 0
  end
  return amount, until_
end

-- Drop the entries that left the window of `name` at `now`; return the amount it still counts. In chunks: after a
-- pause in heavy traffic a whole minute of entries leaves at once (Lua's unpack takes at most ~8,000 values).
local function expire(base, name, span, now)
  local z, a = base .. ":z:" .. name, base .. ":a:" .. name
  local cutoff = fmt(now - span)
  local total = tonumber(tget(base, name) or "0")
  local changed = false
  while true do
    local gone = redis.call("ZRANGEBYSCORE", z, "-inf", cutoff, "LIMIT", 0, 1000)
    if #gone == 0 then
      break
    end
    local amounts = redis.call("HMGET", a, unpack(gone))
    for _, amount in ipairs(amounts) do
      total = total - tonumber(amount or "0")
    end
    redis.call("HDEL", a, unpack(gone))
    redis.call("ZREM", z, unpack(gone))
    changed = true
    if #gone < 1000 then
      break
    end
  end
  if changed then
    tset(base, name, int(total))
  end
  return total
end

-- Seconds until `amount` more fits in the window of `name` (counting `total` and the phantom `ph` until `phu`),
-- walking the entries oldest first, a chunk at a time (one ZRANGE and one HMGET per chunk, not a call per entry).
local function wait(base, name, span, limit, total, ph, phu, amount, now)
  local excess = total + ph + amount - limit
  local z, a = base .. ":z:" .. name, base .. ":a:" .. name
  local freed = 0
  local first = 0
  while true do
    local entries = redis.call("ZRANGE", z, first, first + 127, "WITHSCORES")
    if #entries == 0 then
      break
    end
    local members = {}
    for i = 1, #entries, 2 do
      members[#members + 1] = entries[i]
    end
    local amounts = redis.call("HMGET", a, unpack(members))
    for i = 1, #entries, 2 do
      local expires = tonumber(entries[i + 1]) + span
      if ph > 0 and phu <= expires then
        freed = freed + ph
        ph = 0
        if freed >= excess then
          return math.max(phu - now, 0)
        end
      end
      freed = freed + tonumber(amounts[(i + 1) / 2] or "0")
      if freed >= excess then
        return math.max(expires - now, 0)
      end
    end
    first = first + 128
  end
  if ph > 0 then
    return math.max(phu - now, 0)
  end
  return 0
end

-- The windows that count traffic: the configured limits (a list of {name, limit}, in the rule's order; limit
-- false for a shadow), then the learned ones, in the order they were learned.
local function in_force(base, configured)
  local limits, named = {}, {}
  for _, spec in ipairs(configured) do
    limits[#limits + 1] = spec
    named[spec[1]] = true
  end
  if redis.call("EXISTS", base .. ":ll") == 1 then
    for _, name in ipairs(redis.call("ZRANGE", base .. ":learned", 0, -1)) do
      if not named[name] then
        limits[#limits + 1] = { name, tonumber(redis.call("HGET", base .. ":ll", name)) }
      end
    end
  end
  return limits
end

-- Whether one more request of these amounts ({1, tokens, input, output}) fits every limit in force at `now`;
-- then the binding limit and its retry_after ("never": the amount alone is over it; on a tie the first limit
-- binds; a cooldown binds as "retry-after"), and the windows that count it ({name, amount, total, bucket}).
local function verdict(base, now, configured, amounts)
  local worst, reason = 0, nil
  local blocked = tonumber(tget(base, "blocked") or "0")
  if now < blocked then
    worst, reason = blocked - now, "retry-after"
  end
  local windows = {}
  local rpm = nil
  for _, spec in ipairs(configured) do
    if spec[1] == "requests_per_minute" and spec[2] then
      rpm = spec[2]
    end
  end
  for _, spec in ipairs(in_force(base, configured)) do
    local name, limit = spec[1], spec[2]
    local kind, span, granularity = SPEC[name][1], SPEC[name][2], SPEC[name][3]
    local amount = amounts[kind]
    local total = expire(base, name, span, now)
    -- At most this many entries (as the memory store's windows): a request window holds its limit + 1, a token
    -- window the request limit + 1 (or MAX_ENTRIES); beyond, the oldest settled entries fold into the next.
    local cap = MAX_ENTRIES
    if kind == 1 and limit then
      cap = limit + 1
    elseif kind ~= 1 and rpm then
      cap = rpm + 1
    end
    windows[#windows + 1] = { name, amount, total, granularity, cap }
    if limit then
      local ph, phu = phantom(base, name, now)
      if amount > limit then
        if worst ~= "never" then
          worst, reason = "never", name
        end
      elseif total + ph + amount > limit then
        local seconds = wait(base, name, span, limit, total, ph, phu, amount, now)
        if worst ~= "never" and (reason == nil or seconds > worst) then
          worst, reason = seconds, name
        end
      end
    end
  end
  return reason == nil, reason, worst, windows
end

-- Count `amounts` in `windows` (as verdict returned them) at `now`, as the entry `id`; with `held`, remember what
-- the reservation holds there until it is settled or released (the hash expires after `ttl` seconds and a margin).
local function take(base, now, id, windows, held, ttl)
  local refresh = refresh_due(base, now)
  local holds = {}
  for _, w in ipairs(windows) do
    local name, amount, total, granularity, cap = w[1], w[2], w[3], w[4], w[5]
    local member, stamp = id, now
    if granularity > 0 then
      stamp = (math.floor(now / granularity) + 1) * granularity
      member = fmt(stamp)
    end
    local z, a = base .. ":z:" .. name, base .. ":a:" .. name
    redis.call("ZADD", z, fmt(stamp), member)
    redis.call("HINCRBY", a, member, int(amount))
    tset(base, name, int(total + amount))
    if granularity == 0 and cap then
      fold(base, name, cap)
    end
    if refresh or total == 0 then -- (an empty window may be a new key: it gets its expiry at once)
      local keep = SPEC[name][2] + granularity + REFRESH + 1
      redis.call("EXPIRE", z, keep)
      redis.call("EXPIRE", a, keep)
    end
    if held then
      holds[#holds + 1] = name
      holds[#holds + 1] = member .. "|" .. int(amount)
    end
  end
  if held and #holds > 0 then
    redis.call("HSET", held, unpack(holds))
    redis.call("EXPIRE", held, math.ceil(ttl) + KEEP)
  end
end

local function refusal(now, reason, worst)
  return { 0, fmt(now), reason, worst == "never" and "never" or fmt(worst) }
end

-- win_reserve: take one request of `amounts` in every window in force, or nothing. {1, now} or the refusal
-- {0, now, limit name, retry_after}.
local function win_reserve(base, now, id, configured, amounts, ttl)
  local fits, reason, worst, windows = verdict(base, now, configured, amounts)
  if not fits then
    return refusal(now, reason, worst)
  end
  take(base, now, id, windows, base .. ":r:" .. id, ttl)
  return { 1, fmt(now) }
end

-- win_record: count a request that happened (no check; nothing held).
local function win_record(base, now, id, configured, amounts)
  local _, _, _, windows = verdict(base, now, configured, amounts)
  take(base, now, id, windows, nil, 0)
end

-- win_settle: what the reservation `id` holds in each window becomes `amounts` ({requests, tokens, input,
-- output}; requests 0 gives it back), at its original time. What already left its window changes nothing.
-- Returns how many of its entries were still held (0 also when it holds nothing any more).
local function win_settle(base, id, amounts)
  local held = base .. ":r:" .. id
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
      if delta ~= 0 then
        redis.call("HINCRBY", a, member, int(delta))
        tset(base, name, int(tonumber(tget(base, name) or "0") + delta))
      end
      -- A reservation's own entry given back goes (unless older entries were folded into it), so that empty entries
      -- never count toward the window's cap.
      if amount == 0 and member == id and tonumber(redis.call("HGET", a, member)) == 0 then
        redis.call("HDEL", a, member)
        redis.call("ZREM", base .. ":z:" .. name, member)
      end
    end
  end
  redis.call("DEL", held)
  return count
end

-- win_totals: what each window in force counts at `now`, phantoms included, as {name, amount, ...}.
local function win_totals(base, now, configured)
  local out = {}
  for _, spec in ipairs(in_force(base, configured)) do
    local name = spec[1]
    if spec[2] then
      local ph = phantom(base, name, now)
      out[#out + 1] = name
      out[#out + 1] = expire(base, name, SPEC[name][2], now) + ph
    end
  end
  return out
end

-- win_block: nothing is admitted before `until_` (a provider's retry-after); never shortens a cooldown.
local function win_block(base, until_)
  local blocked = tonumber(tget(base, "blocked") or "0")
  if until_ > blocked then
    tset(base, "blocked", fmt(until_))
    RENEW[base] = true
  end
end

-- win_report: the window of `name` counts no more than `remaining` as free until `reset_at` (a phantom; a newer
-- report replaces it, and it never loosens below what was counted here). Without a configured limit (`configured`
-- nil), one is learned from the provider's `stated` limit (and follows it when it changes).
local function win_report(base, now, name, configured, stated, remaining, reset_at)
  local totals = base .. ":t"
  tflush()
  T[base] = nil -- (written directly below: read afresh next time)
  local limit = configured
  if limit == nil then
    local learned = tonumber(redis.call("HGET", base .. ":ll", name))
    if stated ~= nil and stated > 0 then
      if learned == nil then
        redis.call("ZADD", base .. ":learned", redis.call("HINCRBY", totals, "learned-seq", 1), name)
      end
      redis.call("HSET", base .. ":ll", name, int(stated))
      redis.call("EXPIRE", base .. ":ll", KEEP)
      redis.call("EXPIRE", base .. ":learned", KEEP)
      limit = stated
    else
      limit = learned
    end
    if limit == nil then
      return 0
    end
  end
  local span = SPEC[name][2]
  local total = expire(base, name, span, now)
  phantom(base, name, now)
  tdel(base, "ph:" .. name, "phu:" .. name)
  local missing = limit - math.max(remaining, 0) - total
  if missing > 0 and reset_at > now then
    tset(base, "ph:" .. name, int(missing))
    tset(base, "phu:" .. name, fmt(math.min(reset_at, now + span)))
  end
  return 1
end

-- win_learned: the learned limits, as {name, limit, ...}.
local function win_learned(base)
  local out = {}
  for _, name in ipairs(redis.call("ZRANGE", base .. ":learned", 0, -1)) do
    out[#out + 1] = name
    out[#out + 1] = redis.call("HGET", base .. ":ll", name)
  end
  return out
end

-- ---------------------------------------------------------------- single operations (KEYS[1] = <base>)

-- The configured limits from ARGV (from `first` on, (name, limit) pairs).
local function limits_from(first)
  local configured = {}
  for i = first, #ARGV, 2 do
    configured[#configured + 1] = { ARGV[i], tonumber(ARGV[i + 1]) }
  end
  return configured
end

local function amounts_at(i)
  return { 1, tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]) }
end

-- check: ARGV = now, tokens, input tokens, output tokens, then the configured limits as (name, limit) pairs.
-- Returns {1, now}, or the refusal as reserve does.
local function check()
  local base = KEYS[1]
  local now = win_at(base, tonumber(ARGV[1]))
  local fits, reason, worst = verdict(base, now, limits_from(5), amounts_at(2))
  tflush()
  if fits then
    return { 1, fmt(now) }
  end
  return refusal(now, reason, worst)
end

-- block: ARGV = until.
local function block()
  win_block(KEYS[1], tonumber(ARGV[1]))
  tflush()
  return 1
end

-- reserve: ARGV = now, reservation id, tokens, input tokens, output tokens, then the configured limits as (name,
-- limit) pairs. {1, now} when every window in force took its amount, else {0, now, name, retry_after}.
local function reserve()
  local base = KEYS[1]
  local now = win_at(base, tonumber(ARGV[1]))
  local result = win_reserve(base, now, ARGV[2], limits_from(6), amounts_at(3), 3600)
  tflush()
  return result
end

-- settle: ARGV = reservation id, requests (1, or 0 to give it back), tokens, input tokens, output tokens.
local function settle()
  local amounts = { tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]) }
  local count = win_settle(KEYS[1], ARGV[1], amounts)
  tflush()
  return count
end

-- report: ARGV = now, limit name, its configured limit ("" when none), the provider's limit ("" when not
-- stated), remaining, reset time.
local function report()
  local base = KEYS[1]
  local now = win_at(base, tonumber(ARGV[1]))
  local result = win_report(base, now, ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
  tflush()
  return result
end
