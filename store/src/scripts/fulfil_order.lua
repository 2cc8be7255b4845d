-- The warehouse takes the stock of a batch of paid orders, in order, or
-- initiates their refund. Check and decrement happen in one atomic step, so
-- stock never goes below zero however many workers run; each product's stock
-- is read once and written once per batch. Only an order in a status the
-- domain's rules allow (completed) without a refund under way is touched, so
-- a redelivered entry changes nothing. When stock is short (or the product
-- gone) the reason and its time are recorded on the order by this same step:
-- the refund consumer refunds only orders that carry it. The status index
-- moves and the acknowledgement of the order-completed entries (when entry
-- ids are given) are part of the same step.
-- KEYS: order-completed, refund-initiated, order-status, then the indexes of
--       orders by status (each name ends in ':<status>') and by status and
--       product (in ':<status>:by-product'), then one order key
--       per order, then one key per product of the batch
-- ARGV: statuses it applies from (',completed,'), status it leads to, now (ms),
--       order-status max length, group, number of status indexes, reason
--       when stock is short, reason when the product is gone, number of
--       orders, then per order: order id, product id (from the event), the
--       position of its product's key among the product keys, entry id
--       ('' = no ack)
-- Uses batch_prelude.lua and live_prelude.lua (put in front of this code).
-- Returns one reply per order, in order: {'fulfilled', stock left},
-- {'refund_initiated', reason}, {'skipped'}, or, not acked, {'missing'},
-- {'stray'} (see missing_here) or {'mismatch'}.
local from, to, now, maxlen, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local last_index = 3 + tonumber(ARGV[6])
local short, gone = ARGV[7], ARGV[8]
local orders = tonumber(ARGV[9])
-- The positional layout (scripts/fulfil_order.rs ARGS): 9 arguments, then 4 per order.
local HEAD, EACH = 9, 4
-- Each product's stock as this batch leaves it (false: no such product), and
-- how much the batch took from it.
local stock, taken = {}, {}
local batch, replies = new_batch(to), {}
for i = 1, orders do
  local at = HEAD + EACH * (i - 1)
  local id, product_id, entry = ARGV[at + 1], ARGV[at + 2], ARGV[at + 4]
  local key, product = KEYS[last_index + i], KEYS[last_index + orders + tonumber(ARGV[at + 3])]
  local order = redis.call('HMGET', key, 'status', 'product_id', 'quantity', 'refund_reason', 'traceparent')
  if not order[1] then
    replies[i] = {missing_here(KEYS[1], group, entry)}
  elseif order[2] ~= product_id then
    replies[i] = {'mismatch'}
  else
    if not string.find(from, ',' .. order[1] .. ',', 1, true) or order[4] then
      replies[i] = {'skipped'}
    else
      if stock[product] == nil then
        local quantity = redis.call('HGET', product, 'quantity')
        stock[product] = quantity and tonumber(quantity) or false
        taken[product] = 0
      end
      local wanted = tonumber(order[3])
      if stock[product] and stock[product] >= wanted then
        stock[product] = stock[product] - wanted
        taken[product] = taken[product] + wanted
        move(batch, key, id, product_id, order[1], now)
        add_live(KEYS[3], maxlen, traced(
          {'order_id', id, 'product_id', product_id, 'status', to, 'stock', stock[product], 'at', now}, order[5]))
        replies[i] = {'fulfilled', stock[product]}
      else
        local reason = stock[product] and short or gone
        redis.call('HSET', key, 'refund_reason', reason, 'at:refund_initiated', now)
        redis.call('XADD', KEYS[2], '*', unpack(traced({'order_id', id, 'product_id', product_id, 'reason', reason, 'at', now}, order[5])))
        replies[i] = {'refund_initiated', reason}
      end
    end
    if entry ~= '' then table.insert(batch.acks, entry) end
  end
end
for product, units in pairs(taken) do
  if units > 0 then redis.call('HINCRBY', product, 'quantity', -units) end
end
commit(batch, 4, last_index, KEYS[1], group)
return replies
