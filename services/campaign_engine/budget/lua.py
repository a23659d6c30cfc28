"""The Redis Lua scripts behind RedisReservations: each runs atomically on the server.

Keys: `ce:{campaign}:budget` (hash: issued, money, redeemed, serial, seeded),
`ce:{campaign}:day:<YYYYMMDD>:<customer>` and `ce:{campaign}:total:<customer>` (counters),
`ce:{campaign}:applied:<event id>` (once-markers for redemption deltas). A limit of -1
means none.
"""

from __future__ import annotations

RESERVE = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 0 then return {0, 'unseeded'} end
local issued = tonumber(redis.call('HGET', b, 'issued') or '0')
local money = tonumber(redis.call('HGET', b, 'money') or '0')
local redeemed = tonumber(redis.call('HGET', b, 'redeemed') or '0')
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local face = tonumber(ARGV[1])
local function over(limit, after)
  limit = tonumber(limit)
  return limit >= 0 and after > limit
end
if over(ARGV[2], issued + 1) then return {0, 'max_coupons'} end
if over(ARGV[3], money + face) then return {0, 'max_discount_total'} end
if over(ARGV[4], redeemed + 1) then return {0, 'max_redemptions'} end
if over(ARGV[5], day + 1) then return {0, 'per_customer_per_day'} end
if over(ARGV[6], total + 1) then return {0, 'per_customer_total'} end
issued = redis.call('HINCRBY', b, 'issued', 1)
money = redis.call('HINCRBY', b, 'money', face)
local serial = redis.call('HINCRBY', b, 'serial', 1)
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[8])
return {1, 'ok', serial, issued, money, redeemed}
"""

# Gives back what one reservation took; the serial is not reused (codes stay unique).
RELEASE = """
local b = KEYS[1]
if redis.call('HEXISTS', b, 'seeded') == 0 then return 0 end
redis.call('HINCRBY', b, 'issued', -1)
redis.call('HINCRBY', b, 'money', -tonumber(ARGV[1]))
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECR', KEYS[3]) end
return 1
"""

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
