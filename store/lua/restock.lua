-- Adds units to a product's stock, never past the ceiling. Read, check and
-- add are one step, so concurrent restocks and orders keep the arithmetic
-- exact (initial stock + restocks - fulfilled = stock).
-- KEYS: product
-- ARGV: units to add, stock ceiling
-- Returns {'restocked', new stock}, {'missing'} or {'ceiling', current stock}.
local stock = redis.call('HGET', KEYS[1], 'quantity')
if not stock then return {'missing'} end
if tonumber(stock) + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {'ceiling', stock} end
return {'restocked', redis.call('HINCRBY', KEYS[1], 'quantity', ARGV[1])}
