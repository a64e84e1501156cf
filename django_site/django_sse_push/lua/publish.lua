-- The atomic publish step (docs/wire-contract.md, Publishing).
-- KEYS[1] stream key, KEYS[2] trimmed key (the newest id trimmed off the stream)
-- KEYS[3], KEYS[4] (only with ARGV[6]): the channel's idempotency keys (hash: key -> id) and their
--   publication times (sorted set: key scored by the id's milliseconds)
-- ARGV[1] pub/sub channel, ARGV[2] event type ("" = default), ARGV[3] data, ARGV[4] max length,
-- ARGV[5] 'PUBLISH' on one Redis, 'SPUBLISH' (sharded pub/sub) on a Redis Cluster,
-- ARGV[6] optional: an idempotency key, ARGV[7] how long to remember it, in milliseconds, and
--   ARGV[8] how many of the channel's newest keys to remember at most.
-- All names share the channel's hash tag, so on a cluster the script runs on the channel's node.
-- Returns the id `<ms>-<seq>` Redis gave the stream entry: greater than every id before it on the
-- channel, trimmed ones included (the stream remembers its last id). With an idempotency key it
-- returns {id, 0} for a new event and {id of the first, 1} for a repeat, which publishes nothing.

if ARGV[5] ~= 'PUBLISH' and ARGV[5] ~= 'SPUBLISH' then
  return redis.error_reply('ARGV[5] must be PUBLISH or SPUBLISH')
end

local key = ARGV[6]
if key then
  local first = redis.call('HGET', KEYS[3], key)
  if first then
    return {first, 1}
  end
end

local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[2], 'data', ARGV[3])

-- Retention: trim a tenth of the stream at a time (amortised O(1)) and remember the newest id
-- trimmed, so a reader resuming from an older position is told it missed events (a reset).
local maxlen = tonumber(ARGV[4])
local length = redis.call('XLEN', KEYS[1])
if length > maxlen then
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', length - maxlen + math.floor(maxlen / 10))
  local trimmed = head[#head][1]
  local trimmed_ms, trimmed_seq = string.match(trimmed, '^(%d+)-(%d+)$')
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', tonumber(trimmed_ms), tonumber(trimmed_seq) + 1))
  redis.call('SET', KEYS[2], trimmed)
end

redis.call(ARGV[5], ARGV[1], 'v1\n' .. id .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])

if not key then
  return id
end

-- Remember the key for ARGV[7] ms, and only among the channel's newest ARGV[8] keys: what a sender
-- can still repeat is a row it sent but had not yet deleted, a batch or so back, never thousands of
-- events back; so the memory is bounded per channel whatever the publish rate. The entry's time is
-- Redis's clock (or the stream's newest, if that is ahead). Keys older than ARGV[7] ms are forgotten
-- a hundred at a time, more than one per publish; an idle channel's memory expires as a whole.
local ttl = tonumber(ARGV[7])
-- A caller of the contract's earlier form passes no ARGV[8]: its keys are bounded by time only.
local most = tonumber(ARGV[8])
local now = tonumber(string.match(id, '^(%d+)-'))
redis.call('HSET', KEYS[3], key, id)
redis.call('ZADD', KEYS[4], now, key)
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - ttl, 'LIMIT', 0, 100)
if #expired > 0 then
  redis.call('HDEL', KEYS[3], unpack(expired))
  redis.call('ZREM', KEYS[4], unpack(expired))
end
-- Over the count: one key per publish, or (once, after the bound was lowered) a thousand at a time.
local over = most and redis.call('ZCARD', KEYS[4]) - most or 0
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[4], 0, math.min(over, 1000) - 1)
  redis.call('HDEL', KEYS[3], unpack(oldest))
  redis.call('ZREM', KEYS[4], unpack(oldest))
end
redis.call('PEXPIRE', KEYS[3], ttl)
redis.call('PEXPIRE', KEYS[4], ttl)
return {id, 0}
