-- Budgets for the Redis store: spend per UTC calendar period (day, week from Monday, month) or in total, plus the
-- worst case of open reservations, with exact money (needs decimal.lua before it). The same rule as
-- noa_ai_provider.budget.BudgetState. One budget is one hash field, "|"-separated:
--
--   limit | warn amount (limit * warn_at, computed by the caller) | period | start | end | spent | reserved |
--   warned (0/1) | exceeded (0/1) [| identity: reservations release only the budget they held, not one removed
--   and set again under the same name]
--
-- Times are seconds since the epoch; start and end are "" for a total budget.

local function days_from_civil(y, m, d)
  -- Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date.
  if m <= 2 then
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then
    y = y + 1
  end
  return y, m, d
end

-- The period of `period` containing `now`: start and end (seconds), or nil, nil for "total".
local function period_bounds(period, now)
  local days = math.floor(now / 86400)
  if period == "day" then
    return days * 86400, (days + 1) * 86400
  end
  if period == "week" then
    local weekday = (days + 3) % 7 -- 1970-01-01 was a Thursday; Monday is 0
    return (days - weekday) * 86400, (days - weekday + 7) * 86400
  end
  if period == "month" then
    local y, m = civil_from_days(days)
    local ny, nm = y, m + 1
    if nm == 13 then
      ny, nm = y + 1, 1
    end
    return days_from_civil(y, m, 1) * 86400, days_from_civil(ny, nm, 1) * 86400
  end
  return nil, nil
end

local function budget_read(text)
  local f = {}
  for part in string.gmatch(text .. "|", "([^|]*)|") do
    f[#f + 1] = part
  end
  return {
    limit = f[1], warn = f[2], period = f[3], start = tonumber(f[4]), ["end"] = tonumber(f[5]),
    spent = f[6], reserved = f[7], warned = f[8] == "1", exceeded = f[9] == "1", ident = f[10],
  }
end

local function budget_write(b)
  return table.concat({
    b.limit, b.warn, b.period, b.start and string.format("%.17g", b.start) or "",
    b["end"] and string.format("%.17g", b["end"]) or "", b.spent, b.reserved,
    b.warned and "1" or "0", b.exceeded and "1" or "0", b.ident,
  }, "|")
end

-- A new period when `now` has left the current one: spend starts again at 0 (reservations stay held).
local function budget_roll(b, now)
  if b["end"] ~= nil and now >= b["end"] then
    b.start, b["end"] = period_bounds(b.period, now)
    b.spent = "0"
    b.warned, b.exceeded = false, false
  end
end

-- Whether `amount` more can be reserved without crossing the limit.
local function budget_fits(b, amount)
  return dec_cmp(dec_add(dec_add(b.spent, b.reserved), amount), b.limit) <= 0
end

-- Add a recorded cost; return the events it triggers (each at most once per period).
local function budget_charge(b, cost)
  b.spent = dec_add(b.spent, cost)
  local events = {}
  if not b.warned and dec_cmp(b.spent, b.warn) >= 0 then
    b.warned = true
    events[#events + 1] = "budget-warning"
  end
  if not b.exceeded and dec_cmp(b.spent, b.limit) > 0 then
    b.exceeded = true
    events[#events + 1] = "budget-exceeded"
  end
  return events
end
