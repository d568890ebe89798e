-- Removes the job's hash, its entries in the jobs index, the expiry index and the indexes
-- of its status and owner, and its idempotency key if it has one; announces it. Returns 1
-- if the job existed.
-- KEYS: job hash, its events channel, jobs index, expiry index[, idempotency key]
local h = redis.call('HMGET', KEYS[1], 'id', 'status', 'owner')
local id = h[1]
if not id then return 0 end
redis.call('ZREM', KEYS[3] .. ':' .. h[2], id)
if h[3] then redis.call('ZREM', KEYS[3] .. ':owner:' .. h[3], id) end
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('DEL', KEYS[1])
if KEYS[5] then redis.call('DEL', KEYS[5]) end
redis.call('PUBLISH', KEYS[2], 'deleted')
return 1
