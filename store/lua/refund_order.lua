-- Marks a completed order refunded and publishes the change, in one atomic
-- step. Any other status means this entry was already applied. The
-- refund-initiated entry is acknowledged in the same step (when an id is given).
-- KEYS: order, order-status, refund-initiated, order counts
-- ARGV: order id, now (ms), order-status max length, reason (from the event),
--       group, entry id ('' = no ack)
-- Returns 'applied', 'skipped' or 'missing' (not acked).
local function ack()
  if ARGV[6] ~= '' then redis.call('XACK', KEYS[3], ARGV[5], ARGV[6]) end
end
local order = redis.call('HMGET', KEYS[1], 'status', 'product_id', 'refund_reason')
if not order[1] then return 'missing' end
if order[1] ~= 'completed' then ack() return 'skipped' end
local reason = order[3] or ARGV[4]
redis.call('HSET', KEYS[1], 'status', 'refunded', 'refund_reason', reason, 'updated_at', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'order_id', ARGV[1], 'product_id', order[2], 'status', 'refunded',
  'reason', reason, 'at', ARGV[2])
redis.call('HINCRBY', KEYS[4], 'completed', -1)
redis.call('HINCRBY', KEYS[4], 'refunded', 1)
ack()
return 'applied'
