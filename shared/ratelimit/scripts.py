"""The Lua scripts of the Redis token buckets (shared/ratelimit/buckets.py): each refills and
takes atomically inside Redis (docs/interfaces.md § Rate limits)."""

from __future__ import annotations

# One bucket's step, shared by both scripts: refill the hash at KEY (fields t = tokens,
# ts = last refill, seconds) up to `burst` at `rate` a second, grant up to `want` whole
# tokens, store it with a TTL (ms). Returns the tokens granted and the tokens left.
_TAKE_ONE = """
local function take(key, now, rate, burst, want, ttl)
  local state = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = burst
    ts = now
  end
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate)
    ts = now
  end
  local n = math.min(want, math.floor(tokens))
  if n >= 1 then
    tokens = tokens - n
  end
  redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(ts))
  redis.call('PEXPIRE', key, ttl)
  return n, tokens
end
"""

# Tokens from each bucket, in order, in one round trip. KEYS[i] is bucket i's key; ARGV[1]
# is now (seconds), then rate per second, burst, TTL (ms) and tokens wanted for each bucket.
# A bucket grants what it has up to the wanted number; the first empty bucket stops the walk
# (later ones keep their tokens). Returns {allowed (0/1), seconds until that bucket has a
# token as a string (Lua numbers come back as integers), tokens granted per bucket...}.
TAKE_SCRIPT = (
    _TAKE_ONE
    + """
local now = tonumber(ARGV[1])
local granted = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[4 * i - 2])
  local burst = tonumber(ARGV[4 * i - 1])
  local n, tokens = take(key, now, rate, burst, tonumber(ARGV[4 * i + 1]), ARGV[4 * i])
  if n < 1 then
    return {0, tostring((1 - tokens) / rate), unpack(granted)}
  end
  granted[i] = n
end
return {1, '0', unpack(granted)}
"""
)

# One bucket, many keys (a decision batch's customers, a key may repeat), each taken in
# order in one call: an empty key does not stop the walk. ARGV: now, rate per second,
# burst, TTL (ms), tokens wanted per key. Returns {allowed (0/1), seconds until a token
# (string), tokens granted} for each key in turn.
TAKE_EACH_SCRIPT = (
    _TAKE_ONE
    + """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local want = tonumber(ARGV[5])
local out = {}
for _, key in ipairs(KEYS) do
  local n, tokens = take(key, now, rate, burst, want, ARGV[4])
  if n >= 1 then
    out[#out + 1] = 1
    out[#out + 1] = '0'
    out[#out + 1] = n
  else
    out[#out + 1] = 0
    out[#out + 1] = tostring((1 - tokens) / rate)
    out[#out + 1] = 0
  end
end
return out
"""
)
