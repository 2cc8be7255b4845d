-- Gives up on a stream entry: copies it with its error to the dead-letter
-- stream, acknowledges it, and, when it concerns an order that has not
-- finished, refunds that order with the reason, so nothing is left hanging.
-- One atomic step: a crash cannot lose the dead letter nor duplicate it.
-- KEYS: source stream, dead-letter stream, order-status, order counts,
--       [order] (absent when the entry concerns none)
-- ARGV: group, entry id, error, consumer, max length, now (ms),
--       then the entry's field/value pairs
-- Returns 'refunded' when an order was refunded, else 'dead'.
local fields = {'source_id', ARGV[2], 'error', ARGV[3], 'consumer', ARGV[4]}
for i = 7, #ARGV, 2 do
  fields[#fields + 1] = 'field:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if not KEYS[5] then return 'dead' end
local order = redis.call('HMGET', KEYS[5], 'status', 'product_id', 'id')
if not order[1] or order[1] == 'fulfilled' or order[1] == 'refunded' then return 'dead' end
local reason = 'processing failed: ' .. ARGV[3]
redis.call('HSET', KEYS[5], 'status', 'refunded', 'refund_reason', reason, 'updated_at', ARGV[6])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
  'order_id', order[3], 'product_id', order[2], 'status', 'refunded',
  'reason', reason, 'at', ARGV[6])
redis.call('HINCRBY', KEYS[4], order[1], -1)
redis.call('HINCRBY', KEYS[4], 'refunded', 1)
return 'refunded'
