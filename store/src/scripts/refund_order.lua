-- Refunds a batch of orders the warehouse decided to refund, and publishes
-- each change. Only an order that carries the reason the warehouse recorded
-- (see fulfil_order.lua) is refunded: a refund-initiated entry for any other
-- order is refused. From a status the domain's rules do not allow (anything
-- but completed) its entry was already applied. The whole batch is one atomic
-- step, the status index moves and the acknowledgement of the
-- refund-initiated entries (when entry ids are given) included.
-- KEYS: refund-initiated, order-status, then the indexes of orders by status
--       (each name ends in ':<status>') and by status and product (in
--       ':<status>:by-product'), then one order key per order
-- ARGV: statuses it applies from (',completed,'), status it leads to, now (ms),
--       order-status max length, group, number of status indexes, then per
--       order: order id, entry id ('' = no ack)
-- Uses batch_prelude.lua and live_prelude.lua (put in front of this code).
-- Returns one reply per order, in order: 'applied', 'skipped', or, not
-- acked, 'missing', 'stray' (see missing_here) or 'not_initiated'.
local from, to, now, maxlen, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local last_index = 2 + tonumber(ARGV[6])
local batch, replies = new_batch(to), {}
-- The positional layout (scripts/refund_order.rs ARGS): 6 arguments, then 2 per order.
local HEAD, EACH = 6, 2
for i = 1, (#ARGV - HEAD) / EACH do
  local at = HEAD + EACH * (i - 1)
  local id, entry = ARGV[at + 1], ARGV[at + 2]
  local key = KEYS[last_index + i]
  local order = redis.call('HMGET', key, 'status', 'product_id', 'refund_reason', 'traceparent')
  if not order[1] then
    replies[i] = missing_here(KEYS[1], group, entry)
  elseif not string.find(from, ',' .. order[1] .. ',', 1, true) then
    replies[i] = 'skipped'
    if entry ~= '' then table.insert(batch.acks, entry) end
  elseif not order[3] then
    replies[i] = 'not_initiated'
  else
    move(batch, key, id, order[2], order[1], now)
    add_live(KEYS[2], maxlen, traced(
      {'order_id', id, 'product_id', order[2], 'status', to, 'reason', order[3], 'at', now}, order[4]))
    replies[i] = 'applied'
    if entry ~= '' then table.insert(batch.acks, entry) end
  end
end
commit(batch, 3, last_index, KEYS[1], group)
return replies
