-- The Redis store's operations, one script (after decimal.lua, budgets.lua, usage.lua and windows.lua): ARGV[1]
-- names the operation, so the store loads one script once and every operation is one EVALSHA, atomic.
--
-- KEYS[1] is the namespace, a hash tag ("{noa:NAME}"): every key below starts with it, so a namespace lives in one
-- Cluster slot and a script may touch any model of it (a global budget, an expiry sweep). Keys:
--
--   <ns>:m:<model>:...   the model's windows (windows.lua) and usage (usage.lua: :u counters, :h history, :days)
--   <ns>:models          SET    the models defined in the namespace
--   <ns>:budgets         HASH   "<model or *>|<period>" -> budget (budgets.lua's format, with its identity)
--   <ns>:open            ZSET   open reservation id -> when it expires
--   <ns>:res:<id>        HASH   an open reservation: model, its budget holds ("field|ident|amount" lines)
--   <ns>:done:<id>       STRING what became of a reservation: "committed" or "cancelled" (kept an hour)
--   <ns>:seq             STRING the namespace's change counter
--
-- Time is the server's (TIME) unless ARGV[2] gives one (a registry's test clock). Money is decimal strings.

local ns = KEYS[1]
-- How long Redis remembers what became of a reservation (or a record's id), so that a commit sent again counts once:
-- an hour covers a client's retries and an outage's; a day cost ~150 bytes per request for a day (bench_redis.py).
local DONE_KEEP = 3600
local SWEEP = 16 -- expired reservations released per operation at most (the rest by the next ones)
local USAGE_KEEP = 400 * 86400 -- usage outlives its last write by the history's length

local function now_from(arg)
  if arg ~= nil and arg ~= "" then
    return tonumber(arg)
  end
  local t = redis.call("TIME")
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function model_base(key)
  return ns .. ":m:" .. key
end

local function bump()
  return redis.call("INCR", ns .. ":seq")
end

-- Configured limits from ARGV (from `first`: name, limit pairs; limit "" is a shadow window).
local function configured_from(first)
  local configured = {}
  for i = first, #ARGV, 2 do
    local limit = ARGV[i + 1]
    configured[#configured + 1] = { ARGV[i], limit ~= "" and tonumber(limit) or false }
  end
  return configured
end

-- ---------------------------------------------------------------- budgets of a model

local function applying(key)
  local out = {}
  local all = redis.call("HGETALL", ns .. ":budgets")
  for i = 1, #all, 2 do
    local field = all[i]
    local scope = string.match(field, "^(.*)|[^|]*$")
    if scope == "*" or scope == key then
      out[#out + 1] = { field, budget_read(all[i + 1]) }
    end
  end
  return out
end

local function save_budget(field, b)
  redis.call("HSET", ns .. ":budgets", field, budget_write(b))
end

-- Give back what a reservation holds in budgets (only budgets with the identity it held).
local function release_budgets(res)
  local holds = redis.call("HGET", res, "budgets")
  if not holds or holds == "" then
    return
  end
  for line in string.gmatch(holds, "[^;]+") do
    local field, ident, amount = string.match(line, "^(.*)|([^|]*)|([^|]*)$")
    local text = redis.call("HGET", ns .. ":budgets", field)
    if text then
      local b = budget_read(text)
      if b.ident == ident then
        b.reserved = dec_sub(b.reserved, amount)
        save_budget(field, b)
      end
    end
  end
end

-- Charge a recorded cost to every budget of `key`: the events, as a flat list of event, scope, period, limit, spent.
local function charge_budgets(key, cost, now)
  local events = {}
  for _, item in ipairs(applying(key)) do
    local field, b = item[1], item[2]
    budget_roll(b, now)
    for _, event in ipairs(budget_charge(b, cost)) do
      local scope, period = string.match(field, "^(.*)|([^|]*)$")
      for _, v in ipairs({ event, scope, period, b.limit, b.spent }) do
        events[#events + 1] = v
      end
    end
    save_budget(field, b)
  end
  return events
end

-- ---------------------------------------------------------------- reservations

-- Waiters in every process hear that capacity of `key` may have been freed (stores/redis/follow.py subscribes to this
-- channel while some of its callers wait).
local function freed(key)
  redis.call("PUBLISH", ns .. ":freed", key)
end

local function close_reservation(id, state)
  local res = ns .. ":res:" .. id
  local key = redis.call("HGET", res, "key")
  if key then
    win_settle(model_base(key), id, { 0, 0, 0, 0 })
    release_budgets(res)
    redis.call("DEL", res)
    freed(key)
  end
  redis.call("ZREM", ns .. ":open", id)
  redis.call("SET", ns .. ":done:" .. id, state, "EX", DONE_KEEP)
  return key
end

-- Release the reservations open past their expiry (a process that died, or forgot them); their ids.
local function sweep(now)
  local due = redis.call("ZRANGEBYSCORE", ns .. ":open", "-inf", string.format("%.17g", now), "LIMIT", 0, SWEEP)
  for _, id in ipairs(due) do
    close_reservation(id, "expired")
  end
  return due
end

-- Count one request in the model's usage and budgets: counts are input, output, cached, written.
local function charge(key, now, counts, cost, success)
  local base = model_base(key)
  local u = base .. ":u"
  local before = redis.call("HMGET", u, "reset", "kept")
  usage_add(base, math.floor(now / 86400), counts, cost, success)
  if not before[1] then
    redis.call("HSET", u, "reset", string.format("%.17g", now))
  end
  -- The usage keys' expiry is pushed back once a day, not on every request (each outlives a day by far).
  local day = math.floor(now / 86400)
  if tonumber(before[2] or "-1") ~= day then
    redis.call("HSET", u, "kept", day)
    for _, name in ipairs({ u, base .. ":h", base .. ":days" }) do
      redis.call("EXPIRE", name, USAGE_KEEP)
    end
  end
  local events = charge_budgets(key, cost, now)
  return { redis.call("HGET", u, "cost"), 0, events }
end

local function recorded(status, now, charged)
  local out = { status, string.format("%.17g", now), charged[1], charged[2] }
  for _, v in ipairs(charged[3]) do
    out[#out + 1] = v
  end
  return out
end

-- Only the operation called is defined: creating a closure over this chunk's many locals costs about 0.5 µs,
-- and every EVALSHA runs the whole chunk again (bench_redis.py measured ~8 µs for defining them all).
local OPS = {}
local WANTED = ARGV[1]

-- ---------------------------------------------------------------- waiting across processes
--
-- A caller that waits (acquire(wait=True), in any process) and is refused leaves a claim in the model's queue
-- (<model>:q, oldest first; <model>:qa holds its amounts and how long it lives). While the oldest live claim is not
-- the caller's, nobody else takes capacity: a big request is not starved by a stream of small ones from other
-- processes; it is admitted as soon as the windows have room for it (within a window of its claim). A claim lives
-- until its waiter's next attempt is due plus CLAIM_GRACE seconds, so a waiter that gave up (or died) holds
-- nobody up for longer.

local CLAIM_GRACE = 5

local function claim(base, now, waiter, amounts, retry_after)
  redis.call("ZADD", base .. ":q", "NX", now, waiter)
  local alive = now + retry_after + CLAIM_GRACE
  redis.call("HSET", base .. ":qa", waiter, table.concat({ amounts[2], amounts[3], amounts[4], alive }, "|"))
  redis.call("EXPIRE", base .. ":q", math.ceil(retry_after + CLAIM_GRACE) + 60)
  redis.call("EXPIRE", base .. ":qa", math.ceil(retry_after + CLAIM_GRACE) + 60)
end

-- The refusal a caller gets because an earlier waiter (not `waiter`) has the model's next turn, or nil.
local function head_waiter(base, now, configured, waiter)
  local q, qa = base .. ":q", base .. ":qa"
  for _ = 1, 8 do
    local head = redis.call("ZRANGE", q, 0, 0)[1]
    if head == nil or head == waiter then
      return nil
    end
    local text = redis.call("HGET", qa, head)
    local t, i, o, alive
    if text then
      t, i, o, alive = string.match(text, "^([^|]*)|([^|]*)|([^|]*)|([^|]*)$")
    end
    if text and tonumber(alive) > now then
      local fits, reason, worst = verdict(base, now, configured, { 1, tonumber(t), tonumber(i), tonumber(o) })
      if fits then -- its turn now: the others wait for it to take it
        return { 0, string.format("%.17g", now), "queued", "0.05" }
      end
      return refusal(now, reason, worst)
    end
    redis.call("ZREM", q, head) -- gone (gave up, timed out, died)
    redis.call("HDEL", qa, head)
  end
  return nil
end

-- reserve: now, id, ttl, worst case ("" unpriced), model, tokens, input, output, waiter ("" when the caller does
-- not wait), then limits.
-- {1, now, expires} admitted; {0, now, limit, retry_after} refused by a window; {2, scope, period, limit, spent,
-- reserved} refused by a budget; {3} unpriced under a budget; each also lists the reservations it expired.
if WANTED == "reserve" then
  function OPS.reserve()
    local now = now_from(ARGV[2])
    local id, ttl, worst, key = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
    local res = ns .. ":res:" .. id
    local taken = redis.call("HMGET", res, "at", "expires")
    if taken[1] then -- sent again (a client's retry after a lost reply): the reservation already taken
      return { 1, taken[1], taken[2] }
    end
    local base = model_base(key)
    now = win_at(base, now)
    sweep(now)
    local budgets = applying(key)
    if #budgets > 0 then
      if worst == "" then
        return { 3 }
      end
      for _, item in ipairs(budgets) do
        local field, b = item[1], item[2]
        budget_roll(b, now)
        if not budget_fits(b, worst) then
          save_budget(field, b)
          local scope, period = string.match(field, "^(.*)|([^|]*)$")
          return { 2, scope, period, b.limit, b.spent, b.reserved }
        end
      end
    end
    local amounts = { 1, tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]) }
    local waiter = ARGV[10]
    local configured = configured_from(11)
    local ahead = head_waiter(base, now, configured, waiter)
    if ahead then
      return ahead
    end
    local verdict = win_reserve(base, now, id, configured, amounts, ttl)
    if verdict[1] == 0 then
      if waiter ~= "" and verdict[4] ~= "never" then
        claim(base, now, waiter, amounts, tonumber(verdict[4]))
      end
      return verdict
    end
    if waiter ~= "" then
      redis.call("ZREM", base .. ":q", waiter)
      redis.call("HDEL", base .. ":qa", waiter)
    end
    local holds = {}
    for _, item in ipairs(budgets) do
      local field, b = item[1], item[2]
      b.reserved = dec_add(b.reserved, worst)
      save_budget(field, b)
      holds[#holds + 1] = field .. "|" .. (b.ident or "") .. "|" .. worst
    end
    local at, expires = string.format("%.17g", now), string.format("%.17g", now + ttl)
    redis.call("HSET", res, "key", key, "budgets", table.concat(holds, ";"), "at", at, "expires", expires)
    redis.call("EXPIRE", res, math.ceil(ttl) + DONE_KEEP)
    redis.call("ZADD", ns .. ":open", expires, id)
    return { 1, at, expires }
  end
end

-- settle: now, id, model, success (1/0), cost, input, output, cached, written, limited input, then limits.
-- {0} settled before; {-1} cancelled; else {1 (was open) or 2 (expired: counted now), now, total cost, seq, events...}
if WANTED == "settle" then
  function OPS.settle()
    local id, key = ARGV[3], ARGV[4]
    local done = redis.call("GET", ns .. ":done:" .. id)
    if done == "committed" then
      return { 0 }
    end
    if done == "cancelled" then
      return { -1 }
    end
    local base = model_base(key)
    local clock = now_from(ARGV[2]) -- what the usage is dated by; the windows' time never goes back (win_at)
    local now = win_at(base, clock)
    sweep(now)
    local output, limited = tonumber(ARGV[8]), tonumber(ARGV[11])
    local amounts = { 1, limited + output, limited, output }
    local res = ns .. ":res:" .. id
    local status = 1
    if redis.call("EXISTS", res) == 1 then
      win_settle(base, id, amounts)
      release_budgets(res)
      freed(key)
      redis.call("DEL", res)
      redis.call("ZREM", ns .. ":open", id)
    else -- expired: the provider billed it all the same, so it counts, in the windows now
      status = 2
      win_record(base, now, id, configured_from(12), amounts)
    end
    redis.call("SET", ns .. ":done:" .. id, "committed", "EX", DONE_KEEP)
    local charged = charge(key, clock, { ARGV[7], ARGV[8], ARGV[9], ARGV[10] }, ARGV[6], ARGV[5] == "1")
    return recorded(status, clock, charged)
  end
end

-- release: now, id, model, failed (1/0: count a failed request at $0). {0} not open; {1, now} given back;
-- {2, now, total cost, seq, events...} given back and the failure counted.
if WANTED == "release" then
  function OPS.release()
    local id, key = ARGV[3], ARGV[4]
    local res = ns .. ":res:" .. id
    local now = now_from(ARGV[2])
    if redis.call("EXISTS", res) == 0 then
      sweep(now)
      return { 0 }
    end
    local clock = now
    now = win_at(model_base(key), now)
    close_reservation(id, "cancelled")
    sweep(now)
    if ARGV[5] == "1" then
      redis.call("SET", ns .. ":done:" .. id, "committed", "EX", DONE_KEEP)
      return recorded(2, clock, charge(key, clock, { 0, 0, 0, 0 }, "0", false))
    end
    return { 1, string.format("%.17g", now) }
  end
end

-- record: now, id, model, success, cost, input, output, cached, written, limited input, then limits. A record sent
-- again with the same id (a client's retry after a lost reply) counts once: {0}.
if WANTED == "record" then
  function OPS.record()
    local key = ARGV[4]
    local done = ns .. ":done:" .. ARGV[3]
    if redis.call("SET", done, "committed", "NX", "EX", DONE_KEEP) == false then
      return { 0 }
    end
    local base = model_base(key)
    local clock = now_from(ARGV[2])
    local now = win_at(base, clock)
    sweep(now)
    local output, limited = tonumber(ARGV[8]), tonumber(ARGV[11])
    win_record(base, now, ARGV[3], configured_from(12), { 1, limited + output, limited, output })
    return recorded(1, clock, charge(key, clock, { ARGV[7], ARGV[8], ARGV[9], ARGV[10] }, ARGV[6], ARGV[5] == "1"))
  end
end

-- check: now, model, tokens, input, output, then limits. {1, now} or {0, now, limit, retry_after}.
if WANTED == "check" then
  function OPS.check()
    local base = model_base(ARGV[3])
    local now = win_at(base, now_from(ARGV[2]))
    sweep(now)
    local amounts = { 1, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]) }
    local fits, reason, worst = verdict(base, now, configured_from(7), amounts)
    if fits then
      return { 1, string.format("%.17g", now) }
    end
    return refusal(now, reason, worst)
  end
end

-- totals: now, model, then limits: {name, amount, ...} of the enforced windows.
if WANTED == "totals" then
  function OPS.totals()
    local base = model_base(ARGV[3])
    local now = win_at(base, now_from(ARGV[2]))
    sweep(now)
    return win_totals(base, now, configured_from(4))
  end
end

-- report: now, model, retry_after seconds ("" none), then groups of name, configured, stated, remaining, reset.
if WANTED == "report" then
  function OPS.report()
    local base = model_base(ARGV[3])
    local now = win_at(base, now_from(ARGV[2]))
    for i = 5, #ARGV, 5 do
      win_report(base, now, ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]),
        tonumber(ARGV[i + 4]))
    end
    if ARGV[4] ~= "" then
      win_block(base, now + tonumber(ARGV[4]))
    end
    bump()
    return 1
  end
end

-- define: now, model. The model is known in the namespace (its counters start now unless they exist).
if WANTED == "define" then
  function OPS.define()
    local key = ARGV[3]
    redis.call("SADD", ns .. ":models", key)
    redis.call("HSETNX", model_base(key) .. ":u", "reset", string.format("%.17g", now_from(ARGV[2])))
    redis.call("EXPIRE", model_base(key) .. ":u", USAGE_KEEP)
    bump()
    return 1
  end
end

-- touch: now, model. One access.
if WANTED == "touch" then
  function OPS.touch()
    local u = model_base(ARGV[3]) .. ":u"
    redis.call("HINCRBY", u, "accesses", 1)
    redis.call("HSET", u, "accessed", string.format("%.17g", now_from(ARGV[2])))
    bump()
    return 1
  end
end

-- reset: now, model. The counters start again (accesses, windows, history and budgets stay).
if WANTED == "reset" then
  function OPS.reset()
    local u = model_base(ARGV[3]) .. ":u"
    redis.call("HDEL", u, "input", "output", "cached", "written", "requests", "ok", "failed", "cost")
    redis.call("HSET", u, "reset", string.format("%.17g", now_from(ARGV[2])))
    bump()
    return 1
  end
end

-- metrics: now, model, JSON. Replaces the model's performance metrics.
if WANTED == "metrics" then
  function OPS.metrics()
    local key = model_base(ARGV[3]) .. ":metrics"
    redis.call("SET", key, ARGV[4], "EX", USAGE_KEEP)
    bump()
    return 1
  end
end

-- set_budget: now, scope ("*" or a model), period, limit, warn amount, warn_at (the fraction, for status). Spend already recorded in its current period
-- counts at once (without events for the past); a replaced budget keeps its identity and reservations.
if WANTED == "set_budget" then
  function OPS.set_budget()
    local now = now_from(ARGV[2])
    local scope, period = ARGV[3], ARGV[4]
    local field = scope .. "|" .. period
    local start, stop = period_bounds(period, now)
    local b = { limit = ARGV[5], warn = ARGV[6], period = period, start = start, ["end"] = stop, spent = "0",
                reserved = "0", warned = false, exceeded = false }
    local models = scope == "*" and redis.call("SMEMBERS", ns .. ":models") or { scope }
    for _, key in ipairs(models) do
      local base = model_base(key)
      local first, last = "-inf", "+inf"
      if start ~= nil then
        first, last = math.floor(start / 86400), "(" .. math.floor(stop / 86400)
      end
      for _, day in ipairs(redis.call("ZRANGEBYSCORE", base .. ":days", first, last)) do
        local cost = redis.call("HGET", base .. ":h", day .. ":cost")
        if cost then
          budget_charge(b, cost)
        end
      end
    end
    local old = redis.call("HGET", ns .. ":budgets", field)
    if old then
      local was = budget_read(old)
      b.reserved, b.ident = was.reserved, was.ident
    else
      b.ident = tostring(redis.call("INCR", ns .. ":budget-ids"))
    end
    save_budget(field, b)
    redis.call("HSET", ns .. ":budget-at", field, ARGV[7])
    bump()
    return 1
  end
end

-- remove_budget: now, scope, period. 1 when there was one.
if WANTED == "remove_budget" then
  function OPS.remove_budget()
    bump()
    redis.call("HDEL", ns .. ":budget-at", ARGV[3] .. "|" .. ARGV[4])
    return redis.call("HDEL", ns .. ":budgets", ARGV[3] .. "|" .. ARGV[4])
  end
end

-- budgets: now. Every budget in its current period: {field, budget, warn_at, ...} (expired reservations released first).
if WANTED == "budgets" then
  function OPS.budgets()
    local now = now_from(ARGV[2])
    sweep(now)
    local out = {}
    local all = redis.call("HGETALL", ns .. ":budgets")
    for i = 1, #all, 2 do
      local b = budget_read(all[i + 1])
      budget_roll(b, now)
      out[#out + 1] = all[i]
      out[#out + 1] = budget_write(b)
      out[#out + 1] = redis.call("HGET", ns .. ":budget-at", all[i]) or "1"
    end
    return out
  end
end

-- state: now, id. What became of a reservation: "open", "committed", "cancelled" or "expired" (after a sweep).
if WANTED == "state" then
  function OPS.state()
    sweep(now_from(ARGV[2]))
    local id = ARGV[3]
    if redis.call("EXISTS", ns .. ":res:" .. id) == 1 then
      return "open"
    end
    return redis.call("GET", ns .. ":done:" .. id) or "expired"
  end
end

-- restore: now, model, counters (input, output, cached, written, requests, ok, failed, cost, reset, accesses,
-- accessed), then history days as groups of day, input, output, cached, written, requests, cost. The model's usage
-- becomes exactly this (an imported backup); its windows and budgets are left as they are.
if WANTED == "restore" then
  function OPS.restore()
    local base = model_base(ARGV[3])
    local u, h, days = base .. ":u", base .. ":h", base .. ":days"
    redis.call("DEL", u, h, days)
    local names = { "input", "output", "cached", "written", "requests", "ok", "failed", "cost", "reset", "accesses",
                    "accessed" }
    for i, name in ipairs(names) do
      if ARGV[3 + i] ~= "" then
        redis.call("HSET", u, name, ARGV[3 + i])
      end
    end
    local fields = { "input", "output", "cached", "written", "requests", "cost" }
    for i = 15, #ARGV, 7 do
      local day = ARGV[i]
      for j, name in ipairs(fields) do
        redis.call("HSET", h, day .. ":" .. name, ARGV[i + j])
      end
      redis.call("ZADD", days, day, day)
    end
    for _, key in ipairs({ u, h, days }) do
      redis.call("EXPIRE", key, USAGE_KEEP)
    end
    redis.call("SADD", ns .. ":models", ARGV[3])
    bump()
    return 1
  end
end

-- entries: model. How many entries its windows hold (every window, shadows included).
if WANTED == "entries" then
  function OPS.entries()
    local base = model_base(ARGV[3])
    local count = 0
    for name, _ in pairs(SPEC) do
      count = count + redis.call("ZCARD", base .. ":z:" .. name)
    end
    return count
  end
end

-- unclaim: now, model, waiter. The waiter stopped waiting: its place in the model's queue goes.
if WANTED == "unclaim" then
  function OPS.unclaim()
    local base = model_base(ARGV[3])
    redis.call("ZREM", base .. ":q", ARGV[4])
    redis.call("HDEL", base .. ":qa", ARGV[4])
    return 1
  end
end

-- learned: now, model. {name, limit, ...}
if WANTED == "learned" then
  function OPS.learned()
    return win_learned(model_base(ARGV[3]))
  end
end

local op = OPS[ARGV[1]]
if op == nil then
  return redis.error_reply("unknown operation " .. tostring(ARGV[1]))
end
local result = op()
tflush() -- the windows' bookkeeping changed by the operation (windows.lua)
return result
