-- Removes a product: its record, and its id from the products index and
-- from the search index under each prefix of its name (its orders stay;
-- those still in flight are refunded by the warehouse).
-- KEYS: product, products index, then the product's prefix indexes
-- ARGV: id
-- Returns 1 when the product was there, 0 when it was not.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 1
