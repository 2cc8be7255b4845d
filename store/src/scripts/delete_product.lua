-- Uses live_prelude.lua (put in front of this code).
-- Removes a product: its record, and its id from the products index and
-- from the search index under each prefix of its name (its orders stay;
-- those still in flight are refunded by the warehouse), announced on the
-- partition's order-status stream, which the live feed relays.
-- KEYS: product, products index, order-status, then the product's prefix indexes
-- ARGV: id, order-status max length, now (ms)
-- Returns 1 when the product was there, 0 when it was not.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
add_live(KEYS[3], ARGV[2], {'product', 'deleted', 'product_id', ARGV[1], 'at', ARGV[3]})
return 1
