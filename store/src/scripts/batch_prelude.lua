-- Shared by the scripts that apply a batch of orders: the server puts this
-- in front of each one's own code (Lua scripts cannot import), so every
-- script's ARGV and KEYS stay its own.

-- Sends a command with many arguments in slices (Lua's stack is bounded).
local function each_slice(items, send)
  for first = 1, #items, 500 do send(unpack(items, first, math.min(first + 499, #items))) end
end

-- A stream entry's fields (a list of names and values), with the order's
-- W3C trace context when it has one (false or '' when traces are off): each
-- step of the order then joins its trace (see store::telemetry).
local function traced(fields, traceparent)
  if traceparent and traceparent ~= '' then
    table.insert(fields, 'traceparent')
    table.insert(fields, traceparent)
  end
  return fields
end

-- The index of orders in `status`, among KEYS[first..last] (each name ends
-- in ':<status>').
local function status_index(first, last, status)
  for i = first, last do
    if string.sub(KEYS[i], -#status - 1) == ':' .. status then return KEYS[i] end
  end
end

-- The index of orders in `status` by product, among KEYS[first..last] (each
-- name ends in ':<status>:by-product'); its members are '<product id>:<order id>'.
local function by_product_index(first, last, status)
  local suffix = ':' .. status .. ':by-product'
  for i = first, last do
    if string.sub(KEYS[i], -#suffix) == suffix then return KEYS[i] end
  end
end

-- The reply for an order this node does not hold, named by entry `entry` of
-- `stream` (read by `group`): 'missing' when the node holds the entry (in
-- the stream, or pending), so the order really is gone; 'stray' when it
-- holds neither: the call reached a node that does not serve the partition
-- (a master that slept through its failover, about to learn it), and the
-- caller tries again where the partition is.
local function missing_here(stream, group, entry)
  if entry == '' or #redis.call('XRANGE', stream, entry, entry) > 0 then return 'missing' end
  local pending = redis.pcall('XPENDING', stream, group, entry, entry, 1)
  if type(pending) == 'table' and pending.err == nil and #pending > 0 then return 'missing' end
  return 'stray'
end

-- What a batch changed, committed in its last step: the orders that moved
-- to `to` (and the status each left), and the entries to acknowledge.
local function new_batch(to)
  return {to = to, left = {}, entered = {}, left_by_product = {}, entered_by_product = {}, acks = {}}
end

-- Order `id` of product `product_id` moved from status `from` to the
-- batch's status, at `now`.
local function move(batch, key, id, product_id, from, now)
  redis.call('HSET', key, 'status', batch.to, 'updated_at', now, 'at:' .. batch.to, now)
  batch.left[from] = batch.left[from] or {}
  table.insert(batch.left[from], id)
  table.insert(batch.entered, 0)
  table.insert(batch.entered, id)
  local member = product_id .. ':' .. id
  batch.left_by_product[from] = batch.left_by_product[from] or {}
  table.insert(batch.left_by_product[from], member)
  table.insert(batch.entered_by_product, 0)
  table.insert(batch.entered_by_product, member)
end

-- Moves the batch's orders between the status indexes, plain and by product
-- (KEYS[first..last]), and acknowledges its entries on `stream` for `group`.
local function commit(batch, first, last, stream, group)
  for status, ids in pairs(batch.left) do
    each_slice(ids, function(...) redis.call('ZREM', status_index(first, last, status), ...) end)
  end
  each_slice(batch.entered, function(...) redis.call('ZADD', status_index(first, last, batch.to), ...) end)
  for status, members in pairs(batch.left_by_product) do
    each_slice(members, function(...) redis.call('ZREM', by_product_index(first, last, status), ...) end)
  end
  each_slice(batch.entered_by_product, function(...)
    redis.call('ZADD', by_product_index(first, last, batch.to), ...)
  end)
  each_slice(batch.acks, function(...) redis.call('XACK', stream, group, ...) end)
end
