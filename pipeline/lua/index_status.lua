-- Enters an existing job into the index of its status (for jobs stored before the status
-- indexes existed). KEYS: job hash, jobs index
local status = redis.call('HGET', KEYS[1], 'status')
if status then set_status(KEYS[2], status) end
return status and 1 or 0
