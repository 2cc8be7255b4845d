-- Gives up on a stream entry that is still pending: acknowledges it, copies
-- it with its error to the dead-letter stream, and, when it concerns an order
-- that has not finished (a status the domain's rules let it leave by giving
-- up), refunds that order with the reason, so nothing is left hanging.
-- An entry that is no longer pending (another consumer committed it in the
-- meantime) is left alone: its order is fine.
-- The dead letter keeps the entry's fields (as `field:<name>`), its id
-- (`source_id`), the error, the consumer and how often it was delivered.
-- One atomic step: a crash cannot lose the dead letter nor duplicate it.
-- KEYS: source stream, dead-letter stream, order-status, dead letters dropped
--       by the cap, then the indexes of orders by status (each name ends in
--       ':<status>') and by status and product (in ':<status>:by-product'),
--       then [order] (absent when the entry concerns none)
-- ARGV: statuses giving up applies from (',pending,completed,'), status it leads
--       to, group, entry id, error, consumer, status max length, dead-letter
--       cap, now (ms), number of status indexes, the refund's reason (from the
--       domain: 'processing failed: <error>'), then the entry's field/value pairs
-- Uses batch_prelude.lua and live_prelude.lua (put in front of this code).
-- Returns {'not_pending'}, or {'dead', dropped} / {'refunded', dropped}, where
-- dropped counts old dead letters the cap removed.
-- The positional layout (scripts/dead_letter.rs ARGS): 11 arguments, then 2 per field of the entry.
local HEAD, EACH = 11, 2
local from, to = ARGV[1], ARGV[2]
local last_index = 4 + tonumber(ARGV[10])
local function index(status) return status_index(5, last_index, status) end
local function by_product(status) return by_product_index(5, last_index, status) end
local pending = redis.call('XPENDING', KEYS[1], ARGV[3], ARGV[4], ARGV[4], 1)
if #pending == 0 then return {'not_pending'} end
redis.call('XACK', KEYS[1], ARGV[3], ARGV[4])
local fields = {'source_id', ARGV[4], 'error', ARGV[5], 'consumer', ARGV[6], 'deliveries', pending[1][4]}
for i = HEAD + 1, #ARGV, EACH do
  fields[#fields + 1] = 'field:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
local before = redis.call('XLEN', KEYS[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', unpack(fields))
local dropped = before + 1 - redis.call('XLEN', KEYS[2])
if dropped > 0 then redis.call('HINCRBY', KEYS[4], KEYS[1], dropped) end
local order_key = KEYS[last_index + 1]
if not order_key then return {'dead', dropped} end
local order = redis.call('HMGET', order_key, 'status', 'product_id', 'id')
if not order[1] or not string.find(from, ',' .. order[1] .. ',', 1, true) then return {'dead', dropped} end
local reason = ARGV[11]
redis.call('HSET', order_key, 'status', to, 'refund_reason', reason, 'updated_at', ARGV[9], 'at:' .. to, ARGV[9])
redis.call('ZREM', index(order[1]), order[3])
redis.call('ZADD', index(to), 0, order[3])
redis.call('ZREM', by_product(order[1]), order[2] .. ':' .. order[3])
redis.call('ZADD', by_product(to), 0, order[2] .. ':' .. order[3])
add_live(KEYS[3], ARGV[7], {'order_id', order[3], 'product_id', order[2], 'status', to,
  'reason', reason, 'at', ARGV[9]})
return {'refunded', dropped}
