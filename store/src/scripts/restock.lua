-- Uses live_prelude.lua (put in front of this code).
-- Adds units to a product's stock, never past the ceiling. Read, check and
-- add are one step, so concurrent restocks and orders keep the arithmetic
-- exact (initial stock + restocks - fulfilled = stock). The new stock is
-- announced on the partition's order-status stream, which the live feed relays.
-- KEYS: product, order-status
-- ARGV: units to add, stock ceiling, product id, order-status max length, now (ms)
-- Returns {'restocked', new stock}, {'missing'} or {'ceiling', current stock}.
local stock = redis.call('HGET', KEYS[1], 'quantity')
if not stock then return {'missing'} end
if tonumber(stock) + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {'ceiling', stock} end
local now_stock = redis.call('HINCRBY', KEYS[1], 'quantity', ARGV[1])
add_live(KEYS[2], ARGV[4], {'product', 'restocked', 'product_id', ARGV[3], 'stock', now_stock, 'at', ARGV[5]})
return {'restocked', now_stock}
