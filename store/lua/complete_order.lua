-- Payment finished: pending → completed, emitting order-completed for the
-- warehouse and the status event, in one atomic step. Any other status means
-- this entry was already applied, so nothing changes.
-- The order-placed entry that asked for this is acknowledged in the same step
-- (when an entry id is given), so it is acked exactly when its effect commits.
-- KEYS: order, order-completed, order-status, order-placed, order counts
-- ARGV: order id, now (ms), order-status max length, group, entry id ('' = no ack)
-- Returns 'applied', 'skipped' or 'missing' (not acked: the caller dead-letters it).
local function ack()
  if ARGV[5] ~= '' then redis.call('XACK', KEYS[4], ARGV[4], ARGV[5]) end
end
local order = redis.call('HMGET', KEYS[1], 'status', 'product_id', 'quantity')
if not order[1] then return 'missing' end
if order[1] ~= 'pending' then ack() return 'skipped' end
redis.call('HSET', KEYS[1], 'status', 'completed', 'updated_at', ARGV[2])
redis.call('XADD', KEYS[2], '*', 'order_id', ARGV[1], 'product_id', order[2], 'quantity', order[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
  'order_id', ARGV[1], 'product_id', order[2], 'status', 'completed', 'at', ARGV[2])
redis.call('HINCRBY', KEYS[5], 'pending', -1)
redis.call('HINCRBY', KEYS[5], 'completed', 1)
ack()
return 'applied'
