-- Enters an existing job into the indexes of its status and owner, and into the expiry
-- index (for jobs stored before those indexes existed).
-- KEYS: job hash, jobs index, set of owners, expiry index, the status indexes, and the
--       owner's index if the job has an owner
-- A: status_keys, owner_key
local h = redis.call('HMGET', KEYS[1], 'id', 'status')
if not h[1] then return 0 end
set_status(KEYS[2], h[2])
index_owner(KEYS[2], KEYS[3])
local ttl_ms = redis.call('PTTL', KEYS[1])
if ttl_ms > 0 and not redis.call('ZSCORE', KEYS[4], h[1]) then
  note_expiry(KEYS[4], ttl_ms / 1000)
end
return 1
