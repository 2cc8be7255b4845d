-- Saves a new, priced order in its first status together with its outbox
-- entry, its first status event and its index entries, in one atomic step.
-- With an idempotency key, a retry of the same request returns the order the
-- first attempt created, even when the two race: the check and the creation
-- are one step.
-- KEYS: product, order, orders index, order-placed, order-status, index of
--       the first status's orders, index of the product's orders,
--       [idempotency key] (absent = none)
-- ARGV: order id, product id, unit price (cents, as priced), quantity, fee,
--       total, now (ms), order-status max length, idempotency window (s),
--       the status a new order has (from the domain's rules: pending)
-- Returns {'placed'}, {'replayed', earlier order id}, {'no_product'}, or
-- {'price_changed'} (priced against a stale price).
if KEYS[8] then
  local earlier = redis.call('GET', KEYS[8])
  if earlier then return {'replayed', earlier} end
end
local price = redis.call('HGET', KEYS[1], 'price')
if not price then return {'no_product'} end
if price ~= ARGV[3] then return {'price_changed'} end
redis.call('HSET', KEYS[2],
  'id', ARGV[1], 'product_id', ARGV[2], 'price', ARGV[3], 'quantity', ARGV[4],
  'fee', ARGV[5], 'total', ARGV[6], 'status', ARGV[10],
  'created_at', ARGV[7], 'updated_at', ARGV[7], 'at:' .. ARGV[10], ARGV[7])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[6], 0, ARGV[1])
redis.call('ZADD', KEYS[7], 0, ARGV[1])
redis.call('XADD', KEYS[4], '*', 'order_id', ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*',
  'order_id', ARGV[1], 'product_id', ARGV[2], 'status', ARGV[10], 'at', ARGV[7])
if KEYS[8] then
  redis.call('SET', KEYS[8], ARGV[1], 'EX', ARGV[9])
end
return {'placed'}
