-- Publish one event atomically (README.md, "Wire contract", Publishing).
-- KEYS[1] stream key, KEYS[2] last-id key, KEYS[3] trimmed key (the newest id trimmed off the stream)
-- ARGV[1] pub/sub channel, ARGV[2] event type ("" = default), ARGV[3] data, ARGV[4] max length
-- Returns the id `<ms>-<seq>`, greater than every id handed out before on any channel.

local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seq = 0

local last = redis.call('GET', KEYS[2])
if last then
  local last_ms, last_seq = string.match(last, '^(%d+)-(%d+)$')
  if last_ms and tonumber(last_ms) >= ms then
    ms = tonumber(last_ms)
    seq = tonumber(last_seq) + 1
  end
end

-- %d, not tostring: tostring would print large numbers in float notation.
local id = string.format('%d-%d', ms, seq)
local added = redis.pcall('XADD', KEYS[1], id, 'event', ARGV[2], 'data', ARGV[3])
if type(added) == 'table' and added.err then
  -- The stream is ahead of the last-id key (e.g. that key was lost): let Redis pick an id above
  -- the stream's top. Any other error (wrong type, out of memory) is raised by this call.
  id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[2], 'data', ARGV[3])
end

-- Retention: trim a tenth of the stream at a time (amortised O(1)) and remember the newest id
-- trimmed, so a reader resuming from an older position is told it missed events (a reset).
local maxlen = tonumber(ARGV[4])
local length = redis.call('XLEN', KEYS[1])
if length > maxlen then
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', length - maxlen + math.floor(maxlen / 10))
  local trimmed = head[#head][1]
  local trimmed_ms, trimmed_seq = string.match(trimmed, '^(%d+)-(%d+)$')
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', tonumber(trimmed_ms), tonumber(trimmed_seq) + 1))
  redis.call('SET', KEYS[3], trimmed)
end

redis.call('SET', KEYS[2], id)
redis.call('PUBLISH', ARGV[1], 'v1\n' .. id .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
return id
