-- Records an observer's attempt at an event in the job's hash (A.set, A.del: fields of its
-- record), if that event is still the observer's latest one there. With A.ack, also
-- acknowledges the entry, and with A.next (the entry of the next attempt, as JSON) first
-- puts it in the stream's retry set, due A.delay seconds from now (on the server's clock):
-- all only while this consumer owns the entry.
-- KEYS: job hash, its events channel, the observer's stream, its retry set
-- A: group, consumer, entry_id, name (the observer), event, run, set, del, ack, next, delay
if A.ack and not owns(KEYS[3], A.group, A.consumer, A.entry_id) then return 'lost' end
if A.next then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[4], tonumber(t[1]) + tonumber(t[2]) / 1e6 + A.delay, A.next)
end
if A.ack then redis.call('XACK', KEYS[3], A.group, A.entry_id) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local n = A.name .. '.'
local h = redis.call('HMGET', KEYS[1], n .. 'event', n .. 'run')
if h[1] ~= A.event or tonumber(h[2]) ~= A.run then return 'stale' end
for _, field in ipairs(A.del) do redis.call('HDEL', KEYS[1], n .. field) end
for field, value in pairs(A.set) do redis.call('HSET', KEYS[1], n .. field, value) end
redis.call('PUBLISH', KEYS[2], 'observed')
return 'ok'
