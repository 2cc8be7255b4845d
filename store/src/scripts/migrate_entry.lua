-- Copies one stream entry of the layout before partitions into a
-- partition's stream, once: the set of copied entries and the copy are
-- written in one step, so a migration killed at any moment and run again
-- copies every entry exactly once.
-- KEYS: the partition's stream, the partition's set of migrated entries
-- ARGV: the entry's old stream and id (e.g. 'order-placed/1700000000000-0'),
--       then its field/value pairs
-- Returns 1 when copied now, 0 when it was copied before.
-- The positional layout (scripts/migrate_entry.rs ARGS): 1 argument, then 2 per field.
local HEAD, EACH = 1, 2
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
local fields = {}
for i = HEAD + 1, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], '*', unpack(fields))
return 1
