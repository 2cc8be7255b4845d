-- Uses live_prelude.lua (put in front of this code).
-- Adds a product to the warehouse, and to the search index under each of
-- the prefixes of its name's words. With an idempotency key, a retry of the
-- same request gets the product the first attempt created (as it was then),
-- even when the two race: the check and the creation are one step. The
-- creation is announced on the partition's order-status stream, which the
-- live feed relays (a `product` event), unless it is one of a bulk load.
-- KEYS: product, products index, order-status, [idempotency key] (absent =
--       none; never an empty name, which would hash to another cluster
--       slot), then the product's prefix indexes
-- ARGV: id, name, price (cents), quantity, the product as JSON (kept for
--       replays), idempotency window (s), number of prefix indexes,
--       order-status max length ('0': do not announce it), now (ms)
-- Returns {'created'} or {'replayed', the earlier product as JSON}.
local prefixes = tonumber(ARGV[7])
local idempotency = nil
if #KEYS - prefixes == 4 then idempotency = KEYS[4] end
if idempotency then
  local earlier = redis.call('GET', idempotency)
  if earlier then return {'replayed', earlier} end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'price', ARGV[3], 'quantity', ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
for i = #KEYS - prefixes + 1, #KEYS do
  redis.call('ZADD', KEYS[i], 0, ARGV[1])
end
if idempotency then
  redis.call('SET', idempotency, ARGV[5], 'EX', ARGV[6])
end
if ARGV[8] ~= '0' then
  add_live(KEYS[3], ARGV[8], {'product', 'created', 'product_id', ARGV[1], 'stock', ARGV[4], 'at', ARGV[9]})
end
return {'created'}
