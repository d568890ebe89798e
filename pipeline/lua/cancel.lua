-- KEYS: job hash, its events channel; ARGV: now
local state = job_state(nil)
if state ~= 'ok' then return state end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'stage_detail', 'cancelled',
  'updated_at', ARGV[1])
redis.call('PUBLISH', KEYS[2], 'cancelled')
return 'ok'
