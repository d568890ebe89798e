-- Enters an existing job into the indexes of its status and owner (for jobs stored before
-- those indexes existed). KEYS: job hash, jobs index, set of owners
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
set_status(KEYS[2], status)
index_owner(KEYS[2], KEYS[3])
return 1
