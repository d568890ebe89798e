-- Removes the job's hash, its entries in the jobs index and in its status's index, and its
-- idempotency key if it has one; announces it. Returns 1 if the job existed.
-- KEYS: job hash, its events channel, jobs index[, idempotency key]
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return 0 end
redis.call('ZREM', KEYS[3] .. ':' .. redis.call('HGET', KEYS[1], 'status'), id)
redis.call('ZREM', KEYS[3], id)
redis.call('DEL', KEYS[1])
if KEYS[4] then redis.call('DEL', KEYS[4]) end
redis.call('PUBLISH', KEYS[2], 'deleted')
return 1
