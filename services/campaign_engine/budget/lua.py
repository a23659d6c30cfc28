"""The Redis Lua scripts behind RedisReservations: each runs atomically on the server.

Keys: `ce:{campaign}:budget` (hash: issued, money, redeemed, serial, seeded),
`ce:{campaign}:day:<YYYYMMDD>:<customer>` and `ce:{campaign}:total:<customer>` (counters),
`ce:{campaign}:applied:<event id>` (once-markers for redemption deltas). A limit of -1
means none.
"""

from __future__ import annotations

# One reservation, shared by RESERVE and RESERVE_MANY so the limit logic exists once.
# counter: a customer-feature hash whose `issued` field counts the coupon too ('' for none).
#
# A campaign's budget hash is read once per script (one HMGET) and its counters kept in Lua
# locals; `flush_budgets()` writes each changed hash back in one HSET before the script
# returns. The script runs atomically, so nothing can read the hash in between: the result
# is the HINCRBYs', at ~7 Redis calls a reservation instead of ~17 (docs/architecture.md
# § Decisions). The customer's day and total counters are written with their expiry in one
# SET each. Numbers are written with '%.0f' (Lua's tostring turns 1e15 into "1e+15").
_RESERVE_ONE = """
local function over(limit, after)
  limit = tonumber(limit)
  return limit >= 0 and after > limit
end
local budgets = {}
local function budget(b)
  local s = budgets[b]
  if not s then
    local v = redis.call('HMGET', b, 'seeded', 'issued', 'money', 'redeemed', 'serial')
    s = {seeded = v[1] ~= false, issued = tonumber(v[2] or '0'), money = tonumber(v[3] or '0'),
         redeemed = tonumber(v[4] or '0'), serial = tonumber(v[5] or '0'), dirty = false}
    budgets[b] = s
  end
  return s
end
local function flush_budgets()
  for b, s in pairs(budgets) do
    if s.dirty then
      redis.call('HSET', b, 'issued', string.format('%.0f', s.issued),
                 'money', string.format('%.0f', s.money), 'serial', string.format('%.0f', s.serial))
      s.dirty = false
    end
  end
end
local function reserve_one(b, dk, tk, counter, face, l_coupons, l_money, l_redeemed,
                           l_day, l_total, day_ttl, total_ttl)
  local s = budget(b)
  if not s.seeded then return {0, 'unseeded'} end
  local day = tonumber(redis.call('GET', dk) or '0')
  local total = tonumber(redis.call('GET', tk) or '0')
  face = tonumber(face)
  if over(l_coupons, s.issued + 1) then return {0, 'max_coupons'} end
  if over(l_money, s.money + face) then return {0, 'max_discount_total'} end
  if over(l_redeemed, s.redeemed + 1) then return {0, 'max_redemptions'} end
  if over(l_day, day + 1) then return {0, 'per_customer_per_day'} end
  if over(l_total, total + 1) then return {0, 'per_customer_total'} end
  s.issued, s.money, s.serial, s.dirty = s.issued + 1, s.money + face, s.serial + 1, true
  redis.call('SET', dk, string.format('%.0f', day + 1), 'EX', day_ttl)
  redis.call('SET', tk, string.format('%.0f', total + 1), 'EX', total_ttl)
  if counter ~= '' then redis.call('HINCRBY', counter, 'issued', 1) end
  return {1, 'ok', s.serial, s.issued, s.money, s.redeemed}
end
"""

RESERVE = (
    _RESERVE_ONE
    + """
local out = reserve_one(KEYS[1], KEYS[2], KEYS[3], '', ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                        ARGV[5], ARGV[6], ARGV[7], ARGV[8])
flush_budgets()
return out
"""
)

# Every chosen offer of a decision batch in one atomic call, in order (a later item sees
# what an earlier one took, so two requests of one customer in a batch respect the caps).
# KEYS: 6 per item (budget, day, total, counter, held, replaced: the counter, held and
# replaced keys repeat the budget key when there is none). ARGV: day_ttl, the batch's owner
# token, held_ttl, then 9 per item: face, 5 limits, total_ttl, has_counter, has_held.
#
# Held reservations (docs/architecture.md § Decisions): a request's reservation is noted
# under `ce:{campaign}:held:<request id>` as "serial|face|has_counter|owner|day key" (a
# string, so a batch reads all of them in one MGET). A request
# asked again (its first worker was killed before committing: a redelivered batch, a
# drop's page redone) takes over the reservation it holds, same face and day, instead of
# taking a second one ('held'). A reservation is given back only by the batch that made it
# and still owns it (a taken-over one never: its first owner may yet commit it), and, once a
# request's decision is committed, any other reservation it holds is orphaned and given
# back (RELEASE_ORPHANS). Asked again and given another face or day of the same campaign,
# the request reserves anew; the hold it replaces is kept under `…:held:<request id>:was`
# (the replaced key) for that release, since its maker no longer owns it.
RESERVE_MANY = (
    _RESERVE_ONE
    + """
local out = {}
local token, held_ttl = ARGV[2], ARGV[3]
for i = 0, (#KEYS / 6) - 1 do
  local k, a = i * 6, 3 + i * 9
  local counter, held = '', ''
  if ARGV[a + 8] == '1' then counter = KEYS[k + 4] end
  if ARGV[a + 9] == '1' then held = KEYS[k + 5] end
  local kept, replaced = false, nil
  if held ~= '' then
    local v = redis.call('GET', held)
    local h = v and {string.match(v, '^(%d+)|(%d+)|(%d)|(%w*)|(.*)$')}
    if h and not (h[2] == ARGV[a + 1] and h[5] == KEYS[k + 2]) then
      replaced = v
    end
    if h and h[2] == ARGV[a + 1] and h[5] == KEYS[k + 2] then
      redis.call('SET', held, h[1] .. '|' .. h[2] .. '|' .. h[3] .. '|' .. token .. '|' .. h[5],
                 'KEEPTTL')
      local b = budget(KEYS[k + 1])
      kept = {1, 'held', tonumber(h[1]), b.issued, b.money, b.redeemed}
    end
  end
  if kept then
    out[i + 1] = kept
  else
    out[i + 1] = reserve_one(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], counter, ARGV[a + 1],
                             ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6],
                             ARGV[1], ARGV[a + 7])
    if held ~= '' and out[i + 1][1] == 1 then
      if replaced then redis.call('SET', KEYS[k + 6], replaced, 'EX', held_ttl) end
      redis.call('SET', held, out[i + 1][3] .. '|' .. ARGV[a + 1] .. '|' .. ARGV[a + 8] .. '|'
                 .. token .. '|' .. KEYS[k + 2], 'EX', held_ttl)
    end
  end
end
flush_budgets()
return out
"""
)

# Gives back what one reservation took; the serial is not reused (codes stay unique).
_RELEASE_ONE = """
local function release_one(b, dk, tk, counter, face)
  if redis.call('HEXISTS', b, 'seeded') == 0 then return 0 end
  redis.call('HINCRBY', b, 'issued', -1)
  redis.call('HINCRBY', b, 'money', -tonumber(face))
  if redis.call('EXISTS', dk) == 1 then redis.call('DECR', dk) end
  if redis.call('EXISTS', tk) == 1 then redis.call('DECR', tk) end
  if counter ~= '' then redis.call('HINCRBY', counter, 'issued', -1) end
  return 1
end
"""

# KEYS: 6 per reservation as in RESERVE_MANY; ARGV: 3 per reservation (face, has_counter,
# owner: '' for a reservation not held under a request id). A held one is given back only
# by its owner (another batch may have taken it over since).
RELEASE_MANY = (
    _RELEASE_ONE
    + """
for i = 0, (#KEYS / 6) - 1 do
  local counter, owner = '', ARGV[i * 3 + 3]
  if ARGV[i * 3 + 2] == '1' then counter = KEYS[i * 6 + 4] end
  local mine = true
  if owner ~= '' then
    local v = redis.call('GET', KEYS[i * 6 + 5])
    mine = v and select(4, string.match(v, '^(%d+)|(%d+)|(%d)|(%w*)|')) == owner
    if mine then redis.call('DEL', KEYS[i * 6 + 5]) end
  end
  if mine then
    release_one(KEYS[i * 6 + 1], KEYS[i * 6 + 2], KEYS[i * 6 + 3], counter, ARGV[i * 3 + 1])
  end
end
return 1
"""
)

# After a request's decision committed: the reservation it held that the decision did not
# use (the policy chose otherwise when it was asked again) is given back, once, if it is
# still the one the batch read (serial): under the held key, or under the replaced key when
# this batch reserved another face in its place. KEYS: 5 per item (budget, total, counter,
# held, replaced); ARGV: 1 per item (serial). The day counter is the one stored with the
# hold (same campaign, so the same hash slot).
RELEASE_ORPHANS = (
    _RELEASE_ONE
    + """
local released = 0
local function read(key)
  local v = redis.call('GET', key)
  return v and {string.match(v, '^(%d+)|(%d+)|(%d)|(%w*)|(.*)$')}
end
for i = 0, (#KEYS / 5) - 1 do
  local serial, key = ARGV[i + 1], KEYS[i * 5 + 4]
  local h = read(key)
  if not (h and h[1] == serial) then
    key = KEYS[i * 5 + 5]
    h = read(key)
  end
  if h and h[1] == serial then
    redis.call('DEL', key)
    local counter = ''
    if h[3] == '1' then counter = KEYS[i * 5 + 3] end
    released = released + release_one(KEYS[i * 5 + 1], h[5], KEYS[i * 5 + 2], counter, h[2])
  end
end
return released
"""
)

# KEYS: budget, then n day keys, then n total keys.
# ARGV: issued, money, redeemed, serial, n, day_ttl, total_ttl, n day counts, n total counts.
SEED = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 1 then return 0 end
local n = tonumber(ARGV[5])
for i = 1, n do
  redis.call('SET', KEYS[1 + i], ARGV[7 + i], 'EX', ARGV[6])
  redis.call('SET', KEYS[1 + n + i], ARGV[7 + n + i], 'EX', ARGV[7])
end
redis.call('HSET', b, 'issued', ARGV[1], 'money', ARGV[2], 'redeemed', ARGV[3],
           'serial', ARGV[4], 'seeded', 1)
return 1
"""

# Redemption and void deltas, applied once per event id.
APPLY_USAGE = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 0 then return {0, 0, 0, 0} end
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[3]) then
  redis.call('HINCRBY', b, 'redeemed', ARGV[1])
  redis.call('HINCRBY', b, 'money', ARGV[2])
end
return {1, tonumber(redis.call('HGET', b, 'issued')), tonumber(redis.call('HGET', b, 'money')),
        tonumber(redis.call('HGET', b, 'redeemed'))}
"""


# Start-up: a Redis restored from an older snapshot is raised to at least the database's
# counts, so it can neither re-issue a serial nor under-count what is spent.
FLOOR = """
if redis.call('HEXISTS', KEYS[1], 'seeded') == 0 then return 0 end
local names = {'issued', 'money', 'serial'}
for i = 1, 3 do
  local current = tonumber(redis.call('HGET', KEYS[1], names[i]) or '0')
  if current < tonumber(ARGV[i]) then redis.call('HSET', KEYS[1], names[i], ARGV[i]) end
end
return 1
"""
