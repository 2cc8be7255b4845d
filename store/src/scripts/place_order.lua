-- Saves a batch of new, priced orders, each in its first status together
-- with its outbox entry (which is also the live feed's event of the status)
-- and its index entries, in one atomic step (the server gathers the orders placed at the same time in
-- one partition). With an idempotency key, a retry of the same request
-- returns the order the first attempt created, even when the two race: the
-- check and the creation are one step.
-- KEYS: orders index, order-placed, index of the first status's orders, the same by product, then per order:
--       product, order, index of the product's orders, and its idempotency key when it has one
-- ARGV: idempotency window (s), the status a new order has (from the domain's rules: pending), replicas that must
--       be online (REDIS_MIN_REPLICAS; 0: none), the most seconds a replica's last acknowledgement may lag,
--       then per order: order id, product id, unit price (cents, as priced), quantity, fee, total, now (ms),
--       whether it has an idempotency key ('1' or '0'), its W3C traceparent ('' = none: traces are off), kept
--       with the order and in its entry, so that every later step of the order joins the same trace
-- Uses batch_prelude.lua and live_prelude.lua (put in front of this code).
-- Returns one reply per order, in order: {'placed'}, {'replayed', earlier
-- order id}, {'no_product'}, {'price_changed'} (priced against a stale price),
-- or, for every order of the batch and before anything is written,
-- {'not_replicated', replicas online} when fewer replicas than required are
-- online: a client told so knows its order was not saved.
local window, status = ARGV[1], ARGV[2]
local min_replicas, max_lag = tonumber(ARGV[3]), tonumber(ARGV[4])
-- The positional layout (scripts/place_order.rs ARGS): 4 arguments, then 9 per order.
local HEAD, EACH = 4, 9
local orders = (#ARGV - HEAD) / EACH
if min_replicas > 0 then
  local online = 0
  for state, lag in string.gmatch(redis.call('INFO', 'replication'), 'slave%d+:[^\r\n]-state=(%a+)[^\r\n]-lag=(%d+)') do
    if state == 'online' and tonumber(lag) <= max_lag then online = online + 1 end
  end
  if online < min_replicas then
    local refused = {}
    for i = 1, orders do refused[i] = {'not_replicated', online} end
    return refused
  end
end
-- Each product's price (false: no such product), and its new orders.
local prices, of_product = {}, {}
local replies, placed, placed_by_product = {}, {}, {}
local key = 5
for i = 1, orders do
  local at = HEAD + EACH * (i - 1)
  local id, product_id, price, now = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 7]
  local product, order, product_orders = KEYS[key], KEYS[key + 1], KEYS[key + 2]
  local idempotency = nil
  if ARGV[at + 8] == '1' then idempotency = KEYS[key + 3] end
  key = key + (idempotency and 4 or 3)
  local earlier = idempotency and redis.call('GET', idempotency)
  if not earlier and prices[product] == nil then
    prices[product] = redis.call('HGET', product, 'price') or false
  end
  if earlier then
    replies[i] = {'replayed', earlier}
  elseif not prices[product] then
    replies[i] = {'no_product'}
  elseif prices[product] ~= price then
    replies[i] = {'price_changed'}
  else
    redis.call('HSET', order,
      'id', id, 'product_id', product_id, 'price', price, 'quantity', ARGV[at + 4],
      'fee', ARGV[at + 5], 'total', ARGV[at + 6], 'status', status,
      'created_at', now, 'updated_at', now, 'at:' .. status, now)
    local traceparent = ARGV[at + 9]
    if traceparent ~= '' then redis.call('HSET', order, 'traceparent', traceparent) end
    table.insert(placed, 0)
    table.insert(placed, id)
    table.insert(placed_by_product, 0)
    table.insert(placed_by_product, product_id .. ':' .. id)
    of_product[product_orders] = of_product[product_orders] or {}
    table.insert(of_product[product_orders], 0)
    table.insert(of_product[product_orders], id)
    add_live(KEYS[2], nil, traced({'order_id', id, 'product_id', product_id, 'at', now}, traceparent))
    if idempotency then redis.call('SET', idempotency, id, 'EX', window) end
    replies[i] = {'placed'}
  end
end
each_slice(placed, function(...) redis.call('ZADD', KEYS[1], ...) end)
each_slice(placed, function(...) redis.call('ZADD', KEYS[3], ...) end)
each_slice(placed_by_product, function(...) redis.call('ZADD', KEYS[4], ...) end)
for index, ids in pairs(of_product) do
  each_slice(ids, function(...) redis.call('ZADD', index, ...) end)
end
return replies
