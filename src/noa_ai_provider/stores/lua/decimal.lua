-- Exact decimal arithmetic on strings, for money inside Redis scripts.
--
-- Lua numbers are doubles (exact integers only up to 2^53), and INCRBYFLOAT rounds: neither may hold money. Amounts
-- travel as plain decimal strings ("0.0000025", "12", never an exponent), and these functions add, subtract and
-- compare them digit by digit, exactly, whatever their length. Only amounts >= 0 occur (costs, spend, holds).
--
-- dec_add(a, b) -> a + b        dec_sub(a, b) -> a - b (clamped at "0": a hold is never given back twice)
-- dec_cmp(a, b) -> -1, 0, 1     dec_norm(a)   -> canonical form ("007.50" -> "7.5", "" or "0.000" -> "0")

local function dec_split(a)
  local int, frac = string.match(a, "^(%d*)%.?(%d*)$")
  if int == nil then
    error("not a decimal amount: " .. tostring(a))
  end
  return int, frac
end

-- Both amounts as digit strings of the same length, without the point, and the number of fraction digits.
local function dec_align(a, b)
  local ai, af = dec_split(a)
  local bi, bf = dec_split(b)
  local scale = math.max(#af, #bf)
  af = af .. string.rep("0", scale - #af)
  bf = bf .. string.rep("0", scale - #bf)
  local width = math.max(#ai, #bi)
  ai = string.rep("0", width - #ai) .. ai
  bi = string.rep("0", width - #bi) .. bi
  return ai .. af, bi .. bf, scale
end

local function dec_join(digits, scale)
  local int = string.sub(digits, 1, #digits - scale)
  local frac = string.sub(digits, #digits - scale + 1)
  int = string.gsub(int, "^0+", "")
  frac = string.gsub(frac, "0+$", "")
  if int == "" then
    int = "0"
  end
  if frac == "" then
    return int
  end
  return int .. "." .. frac
end

local function dec_norm(a)
  local digits, _, scale = dec_align(a, "0")
  return dec_join(digits, scale)
end

local function dec_cmp(a, b)
  local x, y = dec_align(a, b)
  if x == y then
    return 0
  end
  if x < y then -- same length, digits only: string order is numeric order
    return -1
  end
  return 1
end

local function dec_add(a, b)
  local x, y, scale = dec_align(a, b)
  local out = {}
  local carry = 0
  for i = #x, 1, -1 do
    local d = string.byte(x, i) + string.byte(y, i) - 96 + carry
    if d >= 10 then
      d = d - 10
      carry = 1
    else
      carry = 0
    end
    out[i] = d
  end
  local digits = table.concat(out)
  if carry == 1 then
    digits = "1" .. digits
  end
  return dec_join(digits, scale)
end

local function dec_sub(a, b)
  if dec_cmp(a, b) <= 0 then
    return "0"
  end
  local x, y, scale = dec_align(a, b)
  local out = {}
  local borrow = 0
  for i = #x, 1, -1 do
    local d = string.byte(x, i) - string.byte(y, i) - borrow
    if d < 0 then
      d = d + 10
      borrow = 1
    else
      borrow = 0
    end
    out[i] = d
  end
  return dec_join(table.concat(out), scale)
end
