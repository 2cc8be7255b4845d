-- Payment finished: the order moves to its next status (pending → completed,
-- from the domain's rules), emitting order-completed for the warehouse and
-- the status event, in one atomic step. From any other status this entry was
-- already applied, so nothing changes.
-- The order-placed entry that asked for this is acknowledged in the same step
-- (when an entry id is given), so it is acked exactly when its effect commits.
-- KEYS: order, order-completed, order-status, order-placed, then the indexes
--       of orders by status, one per status (each name ends in ':<status>')
-- ARGV: statuses it applies from (',pending,'), status it leads to,
--       order id, now (ms), order-status max length, group, entry id ('' = no ack)
-- Returns 'applied', 'skipped' or 'missing' (not acked: the caller dead-letters it).
local from, to = ARGV[1], ARGV[2]
local function index(status)
  for i = 5, #KEYS do
    if string.sub(KEYS[i], -#status - 1) == ':' .. status then return KEYS[i] end
  end
end
local function ack()
  if ARGV[7] ~= '' then redis.call('XACK', KEYS[4], ARGV[6], ARGV[7]) end
end
local order = redis.call('HMGET', KEYS[1], 'status', 'product_id', 'quantity')
if not order[1] then return 'missing' end
if not string.find(from, ',' .. order[1] .. ',', 1, true) then ack() return 'skipped' end
redis.call('HSET', KEYS[1], 'status', to, 'updated_at', ARGV[4], 'at:' .. to, ARGV[4])
redis.call('ZREM', index(order[1]), ARGV[3])
redis.call('ZADD', index(to), 0, ARGV[3])
redis.call('XADD', KEYS[2], '*', 'order_id', ARGV[3], 'product_id', order[2], 'quantity', order[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'order_id', ARGV[3], 'product_id', order[2], 'status', to, 'at', ARGV[4])
ack()
return 'applied'
