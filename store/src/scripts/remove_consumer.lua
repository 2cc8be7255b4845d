-- Removes a consumer from a group, but only while it holds no pending entry:
-- the check and the removal are one step, so an entry delivered to it in
-- between can never be dropped with it.
-- KEYS: stream
-- ARGV: group, consumer
-- Returns 1 when removed, 0 when it holds entries (or does not exist).
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #held > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
