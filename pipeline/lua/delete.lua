-- Removes the job's hash, its entries in the jobs index, the expiry index and the indexes
-- of its status and owner, and its idempotency key if it has one; announces it. Returns 1
-- if the job existed.
-- KEYS: job hash, its events channel, jobs index, expiry index, the status indexes, and
--       the owner's index and the idempotency key where the job has them
-- A: status_keys, owner_key, idempotency_key (positions in KEYS)
local h = redis.call('HMGET', KEYS[1], 'id', 'status')
local id = h[1]
if not id then return 0 end
if A.status_keys[h[2]] then redis.call('ZREM', KEYS[A.status_keys[h[2]]], id) end
if A.owner_key then redis.call('ZREM', KEYS[A.owner_key], id) end
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('DEL', KEYS[1])
if A.idempotency_key then redis.call('DEL', KEYS[A.idempotency_key]) end
redis.call('PUBLISH', KEYS[2], 'deleted')
return 1
