-- Puts orders saved before the index of orders by status and product
-- existed into it, each under the status it has now. Read and written in one
-- step, so an order a consumer moves meanwhile is indexed where it is.
-- KEYS: the indexes of orders by status and product (each name ends in
--       ':<status>:by-product'), then one order key per order
-- ARGV: number of those indexes, then one order id per order
-- Uses batch_prelude.lua (put in front of this code).
-- Returns how many of the orders exist.
-- The positional layout (scripts/index_orders.rs ARGS): 1 argument, then 1 per order.
local HEAD, EACH = 1, 1
local indexes = tonumber(ARGV[1])
local found = 0
for i = HEAD + 1, #ARGV, EACH do
  local order = redis.call('HMGET', KEYS[indexes + i - 1], 'status', 'product_id')
  local index = order[1] and by_product_index(1, indexes, order[1])
  if index then
    redis.call('ZADD', index, 0, order[2] .. ':' .. ARGV[i])
    found = found + 1
  end
end
return found
