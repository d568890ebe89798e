-- Moves the due members of a stream's retry set (the fields of an entry, as JSON) back into
-- the stream as new entries, each exactly once (the move is one step), and says when the
-- next member is due. Stages' retries and observers' later attempts both wait here.
-- KEYS: the stream, its retry set
-- A: limit (most members moved), keep (seconds the stream is kept after an entry, 0: for good)
-- Returns {members moved, milliseconds until the next is due (-1: none waits)}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, A.limit)
for _, member in ipairs(due) do
  local ok, fields = pcall(cjson.decode, member)
  if ok and type(fields) == 'table' then
    local entry = {}
    for field, value in pairs(fields) do
      if value ~= cjson.null then
        entry[#entry + 1] = field
        entry[#entry + 1] = tostring(value)
      end
    end
    redis.call('XADD', KEYS[1], '*', unpack(entry))
    keep_stream(KEYS[1], A.keep)
  end
  redis.call('ZREM', KEYS[2], member)
end
local next_due = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #next_due == 0 then return {#due, -1} end
return {#due, math.max(0, math.ceil((tonumber(next_due[2]) - now) * 1000))}
