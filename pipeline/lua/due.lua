-- Moves the events of an observer's schedule whose next attempt is due (at most A.limit)
-- to its stream. Returns the milliseconds until the next one after those is due (-1: none).
-- KEYS: the schedule, the observer's stream; A: now (milliseconds since the epoch), limit
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', A.now, 'LIMIT', 0, A.limit)
for _, member in ipairs(due) do
  local entry = {}
  for field, value in pairs(cjson.decode(member)) do
    if value ~= cjson.null then
      entry[#entry + 1] = field
      entry[#entry + 1] = tostring(value)
    end
  end
  redis.call('XADD', KEYS[2], '*', unpack(entry))
  redis.call('ZREM', KEYS[1], member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return -1 end
return math.max(tonumber(first[2]) - A.now, 0)
