-- KEYS: job hash, its events channel, jobs index; ARGV: now
local state = job_state(nil)
if state ~= 'ok' then return state end
set_status(KEYS[3], 'cancelled')
redis.call('HSET', KEYS[1], 'stage_detail', 'cancelled', 'updated_at', ARGV[1])
redis.call('PUBLISH', KEYS[2], 'cancelled')
return 'ok'
