-- Adds a product to the warehouse. With an idempotency key, a retry of the
-- same request gets the product the first attempt created (as it was then),
-- even when the two race: the check and the creation are one step.
-- KEYS: product, products index, [idempotency key] (absent = none; never an
--       empty name, which would hash to another cluster slot)
-- ARGV: id, name, price (cents), quantity, the product as JSON (kept for
--       replays), idempotency window (s)
-- Returns {'created'} or {'replayed', the earlier product as JSON}.
if KEYS[3] then
  local earlier = redis.call('GET', KEYS[3])
  if earlier then return {'replayed', earlier} end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'price', ARGV[3], 'quantity', ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if KEYS[3] then
  redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6])
end
return {'created'}
