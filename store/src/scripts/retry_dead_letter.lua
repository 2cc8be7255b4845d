-- Puts a dead letter back on the stream it came from (a new entry with the
-- original fields) and removes it from the dead letters, in one step: retried
-- twice, it goes back once, so it is processed at most once more.
-- KEYS: dead-letter stream, source stream
-- ARGV: the dead letter's entry id
-- Returns {'retried', new entry id} or {'gone'} (no such dead letter).
local letter = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #letter == 0 then return {'gone'} end
local fields = {}
local stored = letter[1][2]
for i = 1, #stored, 2 do
  local name = stored[i]
  if string.sub(name, 1, 6) == 'field:' then
    fields[#fields + 1] = string.sub(name, 7)
    fields[#fields + 1] = stored[i + 1]
  end
end
-- Marked as a retry: it asks for a change again but is none itself, so the
-- live feed does not relay it.
local marked = false
for i = 1, #fields, 2 do
  if fields[i] == 'retried' then fields[i + 1] = ARGV[1]; marked = true end
end
if not marked then
  fields[#fields + 1] = 'retried'
  fields[#fields + 1] = ARGV[1]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return {'retried', id}
