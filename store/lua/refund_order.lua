-- Refunds an order the warehouse decided to refund, and publishes the change,
-- in one atomic step. Only an order that carries the reason the warehouse
-- recorded (see fulfil_order.lua) is refunded: a refund-initiated entry for
-- any other order is refused. From a status the domain's rules do not allow
-- (anything but completed) this entry was already applied. The
-- refund-initiated entry is acknowledged in the same step (when an id is given).
-- KEYS: order, order-status, refund-initiated, then the indexes of orders by
--       status (each name ends in ':<status>')
-- ARGV: statuses it applies from (',completed,'), status it leads to,
--       order id, now (ms), order-status max length, group, entry id ('' = no ack)
-- Returns 'applied', 'skipped', or, not acked, 'missing' or 'not_initiated'.
local from, to = ARGV[1], ARGV[2]
local function index(status)
  for i = 4, #KEYS do
    if string.sub(KEYS[i], -#status - 1) == ':' .. status then return KEYS[i] end
  end
end
local function ack()
  if ARGV[7] ~= '' then redis.call('XACK', KEYS[3], ARGV[6], ARGV[7]) end
end
local order = redis.call('HMGET', KEYS[1], 'status', 'product_id', 'refund_reason')
if not order[1] then return 'missing' end
if not string.find(from, ',' .. order[1] .. ',', 1, true) then ack() return 'skipped' end
if not order[3] then return 'not_initiated' end
redis.call('HSET', KEYS[1], 'status', to, 'updated_at', ARGV[4], 'at:' .. to, ARGV[4])
redis.call('ZREM', index(order[1]), ARGV[3])
redis.call('ZADD', index(to), 0, ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
  'order_id', ARGV[3], 'product_id', order[2], 'status', to,
  'reason', order[3], 'at', ARGV[4])
ack()
return 'applied'
