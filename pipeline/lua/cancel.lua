-- KEYS: job hash, its events channel, jobs index, the status indexes
-- A: now, status_keys
local state = job_state(nil)
if state ~= 'ok' then return state end
set_status(KEYS[3], STATUS.cancelled)
redis.call('HSET', KEYS[1], 'stage_detail', 'cancelled', 'updated_at', A.now)
redis.call('PUBLISH', KEYS[2], 'cancelled')
return 'ok'
