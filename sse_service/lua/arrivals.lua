-- Join and leave on one channel, for one SSE process's report (arrivals.py). All keys share the
-- channel's hash tag, so on a Redis Cluster this runs on the channel's node.
-- KEYS[1] roster (sorted set: user pk scored by when their presence lapses, Redis's clock in ms),
-- KEYS[2] names (hash: user pk -> display name), KEYS[3] the channel's stream, KEYS[4] its trimmed key.
-- ARGV[1] pub/sub channel, ARGV[2] PUBLISH or SPUBLISH, ARGV[3] grace in ms, ARGV[4] the stream's
-- length, ARGV[5] most members that still get events, then pairs: user pk, name (this process's members).
-- Returns the number of events published.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local grace = tonumber(ARGV[3])
local here = {}
for i = 6, #ARGV, 2 do here[ARGV[i]] = ARGV[i + 1] end

local events = {}
-- Lapsed: nobody refreshed them for the grace period, so not a reconnect. Members of this process
-- are present, lapsed or not.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
for _, user in ipairs(lapsed) do
  if not here[user] then
    local name = redis.call('HGET', KEYS[2], user) or ''
    redis.call('ZREM', KEYS[1], user)
    redis.call('HDEL', KEYS[2], user)
    table.insert(events, {'presence.leave', user, name})
  end
end
for i = 6, #ARGV, 2 do
  local user = ARGV[i]
  if not redis.call('ZSCORE', KEYS[1], user) then
    table.insert(events, {'presence.join', user, ARGV[i + 1]})
  end
  redis.call('ZADD', KEYS[1], now + grace, user)
  redis.call('HSET', KEYS[2], user, ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], 2 * grace)
redis.call('PEXPIRE', KEYS[2], 2 * grace)

-- Past the limit only counts are kept: join/leave traffic grows with the square of the members.
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[5]) then return 0 end

-- Each event as the site publishes one (docs/wire-contract.md, Publishing): XADD, retention, then
-- the envelope on the pub/sub channel.
local maxlen = tonumber(ARGV[4])
for _, event in ipairs(events) do
  -- Spelled out rather than cjson.encode of a table, whose key order is not fixed.
  local data = '{"user":' .. cjson.encode(event[2]) .. ',"name":' .. cjson.encode(event[3]) .. '}'
  local id = redis.call('XADD', KEYS[3], '*', 'event', event[1], 'data', data)
  local length = redis.call('XLEN', KEYS[3])
  if length > maxlen then
    local head = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', length - maxlen + math.floor(maxlen / 10))
    local trimmed = head[#head][1]
    local ms, seq = string.match(trimmed, '^(%d+)-(%d+)$')
    redis.call('XTRIM', KEYS[3], 'MINID', string.format('%d-%d', tonumber(ms), tonumber(seq) + 1))
    redis.call('SET', KEYS[4], trimmed)
  end
  redis.call(ARGV[2], ARGV[1], 'v1\n' .. id .. '\n' .. event[1] .. '\n' .. data)
end
return #events
