-- Publish one event atomically (README.md, "Wire contract", Publishing).
-- KEYS[1] stream key, KEYS[2] trimmed key (the newest id trimmed off the stream)
-- ARGV[1] pub/sub channel, ARGV[2] event type ("" = default), ARGV[3] data, ARGV[4] max length,
-- ARGV[5] 'PUBLISH' on one Redis, 'SPUBLISH' (sharded pub/sub) on a Redis Cluster.
-- All names share the channel's hash tag, so on a cluster the script runs on the channel's node.
-- Returns the id `<ms>-<seq>` Redis gave the stream entry: greater than every id before it on the
-- channel, trimmed ones included (the stream remembers its last id).

if ARGV[5] ~= 'PUBLISH' and ARGV[5] ~= 'SPUBLISH' then
  return redis.error_reply('ARGV[5] must be PUBLISH or SPUBLISH')
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
return id
