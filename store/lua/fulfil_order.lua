-- The warehouse takes the stock of a completed order, or initiates its refund.
-- Check and decrement happen in one atomic step, so stock never goes below
-- zero however many workers run. Only a `completed` order without a refund
-- under way is touched, so a redelivered entry changes nothing. The
-- order-completed entry is acknowledged in the same step (when an id is given).
-- KEYS: order, product, refund-initiated, order-status, order-completed, order counts
-- ARGV: order id, product id (from the event), now (ms), order-status max
--       length, reason when stock is short, reason when the product is gone,
--       group, entry id ('' = no ack)
-- Returns {'fulfilled', stock left}, {'refund_initiated', reason},
--         {'skipped'}, or, not acked, {'missing'} or {'mismatch'}.
local function ack()
  if ARGV[8] ~= '' then redis.call('XACK', KEYS[5], ARGV[7], ARGV[8]) end
end
local order = redis.call('HMGET', KEYS[1], 'status', 'product_id', 'quantity', 'refund_reason')
if not order[1] then return {'missing'} end
if order[2] ~= ARGV[2] then return {'mismatch'} end
if order[1] ~= 'completed' or order[4] then ack() return {'skipped'} end
local wanted = tonumber(order[3])
local stock = redis.call('HGET', KEYS[2], 'quantity')
if stock and tonumber(stock) >= wanted then
  local left = redis.call('HINCRBY', KEYS[2], 'quantity', -wanted)
  redis.call('HSET', KEYS[1], 'status', 'fulfilled', 'updated_at', ARGV[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*',
    'order_id', ARGV[1], 'product_id', ARGV[2], 'status', 'fulfilled',
    'stock', left, 'at', ARGV[3])
  redis.call('HINCRBY', KEYS[6], 'completed', -1)
  redis.call('HINCRBY', KEYS[6], 'fulfilled', 1)
  ack()
  return {'fulfilled', left}
end
local reason = ARGV[5]
if not stock then reason = ARGV[6] end
redis.call('HSET', KEYS[1], 'refund_reason', reason)
redis.call('XADD', KEYS[3], '*', 'order_id', ARGV[1], 'product_id', ARGV[2], 'reason', reason)
ack()
return {'refund_initiated', reason}
