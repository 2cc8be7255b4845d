-- The warehouse takes the stock of a paid order, or initiates its refund.
-- Check and decrement happen in one atomic step, so stock never goes below
-- zero however many workers run. Only an order in a status the domain's rules
-- allow (completed) without a refund under way is touched, so a redelivered
-- entry changes nothing. When stock is short (or the product gone) the reason
-- and its time are recorded on the order by this same step: the refund
-- consumer refunds only orders that carry it. The order-completed entry is
-- acknowledged in the same step (when an id is given).
-- KEYS: order, product, refund-initiated, order-status, order-completed, then
--       the indexes of orders by status (each name ends in ':<status>')
-- ARGV: statuses it applies from (',completed,'), status it leads to,
--       order id, product id (from the event), now (ms), order-status max
--       length, reason when stock is short, reason when the product is gone,
--       group, entry id ('' = no ack)
-- Returns {'fulfilled', stock left}, {'refund_initiated', reason},
--         {'skipped'}, or, not acked, {'missing'} or {'mismatch'}.
local from, to = ARGV[1], ARGV[2]
local function index(status)
  for i = 6, #KEYS do
    if string.sub(KEYS[i], -#status - 1) == ':' .. status then return KEYS[i] end
  end
end
local function ack()
  if ARGV[10] ~= '' then redis.call('XACK', KEYS[5], ARGV[9], ARGV[10]) end
end
local order = redis.call('HMGET', KEYS[1], 'status', 'product_id', 'quantity', 'refund_reason')
if not order[1] then return {'missing'} end
if order[2] ~= ARGV[4] then return {'mismatch'} end
if not string.find(from, ',' .. order[1] .. ',', 1, true) or order[4] then ack() return {'skipped'} end
local wanted = tonumber(order[3])
local stock = redis.call('HGET', KEYS[2], 'quantity')
if stock and tonumber(stock) >= wanted then
  local left = redis.call('HINCRBY', KEYS[2], 'quantity', -wanted)
  redis.call('HSET', KEYS[1], 'status', to, 'updated_at', ARGV[5], 'at:' .. to, ARGV[5])
  redis.call('ZREM', index(order[1]), ARGV[3])
  redis.call('ZADD', index(to), 0, ARGV[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*',
    'order_id', ARGV[3], 'product_id', ARGV[4], 'status', to,
    'stock', left, 'at', ARGV[5])
  ack()
  return {'fulfilled', left}
end
local reason = ARGV[7]
if not stock then reason = ARGV[8] end
redis.call('HSET', KEYS[1], 'refund_reason', reason, 'at:refund_initiated', ARGV[5])
redis.call('XADD', KEYS[3], '*', 'order_id', ARGV[3], 'product_id', ARGV[4], 'reason', reason)
ack()
return {'refund_initiated', reason}
