-- Publish one event atomically (README.md, "Wire contract", Publishing).
-- KEYS[1] stream key, KEYS[2] last-id key
-- ARGV[1] pub/sub channel, ARGV[2] event type ("" = default), ARGV[3] data, ARGV[4] MAXLEN (~)
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
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], id,
  'event', ARGV[2], 'data', ARGV[3])
if type(added) == 'table' and added.err then
  -- The stream is ahead of the last-id key (e.g. that key was lost): let Redis pick an id above
  -- the stream's top. Any other error (wrong type, out of memory) is raised by this call.
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[2], 'data', ARGV[3])
end

redis.call('SET', KEYS[2], id)
redis.call('PUBLISH', ARGV[1], 'v1\n' .. id .. '\n' .. ARGV[2] .. '\n' .. ARGV[3])
return id
