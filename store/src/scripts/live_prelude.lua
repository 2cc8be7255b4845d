-- Shared by the scripts that write the live streams (the live feed's
-- changes): the server puts this in front of each one's own code.

-- The newest entry of each live stream this call has written, so that each
-- push names the entry before it without asking the stream again.
local live_newest = {}

-- Adds an entry with `fields` (a list of names and values) to the live
-- stream `stream`, trimmed to about `trim` entries when given, and pushes it
-- at once on the shard channel named like the stream (same slot, so it works
-- on a cluster) to every server that follows the live feed: no server has to
-- read the streams to learn of it. The push is a JSON list: the entry before
-- it in the stream ('0-0': none), the entry's id, then its fields. A server
-- whose last entry of the stream is not the one before reads the stream to
-- fill the gap (a push it missed, an entry added without one). A Redis older
-- than 7 has no shard channels: the push fails quietly and the servers read.
-- Returns the entry's id.
local function add_live(stream, trim, fields)
  local before = live_newest[stream]
  if not before then
    local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
    before = newest[1] and newest[1][1] or '0-0'
  end
  local id
  if trim then
    id = redis.call('XADD', stream, 'MAXLEN', '~', trim, '*', unpack(fields))
  else
    id = redis.call('XADD', stream, '*', unpack(fields))
  end
  live_newest[stream] = id
  local pushed = {before, id}
  for _, field in ipairs(fields) do table.insert(pushed, tostring(field)) end
  redis.pcall('SPUBLISH', stream, cjson.encode(pushed))
  return id
end
