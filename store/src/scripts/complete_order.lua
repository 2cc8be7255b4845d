-- Payment finished, for a batch of orders: each order in a status the
-- domain's rules allow (pending) moves to its next status (completed),
-- emitting order-completed for the warehouse (the entry is also the live
-- feed's event of the change); from any other status its entry was already
-- applied, so nothing changes. The whole batch is one atomic step: the status
-- index moves and the acknowledgement of every order-placed entry that asked
-- for a change (when an entry id is given) commit together with the changes,
-- so an entry is acked exactly when its effect commits.
-- KEYS: order-placed, order-completed, then the indexes of orders by status
--       (each name ends in ':<status>') and by status and product (in
--       ':<status>:by-product'), then one order key per order
-- ARGV: statuses it applies from (',pending,'), status it leads to, now (ms),
--       group, number of status indexes, then per order: order id, entry id
--       ('' = no ack)
-- Uses batch_prelude.lua and live_prelude.lua (put in front of this code).
-- Returns one reply per order, in order: 'applied', 'skipped', or, not
-- acked, 'missing' (the caller dead-letters it) or 'stray' (see
-- missing_here: the caller tries again).
local from, to, now, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local last_index = 2 + tonumber(ARGV[5])
local batch, replies = new_batch(to), {}
-- The positional layout (scripts/complete_order.rs ARGS): 5 arguments, then 2 per order.
local HEAD, EACH = 5, 2
for i = 1, (#ARGV - HEAD) / EACH do
  local at = HEAD + EACH * (i - 1)
  local id, entry = ARGV[at + 1], ARGV[at + 2]
  local key = KEYS[last_index + i]
  local order = redis.call('HMGET', key, 'status', 'product_id', 'quantity', 'traceparent')
  if not order[1] then
    replies[i] = missing_here(KEYS[1], group, entry)
  else
    if string.find(from, ',' .. order[1] .. ',', 1, true) then
      move(batch, key, id, order[2], order[1], now)
      add_live(KEYS[2], nil, traced({'order_id', id, 'product_id', order[2], 'quantity', order[3], 'at', now}, order[4]))
      replies[i] = 'applied'
    else
      replies[i] = 'skipped'
    end
    if entry ~= '' then table.insert(batch.acks, entry) end
  end
end
commit(batch, 3, last_index, KEYS[1], group)
return replies
